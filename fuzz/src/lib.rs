//! Fuzz harnesses for vqsgd's hostile-input surfaces.
//!
//! One function per fuzz target, taking the raw fuzzer bytes. Each drives a parser or decoder
//! through the same library path a real run uses and panics only when the library breaks a
//! promise: a panic inside the library, a decoder error that is not `Error::Payload`, an
//! encoded payload that does not decode, a resolved config that does not re-parse, a loaded
//! data set with non-finite values, ...
//!
//! The file is shared: the `fuzz/` crate builds the libFuzzer targets from it, and the main
//! crate's `tests/fuzz_corpus.rs` includes it (`#[path]`) to replay every committed seed and
//! regression input on stable Rust without libFuzzer. So it uses only `std`, `vqsgd`,
//! `flate2` and `ndarray` (dependencies of the main crate), and stays `clippy -D warnings`
//! clean.

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use vqsgd::checkpoint::Checkpoint;
use vqsgd::compress::StepSeeds;
use vqsgd::config::{
    BlockSpec, Coding, CompressionConfig, Config, DataConfig, ModelConfig, ModelKind, Scheme,
    TaskKind,
};
use vqsgd::data::{self, RawData, Sharder, Split, Task};
use vqsgd::Error;

/// A fuzz harness: one input, panics on a bug.
pub type Harness = fn(&[u8]);

/// Every fuzz target: its name (the directory under `fuzz/seeds/`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("payload_decode", payload_decode),
    ("idx", idx),
    ("libsvm", libsvm),
    ("csv", csv),
    ("config", config),
    ("checkpoint", checkpoint),
];

/// Largest dense data matrix (values) the data harnesses let a parser build.
pub const MAX_FUZZ_VALUES: usize = 1 << 22;

/// A cursor over the fuzzer bytes: fixed-size reads return 0 once the input is exhausted.
struct Input<'a> {
    d: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.d.split_first() {
            Some((&b, rest)) => {
                self.d = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) | u16::from(self.byte()) << 8
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, i| acc | u64::from(self.byte()) << (8 * i))
    }
    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.byte() as usize % options.len()]
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.d.split_at(n.min(self.d.len()));
        self.d = b;
        a
    }
    fn rest(self) -> &'a [u8] {
        self.d
    }
}

const SCHEMES: [Scheme; 10] = [
    Scheme::CrossPolytope,
    Scheme::Simplex,
    Scheme::Hadamard,
    Scheme::Sparse,
    Scheme::Fp16,
    Scheme::Qsgd,
    Scheme::Terngrad,
    Scheme::Signsgd,
    Scheme::EfSignsgd,
    Scheme::Topk,
];

/// The compression config, gradient dimension and model layers chosen by the first bytes.
fn compression_setup(inp: &mut Input<'_>) -> (CompressionConfig, usize, Vec<Range<usize>>) {
    let scheme = SCHEMES[inp.byte() as usize % SCHEMES.len()];
    let flags = inp.byte();
    let n_layers = 1 + inp.byte() as usize % 4;
    let mut layers = Vec::new();
    let mut dim = 0;
    for _ in 0..n_layers {
        let mut len = 1 + inp.byte() as usize % 97;
        if flags & 0x80 != 0 {
            len *= 37; // past the samplers' chunk size
        }
        layers.push(dim..dim + len);
        dim += len;
    }
    let mut c = CompressionConfig {
        scheme,
        ..Default::default()
    };
    c.block = match inp.byte() % 5 {
        0 | 1 => BlockSpec::Whole,
        2 => BlockSpec::Layer,
        3 => BlockSpec::Size(1 + inp.byte() as usize % (dim + 8)),
        _ => BlockSpec::Size(inp.pick(&[0, 1, 2, 3, 64, 1 << 31, usize::MAX])),
    };
    let r = inp.byte() as usize;
    c.repetitions = match flags & 3 {
        0 => 1,
        1 => 1 + r % 8,
        2 => 1 + 3 * r,
        _ => 1 << (r % 31), // absurd: 2^28 is the limit
    };
    c.k = inp.byte() as usize % (dim + 3);
    c.k_ratio = inp.pick(&[0.01, 0.1, 0.5, 1.0, 0.0, 1.5, f64::NAN]);
    c.rotate = flags & 4 != 0;
    c.coding = if flags & 8 != 0 {
        Coding::Rice
    } else {
        Coding::Fixed
    };
    let p = inp.byte();
    match p % 8 {
        0 => c.privacy_scale = Some(1.0 + f64::from(p) / 32.0),
        1 => c.epsilon = Some(f64::from(p) / 16.0 + 0.01),
        2 => c.privacy_scale = Some(inp.pick(&[1.0, 0.5, f64::INFINITY, f64::NAN])),
        3 => c.epsilon = Some(inp.pick(&[0.0, -1.0, 1e-300, 1e300, f64::NAN])),
        _ => {}
    }
    if flags & 16 != 0 {
        c.clip = inp.pick(&[0.5, 1.0, 1e-3, 1e6, -1.0, f64::NAN]);
    }
    c.levels = inp.pick(&[1, 2, 3, 4, 7, 15, 16, 255, 32768, 0, 40000]);
    c.bucket = inp.byte() as usize % (dim + 4);
    if flags & 32 != 0 {
        c.dense_below = inp.byte() as usize % 100;
    }
    (c, dim, layers)
}

/// A bounded gradient derived from bytes (never all zero unless the bytes are).
fn gradient(dim: usize, bytes: &[u8], exp: i32) -> Vec<f32> {
    let scale = 2f32.powi(exp);
    (0..dim)
        .map(|i| match bytes.get(i % bytes.len().max(1)) {
            Some(&b) => f32::from(b as i8) * scale,
            None => ((i % 7) as f32 - 3.0) * scale,
        })
        .collect()
}

/// True when `r` accepted the payload; a rejection must be an `Error::Payload` with a message.
fn accepted(r: vqsgd::Result<()>, what: &str, info: &str) -> bool {
    match r {
        Ok(()) => true,
        Err(Error::Payload(m)) => {
            assert!(!m.is_empty(), "{info}: empty payload error for {what}");
            false
        }
        Err(e) => panic!("{info}: decode_add of {what} returned a non-payload error: {e}"),
    }
}

/// `payload_decode`: build the compressor of a config chosen from the first bytes (every vq
/// and baseline scheme, blocks, repetitions, k, coding, rotation, privacy, clipping, dense
/// small layers), then decode the remaining bytes as a payload (must never panic; errors must
/// be `Error::Payload`; an accepted payload respects the length contract), then encode a
/// gradient derived from the bytes and check that it decodes, and that its truncation, an
/// extra byte and a flipped bit are handled.
pub fn payload_decode(data: &[u8]) {
    let mut inp = Input { d: data };
    let (cfg, dim, layers) = compression_setup(&mut inp);
    let shared = inp.u64();
    let weight = inp.pick(&[1.0f32, 0.5, 1.0 / 3.0, -1.0, 0.0, 1e-3]);
    let exp = i32::from(inp.byte() % 48) - 24;
    let flip = inp.u16() as usize;
    let payload = inp.rest();
    let valid = cfg.validate().is_ok();
    // Built whether or not the config validates: the builders must reject bad values too.
    let mut c = match vqsgd::sync::build_compressor(&cfg, dim, &layers) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let info = format!("{cfg:?} dim {dim} layers {layers:?}");
    assert_eq!(c.dim(), dim, "{info}");
    let max = c.max_payload_len();
    if let Some(n) = c.fixed_payload_len() {
        assert!(n <= max, "{info}: fixed length {n} > max {max}");
    }
    let mut out = vec![0f32; dim];

    c.begin_decode(shared);
    if accepted(c.decode_add(payload, weight), "fuzz bytes", &info) {
        if let Some(n) = c.fixed_payload_len() {
            assert_eq!(
                payload.len(),
                n,
                "{info}: accepted a payload of the wrong length"
            );
        }
        assert!(
            payload.len() <= max,
            "{info}: accepted a payload over the maximum"
        );
        c.finish_decode(&mut out);
        // A second accepted payload accumulates without trouble.
        let _ = c.decode_add(payload, weight);
    }

    if !valid || max > 1 << 16 {
        return; // invalid configs are never run; huge payloads are slow to encode
    }
    let g = gradient(dim, payload, exp);
    let seeds = StepSeeds {
        shared,
        private: shared.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
    };
    let mut enc = Vec::new();
    c.encode(&g, seeds, &mut enc)
        .unwrap_or_else(|e| panic!("{info}: encoding a finite gradient failed: {e}"));
    if let Some(n) = c.fixed_payload_len() {
        assert_eq!(
            enc.len(),
            n,
            "{info}: fixed-length payload has another length"
        );
    }
    assert!(
        enc.len() <= max,
        "{info}: payload {} > max {max}",
        enc.len()
    );
    c.begin_decode(seeds.shared);
    c.decode_add(&enc, 1.0)
        .unwrap_or_else(|e| panic!("{info}: own payload does not decode: {e}"));
    c.finish_decode(&mut out);
    assert!(
        out.iter().all(|v| v.is_finite()),
        "{info}: decoded a finite gradient to non-finite values"
    );
    if !enc.is_empty() {
        c.begin_decode(seeds.shared);
        let r = c.decode_add(&enc[..enc.len() - 1], 1.0);
        assert!(
            !accepted(r, "a truncated payload", &info),
            "{info}: truncated payload accepted"
        );
        let mut bad = enc.clone();
        let i = flip % bad.len();
        bad[i] ^= 1 << (flip >> 13);
        c.begin_decode(seeds.shared);
        accepted(c.decode_add(&bad, 1.0), "a flipped bit", &info);
    }
    let mut long = enc.clone();
    long.push(0);
    c.begin_decode(seeds.shared);
    let r = c.decode_add(&long, 1.0);
    assert!(
        !accepted(r, "a payload with a trailing byte", &info),
        "{info}: trailing byte accepted"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// A data config and model kind chosen by one byte, for [`data::prepare`].
fn prepare_setup(b: u8, b2: u8) -> (DataConfig, ModelKind) {
    let cfg = DataConfig {
        task: [
            TaskKind::Auto,
            TaskKind::Regression,
            TaskKind::Classification,
        ][b as usize % 3],
        test_fraction: [0.2, 0.5, 0.01, 0.99, 0.0, 1.0][(b as usize / 3) % 6],
        standardize: b & 0x40 == 0,
        target_scale: [1.0, 1e5, 1e-30, 0.0][b2 as usize % 4],
        max_train: [0, 1, 2, 5][(b2 as usize / 4) % 4],
        ..Default::default()
    };
    let model = [
        ModelKind::Mlp,
        ModelKind::Softmax,
        ModelKind::Logistic,
        ModelKind::Linear,
    ][(b2 as usize / 16) % 4];
    (cfg, model)
}

/// Check a loader's raw samples, then run them through [`data::prepare`], the model, the
/// sharder and one gradient / evaluation pass, as a training run would.
fn check_raw_and_prepare(raw: RawData, test: Option<RawData>, b: u8, b2: u8) {
    for r in std::iter::once(&raw).chain(&test) {
        assert_eq!(r.x.len(), r.len() * r.n_features, "{}", r.origin.display());
        assert_eq!(r.lines.len(), r.len());
        assert!(r.n_features > 0 && !r.is_empty());
        assert!(r.x.iter().all(|v| v.is_finite()), "non-finite feature");
        assert!(r.y.iter().all(|v| v.is_finite()), "non-finite label");
    }
    let (cfg, kind) = prepare_setup(b, b2);
    let n = raw.len() + test.as_ref().map_or(0, RawData::len);
    let Ok(split) = data::prepare(&cfg, kind, 7, "fuzz".into(), raw, test) else {
        return;
    };
    check_split(&split, n, kind, b2);
}

fn check_split(split: &Split, n: usize, kind: ModelKind, b: u8) {
    let d = split.train.n_features();
    assert_eq!(split.test.n_features(), d);
    assert!(split.train.len() + split.test.len() <= n);
    for set in [&split.train, &split.test] {
        assert!(set.x.iter().all(|v| v.is_finite()), "non-finite feature");
        assert!(set.y.iter().all(|v| v.is_finite()), "non-finite target");
        if let Task::Classification { n_classes } = split.task {
            assert!(set.y.iter().all(|&v| v >= 0.0 && (v as usize) < n_classes));
        }
    }
    let world = 1 + b as usize % 5;
    match Sharder::new(split.train.len(), world - 1, world, 3) {
        Ok(s) => assert!(s.shard_len() >= 1 && s.steps_per_epoch(4) >= 1),
        Err(e) => assert!(e.to_string().contains("ranks"), "{e}"),
    }
    if d > 4096 || split.train.is_empty() {
        return;
    }
    let mcfg = ModelConfig {
        kind,
        hidden: vec![3],
    };
    let Ok(mut model) = vqsgd::model::build(&mcfg, d, split.task) else {
        return;
    };
    let params = model.init_params(1);
    let mut grad = vec![0f32; model.n_params()];
    let rows: Vec<usize> = (0..split.train.len().min(4)).collect();
    let mut buf = data::BatchBuffer::new();
    let (x, y) = split.train.gather(&rows, &mut buf);
    // The loss may overflow on unstandardised data: training reports that as a numerical
    // failure, so only panics matter here.
    model.loss_grad(&params, x, y, &mut grad, &mut |_, _| {});
    model.evaluate(&params, split.test.x.view(), split.test.y.view());
}

/// `idx`: IDX images or labels, raw or gzip, one file (first byte even) or an image file and a
/// label file paired into samples and prepared for training (first byte odd).
pub fn idx(data: &[u8]) {
    let mut inp = Input { d: data };
    let mode = inp.byte();
    let (b, b2) = (inp.byte(), inp.byte());
    let maybe_gz = |bytes: &[u8], gz: bool| if gz { gzip(bytes) } else { bytes.to_vec() };
    if mode & 1 == 0 {
        let bytes = maybe_gz(inp.rest(), mode & 2 != 0);
        if let Ok(a) = data::idx::parse_idx(&bytes, Path::new("fuzz-idx")) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            assert!((1..=4).contains(&a.dims.len()));
        }
        return;
    }
    let n_img = inp.u16() as usize;
    let img = maybe_gz(inp.take(n_img), mode & 2 != 0);
    let lab = maybe_gz(inp.rest(), mode & 4 != 0);
    let (ip, lp) = (Path::new("fuzz-images"), Path::new("fuzz-labels"));
    let (Ok(i), Ok(l)) = (
        data::idx::parse_idx(&img, ip),
        data::idx::parse_idx(&lab, lp),
    ) else {
        return;
    };
    let Ok(raw) = data::idx::images_labels(i, ip, l, lp) else {
        return;
    };
    let test = (mode & 8 != 0).then(|| raw.clone());
    check_raw_and_prepare(raw, test, b, b2);
}

/// Text of the fuzz input, or the library's UTF-8 error for it.
fn text_of(bytes: &[u8], path: &Path) -> Option<String> {
    match data::bytes_to_text(bytes.to_vec(), path) {
        Ok(t) => Some(t),
        Err(e) => {
            assert!(e.to_string().contains("UTF-8"), "{e}");
            None
        }
    }
}

/// `libsvm`: LIBSVM text (first byte: dimension given or inferred), then prepared for
/// training; a separate test file is the same text parsed with the training dimension.
pub fn libsvm(data: &[u8]) {
    let mut inp = Input { d: data };
    let mode = inp.byte();
    let (b, b2) = (inp.byte(), inp.byte());
    let path = Path::new("fuzz.svm");
    let Some(text) = text_of(inp.rest(), path) else {
        return;
    };
    let dim = match mode % 4 {
        0 | 1 => None,
        2 => Some(mode as usize / 4),
        _ => Some(vqsgd::data::libsvm::MAX_INDEX + mode as usize),
    };
    let parsed = data::libsvm::parse_with_limit(
        &text,
        path,
        dim.map(|d| (d, "data.n_features")),
        MAX_FUZZ_VALUES,
    );
    let raw = match parsed {
        Ok(r) => r,
        Err(e) => {
            assert!(e.to_string().contains("fuzz.svm"), "{e}");
            return;
        }
    };
    if let Some(d) = dim {
        assert_eq!(raw.n_features, d);
    }
    let test = if mode & 0x10 != 0 {
        let t = data::libsvm::parse_with_limit(
            &text,
            path,
            Some((raw.n_features, "the training file")),
            MAX_FUZZ_VALUES,
        );
        Some(t.expect("a file parses with its own dimension"))
    } else {
        None
    };
    check_raw_and_prepare(raw, test, b, b2);
}

/// `csv`: CSV text with a header count, label column and expected column count from the
/// first byte, then prepared for training.
pub fn csv(data: &[u8]) {
    let mut inp = Input { d: data };
    let mode = inp.byte();
    let (b, b2) = (inp.byte(), inp.byte());
    let path = Path::new("fuzz.csv");
    let Some(text) = text_of(inp.rest(), path) else {
        return;
    };
    let skip = mode as usize % 3;
    let label = [-1i64, 0, 1, -2, 5, -9, i64::MIN, i64::MAX][(mode as usize / 3) % 8];
    let expect = (mode & 0x80 != 0).then_some((mode as usize / 24) % 5);
    let raw = match data::csv::parse(&text, path, skip, label, expect) {
        Ok(r) => r,
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("fuzz.csv"), "{m}");
            return;
        }
    };
    check_raw_and_prepare(raw, None, b, b2);
}

/// `config`: TOML text whose lines starting with `--set ` are taken out and applied as
/// command-line overrides, through `Config::from_toml_str` and `validate` as `Config::load`
/// does. A valid config must re-parse from its resolved TOML, and building its model (for
/// 64 features) and gradient exchange must give an error or succeed without a huge
/// allocation; small synthetic data sets are generated, prepared and sharded.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut toml = String::new();
    let mut sets = Vec::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("--set ") {
            Some(s) => sets.push(s.trim_end_matches(['\n', '\r']).to_string()),
            None => toml.push_str(line),
        }
    }
    let mut cfg = match Config::from_toml_str(&toml, "fuzz.toml", &sets) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    if cfg.run.name.is_empty() {
        cfg.run.name = "fuzz".into();
    }
    if let Err(e) = cfg.validate() {
        assert!(matches!(e, Error::Config { .. }), "not a config error: {e}");
        return;
    }
    let resolved = cfg.to_toml();
    let back = Config::from_toml_str(&resolved, "resolved", &[])
        .unwrap_or_else(|e| panic!("resolved config does not parse: {e}\n{resolved}"));
    back.validate()
        .unwrap_or_else(|e| panic!("resolved config does not validate: {e}\n{resolved}"));
    assert_eq!(
        back.to_toml(),
        resolved,
        "resolved config changes on re-parse"
    );

    let task = match data::resolve_task(&cfg.data, cfg.model.kind) {
        TaskKind::Regression => Task::Regression,
        _ => Task::Classification {
            n_classes: cfg.data.n_classes.clamp(2, 10),
        },
    };
    let Ok(mut model) = vqsgd::model::build(&cfg.model, 64, task) else {
        return;
    };
    let dim = model.n_params();
    let layers: Vec<Range<usize>> = model.layers().iter().map(|l| l.range.clone()).collect();
    if dim <= 1 << 20 {
        let _ = vqsgd::sync::build(&cfg.compression, dim, &layers, cfg.run.seed);
    }
    if cfg.compression.overlap && dim <= 1 << 16 {
        // The groups the model reports as ready, from one backward pass, as training does.
        let params = model.init_params(cfg.run.seed);
        let mut grad = vec![0f32; dim];
        let x = ndarray::Array2::<f32>::zeros((1, 64));
        let y = ndarray::Array1::<f32>::zeros(1);
        let mut groups = Vec::new();
        model.loss_grad(&params, x.view(), y.view(), &mut grad, &mut |r, _| {
            groups.push(r)
        });
        let _ = vqsgd::overlap::OverlappedExchange::new(
            &cfg.compression,
            &layers,
            groups,
            cfg.run.seed,
        );
    }
    let d = &cfg.data;
    let synthetic = matches!(
        d.source,
        vqsgd::config::DataSource::SyntheticRegression
            | vqsgd::config::DataSource::SyntheticClassification
    );
    if synthetic && d.n_samples.saturating_mul(d.synthetic_features) <= 1 << 14 {
        if let Ok(split) = data::load(d, cfg.model.kind, cfg.run.seed) {
            check_split(&split, d.n_samples, cfg.model.kind, cfg.run.seed as u8);
        }
    }
}

/// FNV-1a 64, the checkpoint checksum.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `checkpoint`: `Checkpoint::from_bytes` of the input; with the first byte odd the input gets
/// a valid trailing checksum (and with bit 1 also the magic and version) so that the fields
/// behind the checksum are reached. An accepted checkpoint re-serialises to a fixed point.
pub fn checkpoint(data: &[u8]) {
    let mut inp = Input { d: data };
    let mode = inp.byte();
    let rest = inp.rest();
    let mut bytes = Vec::new();
    if mode & 2 != 0 {
        bytes.extend_from_slice(b"VQSGDCKP");
        bytes.extend_from_slice(&1u32.to_le_bytes());
    }
    bytes.extend_from_slice(rest);
    if mode & 1 != 0 {
        let sum = fnv(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
    }
    let Ok(ck) = Checkpoint::from_bytes(&bytes) else {
        return;
    };
    let again = ck.to_bytes();
    let ck2 = Checkpoint::from_bytes(&again).expect("a re-serialised checkpoint parses");
    assert_eq!(
        ck2.to_bytes(),
        again,
        "checkpoint serialisation is not a fixed point"
    );
}

/// The seeds that need the library's encoders, as `(target, file name, bytes)`: payloads of
/// configs of every scheme (a header as [`payload_decode`] reads it, then a real payload) and
/// checkpoints (with and without the checksum the harness can add). Written into
/// `fuzz/seeds/` by `cargo test --test fuzz_corpus -- --ignored write_seeds`.
pub fn generated_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let variants: [(&str, u8, u8); 6] = [
        ("fixed", 0x00, 0),
        ("rice_s", 0x09, 0),
        ("rotate_layer", 0x05, 2),
        ("dense_below_size", 0x21, 3),
        ("clip_rice", 0x18, 0),
        ("long", 0x82, 3),
    ];
    for (si, scheme) in SCHEMES.iter().enumerate() {
        for &(name, flags, block) in &variants {
            // Bytes in the order compression_setup reads them: scheme, flags, 2 layers of 41
            // and 8, block (size 21), repetitions, k, k_ratio 0.1, no privacy, [clip 0.5],
            // levels 4, bucket 5, [dense_below 11].
            let mut header = vec![si as u8, flags, 1, 40, 7, block];
            if block == 3 {
                header.push(20);
            }
            header.extend_from_slice(&[2, 3, 1, 4]);
            if flags & 16 != 0 {
                header.push(0);
            }
            header.extend_from_slice(&[3, 5]);
            if flags & 32 != 0 {
                header.push(11);
            }
            header.extend_from_slice(&[0x5a; 8]); // shared seed
            header.extend_from_slice(&[0, 24, 0, 0]); // weight 1, exp 0, flip
            header.resize(64, 0);
            let mut inp = Input { d: &header };
            let (cfg, dim, layers) = compression_setup(&mut inp);
            let shared = inp.u64();
            inp.byte();
            let exp = i32::from(inp.byte() % 48) - 24;
            inp.u16();
            let used = header.len() - inp.rest().len();
            if cfg.validate().is_err() {
                continue;
            }
            let Ok(mut c) = vqsgd::sync::build_compressor(&cfg, dim, &layers) else {
                continue;
            };
            let g = gradient(dim, &header[..used], exp);
            let seeds = StepSeeds {
                shared,
                private: shared.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
            };
            let mut enc = Vec::new();
            if c.encode(&g, seeds, &mut enc).is_err() || enc.len() > 4096 {
                continue;
            }
            let mut seed = header[..used].to_vec();
            seed.extend_from_slice(&enc);
            out.push(("payload_decode", format!("{}_{name}", scheme.name()), seed));
        }
    }
    let ck = Checkpoint {
        config_hash: 0x1234_5678_9abc_def0,
        world: 2,
        state: vqsgd::checkpoint::TrainState {
            step: 12,
            elapsed_s: 3.5,
            loss_sum: 1.25,
            loss_count: 4.0,
            time_to_target: Some(2.0),
            params: vec![0.5, -1.0, 2.0, 0.0],
            velocity: vec![0.1, 0.0, -0.1, 0.2],
            feedback: vec![vec![0.01; 4], vec![-0.01; 4]],
            stats: vec![Default::default(); 2],
            rows: vec![Default::default(); 2],
        },
    };
    let bytes = ck.to_bytes();
    let body = &bytes[..bytes.len() - 8];
    let mut with_mode = |mode: u8, name: &str, b: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(b);
        out.push(("checkpoint", name.to_string(), v));
    };
    with_mode(0, "valid", &bytes);
    with_mode(0, "truncated", &bytes[..bytes.len() / 2]);
    with_mode(1, "body_checksum_added", body);
    with_mode(3, "fields_magic_and_checksum_added", &body[12..]);
    let empty = Checkpoint::default().to_bytes();
    with_mode(0, "empty_state", &empty);
    out
}

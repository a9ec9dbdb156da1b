//! Hostile input: every kind of bad input listed in the README's "Bad input" table gives a
//! clear error naming the file, line, key or value and what was expected, before any large
//! allocation, and never a panic. Also the regression tests of the crashes that the fuzz
//! targets (`fuzz/`, `scripts/fuzz.sh`) found. Messages are printed (`--nocapture`) so the
//! table can quote them.

#![allow(clippy::single_range_in_vec_init)] // one block covering the gradient

mod common;

use std::path::Path;
use std::time::Instant;

use vqsgd::checkpoint::{self, Checkpoint};
use vqsgd::compress::StepSeeds;
use vqsgd::config::{CompressionConfig, Config, DataConfig, DataSource, ModelKind, Scheme};
use vqsgd::data::{self, csv, idx, libsvm};

fn show(what: &str, r: Result<impl Sized, vqsgd::Error>) -> String {
    let m = match r {
        Ok(_) => panic!("{what}: expected an error"),
        Err(e) => e.to_string(),
    };
    eprintln!("{what}: {m}");
    m
}

fn has(m: &str, parts: &[&str]) {
    for p in parts {
        assert!(m.contains(p), "`{p}` missing from: {m}");
    }
}

fn cfg_err(toml: &str, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let r = Config::from_toml_str(toml, "x.toml", &sets).and_then(|c| c.validate().map(|_| c));
    show(&format!("config {toml:?} {sets:?}"), r)
}

#[test]
fn config_errors_name_the_key_and_value() {
    has(
        &cfg_err("[optim]\nlrr = 0.1\n", &[]),
        &["x.toml", "lrr", "expected one of"],
    );
    has(&cfg_err("[optimizer]\n", &[]), &["x.toml", "optimizer"]);
    has(
        &cfg_err("[optim]\nlr = \"fast\"\n", &[]),
        &["optim.lr", "fast", "x.toml"],
    );
    has(
        &cfg_err("[model]\nhidden = 64\n", &[]),
        &["model.hidden", "expected a sequence"],
    );
    has(&cfg_err("model = 3\n", &[]), &["model"]);
    has(&cfg_err("", &["optim.lr=fast"]), &["optim.lr", "fast"]);
    has(
        &cfg_err("[optim]\nmomentum = 1.5\n", &[]),
        &["optim.momentum", "1.5"],
    );
    has(
        &cfg_err("", &["optim.lr"]),
        &["optim.lr", "table.key=value"],
    );
    has(&cfg_err("[optim\n", &[]), &["x.toml", "line 1"]);
}

#[test]
fn absurd_sizes_are_config_errors_before_any_allocation() {
    let t = Instant::now();
    has(
        &cfg_err("", &["model.hidden=[1000000000]"]),
        &["model.hidden", "1000000000"],
    );
    has(
        &cfg_err("", &["compression.repetitions=1e12"]),
        &[
            "compression.repetitions",
            "floating point `1000000000000.0`, expected usize",
        ],
    );
    has(
        &cfg_err("", &["compression.repetitions=1000000000000"]),
        &["compression.repetitions", "1000000000000", "268435456"],
    );
    has(
        &cfg_err("", &["optim.batch_size=0"]),
        &["optim.batch_size", "0"],
    );
    has(
        &cfg_err("", &["data.n_samples=1e15"]),
        &["data.n_samples", "expected usize"],
    );
    let synth = ["data.source=synthetic_regression", "model.kind=linear"];
    let mut s = synth.to_vec();
    s.push("data.n_samples=1000000000000000");
    has(&cfg_err("", &s), &["data.n_samples", "1000000000000000"]);
    let mut s = synth.to_vec();
    s.extend(["data.n_samples=50000000", "data.synthetic_features=1000000"]);
    has(
        &cfg_err("", &s),
        &["data.n_samples", "50000000 samples x 1000000 features"],
    );
    has(
        &cfg_err("", &["data.n_features=1000000000"]),
        &["data.n_features", "1000000000"],
    );
    has(
        &cfg_err("", &["compression.block=-3"]),
        &["compression.block", "-3", "x.toml"],
    );
    // Widths each within the limit whose product is not: refused when the model is built.
    let c = Config::from_toml_str("", "x", &["model.hidden=[1048576,1048576]".into()]).unwrap();
    c.validate().unwrap();
    let task = data::Task::Classification { n_classes: 10 };
    let m = show(
        "hidden [2^20, 2^20]",
        vqsgd::model::build(&c.model, 64, task),
    );
    has(&m, &["model.hidden", "parameters"]);
    // Compressor sizes beyond the MPI count limit.
    let cc = CompressionConfig {
        scheme: Scheme::Sparse,
        repetitions: 1 << 28,
        k: 64,
        ..Default::default()
    };
    let r = vqsgd::sync::build_compressor(&cc, 1 << 20, &[0..1 << 20]);
    has(
        &show("repetitions 2^28", r),
        &["compression.repetitions", "MPI count limit"],
    );
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

fn idx_bytes(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_header_claiming_more_data_fails_before_allocating_it() {
    let p = Path::new("train-images-idx3-ubyte");
    let t = Instant::now();
    // 60000 x 28 x 28 claimed, 10 bytes present: refused from the file length alone.
    let b = idx_bytes([0, 0, 8, 3], &[60_000, 28, 28], &[0; 10]);
    let m = show("idx claims more", idx::parse_idx(&b, p));
    has(
        &m,
        &[
            "train-images-idx3-ubyte",
            "truncated",
            "47040000",
            "only 10",
        ],
    );
    // The 4 GiB limit itself claimed by a tiny gzip stream: the stream runs out first, and
    // the buffer only grows with the data actually decompressed.
    let b = gzip(&idx_bytes([0, 0, 8, 3], &[1 << 16, 1 << 16, 1], &[7; 100]));
    let m = show("idx gz claims 4 GiB", idx::parse_idx(&b, p));
    has(&m, &["truncated", "4294967296", "only 100"]);
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
    let b = idx_bytes([0, 0, 8, 3], &[u32::MAX, u32::MAX, 28], &[]);
    has(&show("idx absurd", idx::parse_idx(&b, p)), &["absurd"]);
    let b = idx_bytes([1, 2, 8, 1], &[4], &[0; 4]);
    has(
        &show("idx magic", idx::parse_idx(&b, p)),
        &["bad IDX magic 01020801"],
    );
    let b = idx_bytes([0, 0, 0x0d, 1], &[4], &[0; 16]);
    has(
        &show("idx type", idx::parse_idx(&b, p)),
        &["0x0d is not supported"],
    );
    let b = idx_bytes([0, 0, 8, 1], &[4], &[0; 5]);
    has(
        &show("idx trailing", idx::parse_idx(&b, p)),
        &["1 unexpected trailing bytes"],
    );
    has(
        &show("idx empty", idx::parse_idx(&[], p)),
        &["file is empty"],
    );
    has(
        &show("idx short", idx::parse_idx(&[0, 0, 8], p)),
        &["ends before the 4-byte"],
    );
    let mut b = gzip(&idx_bytes([0, 0, 8, 1], &[4], &[0; 4]));
    let n = b.len();
    b[n - 6] ^= 0xff; // the CRC
    has(
        &show("idx gz corrupt", idx::parse_idx(&b, p)),
        &["corrupt gzip stream"],
    );
    // Images without pixels (a zero dimension) name the file instead of failing later.
    let img = idx::parse_idx(&idx_bytes([0, 0, 8, 3], &[2, 0, 5], &[]), p).unwrap();
    let lab = idx::parse_idx(&idx_bytes([0, 0, 8, 1], &[2], &[0, 1]), p).unwrap();
    let m = show(
        "idx no pixels",
        idx::images_labels(img, p, lab, Path::new("l")),
    );
    has(&m, &["train-images-idx3-ubyte", "no pixels"]);
}

fn svm(text: &str, dim: Option<usize>) -> Result<data::RawData, vqsgd::Error> {
    libsvm::parse(text, Path::new("a9a"), dim.map(|d| (d, "data.n_features")))
}

#[test]
fn libsvm_errors_name_file_line_and_dimension() {
    let m = show("svm beyond dim", svm("1 1:1\n-1 124:1\n", Some(123)));
    has(
        &m,
        &[
            "a9a:2",
            "feature index 124 is beyond the dimension 123 of data.n_features",
        ],
    );
    has(
        &show("svm bad value", svm("1 1:1\n1 3:abc\n", None)),
        &["a9a:2", "`abc`"],
    );
    has(
        &show("svm bad token", svm("1 3\n", None)),
        &["a9a:1", "index:value"],
    );
    has(
        &show("svm index 0", svm("1 0:1\n", None)),
        &["a9a:1", "1-based"],
    );
    has(
        &show("svm label", svm("x 1:1\n", None)),
        &["a9a:1", "label `x`"],
    );
    has(
        &show("svm huge index", svm("1 99999999999:1\n", None)),
        &["a9a:1", "absurdly large"],
    );
    has(
        &show("svm empty", svm("\n# only a comment\n", None)),
        &["a9a", "no samples"],
    );
    has(
        &show("svm dim", svm("1 1:1\n", Some(usize::MAX))),
        &["absurdly large"],
    );
}

/// Regression (fuzz target `libsvm`, input `fuzz/regressions/libsvm/f32_overflow_value`): a
/// value that parses as an f64 but overflows f32 was reported as "not a finite number".
#[test]
fn libsvm_value_beyond_f32_names_the_range() {
    let m = show("svm f32 overflow", svm("1 1:1e39\n", None));
    has(&m, &["a9a:1", "`1e39`", "32-bit float range"]);
}

/// Regression (fuzz target `csv`, input `fuzz/regressions/csv/f32_overflow_feature`): a feature
/// beyond the f32 range became an infinity in the data set.
#[test]
fn csv_feature_beyond_f32_is_an_error() {
    let m = show(
        "csv f32 overflow",
        csv::parse("1e300,2,3\n4,5,6\n", Path::new("h.csv"), 0, -1, None),
    );
    has(&m, &["h.csv:1", "column 1", "32-bit float range"]);
}

/// Regression (fuzz target `libsvm`, input `fuzz/regressions/libsvm/f32_overflow_target`): a
/// regression target beyond the f32 range (after `data.target_scale`) became an infinity.
#[test]
fn regression_target_beyond_f32_is_an_error() {
    let raw = svm("1 1:1\n1e300 1:2\n3 1:3\n", None).unwrap();
    let cfg = DataConfig {
        source: DataSource::Libsvm,
        ..Default::default()
    };
    let m = show(
        "target f32 overflow",
        data::prepare(&cfg, ModelKind::Linear, 1, "a9a".into(), raw, None),
    );
    has(&m, &["a9a:2", "target 1e300", "data.target_scale"]);
}

/// Regression (fuzz target `libsvm`, input
/// `fuzz/regressions/libsvm/standardised_test_outlier_overflows`): a test sample's feature
/// far outside the training spread became an infinity once standardised with the training
/// statistics.
#[test]
fn test_outlier_beyond_f32_once_standardised_names_file_and_line() {
    let train = svm("0 1:0 2:1\n1 1:1 2:2\n0 1:0 2:3\n", None).unwrap();
    let test = svm("1 1:0.5\n0 1:3e38 2:1\n", Some(2)).unwrap();
    let cfg = DataConfig {
        source: DataSource::Libsvm,
        ..Default::default()
    };
    let m = show(
        "standardised test outlier",
        data::prepare(
            &cfg,
            ModelKind::Logistic,
            1,
            "a9a".into(),
            train,
            Some(test),
        ),
    );
    has(&m, &["a9a:2", "feature 1 ", "= 3e38", "f32 range"]);
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let p = Path::new("h.csv");
    let m = show("csv columns", csv::parse("1,2,3\n1,2\n", p, 0, -1, None));
    has(&m, &["h.csv:2", "expected 3 columns, found 2"]);
    let m = show("csv number", csv::parse("1,2,3\n1,x,3\n", p, 0, -1, None));
    has(&m, &["h.csv:2", "column 2: `x` is not a finite number"]);
    let m = show("csv empty field", csv::parse("1,,3\n", p, 0, -1, None));
    has(&m, &["h.csv:1", "column 2 is empty"]);
    let m = show("csv label column", csv::parse("1,2\n", p, 0, 5, None));
    has(&m, &["data.label_column", "column 5 does not exist"]);
    let m = show("csv one column", csv::parse("1\n2\n", p, 0, -1, None));
    has(&m, &["h.csv:1", "need at least 2"]);
    let m = show(
        "csv utf8",
        data::bytes_to_text(b"1,2\n\xff,3\n".to_vec(), p),
    );
    has(&m, &["h.csv:2", "UTF-8"]);
    let m = show("csv nan", csv::parse("1,nan,3\n", p, 0, -1, None));
    has(&m, &["h.csv:1", "`nan`"]);
}

#[test]
fn more_ranks_than_samples_is_an_error_naming_both() {
    let m = show("shard", data::Sharder::new(2, 3, 4, 1));
    has(&m, &["4 ranks but only 2 training samples"]);
}

#[test]
fn payload_errors_say_what_is_wrong() {
    let cfg = CompressionConfig {
        scheme: Scheme::CrossPolytope,
        ..Default::default()
    };
    let mut c = vqsgd::sync::build_compressor(&cfg, 100, &[0..100]).unwrap();
    let g: Vec<f32> = (0..100).map(|i| i as f32 - 50.0).collect();
    let seeds = StepSeeds {
        shared: 1,
        private: 2,
    };
    let mut p = Vec::new();
    c.encode(&g, seeds, &mut p).unwrap();
    let mut dec = |b: &[u8]| {
        c.begin_decode(1);
        c.decode_add(b, 1.0)
    };
    has(
        &show("payload truncated", dec(&p[..p.len() - 1])),
        &["invalid payload", "truncated"],
    );
    let mut long = p.clone();
    long.push(0);
    has(&show("payload trailing", dec(&long)), &["trailing bytes"]);
    let mut nan = p.clone();
    nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    has(
        &show("payload NaN norm", dec(&nan)),
        &["norm NaN is not a finite non-negative"],
    );
    let mut bad = p.clone();
    bad[4] = 0xff; // the first 8-bit index: 255 >= 2 x 100
    has(&show("payload index", dec(&bad)), &["out of range 0..200"]);
    let cfg = CompressionConfig {
        scheme: Scheme::Topk,
        k: 2,
        ..Default::default()
    };
    let mut c = vqsgd::sync::build_compressor(&cfg, 10, &[0..10]).unwrap();
    c.begin_decode(0);
    let mut pairs = Vec::new();
    for (i, v) in [(3u32, 1.0f32), (12, 1.0)] {
        pairs.extend_from_slice(&i.to_le_bytes());
        pairs.extend_from_slice(&v.to_le_bytes());
    }
    has(
        &show("topk index", c.decode_add(&pairs, 1.0)),
        &["index 12, outside its block 0..10"],
    );
}

fn sample_checkpoint() -> Checkpoint {
    let mut c = Checkpoint {
        config_hash: 7,
        world: 2,
        ..Default::default()
    };
    c.state.params = vec![1.0; 8];
    c.state.stats = vec![Default::default(); 2];
    c
}

#[test]
fn corrupt_and_truncated_checkpoints_are_refused() {
    let b = sample_checkpoint().to_bytes();
    let m = show("ckpt truncated", Checkpoint::from_bytes(&b[..b.len() - 3]));
    has(&m, &["checksum mismatch"]);
    let mut c = b.clone();
    c[30] ^= 1;
    has(
        &show("ckpt flipped", Checkpoint::from_bytes(&c)),
        &["checksum mismatch"],
    );
    has(
        &show(
            "ckpt magic",
            Checkpoint::from_bytes(b"not a checkpoint at all"),
        ),
        &["bad magic"],
    );
    // On --resume: a corrupt newest file is skipped; when all are corrupt the run refuses.
    let dir = common::scratch("hostile-ckpt");
    let ck = sample_checkpoint();
    let path = checkpoint::save(&dir, &ck, 2).unwrap();
    std::fs::write(&path, &b[..b.len() / 2]).unwrap();
    let m = show("ckpt all corrupt", checkpoint::load_latest(&dir, 7, 2));
    has(&m, &["no valid checkpoint in", "hostile-ckpt"]);
    std::fs::write(&path, &b).unwrap();
    let m = show("ckpt other world", checkpoint::load_latest(&dir, 7, 3));
    has(&m, &["written by 2 ranks, this job has 3"]);
    let m = show("ckpt other config", checkpoint::load_latest(&dir, 8, 2));
    has(&m, &["different configuration"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// More MPI ranks than training samples: a clear error on every rank, a non-zero exit and no
/// hang (the job is bounded by the timeout).
#[test]
fn more_ranks_than_samples_under_mpirun_fails_cleanly() {
    let out = common::scratch("hostile-shard");
    let o = common::run_vqsgd(
        4,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            "data.max_train=2",
            "--out",
            out.to_str().unwrap(),
        ],
        120,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(!o.status.success(), "should fail: {err}");
    assert_ne!(o.status.code(), Some(124), "timed out (hang): {err}");
    assert!(err.contains("4 ranks but only 2 training samples"), "{err}");
    // Every rank fails alike: they exit together (code 2), rank 0 reports, nothing aborts.
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("MPI_ABORT") && !err.contains("rank 1/4"),
        "{err}"
    );
}

/// A data file error under mpirun ends the job with the message and a non-zero exit.
#[test]
fn bad_data_file_under_mpirun_fails_cleanly() {
    let out = common::scratch("hostile-data");
    let f = out.join("bad.svm");
    std::fs::write(&f, "1 1:1\n-1 2:x\n").unwrap();
    let path = format!("data.path={}", f.display());
    let o = common::run_vqsgd(
        2,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            "data.source=libsvm",
            "--set",
            &path,
            "--out",
            out.to_str().unwrap(),
        ],
        120,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(124), "timed out (hang): {err}");
    assert!(err.contains("bad.svm:2") && err.contains("`x`"), "{err}");
}

/// Regression (fuzz target `payload_decode`, input
/// `fuzz/regressions/payload_decode/tiny_epsilon_infinite_scale`): `compression.epsilon =
/// 1e-300` passed validation, gave the privacy scale `c = inf` and decoded every payload to
/// infinities and NaNs.
#[test]
fn tiny_epsilon_is_a_config_error_not_an_infinite_update() {
    for scheme in [Scheme::CrossPolytope, Scheme::Simplex] {
        let cfg = CompressionConfig {
            scheme,
            epsilon: Some(1e-300),
            ..Default::default()
        };
        cfg.validate().unwrap();
        let m = show(
            "tiny epsilon",
            vqsgd::sync::build_compressor(&cfg, 50, &[0..50]),
        );
        has(
            &m,
            &["compression.epsilon", "1e-300", "privacy scale c = inf"],
        );
        let cfg = CompressionConfig {
            scheme,
            privacy_scale: Some(1e300),
            ..Default::default()
        };
        let m = show(
            "huge privacy scale",
            vqsgd::sync::build_compressor(&cfg, 50, &[0..50]),
        );
        has(&m, &["compression.privacy_scale", "1e300"]);
    }
    // A small but sane epsilon still builds.
    let cfg = CompressionConfig {
        scheme: Scheme::CrossPolytope,
        epsilon: Some(1e-3),
        ..Default::default()
    };
    vqsgd::sync::build_compressor(&cfg, 50, &[0..50]).unwrap();
}

/// Regression (fuzz target `csv`, input `fuzz/regressions/csv/one_expected_column`): an
/// expected column count below 2 gave a data set without features.
#[test]
fn csv_expected_column_count_below_two_is_an_error() {
    for n in [0, 1] {
        let m = show(
            "csv expect",
            csv::parse("4\n278\n", Path::new("t.csv"), 0, 0, Some(n)),
        );
        has(&m, &["t.csv", "need at least 2"]);
    }
}

/// A model within the parameter limit that the ranks on this host cannot hold: a config error
/// naming `model.hidden` before the buffers are allocated, instead of the out-of-memory killer.
#[test]
fn model_too_large_for_the_host_fails_before_allocating() {
    let Some(total) = vqsgd::model::host_memory() else {
        eprintln!("SKIP: no /proc/meminfo");
        return;
    };
    // Two ranks x 16 bytes x params = twice the host's memory.
    let width = total / 16 / (1 << 20);
    if !(64..=1900).contains(&width) {
        eprintln!("SKIP: host memory {total} B needs a width outside the parameter limit");
        return;
    }
    let out = common::scratch("hostile-memory");
    let hidden = format!("model.hidden=[1048576,{width}]");
    let t = Instant::now();
    let o = common::run_vqsgd(
        2,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            &hidden,
            "--out",
            out.to_str().unwrap(),
        ],
        120,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(!o.status.success());
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
    assert!(
        err.contains("model.hidden") && err.contains("GB of memory"),
        "{err}"
    );
}

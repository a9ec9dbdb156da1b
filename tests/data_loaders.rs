//! Loader robustness: small good and malformed files written to a temporary directory and
//! loaded through `data::load`, plus the sharding invariants over world sizes 1..=5.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use vqsgd::config::{DataConfig, DataSource, ModelKind, TaskKind};
use vqsgd::data::{self, Sharder, Task};

/// A fresh, unique temporary directory for one test.
fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vqsgd-dm-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_bytes(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// Four consistent MNIST-like files: `n` 2x3 images with labels `i % 3`.
fn write_mnist(dir: &Path, n: u32, gz: bool) {
    for (prefix, count) in [("train", n), ("t10k", 2)] {
        let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 37 % 256) as u8).collect();
        let labels: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
        let img = idx_bytes([0, 0, 8, 3], &[count, 2, 3], &pixels);
        let lab = idx_bytes([0, 0, 8, 1], &[count], &labels);
        let (img, lab, ext) = if gz {
            (gzip(&img), gzip(&lab), ".gz")
        } else {
            (img, lab, "")
        };
        write(dir, &format!("{prefix}-images-idx3-ubyte{ext}"), &img);
        write(dir, &format!("{prefix}-labels-idx1-ubyte{ext}"), &lab);
    }
}

fn mnist_cfg(dir: &Path) -> DataConfig {
    DataConfig {
        source: DataSource::Mnist,
        path: Some(dir.to_path_buf()),
        standardize: false,
        ..Default::default()
    }
}

fn err_of(cfg: &DataConfig, model: ModelKind) -> String {
    match data::load(cfg, model, 1) {
        Ok(_) => panic!("expected an error for {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_mnist_files_parse_with_and_without_gz() {
    for gz in [false, true] {
        let dir = temp_dir("mnist-ok");
        write_mnist(&dir, 9, gz);
        let s = data::load(&mnist_cfg(&dir), ModelKind::Mlp, 1).unwrap();
        assert_eq!(s.train.x.dim(), (9, 6));
        assert_eq!(s.test.x.dim(), (2, 6));
        assert_eq!(s.task, Task::Classification { n_classes: 3 });
        // Test set keeps file order: first image is pixels 0, 37, 74, ... / 255.
        assert_eq!(s.test.x[[0, 1]], 37.0 / 255.0);
        assert_eq!(s.test.y.to_vec(), vec![0.0, 1.0]);
        assert!(s.train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}

#[test]
fn truncated_idx_is_an_error_naming_the_file() {
    for gz in [false, true] {
        let dir = temp_dir("mnist-trunc");
        write_mnist(&dir, 9, false);
        // Header claims 9 images, data holds 5.
        let img = idx_bytes([0, 0, 8, 3], &[9, 2, 3], &[1u8; 30]);
        let name = if gz {
            "train-images-idx3-ubyte.gz"
        } else {
            "train-images-idx3-ubyte"
        };
        if gz {
            std::fs::remove_file(dir.join("train-images-idx3-ubyte")).unwrap();
        }
        write(&dir, name, &if gz { gzip(&img) } else { img });
        let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
        assert!(e.contains(name) && e.contains("truncated"), "{e}");
    }
}

#[test]
fn header_claiming_huge_data_fails_before_allocating() {
    let dir = temp_dir("mnist-huge");
    write_mnist(&dir, 4, false);
    let img = idx_bytes([0, 0, 8, 3], &[60_000, 28, 28], &[0u8; 10]);
    write(&dir, "train-images-idx3-ubyte", &img);
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(e.contains("truncated") && e.contains("47040000"), "{e}");
    // Absurd dimensions (product beyond the limit).
    let img = idx_bytes([0, 0, 8, 3], &[u32::MAX, u32::MAX, 28], &[0u8; 10]);
    write(&dir, "train-images-idx3-ubyte", &gzip(&img));
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(e.contains("absurd"), "{e}");
}

#[test]
fn bad_magic_and_count_mismatch() {
    let dir = temp_dir("mnist-magic");
    write_mnist(&dir, 4, false);
    write(
        &dir,
        "train-labels-idx1-ubyte",
        &idx_bytes([1, 2, 8, 1], &[4], &[0, 1, 2, 0]),
    );
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("magic"),
        "{e}"
    );
    write(
        &dir,
        "train-labels-idx1-ubyte",
        &idx_bytes([0, 0, 8, 1], &[3], &[0, 1, 2]),
    );
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(e.contains("3 labels") && e.contains('4'), "{e}");
    write(&dir, "train-labels-idx1-ubyte", b"");
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(e.contains("empty"), "{e}");
    write(&dir, "train-labels-idx1-ubyte", &[0, 0]);
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(e.contains("truncated"), "{e}");
    write_mnist(&dir, 4, false);
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    let e = err_of(&mnist_cfg(&dir), ModelKind::Mlp);
    assert!(
        e.contains("t10k-images-idx3-ubyte") && e.contains("not found"),
        "{e}"
    );
}

fn libsvm_cfg(train: &Path, test: Option<&Path>, n_features: usize) -> DataConfig {
    DataConfig {
        source: DataSource::Libsvm,
        path: Some(train.to_path_buf()),
        test_path: test.map(Path::to_path_buf),
        n_features,
        standardize: false,
        ..Default::default()
    }
}

#[test]
fn good_libsvm_maps_labels_and_infers_dimension() {
    let dir = temp_dir("svm-ok");
    let tr = write(&dir, "a.svm", b"-1 1:1 3:0.5 \n+1 2:2\n-1 3:1\n+1 1:1\n");
    let te = write(&dir, "a.t", &gzip(b"+1 2:1\n-1 1:3\n"));
    let s = data::load(&libsvm_cfg(&tr, Some(&te), 0), ModelKind::Logistic, 1).unwrap();
    assert_eq!(s.task, Task::Classification { n_classes: 2 });
    assert_eq!(s.class_values, vec![-1.0, 1.0]);
    assert_eq!(s.train.x.dim(), (4, 3));
    assert_eq!(s.test.x.dim(), (2, 3));
    assert_eq!(s.test.x.row(1).to_vec(), vec![3.0, 0.0, 0.0]);
    assert_eq!(s.test.y.to_vec(), vec![1.0, 0.0]);
    let mut ys = s.train.y.to_vec();
    ys.sort_by(f32::total_cmp);
    assert_eq!(ys, vec![0.0, 0.0, 1.0, 1.0]);
    // Regression keeps the values.
    let cfg = DataConfig {
        task: TaskKind::Regression,
        ..libsvm_cfg(&tr, Some(&te), 5)
    };
    let s = data::load(&cfg, ModelKind::Linear, 1).unwrap();
    assert_eq!(s.train.n_features(), 5);
    assert_eq!(s.test.y.to_vec(), vec![1.0, -1.0]);
}

#[test]
fn bad_libsvm_lines_name_file_and_line() {
    let dir = temp_dir("svm-bad");
    for (body, line) in [
        (&b"1 1:1\n1 3:abc\n"[..], 2),
        (b"1 1:1\n1 1:1 2\n", 2),
        (b"1 1:1\n\n1 0:1\n", 3),
        (b"one 1:1\n", 1),
    ] {
        let p = write(&dir, "bad.svm", body);
        let e = err_of(&libsvm_cfg(&p, None, 0), ModelKind::Logistic);
        assert!(e.contains(&format!("bad.svm:{line}")), "{e}");
    }
    // Index beyond a declared dimension, and beyond the training file's dimension.
    let tr = write(&dir, "tr.svm", b"0 1:1 2:1\n1 2:1\n");
    let p = write(&dir, "wide.svm", b"0 1:1\n1 7:1\n");
    let e = err_of(&libsvm_cfg(&p, None, 4), ModelKind::Logistic);
    assert!(e.contains("wide.svm:2") && e.contains("beyond"), "{e}");
    let e = err_of(&libsvm_cfg(&tr, Some(&p), 0), ModelKind::Logistic);
    assert!(
        e.contains("wide.svm:2") && e.contains("training file"),
        "{e}"
    );
    // Non-integer class label.
    let p = write(&dir, "frac.svm", b"0 1:1\n0.5 1:2\n1 1:1\n");
    let e = err_of(&libsvm_cfg(&p, None, 0), ModelKind::Softmax);
    assert!(
        e.contains("frac.svm:2") && e.contains("not an integer"),
        "{e}"
    );
    // Empty file.
    let p = write(&dir, "empty.svm", b"");
    let e = err_of(&libsvm_cfg(&p, None, 0), ModelKind::Logistic);
    assert!(e.contains("empty.svm") && e.contains("empty"), "{e}");
    // Three classes for a logistic model.
    let p = write(&dir, "three.svm", b"0 1:1\n1 1:2\n2 1:1\n");
    let e = err_of(&libsvm_cfg(&p, None, 0), ModelKind::Logistic);
    assert!(e.contains("model.kind") && e.contains("3 classes"), "{e}");
    // Missing file is an I/O error naming it.
    let e = err_of(
        &libsvm_cfg(&dir.join("nope.svm"), None, 0),
        ModelKind::Logistic,
    );
    assert!(e.contains("nope.svm"), "{e}");
}

fn csv_cfg(train: &Path, test: Option<&Path>) -> DataConfig {
    DataConfig {
        source: DataSource::Csv,
        path: Some(train.to_path_buf()),
        test_path: test.map(Path::to_path_buf),
        standardize: false,
        task: TaskKind::Regression,
        ..Default::default()
    }
}

#[test]
fn good_csv_parses_with_header_gzip_and_label_column() {
    let dir = temp_dir("csv-ok");
    let tr = write(
        &dir,
        "h.csv.gz",
        &gzip(b"a,b,target\n1,2,10\n3,4,20\n5,6,30\n"),
    );
    let te = write(&dir, "h_test.csv", b"a,b,target\n7,8,40\n");
    let cfg = DataConfig {
        skip_lines: 1,
        target_scale: 10.0,
        ..csv_cfg(&tr, Some(&te))
    };
    let s = data::load(&cfg, ModelKind::Linear, 1).unwrap();
    assert_eq!(s.task, Task::Regression);
    assert_eq!(s.test.x.row(0).to_vec(), vec![7.0, 8.0]);
    assert_eq!(s.test.y.to_vec(), vec![4.0]);
    let mut ys = s.train.y.to_vec();
    ys.sort_by(f32::total_cmp);
    assert_eq!(ys, vec![1.0, 2.0, 3.0]);
    // Label in the first column, whitespace separated, classification.
    let p = write(&dir, "w.txt", b"0 1.5 2\n1 3 4\n0 5 6\n1 7 8\n");
    let cfg = DataConfig {
        label_column: 0,
        task: TaskKind::Auto,
        ..csv_cfg(&p, None)
    };
    let s = data::load(&cfg, ModelKind::Softmax, 1).unwrap();
    assert_eq!(s.task, Task::Classification { n_classes: 2 });
    assert_eq!(s.train.len() + s.test.len(), 4);
}

#[test]
fn bad_csv_names_file_and_line() {
    let dir = temp_dir("csv-bad");
    let p = write(&dir, "cols.csv", b"1,2,3\n4,5,6\n7,8\n");
    let e = err_of(&csv_cfg(&p, None), ModelKind::Linear);
    assert!(
        e.contains("cols.csv:3") && e.contains("expected 3 columns"),
        "{e}"
    );
    let p = write(&dir, "num.csv", b"1,2,3\n4,five,6\n");
    let e = err_of(&csv_cfg(&p, None), ModelKind::Linear);
    assert!(e.contains("num.csv:2") && e.contains("five"), "{e}");
    let p = write(&dir, "empty.csv", b"\n\n");
    let e = err_of(&csv_cfg(&p, None), ModelKind::Linear);
    assert!(e.contains("empty.csv") && e.contains("empty"), "{e}");
    let p = write(&dir, "cls.csv", b"1,2,0\n4,5,1.5\n");
    let cfg = DataConfig {
        task: TaskKind::Classification,
        ..csv_cfg(&p, None)
    };
    let e = err_of(&cfg, ModelKind::Mlp);
    assert!(
        e.contains("cls.csv:2") && e.contains("not an integer"),
        "{e}"
    );
    let p = write(&dir, "bin.csv", &[0xff, 0xfe, 0x00, b'\n']);
    let e = err_of(&csv_cfg(&p, None), ModelKind::Linear);
    assert!(e.contains("bin.csv"), "{e}");
}

#[test]
fn shards_cover_train_and_global_data_ignores_world_size() {
    let cfg = DataConfig::default(); // embedded digits
    let reference = data::load(&cfg, ModelKind::Mlp, 7).unwrap();
    let n = reference.train.len();
    for world in 1..=5 {
        // Every rank loads independently; the global split must be identical.
        let mut seen = vec![0u32; n];
        for rank in 0..world {
            let s = data::load(&cfg, ModelKind::Mlp, 7).unwrap();
            assert_eq!(s.train.x, reference.train.x);
            assert_eq!(s.test.y, reference.test.y);
            let sh = Sharder::new(n, rank, world, 7).unwrap();
            for i in sh.epoch_indices(0) {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "world {world}");
    }
    let e = Sharder::new(3, 0, 4, 1).unwrap_err().to_string();
    assert!(
        e.contains("4 ranks") && e.contains("3 training samples"),
        "{e}"
    );
}

#[test]
fn garbage_and_truncated_inputs_never_panic() {
    use rand::{Rng, RngCore};
    let dir = temp_dir("garbage");
    let mut r = vqsgd::rng::stream(1, vqsgd::rng::Purpose::Data, &[77]);
    let mut good = Vec::new();
    write_mnist(&dir, 5, true);
    good.push(std::fs::read(dir.join("train-images-idx3-ubyte.gz")).unwrap());
    good.push(b"1 1:0.5 3:2\n-1 2:1\n".to_vec());
    good.push(b"1,2,3\n4,5,6\n".to_vec());
    for case in 0..300 {
        let bytes: Vec<u8> = if case < 150 {
            let len = r.random_range(0..64);
            let alphabet = b"0123456789 :,.-+e\n\tx#";
            (0..len)
                .map(|_| {
                    if r.random_bool(0.9) {
                        alphabet[r.random_range(0..alphabet.len())]
                    } else {
                        r.next_u32() as u8
                    }
                })
                .collect()
        } else {
            // A prefix of a good file, possibly with one byte flipped.
            let g = &good[case % good.len()];
            let mut b = g[..r.random_range(0..=g.len())].to_vec();
            if !b.is_empty() && r.random_bool(0.5) {
                let i = r.random_range(0..b.len());
                b[i] ^= 1 << r.random_range(0..8);
            }
            b
        };
        let p = write(&dir, "g.dat", &bytes);
        let _ = data::load(&libsvm_cfg(&p, None, 0), ModelKind::Softmax, 1);
        let _ = data::load(&csv_cfg(&p, None), ModelKind::Linear, 1);
        let _ = data::idx::read_idx(&p);
        write(&dir, "train-images-idx3-ubyte.gz", &bytes);
        let _ = data::load(&mnist_cfg(&dir), ModelKind::Mlp, 1);
    }
}

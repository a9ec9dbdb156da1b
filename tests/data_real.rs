//! Shapes and labels of the real data sets under `VQSGD_DATASETS` (default
//! `<CARGO_MANIFEST_DIR>/../shared/datasets`). Skipped, with a `SKIP:` line on stderr, when a
//! data set is not there.

use std::path::PathBuf;

use vqsgd::config::{DataConfig, DataSource, ModelKind, TaskKind};
use vqsgd::data::{self, Task};

fn datasets() -> PathBuf {
    std::env::var_os("VQSGD_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"))
}

/// The path of a data set file or directory, or `None` (after printing `SKIP:`) if absent.
fn find(rel: &str) -> Option<PathBuf> {
    let p = datasets().join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: {} not found (set VQSGD_DATASETS)", p.display());
        None
    }
}

#[test]
fn mnist_shapes() {
    let Some(dir) = find("mnist") else { return };
    let cfg = DataConfig {
        source: DataSource::Mnist,
        path: Some(dir),
        ..Default::default()
    };
    let s = data::load(&cfg, ModelKind::Mlp, 1).unwrap();
    assert_eq!(s.train.x.dim(), (60_000, 784));
    assert_eq!(s.test.x.dim(), (10_000, 784));
    assert_eq!(s.task, Task::Classification { n_classes: 10 });
    let mut counts = [0usize; 10];
    for &y in &s.test.y {
        counts[y as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
fn a9a_shapes_and_labels() {
    let (Some(tr), Some(te)) = (find("a9a/a9a"), find("a9a/a9a.t")) else {
        return;
    };
    let cfg = DataConfig {
        source: DataSource::Libsvm,
        path: Some(tr),
        test_path: Some(te),
        n_features: 123,
        ..Default::default()
    };
    let s = data::load(&cfg, ModelKind::Logistic, 1).unwrap();
    assert_eq!(s.train.x.dim(), (32_561, 123));
    assert_eq!(s.test.x.dim(), (16_281, 123));
    assert_eq!(s.class_values, vec![-1.0, 1.0]);
    let pos = s.train.y.iter().filter(|&&y| y == 1.0).count();
    assert!(s.train.y.iter().all(|&y| y == 0.0 || y == 1.0));
    assert_eq!(pos, 7_841);
    // Without n_features the dimension is inferred from the training file (123 as well).
    let s = data::load(
        &DataConfig {
            n_features: 0,
            ..cfg
        },
        ModelKind::Logistic,
        1,
    )
    .unwrap();
    assert_eq!(s.test.n_features(), 123);
}

#[test]
fn california_split() {
    let Some(p) = find("california-housing/cal_housing.data") else {
        return;
    };
    let cfg = DataConfig {
        source: DataSource::Csv,
        path: Some(p),
        target_scale: 1e5,
        task: TaskKind::Regression,
        ..Default::default()
    };
    let s = data::load(&cfg, ModelKind::Linear, 1).unwrap();
    assert_eq!(s.task, Task::Regression);
    assert_eq!(s.train.len() + s.test.len(), 20_640);
    assert_eq!(s.test.len(), 4_128);
    assert_eq!(s.train.n_features(), 8);
    assert!(s.train.y.iter().all(|&y| (0.1..=5.1).contains(&y)));
    let mean: f64 = s.train.x.column(0).iter().map(|&v| v as f64).sum::<f64>() / 16_512.0;
    assert!(mean.abs() < 1e-4, "standardised column mean {mean}");
}

#[test]
fn mushrooms_labels() {
    let Some(p) = find("mushrooms/mushrooms") else {
        return;
    };
    let cfg = DataConfig {
        source: DataSource::Libsvm,
        path: Some(p),
        ..Default::default()
    };
    let s = data::load(&cfg, ModelKind::Logistic, 1).unwrap();
    assert_eq!(s.class_values, vec![1.0, 2.0]);
    assert_eq!(s.train.len() + s.test.len(), 8_124);
}

#[test]
fn digits_embedded() {
    let s = data::load(&DataConfig::default(), ModelKind::Softmax, 1).unwrap();
    assert_eq!(s.name, "digits");
    assert_eq!(s.train.len() + s.test.len(), 1_797);
    assert_eq!(s.train.n_features(), 64);
    assert_eq!(s.task, Task::Classification { n_classes: 10 });
}

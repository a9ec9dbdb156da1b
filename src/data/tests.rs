//! Unit tests of `load`: task resolution, label mapping, splitting and standardisation.

use super::*;

fn synth_cfg(source: DataSource, n: usize) -> DataConfig {
    DataConfig {
        source,
        n_samples: n,
        synthetic_features: 6,
        n_classes: 3,
        ..Default::default()
    }
}

#[test]
fn digits_split_is_seeded_and_complete() {
    let cfg = DataConfig::default();
    let a = load(&cfg, ModelKind::Mlp, 1).unwrap();
    assert_eq!(a.task, Task::Classification { n_classes: 10 });
    assert_eq!(a.train.len() + a.test.len(), 1797);
    assert_eq!(a.test.len(), (1797.0f64 * 0.2).round() as usize);
    assert_eq!(a.train.n_features(), 64);
    let b = load(&cfg, ModelKind::Mlp, 1).unwrap();
    assert_eq!(a.train.x, b.train.x);
    assert_eq!(a.test.y, b.test.y);
    let c = load(&cfg, ModelKind::Mlp, 2).unwrap();
    assert_ne!(a.train.y, c.train.y);
}

#[test]
fn standardize_uses_train_stats_and_zeroes_constants() {
    let mut tr = Array2::from_shape_vec((3, 2), vec![1., 5., 2., 5., 3., 5.]).unwrap();
    let mut te = Array2::from_shape_vec((1, 2), vec![4., 7.]).unwrap();
    standardize(&mut tr, &mut te).unwrap();
    let s = (2.0f64 / 3.0).sqrt();
    assert!((tr[[0, 0]] as f64 + 1.0 / s).abs() < 1e-6);
    assert!((te[[0, 0]] as f64 - 2.0 / s).abs() < 1e-6);
    assert_eq!(tr.column(1).to_vec(), vec![0.0; 3]);
    assert_eq!(te[[0, 1]], 0.0);
}

#[test]
fn standardize_refuses_a_test_outlier_beyond_f32() {
    // Training spread 0.5, test value 3e38: 6e38 standard deviations, not an f32.
    let mut tr = Array2::from_shape_vec((2, 2), vec![0., 1., 1., 1.]).unwrap();
    let mut te = Array2::from_shape_vec((2, 2), vec![0.5, 1., 3e38, 1.]).unwrap();
    let (tr0, te0) = (tr.clone(), te.clone());
    let u = standardize(&mut tr, &mut te).unwrap_err();
    assert_eq!((u.test, u.row, u.col, u.value), (true, 1, 0, 3e38));
    assert_eq!((u.mean, u.std), (0.5, 0.5));
    assert_eq!((tr, te), (tr0, te0), "nothing changed on error");
}

#[test]
fn synthetic_tasks_and_max_train() {
    let mut cfg = synth_cfg(DataSource::SyntheticRegression, 500);
    let s = load(&cfg, ModelKind::Mlp, 5).unwrap();
    assert_eq!(s.task, Task::Regression);
    assert_eq!((s.train.len(), s.test.len()), (400, 100));
    cfg.max_train = 50;
    cfg.standardize = false;
    let t = load(&cfg, ModelKind::Linear, 5).unwrap();
    assert_eq!(t.train.len(), 50);
    assert_eq!(t.test.len(), 100);
    let c = load(
        &synth_cfg(DataSource::SyntheticClassification, 500),
        ModelKind::Softmax,
        5,
    )
    .unwrap();
    assert_eq!(c.task, Task::Classification { n_classes: 3 });
    assert!(c.train.y.iter().all(|&v| v == 0.0 || v == 1.0 || v == 2.0));
}

#[test]
fn logistic_needs_two_classes() {
    let cfg = synth_cfg(DataSource::SyntheticClassification, 300);
    let e = load(&cfg, ModelKind::Logistic, 1).unwrap_err().to_string();
    assert!(e.contains("model.kind") && e.contains("3 classes"), "{e}");
    let cfg = DataConfig {
        n_classes: 2,
        ..cfg
    };
    assert_eq!(
        load(&cfg, ModelKind::Logistic, 1).unwrap().task.n_classes(),
        Some(2)
    );
}

#[test]
fn target_scale_divides_regression_targets() {
    let cfg = DataConfig {
        standardize: false,
        ..synth_cfg(DataSource::SyntheticRegression, 100)
    };
    let a = load(&cfg, ModelKind::Linear, 3).unwrap();
    let b = load(
        &DataConfig {
            target_scale: 4.0,
            ..cfg
        },
        ModelKind::Linear,
        3,
    )
    .unwrap();
    for (u, v) in a.train.y.iter().zip(b.train.y.iter()) {
        assert!((u / 4.0 - v).abs() <= 1e-6 * u.abs().max(1.0));
    }
}

#[test]
fn gather_reuses_buffers() {
    let s = load(&DataConfig::default(), ModelKind::Mlp, 1).unwrap();
    let mut x = Array2::zeros((0, 0));
    let mut y = Array1::zeros(0);
    s.train.gather_into(&[3, 1, 4], &mut x, &mut y);
    assert_eq!(x.row(1), s.train.x.row(1));
    assert_eq!(y[2], s.train.y[4]);
    let mut buf = BatchBuffer::new();
    let (bx, by) = s.train.gather(&[7, 0], &mut buf);
    assert_eq!(bx.row(0), s.train.x.row(7));
    assert_eq!(by[1], s.train.y[0]);
}

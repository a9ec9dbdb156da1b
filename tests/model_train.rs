//! Training sanity: a few hundred steps of plain minibatch SGD on synthetic problems (and the
//! embedded digits) decrease the loss of every model; plus a speed smoke test of the MNIST-size
//! MLP.

use vqsgd::config::{DataConfig, DataSource, ModelConfig, ModelKind};
use vqsgd::data::{self, BatchBuffer, Sharder, Split};
use vqsgd::model::{self, Model};

/// Run `epochs` of plain SGD on rank 0 of 1 and return (initial, final) test loss.
fn train(split: &Split, m: &mut dyn Model, lr: f32, epochs: u64, batch: usize) -> (f64, f64) {
    let mut p = m.init_params(3);
    let before = m
        .evaluate(&p, split.test.x.view(), split.test.y.view())
        .loss;
    let sh = Sharder::new(split.train.len(), 0, 1, 3).unwrap();
    let mut g = vec![0f32; m.n_params()];
    let mut buf = BatchBuffer::new();
    for epoch in 0..epochs {
        let idx = sh.epoch_indices(epoch);
        for t in 0..sh.steps_per_epoch(batch) {
            let (x, y) = split.train.gather(sh.batch(&idx, t, batch), &mut buf);
            let l = m.loss_grad(&p, x, y, &mut g, &mut |_, _| {});
            assert!(l.is_finite());
            for (w, d) in p.iter_mut().zip(&g) {
                *w -= lr * d;
            }
        }
    }
    let after = m.evaluate(&p, split.test.x.view(), split.test.y.view());
    (before, after.loss)
}

fn synth(source: DataSource, classes: usize) -> DataConfig {
    DataConfig {
        source,
        n_samples: 2_000,
        synthetic_features: 10,
        n_classes: classes,
        noise: 0.05,
        ..Default::default()
    }
}

#[test]
fn sgd_decreases_loss_for_every_model() {
    let cases = [
        (
            ModelKind::Linear,
            vec![],
            synth(DataSource::SyntheticRegression, 2),
            0.05,
        ),
        (
            ModelKind::Mlp,
            vec![16],
            synth(DataSource::SyntheticRegression, 2),
            0.02,
        ),
        (
            ModelKind::Logistic,
            vec![],
            synth(DataSource::SyntheticClassification, 2),
            0.5,
        ),
        (
            ModelKind::Softmax,
            vec![],
            synth(DataSource::SyntheticClassification, 4),
            0.5,
        ),
        (
            ModelKind::Mlp,
            vec![32],
            synth(DataSource::SyntheticClassification, 4),
            0.1,
        ),
        (ModelKind::Mlp, vec![32, 16], DataConfig::default(), 0.1),
    ];
    for (kind, hidden, cfg, lr) in cases {
        let split = data::load(&cfg, kind, 5).unwrap();
        let mut m = model::build(
            &ModelConfig { kind, hidden },
            split.train.n_features(),
            split.task,
        )
        .unwrap();
        let (before, after) = train(&split, m.as_mut(), lr, 5, 32);
        eprintln!(
            "{} on {}: {before:.4} -> {after:.4}",
            m.describe(),
            split.name
        );
        assert!(
            after < 0.5 * before,
            "{}: {before} -> {after}",
            m.describe()
        );
    }
}

#[test]
fn mnist_sized_mlp_steps_are_fast() {
    use ndarray::{Array1, Array2};
    let task = data::Task::Classification { n_classes: 10 };
    let cfg = ModelConfig {
        kind: ModelKind::Mlp,
        hidden: vec![128],
    };
    let mut m = model::build(&cfg, 784, task).unwrap();
    let x = Array2::from_shape_fn((64, 784), |(i, j)| ((i * 31 + j * 7) % 256) as f32 / 255.0);
    let y = Array1::from_shape_fn(64, |i| (i % 10) as f32);
    let mut p = m.init_params(1);
    let mut g = vec![0f32; m.n_params()];
    let steps = 200;
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        m.loss_grad(&p, x.view(), y.view(), &mut g, &mut |_, _| {});
        for (w, d) in p.iter_mut().zip(&g) {
            *w -= 0.01 * d;
        }
    }
    let per_step = t0.elapsed().as_secs_f64() / steps as f64;
    eprintln!("mlp 784-128-10, batch 64: {:.3} ms/step", per_step * 1e3);
    // Generous bound (shared CI cores); the typical figure is about 1 ms.
    assert!(per_step < 0.05, "{per_step} s per step");
}

//! Unit tests of the models: finite-difference gradient checks, `ready` ranges, determinism
//! and `build` errors.

use ndarray::{Array1, Array2};
use rand::Rng as _;
use rand_distr::StandardNormal;

use super::*;
use crate::rng::{self, Purpose};

/// Central-difference step (f32 parameters).
const FD_STEP: f32 = 1e-3;
/// Absolute tolerance on |finite difference - analytic| (f32 forward pass noise / step).
const FD_ABS_TOL: f64 = 4e-4;
/// Relative tolerance on |finite difference - analytic|.
const FD_REL_TOL: f64 = 1e-2;
/// One-sided differences disagreeing by more than this flag a ReLU kink inside the step.
const KINK_GAP: f64 = 0.05;
/// At most this many coordinates may be skipped because of a kink.
const MAX_KINK_SKIPS: usize = 2;

fn random_data(n: usize, d: usize, task: Task, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut r = rng::stream(seed, Purpose::Data, &[99]);
    let x = Array2::from_shape_fn((n, d), |_| r.sample::<f32, _>(StandardNormal));
    let y = Array1::from_shape_fn(n, |i| match task {
        Task::Regression => r.sample::<f32, _>(StandardNormal),
        Task::Classification { n_classes } => (i % n_classes) as f32,
    });
    (x, y)
}

/// Parameters with non-zero biases and weights, so every coordinate matters.
fn random_params(m: &dyn Model, seed: u64) -> Vec<f32> {
    let mut r = rng::stream(seed, Purpose::Init, &[7]);
    (0..m.n_params())
        .map(|_| 0.5 * r.sample::<f32, _>(StandardNormal))
        .collect()
}

fn loss_at(m: &mut dyn Model, p: &[f32], x: &Array2<f32>, y: &Array1<f32>) -> f64 {
    m.evaluate(p, x.view(), y.view()).loss
}

fn check_gradient(kind: ModelKind, hidden: Vec<usize>, task: Task) {
    let (n, d) = (6, 4);
    let cfg = ModelConfig { kind, hidden };
    let mut m = build(&cfg, d, task).unwrap();
    let (x, y) = random_data(n, d, task, 1);
    let mut p = random_params(m.as_ref(), 2);
    let mut g = vec![f32::NAN; m.n_params()];
    let loss = m.loss_grad(&p, x.view(), y.view(), &mut g, &mut |_, _| {});
    let eval = loss_at(m.as_mut(), &p, &x, &y);
    assert!(
        (loss - eval).abs() <= 1e-9 * loss.abs().max(1.0),
        "{loss} vs {eval}"
    );
    let mut skips = 0;
    for i in 0..p.len() {
        let orig = p[i];
        p[i] = orig + FD_STEP;
        let up = loss_at(m.as_mut(), &p, &x, &y);
        p[i] = orig - FD_STEP;
        let down = loss_at(m.as_mut(), &p, &x, &y);
        p[i] = orig;
        let h = (orig + FD_STEP) as f64 - orig as f64;
        let fd = (up - down) / (2.0 * h);
        let an = g[i] as f64;
        if (fd - an).abs() > FD_ABS_TOL + FD_REL_TOL * an.abs() {
            let right = (up - loss) / h;
            let left = (loss - down) / h;
            if (right - left).abs() > KINK_GAP && skips < MAX_KINK_SKIPS {
                skips += 1;
                continue;
            }
            panic!(
                "{}: d/dp[{i}] analytic {an} vs finite difference {fd}",
                m.describe()
            );
        }
    }
}

#[test]
fn gradient_linear() {
    check_gradient(ModelKind::Linear, vec![], Task::Regression);
}

#[test]
fn gradient_logistic() {
    check_gradient(
        ModelKind::Logistic,
        vec![],
        Task::Classification { n_classes: 2 },
    );
}

#[test]
fn gradient_softmax() {
    check_gradient(
        ModelKind::Softmax,
        vec![],
        Task::Classification { n_classes: 3 },
    );
}

#[test]
fn gradient_mlp_classification() {
    check_gradient(
        ModelKind::Mlp,
        vec![5, 3],
        Task::Classification { n_classes: 3 },
    );
}

#[test]
fn gradient_mlp_regression() {
    check_gradient(ModelKind::Mlp, vec![4], Task::Regression);
}

#[test]
fn ready_ranges_cover_once_last_layer_first() {
    for (kind, hidden, task) in [
        (
            ModelKind::Mlp,
            vec![5, 4, 3],
            Task::Classification { n_classes: 3 },
        ),
        (
            ModelKind::Softmax,
            vec![],
            Task::Classification { n_classes: 3 },
        ),
        (ModelKind::Linear, vec![], Task::Regression),
    ] {
        let depth = hidden.len() + 1;
        let mut m = build(&ModelConfig { kind, hidden }, 4, task).unwrap();
        let (x, y) = random_data(7, 4, task, 3);
        let p = random_params(m.as_ref(), 4);
        let mut g = vec![0f32; m.n_params()];
        let mut seen = vec![0u32; m.n_params()];
        let mut ranges = Vec::new();
        let mut copies = Vec::new();
        m.loss_grad(&p, x.view(), y.view(), &mut g, &mut |r, s| {
            assert_eq!(r.len(), s.len());
            for i in r.clone() {
                seen[i] += 1;
            }
            copies.push(s.to_vec());
            ranges.push(r);
        });
        assert!(seen.iter().all(|&c| c == 1), "{}: {seen:?}", m.describe());
        assert_eq!(ranges.len(), depth);
        assert!(
            ranges.windows(2).all(|w| w[0].start == w[1].end),
            "{ranges:?}"
        );
        assert_eq!(ranges.last().map(|r| r.start), Some(0));
        for (r, c) in ranges.iter().zip(&copies) {
            assert_eq!(
                &g[r.clone()],
                &c[..],
                "slice passed to ready is the final gradient"
            );
        }
        // Layers: weight then bias per layer, contiguous, covering everything.
        let layers = m.layers();
        assert_eq!(layers.len(), 2 * depth);
        let mut next = 0;
        for l in layers {
            assert_eq!(l.range.start, next);
            next = l.range.end;
        }
        assert_eq!(next, m.n_params());
    }
}

#[test]
fn deterministic_and_overwrites_grad() {
    let task = Task::Classification { n_classes: 10 };
    let cfg = ModelConfig {
        kind: ModelKind::Mlp,
        hidden: vec![32, 16],
    };
    let (x, y) = random_data(50, 20, task, 5);
    let mut a = build(&cfg, 20, task).unwrap();
    let mut b = build(&cfg, 20, task).unwrap();
    let p = a.init_params(11);
    assert_eq!(p, b.init_params(11));
    assert_ne!(p, b.init_params(12));
    let mut ga = vec![f32::NAN; a.n_params()];
    let mut gb = vec![1e30f32; b.n_params()];
    let la = a.loss_grad(&p, x.view(), y.view(), &mut ga, &mut |_, _| {});
    // A different batch size first must not change the result.
    let mut tmp = vec![0f32; b.n_params()];
    b.loss_grad(
        &p,
        x.slice(ndarray::s![..7, ..]),
        y.slice(ndarray::s![..7]),
        &mut tmp,
        &mut |_, _| {},
    );
    let lb = b.loss_grad(&p, x.view(), y.view(), &mut gb, &mut |_, _| {});
    assert_eq!(la.to_bits(), lb.to_bits());
    assert!(ga.iter().zip(&gb).all(|(u, v)| u.to_bits() == v.to_bits()));
}

#[test]
fn evaluate_chunks_agree_with_one_pass() {
    let task = Task::Classification { n_classes: 3 };
    let cfg = ModelConfig {
        kind: ModelKind::Mlp,
        hidden: vec![8],
    };
    let (x, y) = random_data(2500, 5, task, 8);
    let mut m = build(&cfg, 5, task).unwrap();
    let p = m.init_params(1);
    let e = m.evaluate(&p, x.view(), y.view());
    let mut g = vec![0f32; m.n_params()];
    let l = m.loss_grad(&p, x.view(), y.view(), &mut g, &mut |_, _| {});
    assert!((e.loss - l).abs() < 1e-9 * l, "{} vs {l}", e.loss);
    let acc = e.accuracy.unwrap();
    assert!((0.0..=1.0).contains(&acc));
}

#[test]
fn describe_and_sizes() {
    let task = Task::Classification { n_classes: 10 };
    let m = build(
        &ModelConfig {
            kind: ModelKind::Mlp,
            hidden: vec![128],
        },
        784,
        task,
    )
    .unwrap();
    assert_eq!(m.describe(), "mlp 784-128-10 (101770 params)");
    assert_eq!(m.layers()[0].name, "fc1.weight");
    let m = build(
        &ModelConfig {
            kind: ModelKind::Softmax,
            hidden: vec![],
        },
        64,
        task,
    )
    .unwrap();
    assert_eq!(m.n_params(), 650);
    assert_eq!(m.layers()[1].name, "bias");
    assert!(m.init_params(1).iter().all(|&v| v == 0.0));
}

#[test]
fn mismatches_are_config_errors() {
    let reg = Task::Regression;
    let three = Task::Classification { n_classes: 3 };
    let cases = [
        (ModelKind::Softmax, reg),
        (ModelKind::Logistic, reg),
        (ModelKind::Logistic, three),
        (ModelKind::Linear, three),
    ];
    for (kind, task) in cases {
        let e = build(
            &ModelConfig {
                kind,
                hidden: vec![],
            },
            4,
            task,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("model.kind"), "{kind:?}/{task:?}: {e}");
    }
    let huge = ModelConfig {
        kind: ModelKind::Mlp,
        hidden: vec![1 << 20, 1 << 20],
    };
    let e = build(&huge, 1 << 20, three).err().unwrap().to_string();
    assert!(e.contains("parameters"), "{e}");
    assert!(build(&ModelConfig::default(), 0, three).is_err());
}

#[test]
fn memory_check_names_the_key_and_the_sizes() {
    use crate::model::check_memory;
    check_memory(1000, 16, 4, 1 << 20).unwrap();
    let e = check_memory(1_000_000_000, 16, 4, 24 << 30)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.hidden") && e.contains("1000000000 parameters") && e.contains("64.0 GB"),
        "{e}"
    );
    assert!(check_memory(usize::MAX, 40, usize::MAX, u64::MAX - 1).is_err());
}

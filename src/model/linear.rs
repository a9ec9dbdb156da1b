//! Linear, logistic and softmax regression: the output heads (loss functions) and the
//! depth-0 networks built from them.
//!
//! A generalised linear model is a [`Mlp`] without hidden layers: one weight matrix `d x k`
//! then one bias `k`, in that order in the flat vector. What distinguishes the three models is
//! the [`Head`] applied to the outputs `z`:
//!
//! - [`Head::Squared`]: `(z - y)^2 / 2`, one output, regression;
//! - [`Head::Logistic`]: binary cross-entropy of `sigmoid(z)` against `y` in {0, 1}, computed as
//!   `softplus(z) - y z` (never overflows), one output;
//! - [`Head::Softmax`]: multiclass cross-entropy via log-sum-exp with the row maximum
//!   subtracted, `k` outputs.
//!
//! Per-row losses are accumulated in f64; gradients are f32.

use super::mlp::Mlp;
use crate::Result;

/// The loss applied to the network outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Squared loss `(z - y)^2 / 2` on one output.
    Squared,
    /// Binary cross-entropy on one logit, labels 0/1.
    Logistic,
    /// Softmax cross-entropy over `classes` logits, labels `0..classes`.
    Softmax {
        /// Number of classes.
        classes: usize,
    },
}

/// The class index a label encodes. Labels come from the data loader, which guarantees
/// integers in `0..k`; anything else is a broken internal invariant.
#[inline]
fn class_of(y: f32, k: usize) -> usize {
    let c = y as usize;
    assert!(
        y >= 0.0 && c as f32 == y && c < k,
        "label {y} is not a class index in 0..{k}"
    );
    c
}

/// `ln(1 + e^x)` without overflow.
#[inline]
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-x)` without overflow.
#[inline]
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Head {
    /// Number of network outputs this head reads.
    pub fn n_outputs(self) -> usize {
        match self {
            Head::Squared | Head::Logistic => 1,
            Head::Softmax { classes } => classes,
        }
    }

    /// True for the classification heads (accuracy is defined).
    pub fn is_classifier(self) -> bool {
        !matches!(self, Head::Squared)
    }

    /// Short name used in model descriptions.
    pub fn model_name(self) -> &'static str {
        match self {
            Head::Squared => "linear regression",
            Head::Logistic => "logistic regression",
            Head::Softmax { .. } => "softmax regression",
        }
    }

    /// Loss of one row of outputs `z` against label `y` (f64), and whether it is classified
    /// correctly (always false for regression).
    #[inline]
    pub fn row_loss(self, z: &[f32], y: f32) -> (f64, bool) {
        match self {
            Head::Squared => {
                let r = z[0] as f64 - y as f64;
                (0.5 * r * r, false)
            }
            Head::Logistic => {
                let t = class_of(y, 2) as f64;
                let zz = z[0] as f64;
                (softplus(zz) - t * zz, (zz > 0.0) == (t == 1.0))
            }
            Head::Softmax { classes } => {
                let c = class_of(y, classes);
                let mut arg = 0;
                let mut m = f32::NEG_INFINITY;
                for (j, &v) in z.iter().enumerate() {
                    if v > m {
                        m = v;
                        arg = j;
                    }
                }
                let s: f64 = z.iter().map(|&v| (v as f64 - m as f64).exp()).sum();
                (s.ln() - (z[c] as f64 - m as f64), arg == c)
            }
        }
    }

    /// Sum of the per-row losses of `z` (`n x n_outputs`, row-major) against `y`, writing
    /// `scale * d(loss_row)/dz` into `delta` (same shape as `z`).
    pub fn loss_delta(self, z: &[f32], y: &[f32], delta: &mut [f32], scale: f32) -> f64 {
        let k = self.n_outputs();
        let mut total = 0f64;
        for ((zr, dr), &yi) in z.chunks_exact(k).zip(delta.chunks_exact_mut(k)).zip(y) {
            match self {
                Head::Squared => {
                    let r = zr[0] as f64 - yi as f64;
                    total += 0.5 * r * r;
                    dr[0] = r as f32 * scale;
                }
                Head::Logistic => {
                    let t = class_of(yi, 2) as f64;
                    let zz = zr[0] as f64;
                    total += softplus(zz) - t * zz;
                    dr[0] = ((sigmoid(zz) - t) as f32) * scale;
                }
                Head::Softmax { classes } => {
                    let c = class_of(yi, classes);
                    let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                    let mut s = 0f64;
                    for (d, &v) in dr.iter_mut().zip(zr) {
                        let e = (v as f64 - m).exp();
                        *d = e as f32;
                        s += e;
                    }
                    total += s.ln() - (zr[c] as f64 - m);
                    let inv = (1.0 / s) as f32;
                    for d in dr.iter_mut() {
                        *d *= inv * scale;
                    }
                    dr[c] -= scale;
                }
            }
        }
        total
    }
}

/// A linear model (`d` inputs, no hidden layer) with the given head.
pub fn linear_model(n_features: usize, head: Head) -> Result<Mlp> {
    Mlp::new(head.model_name(), vec![n_features, head.n_outputs()], head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_for_huge_logits() {
        let (l, ok) = Head::Logistic.row_loss(&[1000.0], 0.0);
        assert!((l - 1000.0).abs() < 1e-9 && !ok);
        let (l, _) = Head::Logistic.row_loss(&[-1000.0], 0.0);
        assert!(l.abs() < 1e-12);
        let h = Head::Softmax { classes: 3 };
        let (l, ok) = h.row_loss(&[1e4, -1e4, 0.0], 0.0);
        assert!(l.abs() < 1e-9 && ok);
        let mut d = [0f32; 3];
        let t = h.loss_delta(&[1e4, -1e4, 0.0], &[1.0], &mut d, 1.0);
        assert!((t - 2e4).abs() < 1e-6);
        assert!(d.iter().all(|v| v.is_finite()));
        assert_eq!(d, [1.0, -1.0, 0.0]);
    }
}

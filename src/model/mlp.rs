//! Fully connected networks over a flat parameter vector: the MLP (ReLU hidden layers) and,
//! with no hidden layer, the linear models of [`super::linear`].
//!
//! Layout of the flat vector, layer by layer: `W_l` (`in x out`, row-major) then `b_l` (`out`),
//! so each layer's weights and bias form one contiguous range, reported to `ready` as soon as
//! backpropagation has finished it (last layer first). Forward: `Z_l = A_l W_l + b_l`,
//! `A_{l+1} = relu(Z_l)`; the head turns the last `Z` into the loss and its gradient.
//!
//! All matrix products are ndarray `general_mat_mul` on views into the flat slices and into
//! scratch buffers that only grow, so a training step allocates nothing once the largest batch
//! has been seen. Single-threaded and free of hash-order dependence: bit-identical results for
//! identical inputs.

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};
use rand::Rng as _;
use rand_distr::StandardNormal;

use super::linear::Head;
use super::{Eval, Layer, Model};
use crate::config::limits;
use crate::rng::{self, Purpose};
use crate::{Error, Result};

/// Rows per chunk in [`Model::evaluate`] (bounds scratch memory).
pub const EVAL_CHUNK: usize = 1024;

/// A fully connected ReLU network with a loss head.
#[derive(Clone, Debug)]
pub struct Mlp {
    label: &'static str,
    widths: Vec<usize>,
    head: Head,
    layers: Vec<Layer>,
    /// Per layer: (weight range, bias range).
    ranges: Vec<(Range<usize>, Range<usize>)>,
    n_params: usize,
    /// `acts[l]`: output of layer `l` (post-ReLU for hidden layers, raw outputs for the last).
    acts: Vec<Vec<f32>>,
    /// `deltas[l]`: gradient of the loss with respect to `Z_l`.
    deltas: Vec<Vec<f32>>,
}

impl Mlp {
    /// A network with layer widths `widths` (`[inputs, hidden..., outputs]`) and a head whose
    /// output count must equal the last width. `label` names the model in descriptions.
    pub fn new(label: &'static str, widths: Vec<usize>, head: Head) -> Result<Self> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(Error::config(
                "model.hidden",
                format!("invalid layer widths {widths:?}"),
            ));
        }
        if widths.last() != Some(&head.n_outputs()) {
            return Err(Error::Other(format!(
                "internal: output width {:?} does not match the head's {} outputs",
                widths.last(),
                head.n_outputs()
            )));
        }
        let mut n = 0usize;
        let mut ranges = Vec::new();
        let mut layers = Vec::new();
        let depth = widths.len() - 1;
        for l in 0..depth {
            let too_big = || {
                Error::config(
                    "model.hidden",
                    format!(
                        "a network of widths {widths:?} has more than {} parameters",
                        limits::MAX_PARAMS
                    ),
                )
            };
            let w = widths[l].checked_mul(widths[l + 1]).ok_or_else(too_big)?;
            let wr = n..n.checked_add(w).ok_or_else(too_big)?;
            let br = wr.end..wr.end.checked_add(widths[l + 1]).ok_or_else(too_big)?;
            n = br.end;
            if n > limits::MAX_PARAMS {
                return Err(too_big());
            }
            let prefix = if depth == 1 {
                String::new()
            } else {
                format!("fc{}.", l + 1)
            };
            layers.push(Layer {
                name: format!("{prefix}weight"),
                range: wr.clone(),
            });
            layers.push(Layer {
                name: format!("{prefix}bias"),
                range: br.clone(),
            });
            ranges.push((wr, br));
        }
        Ok(Self {
            label,
            widths,
            head,
            layers,
            ranges,
            n_params: n,
            acts: vec![Vec::new(); depth],
            deltas: vec![Vec::new(); depth],
        })
    }

    /// Layer widths `[inputs, hidden..., outputs]`.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// The loss head.
    pub fn head(&self) -> Head {
        self.head
    }

    fn depth(&self) -> usize {
        self.widths.len() - 1
    }

    /// Forward pass of `x` (n rows); the outputs end up in `acts[depth-1][..n*out]`.
    fn forward(&mut self, params: &[f32], x: ArrayView2<f32>) {
        let n = x.nrows();
        let depth = self.depth();
        for l in 0..depth {
            let (din, dout) = (self.widths[l], self.widths[l + 1]);
            let (wr, br) = self.ranges[l].clone();
            let need = n * dout;
            if self.acts[l].len() < need {
                self.acts[l].resize(need, 0.0);
            }
            let (before, rest) = self.acts.split_at_mut(l);
            let out = &mut rest[0][..need];
            let b = &params[br];
            for row in out.chunks_exact_mut(dout) {
                row.copy_from_slice(b);
            }
            let w = ArrayView2::from_shape((din, dout), &params[wr])
                .expect("weight range is din x dout");
            let mut z = ArrayViewMut2::from_shape((n, dout), out).expect("buffer is n x dout");
            if l == 0 {
                general_mat_mul(1.0, &x, &w, 1.0, &mut z);
            } else {
                let a = ArrayView2::from_shape((n, din), &before[l - 1][..n * din])
                    .expect("buffer is n x din");
                general_mat_mul(1.0, &a, &w, 1.0, &mut z);
            }
            if l + 1 < depth {
                z.mapv_inplace(|v| v.max(0.0));
            }
        }
    }

    fn check_inputs(&self, params: &[f32], x: &ArrayView2<f32>, y: &ArrayView1<f32>) {
        assert_eq!(params.len(), self.n_params, "parameter vector length");
        assert_eq!(x.ncols(), self.widths[0], "feature count of the input");
        assert_eq!(x.nrows(), y.len(), "rows of x vs labels");
    }
}

/// Labels as a contiguous slice (copying only if the view is strided).
fn labels<'a>(y: &'a ArrayView1<'_, f32>) -> std::borrow::Cow<'a, [f32]> {
    match y.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(y.to_vec()),
    }
}

impl Model for Mlp {
    fn n_params(&self) -> usize {
        self.n_params
    }

    fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut p = vec![0f32; self.n_params];
        if self.depth() == 1 {
            return p; // linear models start at zero
        }
        let mut r = rng::stream(seed, Purpose::Init, &[]);
        let depth = self.depth();
        for (l, (wr, _)) in self.ranges.iter().enumerate() {
            let fan_in = self.widths[l] as f64;
            let fan_out = self.widths[l + 1] as f64;
            // He for layers feeding a ReLU, Glorot for the output layer.
            let sd = if l + 1 < depth {
                (2.0 / fan_in).sqrt()
            } else {
                (2.0 / (fan_in + fan_out)).sqrt()
            };
            for v in &mut p[wr.clone()] {
                *v = (sd * r.sample::<f64, _>(StandardNormal)) as f32;
            }
        }
        p
    }

    fn loss_grad(
        &mut self,
        params: &[f32],
        x: ArrayView2<f32>,
        y: ArrayView1<f32>,
        grad: &mut [f32],
        ready: &mut dyn FnMut(Range<usize>, &[f32]),
    ) -> f64 {
        self.check_inputs(params, &x, &y);
        assert_eq!(grad.len(), self.n_params, "gradient length");
        let n = x.nrows();
        let depth = self.depth();
        if n == 0 {
            grad.fill(0.0);
            for l in (0..depth).rev() {
                let r = self.ranges[l].0.start..self.ranges[l].1.end;
                ready(r.clone(), &grad[r]);
            }
            return 0.0;
        }
        self.forward(params, x);
        let ys = labels(&y);
        let k = self.widths[depth];
        for l in 0..depth {
            let need = n * self.widths[l + 1];
            if self.deltas[l].len() < need {
                self.deltas[l].resize(need, 0.0);
            }
        }
        let total = self.head.loss_delta(
            &self.acts[depth - 1][..n * k],
            &ys,
            &mut self.deltas[depth - 1][..n * k],
            1.0 / n as f32,
        );
        for l in (0..depth).rev() {
            let (din, dout) = (self.widths[l], self.widths[l + 1]);
            let (wr, br) = self.ranges[l].clone();
            let (lower, upper) = self.deltas.split_at_mut(l);
            let delta = &upper[0][..n * dout];
            let dz = ArrayView2::from_shape((n, dout), delta).expect("buffer is n x dout");
            {
                let mut gw = ArrayViewMut2::from_shape((din, dout), &mut grad[wr.clone()])
                    .expect("weight range is din x dout");
                if l == 0 {
                    general_mat_mul(1.0, &x.t(), &dz, 0.0, &mut gw);
                } else {
                    let a = ArrayView2::from_shape((n, din), &self.acts[l - 1][..n * din])
                        .expect("buffer is n x din");
                    general_mat_mul(1.0, &a.t(), &dz, 0.0, &mut gw);
                }
            }
            let gb = &mut grad[br.clone()];
            gb.fill(0.0);
            for row in delta.chunks_exact(dout) {
                for (g, &d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            let full = wr.start..br.end;
            ready(full.clone(), &grad[full]);
            if l > 0 {
                // dA_l = dZ_l W_l^T, then through the ReLU that produced A_l.
                let w = ArrayView2::from_shape((din, dout), &params[wr]).expect("weight shape");
                let prev = &mut lower[l - 1][..n * din];
                {
                    let mut da = ArrayViewMut2::from_shape((n, din), &mut prev[..])
                        .expect("buffer is n x din");
                    general_mat_mul(1.0, &dz, &w.t(), 0.0, &mut da);
                }
                for (d, &a) in prev.iter_mut().zip(&self.acts[l - 1][..n * din]) {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
        }
        total / n as f64
    }

    fn evaluate(&mut self, params: &[f32], x: ArrayView2<f32>, y: ArrayView1<f32>) -> Eval {
        self.check_inputs(params, &x, &y);
        let n = x.nrows();
        let classifier = self.head.is_classifier();
        if n == 0 {
            return Eval {
                loss: f64::NAN,
                accuracy: classifier.then_some(f64::NAN),
            };
        }
        let depth = self.depth();
        let k = self.widths[depth];
        let mut loss = 0f64;
        let mut correct = 0usize;
        let mut start = 0;
        while start < n {
            let end = (start + EVAL_CHUNK).min(n);
            let xs = x.slice(ndarray::s![start..end, ..]);
            self.forward(params, xs);
            let out = &self.acts[depth - 1][..(end - start) * k];
            for (z, i) in out.chunks_exact(k).zip(start..end) {
                let (l, ok) = self.head.row_loss(z, y[i]);
                loss += l;
                correct += usize::from(ok);
            }
            start = end;
        }
        Eval {
            loss: loss / n as f64,
            accuracy: classifier.then(|| correct as f64 / n as f64),
        }
    }

    fn describe(&self) -> String {
        let w: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        format!("{} {} ({} params)", self.label, w.join("-"), self.n_params)
    }
}

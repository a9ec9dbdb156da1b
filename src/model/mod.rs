//! Models over one flat parameter vector.
//!
//! A [`Model`] holds no parameters: the training loop owns one contiguous `Vec<f32>` (what the
//! gradient exchange, the checksum and checkpoints work on) and passes slices in. Models only
//! hold shapes and scratch buffers. Knows nothing about compression, MPI or where the data
//! came from.
//!
//! [`build`] turns a `[model]` config, the feature count and the [`Task`] into a model:
//! linear regression (squared loss), logistic regression (binary cross-entropy), softmax
//! regression (multiclass cross-entropy), or an MLP with ReLU hidden layers (softmax
//! cross-entropy for classification, squared loss on one output for regression).

pub mod linear;
pub mod mlp;

use std::ops::Range;

use ndarray::{ArrayView1, ArrayView2};

use crate::config::{ModelConfig, ModelKind};
use crate::data::Task;
use crate::{Error, Result};

pub use linear::Head;
pub use mlp::Mlp;

/// One named, contiguous range of the flat parameter vector (a weight matrix or a bias).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Name, e.g. `fc1.weight`.
    pub name: String,
    /// Range in the flat vector.
    pub range: Range<usize>,
}

/// Loss and quality on a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    /// Mean loss (squared error / 2 for regression, cross-entropy for classification).
    pub loss: f64,
    /// Fraction classified correctly (classification only).
    pub accuracy: Option<f64>,
}

/// A differentiable model whose parameters live in a flat `f32` slice owned by the caller.
///
/// Class labels passed in `y` must be class indices `0..n_classes` stored as f32 (what
/// [`crate::data::load`] produces); anything else is an internal error and panics.
pub trait Model: Send {
    /// Number of parameters.
    fn n_params(&self) -> usize;

    /// Named contiguous ranges of the flat vector, in order, covering `0..n_params` (weights
    /// and biases separately; each layer's weight is immediately followed by its bias).
    fn layers(&self) -> &[Layer];

    /// Initial parameters from `rng::stream(seed, Purpose::Init, &[])` (He/Glorot for the MLP,
    /// zeros for linear models).
    fn init_params(&self, seed: u64) -> Vec<f32>;

    /// Mean loss over the batch; writes the gradient of the mean loss into `grad` (overwrites;
    /// length `n_params`).
    ///
    /// `ready(range, &grad[range])` is called as soon as the gradient of that flat range is
    /// final, in backprop order: one contiguous range (weight then bias) per layer, last layer
    /// first. Models without depth call it once with `0..n_params`. Every index of
    /// `0..n_params` is reported exactly once.
    fn loss_grad(
        &mut self,
        params: &[f32],
        x: ArrayView2<f32>,
        y: ArrayView1<f32>,
        grad: &mut [f32],
        ready: &mut dyn FnMut(Range<usize>, &[f32]),
    ) -> f64;

    /// Loss and accuracy on a data set, processed in chunks to bound memory. An empty data
    /// set gives a NaN loss (and NaN accuracy for classifiers).
    fn evaluate(&mut self, params: &[f32], x: ArrayView2<f32>, y: ArrayView1<f32>) -> Eval;

    /// Short description, e.g. `"mlp 784-128-10 (101770 params)"`.
    fn describe(&self) -> String;
}

/// Build the model of `cfg` for `n_features` inputs and the given task.
///
/// Task/model mismatches (softmax or logistic on a regression task, logistic with more than
/// two classes, linear regression on class labels) are `model.kind` config errors; the
/// parameter count is checked against `config::limits::MAX_PARAMS` before any allocation.
pub fn build(cfg: &ModelConfig, n_features: usize, task: Task) -> Result<Box<dyn Model>> {
    if n_features == 0 {
        return Err(Error::config("model.kind", "the data set has no features"));
    }
    let head = match (cfg.kind, task) {
        (ModelKind::Linear, Task::Regression) => Head::Squared,
        (ModelKind::Linear, Task::Classification { n_classes }) => {
            return Err(Error::config(
                "model.kind",
                format!(
                    "linear regression needs a real-valued target but the task is classification \
                     with {n_classes} classes; use \"logistic\", \"softmax\" or \"mlp\", or set \
                     data.task = \"regression\" to fit the label values by least squares"
                ),
            ))
        }
        (ModelKind::Logistic, Task::Classification { n_classes: 2 }) => Head::Logistic,
        (ModelKind::Logistic, Task::Classification { n_classes }) => {
            return Err(Error::config(
                "model.kind",
                format!(
                    "logistic regression is binary but the data has {n_classes} classes; use \
                     \"softmax\" or \"mlp\""
                ),
            ))
        }
        (ModelKind::Softmax | ModelKind::Mlp, Task::Classification { n_classes }) => {
            if n_classes < 2 {
                return Err(Error::config(
                    "model.kind",
                    format!("classification needs at least 2 classes, the data has {n_classes}"),
                ));
            }
            Head::Softmax { classes: n_classes }
        }
        (ModelKind::Mlp, Task::Regression) => Head::Squared,
        (ModelKind::Logistic | ModelKind::Softmax, Task::Regression) => {
            return Err(Error::config(
                "model.kind",
                format!(
                    "\"{}\" is a classifier but the task is regression; use \"linear\" or \
                     \"mlp\", or set data.task = \"classification\" for integer labels",
                    format!("{:?}", cfg.kind).to_lowercase()
                ),
            ))
        }
    };
    let model = match cfg.kind {
        ModelKind::Mlp => {
            let mut widths = Vec::with_capacity(cfg.hidden.len() + 2);
            widths.push(n_features);
            widths.extend_from_slice(&cfg.hidden);
            widths.push(head.n_outputs());
            Mlp::new("mlp", widths, head)?
        }
        _ => linear::linear_model(n_features, head)?,
    };
    Ok(Box::new(model))
}

/// A lower bound of the bytes one rank holds per model parameter while training `cfg`: the
/// parameters, gradient and update (`f32` each), the momentum buffer, the compressor's
/// accumulator and the error-feedback memory, corrected gradient and decoded update.
pub fn bytes_per_param(cfg: &crate::config::Config) -> u64 {
    use crate::config::Scheme;
    let scheme = cfg.compression.scheme;
    let mut b = 12;
    if cfg.optim.momentum > 0.0 {
        b += 4;
    }
    if scheme != Scheme::Dense {
        b += 4;
    }
    if crate::feedback::needs_feedback(scheme) {
        b += 12;
    }
    b
}

/// Refuse a model whose parameter-sized buffers cannot fit: `ranks_here` ranks on one host,
/// each holding `n_params x bytes_per_param` bytes, against the host's `mem_total` bytes.
/// Checked before any of those buffers is allocated, so an oversized `model.hidden` is an
/// error naming the key instead of the out-of-memory killer.
pub fn check_memory(
    n_params: usize,
    bytes_per_param: u64,
    ranks_here: usize,
    mem_total: u64,
) -> Result<()> {
    let need = (n_params as u64)
        .saturating_mul(bytes_per_param)
        .saturating_mul(ranks_here.max(1) as u64);
    if need <= mem_total {
        return Ok(());
    }
    let gb = |b: u64| b as f64 / 1e9;
    Err(Error::config(
        "model.hidden",
        format!(
            "the model has {n_params} parameters: {ranks_here} rank(s) on this host need at \
             least {:.1} GB ({bytes_per_param} bytes per parameter each: parameters, gradient, \
             update, optimiser and compression buffers), more than its {:.1} GB of memory; use \
             a smaller model or fewer ranks per host",
            gb(need),
            gb(mem_total)
        ),
    ))
}

/// The host's total memory in bytes (`MemTotal` of `/proc/meminfo`), when it can be read.
pub fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

#[cfg(test)]
mod tests;

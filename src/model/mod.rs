//! Models over one flat parameter vector.
//!
//! A [`Model`] holds no parameters: the training loop owns one contiguous `Vec<f32>` (what the
//! gradient exchange, the checksum and checkpoints work on) and passes slices in. Knows
//! nothing about compression, MPI or where the data came from.

use std::ops::Range;

use ndarray::{ArrayView1, ArrayView2};

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

//! Data: loaders, synthetic generators, preprocessing and sharding.
//!
//! Knows nothing about models, compression or MPI. The training loop asks for a
//! [`Split`] (train and test [`Dataset`]s, already standardised) built from the
//! `[data]` config, and for the sample indices a rank owns in a given epoch.

use ndarray::{Array1, Array2};

/// What the label column means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Real-valued targets.
    Regression,
    /// Class labels `0..n_classes` stored as f32.
    Classification {
        /// Number of classes (2 for binary).
        n_classes: usize,
    },
}

/// A dense data set: one row per sample.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, `n_samples x n_features`.
    pub x: Array2<f32>,
    /// Targets (regression) or class indices as f32 (classification).
    pub y: Array1<f32>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }
}

/// Train and test sets of one experiment.
#[derive(Clone, Debug)]
pub struct Split {
    /// Data set name for reports (`digits`, `mnist`, file stem, ...).
    pub name: String,
    /// The task.
    pub task: Task,
    /// Training data (the union of all ranks' shards).
    pub train: Dataset,
    /// Held-out data.
    pub test: Dataset,
}

//! Experiment configuration: TOML in, typed and validated structs out.
//!
//! A config file has the tables `[run]`, `[data]`, `[model]`, `[optim]`, `[compression]`,
//! `[output]` and `[network]`. Every table rejects unknown keys (a misspelling is an error that
//! names the key and the allowed ones), every value has a type, and [`Config::validate`] checks
//! ranges and cross-field constraints, naming the key, the value and what is allowed. Any key
//! can be overridden from the command line with `--set table.key=value`, where the value is
//! parsed as a TOML value (so `--set model.hidden=[256,128]` works) and falls back to a string.
//! The resolved config is written next to the results (`config.toml`) by the training run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A whole experiment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seeds, epochs and evaluation cadence.
    #[serde(default)]
    pub run: RunConfig,
    /// Which data set and how to prepare it.
    #[serde(default)]
    pub data: DataConfig,
    /// Which model.
    #[serde(default)]
    pub model: ModelConfig,
    /// The optimiser.
    #[serde(default)]
    pub optim: OptimConfig,
    /// Gradient exchange: dense baseline, vqSGD schemes, other compressors.
    #[serde(default)]
    pub compression: CompressionConfig,
    /// Where results and checkpoints go.
    #[serde(default)]
    pub output: OutputConfig,
    /// Network probing at start-up.
    #[serde(default)]
    pub network: NetworkConfig,
}

/// `[run]`: seeds and schedule of the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// A name for the run (used in reports). Default: the config file's stem.
    pub name: String,
    /// Global seed; every random stream derives from it (see `rng`).
    pub seed: u64,
    /// Number of passes over the training set.
    pub epochs: usize,
    /// Stop after this many optimiser steps (0 = no limit besides `epochs`).
    pub max_steps: usize,
    /// Evaluate every this many steps (0 = at the end of every epoch only).
    pub eval_every: usize,
    /// Stop early once the test accuracy reaches this value (0 = never).
    pub target_accuracy: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            seed: 42,
            epochs: 10,
            max_steps: 0,
            eval_every: 0,
            target_accuracy: 0.0,
        }
    }
}

/// Where the data comes from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// The embedded scikit-learn `digits` set (1,797 8x8 images, 10 classes).
    #[default]
    Digits,
    /// MNIST in IDX format: `path` is the directory with the four (optionally .gz) files.
    Mnist,
    /// A LIBSVM/svmlight text file at `path` (optional `test_path`).
    Libsvm,
    /// A CSV file at `path` (optional `test_path`), numeric columns, target in `label_column`.
    Csv,
    /// Seeded synthetic regression from a linear teacher.
    SyntheticRegression,
    /// Seeded synthetic classification from a linear teacher (`n_classes` classes).
    SyntheticClassification,
}

/// How a label column is interpreted.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Decide from the model kind (linear: regression, logistic: binary, softmax/mlp: classes).
    #[default]
    Auto,
    /// Real-valued target.
    Regression,
    /// Class labels.
    Classification,
}

/// `[data]`: data set, split and preprocessing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Source kind.
    pub source: DataSource,
    /// File or directory for file-backed sources.
    pub path: Option<PathBuf>,
    /// Separate test file (LIBSVM/CSV); when absent, `test_fraction` of the data is held out.
    pub test_path: Option<PathBuf>,
    /// Fraction held out for testing when there is no separate test set.
    pub test_fraction: f64,
    /// Standardise features (statistics from the training set).
    pub standardize: bool,
    /// Divide the regression target by this value (e.g. 1e5 for house prices).
    pub target_scale: f64,
    /// Number of features for LIBSVM (0 = infer from the largest index in the training file).
    pub n_features: usize,
    /// CSV: 0-based column of the target; negative counts from the end (-1 = last).
    pub label_column: i64,
    /// CSV: number of leading lines to skip (headers).
    pub skip_lines: usize,
    /// Use only the first this many training samples (0 = all).
    pub max_train: usize,
    /// Synthetic: number of samples (train + test).
    pub n_samples: usize,
    /// Synthetic: number of features.
    pub synthetic_features: usize,
    /// Synthetic classification: number of classes.
    pub n_classes: usize,
    /// Synthetic: noise standard deviation.
    pub noise: f64,
    /// How the label column is read.
    pub task: TaskKind,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: DataSource::Digits,
            path: None,
            test_path: None,
            test_fraction: 0.2,
            standardize: true,
            target_scale: 1.0,
            n_features: 0,
            label_column: -1,
            skip_lines: 0,
            max_train: 0,
            n_samples: 10_000,
            synthetic_features: 50,
            n_classes: 2,
            noise: 0.1,
            task: TaskKind::Auto,
        }
    }
}

/// Model family.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Linear regression, squared loss.
    Linear,
    /// Binary logistic regression (labels 0/1 or -1/+1).
    Logistic,
    /// Multiclass softmax regression.
    Softmax,
    /// Multi-layer perceptron with ReLU hidden layers and softmax cross-entropy.
    #[default]
    Mlp,
}

/// `[model]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model family.
    pub kind: ModelKind,
    /// Hidden layer widths for the MLP.
    pub hidden: Vec<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: ModelKind::Mlp,
            hidden: vec![64],
        }
    }
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Constant learning rate (after warm-up).
    #[default]
    Constant,
    /// Multiply by `lr_decay` every `lr_step_epochs` epochs.
    Step,
    /// Cosine decay to 0 over the run.
    Cosine,
}

/// `[optim]`: minibatch SGD.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Base learning rate.
    pub lr: f64,
    /// Per-rank minibatch size (global batch = `batch_size` x ranks).
    pub batch_size: usize,
    /// Heavy-ball momentum (0 = plain SGD).
    pub momentum: f64,
    /// L2 weight decay added to the update.
    pub weight_decay: f64,
    /// Schedule kind.
    pub schedule: Schedule,
    /// Step schedule: factor.
    pub lr_decay: f64,
    /// Step schedule: period in epochs.
    pub lr_step_epochs: usize,
    /// Linear warm-up over this many steps.
    pub warmup_steps: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 0.05,
            batch_size: 32,
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            lr_decay: 0.1,
            lr_step_epochs: 10,
            warmup_steps: 0,
        }
    }
}

/// Every gradient exchange scheme (spec sections 2-5 and 9).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Dense fp32 allreduce (the baseline).
    #[default]
    Dense,
    /// vqSGD cross-polytope (spec section 2).
    CrossPolytope,
    /// vqSGD simplex (spec section 3).
    Simplex,
    /// Rotated cross-polytope with a randomised Hadamard transform (spec section 4).
    Hadamard,
    /// k-sparse signed points (spec section 5), optionally behind the rotation.
    Sparse,
    /// fp16 allreduce.
    Fp16,
    /// QSGD (spec section 9).
    Qsgd,
    /// TernGrad.
    Terngrad,
    /// signSGD with majority vote.
    Signsgd,
    /// Scaled sign with error feedback.
    EfSignsgd,
    /// Top-k with error feedback.
    Topk,
}

impl Scheme {
    /// All scheme names, for error messages and sweeps.
    pub const ALL: [&'static str; 11] = [
        "dense",
        "cross_polytope",
        "simplex",
        "hadamard",
        "sparse",
        "fp16",
        "qsgd",
        "terngrad",
        "signsgd",
        "ef_signsgd",
        "topk",
    ];

    /// The config name of this scheme.
    pub fn name(self) -> &'static str {
        Self::ALL[self as usize]
    }

    /// True for the vqSGD family (spec sections 2-5).
    pub fn is_vq(self) -> bool {
        matches!(
            self,
            Scheme::CrossPolytope | Scheme::Simplex | Scheme::Hadamard | Scheme::Sparse
        )
    }
}

/// How the flat gradient is split into independently normalised blocks (spec section 1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum BlockSpec {
    /// One block: the whole flat gradient.
    #[default]
    Whole,
    /// One block per model layer (weights and biases are separate layers).
    Layer,
    /// Fixed-size blocks of this many coordinates (the last one may be shorter).
    Size(usize),
}

impl Serialize for BlockSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BlockSpec::Whole => s.serialize_str("whole"),
            BlockSpec::Layer => s.serialize_str("layer"),
            BlockSpec::Size(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for BlockSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected \"whole\", \"layer\" or a positive block size")
        })? {
            Raw::N(n) if n > 0 => Ok(BlockSpec::Size(n as usize)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "block size {n} must be positive (or \"whole\" / \"layer\")"
            ))),
            Raw::S(s) if s == "whole" => Ok(BlockSpec::Whole),
            Raw::S(s) if s == "layer" => Ok(BlockSpec::Layer),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "unknown block spec \"{s}\": expected \"whole\", \"layer\" or a positive integer"
            ))),
        }
    }
}

/// Index coding of spec section 6.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Coding {
    /// ceil(log2 m) bits per index; every payload has the same length.
    #[default]
    Fixed,
    /// Sorted-gap Golomb-Rice coding; variable length (allgatherv).
    Rice,
}

/// `[compression]`: which scheme and its parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionConfig {
    /// The scheme.
    pub scheme: Scheme,
    /// vqSGD repetitions s (spec section 1).
    pub repetitions: usize,
    /// Blocking (spec section 1): `"whole"`, `"layer"` or a block size.
    pub block: BlockSpec,
    /// Sparsity k for `sparse` (spec section 5) and `topk` (k per block).
    pub k: usize,
    /// Top-k as a fraction of the dimension (used when `k` = 0).
    pub k_ratio: f64,
    /// Apply the randomised Hadamard rotation before `sparse` (spec section 4).
    pub rotate: bool,
    /// Index coding (spec section 6).
    pub coding: Coding,
    /// Privacy: scale factor c > 1 of the scaled cross-polytope / simplex (spec section 7).
    pub privacy_scale: Option<f64>,
    /// Privacy: target epsilon per step; sets c through the inverse formula of spec section 7.
    pub epsilon: Option<f64>,
    /// Clip gradient norms to this value and send no norm (spec section 7), 0 = off.
    pub clip: f64,
    /// QSGD: number of levels s.
    pub levels: usize,
    /// QSGD / TernGrad: bucket size (0 = whole block).
    pub bucket: usize,
    /// Layers with fewer parameters than this are sent dense (fp32) beside the payload.
    pub dense_below: usize,
    /// Number of initial steps exchanged densely before compression starts.
    pub warmup_steps: usize,
    /// MLP: start each layer's exchange with a non-blocking collective during backprop.
    pub overlap: bool,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            scheme: Scheme::Dense,
            repetitions: 1,
            block: BlockSpec::Whole,
            k: 0,
            k_ratio: 0.01,
            rotate: false,
            coding: Coding::Fixed,
            privacy_scale: None,
            epsilon: None,
            clip: 0.0,
            levels: 4,
            bucket: 512,
            dense_below: 0,
            warmup_steps: 0,
            overlap: false,
        }
    }
}

/// `[output]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Output directory (created; results written atomically). Default `runs/<run.name>`.
    pub dir: Option<PathBuf>,
    /// Write a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: usize,
    /// Keep the newest this many checkpoints.
    pub keep_checkpoints: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: None,
            checkpoint_every: 0,
            keep_checkpoints: 2,
        }
    }
}

/// `[network]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Measure latency and bandwidth of the communicator at start-up.
    pub probe: bool,
}

/// Largest sizes accepted anywhere, so absurd configs fail before any allocation.
pub mod limits {
    /// Maximum number of model parameters (4 G floats would not fit MPI counts anyway).
    pub const MAX_PARAMS: usize = 1 << 31;
    /// Maximum hidden width.
    pub const MAX_WIDTH: usize = 1 << 20;
    /// Maximum synthetic sample count.
    pub const MAX_SYNTHETIC: usize = 50_000_000;
}

impl Config {
    /// Parse TOML text (`origin` names the file in errors) and apply `--set` overrides.
    pub fn from_toml_str(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::Other(format!("{origin}: {e}")))?;
        for ov in overrides {
            apply_override(&mut table, ov)?;
        }
        let with = if overrides.is_empty() {
            ""
        } else {
            " with --set overrides"
        };
        match Config::deserialize(toml::Value::Table(table.clone())) {
            Ok(cfg) => Ok(cfg),
            // Values from a parsed table carry no position: find the key that fails.
            Err(e) => Err(match failing_key(&table) {
                Some(key) => {
                    // The first line: serde's own "in `key`" trailer repeats the key.
                    let e = e.to_string();
                    let msg = e.lines().next().unwrap_or_default();
                    Error::config(key, format!("{msg} (in {origin}{with})"))
                }
                None if with.is_empty() => Error::Other(format!("{origin}: {e}")),
                None => Error::Other(format!("{origin} ({}): {e}", with.trim_start())),
            }),
        }
    }

    /// Read and parse a config file, apply overrides, fill the run name, and validate.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg = Self::from_toml_str(&text, &path.display().to_string(), overrides)?;
        if cfg.run.name.is_empty() {
            cfg.run.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The resolved config as TOML (written next to the results).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not serialise: {e}\n"))
    }

    /// Check ranges and cross-field constraints; the error names the key, value and rule.
    pub fn validate(&self) -> Result<()> {
        let r = &self.run;
        if r.epochs == 0 && r.max_steps == 0 {
            return Err(Error::config("run.epochs", "must be at least 1 (got 0)"));
        }
        if !(0.0..=1.0).contains(&r.target_accuracy) {
            return Err(Error::config(
                "run.target_accuracy",
                format!("{} is not in [0, 1]", r.target_accuracy),
            ));
        }
        let d = &self.data;
        if !(d.test_fraction > 0.0 && d.test_fraction < 1.0) && d.test_path.is_none() {
            return Err(Error::config(
                "data.test_fraction",
                format!("{} must be strictly between 0 and 1", d.test_fraction),
            ));
        }
        if matches!(
            d.source,
            DataSource::Mnist | DataSource::Libsvm | DataSource::Csv
        ) && d.path.is_none()
        {
            return Err(Error::config(
                "data.path",
                format!("source \"{:?}\" needs a path to the data", d.source).to_lowercase(),
            ));
        }
        if !(d.target_scale.is_finite() && d.target_scale > 0.0) {
            return Err(Error::config(
                "data.target_scale",
                format!("{} must be a positive number", d.target_scale),
            ));
        }
        if matches!(
            d.source,
            DataSource::SyntheticRegression | DataSource::SyntheticClassification
        ) {
            if d.n_samples < 2 || d.n_samples > limits::MAX_SYNTHETIC {
                return Err(Error::config(
                    "data.n_samples",
                    format!("{} is not in [2, {}]", d.n_samples, limits::MAX_SYNTHETIC),
                ));
            }
            if d.synthetic_features == 0 || d.synthetic_features > limits::MAX_WIDTH {
                return Err(Error::config(
                    "data.synthetic_features",
                    format!(
                        "{} is not in [1, {}]",
                        d.synthetic_features,
                        limits::MAX_WIDTH
                    ),
                ));
            }
            if d.source == DataSource::SyntheticClassification && !(2..=1000).contains(&d.n_classes)
            {
                return Err(Error::config(
                    "data.n_classes",
                    format!("{} is not in [2, 1000]", d.n_classes),
                ));
            }
            if !(d.noise.is_finite() && d.noise >= 0.0) {
                return Err(Error::config(
                    "data.noise",
                    format!("{} must be >= 0", d.noise),
                ));
            }
            let values = d.n_samples.saturating_mul(d.synthetic_features);
            if values > crate::data::MAX_DENSE_VALUES {
                return Err(Error::config(
                    "data.n_samples",
                    format!(
                        "{} samples x {} features is more than the limit of {} values",
                        d.n_samples,
                        d.synthetic_features,
                        crate::data::MAX_DENSE_VALUES
                    ),
                ));
            }
        }
        if d.n_features > limits::MAX_WIDTH * 64 {
            return Err(Error::config(
                "data.n_features",
                format!(
                    "{} is absurdly large (limit {})",
                    d.n_features,
                    limits::MAX_WIDTH * 64
                ),
            ));
        }
        for (i, &h) in self.model.hidden.iter().enumerate() {
            if h == 0 || h > limits::MAX_WIDTH {
                return Err(Error::config(
                    "model.hidden",
                    format!("layer {i} width {h} is not in [1, {}]", limits::MAX_WIDTH),
                ));
            }
        }
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(Error::config(
                "optim.lr",
                format!("{} must be a positive number", o.lr),
            ));
        }
        if o.batch_size == 0 || o.batch_size > 1 << 24 {
            return Err(Error::config(
                "optim.batch_size",
                format!("{} is not in [1, 16777216]", o.batch_size),
            ));
        }
        if !(0.0..1.0).contains(&o.momentum) {
            return Err(Error::config(
                "optim.momentum",
                format!("{} is not in [0, 1)", o.momentum),
            ));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return Err(Error::config(
                "optim.weight_decay",
                format!("{} must be >= 0", o.weight_decay),
            ));
        }
        if o.schedule == Schedule::Step {
            if !(o.lr_decay > 0.0 && o.lr_decay <= 1.0) {
                return Err(Error::config(
                    "optim.lr_decay",
                    format!("{} is not in (0, 1]", o.lr_decay),
                ));
            }
            if o.lr_step_epochs == 0 {
                return Err(Error::config(
                    "optim.lr_step_epochs",
                    "must be at least 1 (got 0)",
                ));
            }
        }
        self.compression.validate()?;
        if self.output.keep_checkpoints == 0 {
            return Err(Error::config(
                "output.keep_checkpoints",
                "must be at least 1 (got 0)",
            ));
        }
        Ok(())
    }
}

impl CompressionConfig {
    /// Validate the scheme parameters that do not depend on the model size (those that do,
    /// such as `k` against the block size, are checked when the compressor is built).
    pub fn validate(&self) -> Result<()> {
        if self.repetitions == 0 || self.repetitions > 1 << 28 {
            return Err(Error::config(
                "compression.repetitions",
                format!("{} is not in [1, 268435456]", self.repetitions),
            ));
        }
        if let BlockSpec::Size(n) = self.block {
            if n > limits::MAX_PARAMS {
                return Err(Error::config(
                    "compression.block",
                    format!("{n} is absurdly large"),
                ));
            }
        }
        if !(self.k_ratio > 0.0 && self.k_ratio <= 1.0) {
            return Err(Error::config(
                "compression.k_ratio",
                format!("{} is not in (0, 1]", self.k_ratio),
            ));
        }
        if let Some(c) = self.privacy_scale {
            if !(c.is_finite() && c > 1.0) {
                return Err(Error::config(
                    "compression.privacy_scale",
                    format!("{c} must be > 1 (c = 1 is the non-private scheme)"),
                ));
            }
        }
        if let Some(e) = self.epsilon {
            if !(e.is_finite() && e > 0.0) {
                return Err(Error::config(
                    "compression.epsilon",
                    format!("{e} must be a positive number"),
                ));
            }
            if self.privacy_scale.is_some() {
                return Err(Error::config(
                    "compression.epsilon",
                    "give either epsilon or privacy_scale, not both",
                ));
            }
        }
        if (self.epsilon.is_some() || self.privacy_scale.is_some())
            && !matches!(self.scheme, Scheme::CrossPolytope | Scheme::Simplex)
        {
            return Err(Error::config(
                "compression.epsilon",
                format!(
                    "privacy is defined for cross_polytope and simplex only, not \"{}\"",
                    self.scheme.name()
                ),
            ));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return Err(Error::config(
                "compression.clip",
                format!("{} must be >= 0", self.clip),
            ));
        }
        if self.scheme == Scheme::Qsgd && !(1..=1 << 15).contains(&self.levels) {
            return Err(Error::config(
                "compression.levels",
                format!("{} is not in [1, 32768]", self.levels),
            ));
        }
        if self.scheme == Scheme::Sparse && self.k == 0 {
            return Err(Error::config(
                "compression.k",
                "scheme \"sparse\" needs k >= 1 non-zeros per block",
            ));
        }
        Ok(())
    }
}

/// The dotted key whose value makes `table` fail to deserialize into a [`Config`], when it is
/// one key of a known table (unknown tables and keys are named by serde's message itself).
fn failing_key(table: &toml::Table) -> Option<String> {
    fn fails<T: serde::de::DeserializeOwned>(v: &toml::Value) -> bool {
        T::deserialize(v.clone()).is_err()
    }
    for (name, v) in table {
        let check: fn(&toml::Value) -> bool = match name.as_str() {
            "run" => fails::<RunConfig>,
            "data" => fails::<DataConfig>,
            "model" => fails::<ModelConfig>,
            "optim" => fails::<OptimConfig>,
            "compression" => fails::<CompressionConfig>,
            "output" => fails::<OutputConfig>,
            "network" => fails::<NetworkConfig>,
            _ => continue,
        };
        let Some(t) = v.as_table() else {
            return Some(name.clone());
        };
        // Every field has a default: a table of one key fails only because of that key.
        for (k, val) in t {
            let one: toml::Table = std::iter::once((k.clone(), val.clone())).collect();
            if check(&toml::Value::Table(one)) {
                return Some(format!("{name}.{k}"));
            }
        }
    }
    None
}

/// Apply one `table.key=value` override to a parsed TOML table.
fn apply_override(table: &mut toml::Table, ov: &str) -> Result<()> {
    let (path, raw) = ov.split_once('=').ok_or_else(|| {
        Error::config(
            ov,
            "an override must look like table.key=value (e.g. optim.lr=0.05)",
        )
    })?;
    let path = path.trim();
    let raw = raw.trim();
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(Error::config(path, "empty key segment in override"));
    }
    // Parse the value as TOML; a bare word that is not valid TOML becomes a string.
    let value: toml::Value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let mut cur = table;
    for k in &keys[..keys.len() - 1] {
        let entry = cur
            .entry(k.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| Error::config(path, format!("`{k}` is not a table")))?;
    }
    cur.insert(keys[keys.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn misspelled_key_is_rejected_with_its_name() {
        let e = Config::from_toml_str("[optim]\nlrr = 0.1\n", "x.toml", &[]).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("lrr") && m.contains("x.toml"), "{m}");
    }

    #[test]
    fn unknown_table_is_rejected() {
        let e = Config::from_toml_str("[optimizer]\nlr = 0.1\n", "x.toml", &[]).unwrap_err();
        assert!(e.to_string().contains("optimizer"), "{e}");
    }

    #[test]
    fn wrong_type_is_rejected() {
        let e = Config::from_toml_str("[optim]\nlr = \"fast\"\n", "x.toml", &[]).unwrap_err();
        assert!(
            e.to_string().contains("lr") || e.to_string().contains("float"),
            "{e}"
        );
    }

    #[test]
    fn overrides_apply_and_parse_toml_values() {
        let c = Config::from_toml_str(
            "[optim]\nlr = 0.1\n",
            "x.toml",
            &[
                "optim.lr=0.05".into(),
                "model.hidden=[32,16]".into(),
                "compression.scheme=cross_polytope".into(),
                "compression.block=layer".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.optim.lr, 0.05);
        assert_eq!(c.model.hidden, vec![32, 16]);
        assert_eq!(c.compression.scheme, Scheme::CrossPolytope);
        assert_eq!(c.compression.block, BlockSpec::Layer);
    }

    #[test]
    fn impossible_values_name_key_and_value() {
        let c = Config::from_toml_str("[optim]\nlr = -1.0\n", "x", &[]).unwrap();
        let m = c.validate().unwrap_err().to_string();
        assert!(m.contains("optim.lr") && m.contains("-1"), "{m}");
        let c = Config::from_toml_str("[compression]\nepsilon = 0.0\n", "x", &[]).unwrap();
        let m = c.validate().unwrap_err().to_string();
        assert!(m.contains("compression.epsilon"), "{m}");
        let e = Config::from_toml_str("[compression]\nblock = -3\n", "x", &[]).unwrap_err();
        assert!(e.to_string().contains("block"), "{e}");
    }

    #[test]
    fn resolved_config_round_trips() {
        let mut c = Config::default();
        c.compression.block = BlockSpec::Size(4096);
        c.data.path = Some("/tmp/x".into());
        let back = Config::from_toml_str(&c.to_toml(), "resolved", &[]).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn scheme_names_match_enum_order() {
        for name in Scheme::ALL {
            let c =
                Config::from_toml_str(&format!("[compression]\nscheme = \"{name}\"\n"), "x", &[])
                    .unwrap();
            assert_eq!(c.compression.scheme.name(), name);
        }
    }
}

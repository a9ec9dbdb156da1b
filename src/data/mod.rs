//! Data: loaders, synthetic generators, preprocessing and sharding.
//!
//! Knows nothing about models, compression or MPI. The training loop asks for a
//! [`Split`] (train and test [`Dataset`]s, already standardised) built from the
//! `[data]` config with [`load`], and for the sample indices a rank owns in a given epoch
//! through a [`Sharder`].
//!
//! Every loader first produces a [`RawData`] (row-major features, raw label values and the
//! line each row came from, so a bad label can be reported as `file:line`); [`load`] then
//! resolves the task, maps class labels, splits, truncates and standardises. The global data
//! set depends only on the config and the seed, never on the number of ranks.

pub mod csv;
pub mod digits;
pub mod idx;
pub mod libsvm;
pub mod shard;
pub mod synthetic;

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::config::{DataConfig, DataSource, ModelKind, TaskKind};
use crate::rng::{self, Purpose};
use crate::{Error, Result};

pub use shard::{batch_range, permutation, shard_range, shuffle, steps_per_epoch, Sharder};

/// Largest dense feature matrix any loader builds (number of f32 values, 8 GiB).
pub const MAX_DENSE_VALUES: usize = 1 << 31;

/// Largest number of distinct class labels accepted for classification.
pub const MAX_CLASSES: usize = 1000;

/// Tags of the `Purpose::Data` streams used here (synthetic generators use their own).
const TAG_SPLIT: u64 = 0x5350_4c49; // train/test split of a single file
const TAG_ORDER: u64 = 0x4f52_4445; // training order when a separate test file exists

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

impl Task {
    /// The number of classes, or `None` for regression.
    pub fn n_classes(self) -> Option<usize> {
        match self {
            Task::Regression => None,
            Task::Classification { n_classes } => Some(n_classes),
        }
    }
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

    /// Copy the rows `idx` into `x` and `y`, reallocating them only when their shape differs
    /// from `idx.len() x n_features`.
    ///
    /// # Panics
    /// If an index is out of range (indices come from a [`Sharder`] built for this set).
    pub fn gather_into(&self, idx: &[usize], x: &mut Array2<f32>, y: &mut Array1<f32>) {
        let d = self.n_features();
        if x.dim() != (idx.len(), d) {
            *x = Array2::zeros((idx.len(), d));
        }
        if y.len() != idx.len() {
            *y = Array1::zeros(idx.len());
        }
        for (k, &i) in idx.iter().enumerate() {
            x.row_mut(k).assign(&self.x.row(i));
            y[k] = self.y[i];
        }
    }

    /// Copy the rows `idx` into `buf` (which only ever grows) and return views of the batch.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn gather<'a>(
        &self,
        idx: &[usize],
        buf: &'a mut BatchBuffer,
    ) -> (ArrayView2<'a, f32>, ArrayView1<'a, f32>) {
        let d = self.n_features();
        let n = idx.len();
        if buf.x.len() < n * d {
            buf.x.resize(n * d, 0.0);
        }
        if buf.y.len() < n {
            buf.y.resize(n, 0.0);
        }
        for (k, &i) in idx.iter().enumerate() {
            let dst = &mut buf.x[k * d..(k + 1) * d];
            let row = self.x.row(i);
            match row.as_slice() {
                Some(src) => dst.copy_from_slice(src),
                None => dst.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o = v),
            }
            buf.y[k] = self.y[i];
        }
        let xv = ArrayView2::from_shape((n, d), &buf.x[..n * d])
            .expect("buffer holds exactly n x d values");
        (xv, ArrayView1::from(&buf.y[..n]))
    }

    /// Build a data set from the rows `idx` of a raw set (row-major features).
    fn from_rows(raw_x: &[f32], d: usize, y: &[f32], idx: &[usize]) -> Self {
        let mut x = Vec::with_capacity(idx.len() * d);
        let mut yy = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&raw_x[i * d..(i + 1) * d]);
            yy.push(y[i]);
        }
        let x = Array2::from_shape_vec((idx.len(), d), x).expect("n x d values were copied");
        Dataset {
            x,
            y: Array1::from(yy),
        }
    }
}

/// A reusable batch buffer for [`Dataset::gather`]; it grows to the largest batch and stays.
#[derive(Clone, Debug, Default)]
pub struct BatchBuffer {
    x: Vec<f32>,
    y: Vec<f32>,
}

impl BatchBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Train and test sets of one experiment.
#[derive(Clone, Debug)]
pub struct Split {
    /// Data set name for reports (`digits`, `mnist`, file stem, ...).
    pub name: String,
    /// The task.
    pub task: Task,
    /// Training data (the union of all ranks' shards), in the global training order.
    pub train: Dataset,
    /// Held-out data.
    pub test: Dataset,
    /// Original label value of each class index (classification only; empty for regression).
    pub class_values: Vec<f64>,
}

/// Parsed but unprocessed samples as a loader returns them.
#[derive(Clone, Debug, Default)]
pub struct RawData {
    /// Where the samples came from (a file, or a descriptive pseudo-path).
    pub origin: PathBuf,
    /// Features, row-major, `n x n_features`.
    pub x: Vec<f32>,
    /// Number of features per row.
    pub n_features: usize,
    /// Raw label values (as written in the file).
    pub y: Vec<f64>,
    /// 1-based line of each row in the file (0 for binary formats and generated data).
    pub lines: Vec<usize>,
}

impl RawData {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The task a config asks for: `TaskKind::Auto` resolves to regression for the linear model
/// and classification otherwise, except for the synthetic sources whose task is intrinsic.
pub fn resolve_task(cfg: &DataConfig, model: ModelKind) -> TaskKind {
    match (cfg.task, cfg.source) {
        (TaskKind::Auto, DataSource::SyntheticRegression) => TaskKind::Regression,
        (TaskKind::Auto, DataSource::SyntheticClassification) => TaskKind::Classification,
        (TaskKind::Auto, _) if model == ModelKind::Linear => TaskKind::Regression,
        (TaskKind::Auto, _) => TaskKind::Classification,
        (t, _) => t,
    }
}

/// Build the train and test sets described by `cfg` for a `model` of the given kind.
///
/// The result depends only on `cfg` and `seed`: every rank calls this and gets the same data.
pub fn load(cfg: &DataConfig, model: ModelKind, seed: u64) -> Result<Split> {
    let (name, train, test) = load_raw(cfg, seed)?;
    prepare(cfg, model, seed, name, train, test)
}

/// The part of [`load`] after the files are parsed: resolve the task, map class labels, split
/// (or order) train and test, truncate to `data.max_train` and standardise. `train` and `test`
/// are what a loader returned (for example [`libsvm::parse`] of text held in memory); `name`
/// names the data set in reports.
pub fn prepare(
    cfg: &DataConfig,
    model: ModelKind,
    seed: u64,
    name: String,
    train: RawData,
    test: Option<RawData>,
) -> Result<Split> {
    let task_kind = resolve_task(cfg, model);
    if let Some(t) = &test {
        if t.n_features != train.n_features {
            return Err(Error::data(
                &t.origin,
                0,
                format!(
                    "{} features per sample, but the training data {} has {}",
                    t.n_features,
                    train.origin.display(),
                    train.n_features
                ),
            ));
        }
    }
    for raw in std::iter::once(&train).chain(&test) {
        if raw.x.len() != raw.len() * raw.n_features {
            return Err(Error::Other(format!(
                "internal: {} has {} values for {} samples x {} features",
                raw.origin.display(),
                raw.x.len(),
                raw.len(),
                raw.n_features
            )));
        }
    }

    // Labels.
    let mut all: Vec<&RawData> = vec![&train];
    if let Some(t) = &test {
        all.push(t);
    }
    let (task, class_values) = match task_kind {
        TaskKind::Classification => {
            let values = class_values(&all)?;
            (
                Task::Classification {
                    n_classes: values.len(),
                },
                values,
            )
        }
        _ => (Task::Regression, Vec::new()),
    };
    if model == ModelKind::Logistic && task != (Task::Classification { n_classes: 2 }) {
        let what = match task {
            Task::Regression => "a regression task".to_string(),
            Task::Classification { n_classes } => {
                format!(
                    "{n_classes} classes (label values {})",
                    show_values(&class_values)
                )
            }
        };
        return Err(Error::config(
            "model.kind",
            format!(
                "logistic regression needs exactly 2 classes but data set \"{name}\" has {what}; \
                 use model.kind = \"softmax\" or \"mlp\" for more classes"
            ),
        ));
    }
    if !(cfg.target_scale.is_finite() && cfg.target_scale > 0.0) {
        return Err(Error::config(
            "data.target_scale",
            format!("{} must be a positive number", cfg.target_scale),
        ));
    }
    let map_y = |raw: &RawData| -> Result<Vec<f32>> {
        match task {
            Task::Regression => raw
                .y
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let t = (v / cfg.target_scale) as f32;
                    if t.is_finite() {
                        Ok(t)
                    } else {
                        Err(Error::data(
                            &raw.origin,
                            raw.lines.get(i).copied().unwrap_or(0),
                            format!(
                                "target {v:e} divided by data.target_scale = {} is beyond the \
                                 32-bit float range (largest {:e}); set data.target_scale",
                                cfg.target_scale,
                                f32::MAX
                            ),
                        ))
                    }
                })
                .collect(),
            Task::Classification { .. } => Ok(raw
                .y
                .iter()
                .map(|v| class_values.partition_point(|c| c < v) as f32)
                .collect()),
        }
    };

    // Split and order.
    let d = train.n_features;
    let train_y = map_y(&train)?;
    let (mut train_set, mut test_set, train_lines, test_lines) = match &test {
        None => {
            if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) {
                return Err(Error::config(
                    "data.test_fraction",
                    format!("{} must be strictly between 0 and 1", cfg.test_fraction),
                ));
            }
            let n = train.len();
            if n < 2 {
                return Err(Error::data(
                    &train.origin,
                    0,
                    format!("{n} sample(s) cannot be split into a training and a test set"),
                ));
            }
            let n_test = ((n as f64 * cfg.test_fraction).round() as usize).clamp(1, n - 1);
            let order = permutation(n, &mut rng::stream(seed, Purpose::Data, &[TAG_SPLIT]));
            let (test_idx, train_idx) = order.split_at(n_test);
            let train_idx = truncate(train_idx, cfg.max_train);
            (
                Dataset::from_rows(&train.x, d, &train_y, train_idx),
                Dataset::from_rows(&train.x, d, &train_y, test_idx),
                source_lines(&train, train_idx),
                source_lines(&train, test_idx),
            )
        }
        Some(t) => {
            let order = permutation(
                train.len(),
                &mut rng::stream(seed, Purpose::Data, &[TAG_ORDER]),
            );
            let train_idx = truncate(&order, cfg.max_train);
            let test_idx: Vec<usize> = (0..t.len()).collect();
            (
                Dataset::from_rows(&train.x, d, &train_y, train_idx),
                Dataset::from_rows(&t.x, d, &map_y(t)?, &test_idx),
                source_lines(&train, train_idx),
                source_lines(t, &test_idx),
            )
        }
    };
    drop(train);
    drop(test);

    if cfg.standardize {
        standardize(&mut train_set.x, &mut test_set.x).map_err(|u| {
            let (origin, lines) = if u.test { &test_lines } else { &train_lines };
            Error::data(
                origin,
                lines[u.row],
                format!(
                    "feature {} (1-based, label excluded) = {:e} lies {:.3e} standard \
                     deviations from its training mean {:.4e} (std {:.4e}): beyond the f32 \
                     range once standardised; remove the outlier or rescale the feature",
                    u.col + 1,
                    u.value,
                    (u.value as f64 - u.mean).abs() / u.std,
                    u.mean,
                    u.std
                ),
            )
        })?;
    }
    Ok(Split {
        name,
        task,
        train: train_set,
        test: test_set,
        class_values,
    })
}

/// The origin of `raw` and the file line of each of its rows `idx`, for error messages.
fn source_lines(raw: &RawData, idx: &[usize]) -> (PathBuf, Vec<usize>) {
    (
        raw.origin.clone(),
        idx.iter().map(|&i| raw.lines[i]).collect(),
    )
}

fn truncate(idx: &[usize], max: usize) -> &[usize] {
    if max > 0 && max < idx.len() {
        &idx[..max]
    } else {
        idx
    }
}

/// Load the raw training set and the optional separate test set of a config.
fn load_raw(cfg: &DataConfig, seed: u64) -> Result<(String, RawData, Option<RawData>)> {
    let need_path = || {
        cfg.path.as_deref().ok_or_else(|| {
            Error::config(
                "data.path",
                format!("source \"{:?}\" needs a path to the data", cfg.source).to_lowercase(),
            )
        })
    };
    let stem = |p: &Path| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into())
    };
    Ok(match cfg.source {
        DataSource::Digits => ("digits".into(), digits::load()?, None),
        DataSource::Mnist => {
            let (tr, te) = idx::load_mnist_dir(need_path()?)?;
            ("mnist".into(), tr, Some(te))
        }
        DataSource::Libsvm => {
            let path = need_path()?;
            let dim = (cfg.n_features > 0).then_some(cfg.n_features);
            let tr = libsvm::read(path, dim.map(|d| (d, "data.n_features")))?;
            let te = match &cfg.test_path {
                Some(tp) => {
                    let d = tr.n_features;
                    Some(libsvm::read(tp, Some((d, "the training file")))?)
                }
                None => None,
            };
            (stem(path), tr, te)
        }
        DataSource::Csv => {
            let path = need_path()?;
            let tr = csv::read(path, cfg.skip_lines, cfg.label_column, None)?;
            let te = match &cfg.test_path {
                Some(tp) => Some(csv::read(
                    tp,
                    cfg.skip_lines,
                    cfg.label_column,
                    Some(tr.n_features + 1),
                )?),
                None => None,
            };
            (stem(path), tr, te)
        }
        DataSource::SyntheticRegression => (
            "synthetic_regression".into(),
            synthetic::regression(cfg.n_samples, cfg.synthetic_features, cfg.noise, seed)?,
            None,
        ),
        DataSource::SyntheticClassification => (
            "synthetic_classification".into(),
            synthetic::classification(
                cfg.n_samples,
                cfg.synthetic_features,
                cfg.n_classes,
                cfg.noise,
                seed,
            )?,
            None,
        ),
    })
}

/// Sorted distinct label values over the given sets; errors on non-integer labels.
fn class_values(sets: &[&RawData]) -> Result<Vec<f64>> {
    let mut values: Vec<f64> = Vec::new();
    for raw in sets {
        for (i, &v) in raw.y.iter().enumerate() {
            if !(v.is_finite() && v.fract() == 0.0) {
                return Err(Error::data(
                    &raw.origin,
                    raw.lines.get(i).copied().unwrap_or(0),
                    format!(
                        "class label {v} is not an integer (set data.task = \"regression\" \
                         for a real-valued target)"
                    ),
                ));
            }
        }
        let mut vs = raw.y.clone();
        vs.sort_by(f64::total_cmp);
        vs.dedup();
        values.extend(vs);
        values.sort_by(f64::total_cmp);
        values.dedup();
        if values.len() > MAX_CLASSES {
            return Err(Error::config(
                "data.task",
                format!(
                    "{} has more than {MAX_CLASSES} distinct label values, which looks like a \
                     regression target; set data.task = \"regression\" (and a linear or mlp model)",
                    raw.origin.display()
                ),
            ));
        }
    }
    if values.len() < 2 {
        let origin = sets.first().map(|r| r.origin.clone()).unwrap_or_default();
        return Err(Error::data(
            origin,
            0,
            format!(
                "classification needs at least 2 distinct labels, found {} ({})",
                values.len(),
                show_values(&values)
            ),
        ));
    }
    Ok(values)
}

fn show_values(v: &[f64]) -> String {
    let mut s: Vec<String> = v.iter().take(10).map(|x| x.to_string()).collect();
    if v.len() > 10 {
        s.push("...".into());
    }
    s.join(", ")
}

/// A value that standardisation would push beyond the f32 range (an extreme outlier of a test
/// sample against a training column of small spread).
#[derive(Clone, Debug, PartialEq)]
pub struct Unrepresentable {
    /// Whether the row is in the test set (else the training set).
    pub test: bool,
    /// Row of that set.
    pub row: usize,
    /// Feature column (0-based).
    pub col: usize,
    /// The raw value.
    pub value: f32,
    /// Training mean and standard deviation of the column.
    pub mean: f64,
    /// See `mean`.
    pub std: f64,
}

/// Standardise the columns of `train` to zero mean and unit variance with the training
/// statistics, applying the same affine map to `test`. Constant training features become 0.
/// A test value so far from the training mean that its standardised value overflows f32 is an
/// error (the first such value, nothing changed); training values cannot overflow (each is
/// within `sqrt(n)` standard deviations of its column's mean).
pub fn standardize(
    train: &mut Array2<f32>,
    test: &mut Array2<f32>,
) -> std::result::Result<(), Unrepresentable> {
    let d = train.ncols();
    let n = train.nrows();
    if n == 0 {
        return Ok(());
    }
    let mut sum = vec![0f64; d];
    let mut min = vec![f32::INFINITY; d];
    let mut max = vec![f32::NEG_INFINITY; d];
    for row in train.rows() {
        for (j, &v) in row.iter().enumerate() {
            sum[j] += v as f64;
            min[j] = min[j].min(v);
            max[j] = max[j].max(v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
    let mut ss = vec![0f64; d];
    for row in train.rows() {
        for (j, &v) in row.iter().enumerate() {
            let c = v as f64 - mean[j];
            ss[j] += c * c;
        }
    }
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            let std = (ss[j] / n as f64).sqrt();
            if min[j] == max[j] || std == 0.0 {
                0.0
            } else {
                1.0 / std
            }
        })
        .collect();
    let z = |j: usize, v: f32| ((v as f64 - mean[j]) * scale[j]) as f32;
    for (is_test, m) in [(false, &*train), (true, &*test)] {
        for (row, r) in m.rows().into_iter().enumerate() {
            if let Some((col, &value)) = r.iter().enumerate().find(|&(j, &v)| !z(j, v).is_finite())
            {
                return Err(Unrepresentable {
                    test: is_test,
                    row,
                    col,
                    value,
                    mean: mean[col],
                    std: (ss[col] / n as f64).sqrt(),
                });
            }
        }
    }
    for m in [train, test] {
        for mut row in m.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = z(j, *v);
            }
        }
    }
    Ok(())
}

/// Read a whole file, transparently gunzipping it when it starts with the gzip magic.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, 0, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Decode bytes as UTF-8 text, reporting the line of the first invalid byte.
pub fn bytes_to_text(bytes: Vec<u8>, path: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::data(path, line, "not valid UTF-8 text")
    })
}

/// Check that an `n x d` dense matrix is within [`MAX_DENSE_VALUES`] before allocating it.
pub(crate) fn check_dense(path: &Path, n: usize, d: usize) -> Result<()> {
    match n.checked_mul(d) {
        Some(v) if v <= MAX_DENSE_VALUES => Ok(()),
        _ => Err(Error::data(
            path,
            0,
            format!(
                "{n} samples x {d} features is more than the limit of {MAX_DENSE_VALUES} values"
            ),
        )),
    }
}

#[cfg(test)]
mod tests;

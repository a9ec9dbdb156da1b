//! `vqsgd report`: turn run directories (and quantizer studies) into a self-contained report.
//!
//! ```text
//! vqsgd report RUN_DIR... [--out DIR] [--target-accuracy X] [--bits-vs-error FILE.csv]...
//! ```
//!
//! An argument is a run directory (it holds `summary.json`, `metrics.csv`, `run.json` or
//! `config.toml`) or a directory of run directories (one level). Runs are grouped by
//! (data set, model); each group gets its own plots, so curves of different tasks are never
//! mixed. The output directory (default `report/`) receives, each file written atomically:
//!
//! - `index.html`: every plot inlined as SVG, the run table and every problem met; it references
//!   no URL and no file outside the directory, so it opens offline;
//! - one `.svg` per plot: `gN-<group>-accuracy-vs-bits.svg` (test accuracy, or test loss for
//!   regressions, against cumulative bits sent per rank, log x), `...-accuracy-vs-time.svg`,
//!   `...-bytes-per-rank.svg` (bytes sent and received by each rank) and `...-time-split.svg`
//!   (compute / encode / communicate / decode / update / eval, stacked), plus
//!   `quantizers-N.svg` per quantizer study (measured error against payload bits beside the
//!   lower bound of spec section 1);
//! - `summary.md` and `summary.csv`: one row per run (run, status, scheme, ranks, final
//!   accuracy, bits per rank per step, compression ratio, time to target accuracy, ...).
//!
//! Incomplete runs (no `summary.json` yet, or one that is not `complete`) are shown with their
//! partial curves (dashed) and marked in the table; directories with nothing readable are listed
//! with the reason. The command fails only when no argument is readable at all or the output
//! directory cannot be written.
//!
//! Files: [`load`] reads run directories, [`studies`] the quantizer study CSV, [`render`] builds
//! the plots, tables and the page. Plot drawing itself lives in [`crate::plot`].

pub mod load;
pub mod render;
pub mod studies;

use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub use load::{Run, Status};
pub use studies::Study;

/// What to report on.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Run directories, or directories of run directories.
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Accuracy for the "time to target" column, computed from `metrics.csv`; without it the
    /// column shows `summary.time.time_to_target_s` (the run's own `run.target_accuracy`).
    pub target_accuracy: Option<f64>,
    /// Quantizer study CSV files (see [`studies`] for the columns).
    pub bits_vs_error: Vec<PathBuf>,
}

/// What [`run`] produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every file written, `index.html` first.
    pub files: Vec<PathBuf>,
    /// Every run found, readable or not, with its label and status.
    pub runs: Vec<Run>,
    /// Quantizer studies included.
    pub studies: Vec<Study>,
    /// Quantizer study files that could not be read, with the reason.
    pub study_errors: Vec<String>,
}

/// One (data set, model) group of runs.
#[derive(Debug)]
pub struct Group {
    /// Data set.
    pub dataset: String,
    /// Model description.
    pub model: String,
    /// Indices into the run list.
    pub runs: Vec<usize>,
    /// File name stem of the group's plots.
    pub slug: String,
}

/// Build the report described by `opts`.
pub fn run(opts: &Options) -> Result<Outcome> {
    if opts.inputs.is_empty() && opts.bits_vs_error.is_empty() {
        return Err(Error::Other(
            "nothing to report: give run directories and/or --bits-vs-error FILE".into(),
        ));
    }
    let mut runs = load::discover(&opts.inputs);
    load::assign_labels(&mut runs);
    let mut studies = Vec::new();
    let mut study_errors = Vec::new();
    for f in &opts.bits_vs_error {
        match studies::load(f) {
            Ok(s) => studies.extend(s),
            Err(e) => study_errors.push(e),
        }
    }
    if !runs.iter().any(Run::has_data) && studies.is_empty() {
        let mut why: Vec<String> = runs
            .iter()
            .map(|r| format!("{}: {}", r.dir.display(), r.notes.join("; ")))
            .collect();
        why.extend(study_errors.iter().cloned());
        return Err(Error::Other(format!(
            "nothing readable to report:\n  {}",
            why.join("\n  ")
        )));
    }
    let groups = group_runs(&runs);
    let report = render::Report {
        runs: &runs,
        groups: &groups,
        studies: &studies,
        study_errors: &study_errors,
        target_accuracy: opts.target_accuracy,
    };
    let files = report.write(&opts.out)?;
    Ok(Outcome {
        files,
        runs,
        studies,
        study_errors,
    })
}

/// Whether a summary model description (`mlp 784-128-10 (101770 params)`) is the model of a
/// config (`kind = "mlp"`, `hidden = [128]`).
fn model_matches(desc: &str, kind: &str, hidden: &[i64]) -> bool {
    let mut it = desc.split_whitespace();
    if it.next() != Some(kind) {
        return false;
    }
    let layers: Vec<i64> = it
        .next()
        .unwrap_or("")
        .split('-')
        .filter_map(|x| x.parse().ok())
        .collect();
    layers.len() >= 2 && layers[1..layers.len() - 1] == *hidden
}

/// Group readable runs by (data set, model), in order of first appearance. A run without a
/// summary joins the group of a run with the same data set and a matching model.
pub fn group_runs(runs: &[Run]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut pending = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if !r.has_data() {
            continue;
        }
        match &r.model {
            Some(m) => {
                let d = r
                    .dataset
                    .clone()
                    .unwrap_or_else(|| "unknown data set".into());
                match groups.iter_mut().find(|g| g.dataset == d && &g.model == m) {
                    Some(g) => g.runs.push(i),
                    None => groups.push(Group {
                        dataset: d,
                        model: m.clone(),
                        runs: vec![i],
                        slug: String::new(),
                    }),
                }
            }
            None => pending.push(i),
        }
    }
    for i in pending {
        let r = &runs[i];
        let d = r
            .dataset
            .clone()
            .unwrap_or_else(|| "unknown data set".into());
        let found = r.config_model.as_ref().and_then(|(kind, hidden)| {
            groups
                .iter()
                .position(|g| g.dataset == d && model_matches(&g.model, kind, hidden))
        });
        let model = match &r.config_model {
            Some((kind, h)) if h.is_empty() => kind.clone(),
            Some((kind, h)) => format!(
                "{kind} hidden {}",
                h.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            ),
            None => "unknown model".into(),
        };
        match found.or_else(|| {
            groups
                .iter()
                .position(|g| g.dataset == d && g.model == model)
        }) {
            Some(g) => groups[g].runs.push(i),
            None => groups.push(Group {
                dataset: d,
                model,
                runs: vec![i],
                slug: String::new(),
            }),
        }
    }
    for (n, g) in groups.iter_mut().enumerate() {
        g.slug = format!(
            "g{}-{}",
            n + 1,
            slug(&format!("{} {}", g.dataset, model_short(&g.model)))
        );
    }
    groups
}

/// `mlp 784-128-10 (101770 params)` -> `mlp 784-128-10`.
fn model_short(m: &str) -> &str {
    m.split(" (").next().unwrap_or(m)
}

/// Lower-case ASCII letters and digits, everything else one `-`, at most 40 characters.
pub fn slug(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            o.push(c.to_ascii_lowercase());
        } else if !o.ends_with('-') && !o.is_empty() {
            o.push('-');
        }
    }
    let mut o: String = o.trim_end_matches('-').chars().take(40).collect();
    while o.ends_with('-') {
        o.pop();
    }
    if o.is_empty() {
        o.push('x');
    }
    o
}

/// The first wall time at which `run` reached `target` test accuracy, from `metrics.csv`.
pub fn time_to_accuracy(run: &Run, target: f64) -> Option<f64> {
    run.points
        .iter()
        .find(|p| p.test_accuracy.is_some_and(|a| a >= target))
        .map(|p| p.wall_s)
}

/// Relative path of `p` for display (as given on the command line).
pub fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_matching_and_slugs() {
        assert!(model_matches(
            "mlp 784-128-10 (101770 params)",
            "mlp",
            &[128]
        ));
        assert!(!model_matches(
            "mlp 784-128-10 (101770 params)",
            "mlp",
            &[64]
        ));
        assert!(model_matches("softmax 64-10 (650 params)", "softmax", &[]));
        assert_eq!(slug("MNIST / mlp 784-128-10"), "mnist-mlp-784-128-10");
        assert_eq!(slug("///"), "x");
    }
}

//! Reading run directories for the report: find the runs behind each argument, parse
//! `summary.json`, `metrics.csv`, `ranks.csv`, `config.toml` and `run.json` without trusting
//! any of them, and decide whether a run is complete, failed or incomplete.
//!
//! Nothing here fails on a bad file: every problem becomes a note on the run (shown in the
//! report), and a directory with nothing readable is kept with the reason.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Files whose presence makes a directory a run directory.
const RUN_FILES: [&str; 4] = ["summary.json", "metrics.csv", "run.json", "config.toml"];

/// How far a run got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// `summary.json` says `complete`.
    Complete,
    /// `summary.json` says `failed` (e.g. the ranks disagreed).
    Failed,
    /// No (readable) `summary.json`, or one that says `running`: a job still going or killed.
    Incomplete,
    /// Nothing readable at all.
    Unreadable,
}

impl Status {
    /// The word used in tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::Incomplete => "incomplete",
            Status::Unreadable => "unreadable",
        }
    }
}

/// One row of `metrics.csv` as the report needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// Optimiser steps so far.
    pub step: f64,
    /// Seconds since the training loop started.
    pub wall_s: f64,
    /// Cumulative bits sent per rank.
    pub bits_sent_per_rank: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy, when the task is a classification.
    pub test_accuracy: Option<f64>,
}

/// One row of `ranks.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RankRow {
    /// Rank.
    pub rank: usize,
    /// Total bytes sent.
    pub bytes_sent: f64,
    /// Total bytes received.
    pub bytes_received: f64,
    /// Forward/backward seconds.
    pub compute_s: f64,
    /// Encoding seconds.
    pub encode_s: f64,
    /// Gradient exchange seconds.
    pub comm_s: f64,
    /// Decoding seconds.
    pub decode_s: f64,
    /// Optimiser update seconds.
    pub update_s: f64,
    /// Evaluation seconds.
    pub eval_s: f64,
}

/// Time split of a run, seconds (mean over ranks).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeSplit {
    /// Forward/backward.
    pub compute_s: f64,
    /// Encoding.
    pub encode_s: f64,
    /// Gradient exchange.
    pub comm_s: f64,
    /// Decoding.
    pub decode_s: f64,
    /// Optimiser updates.
    pub update_s: f64,
    /// Evaluation.
    pub eval_s: f64,
}

/// Everything the report knows about one run directory.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// The directory.
    pub dir: PathBuf,
    /// Unique label within the report (filled in by [`assign_labels`]).
    pub label: String,
    /// Run name (summary, else config, else directory name).
    pub name: String,
    /// How far it got.
    pub status: Option<Status>,
    /// The raw status word of `summary.json`, when there is one.
    pub summary_status: Option<String>,
    /// Data set name.
    pub dataset: Option<String>,
    /// Model description.
    pub model: Option<String>,
    /// Model kind and hidden layers from `config.toml` (to place a run without summary).
    pub config_model: Option<(String, Vec<i64>)>,
    /// Scheme name.
    pub scheme: Option<String>,
    /// Scheme parameters.
    pub scheme_params: Option<String>,
    /// Number of ranks.
    pub world_size: Option<usize>,
    /// Steps taken.
    pub steps: Option<u64>,
    /// Epochs completed.
    pub epochs: Option<f64>,
    /// Final test accuracy.
    pub final_accuracy: Option<f64>,
    /// Final test loss.
    pub final_test_loss: Option<f64>,
    /// Bits per rank per step.
    pub bits_per_rank_per_step: Option<f64>,
    /// Dense / payload.
    pub compression_ratio: Option<f64>,
    /// Wall time of the training loop.
    pub total_s: Option<f64>,
    /// `summary.time.time_to_target_s`.
    pub summary_time_to_target_s: Option<f64>,
    /// `run.target_accuracy` from `config.toml` (0 = none).
    pub config_target_accuracy: Option<f64>,
    /// Time split.
    pub time_split: Option<TimeSplit>,
    /// `metrics.csv` rows.
    pub points: Vec<Point>,
    /// `ranks.csv` rows.
    pub ranks: Vec<RankRow>,
    /// Problems met while reading, and why a run is incomplete.
    pub notes: Vec<String>,
}

impl Run {
    /// Whether the run has any curve or summary number to show.
    pub fn has_data(&self) -> bool {
        self.status != Some(Status::Unreadable)
    }
}

/// Whether `dir` looks like a run directory.
fn is_run_dir(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).is_file())
}

/// Expand the command line arguments into run directories: a run directory stands for itself,
/// a directory of run directories (one level) for its sorted subdirectories. Arguments that are
/// neither come back as unreadable runs with the reason.
pub fn discover(args: &[PathBuf]) -> Vec<Run> {
    let mut out = Vec::new();
    for a in args {
        if !a.exists() {
            out.push(unreadable(a, "no such file or directory"));
        } else if !a.is_dir() {
            out.push(unreadable(a, "not a directory"));
        } else if is_run_dir(a) {
            out.push(load_run(a));
        } else {
            let mut subs: Vec<PathBuf> = match std::fs::read_dir(a) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir() && is_run_dir(p))
                    .collect(),
                Err(e) => {
                    out.push(unreadable(a, &format!("cannot list directory: {e}")));
                    continue;
                }
            };
            if subs.is_empty() {
                out.push(unreadable(
                    a,
                    "neither a run directory (no summary.json, metrics.csv, run.json or \
                     config.toml) nor a directory of run directories",
                ));
            }
            subs.sort();
            out.extend(subs.iter().map(|p| load_run(p)));
        }
    }
    out
}

fn unreadable(dir: &Path, why: &str) -> Run {
    Run {
        dir: dir.to_path_buf(),
        name: dir_name(dir),
        status: Some(Status::Unreadable),
        notes: vec![why.to_string()],
        ..Default::default()
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Read a file to a string, `None` when absent, a note when unreadable.
fn read(dir: &Path, name: &str, notes: &mut Vec<String>) -> Option<String> {
    let p = dir.join(name);
    if !p.is_file() {
        return None;
    }
    match std::fs::read(&p) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            notes.push(format!("{name}: cannot read: {e}"));
            None
        }
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn get_f64(v: &Value, path: &[&str]) -> Option<f64> {
    get(v, path)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
}

fn get_str(v: &Value, path: &[&str]) -> Option<String> {
    get(v, path).and_then(Value::as_str).map(str::to_string)
}

/// Load one run directory.
pub fn load_run(dir: &Path) -> Run {
    let mut run = Run {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let mut notes = Vec::new();

    // config.toml: name, data set, model, scheme, target.
    let mut cfg_name = None;
    if let Some(text) = read(dir, "config.toml", &mut notes) {
        match text.parse::<toml::Table>() {
            Ok(t) => {
                let s = |sec: &str, key: &str| {
                    t.get(sec)
                        .and_then(|v| v.get(key))
                        .and_then(|v| v.as_str())
                        .map(String::from)
                };
                cfg_name = s("run", "name").filter(|n| !n.is_empty());
                run.dataset = s("data", "source");
                run.scheme = s("compression", "scheme");
                run.config_target_accuracy = t
                    .get("run")
                    .and_then(|v| v.get("target_accuracy"))
                    .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
                if let Some(kind) = s("model", "kind") {
                    let hidden = t
                        .get("model")
                        .and_then(|v| v.get("hidden"))
                        .and_then(|v| v.as_array())
                        .map(|a| a.iter().filter_map(|x| x.as_integer()).collect())
                        .unwrap_or_default();
                    run.config_model = Some((kind, hidden));
                }
            }
            Err(e) => notes.push(format!("config.toml does not parse: {}", one_line(&e))),
        }
    }

    // run.json: rank count.
    if let Some(text) = read(dir, "run.json", &mut notes) {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                if let Some(h) = v.get("hosts").and_then(Value::as_array) {
                    if !h.is_empty() {
                        run.world_size = Some(h.len());
                    }
                }
            }
            Err(e) => notes.push(format!("run.json does not parse: {e}")),
        }
    }

    // summary.json: the authority when present.
    let mut summary_ok = false;
    if let Some(text) = read(dir, "summary.json", &mut notes) {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => {
                summary_ok = true;
                apply_summary(&mut run, &v, &mut cfg_name);
            }
            Ok(_) => notes.push("summary.json is not a JSON object".into()),
            Err(e) => notes.push(format!("summary.json does not parse: {e}")),
        }
    }

    // metrics.csv: the curves.
    let has_metrics = match read(dir, "metrics.csv", &mut notes) {
        Some(text) => {
            run.points = parse_metrics(&text, &mut notes);
            true
        }
        None => false,
    };

    // ranks.csv: per-rank traffic and time.
    if let Some(text) = read(dir, "ranks.csv", &mut notes) {
        run.ranks = parse_ranks(&text, &mut notes);
    }
    if run.time_split.is_none() && !run.ranks.is_empty() {
        let n = run.ranks.len() as f64;
        let m = |f: fn(&RankRow) -> f64| run.ranks.iter().map(f).sum::<f64>() / n;
        run.time_split = Some(TimeSplit {
            compute_s: m(|r| r.compute_s),
            encode_s: m(|r| r.encode_s),
            comm_s: m(|r| r.comm_s),
            decode_s: m(|r| r.decode_s),
            update_s: m(|r| r.update_s),
            eval_s: m(|r| r.eval_s),
        });
    }

    // Fill what the summary did not give from the last metrics row.
    if let Some(last) = run.points.last() {
        if run.final_accuracy.is_none() {
            run.final_accuracy = last.test_accuracy;
        }
        if run.final_test_loss.is_none() && last.test_loss.is_finite() {
            run.final_test_loss = Some(last.test_loss);
        }
        if run.steps.is_none() {
            run.steps = Some(last.step as u64);
        }
        if run.bits_per_rank_per_step.is_none() && last.step > 0.0 {
            run.bits_per_rank_per_step = Some(last.bits_sent_per_rank / last.step);
        }
        if run.total_s.is_none() {
            run.total_s = Some(last.wall_s);
        }
    }

    run.name = cfg_name.unwrap_or_else(|| dir_name(dir));
    run.status = Some(match (summary_ok, run.summary_status.as_deref()) {
        (true, Some("complete")) => Status::Complete,
        (true, Some("failed")) => Status::Failed,
        (true, s) => {
            notes.push(format!(
                "summary.json status is `{}`: the job is still running or was killed",
                s.unwrap_or("(missing)")
            ));
            Status::Incomplete
        }
        (false, _) if has_metrics || !run.points.is_empty() => {
            notes.push("no summary.json: the job is still running or was killed".into());
            Status::Incomplete
        }
        (false, _) if run.world_size.is_some() || run.dataset.is_some() => {
            notes.push("no summary.json and no metrics.csv yet: no evaluation has finished".into());
            Status::Incomplete
        }
        (false, _) => {
            notes.push("no readable summary.json, metrics.csv, run.json or config.toml".into());
            Status::Unreadable
        }
    });
    run.notes = notes;
    run
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn apply_summary(run: &mut Run, v: &Value, cfg_name: &mut Option<String>) {
    run.summary_status = get_str(v, &["status"]);
    if let Some(n) = get_str(v, &["name"]).filter(|n| !n.is_empty()) {
        *cfg_name = Some(n);
    }
    run.dataset = get_str(v, &["dataset"]).or(run.dataset.take());
    run.model = get_str(v, &["model"]);
    run.scheme = get_str(v, &["scheme"]).or(run.scheme.take());
    run.scheme_params = get_str(v, &["scheme_params"]);
    if let Some(w) = get(v, &["world_size"]).and_then(Value::as_u64) {
        run.world_size = Some(w as usize);
    }
    run.steps = get(v, &["steps"]).and_then(Value::as_u64);
    run.epochs = get_f64(v, &["epochs"]);
    run.final_accuracy = get_f64(v, &["final", "test_accuracy"]);
    run.final_test_loss = get_f64(v, &["final", "test_loss"]);
    run.bits_per_rank_per_step = get_f64(v, &["comm", "bits_per_rank_per_step"]);
    run.compression_ratio = get_f64(v, &["comm", "compression_ratio"]);
    run.total_s = get_f64(v, &["time", "total_s"]);
    run.summary_time_to_target_s = get_f64(v, &["time", "time_to_target_s"]);
    if get(v, &["time"]).is_some() {
        let t = |k: &str| get_f64(v, &["time", k]).unwrap_or(0.0);
        run.time_split = Some(TimeSplit {
            compute_s: t("compute_s"),
            encode_s: t("encode_s"),
            comm_s: t("comm_s"),
            decode_s: t("decode_s"),
            update_s: t("update_s"),
            eval_s: t("eval_s"),
        });
    }
}

/// A CSV table split naively on commas (the run files never quote), header mapped by name.
struct Csv<'a> {
    cols: Vec<&'a str>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

impl<'a> Csv<'a> {
    /// Split `text`; a last line without a newline that is short is a row being written and is
    /// dropped with a note.
    fn parse(text: &'a str, file: &str, notes: &mut Vec<String>) -> Option<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next()?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let n_lines = text.lines().count();
        let truncated_tail = !text.ends_with('\n');
        let mut rows = Vec::new();
        for (i, l) in lines {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            if f.len() != cols.len() {
                if truncated_tail && i + 1 == n_lines {
                    notes.push(format!(
                        "{file}: ignored a truncated last line (being written?)"
                    ));
                } else {
                    notes.push(format!(
                        "{file}:{}: {} fields where the header has {}; row skipped",
                        i + 1,
                        f.len(),
                        cols.len()
                    ));
                }
                continue;
            }
            rows.push((i + 1, f));
        }
        Some(Self { cols, rows })
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.cols.iter().position(|c| *c == name)
    }
}

/// Parse `metrics.csv`. Required columns: `step`, `wall_s`, `bits_sent_per_rank` (or
/// `bytes_sent_per_rank`), `test_loss`; `test_accuracy` may be empty.
pub fn parse_metrics(text: &str, notes: &mut Vec<String>) -> Vec<Point> {
    let Some(csv) = Csv::parse(text, "metrics.csv", notes) else {
        notes.push("metrics.csv is empty".into());
        return Vec::new();
    };
    let (step, wall, loss) = (csv.idx("step"), csv.idx("wall_s"), csv.idx("test_loss"));
    let (bits, bytes) = (
        csv.idx("bits_sent_per_rank"),
        csv.idx("bytes_sent_per_rank"),
    );
    let acc = csv.idx("test_accuracy");
    let (Some(step), Some(wall), Some(loss)) = (step, wall, loss) else {
        notes.push(format!(
            "metrics.csv: header `{}` lacks step, wall_s or test_loss",
            csv.cols.join(",")
        ));
        return Vec::new();
    };
    if bits.is_none() && bytes.is_none() {
        notes.push("metrics.csv: no bits_sent_per_rank or bytes_sent_per_rank column".into());
        return Vec::new();
    }
    let mut out = Vec::new();
    for (line, f) in &csv.rows {
        let num = |i: usize| f[i].parse::<f64>().ok().filter(|x| x.is_finite());
        let b = bits
            .and_then(num)
            .or_else(|| bytes.and_then(num).map(|x| x * 8.0));
        match (num(step), num(wall), num(loss), b) {
            (Some(s), Some(w), Some(l), Some(b)) => out.push(Point {
                step: s,
                wall_s: w,
                bits_sent_per_rank: b,
                test_loss: l,
                test_accuracy: acc.and_then(num),
            }),
            _ => notes.push(format!(
                "metrics.csv:{line}: unparsable numbers; row skipped"
            )),
        }
    }
    out
}

/// Parse `ranks.csv` (columns by name; missing time columns read as 0).
pub fn parse_ranks(text: &str, notes: &mut Vec<String>) -> Vec<RankRow> {
    let Some(csv) = Csv::parse(text, "ranks.csv", notes) else {
        notes.push("ranks.csv is empty".into());
        return Vec::new();
    };
    let (Some(rank), Some(sent), Some(recv)) = (
        csv.idx("rank"),
        csv.idx("bytes_sent"),
        csv.idx("bytes_received"),
    ) else {
        notes.push(format!(
            "ranks.csv: header `{}` lacks rank, bytes_sent or bytes_received",
            csv.cols.join(",")
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (line, f) in &csv.rows {
        let num = |i: usize| f[i].parse::<f64>().ok().filter(|x| x.is_finite());
        let t = |name: &str| csv.idx(name).and_then(num).unwrap_or(0.0);
        match (f[rank].parse::<usize>().ok(), num(sent), num(recv)) {
            (Some(r), Some(s), Some(rv)) => out.push(RankRow {
                rank: r,
                bytes_sent: s,
                bytes_received: rv,
                compute_s: t("compute_s"),
                encode_s: t("encode_s"),
                comm_s: t("comm_s"),
                decode_s: t("decode_s"),
                update_s: t("update_s"),
                eval_s: t("eval_s"),
            }),
            _ => notes.push(format!("ranks.csv:{line}: unparsable numbers; row skipped")),
        }
    }
    out
}

/// Give every run a label `NAME SCHEME (P ranks)`, unique within the report: colliding labels
/// get the directory name appended, then a counter.
pub fn assign_labels(runs: &mut [Run]) {
    for r in runs.iter_mut() {
        let mut l = r.name.clone();
        // The scheme, unless the run name already is it.
        if let Some(s) = r.scheme.as_ref().filter(|s| **s != r.name) {
            l.push(' ');
            l.push_str(s);
        }
        if let Some(p) = r.world_size {
            l.push_str(&format!(" ({p} rank{})", if p == 1 { "" } else { "s" }));
        }
        r.label = l;
    }
    // Decide which labels are shared before changing any, so every member of a group of
    // equal labels gets its directory name.
    let shared: Vec<bool> = runs
        .iter()
        .map(|r| runs.iter().filter(|o| o.label == r.label).count() > 1)
        .collect();
    for (run, shared) in runs.iter_mut().zip(shared) {
        let d = dir_name(&run.dir);
        if shared && !run.label.contains(&d) {
            run.label = format!("{} [{d}]", run.label);
        }
    }
    for i in 0..runs.len() {
        if runs[..i].iter().any(|r| r.label == runs[i].label) {
            let base = runs[i].label.clone();
            let mut n = 2;
            while runs.iter().any(|r| r.label == format!("{base} #{n}")) {
                n += 1;
            }
            runs[i].label = format!("{base} #{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_tolerates_truncated_tail_and_bad_rows() {
        let text = "step,epoch,wall_s,bytes_sent_per_rank,bits_sent_per_rank,train_loss,test_loss,\
                    test_accuracy\n10,1,0.5,100,800,1,0.9,0.5\nx,1,0.5,100,800,1,0.9,0.5\n\
                    20,2,1.0,200,1600,0.5,0.4,\n30,3,1.";
        let mut notes = Vec::new();
        let p = parse_metrics(text, &mut notes);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].test_accuracy, None);
        assert_eq!(p[1].bits_sent_per_rank, 1600.0);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("truncated")));
    }

    #[test]
    fn labels_are_unique() {
        let mk = |dir: &str| Run {
            dir: PathBuf::from(dir),
            name: "x".into(),
            scheme: Some("dense".into()),
            world_size: Some(2),
            ..Default::default()
        };
        let mut runs = vec![mk("/a/r1"), mk("/b/r1"), mk("/c/r2")];
        assign_labels(&mut runs);
        let mut l: Vec<_> = runs.iter().map(|r| r.label.clone()).collect();
        assert!(l[2].contains("[r2]"));
        l.sort();
        l.dedup();
        assert_eq!(l.len(), 3, "{l:?}");
    }
}

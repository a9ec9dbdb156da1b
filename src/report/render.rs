//! Rendering the report: the plots of each group of runs and of each quantizer study, the run
//! table (Markdown and CSV) and the self-contained HTML page that inlines every plot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load::{Run, Status};
use super::studies::{self, Study};
use super::{time_to_accuracy, Group};
use crate::output;
use crate::plot::{xml_escape, BarChart, BarSeries, Plot, Series, Style};
use crate::Result;

/// Line plot size, pixels.
const LINE_W: u32 = 900;
const LINE_H: u32 = 460;

/// Everything a report is made of.
pub struct Report<'a> {
    /// Every run found.
    pub runs: &'a [Run],
    /// Groups of readable runs.
    pub groups: &'a [Group],
    /// Quantizer studies.
    pub studies: &'a [Study],
    /// Quantizer study files that could not be read.
    pub study_errors: &'a [String],
    /// Target accuracy for the "time to target" column.
    pub target_accuracy: Option<f64>,
}

/// One plot: its file name, heading and SVG document.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File name inside the output directory.
    pub file: String,
    /// Heading.
    pub title: String,
    /// One sentence on what it shows.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

/// One row of the run table, formatted.
#[derive(Clone, Debug)]
pub struct Row {
    /// Run label.
    pub label: String,
    /// Status word.
    pub status: &'static str,
    /// `dataset / model`.
    pub group: String,
    /// Scheme.
    pub scheme: String,
    /// Scheme parameters.
    pub scheme_params: String,
    /// Ranks.
    pub ranks: Option<usize>,
    /// Steps.
    pub steps: Option<u64>,
    /// Final test accuracy.
    pub final_accuracy: Option<f64>,
    /// Final test loss.
    pub final_test_loss: Option<f64>,
    /// Bits per rank per step.
    pub bits_per_step: Option<f64>,
    /// Compression ratio.
    pub compression_ratio: Option<f64>,
    /// Time to target, seconds.
    pub time_to_target_s: Option<f64>,
    /// Why there is no time to target (`not reached`, `-`).
    pub time_to_target_note: String,
    /// Training wall time, seconds.
    pub total_s: Option<f64>,
    /// Run directory.
    pub dir: String,
    /// Problems and reasons.
    pub notes: Vec<String>,
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// `1234567` -> `1,234,567`.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.abs());
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    if v < 0.0 {
        o.insert(0, '-');
    }
    o
}

impl Row {
    fn cells(&self) -> Vec<String> {
        vec![
            self.label.clone(),
            self.status.to_string(),
            self.group.clone(),
            if self.scheme_params.is_empty() {
                self.scheme.clone()
            } else {
                format!("{} ({})", self.scheme, self.scheme_params)
            },
            self.ranks
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            opt(self.final_accuracy, |a| format!("{a:.4}")),
            opt(self.bits_per_step, thousands),
            opt(self.compression_ratio, |c| format!("{c:.1}x")),
            match self.time_to_target_s {
                Some(t) => format!("{t:.2} s"),
                None => self.time_to_target_note.clone(),
            },
            opt(self.total_s, |t| format!("{t:.2} s")),
        ]
    }
}

/// The single-run label of a curve: incomplete and failed runs say so.
fn curve_name(r: &Run) -> String {
    match r.status {
        Some(Status::Complete) | None => r.label.clone(),
        Some(ref s) => format!("{} ({})", r.label, s.as_str()),
    }
}

fn curve_style(r: &Run, n_points: usize) -> Style {
    if n_points == 1 {
        Style::Markers
    } else if r.status == Some(Status::Complete) {
        Style::Line
    } else {
        Style::Dashed
    }
}

impl Report<'_> {
    fn time_header(&self) -> String {
        match self.target_accuracy {
            Some(x) => format!("time to accuracy >= {x}"),
            None => "time to target".into(),
        }
    }

    /// The run table, every run (unreadable ones too).
    pub fn rows(&self) -> Vec<Row> {
        self.runs
            .iter()
            .map(|r| {
                let group = self
                    .groups
                    .iter()
                    .find(|g| g.runs.iter().any(|&i| std::ptr::eq(&self.runs[i], r)))
                    .map(|g| format!("{} / {}", g.dataset, g.model))
                    .unwrap_or_else(|| "-".into());
                let (t, note) = match self.target_accuracy {
                    Some(x) => match time_to_accuracy(r, x) {
                        Some(t) => (Some(t), String::new()),
                        None if r.points.iter().any(|p| p.test_accuracy.is_some()) => {
                            (None, "not reached".into())
                        }
                        None => (None, "-".into()),
                    },
                    None => {
                        let tgt = r.config_target_accuracy.filter(|t| *t > 0.0);
                        match (r.summary_time_to_target_s, tgt) {
                            (Some(t), _) => (Some(t), String::new()),
                            (None, Some(x)) => (None, format!("not reached (>= {x})")),
                            (None, None) => (None, "-".into()),
                        }
                    }
                };
                Row {
                    label: r.label.clone(),
                    status: r
                        .status
                        .as_ref()
                        .map(Status::as_str)
                        .unwrap_or("unreadable"),
                    group,
                    scheme: r.scheme.clone().unwrap_or_else(|| "-".into()),
                    scheme_params: r.scheme_params.clone().unwrap_or_default(),
                    ranks: r.world_size,
                    steps: r.steps,
                    final_accuracy: r.final_accuracy,
                    final_test_loss: r.final_test_loss,
                    bits_per_step: r.bits_per_rank_per_step,
                    compression_ratio: r.compression_ratio,
                    time_to_target_s: t,
                    time_to_target_note: note,
                    total_s: r.total_s,
                    dir: r.dir.display().to_string(),
                    notes: r.notes.clone(),
                }
            })
            .collect()
    }

    fn headers(&self) -> Vec<String> {
        [
            "run",
            "status",
            "data set / model",
            "scheme",
            "ranks",
            "final accuracy",
            "bits per rank per step",
            "compression ratio",
            &self.time_header(),
            "training time",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The plots of one group, and notes on plots that could not be drawn.
    pub fn group_figures(&self, g: &Group) -> (Vec<Figure>, Vec<String>) {
        let runs: Vec<&Run> = g.runs.iter().map(|&i| &self.runs[i]).collect();
        let mut figs = Vec::new();
        let mut notes = Vec::new();
        let has_acc = runs
            .iter()
            .any(|r| r.points.iter().any(|p| p.test_accuracy.is_some()));
        let (metric, ylabel) = if has_acc {
            ("accuracy", "test accuracy")
        } else {
            ("loss", "test loss")
        };
        let value = |p: &super::load::Point| {
            if has_acc {
                p.test_accuracy.unwrap_or(f64::NAN)
            } else {
                p.test_loss
            }
        };
        let heading = format!("{} / {}", g.dataset, g.model);
        if runs.iter().any(|r| !r.points.is_empty()) {
            for (x, xlabel, log_x, what) in [
                (
                    "bits",
                    "cumulative bits sent per rank (log scale)",
                    true,
                    "bits",
                ),
                (
                    "time",
                    "wall-clock time of the training loop (s)",
                    false,
                    "time",
                ),
            ] {
                let mut p = Plot::new(
                    format!("{heading}: test {metric} vs {what}"),
                    xlabel,
                    ylabel,
                );
                p.log_x = log_x;
                p.log_y = !has_acc;
                for r in &runs {
                    let pts: Vec<(f64, f64)> = r
                        .points
                        .iter()
                        .map(|pt| {
                            let xv = if x == "bits" {
                                pt.bits_sent_per_rank
                            } else {
                                pt.wall_s
                            };
                            (xv, value(pt))
                        })
                        .collect();
                    let n = pts.len();
                    p.series
                        .push(Series::new(curve_name(r), pts, curve_style(r, n)));
                }
                figs.push(Figure {
                    file: format!("{}-{metric}-vs-{x}.svg", g.slug),
                    title: format!(
                        "Test {metric} against {}",
                        if x == "bits" {
                            "bits communicated"
                        } else {
                            "wall-clock time"
                        }
                    ),
                    caption: format!(
                        "One line per run; x = {xlabel}. Dashed lines and markers: runs that \
                         did not complete, or with a single evaluation."
                    ),
                    svg: p.to_svg(LINE_W, LINE_H),
                });
            }
        } else {
            notes.push("no run of this group has an evaluation yet: no curves".into());
        }

        // Per-rank traffic.
        let with_ranks: Vec<&&Run> = runs.iter().filter(|r| !r.ranks.is_empty()).collect();
        if with_ranks.is_empty() {
            notes.push("no ranks.csv in this group: no per-rank traffic".into());
        } else {
            let mut c = BarChart::new(
                format!("{heading}: bytes per rank"),
                "run, rank",
                "bytes over the run",
            );
            let (mut sent, mut recv) = (Vec::new(), Vec::new());
            for r in &with_ranks {
                for k in &r.ranks {
                    c.categories.push(format!("{} r{}", r.label, k.rank));
                    sent.push(k.bytes_sent);
                    recv.push(k.bytes_received);
                }
            }
            let pos = sent.iter().chain(&recv).copied().filter(|v| *v > 0.0);
            let (lo, hi) = pos.fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
            c.log_y = hi / lo > 50.0;
            if c.log_y {
                c.y_label = "bytes over the run (log scale)".into();
            }
            c.series.push(BarSeries::new("sent", sent));
            c.series.push(BarSeries::new("received", recv));
            let n = c.categories.len() as u32;
            figs.push(Figure {
                file: format!("{}-bytes-per-rank.svg", g.slug),
                title: "Bytes sent and received per rank".into(),
                caption: "From ranks.csv: total gradient-exchange bytes of each rank.".into(),
                svg: c.to_svg(LINE_W.max(300 + 40 * n), LINE_H + 60),
            });
        }

        // Time split.
        let with_time: Vec<&&Run> = runs.iter().filter(|r| r.time_split.is_some()).collect();
        if with_time.is_empty() {
            notes.push("no summary.json or ranks.csv in this group: no time split".into());
        } else {
            let mut c = BarChart::new(
                format!("{heading}: where the time goes"),
                "run",
                "seconds (mean over ranks)",
            );
            c.stacked = true;
            c.categories = with_time.iter().map(|r| r.label.clone()).collect();
            type Part = (&'static str, fn(&super::load::TimeSplit) -> f64);
            let parts: [Part; 6] = [
                ("compute", |t| t.compute_s),
                ("encode", |t| t.encode_s),
                ("communicate", |t| t.comm_s),
                ("decode", |t| t.decode_s),
                ("update", |t| t.update_s),
                ("evaluate", |t| t.eval_s),
            ];
            for (name, f) in parts {
                let v = with_time
                    .iter()
                    .map(|r| r.time_split.as_ref().map_or(0.0, f))
                    .collect();
                c.series.push(BarSeries::new(name, v));
            }
            figs.push(Figure {
                file: format!("{}-time-split.svg", g.slug),
                title: "Time split".into(),
                caption: "Seconds per phase, mean over ranks (summary.json, else ranks.csv)."
                    .into(),
                svg: c.to_svg(LINE_W.max(300 + 90 * with_time.len() as u32), LINE_H + 60),
            });
        }
        (figs, notes)
    }

    /// One plot per quantizer study.
    pub fn study_figures(&self) -> Vec<Figure> {
        let mut figs = Vec::new();
        for (i, s) in self.studies.iter().enumerate() {
            let dtxt = s.d.map(|d| format!(" at d = {d}")).unwrap_or_default();
            let mut p = Plot::new(
                format!("Quantizer error against payload bits{dtxt}"),
                "payload bits per encoded vector (log scale)",
                "E||g_hat - g||^2 / ||g||^2 (log scale)",
            );
            p.log_x = true;
            p.log_y = true;
            // The bound first, so that it always gets the palette's first (strong) colour.
            if let Some(d) = s.d {
                let lo = s
                    .points
                    .iter()
                    .map(|p| p.bits)
                    .fold(f64::INFINITY, f64::min);
                let hi = s.points.iter().map(|p| p.bits).fold(0.0, f64::max);
                p.series.push(Series::new(
                    "lower bound (spec 1): 0.7213 d / bits - 1",
                    studies::bound_curve(d, lo, hi),
                    Style::Dashed,
                ));
            }
            let mut names: Vec<&str> = Vec::new();
            for pt in &s.points {
                if !names.contains(&pt.scheme.as_str()) {
                    names.push(&pt.scheme);
                }
            }
            for n in names {
                let mut pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .filter(|p| p.scheme == n)
                    .map(|p| (p.bits, p.rel_err))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let style = if pts.len() == 1 {
                    Style::Markers
                } else {
                    Style::Line
                };
                p.series.push(Series::new(n, pts, style));
            }
            figs.push(Figure {
                file: format!("quantizers-{}.svg", i + 1),
                title: format!("Quantizer study{dtxt}"),
                caption: format!(
                    "{}: measured relative error per scheme; dashed: the lower bound of spec \
                     section 1, bits >= max(log2(d+1), 0.7213 d / R^2), drawn as R^2 - 1 \
                     (d: {}).",
                    s.file.display(),
                    s.d_note
                ),
                svg: p.to_svg(LINE_W, LINE_H + 40),
            });
        }
        figs
    }

    /// `summary.md`.
    pub fn markdown(&self, rows: &[Row]) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut o = String::from("# vqsgd report\n\n");
        let h = self.headers();
        let _ = writeln!(
            o,
            "| {} |",
            h.iter().map(|s| cell(s)).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(
            o,
            "|{}",
            h.iter()
                .enumerate()
                .map(|(i, _)| if i >= 4 { " ---: |" } else { " --- |" })
                .collect::<String>()
        );
        for r in rows {
            let c: Vec<String> = r.cells().iter().map(|s| cell(s)).collect();
            let _ = writeln!(o, "| {} |", c.join(" | "));
        }
        let noted: Vec<&Row> = rows.iter().filter(|r| !r.notes.is_empty()).collect();
        if !noted.is_empty() || !self.study_errors.is_empty() {
            o.push_str("\n## Notes\n\n");
            for r in noted {
                let _ = writeln!(
                    o,
                    "- **{}** (`{}`): {}",
                    cell(&r.label),
                    r.dir,
                    r.notes.join("; ")
                );
            }
            for e in self.study_errors {
                let _ = writeln!(o, "- quantizer study: {e}");
            }
        }
        o
    }

    /// `summary.csv` (raw numbers).
    pub fn csv(&self, rows: &[Row]) -> String {
        let q = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let n = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        let mut o = String::from(
            "run,status,dataset_model,scheme,scheme_params,ranks,steps,final_accuracy,\
             final_test_loss,bits_per_rank_per_step,compression_ratio,time_to_target_s,\
             total_s,dir,notes\n",
        );
        for r in rows {
            let f = [
                q(&r.label),
                r.status.to_string(),
                q(&r.group),
                q(&r.scheme),
                q(&r.scheme_params),
                r.ranks.map(|x| x.to_string()).unwrap_or_default(),
                r.steps.map(|x| x.to_string()).unwrap_or_default(),
                n(r.final_accuracy),
                n(r.final_test_loss),
                n(r.bits_per_step),
                n(r.compression_ratio),
                n(r.time_to_target_s),
                n(r.total_s),
                q(&r.dir),
                q(&r.notes.join("; ")),
            ];
            let _ = writeln!(o, "{}", f.join(","));
        }
        o
    }

    /// `index.html`, every SVG inlined.
    pub fn html(&self, rows: &[Row], sections: &[(String, Vec<Figure>, Vec<String>)]) -> String {
        let e = xml_escape;
        let n_plots: usize = sections.iter().map(|s| s.1.len()).sum();
        let mut o = String::new();
        o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        o.push_str("<title>vqsgd report</title>\n<style>\n");
        o.push_str(
            "body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\n\
             table{border-collapse:collapse;font-size:14px}\n\
             th,td{border:1px solid #bbb;padding:4px 8px;text-align:left}\n\
             td.num{text-align:right}\n\
             th{background:#eee}\n\
             tr.complete td.status{color:#1a7f37}\n\
             tr.incomplete td.status,tr.failed td.status,tr.unreadable td.status\
             {color:#b3261e;font-weight:bold}\n\
             figure{margin:1.5em 0}\n\
             figure svg{max-width:100%;height:auto;border:1px solid #ddd}\n\
             figcaption{font-size:13px;color:#555}\n\
             .notes li{color:#7a4b00}\n",
        );
        o.push_str("</style>\n</head>\n");
        let _ = writeln!(o, "<body data-plots=\"{n_plots}\">");
        o.push_str("<h1>vqsgd report</h1>\n");
        let n_ok = self.runs.iter().filter(|r| r.has_data()).count();
        let _ = writeln!(
            o,
            "<p>{} run director{} ({} readable) in {} group{} by data set and model; {} \
             quantizer stud{}; {n_plots} plots. Every plot is also a file next to this page.</p>",
            self.runs.len(),
            if self.runs.len() == 1 { "y" } else { "ies" },
            n_ok,
            self.groups.len(),
            if self.groups.len() == 1 { "" } else { "s" },
            self.studies.len(),
            if self.studies.len() == 1 { "y" } else { "ies" },
        );
        o.push_str("<h2 id=\"runs\">Runs</h2>\n<table>\n<tr>");
        for h in self.headers() {
            let _ = write!(o, "<th>{}</th>", e(&h));
        }
        o.push_str("</tr>\n");
        for r in rows {
            let _ = write!(o, "<tr class=\"{}\">", r.status);
            for (i, c) in r.cells().iter().enumerate() {
                let class = match i {
                    1 => " class=\"status\"",
                    i if i >= 4 => " class=\"num\"",
                    _ => "",
                };
                let _ = write!(o, "<td{class}>{}</td>", e(c));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
        o.push_str(
            "<p>Also as <a href=\"summary.md\">summary.md</a> and \
                    <a href=\"summary.csv\">summary.csv</a>.</p>\n",
        );
        let noted: Vec<&Row> = rows.iter().filter(|r| !r.notes.is_empty()).collect();
        if !noted.is_empty() || !self.study_errors.is_empty() {
            o.push_str("<h3>Notes</h3>\n<ul class=\"notes\">\n");
            for r in noted {
                let _ = writeln!(
                    o,
                    "<li><b>{}</b> ({}, <code>{}</code>): {}</li>",
                    e(&r.label),
                    r.status,
                    e(&r.dir),
                    e(&r.notes.join("; "))
                );
            }
            for s in self.study_errors {
                let _ = writeln!(o, "<li>quantizer study: {}</li>", e(s));
            }
            o.push_str("</ul>\n");
        }
        for (k, (title, figs, notes)) in sections.iter().enumerate() {
            let _ = writeln!(o, "<h2 id=\"section-{}\">{}</h2>", k + 1, e(title));
            if !notes.is_empty() {
                o.push_str("<ul class=\"notes\">\n");
                for n in notes {
                    let _ = writeln!(o, "<li>{}</li>", e(n));
                }
                o.push_str("</ul>\n");
            }
            for f in figs {
                let _ = writeln!(o, "<figure id=\"{}\">", e(f.file.trim_end_matches(".svg")));
                let _ = writeln!(o, "<h3>{}</h3>", e(&f.title));
                o.push_str(&inline_svg(&f.svg));
                let _ = writeln!(
                    o,
                    "<figcaption>{} File: <a href=\"{}\">{}</a>.</figcaption>\n</figure>",
                    e(&f.caption),
                    e(&f.file),
                    e(&f.file)
                );
            }
        }
        o.push_str("</body>\n</html>\n");
        o
    }

    /// Write every file into `out` (created); returns the paths, `index.html` first.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        output::create_dir(out)?;
        let mut sections = Vec::new();
        for g in self.groups {
            let (figs, notes) = self.group_figures(g);
            let labels: Vec<&str> = g
                .runs
                .iter()
                .map(|&i| self.runs[i].label.as_str())
                .collect();
            let mut notes = notes;
            notes.insert(0, format!("runs: {}", labels.join(", ")));
            sections.push((format!("{} / {}", g.dataset, g.model), figs, notes));
        }
        let sf = self.study_figures();
        if !sf.is_empty() {
            sections.push(("Quantizer studies".to_string(), sf, Vec::new()));
        }
        let rows = self.rows();
        let mut files = vec![out.join("index.html")];
        for (_, figs, _) in &sections {
            for f in figs {
                let p = out.join(&f.file);
                output::write_atomic(&p, f.svg.as_bytes())?;
                files.push(p);
            }
        }
        let md = out.join("summary.md");
        output::write_atomic(&md, self.markdown(&rows).as_bytes())?;
        let csv = out.join("summary.csv");
        output::write_atomic(&csv, self.csv(&rows).as_bytes())?;
        output::write_atomic(&files[0], self.html(&rows, &sections).as_bytes())?;
        files.push(md);
        files.push(csv);
        Ok(files)
    }
}

/// An SVG document made fit for inlining in HTML: no XML declaration, no namespace URL (HTML
/// parsers put `<svg>` in the SVG namespace themselves).
pub fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(-1000.0), "-1,000");
        let s = inline_svg(
            "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" a=\"1\"/>",
        );
        assert_eq!(s, "<svg a=\"1\"/>");
    }
}

//! Quantizer studies for the report: measured error against payload bits (the CSV that
//! `cargo bench --bench quantizers` writes to `benchmarks/results/bits_vs_error.csv`) and the
//! lower-bound curve of spec section 1.
//!
//! Accepted CSV (header row, columns found by name, any order, extra columns ignored):
//!
//! | column | required | meaning |
//! | --- | --- | --- |
//! | `scheme` | yes | series name (one line per scheme) |
//! | `bits` | yes | payload bits of one encoded vector |
//! | `rel_err` (or `rel_error`, `error`) | yes | measured `E‖ĝ − g‖² / ‖g‖²` |
//! | `params` (or `param`) | no | configuration label of the point |
//! | `d` | no | vector dimension; one plot per `d` |
//! | `lower_bound_err` | no | used to recover `d` when there is no `d` column |
//!
//! The lower bound (spec section 1): an unbiased scheme whose decoded points have norm at most
//! `R` on the unit sphere needs `bits >= max(log2(d+1), log2(e) d / (2 R^2))`. Its error is at
//! most `R^2 - 1` (the cross-polytope attains it), so the curve drawn is
//! `err(bits) = log2(e) d / (2 bits) - 1` for `bits >= log2(d+1)`.

use std::path::{Path, PathBuf};

/// `log2(e) / 2`, the constant of the spec section 1 lower bound (0.7213).
pub const BOUND_CONST: f64 = std::f64::consts::LOG2_E / 2.0;

/// One measured point.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyPoint {
    /// Scheme (series) name.
    pub scheme: String,
    /// Configuration label.
    pub params: String,
    /// Payload bits.
    pub bits: f64,
    /// Measured relative error.
    pub rel_err: f64,
}

/// A quantizer study at one dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct Study {
    /// The CSV it came from.
    pub file: PathBuf,
    /// Vector dimension, when known (needed for the bound).
    pub d: Option<f64>,
    /// How `d` was found (`column d`, `recovered from lower_bound_err`) or why it is unknown.
    pub d_note: String,
    /// Points.
    pub points: Vec<StudyPoint>,
    /// Problems met while reading.
    pub notes: Vec<String>,
}

/// The lower-bound curve at dimension `d` between `lo` and `hi` bits (log-spaced), where it is
/// positive.
pub fn bound_curve(d: f64, lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let start = (d + 1.0).log2().max(lo.max(1.0));
    let end = hi.max(start * 10.0);
    let n = 80;
    let ratio = (end / start).powf(1.0 / n as f64);
    (0..=n)
        .map(|i| start * ratio.powi(i))
        .map(|b| (b, BOUND_CONST * d / b - 1.0))
        .filter(|p| p.1 > 0.0)
        .collect()
}

/// Read a bits-vs-error CSV; one [`Study`] per dimension. An unreadable file is an error
/// message naming it.
pub fn load(path: &Path) -> Result<Vec<Study>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| format!("{}: empty file", path.display()))?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let idx = |names: &[&str]| names.iter().find_map(|n| cols.iter().position(|c| c == n));
    let (Some(scheme), Some(bits), Some(err)) = (
        idx(&["scheme"]),
        idx(&["bits"]),
        idx(&["rel_err", "rel_error", "error"]),
    ) else {
        return Err(format!(
            "{}: header `{header}` needs columns scheme, bits and rel_err (or rel_error, error)",
            path.display()
        ));
    };
    let (params, dcol, lb) = (
        idx(&["params", "param"]),
        idx(&["d"]),
        idx(&["lower_bound_err"]),
    );
    let mut notes = Vec::new();
    // (d or NaN, point, recovered d)
    let mut rows: Vec<(Option<f64>, StudyPoint, Option<f64>)> = Vec::new();
    let n_lines = text.lines().count();
    for (i, l) in lines {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() != cols.len() {
            let why = if i + 1 == n_lines && !text.ends_with('\n') {
                "truncated last line ignored".to_string()
            } else {
                format!(
                    "{} fields where the header has {}; row skipped",
                    f.len(),
                    cols.len()
                )
            };
            notes.push(format!("line {}: {why}", i + 1));
            continue;
        }
        let num = |j: usize| f[j].parse::<f64>().ok().filter(|x| x.is_finite());
        let (Some(b), Some(e)) = (num(bits), num(err)) else {
            notes.push(format!(
                "line {}: unparsable bits or error; row skipped",
                i + 1
            ));
            continue;
        };
        let d = dcol.and_then(num).filter(|d| *d >= 1.0);
        let rec = lb
            .and_then(num)
            .filter(|v| *v > 0.0)
            .map(|v| (v + 1.0) * b / BOUND_CONST);
        let p = StudyPoint {
            scheme: f[scheme].to_string(),
            params: params.map(|j| f[j].to_string()).unwrap_or_default(),
            bits: b,
            rel_err: e,
        };
        rows.push((d, p, rec));
    }
    if rows.is_empty() {
        return Err(format!("{}: no readable rows", path.display()));
    }
    let mut out: Vec<Study> = Vec::new();
    if dcol.is_some() {
        let mut ds: Vec<Option<f64>> = Vec::new();
        for (d, _, _) in &rows {
            if !ds.contains(d) {
                ds.push(*d);
            }
        }
        for d in ds {
            out.push(Study {
                file: path.to_path_buf(),
                d,
                d_note: if d.is_some() {
                    "column d".into()
                } else {
                    "d column empty".into()
                },
                points: rows
                    .iter()
                    .filter(|r| r.0 == d)
                    .map(|r| r.1.clone())
                    .collect(),
                notes: notes.clone(),
            });
        }
    } else {
        // Recover d from the bound column: it was computed with bits rounded, so take the
        // median estimate rounded to 3 significant digits.
        let mut est: Vec<f64> = rows.iter().filter_map(|r| r.2).collect();
        est.sort_by(f64::total_cmp);
        let (d, d_note) = match est.get(est.len() / 2) {
            Some(&m) => {
                let mag = 10f64.powf(m.log10().floor() - 2.0);
                (
                    Some((m / mag).round() * mag),
                    "recovered from lower_bound_err".to_string(),
                )
            }
            None => (
                None,
                "unknown (no d or lower_bound_err column): no bound drawn".into(),
            ),
        };
        out.push(Study {
            file: path.to_path_buf(),
            d,
            d_note,
            points: rows.into_iter().map(|r| r.1).collect(),
            notes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_d_and_draws_bound() {
        let dir = std::env::temp_dir().join(format!("vqsgd-study-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.csv");
        std::fs::write(
            &p,
            "scheme,params,bits,rel_err,rel_err_se,lower_bound_err\n\
             cross_polytope,s=1,56,100000.9,0.3,1287.120572\n\
             cross_polytope,s=10,216,9998.8,0.4,332.957185\nbad,row\n",
        )
        .unwrap();
        let s = load(&p).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].d, Some(100_000.0));
        assert_eq!(s[0].points.len(), 2);
        assert_eq!(s[0].notes.len(), 1);
        let c = bound_curve(1e5, 10.0, 1e6);
        assert!((c[0].0 - (1e5f64 + 1.0).log2()).abs() < 1e-9);
        assert!(c.windows(2).all(|w| w[1].1 < w[0].1 && w[1].1 > 0.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Numeric CSV files: one sample per line, the target in a chosen column.
//!
//! Fields are separated by commas; a line without any comma is split on whitespace instead
//! (the scikit-learn `diabetes` style). Leading `skip_lines` lines (headers) are skipped, as
//! are blank lines. Every row must have as many columns as the first one. Files may be
//! gzip-compressed. Errors name the file, the 1-based line and what was expected.

use std::path::Path;

use super::{bytes_to_text, check_dense, read_bytes, RawData};
use crate::{Error, Result};

/// Read a CSV file. `label_column` is 0-based, negative counts from the end (-1 = last).
/// `expect_cols`, when given, is the column count every row must have (a test file must match
/// its training file).
pub fn read(
    path: &Path,
    skip_lines: usize,
    label_column: i64,
    expect_cols: Option<usize>,
) -> Result<RawData> {
    let text = bytes_to_text(read_bytes(path)?, path)?;
    parse(&text, path, skip_lines, label_column, expect_cols)
}

/// Parse CSV text; `path` is only used in error messages. See [`read`].
pub fn parse(
    text: &str,
    path: &Path,
    skip_lines: usize,
    label_column: i64,
    expect_cols: Option<usize>,
) -> Result<RawData> {
    if let Some(n) = expect_cols.filter(|&n| n < 2) {
        return Err(Error::data(
            path,
            0,
            format!("expected {n} column(s); need at least 2 (features and a target)"),
        ));
    }
    let mut ncols = expect_cols;
    let mut label_idx = 0usize;
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut lines = Vec::new();
    let mut row = Vec::new();
    for (ln0, line) in text.lines().enumerate().skip(skip_lines) {
        let line_no = ln0 + 1;
        if line.trim().is_empty() {
            continue;
        }
        row.clear();
        let fields: Box<dyn Iterator<Item = &str>> = if line.contains(',') {
            Box::new(line.split(',').map(str::trim))
        } else {
            Box::new(line.split_ascii_whitespace())
        };
        for (c, f) in fields.enumerate() {
            let v: f64 = f
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    Error::data(
                        path,
                        line_no,
                        if f.is_empty() {
                            format!("column {} is empty (expected a number)", c + 1)
                        } else {
                            format!("column {}: `{f}` is not a finite number", c + 1)
                        },
                    )
                })?;
            row.push(v);
        }
        let nc = match ncols {
            Some(nc) => nc,
            None => {
                if row.len() < 2 {
                    return Err(Error::data(
                        path,
                        line_no,
                        format!(
                            "found {} column(s); need at least 2 (features and a target)",
                            row.len()
                        ),
                    ));
                }
                ncols = Some(row.len());
                row.len()
            }
        };
        if y.is_empty() {
            label_idx = resolve_label_column(label_column, nc, path, line_no)?;
        }
        if row.len() != nc {
            return Err(Error::data(
                path,
                line_no,
                format!("expected {nc} columns, found {}", row.len()),
            ));
        }
        for (c, &v) in row.iter().enumerate() {
            if c != label_idx {
                let f = v as f32;
                if !f.is_finite() {
                    return Err(Error::data(
                        path,
                        line_no,
                        format!(
                            "column {}: {v:e} is beyond the 32-bit float range of features \
                             (largest {:e})",
                            c + 1,
                            f32::MAX
                        ),
                    ));
                }
                x.push(f);
            }
        }
        y.push(row[label_idx]);
        lines.push(line_no);
    }
    let Some(nc) = ncols.filter(|_| !y.is_empty()) else {
        return Err(Error::data(path, 0, "no samples: the file is empty"));
    };
    check_dense(path, y.len(), nc - 1)?;
    Ok(RawData {
        origin: path.to_path_buf(),
        x,
        n_features: nc - 1,
        y,
        lines,
    })
}

fn resolve_label_column(col: i64, ncols: usize, path: &Path, line: usize) -> Result<usize> {
    let idx = if col < 0 { ncols as i64 + col } else { col };
    if idx < 0 || idx >= ncols as i64 {
        return Err(Error::config(
            "data.label_column",
            format!(
                "column {col} does not exist: {}:{line} has {ncols} columns",
                path.display()
            ),
        ));
    }
    Ok(idx as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comma_and_whitespace() {
        let r = parse(
            "h1,h2,h3\n1,2,3\n\n4, 5 ,6\n",
            Path::new("a.csv"),
            1,
            -1,
            None,
        )
        .unwrap();
        assert_eq!(
            (r.n_features, r.x.clone(), r.y.clone()),
            (2, vec![1., 2., 4., 5.], vec![3., 6.])
        );
        assert_eq!(r.lines, vec![2, 4]);
        let r = parse("1 2 3\n4  5\t6\n", Path::new("a.csv"), 0, 0, None).unwrap();
        assert_eq!((r.x, r.y), (vec![2., 3., 5., 6.], vec![1., 4.]));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let e = parse("1,2,3\n1,2\n", Path::new("a.csv"), 0, -1, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.csv:2") && e.contains("expected 3 columns"),
            "{e}"
        );
        let e = parse("1,2,3\n1,x,3\n", Path::new("a.csv"), 0, -1, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.csv:2") && e.contains("`x`"), "{e}");
        let e = parse("1,2\n", Path::new("a.csv"), 0, 5, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label_column"), "{e}");
        assert!(parse("", Path::new("a.csv"), 0, -1, None).is_err());
        assert!(parse("h\n", Path::new("a.csv"), 1, -1, None).is_err());
        let e = parse("1,2,3\n", Path::new("t.csv"), 0, -1, Some(4))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:1") && e.contains("expected 4"), "{e}");
    }
}

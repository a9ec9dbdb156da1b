//! LIBSVM / svmlight text files: `<label> <index>:<value> ...`, one sample per line.
//!
//! Indices are 1-based; `qid:` tokens and `#` comments are ignored, blank lines skipped.
//! Indices need not increase (a repeated index keeps its last value). The dimension is either
//! given (an index beyond it is an error naming `file:line`) or inferred from the largest
//! index. Files may be gzip-compressed. Every malformed token is an error naming the file, the
//! 1-based line and what was expected.

use std::path::Path;

use super::{bytes_to_text, check_dense, read_bytes, RawData, MAX_DENSE_VALUES};
use crate::{Error, Result};

/// Largest feature index accepted (before any dimension is known).
pub const MAX_INDEX: usize = crate::config::limits::MAX_WIDTH * 64;

/// Read a LIBSVM file. `dim` is the required dimension and where it comes from (used in the
/// error message), or `None` to infer it from the largest index.
pub fn read(path: &Path, dim: Option<(usize, &str)>) -> Result<RawData> {
    let text = bytes_to_text(read_bytes(path)?, path)?;
    parse(&text, path, dim)
}

/// Parse LIBSVM text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path, dim: Option<(usize, &str)>) -> Result<RawData> {
    parse_with_limit(text, path, dim, MAX_DENSE_VALUES)
}

/// [`parse`] with a smaller bound on the dense matrix (`samples x features` values) than
/// [`MAX_DENSE_VALUES`], checked before it is allocated (for callers with less memory to spare,
/// such as the fuzz targets).
pub fn parse_with_limit(
    text: &str,
    path: &Path,
    dim: Option<(usize, &str)>,
    max_values: usize,
) -> Result<RawData> {
    if let Some((d, from)) = dim {
        if d > MAX_INDEX {
            return Err(Error::data(
                path,
                0,
                format!("the dimension {d} of {from} is absurdly large (limit {MAX_INDEX})"),
            ));
        }
    }
    let mut labels = Vec::new();
    let mut lines = Vec::new();
    let mut row_ptr = vec![0usize];
    let mut entries: Vec<(u32, f32)> = Vec::new();
    let mut max_index = 0usize;
    let limit = dim.map(|(d, _)| d).unwrap_or(MAX_INDEX);

    for (ln0, full) in text.lines().enumerate() {
        let line_no = ln0 + 1;
        let content = full.split('#').next().unwrap_or("");
        let mut tokens = content.split_ascii_whitespace();
        let Some(label_tok) = tokens.next() else {
            continue;
        };
        let err = |msg: String| Error::data(path, line_no, msg);
        let label: f64 = label_tok
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| err(format!("label `{label_tok}` is not a finite number")))?;
        for tok in tokens {
            let Some((k, v)) = tok.split_once(':') else {
                return Err(err(format!("expected `index:value`, found `{tok}`")));
            };
            if k == "qid" {
                continue;
            }
            let index: usize = k.parse().map_err(|_| {
                err(format!(
                    "feature index `{k}` in `{tok}` is not a positive integer"
                ))
            })?;
            if index == 0 {
                return Err(err(format!(
                    "feature index 0 in `{tok}`: indices are 1-based"
                )));
            }
            if index > limit {
                return Err(err(match dim {
                    Some((d, from)) => {
                        format!("feature index {index} is beyond the dimension {d} of {from}")
                    }
                    None => format!("feature index {index} is absurdly large (limit {MAX_INDEX})"),
                }));
            }
            let value: f32 = match v.parse::<f32>() {
                Ok(x) if x.is_finite() => x,
                // `1e39` parses as an f32 infinity: say why it is refused.
                _ if v.parse::<f64>().is_ok_and(f64::is_finite) => {
                    return Err(err(format!(
                        "value `{v}` of feature {index} is beyond the 32-bit float range \
                         (largest {:e})",
                        f32::MAX
                    )))
                }
                _ => {
                    return Err(err(format!(
                        "value `{v}` of feature {index} is not a finite number"
                    )))
                }
            };
            max_index = max_index.max(index);
            entries.push((index as u32 - 1, value));
        }
        labels.push(label);
        lines.push(line_no);
        row_ptr.push(entries.len());
    }
    if labels.is_empty() {
        return Err(Error::data(path, 0, "no samples: the file is empty"));
    }
    let d = dim.map(|(d, _)| d).unwrap_or(max_index);
    if d == 0 {
        return Err(Error::data(
            path,
            0,
            "no features: no line has an `index:value` token",
        ));
    }
    let n = labels.len();
    check_dense(path, n, d)?;
    if n.saturating_mul(d) > max_values {
        return Err(Error::data(
            path,
            0,
            format!("{n} samples x {d} features is more than the limit of {max_values} values"),
        ));
    }
    let mut x = vec![0f32; n * d];
    for i in 0..n {
        for &(j, v) in &entries[row_ptr[i]..row_ptr[i + 1]] {
            x[i * d + j as usize] = v;
        }
    }
    Ok(RawData {
        origin: path.to_path_buf(),
        x,
        n_features: d,
        y: labels,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sparse_rows() {
        let t = "+1 1:0.5 3:2\n\n-1 2:1 # comment\n1 qid:3 3:-1 1:4\n";
        let r = parse(t, Path::new("f.svm"), None).unwrap();
        assert_eq!(r.n_features, 3);
        assert_eq!(r.y, vec![1.0, -1.0, 1.0]);
        assert_eq!(r.lines, vec![1, 3, 4]);
        assert_eq!(r.x, vec![0.5, 0.0, 2.0, 0.0, 1.0, 0.0, 4.0, 0.0, -1.0]);
    }

    #[test]
    fn bad_tokens_name_file_and_line() {
        for (t, want) in [
            ("1 1:1\n1 3:abc\n", "f.svm:2"),
            ("1 1:1\n1 2:1 5\n", "f.svm:2"),
            ("1 1:1\n\n1 0:1\n", "f.svm:3"),
            ("x 1:1\n", "f.svm:1"),
            ("1 a:1\n", "f.svm:1"),
        ] {
            let e = parse(t, Path::new("f.svm"), None).unwrap_err().to_string();
            assert!(e.contains(want), "{t:?}: {e}");
        }
        let e = parse(
            "1 1:1\n1 9:1\n",
            Path::new("f.svm"),
            Some((4, "data.n_features")),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.svm:2") && e.contains('9') && e.contains('4'),
            "{e}"
        );
        assert!(parse("\n \n", Path::new("f.svm"), None).is_err());
    }
}

//! The embedded scikit-learn `digits` set (UCI optdigits, CC BY 4.0; see `data/README.md`).
//!
//! 1,797 8x8 grey-scale images with 17 levels (0..16) and labels 0..9, compiled into the
//! binary so that the default experiment needs no files. Parsed with the CSV reader; pixels
//! are scaled to [0, 1] like MNIST's.

use std::io::Read;
use std::path::Path;

use super::RawData;
use crate::{Error, Result};

/// The gzip-compressed CSV (64 pixel columns then the label), as shipped by scikit-learn.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Pseudo-path used in messages about the embedded file.
pub const ORIGIN: &str = "<embedded>/digits.csv.gz";

/// Decode and parse the embedded set (pixels scaled to [0, 1], labels 0..9).
pub fn load() -> Result<RawData> {
    let origin = Path::new(ORIGIN);
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::data(origin, 0, format!("corrupt embedded data: {e}")))?;
    let mut raw = super::csv::parse(&text, origin, 0, -1, None)?;
    for v in &mut raw.x {
        *v /= 16.0;
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_digits_parse() {
        let r = super::load().unwrap();
        assert_eq!((r.len(), r.n_features), (1797, 64));
        assert!(r.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let mut labels = r.y.clone();
        labels.sort_by(f64::total_cmp);
        labels.dedup();
        assert_eq!(labels, (0..10).map(f64::from).collect::<Vec<_>>());
    }
}

//! Seeded synthetic data from a linear teacher.
//!
//! Regression: `w* ~ N(0, 1/d)`, `x ~ N(0, I)`, `y = x.w* + noise * N(0, 1)`.
//! Classification: `W* ~ N(0, 1/d)` of shape `d x K`, `y = argmax(x W* + noise * N(0, I))`.
//! Everything is drawn in a fixed order from `rng::stream(seed, Purpose::Data, [tag])`, so the
//! data set depends only on the seed and the sizes (never on the number of ranks).

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::{check_dense, RawData};
use crate::config::limits;
use crate::rng::{self, Purpose};
use crate::{Error, Result};

const TAG_REGRESSION: u64 = 0x5245_4752;
const TAG_CLASSIFICATION: u64 = 0x434c_4153;

fn check_sizes(n: usize, d: usize, noise: f64) -> Result<()> {
    if !(2..=limits::MAX_SYNTHETIC).contains(&n) {
        return Err(Error::config(
            "data.n_samples",
            format!("{n} is not in [2, {}]", limits::MAX_SYNTHETIC),
        ));
    }
    if !(1..=limits::MAX_WIDTH).contains(&d) {
        return Err(Error::config(
            "data.synthetic_features",
            format!("{d} is not in [1, {}]", limits::MAX_WIDTH),
        ));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Error::config("data.noise", format!("{noise} must be >= 0")));
    }
    check_dense("data.n_samples".as_ref(), n, d).map_err(|_| {
        Error::config(
            "data.n_samples",
            format!("{n} samples x {d} features is too large"),
        )
    })
}

fn origin(name: &str) -> std::path::PathBuf {
    format!("<synthetic>/{name}").into()
}

/// `n` samples of `d` features with a real target (see the module doc).
pub fn regression(n: usize, d: usize, noise: f64, seed: u64) -> Result<RawData> {
    check_sizes(n, d, noise)?;
    let mut r = rng::stream(seed, Purpose::Data, &[TAG_REGRESSION]);
    let sd = (1.0 / d as f64).sqrt();
    let w: Vec<f64> = (0..d)
        .map(|_| sd * r.sample::<f64, _>(StandardNormal))
        .collect();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let mut dot = 0f64;
        for wj in &w {
            let v: f32 = r.sample(StandardNormal);
            x.push(v);
            dot += v as f64 * wj;
        }
        y.push(dot + noise * r.sample::<f64, _>(StandardNormal));
    }
    Ok(RawData {
        origin: origin("regression"),
        x,
        n_features: d,
        y,
        lines: vec![0; n],
    })
}

/// `n` samples of `d` features in `k` classes (see the module doc).
pub fn classification(n: usize, d: usize, k: usize, noise: f64, seed: u64) -> Result<RawData> {
    check_sizes(n, d, noise)?;
    if !(2..=super::MAX_CLASSES).contains(&k) {
        return Err(Error::config(
            "data.n_classes",
            format!("{k} is not in [2, {}]", super::MAX_CLASSES),
        ));
    }
    let mut r = rng::stream(seed, Purpose::Data, &[TAG_CLASSIFICATION]);
    let sd = (1.0 / d as f64).sqrt();
    // W* row-major d x k.
    let w: Vec<f64> = (0..d * k)
        .map(|_| sd * r.sample::<f64, _>(StandardNormal))
        .collect();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    let mut scores = vec![0f64; k];
    for _ in 0..n {
        scores.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..d {
            let v: f32 = r.sample(StandardNormal);
            x.push(v);
            for (s, wjc) in scores.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                *s += v as f64 * wjc;
            }
        }
        let mut best = 0;
        let mut best_s = f64::NEG_INFINITY;
        for (c, s) in scores.iter().enumerate() {
            let s = s + noise * r.sample::<f64, _>(StandardNormal);
            if s > best_s {
                best = c;
                best_s = s;
            }
        }
        y.push(best as f64);
    }
    Ok(RawData {
        origin: origin("classification"),
        x,
        n_features: d,
        y,
        lines: vec![0; n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_sized() {
        let a = regression(50, 4, 0.1, 3).unwrap();
        let b = regression(50, 4, 0.1, 3).unwrap();
        assert_eq!((a.x.len(), a.y.len()), (200, 50));
        assert_eq!(a.y, b.y);
        assert_ne!(a.y, regression(50, 4, 0.1, 4).unwrap().y);
        let c = classification(300, 5, 3, 0.0, 1).unwrap();
        for k in 0..3 {
            assert!(c.y.contains(&(k as f64)), "class {k} missing");
        }
        assert!(classification(10, 5, 1, 0.0, 1).is_err());
        assert!(regression(1, 5, 0.0, 1).is_err());
    }
}

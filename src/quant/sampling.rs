//! O(d + s) sampling of `s` i.i.d. indices from non-negative weights (spec `vqsgd.md` section 1,
//! "draw one index J with P(J = j) = a_j", repeated `s` times).
//!
//! The weights of every point set here are affine in the input coordinates
//! (`a_i = A f(x_i) + B` with `f = |.|` or the identity), so a first, vectorised pass computes
//! per-chunk sums of `f(x_i)` in `f64` ([`chunk_stats`]). `s` sorted uniforms come from
//! exponential spacings ([`sorted_uniforms`], O(s), no sort). One sweep over the chunk prefix
//! sums ([`sweep`]) descends only into chunks that contain a target and there recomputes the
//! element weights sequentially in `f64`. Cost: one read of the input, `d / CHUNK` sequential
//! additions, and at most `s * CHUNK` element weights.

use rand_distr::Exp1;

/// Elements per chunk of the two-level sweep.
pub const CHUNK: usize = 32;

/// Lanes of the vectorised reductions.
const LANES: usize = 8;

/// Sum of squares and sum of `f(x_i)` (`|x_i|` when `ABS`, else `x_i`), both in `f64`, with the
/// per-chunk sums of `f(x_i)` written to `chunks` (cleared first).
pub fn chunk_stats<T: Copy + Into<f64>, const ABS: bool>(
    x: &[T],
    chunks: &mut Vec<f64>,
) -> (f64, f64) {
    chunks.clear();
    let mut sq = [0f64; LANES];
    let mut total = 0f64;
    for ch in x.chunks(CHUNK) {
        let mut a = [0f64; LANES];
        let mut it = ch.chunks_exact(LANES);
        for c8 in &mut it {
            for j in 0..LANES {
                let v: f64 = c8[j].into();
                a[j] += if ABS { v.abs() } else { v };
                sq[j] += v * v;
            }
        }
        for (j, &v) in it.remainder().iter().enumerate() {
            let v: f64 = v.into();
            a[j] += if ABS { v.abs() } else { v };
            sq[j] += v * v;
        }
        let s = a.iter().sum::<f64>();
        chunks.push(s);
        total += s;
    }
    (sq.iter().sum(), total)
}

/// `s` sorted uniforms on `[0, total)` from exponential spacings, into `out` (cleared first).
pub fn sorted_uniforms<R: rand::Rng>(rng: &mut R, s: usize, total: f64, out: &mut Vec<f64>) {
    out.clear();
    let mut acc = 0f64;
    for _ in 0..s {
        acc += rng.sample::<f64, _>(Exp1);
        out.push(acc);
    }
    acc += rng.sample::<f64, _>(Exp1);
    let scale = total / acc;
    for t in out.iter_mut() {
        *t *= scale;
    }
}

/// A uniform on `[0, 1)` with 53 random bits.
#[inline]
pub fn uniform<R: rand::Rng>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

/// Sweep sorted `targets` (on `[base, base + sum of weights)`) over the elements `0..n`, whose
/// weights are `weight(i)` and whose chunk sums are `chunk_w(c)` for chunks of [`CHUNK`]
/// elements; call `emit(i)` once per target, in order. Returns how many targets were consumed
/// (all of them). Targets that land past the last element through rounding go to the last
/// element of positive weight.
pub fn sweep(
    n: usize,
    base: f64,
    chunk_w: impl Fn(usize) -> f64,
    weight: impl Fn(usize) -> f64,
    targets: &[f64],
    mut emit: impl FnMut(usize),
) {
    let s = targets.len();
    let mut t = 0usize;
    let mut p = base;
    let mut last_chunk = None;
    let nchunks = n.div_ceil(CHUNK);
    let last_positive = |c: usize| {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(n);
        (lo..hi).rev().find(|&i| weight(i) > 0.0).unwrap_or(hi - 1)
    };
    for c in 0..nchunks {
        if t >= s {
            break;
        }
        let cw = chunk_w(c);
        let end = p + cw;
        if cw > 0.0 {
            last_chunk = Some(c);
        }
        if targets[t] < end {
            let lo = c * CHUNK;
            let hi = (lo + CHUNK).min(n);
            let mut q = p;
            for i in lo..hi {
                q += weight(i);
                while t < s && targets[t] < q {
                    emit(i);
                    t += 1;
                }
            }
            // Rounding between the chunk sum and the sequential sum.
            if t < s && targets[t] < end {
                let i = last_positive(c);
                while t < s && targets[t] < end {
                    emit(i);
                    t += 1;
                }
            }
        }
        p = end;
    }
    if t < s {
        let i = last_chunk.map(last_positive).unwrap_or(n.saturating_sub(1));
        while t < s {
            emit(i);
            t += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sorted_uniforms_are_sorted_and_in_range() {
        let mut rng = crate::rng::Rng::seed_from_u64(1);
        let mut v = Vec::new();
        sorted_uniforms(&mut rng, 1000, 2.5, &mut v);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert!(v[0] >= 0.0 && v[999] < 2.5);
        let mean = v.iter().sum::<f64>() / 1000.0;
        assert!((mean - 1.25).abs() < 0.1);
    }

    #[test]
    fn sweep_matches_the_naive_inverse_cdf() {
        let w: Vec<f64> = (0..100).map(|i| ((i * 37) % 11) as f64).collect();
        let mut chunks = Vec::new();
        chunk_stats::<f64, false>(&w, &mut chunks);
        let total: f64 = w.iter().sum();
        let targets: Vec<f64> = (0..500).map(|j| (j as f64 + 0.5) / 500.0 * total).collect();
        let mut got = Vec::new();
        sweep(100, 0.0, |c| chunks[c], |i| w[i], &targets, |i| got.push(i));
        let mut want = Vec::new();
        for &t in &targets {
            let mut p = 0.0;
            for (i, &wi) in w.iter().enumerate() {
                p += wi;
                if t < p {
                    want.push(i);
                    break;
                }
            }
        }
        assert_eq!(got, want);
    }
}

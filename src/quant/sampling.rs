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
pub const LANES: usize = 8;

/// Sum of squares and sum of `f(x_i)` (`|x_i|` when `ABS`, else `x_i`), with the per-chunk sums
/// of `f(x_i)` written to `chunks` (cleared first).
///
/// Precision: inside a chunk ([`CHUNK`] elements) the sums run in the input's precision over
/// [`LANES`] independent lanes (so the loop vectorises); the chunk sums are then accumulated in
/// `f64`. For `f32` input the relative error of a chunk sum is a few `f32` ulps (~1e-7), the
/// precision of the gradient itself; the long sums (norm, total, prefix over chunks) are `f64`.
pub fn chunk_stats<T: Lane, const ABS: bool>(x: &[T], chunks: &mut Vec<f64>) -> (f64, f64) {
    chunks.clear();
    chunks.reserve(x.len().div_ceil(CHUNK));
    // Squares: per-chunk lanes in T, flushed into f64 lanes after every chunk (no long T sums).
    let mut sq = [0f64; LANES];
    let mut total = 0f64;
    let f = |v: T| if ABS { v.abs() } else { v };
    let mut full = x.chunks_exact(CHUNK);
    for ch in &mut full {
        let mut a = [T::ZERO; LANES];
        let mut q = [T::ZERO; LANES];
        for c in ch.chunks_exact(LANES) {
            for j in 0..LANES {
                a[j] = a[j].add(f(c[j]));
                q[j] = q[j].add(c[j].mul(c[j]));
            }
        }
        for j in 0..LANES {
            sq[j] += q[j].into();
        }
        // Pairwise (tree) reduction of the lanes: vectorisable, no long dependency chain.
        let mut w = LANES;
        while w > 1 {
            w /= 2;
            for j in 0..w {
                a[j] = a[j].add(a[j + w]);
            }
        }
        let s: f64 = a[0].into();
        chunks.push(s);
        total += s;
    }
    let rest = full.remainder();
    if !rest.is_empty() {
        let mut s = 0f64;
        for &v in rest {
            s += f(v).into();
            sq[0] += v.mul(v).into();
        }
        chunks.push(s);
        total += s;
    }
    (sq.iter().sum(), total)
}

/// The element types [`chunk_stats`] runs on (`f32` gradients, `f64` rotated vectors).
pub trait Lane: Copy + Into<f64> {
    /// Zero.
    const ZERO: Self;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self * o`.
    fn mul(self, o: Self) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
}

macro_rules! lane {
    ($t:ty) => {
        impl Lane for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}
lane!(f32);
lane!(f64);

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

/// Chunks ahead of the one being rescanned whose input is prefetched.
const PREFETCH_AHEAD: usize = 8;

/// Hint the CPU to load chunk `c` of `x` into cache (no effect on results; a no-op off x86_64).
#[inline(always)]
pub fn prefetch_chunk<T>(x: &[T], c: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let lo = (c * CHUNK).min(x.len());
        let hi = ((c + 1) * CHUNK).min(x.len());
        let bytes = (hi - lo) * std::mem::size_of::<T>();
        let base = x[lo..hi].as_ptr().cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetching is a hint that never faults; the address is inside `x`.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    base.wrapping_add(off),
                );
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, c);
}

/// Sweep sorted `targets` (on `[base, base + sum of weights)`) over the elements `0..n`, whose
/// weights are `weight(i)` and whose chunk sums are `chunk_w(c)` for chunks of [`CHUNK`]
/// elements; call `emit(i)` once per target, in order (every target is consumed).
///
/// Two phases: the chunk-level sweep records the chunks that hold a target in `hits` (touching
/// only the chunk sums), then those chunks are rescanned element by element, with the input of
/// chunks a few hits ahead prefetched by `prefetch(c)` (the rescans would otherwise wait for
/// memory at every hit when the input is larger than the cache). Inside a chunk the scan stops
/// after its last target. Targets that land past a chunk's or the last element through rounding
/// go to the last element of positive weight of that chunk.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    n: usize,
    base: f64,
    chunk_w: impl Fn(usize) -> f64,
    weight: impl Fn(usize) -> f64,
    prefetch: impl Fn(usize),
    targets: &[f64],
    hits: &mut Vec<(usize, f64, f64)>,
    mut emit: impl FnMut(usize),
) {
    let s = targets.len();
    let nchunks = n.div_ceil(CHUNK);
    let last_positive = |c: usize| {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(n);
        (lo..hi).rev().find(|&i| weight(i) > 0.0).unwrap_or(hi - 1)
    };
    // Phase 1: chunk level.
    hits.clear();
    let mut t = 0usize;
    let mut p = base;
    let mut last_chunk = None;
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
            hits.push((c, p, end));
            while t < s && targets[t] < end {
                t += 1;
            }
        }
        p = end;
    }
    // Phase 2: rescan the hit chunks.
    let mut t = 0usize;
    for h in 0..hits.len() {
        if let Some(&(c, _, _)) = hits.get(h + PREFETCH_AHEAD) {
            prefetch(c);
        }
        let (c, start, end) = hits[h];
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(n);
        let mut q = start;
        for i in lo..hi {
            q += weight(i);
            while t < s && targets[t] < q {
                emit(i);
                t += 1;
            }
            if t >= s || targets[t] >= end {
                break;
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
        let mut hits = Vec::new();
        sweep(
            100,
            0.0,
            |c| chunks[c],
            |i| w[i],
            |_| {},
            &targets,
            &mut hits,
            |i| got.push(i),
        );
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

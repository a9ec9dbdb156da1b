//! The cross-polytope point set (spec `vqsgd.md` section 2).
//!
//! Points `+-sqrt(d) e_i` (`m = 2d`). For `||v||_2 <= 1` with `gamma = 1 - ||v||_1 / sqrt(d)`
//! (clamped at 0): `a(+i) = max(v_i, 0)/sqrt(d) + gamma/(2d)`, `a(-i) = max(-v_i, 0)/sqrt(d) +
//! gamma/(2d)`. Sampling uses the equivalent two-step sampler: coordinate `i` with probability
//! `pi_i = |v_i|/sqrt(d) + gamma/d`, then sign `+` with probability
//! `(1 + v_i / (sqrt(d) pi_i)) / 2`. `E||c_J||^2 = d` exactly.
//!
//! The scaled (private) variant of section 7 is this sampler applied to `v / c`, decoded with the
//! extra factor `c` (see [`crate::quant::privacy`]).

use super::coding::insertion_sort;
use super::sampling;

/// Reference convex weights of `v` (`||v|| <= 1`), slow and simple, for tests: entry `j < d` is
/// `a(+j)`, entry `d + j` is `a(-j)` (the fixed-width symbol order of the payload).
pub fn convex_weights(v: &[f64]) -> Vec<f64> {
    let d = v.len();
    let sd = (d as f64).sqrt();
    let l1: f64 = v.iter().map(|x| x.abs()).sum();
    let gamma = (1.0 - l1 / sd).max(0.0);
    let mut a = vec![0.0; 2 * d];
    for (i, &x) in v.iter().enumerate() {
        a[i] = x.max(0.0) / sd + gamma / (2.0 * d as f64);
        a[d + i] = (-x).max(0.0) / sd + gamma / (2.0 * d as f64);
    }
    a
}

/// The point of fixed-width symbol `j` (`j < d`: `+sqrt(d) e_j`, else `-sqrt(d) e_{j-d}`).
pub fn vertex(d: usize, j: usize) -> Vec<f64> {
    let mut p = vec![0.0; d];
    let sd = (d as f64).sqrt();
    if j < d {
        p[j] = sd;
    } else {
        p[j - d] = -sd;
    }
    p
}

/// Draw `s` i.i.d. vertices for `v = x * inv` (`||v|| <= 1`) in O(d + s), pushing the symbols
/// `2 i + [sign is -]` to `out` in non-decreasing order of `i`. `bounds` and `sum_abs` come from
/// [`sampling::chunk_bounds`] with `ABS = true` on `x` (`bounds` is converted in place).
///
/// The weights are `pi_i = a |x_i| + b` with `a = inv / sqrt(d)`, `b = gamma / d`; the sampler
/// works in units of `a` (weights `|x_i| + b/a`), and so does the sign draw:
/// `P(-) = 1 - a(+i)/pi_i` is `U (|x_i| + b/a) >= max(x_i, 0) + b/(2a)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sample<T: sampling::Lane, R: rand::RngCore + Clone>(
    x: &[T],
    inv: f64,
    s: usize,
    bounds: &mut [f64],
    sum_abs: f64,
    rng: &mut R,
    targets: &mut Vec<f64>,
    chunk_of: &mut Vec<u32>,
    out: &mut Vec<u32>,
) {
    let n = x.len();
    let sd = (n as f64).sqrt();
    let a = inv / sd;
    let gamma = (1.0 - sum_abs * a).max(0.0);
    let off = gamma / (n as f64 * a);
    let w = sampling::Weights::<T, true>::new(x, bounds, off);
    sampling::sorted_uniforms(rng, s, w.total(), targets);
    let start = out.len();
    let signs = Signs {
        x,
        off,
        rng: rng.clone(),
        out: &mut *out,
    };
    *rng = w.sample_sorted(targets, chunk_of, signs).rng;
    insertion_sort(&mut out[start..]);
}

/// The sign draw of [`sample`] for each sampled coordinate, pushing its symbol.
struct Signs<'a, T, R> {
    x: &'a [T],
    off: f64,
    rng: R,
    out: &'a mut Vec<u32>,
}

impl<T: sampling::Lane, R: rand::RngCore> sampling::Emit for Signs<'_, T, R> {
    #[inline(always)]
    fn emit(&mut self, i: usize) {
        let xi: f64 = self.x[i].into();
        let pi = xi.abs() + self.off;
        let a_plus = xi.max(0.0) + 0.5 * self.off;
        let neg = sampling::uniform(&mut self.rng) * pi >= a_plus;
        self.out.push((2 * i + usize::from(neg)) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: f64 = 1e-10;

    #[test]
    fn spec_test_vectors() {
        let a = convex_weights(&[0.6, -0.8]);
        let want = [0.4267766953, 0.0025126266, 0.0025126266, 0.5681980515];
        for (x, w) in a.iter().zip(want) {
            assert!((x - w).abs() < EXACT, "{a:?}");
        }
        let g = [1.0, -20.0, -1.0, 3.0, 5.5, 2.0];
        let norm = g.iter().map(|x: &f64| x * x).sum::<f64>().sqrt();
        assert!((norm - 21.1009478460).abs() < EXACT);
        let v: Vec<f64> = g.iter().map(|x| x / norm).collect();
        let gamma = 1.0 - v.iter().map(|x| x.abs()).sum::<f64>() / 6f64.sqrt();
        assert!((gamma - 0.3712097894).abs() < EXACT);
        let a = convex_weights(&v);
        let plus = [
            0.0502815402,
            0.0309341491,
            0.0309341491,
            0.0889763224,
            0.1373448001,
            0.0696289313,
        ];
        let minus = [
            0.0309341491,
            0.4178819710,
            0.0502815402,
            0.0309341491,
            0.0309341491,
            0.0309341491,
        ];
        for i in 0..6 {
            assert!((a[i] - plus[i]).abs() < EXACT);
            assert!((a[6 + i] - minus[i]).abs() < EXACT);
        }
    }
}

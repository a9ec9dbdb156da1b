//! The regular simplex, the smallest point set (spec `vqsgd.md` section 3).
//!
//! Unit simplex `v_0 = -(1/sqrt d) 1`, `v_i = sqrt((d+1)/d) (e_i - mu 1)` for `i = 1..d`, with
//! `mu = (sqrt(d+1) - 1)/(d sqrt(d+1))`; points `c_i = d v_i` (`R^2 = d^2`), `m = d + 1`.
//! Weights for `||x|| <= 1`: `a_i = (1 + <x, v_i>)/(d+1)`, in O(d) through `S = sum x_k`:
//! `a_0 = (1 - S/sqrt d)/(d+1)`, `a_i = (1 + sqrt((d+1)/d)(x_i - mu S))/(d+1)`.
//!
//! Payload symbol `j` is vertex `v_j` (symbol 0 is `v_0`, symbol `i >= 1` is coordinate `i - 1`).
//! Decoding sums the weights landing on each vertex and builds the result in one O(d) pass from
//! the closed form ([`decode_sums`]). The private variant (section 7) samples `x / c` and decodes
//! with factor `c`.

use super::coding::insertion_sort;
use super::sampling;

/// `mu` of the closed form.
fn mu(d: usize) -> f64 {
    let s1 = (d as f64 + 1.0).sqrt();
    (s1 - 1.0) / (d as f64 * s1)
}

/// Unit simplex vertex `v_j` (not scaled by `d`).
pub fn unit_vertex(d: usize, j: usize) -> Vec<f64> {
    let sd = (d as f64).sqrt();
    if j == 0 {
        return vec![-1.0 / sd; d];
    }
    let r = ((d as f64 + 1.0) / d as f64).sqrt();
    let m = mu(d);
    let mut v = vec![-r * m; d];
    v[j - 1] += r;
    v
}

/// The point `c_j = d v_j` that symbol `j` decodes to (times the norm).
pub fn vertex(d: usize, j: usize) -> Vec<f64> {
    unit_vertex(d, j)
        .into_iter()
        .map(|x| x * d as f64)
        .collect()
}

/// Reference convex weights `a_j = (1 + <x, v_j>)/(d+1)`, `j = 0..=d`, from the explicit
/// vertices (slow, for tests).
pub fn convex_weights(x: &[f64]) -> Vec<f64> {
    let d = x.len();
    (0..=d)
        .map(|j| {
            let v = unit_vertex(d, j);
            (1.0 + v.iter().zip(x).map(|(a, b)| a * b).sum::<f64>()) / (d as f64 + 1.0)
        })
        .collect()
}

/// Draw `s` i.i.d. vertices for `x * inv` (`||x inv|| <= 1`) in O(d + s), pushing symbols in
/// non-decreasing order. `bounds` and `sum` come from [`sampling::chunk_bounds`] with
/// `ABS = false` on `x` (`bounds` is converted in place). The sampler works in units of `beta`:
/// vertex `i >= 1` has weight `max(x_i + alpha/beta, 0)`, vertex 0 weight `a_0 / beta`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sample<T: sampling::Lane, R: rand::RngCore + Clone>(
    x: &[T],
    inv: f64,
    s: usize,
    bounds: &mut [f64],
    sum: f64,
    rng: &mut R,
    targets: &mut Vec<f64>,
    chunk_of: &mut Vec<u32>,
    out: &mut Vec<u32>,
) {
    let n = x.len();
    let nf = n as f64;
    let sd = nf.sqrt();
    let r = ((nf + 1.0) / nf).sqrt();
    let sx = sum * inv;
    let a0 = ((1.0 - sx / sd) / (nf + 1.0)).max(0.0);
    let alpha = (1.0 - r * mu(n) * sx) / (nf + 1.0);
    let beta = r * inv / (nf + 1.0);
    let a0f = a0 / beta;
    let w = sampling::Weights::<T, false>::new(x, bounds, alpha / beta);
    sampling::sorted_uniforms(rng, s, a0f + w.total(), targets);
    let head = targets.partition_point(|&t| t < a0f);
    let start = out.len();
    out.extend(std::iter::repeat_n(0u32, head));
    for t in &mut targets[head..] {
        *t -= a0f;
    }
    let _ = w.sample_sorted(&mut targets[head..], chunk_of, |i: usize| {
        out.push(i as u32 + 1)
    });
    insertion_sort(&mut out[start..]);
}

/// Write `sum_j w[j] d v_j` into `out` (length `d`) from the per-vertex weight sums `w`
/// (length `d + 1`), in O(d).
pub fn decode_sums(w: &[f64], out: &mut [f32]) {
    let d = out.len();
    let nf = d as f64;
    let r = (nf + 1.0) / nf;
    let r = r.sqrt();
    let rest: f64 = w[1..].iter().sum();
    let base = nf * (-w[0] / nf.sqrt() - r * mu(d) * rest);
    let scale = nf * r;
    for (o, &wi) in out.iter_mut().zip(&w[1..]) {
        *o = (base + scale * wi) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vector_and_closed_form() {
        let a = convex_weights(&[0.6, -0.8]);
        let want = [0.3804737854, 0.5955369106, 0.0239893040];
        for (x, w) in a.iter().zip(want) {
            assert!((x - w).abs() < 1e-10, "{a:?}");
        }
        // Vertices have norm d and sum to zero.
        for d in [1usize, 2, 5, 17] {
            let mut sum = vec![0.0; d];
            for j in 0..=d {
                let v = vertex(d, j);
                let n2: f64 = v.iter().map(|x| x * x).sum();
                assert!((n2.sqrt() - d as f64).abs() < 1e-9);
                for (s, x) in sum.iter_mut().zip(&v) {
                    *s += x;
                }
            }
            assert!(sum.iter().all(|x| x.abs() < 1e-9));
        }
        // decode_sums agrees with the explicit vertices.
        let d = 7;
        let w: Vec<f64> = (0..=d).map(|j| (j as f64 * 0.3).cos()).collect();
        let mut out = vec![0f32; d];
        decode_sums(&w, &mut out);
        for (k, &o) in out.iter().enumerate() {
            let want: f64 = (0..=d).map(|j| w[j] * vertex(d, j)[k]).sum();
            assert!((f64::from(o) - want).abs() < 1e-5);
        }
    }
}

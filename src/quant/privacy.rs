//! Local differential privacy of the scaled point sets (spec `vqsgd.md` section 7).
//!
//! Scaling the cross-polytope (or simplex) points by `c > 1` gives every vertex a probability of
//! at least `(1 - 1/c)/m` for every unit-ball input, which bounds the ratio of the probabilities
//! of any output under two inputs by `e^epsilon`:
//!
//! - cross-polytope in dimension `d`: `epsilon = ln((c sqrt d + 2d - 1) / ((c - 1) sqrt d))`,
//!   inverse `c = (2d - 1 + e^eps sqrt d) / (sqrt d (e^eps - 1))`;
//! - simplex: `epsilon = ln((c + 1)/(c - 1))`, inverse `c = (e^eps + 1)/(e^eps - 1)`.
//!
//! Composition is basic (spec section 7): `s` repetitions of a block cost `s epsilon`, the blocks
//! of one gradient add up (one input changes every block), and `T` steps cost `T` times the
//! per-step value ([`cumulative_epsilon`]).

/// Epsilon of one sample of the cross-polytope scaled by `c > 1` in dimension `d`.
pub fn epsilon_cross_polytope(c: f64, d: usize) -> f64 {
    let sd = (d as f64).sqrt();
    ((c * sd + 2.0 * d as f64 - 1.0) / ((c - 1.0) * sd)).ln()
}

/// The scale `c` that makes one cross-polytope sample in dimension `d` exactly `eps`-LDP.
pub fn scale_cross_polytope(eps: f64, d: usize) -> f64 {
    let sd = (d as f64).sqrt();
    let e = eps.exp();
    (2.0 * d as f64 - 1.0 + e * sd) / (sd * (e - 1.0))
}

/// Epsilon of one sample of the simplex scaled by `c > 1` (independent of the dimension).
pub fn epsilon_simplex(c: f64) -> f64 {
    ((c + 1.0) / (c - 1.0)).ln()
}

/// The scale `c` that makes one simplex sample exactly `eps`-LDP.
pub fn scale_simplex(eps: f64) -> f64 {
    let e = eps.exp();
    (e + 1.0) / (e - 1.0)
}

/// Basic composition over `steps` steps of a mechanism costing `per_step` each.
pub fn cumulative_epsilon(per_step: f64, steps: u64) -> f64 {
    per_step * steps as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_agree() {
        for &d in &[1usize, 2, 10, 1000, 1 << 20] {
            for &eps in &[0.1, 1.0, 5.0, 12.0] {
                let c = scale_cross_polytope(eps, d);
                assert!(c > 1.0);
                assert!((epsilon_cross_polytope(c, d) - eps).abs() < 1e-9 * eps.max(1.0));
            }
        }
        for &eps in &[0.01, 1.0, 8.0] {
            let c = scale_simplex(eps);
            assert!((epsilon_simplex(c) - eps).abs() < 1e-9);
        }
        assert_eq!(cumulative_epsilon(0.5, 10), 5.0);
    }
}

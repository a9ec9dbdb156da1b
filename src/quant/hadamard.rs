//! The seeded randomised Hadamard rotation (spec `vqsgd.md` section 4).
//!
//! `U = H D / sqrt(d')` with `H` the Sylvester Hadamard matrix of order `d'` (a power of two,
//! the block zero-padded) and `D` a diagonal of random signs drawn from a seed every rank shares.
//! `U` is orthogonal and `U^T = D H / sqrt(d')` (H is symmetric). The scheme `hadamard` is the
//! cross-polytope of section 2 applied to `U v`; decoding adds every payload's spikes in the
//! rotated domain and applies `U^T` once per step ([`unrotate`]).
//!
//! The fast Walsh-Hadamard transform [`fwht`] runs in place in O(d' log d'): all butterflies of
//! stride below [`FWHT_TILE`] are done tile by tile while the tile is in cache, then the larger
//! strides sweep the whole vector.

use rand::{RngCore, SeedableRng};

use crate::rng::{mix64, Rng};

/// Tile length of the cache-blocked transform (32 KiB of `f64`).
pub const FWHT_TILE: usize = 4096;

/// In-place unnormalised fast Walsh-Hadamard transform (`x <- H x`); `x.len()` must be a power
/// of two (or 0).
pub fn fwht(x: &mut [f64]) {
    let n = x.len();
    assert!(
        n == 0 || n.is_power_of_two(),
        "fwht length {n} is not a power of two"
    );
    if n < 2 {
        return;
    }
    let tile = n.min(FWHT_TILE);
    for t in x.chunks_exact_mut(tile) {
        // Strides 1 and 2 together (radix 4), then radix 2.
        if tile >= 4 {
            for q in t.chunks_exact_mut(4) {
                let (a, b, c, d) = (q[0], q[1], q[2], q[3]);
                let (s0, d0, s1, d1) = (a + b, a - b, c + d, c - d);
                q[0] = s0 + s1;
                q[1] = d0 + d1;
                q[2] = s0 - s1;
                q[3] = d0 - d1;
            }
            levels(t, 4, tile);
        } else {
            levels(t, 1, tile);
        }
    }
    levels(x, tile, n);
}

/// Radix-2 butterflies for strides `h = from, 2 from, ...` below `to`.
fn levels(x: &mut [f64], from: usize, to: usize) {
    let mut h = from;
    while h < to {
        for blk in x.chunks_exact_mut(2 * h) {
            let (a, b) = blk.split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                let (p, q) = (*u, *v);
                *u = p + q;
                *v = p - q;
            }
        }
        h *= 2;
    }
}

/// Seed of the sign diagonal of block `block` for the step's shared seed.
pub fn sign_seed(shared: u64, block: usize) -> u64 {
    mix64(shared ^ mix64(0x4841_4441_4d41_5244 ^ block as u64))
}

/// Multiply `x` by the sign diagonal `D` drawn from `seed` (one random bit per coordinate),
/// and by `scale`.
pub fn apply_signs(x: &mut [f64], seed: u64, scale: f64) {
    let mut rng = Rng::seed_from_u64(seed);
    for ch in x.chunks_mut(64) {
        let bits = rng.next_u64();
        for (j, v) in ch.iter_mut().enumerate() {
            let flip = ((bits >> j) & 1) << 63;
            *v = f64::from_bits((*v * scale).to_bits() ^ flip);
        }
    }
}

/// `y = U x = H D x / sqrt(d')` for the zero-padded `x`: `y` must have the padded length.
pub fn rotate<T: Copy + Into<f64>>(x: &[T], y: &mut [f64], seed: u64) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.into();
    }
    y[x.len()..].fill(0.0);
    apply_signs(y, seed, 1.0);
    fwht(y);
    let s = 1.0 / (y.len() as f64).sqrt();
    for v in y.iter_mut() {
        *v *= s;
    }
}

/// In place `z <- U^T z = D H z / sqrt(d')`.
pub fn unrotate(z: &mut [f64], seed: u64) {
    fwht(z);
    apply_signs(z, seed, 1.0 / (z.len() as f64).sqrt());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hadamard_entry(i: usize, j: usize) -> f64 {
        if (i & j).count_ones() % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    #[test]
    fn fwht_matches_the_dense_matrix() {
        for &n in &[1usize, 2, 4, 8, 64, 8192, 16384] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
            let mut y = x.clone();
            fwht(&mut y);
            for &i in &[0, n / 3, n - 1] {
                let want: f64 = (0..n).map(|j| hadamard_entry(i, j) * x[j]).sum();
                assert!(
                    (y[i] - want).abs() < 1e-9 * (1.0 + want.abs()),
                    "n {n} i {i}"
                );
            }
        }
    }

    #[test]
    fn rotation_is_orthogonal_and_inverted() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut y = vec![0.0; 1024];
        rotate(&x, &mut y, 99);
        let nx: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
        let ny: f64 = y.iter().map(|v| v * v).sum();
        assert!((nx - ny).abs() < 1e-9 * nx);
        unrotate(&mut y, 99);
        for i in 0..1000 {
            assert!((y[i] - f64::from(x[i])).abs() < 1e-9);
        }
        for v in &y[1000..] {
            assert!(v.abs() < 1e-9);
        }
    }
}

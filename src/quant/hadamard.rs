//! The seeded randomised Hadamard rotation (spec `vqsgd.md` section 4).
//!
//! `U = H D / sqrt(d')` with `H` the Sylvester Hadamard matrix of order `d'` (a power of two,
//! the block zero-padded) and `D` a diagonal of random signs drawn from a seed every rank shares.
//! `U` is orthogonal and `U^T = D H / sqrt(d')` (H is symmetric). The scheme `hadamard` is the
//! cross-polytope of section 2 applied to `U v`; decoding adds every payload's spikes in the
//! rotated domain and applies `U^T` once per step ([`unrotate`]).
//!
//! The fast Walsh-Hadamard transform [`fwht`] runs in place in O(d' log d') with few passes
//! over memory: the levels of stride below [`FWHT_TILE`] tile by tile while the tile is in L1,
//! then all larger strides in one more pass, column block by column block (one cache line of
//! every row of the `d' / TILE` x `TILE` matrix gathered into an L1 scratch, transformed along
//! the rows, scattered back). Levels are grouped three at a time (radix 8). Every butterfly is
//! the same `(u + v, u - v)` on the same values as the level-by-level radix-2 transform, in the
//! same level order, so the result is bit-identical to it (tested). [`rotate`] fuses the sign
//! diagonal into the first pass and the scale into the last, [`unrotate`] both into the last.

use rand::{RngCore, SeedableRng};

use crate::rng::{mix64, Rng};

/// Tile length of the cache-blocked transform (32 KiB of `f64`, in L1).
pub const FWHT_TILE: usize = 4096;

/// Tile length for transforms longer than 2^21 (256 KiB, in L2): fewer rows in the
/// large-stride pass, so that it reads several cache lines per page it visits.
pub const FWHT_TILE_LARGE: usize = 32 * 1024;

/// Lengths above which [`FWHT_TILE_LARGE`] is used.
const LARGE: usize = 1 << 21;

/// The tile length for a transform of length `n` (the result does not depend on it).
fn tile_for(n: usize) -> usize {
    n.min(if n > LARGE {
        FWHT_TILE_LARGE
    } else {
        FWHT_TILE
    })
}

/// Most `f64` in the scratch of the large-stride pass (256 KiB, within L2).
const SCRATCH: usize = 32 * 1024;

/// The butterflies of strides `h, 2h, 4h, ...` below `to` on `x` (`x.len()` a multiple of
/// `to`), grouped three levels per sweep.
#[inline(always)]
fn levels(x: &mut [f64], mut h: usize, to: usize) {
    while h < to {
        match ((to / h).trailing_zeros(), h) {
            (1, _) => {
                for blk in x.chunks_exact_mut(2 * h) {
                    let (a, b) = blk.split_at_mut(h);
                    for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                        (*u, *v) = (*u + *v, *u - *v);
                    }
                }
                h *= 2;
            }
            (2, _) => {
                for blk in x.chunks_exact_mut(4 * h) {
                    radix4(blk, h);
                }
                h *= 4;
            }
            // Small strides: fixed-size blocks (no per-block slicing, fully unrolled).
            (_, 1) => {
                radix8_fixed::<1, 8>(x);
                h = 8;
            }
            (_, 8) => {
                radix8_fixed::<8, 64>(x);
                h = 64;
            }
            _ => {
                for blk in x.chunks_exact_mut(8 * h) {
                    radix8(blk, h);
                }
                h *= 8;
            }
        }
    }
}

/// [`radix8`] with a compile-time stride `H` (`B = 8 H`) on every block of `x`.
#[inline(always)]
fn radix8_fixed<const H: usize, const B: usize>(x: &mut [f64]) {
    for blk in x.chunks_exact_mut(B) {
        let blk: &mut [f64; B] = blk.try_into().expect("block");
        for j in 0..H {
            let v: [f64; 8] = std::array::from_fn(|m| blk[j + m * H]);
            let out = butterfly8(v);
            for (m, o) in out.into_iter().enumerate() {
                blk[j + m * H] = o;
            }
        }
    }
}

/// The three levels of an 8-point transform (strides 1, 2, 4 of `v`), in order.
#[inline(always)]
fn butterfly8(x: [f64; 8]) -> [f64; 8] {
    let y = [
        x[0] + x[1],
        x[0] - x[1],
        x[2] + x[3],
        x[2] - x[3],
        x[4] + x[5],
        x[4] - x[5],
        x[6] + x[7],
        x[6] - x[7],
    ];
    let z = [
        y[0] + y[2],
        y[1] + y[3],
        y[0] - y[2],
        y[1] - y[3],
        y[4] + y[6],
        y[5] + y[7],
        y[4] - y[6],
        y[5] - y[7],
    ];
    [
        z[0] + z[4],
        z[1] + z[5],
        z[2] + z[6],
        z[3] + z[7],
        z[0] - z[4],
        z[1] - z[5],
        z[2] - z[6],
        z[3] - z[7],
    ]
}

/// Levels `h` and `2h` on one block of `4h` elements (the radix-2 butterflies, in order).
#[inline(always)]
fn radix4(blk: &mut [f64], h: usize) {
    let (a, rest) = blk.split_at_mut(h);
    let (b, rest) = rest.split_at_mut(h);
    let (c, d) = rest.split_at_mut(h);
    for j in 0..h {
        let (x0, x1, x2, x3) = (a[j], b[j], c[j], d[j]);
        let (y0, y1, y2, y3) = (x0 + x1, x0 - x1, x2 + x3, x2 - x3);
        (a[j], c[j]) = (y0 + y2, y0 - y2);
        (b[j], d[j]) = (y1 + y3, y1 - y3);
    }
}

/// Levels `h`, `2h` and `4h` on one block of `8h` elements (the radix-2 butterflies, in order).
#[inline(always)]
fn radix8(blk: &mut [f64], h: usize) {
    let (p0, rest) = blk.split_at_mut(h);
    let (p1, rest) = rest.split_at_mut(h);
    let (p2, rest) = rest.split_at_mut(h);
    let (p3, rest) = rest.split_at_mut(h);
    let (p4, rest) = rest.split_at_mut(h);
    let (p5, rest) = rest.split_at_mut(h);
    let (p6, p7) = rest.split_at_mut(h);
    let p7 = &mut p7[..h];
    for j in 0..h {
        let z = butterfly8([p0[j], p1[j], p2[j], p3[j], p4[j], p5[j], p6[j], p7[j]]);
        (p0[j], p1[j], p2[j], p3[j]) = (z[0], z[1], z[2], z[3]);
        (p4[j], p5[j], p6[j], p7[j]) = (z[4], z[5], z[6], z[7]);
    }
}

/// The large strides `tile .. n` of `x` (`n = x.len() > tile`), column block by column block;
/// each result `v` at index `i` is written as `store(i, v)`.
#[inline(always)]
fn column_pass(x: &mut [f64], tile: usize, mut store: impl FnMut(usize, f64) -> f64) {
    let n = x.len();
    let rows = n / tile;
    // Columns per block: several cache lines per row, so each page visited yields several lines
    // (the rows are FWHT_TILE * 8 bytes apart, a different page each).
    let cols = (SCRATCH / rows).clamp(8, 64).min(tile);
    let mut scratch = vec![0f64; rows * cols];
    for c0 in (0..tile).step_by(cols) {
        for (r, dst) in scratch.chunks_exact_mut(cols).enumerate() {
            let i = r * tile + c0;
            dst.copy_from_slice(&x[i..i + cols]);
        }
        // Row stride 1 in the matrix is element stride `cols` in the scratch.
        levels(&mut scratch, cols, rows * cols);
        for (r, src) in scratch.chunks_exact(cols).enumerate() {
            let i = r * tile + c0;
            for (k, (slot, &v)) in x[i..i + cols].iter_mut().zip(src).enumerate() {
                *slot = store(i + k, v);
            }
        }
    }
}

/// Run `f` compiled with AVX2 when the CPU has it (the transforms are adds and subtracts only,
/// so the results are the same either way).
macro_rules! dispatch {
    ($avx:ident, $imp:ident ( $($arg:expr),* )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if crate::quant::sampling::has_avx2() {
                // SAFETY: AVX2 is available (checked at run time).
                return unsafe { $avx($($arg),*) };
            }
        }
        $imp($($arg),*)
    }};
}

/// In-place unnormalised fast Walsh-Hadamard transform (`x <- H x`); `x.len()` must be a power
/// of two (or 0).
pub fn fwht(x: &mut [f64]) {
    dispatch!(fwht_avx2, fwht_impl(x))
}

/// [`fwht`] with AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fwht_avx2(x: &mut [f64]) {
    fwht_impl(x)
}

#[inline(always)]
fn fwht_impl(x: &mut [f64]) {
    let n = x.len();
    assert!(
        n == 0 || n.is_power_of_two(),
        "fwht length {n} is not a power of two"
    );
    if n < 2 {
        return;
    }
    let tile = tile_for(n);
    for t in x.chunks_exact_mut(tile) {
        levels(t, 1, tile);
    }
    if n > tile {
        column_pass(x, tile, |_, v| v);
    }
}

/// Reference for tests: the level-by-level radix-2 transform.
pub fn fwht_reference(x: &mut [f64]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for blk in x.chunks_exact_mut(2 * h) {
            let (a, b) = blk.split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                (*u, *v) = (*u + *v, *u - *v);
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
            *v = flip(*v * scale, bits, j);
        }
    }
}

/// `v` with its sign flipped when bit `j` of `bits` is set.
#[inline(always)]
fn flip(v: f64, bits: u64, j: usize) -> f64 {
    f64::from_bits(v.to_bits() ^ (((bits >> j) & 1) << 63))
}

/// The sign bits of `n` coordinates for `seed` (bit `i % 64` of word `i / 64`), as
/// [`apply_signs`] draws them.
fn sign_words(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n.div_ceil(64)).map(|_| rng.next_u64()).collect()
}

/// `y = U x = H D x / sqrt(d')` for the zero-padded `x`: `y` must have the padded length (a
/// power of two). The same values as zero-padding, [`apply_signs`], [`fwht`] and scaling, in
/// two passes.
pub fn rotate<T: Copy + Into<f64>>(x: &[T], y: &mut [f64], seed: u64) {
    dispatch!(rotate_avx2, rotate_impl(x, y, seed))
}

/// [`rotate`] with AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rotate_avx2<T: Copy + Into<f64>>(x: &[T], y: &mut [f64], seed: u64) {
    rotate_impl(x, y, seed)
}

#[inline(always)]
fn rotate_impl<T: Copy + Into<f64>>(x: &[T], y: &mut [f64], seed: u64) {
    let n = y.len();
    assert!(n.is_power_of_two() && x.len() <= n, "rotate: bad lengths");
    let s = 1.0 / (n as f64).sqrt();
    let mut rng = Rng::seed_from_u64(seed);
    let tile = tile_for(n);
    for (t, out) in y.chunks_exact_mut(tile).enumerate() {
        let lo = t * tile;
        let src = &x[lo.min(x.len())..(lo + tile).min(x.len())];
        for (ch, o) in out.chunks_mut(64).enumerate() {
            let bits = rng.next_u64();
            for (j, v) in o.iter_mut().enumerate() {
                let xi: f64 = src.get(ch * 64 + j).map_or(0.0, |&v| v.into());
                *v = flip(xi, bits, j);
            }
        }
        levels(out, 1, tile);
        if n <= tile {
            for v in out.iter_mut() {
                *v *= s;
            }
        }
    }
    if n > tile {
        column_pass(y, tile, |_, v| v * s);
    }
}

/// In place `z <- U^T z = D H z / sqrt(d')` (the same values as [`fwht`] then
/// [`apply_signs`] with scale `1 / sqrt(d')`).
pub fn unrotate(z: &mut [f64], seed: u64) {
    dispatch!(unrotate_avx2, unrotate_impl(z, seed))
}

/// [`unrotate`] with AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unrotate_avx2(z: &mut [f64], seed: u64) {
    unrotate_impl(z, seed)
}

#[inline(always)]
fn unrotate_impl(z: &mut [f64], seed: u64) {
    let n = z.len();
    let s = 1.0 / (n as f64).sqrt();
    let tile = tile_for(n);
    if n <= tile {
        fwht_impl(z);
        apply_signs(z, seed, s);
        return;
    }
    for t in z.chunks_exact_mut(tile) {
        levels(t, 1, tile);
    }
    let words = sign_words(n, seed);
    column_pass(z, tile, |i, v| flip(v * s, words[i / 64], i % 64));
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
    fn fast_transforms_are_bit_identical_to_the_radix2_composition() {
        for &n in &[
            1usize,
            2,
            4,
            8,
            16,
            32,
            64,
            4096,
            8192,
            16384,
            32768,
            1 << 17,
            1 << 22,
        ] {
            let x: Vec<f32> = (0..n - n / 3)
                .map(|i| ((i * 7919) % 1013) as f32 * 0.37 - 180.0)
                .collect();
            // fwht against the level-by-level reference.
            let mut a: Vec<f64> = (0..n).map(|i| ((i * 31) % 97) as f64 - 48.5).collect();
            let mut b = a.clone();
            fwht(&mut a);
            fwht_reference(&mut b);
            assert!(
                a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                "fwht n {n}"
            );
            // rotate against pad, signs, reference transform, scale.
            let mut y = vec![0.0; n];
            rotate(&x, &mut y, 42);
            let mut r: Vec<f64> = (0..n)
                .map(|i| x.get(i).map_or(0.0, |&v| f64::from(v)))
                .collect();
            apply_signs(&mut r, 42, 1.0);
            fwht_reference(&mut r);
            let s = 1.0 / (n as f64).sqrt();
            for v in r.iter_mut() {
                *v *= s;
            }
            assert!(
                y.iter().zip(&r).all(|(p, q)| p.to_bits() == q.to_bits()),
                "rotate n {n}"
            );
            // unrotate against reference transform then signs with the scale.
            let mut u = y.clone();
            unrotate(&mut u, 42);
            let mut w = y.clone();
            fwht_reference(&mut w);
            apply_signs(&mut w, 42, s);
            assert!(
                u.iter().zip(&w).all(|(p, q)| p.to_bits() == q.to_bits()),
                "unrotate n {n}"
            );
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

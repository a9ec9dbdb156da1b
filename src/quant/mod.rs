//! vqSGD quantizers (spec `vqsgd.md` sections 1-7): pure computation, no MPI.
//!
//! [`build`] turns a [`CompressionConfig`] into a [`Compressor`] for one of the four vq schemes:
//!
//! | `scheme` | point set | bits per sample (fixed) | `R^2` |
//! | --- | --- | --- | --- |
//! | `cross_polytope` | `+-sqrt(d) e_i` (section 2) | `ceil(log2 2d)` | `d` |
//! | `simplex` | `d v_i`, regular simplex (section 3) | `ceil(log2 (d+1))` | `d^2` |
//! | `hadamard` | cross-polytope after `U = H D / sqrt(d')` (section 4) | `ceil(log2 2d')` | `d'` |
//! | `sparse` | k-sparse signed points (section 5), `rotate = true` puts `U` first | `k ceil(log2 2d)` | `d/k` |
//!
//! Every scheme takes repetitions `s` (section 1: `s` i.i.d. samples, averaged), blocks
//! (`compression.block`: whole, per layer, or fixed size; one norm per block), index coding
//! (section 6: fixed width or sorted-gap Golomb-Rice) and, for `cross_polytope` and `simplex`,
//! privacy (section 7: scale `c` or target epsilon per step; optional clipping with no norm sent).
//!
//! # Payload layout
//!
//! One little-endian bit stream ([`crate::bits`]), tail bits of the last byte zero, no trailing
//! bytes. For each block in order:
//!
//! 1. the block norm as the 32 bits of an `f32` (omitted when `clip > 0`: the decoder then
//!    uses `clip`). A norm of 0 means "zero block": the rest of the block is well-formed
//!    placeholder samples (symbol 0) and decodes to exact zeros;
//! 2. sparse blocks with `k^2 > d` only: the fallback header `e` (`ceil(log2(e_max + 2))` bits)
//!    and `k_b - 1` (`ceil(log2 k)` bits), then `e` exact coordinates as
//!    (`ceil(log2 d)`-bit index, `f32` value); see [`sparse`];
//! 3. the `s * k_b` samples (`k_b = 1` except sparse), coded as in [`coding`]: fixed width
//!    `ceil(log2 m)` bits each (signed schemes: `j < d` is `+e_j`, `j >= d` is `-e_{j-d}`;
//!    simplex: vertex `v_j`), or Rice-coded sorted gaps;
//! 4. sparse blocks with a header and fixed coding: zero padding up to the budget of
//!    `s k ceil(log2 2d)` bits, so the length never depends on the data.
//!
//! With fixed coding every payload has exactly [`Compressor::fixed_payload_len`] bytes:
//! `ceil(sum_b (32 + header_b + s k_b ceil(log2 m_b)) / 8)`. With Rice coding the length varies
//! and [`Compressor::max_payload_len`] is a true upper bound.
//!
//! Decoding ([`Compressor::decode_add`]) reads only the configuration, the shared seed (rotation
//! signs) and the bytes; a wrong length, an index out of range, a NaN or negative norm, a bad
//! fallback header or non-zero padding is an [`Error::Payload`](crate::Error::Payload). On an
//! error the step's aggregate is unspecified: start over with `begin_decode`.
//!
//! Accumulation: cross-polytope and unrotated sparse add `+-weight norm c sqrt(d)/(s k_b)` at
//! each sampled coordinate of an `f32` sum (O(s k) per payload); the simplex sums weights per
//! vertex in `f64` and builds the result in one O(d) pass at [`Compressor::finish_decode`];
//! rotated schemes add spikes into an `f64` rotated-domain sum and apply the inverse rotation
//! once per step at `finish_decode`.
//!
//! Randomness: sampling uses `Xoshiro256PlusPlus::seed_from_u64(seeds.private)`; the rotation
//! signs of block `b` are drawn from [`hadamard::sign_seed`]`(shared, b)`.

use std::ops::Range;

use crate::compress::Compressor;
use crate::config::{BlockSpec, CompressionConfig, Scheme};
use crate::{Error, Result};

pub mod coding;
pub mod cross_polytope;
pub mod hadamard;
pub mod privacy;
pub mod sampling;
pub mod simplex;
pub mod sparse;
pub mod vq;

pub use vq::{PointSet, VqCompressor, VqParams};

/// The blocks of `compression.block` for a gradient of `dim` coordinates with model `layers`
/// (contiguous ranges covering `0..dim`; empty layers are skipped).
pub fn block_ranges(
    spec: &BlockSpec,
    dim: usize,
    layers: &[Range<usize>],
) -> Result<Vec<Range<usize>>> {
    match spec {
        BlockSpec::Whole => Ok(vec![0..dim]),
        BlockSpec::Size(n) => {
            if *n == 0 {
                return Err(Error::config(
                    "compression.block",
                    "block size must be positive",
                ));
            }
            Ok((0..dim).step_by(*n).map(|a| a..(a + n).min(dim)).collect())
        }
        BlockSpec::Layer => {
            let mut next = 0;
            let mut out = Vec::new();
            for (i, r) in layers.iter().enumerate() {
                if r.start != next || r.end < r.start {
                    return Err(Error::config(
                        "compression.block",
                        format!(
                            "\"layer\" blocks: layer {i} is {r:?}, expected it to start at {next} \
                             (layers must be contiguous and cover 0..{dim})"
                        ),
                    ));
                }
                next = r.end;
                if !r.is_empty() {
                    out.push(r.clone());
                }
            }
            if next != dim || out.is_empty() {
                return Err(Error::config(
                    "compression.block",
                    format!("\"layer\" blocks: the layers cover 0..{next}, the gradient 0..{dim}"),
                ));
            }
            Ok(out)
        }
    }
}

/// Build the compressor of a vq scheme (`cross_polytope`, `simplex`, `hadamard`, `sparse`) for a
/// gradient of `dim` coordinates whose layers are `layers` (used by `block = "layer"`).
/// Checks the parameters that depend on the dimension, naming the key, value and limit.
pub fn build(
    cfg: &CompressionConfig,
    dim: usize,
    layers: &[Range<usize>],
) -> Result<Box<dyn Compressor>> {
    Ok(Box::new(build_vq(cfg, dim, layers)?))
}

/// [`build`] with the concrete type (for benchmarks and tests).
pub fn build_vq(
    cfg: &CompressionConfig,
    dim: usize,
    layers: &[Range<usize>],
) -> Result<VqCompressor> {
    cfg.validate()?;
    let (set, rotate) = match cfg.scheme {
        Scheme::CrossPolytope => (PointSet::CrossPolytope, false),
        Scheme::Simplex => (PointSet::Simplex, false),
        Scheme::Hadamard => (PointSet::CrossPolytope, true),
        Scheme::Sparse => (PointSet::Sparse, cfg.rotate),
        other => {
            return Err(Error::config(
                "compression.scheme",
                format!(
                    "\"{}\" is not a vqSGD scheme (expected cross_polytope, simplex, hadamard or \
                     sparse)",
                    other.name()
                ),
            ))
        }
    };
    if dim == 0 {
        return Err(Error::config(
            "compression.scheme",
            "the gradient has no coordinates",
        ));
    }
    if rotate && cfg.scheme != Scheme::Sparse && cfg.scheme != Scheme::Hadamard {
        return Err(Error::config(
            "compression.rotate",
            "rotation applies to sparse only",
        ));
    }
    let ranges = block_ranges(&cfg.block, dim, layers)?;
    if set == PointSet::Sparse && !rotate {
        let small = ranges.iter().map(|r| r.len()).max().unwrap_or(0);
        if cfg.k.saturating_mul(cfg.k) > small {
            log::warn!(
                "compression.k = {} exceeds sqrt({small}): blocks with large coordinates use the \
                 exact-coordinate fallback of spec section 5 (consider rotate = true)",
                cfg.k
            );
        }
    }
    let p = VqParams {
        set,
        rotate,
        s: cfg.repetitions,
        k: cfg.k,
        coding: cfg.coding,
        privacy_scale: cfg.privacy_scale,
        epsilon: cfg.epsilon,
        clip: cfg.clip,
        name: cfg.scheme.name().to_string(),
    };
    VqCompressor::new(p, dim, &ranges)
}

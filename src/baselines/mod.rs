//! Baseline gradient compressors that vqSGD is compared against (spec `vqsgd.md` section 9).
//!
//! Each scheme lives in its own file and implements [`Compressor`]
//! with the contract of spec section 8: decoding depends only on the configuration and the
//! payload bytes, every payload is validated before it touches the aggregate (a bad payload is an
//! [`Error::Payload`] and leaves the aggregate unchanged), and the
//! aggregate buffer is allocated once when the compressor is built.
//!
//! | scheme | paper | payload (d coordinates, `nb` buckets/blocks) | unbiased |
//! |---|---|---|---|
//! | [`fp16`] | IEEE 754 binary16 | `2 d` bytes | no (rounding) |
//! | [`qsgd`] | Alistarh et al. 2017 | `4 nb + ceil(d (1 + ceil(log2(s+1))) / 8)` bytes | yes |
//! | [`terngrad`] | Wen et al. 2017 | `4 nb + ceil(2 d / 8)` bytes | yes |
//! | [`signsgd`] | Bernstein et al. 2018 | `ceil(d / 8)` bytes, majority vote | no |
//! | [`ef_signsgd`] | Karimireddy et al. 2019 | `4 nb + ceil(d / 8)` bytes | no |
//! | [`topk`] | Stich et al. 2018; Lin et al. 2018 | `8 k` bytes (`u32` index, `f32` value) | no |
//!
//! All payloads are fixed-length for a given configuration and dimension, so the synchronisation
//! layer can use a plain allgather. Multi-byte scalars (norms, scales, indices, values) are
//! little-endian; bit fields are packed with [`crate::bits`] (least-significant bit first, tail
//! bits zero). The biased schemes (`ef_signsgd`, `topk`) need error feedback, which lives in
//! [`crate::feedback`], not here; `signsgd` with majority vote is used without it, as in its paper.
//!
//! Partitioning: `compression.block` splits the flat gradient into blocks (`"whole"` or a fixed
//! size; `"layer"` needs the layer sizes, see [`build_with_blocks`]); QSGD and TernGrad further
//! split each block into buckets of `compression.bucket` coordinates (0 = the whole block), each
//! with its own `f32` norm or scale; EF-signSGD sends one scale per block; top-k selects `k` per
//! block; fp16 and signSGD are element-wise and ignore blocking.
//!
//! Encoders reject gradients of the wrong length and non-finite gradients
//! ([`Error::Numerical`]); stochastic rounding draws from
//! `Xoshiro256PlusPlus::seed_from_u64(seeds.private)`, so a payload is a pure function of the
//! gradient, the configuration and the private seed.

pub mod ef_signsgd;
pub mod fp16;
pub mod qsgd;
pub mod signsgd;
pub mod terngrad;
pub mod topk;

use crate::compress::Compressor;
use crate::config::{BlockSpec, CompressionConfig, Scheme};
use crate::{Error, Result};

/// Build the baseline compressor for `cfg.scheme` and a gradient of `dim` coordinates.
///
/// `compression.block = "layer"` is rejected here because the layer sizes are not known; use
/// [`build_with_blocks`] for it. Schemes that are not baselines (`dense` and the vqSGD family)
/// are a configuration error naming `compression.scheme`.
pub fn build(cfg: &CompressionConfig, dim: usize) -> Result<Box<dyn Compressor>> {
    let blocks = match cfg.block {
        BlockSpec::Whole => vec![dim],
        BlockSpec::Size(0) => {
            return Err(Error::config(
                "compression.block",
                "block size must be positive (got 0)",
            ))
        }
        BlockSpec::Size(n) => {
            let mut v = vec![n; dim / n];
            if dim % n != 0 {
                v.push(dim % n);
            }
            v
        }
        BlockSpec::Layer => {
            return Err(Error::config(
                "compression.block",
                format!(
                    "\"layer\" blocking for scheme \"{}\" needs the layer sizes \
                     (baselines::build_with_blocks); use \"whole\" or a block size",
                    cfg.scheme.name()
                ),
            ))
        }
    };
    build_with_blocks(cfg, &blocks)
}

/// Build the baseline compressor for `cfg.scheme` with explicit block lengths (for example one
/// block per model layer); the gradient dimension is their sum and `cfg.block` is not consulted.
/// Zero-length blocks are skipped.
pub fn build_with_blocks(cfg: &CompressionConfig, blocks: &[usize]) -> Result<Box<dyn Compressor>> {
    let dim: usize = blocks.iter().sum();
    if dim > crate::config::limits::MAX_PARAMS {
        return Err(Error::config(
            "compression.block",
            format!(
                "gradient dimension {dim} exceeds the limit {}",
                crate::config::limits::MAX_PARAMS
            ),
        ));
    }
    let blocks: Vec<usize> = blocks.iter().copied().filter(|&b| b > 0).collect();
    Ok(match cfg.scheme {
        Scheme::Fp16 => Box::new(fp16::Fp16::new(dim)),
        Scheme::Qsgd => Box::new(qsgd::Qsgd::new(
            cfg.levels,
            &Segments::buckets(&blocks, cfg.bucket),
        )?),
        Scheme::Terngrad => Box::new(terngrad::TernGrad::new(&Segments::buckets(
            &blocks, cfg.bucket,
        ))),
        Scheme::Signsgd => Box::new(signsgd::SignSgd::new(dim)),
        Scheme::EfSignsgd => Box::new(ef_signsgd::EfSignSgd::new(&Segments::buckets(&blocks, 0))),
        Scheme::Topk => Box::new(topk::TopK::new(cfg.k, cfg.k_ratio, &blocks)?),
        other => {
            return Err(Error::config(
                "compression.scheme",
                format!(
                    "\"{}\" is not a baseline compressor (baselines: fp16, qsgd, terngrad, \
                     signsgd, ef_signsgd, topk)",
                    other.name()
                ),
            ))
        }
    })
}

/// True for the schemes this module builds.
pub fn is_baseline(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::Fp16
            | Scheme::Qsgd
            | Scheme::Terngrad
            | Scheme::Signsgd
            | Scheme::EfSignsgd
            | Scheme::Topk
    )
}

/// A partition of `0..dim` into consecutive non-empty segments (buckets or blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segments {
    /// Segment start offsets followed by `dim` (length = number of segments + 1).
    bounds: Vec<usize>,
}

impl Segments {
    /// Split each of `blocks` into buckets of `bucket` coordinates (0 = the whole block; the
    /// last bucket of a block may be shorter).
    pub(crate) fn buckets(blocks: &[usize], bucket: usize) -> Self {
        let mut bounds = vec![0];
        let mut start = 0;
        for &b in blocks {
            let size = if bucket == 0 { b } else { bucket.min(b) };
            let end = start + b;
            let mut s = start;
            while s < end {
                s = (s + size).min(end);
                bounds.push(s);
            }
            start = end;
        }
        Self { bounds }
    }

    /// Number of segments.
    pub(crate) fn count(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Total length.
    pub(crate) fn dim(&self) -> usize {
        *self.bounds.last().unwrap_or(&0)
    }

    /// The segments as index ranges.
    pub(crate) fn iter(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        self.bounds.windows(2).map(|w| w[0]..w[1])
    }

    /// A short description for `CompressorInfo::params`.
    pub(crate) fn describe(&self) -> String {
        let n = self.count();
        match n {
            0 => "empty".into(),
            1 => format!("1 x {}", self.dim()),
            _ => {
                let first = self.bounds[1] - self.bounds[0];
                format!("{n} (first {first} coords)")
            }
        }
    }
}

/// Check an encoder input: right length, all finite.
pub(crate) fn check_grad(scheme: &str, grad: &[f32], dim: usize) -> Result<()> {
    if grad.len() != dim {
        return Err(Error::Other(format!(
            "{scheme}: gradient has {} coordinates, the compressor was built for {dim}",
            grad.len()
        )));
    }
    if let Some(i) = grad.iter().position(|x| !x.is_finite()) {
        return Err(Error::Numerical(format!(
            "{scheme}: gradient coordinate {i} is {} (cannot compress a non-finite gradient)",
            grad[i]
        )));
    }
    Ok(())
}

/// Check a payload's length against the fixed length of the scheme.
pub(crate) fn check_len(scheme: &str, payload: &[u8], expected: usize) -> Result<()> {
    if payload.len() != expected {
        return Err(Error::payload(format!(
            "{scheme}: payload has {} bytes, expected {expected}{}",
            payload.len(),
            if payload.len() < expected {
                " (truncated)"
            } else {
                " (trailing bytes)"
            }
        )));
    }
    Ok(())
}

/// Read `n` little-endian `f32` scales from the start of `payload` (length already checked),
/// requiring each to be finite and non-negative.
pub(crate) fn read_scales(
    scheme: &str,
    what: &str,
    payload: &[u8],
    out: &mut Vec<f32>,
) -> Result<()> {
    out.clear();
    for (j, c) in payload.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::payload(format!(
                "{scheme}: {what} {j} is {v} (must be finite and >= 0)"
            )));
        }
        out.push(v);
    }
    Ok(())
}

/// Check that `bytes` holds exactly `bits` bits of a [`crate::bits`] stream with zero padding.
pub(crate) fn check_padding(scheme: &str, bytes: &[u8], bits: u64) -> Result<()> {
    check_len(scheme, bytes, crate::bits::bytes_for_bits(bits))?;
    let used = (bits % 8) as u32;
    if used > 0 && bytes[bytes.len() - 1] >> used != 0 {
        return Err(Error::payload(format!(
            "{scheme}: non-zero padding bits after the last code"
        )));
    }
    Ok(())
}

/// Smallest `f32` that is `>= x` for a finite non-negative `x` (norms are rounded up so that a
/// normalised magnitude never exceeds 1 after the cast).
pub(crate) fn f32_round_up(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x && f.is_finite() {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_partition_blocks() {
        let s = Segments::buckets(&[10, 3], 4);
        let r: Vec<_> = s.iter().collect();
        assert_eq!(r, vec![0..4, 4..8, 8..10, 10..13]);
        assert_eq!(s.dim(), 13);
        let s = Segments::buckets(&[10, 3], 0);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..10, 10..13]);
        let s = Segments::buckets(&[], 4);
        assert_eq!(s.count(), 0);
        assert_eq!(s.dim(), 0);
    }

    #[test]
    fn non_baselines_and_layer_blocks_are_config_errors() {
        let mut cfg = CompressionConfig {
            scheme: Scheme::CrossPolytope,
            ..Default::default()
        };
        let e = build(&cfg, 10).err().unwrap();
        assert!(e.to_string().contains("compression.scheme"), "{e}");
        cfg.scheme = Scheme::Qsgd;
        cfg.block = BlockSpec::Layer;
        let e = build(&cfg, 10).err().unwrap();
        assert!(e.to_string().contains("compression.block"), "{e}");
        assert!(build_with_blocks(&cfg, &[4, 6]).is_ok());
    }

    #[test]
    fn round_up_never_below() {
        for x in [0.0, 1.0, 0.1, 1e-30, 3.0f64.sqrt(), 1e38] {
            assert!(f64::from(f32_round_up(x)) >= x);
        }
    }
}

//! Top-k sparsification (Stich, Cordonnier, Jaggi, "Sparsified SGD with Memory", NeurIPS 2018;
//! Lin, Han, Mao, Wang, Dally, "Deep Gradient Compression", ICLR 2018), spec `vqsgd.md` section 9.
//!
//! Per block (`compression.block`; one block by default) the `k` coordinates of largest
//! magnitude are sent exactly as `(index, value)` pairs and the rest are dropped. `k` is
//! `compression.k` when positive (the last, shorter block of a fixed-size blocking sends
//! `min(k, its length)`), else `ceil(k_ratio * block length)` (at least 1). Biased: it must be
//! wrapped in error feedback ([`crate::feedback::ErrorFeedback`]).
//!
//! Selection is `select_nth_unstable_by` on the magnitudes (expected O(n) per block), with ties
//! broken by the smaller index, so the chosen set is a deterministic function of the gradient;
//! the chosen indices are then sorted.
//!
//! Payload (fixed length `8 K` bytes, `K` the sum of the per-block k): `K` pairs, each a
//! little-endian `u32` global coordinate index followed by the little-endian `f32` value, indices
//! strictly increasing, and each block's pairs inside that block's index range: 64 bits per sent
//! coordinate. A decoder rejects a wrong length, an index out of range or out of order (which
//! includes duplicates) and a non-finite value; decoding scatter-adds `weight * value`.

use super::Segments;
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::{Error, Result};

/// The top-k compressor (see the module docs).
pub struct TopK {
    segs: Segments,
    /// Number of pairs sent per block.
    ks: Vec<usize>,
    total_k: usize,
    agg: Vec<f32>,
    idx: Vec<u32>,
    desc: String,
}

impl TopK {
    /// Top-k over `blocks` (non-empty lengths) with `k` (> 0) or `k_ratio` (used when `k` = 0).
    pub(crate) fn new(k: usize, k_ratio: f64, blocks: &[usize]) -> Result<Self> {
        let segs = Segments::buckets(blocks, 0);
        let largest = blocks.iter().copied().max().unwrap_or(0);
        let ks: Vec<usize> = if k > 0 {
            if k > largest {
                return Err(Error::config(
                    "compression.k",
                    format!("top-k with k = {k} exceeds the block size {largest}"),
                ));
            }
            blocks.iter().map(|&b| k.min(b)).collect()
        } else {
            if !(k_ratio > 0.0 && k_ratio <= 1.0) {
                return Err(Error::config(
                    "compression.k_ratio",
                    format!("{k_ratio} is not in (0, 1]"),
                ));
            }
            blocks
                .iter()
                .map(|&b| ((k_ratio * b as f64).ceil() as usize).clamp(1, b))
                .collect()
        };
        let total_k = ks.iter().sum();
        let desc = if k > 0 {
            format!("k={k}")
        } else {
            format!("k_ratio={k_ratio}")
        };
        Ok(Self {
            agg: vec![0.0; segs.dim()],
            idx: Vec::with_capacity(largest),
            desc: format!("{desc} (K={total_k} pairs), blocks={}", segs.describe()),
            segs,
            ks,
            total_k,
        })
    }

    /// Total number of `(index, value)` pairs per payload.
    pub fn total_k(&self) -> usize {
        self.total_k
    }
}

impl Compressor for TopK {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "topk".into(),
            params: format!("{}, 64 bits per pair", self.desc),
            unbiased: false,
            epsilon_per_step: None,
        }
    }

    fn dim(&self) -> usize {
        self.segs.dim()
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        Some(8 * self.total_k)
    }

    fn max_payload_len(&self) -> usize {
        8 * self.total_k
    }

    fn encode(&mut self, grad: &[f32], _seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        super::check_grad("topk", grad, self.dim())?;
        out.reserve(8 * self.total_k);
        for (r, &k) in self.segs.iter().zip(&self.ks) {
            let g = &grad[r.clone()];
            self.idx.clear();
            self.idx.extend(0..g.len() as u32);
            if k < g.len() {
                self.idx.select_nth_unstable_by(k, |&a, &b| {
                    g[b as usize]
                        .abs()
                        .total_cmp(&g[a as usize].abs())
                        .then(a.cmp(&b))
                });
            }
            let top = &mut self.idx[..k];
            top.sort_unstable();
            for &i in top.iter() {
                out.extend_from_slice(&((r.start + i as usize) as u32).to_le_bytes());
                out.extend_from_slice(&g[i as usize].to_le_bytes());
            }
        }
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.agg.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        super::check_len("topk", payload, 8 * self.total_k)?;
        let pair = |c: &[u8]| {
            (
                u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize,
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        };
        // Validate everything before touching the aggregate.
        let mut pairs = payload.chunks_exact(8);
        let mut n = 0;
        for (r, &k) in self.segs.iter().zip(&self.ks) {
            let mut prev: Option<usize> = None;
            for c in pairs.by_ref().take(k) {
                let (i, v) = pair(c);
                if !r.contains(&i) {
                    return Err(Error::payload(format!(
                        "topk: pair {n} has index {i}, outside its block {}..{} (dimension {})",
                        r.start,
                        r.end,
                        self.dim()
                    )));
                }
                if prev.is_some_and(|p| i <= p) {
                    return Err(Error::payload(format!(
                        "topk: pair {n} has index {i}, not after the previous index {}",
                        prev.unwrap_or(0)
                    )));
                }
                if !v.is_finite() {
                    return Err(Error::payload(format!("topk: pair {n} has value {v}")));
                }
                prev = Some(i);
                n += 1;
            }
        }
        for c in payload.chunks_exact(8) {
            let (i, v) = pair(c);
            self.agg[i] += weight * v;
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.agg);
    }
}

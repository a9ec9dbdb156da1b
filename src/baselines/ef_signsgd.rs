//! Scaled sign compression for EF-signSGD (Karimireddy, Rebjock, Stich, Jaggi, "Error Feedback
//! Fixes SignSGD and other Gradient Compression Schemes", ICML 2019), spec `vqsgd.md` section 9.
//!
//! Each block p (of `compression.block`; one block by default) is sent as the scale
//! `||p||_1 / n` (n the block length) and the signs of its coordinates; the receiver decodes
//! `scale * sign(p_i)` (a zero coordinate decodes to `+scale`). This is the paper's compressor
//! C(p) = (||p||_1 / d) sign(p); it is biased, so the caller must wrap it in error feedback
//! ([`crate::feedback::ErrorFeedback`]), which is what makes the method converge. Decoded payloads
//! combine by weighted sum (not by majority vote).
//!
//! Payload (fixed length):
//! - `4 nb` bytes: the `nb` block scales, `f32` little-endian (mean absolute value, rounded from
//!   an `f64` sum);
//! - then `ceil(d / 8)` bytes of sign bits as in [`super::signsgd`] (1 = negative), tail bits zero.
//!
//! 1 bit per coordinate plus 32 bits per block.

use super::signsgd::{is_negative, pack_signs};
use super::Segments;
use crate::bits::bytes_for_bits;
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::{Error, Result};

/// The scaled-sign compressor (see the module docs).
pub struct EfSignSgd {
    segs: Segments,
    agg: Vec<f32>,
    scales: Vec<f32>,
}

impl EfSignSgd {
    /// Scaled sign with one scale per segment.
    pub(crate) fn new(segs: &Segments) -> Self {
        Self {
            segs: segs.clone(),
            agg: vec![0.0; segs.dim()],
            scales: Vec::with_capacity(segs.count()),
        }
    }

    fn payload_len(&self) -> usize {
        4 * self.segs.count() + bytes_for_bits(self.segs.dim() as u64)
    }
}

impl Compressor for EfSignSgd {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "ef_signsgd".into(),
            params: format!(
                "scale=mean|p| per block, blocks={}, bits/coord=1",
                self.segs.describe()
            ),
            unbiased: false,
            epsilon_per_step: None,
        }
    }

    fn dim(&self) -> usize {
        self.segs.dim()
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        Some(self.payload_len())
    }

    fn max_payload_len(&self) -> usize {
        self.payload_len()
    }

    fn encode(&mut self, grad: &[f32], _seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        super::check_grad("ef_signsgd", grad, self.dim())?;
        out.reserve(self.payload_len());
        for r in self.segs.iter() {
            let n = r.len() as f64;
            let l1: f64 = grad[r].iter().map(|&x| f64::from(x.abs())).sum();
            let scale = (l1 / n) as f32;
            if !scale.is_finite() {
                return Err(Error::Numerical(
                    "ef_signsgd: block scale overflows f32".into(),
                ));
            }
            out.extend_from_slice(&scale.to_le_bytes());
        }
        pack_signs(grad, out);
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.agg.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        super::check_len("ef_signsgd", payload, self.payload_len())?;
        let nb = self.segs.count();
        super::read_scales(
            "ef_signsgd",
            "block scale",
            &payload[..4 * nb],
            &mut self.scales,
        )?;
        let bits = &payload[4 * nb..];
        super::check_padding("ef_signsgd", bits, self.dim() as u64)?;
        for (seg, &s) in self.segs.iter().zip(&self.scales) {
            let v = weight * s;
            for (a, i) in self.agg[seg.clone()].iter_mut().zip(seg) {
                *a += if is_negative(bits, i) { -v } else { v };
            }
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.agg);
    }
}

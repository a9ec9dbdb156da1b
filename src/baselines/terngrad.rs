//! TernGrad (Wen, Xu, Yan, Wu, Wang, Chen, Li, "TernGrad: Ternary Gradients to Reduce
//! Communication in Distributed Deep Learning", NeurIPS 2017), as defined in spec `vqsgd.md`
//! section 9.
//!
//! Per bucket (of `compression.bucket` coordinates within a block, 0 = the whole block) the
//! scale is `m = max_i |g_i|` and coordinate `i` is sent as `sign(g_i) * b_i`, `b_i` a Bernoulli
//! variable with `P(b_i = 1) = |g_i| / m`; the receiver decodes `m * sign(g_i) * b_i`. This is
//! unbiased with per-coordinate variance `|g_i| (m - |g_i|)`. The paper's optional gradient
//! clipping (to 2.5 standard deviations) is not applied: it would make the scheme biased.
//!
//! Payload (fixed length):
//! - `4 nb` bytes: the `nb` bucket scales, `f32` little-endian (exactly `max |g_i|`);
//! - then 2 bits per coordinate ([`crate::bits`] order): `0` = 0, `1` = +1, `2` = -1; code `3`
//!   is invalid; tail bits zero.
//!
//! Length `4 nb + ceil(2 d / 8)` bytes: 2 bits per coordinate plus `32 / bucket` for the scales.

use rand::{Rng as _, SeedableRng};

use super::Segments;
use crate::bits::{bytes_for_bits, BitWriter};
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::rng::Rng;
use crate::{Error, Result};

/// The TernGrad compressor (see the module docs).
pub struct TernGrad {
    segs: Segments,
    agg: Vec<f32>,
    scales: Vec<f32>,
}

impl TernGrad {
    /// TernGrad over the given buckets.
    pub(crate) fn new(segs: &Segments) -> Self {
        Self {
            segs: segs.clone(),
            agg: vec![0.0; segs.dim()],
            scales: Vec::with_capacity(segs.count()),
        }
    }

    fn payload_len(&self) -> usize {
        4 * self.segs.count() + bytes_for_bits(2 * self.segs.dim() as u64)
    }
}

impl Compressor for TernGrad {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "terngrad".into(),
            params: format!("buckets={}, bits/coord=2", self.segs.describe()),
            unbiased: true,
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

    fn encode(&mut self, grad: &[f32], seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        super::check_grad("terngrad", grad, self.dim())?;
        out.reserve(self.payload_len());
        self.scales.clear();
        for r in self.segs.iter() {
            let m = grad[r].iter().fold(0.0f32, |m, &x| m.max(x.abs()));
            self.scales.push(m);
            out.extend_from_slice(&m.to_le_bytes());
        }
        let mut rng = Rng::seed_from_u64(seeds.private);
        let mut w = BitWriter::new(out);
        for (r, &m) in self.segs.iter().zip(&self.scales) {
            let inv = if m > 0.0 { 1.0 / f64::from(m) } else { 0.0 };
            for &x in &grad[r] {
                let p = f64::from(x.abs()) * inv;
                let code = if rng.random::<f64>() < p {
                    if x < 0.0 {
                        2
                    } else {
                        1
                    }
                } else {
                    0
                };
                w.write(code, 2);
            }
        }
        w.finish();
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.agg.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        super::check_len("terngrad", payload, self.payload_len())?;
        let nb = self.segs.count();
        super::read_scales(
            "terngrad",
            "bucket scale",
            &payload[..4 * nb],
            &mut self.scales,
        )?;
        let codes = &payload[4 * nb..];
        super::check_padding("terngrad", codes, 2 * self.dim() as u64)?;
        // Code 3 has both bits of a pair set.
        if let Some(j) = codes.iter().position(|&b| b & (b >> 1) & 0x55 != 0) {
            let b = codes[j];
            let k = (0..4).find(|k| (b >> (2 * k)) & 3 == 3).unwrap_or(0);
            return Err(Error::payload(format!(
                "terngrad: coordinate {} has the invalid code 3",
                4 * j + k
            )));
        }
        for (seg, &m) in self.segs.iter().zip(&self.scales) {
            let v = weight * m;
            for (a, i) in self.agg[seg.clone()].iter_mut().zip(seg) {
                match (codes[i / 4] >> (2 * (i % 4))) & 3 {
                    1 => *a += v,
                    2 => *a -= v,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.agg);
    }
}

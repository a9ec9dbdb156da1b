//! The binary16 payload codec: a gradient as IEEE 754 binary16 values, exchanged by allgather
//! and summed after decoding. The `fp16` *scheme* of training runs is the allreduce of
//! [`crate::sync::HalfAllReduce`] (spec `vqsgd.md` section 9, "fp16/bf16 allreduce"), which puts
//! half the dense bytes on the wire; this codec is the same rounding as a [`Compressor`], for
//! in-process use and tests. The conversions live in [`crate::half`].
//!
//! Payload: `2 d` bytes, coordinate `i` as a little-endian `u16` half at bytes `2i..2i+2`
//! (16 bits per coordinate). Encoding rounds to nearest, ties to even; it is deterministic but
//! biased. Finite values beyond the half range (|x| >= 65520, which IEEE rounding would turn into
//! infinity) **saturate** to +-65504, the largest finite half; values below 2^-25 in magnitude
//! flush to (signed) zero and values in the subnormal range keep reduced precision, as IEEE
//! prescribes. Gradients that large or that small should be scaled before using fp16 (loss
//! scaling); this compressor does not scale. The decoder rejects infinities and NaNs in a payload,
//! which the encoder never produces.

use crate::bits::bytes_for_bits;
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::{Error, Result};

pub use crate::half::{f16_to_f32, f32_to_f16, f32_to_f16_saturating, F16_MAX};

/// The fp16 compressor (see the module docs).
pub struct Fp16 {
    dim: usize,
    agg: Vec<f32>,
}

impl Fp16 {
    /// An fp16 compressor for `dim` coordinates.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            agg: vec![0.0; dim],
        }
    }
}

impl Compressor for Fp16 {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "fp16".into(),
            params: "ieee binary16, round-to-nearest-even, saturate at 65504".into(),
            unbiased: false,
            epsilon_per_step: None,
        }
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        Some(bytes_for_bits(16 * self.dim as u64))
    }

    fn max_payload_len(&self) -> usize {
        2 * self.dim
    }

    fn encode(&mut self, grad: &[f32], _seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        super::check_grad("fp16", grad, self.dim)?;
        out.reserve(2 * self.dim);
        for &x in grad {
            out.extend_from_slice(&f32_to_f16_saturating(x).to_le_bytes());
        }
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.agg.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        super::check_len("fp16", payload, 2 * self.dim)?;
        if let Some(i) = payload.chunks_exact(2).position(|c| c[1] & 0x7c == 0x7c) {
            return Err(Error::payload(format!(
                "fp16: coordinate {i} is an infinity or NaN (0x{:04x})",
                u16::from_le_bytes([payload[2 * i], payload[2 * i + 1]])
            )));
        }
        for (a, c) in self.agg.iter_mut().zip(payload.chunks_exact(2)) {
            *a += weight * f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.agg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_inf_nan_and_bad_length() {
        let mut c = Fp16::new(2);
        c.begin_decode(0);
        assert!(c.decode_add(&[0, 0, 0, 0x7c], 1.0).is_err());
        assert!(c.decode_add(&[0, 0, 0x01, 0xfe], 1.0).is_err());
        assert!(c.decode_add(&[0, 0, 0], 1.0).is_err());
        assert!(c.decode_add(&[0, 0, 0, 0x3c], 1.0).is_ok());
        let mut out = [9.0; 2];
        c.finish_decode(&mut out);
        assert_eq!(out, [0.0, 1.0]);
    }
}

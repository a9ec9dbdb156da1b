//! signSGD with majority vote (Bernstein, Wang, Azizzadenesheli, Anandkumar, "signSGD:
//! Compressed Optimisation for Non-Convex Problems", ICML 2018; and "signSGD with Majority Vote
//! is Communication Efficient and Fault Tolerant", ICLR 2019), spec `vqsgd.md` section 9.
//!
//! Each rank sends only the signs of its gradient; the aggregate is, per coordinate, the sign of
//! the sum of the received signs ([`Aggregation::MajorityVote`]): +1, -1, or 0 on a tie. The
//! output has magnitude 1 (or 0) per coordinate; the learning rate sets the step size. Biased;
//! used without error feedback, as in the paper.
//!
//! Payload: `ceil(d / 8)` bytes, 1 bit per coordinate ([`crate::bits`] order: coordinate `i` is
//! bit `i % 8` of byte `i / 8`), 1 = negative, 0 = non-negative (a zero coordinate votes +);
//! tail bits zero.
//!
//! Weights: every payload is one vote. The `weight` of [`Compressor::decode_add`] is ignored
//! (the 1/P averaging weight does not change a sign), and votes are counted in integers, so ties
//! are exact regardless of the rank count.

use crate::bits::bytes_for_bits;
use crate::compress::{Aggregation, Compressor, CompressorInfo, StepSeeds};
use crate::Result;

/// The signSGD majority-vote compressor (see the module docs).
pub struct SignSgd {
    dim: usize,
    votes: Vec<i32>,
}

impl SignSgd {
    /// signSGD for `dim` coordinates.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            votes: vec![0; dim],
        }
    }
}

/// Pack the signs of `x` (1 = negative) into `out`, 8 per byte, tail bits zero.
pub(crate) fn pack_signs(x: &[f32], out: &mut Vec<u8>) {
    for chunk in x.chunks(8) {
        let mut b = 0u8;
        for (j, &v) in chunk.iter().enumerate() {
            b |= u8::from(v < 0.0) << j;
        }
        out.push(b);
    }
}

/// Whether coordinate `i` of a packed sign vector is negative.
#[inline]
pub(crate) fn is_negative(bits: &[u8], i: usize) -> bool {
    (bits[i / 8] >> (i % 8)) & 1 == 1
}

impl Compressor for SignSgd {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "signsgd".into(),
            params: "majority vote, bits/coord=1".into(),
            unbiased: false,
            epsilon_per_step: None,
        }
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        Some(bytes_for_bits(self.dim as u64))
    }

    fn max_payload_len(&self) -> usize {
        bytes_for_bits(self.dim as u64)
    }

    fn aggregation(&self) -> Aggregation {
        Aggregation::MajorityVote
    }

    fn encode(&mut self, grad: &[f32], _seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        super::check_grad("signsgd", grad, self.dim)?;
        out.reserve(bytes_for_bits(self.dim as u64));
        pack_signs(grad, out);
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.votes.fill(0);
    }

    fn decode_add(&mut self, payload: &[u8], _weight: f32) -> Result<()> {
        super::check_padding("signsgd", payload, self.dim as u64)?;
        for (i, v) in self.votes.iter_mut().enumerate() {
            *v += if is_negative(payload, i) { -1 } else { 1 };
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        assert_eq!(
            out.len(),
            self.dim,
            "signsgd: output length differs from the dimension"
        );
        for (o, &v) in out.iter_mut().zip(&self.votes) {
            *o = v.signum() as f32;
        }
    }
}

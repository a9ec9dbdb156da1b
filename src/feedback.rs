//! Error feedback for biased compressors (spec `vqsgd.md` section 9: "Biased compressors need
//! error feedback").
//!
//! The memory `e` accumulates what compression dropped (Stich, Cordonnier, Jaggi, "Sparsified SGD
//! with Memory", NeurIPS 2018; Karimireddy, Rebjock, Stich, Jaggi, "Error Feedback Fixes SignSGD
//! and other Gradient Compression Schemes", ICML 2019). Each step a rank
//!
//! 1. forms the corrected gradient `p = g + e` ([`ErrorFeedback::compensate`]),
//! 2. encodes `p` into its payload with any [`Compressor`],
//! 3. decodes its own payload alone and sets `e = p - decode(C(p))` ([`ErrorFeedback::update`]).
//!
//! Then `sum_t decode(C(p_t)) = sum_t g_t - e_T` exactly (up to `f32` rounding): nothing is lost,
//! only delayed, which is what makes top-k and scaled sign converge. The memory is in gradient
//! units (the papers keep it in update units, `lr * g`; the two agree for a constant learning rate,
//! and with a schedule the residual is re-applied at the current rate). It is rank-local state and
//! belongs in checkpoints ([`ErrorFeedback::memory`], [`ErrorFeedback::set_memory`]).
//!
//! This component is independent of the compressors: it only uses the [`Compressor`] trait and
//! [`decode_one`]. Because decoding uses the compressor's internal aggregate, call
//! [`ErrorFeedback::update`] before `begin_decode` of the step's aggregation or after its
//! `finish_decode`, never in between (or give it a second compressor instance).

use crate::compress::{decode_one, Compressor};
use crate::config::Scheme;
use crate::{Error, Result};

/// Whether a scheme is biased and is meant to be used with error feedback: `ef_signsgd` and
/// `topk`. (signSGD with majority vote is biased too but is used without memory, as in its paper;
/// the unbiased schemes need none.)
pub fn needs_feedback(scheme: Scheme) -> bool {
    matches!(scheme, Scheme::EfSignsgd | Scheme::Topk)
}

/// Error-feedback memory for one rank (see the module docs).
#[derive(Clone, Debug)]
pub struct ErrorFeedback {
    memory: Vec<f32>,
    /// The corrected gradient `p = g + e` of the current step.
    corrected: Vec<f32>,
    /// Scratch for `decode(C(p))`.
    decoded: Vec<f32>,
    /// Whether `corrected` holds a `p` not yet consumed by `update`.
    pending: bool,
}

impl ErrorFeedback {
    /// Zero memory for a gradient of `dim` coordinates (buffers allocated once).
    pub fn new(dim: usize) -> Self {
        Self {
            memory: vec![0.0; dim],
            corrected: vec![0.0; dim],
            decoded: vec![0.0; dim],
            pending: false,
        }
    }

    /// Length of the gradient.
    pub fn dim(&self) -> usize {
        self.memory.len()
    }

    /// Form `p = grad + memory` and return it for encoding.
    pub fn compensate(&mut self, grad: &[f32]) -> Result<&[f32]> {
        if grad.len() != self.dim() {
            return Err(Error::Other(format!(
                "error feedback: gradient has {} coordinates, memory has {}",
                grad.len(),
                self.dim()
            )));
        }
        for ((p, &g), &e) in self.corrected.iter_mut().zip(grad).zip(&self.memory) {
            *p = g + e;
        }
        self.pending = true;
        Ok(&self.corrected)
    }

    /// The corrected gradient of the last [`compensate`](Self::compensate).
    pub fn corrected(&self) -> &[f32] {
        &self.corrected
    }

    /// After encoding the corrected gradient into `payload` with `c`, decode that payload alone
    /// (step shared seed `shared`) and set `memory = p - decoded`. Errors if no
    /// [`compensate`](Self::compensate) preceded it, if `c` has another dimension, or if the
    /// payload does not decode (the memory is then unchanged).
    pub fn update(&mut self, c: &mut dyn Compressor, payload: &[u8], shared: u64) -> Result<()> {
        if !self.pending {
            return Err(Error::Other(
                "error feedback: update without a preceding compensate".into(),
            ));
        }
        if c.dim() != self.dim() {
            return Err(Error::Other(format!(
                "error feedback: compressor dimension {} differs from the memory's {}",
                c.dim(),
                self.dim()
            )));
        }
        decode_one(c, payload, shared, &mut self.decoded)?;
        for ((e, &p), &q) in self
            .memory
            .iter_mut()
            .zip(&self.corrected)
            .zip(&self.decoded)
        {
            *e = p - q;
        }
        self.pending = false;
        Ok(())
    }

    /// The decoded own payload of the last [`update`](Self::update).
    pub fn last_decoded(&self) -> &[f32] {
        &self.decoded
    }

    /// The memory `e` (for checkpoints and diagnostics).
    pub fn memory(&self) -> &[f32] {
        &self.memory
    }

    /// Restore the memory from a checkpoint; the length must match and values must be finite.
    pub fn set_memory(&mut self, m: &[f32]) -> Result<()> {
        if m.len() != self.dim() {
            return Err(Error::Other(format!(
                "error feedback: restored memory has {} coordinates, expected {}",
                m.len(),
                self.dim()
            )));
        }
        if let Some(i) = m.iter().position(|x| !x.is_finite()) {
            return Err(Error::Numerical(format!(
                "error feedback: restored memory coordinate {i} is {}",
                m[i]
            )));
        }
        self.memory.copy_from_slice(m);
        self.pending = false;
        Ok(())
    }

    /// Zero the memory.
    pub fn reset(&mut self) {
        self.memory.fill(0.0);
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_schemes_need_feedback() {
        assert!(needs_feedback(Scheme::Topk));
        assert!(needs_feedback(Scheme::EfSignsgd));
        for s in [
            Scheme::Dense,
            Scheme::Qsgd,
            Scheme::Terngrad,
            Scheme::Signsgd,
            Scheme::Fp16,
        ] {
            assert!(!needs_feedback(s));
        }
    }

    #[test]
    fn memory_restore_checks_length() {
        let mut ef = ErrorFeedback::new(3);
        assert!(ef.set_memory(&[1.0, 2.0]).is_err());
        assert!(ef.set_memory(&[1.0, f32::NAN, 0.0]).is_err());
        ef.set_memory(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(ef.compensate(&[1.0, 1.0, 1.0]).unwrap(), &[2.0, 3.0, 4.0]);
        assert!(ef.compensate(&[1.0]).is_err());
    }
}

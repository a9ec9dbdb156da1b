//! The gradient compressor interface shared by every scheme.
//!
//! A [`Compressor`] turns one rank's flat `f32` gradient into a packed byte payload and, on the
//! receiving side, accumulates any number of payloads into an aggregate. It knows nothing about
//! MPI, models or data: the synchronisation layer (`sync`) hands it gradients and byte slices.
//!
//! Contract (spec `vqsgd.md` section 8):
//! - decoding depends only on the shared configuration, the [`StepSeeds::shared`] seed and the
//!   payload bytes, never on encoder-local state, so every rank decodes every payload alike;
//! - decoding validates its input: a truncated payload, trailing bytes or an out-of-range index
//!   is an [`Error::Payload`](crate::Error::Payload), never a panic;
//! - the payload length reported to users is `out.len()` after [`Compressor::encode`]: exactly
//!   the bytes handed to MPI.
//!
//! The aggregate is kept inside the compressor (buffers allocated once), because some schemes
//! accumulate in another domain: the rotated schemes of spec section 4 add spikes in the
//! Hadamard domain and apply the inverse rotation once in [`Compressor::finish_decode`];
//! signSGD with majority vote takes the sign of the sum there.

use crate::Result;

/// The seeds a compressor may use in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepSeeds {
    /// Identical on every rank for this step (e.g. the Hadamard sign diagonal).
    pub shared: u64,
    /// This rank's private randomness for this step (sampling of indices, rounding).
    pub private: u64,
}

/// How decoded payloads combine into the update direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// Sum of `weight * decode(payload)`; with weight `1/P` this is the average (unbiased schemes).
    WeightedSum,
    /// Sign of the sum of decoded signs (signSGD with majority vote).
    MajorityVote,
}

/// Static facts about a configured compressor, for reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompressorInfo {
    /// Scheme name as in the config (`cross_polytope`, `qsgd`, ...).
    pub scheme: String,
    /// Human-readable parameters (`s=100, block=65536, coding=rice`).
    pub params: String,
    /// Whether E[decode(encode(g))] = g.
    pub unbiased: bool,
    /// Local differential privacy per step (spec section 7), when the scheme provides it.
    pub epsilon_per_step: Option<f64>,
}

/// A gradient compressor for a fixed gradient dimension (see the module docs for the contract).
pub trait Compressor: Send {
    /// Description for reports.
    fn info(&self) -> CompressorInfo;

    /// Length of the gradient this compressor was built for.
    fn dim(&self) -> usize;

    /// `Some(n)` when every payload is exactly `n` bytes (fixed-width coding), else `None`.
    fn fixed_payload_len(&self) -> Option<usize>;

    /// An upper bound on the payload length, for allocating receive buffers once.
    fn max_payload_len(&self) -> usize;

    /// How decoded payloads are combined.
    fn aggregation(&self) -> Aggregation {
        Aggregation::WeightedSum
    }

    /// Compress `grad` (length [`dim`](Self::dim)) into `out`, which is cleared first.
    fn encode(&mut self, grad: &[f32], seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()>;

    /// Start a new aggregate for the step with shared seed `shared` (zeroes the accumulator).
    fn begin_decode(&mut self, shared: u64);

    /// Add `weight` times the decoded `payload` into the aggregate.
    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()>;

    /// Write the aggregate into `out` (length [`dim`](Self::dim)).
    fn finish_decode(&mut self, out: &mut [f32]);
}

/// Decode a single payload into `out` (`out = decode(payload)`): the aggregate of one.
pub fn decode_one(
    c: &mut dyn Compressor,
    payload: &[u8],
    shared: u64,
    out: &mut [f32],
) -> Result<()> {
    c.begin_decode(shared);
    c.decode_add(payload, 1.0)?;
    c.finish_decode(out);
    Ok(())
}

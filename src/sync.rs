//! Gradient synchronisation: how each rank's local gradient becomes the global update direction.
//!
//! One small interface, [`GradientSync`], with three strategies:
//! - [`DenseAllReduce`]: fp32 allreduce of the whole gradient, divided by the rank count
//!   (the baseline every compressed scheme is measured against);
//! - [`HalfAllReduce`]: the same allreduce in IEEE binary16 (the `fp16` scheme);
//! - [`CompressedAllGather`] (spec `vqsgd.md` section 8): every rank encodes its gradient with
//!   a [`Compressor`], the payloads are exchanged with an allgather (allgatherv when their
//!   lengths differ), and every rank decodes all payloads in rank order into one aggregate, so
//!   parameters stay bit-identical across ranks.
//!
//! This is the only module that combines compression with communication. Buffers are
//! allocated once and reused every step. Seeds for step `t` come from [`step_seeds`]: the
//! shared seed depends only on the global seed and `t`, the private one also on the rank.

use std::time::Instant;

use crate::comm::{mpi_count, Collective};
use crate::compress::{Aggregation, Compressor, CompressorInfo, StepSeeds};
use crate::config::{CompressionConfig, Scheme};
use std::ops::Range;

use crate::config::BlockSpec;
use crate::feedback::{needs_feedback, ErrorFeedback};
use crate::half::{f16_to_f32_scaled_slice, f32_to_f16_saturating_slice};
use crate::policy::{packed_ranges, split_layers, Partitioned};
use crate::rng::{derive_seed, Purpose};
use crate::{Error, Result};

/// What one synchronisation step cost this rank.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncStats {
    /// Bytes this rank handed to MPI as its contribution.
    pub bytes_sent: u64,
    /// Bytes this rank received from the other ranks (its own contribution excluded).
    pub bytes_received: u64,
    /// Seconds spent encoding.
    pub encode_s: f64,
    /// Seconds inside MPI calls.
    pub comm_s: f64,
    /// Seconds spent decoding and aggregating.
    pub decode_s: f64,
    /// Communication seconds hidden behind computation (overlapped exchange only, see
    /// [`crate::comm::PipelineTimes::hidden_s`]).
    pub hidden_s: f64,
}

/// Turns local gradients into the global update direction.
pub trait GradientSync {
    /// Scheme name for reports.
    fn name(&self) -> String;
    /// Dense-equivalent bytes per step (4 x parameter count).
    fn dense_bytes(&self) -> u64;
    /// Scheme description for reports.
    fn info(&self) -> CompressorInfo;
    /// Payload size per step in words, for the start-up log line.
    fn describe_payload(&self) -> String;
    /// Bytes this rank hands to MPI per step (the upper bound for variable-length coding).
    fn payload_bytes(&self) -> u64;
    /// The collective that carries the gradient: `allreduce`, `allgather` or `allgatherv`.
    fn collective(&self) -> &'static str;
    /// This rank's error-feedback memory, for checkpoints (`None` without error feedback).
    fn feedback_memory(&self) -> Option<&[f32]> {
        None
    }
    /// Restore the error-feedback memory from a checkpoint.
    fn set_feedback_memory(&mut self, m: &[f32]) -> Result<()> {
        if m.is_empty() {
            Ok(())
        } else {
            Err(Error::Other(
                "this scheme has no error-feedback memory to restore".into(),
            ))
        }
    }
    /// Combine `grad` (this rank's gradient) across ranks into `out` (same length).
    fn sync(
        &mut self,
        grad: &[f32],
        out: &mut [f32],
        step: u64,
        comm: &dyn Collective,
    ) -> Result<SyncStats>;
}

/// The seeds of step `step` on `rank` (see the module docs).
pub fn step_seeds(seed: u64, rank: usize, step: u64) -> StepSeeds {
    StepSeeds {
        shared: derive_seed(seed, Purpose::SharedCodec, &[step]),
        private: derive_seed(seed, Purpose::Encode, &[rank as u64, step]),
    }
}

/// Build the compressor of `cfg.scheme` for a gradient of `dim` parameters in `layers`,
/// applying the compression policy (small layers dense, see [`crate::policy`]).
pub fn build_compressor(
    cfg: &CompressionConfig,
    dim: usize,
    layers: &[Range<usize>],
) -> Result<Box<dyn Compressor>> {
    let build_inner = |dim: usize, layers: &[Range<usize>]| -> Result<Box<dyn Compressor>> {
        if cfg.scheme.is_vq() {
            crate::quant::build(cfg, dim, layers)
        } else if cfg.block == BlockSpec::Layer {
            let sizes: Vec<usize> = layers.iter().map(|r| r.len()).collect();
            crate::baselines::build_with_blocks(cfg, &sizes)
        } else {
            crate::baselines::build(cfg, dim)
        }
    };
    if cfg.dense_below == 0 {
        return build_inner(dim, layers);
    }
    if cfg.scheme == Scheme::Signsgd {
        return Err(Error::config(
            "compression.dense_below",
            "signsgd aggregates by majority vote, which has no dense part; set dense_below = 0",
        ));
    }
    let (dense, comp) = split_layers(layers, cfg.dense_below);
    if comp.is_empty() {
        return Err(Error::config(
            "compression.dense_below",
            format!(
                "{} sends every layer dense (the largest has {} parameters); use scheme = \"dense\"",
                cfg.dense_below,
                layers.iter().map(|r| r.len()).max().unwrap_or(0)
            ),
        ));
    }
    let packed = packed_ranges(&comp);
    let n_comp = packed.last().map_or(0, |r| r.end);
    let inner = build_inner(n_comp, &packed)?;
    Ok(Box::new(Partitioned::new(inner, dim, dense, comp)?))
}

/// Build the synchroniser for `cfg` and a model of `dim` parameters in `layers`.
pub fn build(
    cfg: &CompressionConfig,
    dim: usize,
    layers: &[Range<usize>],
    seed: u64,
) -> Result<Box<dyn GradientSync>> {
    match cfg.scheme {
        Scheme::Dense => return Ok(Box::new(DenseAllReduce::new(dim))),
        Scheme::Fp16 => {
            if cfg.dense_below > 0 {
                return Err(Error::config(
                    "compression.dense_below",
                    "fp16 is an allreduce of the whole gradient, which has no dense part; set \
                     dense_below = 0",
                ));
            }
            return Ok(Box::new(HalfAllReduce::new(dim)));
        }
        _ => {}
    }
    let compressor = build_compressor(cfg, dim, layers)?;
    let mut s = CompressedAllGather::new(compressor, seed);
    if needs_feedback(cfg.scheme) {
        s.feedback = Some(ErrorFeedback::new(dim));
    }
    s.warmup_steps = cfg.warmup_steps as u64;
    Ok(Box::new(s))
}

/// Dense fp32 allreduce, averaged: the baseline.
pub struct DenseAllReduce {
    dim: usize,
}

impl DenseAllReduce {
    /// A dense synchroniser for gradients of length `dim`.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl GradientSync for DenseAllReduce {
    fn name(&self) -> String {
        "dense".into()
    }

    fn dense_bytes(&self) -> u64 {
        4 * self.dim as u64
    }

    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "dense".into(),
            params: "fp32 allreduce".into(),
            unbiased: true,
            epsilon_per_step: None,
        }
    }

    fn describe_payload(&self) -> String {
        format!("{} bytes (fp32 allreduce)", self.dense_bytes())
    }

    fn payload_bytes(&self) -> u64 {
        self.dense_bytes()
    }

    fn collective(&self) -> &'static str {
        "allreduce"
    }

    fn sync(
        &mut self,
        grad: &[f32],
        out: &mut [f32],
        _step: u64,
        comm: &dyn Collective,
    ) -> Result<SyncStats> {
        let t = Instant::now();
        comm.all_reduce_sum_f32(grad, out);
        let comm_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let inv = 1.0 / comm.size() as f32;
        if comm.size() > 1 {
            out.iter_mut().for_each(|v| *v *= inv);
        }
        let bytes = self.dense_bytes();
        Ok(SyncStats {
            bytes_sent: bytes,
            bytes_received: if comm.size() > 1 { bytes } else { 0 },
            encode_s: 0.0,
            comm_s,
            decode_s: t.elapsed().as_secs_f64(),
            hidden_s: 0.0,
        })
    }
}

/// fp16 allreduce (spec section 9, "fp16/bf16 allreduce"), as Horovod's and PyTorch DDP's fp16
/// compression do it: every rank rounds its gradient to IEEE binary16 (nearest, ties to even,
/// saturating at +-65504), an allreduce sums the halves with a binary16 reduction
/// ([`crate::half::half_add`]: MPI has no half type, so a user-defined operation adds in `f32`
/// and rounds back), and every rank divides the sum by the rank count. Half the bytes of the
/// dense baseline per element, on the wire as well (unlike an allgather of halves, which costs
/// (P-1) x 2d). Deterministic, biased by rounding; with the ring algorithm every rank gets the
/// same bits.
pub struct HalfAllReduce {
    send: Vec<u16>,
    recv: Vec<u16>,
}

impl HalfAllReduce {
    /// An fp16 allreduce of gradients of length `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            send: vec![0; dim],
            recv: vec![0; dim],
        }
    }
}

impl GradientSync for HalfAllReduce {
    fn name(&self) -> String {
        "fp16".into()
    }

    fn dense_bytes(&self) -> u64 {
        4 * self.send.len() as u64
    }

    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "fp16".into(),
            params: "binary16 allreduce, round-to-nearest-even, saturate at 65504".into(),
            unbiased: false,
            epsilon_per_step: None,
        }
    }

    fn describe_payload(&self) -> String {
        format!("{} bytes (binary16 allreduce)", self.payload_bytes())
    }

    fn payload_bytes(&self) -> u64 {
        2 * self.send.len() as u64
    }

    fn collective(&self) -> &'static str {
        "allreduce"
    }

    fn sync(
        &mut self,
        grad: &[f32],
        out: &mut [f32],
        _step: u64,
        comm: &dyn Collective,
    ) -> Result<SyncStats> {
        if grad.len() != self.send.len() || out.len() != self.send.len() {
            return Err(Error::Other(format!(
                "fp16 allreduce: gradient of {} and output of {} values, expected {}",
                grad.len(),
                out.len(),
                self.send.len()
            )));
        }
        let t = Instant::now();
        f32_to_f16_saturating_slice(grad, &mut self.send);
        let encode_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        comm.all_reduce_sum_f16(&self.send, &mut self.recv);
        let comm_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        f16_to_f32_scaled_slice(&self.recv, 1.0 / comm.size() as f32, out);
        let bytes = self.payload_bytes();
        Ok(SyncStats {
            bytes_sent: bytes,
            bytes_received: if comm.size() > 1 { bytes } else { 0 },
            encode_s,
            comm_s,
            decode_s: t.elapsed().as_secs_f64(),
            hidden_s: 0.0,
        })
    }
}

/// Bytes of the length that precedes a variable-length payload (an allgather of one `u64`).
const LEN_BYTES: u64 = std::mem::size_of::<u64>() as u64;

/// Compressed exchange: encode, allgather(v) the payloads, decode all in rank order.
pub struct CompressedAllGather {
    compressor: Box<dyn Compressor>,
    seed: u64,
    /// Error-feedback memory for biased schemes (top-k, EF-signSGD).
    pub feedback: Option<ErrorFeedback>,
    /// Steps exchanged densely before compression starts.
    pub warmup_steps: u64,
    send: Vec<u8>,
    recv: Vec<u8>,
    counts: Vec<i32>,
    displs: Vec<i32>,
}

impl CompressedAllGather {
    /// Exchange gradients compressed by `compressor`; `seed` is the run's global seed.
    pub fn new(compressor: Box<dyn Compressor>, seed: u64) -> Self {
        let cap = compressor.max_payload_len();
        Self {
            compressor,
            seed,
            feedback: None,
            warmup_steps: 0,
            send: Vec::with_capacity(cap),
            recv: Vec::new(),
            counts: Vec::new(),
            displs: Vec::new(),
        }
    }

    /// The compressor (for reports).
    pub fn compressor(&self) -> &dyn Compressor {
        self.compressor.as_ref()
    }

    /// Encode `grad` for `step` into the send buffer; returns the payload length.
    pub fn encode(&mut self, grad: &[f32], step: u64, rank: usize) -> Result<usize> {
        let seeds = step_seeds(self.seed, rank, step);
        match self.feedback.as_mut() {
            None => self.compressor.encode(grad, seeds, &mut self.send)?,
            Some(fb) => {
                let corrected = fb.compensate(grad)?;
                self.compressor.encode(corrected, seeds, &mut self.send)?;
                fb.update(self.compressor.as_mut(), &self.send, seeds.shared)?;
            }
        }
        Ok(self.send.len())
    }

    /// Exchange the encoded payloads (afterwards `recv`, `counts` and `displs` hold every
    /// rank's bytes); returns the bytes this rank sent and received. Variable-length payloads
    /// are preceded by an allgather of their lengths (8 bytes per rank), which is counted.
    fn exchange(&mut self, comm: &dyn Collective) -> Result<(u64, u64)> {
        let p = comm.size();
        self.counts.resize(p, 0);
        self.displs.resize(p, 0);
        let mut received = 0u64;
        let mut sent = self.send.len() as u64;
        match self.compressor.fixed_payload_len() {
            Some(n) => {
                if self.send.len() != n {
                    return Err(Error::Other(format!(
                        "compressor produced {} bytes, its fixed length is {n}",
                        self.send.len()
                    )));
                }
                let c = mpi_count(n, "payload")?;
                for r in 0..p {
                    self.counts[r] = c;
                    self.displs[r] = mpi_count(n * r, "allgather displacement")?;
                }
                self.recv.resize(n * p, 0);
                comm.all_gather_bytes(&self.send, &mut self.recv)?;
                received += (n * (p - 1)) as u64;
            }
            None => {
                let lens = comm.all_gather_u64(self.send.len() as u64);
                sent += LEN_BYTES;
                let mut off = 0usize;
                for (r, &len) in lens.iter().enumerate() {
                    let len = usize::try_from(len).map_err(|_| {
                        Error::Payload(format!("rank {r} announced a payload of {len} bytes"))
                    })?;
                    self.counts[r] = mpi_count(len, "payload")?;
                    self.displs[r] = mpi_count(off, "allgatherv displacement")?;
                    off = off.checked_add(len).ok_or_else(|| {
                        Error::Payload("payload lengths overflow the address space".into())
                    })?;
                    if r != comm.rank() {
                        received += len as u64 + LEN_BYTES;
                    }
                }
                mpi_count(off, "allgatherv total")?;
                self.recv.resize(off, 0);
                comm.all_gather_varcount_bytes(
                    &self.send,
                    &self.counts,
                    &self.displs,
                    &mut self.recv,
                )?;
            }
        }
        Ok((sent, received))
    }

    /// Decode every gathered payload in rank order into `out`.
    fn decode_all(&mut self, out: &mut [f32], step: u64, world: usize) -> Result<()> {
        let shared = step_seeds(self.seed, 0, step).shared;
        let weight = match self.compressor.aggregation() {
            Aggregation::WeightedSum => 1.0 / world as f32,
            Aggregation::MajorityVote => 1.0,
        };
        self.compressor.begin_decode(shared);
        for r in 0..world {
            let (d, c) = (self.displs[r] as usize, self.counts[r] as usize);
            self.compressor
                .decode_add(&self.recv[d..d + c], weight)
                .map_err(|e| Error::Payload(format!("from rank {r}: {e}")))?;
        }
        self.compressor.finish_decode(out);
        Ok(())
    }
}

impl GradientSync for CompressedAllGather {
    fn name(&self) -> String {
        self.compressor.info().scheme
    }

    fn dense_bytes(&self) -> u64 {
        4 * self.compressor.dim() as u64
    }

    fn info(&self) -> CompressorInfo {
        self.compressor.info()
    }

    fn feedback_memory(&self) -> Option<&[f32]> {
        self.feedback.as_ref().map(|f| f.memory())
    }

    fn set_feedback_memory(&mut self, m: &[f32]) -> Result<()> {
        match self.feedback.as_mut() {
            Some(f) => f.set_memory(m),
            None if m.is_empty() => Ok(()),
            None => Err(Error::Other(
                "the checkpoint has error-feedback memory, this scheme has none".into(),
            )),
        }
    }

    fn payload_bytes(&self) -> u64 {
        // Variable-length payloads also send their length (see `exchange`).
        self.compressor
            .fixed_payload_len()
            .map_or(self.compressor.max_payload_len() as u64 + LEN_BYTES, |n| {
                n as u64
            })
    }

    fn collective(&self) -> &'static str {
        match self.compressor.fixed_payload_len() {
            Some(_) => "allgather",
            None => "allgatherv",
        }
    }

    fn describe_payload(&self) -> String {
        let dense = self.dense_bytes() as f64;
        match self.compressor.fixed_payload_len() {
            Some(n) => format!(
                "{n} bytes ({:.1}x fewer than dense)",
                dense / n.max(1) as f64
            ),
            None => format!(
                "variable, at most {} bytes (at least {:.1}x fewer than dense)",
                self.compressor.max_payload_len(),
                dense / self.compressor.max_payload_len().max(1) as f64
            ),
        }
    }

    fn sync(
        &mut self,
        grad: &[f32],
        out: &mut [f32],
        step: u64,
        comm: &dyn Collective,
    ) -> Result<SyncStats> {
        if step < self.warmup_steps {
            return DenseAllReduce::new(grad.len()).sync(grad, out, step, comm);
        }
        let t = Instant::now();
        self.encode(grad, step, comm.rank())?;
        let encode_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (sent, received) = self.exchange(comm)?;
        let comm_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        self.decode_all(out, step, comm.size())?;
        Ok(SyncStats {
            bytes_sent: sent,
            bytes_received: received,
            encode_s,
            comm_s,
            decode_s: t.elapsed().as_secs_f64(),
            hidden_s: 0.0,
        })
    }
}

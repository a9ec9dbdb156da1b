//! Overlapping the compressed exchange with backpropagation.
//!
//! With `compression.overlap = true`, the gradient of each layer is encoded as soon as
//! backpropagation has finished it (the model reports finished ranges through the `ready`
//! callback of [`Model::loss_grad`](crate::model::Model::loss_grad), last layer first), and its
//! payload's allgather starts at once as a non-blocking collective while the earlier layers
//! are still being differentiated (each post also tests the allgathers in flight, which is
//! what makes an MPI without a progress thread move them on). After the backward pass all
//! exchanges are completed and every layer's payloads are decoded in rank order, exactly as in
//! [`CompressedAllGather`](crate::sync::CompressedAllGather), so ranks stay bit-identical.
//!
//! Each layer group has its own compressor (one block per group, or finer blocks inside it),
//! and fixed-length payloads, so the allgather counts are known before the data is. The
//! communication time reported for an overlapped step is what remained exposed (time inside
//! the posting and testing calls plus the final wait); what was hidden is reported as
//! `comm_hidden_s`: the time from post to completion of every group whose allgather finished
//! during backpropagation (a lower bound). Neither Open MPI nor MPICH makes asynchronous
//! progress without a progress thread, so how much is hidden depends on the tests.

use std::ops::Range;
use std::time::Instant;

use crate::comm::Collective;

/// A backward pass that reports finished gradient ranges through its argument and returns the
/// loss (see [`Model::loss_grad`](crate::model::Model::loss_grad)).
pub type Backward<'a> = dyn FnMut(&mut dyn FnMut(Range<usize>, &[f32])) -> f64 + 'a;
use crate::compress::{Aggregation, Compressor};
use crate::config::{CompressionConfig, Scheme};
use crate::rng::{derive_seed, Purpose};
use crate::sync::{build_compressor, SyncStats};
use crate::{Error, Result};

/// Per-layer compressors and buffers for the overlapped exchange.
pub struct OverlappedExchange {
    groups: Vec<Range<usize>>,
    comps: Vec<Box<dyn Compressor>>,
    sends: Vec<Vec<u8>>,
    recv: Vec<Vec<u8>>,
    payload: Vec<u8>,
    seed: u64,
}

/// Seeds of layer group `g` at `step` on `rank`.
fn group_seeds(seed: u64, rank: usize, step: u64, g: usize) -> crate::compress::StepSeeds {
    crate::compress::StepSeeds {
        shared: derive_seed(seed, Purpose::SharedCodec, &[step, g as u64 + 1]),
        private: derive_seed(seed, Purpose::Encode, &[rank as u64, step, g as u64 + 1]),
    }
}

impl OverlappedExchange {
    /// One compressor per group of `groups` (the ranges the model reports as ready), each
    /// covering the model `layers` inside it.
    pub fn new(
        cfg: &CompressionConfig,
        layers: &[Range<usize>],
        groups: Vec<Range<usize>>,
        seed: u64,
    ) -> Result<Self> {
        if matches!(cfg.scheme, Scheme::Dense | Scheme::Fp16) {
            return Err(Error::config(
                "compression.overlap",
                format!(
                    "overlap applies to the allgather schemes; \"{}\" is one allreduce",
                    cfg.scheme.name()
                ),
            ));
        }
        if crate::feedback::needs_feedback(cfg.scheme) {
            return Err(Error::config(
                "compression.overlap",
                format!(
                    "scheme \"{}\" uses error feedback, which is not combined with overlap",
                    cfg.scheme.name()
                ),
            ));
        }
        let mut comps = Vec::with_capacity(groups.len());
        for g in &groups {
            let sub: Vec<Range<usize>> = layers
                .iter()
                .filter(|l| l.start >= g.start && l.end <= g.end)
                .map(|l| l.start - g.start..l.end - g.start)
                .collect();
            // A group always covers whole layers; a model without named layers is one block.
            let sub = if sub.is_empty() {
                std::iter::once(0..g.len()).collect()
            } else {
                sub
            };
            let c = build_compressor(cfg, g.len(), &sub)?;
            if c.fixed_payload_len().is_none() {
                return Err(Error::config(
                    "compression.overlap",
                    "overlap needs fixed-length payloads: use coding = \"fixed\"",
                ));
            }
            comps.push(c);
        }
        let n = groups.len();
        Ok(Self {
            groups,
            comps,
            sends: vec![Vec::new(); n],
            recv: vec![Vec::new(); n],
            payload: Vec::new(),
            seed,
        })
    }

    /// Sum of the fixed payload lengths of all groups.
    pub fn payload_bytes(&self) -> u64 {
        self.comps
            .iter()
            .map(|c| c.fixed_payload_len().unwrap_or(0) as u64)
            .sum()
    }

    /// One step: run the backward pass `backward(ready)`, exchanging each group's payload as
    /// soon as it is ready, then decode everything into `out`. Returns the loss returned by
    /// `backward`, the exchange statistics and the compute seconds (backward minus encoding
    /// and posting).
    pub fn step(
        &mut self,
        comm: &dyn Collective,
        step: u64,
        backward: &mut Backward<'_>,
        out: &mut [f32],
    ) -> Result<(f64, SyncStats, f64)> {
        let rank = comm.rank();
        let world = comm.size();
        let seed = self.seed;
        let mut encode_s = 0.0;
        let mut loss = 0.0;
        let mut sent = 0u64;
        let t_all = Instant::now();
        let (groups, comps, payload) = (&self.groups, &mut self.comps, &mut self.payload);
        let times = comm.all_gather_pipelined(&mut self.sends, &mut self.recv, &mut |post| {
            let mut err: Option<Error> = None;
            let mut posted = 0usize;
            loss = backward(&mut |range, g| {
                if err.is_some() {
                    return;
                }
                let Some(gi) = groups.iter().position(|r| *r == range) else {
                    err = Some(Error::Other(format!(
                        "overlap: the model reported gradient range {range:?}, which is not a \
                         layer group"
                    )));
                    return;
                };
                let t = Instant::now();
                let res = comps[gi].encode(g, group_seeds(seed, rank, step, gi), payload);
                encode_s += t.elapsed().as_secs_f64();
                sent += payload.len() as u64;
                posted += 1;
                if let Err(e) = res.and_then(|()| post(gi, payload)) {
                    err = Some(e);
                }
            });
            match err {
                Some(e) => Err(e),
                None if posted != groups.len() => Err(Error::Other(format!(
                    "overlap: {posted} of {} layer groups were reported ready",
                    groups.len()
                ))),
                None => Ok(()),
            }
        })?;
        let compute_s = (t_all.elapsed().as_secs_f64() - encode_s - times.comm_s).max(0.0);

        let t = Instant::now();
        let mut received = 0u64;
        for (gi, range) in self.groups.iter().enumerate() {
            let c = &mut self.comps[gi];
            let n = c.fixed_payload_len().unwrap_or(0);
            let weight = match c.aggregation() {
                Aggregation::WeightedSum => 1.0 / world as f32,
                Aggregation::MajorityVote => 1.0,
            };
            c.begin_decode(group_seeds(seed, 0, step, gi).shared);
            for r in 0..world {
                c.decode_add(&self.recv[gi][r * n..(r + 1) * n], weight)
                    .map_err(|e| Error::Payload(format!("layer group {gi} from rank {r}: {e}")))?;
                if r != rank {
                    received += n as u64;
                }
            }
            c.finish_decode(&mut out[range.clone()]);
        }
        let stats = SyncStats {
            bytes_sent: sent,
            bytes_received: received,
            encode_s,
            comm_s: times.comm_s,
            decode_s: t.elapsed().as_secs_f64(),
            hidden_s: times.hidden_s,
        };
        Ok((loss, stats, compute_s))
    }
}

//! Network probe: latency and bandwidth of the actual communicator, and where compression pays.
//!
//! Spec `vqsgd.md` section 8 models a ring allreduce of `n` dense bytes on `P` ranks as
//! `2(P-1) alpha + 2(P-1)/P n beta` and the allgather of `b`-byte payloads as
//! `(P-1) alpha + (P-1) b beta`. The compressed exchange is cheaper when
//! `b < alpha/beta + 2n/P`, i.e. when the compression ratio `n/b` exceeds
//! `n / (alpha/beta + 2n/P)`, which is `P/2` when latency is negligible.
//!
//! [`probe`] fits `alpha` and `beta` from timed allgathers of two sizes, times the two real
//! exchanges at the configured sizes, and returns a [`ProbeReport`] saying whether the
//! configured scheme is above the break-even ratio. Every timing is the slowest rank's time of
//! one call, after warm-up calls (Open MPI opens TCP connections lazily, on the first message
//! to each peer); over the repetitions the lower quartile is kept, because the noise of a
//! shared machine (a rank descheduled while it waits) only ever adds time.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::comm::{Collective, ReduceOp};
use crate::Result;

/// What the probe measured and concluded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeReport {
    /// Ranks.
    pub ranks: usize,
    /// Fitted per-message latency, seconds.
    pub alpha_s: f64,
    /// Fitted bandwidth, bytes per second (1/beta).
    pub bandwidth_bytes_per_s: f64,
    /// Dense gradient bytes n.
    pub dense_bytes: u64,
    /// Payload bytes b of the configured scheme.
    pub payload_bytes: u64,
    /// Configured compression ratio n/b.
    pub compression_ratio: f64,
    /// Ratio above which the allgather beats the ring allreduce in the model.
    pub break_even_ratio: f64,
    /// Whether the configured scheme is above the break-even ratio.
    pub compression_wins: bool,
    /// Measured dense allreduce of n bytes, seconds (lower quartile of 9).
    pub measured_allreduce_s: f64,
    /// Measured allgather of b-byte payloads, seconds (lower quartile of 9).
    pub measured_allgather_s: f64,
}

/// The lower quartile of `v` (not empty).
fn lower_quartile(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 4]
}

/// Warm-up calls before every timed series.
const WARMUP: usize = 3;

/// Lower quartile over `reps` of the slowest rank's time for `f`.
fn time_collective(comm: &dyn Collective, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..WARMUP {
        f();
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        comm.barrier();
        let t = Instant::now();
        f();
        let local = [t.elapsed().as_secs_f64()];
        let mut max = [0.0];
        comm.all_reduce_f64(&local, &mut max, ReduceOp::Max);
        times.push(max[0]);
    }
    lower_quartile(times)
}

/// Probe the communicator for a dense gradient of `dense_bytes` and payloads of `payload_bytes`.
pub fn probe(comm: &dyn Collective, dense_bytes: u64, payload_bytes: u64) -> Result<ProbeReport> {
    let p = comm.size();
    let pf = p as f64;
    const REPS: usize = 21;
    const SMALL: usize = 8;
    const LARGE: usize = 1 << 20;
    let (alpha, beta) = if p > 1 {
        let send_s = vec![0u8; SMALL];
        let mut recv_s = vec![0u8; SMALL * p];
        let t_small = time_collective(comm, REPS, || {
            comm.all_gather_bytes(&send_s, &mut recv_s).unwrap_or(())
        });
        let send_l = vec![1u8; LARGE];
        let mut recv_l = vec![0u8; LARGE * p];
        let t_large = time_collective(comm, REPS, || {
            comm.all_gather_bytes(&send_l, &mut recv_l).unwrap_or(())
        });
        // t(b) = (P-1)(alpha + b beta)
        let beta = ((t_large - t_small) / ((pf - 1.0) * (LARGE - SMALL) as f64)).max(1e-15);
        let alpha = (t_small / (pf - 1.0) - SMALL as f64 * beta).max(0.0);
        (alpha, beta)
    } else {
        (0.0, 1e-15)
    };
    let n = dense_bytes as f64;
    let b = payload_bytes.max(1) as f64;
    let d = (dense_bytes / 4) as usize;
    let send = vec![0f32; d];
    let mut recv = vec![0f32; d];
    let measured_allreduce_s = if p > 1 {
        time_collective(comm, 9, || comm.all_reduce_sum_f32(&send, &mut recv))
    } else {
        0.0
    };
    let send_b = vec![0u8; payload_bytes as usize];
    let mut recv_b = vec![0u8; payload_bytes as usize * p];
    let measured_allgather_s = if p > 1 {
        time_collective(comm, 9, || {
            comm.all_gather_bytes(&send_b, &mut recv_b).unwrap_or(())
        })
    } else {
        0.0
    };
    let break_even = n / (alpha / beta + 2.0 * n / pf);
    Ok(ProbeReport {
        ranks: p,
        alpha_s: alpha,
        bandwidth_bytes_per_s: 1.0 / beta,
        dense_bytes,
        payload_bytes,
        compression_ratio: n / b,
        break_even_ratio: break_even,
        compression_wins: n / b > break_even,
        measured_allreduce_s,
        measured_allgather_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::SelfCollective;

    #[test]
    fn single_rank_probe_is_trivial() {
        let r = probe(&SelfCollective, 4000, 100).unwrap();
        assert_eq!(r.ranks, 1);
        assert!((r.compression_ratio - 40.0).abs() < 1e-12);
        assert!(r.break_even_ratio <= 0.5 + 1e-9);
    }
}

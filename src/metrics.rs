//! Timers and per-rank accounting of time and bytes.
//!
//! [`RankStats`] accumulates what one rank spent: seconds per phase (compute, encode,
//! communicate, decode, update, evaluate) and bytes handed to and received from the gradient
//! exchange. It is plain data so it can be gathered to rank 0 ([`RankStats::to_vec`]) and
//! saved in checkpoints.

/// Cumulative time and traffic of one rank.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RankStats {
    /// Forward and backward passes.
    pub compute_s: f64,
    /// Gradient encoding.
    pub encode_s: f64,
    /// Inside MPI calls of the gradient exchange.
    pub comm_s: f64,
    /// Decoding and aggregation.
    pub decode_s: f64,
    /// Optimiser update.
    pub update_s: f64,
    /// Evaluation (including its small reductions).
    pub eval_s: f64,
    /// Bytes handed to the gradient exchange.
    pub bytes_sent: u64,
    /// Bytes received from other ranks by the gradient exchange.
    pub bytes_received: u64,
    /// Steps taken.
    pub steps: u64,
    /// Exchange seconds hidden behind backpropagation (overlapped exchange).
    pub comm_hidden_s: f64,
}

impl RankStats {
    /// Number of values in [`to_vec`](Self::to_vec).
    pub const LEN: usize = 10;

    /// Flatten for an allgather (byte counts are exact in f64 up to 2^53).
    pub fn to_vec(&self) -> [f64; Self::LEN] {
        [
            self.compute_s,
            self.encode_s,
            self.comm_s,
            self.decode_s,
            self.update_s,
            self.eval_s,
            self.bytes_sent as f64,
            self.bytes_received as f64,
            self.steps as f64,
            self.comm_hidden_s,
        ]
    }

    /// Inverse of [`to_vec`](Self::to_vec).
    pub fn from_slice(v: &[f64]) -> Self {
        Self {
            compute_s: v[0],
            encode_s: v[1],
            comm_s: v[2],
            decode_s: v[3],
            update_s: v[4],
            eval_s: v[5],
            bytes_sent: v[6] as u64,
            bytes_received: v[7] as u64,
            steps: v[8] as u64,
            comm_hidden_s: v[9],
        }
    }
}

/// FNV-1a 64-bit hash of the bit patterns of `params`: equal iff bit-identical (w.h.p.).
pub fn checksum(params: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in params {
        for b in p.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip() {
        let s = RankStats {
            compute_s: 1.5,
            bytes_sent: 1 << 40,
            steps: 7,
            ..Default::default()
        };
        assert_eq!(RankStats::from_slice(&s.to_vec()), s);
    }

    #[test]
    fn checksum_sees_single_bit() {
        let a = [1.0f32, 2.0];
        let b = [1.0f32, f32::from_bits(2.0f32.to_bits() ^ 1)];
        assert_ne!(checksum(&a), checksum(&b));
        assert_eq!(checksum(&a), checksum(&[1.0, 2.0]));
    }
}

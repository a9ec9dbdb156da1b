//! Compression policy: which parts of the flat gradient are compressed and which are sent dense.
//!
//! Small layers (biases, a final layer of a few hundred weights) cost almost nothing to send
//! exactly, but a vqSGD block of a few coordinates has a large relative error. With
//! `compression.dense_below = N`, every layer with fewer than `N` parameters is sent as plain
//! `f32` beside the compressed payload of the remaining layers. [`Partitioned`] is itself a
//! [`Compressor`], so the exchange, error feedback and reporting see one payload:
//!
//! ```text
//! payload = [dense values: 4 bytes each, little-endian f32, layer order] [inner payload]
//! ```

use std::ops::Range;

use crate::compress::{Aggregation, Compressor, CompressorInfo, StepSeeds};
use crate::{Error, Result};

/// Split `layers` (covering `0..dim`) into those sent dense (fewer than `dense_below`
/// parameters) and those compressed.
pub fn split_layers(
    layers: &[Range<usize>],
    dense_below: usize,
) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    layers.iter().cloned().partition(|r| r.len() < dense_below)
}

/// Ranges of `parts` after packing them contiguously, in order.
pub fn packed_ranges(parts: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut off = 0;
    parts
        .iter()
        .map(|r| {
            let p = off..off + r.len();
            off += r.len();
            p
        })
        .collect()
}

/// A compressor that sends some layers dense and the rest through an inner compressor.
pub struct Partitioned {
    inner: Box<dyn Compressor>,
    dim: usize,
    dense: Vec<Range<usize>>,
    comp: Vec<Range<usize>>,
    n_dense: usize,
    gathered: Vec<f32>,
    dense_acc: Vec<f32>,
    comp_out: Vec<f32>,
    inner_payload: Vec<u8>,
}

impl Partitioned {
    /// `dense` and `comp` partition `0..dim`; `inner` compresses the packed `comp` ranges.
    pub fn new(
        inner: Box<dyn Compressor>,
        dim: usize,
        dense: Vec<Range<usize>>,
        comp: Vec<Range<usize>>,
    ) -> Result<Self> {
        let n_dense: usize = dense.iter().map(|r| r.len()).sum();
        let n_comp: usize = comp.iter().map(|r| r.len()).sum();
        if n_dense + n_comp != dim || inner.dim() != n_comp {
            return Err(Error::Other(format!(
                "compression policy: {n_dense} dense + {n_comp} compressed parameters do not \
                 cover {dim} (inner compressor has {})",
                inner.dim()
            )));
        }
        Ok(Self {
            inner,
            dim,
            dense,
            comp,
            n_dense,
            gathered: vec![0.0; n_comp],
            dense_acc: vec![0.0; n_dense],
            comp_out: vec![0.0; n_comp],
            inner_payload: Vec::new(),
        })
    }
}

impl Compressor for Partitioned {
    fn info(&self) -> CompressorInfo {
        let mut i = self.inner.info();
        i.params = format!("{}, {} small-layer params dense", i.params, self.n_dense);
        i
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        self.inner.fixed_payload_len().map(|n| n + 4 * self.n_dense)
    }

    fn max_payload_len(&self) -> usize {
        self.inner.max_payload_len() + 4 * self.n_dense
    }

    fn aggregation(&self) -> Aggregation {
        self.inner.aggregation()
    }

    fn encode(&mut self, grad: &[f32], seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        for r in &self.dense {
            for v in &grad[r.clone()] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut off = 0;
        for r in &self.comp {
            self.gathered[off..off + r.len()].copy_from_slice(&grad[r.clone()]);
            off += r.len();
        }
        self.inner.encode(&self.gathered, seeds, &mut self.inner_payload)?;
        out.extend_from_slice(&self.inner_payload);
        Ok(())
    }

    fn begin_decode(&mut self, shared: u64) {
        self.dense_acc.iter_mut().for_each(|v| *v = 0.0);
        self.inner.begin_decode(shared);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        let nb = 4 * self.n_dense;
        if payload.len() < nb {
            return Err(Error::payload(format!(
                "{} bytes cannot hold the {} dense values of the small layers",
                payload.len(),
                self.n_dense
            )));
        }
        let (dense, rest) = payload.split_at(nb);
        for (acc, b) in self.dense_acc.iter_mut().zip(dense.chunks_exact(4)) {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if !v.is_finite() {
                return Err(Error::payload("non-finite dense value"));
            }
            *acc += weight * v;
        }
        self.inner.decode_add(rest, weight)
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        self.inner.finish_decode(&mut self.comp_out);
        let mut off = 0;
        for r in &self.comp {
            out[r.clone()].copy_from_slice(&self.comp_out[off..off + r.len()]);
            off += r.len();
        }
        let mut off = 0;
        for r in &self.dense {
            out[r.clone()].copy_from_slice(&self.dense_acc[off..off + r.len()]);
            off += r.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_pack() {
        let layers = vec![0..100, 100..110, 110..300, 300..303];
        let (dense, comp) = split_layers(&layers, 16);
        assert_eq!(dense, vec![100..110, 300..303]);
        assert_eq!(comp, vec![0..100, 110..300]);
        assert_eq!(packed_ranges(&comp), vec![0..100, 100..290]);
    }
}

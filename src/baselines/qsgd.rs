//! QSGD (Alistarh, Grubic, Li, Tomioka, Vojnovic, "QSGD: Communication-Efficient SGD via Gradient
//! Quantization and Encoding", NeurIPS 2017), as defined in spec `vqsgd.md` section 9.
//!
//! With `s = compression.levels`, each bucket v (of `compression.bucket` coordinates within a
//! block, 0 = the whole block) is sent as its norm ||v||_2 and, per coordinate, the sign of v_i
//! and a level l_i in 0..=s obtained by stochastically rounding r_i = s |v_i| / ||v|| to one of
//! its neighbouring integers: l_i = floor(r_i) + 1 with probability r_i - floor(r_i), else
//! floor(r_i). The receiver decodes ||v|| sign(v_i) l_i / s, so E(decode) = v (unbiased), with
//! per-coordinate variance (||v||/s)^2 p_i (1 - p_i), p_i the fractional part of r_i, and
//! E||Q(v) - v||^2 <= min(n / s^2, sqrt(n) / s) ||v||^2 for a bucket of n coordinates (Lemma 3.1
//! of the paper).
//!
//! The norm is sent as an `f32` rounded *up* from the `f64` norm, and the levels are computed
//! against that sent value, so r_i <= s always holds and unbiasedness is exact with respect to the
//! value the receiver uses.
//!
//! Payload (fixed length; the paper's Elias coding of levels is not implemented):
//! - `4 nb` bytes: the `nb` bucket norms, `f32` little-endian, in bucket order;
//! - then a bit stream ([`crate::bits`]) with, per coordinate in order, 1 sign bit (1 = negative)
//!   followed by the level in `w = ceil(log2(s + 1))` bits; tail bits zero.
//!
//! Length `4 nb + ceil(d (1 + w) / 8)` bytes; `1 + w` bits per coordinate plus `32 / bucket`
//! for the norms (s = 4: 4 bits; s = 1: 2 bits). A level above `s`, a negative or non-finite norm,
//! dirty padding or a wrong length is a payload error.

use rand::{Rng as _, SeedableRng};

use super::Segments;
use crate::bits::{bits_for, bytes_for_bits, BitReader, BitWriter};
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::rng::Rng;
use crate::{Error, Result};

/// The QSGD compressor (see the module docs).
pub struct Qsgd {
    levels: u32,
    width: u32,
    segs: Segments,
    agg: Vec<f32>,
    norms: Vec<f32>,
}

impl Qsgd {
    /// QSGD with `levels` = s in 1..=32768 over the given buckets.
    pub(crate) fn new(levels: usize, segs: &Segments) -> Result<Self> {
        if !(1..=1 << 15).contains(&levels) {
            return Err(Error::config(
                "compression.levels",
                format!("{levels} is not in [1, 32768]"),
            ));
        }
        Ok(Self {
            levels: levels as u32,
            width: bits_for(levels as u64 + 1),
            segs: segs.clone(),
            agg: vec![0.0; segs.dim()],
            norms: Vec::with_capacity(segs.count()),
        })
    }

    /// Bits per coordinate in the code stream: 1 sign bit plus `ceil(log2(s + 1))`.
    pub fn bits_per_coord(&self) -> u32 {
        1 + self.width
    }

    fn payload_len(&self) -> usize {
        4 * self.segs.count()
            + bytes_for_bits(self.segs.dim() as u64 * u64::from(self.bits_per_coord()))
    }
}

impl Compressor for Qsgd {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: "qsgd".into(),
            params: format!(
                "levels={}, buckets={}, bits/coord={} fixed-width",
                self.levels,
                self.segs.describe(),
                self.bits_per_coord()
            ),
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
        super::check_grad("qsgd", grad, self.dim())?;
        out.reserve(self.payload_len());
        self.norms.clear();
        for r in self.segs.iter() {
            let sq: f64 = grad[r].iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            let n = super::f32_round_up(sq.sqrt());
            if !n.is_finite() {
                return Err(Error::Numerical("qsgd: bucket norm overflows f32".into()));
            }
            self.norms.push(n);
            out.extend_from_slice(&n.to_le_bytes());
        }
        let s = f64::from(self.levels);
        let mut rng = Rng::seed_from_u64(seeds.private);
        let mut w = BitWriter::new(out);
        for (r, &n) in self.segs.iter().zip(&self.norms) {
            let inv = if n > 0.0 { s / f64::from(n) } else { 0.0 };
            for &x in &grad[r] {
                let ratio = (f64::from(x.abs()) * inv).min(s);
                let floor = ratio.floor();
                let up = rng.random::<f64>() < ratio - floor;
                let level = floor as u64 + u64::from(up);
                let neg = x < 0.0 && level > 0;
                w.write((level << 1) | u64::from(neg), 1 + self.width);
            }
        }
        w.finish();
        Ok(())
    }

    fn begin_decode(&mut self, _shared: u64) {
        self.agg.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        super::check_len("qsgd", payload, self.payload_len())?;
        let nb = self.segs.count();
        super::read_scales("qsgd", "bucket norm", &payload[..4 * nb], &mut self.norms)?;
        let codes = &payload[4 * nb..];
        let width = 1 + self.width;
        // Validate every code before touching the aggregate. Levels above s are representable
        // only when s + 1 is not a power of two; otherwise only the padding needs checking.
        if !(u64::from(self.levels) + 1).is_power_of_two() {
            let mut r = BitReader::new(codes);
            for i in 0..self.dim() {
                let level = r.read(width)? >> 1;
                if level > u64::from(self.levels) {
                    return Err(Error::payload(format!(
                        "qsgd: coordinate {i} has level {level} > s = {}",
                        self.levels
                    )));
                }
            }
        }
        super::check_padding("qsgd", codes, self.dim() as u64 * u64::from(width))?;
        let mut r = BitReader::new(codes);
        let s = self.levels as f32;
        for (seg, &n) in self.segs.iter().zip(&self.norms) {
            let unit = weight * n / s;
            for a in &mut self.agg[seg] {
                let code = r.read(width)?;
                let mag = unit * (code >> 1) as f32;
                *a += if code & 1 == 1 { -mag } else { mag };
            }
        }
        Ok(())
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.agg);
    }
}

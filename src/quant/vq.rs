//! The machinery shared by every vq scheme: blocks, norms, repetition, privacy scaling, index
//! coding, validation of payloads and the decode accumulators (spec `vqsgd.md` sections 1, 6-8).
//! The payload layout is documented in [`crate::quant`].

use rand::SeedableRng;

use super::coding::{self, SymbolCode};
use super::{cross_polytope, hadamard, privacy, sampling, simplex, sparse};
use crate::bits::{bits_for, bytes_for_bits, BitReader, BitWriter};
use crate::compress::{Compressor, CompressorInfo, StepSeeds};
use crate::config::Coding;
use crate::rng::Rng;
use crate::{Error, Result};

/// The point set of a [`VqCompressor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointSet {
    /// Cross-polytope (section 2); with rotation this is the `hadamard` scheme (section 4).
    CrossPolytope,
    /// Regular simplex (section 3).
    Simplex,
    /// k-sparse signed points (section 5).
    Sparse,
}

/// Fallback header layout of a k-sparse block (see [`sparse`]).
#[derive(Clone, Copy, Debug)]
struct SparseHeader {
    /// Samples given up per exactly-sent coordinate.
    q: usize,
    /// Largest number of exact coordinates.
    e_max: usize,
    /// Bits of the `e` field.
    e_bits: u32,
    /// Bits of the `k_b - 1` field.
    k_bits: u32,
    /// Bits of an exact coordinate's index.
    idx_bits: u32,
}

/// One block of the flat gradient.
#[derive(Clone, Debug)]
struct Block {
    /// First coordinate in the flat gradient.
    start: usize,
    /// Coordinates in the flat gradient.
    len: usize,
    /// Dimension of the quantized vector (`len`, or the next power of two when rotated).
    d: usize,
    /// Offset of this block in the rotated or per-vertex accumulator.
    off: usize,
    /// Samples per repetition (`min(k, d)` for sparse, else 1).
    k: usize,
    /// Privacy scale `c` (1 when not private).
    c: f64,
    /// Index coding.
    code: SymbolCode,
    /// Fallback header (sparse with `k^2 > d` only).
    header: Option<SparseHeader>,
}

/// Everything [`VqCompressor::new`] needs.
#[derive(Clone, Debug)]
pub struct VqParams {
    /// Point set.
    pub set: PointSet,
    /// Apply the randomised Hadamard rotation of section 4.
    pub rotate: bool,
    /// Repetitions `s`.
    pub s: usize,
    /// Non-zeros per sample (sparse only).
    pub k: usize,
    /// Index coding.
    pub coding: Coding,
    /// Privacy scale per block (`None`: not private). Mutually exclusive with `epsilon`.
    pub privacy_scale: Option<f64>,
    /// Target epsilon per step (split evenly over blocks and repetitions).
    pub epsilon: Option<f64>,
    /// Clip each block's norm to this value and send no norm (0 = off).
    pub clip: f64,
    /// Scheme name for reports.
    pub name: String,
}

/// Encoder scratch, kept between calls.
#[derive(Default)]
struct Scratch {
    bounds: Vec<f64>,
    targets: Vec<f64>,
    chunk_of: Vec<u32>,
    syms: Vec<u32>,
    pi: Vec<f64>,
    cand: Vec<(f64, u32)>,
    cand_abs: Vec<f64>,
    certain: Vec<u32>,
    exact: Vec<(u32, f32)>,
}

/// A vqSGD compressor: any point set, any blocking, repetition, coding and privacy.
pub struct VqCompressor {
    p: VqParams,
    dim: usize,
    blocks: Vec<Block>,
    fixed_len: Option<usize>,
    max_len: usize,
    eps_step: Option<f64>,
    params: String,
    sc: Scratch,
    /// Rotated vector of the block being encoded / finished.
    rot: Vec<f64>,
    shared: u64,
    /// Unrotated cross-polytope / sparse aggregate.
    acc: Vec<f32>,
    /// Rotated-domain aggregate (all blocks, padded).
    racc: Vec<f64>,
    /// Per-vertex weight sums (simplex).
    vacc: Vec<f64>,
}

/// Largest privacy scale `c` accepted (spec section 7): a larger one (a tiny epsilon) makes the
/// decoded values `c sqrt(d)` times the norm, noise or an f32 overflow.
pub const MAX_PRIVACY_SCALE: f64 = 1e15;

/// Largest block dimension (after padding): fixed-width symbols are `u32`, `2d` must fit.
pub const MAX_BLOCK: usize = 1 << 30;

impl VqCompressor {
    /// Build for blocks `ranges` (contiguous, covering `0..dim`, non-empty).
    pub fn new(p: VqParams, dim: usize, ranges: &[std::ops::Range<usize>]) -> Result<Self> {
        let nblocks = ranges.len();
        let mut blocks = Vec::with_capacity(nblocks);
        let mut off = 0usize;
        let (mut fixed_bits, mut max_bits) = (0u64, 0u64);
        let mut eps_step = 0.0;
        let mut cs = Vec::new();
        let norm_bits = if p.clip > 0.0 { 0 } else { 32 };
        let signed = p.set != PointSet::Simplex;
        let max_d = ranges
            .iter()
            .map(|r| {
                if p.rotate {
                    r.len().next_power_of_two()
                } else {
                    r.len()
                }
            })
            .max()
            .unwrap_or(0);
        if p.set == PointSet::Sparse && p.k > max_d {
            return Err(Error::config(
                "compression.k",
                format!(
                    "k = {} exceeds the largest block ({max_d} coordinates{})",
                    p.k,
                    if p.rotate { " after padding" } else { "" }
                ),
            ));
        }
        for (b, r) in ranges.iter().enumerate() {
            let len = r.len();
            let d = if p.rotate {
                len.next_power_of_two()
            } else {
                len
            };
            if d > MAX_BLOCK {
                return Err(Error::config(
                    "compression.block",
                    format!("block {b} has {d} coordinates, more than the limit {MAX_BLOCK}"),
                ));
            }
            let m = if signed { 2 * d as u64 } else { d as u64 + 1 };
            let code = SymbolCode {
                coding: p.coding,
                signed,
                d,
                m,
                width: bits_for(m),
            };
            let k = if p.set == PointSet::Sparse {
                p.k.min(d)
            } else {
                1
            };
            let c = match (p.privacy_scale, p.epsilon) {
                (Some(c), _) => c,
                (None, Some(eps)) => {
                    let e0 = eps / (p.s as f64 * nblocks as f64);
                    match p.set {
                        PointSet::Simplex => privacy::scale_simplex(e0),
                        _ => privacy::scale_cross_polytope(e0, d),
                    }
                }
                (None, None) => 1.0,
            };
            if !(c.is_finite() && c <= MAX_PRIVACY_SCALE) {
                return Err(match p.epsilon {
                    Some(eps) => Error::config(
                        "compression.epsilon",
                        format!(
                            "{eps:e} per step ({:e} per repetition of each of the {nblocks} \
                             block(s)) needs a privacy scale c = {c:e} on block {b}, more than \
                             the limit {MAX_PRIVACY_SCALE:e}: the decoded gradient would be \
                             noise or overflow; use a larger epsilon",
                            eps / (p.s as f64 * nblocks as f64)
                        ),
                    ),
                    None => Error::config(
                        "compression.privacy_scale",
                        format!(
                            "{c:e} is more than the limit {MAX_PRIVACY_SCALE:e}: the decoded \
                             gradient would be noise or overflow"
                        ),
                    ),
                });
            }
            if c > 1.0 {
                eps_step += p.s as f64
                    * match p.set {
                        PointSet::Simplex => privacy::epsilon_simplex(c),
                        _ => privacy::epsilon_cross_polytope(c, d),
                    };
            }
            cs.push(c);
            let header = if p.set == PointSet::Sparse && (k as u64).pow(2) > d as u64 {
                let w = u64::from(code.width);
                let q = (w + 31).div_ceil(p.s as u64 * w) as usize;
                let e_max = (k - 1) / q;
                Some(SparseHeader {
                    q,
                    e_max,
                    e_bits: bits_for(e_max as u64 + 1),
                    k_bits: bits_for(k as u64),
                    idx_bits: bits_for(d as u64),
                })
            } else {
                None
            };
            let hbits = header.map_or(0, |h| u64::from(h.e_bits + h.k_bits));
            let count = p.s.checked_mul(k).ok_or_else(|| {
                Error::config("compression.repetitions", "repetitions * k overflows")
            })?;
            fixed_bits += norm_bits + hbits + code.bits_bound(count);
            max_bits += norm_bits
                + hbits
                + header.map_or(0, |h| h.e_max as u64 * (u64::from(h.idx_bits) + 32))
                + code.bits_bound(count);
            blocks.push(Block {
                start: r.start,
                len,
                d,
                off,
                k,
                c,
                code,
                header,
            });
            off += match (p.set, p.rotate) {
                (PointSet::Simplex, _) => d + 1,
                (_, true) => d,
                _ => 0,
            };
        }
        let limit = i32::MAX as u64;
        if bytes_for_bits(max_bits) as u64 > limit {
            return Err(Error::config(
                "compression.repetitions",
                format!(
                    "payloads of up to {} bytes exceed the MPI count limit of {limit} bytes",
                    bytes_for_bits(max_bits)
                ),
            ));
        }
        let fixed_len = (p.coding == Coding::Fixed).then(|| bytes_for_bits(fixed_bits));
        let max_len = match fixed_len {
            Some(n) => n,
            None => bytes_for_bits(max_bits),
        };
        let mut params = format!("s={}", p.s);
        if p.set == PointSet::Sparse {
            params += &format!(", k={}", p.k);
        }
        if p.set == PointSet::Sparse || p.rotate {
            params += &format!(", rotate={}", p.rotate);
        }
        params += &format!(
            ", blocks={nblocks} (max {max_d}), coding={}",
            match p.coding {
                Coding::Fixed => "fixed",
                Coding::Rice => "rice",
            }
        );
        if p.privacy_scale.is_some() || p.epsilon.is_some() {
            let cmin = cs.iter().copied().fold(f64::INFINITY, f64::min);
            params += &format!(", c={cmin:.4}");
        }
        if p.clip > 0.0 {
            params += &format!(", clip={} (no norm sent)", p.clip);
        } else if p.privacy_scale.is_some() || p.epsilon.is_some() {
            params += ", norm sent (not private)";
        }
        let eps_step = (p.privacy_scale.is_some() || p.epsilon.is_some()).then_some(eps_step);
        let max_rot = if p.rotate { max_d } else { 0 };
        let acc_len = if p.set != PointSet::Simplex && !p.rotate {
            dim
        } else {
            0
        };
        let racc_len = if p.rotate { off } else { 0 };
        let vacc_len = if p.set == PointSet::Simplex { off } else { 0 };
        Ok(Self {
            p,
            dim,
            blocks,
            fixed_len,
            max_len,
            eps_step,
            params,
            sc: Scratch::default(),
            rot: vec![0.0; max_rot],
            shared: 0,
            acc: vec![0.0; acc_len],
            racc: vec![0.0; racc_len],
            vacc: vec![0.0; vacc_len],
        })
    }

    /// Exact bits of a fixed-width payload (before byte padding), for reports; `None` for Rice.
    pub fn payload_bits(&self) -> Option<u64> {
        if self.p.coding != Coding::Fixed {
            return None;
        }
        let norm = if self.p.clip > 0.0 { 0 } else { 32 };
        Some(
            self.blocks
                .iter()
                .map(|b| {
                    norm + b.header.map_or(0, |h| u64::from(h.e_bits + h.k_bits))
                        + b.code.bits_bound(self.p.s * b.k)
                })
                .sum(),
        )
    }

    /// The privacy scale `c` of each block (1 when not private).
    pub fn privacy_scales(&self) -> Vec<f64> {
        self.blocks.iter().map(|b| b.c).collect()
    }
}

/// Encode one block `x` (already rotated when the scheme rotates).
#[allow(clippy::too_many_arguments)]
fn encode_block<T: sampling::Lane>(
    x: &[T],
    bi: usize,
    blk: &Block,
    p: &VqParams,
    sc: &mut Scratch,
    rng: &mut Rng,
    w: &mut BitWriter<'_>,
) -> Result<()> {
    let s = p.s;
    let (sumsq, sum) = match p.set {
        PointSet::Simplex => sampling::chunk_bounds::<T, false>(x, &mut sc.bounds),
        _ => sampling::chunk_bounds::<T, true>(x, &mut sc.bounds),
    };
    let norm = sumsq.sqrt();
    if !norm.is_finite() {
        return Err(Error::Numerical(format!(
            "block {bi} (coordinates {}..{}): gradient norm is not finite",
            blk.start,
            blk.start + blk.len
        )));
    }
    let (inv, dec_scale) = if p.clip > 0.0 {
        (1.0 / norm.max(p.clip), p.clip)
    } else {
        let n32 = norm as f32;
        if !n32.is_finite() {
            return Err(Error::Numerical(format!(
                "block {bi}: gradient norm {norm:e} overflows f32"
            )));
        }
        w.write(u64::from(n32.to_bits()), 32);
        if n32 == 0.0 {
            // Zero block: well-formed placeholder samples, decoded as exact zeros.
            if let Some(h) = blk.header {
                w.write(0, h.e_bits);
                w.write(blk.k as u64 - 1, h.k_bits);
            }
            blk.code.write_zeros(w, s * blk.k);
            return Ok(());
        }
        (1.0 / f64::from(n32), f64::from(n32))
    };
    sc.syms.clear();
    match p.set {
        PointSet::CrossPolytope => {
            cross_polytope::sample(
                x,
                inv / blk.c,
                s,
                &mut sc.bounds,
                sum,
                rng,
                &mut sc.targets,
                &mut sc.chunk_of,
                &mut sc.syms,
            );
            blk.code.write(w, &mut sc.syms);
        }
        PointSet::Simplex => {
            simplex::sample(
                x,
                inv / blk.c,
                s,
                &mut sc.bounds,
                sum,
                rng,
                &mut sc.targets,
                &mut sc.chunk_of,
                &mut sc.syms,
            );
            blk.code.write(w, &mut sc.syms);
        }
        PointSet::Sparse => encode_sparse(x, inv, dec_scale, blk, p, sc, rng, w),
    }
    Ok(())
}

/// The k-sparse part of [`encode_block`] (fallback header, exact pairs, samples, padding).
#[allow(clippy::too_many_arguments)]
fn encode_sparse<T: Copy + Into<f64>>(
    x: &[T],
    inv: f64,
    dec_scale: f64,
    blk: &Block,
    p: &VqParams,
    sc: &mut Scratch,
    rng: &mut Rng,
    w: &mut BitWriter<'_>,
) {
    let d = blk.d;
    let sd = (d as f64).sqrt();
    let k = blk.k;
    let s = p.s;
    // 1. Fallback plan.
    sc.cand.clear();
    sc.exact.clear();
    let plan = if let Some(h) = blk.header {
        let thr = sd / k as f64;
        for (i, &xi) in x.iter().enumerate() {
            let a = Into::<f64>::into(xi).abs() * inv;
            if a > thr {
                sc.cand.push((a, i as u32));
            }
        }
        sc.cand
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        sc.cand_abs.clear();
        sc.cand_abs.extend(sc.cand.iter().map(|c| c.0));
        let plan = sparse::plan(&sc.cand_abs, d, k, h.q, h.e_max);
        w.write(plan.exact as u64, h.e_bits);
        w.write(plan.k as u64 - 1, h.k_bits);
        for &(_, i) in &sc.cand[..plan.exact] {
            let v: f64 = x[i as usize].into();
            sc.exact.push((i, (v * inv * dec_scale) as f32));
        }
        sc.exact.sort_unstable_by_key(|e| e.0);
        for &(i, v) in &sc.exact {
            w.write(u64::from(i), h.idx_bits);
            w.write(u64::from(v.to_bits()), 32);
        }
        plan
    } else {
        sparse::Plan { exact: 0, k }
    };
    let kb = plan.k;
    // 2. Marginals: pi0 = kb |v_i| / sqrt(d) (capped at 1 against rounding), exact ones excluded.
    let a = kb as f64 * inv / sd;
    sc.pi.clear();
    sc.pi.extend(
        x.iter()
            .map(|&xi| (Into::<f64>::into(xi).abs() * a).min(1.0)),
    );
    for &(i, _) in &sc.exact {
        sc.pi[i as usize] = -1.0;
    }
    sparse::spread(&mut sc.pi, kb);
    // 3. Prefix sums of the uncertain entries (in `targets`) and the list of certain ones.
    sc.certain.clear();
    let mut acc = 0.0;
    sc.targets.clear();
    for (i, &pi) in sc.pi.iter().enumerate() {
        if pi >= sparse::CERTAIN {
            sc.certain.push(i as u32);
        } else {
            acc += pi;
        }
        sc.targets.push(acc);
    }
    // 4. s repetitions of systematic sampling, signs per spec 5.
    sc.syms.clear();
    let kbf = kb as f64;
    for _ in 0..s {
        let (pi, syms) = (&sc.pi, &mut sc.syms);
        sparse::systematic(&sc.targets, &sc.certain, kb, rng, |i, rng| {
            let v: f64 = Into::<f64>::into(x[i]) * inv;
            let plus = 0.5 * (1.0 + kbf * v / (sd * pi[i].max(f64::MIN_POSITIVE)));
            let neg = sampling::uniform(rng) >= plus;
            syms.push((2 * i + usize::from(neg)) as u32);
        });
    }
    if p.coding == Coding::Rice {
        sc.syms.sort_unstable();
    }
    blk.code.write(w, &mut sc.syms);
    // 5. Padding to the fixed budget (fixed coding only).
    if let (Some(h), Coding::Fixed) = (blk.header, p.coding) {
        let budget = (s * k) as u64 * u64::from(blk.code.width);
        let used = plan.exact as u64 * (u64::from(h.idx_bits) + 32)
            + (s * kb) as u64 * u64::from(blk.code.width);
        coding::write_zero_bits(w, budget - used);
    }
}

impl Compressor for VqCompressor {
    fn info(&self) -> CompressorInfo {
        CompressorInfo {
            scheme: self.p.name.clone(),
            params: self.params.clone(),
            unbiased: self.p.clip == 0.0,
            epsilon_per_step: self.eps_step,
        }
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn fixed_payload_len(&self) -> Option<usize> {
        self.fixed_len
    }

    fn max_payload_len(&self) -> usize {
        self.max_len
    }

    fn encode(&mut self, grad: &[f32], seeds: StepSeeds, out: &mut Vec<u8>) -> Result<()> {
        if grad.len() != self.dim {
            return Err(Error::Other(format!(
                "gradient has {} entries, the compressor was built for {}",
                grad.len(),
                self.dim
            )));
        }
        out.clear();
        out.reserve(self.max_len);
        let mut rng = Rng::seed_from_u64(seeds.private);
        let mut w = BitWriter::new(out);
        for (bi, blk) in self.blocks.iter().enumerate() {
            let x = &grad[blk.start..blk.start + blk.len];
            if self.p.rotate {
                let y = &mut self.rot[..blk.d];
                hadamard::rotate(x, y, hadamard::sign_seed(seeds.shared, bi));
                encode_block(&*y, bi, blk, &self.p, &mut self.sc, &mut rng, &mut w)?;
            } else {
                encode_block(x, bi, blk, &self.p, &mut self.sc, &mut rng, &mut w)?;
            }
        }
        w.finish();
        debug_assert!(self.fixed_len.is_none_or(|n| n == out.len()));
        debug_assert!(out.len() <= self.max_len);
        Ok(())
    }

    fn begin_decode(&mut self, shared: u64) {
        self.shared = shared;
        self.acc.fill(0.0);
        self.racc.fill(0.0);
        self.vacc.fill(0.0);
    }

    fn decode_add(&mut self, payload: &[u8], weight: f32) -> Result<()> {
        if let Some(n) = self.fixed_len {
            if payload.len() != n {
                return Err(Error::payload(format!(
                    "{} bytes, expected exactly {n} for this configuration ({})",
                    payload.len(),
                    if payload.len() < n {
                        "truncated"
                    } else {
                        "trailing bytes"
                    }
                )));
            }
        } else if payload.len() > self.max_len {
            return Err(Error::payload(format!(
                "{} bytes, more than the largest possible {} for this configuration",
                payload.len(),
                self.max_len
            )));
        }
        let mut rd = BitReader::new(payload);
        let weight = f64::from(weight);
        let s = self.p.s;
        for (bi, blk) in self.blocks.iter().enumerate() {
            let ctx = |e: Error| match e {
                Error::Payload(m) => Error::payload(format!("block {bi}: {m}")),
                e => e,
            };
            let scale = if self.p.clip > 0.0 {
                self.p.clip
            } else {
                let n = f32::from_bits(rd.read(32).map_err(ctx)? as u32);
                if !(n.is_finite() && n >= 0.0) {
                    return Err(Error::payload(format!(
                        "block {bi}: norm {n} is not a finite non-negative number"
                    )));
                }
                f64::from(n)
            };
            let live = scale != 0.0;
            let base = weight * scale;
            let sd = (blk.d as f64).sqrt();
            match self.p.set {
                PointSet::Simplex => {
                    let coef = base * blk.c / s as f64;
                    let v = &mut self.vacc[blk.off..blk.off + blk.d + 1];
                    blk.code
                        .read(&mut rd, s, |j, _| {
                            if live {
                                v[j] += coef;
                            }
                        })
                        .map_err(ctx)?;
                }
                PointSet::CrossPolytope | PointSet::Sparse => {
                    let (exact, kb) = match blk.header {
                        Some(h) => {
                            let e = rd.read(h.e_bits).map_err(ctx)? as usize;
                            let kb = rd.read(h.k_bits).map_err(ctx)? as usize + 1;
                            if e > h.e_max || kb + h.q * e > blk.k {
                                return Err(Error::payload(format!(
                                    "block {bi}: fallback header (exact {e}, k {kb}) exceeds the \
                                     budget of k = {} samples",
                                    blk.k
                                )));
                            }
                            for _ in 0..e {
                                let i = rd.read(h.idx_bits).map_err(ctx)? as usize;
                                let v = f32::from_bits(rd.read(32).map_err(ctx)? as u32);
                                if i >= blk.d || !v.is_finite() {
                                    return Err(Error::payload(format!(
                                        "block {bi}: exact coordinate {i} = {v} is invalid \
                                         (index must be < {}, value finite)",
                                        blk.d
                                    )));
                                }
                                if live {
                                    let add = weight * f64::from(v);
                                    if self.p.rotate {
                                        self.racc[blk.off + i] += add;
                                    } else {
                                        self.acc[blk.start + i] += add as f32;
                                    }
                                }
                            }
                            (e, kb)
                        }
                        None => (0, blk.k),
                    };
                    let coef = base * blk.c * sd / (kb * s) as f64;
                    // A zero norm (not live) adds +-0, which leaves every sum unchanged.
                    let coef = if live { coef } else { 0.0 };
                    if self.p.rotate {
                        let r = &mut self.racc[blk.off..blk.off + blk.d];
                        blk.code.add_signed(&mut rd, s * kb, coef, r).map_err(ctx)?;
                    } else {
                        let a = &mut self.acc[blk.start..blk.start + blk.len];
                        blk.code
                            .add_signed(&mut rd, s * kb, coef as f32, a)
                            .map_err(ctx)?;
                    }
                    if let (Some(h), Coding::Fixed) = (blk.header, self.p.coding) {
                        let w = u64::from(blk.code.width);
                        let budget = (s * blk.k) as u64 * w;
                        let used =
                            exact as u64 * (u64::from(h.idx_bits) + 32) + (s * kb) as u64 * w;
                        coding::skip_zero_bits(&mut rd, budget - used).map_err(ctx)?;
                    }
                }
            }
        }
        rd.expect_end()
    }

    fn finish_decode(&mut self, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "finish_decode: output length");
        for (bi, blk) in self.blocks.iter().enumerate() {
            let o = &mut out[blk.start..blk.start + blk.len];
            if self.p.set == PointSet::Simplex && !self.p.rotate {
                simplex::decode_sums(&self.vacc[blk.off..blk.off + blk.d + 1], o);
            } else if self.p.rotate {
                let z = &mut self.rot[..blk.d];
                z.copy_from_slice(&self.racc[blk.off..blk.off + blk.d]);
                hadamard::unrotate(z, hadamard::sign_seed(self.shared, bi));
                for (o, &v) in o.iter_mut().zip(z.iter()) {
                    *o = v as f32;
                }
            } else {
                o.copy_from_slice(&self.acc[blk.start..blk.start + blk.len]);
            }
        }
    }
}

//! O(d + s) sampling of `s` i.i.d. indices from non-negative weights (spec `vqsgd.md` section 1,
//! "draw one index J with P(J = j) = a_j", repeated `s` times).
//!
//! The weights of the point sets here are affine in the input coordinates:
//! `a_i = scale * g(x_i)` with `g(x) = |x| + off` (cross-polytope, section 2) or
//! `g(x) = max(x + off, 0)` (simplex, section 3). Sampling is invariant to `scale`, so
//! everything below works in units of `g` ([`Weights`]). Inverse-CDF sampling with sorted
//! targets, in three steps:
//!
//! 1. [`chunk_bounds`]: one vectorised pass over the input computes the sum of squares and the
//!    `f64` prefix sums of `f(x_i)` (`|x_i|` or `x_i`) at the end of every chunk of [`CHUNK`]
//!    elements; [`Weights::new`] turns them into the chunk bounds `G_c` of the weights
//!    (`G_c = sum of g over chunks 0..=c`, in `f64`), followed by [`WINDOW`] `+inf` sentinels.
//! 2. [`sorted_uniforms`]: `s` sorted uniforms on `[0, G_last)` from exponential spacings
//!    (O(s), no sort).
//! 3. [`Weights::sample_sorted`], two loops over the targets:
//!    - *locate*: the chunk `c` with `G_{c-1} <= t < G_c`, by counting bounds `<= t` in a window
//!      of [`WINDOW`] bounds after the previous target's chunk (branch-free; the targets are
//!      sorted, so the chunk index only moves forward). The cursor is a serial chain, so
//!      [`STREAMS`] segments of the targets, each with its own cursor, run interleaved;
//!    - *in-chunk*, in target order with the input of the chunk [`AHEAD`] targets ahead
//!      prefetched: the element `j` of chunk `c` with `P_{j-1} <= u < P_j`, `u = t - G_{c-1}`,
//!      where `P` are the in-chunk prefix sums of `g`. They are computed branch-free in the
//!      input's precision over [`LANES`] lanes (lane `k` holds elements `k, k + 8, k + 16,
//!      k + 24`), in lane-major order, and `j` is the number of prefixes `<= u` (see
//!      `Weights::in_chunk` for why this count is exactly the inverse CDF and never lands on
//!      a zero weight).
//!
//! The index order inside a chunk is lane-major, not element order (any fixed order gives the
//! same distribution): indices come out in non-decreasing *chunk* order; callers sort them
//! with [`crate::quant::coding::insertion_sort`] (linear with a few samples per chunk, and
//! `sort_unstable` when many samples share a chunk).
//!
//! Precision: every sum that runs over more than one chunk is `f64`. Inside a chunk (32
//! elements) the sums run in the input's precision (`f32` gradients, `f64` rotated vectors): for
//! `f32` that is a relative error of at most `32 * 2^-24 ~ 2e-6` of one chunk's weight, typically
//! ~1e-7, the precision of the gradient itself. A target that lands past a chunk's in-chunk sum
//! through that rounding goes to the chunk's last element of positive weight (computed in `f64`);
//! one past the last chunk goes to the last chunk of positive weight. Every target is consumed.
//!
//! Cost: one read of the input (vectorised), a pass over the `d / 32` bounds, and per sample
//! one exponential, one window of 8 bounds and one branch-free scan of 32 elements.

/// Elements per chunk.
pub const CHUNK: usize = 32;

/// Lanes of the vectorised reductions and of the in-chunk scan.
pub const LANES: usize = 8;

/// Rows of a chunk (`CHUNK / LANES`).
const ROWS: usize = CHUNK / LANES;

/// Bounds per window of the locate step, and `+inf` sentinels after the last chunk bound.
pub const WINDOW: usize = 8;

/// Targets ahead of the in-chunk step whose chunk input is prefetched.
pub const AHEAD: usize = 16;

/// Independent cursors (segments of the targets) of the locate step.
pub const STREAMS: usize = 4;

/// The element types the sampler runs on (`f32` gradients, `f64` rotated vectors), with the two
/// vectorised kernels. Each kernel has one definition ([`portable`]); `f32` on x86_64 runs an SSE2
/// implementation of the same operations in the same order, so the results are bit-identical on
/// every target (tested).
pub trait Lane: Copy + Into<f64> + PartialOrd + 'static {
    /// Zero.
    const ZERO: Self;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self * o`.
    fn mul(self, o: Self) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
    /// `max(self, o)` as `self > o ? self : o`.
    fn max(self, o: Self) -> Self;
    /// `v` rounded to this type.
    fn from_f64(v: f64) -> Self;
    /// Pass 1 over whole chunks: see [`portable::chunk_sums`].
    #[inline(always)]
    fn chunk_sums<const ABS: bool>(
        x: &[Self],
        bounds: &mut [f64],
        total: &mut f64,
    ) -> [f64; LANES] {
        portable::chunk_sums::<Self, ABS>(x, bounds, total)
    }
    /// In-chunk count: see [`portable::scan`].
    #[inline(always)]
    fn scan<const ABS: bool>(ch: &[Self; CHUNK], off: Self, u: Self) -> u32 {
        portable::scan::<Self, ABS>(ch, off, u)
    }
    /// Whether [`Lane::scan_avx2`] has an AVX2 implementation (x86_64 `f32`).
    const HAS_AVX2: bool = false;
    /// [`Lane::scan`] with AVX2 instructions.
    ///
    /// # Safety
    /// For the `f32` implementation the CPU must support AVX2.
    #[inline(always)]
    unsafe fn scan_avx2<const ABS: bool>(ch: &[Self; CHUNK], off: Self, u: Self) -> u32 {
        portable::scan::<Self, ABS>(ch, off, u)
    }
}

/// Whether the CPU supports AVX2 (cached by the standard library after the first call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

macro_rules! lane_ops {
    ($t:ty) => {
        const ZERO: Self = 0.0;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            self + o
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            self * o
        }
        #[inline(always)]
        fn abs(self) -> Self {
            <$t>::abs(self)
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            if self > o {
                self
            } else {
                o
            }
        }
        #[inline(always)]
        fn from_f64(v: f64) -> Self {
            v as $t
        }
    };
}

impl Lane for f64 {
    lane_ops!(f64);
}

impl Lane for f32 {
    lane_ops!(f32);
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn chunk_sums<const ABS: bool>(
        x: &[Self],
        bounds: &mut [f64],
        total: &mut f64,
    ) -> [f64; LANES] {
        if has_avx2() {
            // SAFETY: AVX2 is available (checked at run time).
            unsafe { avx2::chunk_sums::<ABS>(x, bounds, total) }
        } else {
            sse2::chunk_sums::<ABS>(x, bounds, total)
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn scan<const ABS: bool>(ch: &[Self; CHUNK], off: Self, u: Self) -> u32 {
        sse2::scan::<ABS>(ch, off, u)
    }
    #[cfg(target_arch = "x86_64")]
    const HAS_AVX2: bool = true;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn scan_avx2<const ABS: bool>(ch: &[Self; CHUNK], off: Self, u: Self) -> u32 {
        // SAFETY: the caller guarantees AVX2.
        unsafe { avx2::scan::<ABS>(ch, off, u) }
    }
}

/// `f(v)`: `|v|` when `ABS`, else `v`.
#[inline(always)]
fn f<T: Lane, const ABS: bool>(v: T) -> T {
    if ABS {
        v.abs()
    } else {
        v
    }
}

/// `g(v)` in the input's precision: `|v| + off` when `ABS`, else `max(v + off, 0)`.
#[inline(always)]
fn g<T: Lane, const ABS: bool>(v: T, off: T) -> T {
    if ABS {
        v.abs().add(off)
    } else {
        v.add(off).max(T::ZERO)
    }
}

/// The kernels' definitions, in plain Rust (used as is for `f64` and off x86_64).
pub mod portable {
    use super::{f, g, Lane, CHUNK, LANES, ROWS};

    /// Pass 1 over the whole chunks of `x` (`x.len()` a multiple of [`CHUNK`]): for each chunk,
    /// lane `j` sums `f(x_{8r+j})` over rows `r = 0..4` in order (starting from 0), the chunk sum
    /// is the tree `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`, and `*total += chunk sum` (in `f64`) is
    /// stored to `bounds[c]`. Squares `f(x)^2` are summed per lane the same way, and each chunk's
    /// lane sums are added to the returned `f64` lanes.
    #[inline(always)]
    pub fn chunk_sums<T: Lane, const ABS: bool>(
        x: &[T],
        bounds: &mut [f64],
        total: &mut f64,
    ) -> [f64; LANES] {
        let mut sq = [0f64; LANES];
        for (ch, b) in x.chunks_exact(CHUNK).zip(bounds.iter_mut()) {
            let mut a = [T::ZERO; LANES];
            let mut q = [T::ZERO; LANES];
            for row in ch.chunks_exact(LANES) {
                let row: &[T; LANES] = row.try_into().expect("row");
                for j in 0..LANES {
                    let v = f::<T, ABS>(row[j]);
                    a[j] = a[j].add(v);
                    q[j] = q[j].add(v.mul(v));
                }
            }
            for j in 0..LANES {
                sq[j] += q[j].into();
            }
            let h = [
                a[0].add(a[4]),
                a[1].add(a[5]),
                a[2].add(a[6]),
                a[3].add(a[7]),
            ];
            let h = [h[0].add(h[2]), h[1].add(h[3])];
            *total += h[0].add(h[1]).into();
            *b = *total;
        }
        sq
    }

    /// In-chunk count: with `g_i = g(x_i)`, lane `k` running sums `L_{r,k} = L_{r-1,k} + g_{8r+k}`
    /// (`L_{-1} = 0`), lane offsets `O_0 = 0`, `O_{k+1} = O_k + L_{3,k}` (sequential), the number
    /// of `(r, k)` with `L_{r,k} + O_k <= u`.
    #[inline(always)]
    pub fn scan<T: Lane, const ABS: bool>(ch: &[T; CHUNK], off: T, u: T) -> u32 {
        let mut l = [[T::ZERO; LANES]; ROWS];
        let mut acc = [T::ZERO; LANES];
        for (r, row) in ch.chunks_exact(LANES).enumerate() {
            for k in 0..LANES {
                acc[k] = acc[k].add(g::<T, ABS>(row[k], off));
                l[r][k] = acc[k];
            }
        }
        let mut o = [T::ZERO; LANES];
        let mut run = T::ZERO;
        for k in 0..LANES {
            o[k] = run;
            run = run.add(acc[k]);
        }
        let mut cnt = 0u32;
        for row in &l {
            for k in 0..LANES {
                cnt += u32::from(row[k].add(o[k]) <= u);
            }
        }
        cnt
    }
}

/// SSE2 (baseline x86_64) implementations of the `f32` kernels: the same operations as
/// [`portable`], in the same order.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{CHUNK, LANES};
    use std::arch::x86_64::*;

    /// `f` on 4 lanes.
    #[inline(always)]
    fn f4<const ABS: bool>(v: __m128) -> __m128 {
        // SAFETY (all blocks in this module): SSE2 is part of the x86_64 baseline, and every
        // load reads 16 bytes inside a slice whose length was checked.
        #[allow(unused_unsafe)]
        unsafe {
            if ABS {
                _mm_andnot_ps(_mm_set1_ps(-0.0), v)
            } else {
                v
            }
        }
    }

    /// See [`super::portable::chunk_sums`].
    #[inline(always)]
    pub fn chunk_sums<const ABS: bool>(
        x: &[f32],
        bounds: &mut [f64],
        total: &mut f64,
    ) -> [f64; LANES] {
        #[allow(unused_unsafe)]
        unsafe {
            let mut sq = [_mm_setzero_pd(); 4];
            for (ch, b) in x.chunks_exact(CHUNK).zip(bounds.iter_mut()) {
                let p = ch.as_ptr();
                let (mut alo, mut ahi) = (_mm_setzero_ps(), _mm_setzero_ps());
                let (mut qlo, mut qhi) = (_mm_setzero_ps(), _mm_setzero_ps());
                for r in 0..CHUNK / LANES {
                    let vlo = f4::<ABS>(_mm_loadu_ps(p.add(LANES * r)));
                    let vhi = f4::<ABS>(_mm_loadu_ps(p.add(LANES * r + 4)));
                    alo = _mm_add_ps(alo, vlo);
                    ahi = _mm_add_ps(ahi, vhi);
                    qlo = _mm_add_ps(qlo, _mm_mul_ps(vlo, vlo));
                    qhi = _mm_add_ps(qhi, _mm_mul_ps(vhi, vhi));
                }
                sq[0] = _mm_add_pd(sq[0], _mm_cvtps_pd(qlo));
                sq[1] = _mm_add_pd(sq[1], _mm_cvtps_pd(_mm_movehl_ps(qlo, qlo)));
                sq[2] = _mm_add_pd(sq[2], _mm_cvtps_pd(qhi));
                sq[3] = _mm_add_pd(sq[3], _mm_cvtps_pd(_mm_movehl_ps(qhi, qhi)));
                // h = lo + hi; then lanes (0 + 2, 1 + 3); then lane 0 + lane 1.
                let h = _mm_add_ps(alo, ahi);
                let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                let s = _mm_add_ss(h, _mm_shuffle_ps::<0b01_01_01_01>(h, h));
                *total += f64::from(_mm_cvtss_f32(s));
                *b = *total;
            }
            let mut out = [0f64; LANES];
            for (j, v) in sq.iter().enumerate() {
                _mm_storeu_pd(out.as_mut_ptr().add(2 * j), *v);
            }
            out
        }
    }

    /// The lane offsets of [`super::portable::scan`] for lane totals `tlo` (lanes 0-3) and `thi`
    /// (lanes 4-7): the sequential exclusive prefix `O_0 = 0`, `O_{k+1} = O_k + T_k`, one lane
    /// per step (adding exact zeros elsewhere), as `(O_0..O_3, O_4..O_7)`. Shared by the SSE2
    /// and AVX2 scans, so both add in the same order.
    #[inline(always)]
    pub(super) fn lane_offsets(tlo: __m128, thi: __m128) -> (__m128, __m128) {
        #[allow(unused_unsafe)]
        unsafe {
            let m1 = _mm_castsi128_ps(_mm_set_epi32(-1, -1, -1, 0));
            let m2 = _mm_castsi128_ps(_mm_set_epi32(-1, -1, 0, 0));
            let m3 = _mm_castsi128_ps(_mm_set_epi32(-1, 0, 0, 0));
            // o = [b, b + T0, (b + T0) + T1, ((b + T0) + T1) + T2] for base b.
            let step = |b: __m128, t: __m128| {
                let o = _mm_add_ps(b, _mm_and_ps(_mm_shuffle_ps::<0b00_00_00_00>(t, t), m1));
                let o = _mm_add_ps(o, _mm_and_ps(_mm_shuffle_ps::<0b01_01_01_01>(t, t), m2));
                _mm_add_ps(o, _mm_and_ps(_mm_shuffle_ps::<0b10_10_10_10>(t, t), m3))
            };
            let olo = step(_mm_setzero_ps(), tlo);
            let base = _mm_add_ps(olo, tlo);
            (olo, step(_mm_shuffle_ps::<0b11_11_11_11>(base, base), thi))
        }
    }

    /// See [`super::portable::scan`].
    #[inline(always)]
    pub fn scan<const ABS: bool>(ch: &[f32; CHUNK], off: f32, u: f32) -> u32 {
        #[allow(unused_unsafe)]
        unsafe {
            let p = ch.as_ptr();
            let offv = _mm_set1_ps(off);
            let zero = _mm_setzero_ps();
            let g4 = |v: __m128| {
                if ABS {
                    _mm_add_ps(f4::<true>(v), offv)
                } else {
                    // max(v + off, 0) as (v + off > 0 ? v + off : 0): maxps returns its second
                    // operand unless the first is greater.
                    _mm_max_ps(_mm_add_ps(v, offv), zero)
                }
            };
            let mut lo = [zero; 4];
            let mut hi = [zero; 4];
            let (mut alo, mut ahi) = (zero, zero);
            for r in 0..4 {
                alo = _mm_add_ps(alo, g4(_mm_loadu_ps(p.add(LANES * r))));
                ahi = _mm_add_ps(ahi, g4(_mm_loadu_ps(p.add(LANES * r + 4))));
                lo[r] = alo;
                hi[r] = ahi;
            }
            let (olo, ohi) = lane_offsets(alo, ahi);
            let uv = _mm_set1_ps(u);
            let mut cnt = _mm_setzero_si128();
            for r in 0..4 {
                let clo = _mm_cmple_ps(_mm_add_ps(lo[r], olo), uv);
                let chi = _mm_cmple_ps(_mm_add_ps(hi[r], ohi), uv);
                cnt = _mm_sub_epi32(cnt, _mm_castps_si128(clo));
                cnt = _mm_sub_epi32(cnt, _mm_castps_si128(chi));
            }
            let c = _mm_add_epi32(cnt, _mm_shuffle_epi32::<0b01_00_11_10>(cnt));
            let c = _mm_add_epi32(c, _mm_shuffle_epi32::<0b10_11_00_01>(c));
            _mm_cvtsi128_si32(c) as u32
        }
    }
}

/// AVX2 implementations of the `f32` kernels (selected at run time): the same operations as
/// [`portable`], in the same order (no fused multiply-add), so results are bit-identical.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{CHUNK, LANES};
    use std::arch::x86_64::*;

    /// `f` on 8 lanes.
    #[inline(always)]
    unsafe fn f8<const ABS: bool>(v: __m256) -> __m256 {
        // SAFETY (all blocks in this module): the functions require AVX2 (their callers check
        // it), and every load reads 32 bytes inside a slice whose length was checked.
        unsafe {
            if ABS {
                _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
            } else {
                v
            }
        }
    }

    /// See [`super::portable::chunk_sums`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn chunk_sums<const ABS: bool>(
        x: &[f32],
        bounds: &mut [f64],
        total: &mut f64,
    ) -> [f64; LANES] {
        unsafe {
            let mut sq = [_mm256_setzero_pd(); 2];
            for (ch, b) in x.chunks_exact(CHUNK).zip(bounds.iter_mut()) {
                let p = ch.as_ptr();
                let mut a = _mm256_setzero_ps();
                let mut q = _mm256_setzero_ps();
                for r in 0..CHUNK / LANES {
                    let v = f8::<ABS>(_mm256_loadu_ps(p.add(LANES * r)));
                    a = _mm256_add_ps(a, v);
                    q = _mm256_add_ps(q, _mm256_mul_ps(v, v));
                }
                sq[0] = _mm256_add_pd(sq[0], _mm256_cvtps_pd(_mm256_castps256_ps128(q)));
                sq[1] = _mm256_add_pd(sq[1], _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(q)));
                let h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
                let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                let s = _mm_add_ss(h, _mm_shuffle_ps::<0b01_01_01_01>(h, h));
                *total += f64::from(_mm_cvtss_f32(s));
                *b = *total;
            }
            let mut out = [0f64; LANES];
            _mm256_storeu_pd(out.as_mut_ptr(), sq[0]);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), sq[1]);
            out
        }
    }

    /// See [`super::portable::scan`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn scan<const ABS: bool>(ch: &[f32; CHUNK], off: f32, u: f32) -> u32 {
        unsafe {
            let p = ch.as_ptr();
            let offv = _mm256_set1_ps(off);
            let zero = _mm256_setzero_ps();
            let mut l = [zero; 4];
            let mut acc = zero;
            for (r, lr) in l.iter_mut().enumerate() {
                let v = _mm256_loadu_ps(p.add(LANES * r));
                let g = if ABS {
                    _mm256_add_ps(f8::<true>(v), offv)
                } else {
                    _mm256_max_ps(_mm256_add_ps(v, offv), zero)
                };
                acc = _mm256_add_ps(acc, g);
                *lr = acc;
            }
            let (olo, ohi) = super::sse2::lane_offsets(
                _mm256_castps256_ps128(acc),
                _mm256_extractf128_ps::<1>(acc),
            );
            let o = _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(olo), ohi);
            let uv = _mm256_set1_ps(u);
            let mut cnt = _mm256_setzero_si256();
            for lr in &l {
                let c = _mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_add_ps(*lr, o), uv);
                cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(c));
            }
            let c = _mm_add_epi32(
                _mm256_castsi256_si128(cnt),
                _mm256_extracti128_si256::<1>(cnt),
            );
            let c = _mm_add_epi32(c, _mm_shuffle_epi32::<0b01_00_11_10>(c));
            let c = _mm_add_epi32(c, _mm_shuffle_epi32::<0b10_11_00_01>(c));
            _mm_cvtsi128_si32(c) as u32
        }
    }
}

/// Pass 1: sum of squares and sum of `f(x_i)` (`|x_i|` when `ABS`, else `x_i`), with the `f64`
/// prefix sums of `f` at the end of every chunk of [`CHUNK`] elements written to `bounds`
/// (resized to `chunks + WINDOW`; the last [`WINDOW`] entries are `+inf`).
///
/// Inside a chunk the sums run in the input's precision over [`LANES`] independent lanes (so
/// the loop vectorises); chunk sums are accumulated in `f64`.
pub fn chunk_bounds<T: Lane, const ABS: bool>(x: &[T], bounds: &mut Vec<f64>) -> (f64, f64) {
    let nchunks = x.len().div_ceil(CHUNK);
    // Every entry below nchunks is overwritten; only the sentinels need a value.
    bounds.resize(nchunks + WINDOW, f64::INFINITY);
    bounds[nchunks..].fill(f64::INFINITY);
    let whole = x.len() / CHUNK * CHUNK;
    let mut total = 0f64;
    let mut sq = T::chunk_sums::<ABS>(&x[..whole], bounds, &mut total);
    let rest = &x[whole..];
    if !rest.is_empty() {
        for &v in rest {
            let v = f::<T, ABS>(v);
            total += v.into();
            sq[0] += v.mul(v).into();
        }
        bounds[nchunks - 1] = total;
    }
    (sq.iter().sum(), total)
}

/// `s` sorted uniforms on `[0, total)` from exponential spacings, into `out` (cleared first):
/// with `E_1, ..., E_{s+1}` i.i.d. standard exponentials, `(E_1 + ... + E_k) / (E_1 + ... +
/// E_{s+1})`, `k = 1..=s`, are the order statistics of `s` i.i.d. uniforms.
pub fn sorted_uniforms<R: rand::RngCore + Clone>(
    rng: &mut R,
    s: usize,
    total: f64,
    out: &mut Vec<f64>,
) {
    let z = zig_tables();
    out.clear();
    out.resize(s, 0.0);
    // A local copy of the generator stays in registers (the slow path takes it by value).
    let mut r = rng.clone();
    let mut acc = 0f64;
    for t in out.iter_mut() {
        let e;
        (e, r) = exp1(r, z);
        acc += e;
        *t = acc;
    }
    let e;
    (e, r) = exp1(r, z);
    acc += e;
    *rng = r;
    let scale = total / acc;
    for t in out.iter_mut() {
        *t *= scale;
    }
}

/// Layers of the exponential ziggurat.
const ZIG_LAYERS: usize = 256;
/// Start of the tail (Marsaglia and Tsang's constants, as in `rand_distr`).
const ZIG_EXP_R: f64 = 7.697_117_470_131_05;
/// Area of each layer.
const ZIG_EXP_V: f64 = 0.003_949_659_822_581_557;

/// Ziggurat tables for `f(x) = exp(-x)`: layer edges `x` and `f(x)`.
pub struct ZigTables {
    x: [f64; ZIG_LAYERS + 1],
    f: [f64; ZIG_LAYERS + 1],
}

/// The tables, built once (the recurrence of Marsaglia and Tsang, "The Ziggurat Method for
/// Generating Random Variables", 2000, as used by `rand_distr`): `x_0 = V / f(R)`, `x_1 = R`,
/// `x_{i+1} = f^{-1}(V / x_i + f(x_i))`, `x_256 = 0`.
pub fn zig_tables() -> &'static ZigTables {
    static TABLES: std::sync::OnceLock<ZigTables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0f64; ZIG_LAYERS + 1];
        x[0] = ZIG_EXP_V / (-ZIG_EXP_R).exp();
        x[1] = ZIG_EXP_R;
        for i in 2..ZIG_LAYERS {
            let last = x[i - 1];
            x[i] = -(ZIG_EXP_V / last + (-last).exp()).ln();
        }
        let f = x.map(|v| (-v).exp());
        ZigTables { x, f }
    })
}

/// A standard exponential by the ziggurat method (exact rejection sampling; the fast path,
/// taken ~99% of the time, is one 64-bit draw, one multiply and one compare, and is inlined).
/// The generator is passed and returned by value so that a caller's local copy can stay in
/// registers.
#[inline(always)]
pub fn exp1<R: rand::RngCore>(mut rng: R, z: &ZigTables) -> (f64, R) {
    let bits = rng.next_u64();
    let i = (bits & 0xff) as usize;
    // 52 high bits as a uniform on (0, 1): [1, 2) minus (1 - 2^-53).
    let u = f64::from_bits((bits >> 12) | 0x3ff0_0000_0000_0000) - (1.0 - f64::EPSILON / 2.0);
    let x = u * z.x[i];
    if x < z.x[i + 1] {
        (x, rng)
    } else {
        exp1_slow(rng, z, i, x)
    }
}

/// The rest of [`exp1`] after the fast test failed for layer `i` at `x`.
#[cold]
#[inline(never)]
fn exp1_slow<R: rand::RngCore>(mut rng: R, z: &ZigTables, i: usize, x: f64) -> (f64, R) {
    if i == 0 {
        // Tail beyond R: R + Exp(1) (memorylessness).
        let u = 1.0 - uniform(&mut rng);
        return (ZIG_EXP_R - u.ln(), rng);
    }
    if z.f[i + 1] + (z.f[i] - z.f[i + 1]) * uniform(&mut rng) < (-x).exp() {
        return (x, rng);
    }
    exp1(rng, z)
}

/// A uniform on `[0, 1)` with 53 random bits (`rand`'s `f64` conversion).
#[inline(always)]
pub fn uniform<R: rand::RngCore>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Hint the CPU to load chunk `c` of `x` into cache (no effect on results; a no-op off x86_64):
/// one address every 64 bytes of the chunk and its last byte.
#[inline(always)]
pub fn prefetch_chunk<T>(x: &[T], c: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = CHUNK * std::mem::size_of::<T>();
        let base = x.as_ptr().wrapping_add(c * CHUNK).cast::<i8>();
        let fetch = |off: usize| {
            // SAFETY: prefetching is a hint: it never faults and reads nothing the program can
            // observe, whatever the address (the pointer is computed with wrapping arithmetic).
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    base.wrapping_add(off),
                );
            }
        };
        let mut off = 0;
        while off < bytes {
            fetch(off);
            off += 64;
        }
        fetch(bytes - 1);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, c);
}

/// The number of leading entries of the non-decreasing window `w` that are `<= t` (the count of
/// trailing ones of the comparison mask).
#[inline(always)]
fn window_count(w: &[f64; WINDOW], t: f64) -> usize {
    #[cfg(target_arch = "x86_64")]
    let m = {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the loads read inside `w`.
        #[allow(unused_unsafe)]
        unsafe {
            let tv = _mm_set1_pd(t);
            let p = w.as_ptr();
            let mut m = 0i32;
            for q in 0..WINDOW / 2 {
                m |= _mm_movemask_pd(_mm_cmple_pd(_mm_loadu_pd(p.add(2 * q)), tv)) << (2 * q);
            }
            m as u32
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let m = w
        .iter()
        .enumerate()
        .fold(0u32, |m, (j, &b)| m | (u32::from(b <= t) << j));
    (!m).trailing_zeros() as usize
}

/// Receives the sampled indices of [`Weights::sample_sorted`] (any `FnMut(usize)`, or a struct
/// that is moved into the sampling loop and back out, so that its state can live in registers).
pub trait Emit {
    /// One sampled index.
    fn emit(&mut self, i: usize);
}

impl<F: FnMut(usize)> Emit for F {
    #[inline(always)]
    fn emit(&mut self, i: usize) {
        self(i)
    }
}

/// The weights `g(x_i) = |x_i| + off` (`ABS`) or `max(x_i + off, 0)` of one block, with the
/// chunk bounds of [`chunk_bounds`] converted to bounds of `g` (the sampler's state).
pub struct Weights<'a, T, const ABS: bool> {
    x: &'a [T],
    bounds: &'a [f64],
    nchunks: usize,
    off: f64,
    off_t: T,
}

impl<'a, T: Lane, const ABS: bool> Weights<'a, T, ABS> {
    /// Take `bounds` from [`chunk_bounds`]`::<T, ABS>(x, bounds)` and add `off` per element, in
    /// place: afterwards `bounds[c]` is the `f64` sum of `g` over chunks `0..=c`, non-decreasing,
    /// followed by the `+inf` sentinels. `off >= 0` for `ABS`.
    pub fn new(x: &'a [T], bounds: &'a mut [f64], off: f64) -> Self {
        let n = x.len();
        let nchunks = n.div_ceil(CHUNK);
        assert_eq!(bounds.len(), nchunks + WINDOW, "bounds from chunk_bounds");
        assert!(n <= i32::MAX as usize, "block too large");
        if nchunks > 0 {
            let (body, last) = bounds[..nchunks].split_at_mut(nchunks - 1);
            for (c, g) in body.iter_mut().enumerate() {
                // i32 converts to f64 in vector lanes; `(c + 1) * CHUNK <= n` fits (checked).
                *g += off * f64::from(((c + 1) * CHUNK) as i32);
            }
            last[0] += off * n as f64;
            if !ABS {
                // Signed f: the exact bounds are non-decreasing, rounded ones need not be.
                let mut m = f64::NEG_INFINITY;
                for g in bounds[..nchunks].iter_mut() {
                    m = m.max(*g);
                    *g = m;
                }
            }
        }
        Weights {
            x,
            bounds,
            nchunks,
            off,
            off_t: T::from_f64(off),
        }
    }

    /// Sum of all weights (the last chunk bound; 0 for an empty block).
    pub fn total(&self) -> f64 {
        if self.nchunks == 0 {
            0.0
        } else {
            self.bounds[self.nchunks - 1]
        }
    }

    /// `g(x_i)` in `f64`.
    #[inline(always)]
    pub fn weight(&self, i: usize) -> f64 {
        let v: f64 = self.x[i].into();
        if ABS {
            v.abs() + self.off
        } else {
            (v + self.off).max(0.0)
        }
    }

    /// Locate step: from chunk `*c` on, the chunk holding target `t` (`nchunks` when `t` is past
    /// the last bound) and the offset of `t` in it. The bounds are non-decreasing, so the bounds
    /// `<= t` in a window are a prefix of it: their number is the count of trailing ones of the
    /// comparison mask.
    #[inline(always)]
    fn locate(&self, t: f64, c: &mut usize) -> (usize, f64) {
        loop {
            let w: &[f64; WINDOW] = self.bounds[*c..*c + WINDOW].try_into().expect("window");
            let k = window_count(w, t);
            *c += k;
            if k < WINDOW {
                break;
            }
        }
        let start = if *c == 0 { 0.0 } else { self.bounds[*c - 1] };
        (*c, t - start)
    }

    /// In-chunk step: the element of chunk `c` at offset `u >= 0`.
    ///
    /// For a full chunk the prefix sums `P` run lane-major: position `p = 4 k + r` is element
    /// `8 r + k`, `P_p = L_{r,k} + O_k` with `L_{r,k}` the running sum of lane `k` through row
    /// `r` and `O_k = O_{k-1} + L_{3,k-1}` (sequential). All weights are `>= 0` and rounding is
    /// monotone, so `P` is non-decreasing (in particular `P_{4k+3} = O_{k+1}` exactly), the
    /// predicate `P_p <= u` holds exactly for `p < j`, and the count of true predicates is the
    /// inverse CDF `j`. A zero weight repeats the previous prefix exactly, so it is never
    /// selected. `j = 32` (rounding between `f64` bounds and in-chunk sums) goes to the last
    /// element of positive weight.
    #[inline(always)]
    fn in_chunk<const WIDE: bool>(&self, c: usize, u: f64) -> usize {
        let lo = c * CHUNK;
        if lo + CHUNK > self.x.len() {
            return self.in_chunk_scalar(c, u);
        }
        let ch: &[T; CHUNK] = self.x[lo..lo + CHUNK].try_into().expect("chunk");
        let cnt = if WIDE {
            // SAFETY: `WIDE` is only set by `scan_loop_avx2`, which runs with AVX2 available.
            unsafe { T::scan_avx2::<ABS>(ch, self.off_t, T::from_f64(u)) }
        } else {
            T::scan::<ABS>(ch, self.off_t, T::from_f64(u))
        };
        let p = cnt as usize;
        if p < CHUNK {
            lo + (p % ROWS) * LANES + p / ROWS
        } else {
            self.last_positive(c)
        }
    }

    /// In-chunk step for a partial (last) chunk: sequential `f64` sums.
    #[cold]
    fn in_chunk_scalar(&self, c: usize, u: f64) -> usize {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(self.x.len());
        let mut q = 0.0;
        for i in lo..hi {
            q += self.weight(i);
            if u < q {
                return i;
            }
        }
        self.last_positive(c)
    }

    /// The last element of chunk `c` with positive weight (the last element if none).
    #[cold]
    fn last_positive(&self, c: usize) -> usize {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(self.x.len());
        (lo..hi)
            .rev()
            .find(|&i| self.weight(i) > 0.0)
            .unwrap_or(hi - 1)
    }

    /// The last chunk of positive weight (the last chunk if none).
    #[cold]
    fn last_positive_chunk(&self) -> usize {
        (0..self.nchunks)
            .rev()
            .find(|&c| self.bounds[c] > if c == 0 { 0.0 } else { self.bounds[c - 1] })
            .unwrap_or(self.nchunks - 1)
    }

    /// Step 3: call `emit(i)` once per target of the sorted `targets` (on `[0, total)`), in
    /// order, with `i` drawn by the inverse CDF of the weights (non-decreasing chunk order).
    /// `targets` is overwritten with the targets' offsets in their chunks; `chunk_of` is
    /// scratch.
    ///
    /// Two loops: the locate steps of [`STREAMS`] segments of the targets run interleaved, each
    /// segment with its own cursor (started by a binary search), so their serial chains overlap;
    /// then the in-chunk steps run in order, prefetching the input of the chunk [`AHEAD`]
    /// targets ahead.
    pub fn sample_sorted<E: Emit>(
        &self,
        targets: &mut [f64],
        chunk_of: &mut Vec<u32>,
        emit: E,
    ) -> E {
        let s = targets.len();
        if s == 0 || self.nchunks == 0 {
            return emit;
        }
        // A target's chunk is #{c : G_c <= t} (non-decreasing bounds) from any cursor not past
        // it, so the result does not depend on how the targets are split.
        chunk_of.clear();
        // AHEAD extra entries (chunk 0) so that the in-chunk loop prefetches unconditionally.
        chunk_of.resize(s + AHEAD, 0);
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: AVX2 is available (checked at run time).
            unsafe { self.locate_loop_avx2(targets, &mut chunk_of[..s]) };
        } else {
            self.locate_loop(targets, &mut chunk_of[..s]);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.locate_loop(targets, &mut chunk_of[..s]);
        #[cfg(target_arch = "x86_64")]
        if T::HAS_AVX2 && has_avx2() {
            // SAFETY: AVX2 is available (checked at run time).
            return unsafe { self.scan_loop_avx2(chunk_of, targets, emit) };
        }
        self.scan_loop::<false, E>(chunk_of, targets, emit)
    }

    /// [`Self::locate_loop`] compiled with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn locate_loop_avx2(&self, targets: &mut [f64], chunk_of: &mut [u32]) {
        self.locate_loop(targets, chunk_of);
    }

    /// The locate loop of [`Self::sample_sorted`]: [`STREAMS`] interleaved segments.
    #[inline(always)]
    fn locate_loop(&self, targets: &mut [f64], chunk_of: &mut [u32]) {
        let s = targets.len();
        let seg = s.div_ceil(STREAMS);
        let mut cur = [0usize; STREAMS];
        for (k, c) in cur.iter_mut().enumerate() {
            if let Some(&t) = targets.get(k * seg) {
                *c = self.bounds[..self.nchunks].partition_point(|&b| b <= t);
            }
        }
        for j in 0..seg {
            for (k, c) in cur.iter_mut().enumerate() {
                let p = k * seg + j;
                if p < s {
                    let (ck, u) = self.locate(targets[p], c);
                    chunk_of[p] = ck as u32;
                    targets[p] = u;
                }
            }
        }
    }

    /// [`Self::scan_loop`] compiled with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_loop_avx2<E: Emit>(&self, chunk_of: &[u32], targets: &[f64], emit: E) -> E {
        self.scan_loop::<true, E>(chunk_of, targets, emit)
    }

    /// The in-chunk loop of [`Self::sample_sorted`].
    #[inline(always)]
    fn scan_loop<const WIDE: bool, E: Emit>(
        &self,
        chunk_of: &[u32],
        targets: &[f64],
        emit: E,
    ) -> E {
        // A local the optimiser can keep in registers.
        let mut emit = emit;
        // `chunk_of` has AHEAD entries more than `targets` (see `sample_sorted`).
        for ((&ck, &next), &u) in chunk_of.iter().zip(&chunk_of[AHEAD..]).zip(targets) {
            prefetch_chunk(self.x, next as usize);
            let ck = ck as usize;
            let i = if ck < self.nchunks {
                self.in_chunk::<WIDE>(ck, u)
            } else {
                self.last_positive(self.last_positive_chunk())
            };
            emit.emit(i);
        }
        emit
    }
}

/// The order in which [`Weights::sample_sorted`] lays out the inverse CDF: chunk by chunk,
/// lane-major inside a full chunk (position `4 k + r` is element `8 r + k`), element order in a
/// partial last chunk. For tests and references.
pub fn scan_order(n: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(n);
    for lo in (0..n).step_by(CHUNK) {
        if lo + CHUNK <= n {
            order.extend((0..CHUNK).map(|p| lo + (p % ROWS) * LANES + p / ROWS));
        } else {
            order.extend(lo..n);
        }
    }
    order
}

/// Reference for tests (slow, simple): the inverse CDF at `t` of `weights` laid out in `order`
/// (a permutation of the indices), by a sequential `f64` scan; past the sum, the last index of
/// positive weight in that order.
pub fn inverse_cdf(weights: &[f64], order: &[usize], t: f64) -> usize {
    let mut q = 0.0;
    for &i in order {
        q += weights[i];
        if t < q {
            return i;
        }
    }
    order
        .iter()
        .rev()
        .copied()
        .find(|&i| weights[i] > 0.0)
        .unwrap_or(order.last().copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};

    #[test]
    fn exponentials_have_the_exponential_distribution() {
        // Kolmogorov-Smirnov against 1 - exp(-x): with n = 200000 the 1e-6 critical value is
        // about 2.6 / sqrt(n) = 0.0058.
        let mut rng = crate::rng::Rng::seed_from_u64(9);
        let z = zig_tables();
        let n = 200_000;
        let mut v: Vec<f64> = (0..n)
            .map(|_| {
                let e;
                (e, rng) = exp1(rng.clone(), z);
                e
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let mut d = 0f64;
        for (k, &x) in v.iter().enumerate() {
            let f = 1.0 - (-x).exp();
            d = d
                .max((f - k as f64 / n as f64).abs())
                .max((f - (k + 1) as f64 / n as f64).abs());
        }
        assert!(d < 2.6 / (n as f64).sqrt(), "KS distance {d}");
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 5.5 / (n as f64).sqrt(), "mean {mean}");
        assert!(
            (var - 1.0).abs() < 5.5 * 8f64.sqrt() / (n as f64).sqrt(),
            "var {var}"
        );
        // The tail (beyond R = 7.7) is reached: P = exp(-7.7) ~ 4.5e-4.
        assert!(v[n - 1] > ZIG_EXP_R);
    }

    #[test]
    fn sorted_uniforms_are_sorted_and_in_range() {
        let mut rng = crate::rng::Rng::seed_from_u64(1);
        let mut v = Vec::new();
        sorted_uniforms(&mut rng, 1000, 2.5, &mut v);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert!(v[0] >= 0.0 && v[999] < 2.5);
        let mean = v.iter().sum::<f64>() / 1000.0;
        assert!((mean - 1.25).abs() < 0.1);
    }

    /// Run the fast sampler on `x` with offset `off` for `targets`.
    fn fast<T: Lane, const ABS: bool>(x: &[T], off: f64, targets: &[f64]) -> (Vec<usize>, f64) {
        let mut b = Vec::new();
        chunk_bounds::<T, ABS>(x, &mut b);
        let w = Weights::<T, ABS>::new(x, &mut b, off);
        let mut got = Vec::new();
        let mut t = targets.to_vec();
        let _ = w.sample_sorted(&mut t, &mut Vec::new(), |i: usize| got.push(i));
        (got, w.total())
    }

    /// Check the fast sampler against the `f64` inverse CDF: every target consumed, chunk order
    /// non-decreasing, every index of positive weight and, where the answers differ, the target
    /// within rounding (`tol` of the chunk's weight) of a boundary between the two.
    /// `tol` is relative to the chunk's weight; `res` is the absolute resolution of `T` near
    /// zero (its smallest subnormal), which bounds each in-chunk rounding from below.
    fn check<T: Lane, const ABS: bool>(
        x: &[T],
        off: f64,
        targets: &[f64],
        tol: f64,
        res: f64,
    ) -> usize {
        let g: Vec<f64> = x
            .iter()
            .map(|&v| {
                let v: f64 = v.into();
                if ABS {
                    v.abs() + off
                } else {
                    (v + off).max(0.0)
                }
            })
            .collect();
        let (got, _) = fast::<T, ABS>(x, off, targets);
        assert_eq!(got.len(), targets.len());
        assert!(got.windows(2).all(|w| w[0] / CHUNK <= w[1] / CHUNK));
        let order = scan_order(g.len());
        let mut pos = vec![0usize; g.len()];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }
        // Prefix sums in scan order.
        let mut prefix = vec![0.0; g.len() + 1];
        for (p, &i) in order.iter().enumerate() {
            prefix[p + 1] = prefix[p] + g[i];
        }
        let mut differ = 0;
        for (&t, &i) in targets.iter().zip(&got) {
            assert!(
                g[i] > 0.0 || g.iter().all(|&w| w == 0.0),
                "zero weight at {i}"
            );
            let want = inverse_cdf(&g, &order, t);
            if want != i {
                differ += 1;
                let c = i / CHUNK;
                let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(g.len()));
                let cw = prefix[hi] - prefix[lo];
                let (a, b) = (pos[want].min(pos[i]), pos[want].max(pos[i]));
                // t lies within tol of [prefix[a+1], prefix[b]] (the boundaries between them).
                let dist = if t < prefix[a + 1] {
                    prefix[a + 1] - t
                } else if t > prefix[b] {
                    t - prefix[b]
                } else {
                    0.0
                };
                assert!(
                    dist <= tol * cw + 64.0 * res + 1e-12 * prefix[g.len()],
                    "target {t}: got {i}, want {want}, distance {dist:e}"
                );
            }
        }
        differ
    }

    fn targets(rng: &mut crate::rng::Rng, s: usize, total: f64) -> Vec<f64> {
        let mut t = Vec::new();
        sorted_uniforms(rng, s, total, &mut t);
        t
    }

    #[test]
    fn fast_sampler_matches_the_inverse_cdf_on_random_and_adversarial_inputs() {
        let mut rng = crate::rng::Rng::seed_from_u64(7);
        let mut cases: Vec<(String, Vec<f32>, f64)> = Vec::new();
        for &n in &[1usize, 5, 31, 32, 33, 64, 95, 1000, 4099] {
            let x: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
            cases.push((format!("uniform n={n}"), x.clone(), 0.01));
            cases.push((format!("uniform n={n} off=0"), x, 0.0));
            let mut y = vec![0f32; n];
            y[rng.random_range(0..n)] = 3.0;
            cases.push((format!("one spike n={n} off=0"), y.clone(), 0.0));
            cases.push((format!("one spike n={n}"), y, 1e-3));
            let mut h: Vec<f32> = (0..n).map(|_| (rng.random::<f32>() - 0.5) * 1e-3).collect();
            h[n / 2] = 1e4;
            cases.push((format!("huge coordinate n={n}"), h, 1e-6));
            let sub: Vec<f32> = (0..n)
                .map(|i| {
                    f32::from_bits(1 + (i as u32 % 1000)) * if i % 3 == 0 { -1.0 } else { 1.0 }
                })
                .collect();
            cases.push((format!("subnormals n={n} off=0"), sub.clone(), 0.0));
            cases.push((format!("subnormals n={n}"), sub, 1e-30));
            let zeros_runs: Vec<f32> = (0..n)
                .map(|i| {
                    if (i / 40) % 3 == 0 {
                        0.0
                    } else {
                        (i % 7) as f32
                    }
                })
                .collect();
            cases.push((format!("zero runs n={n} off=0"), zeros_runs, 0.0));
        }
        let mut differ = 0;
        let mut differ_all = 0;
        let mut total = 0;
        for (name, x, off) in &cases {
            let g_total: f64 = x.iter().map(|&v| f64::from(v).abs() + off).sum();
            if g_total == 0.0 {
                continue;
            }
            for &s in &[1usize, 7, 100, 3000] {
                let t = targets(&mut rng, s, g_total);
                let f32_res = f64::from(f32::from_bits(1));
                differ += check::<f32, true>(x, *off, &t, 1e-5, f32_res);
                total += s;
                let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                differ += check::<f64, true>(&x64, *off, &t, 1e-12, 5e-324);
                total += s;
                // Signed weights (simplex): g = max(x + off', 0) with off' making most positive.
                let off2 = 0.6;
                let g2: f64 = x.iter().map(|&v| (f64::from(v) + off2).max(0.0)).sum();
                if g2 > 0.0 {
                    let t2 = targets(&mut rng, s, g2);
                    differ += check::<f32, false>(x, off2, &t2, 1e-5, f32_res);
                    total += s;
                }
            }
            // Outside the subnormal range the in-chunk sums are exact enough that no target in
            // these cases lands within rounding of a boundary: the answers are identical.
            if !name.starts_with("subnormals") || *off > 0.0 {
                assert_eq!(
                    differ, 0,
                    "{name}: {differ} targets differ from the reference"
                );
            }
            differ_all += differ;
            differ = 0;
        }
        // All-subnormal chunks with no offset: rounding at f32's absolute resolution, rare.
        assert!(differ_all * 1000 < total, "{differ_all} of {total} differ");
    }

    #[test]
    fn kernels_are_bit_identical_to_their_portable_definition() {
        let mut rng = crate::rng::Rng::seed_from_u64(3);
        for case in 0..2000 {
            let n = CHUNK * (1 + case % 3);
            let x: Vec<f32> = (0..n)
                .map(|i| match case % 5 {
                    0 => rng.random::<f32>() - 0.5,
                    1 => (rng.random::<f32>() - 0.5) * 10f32.powi(rng.random_range(-40..30)),
                    2 => {
                        f32::from_bits(rng.random_range(0..2000))
                            * if i % 2 == 0 { 1.0 } else { -1.0 }
                    }
                    3 => {
                        if rng.random::<f32>() < 0.9 {
                            0.0
                        } else {
                            rng.random::<f32>() * 1e3
                        }
                    }
                    _ => -(rng.random::<f32>() * 2.0),
                })
                .collect();
            let (mut b1, mut b2) = (vec![0.0; n / CHUNK], vec![0.0; n / CHUNK]);
            let (mut t1, mut t2) = (0.0, 0.0);
            let q1 = <f32 as Lane>::chunk_sums::<true>(&x, &mut b1, &mut t1);
            let q2 = portable::chunk_sums::<f32, true>(&x, &mut b2, &mut t2);
            assert_eq!((q1, &b1, t1.to_bits()), (q2, &b2, t2.to_bits()));
            let q1 = <f32 as Lane>::chunk_sums::<false>(&x, &mut b1, &mut t1);
            let q2 = portable::chunk_sums::<f32, false>(&x, &mut b2, &mut t2);
            assert_eq!((q1, &b1, t1.to_bits()), (q2, &b2, t2.to_bits()));
            #[cfg(target_arch = "x86_64")]
            {
                t1 = 0.0;
                t2 = 0.0;
                let q1 = sse2::chunk_sums::<true>(&x, &mut b1, &mut t1);
                let q2 = portable::chunk_sums::<f32, true>(&x, &mut b2, &mut t2);
                assert_eq!((q1, &b1, t1.to_bits()), (q2, &b2, t2.to_bits()));
            }
            let ch: &[f32; CHUNK] = x[..CHUNK].try_into().unwrap();
            let total: f32 = ch.iter().map(|v| v.abs()).sum();
            for _ in 0..8 {
                let off = [0.0, 1e-3, rng.random::<f32>()][rng.random_range(0..3)];
                let u = rng.random::<f32>() * (total + 32.0 * off) * 1.01;
                assert_eq!(
                    <f32 as Lane>::scan::<true>(ch, off, u),
                    portable::scan::<f32, true>(ch, off, u)
                );
                assert_eq!(
                    <f32 as Lane>::scan::<false>(ch, off + 0.5, u),
                    portable::scan::<f32, false>(ch, off + 0.5, u)
                );
                #[cfg(target_arch = "x86_64")]
                if has_avx2() {
                    // SAFETY: AVX2 is available.
                    unsafe {
                        assert_eq!(
                            <f32 as Lane>::scan_avx2::<true>(ch, off, u),
                            portable::scan::<f32, true>(ch, off, u)
                        );
                        assert_eq!(
                            <f32 as Lane>::scan_avx2::<false>(ch, off + 0.5, u),
                            portable::scan::<f32, false>(ch, off + 0.5, u)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn targets_at_and_past_the_ends_go_to_positive_weights() {
        let mut x = vec![0f32; 70];
        x[3] = 1.0;
        x[40] = 2.0;
        let (got, total) = fast::<f32, true>(&x, 0.0, &[0.0, 0.999_999, 1.0, 2.9999, 3.0, 3.5]);
        assert_eq!(total, 3.0);
        assert_eq!(got, vec![3, 3, 40, 40, 40, 40]);
        // Everything zero but the last element of a partial chunk.
        let mut y = vec![0f32; 65];
        y[64] = 1.0;
        let (got, _) = fast::<f32, true>(&y, 0.0, &[0.0, 0.5, 1.0, 7.0]);
        assert_eq!(got, vec![64; 4]);
    }
}

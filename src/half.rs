//! IEEE 754 binary16 ("half", fp16) conversions, without the `half` crate.
//!
//! Used by the fp16 allreduce ([`crate::sync::HalfAllReduce`] and its MPI reduction in
//! [`crate::comm`]) and by the binary16 payload codec ([`crate::baselines::fp16`]).

/// Largest finite half-precision value.
pub const F16_MAX: f32 = 65504.0;

/// Bit pattern of [`F16_MAX`].
const F16_MAX_BITS: u16 = 0x7bff;

/// Convert an `f32` to IEEE binary16 bits, rounding to nearest with ties to even.
///
/// Overflow gives infinity (as IEEE prescribes), NaN stays NaN (quiet, sign and top payload bits
/// kept), subnormal halves are produced exactly, and `f32` subnormals become signed zero.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x007f_ffff;
    if exp == 0xff {
        return if man == 0 {
            sign | 0x7c00
        } else {
            sign | 0x7e00 | (man >> 13) as u16
        };
    }
    let e = exp - 127; // unbiased exponent (f32 subnormals give -127: they flush below)
    if e > 15 {
        return sign | 0x7c00;
    }
    if e >= -14 {
        // Normal half: 10 mantissa bits kept, 13 rounded off. A carry out of the mantissa
        // correctly increments the exponent (up to infinity).
        let mut h = (((e + 15) as u32) << 10) | (man >> 13);
        let rem = man & 0x1fff;
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    if e < -25 {
        return sign; // below half the smallest subnormal: rounds to zero
    }
    // Subnormal half: the value in units of 2^-24 is m * 2^(e+1), m the 24-bit significand.
    let m = man | 0x0080_0000;
    let shift = (-e - 1) as u32; // 14..=24
    let mut h = m >> shift;
    let rem = m & ((1 << shift) - 1);
    let halfway = 1 << (shift - 1);
    if rem > halfway || (rem == halfway && h & 1 == 1) {
        h += 1; // may carry into the smallest normal, which is the right answer
    }
    sign | h as u16
}

/// Like [`f32_to_f16`], but finite inputs that would round to infinity give +-[`F16_MAX`].
pub fn f32_to_f16_saturating(x: f32) -> u16 {
    let h = f32_to_f16(x);
    if h & 0x7fff == 0x7c00 && x.is_finite() {
        (h & 0x8000) | F16_MAX_BITS
    } else {
        h
    }
}

/// Convert IEEE binary16 bits to `f32` (exact: every half is an `f32`).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: man * 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 {
                -v
            } else {
                v
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// `dst[i] = f32_to_f16_saturating(src[i])` for whole slices (equal lengths), with the F16C
/// instructions where the CPU has them: the same bits as the scalar conversion (clamping to
/// +-65504 before rounding to nearest-even is what saturation does for every finite input).
pub fn f32_to_f16_saturating_slice(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len(), "conversion buffers differ in length");
    #[cfg(target_arch = "x86_64")]
    if f16c::available() {
        // SAFETY: the CPU supports F16C and AVX (checked just above).
        unsafe { f16c::to_half(src, dst) };
        return;
    }
    for (h, &x) in dst.iter_mut().zip(src) {
        *h = f32_to_f16_saturating(x);
    }
}

/// `dst[i] = f16_to_f32(src[i]) * scale` for whole slices (equal lengths), F16C where available
/// (the widening is exact either way, and the multiplication is the same `f32` operation).
pub fn f16_to_f32_scaled_slice(src: &[u16], scale: f32, dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "conversion buffers differ in length");
    #[cfg(target_arch = "x86_64")]
    if f16c::available() {
        // SAFETY: the CPU supports F16C and AVX (checked just above).
        unsafe { f16c::to_single_scaled(src, scale, dst) };
        return;
    }
    for (o, &h) in dst.iter_mut().zip(src) {
        *o = f16_to_f32(h) * scale;
    }
}

/// The binary16 addition of the fp16 allreduce: `f32` sum of two halves, rounded to nearest
/// (ties to even), finite overflow saturating at +-65504. Commutative, so every rank of a ring
/// or tree reduction computes the same bits.
#[inline]
pub fn half_add(a: u16, b: u16) -> u16 {
    f32_to_f16_saturating(f16_to_f32(a) + f16_to_f32(b))
}

/// `acc[i] = half_add(x[i], acc[i])` (the reduction of the fp16 allreduce), F16C where
/// available, bit-identical to [`half_add`].
pub fn add_halves(x: &[u16], acc: &mut [u16]) {
    let n = x.len().min(acc.len());
    #[cfg(target_arch = "x86_64")]
    if f16c::available() {
        // SAFETY: the CPU supports F16C and AVX (checked just above).
        unsafe { f16c::add(&x[..n], &mut acc[..n]) };
        return;
    }
    for (a, &b) in acc[..n].iter_mut().zip(&x[..n]) {
        *a = half_add(b, *a);
    }
}

/// The F16C kernels (8 values per instruction) and their scalar tails.
#[cfg(target_arch = "x86_64")]
mod f16c {
    use super::{f16_to_f32, f32_to_f16_saturating, half_add, F16_MAX};
    use std::arch::x86_64::*;

    /// Whether the CPU has F16C and AVX (cached by the standard library).
    pub fn available() -> bool {
        std::is_x86_feature_detected!("f16c") && std::is_x86_feature_detected!("avx")
    }

    /// Round to nearest even (`_MM_FROUND_TO_NEAREST_INT`), not the MXCSR mode.
    const NEAREST: i32 = 0;

    /// Clamp to the finite half range (NaN passes through: `min`/`max` return the second
    /// operand when one is NaN), then round.
    #[inline(always)]
    unsafe fn clamp_round(v: __m256) -> __m128i {
        // SAFETY: only called from functions that require F16C and AVX.
        unsafe {
            let lim = _mm256_set1_ps(F16_MAX);
            let v = _mm256_min_ps(lim, v);
            let v = _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), lim), v);
            _mm256_cvtps_ph::<NEAREST>(v)
        }
    }

    /// # Safety
    /// The CPU must support F16C and AVX; `src.len() == dst.len()`.
    #[target_feature(enable = "f16c,avx")]
    pub unsafe fn to_half(src: &[f32], dst: &mut [u16]) {
        let n = src.len() / 8 * 8;
        // SAFETY: every load and store is of 8 elements inside `..n` of both slices.
        unsafe {
            for i in (0..n).step_by(8) {
                let h = clamp_round(_mm256_loadu_ps(src.as_ptr().add(i)));
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            }
        }
        for (h, &x) in dst[n..].iter_mut().zip(&src[n..]) {
            *h = f32_to_f16_saturating(x);
        }
    }

    /// # Safety
    /// The CPU must support F16C and AVX; `src.len() == dst.len()`.
    #[target_feature(enable = "f16c,avx")]
    pub unsafe fn to_single_scaled(src: &[u16], scale: f32, dst: &mut [f32]) {
        let n = src.len() / 8 * 8;
        // SAFETY: every load and store is of 8 elements inside `..n` of both slices.
        unsafe {
            let sv = _mm256_set1_ps(scale);
            for i in (0..n).step_by(8) {
                let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
                _mm256_storeu_ps(
                    dst.as_mut_ptr().add(i),
                    _mm256_mul_ps(_mm256_cvtph_ps(h), sv),
                );
            }
        }
        for (o, &h) in dst[n..].iter_mut().zip(&src[n..]) {
            *o = f16_to_f32(h) * scale;
        }
    }

    /// # Safety
    /// The CPU must support F16C and AVX; `x.len() == acc.len()`.
    #[target_feature(enable = "f16c,avx")]
    pub unsafe fn add(x: &[u16], acc: &mut [u16]) {
        let n = x.len() / 8 * 8;
        // SAFETY: every load and store is of 8 elements inside `..n` of both slices.
        unsafe {
            for i in (0..n).step_by(8) {
                let a = _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(i).cast()));
                let b = _mm256_cvtph_ps(_mm_loadu_si128(acc.as_ptr().add(i).cast()));
                let h = clamp_round(_mm256_add_ps(a, b));
                _mm_storeu_si128(acc.as_mut_ptr().add(i).cast(), h);
            }
        }
        for (a, &b) in acc[n..].iter_mut().zip(&x[n..]) {
            *a = half_add(b, *a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(f32_to_f16(0.0), 0x0000);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(65519.99), 0x7bff);
        assert_eq!(f32_to_f16_saturating(1e9), 0x7bff);
        assert_eq!(f32_to_f16_saturating(-1e9), 0xfbff);
        assert_eq!(f32_to_f16_saturating(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(2.0f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(2.0f32.powi(-25)), 0x0000); // tie to even (0)
        assert_eq!(f32_to_f16(1.5 * 2.0f32.powi(-24)), 0x0002); // tie to even (2)
        assert_eq!(f32_to_f16(2.0f32.powi(-14)), 0x0400);
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        assert_eq!(f16_to_f32(0x0001), 2.0f32.powi(-24));
        assert_eq!(f16_to_f32(0xfbff), -65504.0);
    }

    /// The F16C kernels give the bits of the scalar definitions, on edge cases and on random
    /// values of every magnitude (tails of odd lengths included).
    #[test]
    fn vector_kernels_match_the_scalar_definitions() {
        let mut vals: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            65504.0,
            -65504.0,
            65519.99,
            65520.0,
            -65520.0,
            1e9,
            -1e9,
            f32::MAX,
            f32::MIN,
            2.0f32.powi(-24),
            2.0f32.powi(-25),
            1.5 * 2.0f32.powi(-24),
            2.0f32.powi(-14),
            2.0f32.powi(-15),
            1e-30,
            -1e-30,
            f32::MIN_POSITIVE,
            3.0e-8,
        ];
        let mut h = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            // Uniform bit patterns of finite floats: every exponent range.
            let x = f32::from_bits((h >> 32) as u32);
            if x.is_finite() {
                vals.push(x);
            }
        }
        for n in [vals.len(), vals.len() - 3, 7, 1] {
            let src = &vals[..n];
            let mut fast = vec![0u16; n];
            f32_to_f16_saturating_slice(src, &mut fast);
            let slow: Vec<u16> = src.iter().map(|&x| f32_to_f16_saturating(x)).collect();
            assert_eq!(fast, slow, "f32 -> f16, n = {n}");
            let mut back = vec![0f32; n];
            f16_to_f32_scaled_slice(&slow, 0.25, &mut back);
            for (b, &s) in back.iter().zip(&slow) {
                assert_eq!(b.to_bits(), (f16_to_f32(s) * 0.25).to_bits());
            }
            // Sums of pairs of halves (all finite: the encoder saturates).
            let other: Vec<u16> = slow.iter().rev().copied().collect();
            let mut acc = slow.clone();
            add_halves(&other, &mut acc);
            for i in 0..n {
                let want = half_add(other[i], slow[i]);
                assert_eq!(acc[i], want, "sum {i}: {:04x} + {:04x}", other[i], slow[i]);
            }
        }
    }
}

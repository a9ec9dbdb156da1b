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
}

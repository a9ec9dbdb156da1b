//! IEEE binary16 conversions of `baselines::fp16` against a reference computed in `f64`:
//! exhaustive over all 65,536 half bit patterns, and round-to-nearest-even on random `f32`,
//! on every midpoint between neighbouring halves and on the `f32` values next to each midpoint.

use rand::{Rng as _, RngCore, SeedableRng};
use vqsgd::baselines::fp16::{f16_to_f32, f32_to_f16, f32_to_f16_saturating, F16_MAX};

/// Random `f32` bit patterns checked (every exponent, NaN, infinities, f32 subnormals).
const RANDOM_BIT_PATTERNS: usize = 1_000_000;
/// Random `f32` with exponents around the half range (subnormal halves, overflow) checked.
const RANDOM_IN_RANGE: usize = 1_000_000;

/// Value of a finite half from its fields, in f64 (independent of the code under test).
fn half_value(h: u16) -> f64 {
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    let mag = if exp == 0 {
        man * 2f64.powi(-24)
    } else {
        (1024.0 + man) * 2f64.powi(exp - 25)
    };
    if h & 0x8000 != 0 {
        -mag
    } else {
        mag
    }
}

/// Non-negative finite halves in increasing order, plus 65536 at index 0x7c00 (where rounding
/// past the largest finite half lands: the infinity pattern).
fn table() -> Vec<f64> {
    let mut t: Vec<f64> = (0..0x7c00u16).map(half_value).collect();
    t.push(65536.0);
    t
}

/// Reference f32 -> f16 for non-NaN input: nearest entry of the table, ties to the even pattern.
fn reference(t: &[f64], x: f32) -> u16 {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = f64::from(x).abs();
    if a >= 65536.0 {
        return sign | 0x7c00;
    }
    // Largest lo with t[lo] <= a.
    let lo = t.partition_point(|&v| v <= a) - 1;
    let h = if t[lo] == a {
        lo
    } else {
        let (dl, dh) = (a - t[lo], t[lo + 1] - a);
        if dl < dh || (dl == dh && lo % 2 == 0) {
            lo
        } else {
            lo + 1
        }
    };
    sign | h as u16
}

fn check(t: &[f64], x: f32) {
    let got = f32_to_f16(x);
    if x.is_nan() {
        assert!(
            got & 0x7c00 == 0x7c00 && got & 0x3ff != 0,
            "NaN {x:?} -> {got:#06x}"
        );
        assert_eq!(got & 0x8000 != 0, x.is_sign_negative());
        return;
    }
    let want = reference(t, x);
    assert_eq!(
        got,
        want,
        "f32 {x:e} (bits {:#010x}): got {got:#06x}, want {want:#06x}",
        x.to_bits()
    );
}

#[test]
fn every_half_decodes_exactly_and_round_trips() {
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        let exp = (h >> 10) & 0x1f;
        if exp == 0x1f {
            if h & 0x3ff == 0 {
                assert!(
                    f.is_infinite() && (f < 0.0) == (h & 0x8000 != 0),
                    "{h:#06x}"
                );
                assert_eq!(f32_to_f16(f), h);
            } else {
                assert!(f.is_nan(), "{h:#06x}");
                // Quiet NaNs round-trip exactly; signalling ones come back quieted.
                assert_eq!(f32_to_f16(f), h | 0x0200, "{h:#06x}");
            }
            continue;
        }
        assert_eq!(f64::from(f), half_value(h), "{h:#06x}");
        assert_eq!(f.is_sign_negative(), h & 0x8000 != 0, "{h:#06x}");
        assert_eq!(f32_to_f16(f), h, "round trip of {h:#06x}");
    }
}

#[test]
fn rounding_matches_reference_on_midpoints_and_neighbours() {
    let t = table();
    for i in 0..0x7c00usize {
        // Midpoints are exact in f32 (halves have 11 significant bits, midpoints 12).
        let mid = ((t[i] + t[i + 1]) / 2.0) as f32;
        assert_eq!(f64::from(mid), (t[i] + t[i + 1]) / 2.0);
        for x in [
            mid,
            f32::from_bits(mid.to_bits() - 1),
            f32::from_bits(mid.to_bits() + 1),
        ] {
            check(&t, x);
            check(&t, -x);
        }
        check(&t, t[i] as f32);
    }
    assert_eq!(f32_to_f16(65520.0), 0x7c00, "65520 ties to even: infinity");
}

#[test]
fn rounding_matches_reference_on_random_f32() {
    let t = table();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x0f16);
    for _ in 0..RANDOM_BIT_PATTERNS {
        check(&t, f32::from_bits(rng.next_u32()));
    }
    for _ in 0..RANDOM_IN_RANGE {
        // Exponents from below half the smallest subnormal to above the largest half.
        let e = rng.random_range(-27..=17);
        let m: f32 = rng.random_range(1.0..2.0);
        let x = m * 2f32.powi(e);
        check(&t, if rng.random::<bool>() { x } else { -x });
    }
}

#[test]
fn saturation_only_replaces_overflow() {
    let t = table();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    for _ in 0..100_000 {
        let x = f32::from_bits(rng.next_u32());
        let h = f32_to_f16_saturating(x);
        if x.is_finite() && f64::from(x).abs() >= 65520.0 {
            assert_eq!(f16_to_f32(h), F16_MAX.copysign(x), "{x:e}");
        } else if !x.is_nan() {
            assert_eq!(h, reference(&t, x), "{x:e}");
        }
    }
}

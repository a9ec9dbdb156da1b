//! Behaviour of the baseline compressors (spec `vqsgd.md` section 9): payload lengths against
//! the documented formulas, Monte Carlo unbiasedness of QSGD and TernGrad, the QSGD variance
//! bound, exact round trips, majority vote, corrupted payloads and object safety.

use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use vqsgd::baselines::{build, build_with_blocks};
use vqsgd::compress::{decode_one, Aggregation, Compressor, StepSeeds};
use vqsgd::config::{BlockSpec, CompressionConfig, Scheme};
use vqsgd::Error;

/// Every baseline scheme.
const SCHEMES: [Scheme; 6] = [
    Scheme::Fp16,
    Scheme::Qsgd,
    Scheme::Terngrad,
    Scheme::Signsgd,
    Scheme::EfSignsgd,
    Scheme::Topk,
];
/// Monte Carlo draws per unbiasedness check.
const MC_DRAWS: usize = 20_000;
/// A sample mean may differ from the true mean by this many standard errors.
const MAX_STANDARD_ERRORS: f64 = 5.0;
/// Slack for f32 rounding of decoded values, relative to the bucket norm / scale.
const F32_SLACK: f64 = 1e-5;

fn cfg(scheme: Scheme) -> CompressionConfig {
    CompressionConfig {
        scheme,
        ..Default::default()
    }
}

fn seeds(private: u64) -> StepSeeds {
    StepSeeds {
        shared: 11,
        private,
    }
}

fn gaussian(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..d).map(|_| StandardNormal.sample(&mut rng)).collect()
}

fn roundtrip(c: &mut dyn Compressor, g: &[f32], private: u64) -> (Vec<u8>, Vec<f32>) {
    let mut payload = Vec::new();
    c.encode(g, seeds(private), &mut payload).unwrap();
    let mut out = vec![f32::NAN; g.len()];
    decode_one(c, &payload, 11, &mut out).unwrap();
    (payload, out)
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Per-coordinate check that `mean` (of `n` draws) is within MAX_STANDARD_ERRORS standard errors
/// of `target`, given the exact per-coordinate variance; `slack` absorbs f32 rounding.
fn check_unbiased(
    mean: &[f64],
    target: &[f32],
    var: &[f64],
    n: usize,
    slack: f64,
) -> Result<(), String> {
    for i in 0..mean.len() {
        let se = (var[i] / n as f64).sqrt();
        let err = (mean[i] - f64::from(target[i])).abs();
        if err > MAX_STANDARD_ERRORS * se + slack {
            return Err(format!(
                "coordinate {i}: mean {} vs {} (|err| {err:e}, standard error {se:e})",
                mean[i], target[i]
            ));
        }
    }
    Ok(())
}

/// Mean of MC_DRAWS decodes with distinct private seeds.
fn mc_mean(c: &mut dyn Compressor, g: &[f32]) -> Vec<f64> {
    let mut mean = vec![0.0f64; g.len()];
    let mut payload = Vec::new();
    let mut out = vec![0.0; g.len()];
    for t in 0..MC_DRAWS {
        c.encode(g, seeds(t as u64 * 7919 + 1), &mut payload)
            .unwrap();
        decode_one(c, &payload, 0, &mut out).unwrap();
        for (m, &o) in mean.iter_mut().zip(&out) {
            *m += f64::from(o);
        }
    }
    mean.iter_mut().for_each(|m| *m /= MC_DRAWS as f64);
    mean
}

fn bucket_norms(g: &[f32], bucket: usize) -> Vec<f64> {
    g.chunks(bucket)
        .map(|b| {
            b.iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// Exact per-coordinate QSGD variance (||v||/s)^2 p (1 - p), p = frac(s |v_i| / ||v||).
fn qsgd_var(g: &[f32], s: usize, bucket: usize) -> Vec<f64> {
    let norms = bucket_norms(g, bucket);
    g.iter()
        .enumerate()
        .map(|(i, &x)| {
            let n = norms[i / bucket];
            if n == 0.0 {
                return 0.0;
            }
            let r = s as f64 * f64::from(x).abs() / n;
            let p = r - r.floor();
            (n / s as f64).powi(2) * p * (1.0 - p)
        })
        .collect()
}

#[test]
fn payload_lengths_match_the_formulas() {
    for d in [1usize, 7, 8, 13, 100, 1037] {
        let g = gaussian(d, d as u64);
        for scheme in SCHEMES {
            for (bucket, levels, k) in [(512, 4, 0), (0, 1, 1), (5, 3, 0), (64, 100, 0), (3, 8, 2)]
            {
                let mut c = cfg(scheme);
                c.bucket = bucket;
                c.levels = levels;
                c.k = k.min(d);
                c.k_ratio = 0.1;
                let nb = if bucket == 0 { 1 } else { ceil_div(d, bucket) };
                let w = ((levels + 1) as f64).log2().ceil() as usize;
                let topk = if c.k > 0 {
                    c.k
                } else {
                    (0.1 * d as f64).ceil() as usize
                };
                let want = match scheme {
                    Scheme::Fp16 => 2 * d,
                    Scheme::Qsgd => 4 * nb + ceil_div(d * (1 + w), 8),
                    Scheme::Terngrad => 4 * nb + ceil_div(2 * d, 8),
                    Scheme::Signsgd => ceil_div(d, 8),
                    Scheme::EfSignsgd => 4 + ceil_div(d, 8),
                    Scheme::Topk => 8 * topk,
                    _ => unreachable!(),
                };
                let mut comp = build(&c, d).unwrap();
                assert_eq!(comp.dim(), d);
                assert_eq!(
                    comp.fixed_payload_len(),
                    Some(want),
                    "{scheme:?} d={d} {bucket}"
                );
                assert_eq!(comp.max_payload_len(), want);
                let (payload, _) = roundtrip(comp.as_mut(), &g, 3);
                assert_eq!(
                    payload.len(),
                    want,
                    "{scheme:?} d={d} bucket={bucket} s={levels}"
                );
            }
        }
    }
}

#[test]
fn blocked_payload_lengths() {
    // Blocks of 10 over 25 coordinates: blocks 10, 10, 5; QSGD buckets of 4 inside each block.
    let d = 25;
    let g = gaussian(d, 1);
    let mut c = cfg(Scheme::Qsgd);
    c.block = BlockSpec::Size(10);
    c.bucket = 4;
    c.levels = 4;
    let mut q = build(&c, d).unwrap();
    assert_eq!(
        roundtrip(q.as_mut(), &g, 1).0.len(),
        4 * (3 + 3 + 2) + ceil_div(25 * 4, 8)
    );
    c.scheme = Scheme::EfSignsgd;
    let mut e = build(&c, d).unwrap();
    assert_eq!(
        roundtrip(e.as_mut(), &g, 1).0.len(),
        4 * 3 + ceil_div(25, 8)
    );
    c.scheme = Scheme::Topk;
    c.k = 7;
    let mut t = build(&c, d).unwrap();
    assert_eq!(roundtrip(t.as_mut(), &g, 1).0.len(), 8 * (7 + 7 + 5));
    let mut t = build_with_blocks(&c, &[3, 20, 2]).unwrap();
    assert_eq!(t.dim(), 25);
    assert_eq!(roundtrip(t.as_mut(), &g, 1).0.len(), 8 * (3 + 7 + 2));
}

#[test]
fn qsgd_is_unbiased() {
    let d = 40;
    let bucket = 16;
    let g = gaussian(d, 5);
    for s in [1usize, 3, 8] {
        let mut c = cfg(Scheme::Qsgd);
        c.levels = s;
        c.bucket = bucket;
        let mut q = build(&c, d).unwrap();
        let mean = mc_mean(q.as_mut(), &g);
        let var = qsgd_var(&g, s, bucket);
        let norm_max = bucket_norms(&g, bucket).into_iter().fold(0.0, f64::max);
        check_unbiased(&mean, &g, &var, MC_DRAWS, F32_SLACK * norm_max)
            .unwrap_or_else(|e| panic!("qsgd s={s}: {e}"));
    }
}

#[test]
fn terngrad_is_unbiased() {
    let d = 40;
    let bucket = 16;
    let mut g = gaussian(d, 6);
    g[3] = 0.0;
    let mut c = cfg(Scheme::Terngrad);
    c.bucket = bucket;
    let mut t = build(&c, d).unwrap();
    let mean = mc_mean(t.as_mut(), &g);
    let scales: Vec<f64> = g
        .chunks(bucket)
        .map(|b| b.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs())))
        .collect();
    let var: Vec<f64> = g
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let a = f64::from(x).abs();
            a * (scales[i / bucket] - a)
        })
        .collect();
    check_unbiased(&mean, &g, &var, MC_DRAWS, F32_SLACK * 4.0).unwrap();
}

#[test]
fn the_unbiasedness_check_can_fail() {
    // A mean shifted by 6 standard errors in one coordinate, or a biased compressor, is caught.
    let target = [1.0f32, -2.0];
    let var = [0.25, 0.25];
    let se = (0.25f64 / MC_DRAWS as f64).sqrt();
    assert!(check_unbiased(&[1.0 + 4.0 * se, -2.0], &target, &var, MC_DRAWS, 0.0).is_ok());
    assert!(check_unbiased(&[1.0 + 6.0 * se, -2.0], &target, &var, MC_DRAWS, 0.0).is_err());
    // Top-k (biased) fails it even with QSGD's variance as the tolerance.
    let g = gaussian(40, 5);
    let mut c = cfg(Scheme::Topk);
    c.k = 10;
    let mut t = build(&c, 40).unwrap();
    let (_, out) = roundtrip(t.as_mut(), &g, 1);
    let mean: Vec<f64> = out.iter().map(|&x| f64::from(x)).collect();
    assert!(check_unbiased(&mean, &g, &qsgd_var(&g, 1, 16), MC_DRAWS, 0.0).is_err());
}

#[test]
fn qsgd_variance_within_the_paper_bound() {
    // Gaussian and flat vectors (flat is the worst case for small s), several s and buckets.
    let mut flat = vec![1.0f32; 64];
    flat.iter_mut().step_by(3).for_each(|x| *x = -1.0);
    for g in [gaussian(64, 9), flat] {
        for (s, bucket) in [(1usize, 64usize), (2, 16), (4, 64), (16, 8), (1, 4)] {
            let mut c = cfg(Scheme::Qsgd);
            c.levels = s;
            c.bucket = bucket;
            let mut q = build(&c, g.len()).unwrap();
            let var = qsgd_var(&g, s, bucket);
            let norms = bucket_norms(&g, bucket);
            // Analytic E||Q - v||^2 per bucket against min(n/s^2, sqrt(n)/s) ||v||^2.
            let n = bucket as f64;
            let factor = (n / (s * s) as f64).min(n.sqrt() / s as f64);
            for (b, chunk) in var.chunks(bucket).enumerate() {
                let e: f64 = chunk.iter().sum();
                assert!(
                    e <= factor * norms[b].powi(2) * (1.0 + 1e-9),
                    "s={s} b={b}: {e}"
                );
            }
            // Monte Carlo E||Q - v||^2 agrees with the analytic value within 5 standard errors.
            let want: f64 = var.iter().sum();
            let (mut sum, mut sum2) = (0.0f64, 0.0f64);
            let draws = 4000;
            for t in 0..draws {
                let (_, out) = roundtrip(q.as_mut(), &g, t + 100);
                let e: f64 = out
                    .iter()
                    .zip(&g)
                    .map(|(&o, &x)| (f64::from(o) - f64::from(x)).powi(2))
                    .sum();
                sum += e;
                sum2 += e * e;
            }
            let mean = sum / draws as f64;
            let se = ((sum2 / draws as f64 - mean * mean).max(0.0) / draws as f64).sqrt();
            assert!(
                (mean - want).abs() <= MAX_STANDARD_ERRORS * se + 1e-6 * want.max(1.0),
                "s={s} bucket={bucket}: MC {mean} vs analytic {want} (se {se})"
            );
        }
    }
}

#[test]
fn qsgd_and_terngrad_decode_to_neighbouring_levels() {
    let d = 50;
    let g = gaussian(d, 12);
    let s = 5;
    let mut c = cfg(Scheme::Qsgd);
    c.levels = s;
    c.bucket = 0;
    let mut q = build(&c, d).unwrap();
    let n = bucket_norms(&g, d)[0];
    for t in 0..50 {
        let (payload, out) = roundtrip(q.as_mut(), &g, t);
        let sent = f64::from(f32::from_le_bytes(payload[..4].try_into().unwrap()));
        assert!(sent >= n && sent <= n * (1.0 + 1e-6), "norm {sent} vs {n}");
        for (&o, &x) in out.iter().zip(&g) {
            let r = s as f64 * f64::from(x).abs() / sent;
            let lv = f64::from(o).abs() * s as f64 / sent;
            assert!(
                (lv - r.floor()).abs() < 1e-4 || (lv - r.ceil()).abs() < 1e-4,
                "{lv} {r}"
            );
            assert!(o == 0.0 || (o < 0.0) == (x < 0.0));
        }
    }
    let mut t = build(&cfg(Scheme::Terngrad), d).unwrap();
    let m = g.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    let (payload, out) = roundtrip(t.as_mut(), &g, 1);
    assert_eq!(f32::from_le_bytes(payload[..4].try_into().unwrap()), m);
    for (&o, &x) in out.iter().zip(&g) {
        assert!(o == 0.0 || o == m.copysign(x), "{o} {x}");
    }
}

#[test]
fn deterministic_given_seeds() {
    let g = gaussian(300, 2);
    for scheme in SCHEMES {
        let mut c = build(&cfg(scheme), 300).unwrap();
        let (a, _) = roundtrip(c.as_mut(), &g, 42);
        let (b, _) = roundtrip(c.as_mut(), &g, 42);
        assert_eq!(a, b, "{scheme:?}");
        if matches!(scheme, Scheme::Qsgd | Scheme::Terngrad) {
            assert_ne!(a, roundtrip(c.as_mut(), &g, 43).0, "{scheme:?}");
        }
    }
}

#[test]
fn zero_gradient_decodes_to_zero() {
    for scheme in SCHEMES {
        if scheme == Scheme::Signsgd {
            continue; // a zero coordinate votes +1
        }
        let mut c = build(&cfg(scheme), 20).unwrap();
        let (_, out) = roundtrip(c.as_mut(), &[0.0; 20], 1);
        assert!(out.iter().all(|&x| x == 0.0), "{scheme:?}: {out:?}");
    }
}

#[test]
fn fp16_round_trip_and_saturation() {
    let g = [1.0f32, -0.333, 1e-6, 7e4, -1e9, 65504.0, 0.0];
    let mut c = build(&cfg(Scheme::Fp16), g.len()).unwrap();
    let (_, out) = roundtrip(c.as_mut(), &g, 0);
    assert_eq!(out[0], 1.0);
    assert!((out[1] + 0.333).abs() < 0.333 * 1e-3);
    assert!((out[2] - 1e-6).abs() < 6e-8); // subnormal half: absolute precision 2^-24
    assert_eq!(&out[3..], &[65504.0, -65504.0, 65504.0, 0.0]);
}

#[test]
fn signsgd_round_trip_and_majority_vote() {
    let d = 21;
    let mut c = build(&cfg(Scheme::Signsgd), d).unwrap();
    assert_eq!(c.aggregation(), Aggregation::MajorityVote);
    let mut g = gaussian(d, 3);
    g[0] = 0.0;
    g[1] = -0.0;
    let (_, out) = roundtrip(c.as_mut(), &g, 0);
    for (&o, &x) in out.iter().zip(&g) {
        assert_eq!(o, if x < 0.0 { -1.0 } else { 1.0 });
    }
    // 5 ranks: the aggregate is the sign of the sum of signs (never 0 with an odd count).
    for ranks in [5usize, 4] {
        let grads: Vec<Vec<f32>> = (0..ranks).map(|r| gaussian(d, 100 + r as u64)).collect();
        let payloads: Vec<Vec<u8>> = grads
            .iter()
            .map(|g| {
                let mut p = Vec::new();
                c.encode(g, seeds(0), &mut p).unwrap();
                p
            })
            .collect();
        c.begin_decode(0);
        for p in &payloads {
            c.decode_add(p, 1.0 / ranks as f32).unwrap();
        }
        let mut out = vec![9.0; d];
        c.finish_decode(&mut out);
        let mut ties = 0;
        for i in 0..d {
            let sum: i32 = grads.iter().map(|g| if g[i] < 0.0 { -1 } else { 1 }).sum();
            assert_eq!(out[i], sum.signum() as f32, "ranks={ranks} i={i}");
            ties += usize::from(sum == 0);
        }
        if ranks == 4 {
            assert!(ties > 0, "the 4-rank case should exercise ties");
        }
    }
}

#[test]
fn ef_signsgd_scale_is_mean_abs() {
    let d = 37;
    let g = gaussian(d, 4);
    let mut c = build(&cfg(Scheme::EfSignsgd), d).unwrap();
    let (payload, out) = roundtrip(c.as_mut(), &g, 0);
    let scale = f32::from_le_bytes(payload[..4].try_into().unwrap());
    let mean: f64 = g.iter().map(|&x| f64::from(x).abs()).sum::<f64>() / d as f64;
    assert_eq!(scale, mean as f32);
    for (&o, &x) in out.iter().zip(&g) {
        assert_eq!(o, if x < 0.0 { -scale } else { scale });
    }
    // Weighted sum of two payloads.
    let h: Vec<f32> = g.iter().map(|x| -2.0 * x).collect();
    let mut ph = Vec::new();
    c.encode(&h, seeds(0), &mut ph).unwrap();
    c.begin_decode(0);
    c.decode_add(&payload, 0.5).unwrap();
    c.decode_add(&ph, 0.5).unwrap();
    let mut agg = vec![0.0; d];
    c.finish_decode(&mut agg);
    for (&a, &o) in agg.iter().zip(&out) {
        assert!((a - (-0.5 * o)).abs() <= 1e-6 * scale, "{a} {o}");
    }
}

/// Brute-force top-k: full sort by |g| descending, then index ascending.
fn true_topk(g: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..g.len()).collect();
    idx.sort_by(|&a, &b| g[b].abs().partial_cmp(&g[a].abs()).unwrap().then(a.cmp(&b)));
    let mut top = idx[..k].to_vec();
    top.sort();
    top
}

#[test]
fn topk_picks_the_true_top_k() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
    for trial in 0..50 {
        let d = rng.random_range(1..300);
        // Few distinct magnitudes so that ties are common.
        let g: Vec<f32> = (0..d)
            .map(|_| rng.random_range(-4i32..=4) as f32 * if trial % 2 == 0 { 1.0 } else { 0.37 })
            .collect();
        let k = rng.random_range(1..=d);
        let mut c = cfg(Scheme::Topk);
        c.k = k;
        let mut t = build(&c, d).unwrap();
        let (payload, out) = roundtrip(t.as_mut(), &g, 0);
        let want = true_topk(&g, k);
        let got: Vec<usize> = payload
            .chunks_exact(8)
            .map(|p| u32::from_le_bytes(p[..4].try_into().unwrap()) as usize)
            .collect();
        assert_eq!(got, want, "d={d} k={k}");
        for i in 0..d {
            assert_eq!(out[i], if want.contains(&i) { g[i] } else { 0.0 });
        }
    }
    // k_ratio: ceil(0.05 * 101) = 6.
    let mut c = cfg(Scheme::Topk);
    c.k_ratio = 0.05;
    assert_eq!(build(&c, 101).unwrap().fixed_payload_len(), Some(48));
}

#[test]
fn topk_k_larger_than_dim_is_a_config_error() {
    let mut c = cfg(Scheme::Topk);
    c.k = 11;
    let e = build(&c, 10).err().unwrap();
    assert!(
        matches!(e, Error::Config { ref key, .. } if key == "compression.k"),
        "{e}"
    );
    c.scheme = Scheme::Qsgd;
    c.levels = 0;
    assert!(build(&c, 10).is_err());
}

#[test]
fn encode_rejects_bad_gradients() {
    for scheme in SCHEMES {
        let mut c = build(&cfg(scheme), 4).unwrap();
        let mut out = vec![1u8];
        assert!(
            c.encode(&[1.0; 3], seeds(0), &mut out).is_err(),
            "{scheme:?}"
        );
        assert!(out.is_empty(), "encode clears out");
        let e = c
            .encode(&[1.0, f32::NAN, 0.0, 0.0], seeds(0), &mut out)
            .unwrap_err();
        assert!(matches!(e, Error::Numerical(_)), "{scheme:?}: {e}");
        assert!(c
            .encode(&[1.0, f32::INFINITY, 0.0, 0.0], seeds(0), &mut out)
            .is_err());
    }
}

/// Decoding `bad` fails with a payload error and leaves the aggregate as it was.
fn assert_rejected(c: &mut dyn Compressor, good: &[u8], bad: &[u8], what: &str) {
    let d = c.dim();
    let mut want = vec![0.0; d];
    decode_one(c, good, 0, &mut want).unwrap();
    c.begin_decode(0);
    c.decode_add(good, 1.0).unwrap();
    let e = c.decode_add(bad, 1.0).unwrap_err();
    assert!(
        matches!(e, Error::Payload(_)),
        "{}: {what}: {e}",
        c.info().scheme
    );
    let mut got = vec![0.0; d];
    c.finish_decode(&mut got);
    assert_eq!(got, want, "{}: {what}: aggregate changed", c.info().scheme);
}

#[test]
fn corrupted_payloads_are_errors() {
    let d = 13; // not a multiple of 8: every bit stream has padding
    let g = gaussian(d, 21);
    for scheme in SCHEMES {
        let mut c = cfg(scheme);
        c.levels = 2; // s + 1 = 3 is not a power of two: level 3 is representable and invalid
        c.bucket = 5;
        c.k = 4;
        let mut comp = build(&c, d).unwrap();
        let (good, _) = roundtrip(comp.as_mut(), &g, 5);
        let c = comp.as_mut();
        assert_rejected(c, &good, &good[..good.len() - 1], "truncated");
        assert_rejected(c, &good, &[], "empty");
        let mut extra = good.clone();
        extra.push(0);
        assert_rejected(c, &good, &extra, "extra byte");
        let mut bad = good.clone();
        match scheme {
            Scheme::Fp16 => {
                bad[7] = 0x7e; // coordinate 3 := NaN
                assert_rejected(c, &good, &bad, "NaN half");
                bad[7] = 0xfc;
                bad[6] = 0;
                assert_rejected(c, &good, &bad, "-inf half");
            }
            Scheme::Qsgd | Scheme::Terngrad | Scheme::EfSignsgd => {
                // Second bucket's scale (EF-signSGD has a single block scale).
                let at = if scheme == Scheme::EfSignsgd { 0 } else { 4 };
                for v in [f32::NAN, f32::INFINITY, -1.0] {
                    bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    assert_rejected(c, &good, &bad, &format!("scale {v}"));
                }
                let mut pad = good.clone();
                *pad.last_mut().unwrap() |= 0x80;
                assert_rejected(c, &good, &pad, "dirty padding");
                let nb = if scheme == Scheme::EfSignsgd { 1 } else { 3 };
                let mut code = good.clone();
                // First coordinate's code := all ones (qsgd: level 3 > s = 2; terngrad: code 3).
                code[4 * nb] |= if scheme == Scheme::Qsgd { 0x07 } else { 0x03 };
                if scheme != Scheme::EfSignsgd {
                    assert_rejected(c, &good, &code, "invalid code");
                }
            }
            Scheme::Signsgd => {
                *bad.last_mut().unwrap() |= 0x80;
                assert_rejected(c, &good, &bad, "dirty padding");
            }
            Scheme::Topk => {
                bad[8..12].copy_from_slice(&(d as u32).to_le_bytes());
                assert_rejected(c, &good, &bad, "index >= dim");
                let mut bad = good.clone();
                bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
                assert_rejected(c, &good, &bad, "index u32::MAX");
                let mut bad = good.clone();
                let first: [u8; 4] = bad[0..4].try_into().unwrap();
                bad[8..12].copy_from_slice(&first);
                assert_rejected(c, &good, &bad, "duplicate index");
                let mut bad = good.clone();
                bad.swap(0, 8);
                bad.swap(1, 9);
                bad.swap(2, 10);
                bad.swap(3, 11);
                assert_rejected(c, &good, &bad, "unsorted indices");
                let mut bad = good.clone();
                bad[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
                assert_rejected(c, &good, &bad, "NaN value");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(99);
    for scheme in SCHEMES {
        let mut c = cfg(scheme);
        c.levels = 2;
        c.bucket = 5;
        c.k = 4;
        let mut comp = build(&c, 13).unwrap();
        let len = comp.fixed_payload_len().unwrap();
        comp.begin_decode(0);
        for _ in 0..2000 {
            let n = if rng.random::<bool>() {
                len
            } else {
                rng.random_range(0..2 * len + 2)
            };
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = comp.decode_add(&bytes, 1.0);
        }
    }
}

#[test]
fn every_scheme_is_an_object_safe_send_box() {
    let mut boxes: Vec<Box<dyn Compressor>> = SCHEMES
        .iter()
        .map(|&s| build(&cfg(s), 64).unwrap())
        .collect();
    let g = gaussian(64, 1);
    let handle = std::thread::spawn(move || {
        for c in boxes.iter_mut() {
            let info = c.info();
            assert!(!info.scheme.is_empty() && !info.params.is_empty());
            assert_eq!(
                info.unbiased,
                matches!(info.scheme.as_str(), "qsgd" | "terngrad")
            );
            let mut p = Vec::new();
            c.encode(&g, seeds(1), &mut p).unwrap();
            assert_eq!(Some(p.len()), c.fixed_payload_len());
        }
        boxes.len()
    });
    assert_eq!(handle.join().unwrap(), SCHEMES.len());
    let names: Vec<String> = SCHEMES
        .iter()
        .map(|&s| build(&cfg(s), 8).unwrap().info().scheme)
        .collect();
    assert_eq!(
        names,
        ["fp16", "qsgd", "terngrad", "signsgd", "ef_signsgd", "topk"]
    );
}

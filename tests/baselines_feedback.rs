//! Error feedback (`vqsgd::feedback`) with the biased baselines: the memory is exactly
//! `p - decode(C(p))`, nothing is lost over time (`sum decoded = T g - memory`), the memory stays
//! bounded, and without feedback top-k would keep a constant relative error.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use vqsgd::baselines::build;
use vqsgd::compress::{decode_one, Compressor, StepSeeds};
use vqsgd::config::{CompressionConfig, Scheme};
use vqsgd::feedback::{needs_feedback, ErrorFeedback};

/// Steps of the constant-gradient experiment.
const STEPS: usize = 2000;
/// Tolerance of `sum decoded = T g - e` per step and unit of ||p||, for f32 rounding.
const ROUNDING_PER_STEP: f64 = 1e-6;

fn gaussian(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..d).map(|_| StandardNormal.sample(&mut rng)).collect()
}

fn norm(x: impl IntoIterator<Item = f64>) -> f64 {
    x.into_iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn compressor(scheme: Scheme, d: usize, k: usize) -> Box<dyn Compressor> {
    build(
        &CompressionConfig {
            scheme,
            k,
            ..Default::default()
        },
        d,
    )
    .unwrap()
}

/// Run `STEPS` steps of error feedback on the constant gradient `g`; check the memory identity
/// at every step and return (max ||e_t||, ||sum decoded - T g||, ||e_T||).
fn run_constant(scheme: Scheme, g: &[f32], k: usize) -> (f64, f64, f64) {
    let d = g.len();
    let mut c = compressor(scheme, d, k);
    let mut check = compressor(scheme, d, k); // independent decoder for the identity
    let mut ef = ErrorFeedback::new(d);
    let mut sum = vec![0.0f64; d];
    let mut payload = Vec::new();
    let mut decoded = vec![0.0f32; d];
    let mut max_mem = 0.0f64;
    for t in 0..STEPS {
        let p = ef.compensate(g).unwrap().to_vec();
        let seeds = StepSeeds {
            shared: t as u64,
            private: t as u64,
        };
        c.encode(&p, seeds, &mut payload).unwrap();
        ef.update(c.as_mut(), &payload, seeds.shared).unwrap();
        decode_one(check.as_mut(), &payload, seeds.shared, &mut decoded).unwrap();
        for i in 0..d {
            assert_eq!(
                ef.memory()[i].to_bits(),
                (p[i] - decoded[i]).to_bits(),
                "{scheme:?} step {t} coordinate {i}: memory is not p - decoded"
            );
            sum[i] += f64::from(decoded[i]);
        }
        assert_eq!(ef.last_decoded(), &decoded[..]);
        let mem = norm(ef.memory().iter().map(|&x| f64::from(x)));
        max_mem = max_mem.max(mem);
        // Nothing is lost: sum decoded = (t + 1) g - e_t, up to f32 rounding.
        let resid = norm(
            sum.iter()
                .zip(g)
                .map(|(&s, &x)| s - (t + 1) as f64 * f64::from(x)),
        );
        let pn = norm(p.iter().map(|&x| f64::from(x)));
        assert!(
            (resid - mem).abs() <= ROUNDING_PER_STEP * (t + 1) as f64 * pn.max(1.0),
            "{scheme:?} step {t}: ||sum - T g|| = {resid} but ||e|| = {mem}"
        );
    }
    let resid = norm(
        sum.iter()
            .zip(g)
            .map(|(&s, &x)| s - STEPS as f64 * f64::from(x)),
    );
    let last = norm(ef.memory().iter().map(|&x| f64::from(x)));
    (max_mem, resid, last)
}

#[test]
fn topk1_with_feedback_recovers_the_sum() {
    let d = 10;
    let g = gaussian(d, 1);
    let gn = norm(g.iter().map(|&x| f64::from(x)));
    let (max_mem, resid, last) = run_constant(Scheme::Topk, &g, 1);
    // Top-1 releases a coordinate once its accumulated value is the largest, so each residual
    // coordinate stays below about d * max|g_i|: the memory is bounded independently of T.
    assert!(
        max_mem <= d as f64 * gn,
        "memory grew to {max_mem} (||g|| = {gn})"
    );
    eprintln!("top-1: max ||e|| {max_mem:.3}, final ||e|| {last:.3}, ||g|| {gn:.3}");
    let rel = resid / (STEPS as f64 * gn);
    assert!(rel <= d as f64 / STEPS as f64, "relative error {rel}");
    // Without feedback, top-1 of a constant g always sends the same coordinate: the relative
    // error of the sum stays sqrt(1 - max g_i^2 / ||g||^2), far above the feedback one.
    let mut c = compressor(Scheme::Topk, d, 1);
    let mut payload = Vec::new();
    let mut out = vec![0.0; d];
    c.encode(
        &g,
        StepSeeds {
            shared: 0,
            private: 0,
        },
        &mut payload,
    )
    .unwrap();
    decode_one(c.as_mut(), &payload, 0, &mut out).unwrap();
    let no_ef = norm(
        out.iter()
            .zip(&g)
            .map(|(&o, &x)| f64::from(o) - f64::from(x)),
    ) / gn;
    assert!(
        no_ef > 0.5 && rel < no_ef / 50.0,
        "feedback {rel} vs none {no_ef}"
    );
}

#[test]
fn ef_signsgd_with_feedback_recovers_the_sum() {
    let d = 33;
    let g = gaussian(d, 2);
    let gn = norm(g.iter().map(|&x| f64::from(x)));
    let (max_mem, resid, _) = run_constant(Scheme::EfSignsgd, &g, 0);
    assert!(max_mem <= d as f64 * gn, "memory grew to {max_mem}");
    assert!(resid / (STEPS as f64 * gn) <= d as f64 / STEPS as f64);
}

#[test]
fn topk_memory_is_zero_exactly_on_the_sent_coordinates() {
    let d = 50;
    let mut c = compressor(Scheme::Topk, d, 5);
    let mut ef = ErrorFeedback::new(d);
    let mut payload = Vec::new();
    for t in 0..20 {
        let g = gaussian(d, 100 + t);
        let p = ef.compensate(&g).unwrap().to_vec();
        c.encode(
            &p,
            StepSeeds {
                shared: t,
                private: t,
            },
            &mut payload,
        )
        .unwrap();
        ef.update(c.as_mut(), &payload, t).unwrap();
        let sent: Vec<usize> = payload
            .chunks_exact(8)
            .map(|q| u32::from_le_bytes(q[..4].try_into().unwrap()) as usize)
            .collect();
        for (i, (&e, &pi)) in ef.memory().iter().zip(&p).enumerate() {
            let want = if sent.contains(&i) { 0.0 } else { pi };
            assert_eq!(e, want, "step {t} i {i}");
        }
    }
}

#[test]
fn misuse_and_bad_payloads_leave_the_memory_alone() {
    let d = 8;
    let mut c = compressor(Scheme::Topk, d, 2);
    let mut ef = ErrorFeedback::new(d);
    let mut payload = Vec::new();
    assert!(
        ef.update(c.as_mut(), &[], 0).is_err(),
        "update before compensate"
    );
    let g = gaussian(d, 3);
    let p = ef.compensate(&g).unwrap().to_vec();
    c.encode(
        &p,
        StepSeeds {
            shared: 0,
            private: 0,
        },
        &mut payload,
    )
    .unwrap();
    assert!(ef.update(c.as_mut(), &payload[..8], 0).is_err());
    assert_eq!(ef.memory(), &[0.0; 8]);
    let mut other = compressor(Scheme::Topk, d + 1, 2);
    assert!(ef.update(other.as_mut(), &payload, 0).is_err());
    ef.update(c.as_mut(), &payload, 0).unwrap();
    assert!(
        ef.update(c.as_mut(), &payload, 0).is_err(),
        "a second update needs a new compensate"
    );
}

#[test]
fn restored_memory_continues_identically() {
    let d = 20;
    let steps = 10;
    let run = |restore_at: Option<usize>| {
        let mut c = compressor(Scheme::EfSignsgd, d, 0);
        let mut ef = ErrorFeedback::new(d);
        let mut payload = Vec::new();
        for t in 0..steps {
            if restore_at == Some(t) {
                let saved = ef.memory().to_vec();
                ef = ErrorFeedback::new(d);
                ef.set_memory(&saved).unwrap();
            }
            let p = ef.compensate(&gaussian(d, t as u64)).unwrap().to_vec();
            c.encode(
                &p,
                StepSeeds {
                    shared: 0,
                    private: 0,
                },
                &mut payload,
            )
            .unwrap();
            ef.update(c.as_mut(), &payload, 0).unwrap();
        }
        ef.memory().to_vec()
    };
    assert_eq!(run(None), run(Some(4)));
}

#[test]
fn feedback_is_for_the_biased_schemes() {
    assert!(needs_feedback(Scheme::Topk) && needs_feedback(Scheme::EfSignsgd));
    for s in [
        Scheme::Qsgd,
        Scheme::Terngrad,
        Scheme::Fp16,
        Scheme::Signsgd,
        Scheme::Dense,
    ] {
        assert!(!needs_feedback(s), "{s:?}");
    }
}

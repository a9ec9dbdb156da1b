//! Payload tests of the vqSGD schemes (spec `vqsgd.md` sections 1, 6, 8): lengths against the
//! formula, coding round trips, zero gradients, aggregation, corrupted payloads, config errors.

use rand::{Rng as _, SeedableRng};
use vqsgd::compress::{decode_one, Compressor, StepSeeds};
use vqsgd::config::{BlockSpec, Coding, CompressionConfig, Scheme};
use vqsgd::quant;
use vqsgd::rng::Rng;
use vqsgd::Error;

fn cfg(scheme: Scheme) -> CompressionConfig {
    CompressionConfig {
        scheme,
        ..Default::default()
    }
}

fn grad(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..d).map(|_| (rng.random::<f64>() - 0.5) as f32).collect()
}

const SEEDS: StepSeeds = StepSeeds {
    shared: 5,
    private: 6,
};

/// Every scheme/coding combination worth checking, with its dimension.
fn all_configs() -> Vec<(String, CompressionConfig)> {
    let mut v = Vec::new();
    for coding in [Coding::Fixed, Coding::Rice] {
        for (name, scheme, k, rotate) in [
            ("cp", Scheme::CrossPolytope, 0, false),
            ("simplex", Scheme::Simplex, 0, false),
            ("hadamard", Scheme::Hadamard, 0, false),
            ("sparse", Scheme::Sparse, 3, false),
            ("sparse-big-k", Scheme::Sparse, 40, false),
            ("sparse-rot", Scheme::Sparse, 60, true),
        ] {
            for s in [1usize, 3] {
                let mut c = cfg(scheme);
                c.k = k;
                c.rotate = rotate;
                c.coding = coding;
                c.repetitions = s;
                c.block = BlockSpec::Size(100);
                v.push((format!("{name} s={s} {coding:?}"), c));
            }
        }
    }
    v
}

#[test]
fn fixed_payload_length_matches_the_formula() {
    // (scheme, d, s, k, block) -> bits per block: 32 + s * k * ceil(log2 m).
    let cases: Vec<(Scheme, usize, usize, usize, usize, u64)> = vec![
        // cross-polytope: m = 2d, d = 1000 -> 11 bits.
        (Scheme::CrossPolytope, 1000, 1, 0, 1000, 32 + 11),
        (Scheme::CrossPolytope, 1000, 7, 0, 1000, 32 + 7 * 11),
        // simplex: m = d + 1 = 1001 -> 10 bits.
        (Scheme::Simplex, 1000, 5, 0, 1000, 32 + 5 * 10),
        // hadamard: d' = 1024, m = 2048 -> 11 bits.
        (Scheme::Hadamard, 1000, 2, 0, 1000, 32 + 2 * 11),
        // sparse k = 30 <= sqrt(1000): no header, 30 * 11 bits.
        (Scheme::Sparse, 1000, 1, 30, 1000, 32 + 30 * 11),
    ];
    for (scheme, d, s, k, _, bits) in cases {
        let mut c = cfg(scheme);
        c.repetitions = s;
        c.k = k;
        let mut q = quant::build_vq(&c, d, &[]).unwrap();
        let want = bits.div_ceil(8) as usize;
        assert_eq!(q.fixed_payload_len(), Some(want), "{scheme:?} s {s}");
        assert_eq!(q.payload_bits(), Some(bits));
        let mut out = Vec::new();
        q.encode(&grad(d, 1), SEEDS, &mut out).unwrap();
        assert_eq!(out.len(), want);
    }
    // Blocks: 10 blocks of 100 (cp: 8 bits each) with s = 3: 10 * (32 + 24) bits = 70 bytes.
    let mut c = cfg(Scheme::CrossPolytope);
    c.repetitions = 3;
    c.block = BlockSpec::Size(100);
    let q = quant::build_vq(&c, 1000, &[]).unwrap();
    assert_eq!(q.fixed_payload_len(), Some(70));
    // Clipping drops the norms: 10 * 24 bits = 30 bytes.
    c.clip = 1.0;
    assert_eq!(
        quant::build_vq(&c, 1000, &[]).unwrap().fixed_payload_len(),
        Some(30)
    );
    // Sparse with the fallback header: d = 100, k = 40 -> 8 bits per sample; e_max with
    // q = ceil(39/8) = 5 is 7 -> e in 3 bits; k_b - 1 in 6 bits: 32 + 3 + 6 + 40 * 8 = 361.
    let mut c = cfg(Scheme::Sparse);
    c.k = 40;
    let mut q = quant::build_vq(&c, 100, &[]).unwrap();
    assert_eq!(q.payload_bits(), Some(361));
    let mut out = Vec::new();
    let mut g = grad(100, 2);
    g[7] = 50.0; // forces exact coordinates
    q.encode(&g, SEEDS, &mut out).unwrap();
    assert_eq!(out.len(), 46);
}

#[test]
fn every_config_round_trips_and_respects_its_length_bounds() {
    for (name, c) in all_configs() {
        let d = 250;
        let mut q = quant::build(&c, d, &[]).unwrap();
        let mut out = Vec::new();
        let mut dec = vec![0f32; d];
        for seed in 0..20 {
            let mut g = grad(d, seed);
            if seed % 3 == 0 {
                g[seed as usize] = 40.0;
            }
            q.encode(
                &g,
                StepSeeds {
                    shared: seed,
                    private: seed + 100,
                },
                &mut out,
            )
            .unwrap();
            if let Some(n) = q.fixed_payload_len() {
                assert_eq!(out.len(), n, "{name}");
            }
            assert!(
                out.len() <= q.max_payload_len(),
                "{name}: {} > {}",
                out.len(),
                q.max_payload_len()
            );
            decode_one(q.as_mut(), &out, seed, &mut dec).unwrap();
            assert!(dec.iter().all(|x| x.is_finite()), "{name}");
        }
    }
}

#[test]
fn rice_and_fixed_coding_decode_the_same_samples() {
    // The samples depend only on the seeds, not on the coding.
    for scheme in [Scheme::CrossPolytope, Scheme::Simplex, Scheme::Hadamard] {
        let d = 3000;
        let g = grad(d, 3);
        let mut outs = Vec::new();
        let mut lens = Vec::new();
        for coding in [Coding::Fixed, Coding::Rice] {
            let mut c = cfg(scheme);
            c.repetitions = 300;
            c.coding = coding;
            let mut q = quant::build(&c, d, &[]).unwrap();
            let mut buf = Vec::new();
            q.encode(&g, SEEDS, &mut buf).unwrap();
            let mut dec = vec![0f32; d];
            decode_one(q.as_mut(), &buf, SEEDS.shared, &mut dec).unwrap();
            outs.push(dec);
            lens.push(buf.len());
        }
        assert_eq!(outs[0], outs[1], "{scheme:?}");
        assert!(
            lens[1] < lens[0],
            "{scheme:?}: Rice {} vs fixed {}",
            lens[1],
            lens[0]
        );
    }
}

#[test]
fn zero_gradient_decodes_to_exact_zeros() {
    for (name, c) in all_configs() {
        let d = 250;
        let mut q = quant::build(&c, d, &[]).unwrap();
        let mut g = grad(d, 4);
        // Zero blocks 1 and 2, keep the rest.
        g[100..250].fill(0.0);
        let mut out = Vec::new();
        q.encode(&g, SEEDS, &mut out).unwrap();
        if let Some(n) = q.fixed_payload_len() {
            assert_eq!(out.len(), n);
        }
        let mut dec = vec![1f32; d];
        decode_one(q.as_mut(), &out, SEEDS.shared, &mut dec).unwrap();
        assert!(
            dec[100..].iter().all(|&x| x == 0.0),
            "{name}: {:?}",
            &dec[100..110]
        );
        // A fully zero gradient.
        q.encode(&vec![0.0; d], SEEDS, &mut out).unwrap();
        decode_one(q.as_mut(), &out, SEEDS.shared, &mut dec).unwrap();
        assert!(dec.iter().all(|&x| x == 0.0), "{name}");
    }
}

#[test]
fn aggregate_is_the_weighted_sum_of_single_decodes() {
    for (name, c) in all_configs() {
        let d = 250;
        let mut q = quant::build(&c, d, &[]).unwrap();
        let shared = 42;
        let payloads: Vec<Vec<u8>> = (0..4)
            .map(|r| {
                let mut out = Vec::new();
                q.encode(&grad(d, 10 + r), StepSeeds { shared, private: r }, &mut out)
                    .unwrap();
                out
            })
            .collect();
        let mut want = vec![0f64; d];
        let mut one = vec![0f32; d];
        for p in &payloads {
            decode_one(q.as_mut(), p, shared, &mut one).unwrap();
            for (w, &x) in want.iter_mut().zip(&one) {
                *w += 0.25 * f64::from(x);
            }
        }
        q.begin_decode(shared);
        for p in &payloads {
            q.decode_add(p, 0.25).unwrap();
        }
        let mut got = vec![0f32; d];
        q.finish_decode(&mut got);
        let scale = want.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5 * (1.0 + scale), "{name}");
        }
    }
}

#[test]
fn encoding_is_deterministic_in_the_seeds() {
    let mut c = cfg(Scheme::Sparse);
    c.k = 20;
    c.rotate = true;
    let mut q = quant::build(&c, 500, &[]).unwrap();
    let g = grad(500, 1);
    let (mut a, mut b, mut x) = (Vec::new(), Vec::new(), Vec::new());
    q.encode(&g, SEEDS, &mut a).unwrap();
    q.encode(&g, SEEDS, &mut b).unwrap();
    q.encode(
        &g,
        StepSeeds {
            shared: 5,
            private: 7,
        },
        &mut x,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, x);
}

fn expect_payload_err(q: &mut dyn Compressor, p: &[u8], what: &str) {
    q.begin_decode(SEEDS.shared);
    match q.decode_add(p, 1.0) {
        Err(Error::Payload(m)) => assert!(!m.is_empty()),
        other => panic!("{what}: expected a payload error, got {other:?}"),
    }
}

#[test]
fn corrupted_payloads_are_errors() {
    for (name, c) in all_configs() {
        let d = 250;
        let mut q = quant::build(&c, d, &[]).unwrap();
        let mut out = Vec::new();
        q.encode(&grad(d, 5), SEEDS, &mut out).unwrap();
        expect_payload_err(
            q.as_mut(),
            &out[..out.len() - 1],
            &format!("{name} truncated"),
        );
        expect_payload_err(q.as_mut(), &[], &format!("{name} empty"));
        let mut long = out.clone();
        long.push(0);
        if q.fixed_payload_len().is_some() {
            expect_payload_err(q.as_mut(), &long, &format!("{name} trailing"));
        }
        long.extend_from_slice(&[0u8; 64]);
        expect_payload_err(q.as_mut(), &long, &format!("{name} trailing 65"));
        // NaN, negative and infinite norms of block 0.
        for bad in [f32::NAN, -1.0, f32::INFINITY] {
            let mut p = out.clone();
            p[..4].copy_from_slice(&bad.to_bits().to_le_bytes());
            expect_payload_err(q.as_mut(), &p, &format!("{name} norm {bad}"));
        }
    }
    // Index out of range: cross-polytope with d = 3 (m = 6, 3 bits): write symbol 7.
    let mut q = quant::build(&cfg(Scheme::CrossPolytope), 3, &[]).unwrap();
    let mut p = 1f32.to_bits().to_le_bytes().to_vec();
    p.push(7);
    expect_payload_err(q.as_mut(), &p, "index 7 >= 6");
    p[4] = 5;
    q.begin_decode(0);
    q.decode_add(&p, 1.0).unwrap();
    p[4] = 0b1000_0101; // dirty padding bits
    expect_payload_err(q.as_mut(), &p, "dirty padding");
    // Sparse fallback header with e > e_max, and an exact index out of range.
    let mut c = cfg(Scheme::Sparse);
    c.k = 40;
    let mut q = quant::build_vq(&c, 100, &[]).unwrap();
    let mut out = Vec::new();
    let mut g = grad(100, 2);
    g[7] = 50.0;
    q.encode(&g, SEEDS, &mut out).unwrap();
    let mut p = out.clone();
    // e = 7 exact pairs (35 samples' worth) with k_b = 40: over the budget of 40.
    p[4] = 0x3f;
    p[5] |= 1;
    expect_payload_err(&mut q, &p, "header over budget");
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng::seed_from_u64(77);
    for (_, c) in all_configs() {
        let d = 250;
        let mut q = quant::build(&c, d, &[]).unwrap();
        let n = q.max_payload_len();
        for _ in 0..300 {
            let len = if rng.random::<bool>() {
                q.fixed_payload_len().unwrap_or(n / 2)
            } else {
                rng.random_range(0..n + 8)
            };
            let p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            q.begin_decode(1);
            let _ = q.decode_add(&p, 1.0);
        }
    }
}

#[test]
fn config_errors_name_the_key_and_the_limit() {
    let err = |c: &CompressionConfig, d: usize, layers: &[std::ops::Range<usize>]| {
        quant::build(c, d, layers)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let mut c = cfg(Scheme::Sparse);
    c.k = 101;
    let e = err(&c, 100, &[]);
    assert!(
        e.contains("compression.k") && e.contains("101") && e.contains("100"),
        "{e}"
    );
    c.k = 0;
    assert!(err(&c, 100, &[]).contains("compression.k"));
    let e = err(&cfg(Scheme::Qsgd), 100, &[]);
    assert!(
        e.contains("compression.scheme") && e.contains("qsgd"),
        "{e}"
    );
    let mut c = cfg(Scheme::CrossPolytope);
    c.epsilon = Some(0.0);
    assert!(err(&c, 100, &[]).contains("compression.epsilon"));
    c.epsilon = Some(-1.0);
    assert!(err(&c, 100, &[]).contains("compression.epsilon"));
    let mut c = cfg(Scheme::Hadamard);
    c.privacy_scale = Some(2.0);
    assert!(err(&c, 100, &[]).contains("privacy"));
    let mut c = cfg(Scheme::CrossPolytope);
    c.block = BlockSpec::Layer;
    assert!(err(&c, 100, &[0..40, 50..100]).contains("compression.block"));
    assert!(err(&c, 100, std::slice::from_ref(&(0..40))).contains("compression.block"));
    assert!(err(&c, 100, &[]).contains("compression.block"));
    assert!(quant::build(&c, 100, &[0..40, 40..40, 40..100]).is_ok());
    let mut c = cfg(Scheme::CrossPolytope);
    c.repetitions = 0;
    assert!(err(&c, 100, &[]).contains("compression.repetitions"));
}

#[test]
fn wrong_gradient_length_is_an_error() {
    let mut q = quant::build(&cfg(Scheme::CrossPolytope), 10, &[]).unwrap();
    let mut out = Vec::new();
    assert!(q.encode(&[1.0; 9], SEEDS, &mut out).is_err());
    let mut g = vec![1.0f32; 10];
    g[3] = f32::NAN;
    assert!(q.encode(&g, SEEDS, &mut out).is_err());
}

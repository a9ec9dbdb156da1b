//! Statistical tests of the vqSGD schemes (spec `vqsgd.md` sections 1-5, 7): convex weights,
//! Monte Carlo unbiasedness and second moments, vertices, privacy ratios.
//!
//! Every Monte Carlo check compares a sample mean with its expectation using a tolerance of
//! [`Z`] standard errors, where the standard error comes from the known (or, per coordinate,
//! the measured) variance. With [`N`] samples a scheme with a sign bug, a biased fallback or a
//! 10 % scale error fails (see `the_check_has_power`), while a correct one fails with
//! probability below 1e-6 per check. All randomness is seeded.

use rand::{Rng as _, SeedableRng};
use vqsgd::compress::{decode_one, StepSeeds};
use vqsgd::config::{BlockSpec, Coding, CompressionConfig, Scheme};
use vqsgd::quant::{self, cross_polytope, hadamard, privacy, simplex, sparse};
use vqsgd::rng::Rng;

/// Standard errors allowed between a Monte Carlo mean and its expectation.
const Z: f64 = 5.5;
/// Monte Carlo samples per check.
const N: usize = 20_000;
/// Exactness of the convex combinations (f64).
const EXACT: f64 = 1e-9;
/// Relative tolerance of deterministic f32 decodes.
const F32_TOL: f64 = 1e-5;

fn cfg(scheme: Scheme) -> CompressionConfig {
    CompressionConfig { scheme, ..Default::default() }
}

fn random_unit(rng: &mut Rng, d: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// A gradient with a spread of magnitudes and signs.
fn test_gradient(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..d).map(|i| ((rng.random::<f64>() - 0.4) * (1.0 + (i % 5) as f64)) as f32).collect()
}

/// Decodes of `n` independent encodings of `g`.
fn decodes(c: &CompressionConfig, g: &[f32], n: usize, layers: &[std::ops::Range<usize>]) -> Vec<Vec<f64>> {
    let mut q = quant::build(c, g.len(), layers).unwrap();
    let mut out = vec![0f32; g.len()];
    let mut buf = Vec::new();
    (0..n)
        .map(|t| {
            let seeds = StepSeeds { shared: 1000 + t as u64 % 7, private: 77 + t as u64 };
            q.encode(g, seeds, &mut buf).unwrap();
            decode_one(q.as_mut(), &buf, seeds.shared, &mut out).unwrap();
            out.iter().map(|&x| f64::from(x)).collect()
        })
        .collect()
}

/// Per-coordinate z-test of the mean of `samples` against `g` (measured variances, [`Z`] SEs).
/// Returns the largest |z| (coordinates with zero variance must match to f32 precision).
fn max_z(samples: &[Vec<f64>], g: &[f32]) -> f64 {
    let n = samples.len() as f64;
    let mut worst = 0f64;
    for i in 0..g.len() {
        let mean = samples.iter().map(|s| s[i]).sum::<f64>() / n;
        let var = samples.iter().map(|s| (s[i] - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let gi = f64::from(g[i]);
        if var == 0.0 {
            assert!((mean - gi).abs() <= F32_TOL * (1.0 + gi.abs()), "coordinate {i}: {mean} vs {gi}");
            continue;
        }
        worst = worst.max((mean - gi).abs() / (var / n).sqrt());
    }
    worst
}

fn assert_unbiased(name: &str, c: &CompressionConfig, g: &[f32], layers: &[std::ops::Range<usize>]) {
    let s = decodes(c, g, N, layers);
    let z = max_z(&s, g);
    assert!(z < Z, "{name}: largest z = {z:.2} >= {Z}");
}

fn norm2(g: &[f32]) -> f64 {
    g.iter().map(|&x| f64::from(x).powi(2)).sum()
}

/// Mean and standard error of `f` over the samples.
fn mean_se(samples: &[Vec<f64>], f: impl Fn(&[f64]) -> f64) -> (f64, f64) {
    let v: Vec<f64> = samples.iter().map(|s| f(s)).collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

#[test]
fn convex_weights_are_probabilities_that_reproduce_the_input() {
    let mut rng = Rng::seed_from_u64(11);
    for d in [1usize, 2, 3, 7, 16, 33] {
        for scale in [1.0, 0.5, 0.0] {
            let v: Vec<f64> = random_unit(&mut rng, d).iter().map(|x| x * scale).collect();
            // Cross-polytope.
            let a = cross_polytope::convex_weights(&v);
            assert!(a.iter().all(|&x| x >= 0.0));
            assert!((a.iter().sum::<f64>() - 1.0).abs() < EXACT);
            let mut r = vec![0.0; d];
            for (j, &w) in a.iter().enumerate() {
                for (ri, pi) in r.iter_mut().zip(cross_polytope::vertex(d, j)) {
                    *ri += w * pi;
                }
            }
            assert!(r.iter().zip(&v).all(|(a, b)| (a - b).abs() < EXACT), "cp d {d}");
            // Simplex.
            let a = simplex::convex_weights(&v);
            assert!(a.iter().all(|&x| x >= -EXACT));
            assert!((a.iter().sum::<f64>() - 1.0).abs() < EXACT);
            let mut r = vec![0.0; d];
            for (j, &w) in a.iter().enumerate() {
                for (ri, pi) in r.iter_mut().zip(simplex::vertex(d, j)) {
                    *ri += w * pi;
                }
            }
            assert!(r.iter().zip(&v).all(|(a, b)| (a - b).abs() < EXACT), "simplex d {d}");
            // Rotated cross-polytope: weights of U v reproduce U v, and U^T brings back v.
            let dp = d.next_power_of_two();
            let mut y = vec![0.0; dp];
            hadamard::rotate(&v, &mut y, 5);
            let a = cross_polytope::convex_weights(&y);
            let mut r = vec![0.0; dp];
            for (j, &w) in a.iter().enumerate() {
                for (ri, pi) in r.iter_mut().zip(cross_polytope::vertex(dp, j)) {
                    *ri += w * pi;
                }
            }
            assert!((a.iter().sum::<f64>() - 1.0).abs() < EXACT);
            hadamard::unrotate(&mut r, 5);
            assert!(r[..d].iter().zip(&v).all(|(a, b)| (a - b).abs() < EXACT), "hadamard d {d}");
            // k-sparse for every k with k <= sqrt(d) (no fallback needed), small d only.
            if d <= 7 {
                for k in 1..=((d as f64).sqrt() as usize) {
                    let pts = sparse::convex_weights(&v, k);
                    assert!(pts.iter().all(|p| p.1 >= -EXACT));
                    assert!((pts.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < EXACT);
                    let mut r = vec![0.0; d];
                    for (p, w) in &pts {
                        for (ri, pi) in r.iter_mut().zip(p) {
                            *ri += w * pi;
                        }
                    }
                    assert!(r.iter().zip(&v).all(|(a, b)| (a - b).abs() < EXACT), "sparse d {d} k {k}");
                }
            }
        }
    }
}

#[test]
fn vertices_get_all_the_weight_and_decode_exactly() {
    for d in [1usize, 2, 5, 9] {
        for j in 0..2 * d {
            let a = cross_polytope::convex_weights(&cross_polytope::vertex(d, j));
            for (i, &w) in a.iter().enumerate() {
                assert!((w - f64::from(u8::from(i == j))).abs() < EXACT, "cp d {d} j {j}: {a:?}");
            }
        }
        for j in 0..=d {
            // Simplex points are d v_j; the weights of the unit vertex v_j are for x = v_j
            // inside the ball; the point d v_j itself is reached with the scaled combination.
            let a: Vec<f64> = simplex::convex_weights(&simplex::unit_vertex(d, j));
            let scaled: Vec<f64> = (0..=d)
                .map(|i| {
                    let dot: f64 = simplex::unit_vertex(d, i)
                        .iter()
                        .zip(simplex::vertex(d, j))
                        .map(|(a, b)| a * b)
                        .sum();
                    (1.0 + dot) / (d as f64 + 1.0)
                })
                .collect();
            assert!(a[j] > 1.0 / (d as f64 + 1.0));
            for (i, &w) in scaled.iter().enumerate() {
                assert!((w - f64::from(u8::from(i == j))).abs() < EXACT, "simplex d {d} j {j}");
            }
        }
    }
    // Compressor level: unit-norm points are reached deterministically.
    // Cross-polytope with 1-coordinate blocks: every block is +-1 = a vertex.
    let g: Vec<f32> = vec![3.0, -0.5, 0.25, -7.0, 1.0];
    let mut c = cfg(Scheme::CrossPolytope);
    c.block = BlockSpec::Size(1);
    for s in decodes(&c, &g, 20, &[]) {
        for (a, &b) in s.iter().zip(&g) {
            assert!((a - f64::from(b)).abs() <= F32_TOL * f64::from(b).abs());
        }
    }
    // k-sparse with k = d: the points (1/sqrt d)(+-1, ..., +-1) have unit norm.
    let g: Vec<f32> = vec![2.0, -2.0, -2.0, 2.0, 2.0, 2.0, -2.0, 2.0, 2.0];
    let mut c = cfg(Scheme::Sparse);
    c.k = 9;
    for coding in [Coding::Fixed, Coding::Rice] {
        c.coding = coding;
        for s in decodes(&c, &g, 20, &[]) {
            for (a, &b) in s.iter().zip(&g) {
                assert!((a - f64::from(b)).abs() <= F32_TOL * 2.0, "{s:?}");
            }
        }
    }
}

#[test]
fn cross_polytope_is_unbiased_with_exact_second_moment() {
    let g = test_gradient(16, 1);
    let c = cfg(Scheme::CrossPolytope);
    let samples = decodes(&c, &g, N, &[]);
    assert!(max_z(&samples, &g) < Z);
    // E||Q||^2 = d ||g||^2 exactly: every sample has that norm.
    let want = 16.0 * norm2(&g);
    for s in samples.iter().take(100) {
        let n2: f64 = s.iter().map(|x| x * x).sum();
        assert!((n2 - want).abs() < F32_TOL * want);
    }
    // Repetition: E||Q||^2 = (d + s - 1)/s for unit inputs (here scaled by ||g||^2).
    let mut c = cfg(Scheme::CrossPolytope);
    c.repetitions = 4;
    let samples = decodes(&c, &g, N, &[]);
    assert!(max_z(&samples, &g) < Z);
    let (m, se) = mean_se(&samples, |s| s.iter().map(|x| x * x).sum());
    let want = (16.0 + 4.0 - 1.0) / 4.0 * norm2(&g);
    assert!((m - want).abs() < Z * se, "second moment {m} vs {want} (se {se})");
}

#[test]
fn cross_polytope_blocks_rice_and_privacy_are_unbiased() {
    let g = test_gradient(23, 2);
    let mut c = cfg(Scheme::CrossPolytope);
    c.block = BlockSpec::Size(5);
    c.repetitions = 3;
    c.coding = Coding::Rice;
    assert_unbiased("cp blocks rice", &c, &g, &[]);
    let mut c = cfg(Scheme::CrossPolytope);
    c.block = BlockSpec::Layer;
    c.epsilon = Some(4.0);
    assert_unbiased("cp layers eps", &c, &g, &[0..10, 10..11, 11..23]);
}

#[test]
fn simplex_is_unbiased_with_second_moment_d_squared() {
    let g = test_gradient(12, 3);
    let c = cfg(Scheme::Simplex);
    let samples = decodes(&c, &g, N, &[]);
    assert!(max_z(&samples, &g) < Z);
    let want = 144.0 * norm2(&g);
    for s in samples.iter().take(100) {
        let n2: f64 = s.iter().map(|x| x * x).sum();
        assert!((n2 - want).abs() < F32_TOL * want);
    }
    let mut c = cfg(Scheme::Simplex);
    c.repetitions = 2;
    c.privacy_scale = Some(1.5);
    c.coding = Coding::Rice;
    c.block = BlockSpec::Size(7);
    assert_unbiased("simplex private rice blocks", &c, &g, &[]);
}

#[test]
fn hadamard_is_unbiased_with_second_moment_d_prime() {
    let g = test_gradient(20, 4);
    let c = cfg(Scheme::Hadamard);
    let samples = decodes(&c, &g, N, &[]);
    assert!(max_z(&samples, &g) < Z);
    // ||U^T spike||^2 = d' ||g||^2, but only the first d coordinates are kept: E = d ||g||^2.
    let (m, se) = mean_se(&samples, |s| s.iter().map(|x| x * x).sum());
    let want = 20.0 * norm2(&g);
    assert!((m - want).abs() < Z * se + F32_TOL * want, "{m} vs {want}");
}

#[test]
fn sparse_is_unbiased_and_second_moment_at_most_d_over_k() {
    let g = test_gradient(16, 5);
    for (k, rotate) in [(4usize, false), (2, false), (4, true)] {
        let mut c = cfg(Scheme::Sparse);
        c.k = k;
        c.rotate = rotate;
        let samples = decodes(&c, &g, N, &[]);
        let z = max_z(&samples, &g);
        assert!(z < Z, "k {k} rotate {rotate}: z {z}");
        let (m, se) = mean_se(&samples, |s| s.iter().map(|x| x * x).sum());
        let bound = 16.0 / k as f64 * norm2(&g);
        assert!(m < bound + Z * se, "k {k}: E||Q||^2 = {m} > d/k = {bound}");
    }
}

#[test]
fn sparse_fallback_is_unbiased() {
    // One dominant coordinate: |v_0| ~ 0.9 > sqrt(16)/8 = 0.5, so k = 8 needs the fallback.
    let mut g = test_gradient(16, 6);
    g[3] = 12.0;
    for (s, coding) in [(1usize, Coding::Fixed), (3, Coding::Fixed), (2, Coding::Rice)] {
        let mut c = cfg(Scheme::Sparse);
        c.k = 8;
        c.repetitions = s;
        c.coding = coding;
        assert_unbiased(&format!("sparse fallback s={s}"), &c, &g, &[]);
    }
    // A larger block, one repetition: exact coordinates (d = 256, k = 64, q = 5, e_max = 12).
    let mut g = test_gradient(256, 8);
    g[10] = 60.0;
    g[200] = -45.0;
    let mut c = cfg(Scheme::Sparse);
    c.k = 64;
    assert_unbiased("sparse exact coordinates", &c, &g, &[]);
    // Tiny blocks where no exact coordinate fits the budget: k is lowered instead.
    let g: Vec<f32> = vec![5.0, 0.1, -0.1, 0.2, 4.0, -4.0, 0.0, 1.0];
    let mut c = cfg(Scheme::Sparse);
    c.k = 3;
    c.block = BlockSpec::Size(4);
    assert_unbiased("sparse lowered k", &c, &g, &[]);
    // Rotated with k close to d': the flat rotated vector still exceeds pi0 <= 1 somewhere.
    let g = test_gradient(64, 7);
    let mut c = cfg(Scheme::Sparse);
    c.k = 40;
    c.rotate = true;
    assert_unbiased("rotated sparse k = 40 of 64", &c, &g, &[]);
}

#[test]
fn the_check_has_power() {
    // A 25 % scale error or a sign bug must fail the same check.
    let mut g = test_gradient(16, 1);
    g[0] = 6.0;
    let c = cfg(Scheme::CrossPolytope);
    let good = decodes(&c, &g, N, &[]);
    for f in [1.25, -1.0] {
        let bad: Vec<Vec<f64>> =
            good.iter().map(|s| s.iter().map(|x| f * x).collect()).collect();
        assert!(max_z(&bad, &g) > Z, "factor {f}");
    }
    // Capping pi at 1 without the fallback (a silently biased sparse encoder) shrinks the big
    // coordinate to at most sqrt(d)/k * ||g||: the check sees that too.
    let mut biased = g.clone();
    let n = norm2(&g).sqrt() as f32;
    biased[0] = biased[0].min(n * 4.0 / 8.0);
    let mut c = cfg(Scheme::Sparse);
    c.k = 8;
    let samples = decodes(&c, &biased, N, &[]);
    assert!(max_z(&samples, &g) > Z);
}

#[test]
fn epsilon_matches_the_brute_force_probability_ratio() {
    let mut rng = Rng::seed_from_u64(9);
    for d in [2usize, 3, 5] {
        for c in [1.5, 3.0, 10.0] {
            // Candidate inputs: signed basis vectors, flat sign vectors, random unit vectors.
            let mut inputs: Vec<Vec<f64>> = Vec::new();
            for i in 0..d {
                for sgn in [1.0, -1.0] {
                    let mut v = vec![0.0; d];
                    v[i] = sgn;
                    inputs.push(v);
                }
            }
            for mask in 0..(1u32 << d) {
                inputs.push(
                    (0..d)
                        .map(|i| if mask >> i & 1 == 1 { 1.0 } else { -1.0 } / (d as f64).sqrt())
                        .collect(),
                );
            }
            for _ in 0..200 {
                inputs.push(random_unit(&mut rng, d));
            }
            let ratio = |w: &dyn Fn(&[f64]) -> Vec<f64>| {
                let all: Vec<Vec<f64>> = inputs.iter().map(|v| w(v)).collect();
                (0..all[0].len())
                    .map(|j| {
                        let hi = all.iter().map(|a| a[j]).fold(0.0, f64::max);
                        let lo = all.iter().map(|a| a[j]).fold(f64::INFINITY, f64::min);
                        (hi / lo).ln()
                    })
                    .fold(0.0, f64::max)
            };
            // Scaled cross-polytope = the cross-polytope weights of v / c.
            let cp = ratio(&|v: &[f64]| {
                cross_polytope::convex_weights(&v.iter().map(|x| x / c).collect::<Vec<_>>())
            });
            let eps = privacy::epsilon_cross_polytope(c, d);
            assert!((cp - eps).abs() < 1e-9, "cp d {d} c {c}: brute {cp} formula {eps}");
            let sx = ratio(&|v: &[f64]| {
                simplex::convex_weights(&v.iter().map(|x| x / c).collect::<Vec<_>>())
            });
            // The simplex extremes are at +-v_j, which the candidates include only up to the
            // random ones; the formula is an upper bound that the vertices attain.
            let eps_s = privacy::epsilon_simplex(c);
            assert!(sx <= eps_s + 1e-9, "simplex d {d} c {c}: {sx} > {eps_s}");
            let vj = simplex::unit_vertex(d, 1);
            let neg: Vec<f64> = vj.iter().map(|x| -x).collect();
            let hi = simplex::convex_weights(&vj.iter().map(|x| x / c).collect::<Vec<_>>())[1];
            let lo = simplex::convex_weights(&neg.iter().map(|x| x / c).collect::<Vec<_>>())[1];
            assert!(((hi / lo).ln() - eps_s).abs() < 1e-9);
        }
    }
}

#[test]
fn privacy_epsilon_is_reported_per_step() {
    let mut c = cfg(Scheme::CrossPolytope);
    c.epsilon = Some(2.0);
    c.repetitions = 4;
    c.block = BlockSpec::Size(100);
    let q = quant::build(&c, 1000, &[]).unwrap();
    let eps = q.info().epsilon_per_step.unwrap();
    assert!((eps - 2.0).abs() < 1e-9, "{eps}");
    let mut c = cfg(Scheme::Simplex);
    c.privacy_scale = Some(3.0);
    c.clip = 1.0;
    let q = quant::build(&c, 50, &[]).unwrap();
    assert!((q.info().epsilon_per_step.unwrap() - privacy::epsilon_simplex(3.0)).abs() < 1e-12);
    assert!(q.info().params.contains("no norm sent"));
    assert!(!q.info().unbiased);
    assert_eq!(privacy::cumulative_epsilon(0.25, 400), 100.0);
}


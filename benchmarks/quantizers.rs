//! Quantizer micro-benchmark and bits-versus-error study (spec `vqsgd.md` sections 1-6).
//!
//! One command: `cargo bench --bench quantizers` (add `-- --quick` to skip d = 1e7). Writes
//! `benchmarks/results/quantizers.{csv,md}` (encode and decode throughput per scheme, as a ratio
//! to one vectorised read pass over the same gradient, measured side by side in this run) and
//! `benchmarks/results/bits_vs_error.{csv,svg}` (measured `E||g_hat - g||^2 / ||g||^2` against
//! payload bits at d = 1e5, with the lower bound of spec section 1).
//!
//! `cargo test --all-targets` also runs this binary, without cargo bench's `--bench` flag: it
//! then only checks that every measurement runs, at the smallest size, and writes nothing.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use rand::{Rng as _, SeedableRng};
use rand_distr::StandardNormal;
use vqsgd::compress::{decode_one, Compressor, StepSeeds};
use vqsgd::config::{Coding, CompressionConfig, Scheme};
use vqsgd::plot::{Plot, Series, Style};
use vqsgd::quant;
use vqsgd::rng::Rng;

/// A gradient-like vector: Gaussian with log-normal scales (heavy-ish tails), seeded.
fn gradient(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..d)
        .map(|_| {
            let z: f64 = rng.sample(StandardNormal);
            let s: f64 = rng.sample(StandardNormal);
            (z * (0.7 * s).exp() * 1e-3) as f32
        })
        .collect()
}

/// The yardstick: one read pass at memory bandwidth (16 independent accumulators, vectorised).
#[inline(never)]
fn read_pass(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut it = x.chunks_exact(16);
    for c in &mut it {
        for j in 0..16 {
            acc[j] += c[j];
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

/// Minimum wall time of `f` over `reps` runs (seconds).
fn time_min(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn config(scheme: Scheme, s: usize, k: usize, rotate: bool, coding: Coding) -> CompressionConfig {
    CompressionConfig {
        scheme,
        repetitions: s,
        k,
        rotate,
        coding,
        ..Default::default()
    }
}

fn label(c: &CompressionConfig) -> String {
    let coding = match c.coding {
        Coding::Fixed => "fixed",
        Coding::Rice => "rice",
    };
    match c.scheme {
        Scheme::Sparse => format!(
            "sparse{} k={} {coding}",
            if c.rotate { "+rot" } else { "" },
            c.k
        ),
        s => format!("{} s={} {coding}", s.name(), c.repetitions),
    }
}

/// Whether the library's AVX2 kernels are in use on this CPU.
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct Row {
    d: usize,
    scheme: String,
    param: String,
    bytes: usize,
    /// Samples per payload (`s k`).
    samples: usize,
    read_s: f64,
    enc_s: f64,
    dec64_s: f64,
    dec64_adds_s: f64,
    /// The 64 `decode_add` of 64 distinct payloads (cross-polytope, fixed width only).
    adds_distinct_s: Option<f64>,
}

fn throughput(quick: bool, smoke: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let dims: &[usize] = if smoke {
        &[10_000]
    } else if quick {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[10_000, 100_000, 1_000_000, 10_000_000]
    };
    for &d in dims {
        let reps = if smoke {
            2
        } else if d <= 10_000 {
            200
        } else if d <= 100_000 {
            40
        } else if d <= 1_000_000 {
            10
        } else {
            4
        };
        let g = gradient(d, 1);
        let read_s = time_min(reps * 4, || {
            black_box(read_pass(black_box(&g)));
        });
        let mut cfgs = Vec::new();
        for div in [10_000usize, 3000, 1000, 100, 10] {
            let s = (d / div).max(1);
            cfgs.push(config(Scheme::CrossPolytope, s, 0, false, Coding::Fixed));
        }
        let s100 = (d / 100).max(1);
        cfgs.push(config(Scheme::CrossPolytope, s100, 0, false, Coding::Rice));
        cfgs.push(config(Scheme::Simplex, s100, 0, false, Coding::Fixed));
        cfgs.push(config(Scheme::Hadamard, s100, 0, false, Coding::Fixed));
        cfgs.push(config(Scheme::Sparse, 0, s100, false, Coding::Fixed));
        cfgs.push(config(Scheme::Sparse, 0, s100, true, Coding::Fixed));
        cfgs.push(config(Scheme::Sparse, 0, s100, true, Coding::Rice));
        for mut c in cfgs {
            if c.repetitions == 0 {
                c.repetitions = 1;
            }
            let mut q = quant::build_vq(&c, d, &[]).expect("config");
            let mut out = Vec::with_capacity(q.max_payload_len());
            let mut i = 0u64;
            let enc_s = time_min(reps, || {
                i += 1;
                q.encode(
                    &g,
                    StepSeeds {
                        shared: 1,
                        private: i,
                    },
                    &mut out,
                )
                .unwrap();
            });
            let payloads: Vec<Vec<u8>> = (0..4)
                .map(|r| {
                    let mut p = Vec::new();
                    q.encode(
                        &g,
                        StepSeeds {
                            shared: 1,
                            private: 100 + r,
                        },
                        &mut p,
                    )
                    .unwrap();
                    p
                })
                .collect();
            let bytes = payloads[0].len();
            let mut dec = vec![0f32; d];
            let dreps = reps.div_ceil(4).max(2);
            let mut adds = f64::INFINITY;
            let dec64_s = time_min(dreps, || {
                q.begin_decode(1);
                let t = Instant::now();
                for j in 0..64 {
                    q.decode_add(&payloads[j % 4], 1.0 / 64.0).unwrap();
                }
                adds = adds.min(t.elapsed().as_secs_f64());
                q.finish_decode(&mut dec);
                black_box(&dec);
            });
            // 64 distinct payloads (as from 64 ranks): the cycle of 4 above keeps the sum's
            // touched lines in cache for small s.
            let adds_distinct_s = (c.scheme == Scheme::CrossPolytope && c.coding == Coding::Fixed)
                .then(|| {
                    let distinct: Vec<Vec<u8>> = (0..64)
                        .map(|r| {
                            let mut p = Vec::new();
                            let seeds = StepSeeds {
                                shared: 1,
                                private: 1000 + r,
                            };
                            q.encode(&g, seeds, &mut p).unwrap();
                            p
                        })
                        .collect();
                    let mut best = f64::INFINITY;
                    for _ in 0..dreps {
                        q.begin_decode(1);
                        let t = Instant::now();
                        for p in &distinct {
                            q.decode_add(p, 1.0 / 64.0).unwrap();
                        }
                        best = best.min(t.elapsed().as_secs_f64());
                    }
                    best
                });
            let samples = c.repetitions * if c.scheme == Scheme::Sparse { c.k } else { 1 };
            let row = Row {
                d,
                scheme: c.scheme.name().to_string(),
                param: label(&c),
                bytes,
                samples,
                read_s,
                enc_s,
                dec64_s,
                dec64_adds_s: adds,
                adds_distinct_s,
            };
            eprintln!(
                "d={d:>9} {:<28} {:>9} B  encode {:>7.2}x  decode64 {:>7.2}x (adds {:>6.2}x, {:>5.2} \
                 ns/sample{})",
                row.param,
                bytes,
                enc_s / read_s,
                dec64_s / read_s,
                adds / read_s,
                adds * 1e9 / (64 * samples) as f64,
                adds_distinct_s.map_or(String::new(), |a| format!(
                    "; 64 distinct: {:.2}x",
                    a / read_s
                ))
            );
            rows.push(row);
        }
    }
    rows
}

struct ErrPoint {
    scheme: String,
    param: String,
    bits: f64,
    rel_err: f64,
    rel_err_se: f64,
}

/// Measured relative error against payload bits at d = 1e5.
fn bits_vs_error(smoke: bool) -> Vec<ErrPoint> {
    let (d, trials) = if smoke { (10_000, 1) } else { (100_000, 6) };
    let g = gradient(d, 2);
    let g2: f64 = g.iter().map(|&x| f64::from(x).powi(2)).sum();
    let mut cfgs = Vec::new();
    for s in [1usize, 10, 100, 1000, 10_000, 100_000] {
        cfgs.push(config(Scheme::CrossPolytope, s, 0, false, Coding::Fixed));
        if s >= 100 {
            cfgs.push(config(Scheme::CrossPolytope, s, 0, false, Coding::Rice));
        }
        cfgs.push(config(Scheme::Hadamard, s, 0, false, Coding::Fixed));
        cfgs.push(config(Scheme::Simplex, s, 0, false, Coding::Fixed));
    }
    for k in [10usize, 100, 1000, 10_000, 30_000, 65_536] {
        if k > d.next_power_of_two() {
            continue; // the smoke run's small d
        }
        cfgs.push(config(Scheme::Sparse, 1, k, true, Coding::Fixed));
        cfgs.push(config(Scheme::Sparse, 1, k, true, Coding::Rice));
    }
    for k in [10usize, 100, 316, 1000, 10_000]
        .into_iter()
        .filter(|&k| k <= d)
    {
        cfgs.push(config(Scheme::Sparse, 1, k, false, Coding::Fixed));
    }
    let mut pts = Vec::new();
    for c in cfgs {
        let mut q = quant::build(&c, d, &[]).expect("config");
        let mut buf = Vec::new();
        let mut dec = vec![0f32; d];
        let mut errs = Vec::new();
        let mut bits = 0.0;
        for t in 0..trials {
            let seeds = StepSeeds {
                shared: 7 + t,
                private: 1000 + t,
            };
            q.encode(&g, seeds, &mut buf).unwrap();
            bits += (buf.len() * 8) as f64 / trials as f64;
            decode_one(q.as_mut(), &buf, seeds.shared, &mut dec).unwrap();
            let e: f64 = dec
                .iter()
                .zip(&g)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum();
            errs.push(e / g2);
        }
        let n = errs.len() as f64;
        let m = errs.iter().sum::<f64>() / n;
        let se = (errs.iter().map(|e| (e - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        let scheme = match (c.scheme, c.rotate, c.coding) {
            (Scheme::Sparse, true, Coding::Rice) => "sparse+rot (rice)".to_string(),
            (Scheme::Sparse, true, _) => "sparse+rot (fixed)".to_string(),
            (Scheme::CrossPolytope, _, Coding::Rice) => "cross_polytope (rice)".to_string(),
            (s, _, _) => s.name().to_string(),
        };
        eprintln!(
            "{:<32} bits {:>10.0}  rel err {:>12.4} +- {:.4}",
            label(&c),
            bits,
            m,
            se
        );
        pts.push(ErrPoint {
            scheme,
            param: label(&c),
            bits,
            rel_err: m,
            rel_err_se: se,
        });
    }
    pts
}

/// Spec section 1: any unbiased scheme with almost-sure bound R needs
/// `max(log2(d+1), log2(e) d / (2 R^2))` bits; as a curve, `R^2 >= log2(e) d / (2 bits)`, drawn
/// as the error `R^2 - 1` (which is the cross-polytope's exact error at s = 1).
fn bound_curve(d: usize) -> Vec<(f64, f64)> {
    let c = std::f64::consts::LOG2_E / 2.0;
    let b0 = (d as f64 + 1.0).log2();
    (0..=60)
        .map(|i| b0 * 10f64.powf(i as f64 * 0.1))
        .map(|b| (b, c * d as f64 / b - 1.0))
        .filter(|p| p.1 > 1e-3)
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let smoke = !std::env::args().any(|a| a == "--bench");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benchmarks/results");
    let load_before = loadavg();
    let t0 = Instant::now();
    let rows = throughput(quick, smoke);
    let pts = bits_vs_error(smoke);
    if smoke {
        println!(
            "quantizers benchmark: smoke run ({} throughput rows, {} error points) passed; \
             `cargo bench --bench quantizers` measures and writes benchmarks/results",
            rows.len(),
            pts.len()
        );
        return;
    }
    std::fs::create_dir_all(&dir).expect("results dir");
    let load_after = loadavg();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.to_string())
        })
        .unwrap_or_default();

    let mut csv = String::from(
        "d,scheme,params,payload_bytes,samples_per_payload,read_pass_s,encode_s,decode64_s,\
         decode64_adds_s,adds_distinct64_s,encode_over_read,decode64_over_read,\
         decode64_adds_over_read,adds_distinct64_over_read,adds_ns_per_sample\n",
    );
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.9},{:.9},{:.9},{:.9},{},{:.4},{:.4},{:.4},{},{:.3}",
            r.d,
            r.scheme,
            r.param,
            r.bytes,
            r.samples,
            r.read_s,
            r.enc_s,
            r.dec64_s,
            r.dec64_adds_s,
            r.adds_distinct_s
                .map_or(String::new(), |a| format!("{a:.9}")),
            r.enc_s / r.read_s,
            r.dec64_s / r.read_s,
            r.dec64_adds_s / r.read_s,
            r.adds_distinct_s
                .map_or(String::new(), |a| format!("{:.4}", a / r.read_s)),
            r.dec64_adds_s * 1e9 / (64 * r.samples) as f64
        );
    }
    std::fs::write(dir.join("quantizers.csv"), csv).expect("write csv");

    let mut md = String::new();
    let _ = writeln!(md, "# Quantizer throughput\n");
    let _ = writeln!(
        md,
        "Generated by `cargo bench --bench quantizers`. Times are minima over repetitions; every \
         ratio divides by one read pass over the same f32 gradient (16 independent accumulators, \
         vectorised), measured in the same run. `decode64` = `begin_decode` + 64 `decode_add` + \
         `finish_decode` (4 distinct payloads, cycled); `adds` = the 64 `decode_add` calls \
         alone; `adds, 64 distinct` = 64 `decode_add` of 64 different payloads (as from 64 \
         ranks; cross-polytope, fixed width); `ns/sample` = `adds` per added sample.\n"
    );
    let _ = writeln!(
        md,
        "- CPU: {}",
        cpu.trim_start_matches("model name")
            .trim_start_matches([' ', '\t', ':'])
    );
    let _ = writeln!(
        md,
        "- /proc/loadavg before: `{load_before}`, after: `{load_after}`"
    );
    let _ = writeln!(
        md,
        "- AVX2 kernels (selected at run time): {}",
        if avx2() { "yes" } else { "no (SSE2)" }
    );
    let _ = writeln!(
        md,
        "- total run time: {:.0} s\n",
        t0.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| d | configuration | payload B | read pass ms | encode ms | encode / read | decode64 ms | decode64 / read | adds / read | adds, 64 distinct / read | adds ns/sample |"
    );
    let _ = writeln!(
        md,
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} | {:.3} | {:.2} | {:.3} | {:.2} | {:.2} | {} | {:.2} |",
            r.d,
            r.param,
            r.bytes,
            r.read_s * 1e3,
            r.enc_s * 1e3,
            r.enc_s / r.read_s,
            r.dec64_s * 1e3,
            r.dec64_s / r.read_s,
            r.dec64_adds_s / r.read_s,
            r.adds_distinct_s
                .map_or("".to_string(), |a| format!("{:.2}", a / r.read_s)),
            r.dec64_adds_s * 1e9 / (64 * r.samples) as f64
        );
    }
    std::fs::write(dir.join("quantizers.md"), md).expect("write md");

    let mut csv = String::from("scheme,params,bits,rel_err,rel_err_se,lower_bound_err\n");
    let d = 100_000f64;
    for p in &pts {
        let lb = (std::f64::consts::LOG2_E / 2.0 * d / p.bits - 1.0).max(0.0);
        let _ = writeln!(
            csv,
            "{},{},{:.0},{:.6},{:.6},{:.6}",
            p.scheme, p.param, p.bits, p.rel_err, p.rel_err_se, lb
        );
    }
    std::fs::write(dir.join("bits_vs_error.csv"), csv).expect("write csv");
    let mut plot = Plot::new(
        "vqSGD at d = 1e5: error against payload bits",
        "payload bits (buffer handed to MPI)",
        "E||g_hat - g||^2 / ||g||^2",
    );
    plot.log_x = true;
    plot.log_y = true;
    let mut names: Vec<String> = pts.iter().map(|p| p.scheme.clone()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    for n in names {
        let mut sp: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.scheme == n)
            .map(|p| (p.bits, p.rel_err))
            .collect();
        sp.sort_by(|a, b| a.0.total_cmp(&b.0));
        plot.series.push(Series::new(n, sp, Style::Line));
    }
    plot.series.push(Series::new(
        "lower bound (spec 1): 0.72 d / bits - 1",
        bound_curve(100_000),
        Style::Dashed,
    ));
    std::fs::write(dir.join("bits_vs_error.svg"), plot.to_svg(900, 560)).expect("write svg");
    eprintln!("wrote {}", dir.display());
}

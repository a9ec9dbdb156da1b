//! The compressed gradient exchange under real `mpirun` (2 and 4 ranks) against an in-process
//! reference (spec `vqsgd.md` section 8).
//!
//! The test re-launches its own executable under `mpirun` (marked by [`CHILD`]). On every rank
//! it builds the synchroniser of each case, feeds it this rank's deterministic gradient, and
//! checks, for several steps:
//! - the aggregate every rank got through MPI equals the in-process reference: every rank's
//!   gradient encoded with that rank's seeds and decoded **alone**, then averaged (majority
//!   vote for signSGD; for the fp16 allreduce, whose partial sums are rounded to binary16,
//!   within the rounding error of P - 1 additions);
//! - all ranks hold bit-identical aggregates;
//! - the bytes the exchange reports equal the payload lengths (plus the 8-byte length of each
//!   variable-length payload, which is exchanged first) and, for fixed-width coding, the
//!   closed-form length of the scheme.

mod common;

use std::ops::Range;

use vqsgd::comm::{Collective, MpiCollective};
use vqsgd::compress::decode_one;
use vqsgd::config::{CompressionConfig, Config, Scheme};
use vqsgd::metrics::checksum;
use vqsgd::sync::{self, step_seeds};

/// Environment variable that marks the re-launched ranks.
const CHILD: &str = "VQSGD_EXCHANGE_TEST_CHILD";
/// Global seed of the exchange.
const SEED: u64 = 20261204;
/// Steps checked per case (new gradients and new seeds every step).
const STEPS: u64 = 3;
/// Layers of the fake model: a weight matrix, its bias, a second matrix, its bias.
const LAYERS: [usize; 4] = [3000, 64, 640, 10];
/// Largest difference between the exchanged and the reference average, relative to the
/// largest reference coordinate: the two add the same f32/f64 terms in different orders.
const REL_TOL: f64 = 1e-5;
/// Relative rounding error of one binary16 rounding (half an ulp: 2^-11).
const HALF_ULP: f64 = 1.0 / 2048.0;

/// Fixed-width payload bits of a vq scheme: per block a 32-bit norm and `s` indices of
/// `ceil(log2 m)` bits (spec sections 1, 2, 4, 6).
fn vq_bits(blocks: &[usize], s: usize, m: impl Fn(usize) -> usize) -> usize {
    blocks
        .iter()
        .map(|&d| 32 + s * (usize::BITS - (m(d) - 1).leading_zeros()) as usize)
        .sum()
}

/// (name, `[compression]` table, expected fixed payload bytes for dimension `d` and layers).
type Case = (&'static str, &'static str, Option<fn(usize) -> usize>);

const CASES: &[Case] = &[
    (
        "cross_polytope fixed",
        "scheme = \"cross_polytope\"\nrepetitions = 50",
        Some(|d| vq_bits(&[d], 50, |d| 2 * d).div_ceil(8)),
    ),
    (
        "cross_polytope rice, layer blocks",
        "scheme = \"cross_polytope\"\nrepetitions = 200\ncoding = \"rice\"\nblock = \"layer\"",
        None,
    ),
    (
        "cross_polytope private",
        "scheme = \"cross_polytope\"\nrepetitions = 20\nepsilon = 4.0",
        Some(|d| vq_bits(&[d], 20, |d| 2 * d).div_ceil(8)),
    ),
    (
        "simplex, blocks of 16",
        "scheme = \"simplex\"\nrepetitions = 2\nblock = 16",
        Some(|d| {
            let blocks: Vec<usize> = (0..d).step_by(16).map(|a| 16.min(d - a)).collect();
            vq_bits(&blocks, 2, |d| d + 1).div_ceil(8)
        }),
    ),
    (
        "hadamard",
        "scheme = \"hadamard\"\nrepetitions = 50",
        Some(|d| vq_bits(&[d.next_power_of_two()], 50, |d| 2 * d).div_ceil(8)),
    ),
    (
        "sparse rotated rice",
        "scheme = \"sparse\"\nk = 100\nrotate = true\ncoding = \"rice\"",
        None,
    ),
    (
        "sparse unrotated fixed",
        "scheme = \"sparse\"\nk = 40\nrotate = false",
        Some(|d| vq_bits(&[d], 40, |d| 2 * d).div_ceil(8)),
    ),
    (
        "cross_polytope, small layers dense",
        "scheme = \"cross_polytope\"\nrepetitions = 30\ndense_below = 100",
        None,
    ),
    (
        "qsgd",
        "scheme = \"qsgd\"\nlevels = 4\nbucket = 256",
        // 4 bytes per bucket norm, 1 sign bit + ceil(log2(levels + 1)) bits per coordinate.
        Some(|d| 4 * d.div_ceil(256) + (d * 4).div_ceil(8)),
    ),
    (
        "terngrad",
        "scheme = \"terngrad\"\nbucket = 512",
        Some(|d| 4 * d.div_ceil(512) + (2 * d).div_ceil(8)),
    ),
    ("fp16", "scheme = \"fp16\"", Some(|d| 2 * d)),
    ("signsgd", "scheme = \"signsgd\"", Some(|d| d.div_ceil(8))),
];

fn layers() -> Vec<Range<usize>> {
    let mut start = 0;
    LAYERS
        .iter()
        .map(|&n| {
            start += n;
            start - n..start
        })
        .collect()
}

/// A deterministic, rank- and step-dependent gradient with coordinates of mixed scale.
fn gradient(rank: usize, step: u64, d: usize) -> Vec<f32> {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ ((rank as u64) << 32) ^ step;
    (0..d)
        .map(|i| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            let u = (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let scale = if i % 97 == 0 { 10.0 } else { 1.0 };
            (u * scale) as f32
        })
        .collect()
}

fn compression(table: &str) -> CompressionConfig {
    Config::from_toml_str(&format!("[compression]\n{table}\n"), "test case", &[])
        .and_then(|c| c.validate().map(|()| c))
        .unwrap_or_else(|e| panic!("case config: {e}"))
        .compression
}

/// One rank's part: every case, every step.
fn child() {
    let universe = mpi::initialize().expect("MPI init");
    let comm = MpiCollective::new(universe.world());
    let (rank, p) = (comm.rank(), comm.size());
    let layers = layers();
    let d = layers.last().unwrap().end;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (name, table, fixed_len) in CASES {
            let cfg = compression(table);
            let majority = cfg.scheme == Scheme::Signsgd;
            // fp16 is an allreduce of halves: its partial sums are rounded to binary16.
            let allreduce = cfg.scheme == Scheme::Fp16;
            let mut exchange = sync::build(&cfg, d, &layers, SEED).expect("build sync");
            let mut reference = sync::build_compressor(&cfg, d, &layers).expect("build ref");
            let mut out = vec![0f32; d];
            for step in 0..STEPS {
                let grad = gradient(rank, step, d);
                let st = exchange.sync(&grad, &mut out, step, &comm).expect("sync");
                // In-process reference: every rank's payload decoded alone.
                let shared = step_seeds(SEED, 0, step).shared;
                let mut avg = vec![0f64; d];
                let mut lens = Vec::new();
                let mut one = vec![0f32; d];
                for r in 0..p {
                    let mut payload = Vec::new();
                    reference
                        .encode(
                            &gradient(r, step, d),
                            step_seeds(SEED, r, step),
                            &mut payload,
                        )
                        .expect("reference encode");
                    lens.push(payload.len());
                    decode_one(reference.as_mut(), &payload, shared, &mut one).expect("decode");
                    for (a, &v) in avg.iter_mut().zip(&one) {
                        *a += f64::from(v) / if majority { 1.0 } else { p as f64 };
                    }
                }
                if majority {
                    avg.iter_mut().for_each(|a| {
                        *a = if *a > 0.0 {
                            1.0
                        } else if *a < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    });
                }
                let (scale, tol) = if allreduce {
                    // P - 1 roundings of partial sums bounded by P max|g|, then divided by P.
                    let g = (0..p)
                        .flat_map(|r| gradient(r, step, d))
                        .fold(0f64, |m, v| m.max(f64::from(v).abs()));
                    (g, p as f64 * HALF_ULP)
                } else {
                    (avg.iter().fold(0f64, |m, a| m.max(a.abs())), REL_TOL)
                };
                let worst = out
                    .iter()
                    .zip(&avg)
                    .map(|(&o, &a)| (f64::from(o) - a).abs() / scale.max(1e-30))
                    .fold(0f64, f64::max);
                assert!(
                    worst <= tol,
                    "{name}, step {step}, rank {rank}/{p}: exchanged average differs from the \
                     in-process reference by {worst:e} (relative), tolerance {tol:e}"
                );
                // Accounting: what this rank handed to MPI and what it received.
                let header = if reference.fixed_payload_len().is_none() {
                    8
                } else {
                    0
                };
                if let Some(f) = fixed_len {
                    assert_eq!(
                        lens[rank],
                        f(d),
                        "{name}: payload length against its formula"
                    );
                }
                assert_eq!(
                    st.bytes_sent as usize,
                    lens[rank] + header,
                    "{name}: bytes sent"
                );
                let others: usize = if allreduce {
                    lens[rank] // an allreduce returns one reduced vector
                } else {
                    (0..p)
                        .filter(|&r| r != rank)
                        .map(|r| lens[r] + header)
                        .sum()
                };
                assert_eq!(st.bytes_received as usize, others, "{name}: bytes received");
                // Every rank holds the same aggregate, bit for bit.
                let sums = comm.all_gather_u64(checksum(&out));
                assert!(
                    sums.iter().all(|&c| c == sums[0]),
                    "{name}, step {step}: aggregates differ across ranks: {sums:x?}"
                );
            }
        }
    }));
    if let Err(e) = outcome {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        eprintln!("rank {rank}: {msg}");
        // Do not leave the other ranks waiting in a collective.
        comm.abort(1);
    }
    comm.barrier();
    if rank == 0 {
        println!("EXCHANGE CHECK OK on {p} ranks ({} cases)", CASES.len());
    }
}

#[test]
fn exchange_equals_in_process_reference_on_2_and_4_ranks() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for ranks in [2usize, 4] {
        let out = std::process::Command::new("timeout")
            .args(["--kill-after=10", "180", "mpirun", "-n", &ranks.to_string()])
            .arg(&exe)
            .args([
                "--exact",
                "exchange_equals_in_process_reference_on_2_and_4_ranks",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
            .output()
            .expect("cannot start mpirun");
        common::assert_success(&out, &format!("exchange check on {ranks} ranks"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("EXCHANGE CHECK OK on {ranks} ranks")),
            "{stdout}"
        );
    }
}

//! Every gradient exchange scheme under real `mpirun` with 2 and 4 ranks: training runs,
//! all ranks end bit-identical, and the bytes each rank hands to MPI per step equal the
//! payload formula of the scheme.

mod common;
use common::*;

/// (scheme, extra overrides) covering every scheme and both index codings.
const CASES: &[(&str, &[&str])] = &[
    ("dense", &[]),
    ("cross_polytope", &["compression.repetitions=64"]),
    (
        "cross_polytope",
        &["compression.repetitions=64", "compression.coding=\"rice\""],
    ),
    (
        "cross_polytope",
        &["compression.repetitions=16", "compression.block=\"layer\""],
    ),
    // The simplex has R^2 = d^2: only small blocks keep its variance trainable.
    (
        "simplex",
        &[
            "compression.repetitions=4",
            "compression.block=8",
            "optim.lr=0.01",
        ],
    ),
    ("hadamard", &["compression.repetitions=64"]),
    ("sparse", &["compression.k=64", "compression.rotate=false"]),
    (
        "sparse",
        &[
            "compression.k=256",
            "compression.rotate=true",
            "compression.coding=\"rice\"",
        ],
    ),
    ("fp16", &[]),
    ("qsgd", &["compression.levels=4", "compression.bucket=256"]),
    ("terngrad", &[]),
    ("signsgd", &["optim.lr=0.001"]),
    ("ef_signsgd", &[]),
    ("topk", &["compression.k_ratio=0.05"]),
];

fn run_case(ranks: usize, scheme: &str, extra: &[&str], tag: &str) -> serde_json::Value {
    let out = scratch(tag);
    let set = format!("compression.scheme={scheme}");
    let mut args = vec![
        "train",
        "--config",
        "configs/default.toml",
        "--set",
        "run.epochs=2",
        "--set",
        &set,
        "--out",
        out.to_str().unwrap(),
    ];
    for e in extra {
        args.push("--set");
        args.push(e);
    }
    let o = run_vqsgd(ranks, &args, 180);
    assert_success(&o, &format!("{scheme} {extra:?} on {ranks} ranks"));
    summary(&out)
}

#[test]
fn every_scheme_trains_with_bit_identical_ranks() {
    for (i, (scheme, extra)) in CASES.iter().enumerate() {
        for ranks in [2usize, 4] {
            let s = run_case(ranks, scheme, extra, &format!("scheme{i}-n{ranks}"));
            assert_eq!(s["ranks_agree"], true, "{scheme} {extra:?} n={ranks}: {s}");
            assert_eq!(s["world_size"], ranks as u64);
            assert_eq!(s["scheme"], *scheme);
            let loss = s["final"]["test_loss"].as_f64().unwrap();
            assert!(loss.is_finite(), "{scheme}: test loss {loss}");
            // Bytes actually handed to MPI, per step, against the dense equivalent.
            let payload = s["comm"]["payload_bytes_per_rank_per_step"]
                .as_f64()
                .unwrap();
            let dense = s["comm"]["dense_bytes_per_rank_per_step"].as_f64().unwrap();
            assert!(payload > 0.0);
            if *scheme != "dense" && *scheme != "fp16" {
                assert!(
                    payload < dense / 3.0,
                    "{scheme}: {payload} B vs dense {dense} B"
                );
            }
            let steps = s["steps"].as_f64().unwrap();
            let sent = s["comm"]["total_bytes_sent_per_rank"].as_f64().unwrap();
            let recv = s["comm"]["total_bytes_received_per_rank"].as_f64().unwrap();
            assert!((sent - payload * steps).abs() < 1e-6 * sent.max(1.0));
            if *scheme != "dense" && *scheme != "fp16" {
                // allgather: every rank receives every other rank's payload
                assert!(
                    (recv - sent * (ranks as f64 - 1.0)).abs() <= 1e-6 * recv.max(1.0)
                        || extra.iter().any(|e| e.contains("rice")),
                    "{scheme}: received {recv}, sent {sent}"
                );
            }
        }
    }
}

/// The overlapped per-layer exchange (`compression.overlap = true`) under mpirun: ranks agree,
/// the payload is the sum of the per-layer payloads, and the hidden time is reported.
#[test]
fn overlapped_exchange_trains_with_bit_identical_ranks() {
    // MLP 64-64-10: layer groups of 64*64+64 = 4160 and 64*10+10 = 650 parameters, each its own
    // cross-polytope block with s = 64 fixed-width indices:
    // ceil((32 + 64 ceil(log2 8320)) / 8) + ceil((32 + 64 ceil(log2 1300)) / 8) = 116 + 92.
    const PAYLOAD: f64 = 208.0;
    for ranks in [2usize, 4] {
        let s = run_case(
            ranks,
            "cross_polytope",
            &["compression.repetitions=64", "compression.overlap=true"],
            &format!("overlap-n{ranks}"),
        );
        assert_eq!(s["ranks_agree"], true, "{s}");
        assert_eq!(s["comm"]["payload_bytes_per_rank_per_step"], PAYLOAD, "{s}");
        assert_eq!(s["comm"]["collective"], "allgather");
        let hidden = s["time"]["comm_hidden_s"].as_f64().unwrap();
        assert!(hidden >= 0.0 && hidden.is_finite(), "{s}");
        assert!(s["final"]["test_accuracy"].as_f64().unwrap() > 0.5, "{s}");
    }
}

/// Overlap needs fixed-length payloads of an allgather scheme without error feedback.
#[test]
fn overlap_with_an_unsuitable_scheme_is_a_clear_error() {
    for (scheme, extra) in [
        ("dense", ""),
        ("fp16", ""),
        ("topk", ""),
        ("cross_polytope", "compression.coding=\"rice\""),
    ] {
        let set = format!("compression.scheme={scheme}");
        let mut args = vec![
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            &set,
            "--set",
            "compression.overlap=true",
        ];
        if !extra.is_empty() {
            args.extend(["--set", extra]);
        }
        let o = run_vqsgd(2, &args, 60);
        assert!(!o.status.success(), "{scheme} with overlap was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("compression.overlap"), "{scheme}: {err}");
    }
}

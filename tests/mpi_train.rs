//! End-to-end training under real `mpirun` with 1, 2 and 4 ranks (and without a launcher):
//! the default config trains, ranks hold bit-identical parameters, the output files are
//! complete, and an error on one rank ends the whole job instead of hanging it.

mod common;
use common::*;

/// Accuracy the short default run must reach on every rank count.
const MIN_ACCURACY: f64 = 0.93;
/// Largest accuracy difference between rank counts (same global data, different batches).
const MAX_ACCURACY_SPREAD: f64 = 0.04;

fn train_default(ranks: usize, tag: &str) -> serde_json::Value {
    let out = scratch(tag);
    let o = run_vqsgd(
        ranks,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            "run.epochs=25",
            "--out",
            out.to_str().unwrap(),
        ],
        300,
    );
    assert_success(&o, &format!("default config on {ranks} ranks"));
    for f in [
        "summary.json",
        "metrics.csv",
        "ranks.csv",
        "config.toml",
        "run.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing after {ranks}-rank run");
    }
    let ranks_csv = std::fs::read_to_string(out.join("ranks.csv")).unwrap();
    assert_eq!(
        ranks_csv.lines().count(),
        ranks.max(1) + 1,
        "ranks.csv: {ranks_csv}"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        metrics.lines().count() >= 2,
        "metrics.csv has no rows: {metrics}"
    );
    summary(&out)
}

#[test]
fn default_config_trains_and_ranks_agree_on_1_2_4_ranks() {
    let mut accs = Vec::new();
    for (ranks, tag) in [(0usize, "single"), (1, "n1"), (2, "n2"), (4, "n4")] {
        let s = train_default(ranks, tag);
        assert_eq!(s["world_size"], ranks.max(1) as u64, "{s}");
        assert_eq!(s["ranks_agree"], true, "{s}");
        assert_eq!(s["scheme"], "dense");
        assert_eq!(s["status"], "complete");
        let acc = s["final"]["test_accuracy"].as_f64().unwrap();
        assert!(
            acc >= MIN_ACCURACY,
            "{ranks} ranks: accuracy {acc} < {MIN_ACCURACY}"
        );
        let dense = s["comm"]["dense_bytes_per_rank_per_step"].as_f64().unwrap();
        let payload = s["comm"]["payload_bytes_per_rank_per_step"]
            .as_f64()
            .unwrap();
        assert_eq!(
            dense, payload,
            "dense allreduce hands 4d bytes to MPI per step"
        );
        assert_eq!(dense, 4.0 * s["n_params"].as_f64().unwrap());
        accs.push(acc);
    }
    let spread = accs.iter().cloned().fold(f64::MIN, f64::max)
        - accs.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread <= MAX_ACCURACY_SPREAD,
        "accuracies differ too much: {accs:?}"
    );
}

#[test]
fn same_seed_same_ranks_is_bit_reproducible() {
    let a = scratch("repro-a");
    let b = scratch("repro-b");
    for d in [&a, &b] {
        let o = run_vqsgd(
            2,
            &[
                "train",
                "--config",
                "configs/default.toml",
                "--set",
                "run.epochs=3",
                "--out",
                d.to_str().unwrap(),
            ],
            120,
        );
        assert_success(&o, "reproducibility run");
    }
    assert_eq!(
        summary(&a)["params_checksum"],
        summary(&b)["params_checksum"]
    );
}

#[test]
fn error_on_one_rank_aborts_the_whole_job() {
    let out = scratch("fault");
    let t = std::time::Instant::now();
    let o = run_vqsgd_env(
        3,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--out",
            out.to_str().unwrap(),
        ],
        120,
        &[("VQSGD_INJECT_FAULT", "1:5")],
    );
    assert!(!o.status.success(), "job with a failing rank exited 0");
    assert_ne!(o.status.code(), Some(124), "job hung until the timeout");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rank 1/3") && err.contains("injected fault"),
        "stderr: {err}"
    );
    assert!(t.elapsed().as_secs() < 100);
}

#[test]
fn bad_config_is_a_clear_error_not_a_hang() {
    let o = run_vqsgd(
        2,
        &[
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            "optim.lrr=0.1",
        ],
        60,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lrr") && err.contains("default.toml"),
        "stderr: {err}"
    );
}

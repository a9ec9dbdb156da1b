//! Helpers for integration tests that run the `vqsgd` binary, alone or under `mpirun`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared datasets directory (`VQSGD_DATASETS` or `../shared/datasets`), if present.
pub fn datasets() -> Option<PathBuf> {
    let p = std::env::var_os("VQSGD_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/datasets"));
    p.is_dir().then_some(p)
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vqsgd-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `vqsgd ARGS` under `mpirun -n ranks` (ranks = 0: no launcher at all), killed after
/// `timeout_s` seconds so a hang fails the test instead of blocking the suite.
pub fn run_vqsgd(ranks: usize, args: &[&str], timeout_s: u64) -> Output {
    run_vqsgd_env(ranks, args, timeout_s, &[])
}

/// As [`run_vqsgd`] with extra environment variables.
pub fn run_vqsgd_env(ranks: usize, args: &[&str], timeout_s: u64, env: &[(&str, &str)]) -> Output {
    let bin = env!("CARGO_BIN_EXE_vqsgd");
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10").arg(timeout_s.to_string());
    if ranks > 0 {
        cmd.args(["mpirun", "-n", &ranks.to_string()]);
    }
    cmd.arg(bin).args(args).current_dir(root());
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("cannot start timeout/mpirun")
}

/// A command's exit status, stdout and stderr, for failure messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Panic with the command's output unless it succeeded.
pub fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", output_text(out));
}

/// Read `summary.json` from a run directory.
pub fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}/summary.json: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

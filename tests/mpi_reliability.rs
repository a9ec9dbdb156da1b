//! Reliability under real `mpirun`: kill-and-resume gives bit-identical parameters, a stop
//! signal writes a checkpoint and exits cleanly, a killed rank ends the job instead of hanging
//! it, non-finite gradients stop every rank at the same step after a checkpoint, and
//! mismatched or corrupt checkpoints and configs are refused with a clear message.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn base_args(out: &Path, scheme: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--config",
        "configs/default.toml",
        "--set",
        "run.epochs=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in scheme {
        v.push("--set".into());
        v.push(s.to_string());
    }
    v.push("--out".into());
    v.push(out.to_str().unwrap().into());
    v
}

fn args_ref(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A step in [lo, hi) that differs between test runs (the interruption point).
fn random_step(lo: u64, hi: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    lo + (nanos.subsec_nanos() as u64 ^ std::process::id() as u64) % (hi - lo)
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical() {
    let cases: &[(&str, &[&str])] = &[
        ("dense", &["compression.scheme=dense"]),
        (
            "cross_polytope",
            &[
                "compression.scheme=cross_polytope",
                "compression.repetitions=64",
            ],
        ),
        (
            "sparse_rotated",
            &[
                "compression.scheme=sparse",
                "compression.k=128",
                "compression.rotate=true",
            ],
        ),
        (
            "topk_ef",
            &["compression.scheme=topk", "compression.k_ratio=0.05"],
        ),
    ];
    for (name, scheme) in cases {
        let full = scratch(&format!("resume-full-{name}"));
        let o = run_vqsgd(2, &args_ref(&base_args(&full, scheme)), 120);
        assert_success(&o, "uninterrupted run");

        let part = scratch(&format!("resume-part-{name}"));
        let mut a = base_args(&part, scheme);
        a.extend(["--set".into(), "output.checkpoint_every=7".into()]);
        let stop = random_step(10, 170);
        let fault = format!("{}:{stop}", stop % 2);
        let o = run_vqsgd_env(2, &args_ref(&a), 120, &[("VQSGD_INJECT_FAULT", &fault)]);
        assert!(
            !o.status.success(),
            "{name}: the interrupted run should fail"
        );
        assert!(!part.join("summary.json").exists());
        // Resume in the same directory with the same config.
        let out_pos = a.iter().position(|x| x == "--out").unwrap();
        a[out_pos] = "--resume".into();
        let o = run_vqsgd(2, &args_ref(&a), 120);
        assert_success(&o, &format!("{name}: resume after a crash at step {stop}"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("resuming from"), "{name}: {err}");
        assert_eq!(
            summary(&full)["params_checksum"],
            summary(&part)["params_checksum"],
            "{name}: resumed run (crash at step {stop}) differs from the uninterrupted one"
        );
        assert_eq!(summary(&full)["steps"], summary(&part)["steps"]);
    }
}

fn spawn(ranks: usize, args: &[&str]) -> Child {
    Command::new("mpirun")
        .args(["-n", &ranks.to_string()])
        .arg(env!("CARGO_BIN_EXE_vqsgd"))
        .args(args)
        .current_dir(root())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun")
}

/// Wait for `path` to appear (training has started), at most `secs`.
fn wait_for(path: &Path, secs: u64) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed().as_secs() < secs,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for the child, killing it after `secs`; returns (exit code, stderr).
fn wait_bounded(mut child: Child, secs: u64) -> (Option<i32>, String) {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if t.elapsed().as_secs() > secs {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "job hung for {secs}s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PIDs of the rank processes writing into `out`.
fn rank_pids(out: &Path) -> Vec<i32> {
    let o = Command::new("pgrep")
        .args(["-f", out.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(env!("CARGO_BIN_EXE_vqsgd")))
                .unwrap_or(false)
        })
        .collect()
}

fn long_run_args(out: &Path) -> Vec<String> {
    // Low variance and learning rate: this run must not diverge however long it goes.
    let mut a = base_args(
        out,
        &[
            "compression.scheme=cross_polytope",
            "compression.repetitions=1024",
            "optim.lr=0.01",
        ],
    );
    a.extend([
        "--set".into(),
        "run.epochs=100000".into(),
        "--set".into(),
        "run.eval_every=20".into(),
    ]);
    a
}

#[test]
fn sigterm_writes_a_checkpoint_and_exits_cleanly_then_resume_continues() {
    let out = scratch("sigterm");
    let a = long_run_args(&out);
    let child = spawn(2, &args_ref(&a));
    wait_for(&out.join("metrics.csv"), 60);
    let pids = rank_pids(&out);
    assert_eq!(pids.len(), 2, "rank processes: {pids:?}");
    // As Slurm does at a time limit: SIGTERM to every task.
    for pid in &pids {
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    }
    let (code, err) = wait_bounded(child, 60);
    assert_eq!(
        code,
        Some(3),
        "expected the preemption exit code 3; stderr:\n{err}"
    );
    assert!(err.contains("checkpoint"), "{err}");
    let s = summary(&out);
    assert_eq!(s["status"], "preempted");
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .collect();
    assert!(!ckpts.is_empty());
    // Resume, stop again with SIGUSR1 to mpirun (forwarded to the ranks).
    let mut r = a.clone();
    let pos = r.iter().position(|x| x == "--out").unwrap();
    r[pos] = "--resume".into();
    let child = spawn(2, &args_ref(&r));
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .unwrap();
    let (code, err) = wait_bounded(child, 60);
    assert_eq!(code, Some(3), "stderr:\n{err}");
    assert!(err.contains("resuming from"), "{err}");
    assert!(summary(&out)["steps"].as_u64().unwrap() > s["steps"].as_u64().unwrap());
}

#[test]
fn killed_rank_ends_the_job_and_leaves_the_checkpoint_intact() {
    let out = scratch("killrank");
    let mut a = long_run_args(&out);
    a.extend(["--set".into(), "output.checkpoint_every=10".into()]);
    let child = spawn(3, &args_ref(&a));
    wait_for(&out.join("checkpoints"), 60);
    std::thread::sleep(Duration::from_millis(300));
    let pids = rank_pids(&out);
    assert_eq!(pids.len(), 3, "{pids:?}");
    Command::new("kill")
        .args(["-KILL", &pids[1].to_string()])
        .status()
        .unwrap();
    let (code, _err) = wait_bounded(child, 60);
    assert_ne!(code, Some(0));
    // The newest checkpoint parses and passes its checksum.
    let dir = out.join("checkpoints");
    let newest = vqsgd::checkpoint::list(&dir);
    assert!(!newest.is_empty());
    let bytes = std::fs::read(&newest[0].1).unwrap();
    vqsgd::checkpoint::Checkpoint::from_bytes(&bytes).expect("newest checkpoint is intact");
}

#[test]
fn non_finite_gradient_stops_every_rank_after_a_checkpoint() {
    let out = scratch("nan");
    let a = base_args(&out, &["compression.scheme=dense"]);
    let o = run_vqsgd_env(3, &args_ref(&a), 60, &[("VQSGD_INJECT_NAN", "2:30")]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rank 2") && err.contains("step 30"), "{err}");
    assert!(
        err.contains("fc1.weight") || err.contains("layer"),
        "names the layer: {err}"
    );
    let ck = vqsgd::checkpoint::list(&out.join("checkpoints"));
    assert_eq!(
        ck[0].0, 30,
        "checkpoint of the last good state (before step 30)"
    );
}

#[test]
fn mismatched_and_corrupt_checkpoints_are_refused() {
    let out = scratch("mismatch");
    let a = base_args(&out, &["compression.scheme=dense"]);
    assert_success(&run_vqsgd(2, &args_ref(&a), 60), "first run");
    let mut r = a.clone();
    let pos = r.iter().position(|x| x == "--out").unwrap();
    r[pos] = "--resume".into();
    // Other configuration.
    let mut other = r.clone();
    other.extend(["--set".into(), "optim.lr=0.5".into()]);
    let o = run_vqsgd(2, &args_ref(&other), 60);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("different configuration"));
    // Other rank count.
    let o = run_vqsgd(3, &args_ref(&r), 60);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 ranks") && err.contains("3"), "{err}");
    // Every checkpoint corrupt.
    for (_, p) in vqsgd::checkpoint::list(&out.join("checkpoints")) {
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b.truncate(n / 2);
        std::fs::write(&p, b).unwrap();
    }
    let o = run_vqsgd(2, &args_ref(&r), 60);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no valid checkpoint"));
}

#[test]
fn ranks_started_with_different_configs_are_refused() {
    let bin = env!("CARGO_BIN_EXE_vqsgd");
    let o = Command::new("timeout")
        .args([
            "60",
            "mpirun",
            "-n",
            "1",
            bin,
            "train",
            "--config",
            "configs/default.toml",
        ])
        .args([
            "--out",
            "/tmp/vqsgd-mpmd-a",
            ":",
            "-n",
            "1",
            bin,
            "train",
            "--config",
        ])
        .args([
            "configs/default.toml",
            "--set",
            "optim.lr=0.1",
            "--out",
            "/tmp/vqsgd-mpmd-a",
        ])
        .current_dir(root())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("resolved config hash"), "{err}");
}

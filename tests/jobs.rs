//! The local job scripts for real, under mpirun: `jobs/sweep.sh` runs one config over several
//! schemes and rank counts and collects every `summary.json` into one CSV (a failing run shows
//! up in it and makes the sweep fail), and `jobs/mpirun.sh` with a hostfile records what ran
//! where. (The Slurm path of the same scripts is `tests/slurm.rs`.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{output_text as text, root, scratch, summary};

/// Run a job script with the test binary, killed after `secs`.
fn script(args: &[&str], secs: u64) -> Output {
    Command::new("timeout")
        .arg("--kill-after=10")
        .arg(secs.to_string())
        .args(args)
        .current_dir(root())
        .env("VQSGD_BIN", env!("CARGO_BIN_EXE_vqsgd"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("cannot start a job script")
}

/// The fields of one CSV line (RFC 4180 quoting, as Python's `csv` module writes it; no
/// newlines inside fields here).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Rows of a CSV written by `jobs/lib/collect.py`, as header -> value maps.
fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = t.lines();
    let head = csv_fields(lines.next().unwrap());
    lines
        .map(|l| {
            let f = csv_fields(l);
            assert_eq!(f.len(), head.len(), "{l}");
            head.iter().cloned().zip(f).collect()
        })
        .collect()
}

const SHORT: [&str; 6] = [
    "--set",
    "run.max_steps=20",
    "--set",
    "run.eval_every=10",
    "--set",
    "compression.repetitions=200",
];

#[test]
fn sweep_runs_every_scheme_and_rank_count_into_one_csv() {
    let out = scratch("sweep");
    let out_s = out.to_str().unwrap();
    let mut args = vec![
        "jobs/sweep.sh",
        "configs/default.toml",
        "--schemes",
        "dense,cross_polytope",
        "--ranks",
        "1,2",
        "--out",
        out_s,
        "--",
    ];
    args.extend(SHORT);
    let o = script(&args, 240);
    assert!(o.status.success(), "sweep failed\n{}", text(&o));
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows.len(), 4, "one row per (scheme, ranks)\n{}", text(&o));
    let mut seen = Vec::new();
    for r in &rows {
        assert_eq!(r["status"], "complete", "{r:?}");
        assert_eq!(r["ranks_agree"], "true", "{r:?}");
        assert_eq!(r["steps"], "20", "{r:?}");
        if root().join(".git").exists() {
            let c = &r["git_commit"];
            assert!(!c.is_empty() && c != "unknown", "{r:?}");
        }
        assert_eq!(r["mpi_implementation"], "openmpi", "{r:?}");
        seen.push((r["scheme"].clone(), r["world_size"].clone()));
    }
    seen.sort();
    let want: Vec<(String, String)> = [
        ("cross_polytope", "1"),
        ("cross_polytope", "2"),
        ("dense", "1"),
        ("dense", "2"),
    ]
    .iter()
    .map(|(s, w)| (s.to_string(), w.to_string()))
    .collect();
    assert_eq!(seen, want);
    // Each run directory records the command, config, commit, MPI and the node list.
    let run = out.join("cross_polytope-2r-rep1");
    let launch = std::fs::read_to_string(run.join("launch.txt")).unwrap();
    for key in [
        "command: ",
        "git_commit: ",
        "mpi_implementation: openmpi",
        "mpi_version: ",
        "nodes: ",
        "exit_code: 0",
    ] {
        assert!(
            launch.contains(key),
            "`{key}` missing from launch.txt:\n{launch}"
        );
    }
    assert!(run.join("config.toml").is_file() && run.join("nodes.txt").is_file());
}

#[test]
fn sweep_with_a_failing_run_lists_it_and_fails() {
    let out = scratch("sweep-fail");
    let out_s = out.to_str().unwrap();
    let mut args = vec![
        "jobs/sweep.sh",
        "configs/default.toml",
        "--schemes",
        "dense,no_such_scheme",
        "--ranks",
        "1",
        "--out",
        out_s,
        "--",
    ];
    args.extend(SHORT);
    let o = script(&args, 240);
    assert!(!o.status.success(), "sweep should fail\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 runs failed"), "{}", text(&o));
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    let bad: Vec<_> = rows
        .iter()
        .filter(|r| r["run_dir"].contains("no_such_scheme"))
        .collect();
    assert_eq!(bad.len(), 1, "{rows:?}");
    assert!(bad[0]["status"].starts_with("failed"), "{rows:?}");
    let log = std::fs::read_to_string(out.join("no_such_scheme-1r-rep1.log")).unwrap();
    assert!(
        log.contains("no_such_scheme"),
        "the log names the bad value:\n{log}"
    );
}

#[test]
fn mpirun_launcher_with_a_hostfile_records_the_nodes() {
    let out = scratch("hostfile");
    let hosts = out.join("hosts");
    std::fs::write(&hosts, "# this machine\nlocalhost slots=2\n").unwrap();
    let run = out.join("run");
    let mut args = vec![
        "jobs/mpirun.sh",
        "--hostfile",
        hosts.to_str().unwrap(),
        "configs/default.toml",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend(SHORT);
    let o = script(&args, 180);
    assert!(o.status.success(), "mpirun.sh failed\n{}", text(&o));
    let summary = summary(&run);
    assert_eq!(summary["world_size"], 2, "ranks = the hostfile's slots");
    assert_eq!(summary["ranks_agree"], true);
    assert_eq!(
        std::fs::read_to_string(run.join("nodes.txt"))
            .unwrap()
            .trim(),
        "localhost"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("hostfile.txt"))
            .unwrap()
            .trim(),
        "localhost 2"
    );
    let launch = std::fs::read_to_string(run.join("launch.txt")).unwrap();
    assert!(launch.contains("--hostfile"), "{launch}");
}

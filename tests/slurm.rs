//! The job scripts under a real Slurm: `scripts/slurm-up.sh` brings up slurmctld, two slurmd
//! "virtual nodes" and a private munged on this machine (installing the Debian packages when
//! they are missing), then the project's own `jobs/submit.sh` / `jobs/train.sbatch` are
//! submitted with `sbatch` and their run directories checked, including a job preempted with
//! SIGUSR1 that requeues itself and resumes bit-identically. Everything is torn down by a
//! guard, also when the test fails.
//!
//! Needs root and either the Slurm packages or apt-get. Where that is not available the test
//! prints `SKIP: reason` and passes, except under CI (`CI=true`), where it fails instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{output_text as text, root, summary};

/// Longest time one job may take from submission to completion.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The reason this machine cannot run the test, if any.
fn missing_prerequisite() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("the Slurm test needs Linux".into());
    }
    let uid = match Command::new("id").arg("-u").output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(e) => return Some(format!("cannot run `id -u`: {e}")),
    };
    if uid != "0" {
        return Some("the Slurm test needs root (slurmd runs jobs as the submitting user)".into());
    }
    let have = |p: &str| Path::new(p).exists();
    let installed =
        have("/usr/sbin/slurmctld") && have("/usr/sbin/slurmd") && have("/usr/bin/sbatch");
    if !installed && !have("/usr/bin/apt-get") {
        return Some("Slurm (slurmctld, slurmd, slurm-client, munge) is not installed and there is no apt-get".into());
    }
    for tool in ["timeout", "ss", "mpirun"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not on PATH"));
        }
    }
    None
}

/// `timeout SECS PROGRAM ARGS` in the repository root with the cluster's environment.
fn run(env: &[(&str, &str)], secs: u64, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(secs.to_string())
        .arg(program)
        .args(args);
    cmd.current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// The throw-away cluster; dropping it stops every daemon and removes its directory.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn up(dir: PathBuf) -> Cluster {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let o = run(
            &[],
            240,
            "scripts/slurm-up.sh",
            &["-n", "2", "-c", "2", "-d", dir.to_str().unwrap()],
        );
        let conf = dir.join("slurm.conf").to_string_lossy().into_owned();
        // Build the guard first, so a half-started cluster is torn down too.
        let cluster = Cluster { dir, conf };
        assert!(
            o.status.success(),
            "scripts/slurm-up.sh failed\n{}",
            text(&o)
        );
        eprintln!(
            "slurm test: cluster up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SLURM_CONF", self.conf.clone()),
            ("VQSGD_SLURM_DIR", self.dir.to_string_lossy().into_owned()),
            ("VQSGD_BIN", env!("CARGO_BIN_EXE_vqsgd").to_string()),
        ]
    }

    /// Run a Slurm client command against this cluster.
    fn client(&self, extra_env: &[(&str, &str)], program: &str, args: &[&str]) -> Output {
        let env = self.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra_env);
        run(&all, 30, program, args)
    }

    /// Wait for a job to leave the queue; return (JobState, ExitCode) from `scontrol`.
    fn wait(&self, job: &str) -> (String, String) {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let q = self.client(&[], "squeue", &["-h", "-j", job, "-o", "%T"]);
            if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.client(&[], "scancel", &[job]);
                panic!("job {job} did not finish within {JOB_TIMEOUT:?}; cancelled");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let info = self.client(&[], "scontrol", &["show", "job", job]);
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        let field = |key: &str| {
            info.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or("?")
                .to_string()
        };
        (field("JobState="), field("ExitCode="))
    }

    fn log_tails(&self) -> String {
        let mut s = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for e in entries.flatten() {
                let body = std::fs::read_to_string(e.path()).unwrap_or_default();
                let lines: Vec<&str> = body.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                s += &format!("--- {}\n{tail}\n", e.path().display());
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("slurm test failed; daemon logs:\n{}", self.log_tails());
        }
        let o = run(
            &[],
            60,
            "scripts/slurm-down.sh",
            &["-d", self.dir.to_str().unwrap()],
        );
        if !o.status.success() {
            eprintln!("scripts/slurm-down.sh failed\n{}", text(&o));
        }
    }
}

/// Job id from `jobs/submit.sh` ("submitted job 12 (...)") or `sbatch --parsable` ("12").
fn job_id(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("submitted job ")
                .map(|r| r.split(' ').next().unwrap_or(""))
        })
        .or_else(|| {
            out.lines()
                .next()
                .map(|l| l.split(';').next().unwrap_or(""))
        })
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "no job id in\n{}",
        text(o)
    );
    id
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Job output file, for failure messages.
fn job_log(scratch: &Path, job: &str) -> String {
    std::fs::read_dir(scratch)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{job}.out"))
        })
        .map(|e| read(&e.path()))
        .collect()
}

#[test]
fn batch_script_runs_under_real_slurm_on_two_nodes() {
    if let Some(reason) = missing_prerequisite() {
        assert!(!in_ci(), "the Slurm test cannot run in CI: {reason}");
        eprintln!("SKIP: {reason}");
        return;
    }
    let t0 = Instant::now();
    let pid = std::process::id();
    let scratch = std::env::temp_dir().join(format!("vqsgd-slurm-runs-{pid}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let cluster = Cluster::up(std::env::temp_dir().join(format!("vqsgd-slurm-test-{pid}")));
    let logs = format!("--sbatch=--output={}/%x-%j.out", scratch.display());

    // 1. The user path: jobs/submit.sh with the CI system file, srun --mpi=pmix, 2 nodes x 2.
    let out_a = scratch.join("submit-srun");
    let o = cluster.client(
        &[],
        "jobs/submit.sh",
        &[
            "-N",
            "2",
            "-n",
            "2",
            &logs,
            "ci",
            "configs/default.toml",
            "--set",
            "run.epochs=3",
            "--out",
            out_a.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "jobs/submit.sh failed\n{}", text(&o));
    let job = job_id(&o);
    let (state, code) = cluster.wait(&job);
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("COMPLETED", "0:0"),
        "job {job}:\n{}",
        job_log(&scratch, &job)
    );
    let s = summary(&out_a);
    assert_eq!(s["world_size"], 4, "{s}");
    assert_eq!(s["ranks_agree"], true, "{s}");
    assert_eq!(s["status"], "complete", "{s}");
    let nodes = read(&out_a.join("nodes.txt"));
    assert_eq!(
        nodes.split_whitespace().collect::<Vec<_>>(),
        ["n1", "n2"],
        "nodes.txt: {nodes}"
    );
    let launch = read(&out_a.join("launch.txt"));
    for key in [
        "command: srun --mpi=pmix",
        "submitted_with: jobs/submit.sh ci",
        "mpi_implementation: openmpi",
        "mpi_version: Open MPI",
        "git_commit: ",
        "slurm_nodelist: n[1-2]",
    ] {
        assert!(launch.contains(key), "launch.txt lacks '{key}':\n{launch}");
    }
    assert!(out_a.join("config.toml").is_file() && out_a.join("run.json").is_file());
    eprintln!(
        "slurm test: srun job done at {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 2. Plain sbatch of the batch script, #SBATCH defaults overridden on the command line,
    //    mpirun inside the allocation.
    let out_b = scratch.join("sbatch-mpirun");
    let o = cluster.client(
        &[("VQSGD_SYSTEM", "ci"), ("VQSGD_LAUNCH", "mpirun")],
        "sbatch",
        &[
            "--parsable",
            "-N",
            "2",
            "--ntasks-per-node=2",
            "--time=00:02:00",
            &format!("--output={}/%x-%j.out", scratch.display()),
            "jobs/train.sbatch",
            "configs/default.toml",
            "--set",
            "run.epochs=1",
            "--out",
            out_b.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "sbatch failed\n{}", text(&o));
    let job = job_id(&o);
    let (state, code) = cluster.wait(&job);
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("COMPLETED", "0:0"),
        "job {job}:\n{}",
        job_log(&scratch, &job)
    );
    let s = summary(&out_b);
    assert_eq!(s["world_size"], 4, "{s}");
    assert_eq!(s["ranks_agree"], true, "{s}");
    assert!(read(&out_b.join("launch.txt")).contains("launcher: mpirun in allocation (openmpi)"));
    eprintln!(
        "slurm test: mpirun job done at {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 3. A run that fails on every rank must fail the job, not report success.
    let o = cluster.client(
        &[],
        "jobs/submit.sh",
        &[
            "-N",
            "2",
            "-n",
            "1",
            &logs,
            "ci",
            "configs/default.toml",
            "--set",
            "optim.lr=-1",
            "--out",
            scratch.join("bad").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "jobs/submit.sh failed\n{}", text(&o));
    let job = job_id(&o);
    let (state, code) = cluster.wait(&job);
    assert_eq!(
        state, "FAILED",
        "a job with an invalid config ended {state} ({code})"
    );
    assert_ne!(code, "0:0");

    // 4. Preemption: SIGUSR1 (what `#SBATCH --signal` sends before the time limit) makes the
    //    ranks checkpoint and exit 3, the batch script requeues the job, and the restarted job
    //    resumes and ends bit-identical to an uninterrupted run.
    let out_c = scratch.join("preempted");
    let long = [
        "configs/default.toml",
        "--set",
        "run.epochs=600",
        "--set",
        "run.eval_every=2000",
        "--set",
        "output.checkpoint_every=500",
    ];
    let mut args = vec![
        "--parsable",
        "-N",
        "2",
        "--ntasks-per-node=1",
        "--time=00:03:00",
    ];
    let log_arg = format!("--output={}/%x-%j.out", scratch.display());
    args.push(&log_arg);
    args.push("jobs/train.sbatch");
    args.extend(long);
    let out_c_s = out_c.to_str().unwrap().to_string();
    args.extend(["--out", &out_c_s]);
    let o = cluster.client(&[("VQSGD_SYSTEM", "ci")], "sbatch", &args);
    assert!(o.status.success(), "sbatch failed\n{}", text(&o));
    let job = job_id(&o);
    // Signal once the first periodic checkpoint exists (the run is well under way).
    let deadline = Instant::now() + JOB_TIMEOUT;
    while !out_c
        .join("checkpoints")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(
            Instant::now() < deadline,
            "no checkpoint from job {job}:\n{}",
            job_log(&scratch, &job)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = cluster.client(&[], "scancel", &["--signal=USR1", &job]);
    assert!(o.status.success(), "scancel --signal failed\n{}", text(&o));
    // The job requeues itself; Slurm holds a requeued job back for a while: release it.
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let info = cluster.client(&[], "scontrol", &["show", "job", &job]);
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        if info.contains("Restarts=1") && info.contains("JobState=PENDING") {
            break;
        }
        assert!(
            !info.contains("JobState=COMPLETED") && !info.contains("JobState=FAILED"),
            "job {job} ended instead of requeueing:\n{info}\n{}",
            job_log(&scratch, &job)
        );
        assert!(
            Instant::now() < deadline,
            "job {job} was not requeued:\n{info}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Slurm keeps a requeued job back (about 2 minutes) so that the old steps are gone before
    // it starts again. Released early, the restart's step 0 can collide with the PMIx socket
    // of the previous step 0 still being torn down, so wait for that teardown ourselves.
    let deadline = Instant::now() + Duration::from_secs(30);
    let socket_prefix = format!("stepd.slurm.pmix.{job}.");
    loop {
        let stepd = Command::new("pgrep")
            .args(["-f", &format!("slurmstepd: \\[{job}\\.")])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        let socket = ["n1", "n2"].iter().any(|n| {
            let spool = cluster.dir.join("spool").join(n);
            spool
                .read_dir()
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&socket_prefix))
        });
        if !stepd && !socket {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the steps of job {job} did not go away"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = cluster.client(
        &[],
        "scontrol",
        &["update", &format!("JobId={job}"), "StartTime=now"],
    );
    assert!(o.status.success(), "scontrol update failed\n{}", text(&o));
    let (state, code) = cluster.wait(&job);
    let log = job_log(&scratch, &job);
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("COMPLETED", "0:0"),
        "job {job}:\n{log}"
    );
    assert!(
        log.contains("requeued") && log.contains("resuming from"),
        "{log}"
    );
    let s = summary(&out_c);
    assert_eq!(s["status"], "complete", "{s}");
    // The same run without interruption, under mpirun on this machine (same ranks, same seed).
    let reference = scratch.join("uninterrupted");
    let mut margs = vec!["-n", "2", env!("CARGO_BIN_EXE_vqsgd"), "train", "--config"];
    margs.extend(long);
    let ref_s = reference.to_str().unwrap().to_string();
    margs.extend(["--out", &ref_s]);
    let o = run(
        &[
            ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
            ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
            ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
        ],
        120,
        "mpirun",
        &margs,
    );
    assert!(o.status.success(), "reference run failed\n{}", text(&o));
    let r = summary(&reference);
    assert_eq!(s["steps"], r["steps"]);
    assert_eq!(
        s["params_checksum"], r["params_checksum"],
        "requeued and resumed run differs from the uninterrupted one"
    );
    eprintln!(
        "slurm test: preempted job requeued and resumed at {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    drop(cluster);
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("slurm test: passed in {:.1} s", t0.elapsed().as_secs_f64());
}

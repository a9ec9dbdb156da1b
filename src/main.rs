//! The `vqsgd` command line.
//!
//! `vqsgd train --config FILE [--set KEY=VALUE ...] [--out DIR]` runs one experiment on every
//! rank of the MPI job (or as a single process without a launcher). `vqsgd check-config FILE...`
//! validates config files without running anything. An error on any rank is logged with the
//! rank and aborts the whole MPI job with a non-zero exit code, so no rank waits forever in a
//! collective; a panic does the same.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mpi::traits::*;

use vqsgd::comm::{Collective, MpiCollective};
use vqsgd::config::Config;
use vqsgd::output::{self, RunInfo};
use vqsgd::train::{self, RunContext};
use vqsgd::Error;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Communication-efficient data-parallel training with vqSGD over MPI.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one experiment (launch with mpirun/srun for several ranks).
    Train {
        /// Experiment config (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Override a config key, e.g. `--set optim.lr=0.05` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output directory (default: `output.dir` from the config, else `runs/<run name>`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Continue the run in DIR from its newest valid checkpoint (DIR is also the output
        /// directory; the config must be the same as the checkpoint's).
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        resume: Option<PathBuf>,
    },
    /// Validate config files and print the resolved configuration.
    CheckConfig {
        /// Config files.
        files: Vec<PathBuf>,
        /// Overrides applied to every file.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print the resolved config.
        #[arg(long)]
        print: bool,
    },
    /// Turn run directories into an HTML report with SVG plots and tables (no MPI needed).
    Report {
        /// Run directories, or directories of run directories.
        runs: Vec<PathBuf>,
        /// Output directory (default `report`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Accuracy for the "time to target" column, taken from metrics.csv (default: each
        /// run's own `run.target_accuracy`, from summary.json).
        #[arg(long, value_name = "X")]
        target_accuracy: Option<f64>,
        /// Quantizer study CSV (scheme,bits,rel_err[,params,d]), e.g.
        /// benchmarks/results/bits_vs_error.csv (repeatable).
        #[arg(long, value_name = "FILE.csv")]
        bits_vs_error: Vec<PathBuf>,
    },
}

/// Logger prefix `[rank r/n]`; rank 0 logs at `info`, others at `warn`, unless `RUST_LOG` is set.
fn init_logger(rank: usize, size: usize) {
    use std::io::Write;
    let default = if rank == 0 { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format(move |buf, rec| {
            writeln!(
                buf,
                "[rank {rank}/{size} {:<5}] {}",
                rec.level(),
                rec.args()
            )
        })
        .init();
}

/// Host name of every rank, gathered as fixed-width byte strings.
fn gather_hosts(comm: &MpiCollective) -> Vec<String> {
    const W: usize = 64;
    let name = mpi::environment::processor_name().unwrap_or_else(|_| "unknown".into());
    let mut buf = [0u8; W];
    let b = name.as_bytes();
    buf[..b.len().min(W)].copy_from_slice(&b[..b.len().min(W)]);
    let mut all = vec![0u8; W * comm.size()];
    if comm.all_gather_bytes(&buf, &mut all).is_err() {
        return vec![name; comm.size()];
    }
    all.chunks(W)
        .map(|c| {
            String::from_utf8_lossy(c)
                .trim_end_matches('\0')
                .to_string()
        })
        .collect()
}

fn train_cmd(
    comm: &MpiCollective,
    config: PathBuf,
    set: Vec<String>,
    out: Option<PathBuf>,
    resume: Option<PathBuf>,
) -> vqsgd::Result<()> {
    let cfg = Config::load(&config, &set)?;
    // SIGTERM (Slurm's time limit, scancel) and SIGUSR1 (`sbatch --signal`) request a
    // checkpoint and a clean stop at the next step. A second signal before that checkpoint is
    // written terminates at once (exit 130). Once it is written the trainer clears `urgent`:
    // srun terminates a step as soon as its first rank exits, and that SIGTERM must not turn
    // the other ranks' clean preemption exit into 130.
    let stop = Arc::new(AtomicBool::new(false));
    let urgent = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&urgent))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&urgent)))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| vqsgd::Error::Other(format!("cannot install signal handler: {e}")))?;
    }
    let resuming = resume.is_some();
    let out_dir = resume
        .or(out)
        .or_else(|| cfg.output.dir.clone())
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.run.name));
    let hosts = gather_hosts(comm);
    if comm.rank() == 0 {
        output::create_dir(&out_dir)?;
        output::write_atomic(&out_dir.join("config.toml"), cfg.to_toml().as_bytes())?;
        let info = RunInfo {
            command: std::env::args().collect(),
            git_commit: output::git_commit(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            mpi_library: mpi::environment::library_version()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or("")
                .trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string(),
            hosts: hosts.clone(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
        };
        let json = serde_json::to_string_pretty(&info).unwrap_or_default();
        output::write_atomic(&out_dir.join("run.json"), json.as_bytes())?;
    }
    let summary = train::run(
        &cfg,
        RunContext {
            comm,
            out_dir: &out_dir,
            hosts,
            resume: resuming,
            stop,
            urgent,
        },
    )?;
    if comm.rank() == 0 {
        print_summary(&summary, &out_dir);
    }
    Ok(())
}

fn print_summary(s: &output::Summary, out_dir: &std::path::Path) {
    let acc = s
        .final_
        .test_accuracy
        .map(|a| format!("{a:.4}"))
        .unwrap_or_else(|| "-".into());
    println!();
    println!("run        {} ({} ranks)", s.name, s.world_size);
    println!("model      {} on {}", s.model, s.dataset);
    println!("scheme     {} {}", s.scheme, s.scheme_params);
    println!("steps      {} ({:.2} epochs)", s.steps, s.epochs);
    println!(
        "final      train loss {:.4}  test loss {:.4}  test accuracy {acc}",
        s.final_.train_loss, s.final_.test_loss
    );
    if let Some(m) = s.final_.mean_predictor_test_loss {
        println!("baseline   predicting the training mean: test loss {m:.4}");
    }
    println!(
        "traffic    {:.0} B/rank/step sent (dense {} B), ratio {:.1}x, ranks agree: {}",
        s.comm.payload_bytes_per_rank_per_step,
        s.comm.dense_bytes_per_rank_per_step,
        s.comm.compression_ratio,
        s.ranks_agree
    );
    let t = &s.time;
    println!(
        "time       total {:.2}s = compute {:.2} + encode {:.2} + comm {:.2} + decode {:.2} \
         + update {:.2} + eval {:.2}",
        t.total_s, t.compute_s, t.encode_s, t.comm_s, t.decode_s, t.update_s, t.eval_s
    );
    if t.comm_hidden_s > 0.0 {
        println!(
            "overlap    {:.2}s of exchange hidden behind backpropagation (comm above is what \
             stayed exposed)",
            t.comm_hidden_s
        );
    }
    if let Some(e) = s.epsilon_total {
        println!(
            "privacy    epsilon {:.4}/step, {e:.1} total (basic composition)",
            s.epsilon_per_step.unwrap_or(0.0)
        );
    }
    println!("results    {}", out_dir.display());
}

fn check_config(files: &[PathBuf], set: &[String], print: bool) -> ExitCode {
    let mut failed = false;
    for f in files {
        match Config::load(f, set) {
            Ok(c) => {
                println!("ok   {}", f.display());
                if print {
                    println!("{}", c.to_toml());
                }
            }
            Err(e) => {
                eprintln!("FAIL {}: {e}", f.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report_cmd(
    inputs: Vec<PathBuf>,
    out: Option<PathBuf>,
    target_accuracy: Option<f64>,
    bits_vs_error: Vec<PathBuf>,
) -> ExitCode {
    let opts = vqsgd::report::Options {
        inputs,
        out: out.unwrap_or_else(|| PathBuf::from("report")),
        target_accuracy,
        bits_vs_error,
    };
    match vqsgd::report::run(&opts) {
        Ok(o) => {
            for r in &o.runs {
                let why = if r.notes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.notes.join("; "))
                };
                let status = r.status.as_ref().map_or("unreadable", |s| s.as_str());
                println!("{status:<10} {} ({}){why}", r.label, r.dir.display());
            }
            for e in &o.study_errors {
                println!("unreadable quantizer study {e}");
            }
            println!(
                "wrote {} files; open {}",
                o.files.len(),
                o.files[0].display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { files, set, print } => check_config(&files, &set, print),
        Command::Report {
            runs,
            out,
            target_accuracy,
            bits_vs_error,
        } => report_cmd(runs, out, target_accuracy, bits_vs_error),
        Command::Train {
            config,
            set,
            out,
            resume,
        } => {
            let Some(universe) = mpi::initialize() else {
                eprintln!("error: MPI could not be initialised");
                return ExitCode::FAILURE;
            };
            let comm = MpiCollective::new(universe.world());
            let (rank, size) = (comm.rank(), comm.size());
            init_logger(rank, size);
            // A panic on any rank must not leave the others waiting in a collective.
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                default_hook(info);
                eprintln!("[rank {rank}/{size} ERROR] panic: aborting the MPI job");
                let world = mpi::topology::SimpleCommunicator::world();
                world.abort(101);
            }));
            match train_cmd(&comm, config, set, out, resume) {
                Ok(()) => ExitCode::SUCCESS,
                // Every rank stops at the same step: exit cleanly, distinct codes.
                Err(e @ Error::Preempted { .. }) => {
                    if rank == 0 {
                        eprintln!("[rank {rank}/{size} WARN ] {e}");
                    }
                    ExitCode::from(train::EXIT_PREEMPTED)
                }
                Err(Error::Agreed(e)) => {
                    if rank == 0 {
                        eprintln!("[rank {rank}/{size} ERROR] {e}");
                    }
                    match *e {
                        Error::Numerical(_) => ExitCode::from(train::EXIT_NUMERICAL),
                        _ => ExitCode::from(2),
                    }
                }
                // Anything else may have happened on this rank alone: abort the whole job
                // so no other rank waits forever in a collective.
                Err(e) => {
                    eprintln!("[rank {rank}/{size} ERROR] {e}");
                    if size > 1 {
                        comm.abort(2);
                    }
                    ExitCode::from(2)
                }
            }
        }
    }
}

//! The training loop.
//!
//! [`run`] ties the pieces together on every rank: load the data and take this rank's shard,
//! build the model and the gradient synchronisation, then for every step compute the local
//! gradient, synchronise it, and apply the optimiser. At every evaluation the ranks evaluate
//! disjoint slices of the test set, reduce the results, and compare parameter checksums: all
//! ranks must hold bit-identical parameters, and a mismatch is an error. Rank 0 writes the
//! output files (see [`crate::output`]) and the checkpoints (see [`crate::checkpoint`]).
//!
//! Reliability: between computing the gradient and exchanging it, the ranks agree (one tiny
//! allreduce) on whether any rank saw a non-finite loss or gradient or received a stop signal.
//! Either way every rank knows at the same step, so they write a checkpoint of the last good
//! state together and stop cleanly instead of hanging in a collective or exchanging NaNs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::{s, Array1, Array2};

use crate::checkpoint::{self, Checkpoint, TrainState};
use crate::comm::{Collective, ReduceOp};
use crate::config::Config;
use crate::data::{self, Split, Task};
use crate::metrics::{checksum, RankStats};
use crate::model::{self, Model};
use crate::optim::Sgd;
use crate::output::{self, MetricsRow, Summary};
use crate::overlap::OverlappedExchange;
use crate::probe::ProbeReport;
use crate::progress::Progress;
use crate::sync::{self, GradientSync};
use crate::{Error, Result};

/// Exit code of a run stopped by SIGTERM/SIGUSR1 after writing a checkpoint.
pub const EXIT_PREEMPTED: u8 = 3;
/// Exit code of a run stopped because a rank saw a non-finite loss or gradient.
pub const EXIT_NUMERICAL: u8 = 4;

/// What the caller of [`run`] provides besides the config.
pub struct RunContext<'a> {
    /// The communicator.
    pub comm: &'a dyn Collective,
    /// Output directory (rank 0 writes into it; it must exist on rank 0).
    pub out_dir: &'a Path,
    /// Host name of every rank, for `ranks.csv`.
    pub hosts: Vec<String>,
    /// Continue from the newest valid checkpoint in `out_dir/checkpoints`.
    pub resume: bool,
    /// Set by a signal handler: checkpoint and stop at the next step.
    pub stop: Arc<AtomicBool>,
    /// Set by the signal handlers too; while it is set, the next signal exits at once. The
    /// trainer clears it once the stop checkpoint is on disk (see `main.rs`).
    pub urgent: Arc<AtomicBool>,
}

/// Evaluation result reduced over ranks.
#[derive(Clone, Copy, Debug)]
struct GlobalEval {
    train_loss: f64,
    test_loss: f64,
    test_accuracy: Option<f64>,
}

/// Fail with a clear message unless every rank reports the same `value`.
pub fn check_agreement(comm: &dyn Collective, value: u64, what: &str) -> Result<()> {
    let all = comm.all_gather_u64(value);
    if let Some((r, v)) = all.iter().enumerate().find(|(_, &v)| v != all[0]) {
        return Err(Error::Consistency(format!(
            "{what}: rank 0 has {:016x}, rank {r} has {v:016x}",
            all[0]
        )));
    }
    Ok(())
}

/// A stable 64-bit hash of a string (FNV-1a), for comparing configs across ranks.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The hash a checkpoint must match: the resolved config without the `[output]` table.
pub fn checkpoint_hash(cfg: &Config) -> u64 {
    let mut c = cfg.clone();
    c.output = Default::default();
    hash_str(&c.to_toml())
}

/// Index of the first non-finite value, if any.
fn first_non_finite(v: &[f32]) -> Option<usize> {
    // Summing is vectorised; only search when the sum is not finite.
    let s: f32 = v.chunks(8).map(|c| c.iter().sum::<f32>()).sum();
    if s.is_finite() {
        return None;
    }
    v.iter().position(|x| !x.is_finite())
}

/// What is wrong with the loss or gradient, naming step, rank and layer; `None` when finite.
fn non_finite_report(
    loss: f64,
    grad: &[f32],
    model: &dyn Model,
    step: u64,
    rank: usize,
) -> Option<String> {
    if !loss.is_finite() {
        return Some(format!("loss is {loss} at step {step} on rank {rank}"));
    }
    let i = first_non_finite(grad)?;
    let layer = model
        .layers()
        .iter()
        .find(|l| l.range.contains(&i))
        .map(|l| l.name.clone())
        .unwrap_or_default();
    Some(format!(
        "gradient is {} at step {step} on rank {rank}, layer {layer} (index {i})",
        grad[i]
    ))
}

/// Fault injection for testing failure handling: `VQSGD_INJECT_FAULT=RANK:STEP` makes rank
/// RANK fail with an error at step STEP, as a real error would; `VQSGD_INJECT_NAN=RANK:STEP`
/// makes rank RANK's gradient NaN at step STEP.
fn injected(var: &str, rank: usize) -> Result<Option<u64>> {
    let Ok(v) = std::env::var(var) else {
        return Ok(None);
    };
    let parsed = v.split_once(':').and_then(|(r, s)| {
        Some((
            r.trim().parse::<usize>().ok()?,
            s.trim().parse::<u64>().ok()?,
        ))
    });
    match parsed {
        Some((r, s)) => Ok((r == rank).then_some(s)),
        None => Err(Error::Other(format!("{var}={v}: expected RANK:STEP"))),
    }
}

/// Regression: the test loss (half squared error) of predicting the training mean.
fn mean_predictor_loss(split: &Split) -> Option<f64> {
    if split.task != Task::Regression || split.train.is_empty() || split.test.is_empty() {
        return None;
    }
    let mean = split.train.y.iter().map(|&v| f64::from(v)).sum::<f64>() / split.train.len() as f64;
    let sse: f64 = split
        .test
        .y
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum();
    Some(0.5 * sse / split.test.len() as f64)
}

/// What the ranks agreed at a step boundary.
enum Control {
    Continue,
    Stop,
    NonFinite { rank: usize },
}

/// All state of one rank's training run.
struct Trainer<'a> {
    cfg: &'a Config,
    comm: &'a dyn Collective,
    out_dir: &'a Path,
    hosts: Vec<String>,
    stop: Arc<AtomicBool>,
    urgent: Arc<AtomicBool>,
    split: Split,
    model: Box<dyn Model>,
    sync: Box<dyn GradientSync>,
    overlapped: Option<OverlappedExchange>,
    shard: data::Sharder,
    optim: Sgd,
    params: Vec<f32>,
    grad: Vec<f32>,
    update: Vec<f32>,
    xb: Array2<f32>,
    yb: Array1<f32>,
    steps_per_epoch: u64,
    total_steps: u64,
    eval_every: u64,
    config_hash: u64,
    stats: RankStats,
    rows: Vec<MetricsRow>,
    loss_sum: f64,
    loss_count: f64,
    last: GlobalEval,
    time_to_target: Option<f64>,
    step: u64,
    elapsed_before: f64,
    started: Instant,
    network: Option<ProbeReport>,
}

impl<'a> Trainer<'a> {
    fn new(cfg: &'a Config, ctx: RunContext<'a>) -> Result<Self> {
        let comm = ctx.comm;
        let (rank, world) = (comm.rank(), comm.size());
        let seed = cfg.run.seed;
        // Every rank must run the same experiment on the same data.
        check_agreement(comm, hash_str(&cfg.to_toml()), "resolved config hash")?;
        let split = data::load(&cfg.data, cfg.model.kind, seed)?;
        check_agreement(
            comm,
            hash_str(&format!(
                "{} {} {} {}",
                split.train.len(),
                split.train.n_features(),
                split.test.len(),
                split.name
            )),
            "data shapes",
        )?;
        let mut model = model::build(&cfg.model, split.train.n_features(), split.task)?;
        let dim = model.n_params();
        // Before any parameter-sized buffer: do the ranks on this host have the memory?
        if let Some(total) = model::host_memory() {
            let host = ctx.hosts.get(rank);
            let here = ctx.hosts.iter().filter(|h| Some(*h) == host).count();
            model::check_memory(dim, model::bytes_per_param(cfg), here.max(1), total)?;
        }
        let layers: Vec<std::ops::Range<usize>> =
            model.layers().iter().map(|l| l.range.clone()).collect();
        let sync = sync::build(&cfg.compression, dim, &layers, seed)?;
        // The training set size is agreed above: every rank fails here alike (more ranks than
        // samples), so the job ends cleanly instead of aborting.
        let shard = data::Sharder::new(split.train.len(), rank, world, seed)
            .map_err(|e| Error::Agreed(Box::new(e)))?;
        let steps_per_epoch = shard.steps_per_epoch(cfg.optim.batch_size) as u64;
        let mut total_steps = steps_per_epoch * cfg.run.epochs as u64;
        if cfg.run.max_steps > 0 {
            total_steps = total_steps.min(cfg.run.max_steps as u64);
        }
        let eval_every = if cfg.run.eval_every > 0 {
            cfg.run.eval_every as u64
        } else {
            steps_per_epoch
        };
        let params = model.init_params(seed);
        let mut grad = vec![0f32; dim];
        let mut xb = Array2::<f32>::zeros((0, split.train.n_features()));
        let mut yb = Array1::<f32>::zeros(0);
        let overlapped = if cfg.compression.overlap {
            // The ranges the model reports as ready, from one backward pass on one sample.
            let mut groups = Vec::new();
            split.train.gather_into(&[0], &mut xb, &mut yb);
            model.loss_grad(&params, xb.view(), yb.view(), &mut grad, &mut |r, _| {
                groups.push(r)
            });
            Some(OverlappedExchange::new(
                &cfg.compression,
                &layers,
                groups,
                seed,
            )?)
        } else {
            None
        };
        Ok(Self {
            cfg,
            comm,
            out_dir: ctx.out_dir,
            hosts: ctx.hosts,
            stop: ctx.stop,
            urgent: ctx.urgent,
            optim: Sgd::new(&cfg.optim, dim, total_steps, steps_per_epoch),
            update: vec![0f32; dim],
            split,
            model,
            sync,
            overlapped,
            shard,
            params,
            grad,
            xb,
            yb,
            steps_per_epoch,
            total_steps,
            eval_every,
            config_hash: checkpoint_hash(cfg),
            stats: RankStats::default(),
            rows: Vec::new(),
            loss_sum: 0.0,
            loss_count: 0.0,
            last: GlobalEval {
                train_loss: f64::NAN,
                test_loss: f64::NAN,
                test_accuracy: None,
            },
            time_to_target: None,
            step: 0,
            elapsed_before: 0.0,
            started: Instant::now(),
            network: None,
        })
    }

    fn is_root(&self) -> bool {
        self.comm.rank() == 0
    }

    fn wall(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// Load the newest valid checkpoint on rank 0 and restore it on every rank.
    fn resume(&mut self) -> Result<()> {
        let dir = checkpoint::dir_of(self.out_dir);
        // 0 = none, 1 = checkpoint follows, 2 = error message follows.
        let mut msg = Vec::new();
        if self.is_root() {
            match checkpoint::load_latest(&dir, self.config_hash, self.comm.size() as u32) {
                Ok(Some((path, ck))) => {
                    log::info!("resuming from {} (step {})", path.display(), ck.state.step);
                    msg.push(1);
                    msg.extend_from_slice(&ck.to_bytes());
                }
                Ok(None) => msg.push(0),
                Err(e) => {
                    msg.push(2);
                    msg.extend_from_slice(e.to_string().as_bytes());
                }
            }
        }
        self.comm.broadcast_bytes(&mut msg)?;
        let ck = match msg.first() {
            Some(1) => Checkpoint::from_bytes(&msg[1..])?,
            // Rank 0's message, already worded (and prefixed) by its error; every rank has it.
            Some(2) => {
                let m = String::from_utf8_lossy(&msg[1..]).into_owned();
                return Err(Error::Agreed(Box::new(Error::Other(m))));
            }
            _ => {
                if self.is_root() {
                    log::warn!(
                        "--resume: no checkpoint in {}, starting fresh",
                        dir.display()
                    );
                }
                return Ok(());
            }
        };
        let s = ck.state;
        let rank = self.comm.rank();
        if s.params.len() != self.params.len() || s.stats.len() != self.comm.size() {
            return Err(Error::Consistency(format!(
                "checkpoint has {} parameters and {} ranks, model has {} and job {}",
                s.params.len(),
                s.stats.len(),
                self.params.len(),
                self.comm.size()
            )));
        }
        self.params = s.params;
        if !self.optim.set_velocity(&s.velocity) {
            return Err(Error::Consistency(
                "checkpoint momentum buffer has the wrong size".into(),
            ));
        }
        self.sync
            .set_feedback_memory(s.feedback.get(rank).map_or(&[][..], |m| &m[..]))?;
        self.stats = s.stats[rank];
        self.rows = s.rows;
        // The global running loss lives on rank 0; the next evaluation sums over ranks.
        (self.loss_sum, self.loss_count) = if rank == 0 {
            (s.loss_sum, s.loss_count)
        } else {
            (0.0, 0.0)
        };
        self.time_to_target = s.time_to_target;
        self.step = s.step;
        self.elapsed_before = s.elapsed_s;
        Ok(())
    }

    /// Write a checkpoint of the current state (collective; rank 0 writes).
    fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let world = self.comm.size();
        let feedback = match self.sync.feedback_memory() {
            Some(m) => {
                let bytes: Vec<u8> = m.iter().flat_map(|v| v.to_le_bytes()).collect();
                let mut all = vec![0u8; bytes.len() * world];
                self.comm.all_gather_bytes(&bytes, &mut all)?;
                all.chunks(bytes.len().max(1))
                    .take(world)
                    .map(|c| {
                        c.chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect()
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let all = self.comm.all_gather_f64(&self.stats.to_vec());
        let stats = all
            .chunks(RankStats::LEN)
            .map(RankStats::from_slice)
            .collect();
        let mut loss = [0.0; 2];
        self.comm
            .all_reduce_f64(&[self.loss_sum, self.loss_count], &mut loss, ReduceOp::Sum);
        let dir = checkpoint::dir_of(self.out_dir);
        let path = dir.join(format!("ckpt-{:012}.bin", self.step));
        if self.is_root() {
            let ck = Checkpoint {
                config_hash: self.config_hash,
                world: world as u32,
                state: TrainState {
                    step: self.step,
                    elapsed_s: self.wall(),
                    loss_sum: loss[0],
                    loss_count: loss[1],
                    time_to_target: self.time_to_target,
                    params: self.params.clone(),
                    velocity: self.optim.velocity().to_vec(),
                    feedback,
                    stats,
                    rows: self.rows.clone(),
                },
            };
            checkpoint::save(&dir, &ck, self.cfg.output.keep_checkpoints)?;
        }
        // Nobody goes on (or exits) before the checkpoint is on disk.
        self.comm.barrier();
        Ok(path)
    }

    /// Agree on stop requests and non-finite values (one small allreduce).
    fn control(&self, bad: bool) -> Control {
        let local = [
            f64::from(u8::from(self.stop.load(Ordering::Relaxed))),
            if bad {
                self.comm.rank() as f64 + 1.0
            } else {
                0.0
            },
        ];
        let mut g = [0.0; 2];
        self.comm.all_reduce_f64(&local, &mut g, ReduceOp::Max);
        if g[1] > 0.0 {
            Control::NonFinite {
                rank: g[1] as usize - 1,
            }
        } else if g[0] > 0.0 {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    /// Evaluate, log, append a metrics row; true when the target accuracy was reached.
    fn evaluate(&mut self, progress: &mut Progress) -> Result<bool> {
        let t0 = Instant::now();
        let comm = self.comm;
        let test = &self.split.test;
        let r = data::shard_range(test.len(), comm.rank(), comm.size());
        let (loss_sum, correct) = if r.is_empty() {
            (0.0, 0.0)
        } else {
            let e = self.model.evaluate(
                &self.params,
                test.x.slice(s![r.clone(), ..]),
                test.y.slice(s![r.clone()]),
            );
            (
                e.loss * r.len() as f64,
                e.accuracy.unwrap_or(0.0) * r.len() as f64,
            )
        };
        let local = [
            loss_sum,
            correct,
            r.len() as f64,
            self.loss_sum,
            self.loss_count,
            self.stats.bytes_sent as f64,
        ];
        let mut g = [0.0; 6];
        comm.all_reduce_f64(&local, &mut g, ReduceOp::Sum);
        self.loss_sum = 0.0;
        self.loss_count = 0.0;
        let classification = matches!(self.split.task, Task::Classification { .. });
        self.last = GlobalEval {
            train_loss: if g[4] > 0.0 { g[3] / g[4] } else { f64::NAN },
            test_loss: g[0] / g[2].max(1.0),
            test_accuracy: classification.then(|| g[1] / g[2].max(1.0)),
        };
        let agree = check_agreement(comm, checksum(&self.params), "parameter checksum");
        self.stats.eval_s += t0.elapsed().as_secs_f64();
        let row = MetricsRow {
            step: self.step,
            epoch: self.step as f64 / self.steps_per_epoch as f64,
            wall_s: self.wall(),
            bytes_sent_per_rank: g[5] / comm.size() as f64,
            train_loss: self.last.train_loss,
            test_loss: self.last.test_loss,
            test_accuracy: self.last.test_accuracy,
        };
        if self.is_root() {
            progress.clear();
            log::info!(
                "step {}/{} epoch {:.2} train loss {:.4} test loss {:.4}{} sent {}/rank, {:.1}s",
                self.step,
                self.total_steps,
                row.epoch,
                row.train_loss,
                row.test_loss,
                row.test_accuracy
                    .map(|a| format!(" test acc {a:.4}"))
                    .unwrap_or_default(),
                crate::progress::human_bytes(row.bytes_sent_per_rank),
                row.wall_s
            );
        }
        self.rows.push(row);
        if self.is_root() {
            output::write_atomic(
                &self.out_dir.join("metrics.csv"),
                output::metrics_csv(&self.rows).as_bytes(),
            )?;
        }
        agree?;
        let target = self.cfg.run.target_accuracy;
        if let (Some(acc), true) = (self.last.test_accuracy, target > 0.0) {
            if acc >= target && self.time_to_target.is_none() {
                self.time_to_target = Some(self.wall());
                if self.is_root() {
                    log::info!("reached target accuracy {target} at step {}", self.step);
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The training loop; returns the status for the summary.
    fn train(&mut self) -> Result<&'static str> {
        let rank = self.comm.rank();
        let fault = injected("VQSGD_INJECT_FAULT", rank)?;
        let nan_at = injected("VQSGD_INJECT_NAN", rank)?;
        let ckpt_every = self.cfg.output.checkpoint_every as u64;
        let warmup = self.cfg.compression.warmup_steps as u64;
        let batch = self.cfg.optim.batch_size;
        let mut progress = Progress::new(self.is_root(), self.total_steps);
        let mut order: Vec<usize> = Vec::new();
        let mut order_epoch = u64::MAX;
        self.started = Instant::now();

        while self.step < self.total_steps {
            let step = self.step;
            let epoch = step / self.steps_per_epoch;
            if epoch != order_epoch {
                self.shard.epoch_indices_into(epoch, &mut order);
                order_epoch = epoch;
            }
            let t = (step % self.steps_per_epoch) as usize;
            let idx = self.shard.batch(&order, t, batch);
            self.split
                .train
                .gather_into(idx, &mut self.xb, &mut self.yb);
            if fault == Some(step) {
                return Err(Error::Other(format!(
                    "injected fault at step {step} (VQSGD_INJECT_FAULT)"
                )));
            }

            // Overlapped exchange: compute and exchange are fused; check afterwards.
            let (loss, st) = match self.overlapped.as_mut() {
                Some(ov) if step >= warmup => {
                    let (model, params, grad, xb, yb) = (
                        &mut self.model,
                        &self.params,
                        &mut self.grad,
                        &self.xb,
                        &self.yb,
                    );
                    let (loss, st, compute_s) = ov.step(
                        self.comm,
                        step,
                        &mut |ready| model.loss_grad(params, xb.view(), yb.view(), grad, ready),
                        &mut self.update,
                    )?;
                    self.stats.compute_s += compute_s;
                    (loss, Some(st))
                }
                _ => {
                    let t0 = Instant::now();
                    let loss = self.model.loss_grad(
                        &self.params,
                        self.xb.view(),
                        self.yb.view(),
                        &mut self.grad,
                        &mut |_, _| {},
                    );
                    self.stats.compute_s += t0.elapsed().as_secs_f64();
                    (loss, None)
                }
            };
            if nan_at == Some(step) {
                self.grad[0] = f32::NAN;
            }
            let report = non_finite_report(loss, &self.grad, self.model.as_ref(), step, rank);
            if let Some(m) = &report {
                log::error!("{m}");
            }
            match self.control(report.is_some()) {
                Control::Continue => {}
                Control::Stop => {
                    let path = self.save_checkpoint()?;
                    // The work is safe: signals from here on (srun ending the step) are ignored.
                    self.urgent.store(false, Ordering::Relaxed);
                    if self.is_root() {
                        progress.clear();
                        log::warn!("stop requested: checkpoint {} written", path.display());
                    }
                    return Ok("preempted");
                }
                Control::NonFinite { rank: bad } => {
                    let path = self.save_checkpoint()?;
                    return Err(Error::Agreed(Box::new(Error::Numerical(format!(
                        "rank {bad} saw a non-finite loss or gradient at step {step}{}; \
                         checkpoint of the last good state: {}",
                        report.map(|m| format!(" ({m})")).unwrap_or_default(),
                        path.display()
                    )))));
                }
            }
            let st = match st {
                Some(st) => st,
                None => self
                    .sync
                    .sync(&self.grad, &mut self.update, step, self.comm)?,
            };
            self.loss_sum += loss;
            self.loss_count += 1.0;
            self.stats.encode_s += st.encode_s;
            self.stats.comm_s += st.comm_s;
            self.stats.comm_hidden_s += st.hidden_s;
            self.stats.decode_s += st.decode_s;
            self.stats.bytes_sent += st.bytes_sent;
            self.stats.bytes_received += st.bytes_received;

            let t0 = Instant::now();
            self.optim.step(&mut self.params, &self.update, step);
            self.stats.update_s += t0.elapsed().as_secs_f64();
            self.step += 1;
            self.stats.steps = self.step;
            progress.update(
                self.step,
                self.step as f64 / self.steps_per_epoch as f64,
                self.loss_sum / self.loss_count.max(1.0),
                self.stats.bytes_sent as f64,
            );

            let end = self.step == self.total_steps;
            if (self.step % self.eval_every == 0 || end) && self.evaluate(&mut progress)? {
                break;
            }
            if ckpt_every > 0 && self.step % ckpt_every == 0 && !end {
                self.save_checkpoint()?;
            }
        }
        progress.clear();
        self.save_checkpoint()?;
        Ok("complete")
    }

    /// Gather every rank's accounting, write `ranks.csv` and `summary.json`.
    fn finish(&self, status: &str, ranks_agree: bool) -> Result<Summary> {
        let world = self.comm.size();
        let all = self.comm.all_gather_f64(&self.stats.to_vec());
        let per_rank: Vec<RankStats> = all
            .chunks(RankStats::LEN)
            .map(RankStats::from_slice)
            .collect();
        let mean =
            |f: &dyn Fn(&RankStats) -> f64| per_rank.iter().map(f).sum::<f64>() / world as f64;
        let steps_f = self.step.max(1) as f64;
        let payload = mean(&|s| s.bytes_sent as f64) / steps_f;
        let dense = self.sync.dense_bytes();
        let info = self.sync.info();
        let collective = match &self.overlapped {
            Some(_) => "allgather",
            None => self.sync.collective(),
        };
        let p = world as f64;
        let last = self.rows.last();
        let summary = Summary {
            status: status.into(),
            name: self.cfg.run.name.clone(),
            world_size: world,
            model: self.model.describe(),
            n_params: self.params.len(),
            dataset: self.split.name.clone(),
            scheme: info.scheme.clone(),
            scheme_params: info.params.clone(),
            steps: self.step,
            epochs: self.step as f64 / self.steps_per_epoch as f64,
            final_: output::Final {
                train_loss: last.map_or(f64::NAN, |r| r.train_loss),
                test_loss: last.map_or(f64::NAN, |r| r.test_loss),
                test_accuracy: last.and_then(|r| r.test_accuracy),
                mean_predictor_test_loss: mean_predictor_loss(&self.split),
            },
            params_checksum: format!("{:016x}", checksum(&self.params)),
            ranks_agree,
            comm: output::CommSummary {
                payload_bytes_per_rank_per_step: payload,
                dense_bytes_per_rank_per_step: dense,
                compression_ratio: if payload > 0.0 {
                    dense as f64 / payload
                } else {
                    1.0
                },
                bits_per_rank_per_step: payload * 8.0,
                total_bytes_sent_per_rank: mean(&|s| s.bytes_sent as f64),
                total_bytes_received_per_rank: mean(&|s| s.bytes_received as f64),
                ring_allreduce_wire_bytes: 2.0 * (p - 1.0) / p * dense as f64,
                collective: collective.into(),
                wire_bytes_per_rank_per_step: if collective == "allreduce" {
                    2.0 * (p - 1.0) / p * payload
                } else {
                    (p - 1.0) * payload
                },
            },
            time: output::TimeSummary {
                total_s: self.wall(),
                compute_s: mean(&|s| s.compute_s),
                encode_s: mean(&|s| s.encode_s),
                comm_s: mean(&|s| s.comm_s),
                comm_hidden_s: mean(&|s| s.comm_hidden_s),
                decode_s: mean(&|s| s.decode_s),
                update_s: mean(&|s| s.update_s),
                eval_s: mean(&|s| s.eval_s),
                time_to_target_s: self.time_to_target,
            },
            epsilon_per_step: info.epsilon_per_step,
            epsilon_total: info.epsilon_per_step.map(|e| e * self.step as f64),
            network: self.network.clone(),
        };
        if self.is_root() {
            output::write_atomic(
                &self.out_dir.join("ranks.csv"),
                output::ranks_csv(&per_rank, &self.hosts).as_bytes(),
            )?;
            let json = serde_json::to_string_pretty(&summary)
                .map_err(|e| Error::Other(format!("cannot serialise summary: {e}")))?;
            output::write_atomic(&self.out_dir.join("summary.json"), json.as_bytes())?;
        }
        Ok(summary)
    }

    /// Optional start-up probe of the network (`[network] probe = true`).
    fn probe_network(&mut self) -> Result<()> {
        if !self.cfg.network.probe {
            return Ok(());
        }
        let payload = match &self.overlapped {
            Some(ov) => ov.payload_bytes(),
            None => self.sync.payload_bytes(),
        };
        let r = crate::probe::probe(self.comm, self.sync.dense_bytes(), payload)?;
        if self.is_root() {
            log::info!(
                "network probe: latency {:.1} us, bandwidth {:.2} GB/s; allreduce of {} B \
                 {:.3} ms, allgather of {} B payloads {:.3} ms; compression ratio {:.1} vs \
                 break-even {:.1} at {} ranks: compression {}",
                r.alpha_s * 1e6,
                r.bandwidth_bytes_per_s / 1e9,
                r.dense_bytes,
                r.measured_allreduce_s * 1e3,
                r.payload_bytes,
                r.measured_allgather_s * 1e3,
                r.compression_ratio,
                r.break_even_ratio,
                r.ranks,
                if r.compression_wins {
                    "wins"
                } else {
                    "does not win"
                }
            );
        }
        self.network = Some(r);
        Ok(())
    }
}

/// Train according to `cfg` on every rank; rank 0 writes the results. Returns the summary
/// (identical on every rank). A stop request ends with [`Error::Preempted`] after a checkpoint.
pub fn run(cfg: &Config, ctx: RunContext<'_>) -> Result<Summary> {
    let resume = ctx.resume;
    let mut t = Trainer::new(cfg, ctx)?;
    if resume {
        t.resume()?;
    }
    t.probe_network()?;
    if t.is_root() {
        log::info!(
            "{} on {} ({} train / {} test, {} features), {} ranks, scheme {}, {} steps \
             ({} per epoch){}, payload per rank per step: {}",
            t.model.describe(),
            t.split.name,
            t.split.train.len(),
            t.split.test.len(),
            t.split.train.n_features(),
            t.comm.size(),
            t.sync.name(),
            t.total_steps,
            t.steps_per_epoch,
            if t.step > 0 {
                format!(", resuming at step {}", t.step)
            } else {
                String::new()
            },
            t.sync.describe_payload()
        );
    }
    let status = match t.train() {
        Ok(s) => s,
        Err(e @ Error::Consistency(_)) => {
            // Every rank saw the same mismatch (the check is collective): record it, then fail.
            t.finish("failed", false)?;
            return Err(Error::Agreed(Box::new(e)));
        }
        Err(e) => return Err(e),
    };
    let summary = t.finish(status, true)?;
    if status == "preempted" {
        return Err(Error::Preempted {
            step: t.step,
            checkpoint: checkpoint::dir_of(t.out_dir).join(format!("ckpt-{:012}.bin", t.step)),
        });
    }
    Ok(summary)
}

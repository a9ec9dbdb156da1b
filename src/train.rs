//! The training loop.
//!
//! [`run`] ties the pieces together on every rank: load the data and take this rank's shard,
//! build the model and the gradient synchronisation, then for every step compute the local
//! gradient, synchronise it, and apply the optimiser. At every evaluation the ranks evaluate
//! disjoint slices of the test set, reduce the results, and compare parameter checksums: all
//! ranks must hold bit-identical parameters, and a mismatch is an error. Rank 0 writes the
//! output files (see [`crate::output`]).

use std::path::Path;
use std::time::Instant;

use ndarray::{s, Array1, Array2};

use crate::comm::{Collective, ReduceOp};
use crate::config::Config;
use crate::data::{self, Split, Task};
use crate::metrics::{checksum, RankStats};
use crate::model::{self, Model};
use crate::optim::Sgd;
use crate::output::{self, MetricsRow, Summary};
use crate::overlap::OverlappedExchange;
use crate::sync;
use crate::{Error, Result};

/// What the caller of [`run`] provides besides the config.
pub struct RunContext<'a> {
    /// The communicator.
    pub comm: &'a dyn Collective,
    /// Output directory (rank 0 writes into it; it must exist on rank 0).
    pub out_dir: &'a Path,
    /// Host name of every rank, for `ranks.csv`.
    pub hosts: Vec<String>,
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

/// Index of the first non-finite value, if any.
fn first_non_finite(v: &[f32]) -> Option<usize> {
    // Summing is vectorised; only search when the sum is not finite.
    let s: f32 = v.chunks(8).map(|c| c.iter().sum::<f32>()).sum();
    if s.is_finite() {
        return None;
    }
    v.iter().position(|x| !x.is_finite())
}

/// Fault injection for testing failure handling: `VQSGD_INJECT_FAULT=RANK:STEP` makes rank
/// RANK fail with an error at step STEP, as a real error (bad data, NaN) would.
fn injected_fault(rank: usize) -> Result<Option<u64>> {
    let Ok(v) = std::env::var("VQSGD_INJECT_FAULT") else { return Ok(None) };
    let parsed = v
        .split_once(':')
        .and_then(|(r, s)| Some((r.trim().parse::<usize>().ok()?, s.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((r, s)) => Ok((r == rank).then_some(s)),
        None => Err(Error::Other(format!("VQSGD_INJECT_FAULT={v}: expected RANK:STEP"))),
    }
}

/// Regression: the test loss (half squared error) of predicting the training mean.
fn mean_predictor_loss(split: &Split) -> Option<f64> {
    if split.task != Task::Regression || split.train.is_empty() || split.test.is_empty() {
        return None;
    }
    let mean = split.train.y.iter().map(|&v| f64::from(v)).sum::<f64>() / split.train.len() as f64;
    let sse: f64 = split.test.y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
    Some(0.5 * sse / split.test.len() as f64)
}

/// Stop with the step, rank and layer when the loss or the gradient is not finite.
fn check_finite(loss: f64, grad: &[f32], model: &dyn Model, step: u64, rank: usize) -> Result<()> {
    if !loss.is_finite() {
        return Err(Error::Numerical(format!("loss is {loss} at step {step} on rank {rank}")));
    }
    if let Some(i) = first_non_finite(grad) {
        let layer = model
            .layers()
            .iter()
            .find(|l| l.range.contains(&i))
            .map(|l| l.name.clone())
            .unwrap_or_default();
        return Err(Error::Numerical(format!(
            "gradient is {} at step {step} on rank {rank}, layer {layer} (index {i})",
            grad[i]
        )));
    }
    Ok(())
}

/// Evaluate on this rank's slice of the test set, reduce over ranks.
fn evaluate(
    model: &mut dyn Model,
    params: &[f32],
    split: &Split,
    comm: &dyn Collective,
    train_loss_sum: f64,
    train_loss_count: f64,
) -> GlobalEval {
    let n = split.test.len();
    let r = data::shard_range(n, comm.rank(), comm.size());
    let (loss_sum, correct) = if r.is_empty() {
        (0.0, 0.0)
    } else {
        let x = split.test.x.slice(s![r.clone(), ..]);
        let y = split.test.y.slice(s![r.clone()]);
        let e = model.evaluate(params, x, y);
        (e.loss * r.len() as f64, e.accuracy.unwrap_or(0.0) * r.len() as f64)
    };
    let local = [loss_sum, correct, r.len() as f64, train_loss_sum, train_loss_count];
    let mut global = [0.0; 5];
    comm.all_reduce_f64(&local, &mut global, ReduceOp::Sum);
    let classification = matches!(split.task, Task::Classification { .. });
    GlobalEval {
        train_loss: if global[4] > 0.0 { global[3] / global[4] } else { f64::NAN },
        test_loss: global[0] / global[2].max(1.0),
        test_accuracy: classification.then(|| global[1] / global[2].max(1.0)),
    }
}

/// Train according to `cfg` on every rank; rank 0 writes the results. Returns the summary
/// (identical on every rank).
pub fn run(cfg: &Config, ctx: RunContext<'_>) -> Result<Summary> {
    let comm = ctx.comm;
    let (rank, world) = (comm.rank(), comm.size());
    let seed = cfg.run.seed;
    let is_root = rank == 0;

    // Every rank must run the same experiment.
    check_agreement(comm, hash_str(&cfg.to_toml()), "resolved config hash")?;

    let split = data::load(&cfg.data, cfg.model.kind, seed)?;
    let n_train = split.train.len();
    check_agreement(
        comm,
        hash_str(&format!(
            "{} {} {} {}",
            n_train,
            split.train.n_features(),
            split.test.len(),
            split.name
        )),
        "data shapes",
    )?;
    let mut model = model::build(&cfg.model, split.train.n_features(), split.task)?;
    let dim = model.n_params();
    let layers: Vec<std::ops::Range<usize>> =
        model.layers().iter().map(|l| l.range.clone()).collect();
    let mut sync = sync::build(&cfg.compression, dim, &layers, seed)?;
    let shard = data::Sharder::new(n_train, rank, world, seed)?;

    let batch = cfg.optim.batch_size;
    let steps_per_epoch = shard.steps_per_epoch(batch) as u64;
    let mut total_steps = steps_per_epoch * cfg.run.epochs as u64;
    if cfg.run.max_steps > 0 {
        total_steps = total_steps.min(cfg.run.max_steps as u64);
    }
    let eval_every = if cfg.run.eval_every > 0 { cfg.run.eval_every as u64 } else { steps_per_epoch };

    let mut params = model.init_params(seed);
    let mut optim = Sgd::new(&cfg.optim, dim, total_steps, steps_per_epoch);
    let mut grad = vec![0f32; dim];
    let mut update = vec![0f32; dim];
    let mut xb = Array2::<f32>::zeros((0, split.train.n_features()));
    let mut yb = Array1::<f32>::zeros(0);

    if is_root {
        log::info!(
            "{} on {} ({} train / {} test, {} features), {} ranks, scheme {}, {} steps \
             ({} per epoch), payload per rank per step: {}",
            model.describe(),
            split.name,
            n_train,
            split.test.len(),
            split.train.n_features(),
            world,
            sync.name(),
            total_steps,
            steps_per_epoch,
            sync.describe_payload()
        );
    }

    let mut overlapped = if cfg.compression.overlap {
        // The ranges the model reports as ready, from one backward pass on one sample.
        let mut groups = Vec::new();
        split.train.gather_into(&[0], &mut xb, &mut yb);
        model.loss_grad(&params, xb.view(), yb.view(), &mut grad, &mut |r, _| groups.push(r));
        Some(OverlappedExchange::new(&cfg.compression, &layers, groups, seed)?)
    } else {
        None
    };

    let network = if cfg.network.probe {
        let r = crate::probe::probe(comm, sync.dense_bytes(), sync.payload_bytes())?;
        if is_root {
            log::info!(
                "network probe: latency {:.1} us, bandwidth {:.2} GB/s; allreduce of {} B {:.3} ms, \
                 allgather of {} B payloads {:.3} ms; compression ratio {:.1} vs break-even {:.1} \
                 at {} ranks: compression {}",
                r.alpha_s * 1e6,
                r.bandwidth_bytes_per_s / 1e9,
                r.dense_bytes,
                r.measured_allreduce_s * 1e3,
                r.payload_bytes,
                r.measured_allgather_s * 1e3,
                r.compression_ratio,
                r.break_even_ratio,
                world,
                if r.compression_wins { "wins" } else { "does not win" }
            );
        }
        Some(r)
    } else {
        None
    };

    let mut stats = RankStats::default();
    let mut rows: Vec<MetricsRow> = Vec::new();
    let mut failure: Option<Error> = None;
    let mut loss_sum = 0.0f64;
    let mut loss_count = 0.0f64;
    let mut last = GlobalEval { train_loss: f64::NAN, test_loss: f64::NAN, test_accuracy: None };
    let mut time_to_target: Option<f64> = None;
    let mut step: u64 = 0;
    let mut epoch: u64 = 0;
    let started = Instant::now();
    let fault = injected_fault(rank)?;

    'train: while step < total_steps {
        let order = shard.epoch_indices(epoch);
        for t in 0..steps_per_epoch {
            if step >= total_steps {
                break 'train;
            }
            let idx = shard.batch(&order, t as usize, batch);
            split.train.gather_into(idx, &mut xb, &mut yb);

            if fault == Some(step) {
                return Err(Error::Other(format!(
                    "injected fault at step {step} (VQSGD_INJECT_FAULT)"
                )));
            }
            let (loss, st) = match overlapped.as_mut() {
                Some(ov) if step >= cfg.compression.warmup_steps as u64 => {
                    let (loss, st, compute_s) = ov.step(
                        comm,
                        step,
                        &mut |ready| {
                            model.loss_grad(&params, xb.view(), yb.view(), &mut grad, ready)
                        },
                        &mut update,
                    )?;
                    stats.compute_s += compute_s;
                    check_finite(loss, &grad, model.as_ref(), step, rank)?;
                    (loss, st)
                }
                _ => {
                    let t0 = Instant::now();
                    let loss =
                        model.loss_grad(&params, xb.view(), yb.view(), &mut grad, &mut |_, _| {});
                    stats.compute_s += t0.elapsed().as_secs_f64();
                    check_finite(loss, &grad, model.as_ref(), step, rank)?;
                    (loss, sync.sync(&grad, &mut update, step, comm)?)
                }
            };
            loss_sum += loss;
            loss_count += 1.0;
            stats.encode_s += st.encode_s;
            stats.comm_s += st.comm_s;
            stats.decode_s += st.decode_s;
            stats.bytes_sent += st.bytes_sent;
            stats.bytes_received += st.bytes_received;

            let t0 = Instant::now();
            optim.step(&mut params, &update, step);
            stats.update_s += t0.elapsed().as_secs_f64();
            step += 1;
            stats.steps = step;

            let end_of_run = step == total_steps;
            if step % eval_every == 0 || end_of_run {
                let t0 = Instant::now();
                last = evaluate(model.as_mut(), &params, &split, comm, loss_sum, loss_count);
                loss_sum = 0.0;
                loss_count = 0.0;
                let agree = check_agreement(comm, checksum(&params), "parameter checksum");
                let mut bytes = [stats.bytes_sent as f64];
                let mut bsum = [0.0];
                comm.all_reduce_f64(&bytes, &mut bsum, ReduceOp::Sum);
                bytes[0] = bsum[0] / world as f64;
                let bytes_mean = bytes[0];
                stats.eval_s += t0.elapsed().as_secs_f64();
                let wall = started.elapsed().as_secs_f64();
                let row = MetricsRow {
                    step,
                    epoch: step as f64 / steps_per_epoch as f64,
                    wall_s: wall,
                    bytes_sent_per_rank: bytes_mean,
                    train_loss: last.train_loss,
                    test_loss: last.test_loss,
                    test_accuracy: last.test_accuracy,
                };
                if is_root {
                    log::info!(
                        "step {step}/{total_steps} epoch {:.2} train loss {:.4} test loss {:.4}{} \
                         sent {:.3} MB/rank, {:.1}s",
                        row.epoch,
                        row.train_loss,
                        row.test_loss,
                        row.test_accuracy
                            .map(|a| format!(" test acc {a:.4}"))
                            .unwrap_or_default(),
                        bytes_mean / 1e6,
                        wall
                    );
                }
                rows.push(row);
                if is_root {
                    output::write_atomic(
                        &ctx.out_dir.join("metrics.csv"),
                        output::metrics_csv(&rows).as_bytes(),
                    )?;
                }
                if let Err(e) = agree {
                    // Write what we have (ranks_agree = false), then fail.
                    failure = Some(e);
                    break 'train;
                }
                if let (Some(acc), true) = (last.test_accuracy, cfg.run.target_accuracy > 0.0) {
                    if acc >= cfg.run.target_accuracy && time_to_target.is_none() {
                        time_to_target = Some(wall);
                        if is_root {
                            log::info!(
                                "reached target accuracy {} at step {step} after {wall:.2}s",
                                cfg.run.target_accuracy
                            );
                        }
                        break 'train;
                    }
                }
            }
        }
        epoch += 1;
    }
    let total_s = started.elapsed().as_secs_f64();

    // Gather every rank's stats for ranks.csv and the means in summary.json.
    let all = comm.all_gather_f64(&stats.to_vec());
    let per_rank: Vec<RankStats> = all.chunks(RankStats::LEN).map(RankStats::from_slice).collect();
    let mean = |f: &dyn Fn(&RankStats) -> f64| per_rank.iter().map(f).sum::<f64>() / world as f64;
    let steps_f = step.max(1) as f64;
    let payload = mean(&|s| s.bytes_sent as f64) / steps_f;
    let dense = sync.dense_bytes();
    let info = sync.info();
    let p = world as f64;
    let ranks_agree = failure.is_none();
    let summary = Summary {
        status: if ranks_agree { "complete" } else { "failed" }.into(),
        name: cfg.run.name.clone(),
        world_size: world,
        model: model.describe(),
        n_params: dim,
        dataset: split.name.clone(),
        scheme: info.scheme.clone(),
        scheme_params: info.params.clone(),
        steps: step,
        epochs: step as f64 / steps_per_epoch as f64,
        final_: output::Final {
            train_loss: last.train_loss,
            test_loss: last.test_loss,
            test_accuracy: last.test_accuracy,
            mean_predictor_test_loss: mean_predictor_loss(&split),
        },
        params_checksum: format!("{:016x}", checksum(&params)),
        ranks_agree,
        comm: output::CommSummary {
            payload_bytes_per_rank_per_step: payload,
            dense_bytes_per_rank_per_step: dense,
            compression_ratio: if payload > 0.0 { dense as f64 / payload } else { 1.0 },
            bits_per_rank_per_step: payload * 8.0,
            total_bytes_sent_per_rank: mean(&|s| s.bytes_sent as f64),
            total_bytes_received_per_rank: mean(&|s| s.bytes_received as f64),
            ring_allreduce_wire_bytes: 2.0 * (p - 1.0) / p * dense as f64,
            allgather_wire_bytes: (p - 1.0) * payload,
        },
        time: output::TimeSummary {
            total_s,
            compute_s: mean(&|s| s.compute_s),
            encode_s: mean(&|s| s.encode_s),
            comm_s: mean(&|s| s.comm_s),
            decode_s: mean(&|s| s.decode_s),
            update_s: mean(&|s| s.update_s),
            eval_s: mean(&|s| s.eval_s),
            time_to_target_s: time_to_target,
        },
        epsilon_per_step: info.epsilon_per_step,
        epsilon_total: info.epsilon_per_step.map(|e| e * step as f64),
        network,
    };
    if is_root {
        output::write_atomic(
            &ctx.out_dir.join("ranks.csv"),
            output::ranks_csv(&per_rank, &ctx.hosts).as_bytes(),
        )?;
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::Other(format!("cannot serialise summary: {e}")))?;
        output::write_atomic(&ctx.out_dir.join("summary.json"), json.as_bytes())?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

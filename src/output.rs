//! The files a run writes, written atomically.
//!
//! Rank 0 owns the output directory: `config.toml` (the resolved config), `run.json` (command,
//! git commit, MPI library, hosts), `metrics.csv` (one row per evaluation), `ranks.csv` (one
//! row per rank) and `summary.json`. Every file is written to a temporary name in the same
//! directory, flushed to disk and renamed over the target, so a reader (or a crash) never sees
//! a half-written file. `metrics.csv` is rewritten whole at each evaluation for the same reason.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::RankStats;
use crate::{Error, Result};

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| Error::io(path, e))
}

/// Create `dir` (and parents), naming it in the error.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Final quality numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Final {
    /// Mean training loss over the last evaluation interval.
    pub train_loss: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy (classification only).
    pub test_accuracy: Option<f64>,
    /// Regression only: test loss of predicting the training-set mean, the bar to beat.
    pub mean_predictor_test_loss: Option<f64>,
}

/// Per-step traffic of one rank.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CommSummary {
    /// Bytes this rank hands to the gradient exchange per step (mean over steps and ranks).
    pub payload_bytes_per_rank_per_step: f64,
    /// 4 x parameter count.
    pub dense_bytes_per_rank_per_step: u64,
    /// dense / payload.
    pub compression_ratio: f64,
    /// Bits per rank per step (payload x 8).
    pub bits_per_rank_per_step: f64,
    /// Total bytes sent per rank over the run (mean over ranks).
    pub total_bytes_sent_per_rank: f64,
    /// Total bytes received per rank over the run (mean over ranks).
    pub total_bytes_received_per_rank: f64,
    /// Modelled wire bytes per rank per step of a ring allreduce of the dense gradient:
    /// 2 (P-1)/P x 4d (spec section 8).
    pub ring_allreduce_wire_bytes: f64,
    /// The collective of the scheme: `allreduce` (dense, fp16), `allgather` (fixed-length
    /// payloads) or `allgatherv` (variable-length payloads).
    pub collective: String,
    /// Modelled wire bytes per rank per step of the scheme's own collective (spec section 8):
    /// 2 (P-1)/P x payload for a ring allreduce, (P-1) x payload for a ring allgather.
    pub wire_bytes_per_rank_per_step: f64,
}

/// Time split, seconds (mean over ranks).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeSummary {
    /// Wall time of the training loop.
    pub total_s: f64,
    /// Forward/backward.
    pub compute_s: f64,
    /// Encoding.
    pub encode_s: f64,
    /// Gradient exchange inside MPI (the exposed part, with overlap).
    pub comm_s: f64,
    /// Exchange time hidden behind backpropagation (`compression.overlap`; 0 otherwise).
    pub comm_hidden_s: f64,
    /// Decoding.
    pub decode_s: f64,
    /// Optimiser updates.
    pub update_s: f64,
    /// Evaluation.
    pub eval_s: f64,
    /// Seconds until `run.target_accuracy` was first reached, if it was.
    pub time_to_target_s: Option<f64>,
}

/// `summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// `complete`, `running` (written during the run) or `failed`.
    pub status: String,
    /// Run name.
    pub name: String,
    /// Number of ranks.
    pub world_size: usize,
    /// Model description.
    pub model: String,
    /// Model parameter count.
    pub n_params: usize,
    /// Data set name.
    pub dataset: String,
    /// Scheme name.
    pub scheme: String,
    /// Scheme parameters.
    pub scheme_params: String,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Epochs completed (fractional when stopped early).
    pub epochs: f64,
    /// Final quality.
    #[serde(rename = "final")]
    pub final_: Final,
    /// Checksum of the final parameters (hex).
    pub params_checksum: String,
    /// Whether all ranks held bit-identical parameters at every check.
    pub ranks_agree: bool,
    /// Traffic.
    pub comm: CommSummary,
    /// Time split.
    pub time: TimeSummary,
    /// Local differential privacy per step and cumulative (basic composition), if any.
    pub epsilon_per_step: Option<f64>,
    /// Cumulative epsilon over all steps (basic composition).
    pub epsilon_total: Option<f64>,
    /// Network probe at start-up (`[network] probe = true`).
    pub network: Option<crate::probe::ProbeReport>,
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsRow {
    /// Optimiser steps so far.
    pub step: u64,
    /// Epoch (fractional).
    pub epoch: f64,
    /// Seconds since the training loop started.
    pub wall_s: f64,
    /// Cumulative bytes sent per rank (mean over ranks).
    pub bytes_sent_per_rank: f64,
    /// Mean minibatch loss since the previous row (all ranks).
    pub train_loss: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy (classification).
    pub test_accuracy: Option<f64>,
}

/// Header of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "step,epoch,wall_s,bytes_sent_per_rank,bits_sent_per_rank,train_loss,test_loss,test_accuracy";

/// Render `metrics.csv`.
pub fn metrics_csv(rows: &[MetricsRow]) -> String {
    let mut s = String::from(METRICS_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{:.4},{:.4},{:.0},{:.0},{:.6},{:.6},{}\n",
            r.step,
            r.epoch,
            r.wall_s,
            r.bytes_sent_per_rank,
            r.bytes_sent_per_rank * 8.0,
            r.train_loss,
            r.test_loss,
            r.test_accuracy
                .map(|a| format!("{a:.6}"))
                .unwrap_or_default()
        ));
    }
    s
}

/// Header of `ranks.csv`.
pub const RANKS_HEADER: &str =
    "rank,host,steps,bytes_sent,bytes_received,compute_s,encode_s,comm_s,decode_s,update_s,eval_s,\
     comm_hidden_s";

/// Render `ranks.csv` from every rank's stats and host name.
pub fn ranks_csv(stats: &[RankStats], hosts: &[String]) -> String {
    let mut s = String::from(RANKS_HEADER);
    s.push('\n');
    for (r, st) in stats.iter().enumerate() {
        s.push_str(&format!(
            "{r},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}\n",
            hosts.get(r).map(String::as_str).unwrap_or(""),
            st.steps,
            st.bytes_sent,
            st.bytes_received,
            st.compute_s,
            st.encode_s,
            st.comm_s,
            st.decode_s,
            st.update_s,
            st.eval_s,
            st.comm_hidden_s
        ));
    }
    s
}

/// `run.json`: how and where the run was launched.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// The command line.
    pub command: Vec<String>,
    /// `git rev-parse HEAD` of the source tree, when available.
    pub git_commit: Option<String>,
    /// vqsgd version.
    pub version: String,
    /// MPI library version string.
    pub mpi_library: String,
    /// Host of each rank.
    pub hosts: Vec<String>,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Slurm job id, when run under Slurm.
    pub slurm_job_id: Option<String>,
}

/// The git commit of the working directory, if it is a git checkout.
pub fn git_commit() -> Option<String> {
    if let Some(c) = option_env!("VQSGD_GIT_COMMIT") {
        return Some(c.to_string());
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("vqsgd-out-{}", std::process::id()));
        create_dir(&dir).unwrap();
        let p = dir.join("x.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_rows_have_header_width() {
        let m = metrics_csv(&[MetricsRow {
            step: 1,
            test_accuracy: Some(0.5),
            ..Default::default()
        }]);
        let cols = METRICS_HEADER.split(',').count();
        for line in m.lines() {
            assert_eq!(line.split(',').count(), cols, "{line}");
        }
        let r = ranks_csv(&[RankStats::default(); 2], &["a".into(), "b".into()]);
        let cols = RANKS_HEADER.split(',').count();
        for line in r.lines() {
            assert_eq!(line.split(',').count(), cols, "{line}");
        }
    }
}

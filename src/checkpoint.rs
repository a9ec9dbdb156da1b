//! Checkpoints: the full training state, written atomically, validated on resume.
//!
//! A checkpoint holds everything a run needs to continue bit-identically: parameters, the
//! optimiser's momentum, every rank's error-feedback memory, cumulative accounting of every
//! rank, the metrics rows so far, and the step. Random streams are derived from the seed and
//! the step (see [`crate::rng`]) and the data order from the seed and the epoch, so the step
//! *is* the RNG state and the data position.
//!
//! File format (little-endian), `checkpoints/ckpt-<step>.bin` in the run directory:
//!
//! ```text
//! "VQSGDCKP" | version u32 | config hash u64 | world u32 | step u64 | elapsed f64
//! | loss_sum f64 | loss_count f64 | time_to_target f64 (NaN = none)
//! | params: n u64, n x f32 | velocity: n u64, n x f32
//! | feedback: ranks u64, per rank: n u64, n x f32
//! | stats: ranks u64, per rank RankStats::LEN x f64
//! | metrics rows: n u64, per row 7 x f64 (accuracy NaN = none)
//! | FNV-1a 64 of everything before
//! ```
//!
//! Rank 0 writes to a temporary file, fsyncs and renames (see [`crate::output::write_atomic`]),
//! then deletes all but the newest `keep` checkpoints. On resume the newest checkpoint that
//! passes its checksum is used; a corrupt one is skipped with a warning; one written for
//! another config or rank count is refused with a message naming the difference.

use std::path::{Path, PathBuf};

use crate::metrics::RankStats;
use crate::output::{write_atomic, MetricsRow};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"VQSGDCKP";
const VERSION: u32 = 2;
/// Refuse checkpoints claiming more than this many values in one array (corruption guard).
const MAX_VALUES: u64 = 1 << 33;

/// Everything needed to continue a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Seconds of training before this checkpoint (wall times continue from here).
    pub elapsed_s: f64,
    /// Sum of minibatch losses over all ranks since the last evaluation.
    pub loss_sum: f64,
    /// Number of minibatch losses in `loss_sum`.
    pub loss_count: f64,
    /// When the target accuracy was reached, if it was.
    pub time_to_target: Option<f64>,
    /// Model parameters.
    pub params: Vec<f32>,
    /// Momentum buffer (empty without momentum).
    pub velocity: Vec<f32>,
    /// Error-feedback memory of every rank (empty when the scheme has none).
    pub feedback: Vec<Vec<f32>>,
    /// Cumulative accounting of every rank.
    pub stats: Vec<RankStats>,
    /// Metrics rows so far.
    pub rows: Vec<MetricsRow>,
}

/// A checkpoint: the state plus what it must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Hash of the resolved config (without the `[output]` table).
    pub config_hash: u64,
    /// Number of ranks that wrote it.
    pub world: u32,
    /// The state.
    pub state: TrainState,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        self.0.reserve(4 * v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.pos < n {
            return Err(Error::Other(format!(
                "truncated at byte {} (needs {n} more, {} left)",
                self.pos,
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn count(&mut self, per_item: u64) -> Result<usize> {
        let n = self.u64()?;
        let left = (self.b.len() - self.pos) as u64;
        if n > MAX_VALUES || n.saturating_mul(per_item) > left {
            return Err(Error::Other(format!(
                "array of {n} items does not fit in the {left} bytes left"
            )));
        }
        Ok(n as usize)
    }
    fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.count(4)?;
        let raw = self.take(4 * n)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

impl Checkpoint {
    /// Serialise (with the trailing checksum).
    pub fn to_bytes(&self) -> Vec<u8> {
        let s = &self.state;
        let mut w = Writer(Vec::with_capacity(64 + 8 * s.params.len()));
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u64(self.config_hash);
        w.u32(self.world);
        w.u64(s.step);
        w.f64(s.elapsed_s);
        w.f64(s.loss_sum);
        w.f64(s.loss_count);
        w.f64(s.time_to_target.unwrap_or(f64::NAN));
        w.f32s(&s.params);
        w.f32s(&s.velocity);
        w.u64(s.feedback.len() as u64);
        for m in &s.feedback {
            w.f32s(m);
        }
        w.u64(s.stats.len() as u64);
        for st in &s.stats {
            for v in st.to_vec() {
                w.f64(v);
            }
        }
        w.u64(s.rows.len() as u64);
        for r in &s.rows {
            for v in [
                r.step as f64,
                r.epoch,
                r.wall_s,
                r.bytes_sent_per_rank,
                r.train_loss,
                r.test_loss,
                r.test_accuracy.unwrap_or(f64::NAN),
            ] {
                w.f64(v);
            }
        }
        let sum = fnv(&w.0);
        w.u64(sum);
        w.0
    }

    /// Parse and verify a checkpoint; errors say what is wrong.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() < MAGIC.len() + 12 || &b[..8] != MAGIC {
            return Err(Error::Other("not a vqsgd checkpoint (bad magic)".into()));
        }
        let (body, tail) = b.split_at(b.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        if fnv(body) != stored {
            return Err(Error::Other(
                "checksum mismatch (file is corrupt or truncated)".into(),
            ));
        }
        let mut r = Reader { b: body, pos: 8 };
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::Other(format!(
                "format version {version}, expected {VERSION}"
            )));
        }
        let config_hash = r.u64()?;
        let world = r.u32()?;
        let step = r.u64()?;
        let elapsed_s = r.f64()?;
        let loss_sum = r.f64()?;
        let loss_count = r.f64()?;
        let ttt = r.f64()?;
        let params = r.f32s()?;
        let velocity = r.f32s()?;
        let n_fb = r.count(8)?;
        let mut feedback = Vec::with_capacity(n_fb);
        for _ in 0..n_fb {
            feedback.push(r.f32s()?);
        }
        let n_st = r.count(8 * RankStats::LEN as u64)?;
        let mut stats = Vec::with_capacity(n_st);
        for _ in 0..n_st {
            let mut v = [0f64; RankStats::LEN];
            for x in v.iter_mut() {
                *x = r.f64()?;
            }
            stats.push(RankStats::from_slice(&v));
        }
        let n_rows = r.count(56)?;
        let mut rows = Vec::with_capacity(n_rows);
        for _ in 0..n_rows {
            let mut v = [0f64; 7];
            for x in v.iter_mut() {
                *x = r.f64()?;
            }
            rows.push(MetricsRow {
                step: v[0] as u64,
                epoch: v[1],
                wall_s: v[2],
                bytes_sent_per_rank: v[3],
                train_loss: v[4],
                test_loss: v[5],
                test_accuracy: (!v[6].is_nan()).then_some(v[6]),
            });
        }
        if r.pos != body.len() {
            return Err(Error::Other(format!(
                "{} unexpected trailing bytes",
                body.len() - r.pos
            )));
        }
        Ok(Self {
            config_hash,
            world,
            state: TrainState {
                step,
                elapsed_s,
                loss_sum,
                loss_count,
                time_to_target: (!ttt.is_nan()).then_some(ttt),
                params,
                velocity,
                feedback,
                stats,
                rows,
            },
        })
    }
}

/// The checkpoint directory of a run directory.
pub fn dir_of(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Checkpoint files in `dir`, newest (highest step) first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name
                .strip_prefix("ckpt-")?
                .strip_suffix(".bin")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v
}

/// Write `ckpt` into `dir` atomically and keep only the newest `keep` checkpoints.
pub fn save(dir: &Path, ckpt: &Checkpoint, keep: usize) -> Result<PathBuf> {
    crate::output::create_dir(dir)?;
    let path = dir.join(format!("ckpt-{:012}.bin", ckpt.state.step));
    write_atomic(&path, &ckpt.to_bytes())?;
    for (_, old) in list(dir).into_iter().skip(keep.max(1)) {
        if let Err(e) = std::fs::remove_file(&old) {
            log::warn!("cannot remove old checkpoint {}: {e}", old.display());
        }
    }
    Ok(path)
}

/// The newest valid checkpoint in `dir` for this config and rank count.
///
/// Corrupt files are skipped with a warning (the previous valid one is used). A valid
/// checkpoint of another config or rank count is an error: resuming it would silently train
/// something else. `Ok(None)` when there is no checkpoint at all.
pub fn load_latest(
    dir: &Path,
    config_hash: u64,
    world: u32,
) -> Result<Option<(PathBuf, Checkpoint)>> {
    let files = list(dir);
    if files.is_empty() {
        return Ok(None);
    }
    for (_, path) in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("skipping checkpoint {}: {e}", path.display());
                continue;
            }
        };
        let ck = match Checkpoint::from_bytes(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("skipping corrupt checkpoint {}: {e}", path.display());
                continue;
            }
        };
        if ck.world != world {
            return Err(Error::Consistency(format!(
                "checkpoint {} was written by {} ranks, this job has {world}: resume with the \
                 same rank count",
                path.display(),
                ck.world
            )));
        }
        if ck.config_hash != config_hash {
            return Err(Error::Consistency(format!(
                "checkpoint {} was written for a different configuration (config hash \
                 {:016x}, this run {config_hash:016x}); resume with the run's config.toml",
                path.display(),
                ck.config_hash
            )));
        }
        return Ok(Some((path, ck)));
    }
    Err(Error::Other(format!(
        "no valid checkpoint in {}: every file failed its checksum",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            config_hash: 0xdead_beef,
            world: 3,
            state: TrainState {
                step: 17,
                elapsed_s: 1.5,
                loss_sum: 2.0,
                loss_count: 4.0,
                time_to_target: None,
                params: vec![1.0, -2.5, f32::MIN_POSITIVE],
                velocity: vec![0.5, 0.25, 0.0],
                feedback: vec![vec![0.1; 3]; 3],
                stats: vec![
                    RankStats {
                        steps: 17,
                        bytes_sent: 99,
                        ..Default::default()
                    };
                    3
                ],
                rows: vec![MetricsRow {
                    step: 10,
                    test_accuracy: Some(0.5),
                    ..Default::default()
                }],
            },
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let c = sample();
        assert_eq!(Checkpoint::from_bytes(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_detected() {
        let b = sample().to_bytes();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(
                Checkpoint::from_bytes(&c).is_err(),
                "flip at {i} not detected"
            );
        }
        for n in 0..b.len() {
            assert!(
                Checkpoint::from_bytes(&b[..n]).is_err(),
                "truncation to {n} accepted"
            );
        }
    }

    #[test]
    fn save_keeps_newest_and_load_skips_corrupt_refuses_mismatch() {
        let dir = std::env::temp_dir().join(format!("vqsgd-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = sample();
        for step in [5, 10, 15] {
            c.state.step = step;
            save(&dir, &c, 2).unwrap();
        }
        let steps: Vec<u64> = list(&dir).iter().map(|x| x.0).collect();
        assert_eq!(steps, vec![15, 10]);
        // Corrupt the newest: the previous one is used.
        let newest = list(&dir)[0].1.clone();
        let mut bytes = std::fs::read(&newest).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&newest, bytes).unwrap();
        let (_, got) = load_latest(&dir, c.config_hash, c.world).unwrap().unwrap();
        assert_eq!(got.state.step, 10);
        // Other rank count or config: refused.
        let e = load_latest(&dir, c.config_hash, 4).unwrap_err().to_string();
        assert!(e.contains("3 ranks") && e.contains("4"), "{e}");
        let e = load_latest(&dir, 1, c.world).unwrap_err().to_string();
        assert!(e.contains("different configuration"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

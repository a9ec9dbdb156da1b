//! Sharding: which training samples a rank uses in each epoch, and in which batches.
//!
//! The global training order is fixed at load time (it depends only on the seed). Rank `r` of
//! `world` owns the contiguous, balanced range [`shard_range`]`(n, r, world)` of that order for
//! the whole run and visits it in a fresh order each epoch, shuffled with the stream
//! `(seed, Purpose::Shuffle, [epoch, rank])`. Every step of training is a collective, so every
//! rank runs the same number of steps, [`steps_per_epoch`] = ceil(smallest shard / batch); the
//! last batch of an epoch takes all remaining indices of the shard, so every sample is used
//! once per epoch.
//!
//! Shuffles use a local Fisher-Yates with Lemire's unbiased bounded integers on the raw
//! `u64` stream, so the order does not depend on the `rand` crate's sampling algorithms.

use std::ops::Range;

use rand::RngCore;

use crate::rng::{self, Purpose, Rng};
use crate::{Error, Result};

/// The contiguous, balanced range of `0..n` owned by `rank` of `world` ranks: sizes differ by
/// at most one (the first `n % world` ranks get the extra sample) and the ranges tile `0..n`.
///
/// # Panics
/// If `world == 0` or `rank >= world`.
pub fn shard_range(n: usize, rank: usize, world: usize) -> Range<usize> {
    assert!(
        world > 0 && rank < world,
        "rank {rank} is not in 0..{world}"
    );
    let base = n / world;
    let rem = n % world;
    let start = rank * base + rank.min(rem);
    let len = base + usize::from(rank < rem);
    start..start + len
}

/// Steps every rank runs per epoch: ceil(smallest shard / batch) (0 when `batch` is 0 or the
/// smallest shard is empty).
pub fn steps_per_epoch(n_train: usize, world: usize, batch: usize) -> usize {
    if world == 0 || batch == 0 {
        return 0;
    }
    (n_train / world).div_ceil(batch)
}

/// Positions of batch `t` of `steps` within a shard of `shard_len` samples: `[t*b, (t+1)*b)`,
/// except that the last batch (`t == steps - 1`) runs to the end of the shard.
///
/// # Panics
/// If `t >= steps`.
pub fn batch_range(shard_len: usize, steps: usize, t: usize, batch: usize) -> Range<usize> {
    assert!(t < steps, "batch {t} is not in 0..{steps}");
    let start = (t * batch).min(shard_len);
    let end = if t + 1 == steps {
        shard_len
    } else {
        ((t + 1) * batch).min(shard_len)
    };
    start..end
}

/// A uniform integer in `0..n` (`n > 0`) by Lemire's multiply-and-reject method.
fn below(rng: &mut Rng, n: u64) -> u64 {
    debug_assert!(n > 0);
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// Shuffle `v` in place (Fisher-Yates) with a portable algorithm.
pub fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// A uniformly random permutation of `0..n`.
pub fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    shuffle(&mut v, rng);
    v
}

/// One rank's view of the training set: its shard and its per-epoch order.
#[derive(Clone, Debug)]
pub struct Sharder {
    seed: u64,
    rank: usize,
    world: usize,
    n_train: usize,
    shard: Range<usize>,
}

impl Sharder {
    /// The sharder of `rank` of `world` over `n_train` samples; an error when some rank's shard
    /// would be empty (more ranks than samples) or the rank is out of range.
    pub fn new(n_train: usize, rank: usize, world: usize, seed: u64) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::Other(format!("rank {rank} is not in 0..{world}")));
        }
        if n_train < world {
            return Err(Error::Other(format!(
                "{world} ranks but only {n_train} training samples (after the test split and \
                 data.max_train): every rank needs at least one (use fewer ranks or more data)"
            )));
        }
        Ok(Self {
            seed,
            rank,
            world,
            n_train,
            shard: shard_range(n_train, rank, world),
        })
    }

    /// The range of the global training order this rank owns.
    pub fn shard(&self) -> Range<usize> {
        self.shard.clone()
    }

    /// Number of samples in this rank's shard.
    pub fn shard_len(&self) -> usize {
        self.shard.len()
    }

    /// Steps per epoch, identical on every rank (see [`steps_per_epoch`]).
    pub fn steps_per_epoch(&self, batch: usize) -> usize {
        steps_per_epoch(self.n_train, self.world, batch)
    }

    /// This rank's sample indices for `epoch`, in visiting order.
    pub fn epoch_indices(&self, epoch: u64) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.shard.len());
        self.epoch_indices_into(epoch, &mut v);
        v
    }

    /// Like [`Sharder::epoch_indices`], reusing `out`'s allocation.
    pub fn epoch_indices_into(&self, epoch: u64, out: &mut Vec<usize>) {
        out.clear();
        out.extend(self.shard.clone());
        let mut r = rng::stream(self.seed, Purpose::Shuffle, &[epoch, self.rank as u64]);
        shuffle(out, &mut r);
    }

    /// The indices of batch `t` within an epoch's `indices` (from [`Sharder::epoch_indices`]).
    ///
    /// # Panics
    /// If `t >= self.steps_per_epoch(batch)`.
    pub fn batch<'a>(&self, indices: &'a [usize], t: usize, batch: usize) -> &'a [usize] {
        &indices[batch_range(indices.len(), self.steps_per_epoch(batch), t, batch)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_tile_and_balance() {
        for n in 0..40 {
            for world in 1..=7 {
                let mut next = 0;
                let mut sizes = vec![];
                for r in 0..world {
                    let s = shard_range(n, r, world);
                    assert_eq!(s.start, next);
                    next = s.end;
                    sizes.push(s.len());
                }
                assert_eq!(next, n);
                let (mn, mx) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(mx - mn <= 1, "n={n} world={world} sizes={sizes:?}");
            }
        }
    }

    #[test]
    fn every_sample_used_once_per_epoch_and_steps_agree() {
        for n in [5usize, 17, 64, 100, 101] {
            for world in 1..=5 {
                for batch in [1usize, 3, 8, 32] {
                    let steps = steps_per_epoch(n, world, batch);
                    let mut seen = vec![0u32; n];
                    for rank in 0..world {
                        let s = Sharder::new(n, rank, world, 9).unwrap();
                        assert_eq!(s.steps_per_epoch(batch), steps);
                        let idx = s.epoch_indices(3);
                        let mut total = 0;
                        for t in 0..steps {
                            let b = s.batch(&idx, t, batch);
                            assert!(!b.is_empty());
                            assert!(b.len() <= 2 * batch);
                            total += b.len();
                            for &i in b {
                                seen[i] += 1;
                            }
                        }
                        assert_eq!(total, s.shard_len());
                    }
                    assert!(
                        seen.iter().all(|&c| c == 1),
                        "n={n} world={world} batch={batch}"
                    );
                }
            }
        }
    }

    #[test]
    fn epoch_order_is_seeded_and_changes_per_epoch() {
        let s = Sharder::new(1000, 1, 3, 42).unwrap();
        let a = s.epoch_indices(0);
        assert_eq!(a, Sharder::new(1000, 1, 3, 42).unwrap().epoch_indices(0));
        assert_ne!(a, s.epoch_indices(1));
        assert_ne!(a, Sharder::new(1000, 1, 3, 43).unwrap().epoch_indices(0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, s.shard().collect::<Vec<_>>());
    }

    #[test]
    fn empty_shard_is_an_error_naming_counts() {
        let e = Sharder::new(3, 0, 5, 1).unwrap_err().to_string();
        assert!(e.contains('5') && e.contains('3'), "{e}");
        assert!(Sharder::new(3, 3, 3, 1).is_err());
    }

    #[test]
    fn bounded_draws_are_uniformish() {
        let mut r = rng::stream(1, Purpose::Shuffle, &[]);
        let mut c = [0u32; 3];
        for _ in 0..30_000 {
            c[below(&mut r, 3) as usize] += 1;
        }
        assert!(c.iter().all(|&k| (9_000..11_000).contains(&k)), "{c:?}");
    }
}

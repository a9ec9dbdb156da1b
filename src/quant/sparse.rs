//! k-sparse signed points and the unbiased fallback (spec `vqsgd.md` section 5).
//!
//! Points `(sqrt(d)/k) s` for `s in {0, +1, -1}^d` with exactly `k` non-zeros (`R^2 = d/k`; `k = 1`
//! is the cross-polytope). For `||v|| <= 1`: base inclusion probabilities
//! `pi0_i = k |v_i| / sqrt(d)`, slack spread as `pi_i = min(1, pi0_i + lambda)` with `lambda`
//! solving `sum pi_i = k` ([`spread`]), `k` distinct coordinates by systematic sampling (one
//! uniform `U`, select `i` when `P_{i-1} <= U + t < P_i`), sign `+` with probability
//! `(1 + k v_i / (sqrt(d) pi_i))/2`, decode `(sqrt(d)/k) * sum of signed unit vectors`.
//!
//! # Fallback when `pi0_i > 1` (never silently biased)
//!
//! `pi0_i <= 1` means `|v_i| <= sqrt(d)/k`: no point of the set has a larger coordinate, so a
//! larger one is outside the hull and no reweighting helps. A block where it fails is encoded
//! with a different, recorded, still-unbiased mixture ([`plan`]):
//!
//! 1. the `e` largest coordinates are sent exactly, as `(index, f32 value)` pairs, where `e` is
//!    the smallest number such that every remaining coordinate satisfies
//!    `|v_i| <= sqrt(d)/k_e`, with `k_e = k - q e`; each exact pair takes the bits of `q`
//!    samples (`q = ceil((w + 31)/(s w))` for `w`-bit symbols and `s` repetitions), so the payload
//!    keeps its fixed length;
//! 2. if even `e = e_max` pairs do not suffice (tiny blocks), `k` is lowered further to
//!    `floor(sqrt(d) / max_rest |v_i|)`;
//! 3. the remaining vector (exact coordinates zeroed) is quantized with `k_b` non-zeros.
//!
//! `e` and `k_b` are written in the block header, so the decoder needs nothing else; the header
//! exists only when a fallback is possible at all (`k^2 > d`). Sending coordinates exactly lowers
//! the variance, and the decoded vector stays unbiased.

use super::sampling;

/// The fallback chosen for one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Number of coordinates sent exactly (the largest ones).
    pub exact: usize,
    /// Number of non-zeros of each sample of the rest.
    pub k: usize,
}

/// Choose the fallback for `|v|` values given as sorted-descending candidates `cand_desc` (all
/// coordinates with `|v_i| > sqrt(d)/k`), for sparsity `k`, exchange rate `q` and at most
/// `e_max` exact coordinates.
pub fn plan(cand_desc: &[f64], d: usize, k: usize, q: usize, e_max: usize) -> Plan {
    let sd = (d as f64).sqrt();
    let mut e = e_max;
    for cand_e in 0..=e_max.min(cand_desc.len()) {
        let ke = k - q * cand_e;
        let thr = sd / ke as f64;
        let exceed = cand_desc.partition_point(|&a| a > thr);
        if exceed <= cand_e {
            e = cand_e;
            break;
        }
    }
    let mut kb = k - q * e;
    if let Some(&rest) = cand_desc.get(e) {
        if rest > sd / kb as f64 {
            kb = ((sd / rest).floor() as usize).clamp(1, kb);
        }
    }
    Plan { exact: e, k: kb }
}

/// Spread the slack: `pi_i = min(1, pi0_i + lambda)` over the eligible entries (`pi0_i >= 0`;
/// negative entries are excluded and set to 0) with `sum pi_i = k`. In place, O(d) per round,
/// few rounds (the capped set only grows).
pub fn spread(pi: &mut [f64], k: usize) {
    // Four independent lanes per reduction (no serial chain of f64 additions over d entries).
    let (mut el, mut sm, mut mx) = ([0usize; 4], [0f64; 4], [0f64; 4]);
    let mut quads = pi.chunks_exact(4);
    for q in &mut quads {
        for j in 0..4 {
            let e = q[j] >= 0.0;
            el[j] += usize::from(e);
            sm[j] += if e { q[j] } else { 0.0 };
            mx[j] = if e && q[j] > mx[j] { q[j] } else { mx[j] };
        }
    }
    for &p in quads.remainder() {
        if p >= 0.0 {
            el[0] += 1;
            sm[0] += p;
            mx[0] = mx[0].max(p);
        }
    }
    let elig: usize = el.iter().sum();
    let sum0 = (sm[0] + sm[1]) + (sm[2] + sm[3]);
    let maxp = mx.iter().fold(0f64, |a, &b| a.max(b));
    let kf = k as f64;
    let mut lambda = if elig > 0 {
        ((kf - sum0) / elig as f64).max(0.0)
    } else {
        0.0
    };
    if maxp + lambda > 1.0 {
        let mut capped_prev = usize::MAX;
        loop {
            let (mut cp, mut fs) = ([0usize; 4], [0f64; 4]);
            let mut quads = pi.chunks_exact(4);
            for q in &mut quads {
                for j in 0..4 {
                    let e = q[j] >= 0.0;
                    let c = e && q[j] + lambda >= 1.0;
                    cp[j] += usize::from(c);
                    fs[j] += if e && !c { q[j] } else { 0.0 };
                }
            }
            for &p in quads.remainder() {
                if p >= 0.0 {
                    if p + lambda >= 1.0 {
                        cp[0] += 1;
                    } else {
                        fs[0] += p;
                    }
                }
            }
            let capped: usize = cp.iter().sum();
            let free_sum = (fs[0] + fs[1]) + (fs[2] + fs[3]);
            if capped == capped_prev || capped >= elig {
                break;
            }
            capped_prev = capped;
            lambda = ((kf - capped as f64 - free_sum) / (elig - capped) as f64).max(lambda);
        }
    }
    for p in pi.iter_mut() {
        *p = if *p >= 0.0 {
            (*p + lambda).min(1.0)
        } else {
            0.0
        };
    }
}

/// Probability at or above which an entry is treated as certainly included.
pub const CERTAIN: f64 = 1.0 - 1e-12;

/// Systematic sampling of `k` distinct entries with marginals `pi` (summing to `k`, each
/// `<= 1`), given the prefix sums `prefix` of the uncertain entries (certain ones contribute 0)
/// and the list of certain entries. Calls `emit(i)` for each selected entry.
pub fn systematic<R: rand::Rng>(
    prefix: &[f64],
    certain: &[u32],
    k: usize,
    rng: &mut R,
    mut emit: impl FnMut(usize, &mut R),
) {
    for &i in certain {
        emit(i as usize, rng);
    }
    let kn = k.saturating_sub(certain.len());
    if kn == 0 {
        return;
    }
    let total = prefix.last().copied().unwrap_or(0.0);
    let spacing = total / kn as f64;
    let u = sampling::uniform(rng);
    let mut pos = 0usize;
    for t in 0..kn {
        let tau = (u + t as f64) * spacing;
        pos += gallop(&prefix[pos..], tau);
        if pos >= prefix.len() {
            // Rounding past the end: the last entry with uncertain weight.
            let last = (1..prefix.len())
                .rev()
                .find(|&i| prefix[i] > prefix[i - 1])
                .unwrap_or(0);
            emit(last, rng);
            pos = prefix.len() - 1;
        } else {
            emit(pos, rng);
        }
    }
}

/// `prefix.partition_point(|&p| p <= tau)` for a non-decreasing `prefix`, by exponential
/// search from the start: O(log j) for answer `j`, touching only the memory near the start (the
/// targets of systematic sampling advance by about `d / k` entries each).
fn gallop(prefix: &[f64], tau: f64) -> usize {
    let mut hi = 1usize;
    while hi < prefix.len() && prefix[hi - 1] <= tau {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(prefix.len());
    lo + prefix[lo..hi].partition_point(|&p| p <= tau)
}

/// Reference (slow, for tests): the inclusion probabilities `pi` of `v` (`||v|| <= 1`, all
/// `pi0 <= 1`) for sparsity `k`, and the exact distribution of the systematic sample as
/// `(selected set, probability)` pairs, enumerated over the breakpoints of `U`.
pub fn reference_sets(v: &[f64], k: usize) -> (Vec<f64>, Vec<(Vec<usize>, f64)>) {
    let d = v.len();
    let sd = (d as f64).sqrt();
    let mut pi: Vec<f64> = v.iter().map(|x| k as f64 * x.abs() / sd).collect();
    spread(&mut pi, k);
    let mut prefix = vec![0.0; d + 1];
    for i in 0..d {
        prefix[i + 1] = prefix[i] + pi[i];
    }
    let mut breaks: Vec<f64> = prefix.iter().map(|p| p - p.floor()).collect();
    breaks.push(0.0);
    breaks.push(1.0);
    breaks.sort_by(f64::total_cmp);
    let mut sets: Vec<(Vec<usize>, f64)> = Vec::new();
    for w in breaks.windows(2) {
        let len = w[1] - w[0];
        if len <= 0.0 {
            continue;
        }
        let u = 0.5 * (w[0] + w[1]);
        let set: Vec<usize> = (0..k)
            .map(|t| {
                let tau = u + t as f64;
                (0..d)
                    .find(|&i| prefix[i] <= tau && tau < prefix[i + 1])
                    .unwrap_or(d - 1)
            })
            .collect();
        match sets.iter_mut().find(|(s, _)| *s == set) {
            Some(e) => e.1 += len,
            None => sets.push((set, len)),
        }
    }
    (pi, sets)
}

/// Reference (slow, for tests): every point of the k-sparse set reached for `v`, with its convex
/// weight (set probability times the sign probabilities), as `(point, weight)`.
pub fn convex_weights(v: &[f64], k: usize) -> Vec<(Vec<f64>, f64)> {
    let d = v.len();
    let sd = (d as f64).sqrt();
    let (pi, sets) = reference_sets(v, k);
    let mut out = Vec::new();
    for (set, p) in sets {
        for signs in 0..(1u32 << k) {
            let mut point = vec![0.0; d];
            let mut w = p;
            for (t, &i) in set.iter().enumerate() {
                let plus = 0.5 * (1.0 + k as f64 * v[i] / (sd * pi[i]));
                let neg = signs >> t & 1 == 1;
                w *= if neg { 1.0 - plus } else { plus };
                point[i] = if neg { -sd / k as f64 } else { sd / k as f64 };
            }
            out.push((point, w));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_hits_k_and_caps_at_one() {
        let mut pi = vec![0.9, 0.05, 0.05, 0.0, -1.0, 0.3];
        spread(&mut pi, 3);
        assert!((pi.iter().sum::<f64>() - 3.0).abs() < 1e-12);
        assert!(pi.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(pi[4], 0.0);
        assert!(pi[0] >= 0.9 && pi[5] >= 0.3);
    }

    #[test]
    fn convex_combination_reproduces_the_input() {
        let v = [0.5, -0.3, 0.1, 0.6, -0.2];
        let n = v.iter().map(|x: &f64| x * x).sum::<f64>().sqrt();
        let v: Vec<f64> = v.iter().map(|x| x / n).collect();
        for k in 1..=2 {
            let pts = convex_weights(&v, k);
            let total: f64 = pts.iter().map(|p| p.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
            let mut mean = [0.0; 5];
            for (p, w) in &pts {
                assert!(*w >= 0.0);
                assert_eq!(p.iter().filter(|x| **x != 0.0).count(), k);
                for i in 0..5 {
                    mean[i] += w * p[i];
                }
            }
            for i in 0..5 {
                assert!((mean[i] - v[i]).abs() < 1e-9, "k {k}: {mean:?} vs {v:?}");
            }
        }
    }

    #[test]
    fn gallop_is_partition_point() {
        let p: Vec<f64> = (0..1000).map(|i| (i / 3) as f64).collect();
        for k in 0..20 {
            let tau = k as f64 * 17.3 - 1.0;
            for start in [0usize, 1, 5, 500, 999, 1000] {
                let s = &p[start..];
                assert_eq!(gallop(s, tau), s.partition_point(|&x| x <= tau));
            }
        }
        assert_eq!(gallop(&[], 1.0), 0);
    }

    #[test]
    fn plan_sends_the_offenders_exactly() {
        // d = 16, k = 8: threshold sqrt(16)/8 = 0.5.
        let cand = [0.7, 0.55];
        let p = plan(&cand, 16, 8, 1, 7);
        assert!(p.exact >= 1);
        let thr = 4.0 / p.k as f64;
        assert!(cand[p.exact..].iter().all(|&a| a <= thr), "{p:?}");
        assert_eq!(plan(&[], 16, 8, 1, 7), Plan { exact: 0, k: 8 });
    }
}

//! Golomb-Rice coding of sorted multisets (spec `vqsgd.md` section 6).
//!
//! A multiset of `count` symbols from `0..m` is sorted and coded as gaps: the first symbol
//! itself, then the difference to the previous one (0 for a repeated symbol). Each gap `x` is
//! written with the Rice parameter `r` as `x >> r` in unary (ones, then a zero) followed by the
//! low `r` bits of `x`. The parameter is a deterministic function of `(m, count)`
//! ([`rice_param`]), so it is never sent: both ends know `m` and `count` from the configuration
//! (and the payload header).
//!
//! Cost: with gaps summing to less than `m`, the unary parts total at most `(m - 1) >> r` bits,
//! so a multiset costs at most [`rice_bits_bound`] bits, about `count (log2(m / count) + 2)`.

use crate::bits::{BitReader, BitWriter};
use crate::{Error, Result};

/// The Rice parameter for `count` symbols out of `0..m`: minimises the worst-case cost
/// `count (r + 1) + (m - 1) / 2^r` (which is also the expected cost for evenly spread gaps).
pub fn rice_param(m: u64, count: u64) -> u32 {
    if count == 0 || m <= 1 {
        return 0;
    }
    let mut best = (u64::MAX, 0u32);
    for r in 0..=40u32 {
        let cost = count
            .saturating_mul(u64::from(r) + 1)
            .saturating_add((m - 1) >> r);
        if cost < best.0 {
            best = (cost, r);
        }
    }
    best.1
}

/// A true upper bound on the bits [`write_sorted`] spends on `count` symbols out of `0..m`.
pub fn rice_bits_bound(m: u64, count: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    let r = rice_param(m, count);
    count * (u64::from(r) + 1) + ((m.saturating_sub(1)) >> r)
}

/// Write the sorted (non-decreasing) symbols `sorted` (all `< m`) as Rice-coded gaps.
/// Returns the number of bits written.
pub fn write_sorted(w: &mut BitWriter<'_>, sorted: &[u32], m: u64) -> u64 {
    let before = w.bits_written();
    let r = rice_param(m, sorted.len() as u64);
    let mask = (1u64 << r) - 1;
    let mut prev = 0u64;
    w.reserve_bits(rice_bits_bound(m, sorted.len() as u64));
    for &s in sorted {
        let s = u64::from(s);
        debug_assert!(
            s >= prev && s < m,
            "symbols must be sorted and < m: {sorted:?} m {m}"
        );
        let gap = s - prev;
        let q = gap >> r;
        if q + 1 + u64::from(r) <= 32 {
            // The usual case: `q` ones, the terminating zero and the `r` low bits in one put
            // (the same bits, in the same order, as the two writes below).
            let code = ((1u64 << q) - 1) | ((gap & mask) << (q + 1));
            w.write_short(code, (q + 1) as u32 + r);
        } else {
            w.write_unary(q);
            w.write(gap & mask, r);
        }
        prev = s;
    }
    w.bits_written() - before
}

/// Read `count` symbols out of `0..m` written by [`write_sorted`], calling `f` on each in
/// non-decreasing order. A symbol `>= m` or a truncated stream is an error.
pub fn read_sorted(
    rd: &mut BitReader<'_>,
    count: usize,
    m: u64,
    mut f: impl FnMut(u64),
) -> Result<()> {
    let r = rice_param(m, count as u64);
    let mask = (1u64 << r) - 1;
    let mut cur = 0u64;
    for t in 0..count {
        // Fast path: the unary part, its terminator and the r low bits within the next 56 bits
        // (then no overflow is possible: q < 56, r <= 40, cur < m < 2^63).
        if let Some(w) = rd.peek56() {
            let q = w.trailing_ones();
            if q + 1 + r <= 56 {
                let gap = (u64::from(q) << r) + ((w >> (q + 1)) & mask);
                cur += gap;
                if cur >= m {
                    return Err(Error::payload(format!(
                        "Rice-coded symbol {t} decodes to {cur}, out of range 0..{m}"
                    )));
                }
                rd.advance(u64::from(q + 1 + r));
                f(cur);
                continue;
            }
        }
        let q = rd.read_unary()?;
        let low = rd.read(r)?;
        // q can be huge only in a corrupted payload; checked arithmetic keeps it an error.
        let gap = q
            .checked_mul(1u64 << r)
            .and_then(|x| x.checked_add(low))
            .ok_or_else(|| Error::payload("Rice gap overflows"))?;
        cur = cur
            .checked_add(gap)
            .ok_or_else(|| Error::payload("Rice gap overflows"))?;
        if cur >= m {
            return Err(Error::payload(format!(
                "Rice-coded symbol {t} decodes to {cur}, out of range 0..{m}"
            )));
        }
        f(cur);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};

    /// The coding by its definition: each gap as `write_unary(gap >> r)` then `write(low r bits)`.
    fn by_definition(sorted: &[u32], m: u64) -> Vec<u8> {
        let r = rice_param(m, sorted.len() as u64);
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        let mut prev = 0u64;
        for &s in sorted {
            let gap = u64::from(s) - prev;
            w.write_unary(gap >> r);
            w.write(gap & ((1u64 << r) - 1), r);
            prev = u64::from(s);
        }
        w.finish();
        buf
    }

    fn round_trip(sorted: &[u32], m: u64) {
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        let bits = write_sorted(&mut w, sorted, m);
        assert!(
            bits <= rice_bits_bound(m, sorted.len() as u64),
            "bound violated"
        );
        w.finish();
        assert_eq!(
            buf,
            by_definition(sorted, m),
            "bits differ from the definition"
        );
        let mut got = Vec::new();
        let mut rd = BitReader::new(&buf);
        read_sorted(&mut rd, sorted.len(), m, |x| got.push(x as u32)).unwrap();
        rd.expect_end().unwrap();
        assert_eq!(got, sorted);
    }

    #[test]
    fn round_trips_with_repeats_extremes_and_random_sets() {
        round_trip(&[], 10);
        round_trip(&[0], 1);
        round_trip(&[0, 0, 0, 0], 1);
        round_trip(&[5, 5, 5, 9, 9, 9], 10);
        round_trip(&[0, 999_999], 1_000_000);
        round_trip(&[999_999; 3], 1_000_000);
        // A long gap (unary part longer than 56 bits) after a dense cluster: the slow path.
        let mut v: Vec<u32> = (0..1000).collect();
        v.push((1 << 30) - 1);
        round_trip(&v, 1 << 30);
        let mut rng = crate::rng::Rng::seed_from_u64(3);
        for &(m, count) in &[
            (2u64, 50usize),
            (17, 5),
            (1000, 1000),
            (1 << 21, 300),
            (100, 3000),
        ] {
            let mut v: Vec<u32> = (0..count).map(|_| rng.random_range(0..m) as u32).collect();
            v.sort_unstable();
            round_trip(&v, m);
        }
    }

    #[test]
    fn cost_is_near_the_entropy_estimate() {
        // count evenly spread symbols: about count (log2(m/count) + 2) bits.
        let (m, count) = (1u64 << 20, 1000u64);
        let b = rice_bits_bound(m, count) as f64;
        let est = count as f64 * ((m as f64 / count as f64).log2() + 2.0);
        assert!(b <= 1.05 * est, "{b} vs {est}");
    }

    #[test]
    fn corrupted_streams_are_errors() {
        let v = [3u32, 7, 7, 12];
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        write_sorted(&mut w, &v, 16);
        w.finish();
        // Out of range when m is smaller than the coded symbols.
        assert!(read_sorted(&mut BitReader::new(&buf), 4, 10, |_| {}).is_err());
        // Truncated.
        assert!(read_sorted(&mut BitReader::new(&buf[..1]), 4, 16, |_| {}).is_err());
        // Garbage of all ones: unary never terminates.
        assert!(read_sorted(&mut BitReader::new(&[0xff; 9]), 1, 16, |_| {}).is_err());
    }
}

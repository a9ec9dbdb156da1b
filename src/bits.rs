//! Bit packing: fixed-width little-endian bit streams (spec `vqsgd.md` section 6).
//!
//! Values are written least-significant bit first into a byte buffer, so bit `i` of the stream
//! is bit `i % 8` of byte `i / 8`; tail bits of the last byte are zero. No MPI, no ndarray:
//! the quantizers and baselines build payloads with [`BitWriter`] and parse them with
//! [`BitReader`], which reports a truncated stream as an error instead of panicking.

use crate::{Error, Result};

/// Number of bits needed to index `n` distinct values: `ceil(log2 n)`, and 0 for `n <= 1`.
pub fn bits_for(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// Bytes needed for `bits` bits.
pub fn bytes_for_bits(bits: u64) -> usize {
    bits.div_ceil(8) as usize
}

/// Appends values of up to 57 bits to a byte vector.
///
/// Bits are buffered in a 64-bit accumulator holding fewer than 32 pending bits and flushed four
/// whole bytes at a time (a fixed-size append, no variable-length copy per value).
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
    written: u64,
}

impl<'a> BitWriter<'a> {
    /// Start writing at the end of `out` (existing bytes are kept).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            acc: 0,
            n: 0,
            written: 0,
        }
    }

    /// Write the low `width` bits of `value` (`width <= 57`; higher bits of `value` must be 0).
    #[inline]
    pub fn write(&mut self, value: u64, width: u32) {
        debug_assert!(width <= 57);
        debug_assert!(
            width == 64 || value >> width == 0,
            "value {value} wider than {width}"
        );
        self.written += u64::from(width);
        if width > 32 {
            self.put(value & 0xffff_ffff, 32);
            self.put(value >> 32, width - 32);
        } else {
            self.put(value, width);
        }
    }

    /// [`write`] for `width <= 32`, always inlined (for hot loops that know the width is small).
    ///
    /// [`write`]: Self::write
    #[inline(always)]
    pub fn write_short(&mut self, value: u64, width: u32) {
        debug_assert!(
            width <= 32 && value >> width == 0,
            "value {value} wider than {width}"
        );
        self.written += u64::from(width);
        self.put(value, width);
    }

    /// Reserve room for `bits` more bits, so the writes that follow do not reallocate.
    pub fn reserve_bits(&mut self, bits: u64) {
        self.out.reserve(bytes_for_bits(bits) + 8);
    }

    /// Write every value of `values` with `width` bits each (as repeated [`write`]s, in one
    /// tight loop).
    ///
    /// [`write`]: Self::write
    #[inline]
    pub fn write_run(&mut self, width: u32, values: impl IntoIterator<Item = u64>) {
        if width > 32 {
            for v in values {
                self.write(v, width);
            }
            return;
        }
        let (mut acc, mut n, mut count) = (self.acc, self.n, 0u64);
        for v in values {
            debug_assert!(v >> width == 0, "value {v} wider than {width}");
            acc |= v << n;
            n += width;
            count += 1;
            if n >= 32 {
                self.out.extend_from_slice(&(acc as u32).to_le_bytes());
                acc >>= 32;
                n -= 32;
            }
        }
        self.acc = acc;
        self.n = n;
        self.written += count * u64::from(width);
    }

    /// Append `width <= 32` bits (`self.n < 32` before and after).
    #[inline(always)]
    fn put(&mut self, value: u64, width: u32) {
        self.acc |= value << self.n;
        self.n += width;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Write a single bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write(u64::from(bit), 1);
    }

    /// Write `count` one bits followed by a zero bit (a unary number, read by
    /// [`BitReader::read_unary`]).
    #[inline]
    pub fn write_unary(&mut self, mut count: u64) {
        while count >= 56 {
            self.write((1u64 << 56) - 1, 56);
            count -= 56;
        }
        // `count` ones then the terminating zero.
        self.write((1u64 << count) - 1, count as u32 + 1);
    }

    /// Bits written so far by this writer.
    pub fn bits_written(&self) -> u64 {
        self.written
    }

    /// Flush the pending bits (the partial last byte with zero tail bits). Returns the number
    /// of bits written.
    pub fn finish(self) -> u64 {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.written
    }
}

/// Reads values written by [`BitWriter`]; running past the end is an error.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: u64,
    len_bits: u64,
}

impl<'a> BitReader<'a> {
    /// Read from the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            len_bits: data.len() as u64 * 8,
        }
    }

    /// Bits consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bits left.
    pub fn remaining(&self) -> u64 {
        self.len_bits - self.pos
    }

    /// Read `width <= 57` bits.
    #[inline]
    pub fn read(&mut self, width: u32) -> Result<u64> {
        debug_assert!(width <= 57);
        if width == 0 {
            return Ok(0);
        }
        if self.pos + u64::from(width) > self.len_bits {
            return Err(Error::payload(format!(
                "bit stream truncated: need {width} bits at bit {}, only {} bits in {} bytes",
                self.pos,
                self.len_bits,
                self.data.len()
            )));
        }
        let v = (self.window() >> (self.pos % 8)) & ((1u64 << width) - 1);
        self.pos += u64::from(width);
        Ok(v)
    }

    /// The 8 bytes starting at the byte holding bit `pos`, little-endian, zero past the end.
    #[inline]
    fn window(&self) -> u64 {
        let byte = (self.pos / 8) as usize;
        if let Some(b) = self.data.get(byte..byte + 8) {
            // Fast path: a whole word is available (every read but the last few).
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            u64::from_le_bytes(word)
        } else {
            let mut word = [0u8; 8];
            let end = self.data.len().max(byte);
            word[..end - byte].copy_from_slice(&self.data[byte..end]);
            u64::from_le_bytes(word)
        }
    }

    /// The next 56 bits of the stream (bit `i` of the result is stream bit `pos + i`) when at
    /// least 64 bits remain, else `None`. For decoders that parse several fields at once.
    #[inline(always)]
    pub fn peek56(&self) -> Option<u64> {
        let byte = (self.pos / 8) as usize;
        let b = self.data.get(byte..byte + 8)?;
        Some(u64::from_le_bytes(b.try_into().expect("8 bytes")) >> (self.pos % 8))
    }

    /// Skip `n` bits (`n <= remaining()`, checked by the caller).
    #[inline(always)]
    pub fn advance(&mut self, n: u64) {
        debug_assert!(n <= self.remaining());
        self.pos += n;
    }

    /// Read a unary number: count `1` bits up to and including the terminating `0` bit
    /// (the count excludes the terminator). Running out of bits first is an error.
    #[inline]
    pub fn read_unary(&mut self) -> Result<u64> {
        let mut count = 0u64;
        loop {
            if self.pos >= self.len_bits {
                return Err(Error::payload(format!(
                    "bit stream truncated inside a unary code at bit {} of {}",
                    self.pos, self.len_bits
                )));
            }
            let avail = (self.len_bits - self.pos).min(56) as u32;
            let bits = (self.window() >> (self.pos % 8)) & ((1u64 << avail) - 1);
            let ones = bits.trailing_ones();
            if ones < avail {
                count += u64::from(ones);
                self.pos += u64::from(ones) + 1;
                return Ok(count);
            }
            count += u64::from(avail);
            self.pos += u64::from(avail);
        }
    }

    /// Read `count` values of `width <= 57` bits, calling `f` on each; fails before reading
    /// anything when fewer than `count * width` bits remain. Faster than repeated [`read`]s.
    ///
    /// [`read`]: Self::read
    #[inline]
    pub fn read_run(&mut self, count: usize, width: u32, mut f: impl FnMut(u64)) -> Result<()> {
        debug_assert!(width <= 57);
        let need = count as u64 * u64::from(width);
        if need > self.remaining() {
            return Err(Error::payload(format!(
                "bit stream truncated: need {count} values of {width} bits at bit {}, only {} \
                 bits in {} bytes",
                self.pos,
                self.len_bits,
                self.data.len()
            )));
        }
        if width == 0 {
            (0..count).for_each(|_| f(0));
            return Ok(());
        }
        let mask = (1u64 << width) - 1;
        // The position in a local (stored back at the end): `f` may panic, and a field would be
        // kept up to date in memory for the unwinder at every value.
        let data = self.data;
        let mut pos = self.pos;
        for _ in 0..count {
            let byte = (pos / 8) as usize;
            let word = match data.get(byte..byte + 8) {
                Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
                None => {
                    let mut w = [0u8; 8];
                    w[..data.len() - byte].copy_from_slice(&data[byte..]);
                    u64::from_le_bytes(w)
                }
            };
            f((word >> (pos % 8)) & mask);
            pos += u64::from(width);
        }
        self.pos = pos;
        Ok(())
    }

    /// Read one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    /// Check that the remaining bits are fewer than 8 and all zero (no trailing garbage).
    pub fn expect_end(&self) -> Result<()> {
        let rem = self.remaining();
        if rem >= 8 {
            return Err(Error::payload(format!(
                "{} trailing bytes after the encoded data",
                rem / 8
            )));
        }
        if rem > 0 {
            let last = self.data[self.data.len() - 1];
            if last >> (8 - rem as u32) != 0 {
                return Err(Error::payload(
                    "non-zero padding bits at the end of the payload",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};

    #[test]
    fn bits_for_matches_definition() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(3), 2);
        assert_eq!(bits_for(4), 2);
        assert_eq!(bits_for(5), 3);
        assert_eq!(bits_for(2_000_000), 21);
        assert_eq!(bits_for(1 << 32), 32);
    }

    #[test]
    fn round_trip_every_width_and_odd_lengths() {
        let mut rng = crate::rng::Rng::seed_from_u64(1);
        for width in 1..=32u32 {
            for len in [0usize, 1, 3, 7, 8, 9, 31, 33, 101] {
                let vals: Vec<u64> = (0..len)
                    .map(|_| rng.random::<u64>() >> (64 - width))
                    .collect();
                let mut buf = Vec::new();
                let mut w = BitWriter::new(&mut buf);
                for &v in &vals {
                    w.write(v, width);
                }
                let bits = w.finish();
                assert_eq!(bits, width as u64 * len as u64);
                assert_eq!(buf.len(), bytes_for_bits(bits));
                let mut r = BitReader::new(&buf);
                for &v in &vals {
                    assert_eq!(r.read(width).unwrap(), v, "width {width} len {len}");
                }
                r.expect_end().unwrap();
            }
        }
    }

    #[test]
    fn write_run_matches_single_writes() {
        let mut rng = crate::rng::Rng::seed_from_u64(2);
        for width in [0u32, 1, 7, 21, 31, 32, 33, 57] {
            let vals: Vec<u64> = (0..77)
                .map(|_| {
                    if width == 0 {
                        0
                    } else {
                        rng.random::<u64>() >> (64 - width)
                    }
                })
                .collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut wa = BitWriter::new(&mut a);
            let mut wb = BitWriter::new(&mut b);
            wa.write(5, 3);
            wb.write(5, 3);
            for &v in &vals {
                wa.write(v, width);
            }
            wb.write_run(width, vals.iter().copied());
            assert_eq!(wa.bits_written(), wb.bits_written());
            assert_eq!(wa.finish(), wb.finish());
            assert_eq!(a, b, "width {width}");
        }
    }

    #[test]
    fn unary_round_trips_across_word_boundaries() {
        let counts = [0u64, 1, 2, 7, 8, 55, 56, 57, 63, 64, 120, 200, 3, 0, 0];
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        w.write(5, 3);
        for &c in &counts {
            w.write_unary(c);
        }
        let bits = w.finish();
        assert_eq!(bits, 3 + counts.iter().map(|c| c + 1).sum::<u64>());
        let mut r = BitReader::new(&buf);
        assert_eq!(r.read(3).unwrap(), 5);
        for &c in &counts {
            assert_eq!(r.read_unary().unwrap(), c);
        }
        r.expect_end().unwrap();
        // All ones: the terminator is missing.
        assert!(BitReader::new(&[0xff, 0xff]).read_unary().is_err());
    }

    #[test]
    fn read_run_matches_single_reads() {
        let mut rng = crate::rng::Rng::seed_from_u64(5);
        for width in [1u32, 5, 13, 21, 32, 57] {
            let vals: Vec<u64> = (0..37)
                .map(|_| rng.random::<u64>() >> (64 - width))
                .collect();
            let mut buf = Vec::new();
            let mut w = BitWriter::new(&mut buf);
            w.write(3, 2);
            for &v in &vals {
                w.write(v, width);
            }
            w.finish();
            let mut r = BitReader::new(&buf);
            r.read(2).unwrap();
            let mut got = Vec::new();
            r.read_run(vals.len(), width, |v| got.push(v)).unwrap();
            assert_eq!(got, vals);
            r.expect_end().unwrap();
            let mut r = BitReader::new(&buf);
            r.read(2).unwrap();
            // The padding holds fewer than 8 bits, so 8 more values never fit.
            assert!(r.read_run(vals.len() + 8, width, |_| {}).is_err());
        }
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        w.write(0x1ff, 9);
        w.finish();
        let mut r = BitReader::new(&buf[..1]);
        assert!(r.read(9).is_err());
    }

    #[test]
    fn trailing_bytes_and_dirty_padding_are_errors() {
        let mut r = BitReader::new(&[0xff, 0x00]);
        r.read(3).unwrap();
        assert!(r.expect_end().is_err());
        let mut r = BitReader::new(&[0xff]);
        r.read(3).unwrap();
        assert!(r.expect_end().is_err());
        let mut r = BitReader::new(&[0x07]);
        r.read(3).unwrap();
        r.expect_end().unwrap();
    }
}

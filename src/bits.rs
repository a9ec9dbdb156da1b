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
        self.acc |= value << self.n;
        self.n += width;
        self.written += u64::from(width);
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
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

    /// Flush the partial last byte (tail bits zero). Returns the number of bits written.
    pub fn finish(self) -> u64 {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
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

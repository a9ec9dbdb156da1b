#![no_main]
//! `cargo fuzz run payload_decode`: see `vqsgd_fuzz::payload_decode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::payload_decode(data));

#![no_main]
//! `cargo fuzz run checkpoint`: see `vqsgd_fuzz::checkpoint`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::checkpoint(data));

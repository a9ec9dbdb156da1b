#![no_main]
//! `cargo fuzz run idx`: see `vqsgd_fuzz::idx`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::idx(data));

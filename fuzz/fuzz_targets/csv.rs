#![no_main]
//! `cargo fuzz run csv`: see `vqsgd_fuzz::csv`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::csv(data));

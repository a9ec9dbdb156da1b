#![no_main]
//! `cargo fuzz run config`: see `vqsgd_fuzz::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::config(data));

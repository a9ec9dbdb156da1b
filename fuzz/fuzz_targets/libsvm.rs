#![no_main]
//! `cargo fuzz run libsvm`: see `vqsgd_fuzz::libsvm`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vqsgd_fuzz::libsvm(data));

//! libFuzzer entry point: see `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cachebox_fuzz::run(data));

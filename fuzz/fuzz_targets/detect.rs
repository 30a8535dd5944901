//! Fuzz target: the detect reader's whole read path (see `imgport_fuzz::detect`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::detect(data));

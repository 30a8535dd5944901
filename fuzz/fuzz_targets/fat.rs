//! Fuzz target: the fat reader's whole read path (see `imgport_fuzz::fat`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::fat(data));

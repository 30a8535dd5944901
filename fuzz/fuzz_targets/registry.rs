//! Fuzz target: the registry reader's whole read path (see `imgport_fuzz::registry`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::registry(data));

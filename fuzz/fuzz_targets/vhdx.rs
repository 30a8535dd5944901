//! Fuzz target: the vhdx reader's whole read path (see `imgport_fuzz::vhdx`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::vhdx(data));

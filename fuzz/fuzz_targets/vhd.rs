//! Fuzz target: the vhd reader's whole read path (see `imgport_fuzz::vhd`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::vhd(data));

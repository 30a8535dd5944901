//! Fuzz target: the xfs reader's whole read path (see `imgport_fuzz::xfs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::xfs(data));

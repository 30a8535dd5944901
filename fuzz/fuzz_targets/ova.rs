//! Fuzz target: an OVA package's whole read path (see `imgport_fuzz::ova`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::ova(data));

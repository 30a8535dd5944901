//! Fuzz target: the vmdk reader's whole read path (see `imgport_fuzz::vmdk`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::vmdk(data));

//! Fuzz target: the partition-table reader (see `imgport_fuzz::partition`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::partition(data));

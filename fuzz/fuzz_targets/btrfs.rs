//! Fuzz target: the btrfs reader (see `imgport_fuzz::btrfs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::btrfs(data));

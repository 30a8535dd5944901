//! Fuzz target: the ntfs reader's whole read path (see `imgport_fuzz::ntfs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::ntfs(data));

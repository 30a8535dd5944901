//! Fuzz target: the ext2/3/4 reader's whole read path (see `imgport_fuzz::ext4`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::ext4(data));

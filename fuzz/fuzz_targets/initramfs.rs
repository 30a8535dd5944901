//! Fuzz target: the initramfs reader's whole read path (see `imgport_fuzz::initramfs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::initramfs(data));

//! Fuzz target: the LVM2 reader (see `imgport_fuzz::lvm`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::lvm(data));

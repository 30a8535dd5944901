//! Fuzz target: the qcow2 reader's whole read path (see `imgport_fuzz::qcow2`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgport_fuzz::qcow2(data));

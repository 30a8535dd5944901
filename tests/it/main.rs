//! Integration tests: one binary that runs the real `imgport` executable against images made
//! by real tools (`scripts/make-testdata.sh`) and compares with `qemu-img` as the oracle.

mod cloud;
mod convert;
mod hostile;
mod import;
mod inspect_container;
mod oslo;
mod plan;
mod qcow2;
mod upload;
mod util;
mod vhd;

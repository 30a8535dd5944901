//! Integration tests: one binary that runs the real `imgport` executable against images made
//! by real tools (`scripts/make-testdata.sh`) and compares with `qemu-img` as the oracle.

mod cloud;
mod convert;
mod guest;
mod inspect_container;
mod plan;
mod util;
mod vhd;

//! Integration tests: one binary that runs the real `imgport` executable against images made
//! by real tools (`scripts/make-testdata.sh`) and compares with `qemu-img` as the oracle.

mod batch;
mod batch_chaos;
mod cli_generate;
mod cli_help;
mod cli_messages;
mod cli_progress;
mod cli_verbose;
mod cloud;
mod convert;
mod guest;
mod guest_read_errors;
mod guest_readers;
mod hostile;
mod import;
mod inspect_container;
mod internal_endpoint;
mod oslo;
mod oss_checks;
mod ova;
mod plan;
mod qcow2;
mod ram_role;
mod reliability;
mod report_render;
mod upload;
mod util;
mod vhd;
mod vhdx;
mod vmdk;
mod wan;

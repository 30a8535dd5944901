//! imgport: inspect local RAW, VHD and QCOW2 disk images, convert and checksum them in one
//! streaming pass, upload them to OSS/S3 and import them as cloud images.
//!
//! The library never prints; progress leaves through [`report::Reporter`]. The binary in
//! `main.rs` and the `cli` module are the only places that talk to a terminal.

pub mod cli;
pub mod cloud;
pub mod credentials;
pub mod destination;
pub mod guest;
pub mod image;
mod mem;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod secret;
pub mod sim;
pub mod source;
pub mod store;
#[cfg(test)]
pub mod test_support;
pub mod transfer;

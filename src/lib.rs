//! imgport: inspect local RAW, VHD and QCOW2 disk images, convert and checksum them in one
//! streaming pass, upload them to OSS/S3 and import them as cloud images.
//!
//! This crate is the command-line layer (clap, progress bars, exit codes) over the
//! workspace's library crates; the library never prints. The old module paths are re-exported
//! so that integration tests and fuzz targets can name library items as `imgport::…`.

pub mod cli;

pub use imgport_base::{destination, report, secret};
pub use imgport_cloud as cloud;
pub use imgport_core::{pipeline, plan};
pub use imgport_credentials as credentials;
pub use imgport_guest as guest;
pub use imgport_image as image;
pub use imgport_image::source;
pub use imgport_sim as sim;
pub use imgport_store as store;
pub use imgport_transfer as transfer;

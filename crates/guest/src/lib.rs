//! What is inside a virtual disk: partitions, file systems, operating system, architecture,
//! boot mode, drivers and readiness for the cloud. Everything is read in userspace through
//! [`ByteSource`](imgport_image::source::ByteSource); nothing is mounted.
//!
//! Owns: partition tables, read-only file-system readers, OS recipes and [`facts::GuestFacts`].
//! Must not touch container formats (it sees only a virtual disk) nor any cloud API.

pub mod arch;
pub mod boot;
pub mod drivers;
pub mod elf;
pub mod facts;
pub mod fs;
pub mod fstab;
pub mod initramfs;
pub mod inspect;
pub mod kmod;
pub mod linux;
pub mod lvm;
pub mod md;
pub mod partition;
pub mod readiness;
pub mod registry;
pub mod windows;

pub use inspect::inspect;

//! Container formats: how the bytes of a RAW, VHD, QCOW2, VMDK or VHDX file map to a virtual
//! disk, and whether the file is safe to read at all; OVA/OVF packages of such disks (`ova.rs`).
//!
//! Owns: the [`DiskImage`] seam, one reader per format (`raw.rs`, `vhd.rs`, `qcow2.rs`, and the
//! input-only `vmdk.rs` and `vhdx.rs`) and the one place that chooses among them (`detect.rs`).
//! Must not touch what is inside the virtual disk (partitions, file systems: that is `guest`)
//! nor write files; the metadata bytes the converter writes are laid out beside each reader
//! (`vhd/write.rs`, `qcow2/write.rs`).

pub mod detect;
mod disk;
mod error;
mod extent;
mod file;
mod finding;
mod format;
mod input;
pub mod ova;
pub mod qcow2;
pub mod raw;
mod report;
pub mod source;
#[cfg(test)]
mod test_util;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

pub use detect::{OpenOptions, Opened};
pub use disk::{DiskImage, ImageSource};
pub use error::{ImageError, check_read};
pub use extent::{Extent, ExtentKind, block_extents, push_extent, read_blocks};
pub use file::ImageFile;
pub(crate) use finding::Verdict;
pub use finding::{Finding, Severity};
pub use format::ImageFormat;
pub use input::{inspect, open, open_all};
pub use report::{ContainerReport, FormatDetails};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_extent_merges_touching_same_kind() {
        let mut v = Vec::new();
        push_extent(
            &mut v,
            Extent {
                offset: 0,
                length: 10,
                kind: ExtentKind::Data,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 10,
                length: 5,
                kind: ExtentKind::Data,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 15,
                length: 5,
                kind: ExtentKind::Zero,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 20,
                length: 0,
                kind: ExtentKind::Data,
            },
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].length, 15);
    }

    #[test]
    fn check_read_refuses_overflow() {
        assert!(check_read(100, 10, 90).is_ok());
        assert!(check_read(100, 11, 90).is_err());
        assert!(check_read(100, 1, u64::MAX).is_err());
    }
}

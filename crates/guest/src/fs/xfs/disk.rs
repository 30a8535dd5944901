//! Byte-level helpers of the XFS reader: big-endian fields that never panic, the CRC32C rule
//! of v5 metadata, bounded reads from the volume and the one error constructor.

pub use imgport_base::bytes::{be16, be32, be64};

use crate::fs::FsError;
use imgport_image::source::ByteSource;

/// The `FsError::Corrupt` of this reader: `what` names the inode or block, `rule` the rule broken.
pub fn corrupt(what: impl Into<String>, rule: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: "xfs",
        what: what.into(),
        rule: rule.into(),
    }
}

/// The v5 checksum rule (xfs_cksum.h): CRC32C of the whole buffer with its 4-byte CRC field
/// taken as zero, stored little-endian in that field.
pub fn crc_ok(buf: &[u8], crc_off: usize) -> bool {
    let Some(end) = crc_off.checked_add(4).filter(|&e| e <= buf.len()) else {
        return false;
    };
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(&buf[..crc_off]);
    d.update(&[0; 4]);
    d.update(&buf[end..]);
    let stored = imgport_base::bytes::le32(buf, crc_off);
    d.finalize() == u64::from(stored)
}

/// Reads `len` bytes at `offset` of the volume.
pub fn read(source: &dyn ByteSource, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
    let mut buf = vec![0u8; len];
    source.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

//! The hard disk footer, decoded (spec "Hard Disk Footer Format").

use imgport_base::bytes::{be16, be32, be64};

use super::geometry::Geometry;
use super::spec::{FOOTER_LEN, foot};

/// The decoded hard disk footer.
#[derive(Debug, Clone)]
pub(super) struct Footer {
    /// The bytes as read (511 or 512), for the copy-at-0 comparison.
    pub(super) raw: Vec<u8>,
    pub(super) features: u32,
    pub(super) version: u32,
    pub(super) data_offset: u64,
    pub(super) timestamp: u32,
    pub(super) creator_app: [u8; 4],
    pub(super) creator_version: u32,
    pub(super) creator_os: [u8; 4],
    pub(super) original_size: u64,
    pub(super) current_size: u64,
    pub(super) geometry: Geometry,
    pub(super) disk_type: u32,
    pub(super) checksum: u32,
    pub(super) uuid: [u8; 16],
    pub(super) saved_state: u8,
}

impl Footer {
    /// Decodes a 511- or 512-byte footer (a short one reads as if zero-padded).
    pub(super) fn parse(raw: &[u8]) -> Self {
        let mut b = [0u8; FOOTER_LEN];
        let n = raw.len().min(FOOTER_LEN);
        b[..n].copy_from_slice(&raw[..n]);
        let tag = |off: usize| [b[off], b[off + 1], b[off + 2], b[off + 3]];
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[foot::UUID..foot::UUID + 16]);
        Self {
            raw: raw[..n].to_vec(),
            features: be32(&b, foot::FEATURES),
            version: be32(&b, foot::VERSION),
            data_offset: be64(&b, foot::DATA_OFFSET),
            timestamp: be32(&b, foot::TIMESTAMP),
            creator_app: tag(foot::CREATOR_APP),
            creator_version: be32(&b, foot::CREATOR_VERSION),
            creator_os: tag(foot::CREATOR_OS),
            original_size: be64(&b, foot::ORIGINAL_SIZE),
            current_size: be64(&b, foot::CURRENT_SIZE),
            geometry: Geometry {
                cylinders: be16(&b, foot::CYLINDERS),
                heads: b[foot::HEADS],
                sectors_per_track: b[foot::SECTORS],
            },
            disk_type: be32(&b, foot::DISK_TYPE),
            checksum: be32(&b, foot::CHECKSUM),
            uuid,
            saved_state: b[foot::SAVED_STATE],
        }
    }
}

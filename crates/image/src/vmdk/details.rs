//! What `inspect` reports about a VMDK: the descriptor's facts and each extent.

use serde::Serialize;

/// Facts about a VMDK (its descriptor and extents).
#[derive(Debug, Clone, Serialize)]
pub struct VmdkDetails {
    /// The descriptor's `createType` (`monolithicSparse`, `streamOptimized`, …).
    pub create_type: String,
    /// The descriptor's content ID, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// File offset of the descriptor: 512 when embedded in a sparse extent, 0 for a
    /// descriptor file.
    pub descriptor_offset: u64,
    /// The extents in disk order.
    pub extents: Vec<VmdkExtentDetails>,
}

/// One extent of a VMDK.
#[derive(Debug, Clone, Serialize)]
pub struct VmdkExtentDetails {
    /// `flat`, `sparse` or `zero`.
    pub kind: &'static str,
    /// `rw` or `rdonly`.
    pub access: &'static str,
    /// Offset of the extent in the virtual disk, in bytes.
    pub disk_offset: u64,
    /// Length of the extent in bytes.
    pub length: u64,
    /// The extent file, as named in the descriptor (none for a ZERO extent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Offset of the extent's data in a flat file, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<u64>,
    /// Header facts of a sparse extent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<SparseDetails>,
}

/// Header and table facts of a hosted sparse extent.
#[derive(Debug, Clone, Serialize)]
pub struct SparseDetails {
    /// Header version (1–3).
    pub version: u32,
    /// Header flags.
    pub flags: u32,
    /// Capacity in sectors.
    pub capacity_sectors: u64,
    /// Grain size in sectors.
    pub grain_sectors: u64,
    /// Entries per grain table.
    pub gtes_per_gt: u32,
    /// Sector of the grain directory.
    pub gd_offset_sectors: u64,
    /// The header said GD_AT_END and the directory was found through the footer.
    pub gd_at_end: bool,
    /// Grains are deflate-compressed (stream-optimized).
    pub compressed: bool,
    /// Grains stored in the file.
    pub allocated_grains: u64,
    /// Grains marked as zeros without storage.
    pub zero_grains: u64,
}

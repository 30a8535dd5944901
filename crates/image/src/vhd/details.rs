//! What `inspect` reports about a VHD file, and how its virtual disk maps onto the file.

use serde::Serialize;

use super::geometry::{Geometry, SizeSource};

/// Dynamic-disk facts for [`VhdDetails`].
#[derive(Debug, Clone, Serialize)]
pub struct VhdDynamicDetails {
    /// File offset of the `cxsparse` header (the footer's data offset).
    pub header_offset: u64,
    /// File offset of the block allocation table.
    pub bat_offset: u64,
    /// Number of BAT entries.
    pub max_table_entries: u32,
    /// Bytes of virtual disk per block.
    pub block_size: u32,
    /// Bytes of the sector bitmap in front of each block.
    pub bitmap_size: u64,
    /// Blocks with a BAT entry.
    pub allocated_blocks: u64,
    /// `max_table_entries × block_size`, which ECS requires to equal the disk size.
    pub table_coverage: u64,
}

/// Facts about a VHD file.
#[derive(Debug, Clone, Serialize)]
pub struct VhdDetails {
    /// `fixed` or `dynamic`.
    pub disk_type: &'static str,
    /// Creator application tag (`qemu`, `vpc `, `win `, `wa\x00\x00` …).
    pub creator_app: String,
    /// Creator version as `major.minor`.
    pub creator_version: String,
    /// Creator host OS tag (`Wi2k`, `Mac `).
    pub creator_host_os: String,
    /// Seconds since 2000-01-01 00:00 UTC.
    pub timestamp: u32,
    /// Footer features field (bit 0 temporary, bit 1 reserved).
    pub features: u32,
    /// Size of the disk at creation.
    pub original_size: u64,
    /// Size of the disk now, as Hyper-V, Azure and ECS read it.
    pub current_size: u64,
    /// The stored CHS geometry.
    pub geometry: Geometry,
    /// Bytes the geometry addresses, as Virtual PC reads it.
    pub chs_size: u64,
    /// The size QEMU (and imgport) uses.
    pub virtual_size: u64,
    /// Which field the virtual size comes from.
    pub size_source: SizeSource,
    /// Why QEMU takes that field.
    pub size_reason: &'static str,
    /// Footer length at the end of the file: 512, or 511 for Virtual PC before 2004.
    pub footer_length: usize,
    /// File offset of the footer.
    pub footer_offset: u64,
    /// The VM was saved with this disk attached (its contents may be inconsistent).
    pub saved_state: bool,
    /// Disk UUID.
    pub uuid: String,
    /// Dynamic-disk header and BAT facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<Box<VhdDynamicDetails>>,
}

/// How the virtual disk maps onto the file.
pub(super) enum Layout {
    /// The virtual disk is the first `virtual_size` bytes of the file.
    Fixed,
    /// Blocks through the BAT; each block is `bitmap_size` bytes of bitmap then data.
    Dynamic {
        block_size: u64,
        bitmap_size: u64,
        bat: Vec<u32>,
        details: VhdDynamicDetails,
    },
}

//! What `inspect` reports about a VHDX file.

use serde::Serialize;

/// Facts about a VHDX file.
#[derive(Debug, Clone, Serialize)]
pub struct VhdxDetails {
    /// `fixed` (LeaveBlocksAllocated) or `dynamic`.
    pub disk_type: &'static str,
    /// The creator string of the file type identifier (UTF-16 in the file).
    pub creator: String,
    /// File offset of the current header (65536 or 131072).
    pub header_offset: u64,
    /// Its sequence number.
    pub header_sequence: u64,
    /// File offset and length of the log.
    pub log_offset: u64,
    pub log_length: u32,
    /// The header's LogGuid is non-zero (the log was judged: no entry to replay).
    pub log_guid_set: bool,
    /// File offset of the region table used.
    pub region_table_offset: u64,
    /// File offset and length of the BAT region.
    pub bat_offset: u64,
    pub bat_length: u64,
    /// File offset and length of the metadata region.
    pub metadata_offset: u64,
    pub metadata_length: u64,
    /// Bytes of virtual disk per payload block.
    pub block_size: u32,
    /// 512 or 4096.
    pub logical_sector_size: u32,
    /// 512 or 4096.
    pub physical_sector_size: u32,
    /// Payload blocks per sector bitmap block.
    pub chunk_ratio: u64,
    /// Payload blocks in all, and those stored in the file (FULLY_PRESENT).
    pub blocks: u64,
    pub present_blocks: u64,
    /// Blocks the BAT marks as reading zeros (PAYLOAD_BLOCK_ZERO).
    pub zero_blocks: u64,
    /// Virtual Disk ID, when the file has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
}

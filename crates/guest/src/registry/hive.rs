//! The hive itself: its base block, bins and cells, and the errors reading them.

use imgport_base::bytes::le32;

/// Size of the base block; the hive bins start right after it (spec: "Base block").
pub const BASE_BLOCK_SIZE: usize = 4096;
/// Largest hive we load into memory. Real `SOFTWARE` hives of servers reach ~100 MiB.
pub const MAX_HIVE_SIZE: usize = 512 << 20;
/// Size of an `hbin` header; the first cell follows it.
const HBIN_HEADER_SIZE: usize = 32;
/// Hive bins are multiples of this size.
pub(super) const HBIN_ALIGN: usize = 4096;
/// Deepest key path we walk (Windows limits key nesting to 512 levels).
pub const MAX_KEY_DEPTH: usize = 512;

/// Errors of the hive reader; each names the rule broken and where.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("hive of {size} bytes exceeds the {max}-byte cap")]
    TooLarge { size: usize, max: usize },
    #[error("base block: {rule}")]
    BaseBlock { rule: String },
    #[error("hive bin at file offset {offset:#x}: {rule}")]
    Bin { offset: usize, rule: String },
    #[error("cell at hive offset {offset:#x}: {rule}")]
    Cell { offset: u32, rule: String },
    #[error("key path {path:?}: {rule}")]
    Path { path: String, rule: String },
}

/// A parsed hive over borrowed bytes. Cheap to query; nothing is copied until a value is read.
#[derive(Debug)]
pub struct Hive<'a> {
    /// The hive bins data (file bytes after the base block, `hive_bins_data_size` long).
    pub(super) bins: &'a [u8],
    /// Start offsets (relative to `bins`) of each hive bin, ascending; each bin ends where the
    /// next starts (the last at `bins.len()`).
    pub(super) bin_starts: Vec<usize>,
    pub(super) root: u32,
    pub(super) primary_seq: u32,
    pub(super) secondary_seq: u32,
    pub(super) major: u32,
    pub(super) minor: u32,
}

/// The base block checksum: XOR of the first 127 little-endian u32s, with 0 mapped to 1 and
/// 0xFFFFFFFF to 0xFFFFFFFE (spec: "Base block", field at 508).
pub fn base_block_checksum(base: &[u8]) -> u32 {
    let mut x = 0u32;
    for i in 0..127 {
        x ^= le32(base, i * 4);
    }
    match x {
        0 => 1,
        u32::MAX => u32::MAX - 1,
        v => v,
    }
}

impl<'a> Hive<'a> {
    /// True when the primary and secondary sequence numbers differ: the hive was not written
    /// back cleanly and recent changes may sit only in the transaction logs.
    pub fn is_dirty(&self) -> bool {
        self.primary_seq != self.secondary_seq
    }

    /// `(primary, secondary)` sequence numbers of the base block.
    pub fn sequence_numbers(&self) -> (u32, u32) {
        (self.primary_seq, self.secondary_seq)
    }

    /// `(major, minor)` format version, e.g. `(1, 5)`.
    pub fn version(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// The data of the allocated cell at `offset` (hive-bins relative), without its size
    /// field. Checks: 8-byte aligned, inside one hive bin after its header, size field
    /// negative (allocated), at least 8 bytes, not past the bin's end.
    pub(crate) fn cell(&self, offset: u32) -> Result<&'a [u8], RegistryError> {
        let err = |rule: String| RegistryError::Cell { offset, rule };
        let off = offset as usize;
        if !off.is_multiple_of(8) {
            return Err(err("offset is not 8-byte aligned".into()));
        }
        if off >= self.bins.len() {
            return Err(err(format!(
                "offset passes the end of the {:#x} bytes of hive bins",
                self.bins.len()
            )));
        }
        // The bin holding `off`: the last start <= off.
        let idx = self.bin_starts.partition_point(|&s| s <= off) - 1;
        let bin_start = self.bin_starts[idx];
        let bin_end = self
            .bin_starts
            .get(idx + 1)
            .copied()
            .unwrap_or(self.bins.len());
        if off < bin_start + HBIN_HEADER_SIZE {
            return Err(err(format!(
                "offset lies in the header of the hive bin at {bin_start:#x}"
            )));
        }
        // `off` is 8-aligned and bins end on 4096-byte boundaries, so `off + 8 <= bin_end`.
        let raw = le32(self.bins, off) as i32;
        if raw >= 0 {
            return Err(err(format!(
                "size field {raw} is not negative: the cell is free, not allocated"
            )));
        }
        let size = raw.unsigned_abs() as usize;
        if size < 8 {
            return Err(err(format!("cell size {size} is below the 8-byte minimum")));
        }
        if off + size > bin_end {
            return Err(err(format!(
                "cell of {size} bytes passes the end of its hive bin at {bin_end:#x}"
            )));
        }
        Ok(&self.bins[off + 4..off + size])
    }
}

/// Walks the hive bins: each starts with `hbin`, records its own offset, and has a size that is
/// a non-zero multiple of 4096 ending inside the hive bins data.
pub(super) fn walk_bins(bins: &[u8]) -> Result<Vec<usize>, RegistryError> {
    let mut starts = Vec::new();
    let mut pos = 0usize;
    while pos < bins.len() {
        let err = |rule: String| RegistryError::Bin {
            offset: BASE_BLOCK_SIZE + pos,
            rule,
        };
        // `pos` and `bins.len()` are multiples of 4096, so a full bin header is there.
        if &bins[pos..pos + 4] != b"hbin" {
            return Err(err("signature is not \"hbin\"".into()));
        }
        let recorded = le32(bins, pos + 4) as usize;
        if recorded != pos {
            return Err(err(format!(
                "records offset {recorded:#x}, but lies at hive offset {pos:#x}"
            )));
        }
        let size = le32(bins, pos + 8) as usize;
        if size == 0 || !size.is_multiple_of(HBIN_ALIGN) || size > bins.len() - pos {
            return Err(err(format!(
                "size {size:#x} is not a non-zero multiple of 4096 inside the hive bins data"
            )));
        }
        starts.push(pos);
        pos += size;
    }
    Ok(starts)
}

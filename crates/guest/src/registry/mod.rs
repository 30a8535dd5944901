//! Our own read-only reader of Windows registry hive files (the `regf` format), enough to read
//! `SOFTWARE` and `SYSTEM` offline: base block, hive bins, cells, key nodes, subkey lists,
//! value lists, values and big data.
//!
//! Owns the byte-level hive format only; what the keys mean for inspection lives in
//! `guest::windows`. It never replays transaction logs (`.LOG1`/`.LOG2`): a hive whose base
//! block sequence numbers differ is reported dirty ([`Hive::is_dirty`]) and read as it is.
//!
//! Layout follows the community specification of the format ("Windows registry file format
//! specification", libyal / msuhanov): a 4096-byte base block, then hive bins (`hbin`, multiples
//! of 4096 bytes) holding cells whose 4-byte signed size is negative when allocated. Every cell
//! offset is checked to lie inside one hive bin, every list and recursion is bounded.

mod key;
mod value;

#[cfg(test)]
mod tests;

use imgport_base::bytes::{le16, le32};
pub use key::Key;
pub use value::{Value, ValueData, ValueType};

/// Size of the base block; the hive bins start right after it (spec: "Base block").
pub const BASE_BLOCK_SIZE: usize = 4096;
/// Largest hive we load into memory. Real `SOFTWARE` hives of servers reach ~100 MiB.
pub const MAX_HIVE_SIZE: usize = 512 << 20;
/// Size of an `hbin` header; the first cell follows it.
const HBIN_HEADER_SIZE: usize = 32;
/// Hive bins are multiples of this size.
const HBIN_ALIGN: usize = 4096;
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
    bins: &'a [u8],
    /// Start offsets (relative to `bins`) of each hive bin, ascending; each bin ends where the
    /// next starts (the last at `bins.len()`).
    bin_starts: Vec<usize>,
    root: u32,
    primary_seq: u32,
    secondary_seq: u32,
    major: u32,
    minor: u32,
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
    /// Parses and validates the base block and the chain of hive bins.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RegistryError> {
        Self::parse_with_cap(bytes, MAX_HIVE_SIZE)
    }

    /// [`Hive::parse`] with a size cap of `max` bytes.
    pub(crate) fn parse_with_cap(bytes: &'a [u8], max: usize) -> Result<Self, RegistryError> {
        if bytes.len() > max {
            return Err(RegistryError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let bb = |rule: String| RegistryError::BaseBlock { rule };
        if bytes.len() < BASE_BLOCK_SIZE {
            return Err(bb(format!(
                "file of {} bytes is shorter than the {BASE_BLOCK_SIZE}-byte base block",
                bytes.len()
            )));
        }
        if &bytes[0..4] != b"regf" {
            return Err(bb("signature at 0 is not \"regf\"".into()));
        }
        let stored = le32(bytes, 508);
        let computed = base_block_checksum(bytes);
        if stored != computed {
            return Err(bb(format!(
                "checksum at 508 is {stored:#010x}, the XOR of bytes 0..508 gives {computed:#010x}"
            )));
        }
        let major = le32(bytes, 0x14);
        let minor = le32(bytes, 0x18);
        if major != 1 {
            return Err(bb(format!("major version at 0x14 is {major}, not 1")));
        }
        let file_type = le32(bytes, 0x1C);
        if file_type != 0 {
            return Err(bb(format!(
                "file type at 0x1c is {file_type}, not 0 (a primary hive; logs are not hives)"
            )));
        }
        let bins_size = le32(bytes, 0x28) as usize;
        if bins_size == 0 || !bins_size.is_multiple_of(HBIN_ALIGN) {
            return Err(bb(format!(
                "hive bins data size at 0x28 is {bins_size:#x}, not a non-zero multiple of 4096"
            )));
        }
        let end = BASE_BLOCK_SIZE
            .checked_add(bins_size)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                bb(format!(
                    "hive bins data size at 0x28 ({bins_size:#x}) passes the end of the {}-byte file",
                    bytes.len()
                ))
            })?;
        let bins = &bytes[BASE_BLOCK_SIZE..end];
        let bin_starts = walk_bins(bins)?;
        let root = le32(bytes, 0x24);
        let hive = Self {
            bins,
            bin_starts,
            root,
            primary_seq: le32(bytes, 4),
            secondary_seq: le32(bytes, 8),
            major,
            minor,
        };
        // The root must be a key node; checked now so `root()` failures are early and clear.
        Key::at(&hive, root)?;
        Ok(hive)
    }

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

    /// The root key.
    pub fn root(&self) -> Result<Key<'_>, RegistryError> {
        Key::at(self, self.root)
    }

    /// The key at a backslash-separated path below the root, compared without case, e.g.
    /// `Microsoft\Windows NT\CurrentVersion`; `None` when a component is absent.
    pub fn key(&self, path: &str) -> Result<Option<Key<'_>>, RegistryError> {
        let mut key = self.root()?;
        for (depth, part) in path.split('\\').filter(|p| !p.is_empty()).enumerate() {
            if depth >= MAX_KEY_DEPTH {
                return Err(RegistryError::Path {
                    path: path.to_string(),
                    rule: format!("deeper than {MAX_KEY_DEPTH} levels"),
                });
            }
            match key.subkey(part)? {
                Some(k) => key = k,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
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
fn walk_bins(bins: &[u8]) -> Result<Vec<usize>, RegistryError> {
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

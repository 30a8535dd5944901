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

mod hive;
mod key;
mod value;

#[cfg(test)]
pub(crate) mod tests;

pub use hive::{
    BASE_BLOCK_SIZE, Hive, MAX_HIVE_SIZE, MAX_KEY_DEPTH, RegistryError, base_block_checksum,
};
use hive::{HBIN_ALIGN, walk_bins};
use imgport_base::bytes::le32;
pub use key::Key;
pub use value::{Value, ValueData, ValueType};

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
}

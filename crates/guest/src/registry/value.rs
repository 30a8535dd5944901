//! Values (`vk`), their data cells, and big data (`db`) segments.

use super::hive::{Hive, RegistryError};
use imgport_base::bytes::{le16, le32};

/// Offset of the name in a `vk` cell; spec "Key value".
const VK_NAME: usize = 0x14;
/// `VALUE_COMP_NAME`: the name is Latin-1 bytes, not UTF-16LE.
const VALUE_COMP_NAME: u16 = 0x0001;
/// Data size high bit: the data (at most 4 bytes) sits in the data-offset field itself.
const DATA_INLINE: u32 = 0x8000_0000;
/// Data longer than this is stored as big data (`db`) in hives of version 1.4 and later.
const BIG_DATA_MIN: usize = 16344;
/// Largest value data we assemble. Registry values are limited to ~1 MiB by the API guidance;
/// the cap is generous but bounds big-data assembly.
pub const MAX_VALUE_SIZE: usize = 64 << 20;

/// The registry value type (`REG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    None,
    String,
    ExpandString,
    Binary,
    Dword,
    DwordBigEndian,
    MultiString,
    Qword,
    /// Any other type number (links, resource lists …), kept as raw bytes.
    Other(u32),
}

impl ValueType {
    fn from_raw(t: u32) -> Self {
        match t {
            0 => Self::None,
            1 => Self::String,
            2 => Self::ExpandString,
            3 => Self::Binary,
            4 => Self::Dword,
            5 => Self::DwordBigEndian,
            7 => Self::MultiString,
            11 => Self::Qword,
            other => Self::Other(other),
        }
    }
}

/// Decoded value data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueData {
    String(String),
    ExpandString(String),
    MultiString(Vec<String>),
    Dword(u32),
    Qword(u64),
    /// `REG_BINARY`, `REG_NONE` and unknown types.
    Binary(Vec<u8>),
}

impl ValueData {
    /// The text of a `REG_SZ` / `REG_EXPAND_SZ`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::ExpandString(s) => Some(s),
            _ => None,
        }
    }

    /// The number of a `REG_DWORD` / `REG_QWORD` (or a decimal string, as some installers
    /// write numbers).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Dword(v) => Some(u64::from(*v)),
            Self::Qword(v) => Some(*v),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// One value of a key.
#[derive(Clone)]
pub struct Value<'h> {
    hive: &'h Hive<'h>,
    offset: u32,
    cell: &'h [u8],
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({:?} @ {:#x})", self.name(), self.offset)
    }
}

impl<'h> Value<'h> {
    /// The `vk` cell at `offset`, validated: signature and a name inside the cell.
    pub(crate) fn at(hive: &'h Hive<'h>, offset: u32) -> Result<Self, RegistryError> {
        let cell = hive.cell(offset)?;
        let err = |rule: String| RegistryError::Cell { offset, rule };
        if cell.len() < VK_NAME || &cell[0..2] != b"vk" {
            return Err(err("not a value (\"vk\" of at least 20 bytes)".into()));
        }
        let name_len = le16(cell, 2) as usize;
        if VK_NAME + name_len > cell.len() {
            return Err(err(format!(
                "value name of {name_len} bytes passes the end of the {}-byte cell",
                cell.len()
            )));
        }
        Ok(Self { hive, offset, cell })
    }

    /// The value's name; empty for the key's default value.
    pub fn name(&self) -> String {
        let len = le16(self.cell, 2) as usize;
        let flags = le16(self.cell, 0x10);
        decode_name(
            &self.cell[VK_NAME..VK_NAME + len],
            flags & VALUE_COMP_NAME != 0,
        )
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        ValueType::from_raw(le32(self.cell, 0x0C))
    }

    /// The raw data bytes: inline, one data cell, or big-data segments.
    pub fn raw_data(&self) -> Result<Vec<u8>, RegistryError> {
        let size_field = le32(self.cell, 0x04);
        let data_off = le32(self.cell, 0x08);
        let err = |rule: String| RegistryError::Cell {
            offset: self.offset,
            rule,
        };
        if size_field & DATA_INLINE != 0 {
            let n = (size_field & !DATA_INLINE) as usize;
            if n > 4 {
                return Err(err(format!(
                    "inline data of {n} bytes is longer than the 4-byte data field"
                )));
            }
            return Ok(data_off.to_le_bytes()[..n].to_vec());
        }
        let size = size_field as usize;
        if size == 0 {
            return Ok(Vec::new());
        }
        if size > MAX_VALUE_SIZE {
            return Err(err(format!(
                "data size {size} exceeds the {MAX_VALUE_SIZE}-byte cap"
            )));
        }
        let cell = self.hive.cell(data_off)?;
        // Big data exists from format 1.4 on; 1.3 hives keep large data in one cell.
        if size > BIG_DATA_MIN
            && self.hive.version().1 >= 4
            && cell.len() >= 2
            && &cell[0..2] == b"db"
        {
            return self.big_data(data_off, cell, size);
        }
        if size > cell.len() {
            return Err(RegistryError::Cell {
                offset: data_off,
                rule: format!(
                    "data cell of {} bytes is shorter than the value's {size} bytes",
                    cell.len()
                ),
            });
        }
        Ok(cell[..size].to_vec())
    }

    /// Assembles big data: `db`, segment count, offset of a list of segment cells.
    fn big_data(&self, offset: u32, db: &[u8], size: usize) -> Result<Vec<u8>, RegistryError> {
        let err = |rule: String| RegistryError::Cell { offset, rule };
        if db.len() < 8 {
            return Err(err("big data record shorter than 8 bytes".into()));
        }
        let segments = le16(db, 2) as usize;
        let list_off = le32(db, 4);
        // Each full segment holds BIG_DATA_MIN bytes; the count must match the size.
        if segments == 0 || segments != size.div_ceil(BIG_DATA_MIN) {
            return Err(err(format!(
                "{segments} segments cannot hold {size} bytes of {BIG_DATA_MIN}-byte segments"
            )));
        }
        let list = self.hive.cell(list_off)?;
        if segments * 4 > list.len() {
            return Err(RegistryError::Cell {
                offset: list_off,
                rule: format!(
                    "segment list of {} bytes cannot hold {segments} offsets",
                    list.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(size);
        for i in 0..segments {
            let seg_off = le32(list, i * 4);
            let seg = self.hive.cell(seg_off)?;
            let want = (size - out.len()).min(BIG_DATA_MIN);
            if seg.len() < want {
                return Err(RegistryError::Cell {
                    offset: seg_off,
                    rule: format!(
                        "big data segment of {} bytes is shorter than the {want} bytes it must hold",
                        seg.len()
                    ),
                });
            }
            out.extend_from_slice(&seg[..want]);
        }
        Ok(out)
    }

    /// The decoded data. Strings drop their terminating NUL; a DWORD/QWORD must be exactly
    /// 4/8 bytes.
    pub fn data(&self) -> Result<ValueData, RegistryError> {
        let raw = self.raw_data()?;
        let err = |rule: String| RegistryError::Cell {
            offset: self.offset,
            rule,
        };
        Ok(match self.value_type() {
            ValueType::String => ValueData::String(utf16_string(&raw)),
            ValueType::ExpandString => ValueData::ExpandString(utf16_string(&raw)),
            ValueType::MultiString => ValueData::MultiString(utf16_multi(&raw)),
            ValueType::Dword | ValueType::DwordBigEndian => {
                let b: [u8; 4] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| err(format!("REG_DWORD data is {} bytes, not 4", raw.len())))?;
                ValueData::Dword(if self.value_type() == ValueType::Dword {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                })
            }
            ValueType::Qword => {
                let b: [u8; 8] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| err(format!("REG_QWORD data is {} bytes, not 8", raw.len())))?;
                ValueData::Qword(u64::from_le_bytes(b))
            }
            ValueType::None | ValueType::Binary | ValueType::Other(_) => ValueData::Binary(raw),
        })
    }
}

fn utf16_units(raw: &[u8]) -> Vec<u16> {
    raw.chunks_exact(2)
        .map(|c| imgport_base::bytes::le16(c, 0))
        .collect()
}

/// `REG_SZ` text: UTF-16LE up to the first NUL (an odd trailing byte is ignored).
fn utf16_string(raw: &[u8]) -> String {
    let units = utf16_units(raw);
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    String::from_utf16_lossy(&units[..end])
}

/// `REG_MULTI_SZ` text: NUL-separated strings ending at an empty one (a double NUL).
fn utf16_multi(raw: &[u8]) -> Vec<String> {
    utf16_units(raw)
        .split(|&u| u == 0)
        .take_while(|s| !s.is_empty())
        .map(String::from_utf16_lossy)
        .collect()
}

/// A key or value name: Latin-1 when `compressed`, else UTF-16LE.
pub(crate) fn decode_name(bytes: &[u8], compressed: bool) -> String {
    if compressed {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf16_lossy(&utf16_units(bytes))
    }
}

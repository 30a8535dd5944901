//! Key nodes (`nk`) and subkey lists (`lf`, `lh`, `li`, `ri`) of a hive.

use super::hive::{Hive, RegistryError};
use super::value::{Value, decode_name};
use imgport_base::bytes::{le16, le32};

/// Offset of the name in an `nk` cell (after the 2-byte signature); spec "Key node".
const NK_NAME: usize = 0x4C;
/// `KEY_COMP_NAME`: the name is stored as Latin-1 bytes, not UTF-16LE.
const KEY_COMP_NAME: u16 = 0x0020;
/// An `ri` index root points to leaves; real hives use one level. We allow a little more
/// nesting, never unbounded (a self-referencing `ri` stops here).
const MAX_RI_DEPTH: usize = 4;
/// The "no list" offset.
const NONE: u32 = u32::MAX;

/// One key node of a hive.
#[derive(Clone)]
pub struct Key<'h> {
    hive: &'h Hive<'h>,
    offset: u32,
    cell: &'h [u8],
}

impl std::fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?} @ {:#x})", self.name(), self.offset)
    }
}

impl<'h> Key<'h> {
    /// The key node at hive offset `offset`, validated: `nk` signature and a name inside the cell.
    pub(crate) fn at(hive: &'h Hive<'h>, offset: u32) -> Result<Self, RegistryError> {
        let cell = hive.cell(offset)?;
        let err = |rule: String| RegistryError::Cell { offset, rule };
        if cell.len() < NK_NAME || &cell[0..2] != b"nk" {
            return Err(err("not a key node (\"nk\" of at least 76 bytes)".into()));
        }
        let name_len = le16(cell, 0x48) as usize;
        if NK_NAME + name_len > cell.len() {
            return Err(err(format!(
                "key name of {name_len} bytes passes the end of the {}-byte cell",
                cell.len()
            )));
        }
        Ok(Self { hive, offset, cell })
    }

    /// Hive offset of this key's cell.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// The key's name (Latin-1 or UTF-16LE as its flags say; invalid UTF-16 is replaced).
    pub fn name(&self) -> String {
        let flags = le16(self.cell, 0x02);
        let len = le16(self.cell, 0x48) as usize;
        decode_name(
            &self.cell[NK_NAME..NK_NAME + len],
            flags & KEY_COMP_NAME != 0,
        )
    }

    /// Number of (stable) subkeys the key node declares.
    pub fn subkey_count(&self) -> u32 {
        le32(self.cell, 0x14)
    }

    /// All subkeys, in stored order. The list must hold exactly the declared count.
    pub fn subkeys(&self) -> Result<Vec<Key<'h>>, RegistryError> {
        let count = self.subkey_count();
        let list = le32(self.cell, 0x1C);
        if count == 0 {
            return Ok(Vec::new());
        }
        if list == NONE {
            return Err(RegistryError::Cell {
                offset: self.offset,
                rule: format!("declares {count} subkeys but has no subkey list"),
            });
        }
        let mut offsets = Vec::new();
        self.collect_list(list, 0, count as usize, &mut offsets)?;
        if offsets.len() != count as usize {
            return Err(RegistryError::Cell {
                offset: self.offset,
                rule: format!(
                    "declares {count} subkeys but its list holds {}",
                    offsets.len()
                ),
            });
        }
        offsets.into_iter().map(|o| Key::at(self.hive, o)).collect()
    }

    /// Appends the key offsets of the subkey list at `offset`, refusing more than `max`.
    fn collect_list(
        &self,
        offset: u32,
        depth: usize,
        max: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), RegistryError> {
        let err = |rule: String| RegistryError::Cell { offset, rule };
        if depth > MAX_RI_DEPTH {
            return Err(err(format!(
                "index roots (\"ri\") nest deeper than {MAX_RI_DEPTH} levels"
            )));
        }
        let cell = self.hive.cell(offset)?;
        if cell.len() < 4 {
            return Err(err("subkey list shorter than its 4-byte header".into()));
        }
        let n = le16(cell, 2) as usize;
        let stride = match &cell[0..2] {
            b"li" | b"ri" => 4,
            b"lf" | b"lh" => 8,
            sig => {
                return Err(err(format!(
                    "signature {:?} is not a subkey list (li, lf, lh, ri)",
                    String::from_utf8_lossy(sig)
                )));
            }
        };
        if 4 + n * stride > cell.len() {
            return Err(err(format!(
                "{n} elements of {stride} bytes pass the end of the {}-byte cell",
                cell.len()
            )));
        }
        let is_ri = &cell[0..2] == b"ri";
        for i in 0..n {
            let child = le32(cell, 4 + i * stride);
            if is_ri {
                self.collect_list(child, depth + 1, max, out)?;
            } else {
                if out.len() >= max {
                    return Err(err(format!(
                        "subkey lists hold more than the {max} subkeys the key declares"
                    )));
                }
                out.push(child);
            }
        }
        Ok(())
    }

    /// The direct subkey named `name`, compared without case.
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>, RegistryError> {
        Ok(self
            .subkeys()?
            .into_iter()
            .find(|k| eq_ignore_case(&k.name(), name)))
    }

    /// All values, in stored order.
    pub fn values(&self) -> Result<Vec<Value<'h>>, RegistryError> {
        let count = le32(self.cell, 0x24) as usize;
        let list = le32(self.cell, 0x28);
        if count == 0 {
            return Ok(Vec::new());
        }
        let cell = self.hive.cell(list)?;
        if count > cell.len() / 4 {
            return Err(RegistryError::Cell {
                offset: list,
                rule: format!(
                    "value list of {} bytes cannot hold the {count} values key {:?} declares",
                    cell.len(),
                    self.name()
                ),
            });
        }
        (0..count)
            .map(|i| Value::at(self.hive, le32(cell, i * 4)))
            .collect()
    }

    /// The value named `name`, compared without case; `""` is the key's default value.
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>, RegistryError> {
        Ok(self
            .values()?
            .into_iter()
            .find(|v| eq_ignore_case(&v.name(), name)))
    }
}

/// Registry names compare without case (upper-cased per character, as Windows does).
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

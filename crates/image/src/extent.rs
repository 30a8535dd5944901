//! Extents: which runs of the virtual disk hold data, zeros or nothing.

use serde::Serialize;

/// What a range of the virtual disk holds, as the format's metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtentKind {
    /// Bytes stored in the file (possibly compressed).
    Data,
    /// Explicitly marked as reading zeros (qcow2 zero clusters).
    Zero,
    /// Not allocated: reads as zeros, nothing stored.
    Unallocated,
}

/// A contiguous range of the virtual disk with one [`ExtentKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub length: u64,
    pub kind: ExtentKind,
}

impl Extent {
    /// One past the last byte of the extent.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Appends `next` to `extents`, merging it into the last extent when they touch and agree.
pub fn push_extent(extents: &mut Vec<Extent>, next: Extent) {
    if next.length == 0 {
        return;
    }
    if let Some(last) = extents.last_mut()
        && last.kind == next.kind
        && last.end() == next.offset
    {
        last.length += next.length;
        return;
    }
    extents.push(next);
}

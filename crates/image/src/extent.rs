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

/// The extents of a disk cut into `block_size` blocks whose kinds come in order from a block
/// table (a VHD or VHDX BAT); the last block is cut at `virtual_size`, entries past it ignored.
pub fn block_extents(
    virtual_size: u64,
    block_size: u64,
    kinds: impl IntoIterator<Item = ExtentKind>,
) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for kind in kinds {
        if pos >= virtual_size {
            break;
        }
        let length = block_size.min(virtual_size - pos);
        push_extent(
            &mut out,
            Extent {
                offset: pos,
                length,
                kind,
            },
        );
        pos += length;
    }
    out
}

/// Fills `buf` (the disk's bytes from `offset`) one `block_size` block at a time: `fill` gets
/// the block's index, the offset inside it and the piece of `buf` that lies in it.
pub fn read_blocks<E>(
    buf: &mut [u8],
    offset: u64,
    block_size: u64,
    mut fill: impl FnMut(u64, u64, &mut [u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset + done as u64;
        let within = pos % block_size;
        let n = ((block_size - within) as usize).min(buf.len() - done);
        fill(pos / block_size, within, &mut buf[done..done + n])?;
        done += n;
    }
    Ok(())
}

//! Where QCOW2 metadata lies in the file, and the overlap checks QEMU runs with
//! `overlap-check=all` (qcow2-refcount.c `qcow2_check_metadata_overlap`), applied to reading:
//! the header cluster, the active L1 table and its L2 tables, the refcount table and its
//! blocks, the snapshot table and the snapshots' L1 tables, the bitmap directory and the
//! bitmap tables. No two of them may share bytes, and no guest data cluster may point into
//! one of them (that would hand metadata to the guest as its data).
//!
//! Everything collected is bounded by the file: entries whose range passes the end of the file
//! cannot meet a data cluster (those are checked to lie inside it) and are not kept.

use super::details::Snapshots;
use super::extensions::{BitmapsExt, Extensions};
use super::header::Header;
use crate::{ImageError, ImageFile, Verdict};
use imgport_base::bytes::{be32, be64};

/// Mask of the offset in a refcount table entry (qcow2.rst: bits 9-63).
const REFT_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Autoclear bit 0: the bitmaps extension is consistent and in use.
const AUTOCLEAR_BITMAPS: u64 = 1;
/// QEMU's limits on the bitmap directory (qcow2.h `QCOW2_MAX_BITMAPS`,
/// `QCOW2_MAX_BITMAP_DIRECTORY_SIZE`).
const MAX_BITMAPS: u32 = 65535;
const MAX_BITMAP_DIRECTORY_SIZE: u64 = 1024 * MAX_BITMAPS as u64;
/// Bytes of a bitmap directory entry before its extra data and name.
const BITMAP_ENTRY_HEADER: usize = 24;

/// Bitmap tables found in the directory: file offset, bytes, what (for messages).
type Tables = Vec<(u64, u64, String)>;

/// One metadata structure: `[start, end)` in the file and what it is.
#[derive(Debug, Clone)]
struct Region {
    start: u64,
    end: u64,
    what: String,
}

/// The file's metadata regions, sorted and merged, for looking up data clusters.
pub struct MetadataMap {
    merged: Vec<Region>,
}

impl MetadataMap {
    /// The metadata structure `[start, start + len)` overlaps, if any.
    pub fn overlapping(&self, start: u64, len: u64) -> Option<&str> {
        let end = start.saturating_add(len);
        let i = self.merged.partition_point(|r| r.start < end);
        let r = self.merged.get(i.checked_sub(1)?)?;
        (r.end > start).then_some(r.what.as_str())
    }
}

/// Collects every metadata region, refusing the image when two overlap or when the bitmap
/// directory or a bitmap table is malformed; `None` when refused.
pub fn collect(
    file: &ImageFile,
    h: &Header,
    ext: &Extensions,
    snapshots: &Snapshots,
    l1: &[u64],
    v: &mut Verdict<'_>,
) -> Result<Option<MetadataMap>, ImageError> {
    let cs = h.cluster_size();
    let size = file.size();
    let mut regions = vec![Region {
        start: 0,
        end: cs,
        what: "the header cluster".into(),
    }];
    let mut add = |start: u64, len: u64, what: String| {
        if len == 0 {
            return;
        }
        if let Some(end) = start.checked_add(len).filter(|&e| e <= size) {
            regions.push(Region { start, end, what });
        }
    };
    add(
        h.l1_table_offset,
        u64::from(h.l1_size) * 8,
        "the L1 table".into(),
    );
    let rt_bytes = u64::from(h.refcount_table_clusters) * cs;
    add(
        h.refcount_table_offset,
        rt_bytes,
        "the refcount table".into(),
    );
    // Only the entries for the file's own clusters are read: a refcount block beyond them
    // would count clusters that do not exist, and reading stays bounded by the file. (The
    // header's validation bounded the table and placed it in the file.)
    let per_block = (cs * 8) >> h.refcount_order.min(6);
    let used = size.div_ceil(cs).div_ceil(per_block.max(1)) * 8;
    let rt = file.read_upto(h.refcount_table_offset, rt_bytes.min(used) as usize)?;
    for (i, e) in rt.chunks_exact(8).enumerate() {
        let block = be64(e, 0) & REFT_OFFSET_MASK;
        if block != 0 {
            add(block, cs, format!("refcount block {i}"));
        }
    }
    for (i, &table) in l1.iter().enumerate() {
        if table != 0 {
            add(table, cs, format!("the L2 table of L1 entry {i}"));
        }
    }
    for (start, len, what) in &snapshots.regions {
        add(*start, *len, what.clone());
    }
    if let Some(b) = ext.bitmaps.filter(|_| h.autoclear & AUTOCLEAR_BITMAPS != 0) {
        let Some(tables) = bitmap_tables(file, &b, cs, v)? else {
            return Ok(None);
        };
        add(
            b.directory_offset,
            b.directory_size,
            "the bitmap directory".into(),
        );
        for (start, len, what) in tables {
            add(start, len, what);
        }
    }
    regions.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions {
        if let Some(last) = merged.last_mut()
            && r.start < last.end
        {
            v.refuse(
                "qcow2.metadata_overlap",
                "metadata",
                r.start,
                format!(
                    "{} ({}..{}) overlaps {} ({}..{}); QEMU's overlap checks refuse metadata structures that share bytes",
                    r.what, r.start, r.end, last.what, last.start, last.end
                ),
            );
            return Ok(None);
        }
        merged.push(r);
    }
    Ok(Some(MetadataMap { merged }))
}

/// Checks the bitmap directory as QEMU does before opening an image that uses it, and returns
/// the bitmap tables it lists (offset, bytes, what); `None` when refused.
fn bitmap_tables(
    file: &ImageFile,
    b: &BitmapsExt,
    cs: u64,
    v: &mut Verdict<'_>,
) -> Result<Option<Tables>, ImageError> {
    let size = file.size();
    let field = "bitmaps extension";
    let problem = if b.length < 24 {
        Some(format!(
            "{} bytes of data, fewer than the 24 the spec defines",
            b.length
        ))
    } else if b.nb_bitmaps == 0 || b.nb_bitmaps > MAX_BITMAPS {
        Some(format!(
            "nb_bitmaps {} is outside 1..={MAX_BITMAPS}",
            b.nb_bitmaps
        ))
    } else if b.directory_size == 0 || b.directory_size > MAX_BITMAP_DIRECTORY_SIZE {
        Some(format!(
            "bitmap_directory_size {} is outside 1..={MAX_BITMAP_DIRECTORY_SIZE}",
            b.directory_size
        ))
    } else if !b.directory_offset.is_multiple_of(cs)
        || b.directory_offset == 0
        || b.directory_offset
            .checked_add(b.directory_size)
            .is_none_or(|e| e > size)
    {
        Some(format!(
            "the bitmap directory ({} bytes at {}) must be cluster-aligned ({cs}), after the header cluster and inside the file ({size} bytes)",
            b.directory_size, b.directory_offset
        ))
    } else {
        None
    };
    if let Some(p) = problem {
        v.refuse("qcow2.bitmap_directory", field, b.at, p);
        return Ok(None);
    }
    let dir = file.read_upto(b.directory_offset, b.directory_size as usize)?;
    let mut tables = Vec::new();
    let mut pos = 0usize;
    for i in 0..b.nb_bitmaps {
        let at = b.directory_offset + pos as u64;
        let Some(e) = dir.get(pos..pos + BITMAP_ENTRY_HEADER) else {
            v.refuse(
                "qcow2.bitmap_directory",
                &format!("bitmap directory entry {i}"),
                at,
                format!(
                    "the entry passes the end of the directory ({} bytes)",
                    b.directory_size
                ),
            );
            return Ok(None);
        };
        let table_offset = be64(e, 0);
        let table_bytes = u64::from(be32(e, 8)) * 8;
        let name_size = usize::from(imgport_base::bytes::be16(e, 18));
        let extra = be32(e, 20) as usize;
        if !table_offset.is_multiple_of(cs)
            || table_offset == 0
            || table_offset
                .checked_add(table_bytes)
                .is_none_or(|end| end > size)
        {
            v.refuse(
                "qcow2.bitmap_table",
                &format!("bitmap directory entry {i}"),
                at,
                format!(
                    "the bitmap table ({table_bytes} bytes at {table_offset}) must be cluster-aligned ({cs}), after the header cluster and inside the file ({size} bytes)"
                ),
            );
            return Ok(None);
        }
        tables.push((table_offset, table_bytes, format!("bitmap table {i}")));
        pos = (pos + BITMAP_ENTRY_HEADER)
            .saturating_add(extra)
            .saturating_add(name_size)
            .next_multiple_of(8);
    }
    Ok(Some(tables))
}

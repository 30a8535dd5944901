//! The metadata region (spec §2.6): the table of items and the system items imgport needs —
//! file parameters, virtual disk size, logical and physical sector sizes — each checked
//! inside the region before use.

use imgport_base::bytes::{le16, le32, le64};

use super::header::Region;
use super::spec::{
    Guid, ITEM_FILE_PARAMETERS, ITEM_LOGICAL_SECTOR_SIZE, ITEM_PARENT_LOCATOR,
    ITEM_PHYSICAL_SECTOR_SIZE, ITEM_VIRTUAL_DISK_ID, ITEM_VIRTUAL_DISK_SIZE, MAX_BLOCK_SIZE,
    MAX_ITEM_LEN, MAX_TABLE_ENTRIES, MAX_VIRTUAL_SIZE, METADATA_SIGNATURE, METADATA_TABLE_LEN,
    MIN_BLOCK_SIZE, guid_text,
};
use crate::{ImageError, ImageFile, Severity, Verdict};

/// The system metadata a reader needs.
#[derive(Debug, Clone)]
pub(super) struct Metadata {
    pub block_size: u32,
    pub leave_blocks_allocated: bool,
    pub virtual_size: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
    pub disk_id: Option<Guid>,
}

/// What each known item is called in messages, and the exact length it must have.
fn known(guid: &Guid) -> Option<(&'static str, u32)> {
    Some(match *guid {
        ITEM_FILE_PARAMETERS => ("File Parameters", 8),
        ITEM_VIRTUAL_DISK_SIZE => ("Virtual Disk Size", 8),
        ITEM_VIRTUAL_DISK_ID => ("Virtual Disk ID", 16),
        ITEM_LOGICAL_SECTOR_SIZE => ("Logical Sector Size", 4),
        ITEM_PHYSICAL_SECTOR_SIZE => ("Physical Sector Size", 4),
        ITEM_PARENT_LOCATOR => ("Parent Locator", 0),
        _ => return None,
    })
}

/// Reads and judges the metadata table and its system items. `None` when refused.
pub(super) fn read_metadata(
    file: &ImageFile,
    region: Region,
    v: &mut Verdict<'_>,
) -> Result<Option<Metadata>, ImageError> {
    // The region lies inside the file (checked with the region table) and is ≥ 1 MiB.
    let base = region.offset;
    let mut table = vec![0u8; METADATA_TABLE_LEN as usize];
    file.read_exact_at(&mut table, base)?;
    if !table.starts_with(METADATA_SIGNATURE) {
        v.refuse(
            "vhdx.metadata_signature",
            "metadata table signature",
            base,
            "is not \"metadata\"".into(),
        );
        return Ok(None);
    }
    let count = u32::from(le16(&table, 10));
    if count > MAX_TABLE_ENTRIES {
        v.refuse(
            "vhdx.metadata_count",
            "metadata table entry count",
            base + 10,
            format!("{count} entries pass the spec's limit of {MAX_TABLE_ENTRIES}"),
        );
        return Ok(None);
    }
    // (item, is_user) pairs seen, and the bytes of each known system item.
    let mut seen: Vec<(Guid, bool)> = Vec::new();
    let mut items: Vec<(Guid, Vec<u8>, u64)> = Vec::new();
    for i in 0..count as usize {
        let e = 32 + 32 * i;
        let entry_at = base + e as u64;
        let field = format!("metadata table entry {i}");
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&table[e..e + 16]);
        let offset = u64::from(le32(&table, e + 16));
        let length = le32(&table, e + 20);
        let flags = le32(&table, e + 24);
        let is_user = flags & 1 != 0;
        let is_required = flags & 4 != 0;
        if seen.contains(&(guid, is_user)) {
            v.refuse(
                "vhdx.metadata_duplicate",
                &field,
                entry_at,
                format!("item {} is listed twice", guid_text(&guid)),
            );
            continue;
        }
        seen.push((guid, is_user));
        let name = if is_user { None } else { known(&guid) };
        if name.is_none() && is_required {
            v.refuse(
                "vhdx.metadata_unknown_required",
                &field,
                entry_at,
                format!(
                    "item {} is marked required but is not one the VHDX spec defines; its meaning is unknown, so the disk cannot be read safely",
                    guid_text(&guid)
                ),
            );
            continue;
        }
        // Spec §2.6.1.2: an item lies past the table, inside the region, at most 1 MiB.
        let end = offset.checked_add(u64::from(length));
        if length > MAX_ITEM_LEN
            || (length > 0 && offset < METADATA_TABLE_LEN)
            || end.is_none_or(|e| e > region.length)
        {
            v.refuse(
                "vhdx.metadata_item_location",
                &field,
                entry_at + 16,
                format!(
                    "item {} ({length} bytes at region offset {offset}) must be at most 1 MiB, past the 64 KiB table and inside the {}-byte metadata region",
                    guid_text(&guid),
                    region.length
                ),
            );
            continue;
        }
        let Some((name, want_len)) = name else {
            continue;
        };
        if guid == ITEM_PARENT_LOCATOR {
            v.refuse(
                "vhdx.parent_locator",
                &field,
                entry_at,
                "a Parent Locator item: this is a differencing disk whose unallocated blocks live in a parent file that is not imported; merge the chain into one disk first".into(),
            );
            continue;
        }
        if length != want_len {
            v.refuse(
                "vhdx.metadata_item_length",
                &field,
                entry_at + 20,
                format!("the {name} item is {length} bytes, not {want_len}"),
            );
            continue;
        }
        let mut bytes = vec![0u8; length as usize];
        file.read_exact_at(&mut bytes, base + offset)?;
        items.push((guid, bytes, base + offset));
    }
    if v.refused {
        return Ok(None);
    }
    let item = |g: Guid| items.iter().find(|(id, _, _)| *id == g);
    let mut missing = Vec::new();
    for g in [
        ITEM_FILE_PARAMETERS,
        ITEM_VIRTUAL_DISK_SIZE,
        ITEM_LOGICAL_SECTOR_SIZE,
        ITEM_PHYSICAL_SECTOR_SIZE,
    ] {
        if item(g).is_none() {
            missing.push(known(&g).map_or("?", |k| k.0));
        }
    }
    if !missing.is_empty() {
        v.refuse(
            "vhdx.metadata_missing",
            "metadata table",
            base,
            format!("the required items {} are missing", missing.join(", ")),
        );
        return Ok(None);
    }
    let (_, fp, fp_at) = item(ITEM_FILE_PARAMETERS).cloned().unwrap_or_default();
    let block_size = le32(&fp, 0);
    let flags = le32(&fp, 4);
    let leave_blocks_allocated = flags & 1 != 0;
    if flags & 2 != 0 {
        v.refuse(
            "vhdx.differencing",
            "File Parameters HasParent",
            fp_at + 4,
            "set: this is a differencing disk whose unallocated blocks live in a parent file that is not imported; merge the chain into one disk first".into(),
        );
    }
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        v.refuse(
            "vhdx.block_size",
            "File Parameters BlockSize",
            fp_at,
            format!("{block_size} is not a power of two from 1 MiB to 256 MiB"),
        );
    }
    let sector_item = |g: Guid, what: &str, v: &mut Verdict<'_>| {
        let (_, b, at) = item(g).cloned().unwrap_or_default();
        let s = le32(&b, 0);
        if s != 512 && s != 4096 {
            v.refuse(
                "vhdx.sector_size",
                what,
                at,
                format!("{s} is not 512 or 4096"),
            );
        }
        s
    };
    let logical_sector = sector_item(ITEM_LOGICAL_SECTOR_SIZE, "Logical Sector Size", v);
    let physical_sector = sector_item(ITEM_PHYSICAL_SECTOR_SIZE, "Physical Sector Size", v);
    let (_, vs, vs_at) = item(ITEM_VIRTUAL_DISK_SIZE).cloned().unwrap_or_default();
    let virtual_size = le64(&vs, 0);
    if virtual_size == 0
        || virtual_size > MAX_VIRTUAL_SIZE
        || (logical_sector != 0 && !virtual_size.is_multiple_of(u64::from(logical_sector)))
    {
        v.refuse(
            "vhdx.virtual_size",
            "Virtual Disk Size",
            vs_at,
            format!(
                "{virtual_size} must be a non-zero multiple of the logical sector size {logical_sector}, at most 64 TiB"
            ),
        );
    }
    let disk_id = item(ITEM_VIRTUAL_DISK_ID).map(|(_, b, _)| {
        let mut g = [0u8; 16];
        g.copy_from_slice(b);
        g
    });
    if disk_id.is_none() {
        v.note(
            Severity::Info,
            "vhdx.no_disk_id",
            "metadata table",
            base,
            "no Virtual Disk ID item (the spec requires one; reading does not need it)".into(),
        );
    }
    if v.refused {
        return Ok(None);
    }
    Ok(Some(Metadata {
        block_size,
        leave_blocks_allocated,
        virtual_size,
        logical_sector,
        physical_sector,
        disk_id,
    }))
}

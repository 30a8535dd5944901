//! The two VHDX headers and the two region tables (spec §2.2.2, §2.2.3): the current header
//! chosen by checksum and sequence number, the region table judged entry by entry against
//! the file.

use imgport_base::bytes::{le16, le32, le64};

use super::spec::{
    Guid, HEADER_LEN, HEADER_OFFSETS, HEADER_SIGNATURE, MAX_TABLE_ENTRIES, MIB, REGION_BAT,
    REGION_METADATA, REGION_SIGNATURE, REGION_TABLE_LEN, REGION_TABLE_OFFSETS, crc32c_without,
    guid_text, head,
};
use crate::{ImageError, ImageFile, Severity, Verdict};

/// The fields of the current header that reading needs.
#[derive(Debug, Clone)]
pub(super) struct Header {
    /// File offset of this copy (64 KiB or 128 KiB).
    pub offset: u64,
    pub sequence: u64,
    pub log_guid: Guid,
    pub log_length: u32,
    pub log_offset: u64,
}

/// Why one header copy is not usable, for the finding when neither is.
fn judge_header(raw: &[u8]) -> Result<(), String> {
    if !raw.starts_with(HEADER_SIGNATURE) {
        return Err("no \"head\" signature".into());
    }
    let stored = le32(raw, head::CHECKSUM);
    let want = crc32c_without(raw, head::CHECKSUM);
    if stored != want {
        return Err(format!(
            "stored CRC-32C {stored:#010x} but the 4 KiB header sums to {want:#010x}"
        ));
    }
    Ok(())
}

/// Reads both headers and returns the current one: the valid copy with the larger sequence
/// number (spec §2.2.2.1). `None` (refused) when neither copy is valid.
pub(super) fn current_header(
    file: &ImageFile,
    v: &mut Verdict<'_>,
) -> Result<Option<Header>, ImageError> {
    let mut valid: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut why = Vec::new();
    for off in HEADER_OFFSETS {
        if file.size() < off + HEADER_LEN as u64 {
            why.push(format!("header at {off} passes the end of the file"));
            continue;
        }
        let mut raw = vec![0u8; HEADER_LEN];
        file.read_exact_at(&mut raw, off)?;
        match judge_header(&raw) {
            Ok(()) => valid.push((off, raw)),
            Err(e) => why.push(format!("header at {off}: {e}")),
        }
    }
    let Some((offset, raw)) = valid
        .iter()
        .max_by_key(|(off, raw)| (le64(raw, head::SEQUENCE), std::cmp::Reverse(*off)))
    else {
        v.refuse(
            "vhdx.header",
            "headers",
            HEADER_OFFSETS[0],
            format!("neither header copy is valid ({})", why.join("; ")),
        );
        return Ok(None);
    };
    if valid.len() == 1 {
        v.note(
            Severity::Info,
            "vhdx.header_copy_invalid",
            "headers",
            HEADER_OFFSETS[0],
            format!(
                "only the header at {offset} is valid ({}); it is used",
                why.join("; ")
            ),
        );
    }
    let at = |f: usize| offset + f as u64;
    let version = le16(raw, head::VERSION);
    if version != 1 {
        v.refuse(
            "vhdx.version",
            "header version",
            at(head::VERSION),
            format!("{version} is not 1, the only version the VHDX spec defines"),
        );
    }
    let log_version = le16(raw, head::LOG_VERSION);
    if log_version != 0 {
        v.refuse(
            "vhdx.log_version",
            "header log version",
            at(head::LOG_VERSION),
            format!("{log_version} is not 0, the only log version the VHDX spec defines"),
        );
    }
    let mut log_guid = [0u8; 16];
    log_guid.copy_from_slice(&raw[head::LOG_GUID..head::LOG_GUID + 16]);
    let h = Header {
        offset: *offset,
        sequence: le64(raw, head::SEQUENCE),
        log_guid,
        log_length: le32(raw, head::LOG_LENGTH),
        log_offset: le64(raw, head::LOG_OFFSET),
    };
    let log_end = h.log_offset.checked_add(u64::from(h.log_length));
    if !h.log_offset.is_multiple_of(MIB)
        || !u64::from(h.log_length).is_multiple_of(MIB)
        || h.log_offset < MIB
        || log_end.is_none_or(|e| e > file.size())
    {
        v.refuse(
            "vhdx.log_location",
            "header log offset",
            at(head::LOG_OFFSET),
            format!(
                "the log ({} bytes at {}) must start at a multiple of 1 MiB past the first MiB, be a whole number of MiB long and lie inside the file ({} bytes)",
                h.log_length,
                h.log_offset,
                file.size()
            ),
        );
    }
    Ok(Some(h))
}

/// One region table entry (spec §2.2.3.2).
#[derive(Debug, Clone, Copy)]
pub(super) struct Region {
    pub offset: u64,
    pub length: u64,
}

/// The BAT and metadata regions, and where the table that named them lies.
#[derive(Debug, Clone, Copy)]
pub(super) struct Regions {
    pub table_offset: u64,
    pub bat: Region,
    pub metadata: Region,
}

/// Reads the first valid region table (spec §2.2.3: the second is used when the first is
/// corrupt) and judges every entry: inside the file, 1 MiB aligned, known or not required,
/// no duplicate, no overlap with each other, the headers or the log.
pub(super) fn regions(
    file: &ImageFile,
    header: &Header,
    v: &mut Verdict<'_>,
) -> Result<Option<Regions>, ImageError> {
    let mut why = Vec::new();
    let mut table = None;
    for off in REGION_TABLE_OFFSETS {
        if file.size() < off + REGION_TABLE_LEN as u64 {
            why.push(format!("region table at {off} passes the end of the file"));
            continue;
        }
        let mut raw = vec![0u8; REGION_TABLE_LEN];
        file.read_exact_at(&mut raw, off)?;
        if !raw.starts_with(REGION_SIGNATURE) {
            why.push(format!("region table at {off}: no \"regi\" signature"));
            continue;
        }
        let stored = le32(&raw, 4);
        let want = crc32c_without(&raw, 4);
        if stored != want {
            why.push(format!(
                "region table at {off}: stored CRC-32C {stored:#010x} but the 64 KiB table sums to {want:#010x}"
            ));
            continue;
        }
        table = Some((off, raw));
        break;
    }
    let Some((table_offset, raw)) = table else {
        v.refuse(
            "vhdx.region_table",
            "region tables",
            REGION_TABLE_OFFSETS[0],
            format!("neither region table is valid ({})", why.join("; ")),
        );
        return Ok(None);
    };
    let count = le32(&raw, 8);
    if count > MAX_TABLE_ENTRIES {
        v.refuse(
            "vhdx.region_count",
            "region table entry count",
            table_offset + 8,
            format!("{count} entries pass the spec's limit of {MAX_TABLE_ENTRIES}"),
        );
        return Ok(None);
    }
    let mut bat = None;
    let mut metadata = None;
    // Spans of the file already claimed: the first MiB (identifier, headers, region
    // tables) and the log.
    let mut spans: Vec<(u64, u64, String)> = vec![(0, MIB, "the header section".into())];
    if header.log_length > 0 {
        spans.push((
            header.log_offset,
            header
                .log_offset
                .saturating_add(u64::from(header.log_length)),
            "the log".into(),
        ));
    }
    for i in 0..count as usize {
        let e = 16 + 32 * i;
        let entry_at = table_offset + e as u64;
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&raw[e..e + 16]);
        let offset = le64(&raw, e + 16);
        let length = u64::from(le32(&raw, e + 24));
        let required = le32(&raw, e + 28) & 1 != 0;
        let name = match guid {
            REGION_BAT => "the BAT region",
            REGION_METADATA => "the metadata region",
            _ => {
                if required {
                    v.refuse(
                        "vhdx.region_unknown_required",
                        &format!("region table entry {i}"),
                        entry_at,
                        format!(
                            "region {} is marked required but is not one the VHDX spec defines; its meaning is unknown, so the file cannot be read safely",
                            guid_text(&guid)
                        ),
                    );
                }
                "an unknown region"
            }
        };
        let end = offset.checked_add(length);
        if !offset.is_multiple_of(MIB)
            || !length.is_multiple_of(MIB)
            || offset < MIB
            || length == 0
            || end.is_none_or(|e| e > file.size())
        {
            v.refuse(
                "vhdx.region_location",
                &format!("region table entry {i}"),
                entry_at + 16,
                format!(
                    "{name} ({length} bytes at {offset}) must be a non-empty whole number of MiB at a multiple of 1 MiB past the first MiB, inside the file ({} bytes)",
                    file.size()
                ),
            );
            continue;
        }
        let end = offset + length;
        if let Some((_, _, other)) = spans.iter().find(|(s, t, _)| offset < *t && *s < end) {
            v.refuse(
                "vhdx.region_overlap",
                &format!("region table entry {i}"),
                entry_at + 16,
                format!("{name} (bytes {offset}..{end}) overlaps {other}"),
            );
            continue;
        }
        spans.push((offset, end, name.to_string()));
        let slot = match guid {
            REGION_BAT => &mut bat,
            REGION_METADATA => &mut metadata,
            _ => continue,
        };
        if slot.is_some() {
            v.refuse(
                "vhdx.region_duplicate",
                &format!("region table entry {i}"),
                entry_at,
                format!("{name} is listed twice"),
            );
        }
        *slot = Some(Region { offset, length });
    }
    let (Some(bat), Some(metadata)) = (bat, metadata) else {
        v.refuse(
            "vhdx.region_missing",
            "region table",
            table_offset,
            "the BAT and metadata regions are both required and one is missing".into(),
        );
        return Ok(None);
    };
    if v.refused {
        return Ok(None);
    }
    Ok(Some(Regions {
        table_offset,
        bat,
        metadata,
    }))
}

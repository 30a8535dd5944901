//! Dynamic VHDs: the `cxsparse` header and the block allocation table, judged against the
//! file (spec "Dynamic Disk Header Format", "Block Allocation Table and Data Blocks").

use imgport_base::bytes::{be32, be64};

use super::details::{Layout, VhdDynamicDetails};
use super::footer::Footer;
use super::spec::{
    BAT_UNALLOCATED, DYN_COOKIE, DYN_HEADER_LEN, FOOTER_LEN, MAX_BAT_ENTRIES, SECTOR, VERSION,
    checksum, dynh, foot,
};
use crate::{ImageError, ImageFile, Severity, Verdict};

/// A file range that metadata or a block occupies, for overlap checks.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    what: SpanKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanKind {
    FooterCopy,
    Header,
    Bat,
    Block(usize),
}

impl SpanKind {
    fn name(self) -> String {
        match self {
            SpanKind::FooterCopy => "the footer copy".into(),
            SpanKind::Header => "the dynamic disk header".into(),
            SpanKind::Bat => "the BAT".into(),
            SpanKind::Block(i) => format!("block {i}"),
        }
    }
}

/// Parses and judges the `cxsparse` header and the BAT (spec "Dynamic Disk Header Format",
/// "Block Allocation Table and Data Blocks"). `None` when nothing further can be checked.
pub(super) fn open_dynamic(
    file: &ImageFile,
    footer: &Footer,
    footer_offset: u64,
    virtual_size: u64,
    v: &mut Verdict<'_>,
) -> Result<Option<Layout>, ImageError> {
    let hdr_off = footer.data_offset;
    let data_offset_at = footer_offset + foot::DATA_OFFSET as u64;
    let hdr_end = hdr_off.checked_add(DYN_HEADER_LEN as u64);
    if hdr_off < FOOTER_LEN as u64 || hdr_end.is_none_or(|e| e > footer_offset) {
        v.refuse(
            "vhd.dyn_header_offset",
            "footer data offset",
            data_offset_at,
            format!(
                "the dynamic disk header at {hdr_off} must lie between the footer copy and the footer at {footer_offset}"
            ),
        );
        return Ok(None);
    }
    let mut h = vec![0u8; DYN_HEADER_LEN];
    file.read_exact_at(&mut h, hdr_off)?;
    let hat = |field: usize| hdr_off + field as u64;
    if !h.starts_with(DYN_COOKIE) {
        v.refuse(
            "vhd.dyn_cookie",
            "dynamic header cookie",
            hdr_off,
            "is not \"cxsparse\"".into(),
        );
        return Ok(None);
    }
    let stored = be32(&h, dynh::CHECKSUM);
    let want = checksum(&h, dynh::CHECKSUM);
    if stored != want {
        // QEMU does not check this one; a wrong sum still means the header is corrupt.
        v.refuse(
            "vhd.dyn_checksum",
            "dynamic header checksum",
            hat(dynh::CHECKSUM),
            format!("stored {stored:#010x} but the header sums to {want:#010x}"),
        );
        return Ok(None);
    }
    let version = be32(&h, dynh::VERSION);
    if version != VERSION {
        v.refuse(
            "vhd.dyn_version",
            "dynamic header version",
            hat(dynh::VERSION),
            format!("{version:#010x} is not 0x00010000"),
        );
    }
    let block_size = be32(&h, dynh::BLOCK_SIZE);
    if !block_size.is_power_of_two() || block_size < 512 {
        v.refuse(
            "vhd.block_size",
            "dynamic header block size",
            hat(dynh::BLOCK_SIZE),
            format!("{block_size} is not a power of two of at least 512"),
        );
        return Ok(None);
    }
    let block = u64::from(block_size);
    // One bit per sector, padded to whole sectors (spec "Block Allocation Table").
    let bitmap_size = (block / SECTOR).div_ceil(8).div_ceil(SECTOR) * SECTOR;
    let entries = be32(&h, dynh::MAX_TABLE_ENTRIES);
    if entries > MAX_BAT_ENTRIES {
        v.refuse(
            "vhd.bat_too_large",
            "dynamic header max table entries",
            hat(dynh::MAX_TABLE_ENTRIES),
            format!("{entries} entries pass imgport's limit of {MAX_BAT_ENTRIES}"),
        );
        return Ok(None);
    }
    let coverage = u64::from(entries) * block;
    if coverage < virtual_size {
        // QEMU: "Page table too small".
        v.refuse(
            "vhd.page_table_too_small",
            "dynamic header max table entries",
            hat(dynh::MAX_TABLE_ENTRIES),
            format!(
                "{entries} entries of {block_size} bytes cover {coverage} bytes, less than the virtual size {virtual_size}"
            ),
        );
        return Ok(None);
    }
    if coverage != footer.current_size {
        v.note(
            Severity::Warning,
            "vhd.ecs_incorrect_size",
            "dynamic header max table entries",
            hat(dynh::MAX_TABLE_ENTRIES),
            format!(
                "max table entries × block size = {coverage} but current_size is {}; ECS refuses such a VHD (InvalidVHDImage.IncorrectSize), so convert it rather than upload it as is",
                footer.current_size
            ),
        );
    }
    let bat_off = be64(&h, dynh::TABLE_OFFSET);
    let bat_len = u64::from(entries) * 4;
    let bat_end = bat_off.checked_add(bat_len);
    if bat_off < FOOTER_LEN as u64 || bat_end.is_none_or(|e| e > footer_offset) {
        v.refuse(
            "vhd.bat_past_eof",
            "dynamic header table offset",
            hat(dynh::TABLE_OFFSET),
            format!(
                "the BAT ({bat_len} bytes at {bat_off}) must lie between the footer copy and the footer at {footer_offset}"
            ),
        );
        return Ok(None);
    }
    let bat_end = bat_off + bat_len;
    let hdr_end = hdr_off + DYN_HEADER_LEN as u64;
    if bat_off < hdr_end && hdr_off < bat_end {
        v.refuse(
            "vhd.bat_overlap",
            "dynamic header table offset",
            hat(dynh::TABLE_OFFSET),
            format!("the BAT ({bat_len} bytes at {bat_off}) overlaps the dynamic disk header at {hdr_off}"),
        );
        return Ok(None);
    }
    // Bounded: entries ≤ MAX_BAT_ENTRIES and the table lies inside the file.
    let mut raw = vec![0u8; bat_len as usize];
    file.read_exact_at(&mut raw, bat_off)?;
    let bat: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| imgport_base::bytes::be32(c, 0))
        .collect();
    drop(raw);

    let mut spans = vec![
        Span {
            start: 0,
            end: FOOTER_LEN as u64,
            what: SpanKind::FooterCopy,
        },
        Span {
            start: hdr_off,
            end: hdr_end,
            what: SpanKind::Header,
        },
        Span {
            start: bat_off,
            end: bat_end,
            what: SpanKind::Bat,
        },
    ];
    let mut past_eof = 0u64;
    let mut allocated = 0u64;
    for (i, &e) in bat.iter().enumerate() {
        if e == BAT_UNALLOCATED {
            continue;
        }
        allocated += 1;
        let start = u64::from(e) * SECTOR;
        // QEMU requires the whole block (bitmap + data) inside the file; it must also end
        // before the footer, which is metadata.
        let end = start + bitmap_size + block;
        if end > footer_offset {
            if past_eof == 0 {
                v.refuse(
                    "vhd.bat_entry_past_eof",
                    &format!("BAT entry {i}"),
                    bat_off + 4 * i as u64,
                    format!(
                        "block {i} at sector {e} (bytes {start}..{end}) does not end before the footer at {footer_offset}"
                    ),
                );
            }
            past_eof += 1;
            continue;
        }
        spans.push(Span {
            start,
            end,
            what: SpanKind::Block(i),
        });
    }
    if past_eof > 1 {
        v.note(
            Severity::Refuse,
            "vhd.bat_entry_past_eof",
            "BAT",
            bat_off,
            format!("{past_eof} blocks in all lie past the end of the data"),
        );
    }
    spans.sort_by_key(|s| (s.start, s.end));
    let mut overlaps = 0u64;
    // Each span is compared with the furthest-reaching earlier one, which catches every
    // overlap chain in one pass.
    let mut reach: Option<Span> = None;
    for s in &spans {
        if let Some(r) = reach {
            if s.start < r.end {
                if overlaps == 0 {
                    let (field, offset) = match (s.what, r.what) {
                        (SpanKind::Block(i), _) | (_, SpanKind::Block(i)) => {
                            (format!("BAT entry {i}"), bat_off + 4 * i as u64)
                        }
                        _ => (
                            "dynamic header table offset".to_string(),
                            hat(dynh::TABLE_OFFSET),
                        ),
                    };
                    v.refuse(
                        "vhd.bat_overlap",
                        &field,
                        offset,
                        format!(
                            "{} (bytes {}..{}) overlaps {} (bytes {}..{}); two reads of different disk offsets would share storage",
                            s.what.name(),
                            s.start,
                            s.end,
                            r.what.name(),
                            r.start,
                            r.end
                        ),
                    );
                }
                overlaps += 1;
            }
            if s.end > r.end {
                reach = Some(*s);
            }
        } else {
            reach = Some(*s);
        }
    }
    if overlaps > 1 {
        v.note(
            Severity::Refuse,
            "vhd.bat_overlap",
            "BAT",
            bat_off,
            format!("{overlaps} overlaps in all"),
        );
    }
    let details = VhdDynamicDetails {
        header_offset: hdr_off,
        bat_offset: bat_off,
        max_table_entries: entries,
        block_size,
        bitmap_size,
        allocated_blocks: allocated,
        table_coverage: coverage,
    };
    Ok(Some(Layout::Dynamic {
        block_size: block,
        bitmap_size,
        bat,
        details,
    }))
}

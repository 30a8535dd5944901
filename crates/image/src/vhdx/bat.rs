//! The block allocation table (spec §2.5): payload block entries with sector bitmap entries
//! interleaved once per chunk, every present block checked inside the file and apart from
//! the metadata and from every other block.

use imgport_base::bytes::le64;

use super::metadata::Metadata;
use super::spec::{MAX_BAT_BYTES, MIB, state};
use crate::{ImageError, ImageFile, Severity, Verdict};

/// How many payload blocks share one sector bitmap block (spec §2.5: chunk ratio
/// = 2^23 × logical sector size / block size).
pub(super) fn chunk_ratio(md: &Metadata) -> u64 {
    ((1u64 << 23) * u64::from(md.logical_sector)) / u64::from(md.block_size)
}

/// The BAT index of payload block `i`: one sector bitmap entry follows every chunk.
pub(super) fn payload_index(i: u64, chunk_ratio: u64) -> u64 {
    i + i / chunk_ratio
}

/// The state of a BAT entry (bits 0–2).
pub(super) fn entry_state(e: u64) -> u8 {
    (e & 7) as u8
}

/// The file offset a BAT entry points at (bits 20–63, in MiB).
pub(super) fn entry_offset(e: u64) -> u64 {
    (e >> 20) * MIB
}

/// File ranges already claimed by metadata, with a name for messages.
pub(super) type Claimed = Vec<(u64, u64, String)>;

/// Reads and judges the BAT in the region at `bat_offset` (`bat_length` bytes); returns the
/// payload block entries in disk order. `None` when refused.
pub(super) fn read_bat(
    file: &ImageFile,
    md: &Metadata,
    bat_offset: u64,
    bat_length: u64,
    claimed: &Claimed,
    v: &mut Verdict<'_>,
) -> Result<Option<Vec<u64>>, ImageError> {
    let block = u64::from(md.block_size);
    let ratio = chunk_ratio(md);
    let blocks = md.virtual_size.div_ceil(block);
    // Spec §2.5: entries of a non-differencing disk; the BAT holds at least that many.
    let total = blocks + (blocks - 1) / ratio;
    let bytes = total * 8;
    if bytes > MAX_BAT_BYTES {
        v.refuse(
            "vhdx.bat_too_large",
            "Virtual Disk Size",
            bat_offset,
            format!(
                "{total} BAT entries ({bytes} bytes) pass imgport's limit of {MAX_BAT_BYTES} bytes"
            ),
        );
        return Ok(None);
    }
    if bytes > bat_length {
        v.refuse(
            "vhdx.bat_region_small",
            "BAT region length",
            bat_offset,
            format!(
                "the BAT region holds {bat_length} bytes but a disk of {} bytes in {block}-byte blocks needs {total} entries ({bytes} bytes)",
                md.virtual_size
            ),
        );
        return Ok(None);
    }
    let mut payload = Vec::with_capacity(blocks as usize);
    // (file offset, block index) of every block stored in the file, for the overlap check.
    let mut stored: Vec<(u64, u64)> = Vec::new();
    let mut first_bad: Option<(String, u64, String, &str)> = None;
    let mut bad = 0u64;
    let mut note_bad = |field: String, at: u64, rule: String, code: &'static str| {
        bad += 1;
        if first_bad.is_none() {
            first_bad = Some((field, at, rule, code));
        }
    };
    let mut buf = vec![0u8; (MIB as usize).min(bytes as usize)];
    let mut index = 0u64;
    while index < total {
        let n = ((total - index) as usize).min(buf.len() / 8);
        let chunk = &mut buf[..n * 8];
        file.read_exact_at(chunk, bat_offset + index * 8)?;
        for k in 0..n {
            let i = index + k as u64;
            let e = le64(chunk, k * 8);
            let at = bat_offset + i * 8;
            let st = entry_state(e);
            let off = entry_offset(e);
            let is_bitmap = (i + 1).is_multiple_of(ratio + 1);
            if is_bitmap {
                match st {
                    0 => {}
                    state::SB_PRESENT => {
                        // Unused outside differencing disks, but still checked in the file.
                        if off < MIB || off.checked_add(MIB).is_none_or(|end| end > file.size()) {
                            note_bad(
                                format!("BAT entry {i} (sector bitmap)"),
                                at,
                                format!(
                                    "the sector bitmap block at {off} does not lie inside the file ({} bytes)",
                                    file.size()
                                ),
                                "vhdx.bat_entry_past_eof",
                            );
                        }
                    }
                    s => note_bad(
                        format!("BAT entry {i} (sector bitmap)"),
                        at,
                        format!("state {s} is not 0 (not present) or 6 (present)"),
                        "vhdx.bat_state",
                    ),
                }
                continue;
            }
            let b = payload.len() as u64;
            match st {
                state::NOT_PRESENT | state::UNDEFINED | state::ZERO | state::UNMAPPED => {}
                state::FULLY_PRESENT => {
                    let end = off.checked_add(block);
                    if off < MIB || end.is_none_or(|end| end > file.size()) {
                        note_bad(
                            format!("BAT entry {i} (block {b})"),
                            at,
                            format!(
                                "block {b} ({block} bytes at {off}) does not lie inside the file ({} bytes) past its first MiB",
                                file.size()
                            ),
                            "vhdx.bat_entry_past_eof",
                        );
                    } else if stored.len() as u64 >= file.size() / block {
                        // More stored blocks than the file holds: some share storage. Stop
                        // collecting, so the list stays bounded by the file size.
                        note_bad(
                            format!("BAT entry {i} (block {b})"),
                            at,
                            format!(
                                "more present blocks than {} bytes of file hold; two disk ranges would share storage",
                                file.size()
                            ),
                            "vhdx.bat_overlap",
                        );
                    } else {
                        stored.push((off, b));
                    }
                }
                state::PARTIALLY_PRESENT => note_bad(
                    format!("BAT entry {i} (block {b})"),
                    at,
                    "PAYLOAD_BLOCK_PARTIALLY_PRESENT is only valid in a differencing disk, whose other sectors live in a parent file".into(),
                    "vhdx.bat_partially_present",
                ),
                s => note_bad(
                    format!("BAT entry {i} (block {b})"),
                    at,
                    format!("state {s} is not a payload block state of the VHDX spec"),
                    "vhdx.bat_state",
                ),
            }
            payload.push(e);
        }
        index += n as u64;
    }
    drop(buf);
    // Blocks are block-sized, so two overlap exactly when their offsets are closer than that.
    stored.sort_unstable();
    for w in stored.windows(2) {
        let ((a, ai), (b, bi)) = (w[0], w[1]);
        if b - a < block {
            let i = payload_index(bi, ratio);
            note_bad(
                format!("BAT entry {i} (block {bi})"),
                bat_offset + i * 8,
                format!(
                    "block {bi} at {b} overlaps block {ai} at {a}; two disk ranges would share storage"
                ),
                "vhdx.bat_overlap",
            );
        }
    }
    for (start, end, what) in claimed {
        // The first stored block that ends past `start`.
        let from = stored.partition_point(|(o, _)| o + block <= *start);
        if let Some(&(o, bi)) = stored.get(from)
            && o < *end
        {
            let i = payload_index(bi, ratio);
            note_bad(
                format!("BAT entry {i} (block {bi})"),
                bat_offset + i * 8,
                format!("block {bi} at {o} overlaps {what} (bytes {start}..{end})"),
                "vhdx.bat_overlap",
            );
        }
    }
    if let Some((field, at, rule, code)) = first_bad {
        v.refuse(code, &field, at, rule);
        if bad > 1 {
            v.note(
                Severity::Refuse,
                code,
                "BAT",
                bat_offset,
                format!("{bad} bad entries in all"),
            );
        }
        return Ok(None);
    }
    Ok(Some(payload))
}

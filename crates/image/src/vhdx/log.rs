//! The log (spec §2.3): whether it holds entries that must be replayed before the file is
//! consistent. imgport never writes the file and does not replay: a log with a valid entry
//! of the header's LogGuid is refused, never ignored.

use imgport_base::bytes::le32;

use super::header::Header;
use super::spec::{LOG_ENTRY_SIGNATURE, LOG_SECTOR};
use crate::{ImageError, ImageFile, Severity, Verdict};

/// Bytes of a log entry header (spec §2.3.1.1).
const ENTRY_HEADER_LEN: usize = 64;

/// Bytes of candidate entries whose checksum is computed at most; past it the log is
/// treated as holding an entry (refused), so a log of many long bogus entries costs bounded time.
const CRC_BUDGET: u64 = 64 << 20;

/// What the scan of the log found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LogScan {
    /// No valid entry of the header's LogGuid.
    Empty,
    /// A valid entry at this file offset.
    Entry(u64),
    /// Too many candidate bytes to check within the budget.
    TooLong,
}

/// Finds the first valid log entry of `header`'s log (signature, LogGuid, length inside
/// the log, CRC-32C over the whole entry).
pub(super) fn scan(file: &ImageFile, header: &Header) -> Result<LogScan, ImageError> {
    let start = header.log_offset;
    let len = u64::from(header.log_length);
    let mut pos = 0u64;
    let mut head = [0u8; ENTRY_HEADER_LEN];
    let mut budget = CRC_BUDGET;
    let mut piece = Vec::new();
    while pos + LOG_SECTOR <= len {
        // The log was checked to lie inside the file.
        file.read_exact_at(&mut head, start + pos)?;
        let entry_len = u64::from(le32(&head, 8));
        let fits = entry_len >= LOG_SECTOR
            && entry_len.is_multiple_of(LOG_SECTOR)
            && pos + entry_len <= len;
        if head.starts_with(LOG_ENTRY_SIGNATURE) && head[32..48] == header.log_guid && fits {
            if entry_len > budget {
                return Ok(LogScan::TooLong);
            }
            budget -= entry_len;
            // CRC-32C of the entry with its checksum field zero, in pieces of at most 1 MiB.
            let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
            let mut done = 0u64;
            while done < entry_len {
                let n = (entry_len - done).min(1 << 20) as usize;
                piece.resize(n, 0);
                file.read_exact_at(&mut piece, start + pos + done)?;
                if done == 0 {
                    piece[4..8].fill(0);
                }
                d.update(&piece);
                done += n as u64;
            }
            if le32(&head, 4) == d.finalize() as u32 {
                return Ok(LogScan::Entry(start + pos));
            }
        }
        pos += LOG_SECTOR;
    }
    Ok(LogScan::Empty)
}

/// Judges the log: empty (LogGuid zero, or no valid entry of that GUID) is fine; otherwise
/// the file needs a replay imgport does not do, and is refused.
pub(super) fn judge_log(
    file: &ImageFile,
    header: &Header,
    v: &mut Verdict<'_>,
) -> Result<(), ImageError> {
    let guid_at = header.offset + super::spec::head::LOG_GUID as u64;
    if header.log_guid == [0u8; 16] {
        return Ok(());
    }
    match scan(file, header)? {
        LogScan::Entry(at) => v.refuse(
            "vhdx.log_replay",
            "header LogGuid",
            guid_at,
            format!(
                "the log holds a valid entry at {at}: the file was not closed cleanly and its metadata is only consistent after a log replay, which imgport does not do (it never writes the source); open the disk once in Hyper-V, or run `qemu-img check -r all` on a copy, then import that"
            ),
        ),
        LogScan::TooLong => v.refuse(
            "vhdx.log_replay",
            "header LogGuid",
            guid_at,
            format!("is set and the log holds more than {CRC_BUDGET} bytes of entries of that GUID; imgport does not judge such a log, and a log that may need a replay is never ignored"),
        ),
        LogScan::Empty => v.note(
            Severity::Info,
            "vhdx.log_empty",
            "header LogGuid",
            guid_at,
            "is set but the log holds no valid entry of that GUID: nothing to replay".into(),
        ),
    }
    Ok(())
}

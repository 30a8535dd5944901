//! Was the internal log cleanly emptied? Finds the log head the way recovery starts (the
//! first 512-byte log block whose cycle number differs from the first block's) and checks
//! that the record just before it is an unmount record. Nothing is replayed.
//! Layout: XFS Algorithms & Data Structures, "Journaling Log" (`xlog_rec_header`,
//! `xlog_op_header`). Owns only this yes/no answer; a failure to read the log is "dirty".

use super::disk::{be32, read};
use super::superblock::Superblock;
use imgport_image::source::ByteSource;

/// Record header magic (XLOG_HEADER_MAGIC_NUM).
const LOG_MAGIC: u32 = 0xfeed_babe;
/// oh_clientid of log-internal records, and the oh_flags bit of an unmount record.
const CLIENT_LOG: u8 = 0xaa;
const UNMOUNT_TRANS: u8 = 0x20;
/// Log blocks searched back from the head for the last record header: a record is at most
/// 256 KiB of data plus its headers, rounded to a stripe unit.
const MAX_BACK: u64 = 2 * (256 * 1024 / 512) + 64;

/// `None` when the internal log ends with an unmount record (clean); otherwise why not.
/// External logs (`sb_logstart` = 0) cannot be checked and yield `None`.
pub fn unclean(source: &dyn ByteSource, sb: &Superblock) -> Option<String> {
    if sb.log_start == 0 {
        return None;
    }
    let Ok(start) = sb
        .check_run(sb.log_start, u64::from(sb.log_blocks))
        .and_then(|()| sb.fsb_offset(sb.log_start))
    else {
        return Some("the internal log lies outside the file system".into());
    };
    let n = u64::from(sb.log_blocks) << (sb.block_log - 9);
    let bb = |i: u64| read(source, start + (i % n) * 512, 512).ok();
    let cycle = |b: &[u8]| {
        if be32(b, 0) == LOG_MAGIC {
            be32(b, 4)
        } else {
            be32(b, 0)
        }
    };
    let (Some(first), Some(last)) = (bb(0), bb(n - 1)) else {
        return Some("the log cannot be read".into());
    };
    let c0 = cycle(&first);
    // Blocks [0, head) carry cycle c0, [head, n) the previous cycle (or zero, never written).
    let head = if cycle(&last) == c0 {
        n
    } else {
        let (mut lo, mut hi) = (0u64, n - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match bb(mid) {
                Some(b) if cycle(&b) == c0 => lo = mid,
                Some(_) => hi = mid,
                None => return Some("the log cannot be read".into()),
            }
        }
        hi
    };
    for back in 1..=MAX_BACK.min(n) {
        let at = (head + n - back) % n;
        let Some(b) = bb(at) else {
            return Some("the log cannot be read".into());
        };
        if be32(&b, 0) != LOG_MAGIC {
            continue;
        }
        // The first op header starts the data, after 32 KiB of header per header block.
        let hdr_blocks = u64::from(be32(&b, 0x140).div_ceil(32768).max(1));
        let data = if be32(&b, 8) == 2 {
            bb(at + hdr_blocks)
        } else {
            bb(at + 1)
        };
        let clean = be32(&b, 40) == 1
            && data.is_some_and(|d| d[8] == CLIENT_LOG && d[9] & UNMOUNT_TRANS != 0);
        return (!clean).then(|| {
            "the log holds transactions after its last unmount record: the volume was not cleanly unmounted and recovery would change it".to_string()
        });
    }
    Some("no log record header found before the log head".into())
}

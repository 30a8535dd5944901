//! Data-fork block maps: the in-inode extent list and the bmbt B+tree (long-format blocks,
//! `BMAP` on v4, `BMA3` with CRC and owner on v5), decoded into one sorted, validated list of
//! extents, plus the lookups that map file blocks to volume offsets.
//! Layout: XFS Algorithms & Data Structures, "Data Extents" and "B+tree Extent List".
//! Owns no interpretation of the mapped bytes.

use super::disk::{be16, be32, be64, corrupt, crc_ok, read};
use super::inode::{Format, Inode};
use super::superblock::Superblock;
use crate::fs::FsError;
use imgport_image::source::ByteSource;

/// Most extents one inode may map here (32 bytes each in memory).
pub const MAX_EXTENTS: u64 = 1 << 20;
/// Deepest bmbt accepted (the kernel's limit for 64-bit extent counts is 9 with the root).
const MAX_BMBT_LEVELS: u16 = 10;
/// Most bmbt blocks read for one inode.
const MAX_BMBT_BLOCKS: u64 = 1 << 18;
const BMAP_MAGIC: u32 = 0x424d_4150;
const BMA3_MAGIC: u32 = 0x424d_4133;
const HDR_V4: usize = 24;
const HDR_V5: usize = 72;
const BMBT_CRC_OFF: usize = 64;
/// File offsets are 54-bit block numbers.
const MAX_FILEOFF: u64 = 1 << 54;

/// One mapping of `len` file blocks from `lblk` to volume blocks from `fsb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub lblk: u64,
    pub fsb: u64,
    pub len: u64,
    /// Preallocated, never written: reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    fn decode(rec: &[u8]) -> Self {
        let l0 = be64(rec, 0);
        let l1 = be64(rec, 8);
        Self {
            unwritten: l0 >> 63 != 0,
            lblk: (l0 >> 9) & (MAX_FILEOFF - 1),
            fsb: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            len: l1 & ((1 << 21) - 1),
        }
    }
}

/// The validated extent list of `inode`'s data fork (empty for local and device forks).
pub fn extents(
    source: &dyn ByteSource,
    sb: &Superblock,
    inode: &Inode,
) -> Result<Vec<Extent>, FsError> {
    let what = || format!("inode {}", inode.ino);
    if inode.nextents > MAX_EXTENTS {
        return Err(corrupt(
            what(),
            format!(
                "{} extents pass the reader's cap of {MAX_EXTENTS}",
                inode.nextents
            ),
        ));
    }
    let mut out = Vec::new();
    match inode.format {
        Format::Dev | Format::Local => return Ok(out),
        Format::Extents => {
            let need = inode.nextents as usize * 16;
            if need > inode.fork.len() {
                return Err(corrupt(
                    what(),
                    "di_nextents records do not fit the data fork",
                ));
            }
            out.extend(inode.fork[..need].chunks_exact(16).map(Extent::decode));
        }
        Format::Btree => {
            let fork = &inode.fork;
            if fork.len() < 4 + 16 {
                return Err(corrupt(what(), "bmbt root does not fit the data fork"));
            }
            let level = be16(fork, 0);
            let numrecs = usize::from(be16(fork, 2));
            let maxrecs = (fork.len() - 4) / 16;
            if level == 0 || level > MAX_BMBT_LEVELS || numrecs == 0 || numrecs > maxrecs {
                return Err(corrupt(
                    what(),
                    format!("bmbt root level {level} or {numrecs} records out of range"),
                ));
            }
            let mut walk = Walk {
                source,
                sb,
                ino: inode.ino,
                cap: inode.nextents,
                blocks: 0,
                out: &mut out,
            };
            let ptrs = 4 + maxrecs * 8;
            for i in 0..numrecs {
                walk.block(be64(fork, ptrs + i * 8), level - 1)?;
            }
        }
    }
    if out.len() as u64 != inode.nextents {
        return Err(corrupt(
            what(),
            format!(
                "{} extents found where di_nextents says {}",
                out.len(),
                inode.nextents
            ),
        ));
    }
    let mut end = 0u64;
    for e in &out {
        if e.len == 0 || e.lblk < end {
            return Err(corrupt(
                what(),
                format!(
                    "extent at file block {} is empty, unsorted or overlapping",
                    e.lblk
                ),
            ));
        }
        end = e.lblk + e.len;
        if end > MAX_FILEOFF {
            return Err(corrupt(what(), "extent passes the largest file offset"));
        }
        sb.check_run(e.fsb, e.len).map_err(|err| match err {
            FsError::Corrupt { what: w, rule, .. } => {
                corrupt(format!("inode {}: {w}", inode.ino), rule)
            }
            other => other,
        })?;
    }
    Ok(out)
}

struct Walk<'a> {
    source: &'a dyn ByteSource,
    sb: &'a Superblock,
    ino: u64,
    cap: u64,
    blocks: u64,
    out: &'a mut Vec<Extent>,
}

impl Walk<'_> {
    /// Reads the bmbt block `fsb`, which must be at `level`; recursion depth ≤ MAX_BMBT_LEVELS
    /// because the level strictly falls.
    fn block(&mut self, fsb: u64, level: u16) -> Result<(), FsError> {
        let what = || format!("inode {} bmbt block {fsb}", self.ino);
        self.blocks += 1;
        if self.blocks > MAX_BMBT_BLOCKS {
            return Err(corrupt(
                what(),
                format!("more than {MAX_BMBT_BLOCKS} bmbt blocks"),
            ));
        }
        let buf = read(
            self.source,
            self.sb.fsb_offset(fsb)?,
            self.sb.block_size as usize,
        )?;
        let hdr = if self.sb.has_crc() {
            if be32(&buf, 0) != BMA3_MAGIC {
                return Err(corrupt(what(), "magic is not BMA3"));
            }
            if !crc_ok(&buf, BMBT_CRC_OFF) {
                return Err(corrupt(what(), "CRC mismatch"));
            }
            if be64(&buf, 24) != self.sb.fsb_daddr(fsb)?
                || be64(&buf, 56) != self.ino
                || buf[40..56] != self.sb.meta_uuid
            {
                return Err(corrupt(
                    what(),
                    "header blkno, owner or uuid does not match",
                ));
            }
            HDR_V5
        } else {
            if be32(&buf, 0) != BMAP_MAGIC {
                return Err(corrupt(what(), "magic is not BMAP"));
            }
            HDR_V4
        };
        if be16(&buf, 4) != level {
            return Err(corrupt(
                what(),
                format!("level {} where {level} was expected", be16(&buf, 4)),
            ));
        }
        let numrecs = usize::from(be16(&buf, 6));
        let maxrecs = (buf.len() - hdr) / 16;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(corrupt(
                what(),
                format!("{numrecs} records out of 1..={maxrecs}"),
            ));
        }
        if level == 0 {
            if self.out.len() as u64 + numrecs as u64 > self.cap {
                return Err(corrupt(
                    what(),
                    "the bmbt holds more extents than di_nextents",
                ));
            }
            let recs = &buf[hdr..hdr + numrecs * 16];
            self.out.extend(recs.chunks_exact(16).map(Extent::decode));
            return Ok(());
        }
        let ptrs = hdr + maxrecs * 8;
        for i in 0..numrecs {
            self.block(be64(&buf, ptrs + i * 8), level - 1)?;
        }
        Ok(())
    }
}

/// The extent mapping file block `lblk`, if any.
pub fn lookup(extents: &[Extent], lblk: u64) -> Option<&Extent> {
    let i = extents.partition_point(|e| e.lblk + e.len <= lblk);
    extents.get(i).filter(|e| e.lblk <= lblk)
}

/// Reads `count` consecutive file blocks from `lblk` (a directory block spanning several
/// file-system blocks). `None` when none is mapped; an error when only some are.
pub fn read_blocks(
    source: &dyn ByteSource,
    sb: &Superblock,
    extents: &[Extent],
    lblk: u64,
    count: u64,
) -> Result<Option<(Vec<u8>, u64)>, FsError> {
    let bs = u64::from(sb.block_size);
    let mut buf = vec![0u8; (count * bs) as usize];
    let mut first_fsb = None;
    let mut mapped = 0;
    let mut b = 0;
    while b < count {
        let Some(e) = lookup(extents, lblk + b) else {
            b += 1;
            continue;
        };
        let skip = lblk + b - e.lblk;
        let run = (e.len - skip).min(count - b);
        let fsb = e.fsb + skip;
        first_fsb.get_or_insert(fsb);
        let dst = &mut buf[(b * bs) as usize..((b + run) * bs) as usize];
        source.read_exact_at(dst, sb.fsb_offset(fsb)?)?;
        mapped += run;
        b += run;
    }
    match (mapped, first_fsb) {
        (0, _) | (_, None) => Ok(None),
        (m, Some(f)) if m == count => Ok(Some((buf, f))),
        _ => Err(corrupt(
            format!("file block {lblk}"),
            "a directory block is only partly mapped",
        )),
    }
}

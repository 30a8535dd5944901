//! XFS symlink targets: inline in the data fork, or remote in extent-mapped blocks (raw on v4,
//! each block with an `XSLM` header, CRC and owner on v5). Layout: XFS Algorithms & Data
//! Structures, "Symbolic Links". The target is returned as bytes and never followed here.

use super::bmap::{Extent, lookup};
use super::disk::{be32, be64, corrupt, crc_ok, read};
use super::inode::{Format, Inode};
use super::superblock::Superblock;
use crate::fs::FsError;
use imgport_image::source::ByteSource;

/// Longest target XFS stores (XFS_SYMLINK_MAXLEN).
pub const MAX_TARGET: u64 = 1024;
const XSLM: u32 = 0x5853_4c4d;
const HDR_V5: usize = 56;
const CRC_OFF: usize = 12;

/// The target of symlink `inode`.
pub fn target(
    source: &dyn ByteSource,
    sb: &Superblock,
    inode: &Inode,
    extents: &[Extent],
) -> Result<Vec<u8>, FsError> {
    let what = || format!("symlink inode {}", inode.ino);
    if inode.size == 0 || inode.size > MAX_TARGET {
        return Err(corrupt(
            what(),
            format!("target length {} is not in 1..={MAX_TARGET}", inode.size),
        ));
    }
    let size = inode.size as usize;
    if inode.format == Format::Local {
        return inode
            .fork
            .get(..size)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt(what(), "inline target passes the data fork"));
    }
    let bs = sb.block_size as usize;
    let hdr = if sb.has_crc() { HDR_V5 } else { 0 };
    let per_block = bs - hdr;
    let mut out = Vec::with_capacity(size);
    let mut lblk = 0u64;
    while out.len() < size {
        let e = lookup(extents, lblk)
            .ok_or_else(|| corrupt(what(), format!("file block {lblk} of the target is a hole")))?;
        let fsb = e.fsb + (lblk - e.lblk);
        let buf = read(source, sb.fsb_offset(fsb)?, bs)?;
        let chunk = per_block.min(size - out.len());
        if sb.has_crc() {
            let bad = |rule: &str| {
                corrupt(
                    format!("symlink inode {} block {fsb}", inode.ino),
                    rule.to_string(),
                )
            };
            if be32(&buf, 0) != XSLM {
                return Err(bad("magic is not XSLM"));
            }
            if !crc_ok(&buf, CRC_OFF) {
                return Err(bad("CRC mismatch"));
            }
            if be32(&buf, 4) as usize != out.len() || be32(&buf, 8) as usize != chunk {
                return Err(bad(
                    "header offset or byte count does not match the target's",
                ));
            }
            if buf[16..32] != sb.meta_uuid
                || be64(&buf, 32) != inode.ino
                || be64(&buf, 40) != sb.fsb_daddr(fsb)?
            {
                return Err(bad("header uuid, owner or blkno does not match"));
            }
        }
        out.extend_from_slice(&buf[hdr..hdr + chunk]);
        lblk += 1;
    }
    Ok(out)
}

//! The XFS superblock (AG 0, sector 0): geometry, feature flags and their validation, and the
//! address arithmetic every other part of the reader uses (file-system block numbers, inode
//! numbers → byte offsets), each bounds-checked against the geometry.
//! Field offsets: XFS Algorithms & Data Structures, "Superblocks" (`struct xfs_dsb`).
//! Owns no I/O beyond the one sector handed to [`Superblock::parse`].

use super::disk::{be16, be32, be64, corrupt, crc_ok};
use crate::fs::FsError;

/// `XFSB`.
pub const SB_MAGIC: u32 = 0x5846_5342;
/// Bytes of the superblock fields we read (the v5 structure ends at 264).
pub const SB_MIN_LEN: usize = 264;
/// Offset of `sb_crc` (v5).
const SB_CRC_OFF: usize = 224;

// sb_versionnum bits (xfs_format.h "XFS_SB_VERSION_*").
const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_BORGBIT: u16 = 0x4000;
const VERSION_MOREBITSBIT: u16 = 0x8000;
// sb_features2 bits used on v4.
const VERSION2_FTYPE: u32 = 0x0000_0200;
const VERSION2_CRCBIT: u32 = 0x0000_0100;

// sb_features_incompat (v5).
const INCOMPAT_FTYPE: u32 = 1 << 0;
const INCOMPAT_SPINODES: u32 = 1 << 1;
const INCOMPAT_META_UUID: u32 = 1 << 2;
const INCOMPAT_BIGTIME: u32 = 1 << 3;
const INCOMPAT_NEEDSREPAIR: u32 = 1 << 4;
const INCOMPAT_NREXT64: u32 = 1 << 5;
const INCOMPAT_EXCHRANGE: u32 = 1 << 6;
const INCOMPAT_PARENT: u32 = 1 << 7;
/// Incompatible features this reader understands: none of them changes the layout of
/// directories, inodes or extent maps in a way we do not decode (NREXT64 is decoded in
/// `inode.rs`; EXCHRANGE only adds log items; PARENT only adds extended attributes).
const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// The decoded, validated superblock.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// 4 or 5.
    pub version: u16,
    pub block_size: u32,
    pub block_log: u8,
    pub dblocks: u64,
    pub ag_blocks: u32,
    pub ag_count: u32,
    pub ag_blk_log: u8,
    pub inode_size: u32,
    pub inode_log: u8,
    pub inop_blog: u8,
    pub root_ino: u64,
    /// First block of the internal log (0 for an external log) and its length in blocks.
    pub log_start: u64,
    pub log_blocks: u32,
    /// Directory block size in bytes (`blocksize << sb_dirblklog`).
    pub dir_block_size: u32,
    /// Directory entries carry a file-type byte.
    pub ftype: bool,
    /// Names compare without ASCII case (`-n version=ci`).
    pub ascii_ci: bool,
    /// Inodes may use the 64-bit extent counters.
    pub nrext64: bool,
    /// The UUID `blkid` prints.
    pub uuid: [u8; 16],
    /// The UUID stamped into v5 metadata blocks (differs from `uuid` with META_UUID).
    pub meta_uuid: [u8; 16],
    /// Volume label (`sb_fname`), NUL-trimmed.
    pub label: Vec<u8>,
    /// Why the volume may not be consistent without log recovery or repair.
    pub dirty: Vec<String>,
}

impl Superblock {
    /// True when `buf` starts with the XFS superblock magic and a version we know.
    pub fn probe(buf: &[u8]) -> bool {
        buf.len() >= 102
            && be32(buf, 0) == SB_MAGIC
            && matches!(be16(buf, 100) & VERSION_NUMBITS, 4 | 5)
    }

    /// Decodes and validates the superblock sector `buf` (at least `sb_sectsize` bytes when the
    /// sector size is known; the caller rereads after learning it). `volume_size` bounds
    /// `sb_dblocks`.
    pub fn parse(buf: &[u8], volume_size: u64) -> Result<Self, FsError> {
        let what = || "superblock".to_string();
        if buf.len() < SB_MIN_LEN {
            return Err(corrupt(what(), "shorter than 264 bytes"));
        }
        if be32(buf, 0) != SB_MAGIC {
            return Err(corrupt(what(), "magic is not XFSB"));
        }
        let versionnum = be16(buf, 100);
        let version = versionnum & VERSION_NUMBITS;
        if !matches!(version, 4 | 5) {
            return Err(FsError::Unsupported {
                fs: "xfs",
                what: format!("superblock version {version}"),
            });
        }
        let sect_size = u32::from(be16(buf, 102));
        let sect_log = buf[121];
        if !(512..=32768).contains(&sect_size)
            || Some(sect_size) != 1u32.checked_shl(sect_log.into())
        {
            return Err(corrupt(
                what(),
                format!("sector size {sect_size} is not 2^sb_sectlog in 512..=32768"),
            ));
        }
        if buf.len() < sect_size as usize {
            return Err(corrupt(what(), "sector shorter than sb_sectsize"));
        }
        let features2 = if versionnum & VERSION_MOREBITSBIT != 0 {
            be32(buf, 200)
        } else {
            0
        };
        let incompat = if version == 5 { be32(buf, 216) } else { 0 };
        let log_incompat = if version == 5 { be32(buf, 220) } else { 0 };
        if version == 5 {
            // xfs_sb_verify: the CRC covers the whole sector with sb_crc taken as zero.
            if !crc_ok(&buf[..sect_size as usize], SB_CRC_OFF) {
                return Err(corrupt(what(), "CRC mismatch"));
            }
            let unknown = incompat & !INCOMPAT_KNOWN;
            if unknown != 0 {
                return Err(FsError::Unsupported {
                    fs: "xfs",
                    what: format!("incompatible feature flags {unknown:#x}"),
                });
            }
        } else {
            if versionnum & VERSION_DIRV2BIT == 0 {
                return Err(FsError::Unsupported {
                    fs: "xfs",
                    what: "version 1 directories".into(),
                });
            }
            if features2 & VERSION2_CRCBIT != 0 {
                return Err(corrupt(what(), "a version 4 superblock claims CRCs"));
            }
        }

        let block_size = be32(buf, 4);
        let block_log = buf[120];
        if !(512..=65536).contains(&block_size)
            || Some(block_size) != 1u32.checked_shl(block_log.into())
        {
            return Err(corrupt(
                what(),
                format!("block size {block_size} is not 2^sb_blocklog in 512..=65536"),
            ));
        }
        if sect_size > block_size {
            return Err(corrupt(what(), "sector size exceeds block size"));
        }
        let inode_size = u32::from(be16(buf, 104));
        let inode_log = buf[122];
        let min_inode = if version == 5 { 512 } else { 256 };
        if !(min_inode..=2048).contains(&inode_size)
            || Some(inode_size) != 1u32.checked_shl(inode_log.into())
            || inode_size > block_size
        {
            return Err(corrupt(
                what(),
                format!(
                    "inode size {inode_size} is not 2^sb_inodelog in {min_inode}..=2048 and at most a block"
                ),
            ));
        }
        let inop_block = u32::from(be16(buf, 106));
        let inop_blog = buf[123];
        if inop_block != block_size / inode_size
            || u32::from(inop_blog) + u32::from(inode_log) != u32::from(block_log)
        {
            return Err(corrupt(
                what(),
                "sb_inopblock/sb_inopblog disagree with the block and inode sizes",
            ));
        }
        let dblocks = be64(buf, 8);
        let ag_blocks = be32(buf, 84);
        let ag_count = be32(buf, 88);
        let ag_blk_log = buf[124];
        if ag_blocks < 16 || ag_count == 0 {
            return Err(corrupt(what(), "sb_agblocks < 16 or sb_agcount = 0"));
        }
        // sb_agblklog is log2 of sb_agblocks rounded up.
        if u64::from(ag_blk_log) >= 32
            || (1u64 << ag_blk_log) < u64::from(ag_blocks)
            || (ag_blk_log > 0 && (1u64 << (ag_blk_log - 1)) >= u64::from(ag_blocks))
        {
            return Err(corrupt(
                what(),
                "sb_agblklog is not the rounded-up log2 of sb_agblocks",
            ));
        }
        let full = u64::from(ag_count) * u64::from(ag_blocks);
        if dblocks == 0 || dblocks > full || dblocks <= full - u64::from(ag_blocks) {
            return Err(corrupt(
                what(),
                "sb_dblocks does not fit sb_agcount × sb_agblocks",
            ));
        }
        match dblocks.checked_mul(u64::from(block_size)) {
            Some(bytes) if bytes <= volume_size => {}
            _ => {
                return Err(corrupt(
                    what(),
                    format!(
                        "{dblocks} blocks of {block_size} bytes pass the end of a {volume_size}-byte volume"
                    ),
                ));
            }
        }
        let dir_blk_log = buf[192];
        let dir_block_size = match 1u32.checked_shl(u32::from(block_log) + u32::from(dir_blk_log)) {
            Some(s) if s <= 65536 => s,
            _ => return Err(corrupt(what(), "directory block size passes 64 KiB")),
        };
        if u32::from(ag_blk_log) + u32::from(inop_blog) > 32 {
            return Err(corrupt(
                what(),
                "inode numbers within an AG need more than 32 bits",
            ));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&buf[32..48]);
        let mut meta_uuid = uuid;
        if incompat & INCOMPAT_META_UUID != 0 {
            meta_uuid.copy_from_slice(&buf[248..264]);
        }
        let mut label = buf[108..120].to_vec();
        if let Some(end) = label.iter().position(|&b| b == 0) {
            label.truncate(end);
        }
        let mut dirty = Vec::new();
        if buf[126] != 0 {
            dirty.push("sb_inprogress is set: mkfs did not finish".to_string());
        }
        if incompat & INCOMPAT_NEEDSREPAIR != 0 {
            dirty.push(
                "the needsrepair feature is set: xfs_repair must run before mounting".to_string(),
            );
        }
        if log_incompat != 0 {
            dirty.push(format!("log incompatible features {log_incompat:#x} are set: the log was not cleanly emptied"));
        }
        let sb = Self {
            version,
            block_size,
            block_log,
            dblocks,
            ag_blocks,
            ag_count,
            ag_blk_log,
            inode_size,
            inode_log,
            inop_blog,
            root_ino: be64(buf, 56),
            log_start: be64(buf, 48),
            log_blocks: be32(buf, 96),
            dir_block_size,
            ftype: if version == 5 {
                incompat & INCOMPAT_FTYPE != 0
            } else {
                features2 & VERSION2_FTYPE != 0
            },
            ascii_ci: versionnum & VERSION_BORGBIT != 0,
            nrext64: incompat & INCOMPAT_NREXT64 != 0,
            uuid,
            meta_uuid,
            label,
            dirty,
        };
        sb.ino_offset(sb.root_ino).map_err(|_| {
            corrupt(
                what(),
                format!("root inode {} lies outside the file system", sb.root_ino),
            )
        })?;
        Ok(sb)
    }

    /// True for v5 (CRC-protected metadata with self-describing headers).
    pub fn has_crc(&self) -> bool {
        self.version == 5
    }

    /// Byte offset of file-system block `fsbno` (AG number in the high bits, AG block in the
    /// low `sb_agblklog` bits), refused unless it lies inside its AG and the file system.
    pub fn fsb_offset(&self, fsbno: u64) -> Result<u64, FsError> {
        let agno = fsbno >> self.ag_blk_log;
        let agbno = fsbno & ((1u64 << self.ag_blk_log) - 1);
        let bad = || {
            corrupt(
                format!("block {fsbno}"),
                "lies outside its allocation group or the file system",
            )
        };
        if agno >= u64::from(self.ag_count) || agbno >= u64::from(self.ag_blocks) {
            return Err(bad());
        }
        let linear = agno * u64::from(self.ag_blocks) + agbno;
        if linear >= self.dblocks {
            return Err(bad());
        }
        Ok(linear << self.block_log)
    }

    /// Checks that a run of `count` blocks from `fsbno` stays inside one AG and the file system.
    pub fn check_run(&self, fsbno: u64, count: u64) -> Result<(), FsError> {
        let last = count.checked_sub(1).and_then(|c| fsbno.checked_add(c));
        let ok = match last {
            Some(last) => {
                self.fsb_offset(fsbno).is_ok()
                    && self.fsb_offset(last).is_ok()
                    && fsbno >> self.ag_blk_log == last >> self.ag_blk_log
            }
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(corrupt(
                format!("extent of {count} blocks at block {fsbno}"),
                "does not lie inside one allocation group",
            ))
        }
    }

    /// Byte offset of inode `ino`: AG number, then AG block, then index within the block.
    pub fn ino_offset(&self, ino: u64) -> Result<u64, FsError> {
        let agino_bits = u32::from(self.ag_blk_log) + u32::from(self.inop_blog);
        let agno = ino.checked_shr(agino_bits).unwrap_or(0);
        let agino = ino & ((1u64 << agino_bits) - 1);
        let agbno = agino >> self.inop_blog;
        let index = agino & ((1u64 << self.inop_blog) - 1);
        if ino == 0 || agno >= u64::from(self.ag_count) {
            return Err(corrupt(
                format!("inode {ino}"),
                "lies outside the file system",
            ));
        }
        let fsbno = (agno << self.ag_blk_log) | agbno;
        let block = self
            .fsb_offset(fsbno)
            .map_err(|_| corrupt(format!("inode {ino}"), "lies outside its allocation group"))?;
        Ok(block + (index << self.inode_log))
    }

    /// Disk address in 512-byte units of block `fsbno`, as v5 headers record it.
    pub fn fsb_daddr(&self, fsbno: u64) -> Result<u64, FsError> {
        Ok(self.fsb_offset(fsbno)? >> 9)
    }
}

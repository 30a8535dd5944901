//! XFS inode cores (v1/v2 on v4 file systems, v3 on v5): magic, version, CRC, self-identity,
//! mode and the data fork (local bytes, extent records or a bmbt root). Attribute forks are
//! ignored. Field offsets: XFS Algorithms & Data Structures, "On-disk Inode" (`xfs_dinode`).
//! Owns no directory, extent-map or file-data decoding (see `dir`, `bmap`, `symlink`).

use super::disk::{be16, be32, be64, corrupt, crc_ok, read};
use super::superblock::Superblock;
use crate::fs::{FsError, NodeKind};
use imgport_image::source::ByteSource;

/// `IN`.
const INODE_MAGIC: u16 = 0x494e;
/// Core sizes: versions 1 and 2, and version 3.
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
const CRC_OFF: usize = 100;
/// di_flags: the file's data lives on the realtime device.
const DIFLAG_REALTIME: u16 = 0x1;
/// di_flags2: the extent counters are the 64-bit ones.
const DIFLAG2_NREXT64: u64 = 1 << 4;

/// Data-fork formats (`xfs_dinode_fmt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dev,
    Local,
    Extents,
    Btree,
}

/// One decoded inode: what the reader needs of it.
#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u64,
    pub kind: NodeKind,
    pub format: Format,
    pub size: u64,
    /// Number of data-fork extents the inode claims.
    pub nextents: u64,
    pub realtime: bool,
    /// The data fork's bytes inside the inode (literal area up to the attribute fork).
    pub fork: Vec<u8>,
}

impl Inode {
    /// Reads and validates inode `ino`.
    pub fn read(source: &dyn ByteSource, sb: &Superblock, ino: u64) -> Result<Self, FsError> {
        let offset = sb.ino_offset(ino)?;
        let buf = read(source, offset, sb.inode_size as usize)?;
        Self::parse(&buf, sb, ino)
    }

    /// Decodes inode `ino` from its `sb_inodesize` bytes.
    pub fn parse(buf: &[u8], sb: &Superblock, ino: u64) -> Result<Self, FsError> {
        let what = || format!("inode {ino}");
        if buf.len() != sb.inode_size as usize {
            return Err(corrupt(what(), "buffer is not one inode long"));
        }
        if be16(buf, 0) != INODE_MAGIC {
            return Err(corrupt(what(), "magic is not IN"));
        }
        let version = buf[4];
        let core = match (sb.has_crc(), version) {
            (true, 3) => CORE_V3,
            (false, 1 | 2) => CORE_V2,
            _ => {
                return Err(corrupt(
                    what(),
                    format!(
                        "version {version} does not match superblock version {}",
                        sb.version
                    ),
                ));
            }
        };
        if version == 3 {
            if !crc_ok(buf, CRC_OFF) {
                return Err(corrupt(what(), "CRC mismatch"));
            }
            if be64(buf, 152) != ino {
                return Err(corrupt(what(), format!("di_ino says {}", be64(buf, 152))));
            }
            if buf[160..176] != sb.meta_uuid {
                return Err(corrupt(what(), "di_uuid is not the file system's"));
            }
        }
        let mode = be16(buf, 2);
        let kind = match mode & 0o170000 {
            0 => return Err(corrupt(what(), "mode is zero: the inode is free")),
            0o100000 => NodeKind::File,
            0o040000 => NodeKind::Dir,
            0o120000 => NodeKind::Symlink,
            0o020000 | 0o060000 | 0o010000 | 0o140000 => NodeKind::Other,
            t => {
                return Err(corrupt(
                    what(),
                    format!("file type {t:#o} in di_mode is unknown"),
                ));
            }
        };
        let format = match (buf[5], kind) {
            (0, NodeKind::Other) => Format::Dev,
            (1, NodeKind::Dir | NodeKind::Symlink) => Format::Local,
            (2, NodeKind::Dir | NodeKind::File | NodeKind::Symlink) => Format::Extents,
            (3, NodeKind::Dir | NodeKind::File) => Format::Btree,
            (f, k) => {
                return Err(corrupt(
                    what(),
                    format!("data fork format {f} is not valid for a {k:?}"),
                ));
            }
        };
        let size = be64(buf, 56);
        if size > i64::MAX as u64 {
            return Err(corrupt(what(), "di_size is negative"));
        }
        let flags2 = if version == 3 { be64(buf, 120) } else { 0 };
        let nextents = if sb.nrext64 && flags2 & DIFLAG2_NREXT64 != 0 {
            be64(buf, 24)
        } else {
            u64::from(be32(buf, 76))
        };
        let forkoff = usize::from(buf[82]) * 8;
        let literal = buf.len() - core;
        let fork_len = if forkoff == 0 {
            literal
        } else if forkoff < literal {
            forkoff
        } else {
            return Err(corrupt(what(), "di_forkoff passes the end of the inode"));
        };
        Ok(Self {
            ino,
            kind,
            format,
            size,
            nextents,
            realtime: be16(buf, 90) & DIFLAG_REALTIME != 0,
            fork: buf[core..core + fork_len].to_vec(),
        })
    }
}

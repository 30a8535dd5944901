//! XFS version 2/3 directories: short-form (in the inode) and the data blocks that block,
//! leaf, node and btree-format directories all keep below the 32 GiB leaf offset. Listing and
//! lookup read the data blocks only; the hash-ordered leaf and free-index blocks are not
//! needed to find every entry. Layout: XFS Algorithms & Data Structures, "Directories".
//! Owns no path walking (that is `mod.rs`) and no file-type decisions beyond `ftype`.

use super::bmap::{Extent, read_blocks};
use super::disk::{be16, be32, be64, corrupt, crc_ok};
use super::inode::{Format, Inode};
use super::superblock::Superblock;
use crate::fs::{FsError, NodeKind};
use imgport_image::source::ByteSource;

/// Most entries one directory may hold here.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Most name bytes one directory may hold here.
pub const MAX_DIR_NAME_BYTES: usize = 64 << 20;
/// Data blocks live below this byte offset of the directory (XFS_DIR2_LEAF_OFFSET).
const LEAF_OFFSET: u64 = 32 << 30;
/// Most directory data bytes read for one directory.
const MAX_DIR_DATA_BYTES: u64 = 1 << 30;
const XD2B: u32 = 0x5844_3242;
const XD2D: u32 = 0x5844_3244;
const XDB3: u32 = 0x5844_4233;
const XDD3: u32 = 0x5844_4433;
const DATA_HDR_V4: usize = 16;
const DATA_HDR_V5: usize = 64;
const DATA_CRC_OFF: usize = 4;
const FREE_TAG: u16 = 0xffff;

/// One raw directory entry: name, inode number and the `ftype` byte (0 when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub ftype: u8,
}

impl Entry {
    /// The kind the `ftype` byte says, when it says one (XFS_DIR3_FT_*).
    pub fn kind(&self) -> Option<NodeKind> {
        match self.ftype {
            1 => Some(NodeKind::File),
            2 => Some(NodeKind::Dir),
            3..=6 => Some(NodeKind::Other),
            7 => Some(NodeKind::Symlink),
            _ => None,
        }
    }
}

struct Sink {
    ino: u64,
    entries: Vec<Entry>,
    name_bytes: usize,
}

impl Sink {
    fn push(&mut self, name: &[u8], ino: u64, ftype: u8) -> Result<(), FsError> {
        if name == b"." || name == b".." {
            return Ok(());
        }
        if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
            return Err(corrupt(
                format!("directory inode {}", self.ino),
                "an entry name is empty or holds '/' or NUL",
            ));
        }
        if ftype > 7 {
            return Err(corrupt(
                format!("directory inode {}", self.ino),
                format!("entry ftype {ftype} is unknown"),
            ));
        }
        self.name_bytes += name.len();
        if self.entries.len() >= MAX_DIR_ENTRIES || self.name_bytes > MAX_DIR_NAME_BYTES {
            return Err(corrupt(
                format!("directory inode {}", self.ino),
                format!("more than {MAX_DIR_ENTRIES} entries or {MAX_DIR_NAME_BYTES} name bytes"),
            ));
        }
        self.entries.push(Entry {
            name: name.to_vec(),
            ino,
            ftype,
        });
        Ok(())
    }
}

/// Every entry of directory `inode` except `.` and `..`, in on-disk order.
pub fn entries(
    source: &dyn ByteSource,
    sb: &Superblock,
    inode: &Inode,
    extents: &[Extent],
) -> Result<Vec<Entry>, FsError> {
    let mut sink = Sink {
        ino: inode.ino,
        entries: Vec::new(),
        name_bytes: 0,
    };
    match inode.format {
        Format::Local => shortform(sb, inode, &mut sink)?,
        Format::Extents | Format::Btree => blocks(source, sb, inode, extents, &mut sink)?,
        Format::Dev => {
            return Err(corrupt(
                format!("directory inode {}", inode.ino),
                "has a device fork",
            ));
        }
    }
    Ok(sink.entries)
}

/// Short-form layout: count, i8count, parent (4 or 8 bytes), then entries of namelen,
/// 2-byte offset, name, optional ftype, inode number (4 or 8 bytes).
fn shortform(sb: &Superblock, inode: &Inode, sink: &mut Sink) -> Result<(), FsError> {
    let what = || format!("short-form directory inode {}", inode.ino);
    let size = usize::try_from(inode.size).unwrap_or(usize::MAX);
    if size > inode.fork.len() || size < 6 {
        return Err(corrupt(what(), "di_size does not fit the data fork"));
    }
    let d = &inode.fork[..size];
    let count = usize::from(d[0]);
    let wide = d[1] != 0;
    let ino_len = if wide { 8 } else { 4 };
    let ft = usize::from(sb.ftype);
    let mut pos = 2 + ino_len;
    for _ in 0..count {
        let namelen = usize::from(
            *d.get(pos)
                .ok_or_else(|| corrupt(what(), "entries pass di_size"))?,
        );
        let name_at = pos + 3;
        let ino_at = name_at + namelen + ft;
        let end = ino_at + ino_len;
        if namelen == 0 || end > d.len() {
            return Err(corrupt(what(), "an entry is empty or passes di_size"));
        }
        let ino = if wide {
            be64(d, ino_at)
        } else {
            u64::from(be32(d, ino_at))
        };
        let ftype = if ft == 1 { d[name_at + namelen] } else { 0 };
        sink.push(&d[name_at..name_at + namelen], ino, ftype)?;
        pos = end;
    }
    Ok(())
}

fn blocks(
    source: &dyn ByteSource,
    sb: &Superblock,
    inode: &Inode,
    extents: &[Extent],
    sink: &mut Sink,
) -> Result<(), FsError> {
    let fsbs = u64::from(sb.dir_block_size / sb.block_size);
    // di_size of a block/leaf/node directory is the size of its data section.
    if inode.size > LEAF_OFFSET {
        return Err(corrupt(
            format!("directory inode {}", inode.ino),
            "di_size passes the leaf offset",
        ));
    }
    let leaf_lblk = inode.size.div_ceil(u64::from(sb.dir_block_size)) * fsbs;
    let mut budget = MAX_DIR_DATA_BYTES / u64::from(sb.dir_block_size);
    let mut next_db = 0u64;
    for e in extents {
        if e.lblk >= leaf_lblk {
            break;
        }
        let end = (e.lblk + e.len).min(leaf_lblk);
        let mut db = (e.lblk / fsbs).max(next_db);
        while db * fsbs < end {
            if let Some((buf, fsb)) = read_blocks(source, sb, extents, db * fsbs, fsbs)? {
                budget = budget.checked_sub(1).ok_or_else(|| {
                    corrupt(
                        format!("directory inode {}", inode.ino),
                        format!("more than {MAX_DIR_DATA_BYTES} bytes of data blocks"),
                    )
                })?;
                data_block(sb, inode, db, &buf, fsb, sink)?;
            }
            db += 1;
        }
        next_db = db;
    }
    Ok(())
}

/// One directory data block (block-form `XD2B`/`XDB3` or data `XD2D`/`XDD3`).
fn data_block(
    sb: &Superblock,
    inode: &Inode,
    db: u64,
    buf: &[u8],
    fsb: u64,
    sink: &mut Sink,
) -> Result<(), FsError> {
    let what = || format!("directory inode {} data block {db}", inode.ino);
    let magic = be32(buf, 0);
    let (single, hdr) = match (sb.has_crc(), magic) {
        (false, XD2B) => (true, DATA_HDR_V4),
        (false, XD2D) => (false, DATA_HDR_V4),
        (true, XDB3) => (true, DATA_HDR_V5),
        (true, XDD3) => (false, DATA_HDR_V5),
        _ => {
            return Err(corrupt(
                what(),
                format!("magic {magic:#010x} is not a directory data block's"),
            ));
        }
    };
    if single && db != 0 {
        return Err(corrupt(
            what(),
            "a block-form header past the first directory block",
        ));
    }
    if sb.has_crc() {
        if !crc_ok(buf, DATA_CRC_OFF) {
            return Err(corrupt(what(), "CRC mismatch"));
        }
        if be64(buf, 8) != sb.fsb_daddr(fsb)?
            || be64(buf, 40) != inode.ino
            || buf[24..40] != sb.meta_uuid
        {
            return Err(corrupt(
                what(),
                "header blkno, owner or uuid does not match",
            ));
        }
    }
    // A block-form directory keeps its leaf array and an 8-byte tail at the end.
    let end = if single {
        let count = u64::from(be32(buf, buf.len() - 8));
        let leaf = count.checked_mul(8).and_then(|l| l.checked_add(8));
        match leaf {
            Some(l) if l <= (buf.len() - hdr) as u64 => buf.len() - l as usize,
            _ => return Err(corrupt(what(), "block tail leaf count passes the block")),
        }
    } else {
        buf.len()
    };
    let ft = usize::from(sb.ftype);
    let mut pos = hdr;
    while pos < end {
        if end - pos < 8 {
            return Err(corrupt(
                what(),
                format!("entry at {pos} runs past the data area"),
            ));
        }
        if be16(buf, pos) == FREE_TAG {
            let len = usize::from(be16(buf, pos + 2));
            if len < 8
                || len % 8 != 0
                || len > end - pos
                || usize::from(be16(buf, pos + len - 2)) != pos
            {
                return Err(corrupt(
                    what(),
                    format!("free space at {pos} has a bad length or tag"),
                ));
            }
            pos += len;
            continue;
        }
        let namelen = usize::from(buf.get(pos + 8).copied().unwrap_or(0));
        let len = (8 + 1 + namelen + ft + 2).div_ceil(8) * 8;
        if namelen == 0 || len > end - pos || usize::from(be16(buf, pos + len - 2)) != pos {
            return Err(corrupt(
                what(),
                format!("entry at {pos} has a bad name length or tag"),
            ));
        }
        let name = &buf[pos + 9..pos + 9 + namelen];
        let ftype = if ft == 1 { buf[pos + 9 + namelen] } else { 0 };
        sink.push(name, be64(buf, pos), ftype)?;
        pos += len;
    }
    Ok(())
}

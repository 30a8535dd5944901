//! Read-only XFS (v4 and v5) in userspace: superblock, inodes, extent maps and bmbt trees,
//! every directory format, symlinks and file data with holes, behind
//! [`FileSystem`](crate::fs::FileSystem). Paths are walked by name from the root
//! inode; symlinks are never followed here (the resolver does that).
//! Owns only XFS decoding; never writes, never replays the log (a dirty state is reported by
//! [`XfsFs::dirty_reasons`], from the superblock flags and the log's last record).
//! Reference: XFS Algorithms & Data Structures (kernel docs).

mod bmap;
mod dir;
mod disk;
mod inode;
mod log;
mod superblock;
mod symlink;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use self::bmap::Extent;
use self::dir::Entry;
use self::disk::{corrupt, read};
use self::inode::Inode;
use self::superblock::Superblock;
use crate::fs::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};
use imgport_image::source::ByteSource;

/// Most directory entries, and name bytes, kept in the listing cache over all directories.
const MAX_CACHED_ENTRIES: usize = 1 << 18;
const MAX_CACHED_NAME_BYTES: usize = 16 << 20;
/// Most path components walked for one path.
const MAX_COMPONENTS: usize = 4096;

/// An opened XFS volume.
pub struct XfsFs {
    source: Arc<dyn ByteSource>,
    sb: Superblock,
    dirs: Mutex<DirCache>,
    /// Extent list of the file read last (read_at is called chunk by chunk).
    last_file: Mutex<Option<(u64, Arc<Vec<Extent>>)>>,
}

#[derive(Default)]
struct DirCache {
    map: HashMap<u64, Arc<Dir>>,
    entries: usize,
    name_bytes: usize,
}

/// A directory's entries with an index sorted by name, for lookups by binary search.
struct Dir {
    entries: Vec<Entry>,
    by_name: Vec<u32>,
}

impl Dir {
    fn new(entries: Vec<Entry>, ci: bool) -> Self {
        let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| {
            cmp_names(&entries[a as usize].name, &entries[b as usize].name, ci)
        });
        Self { entries, by_name }
    }

    fn find(&self, name: &[u8], ci: bool) -> Option<&Entry> {
        let i = self
            .by_name
            .binary_search_by(|&i| cmp_names(&self.entries[i as usize].name, name, ci))
            .ok()?;
        self.entries.get(self.by_name[i] as usize)
    }
}

/// Name order of the index: bytes, or ASCII-case-folded bytes on `-n version=ci` volumes.
fn cmp_names(a: &[u8], b: &[u8], ci: bool) -> std::cmp::Ordering {
    if ci {
        a.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.iter().map(u8::to_ascii_lowercase))
    } else {
        a.cmp(b)
    }
}

/// True when `first_block` (the volume's first bytes, at least 512) holds an XFS superblock.
pub fn probe(first_block: &[u8]) -> bool {
    Superblock::probe(first_block)
}

/// Opens the XFS volume in `source`: reads and validates the superblock and the root inode.
/// Unknown incompatible features are `FsError::Unsupported`.
pub fn open(source: Arc<dyn ByteSource>) -> Result<XfsFs, FsError> {
    let size = source.size();
    let head = read(source.as_ref(), 0, 512.min(size as usize))?;
    if !Superblock::probe(&head) {
        return Err(corrupt(
            "superblock",
            "magic is not XFSB or the version is not 4 or 5",
        ));
    }
    // sb_sectsize (at 102) lies past what the probe looks at.
    let Some(&[hi, lo]) = head.get(102..104) else {
        return Err(corrupt(
            "superblock",
            format!("a volume of {size} bytes is too small to hold one"),
        ));
    };
    let sect = usize::from(u16::from_be_bytes([hi, lo]));
    let buf = if (513..=32768).contains(&sect) && sect as u64 <= size {
        read(source.as_ref(), 0, sect)?
    } else {
        head
    };
    let mut sb = Superblock::parse(&buf, size)?;
    if let Some(why) = log::unclean(source.as_ref(), &sb) {
        sb.dirty.push(why);
    }
    let fs = XfsFs {
        source,
        sb,
        dirs: Mutex::default(),
        last_file: Mutex::default(),
    };
    let root = fs.inode(fs.sb.root_ino)?;
    if root.kind != NodeKind::Dir {
        return Err(corrupt(
            format!("root inode {}", root.ino),
            "is not a directory",
        ));
    }
    fs.entries(&root)?;
    Ok(fs)
}

impl XfsFs {
    /// True when the volume may need log recovery or repair before its contents are trusted.
    pub fn dirty(&self) -> bool {
        !self.sb.dirty.is_empty()
    }

    /// Why [`dirty`](Self::dirty) is true, one sentence each: needsrepair, unfinished mkfs,
    /// log incompatible flags, or an internal log that does not end with an unmount record.
    pub fn dirty_reasons(&self) -> &[String] {
        &self.sb.dirty
    }

    /// Superblock version: 4 (no metadata CRCs) or 5.
    pub fn version(&self) -> u16 {
        self.sb.version
    }

    /// File-system block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    fn inode(&self, ino: u64) -> Result<Inode, FsError> {
        Inode::read(self.source.as_ref(), &self.sb, ino)
    }

    fn extents(&self, inode: &Inode) -> Result<Vec<Extent>, FsError> {
        bmap::extents(self.source.as_ref(), &self.sb, inode)
    }

    fn entries(&self, inode: &Inode) -> Result<Arc<Dir>, FsError> {
        if let Some(hit) = self.dir_cache().map.get(&inode.ino) {
            return Ok(hit.clone());
        }
        let extents = self.extents(inode)?;
        let list = dir::entries(self.source.as_ref(), &self.sb, inode, &extents)?;
        let list = Arc::new(Dir::new(list, self.sb.ascii_ci));
        let n = list.entries.len();
        let bytes: usize = list.entries.iter().map(|e| e.name.len()).sum();
        if n <= MAX_CACHED_ENTRIES && bytes <= MAX_CACHED_NAME_BYTES {
            let mut cache = self.dir_cache();
            if cache.entries + n > MAX_CACHED_ENTRIES
                || cache.name_bytes + bytes > MAX_CACHED_NAME_BYTES
            {
                *cache = DirCache::default();
            }
            cache.entries += n;
            cache.name_bytes += bytes;
            cache.map.insert(inode.ino, list.clone());
        }
        Ok(list)
    }

    fn dir_cache(&self) -> std::sync::MutexGuard<'_, DirCache> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The inode at `path`, `None` when a component is missing or not a directory.
    fn walk(&self, path: &[u8]) -> Result<Option<Inode>, FsError> {
        let shown = || String::from_utf8_lossy(path).into_owned();
        if path.first() != Some(&b'/') {
            return Err(FsError::Path {
                path: shown(),
                rule: "path must be absolute".into(),
            });
        }
        let mut node = self.inode(self.sb.root_ino)?;
        for (i, name) in path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .enumerate()
        {
            if i >= MAX_COMPONENTS {
                return Err(FsError::Path {
                    path: shown(),
                    rule: format!("more than {MAX_COMPONENTS} components"),
                });
            }
            if name == b"." || name == b".." {
                return Err(FsError::Path {
                    path: shown(),
                    rule: "path must not hold . or .. components".into(),
                });
            }
            if node.kind != NodeKind::Dir {
                return Ok(None);
            }
            let dir = self.entries(&node)?;
            let Some(e) = dir.find(name, self.sb.ascii_ci) else {
                return Ok(None);
            };
            let child = self.inode(e.ino)?;
            if let Some(k) = e.kind()
                && k != child.kind
            {
                return Err(corrupt(
                    format!(
                        "directory inode {} entry {}",
                        node.ino,
                        String::from_utf8_lossy(name)
                    ),
                    format!(
                        "ftype says {k:?} but inode {} is a {:?}",
                        child.ino, child.kind
                    ),
                ));
            }
            node = child;
        }
        Ok(Some(node))
    }

    fn walk_kind(&self, path: &[u8], kind: NodeKind) -> Result<Inode, FsError> {
        let shown = || String::from_utf8_lossy(path).into_owned();
        match self.walk(path)? {
            Some(n) if n.kind == kind => Ok(n),
            Some(n) => Err(FsError::Path {
                path: shown(),
                rule: format!("is a {:?}, not a {kind:?}", n.kind),
            }),
            None => Err(FsError::Path {
                path: shown(),
                rule: "no such file or directory".into(),
            }),
        }
    }

    fn file_extents(&self, inode: &Inode) -> Result<Arc<Vec<Extent>>, FsError> {
        let mut last = self.last_file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ino, ext)) = last.as_ref()
            && *ino == inode.ino
        {
            return Ok(ext.clone());
        }
        let ext = Arc::new(self.extents(inode)?);
        *last = Some((inode.ino, ext.clone()));
        Ok(ext)
    }
}

impl FileSystem for XfsFs {
    fn kind(&self) -> &'static str {
        "xfs"
    }

    fn dirty(&self) -> Option<Vec<String>> {
        self.dirty().then(|| self.dirty_reasons().to_vec())
    }

    fn label(&self) -> Option<String> {
        (!self.sb.label.is_empty()).then(|| String::from_utf8_lossy(&self.sb.label).into_owned())
    }

    fn uuid(&self) -> Option<String> {
        let u = &self.sb.uuid;
        let hex = |r: std::ops::Range<usize>| hex::encode(&u[r]);
        Some(format!(
            "{}-{}-{}-{}-{}",
            hex(0..4),
            hex(4..6),
            hex(6..8),
            hex(8..10),
            hex(10..16)
        ))
    }

    fn case_insensitive(&self) -> bool {
        self.sb.ascii_ci
    }

    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.walk(path)?.map(|n| NodeInfo {
            kind: n.kind,
            size: n.size,
        }))
    }

    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        let node = self.walk_kind(path, NodeKind::Symlink)?;
        let extents = self.extents(&node)?;
        symlink::target(self.source.as_ref(), &self.sb, &node, &extents)
    }

    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let node = self.walk_kind(path, NodeKind::Dir)?;
        let dir = self.entries(&node)?;
        dir.entries
            .iter()
            .map(|e| {
                let kind = match e.kind() {
                    Some(k) => k,
                    None => self.inode(e.ino)?.kind,
                };
                Ok(DirEntry {
                    name: e.name.clone(),
                    kind,
                })
            })
            .collect()
    }

    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let node = self.walk_kind(path, NodeKind::File)?;
        if node.realtime {
            return Err(FsError::Unsupported {
                fs: "xfs",
                what: format!("realtime file data (inode {})", node.ino),
            });
        }
        if offset >= node.size || buf.is_empty() {
            return Ok(0);
        }
        let len = (node.size - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..len];
        let extents = self.file_extents(&node)?;
        let bs = u64::from(self.sb.block_size);
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let lblk = pos / bs;
            let in_block = pos % bs;
            let dst = &mut buf[done..];
            let n = match bmap::lookup(&extents, lblk) {
                Some(e) => {
                    let avail = ((e.lblk + e.len - lblk).saturating_mul(bs)) - in_block;
                    let n = avail.min(dst.len() as u64) as usize;
                    if e.unwritten {
                        dst[..n].fill(0);
                    } else {
                        let at = self.sb.fsb_offset(e.fsb + (lblk - e.lblk))? + in_block;
                        self.source.read_exact_at(&mut dst[..n], at)?;
                    }
                    n
                }
                None => {
                    // A hole: zeros up to the next extent.
                    let next = extents.partition_point(|e| e.lblk <= lblk);
                    let until = extents
                        .get(next)
                        .map_or(u64::MAX, |e| e.lblk.saturating_mul(bs));
                    let n = (until - pos).min(dst.len() as u64) as usize;
                    dst[..n].fill(0);
                    n
                }
            };
            done += n;
        }
        Ok(len)
    }
}

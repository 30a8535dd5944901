//! Btrfs, read-only, single device: the superblock's system chunks and the chunk tree map
//! logical to physical addresses; the root tree leads to the default subvolume (the `default`
//! entry of the root directory, else FS_TREE); directories are read from DIR_INDEX items,
//! files from EXTENT_DATA items (inline, regular, zlib and zstd compressed; LZO is not read).
//! Subvolumes met inside a path are crossed. Checksums are not verified; every offset,
//! count and size is bounded instead.
//!
//! Kept whole: one read-only reader (superblock, chunk map, tree walk, items) whose parts share the
//! tree walk.

use imgport_base::bytes::{get_le16 as le16, get_le32 as le32, get_le64 as le64};
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};

use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};
use imgport_image::source::ByteSource;

const SUPER_AT: u64 = 0x10000;
const MAGIC: &[u8; 8] = b"_BHRfS_M";
const HEADER: usize = 101;
const ITEM: usize = 25;
const KEY_PTR: usize = 33;
/// Deepest tree accepted (btrfs trees have at most 8 levels).
const MAX_LEVEL: u8 = 7;
/// Most items gathered by one range scan.
const MAX_ITEMS: usize = 200_000;
/// Most tree nodes read by one range scan (a bound against hostile trees whose pointers
/// repeat a subtree).
const MAX_NODES: usize = 20_000;
/// Largest uncompressed size of one compressed extent (BTRFS_MAX_UNCOMPRESSED, 128 KiB).
const MAX_UNCOMPRESSED: u64 = 128 * 1024;
/// Most subvolume crossings in one path.
const MAX_CROSSINGS: usize = 16;
/// Bytes of tree nodes kept in memory. Every path lookup walks the trees from their roots,
/// so without a cache the same few nodes are read from the disk again and again (listing a
/// module directory of thousands of entries reads each entry's inode from the root down).
const NODE_CACHE_BYTES: usize = 16 * 1024 * 1024;

const INODE_ITEM: u8 = 1;
const DIR_INDEX: u8 = 96;
const EXTENT_DATA: u8 = 108;
const ROOT_ITEM: u8 = 132;
const DIR_ITEM: u8 = 84;
const CHUNK_ITEM: u8 = 228;
const FS_TREE: u64 = 5;
const FIRST_FREE_INODE: u64 = 256;

/// A key: (objectid, type, offset), ordered in that order.
type Key = (u64, u8, u64);
/// A tree root: (logical address, level).
type Tree = (u64, u8);
/// What a path lookup finds: its tree, inode, mode and size.
type Found = (Tree, u64, u32, u64);

fn key_at(b: &[u8], at: usize) -> Option<Key> {
    Some((le64(b, at)?, *b.get(at + 8)?, le64(b, at + 9)?))
}

fn bad(what: impl Into<String>, rule: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: "btrfs",
        what: what.into(),
        rule: rule.into(),
    }
}

/// One range scan in progress: the key range, what it found, and how many nodes it read.
struct Scan {
    lo: Key,
    hi: Key,
    out: Vec<(Key, Vec<u8>)>,
    nodes: usize,
}

/// A chunk: logical `[logical, logical + len)` is physical from `physical`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    logical: u64,
    len: u64,
    physical: u64,
}

/// Tree nodes read so far, by logical address, the oldest evicted first once
/// [`NODE_CACHE_BYTES`] is reached. Nodes never change on a read-only volume.
#[derive(Default)]
struct NodeCache {
    nodes: HashMap<u64, Arc<Vec<u8>>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl NodeCache {
    fn insert(&mut self, bytenr: u64, node: Arc<Vec<u8>>) {
        while self.bytes + node.len() > NODE_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(n) = self.nodes.remove(&old) {
                self.bytes -= n.len();
            }
        }
        self.bytes += node.len();
        self.order.push_back(bytenr);
        self.nodes.insert(bytenr, node);
    }
}

/// A btrfs volume opened read-only.
pub struct BtrfsFs {
    dev: Arc<dyn ByteSource>,
    cache: Mutex<NodeCache>,
    nodesize: u32,
    chunks: Vec<Chunk>,
    /// (bytenr, level) of the root tree.
    root_tree: (u64, u8),
    /// The default subvolume's tree and its root directory inode.
    default: (u64, u8, u64),
    label: Option<String>,
    uuid: String,
}

fn parse_chunk(b: &[u8], at: usize, logical: u64) -> Option<(Chunk, usize)> {
    let len = le64(b, at)?;
    let ctype = le64(b, at + 24)?;
    let stripes = le16(b, at + 44)? as usize;
    if stripes == 0 {
        return None;
    }
    // Profiles that spread data over stripes (RAID0/10/5/6) cannot be read from stripe 0.
    if ctype & (0x8 | 0x40 | 0x80 | 0x100) != 0 {
        return None;
    }
    let physical = le64(b, at + 48 + 8)?;
    Some((
        Chunk {
            logical,
            len,
            physical,
        },
        48 + stripes * 32,
    ))
}

impl BtrfsFs {
    /// Opens the btrfs volume on `dev`.
    pub fn open(dev: Arc<dyn ByteSource>) -> Result<Self, FsError> {
        let mut sb = vec![0u8; 4096];
        dev.read_exact_at(&mut sb, SUPER_AT)?;
        if &sb[0x40..0x48] != MAGIC {
            return Err(bad("superblock", "no _BHRfS_M magic"));
        }
        let num_devices = le64(&sb, 0x88).unwrap_or(0);
        if num_devices != 1 {
            return Err(FsError::Unsupported {
                fs: "btrfs",
                what: format!("a volume of {num_devices} devices"),
            });
        }
        let nodesize = le32(&sb, 0x94).unwrap_or(0);
        if !(4096..=65536).contains(&nodesize) || !nodesize.is_power_of_two() {
            return Err(bad("superblock", format!("node size {nodesize}")));
        }
        let sys_len = (le32(&sb, 0xa0).unwrap_or(0) as usize).min(2048);
        let sys = &sb[0x32b..0x32b + sys_len];
        let mut chunks = Vec::new();
        let mut at = 0;
        while at + 17 <= sys.len() {
            let Some((_, t, logical)) = key_at(sys, at) else {
                break;
            };
            if t != CHUNK_ITEM {
                return Err(bad("system chunk array", "an entry is not a chunk item"));
            }
            let (c, n) = parse_chunk(sys, at + 17, logical)
                .ok_or_else(|| bad("system chunk array", "unreadable chunk"))?;
            chunks.push(c);
            at += 17 + n;
        }
        let label = {
            let l = &sb[0x12b..0x12b + 256];
            let end = l.iter().position(|&c| c == 0).unwrap_or(256);
            let t = String::from_utf8_lossy(&l[..end]).into_owned();
            (!t.is_empty()).then_some(t)
        };
        let uuid = imgport_base::bytes::uuid_text(&sb[0x20..0x30].try_into().unwrap_or([0; 16]));
        let mut fs = Self {
            dev,
            cache: Mutex::default(),
            nodesize,
            chunks,
            root_tree: (le64(&sb, 0x50).unwrap_or(0), sb[0xc6]),
            default: (0, 0, 0),
            label,
            uuid,
        };
        // The full chunk tree adds the data and metadata chunks.
        let chunk_root = (le64(&sb, 0x58).unwrap_or(0), sb[0xc7]);
        let items = fs.scan(
            chunk_root,
            (256, CHUNK_ITEM, 0),
            (256, CHUNK_ITEM, u64::MAX),
        )?;
        for (k, data) in items {
            if let Some((c, _)) = parse_chunk(&data, 0, k.2)
                && !fs.chunks.iter().any(|x| x.logical == c.logical)
            {
                fs.chunks.push(c);
            }
        }
        fs.chunks.sort_by_key(|c| c.logical);
        // Default subvolume: DIR_ITEM "default" in the root tree's directory 6, else FS_TREE.
        let mut subvol = FS_TREE;
        let root_dir = le64(&sb, 0x80).unwrap_or(6);
        for (_, data) in fs.scan(
            fs.root_tree,
            (root_dir, DIR_ITEM, 0),
            (root_dir, DIR_ITEM, u64::MAX),
        )? {
            for (name, loc) in dir_entries(&data) {
                if name == b"default" && loc.0 != 0 {
                    subvol = loc.0;
                }
            }
        }
        fs.default = fs.subvolume(subvol)?;
        Ok(fs)
    }

    fn physical(&self, logical: u64, len: usize) -> Result<u64, FsError> {
        let c = self
            .chunks
            .iter()
            .find(|c| logical >= c.logical && logical - c.logical < c.len)
            .ok_or_else(|| bad("address", format!("logical {logical} is in no chunk")))?;
        if (logical - c.logical).saturating_add(len as u64) > c.len {
            return Err(bad(
                "address",
                format!("{len} bytes at {logical} cross a chunk"),
            ));
        }
        c.physical
            .checked_add(logical - c.logical)
            .ok_or_else(|| bad("chunk", "physical address overflows"))
    }

    fn read_logical(&self, logical: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let p = self.physical(logical, buf.len())?;
        self.dev.read_exact_at(buf, p)?;
        Ok(())
    }

    fn node(&self, bytenr: u64) -> Result<Arc<Vec<u8>>, FsError> {
        if let Some(n) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.nodes.get(&bytenr).cloned())
        {
            return Ok(n);
        }
        let mut b = vec![0u8; self.nodesize as usize];
        self.read_logical(bytenr, &mut b)?;
        if le64(&b, 0x30) != Some(bytenr) {
            return Err(bad(
                "tree node",
                format!("node at {bytenr} names another address"),
            ));
        }
        let b = Arc::new(b);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(bytenr, b.clone());
        }
        Ok(b)
    }

    /// Every item with `lo <= key <= hi` in the tree rooted at `root`.
    fn scan(&self, root: (u64, u8), lo: Key, hi: Key) -> Result<Vec<(Key, Vec<u8>)>, FsError> {
        let mut scan = Scan {
            lo,
            hi,
            out: Vec::new(),
            nodes: 0,
        };
        self.scan_node(root.0, root.1, 0, &mut scan)?;
        Ok(scan.out)
    }

    fn scan_node(&self, bytenr: u64, level: u8, depth: u8, scan: &mut Scan) -> Result<(), FsError> {
        let (lo, hi) = (scan.lo, scan.hi);
        if depth > MAX_LEVEL || level > MAX_LEVEL {
            return Err(bad("tree", "deeper than 8 levels"));
        }
        scan.nodes += 1;
        if scan.nodes > MAX_NODES {
            return Err(bad(
                "tree",
                format!("more than {MAX_NODES} nodes in one scan"),
            ));
        }
        let n = self.node(bytenr)?;
        if n[0x64] != level {
            return Err(bad(
                "tree node",
                format!("node at {bytenr} has the wrong level"),
            ));
        }
        let items = le32(&n, 0x60).unwrap_or(0) as usize;
        if level == 0 {
            if HEADER + items * ITEM > n.len() {
                return Err(bad("leaf", "more items than fit"));
            }
            for i in 0..items {
                let at = HEADER + i * ITEM;
                let k = key_at(&n, at).ok_or_else(|| bad("leaf", "short item"))?;
                if k < lo || k > hi {
                    continue;
                }
                let off = HEADER + le32(&n, at + 17).unwrap_or(0) as usize;
                let size = le32(&n, at + 21).unwrap_or(0) as usize;
                let data = n
                    .get(off..off + size)
                    .ok_or_else(|| bad("leaf", "item data outside the node"))?;
                if scan.out.len() >= MAX_ITEMS {
                    return Err(bad(
                        "tree",
                        format!("more than {MAX_ITEMS} items in a range"),
                    ));
                }
                scan.out.push((k, data.to_vec()));
            }
            return Ok(());
        }
        if HEADER + items * KEY_PTR > n.len() {
            return Err(bad("node", "more pointers than fit"));
        }
        for i in 0..items {
            let at = HEADER + i * KEY_PTR;
            let k = key_at(&n, at).ok_or_else(|| bad("node", "short pointer"))?;
            let next = if i + 1 < items {
                key_at(&n, at + KEY_PTR)
            } else {
                None
            };
            if k > hi {
                break;
            }
            if next.is_some_and(|nk| nk <= lo) {
                continue;
            }
            let child = le64(&n, at + 17).unwrap_or(0);
            self.scan_node(child, level - 1, depth + 1, scan)?;
        }
        Ok(())
    }

    /// (bytenr, level, root dir inode) of subvolume `id`.
    fn subvolume(&self, id: u64) -> Result<(u64, u8, u64), FsError> {
        let items = self.scan(
            self.root_tree,
            (id, ROOT_ITEM, 0),
            (id, ROOT_ITEM, u64::MAX),
        )?;
        let (_, r) = items
            .last()
            .ok_or_else(|| bad("root tree", format!("no root item for subvolume {id}")))?;
        let bytenr = le64(r, 176).ok_or_else(|| bad("root item", "short"))?;
        let level = *r.get(238).ok_or_else(|| bad("root item", "short"))?;
        let dir = le64(r, 168).filter(|&d| d != 0).unwrap_or(FIRST_FREE_INODE);
        Ok((bytenr, level, dir))
    }

    fn inode(&self, tree: (u64, u8), ino: u64) -> Result<Option<(u32, u64)>, FsError> {
        let items = self.scan(tree, (ino, INODE_ITEM, 0), (ino, INODE_ITEM, u64::MAX))?;
        Ok(items
            .first()
            .and_then(|(_, d)| Some((le32(d, 52)?, le64(d, 16)?))))
    }

    /// Walks `path` (symlink-free) to (tree, inode, mode, size).
    fn lookup(&self, path: &[u8]) -> Result<Option<Found>, FsError> {
        let (b, l, mut ino) = self.default;
        let mut tree = (b, l);
        let mut crossings = 0;
        let (mut mode, mut size) = match self.inode(tree, ino)? {
            Some(x) => x,
            None => return Err(bad("subvolume", "no root directory inode")),
        };
        for name in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            if mode & 0o170000 != 0o040000 {
                return Ok(None);
            }
            let Some(loc) = self
                .entries(tree, ino)?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, loc)| loc)
            else {
                return Ok(None);
            };
            if loc.1 == ROOT_ITEM {
                crossings += 1;
                if crossings > MAX_CROSSINGS {
                    return Err(bad("path", "too many subvolume crossings"));
                }
                let (b, l, d) = self.subvolume(loc.0)?;
                tree = (b, l);
                ino = d;
            } else {
                ino = loc.0;
            }
            match self.inode(tree, ino)? {
                Some((m, s)) => (mode, size) = (m, s),
                None => return Ok(None),
            }
        }
        Ok(Some((tree, ino, mode, size)))
    }

    /// (name, location key) of every entry of directory `ino`.
    fn entries(&self, tree: (u64, u8), ino: u64) -> Result<Vec<(Vec<u8>, Key)>, FsError> {
        let items = self.scan(tree, (ino, DIR_INDEX, 0), (ino, DIR_INDEX, u64::MAX))?;
        Ok(items.iter().flat_map(|(_, d)| dir_entries(d)).collect())
    }

    fn read_file(
        &self,
        tree: (u64, u8),
        ino: u64,
        size: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FsError> {
        if offset >= size {
            return Ok(0);
        }
        let want = ((size - offset) as usize).min(buf.len());
        buf[..want].fill(0);
        let end = offset + want as u64;
        for (k, e) in self.scan(tree, (ino, EXTENT_DATA, 0), (ino, EXTENT_DATA, end))? {
            let file_off = k.2;
            let compression = *e.get(16).unwrap_or(&0);
            let kind = *e.get(20).unwrap_or(&0);
            let (data, data_start): (Vec<u8>, u64) = match kind {
                0 => {
                    let raw = e.get(21..).unwrap_or(&[]).to_vec();
                    let ram = le64(&e, 8).unwrap_or(0);
                    (decompress(compression, raw, ram)?, 0)
                }
                1 | 2 => {
                    let disk = le64(&e, 21).unwrap_or(0);
                    let disk_len = le64(&e, 29).unwrap_or(0);
                    let ext_off = le64(&e, 37).unwrap_or(0);
                    let num = le64(&e, 45).unwrap_or(0);
                    let ext_end = file_off.saturating_add(num);
                    if file_off >= end || ext_end <= offset || disk == 0 || kind == 2 {
                        continue; // outside the range, a hole, or preallocated (zeros)
                    }
                    if compression == 0 {
                        // read just the overlap
                        let from = offset.max(file_off);
                        let to = end.min(ext_end);
                        let n = (to - from) as usize;
                        let dst = (from - offset) as usize;
                        let at = disk
                            .checked_add(ext_off)
                            .and_then(|a| a.checked_add(from - file_off))
                            .ok_or_else(|| bad("extent", "address overflows"))?;
                        self.read_logical(at, &mut buf[dst..dst + n])?;
                        continue;
                    }
                    if disk_len > MAX_UNCOMPRESSED {
                        return Err(bad("extent", "compressed extent larger than 128 KiB"));
                    }
                    let mut raw = vec![0u8; disk_len as usize];
                    self.read_logical(disk, &mut raw)?;
                    let ram = le64(&e, 8).unwrap_or(0);
                    let d = decompress(compression, raw, ram)?;
                    (d, ext_off)
                }
                _ => continue,
            };
            // copy data[data_start..] placed at file_off
            for (i, &byte) in data.iter().enumerate().skip(data_start as usize) {
                let Some(pos) = file_off.checked_add(i as u64 - data_start) else {
                    break;
                };
                if pos >= end {
                    break;
                }
                if pos >= offset {
                    buf[(pos - offset) as usize] = byte;
                }
            }
        }
        Ok(want)
    }
}

/// Largest zstd window of an extent: the kernel's `ZSTD_BTRFS_MAX_WINDOWLOG` (Linux
/// fs/btrfs/zstd.c), which also bounds the decoder's allocation.
const ZSTD_WINDOW_LOG: u32 = 17;

/// Decompresses one extent (`ram` bytes expected, the bound on the output, itself at most
/// 128 KiB as btrfs writes compressed extents).
fn decompress(kind: u8, raw: Vec<u8>, ram: u64) -> Result<Vec<u8>, FsError> {
    let cap = ram.min(MAX_UNCOMPRESSED);
    match kind {
        0 => Ok(raw),
        1 => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&raw[..])
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| bad("extent", format!("zlib: {e}")))?;
            Ok(out)
        }
        3 => {
            let mut out = Vec::new();
            let zstd_err = |e: std::io::Error| bad("extent", format!("zstd: {e}"));
            let mut dec = zstd::stream::read::Decoder::with_buffer(&raw[..]).map_err(zstd_err)?;
            dec.window_log_max(ZSTD_WINDOW_LOG).map_err(zstd_err)?;
            dec.single_frame()
                .take(cap)
                .read_to_end(&mut out)
                .map_err(zstd_err)?;
            Ok(out)
        }
        other => Err(FsError::Unsupported {
            fs: "btrfs",
            what: format!("compression type {other} (LZO)"),
        }),
    }
}

/// The (name, location) pairs packed in one DIR_ITEM / DIR_INDEX item.
fn dir_entries(d: &[u8]) -> Vec<(Vec<u8>, Key)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 30 <= d.len() {
        let Some(loc) = key_at(d, at) else { break };
        let data_len = le16(d, at + 25).unwrap_or(0) as usize;
        let name_len = le16(d, at + 27).unwrap_or(0) as usize;
        let Some(name) = d.get(at + 30..at + 30 + name_len) else {
            break;
        };
        out.push((name.to_vec(), loc));
        at += 30 + name_len + data_len;
    }
    out
}

fn kind_of(mode: u32) -> NodeKind {
    match mode & 0o170000 {
        0o100000 => NodeKind::File,
        0o040000 => NodeKind::Dir,
        0o120000 => NodeKind::Symlink,
        _ => NodeKind::Other,
    }
}

fn path_err(path: &[u8], rule: &str) -> FsError {
    FsError::Path {
        path: String::from_utf8_lossy(path).into_owned(),
        rule: rule.into(),
    }
}

impl FileSystem for BtrfsFs {
    fn kind(&self) -> &'static str {
        "btrfs"
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn uuid(&self) -> Option<String> {
        Some(self.uuid.clone())
    }
    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.lookup(path)?.map(|(_, _, mode, size)| NodeInfo {
            kind: kind_of(mode),
            size,
        }))
    }
    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        match self.lookup(path)? {
            Some((tree, ino, mode, size)) if kind_of(mode) == NodeKind::Symlink => {
                let mut buf = vec![0u8; size.min(4096) as usize];
                let n = self.read_file(tree, ino, size, 0, &mut buf)?;
                buf.truncate(n);
                Ok(buf)
            }
            _ => Err(path_err(path, "not a symlink")),
        }
    }
    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        match self.lookup(path)? {
            Some((tree, ino, mode, _)) if kind_of(mode) == NodeKind::Dir => Ok(self
                .entries(tree, ino)?
                .into_iter()
                .map(|(name, loc)| {
                    let kind = if loc.1 == ROOT_ITEM {
                        NodeKind::Dir
                    } else {
                        match self.inode(tree, loc.0) {
                            Ok(Some((m, _))) => kind_of(m),
                            _ => NodeKind::Other,
                        }
                    };
                    DirEntry { name, kind }
                })
                .collect()),
            _ => Err(path_err(path, "not a directory")),
        }
    }
    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match self.lookup(path)? {
            Some((tree, ino, mode, size)) if kind_of(mode) == NodeKind::File => {
                self.read_file(tree, ino, size, offset, buf)
            }
            _ => Err(path_err(path, "not a regular file")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_items_and_decompression() {
        // one DIR_INDEX item: location (257, INODE_ITEM, 0), transid, data_len 0, name "etc"
        let mut d = Vec::new();
        d.extend_from_slice(&257u64.to_le_bytes());
        d.push(INODE_ITEM);
        d.extend_from_slice(&0u64.to_le_bytes());
        d.extend_from_slice(&7u64.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&3u16.to_le_bytes());
        d.push(2);
        d.extend_from_slice(b"etc");
        assert_eq!(
            dir_entries(&d),
            vec![(b"etc".to_vec(), (257, INODE_ITEM, 0))]
        );
        // a truncated item yields nothing instead of panicking
        assert!(dir_entries(&d[..31]).is_empty());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, b"hello btrfs").unwrap();
        let packed = z.finish().unwrap();
        assert_eq!(decompress(1, packed.clone(), 11).unwrap(), b"hello btrfs");
        // the output is bounded by ram_bytes
        assert_eq!(decompress(1, packed, 5).unwrap(), b"hello");
        assert!(decompress(2, vec![1, 2, 3], 3).is_err());
        assert!(decompress(1, vec![1, 2, 3], 3).is_err());
    }

    #[test]
    fn refuses_non_btrfs_and_multi_device() {
        let mut d = vec![0u8; 0x11000];
        assert!(BtrfsFs::open(Arc::new(d.clone())).is_err());
        d[0x10040..0x10048].copy_from_slice(MAGIC);
        d[0x10088] = 2;
        let e = BtrfsFs::open(Arc::new(d)).err().unwrap();
        assert!(e.to_string().contains("2 devices"), "{e}");
    }
}

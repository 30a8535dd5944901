//! Read-only FAT12/16/32 with VFAT long names: enough to read an EFI system partition
//! (`\EFI\BOOT\BOOTX64.EFI`, `\EFI\Microsoft\Boot\bootmgfw.efi`).
//!
//! Owns the FAT on-disk format only (boot sector, FAT, directories); path resolution and
//! symlinks belong to the resolver in `guest::fs`. Names compare without case. Every cluster
//! chain is bounded by the volume's cluster count (a longer chain is a loop) and every
//! directory by [`MAX_DIR_BYTES`].

mod bpb;
mod dir;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use self::bpb::{Bpb, FatType};
use self::dir::{Decoder, Entry, Slot};
use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};
use imgport_image::source::ByteSource;

pub use self::bpb::probe;

/// Largest directory we read: the FAT limit of 65536 entries of 32 bytes (fatgen103 §6).
pub const MAX_DIR_BYTES: u64 = 65536 * 32;
/// Largest FAT we load into memory (a FAT32 of 16 M clusters).
pub const MAX_FAT_BYTES: u64 = 64 << 20;
/// Deepest path we walk.
const MAX_PATH_DEPTH: usize = 64;

/// An opened FAT volume.
pub struct FatFs {
    source: Arc<dyn ByteSource>,
    bpb: Bpb,
    /// The first FAT, covering every valid cluster number.
    fat: Vec<u8>,
    label: Option<String>,
}

/// Opens the FAT volume on `source`: validates the boot sector and loads the first FAT.
pub fn open(source: Arc<dyn ByteSource>) -> Result<FatFs, FsError> {
    let mut boot = [0u8; 512];
    source.read_exact_at(&mut boot, 0)?;
    let bpb = Bpb::parse(&boot, source.size())?;
    let fat_bytes = bpb.fat_bytes();
    if fat_bytes > MAX_FAT_BYTES {
        return Err(FsError::Unsupported {
            fs: "vfat",
            what: format!("a FAT of {fat_bytes} bytes (cap {MAX_FAT_BYTES})"),
        });
    }
    let mut fat = vec![0u8; fat_bytes as usize];
    source.read_exact_at(&mut fat, bpb.fat_offset)?;
    let mut fs = FatFs {
        source,
        bpb,
        fat,
        label: None,
    };
    // blkid prefers the root directory's volume-label entry over the BPB copy.
    let (_, label) = fs.root_entries()?;
    fs.label = label.or_else(|| fs.bpb.label.clone());
    Ok(fs)
}

fn corrupt(what: String, rule: String) -> FsError {
    FsError::Corrupt {
        fs: "vfat",
        what,
        rule,
    }
}

fn path_err(path: &[u8], rule: &str) -> FsError {
    FsError::Path {
        path: String::from_utf8_lossy(path).into_owned(),
        rule: rule.to_string(),
    }
}

/// Names compare without case, as on Windows.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// What a path resolved to.
enum Node {
    Root,
    Entry(Entry),
}

impl FatFs {
    /// FAT variant of the volume.
    pub fn fat_type(&self) -> &'static str {
        match self.bpb.fat_type {
            FatType::Fat12 => "fat12",
            FatType::Fat16 => "fat16",
            FatType::Fat32 => "fat32",
        }
    }

    /// The FAT entry of cluster `c` (masked to 28 bits on FAT32).
    fn next(&self, c: u32) -> u32 {
        let c = c as usize;
        match self.bpb.fat_type {
            FatType::Fat12 => {
                let at = c + c / 2;
                let v = imgport_base::bytes::le16(&self.fat, at);
                u32::from(if c & 1 == 1 { v >> 4 } else { v & 0xFFF })
            }
            FatType::Fat16 => u32::from(imgport_base::bytes::le16(&self.fat, 2 * c)),
            FatType::Fat32 => imgport_base::bytes::le32(&self.fat, 4 * c) & 0x0FFF_FFFF,
        }
    }

    fn is_end(&self, v: u32) -> bool {
        v >= match self.bpb.fat_type {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c - 2 < self.bpb.cluster_count
    }

    /// The first `max` clusters (fewer when it ends) of the chain starting at `first`. A
    /// chain that revisits a cluster is a loop and refused.
    fn chain(&self, first: u32, max: u64, what: &str) -> Result<Vec<u32>, FsError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut c = first;
        while (out.len() as u64) < max {
            if !self.valid_cluster(c) {
                return Err(corrupt(
                    what.to_string(),
                    format!(
                        "cluster chain reaches cluster {c:#x}, outside 2..{:#x}",
                        u64::from(self.bpb.cluster_count) + 2
                    ),
                ));
            }
            if !seen.insert(c) {
                return Err(corrupt(
                    what.to_string(),
                    format!("cluster chain loops back to cluster {c:#x}"),
                ));
            }
            out.push(c);
            let n = self.next(c);
            if self.is_end(n) {
                break;
            }
            c = n;
        }
        Ok(out)
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        self.bpb.data_offset + u64::from(c - 2) * u64::from(self.bpb.cluster_size)
    }

    /// Raw bytes of a directory: the fixed root (FAT12/16) or a cluster chain.
    fn dir_bytes(&self, first: Option<u32>, what: &str) -> Result<Vec<u8>, FsError> {
        match first {
            None if self.bpb.fat_type != FatType::Fat32 => {
                let mut buf = vec![0u8; self.bpb.root_bytes as usize];
                self.source.read_exact_at(&mut buf, self.bpb.root_offset)?;
                Ok(buf)
            }
            _ => {
                let first = first.unwrap_or(self.bpb.root_cluster);
                let cs = u64::from(self.bpb.cluster_size);
                let clusters = self.chain(first, MAX_DIR_BYTES.div_ceil(cs), what)?;
                let mut buf = vec![0u8; clusters.len() * cs as usize];
                for (i, &c) in clusters.iter().enumerate() {
                    let chunk = &mut buf[i * cs as usize..(i + 1) * cs as usize];
                    self.source.read_exact_at(chunk, self.cluster_offset(c))?;
                }
                Ok(buf)
            }
        }
    }

    fn decode_dir(bytes: &[u8]) -> (Vec<Entry>, Option<String>) {
        let mut dec = Decoder::default();
        let mut entries = Vec::new();
        let mut label = None;
        for slot in bytes.chunks_exact(32) {
            match dec.slot(slot) {
                Slot::End => break,
                Slot::Entry(e) => entries.push(e),
                Slot::Label(l) if label.is_none() && !l.is_empty() => label = Some(l),
                Slot::Label(_) | Slot::Skip => {}
            }
        }
        (entries, label)
    }

    fn root_entries(&self) -> Result<(Vec<Entry>, Option<String>), FsError> {
        Ok(Self::decode_dir(&self.dir_bytes(None, "root directory")?))
    }

    /// Entries of the directory `node`.
    fn entries(&self, node: &Node, path: &[u8]) -> Result<Vec<Entry>, FsError> {
        match node {
            Node::Root => Ok(self.root_entries()?.0),
            Node::Entry(e) if e.is_dir => {
                // A first cluster of 0 in a subdirectory's `..` means the root; elsewhere it
                // is an empty (corrupt) directory: treat as empty.
                if e.first_cluster == 0 {
                    return Ok(Vec::new());
                }
                let what = String::from_utf8_lossy(path).into_owned();
                Ok(Self::decode_dir(&self.dir_bytes(Some(e.first_cluster), &what)?).0)
            }
            Node::Entry(_) => Err(path_err(path, "not a directory")),
        }
    }

    /// Resolves an absolute `/`-separated path; `None` when a component is absent.
    fn lookup(&self, path: &[u8]) -> Result<Option<Node>, FsError> {
        let text = std::str::from_utf8(path).map_err(|_| path_err(path, "not UTF-8"))?;
        let mut node = Node::Root;
        for (depth, part) in text.split('/').filter(|p| !p.is_empty()).enumerate() {
            if depth >= MAX_PATH_DEPTH {
                return Err(path_err(path, "deeper than 64 levels"));
            }
            if let Node::Entry(e) = &node
                && !e.is_dir
            {
                return Ok(None);
            }
            let found = self
                .entries(&node, path)?
                .into_iter()
                .find(|e| same_name(&e.name, part) || same_name(&e.short, part));
            match found {
                Some(e) => node = Node::Entry(e),
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }
}

impl FileSystem for FatFs {
    fn kind(&self) -> &'static str {
        "vfat"
    }

    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// The volume serial as blkid prints it: `XXXX-XXXX`.
    fn uuid(&self) -> Option<String> {
        self.bpb
            .serial
            .map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xFFFF))
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.lookup(path)?.map(|n| match n {
            Node::Root => NodeInfo {
                kind: NodeKind::Dir,
                size: 0,
            },
            Node::Entry(e) if e.is_dir => NodeInfo {
                kind: NodeKind::Dir,
                size: 0,
            },
            Node::Entry(e) => NodeInfo {
                kind: NodeKind::File,
                size: u64::from(e.size),
            },
        }))
    }

    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        Err(path_err(path, "not a symlink (FAT has none)"))
    }

    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let node = self
            .lookup(path)?
            .ok_or_else(|| path_err(path, "no such directory"))?;
        Ok(self
            .entries(&node, path)?
            .into_iter()
            .map(|e| DirEntry {
                name: e.name.into_bytes(),
                kind: if e.is_dir {
                    NodeKind::Dir
                } else {
                    NodeKind::File
                },
            })
            .collect())
    }

    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let e = match self.lookup(path)? {
            Some(Node::Entry(e)) if !e.is_dir => e,
            Some(_) => return Err(path_err(path, "is a directory")),
            None => return Err(path_err(path, "no such file")),
        };
        let size = u64::from(e.size);
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = (size - offset).min(buf.len() as u64) as usize;
        let cs = u64::from(self.bpb.cluster_size);
        let what = String::from_utf8_lossy(path).into_owned();
        // The chain must cover the file's size; fewer clusters is corruption.
        let need = size.div_ceil(cs);
        let clusters = self.chain(e.first_cluster, need, &what)?;
        if (clusters.len() as u64) < need {
            return Err(corrupt(
                what,
                format!("{} clusters cannot hold its {size} bytes", clusters.len()),
            ));
        }
        let mut done = 0usize;
        while done < want {
            let pos = offset + done as u64;
            let c = clusters[(pos / cs) as usize];
            let within = pos % cs;
            let n = ((cs - within) as usize).min(want - done);
            self.source
                .read_exact_at(&mut buf[done..done + n], self.cluster_offset(c) + within)?;
            done += n;
        }
        Ok(want)
    }
}

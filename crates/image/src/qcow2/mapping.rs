//! Guest-to-host mapping (qcow2.rst "Cluster mapping", "Extended L2 Entries"): L1 and L2
//! entries decoded and checked (reserved bits, alignment, inside the file), a bounded cache
//! of L2 tables and decompressed clusters, and the walk that turns the tables into extents
//! and reads. Never reads a data cluster to answer an extent question.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::compressed;
use super::details::Compression;
use crate::{Extent, ExtentKind, ImageError, ImageFile, push_extent};

/// Bits 9–55 of L1 and standard L2 entries: the host offset.
const OFFSET_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;
/// L1 entry bits that must be zero: 0–8 and 56–62.
const L1_RESERVED: u64 = 0x7F00_0000_0000_01FF;
/// Standard L2 descriptor bits that must be zero: 1–8 and 56–61.
const L2_RESERVED: u64 = 0x3F00_0000_0000_01FE;
/// L2 bit 0: the cluster reads as zeros (version 3 without extended L2 only).
const L2_ZERO: u64 = 1;
/// L2 bit 62: compressed cluster.
const L2_COMPRESSED: u64 = 1 << 62;
/// L2/L1 bit 63: refcount is exactly one ("COPIED").
pub const COPIED: u64 = 1 << 63;
/// Subclusters per cluster with extended L2 entries.
pub const SUBCLUSTERS: u64 = 32;
/// Memory for cached L2 tables; past it the oldest are dropped and re-read when needed.
pub const L2_CACHE_BYTES: usize = 32 << 20;
/// Decompressed clusters kept, so small reads of one compressed cluster decompress it once.
pub const COMPRESSED_CACHE_CLUSTERS: usize = 16;

/// The shape of the mapping, fixed by the validated header and the file size.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub cluster_bits: u32,
    pub cluster_size: u64,
    /// Entries per L2 table.
    pub l2_entries: u64,
    /// 128-bit L2 entries with a subcluster bitmap.
    pub extended: bool,
    /// Version 3: the zero flag (bit 0) exists.
    pub v3: bool,
    pub compression: Compression,
    pub file_size: u64,
    pub virtual_size: u64,
}

/// What one L2 entry maps a guest cluster to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// Not allocated: reads zeros (there is no backing file).
    Unallocated,
    /// Reads as zeros (bit 0), whether or not a host cluster is preallocated.
    Zero,
    /// The whole guest cluster at this host offset.
    Data { host: u64 },
    /// Compressed bytes `[offset, offset + len)` in the file.
    Compressed { offset: u64, len: u64 },
    /// Extended L2: subcluster `i` is at `host + i * sc` when bit `i` of `alloc` is set,
    /// reads zeros when bit `i` of `zero` is set, and is unallocated otherwise.
    Subclusters { host: u64, alloc: u32, zero: u32 },
}

/// A broken table entry: the rule (the suffix of the finding code) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub rule: &'static str,
    pub message: String,
}

fn bad(rule: &'static str, message: String) -> EntryError {
    EntryError { rule, message }
}

impl Geometry {
    /// Bytes of one L2 entry.
    pub fn entry_len(&self) -> u64 {
        if self.extended { 16 } else { 8 }
    }

    /// Guest bytes one L2 table maps.
    pub fn l2_coverage(&self) -> u64 {
        self.cluster_size * self.l2_entries
    }

    /// Bytes of one subcluster.
    pub fn subcluster_size(&self) -> u64 {
        self.cluster_size / SUBCLUSTERS
    }

    /// Checks an L1 entry; the L2 table offset, or 0 when none is allocated.
    pub fn l1_entry(&self, entry: u64) -> Result<u64, EntryError> {
        if entry & L1_RESERVED != 0 {
            return Err(bad(
                "l1_entry_reserved",
                format!("entry {entry:#018x} sets reserved bits (0-8, 56-62 must be zero)"),
            ));
        }
        let l2 = entry & OFFSET_MASK;
        if l2 == 0 {
            return Ok(0);
        }
        if !l2.is_multiple_of(self.cluster_size) {
            return Err(bad(
                "l1_entry_unaligned",
                format!(
                    "the L2 table offset {l2} is not aligned to the cluster size {}",
                    self.cluster_size
                ),
            ));
        }
        if l2
            .checked_add(self.cluster_size)
            .is_none_or(|e| e > self.file_size)
        {
            return Err(bad(
                "l1_entry_past_eof",
                format!(
                    "the L2 table at {l2} does not lie inside the file ({} bytes)",
                    self.file_size
                ),
            ));
        }
        Ok(l2)
    }

    /// Decodes and checks an L2 entry (`bitmap` is the second word of an extended entry).
    pub fn l2_entry(&self, entry: u64, bitmap: u64) -> Result<Cluster, EntryError> {
        if entry & L2_COMPRESSED != 0 {
            return self.compressed_entry(entry, bitmap);
        }
        let mut reserved = L2_RESERVED;
        if !self.v3 || self.extended {
            // Bit 0 is the zero flag only in version 3 without extended L2 entries.
            reserved |= L2_ZERO;
        }
        if entry & reserved != 0 {
            return Err(bad(
                "l2_entry_reserved",
                format!(
                    "entry {entry:#018x} sets reserved bits (1-8 and 56-61{} must be zero)",
                    if reserved & L2_ZERO != 0 {
                        ", and 0 in this image"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let host = entry & OFFSET_MASK;
        if host == 0 && entry & COPIED != 0 {
            return Err(bad(
                "l2_entry_invalid",
                "host offset 0 with the refcount-one bit set is only valid with an external data file".into(),
            ));
        }
        if host != 0 {
            if !host.is_multiple_of(self.cluster_size) {
                return Err(bad(
                    "l2_entry_unaligned",
                    format!(
                        "the host cluster offset {host} is not aligned to the cluster size {}",
                        self.cluster_size
                    ),
                ));
            }
            if host
                .checked_add(self.cluster_size)
                .is_none_or(|e| e > self.file_size)
            {
                return Err(bad(
                    "l2_entry_past_eof",
                    format!(
                        "the host cluster at {host} does not lie inside the file ({} bytes)",
                        self.file_size
                    ),
                ));
            }
        }
        if self.extended {
            let alloc = bitmap as u32;
            let zero = (bitmap >> 32) as u32;
            if alloc & zero != 0 {
                return Err(bad(
                    "l2_entry_invalid",
                    format!(
                        "subcluster bitmap {bitmap:#018x} marks subclusters both allocated and reading as zeros"
                    ),
                ));
            }
            if host == 0 && alloc != 0 {
                return Err(bad(
                    "l2_entry_invalid",
                    format!(
                        "subcluster bitmap {bitmap:#018x} allocates subclusters of an entry with no host cluster"
                    ),
                ));
            }
            return Ok(match (alloc, zero) {
                (0, 0) => Cluster::Unallocated,
                (0, u32::MAX) => Cluster::Zero,
                (u32::MAX, _) => Cluster::Data { host },
                _ => Cluster::Subclusters { host, alloc, zero },
            });
        }
        Ok(if entry & L2_ZERO != 0 {
            Cluster::Zero
        } else if host == 0 {
            Cluster::Unallocated
        } else {
            Cluster::Data { host }
        })
    }

    /// A compressed descriptor: `x = 62 - (cluster_bits - 8)` offset bits, then the count of
    /// additional 512-byte sectors (qcow2.rst "Compressed Clusters Descriptor").
    fn compressed_entry(&self, entry: u64, bitmap: u64) -> Result<Cluster, EntryError> {
        if entry & COPIED != 0 || (self.extended && bitmap != 0) {
            return Err(bad(
                "l2_entry_reserved",
                format!(
                    "compressed entry {entry:#018x} (bitmap {bitmap:#018x}) sets the refcount-one bit or a subcluster bitmap, which compressed clusters never have"
                ),
            ));
        }
        let x = 62 - (self.cluster_bits - 8);
        let offset = entry & ((1u64 << x) - 1);
        if offset >> 56 != 0 {
            return Err(bad(
                "l2_entry_reserved",
                format!("compressed entry {entry:#018x} sets offset bits above 55"),
            ));
        }
        let sectors = ((entry >> x) & ((1u64 << (62 - x)) - 1)) + 1;
        let nominal_end = (offset & !511) + sectors * 512;
        // The last sector may be cut by the end of the file; nothing more may be missing.
        if offset < self.cluster_size
            || offset >= self.file_size
            || nominal_end > self.file_size.next_multiple_of(512)
        {
            return Err(bad(
                "compressed_past_eof",
                format!(
                    "compressed data {offset}..{nominal_end} does not lie inside the file after the header cluster ({} bytes)",
                    self.file_size
                ),
            ));
        }
        Ok(Cluster::Compressed {
            offset,
            len: nominal_end.min(self.file_size) - offset,
        })
    }
}

/// Where a bad entry sits, for findings and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAt {
    pub field: String,
    pub offset: u64,
    pub error: EntryError,
}

/// Why a walk over the tables stopped.
#[derive(Debug)]
pub enum WalkError {
    Entry(EntryAt),
    Image(ImageError),
}

impl From<ImageError> for WalkError {
    fn from(e: ImageError) -> Self {
        WalkError::Image(e)
    }
}

#[derive(Default)]
struct Cache {
    tables: HashMap<u64, Arc<[u64]>>,
    table_order: VecDeque<u64>,
    table_bytes: usize,
    clusters: HashMap<u64, Arc<[u8]>>,
    cluster_order: VecDeque<u64>,
}

/// The active L1 table and the cached L2 tables of an opened image.
pub struct Mapping {
    file: Arc<ImageFile>,
    pub geo: Geometry,
    /// L2 table offsets for the L1 entries that map the virtual disk (0 = none).
    pub l1: Vec<u64>,
    cache: Mutex<Cache>,
}

impl Mapping {
    /// A mapping over `l1` (checked L2 offsets) with an empty cache.
    pub fn new(file: Arc<ImageFile>, geo: Geometry, l1: Vec<u64>) -> Self {
        Self {
            file,
            geo,
            l1,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic elsewhere cannot leave the cache inconsistent (every update is one insert).
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The L2 table of L1 entry `index` as big-endian-decoded words, `None` when unallocated.
    fn table(&self, index: usize) -> Result<Option<Arc<[u64]>>, ImageError> {
        let Some(&l2) = self.l1.get(index) else {
            return Ok(None);
        };
        if l2 == 0 {
            return Ok(None);
        }
        if let Some(t) = self.lock().tables.get(&l2) {
            return Ok(Some(t.clone()));
        }
        let mut raw = vec![0u8; self.geo.cluster_size as usize];
        self.file.read_exact_at(&mut raw, l2)?;
        let words: Arc<[u64]> = raw
            .chunks_exact(8)
            .map(|c| imgport_base::bytes::be64(c, 0))
            .collect();
        let mut c = self.lock();
        if c.tables.insert(l2, words.clone()).is_none() {
            c.table_order.push_back(l2);
            c.table_bytes += raw.len();
        }
        while c.table_bytes > L2_CACHE_BYTES {
            let Some(old) = c.table_order.pop_front() else {
                break;
            };
            if c.tables.remove(&old).is_some() {
                c.table_bytes -= self.geo.cluster_size as usize;
            }
        }
        Ok(Some(words))
    }

    /// Decodes entry `j` of the table of L1 entry `i`.
    fn entry(&self, i: usize, table: &[u64], j: usize) -> Result<Cluster, EntryAt> {
        let (entry, bitmap) = if self.geo.extended {
            (table[2 * j], table[2 * j + 1])
        } else {
            (table[j], 0)
        };
        self.geo.l2_entry(entry, bitmap).map_err(|error| {
            let l2 = self.l1[i];
            EntryAt {
                field: format!("L2 table at {l2} (L1 index {i}) entry {j}"),
                offset: l2 + j as u64 * self.geo.entry_len(),
                error,
            }
        })
    }

    /// Calls `f(guest offset, length, cluster)` for every cluster of the virtual disk in
    /// order (a run of L1 entries without an L2 table as one call, so a huge, empty disk
    /// costs its allocated tables, not its L1 length), lengths clipped to the virtual size.
    pub fn walk(&self, mut f: impl FnMut(u64, u64, Cluster)) -> Result<(), WalkError> {
        let g = self.geo;
        let mut i = 0;
        while i < self.l1.len() {
            let start = i as u64 * g.l2_coverage();
            if start >= g.virtual_size {
                break;
            }
            if self.l1[i] == 0 {
                let run = self.l1[i..].iter().take_while(|&&o| o == 0).count();
                let len = (run as u64 * g.l2_coverage()).min(g.virtual_size - start);
                f(start, len, Cluster::Unallocated);
                i += run;
                continue;
            }
            let Some(table) = self.table(i)? else {
                let len = g.l2_coverage().min(g.virtual_size - start);
                f(start, len, Cluster::Unallocated);
                i += 1;
                continue;
            };
            let index = i;
            i += 1;
            for j in 0..g.l2_entries as usize {
                let guest = start + j as u64 * g.cluster_size;
                if guest >= g.virtual_size {
                    break;
                }
                let c = self.entry(index, &table, j).map_err(WalkError::Entry)?;
                f(guest, g.cluster_size.min(g.virtual_size - guest), c);
            }
        }
        Ok(())
    }

    /// Turns a walk error met after opening into an image error.
    pub fn corrupt(&self, e: WalkError) -> ImageError {
        match e {
            WalkError::Image(e) => e,
            WalkError::Entry(at) => ImageError::Corrupt {
                path: self.file.path().to_path_buf(),
                field: at.field,
                offset: at.offset,
                rule: at.error.message,
            },
        }
    }

    /// The virtual disk as merged extents, from the tables only.
    pub fn extents(&self) -> Result<Vec<Extent>, WalkError> {
        let sc = self.geo.subcluster_size();
        let mut out = Vec::new();
        self.walk(|offset, length, c| {
            let kind = match c {
                Cluster::Unallocated => ExtentKind::Unallocated,
                Cluster::Zero => ExtentKind::Zero,
                Cluster::Data { .. } | Cluster::Compressed { .. } => ExtentKind::Data,
                Cluster::Subclusters { alloc, zero, .. } => {
                    for s in 0..SUBCLUSTERS {
                        let o = s * sc;
                        if o >= length {
                            break;
                        }
                        let kind = if alloc & (1 << s) != 0 {
                            ExtentKind::Data
                        } else if zero & (1 << s) != 0 {
                            ExtentKind::Zero
                        } else {
                            ExtentKind::Unallocated
                        };
                        push_extent(
                            &mut out,
                            Extent {
                                offset: offset + o,
                                length: sc.min(length - o),
                                kind,
                            },
                        );
                    }
                    return;
                }
            };
            push_extent(
                &mut out,
                Extent {
                    offset,
                    length,
                    kind,
                },
            );
        })?;
        Ok(out)
    }

    /// One decompressed cluster, from the cache or the file.
    pub fn decompressed(&self, offset: u64, len: u64) -> Result<Arc<[u8]>, ImageError> {
        if let Some(c) = self.lock().clusters.get(&offset) {
            return Ok(c.clone());
        }
        let mut input = vec![0u8; len as usize];
        self.file.read_exact_at(&mut input, offset)?;
        let mut out = vec![0u8; self.geo.cluster_size as usize];
        compressed::decompress(self.geo.compression, &input, &mut out).map_err(|rule| {
            ImageError::Corrupt {
                path: self.file.path().to_path_buf(),
                field: "compressed cluster".into(),
                offset,
                rule,
            }
        })?;
        let out: Arc<[u8]> = out.into();
        let mut c = self.lock();
        if c.clusters.insert(offset, out.clone()).is_none() {
            c.cluster_order.push_back(offset);
        }
        while c.clusters.len() > COMPRESSED_CACHE_CLUSTERS {
            let Some(old) = c.cluster_order.pop_front() else {
                break;
            };
            c.clusters.remove(&old);
        }
        Ok(out)
    }

    /// Fills `buf` with the guest bytes at `offset` (already checked against the size).
    /// Host-contiguous data clusters are read with one positional read.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        let g = self.geo;
        let cs = g.cluster_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let vc = pos >> g.cluster_bits;
            let i = (vc / g.l2_entries) as usize;
            let mut j = (vc % g.l2_entries) as usize;
            let mut within = pos & (cs - 1);
            let Some(table) = self.table(i)? else {
                let left = g.l2_coverage() - (pos % g.l2_coverage());
                let n = (left.min((buf.len() - done) as u64)) as usize;
                buf[done..done + n].fill(0);
                done += n;
                continue;
            };
            let entry = |j: usize| {
                self.entry(i, &table, j)
                    .map_err(|e| self.corrupt(WalkError::Entry(e)))
            };
            while done < buf.len() && j < g.l2_entries as usize {
                let n = ((cs - within) as usize).min(buf.len() - done);
                match entry(j)? {
                    Cluster::Unallocated | Cluster::Zero => buf[done..done + n].fill(0),
                    Cluster::Data { host } => {
                        // Extend over the following clusters while they follow on the host.
                        let mut run = n;
                        let mut next = host + cs;
                        while done + run < buf.len() && j + 1 < g.l2_entries as usize {
                            if entry(j + 1)? != (Cluster::Data { host: next }) {
                                break;
                            }
                            j += 1;
                            next += cs;
                            run += (cs as usize).min(buf.len() - done - run);
                        }
                        self.file
                            .read_exact_at(&mut buf[done..done + run], host + within)?;
                        done += run;
                        within = 0;
                        j += 1;
                        continue;
                    }
                    Cluster::Compressed { offset: at, len } => {
                        let c = self.decompressed(at, len)?;
                        let w = within as usize;
                        buf[done..done + n].copy_from_slice(&c[w..w + n]);
                    }
                    Cluster::Subclusters { host, alloc, .. } => {
                        self.read_subclusters(&mut buf[done..done + n], host, within, alloc)?;
                    }
                }
                done += n;
                within = 0;
                j += 1;
            }
        }
        Ok(())
    }

    /// Reads `buf` from one extended-L2 cluster starting `within` bytes into it.
    fn read_subclusters(
        &self,
        buf: &mut [u8],
        host: u64,
        within: u64,
        alloc: u32,
    ) -> Result<(), ImageError> {
        let sc = self.geo.subcluster_size();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = within + done as u64;
            let s = pos / sc;
            let allocated = alloc & (1 << s) != 0;
            // Merge the following subclusters of the same state into one step.
            let mut end = (s + 1) * sc;
            while end < self.geo.cluster_size && (alloc & (1 << (end / sc)) != 0) == allocated {
                end += sc;
            }
            let n = ((end - pos) as usize).min(buf.len() - done);
            if allocated {
                self.file
                    .read_exact_at(&mut buf[done..done + n], host + pos)?;
            } else {
                // Reads-as-zero and unallocated (no backing file) both read zeros.
                buf[done..done + n].fill(0);
            }
            done += n;
        }
        Ok(())
    }
}

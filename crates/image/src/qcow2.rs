//! QCOW2 version 2 and 3 images (qcow2 spec, QEMU `docs/interop/qcow2.rst`): the
//! header, extensions and tables judged into `qcow2.*` findings (docs/INSPECTION.md §Safety item
//! 3), then reads through L1/L2 with zero, compressed (deflate, zstd) and extended-L2 subclusters.
//!
//! Fails closed: every L1 and L2 entry that maps the virtual disk is checked when the image
//! is opened (the tables are small next to the data and bounded by the file), so a broken
//! entry refuses the image instead of failing a conversion half way. Never opens a backing
//! or external data file, never decrypts, never writes; [`write`] lays out the header and
//! table entries the converter writes, with the same offsets.

use imgport_base::bytes::be64;
use std::sync::Arc;

use super::{
    DiskImage, Extent, Finding, ImageError, ImageFile, ImageFormat, Severity, Verdict, check_read,
};
pub use details::{Compression, ExtensionInfo, Qcow2Details, SnapshotInfo, Snapshots};

mod compressed;
mod details;
mod extensions;
mod header;
mod mapping;
mod overlap;
mod snapshots;
pub mod write;

use extensions::Extensions;
use header::{Header, off};
use mapping::{Cluster, Geometry, Mapping, WalkError};

/// Cluster counts gathered while the tables are checked.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    l2_tables: u64,
    data: u64,
    compressed: u64,
    zero: u64,
    allocated_bytes: u64,
}

/// An opened, judged QCOW2 image.
pub struct Qcow2Image {
    header: Header,
    virtual_size: u64,
    ext: Extensions,
    snapshots: Snapshots,
    counts: Counts,
    mapping: Mapping,
}

impl Qcow2Image {
    /// Parses and judges the header, extensions and tables; `None` when refused.
    pub fn open(
        file: Arc<ImageFile>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        let mut v = Verdict::new(findings);
        let size = file.size();
        let head = file.read_upto(0, header::DECODED_LEN)?;
        let Some(h) = Header::parse(&head) else {
            v.refuse(
                "qcow2.truncated_header",
                "header",
                0,
                format!(
                    "the file ({size} bytes) is shorter than the qcow2 header its magic and version announce"
                ),
            );
            return Ok(None);
        };
        if !h.validate(size, &mut v) {
            return Ok(None);
        }
        let cs = h.cluster_size();
        // Extensions fill the first cluster after the header, up to the backing file name.
        let ext_start = u64::from(h.header_length);
        let mut ext_end = cs.min(size);
        if h.backing_file_offset > ext_start && h.backing_file_offset < ext_end {
            ext_end = h.backing_file_offset;
        }
        let area = if ext_end > ext_start {
            file.read_upto(ext_start, (ext_end - ext_start) as usize)?
        } else {
            Vec::new()
        };
        let Some(ext) = extensions::parse(&area, ext_start, &mut v) else {
            return Ok(None);
        };
        judge_extensions(&h, &ext, &mut v);
        judge_backing_file(&file, &h, &mut v)?;
        let snapshots = snapshots::read(&file, &h, &mut v)?;
        if v.refused {
            return Ok(None);
        }
        let virtual_size = h.size / 512 * 512;
        if virtual_size != h.size {
            v.note(
                Severity::Warning,
                "qcow2.size_not_sector_multiple",
                "size",
                off::SIZE,
                format!(
                    "{} is not a multiple of 512; QEMU (and imgport) drop the partial last sector",
                    h.size
                ),
            );
        }
        let geo = Geometry {
            cluster_bits: h.cluster_bits,
            cluster_size: cs,
            l2_entries: h.l2_entries(),
            extended: h.extended_l2(),
            v3: h.version >= 3,
            compression: h.compression(),
            file_size: size,
            virtual_size,
        };
        let Some(l1) = read_l1(&file, &h, geo, &mut v)? else {
            return Ok(None);
        };
        let Some(metadata) = overlap::collect(&file, &h, &ext, &snapshots, &l1, &mut v)? else {
            return Ok(None);
        };
        let mapping = Mapping::new(file, geo, l1);
        // The first data cluster that points into metadata, and the first compressed one.
        let mut into_metadata: Option<(u64, u64, String)> = None;
        let mut first_compressed: Option<(u64, u64, u64)> = None;
        let mut counts = Counts {
            l2_tables: mapping.l1.iter().filter(|&&o| o != 0).count() as u64,
            ..Counts::default()
        };
        let sc = geo.subcluster_size();
        let walked = mapping.walk(|guest, len, c| {
            let host = match c {
                Cluster::Data { host } | Cluster::Subclusters { host, .. } => Some((host, cs)),
                Cluster::Compressed { offset, len } => {
                    first_compressed.get_or_insert((guest, offset, len));
                    Some((offset, len))
                }
                _ => None,
            };
            if let Some((start, n)) = host
                && into_metadata.is_none()
                && let Some(what) = metadata.overlapping(start, n)
            {
                into_metadata = Some((guest, start, what.to_string()));
            }
            match c {
                Cluster::Unallocated => {}
                Cluster::Zero => counts.zero += 1,
                Cluster::Data { .. } => {
                    counts.data += 1;
                    counts.allocated_bytes += len;
                }
                Cluster::Compressed { .. } => {
                    counts.compressed += 1;
                    counts.allocated_bytes += len;
                }
                Cluster::Subclusters { alloc, zero, .. } => {
                    if alloc != 0 {
                        counts.data += 1;
                    } else if zero != 0 {
                        counts.zero += 1;
                    }
                    counts.allocated_bytes += (0..mapping::SUBCLUSTERS)
                        .filter(|s| alloc & (1 << s) != 0)
                        .map(|s| sc.min(len.saturating_sub(s * sc)))
                        .sum::<u64>();
                }
            }
        });
        match walked {
            Ok(()) => {}
            Err(WalkError::Entry(at)) => {
                v.refuse(
                    &format!("qcow2.{}", at.error.rule),
                    &at.field,
                    at.offset,
                    at.error.message,
                );
                return Ok(None);
            }
            Err(WalkError::Image(e)) => return Err(e),
        }
        if let Some((guest, host, what)) = into_metadata {
            v.refuse(
                "qcow2.data_overlaps_metadata",
                "L2 entry",
                host,
                format!(
                    "the data of guest offset {guest} is mapped to file offset {host}, inside {what}: metadata would be read as guest data (QEMU's overlap checks refuse it)"
                ),
            );
            return Ok(None);
        }
        // A compression type that does not match the data (zstd declared over deflate data)
        // is found only by decoding: one cluster, bounded by the cluster size, so `safe`
        // means the conversion will read it.
        if let Some((guest, offset, len)) = first_compressed
            && let Err(e) = mapping.decompressed(offset, len)
        {
            v.refuse(
                "qcow2.compressed_data",
                "compressed cluster",
                offset,
                format!(
                    "the first compressed cluster (guest offset {guest}, {len} bytes at file offset {offset}) does not decode as {:?}: {}",
                    geo.compression,
                    imgport_base::report::error_chain(&e)
                ),
            );
            return Ok(None);
        }
        Ok(Some(Self {
            header: h,
            virtual_size,
            ext,
            snapshots,
            counts,
            mapping,
        }))
    }

    /// `v2` or `v3`.
    pub fn subformat(&self) -> &'static str {
        if self.header.version == 2 { "v2" } else { "v3" }
    }

    /// Header facts, extensions, snapshots and cluster counts.
    pub fn details(&self) -> Qcow2Details {
        let h = &self.header;
        Qcow2Details {
            version: h.version,
            cluster_size: h.cluster_size(),
            size: h.size,
            refcount_bits: 1u64 << h.refcount_order,
            compression: h.compression(),
            extended_l2: h.extended_l2(),
            lazy_refcounts: h.compatible & header::COMPAT_LAZY_REFCOUNTS != 0,
            dirty: h.incompatible & header::incompat::DIRTY != 0,
            incompatible_features: h.incompatible,
            compatible_features: h.compatible,
            autoclear_features: h.autoclear,
            header_length: h.header_length,
            l1_size: h.l1_size,
            l1_table_offset: h.l1_table_offset,
            refcount_table_offset: h.refcount_table_offset,
            refcount_table_clusters: h.refcount_table_clusters,
            l2_tables: self.counts.l2_tables,
            data_clusters: self.counts.data,
            compressed_clusters: self.counts.compressed,
            zero_clusters: self.counts.zero,
            features: self
                .ext
                .feature_names
                .iter()
                .filter(|(kind, bit, _)| {
                    let field = match kind {
                        0 => h.incompatible,
                        1 => h.compatible,
                        2 => h.autoclear,
                        _ => 0,
                    };
                    *bit < 64 && field & (1u64 << bit) != 0
                })
                .map(|(_, _, name)| name.clone())
                .collect(),
            extensions: self.ext.found.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

/// Extensions that make the image unsafe whatever the header bits say.
fn judge_extensions(h: &Header, ext: &Extensions, v: &mut Verdict<'_>) {
    if let Some((name, at)) = &ext.data_file {
        let json = if extensions::is_json_name(name.as_bytes()) {
            " It is a json: pseudo-protocol name, which can make QEMU open any host file or network export."
        } else {
            ""
        };
        v.refuse(
            "qcow2.data_file",
            "external data file name extension",
            *at,
            format!(
                "the image names an external data file \"{name}\"; guest data would be read from that file, which imgport never opens (CVE-2024-32498).{json}"
            ),
        );
    }
    if let Some(at) = ext.fde_at
        && h.crypt_method == 0
    {
        v.refuse(
            "qcow2.encrypted",
            "full disk encryption header extension",
            at,
            "a LUKS header pointer is present although crypt_method is 0; the data may be encrypted and cannot be inspected".into(),
        );
    }
}

/// A backing file: its name is reported (bounded to 1023 bytes), never opened.
fn judge_backing_file(file: &ImageFile, h: &Header, v: &mut Verdict<'_>) -> Result<(), ImageError> {
    if h.backing_file_offset == 0 {
        return Ok(());
    }
    let len = h.backing_file_size.min(header::MAX_BACKING_NAME);
    let readable = h
        .backing_file_offset
        .checked_add(u64::from(len))
        .is_some_and(|e| e <= file.size().min(h.cluster_size()));
    let name = if readable && len > 0 {
        let mut b = vec![0u8; len as usize];
        file.read_exact_at(&mut b, h.backing_file_offset)?;
        Some(b)
    } else {
        None
    };
    let what = match &name {
        Some(b) if extensions::is_json_name(b) => format!(
            "named \"{}\", a json: pseudo-protocol name that can make QEMU open any host file or network export",
            extensions::escaped(b)
        ),
        Some(b) => format!("named \"{}\"", extensions::escaped(b)),
        None if len == 0 => "with an empty name".to_string(),
        None => format!(
            "whose name ({} bytes at {}) does not lie inside the first cluster",
            h.backing_file_size, h.backing_file_offset
        ),
    };
    let long = if h.backing_file_size > header::MAX_BACKING_NAME {
        format!(
            "; the name length {} passes the limit of {}",
            h.backing_file_size,
            header::MAX_BACKING_NAME
        )
    } else {
        String::new()
    };
    v.refuse(
        "qcow2.backing_file",
        "backing_file_offset",
        off::BACKING_FILE_OFFSET,
        format!(
            "the image has a backing file {what}{long}: its unallocated clusters come from that file, which imgport never opens; merge the chain into one image first (`qemu-img convert -O qcow2` on a trusted machine)"
        ),
    );
    Ok(())
}

/// Reads and checks the L1 entries that map the virtual disk, then checks that no two of
/// them share an L2 table and that no L2 table overlaps the header, L1 or refcount table.
fn read_l1(
    file: &ImageFile,
    h: &Header,
    geo: Geometry,
    v: &mut Verdict<'_>,
) -> Result<Option<Vec<u64>>, ImageError> {
    let needed = h.l1_needed() as usize;
    let mut raw = vec![0u8; needed * 8];
    if needed > 0 {
        file.read_exact_at(&mut raw, h.l1_table_offset)?;
    }
    let mut l1 = Vec::with_capacity(needed);
    for (i, c) in raw.chunks_exact(8).enumerate() {
        let entry = be64(c, 0);
        let at = h.l1_table_offset + 8 * i as u64;
        match geo.l1_entry(entry) {
            Ok(l2) => l1.push(l2),
            Err(e) => {
                v.refuse(
                    &format!("qcow2.{}", e.rule),
                    &format!("L1 entry {i}"),
                    at,
                    e.message,
                );
                return Ok(None);
            }
        }
    }
    let cs = geo.cluster_size;
    // Offset 0 means "no table", so an L2 table can never sit on the header cluster.
    let metadata = [
        (
            h.l1_table_offset,
            (u64::from(h.l1_size) * 8).next_multiple_of(cs),
            "the L1 table",
        ),
        (
            h.refcount_table_offset,
            u64::from(h.refcount_table_clusters) * cs,
            "the refcount table",
        ),
    ];
    let mut tables: Vec<(u64, usize)> = l1
        .iter()
        .enumerate()
        .filter(|&(_, &o)| o != 0)
        .map(|(i, &o)| (o, i))
        .collect();
    for &(o, i) in &tables {
        if let Some((_, _, what)) = metadata
            .iter()
            .find(|(start, len, _)| o < start + len && *start < o + cs)
        {
            v.refuse(
                "qcow2.l2_table_overlap",
                &format!("L1 entry {i}"),
                h.l1_table_offset + 8 * i as u64,
                format!("the L2 table at {o} overlaps {what}"),
            );
            return Ok(None);
        }
    }
    tables.sort_unstable();
    if let Some(w) = tables.windows(2).find(|w| w[0].0 == w[1].0) {
        let (o, i) = w[1];
        v.refuse(
            "qcow2.l2_table_shared",
            &format!("L1 entry {i}"),
            h.l1_table_offset + 8 * i as u64,
            format!(
                "the L2 table at {o} is also used by L1 entry {}; two guest ranges would share one table",
                w[0].1
            ),
        );
        return Ok(None);
    }
    Ok(Some(l1))
}

impl DiskImage for Qcow2Image {
    fn format(&self) -> ImageFormat {
        ImageFormat::Qcow2
    }

    fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size, buf.len(), offset)?;
        self.mapping.read(buf, offset)
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        self.mapping.extents().map_err(|e| self.mapping.corrupt(e))
    }

    /// Counted when the tables were checked at open: no second walk.
    fn allocated_size(&self) -> Result<u64, ImageError> {
        Ok(self.counts.allocated_bytes)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

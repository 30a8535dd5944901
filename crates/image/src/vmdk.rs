//! VMDK (VMware "Virtual Disk Format 5.0") as an input: monolithicSparse and streamOptimized
//! files (a `KDMV` sparse extent with its descriptor embedded), and descriptor files whose
//! extents are other files: monolithicFlat, twoGbMaxExtentFlat, twoGbMaxExtentSparse.
//!
//! Reading never writes and never follows a name found in a file except an extent name in a
//! descriptor, and only a plain name of a regular file in the descriptor's own directory
//! (`vmdk/files.rs`). Differencing disks (a parent), ESXi datastore extents and anything the
//! rules below do not vouch for are refused with a `vmdk.*` finding. imgport never writes a
//! VMDK: it is converted to RAW, VHD or QCOW2.
//!
//! The descriptor is parsed in `vmdk/descriptor.rs`, a sparse extent's header, footer and
//! tables in `vmdk/sparse.rs` (constants in `vmdk/header.rs`), compressed grains in
//! `vmdk/grain.rs`; this file puts the extents together and reads across them.

use std::sync::Arc;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Verdict,
    check_read, push_extent,
};

mod descriptor;
mod details;
mod files;
mod grain;
mod header;
mod sparse;

pub use descriptor::{MAX_EXTENTS, check_name};
pub use details::{SparseDetails, VmdkDetails, VmdkExtentDetails};
pub use header::{MAX_CAPACITY_SECTORS, MAX_DESCRIPTOR, MAX_GRAIN_SECTORS};

use descriptor::{Access, DescError, Descriptor, ExtentType};
use header::{MAGIC, SECTOR};
use sparse::SparseExtent;

/// Where a piece of the virtual disk is stored.
enum Source {
    /// Plain sectors of a file from `offset`.
    Flat {
        file: Arc<ImageFile>,
        offset: u64,
    },
    Sparse(Box<SparseExtent>),
    /// Zeros, no storage.
    Zero,
}

/// One extent placed in the virtual disk.
struct Piece {
    start: u64,
    len: u64,
    source: Source,
}

/// A VMDK whose descriptor and every extent have been judged safe.
pub struct VmdkImage {
    pieces: Vec<Piece>,
    virtual_size: u64,
    details: VmdkDetails,
}

/// `createType`s of a single sparse file with its descriptor inside.
const EMBEDDED_TYPES: [&str; 2] = ["monolithicSparse", "streamOptimized"];
/// `createType`s of a descriptor file, with the extent type each uses.
const DESCRIPTOR_TYPES: [(&str, ExtentType); 5] = [
    ("monolithicFlat", ExtentType::Flat),
    ("twoGbMaxExtentFlat", ExtentType::Flat),
    ("twoGbMaxExtentSparse", ExtentType::Sparse),
    ("monolithicSparse", ExtentType::Sparse),
    ("streamOptimized", ExtentType::Sparse),
];

impl VmdkImage {
    /// Parses and judges `file` (a sparse extent with an embedded descriptor, or a descriptor
    /// file) and every extent it names; `None` when refused.
    pub fn open(
        file: Arc<ImageFile>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        let mut v = Verdict::new(findings);
        let head = file.read_upto(0, MAGIC.len())?;
        let img = if head == MAGIC {
            open_monolithic(file, &mut v)?
        } else {
            open_descriptor(file, &mut v)?
        };
        Ok(img.filter(|_| !v.refused))
    }

    /// The descriptor's `createType`.
    pub fn subformat(&self) -> &str {
        &self.details.create_type
    }

    /// Descriptor and extent facts.
    pub fn details(&self) -> VmdkDetails {
        self.details.clone()
    }
}

/// Refuses with a descriptor rule; `base` is the descriptor's offset in its file.
fn refuse_descriptor(v: &mut Verdict<'_>, e: DescError, base: u64) {
    let field = if e.line == 0 {
        "descriptor".to_string()
    } else {
        format!("descriptor line {}", e.line)
    };
    v.refuse(e.code, &field, base + e.at, e.rule);
}

fn create_type_is(d: &Descriptor, name: &str) -> bool {
    d.create_type.eq_ignore_ascii_case(name)
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Rw => "rw",
        Access::Rdonly => "rdonly",
        Access::Noaccess => "noaccess",
    }
}

/// A monolithicSparse or streamOptimized file: header, embedded descriptor, tables.
fn open_monolithic(
    file: Arc<ImageFile>,
    v: &mut Verdict<'_>,
) -> Result<Option<VmdkImage>, ImageError> {
    let Some((h, footer)) = sparse::judge_header(&file, "", true, v)? else {
        return Ok(None);
    };
    let base = h.descriptor_offset * SECTOR;
    // Bounded: at most 1 MiB, inside the file (header rules).
    let mut text = vec![0u8; (h.descriptor_size * SECTOR) as usize];
    file.read_exact_at(&mut text, base)?;
    let d = match descriptor::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            refuse_descriptor(v, e, base);
            return Ok(None);
        }
    };
    if !EMBEDDED_TYPES.iter().any(|t| create_type_is(&d, t)) {
        v.refuse(
            "vmdk.create_type",
            "descriptor createType",
            base,
            format!(
                "{:?} in a sparse file: an embedded descriptor must be monolithicSparse or streamOptimized; a split disk is opened through its descriptor file",
                d.create_type
            ),
        );
        return Ok(None);
    }
    let stream = create_type_is(&d, "streamOptimized");
    if stream != h.stream_optimized() {
        v.refuse(
            "vmdk.create_type",
            "descriptor createType",
            base,
            format!(
                "{:?} but the header {} compressed grains",
                d.create_type,
                if h.stream_optimized() {
                    "has"
                } else {
                    "has no"
                }
            ),
        );
        return Ok(None);
    }
    let [e] = d.extents.as_slice() else {
        v.refuse(
            "vmdk.extent_count",
            "descriptor",
            base,
            format!(
                "{} extents: a {} file holds exactly one, itself",
                d.extents.len(),
                d.create_type
            ),
        );
        return Ok(None);
    };
    let at = base + e.at;
    let field = format!("descriptor line {}", e.line);
    if e.kind != ExtentType::Sparse || e.access == Access::Noaccess {
        v.refuse(
            "vmdk.extent_type",
            &field,
            at,
            "the one extent of a sparse file must be a readable SPARSE extent".into(),
        );
        return Ok(None);
    }
    if e.sectors != h.capacity {
        v.refuse(
            "vmdk.extent_size",
            &field,
            at,
            format!(
                "the extent has {} sectors but the header's capacity is {}: extents must cover the disk exactly",
                e.sectors, h.capacity
            ),
        );
        return Ok(None);
    }
    let Some(ext) = sparse::load(file, &h, "", footer, v)? else {
        return Ok(None);
    };
    let len = ext.capacity();
    let details = VmdkDetails {
        create_type: d.create_type.clone(),
        cid: d.cid.clone(),
        descriptor_offset: base,
        extents: vec![VmdkExtentDetails {
            kind: "sparse",
            access: access_name(e.access),
            disk_offset: 0,
            length: len,
            file: Some(e.file.clone()),
            file_offset: None,
            sparse: Some(ext.details.clone()),
        }],
    };
    Ok(Some(VmdkImage {
        pieces: vec![Piece {
            start: 0,
            len,
            source: Source::Sparse(Box::new(ext)),
        }],
        virtual_size: len,
        details,
    }))
}

/// A descriptor file and the extent files it names.
fn open_descriptor(
    file: Arc<ImageFile>,
    v: &mut Verdict<'_>,
) -> Result<Option<VmdkImage>, ImageError> {
    let size = file.size();
    if size > MAX_DESCRIPTOR {
        v.refuse(
            "vmdk.descriptor_size",
            "descriptor",
            0,
            format!("a descriptor file of {size} bytes passes the 1 MiB limit"),
        );
        return Ok(None);
    }
    let text = file.read_upto(0, size as usize)?;
    let d = match descriptor::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            refuse_descriptor(v, e, 0);
            return Ok(None);
        }
    };
    let Some(&(create_type, want)) = DESCRIPTOR_TYPES.iter().find(|(t, _)| create_type_is(&d, t))
    else {
        v.refuse(
            "vmdk.create_type",
            "descriptor createType",
            0,
            format!(
                "{:?} is not a subformat imgport reads (monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat); ESXi (vmfs*) and differencing disks are exported or merged first",
                d.create_type
            ),
        );
        return Ok(None);
    };
    let mut opened = files::Opened::new(&file)?;
    let mut pieces = Vec::new();
    let mut extents = Vec::new();
    let mut total = 0u64;
    for e in &d.extents {
        let field = format!("descriptor line {}", e.line);
        if e.access == Access::Noaccess {
            v.refuse(
                "vmdk.extent_access",
                &field,
                e.at,
                "a NOACCESS extent cannot be read".into(),
            );
            return Ok(None);
        }
        if e.kind != want && e.kind != ExtentType::Zero {
            v.refuse(
                "vmdk.extent_type",
                &field,
                e.at,
                format!(
                    "a {create_type} disk has {want:?} extents, not {:?}",
                    e.kind
                ),
            );
            return Ok(None);
        }
        let Some(next) = total
            .checked_add(e.sectors)
            .filter(|&t| t <= MAX_CAPACITY_SECTORS)
        else {
            v.refuse(
                "vmdk.capacity",
                &field,
                e.at,
                format!(
                    "the extents pass imgport's limit of {MAX_CAPACITY_SECTORS} sectors (64 TiB)"
                ),
            );
            return Ok(None);
        };
        if e.sectors == 0 {
            v.refuse(
                "vmdk.extent_size",
                &field,
                e.at,
                "an extent of 0 sectors".into(),
            );
            return Ok(None);
        }
        let start = total * SECTOR;
        let len = e.sectors * SECTOR;
        total = next;
        let mut detail = VmdkExtentDetails {
            kind: "zero",
            access: access_name(e.access),
            disk_offset: start,
            length: len,
            file: None,
            file_offset: None,
            sparse: None,
        };
        let source = if e.kind == ExtentType::Zero {
            Source::Zero
        } else {
            let f = match opened.open(file.path(), &e.file) {
                Ok(f) => f,
                Err(rule) => {
                    v.refuse("vmdk.extent_file", &field, e.at, rule);
                    return Ok(None);
                }
            };
            detail.file = Some(e.file.clone());
            if e.kind == ExtentType::Flat {
                let off = e.offset.checked_mul(SECTOR);
                let end = off.and_then(|o| o.checked_add(len));
                if end.is_none_or(|end| end > f.size()) {
                    v.refuse(
                        "vmdk.extent_past_eof",
                        &field,
                        e.at,
                        format!(
                            "the flat extent ({len} bytes at sector {} of {:?}) passes the end of that file ({} bytes)",
                            e.offset,
                            e.file,
                            f.size()
                        ),
                    );
                    return Ok(None);
                }
                detail.kind = "flat";
                detail.file_offset = Some(e.offset * SECTOR);
                Source::Flat {
                    file: f,
                    offset: e.offset * SECTOR,
                }
            } else {
                let label = format!("extent {:?}", e.file);
                let Some((h, footer)) = sparse::judge_header(&f, &label, false, v)? else {
                    return Ok(None);
                };
                if h.capacity != e.sectors {
                    v.refuse(
                        "vmdk.extent_size",
                        &field,
                        e.at,
                        format!(
                            "the extent has {} sectors but {:?} holds {}: extents must cover the disk exactly",
                            e.sectors, e.file, h.capacity
                        ),
                    );
                    return Ok(None);
                }
                let Some(ext) = sparse::load(f, &h, &label, footer, v)? else {
                    return Ok(None);
                };
                detail.kind = "sparse";
                detail.sparse = Some(ext.details.clone());
                Source::Sparse(Box::new(ext))
            }
        };
        extents.push(detail);
        pieces.push(Piece { start, len, source });
    }
    Ok(Some(VmdkImage {
        pieces,
        virtual_size: total * SECTOR,
        details: VmdkDetails {
            create_type: d.create_type.clone(),
            cid: d.cid.clone(),
            descriptor_offset: 0,
            extents,
        },
    }))
}

impl DiskImage for VmdkImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Vmdk
    }

    fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size, buf.len(), offset)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let i = self.pieces.partition_point(|p| p.start + p.len <= pos);
            let Some(p) = self.pieces.get(i) else {
                return Err(ImageError::OutOfRange {
                    offset,
                    length: buf.len() as u64,
                    size: self.virtual_size,
                });
            };
            let within = pos - p.start;
            let n = ((p.len - within) as usize).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match &p.source {
                Source::Flat { file, offset } => file.read_exact_at(chunk, offset + within)?,
                Source::Sparse(s) => s.read(chunk, within)?,
                Source::Zero => chunk.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        let mut out = Vec::new();
        for p in &self.pieces {
            let inner = match &p.source {
                Source::Flat { file, offset } => {
                    super::raw::file_extents_from(file, *offset, p.len)?
                }
                Source::Sparse(s) => s.extents(),
                Source::Zero => vec![Extent {
                    offset: 0,
                    length: p.len,
                    kind: ExtentKind::Zero,
                }],
            };
            for e in inner {
                push_extent(
                    &mut out,
                    Extent {
                        offset: p.start + e.offset,
                        ..e
                    },
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

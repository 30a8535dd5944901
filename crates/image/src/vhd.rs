//! VHD (Microsoft Virtual Hard Disk Image Format Specification v1.0, 2006) fixed and dynamic
//! images: footer, dynamic-disk header and BAT parsing, the safety verdict (`vhd.*` findings),
//! the virtual size exactly as QEMU ≥ 10 (`block/vpc.c`) computes it, and reads.
//!
//! Differencing disks are refused, never read: their unallocated blocks live in a parent file.
//! Reading never writes and never follows a name found in the file; [`write`] lays out the
//! footer and header the converter writes, with the same offsets and checksum.
//!
//! Kept whole: footer decoding, its checks and the reads are one format's reader; the dynamic disk,
//! geometry and writer already live in `vhd/`.

use imgport_base::bytes::{be16, be32, be64};
use std::sync::Arc;

use serde::Serialize;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Severity, Verdict,
    check_read, push_extent,
};

mod dynamic;
mod geometry;
pub mod write;

pub use geometry::{Geometry, SizeSource, chs_geometry, chs_round_up, qemu_size};

/// Size of the hard disk footer (spec "Hard Disk Footer Format").
pub const FOOTER_LEN: usize = 512;
/// Virtual PC before 2004 wrote the footer one byte short (the last reserved byte dropped).
pub const LEGACY_FOOTER_LEN: usize = 511;
/// Size of the dynamic disk header (spec "Dynamic Disk Header Format").
pub const DYN_HEADER_LEN: usize = 1024;
/// Footer cookie.
pub const COOKIE: &[u8; 8] = b"conectix";
/// Dynamic disk header cookie.
pub const DYN_COOKIE: &[u8; 8] = b"cxsparse";
/// The only footer and dynamic-header version the spec defines.
pub const VERSION: u32 = 0x0001_0000;
/// Disk type 2: the data region is the disk.
pub const TYPE_FIXED: u32 = 2;
/// Disk type 3: blocks allocated on demand through the BAT.
pub const TYPE_DYNAMIC: u32 = 3;
/// Disk type 4: a dynamic disk whose unallocated blocks come from a parent file.
pub const TYPE_DIFFERENCING: u32 = 4;
/// BAT entry of a block that is not allocated.
pub const BAT_UNALLOCATED: u32 = 0xFFFF_FFFF;
/// QEMU's `VHD_MAX_SECTORS`: a virtual disk of at most 2040 GiB.
pub const MAX_SECTORS: u64 = 0xFF00_0000;
/// QEMU's `VHD_MAX_GEOMETRY`: the CHS product meaning "use current_size instead".
pub const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
/// Largest BAT we load (64 MiB): with the usual 2 MiB blocks this covers 32 PiB, far beyond
/// [`MAX_SECTORS`]; a larger table is refused rather than allocated.
pub const MAX_BAT_ENTRIES: u32 = 16 << 20;

const SECTOR: u64 = 512;

/// Footer field offsets (spec "Hard Disk Footer Format").
mod foot {
    pub const FEATURES: usize = 8;
    pub const VERSION: usize = 12;
    pub const DATA_OFFSET: usize = 16;
    pub const TIMESTAMP: usize = 24;
    pub const CREATOR_APP: usize = 28;
    pub const CREATOR_VERSION: usize = 32;
    pub const CREATOR_OS: usize = 36;
    pub const ORIGINAL_SIZE: usize = 40;
    pub const CURRENT_SIZE: usize = 48;
    pub const CYLINDERS: usize = 56;
    pub const HEADS: usize = 58;
    pub const SECTORS: usize = 59;
    pub const DISK_TYPE: usize = 60;
    pub const CHECKSUM: usize = 64;
    pub const UUID: usize = 68;
    pub const SAVED_STATE: usize = 84;
}

/// Dynamic disk header field offsets (spec "Dynamic Disk Header Format").
mod dynh {
    pub const DATA_OFFSET: usize = 8;
    pub const TABLE_OFFSET: usize = 16;
    pub const VERSION: usize = 24;
    pub const MAX_TABLE_ENTRIES: usize = 28;
    pub const BLOCK_SIZE: usize = 32;
    pub const CHECKSUM: usize = 36;
}

/// The spec's checksum: one's complement of the byte sum, the 4-byte checksum field at
/// `field` counted as zero.
pub fn checksum(buf: &[u8], field: usize) -> u32 {
    let sum = buf.iter().enumerate().fold(0u32, |acc, (i, &b)| {
        if (field..field + 4).contains(&i) {
            acc
        } else {
            acc.wrapping_add(u32::from(b))
        }
    });
    !sum
}

/// A 4-byte footer tag as text, non-printable bytes escaped (`wa\0\0`).
fn creator_text(tag: [u8; 4]) -> String {
    tag.iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

/// The decoded hard disk footer.
#[derive(Debug, Clone)]
struct Footer {
    /// The bytes as read (511 or 512), for the copy-at-0 comparison.
    raw: Vec<u8>,
    features: u32,
    version: u32,
    data_offset: u64,
    timestamp: u32,
    creator_app: [u8; 4],
    creator_version: u32,
    creator_os: [u8; 4],
    original_size: u64,
    current_size: u64,
    geometry: Geometry,
    disk_type: u32,
    checksum: u32,
    uuid: [u8; 16],
    saved_state: u8,
}

impl Footer {
    /// Decodes a 511- or 512-byte footer (a short one reads as if zero-padded).
    fn parse(raw: &[u8]) -> Self {
        let mut b = [0u8; FOOTER_LEN];
        let n = raw.len().min(FOOTER_LEN);
        b[..n].copy_from_slice(&raw[..n]);
        let tag = |off: usize| [b[off], b[off + 1], b[off + 2], b[off + 3]];
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[foot::UUID..foot::UUID + 16]);
        Self {
            raw: raw[..n].to_vec(),
            features: be32(&b, foot::FEATURES),
            version: be32(&b, foot::VERSION),
            data_offset: be64(&b, foot::DATA_OFFSET),
            timestamp: be32(&b, foot::TIMESTAMP),
            creator_app: tag(foot::CREATOR_APP),
            creator_version: be32(&b, foot::CREATOR_VERSION),
            creator_os: tag(foot::CREATOR_OS),
            original_size: be64(&b, foot::ORIGINAL_SIZE),
            current_size: be64(&b, foot::CURRENT_SIZE),
            geometry: Geometry {
                cylinders: be16(&b, foot::CYLINDERS),
                heads: b[foot::HEADS],
                sectors_per_track: b[foot::SECTORS],
            },
            disk_type: be32(&b, foot::DISK_TYPE),
            checksum: be32(&b, foot::CHECKSUM),
            uuid,
            saved_state: b[foot::SAVED_STATE],
        }
    }
}

/// Dynamic-disk facts for [`VhdDetails`].
#[derive(Debug, Clone, Serialize)]
pub struct VhdDynamicDetails {
    /// File offset of the `cxsparse` header (the footer's data offset).
    pub header_offset: u64,
    /// File offset of the block allocation table.
    pub bat_offset: u64,
    /// Number of BAT entries.
    pub max_table_entries: u32,
    /// Bytes of virtual disk per block.
    pub block_size: u32,
    /// Bytes of the sector bitmap in front of each block.
    pub bitmap_size: u64,
    /// Blocks with a BAT entry.
    pub allocated_blocks: u64,
    /// `max_table_entries × block_size`, which ECS requires to equal the disk size.
    pub table_coverage: u64,
}

/// Facts about a VHD file.
#[derive(Debug, Clone, Serialize)]
pub struct VhdDetails {
    /// `fixed` or `dynamic`.
    pub disk_type: &'static str,
    /// Creator application tag (`qemu`, `vpc `, `win `, `wa\x00\x00` …).
    pub creator_app: String,
    /// Creator version as `major.minor`.
    pub creator_version: String,
    /// Creator host OS tag (`Wi2k`, `Mac `).
    pub creator_host_os: String,
    /// Seconds since 2000-01-01 00:00 UTC.
    pub timestamp: u32,
    /// Footer features field (bit 0 temporary, bit 1 reserved).
    pub features: u32,
    /// Size of the disk at creation.
    pub original_size: u64,
    /// Size of the disk now, as Hyper-V, Azure and ECS read it.
    pub current_size: u64,
    /// The stored CHS geometry.
    pub geometry: Geometry,
    /// Bytes the geometry addresses, as Virtual PC reads it.
    pub chs_size: u64,
    /// The size QEMU (and imgport) uses.
    pub virtual_size: u64,
    /// Which field the virtual size comes from.
    pub size_source: SizeSource,
    /// Why QEMU takes that field.
    pub size_reason: &'static str,
    /// Footer length at the end of the file: 512, or 511 for Virtual PC before 2004.
    pub footer_length: usize,
    /// File offset of the footer.
    pub footer_offset: u64,
    /// The VM was saved with this disk attached (its contents may be inconsistent).
    pub saved_state: bool,
    /// Disk UUID.
    pub uuid: String,
    /// Dynamic-disk header and BAT facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<Box<VhdDynamicDetails>>,
}

/// How the virtual disk maps onto the file.
enum Layout {
    /// The virtual disk is the first `virtual_size` bytes of the file.
    Fixed,
    /// Blocks through the BAT; each block is `bitmap_size` bytes of bitmap then data.
    Dynamic {
        block_size: u64,
        bitmap_size: u64,
        bat: Vec<u32>,
        details: VhdDynamicDetails,
    },
}

/// A fixed or dynamic VHD.
pub struct VhdImage {
    file: Arc<ImageFile>,
    footer: Footer,
    footer_offset: u64,
    virtual_size: u64,
    size_source: SizeSource,
    size_reason: &'static str,
    layout: Layout,
}

impl VhdImage {
    /// Parses and judges the footer (and dynamic header, BAT); `None` when refused.
    pub fn open(
        file: Arc<ImageFile>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        let mut v = Verdict::new(findings);
        let size = file.size();
        let tail_start = size.saturating_sub(FOOTER_LEN as u64);
        let tail = file.read_upto(tail_start, FOOTER_LEN)?;
        // The footer is the last 512 bytes; a legacy one the last 511 (spec §3.2 note).
        let (footer_offset, footer_len) = if tail.len() == FOOTER_LEN && tail.starts_with(COOKIE) {
            (tail_start, FOOTER_LEN)
        } else if tail.len() >= LEGACY_FOOTER_LEN
            && tail
                .get(tail.len() - LEGACY_FOOTER_LEN..)
                .is_some_and(|t| t.starts_with(COOKIE))
        {
            (size - LEGACY_FOOTER_LEN as u64, LEGACY_FOOTER_LEN)
        } else {
            v.refuse(
                "vhd.cookie",
                "footer cookie",
                tail_start,
                "no \"conectix\" footer in the last 512 (or 511) bytes: the file is truncated or not a VHD; the footer at the end is the authoritative copy".into(),
            );
            return Ok(None);
        };
        let raw = tail
            .get(tail.len() - footer_len..)
            .unwrap_or_default()
            .to_vec();
        let footer = Footer::parse(&raw);
        let at = |field: usize| footer_offset + field as u64;

        // Spec "Checksum"; QEMU refuses a wrong one too ("Incorrect header checksum").
        let want = checksum(&footer.raw, foot::CHECKSUM);
        if want != footer.checksum {
            v.refuse(
                "vhd.footer_checksum",
                "footer checksum",
                at(foot::CHECKSUM),
                format!(
                    "stored {:#010x} but the footer sums to {want:#010x}: the footer is corrupt",
                    footer.checksum
                ),
            );
            return Ok(None);
        }
        if footer.version != VERSION {
            v.refuse(
                "vhd.version",
                "footer file format version",
                at(foot::VERSION),
                format!(
                    "{:#010x} is not the only defined version 0x00010000",
                    footer.version
                ),
            );
        }
        match footer.disk_type {
            TYPE_FIXED | TYPE_DYNAMIC => {}
            TYPE_DIFFERENCING => v.refuse(
                "vhd.differencing",
                "footer disk type",
                at(foot::DISK_TYPE),
                "4 (differencing): unallocated blocks come from a parent file that is not imported (QEMU would silently read zeros there); merge the chain into one disk first".into(),
            ),
            other => v.refuse(
                "vhd.disk_type",
                "footer disk type",
                at(foot::DISK_TYPE),
                format!("{other} is not 2 (fixed) or 3 (dynamic)"),
            ),
        }
        if v.refused {
            return Ok(None);
        }

        let (virtual_size, size_source, size_reason) =
            qemu_size(footer.creator_app, footer.geometry, footer.current_size);
        let chs_size = footer.geometry.sectors() * SECTOR;
        // QEMU: `total_sectors > VHD_MAX_SECTORS` is EFBIG.
        if virtual_size / SECTOR > MAX_SECTORS {
            v.refuse(
                "vhd.too_large",
                "footer current size",
                at(foot::CURRENT_SIZE),
                format!("the virtual size {virtual_size} passes the VHD limit of 2040 GiB"),
            );
        }
        if footer.saved_state != 0 {
            v.note(
                Severity::Warning,
                "vhd.saved_state",
                "footer saved state",
                at(foot::SAVED_STATE),
                "the VM was saved (not shut down) with this disk attached; file systems may be inconsistent".into(),
            );
        }
        if chs_size != footer.current_size {
            let used = match size_source {
                SizeSource::Chs => "the CHS size",
                SizeSource::CurrentSize => "current_size",
            };
            v.note(
                Severity::Info,
                "vhd.chs_size_differs",
                "footer disk geometry",
                at(foot::CYLINDERS),
                format!(
                    "the CHS size {chs_size} ({}/{}/{}) differs from current_size {}; {used} is used because {size_reason}; Hyper-V, Azure and ECS read current_size",
                    footer.geometry.cylinders,
                    footer.geometry.heads,
                    footer.geometry.sectors_per_track,
                    footer.current_size
                ),
            );
        }
        if !footer.current_size.is_multiple_of(SECTOR) {
            v.note(
                Severity::Warning,
                "vhd.size_not_sector_multiple",
                "footer current size",
                at(foot::CURRENT_SIZE),
                format!(
                    "{} is not a multiple of 512; the partial last sector is dropped",
                    footer.current_size
                ),
            );
        }

        // The copy of the footer at offset 0 (dynamic disks only).
        let head = if footer_offset >= FOOTER_LEN as u64 {
            file.read_upto(0, FOOTER_LEN)?
        } else {
            Vec::new()
        };
        let has_copy = head.starts_with(COOKIE);
        let layout = if footer.disk_type == TYPE_FIXED {
            if has_copy {
                // QEMU reads a footer at 0 in preference to the one at the end: a guest that
                // wrote one into the first sector could change how the disk is read.
                v.refuse(
                    "vhd.fixed_header_copy",
                    "first sector",
                    0,
                    "a fixed disk's data starts with a VHD footer; a guest may have written it and QEMU would take it as the footer".into(),
                );
            }
            // The data region is everything before the footer. QEMU does not check it: a
            // larger size reads the footer and then zeros, a smaller one hides data, and
            // Hyper-V/ECS use current_size. Both sizes must therefore be the data region,
            // in whole sectors (QEMU rounds the file length up to a sector to find the footer).
            if footer.current_size != footer_offset
                || virtual_size > footer_offset
                || footer_offset % SECTOR != 0
            {
                v.refuse(
                    "vhd.fixed_size_mismatch",
                    "footer current size",
                    at(foot::CURRENT_SIZE),
                    format!(
                        "a fixed disk of current_size {} (virtual size {virtual_size}) needs a data region of that size in whole sectors, but {footer_offset} bytes precede the footer",
                        footer.current_size
                    ),
                );
            }
            Layout::Fixed
        } else {
            let mut first_diff = None;
            if has_copy {
                first_diff = footer.raw.iter().zip(head.iter()).position(|(a, b)| a != b);
            }
            if !has_copy {
                v.refuse(
                    "vhd.header_copy_mismatch",
                    "footer copy",
                    0,
                    "a dynamic disk must start with a copy of its footer, and there is none (QEMU refuses it too)".into(),
                );
            } else if let Some(d) = first_diff {
                v.refuse(
                    "vhd.header_copy_mismatch",
                    "footer copy",
                    d as u64,
                    format!(
                        "the copy at offset 0 differs from the footer at {footer_offset} (first at byte {d}); QEMU reads the copy, other tools the footer"
                    ),
                );
            }
            match dynamic::open_dynamic(&file, &footer, footer_offset, virtual_size, &mut v)? {
                Some(l) => l,
                None => return Ok(None),
            }
        };
        if v.refused {
            return Ok(None);
        }
        Ok(Some(Self {
            file,
            footer,
            footer_offset,
            virtual_size,
            size_source,
            size_reason,
            layout,
        }))
    }

    /// `fixed` or `dynamic`.
    pub fn subformat(&self) -> &'static str {
        match self.layout {
            Layout::Fixed => "fixed",
            Layout::Dynamic { .. } => "dynamic",
        }
    }

    /// Footer facts, and for dynamic disks the header and BAT facts.
    pub fn details(&self) -> VhdDetails {
        let f = &self.footer;
        let uuid = imgport_base::bytes::uuid_text(&f.uuid);
        VhdDetails {
            disk_type: self.subformat(),
            creator_app: creator_text(f.creator_app),
            creator_version: format!("{}.{}", f.creator_version >> 16, f.creator_version & 0xffff),
            creator_host_os: creator_text(f.creator_os),
            timestamp: f.timestamp,
            features: f.features,
            original_size: f.original_size,
            current_size: f.current_size,
            geometry: f.geometry,
            chs_size: f.geometry.sectors() * SECTOR,
            virtual_size: self.virtual_size,
            size_source: self.size_source,
            size_reason: self.size_reason,
            footer_length: f.raw.len(),
            footer_offset: self.footer_offset,
            saved_state: f.saved_state != 0,
            uuid,
            dynamic: match &self.layout {
                Layout::Fixed => None,
                Layout::Dynamic { details, .. } => Some(Box::new(details.clone())),
            },
        }
    }
}

impl DiskImage for VhdImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Vhd
    }

    fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size, buf.len(), offset)?;
        match &self.layout {
            // Opening checked that the virtual size fits in the data region before the footer.
            Layout::Fixed => self.file.read_exact_at(buf, offset),
            Layout::Dynamic {
                block_size,
                bitmap_size,
                bat,
                ..
            } => {
                let mut done = 0usize;
                while done < buf.len() {
                    let pos = offset + done as u64;
                    let index = pos / block_size;
                    let within = pos % block_size;
                    let n = ((block_size - within) as usize).min(buf.len() - done);
                    let chunk = &mut buf[done..done + n];
                    // QEMU ignores the sector bitmap of a dynamic disk: an allocated block is
                    // read whole, an unallocated one reads zeros.
                    match bat.get(index as usize).copied() {
                        Some(e) if e != BAT_UNALLOCATED => {
                            let at = u64::from(e) * SECTOR + bitmap_size + within;
                            self.file.read_exact_at(chunk, at)?;
                        }
                        _ => chunk.fill(0),
                    }
                    done += n;
                }
                Ok(())
            }
        }
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        match &self.layout {
            Layout::Fixed => super::raw::file_extents(&self.file, self.virtual_size),
            Layout::Dynamic {
                block_size, bat, ..
            } => {
                let mut out = Vec::new();
                let mut pos = 0u64;
                for &e in bat {
                    if pos >= self.virtual_size {
                        break;
                    }
                    let length = (*block_size).min(self.virtual_size - pos);
                    let kind = if e == BAT_UNALLOCATED {
                        ExtentKind::Unallocated
                    } else {
                        ExtentKind::Data
                    };
                    push_extent(
                        &mut out,
                        Extent {
                            offset: pos,
                            length,
                            kind,
                        },
                    );
                    pos += length;
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

//! VHD (Microsoft Virtual Hard Disk Image Format Specification v1.0, 2006) fixed and dynamic
//! images: footer, dynamic-disk header and BAT parsing, the safety verdict (`vhd.*` findings),
//! the virtual size exactly as QEMU ≥ 10 (`block/vpc.c`) computes it, and reads.
//!
//! Differencing disks are refused, never read: their unallocated blocks live in a parent file.
//! Reading never writes and never follows a name found in the file; [`write`] lays out the
//! footer and header the converter writes, with the same offsets and checksum.
//!
//! The spec's constants and checksum (`spec.rs`), the footer (`footer.rs`), the dynamic disk
//! (`dynamic.rs`), geometry and the writer live in `vhd/`; this file judges and reads.

use std::sync::Arc;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Severity, Verdict,
    block_extents, check_read, read_blocks,
};

mod details;
mod dynamic;
mod footer;
mod geometry;
mod spec;
pub mod write;

pub use details::{VhdDetails, VhdDynamicDetails};
pub use geometry::{Geometry, SizeSource, chs_geometry, chs_round_up, qemu_size};
pub use spec::{
    BAT_UNALLOCATED, COOKIE, DYN_COOKIE, DYN_HEADER_LEN, FOOTER_LEN, LEGACY_FOOTER_LEN,
    MAX_BAT_ENTRIES, MAX_GEOMETRY, MAX_SECTORS, TYPE_DIFFERENCING, TYPE_DYNAMIC, TYPE_FIXED,
    VERSION, checksum,
};

use details::Layout;
use footer::Footer;
use spec::{SECTOR, foot};

/// A 4-byte footer tag as text, non-printable bytes escaped (`wa\0\0`).
fn creator_text(tag: [u8; 4]) -> String {
    tag.iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
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
            } => read_blocks(buf, offset, *block_size, |index, within, chunk| {
                // QEMU ignores the sector bitmap of a dynamic disk: an allocated block is
                // read whole, an unallocated one reads zeros.
                match bat.get(index as usize).copied() {
                    Some(e) if e != BAT_UNALLOCATED => {
                        let at = u64::from(e) * SECTOR + bitmap_size + within;
                        self.file.read_exact_at(chunk, at)?;
                    }
                    _ => chunk.fill(0),
                }
                Ok(())
            }),
        }
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        match &self.layout {
            Layout::Fixed => super::raw::file_extents(&self.file, self.virtual_size),
            Layout::Dynamic {
                block_size, bat, ..
            } => {
                let kinds = bat.iter().map(|&e| {
                    if e == BAT_UNALLOCATED {
                        ExtentKind::Unallocated
                    } else {
                        ExtentKind::Data
                    }
                });
                Ok(block_extents(self.virtual_size, *block_size, kinds))
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

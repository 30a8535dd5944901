//! VHDX (Microsoft "VHDX Format Specification" v1.00) fixed and dynamic images, read-only:
//! the file type identifier, the two headers (current one by CRC-32C and sequence number),
//! the region table, the metadata region, the BAT and the log, each judged against the file
//! before use (`vhdx.*` findings), and reads.
//!
//! An input format only: imgport converts VHDX to RAW, VHD or QCOW2 and never writes it.
//! Differencing disks are refused; a log that needs a replay is refused, never ignored (the
//! file is never written). Headers and region tables live in `vhdx/header.rs`, metadata in
//! `vhdx/metadata.rs`, the BAT in `vhdx/bat.rs`, the log in `vhdx/log.rs`.

use std::sync::Arc;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Verdict,
    block_extents, check_read, read_blocks,
};

mod bat;
mod details;
mod header;
mod log;
mod metadata;
pub mod spec;

pub use details::VhdxDetails;

use bat::{Claimed, entry_offset, entry_state};
use spec::{FILE_SIGNATURE, MIB, guid_text, state};

/// A fixed or dynamic VHDX.
pub struct VhdxImage {
    file: Arc<ImageFile>,
    block_size: u64,
    virtual_size: u64,
    /// The BAT's payload block entries in disk order (sector bitmap entries left out).
    payload: Vec<u64>,
    details: VhdxDetails,
}

impl VhdxImage {
    /// Parses and judges the file's structures; `None` when refused.
    pub fn open(
        file: Arc<ImageFile>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        let mut v = Verdict::new(findings);
        let ident = file.read_upto(0, 8 + 512)?;
        if !ident.starts_with(FILE_SIGNATURE) {
            v.refuse(
                "vhdx.signature",
                "file type identifier",
                0,
                "is not \"vhdxfile\"".into(),
            );
            return Ok(None);
        }
        let creator: String = char::decode_utf16(
            ident
                .get(8..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&c| c != 0),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
        let Some(h) = header::current_header(&file, &mut v)? else {
            return Ok(None);
        };
        if v.refused {
            return Ok(None);
        }
        log::judge_log(&file, &h, &mut v)?;
        if v.refused {
            return Ok(None);
        }
        let Some(r) = header::regions(&file, &h, &mut v)? else {
            return Ok(None);
        };
        let Some(md) = metadata::read_metadata(&file, r.metadata, &mut v)? else {
            return Ok(None);
        };
        let mut claimed: Claimed = vec![
            (0, MIB, "the header section".into()),
            (
                r.metadata.offset,
                r.metadata.offset + r.metadata.length,
                "the metadata region".into(),
            ),
            (
                r.bat.offset,
                r.bat.offset + r.bat.length,
                "the BAT region".into(),
            ),
        ];
        if h.log_length > 0 {
            claimed.push((
                h.log_offset,
                h.log_offset + u64::from(h.log_length),
                "the log".into(),
            ));
        }
        let Some(payload) =
            bat::read_bat(&file, &md, r.bat.offset, r.bat.length, &claimed, &mut v)?
        else {
            return Ok(None);
        };
        if v.refused {
            return Ok(None);
        }
        let count = |s: u8| payload.iter().filter(|&&e| entry_state(e) == s).count() as u64;
        let details = VhdxDetails {
            disk_type: if md.leave_blocks_allocated {
                "fixed"
            } else {
                "dynamic"
            },
            creator,
            header_offset: h.offset,
            header_sequence: h.sequence,
            log_offset: h.log_offset,
            log_length: h.log_length,
            log_guid_set: h.log_guid != [0u8; 16],
            region_table_offset: r.table_offset,
            bat_offset: r.bat.offset,
            bat_length: r.bat.length,
            metadata_offset: r.metadata.offset,
            metadata_length: r.metadata.length,
            block_size: md.block_size,
            logical_sector_size: md.logical_sector,
            physical_sector_size: md.physical_sector,
            chunk_ratio: bat::chunk_ratio(&md),
            blocks: payload.len() as u64,
            present_blocks: count(state::FULLY_PRESENT),
            zero_blocks: count(state::ZERO),
            disk_id: md.disk_id.as_ref().map(guid_text),
        };
        Ok(Some(Self {
            file,
            block_size: u64::from(md.block_size),
            virtual_size: md.virtual_size,
            payload,
            details,
        }))
    }

    /// `fixed` or `dynamic`.
    pub fn subformat(&self) -> &'static str {
        self.details.disk_type
    }

    /// Header, region, metadata and BAT facts.
    pub fn details(&self) -> VhdxDetails {
        self.details.clone()
    }
}

impl DiskImage for VhdxImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Vhdx
    }

    fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size, buf.len(), offset)?;
        read_blocks(buf, offset, self.block_size, |index, within, chunk| {
            match self.payload.get(index as usize).copied() {
                // Opening checked every present block inside the file.
                Some(e) if entry_state(e) == state::FULLY_PRESENT => {
                    self.file.read_exact_at(chunk, entry_offset(e) + within)?;
                }
                // NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED: no parent, so zeros.
                _ => chunk.fill(0),
            }
            Ok(())
        })
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        let kinds = self.payload.iter().map(|&e| match entry_state(e) {
            state::FULLY_PRESENT => ExtentKind::Data,
            state::ZERO => ExtentKind::Zero,
            _ => ExtentKind::Unallocated,
        });
        Ok(block_extents(self.virtual_size, self.block_size, kinds))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

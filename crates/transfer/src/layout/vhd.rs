//! VHD output layouts (Microsoft VHD spec v1.0): dynamic (footer copy,
//! `cxsparse` header, BAT, 2 MiB blocks each preceded by a 512-byte sector bitmap, footer) and
//! fixed (the disk, then the footer). The footer and header bytes come from
//! [`imgport_image::vhd::write`], beside the reader; this file plans where they go.
//!
//! Size rules: ECS refuses a dynamic VHD whose size is not `MaxTableEntries × BlockSize`
//! (`InvalidVHDImage.IncorrectSize`), so the size is rounded up to whole 2 MiB blocks; a fixed
//! VHD is rounded up to whole MiB (Azure's rule).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::segments::{
    Layout, LayoutError, OutputFormat, SECTOR, SegmentBuilder, VHD_BLOCK_SIZE, round_up,
    rounding_notice, unit_runs,
};
use imgport_image::Extent;
use imgport_image::vhd::write::{dynamic_header, footer};
use imgport_image::vhd::{DYN_HEADER_LEN, FOOTER_LEN, MAX_SECTORS, TYPE_DYNAMIC, TYPE_FIXED};

/// Largest virtual size QEMU accepts for VHD (`VHD_MAX_SECTORS` = 0xFF000000 sectors).
const VHD_MAX_SIZE: u64 = MAX_SECTORS * SECTOR;

/// A stable disk identifier derived from the disk's size and allocation, so that converting
/// the same disk twice gives the same bytes (and the same SHA-256).
fn disk_uuid(size: u64, data: &[Extent]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"imgport vhd uuid");
    h.update(size.to_be_bytes());
    for e in data {
        h.update(e.offset.to_be_bytes());
        h.update(e.length.to_be_bytes());
    }
    let d = h.finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x40; // RFC 4122 version 4 layout
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

fn rounded(size: u64, align: u64, what: &str) -> Result<(u64, Vec<String>), LayoutError> {
    let too_large = || LayoutError::TooLarge {
        format: "vhd",
        size,
        max: VHD_MAX_SIZE,
    };
    let v = round_up(size, align).ok_or_else(too_large)?;
    if v > VHD_MAX_SIZE {
        return Err(too_large());
    }
    Ok((v, rounding_notice("VHD virtual size", size, v, what)))
}

/// Plans a dynamic VHD.
pub(super) fn dynamic(source_size: u64, data: &[Extent]) -> Result<Layout, LayoutError> {
    let (size, notices) = rounded(
        source_size,
        OutputFormat::Vhd.size_alignment(),
        "a whole number of 2 MiB blocks, so that size = MaxTableEntries x BlockSize as ECS requires (InvalidVHDImage.IncorrectSize otherwise)",
    )?;
    let entries = size / VHD_BLOCK_SIZE; // ≤ 0xFF000000/4096: fits u32
    let bat_offset = (FOOTER_LEN + DYN_HEADER_LEN) as u64;
    let bat_len = round_up(entries * 4, SECTOR).unwrap_or(entries * 4);
    let first_block = bat_offset + bat_len;
    let stride = SECTOR + VHD_BLOCK_SIZE; // sector bitmap (4096 bits = 512 bytes) + data

    let runs = unit_runs(data, VHD_BLOCK_SIZE);
    let mut bat = vec![0xffu8; bat_len as usize];
    let mut pos = first_block;
    for &(start, count) in &runs {
        for block in start..start + count {
            let sector = u32::try_from(pos / SECTOR).map_err(|_| LayoutError::TooLarge {
                format: "vhd",
                size,
                max: VHD_MAX_SIZE,
            })?;
            let i = block as usize * 4;
            if let Some(slot) = bat.get_mut(i..i + 4) {
                slot.copy_from_slice(&sector.to_be_bytes());
            }
            pos += stride;
        }
    }

    let uuid = disk_uuid(size, data);
    let foot: Arc<[u8]> = Arc::new(footer(
        TYPE_DYNAMIC,
        bat_offset - DYN_HEADER_LEN as u64,
        size,
        uuid,
    ));
    let bitmap: Arc<[u8]> = Arc::from(vec![0xffu8; SECTOR as usize]);
    let mut b = SegmentBuilder::new();
    b.bytes(foot.clone());
    b.bytes(Arc::new(dynamic_header(
        bat_offset,
        entries as u32,
        VHD_BLOCK_SIZE as u32,
    )));
    b.bytes(Arc::from(bat));
    let mut cursor = 0;
    for &(start, count) in &runs {
        for block in start..start + count {
            b.bytes(bitmap.clone());
            let v = block * VHD_BLOCK_SIZE;
            b.virtual_range(data, &mut cursor, v, v + VHD_BLOCK_SIZE);
        }
    }
    b.bytes(foot);
    Ok(b.layout(OutputFormat::Vhd, source_size, size, notices))
}

/// Plans a fixed VHD.
pub(super) fn fixed(source_size: u64, data: &[Extent]) -> Result<Layout, LayoutError> {
    let (size, notices) = rounded(
        source_size,
        OutputFormat::VhdFixed.size_alignment(),
        "a whole number of MiB",
    )?;
    let mut b = SegmentBuilder::new();
    let mut cursor = 0;
    b.virtual_range(data, &mut cursor, 0, size);
    b.bytes(Arc::new(footer(
        TYPE_FIXED,
        u64::MAX,
        size,
        disk_uuid(size, data),
    )));
    Ok(b.layout(OutputFormat::VhdFixed, source_size, size, notices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_layout_allocates_only_data_blocks() {
        let data = [Extent {
            offset: 3 * VHD_BLOCK_SIZE + 10,
            length: 5,
            kind: imgport_image::ExtentKind::Data,
        }];
        let l = dynamic(8 * VHD_BLOCK_SIZE - 1000, &data).unwrap();
        assert_eq!(l.virtual_size, 8 * VHD_BLOCK_SIZE);
        assert_eq!(l.notices.len(), 1);
        // footer + header + BAT (8 entries → 512) + one block + footer
        assert_eq!(l.size, 512 + 1024 + 512 + 512 + VHD_BLOCK_SIZE + 512);
    }
}

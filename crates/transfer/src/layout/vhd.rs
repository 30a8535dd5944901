//! VHD output layouts (Microsoft VHD spec v1.0): dynamic (footer copy,
//! `cxsparse` header, BAT, 2 MiB blocks each preceded by a 512-byte sector bitmap, footer) and
//! fixed (the disk, then the footer).
//!
//! Size rules: ECS refuses a dynamic VHD whose size is not `MaxTableEntries × BlockSize`
//! (`InvalidVHDImage.IncorrectSize`), so the size is rounded up to whole 2 MiB blocks; a fixed
//! VHD is rounded up to whole MiB (Azure's rule). Readers that size the disk by CHS geometry
//! (QEMU for creators `vpc `/`qemu`, and for every creator before 10.0 unless the CHS is the
//! maximum) would see a smaller disk, so the geometry is written exact when the spec's
//! algorithm gives an exact product and as the maximum 65535/16/255 otherwise: either way
//! every QEMU version takes `current_size`.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Layout, LayoutError, OutputFormat, SECTOR, SegmentBuilder, round_up, unit_runs};
use imgport_image::Extent;

/// Block size of dynamic VHD output (the spec's and QEMU's default).
pub const VHD_BLOCK_SIZE: u64 = 2 * 1024 * 1024;
/// Largest virtual size QEMU accepts for VHD (`VHD_MAX_SECTORS` = 0xFF000000 sectors).
const VHD_MAX_SIZE: u64 = 0xFF00_0000 * SECTOR;
/// Fixed VHD sizes are whole MiB.
pub(super) const FIXED_ALIGN: u64 = 1024 * 1024;
const FOOTER_LEN: usize = 512;
const DYN_HEADER_LEN: usize = 1024;
/// Creator application written in the footer (offset 28).
const CREATOR_APP: &[u8; 4] = b"imgp";
/// Creator version (offset 32): 0.1.
const CREATOR_VERSION: u32 = 0x0000_0001;
/// Creator host OS (offset 36), as QEMU writes it.
const CREATOR_OS: &[u8; 4] = b"Wi2k";
const DISK_FIXED: u32 = 2;
const DISK_DYNAMIC: u32 = 3;
/// Geometry that makes every QEMU version use `current_size` (`VHD_MAX_GEOMETRY`).
const MAX_CHS: (u16, u8, u8) = (65535, 16, 255);

/// CHS geometry of a disk of `sectors` sectors, by the algorithm of the VHD spec appendix.
/// Returns the exact geometry when its product equals `sectors`, else the maximum geometry.
pub fn chs_geometry(sectors: u64) -> (u16, u8, u8) {
    let ts = sectors.min(65535 * 16 * 255);
    let (spt, heads, cth);
    if ts >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cth = ts / spt;
    } else {
        let mut s = 17;
        let mut c = ts / s;
        let mut h = c.div_ceil(1024).max(4);
        if c >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            c = ts / s;
        }
        if c >= h * 1024 {
            s = 63;
            h = 16;
            c = ts / s;
        }
        spt = s;
        heads = h;
        cth = c;
    }
    let cyl = cth / heads;
    if cyl * heads * spt == sectors && cyl <= 65535 {
        (cyl as u16, heads as u8, spt as u8)
    } else {
        MAX_CHS
    }
}

/// One's complement of the byte sum (spec: footer and dynamic header checksum).
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
}

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

fn footer(disk_type: u32, data_offset: u64, size: u64, uuid: [u8; 16]) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit always set
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    // 24..28 timestamp left 0 so the output is reproducible.
    f[28..32].copy_from_slice(CREATOR_APP);
    f[32..36].copy_from_slice(&CREATOR_VERSION.to_be_bytes());
    f[36..40].copy_from_slice(CREATOR_OS);
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = chs_geometry(size / SECTOR);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&disk_type.to_be_bytes());
    f[68..84].copy_from_slice(&uuid);
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

fn dynamic_header(bat_offset: u64, entries: u32) -> [u8; DYN_HEADER_LEN] {
    let mut h = [0u8; DYN_HEADER_LEN];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&bat_offset.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&entries.to_be_bytes());
    h[32..36].copy_from_slice(&(VHD_BLOCK_SIZE as u32).to_be_bytes());
    let sum = checksum(&h);
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    h
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
    let mut notices = Vec::new();
    if v != size {
        notices.push(format!(
            "VHD virtual size rounded up from {size} to {v} bytes ({what}); the padding reads as zeros"
        ));
    }
    Ok((v, notices))
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
        DISK_DYNAMIC,
        bat_offset - DYN_HEADER_LEN as u64,
        size,
        uuid,
    ));
    let bitmap: Arc<[u8]> = Arc::from(vec![0xffu8; SECTOR as usize]);
    let mut b = SegmentBuilder::new();
    b.bytes(foot.clone());
    b.bytes(Arc::new(dynamic_header(bat_offset, entries as u32)));
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
    let (segments, total) = b.finish();
    Ok(Layout {
        format: OutputFormat::Vhd,
        source_size,
        virtual_size: size,
        size: total,
        segments,
        notices,
        qcow2: None,
    })
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
        DISK_FIXED,
        u64::MAX,
        size,
        disk_uuid(size, data),
    )));
    let (segments, total) = b.finish();
    Ok(Layout {
        format: OutputFormat::VhdFixed,
        source_size,
        virtual_size: size,
        size: total,
        segments,
        notices,
        qcow2: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_exact_or_maximum() {
        // 129 MiB is not CHS-representable (qemu rounds it to 972/16/17 = 135,364,608 bytes).
        assert_eq!(chs_geometry(129 * 2048), MAX_CHS);
        assert_eq!(chs_geometry(972 * 16 * 17), (972, 16, 17));
        assert_eq!(chs_geometry(40 << 21), MAX_CHS);
    }

    #[test]
    fn footer_checksum_verifies() {
        let f = footer(DISK_DYNAMIC, 512, 64 << 20, [7; 16]);
        let stored = u32::from_be_bytes(f[64..68].try_into().unwrap());
        let mut z = f;
        z[64..68].fill(0);
        assert_eq!(checksum(&z), stored);
    }

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

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
    Layout, LayoutError, OutputFormat, Piece, SECTOR, SegmentBuilder, TableBytes, VHD_BLOCK_SIZE,
    round_up, rounding_notice, unit_runs,
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

/// The block allocation table of a dynamic VHD, made on read from the runs of allocated
/// blocks: its memory follows the data, not the disk's size (a 2 TiB disk's table is 4 MiB).
#[derive(Debug)]
pub struct BatMap {
    /// Runs of allocated blocks: first block, block count, sector of the first one's bitmap.
    runs: Vec<(u64, u64, u64)>,
    /// Sectors from one block's bitmap to the next's.
    stride: u64,
}

impl BatMap {
    /// The table of `runs` (first block, count; sorted), whose blocks are stored in that order
    /// from sector `first_sector` on, `stride` sectors apart. `None` when a sector does not fit
    /// the table's 32 bits.
    fn new(runs: &[(u64, u64)], first_sector: u64, stride: u64) -> Option<Self> {
        let mut sector = first_sector;
        let mut out = Vec::with_capacity(runs.len());
        for &(start, count) in runs {
            out.push((start, count, sector));
            sector = sector.checked_add(count.checked_mul(stride)?)?;
        }
        let last = sector.checked_sub(stride).filter(|_| !runs.is_empty());
        u32::try_from(last.unwrap_or(0)).ok()?;
        Some(Self { runs: out, stride })
    }
}

impl TableBytes for BatMap {
    /// Big-endian sectors, `0xFFFFFFFF` for an unallocated block and in the padding to a whole
    /// sector.
    fn fill(&self, skip: u64, dst: &mut [u8]) {
        dst.fill(0xff);
        let end = skip + dst.len() as u64;
        let (first, last) = (skip / 4, end.div_ceil(4));
        let at = self.runs.partition_point(|&(s, n, _)| s + n <= first);
        for &(start, count, sector) in &self.runs[at..] {
            if start >= last {
                break;
            }
            for block in start.max(first)..(start + count).min(last) {
                let entry = (sector + (block - start) * self.stride) as u32;
                let bytes = entry.to_be_bytes();
                let (from, to) = ((block * 4).max(skip), (block * 4 + 4).min(end));
                let src = &bytes[(from - block * 4) as usize..(to - block * 4) as usize];
                dst[(from - skip) as usize..(to - skip) as usize].copy_from_slice(src);
            }
        }
    }
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
    let bat =
        BatMap::new(&runs, first_block / SECTOR, stride / SECTOR).ok_or(LayoutError::TooLarge {
            format: "vhd",
            size,
            max: VHD_MAX_SIZE,
        })?;

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
    b.push(bat_len, Piece::Table(Arc::new(bat)));
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

    #[test]
    fn the_generated_table_reads_like_the_whole_table_at_any_offset() {
        let runs = [(0u64, 2u64), (5, 1), (9, 3), (200, 1)];
        let (first, stride) = (4u64, 4097u64);
        let entries = 300u64;
        let bat_len = round_up(entries * 4, SECTOR).unwrap();
        // The table written out whole, as the format describes it.
        let mut whole = vec![0xffu8; bat_len as usize];
        let mut sector = first;
        for &(start, count) in &runs {
            for block in start..start + count {
                let i = block as usize * 4;
                whole[i..i + 4].copy_from_slice(&(sector as u32).to_be_bytes());
                sector += stride;
            }
        }
        let map = BatMap::new(&runs, first, stride).unwrap();
        for (skip, len) in [
            (0, bat_len),
            (1, 7),
            (3, 30),
            (19, 21),
            (800, 400),
            (1199, 1),
        ] {
            let mut got = vec![0u8; len as usize];
            map.fill(skip, &mut got);
            assert_eq!(
                got,
                whole[skip as usize..(skip + len) as usize],
                "{skip}+{len}"
            );
        }
        // A sector past 32 bits cannot be named.
        assert!(BatMap::new(&[(0, 2)], u64::from(u32::MAX), 1).is_none());
    }

    #[test]
    fn a_large_sparse_disk_keeps_no_table_in_memory() {
        let data = [Extent {
            offset: 7 * VHD_BLOCK_SIZE,
            length: VHD_BLOCK_SIZE,
            kind: imgport_image::ExtentKind::Data,
        }];
        let l = dynamic(2040 << 30, &data).unwrap();
        let literal: u64 = l
            .segments
            .iter()
            .filter_map(|s| match &s.piece {
                Piece::Bytes { data, .. } => Some(data.len() as u64),
                _ => None,
            })
            .sum();
        // Footer twice, header, bitmap: no 4 MiB table.
        assert!(literal < 4096, "{literal} literal bytes");
    }
}

//! VHD disk geometry and virtual size: the spec's CHS algorithm (Appendix "CHS
//! Calculation"), QEMU's round-up on create, and which size QEMU ≥ 10 reads.

use serde::Serialize;

use super::spec::{MAX_GEOMETRY, SECTOR};

/// Cylinders / heads / sectors-per-track as stored in the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
}

impl Geometry {
    /// Number of 512-byte sectors the geometry addresses.
    pub fn sectors(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }
}

/// The spec's CHS algorithm (Appendix "CHS Calculation") for a disk of `total_sectors`.
/// The result can address fewer sectors than asked for.
pub fn chs_geometry(total_sectors: u64) -> Geometry {
    let ts = total_sectors.min(MAX_GEOMETRY);
    let (spt, heads, cyl_times_heads) = if ts >= 65535 * 16 * 63 {
        (255u64, 16u64, ts / 255)
    } else {
        let mut spt = 17;
        let mut cth = ts / spt;
        let mut heads = cth.div_ceil(1024).max(4);
        if cth >= heads * 1024 || heads > 16 {
            spt = 31;
            heads = 16;
            cth = ts / spt;
        }
        if cth >= heads * 1024 {
            spt = 63;
            heads = 16;
            cth = ts / spt;
        }
        (spt, heads, cth)
    };
    Geometry {
        cylinders: u16::try_from(cyl_times_heads / heads).unwrap_or(u16::MAX),
        heads: heads as u8,
        sectors_per_track: spt as u8,
    }
}

/// The geometry `qemu-img create -f vpc` writes for a requested size: the spec's algorithm
/// applied to ever larger sector counts until the geometry covers the request, so the disk
/// is rounded up, never truncated. `None` when no geometry below the maximum covers it
/// (QEMU then stores the maximum geometry and sizes the disk by current_size).
pub fn chs_round_up(total_sectors: u64) -> Option<Geometry> {
    // One cylinder is at most 16 × 255 sectors, so the search ends within that many steps.
    for extra in 0..=16 * 255 {
        let g = chs_geometry(total_sectors.checked_add(extra)?);
        if g.sectors() >= total_sectors {
            return Some(g);
        }
    }
    None
}

/// Where QEMU takes the virtual size from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// cylinders × heads × sectors-per-track × 512.
    Chs,
    /// The footer's current_size, rounded down to whole sectors.
    CurrentSize,
}

/// QEMU ≥ 10.0 (`vpc_ignore_current_size`): only Virtual PC (`vpc `) and old QEMU (`qemu`)
/// size a disk by its geometry, and not even they when the geometry is the maximum
/// 65535×16×255. Returns the size in bytes, its source and why.
pub fn qemu_size(
    creator: [u8; 4],
    geometry: Geometry,
    current_size: u64,
) -> (u64, SizeSource, &'static str) {
    let chs_creator = &creator == b"vpc " || &creator == b"qemu";
    if chs_creator && geometry.sectors() != MAX_GEOMETRY {
        (
            geometry.sectors() * SECTOR,
            SizeSource::Chs,
            "the creator is Virtual PC (\"vpc \") or old QEMU (\"qemu\"), which size the disk by its CHS geometry (QEMU >= 10 rule)",
        )
    } else if chs_creator {
        (
            current_size / SECTOR * SECTOR,
            SizeSource::CurrentSize,
            "the CHS geometry is the maximum 65535x16x255",
        )
    } else {
        (
            current_size / SECTOR * SECTOR,
            SizeSource::CurrentSize,
            "the creator is neither Virtual PC nor old QEMU (QEMU >= 10 rule)",
        )
    }
}

//! The VHD metadata imgport's converter writes (Microsoft VHD spec v1.0): the hard disk
//! footer and the dynamic disk header, laid out with the same field offsets, checksum and CHS
//! algorithm the reader checks. Where they go in the file, and the BAT and blocks between
//! them, are the converter's plan (`imgport-transfer`'s layout).
//!
//! Readers that size the disk by CHS geometry (QEMU for creators `vpc `/`qemu`, and for every
//! creator before 10.0 unless the CHS is the maximum) would see a smaller disk, so the
//! geometry is written exact when the spec's algorithm gives an exact product and as the
//! maximum 65535/16/255 otherwise: either way every QEMU version takes `current_size`.

use super::geometry::{Geometry, chs_geometry};
use super::spec::{
    COOKIE, DYN_COOKIE, DYN_HEADER_LEN, FOOTER_LEN, MAX_GEOMETRY, SECTOR, VERSION, checksum, dynh,
    foot,
};

/// Creator application written in the footer.
pub const CREATOR_APP: &[u8; 4] = b"imgp";
/// Creator version: 0.1.
pub const CREATOR_VERSION: u32 = 0x0000_0001;
/// Creator host OS, as QEMU writes it.
pub const CREATOR_OS: &[u8; 4] = b"Wi2k";
/// Footer features: the reserved bit the spec says is always set.
const FEATURES_RESERVED: u32 = 2;
/// Geometry that makes every QEMU version use `current_size` (QEMU's `VHD_MAX_GEOMETRY`).
pub const MAX_CHS: Geometry = Geometry {
    cylinders: 65535,
    heads: 16,
    sectors_per_track: 255,
};

/// The geometry written for a disk of `sectors` sectors: the spec's CHS algorithm when its
/// product is exactly `sectors`, else [`MAX_CHS`].
pub fn footer_geometry(sectors: u64) -> Geometry {
    let g = chs_geometry(sectors);
    if g.sectors() == sectors && sectors <= MAX_GEOMETRY {
        g
    } else {
        MAX_CHS
    }
}

/// A footer for a disk of `size` bytes (a multiple of 512) of type `disk_type`
/// ([`super::TYPE_FIXED`] or [`super::TYPE_DYNAMIC`]), with the dynamic header at
/// `data_offset` (`u64::MAX` for a fixed disk). The timestamp stays 0 so that converting the
/// same disk twice gives the same bytes.
pub fn footer(disk_type: u32, data_offset: u64, size: u64, uuid: [u8; 16]) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[..8].copy_from_slice(COOKIE);
    put(&mut f, foot::FEATURES, &FEATURES_RESERVED.to_be_bytes());
    put(&mut f, foot::VERSION, &VERSION.to_be_bytes());
    put(&mut f, foot::DATA_OFFSET, &data_offset.to_be_bytes());
    put(&mut f, foot::CREATOR_APP, CREATOR_APP);
    put(
        &mut f,
        foot::CREATOR_VERSION,
        &CREATOR_VERSION.to_be_bytes(),
    );
    put(&mut f, foot::CREATOR_OS, CREATOR_OS);
    put(&mut f, foot::ORIGINAL_SIZE, &size.to_be_bytes());
    put(&mut f, foot::CURRENT_SIZE, &size.to_be_bytes());
    let g = footer_geometry(size / SECTOR);
    put(&mut f, foot::CYLINDERS, &g.cylinders.to_be_bytes());
    f[foot::HEADS] = g.heads;
    f[foot::SECTORS] = g.sectors_per_track;
    put(&mut f, foot::DISK_TYPE, &disk_type.to_be_bytes());
    put(&mut f, foot::UUID, &uuid);
    let sum = checksum(&f, foot::CHECKSUM);
    put(&mut f, foot::CHECKSUM, &sum.to_be_bytes());
    f
}

/// A dynamic disk header whose BAT of `entries` entries starts at `bat_offset`, for blocks of
/// `block_size` bytes; no parent.
pub fn dynamic_header(bat_offset: u64, entries: u32, block_size: u32) -> [u8; DYN_HEADER_LEN] {
    let mut h = [0u8; DYN_HEADER_LEN];
    h[..8].copy_from_slice(DYN_COOKIE);
    put(&mut h, dynh::DATA_OFFSET, &u64::MAX.to_be_bytes());
    put(&mut h, dynh::TABLE_OFFSET, &bat_offset.to_be_bytes());
    put(&mut h, dynh::VERSION, &VERSION.to_be_bytes());
    put(&mut h, dynh::MAX_TABLE_ENTRIES, &entries.to_be_bytes());
    put(&mut h, dynh::BLOCK_SIZE, &block_size.to_be_bytes());
    let sum = checksum(&h, dynh::CHECKSUM);
    put(&mut h, dynh::CHECKSUM, &sum.to_be_bytes());
    h
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::super::{TYPE_DYNAMIC, TYPE_FIXED};
    use super::*;

    fn g(cylinders: u16, heads: u8, sectors_per_track: u8) -> Geometry {
        Geometry {
            cylinders,
            heads,
            sectors_per_track,
        }
    }

    #[test]
    fn footer_geometry_is_exact_or_maximum() {
        // 129 MiB is not CHS-representable (qemu rounds it to 972/16/17 = 135,364,608 bytes).
        assert_eq!(footer_geometry(129 * 2048), MAX_CHS);
        assert_eq!(footer_geometry(972 * 16 * 17), g(972, 16, 17));
        assert_eq!(footer_geometry(40 << 21), MAX_CHS);
        assert_eq!(footer_geometry(MAX_GEOMETRY + 1), MAX_CHS);
        assert_eq!(footer_geometry(0), g(0, 4, 17));
    }

    #[test]
    fn footer_checksum_verifies() {
        let f = footer(TYPE_DYNAMIC, 512, 64 << 20, [7; 16]);
        let stored = u32::from_be_bytes(f[foot::CHECKSUM..foot::CHECKSUM + 4].try_into().unwrap());
        let mut z = f;
        z[foot::CHECKSUM..foot::CHECKSUM + 4].fill(0);
        let sum = !z.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
        assert_eq!(sum, stored);
    }

    #[test]
    fn footer_reads_back() {
        let f = footer(TYPE_FIXED, u64::MAX, 972 * 16 * 17 * 512, [1; 16]);
        let parsed = super::super::Footer::parse(&f);
        assert_eq!(&f[..8], COOKIE);
        assert_eq!(parsed.version, VERSION);
        assert_eq!(parsed.checksum, checksum(&parsed.raw, foot::CHECKSUM));
        assert_eq!(parsed.disk_type, TYPE_FIXED);
        assert_eq!(parsed.current_size, 972 * 16 * 17 * 512);
        assert_eq!(parsed.geometry, g(972, 16, 17));
    }

    #[test]
    fn dynamic_header_checksum_verifies() {
        let h = dynamic_header(1536, 8, 2 << 20);
        let stored = u32::from_be_bytes(h[dynh::CHECKSUM..dynh::CHECKSUM + 4].try_into().unwrap());
        assert_eq!(checksum(&h, dynh::CHECKSUM), stored);
        assert_eq!(&h[..8], DYN_COOKIE);
    }
}

//! The VHD format's constants, field offsets and checksum (Microsoft VHD spec v1.0).

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

pub(super) const SECTOR: u64 = 512;

/// Footer field offsets (spec "Hard Disk Footer Format").
pub(super) mod foot {
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
pub(super) mod dynh {
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

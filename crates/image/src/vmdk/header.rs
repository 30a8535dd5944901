//! The hosted sparse extent header (VMware "Virtual Disk Format 5.0", "Hosted Sparse Extent
//! Header"): 512 little-endian bytes at the start of a `KDMV` extent, and the stream-optimized
//! footer and markers that may follow the grains.

use imgport_base::bytes::{le16, le32, le64};

/// Bytes of a sector: every offset and size in a VMDK counts these.
pub const SECTOR: u64 = 512;
/// The extent magic `KDMV` (u32 LE 0x564d444b).
pub const MAGIC: &[u8; 4] = b"KDMV";
/// gdOffset of a stream-optimized header whose grain directory is found through the footer.
pub const GD_AT_END: u64 = u64::MAX;
/// Flag: the newline characters at 73..77 are a test for text-mode transfer damage.
pub const FLAG_NL_TEST: u32 = 1;
/// Flag: a grain table entry of 1 means a grain of zeros.
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
/// Flag: grains are compressed (stream-optimized).
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag: grains and metadata are preceded by markers (stream-optimized).
pub const FLAG_MARKERS: u32 = 1 << 17;
/// compressAlgorithm: deflate in a zlib wrapper (RFC 1950).
pub const COMPRESS_DEFLATE: u16 = 1;
/// Largest embedded or stand-alone descriptor: 1 MiB (OpenStack's format_inspector bound).
pub const MAX_DESCRIPTOR: u64 = 1 << 20;
/// Largest grain imgport inflates or reads as one unit: 1 MiB (2048 sectors). VMware and
/// qemu-img write 64 KiB grains.
pub const MAX_GRAIN_SECTORS: u64 = 2048;
/// Most grain table entries per table (the spec fixes 512).
pub const MAX_GTES_PER_GT: u32 = 512;
/// Largest virtual size of one extent or of the disk: 64 TiB, past every VMware limit.
pub const MAX_CAPACITY_SECTORS: u64 = 1 << 37;
/// Bytes of a grain marker before its compressed data: lba (u64) and size (u32).
pub const GRAIN_MARKER_LEN: u64 = 12;
/// Marker types of a metadata marker (val u64, size u32 = 0, type u32, 496 bytes of zeros).
pub const MARKER_EOS: u32 = 0;
pub const MARKER_FOOTER: u32 = 3;

/// Field offsets in the header.
pub mod off {
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 8;
    pub const CAPACITY: usize = 12;
    pub const GRAIN_SIZE: usize = 20;
    pub const DESCRIPTOR_OFFSET: usize = 28;
    pub const DESCRIPTOR_SIZE: usize = 36;
    pub const GTES_PER_GT: usize = 44;
    pub const RGD_OFFSET: usize = 48;
    pub const GD_OFFSET: usize = 56;
    pub const OVERHEAD: usize = 64;
    pub const UNCLEAN: usize = 72;
    pub const NEWLINES: usize = 73;
    pub const COMPRESS: usize = 77;
}

/// The parsed header fields (sector counts as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub magic_ok: bool,
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: bool,
    pub newlines: [u8; 4],
    pub compress_algorithm: u16,
}

impl Header {
    /// Parses the first 512 bytes of `b`; fields past its end read as 0.
    pub fn parse(b: &[u8]) -> Self {
        Header {
            magic_ok: b.starts_with(MAGIC),
            version: le32(b, off::VERSION),
            flags: le32(b, off::FLAGS),
            capacity: le64(b, off::CAPACITY),
            grain_size: le64(b, off::GRAIN_SIZE),
            descriptor_offset: le64(b, off::DESCRIPTOR_OFFSET),
            descriptor_size: le64(b, off::DESCRIPTOR_SIZE),
            gtes_per_gt: le32(b, off::GTES_PER_GT),
            rgd_offset: le64(b, off::RGD_OFFSET),
            gd_offset: le64(b, off::GD_OFFSET),
            overhead: le64(b, off::OVERHEAD),
            unclean_shutdown: b.get(off::UNCLEAN).is_some_and(|&x| x != 0),
            newlines: b
                .get(off::NEWLINES..off::NEWLINES + 4)
                .and_then(|n| n.try_into().ok())
                .unwrap_or_default(),
            compress_algorithm: le16(b, off::COMPRESS),
        }
    }

    /// Grains are compressed and framed by markers (stream-optimized).
    pub fn stream_optimized(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// A metadata marker (spec "Stream-Optimized Compressed Sparse Extents"): `(val, size, type)`
/// and whether its 496 padding bytes are zero.
pub fn parse_marker(b: &[u8]) -> (u64, u32, u32, bool) {
    (
        le64(b, 0),
        le32(b, 8),
        le32(b, 12),
        b.get(16..512).is_some_and(|p| p.iter().all(|&x| x == 0)),
    )
}

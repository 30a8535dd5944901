//! The hosted sparse extent header (VMware "Virtual Disk Format 5.0", "Hosted Sparse Extent
//! Header"): 512 little-endian bytes at the start of a `KDMV` extent, and the stream-optimized
//! footer and markers that may follow the grains; parsed, and judged by the header rules.

use imgport_base::bytes::{le16, le32, le64};

use crate::{ImageError, ImageFile, Severity, Verdict};

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

/// `f`, prefixed by `label` when there is one.
pub fn field(label: &str, f: &str) -> String {
    if label.is_empty() {
        f.to_string()
    } else {
        format!("{label} {f}")
    }
}

/// Judges the header of `file` (and the footer of a stream-optimized extent whose directory is
/// at the end); returns the header to use and whether it is the footer's copy. `embedded`
/// asks for an embedded descriptor (the opened file is a monolithic sparse VMDK).
pub fn judge_header(
    file: &ImageFile,
    label: &str,
    embedded: bool,
    v: &mut Verdict<'_>,
) -> Result<Option<(Header, bool)>, ImageError> {
    let f = |name: &str| field(label, name);
    let size = file.size();
    if size < SECTOR {
        v.refuse(
            "vmdk.truncated",
            &f("header"),
            0,
            format!("the file holds {size} bytes, less than the 512-byte sparse header"),
        );
        return Ok(None);
    }
    let mut b = [0u8; SECTOR as usize];
    file.read_exact_at(&mut b, 0)?;
    let h = Header::parse(&b);
    if !h.magic_ok {
        v.refuse(
            "vmdk.magic",
            &f("header magic"),
            0,
            "is not \"KDMV\": the file is not a hosted sparse extent".into(),
        );
        return Ok(None);
    }
    let before = v.refused;
    v.refused = false;
    check_fields(&h, size, label, embedded, 0, v);
    if v.refused {
        return Ok(None);
    }
    v.refused = before;
    if h.unclean_shutdown {
        v.note(
            Severity::Warning,
            "vmdk.unclean_shutdown",
            &f("header unclean shutdown"),
            off::UNCLEAN as u64,
            "the disk was not closed cleanly; file systems may be inconsistent".into(),
        );
    }
    if h.gd_offset != GD_AT_END {
        return Ok(Some((h, false)));
    }
    if !h.stream_optimized() {
        v.refuse(
            "vmdk.gd_offset",
            &f("header gd offset"),
            off::GD_OFFSET as u64,
            "the grain directory is \"at the end\" (GD_AT_END), which only a stream-optimized extent may use".into(),
        );
        return Ok(None);
    }
    Ok(judge_footer(file, &h, label, embedded, v)?.map(|foot| (foot, true)))
}

/// The footer of a stream-optimized extent: a footer marker, a copy of the header that holds
/// the real directory offset, and the end-of-stream marker, in the last 1536 bytes.
fn judge_footer(
    file: &ImageFile,
    h: &Header,
    label: &str,
    embedded: bool,
    v: &mut Verdict<'_>,
) -> Result<Option<Header>, ImageError> {
    let f = |name: &str| field(label, name);
    let size = file.size();
    let Some(start) = size.checked_sub(3 * SECTOR).filter(|&s| s >= SECTOR) else {
        v.refuse(
            "vmdk.footer",
            &f("footer"),
            0,
            "the header puts the grain directory at the end (GD_AT_END), but the file is too short to hold the footer marker, footer and end-of-stream marker".into(),
        );
        return Ok(None);
    };
    let mut tail = vec![0u8; 3 * SECTOR as usize];
    file.read_exact_at(&mut tail, start)?;
    let (_, msize, mtype, mpad) = parse_marker(&tail[..512]);
    if msize != 0 || mtype != MARKER_FOOTER || !mpad {
        v.refuse(
            "vmdk.footer",
            &f("footer marker"),
            start,
            format!(
                "size {msize}, type {mtype}: a footer marker has size 0, type 3 and zero padding"
            ),
        );
        return Ok(None);
    }
    let (eval, esize, etype, epad) = parse_marker(&tail[1024..]);
    if eval != 0 || esize != 0 || etype != MARKER_EOS || !epad {
        v.refuse(
            "vmdk.footer",
            &f("end-of-stream marker"),
            start + 1024,
            "the last sector is not an end-of-stream marker (all zeros)".into(),
        );
        return Ok(None);
    }
    let foot = Header::parse(&tail[512..1024]);
    let at = start + SECTOR;
    let same = foot.magic_ok
        && foot.version == h.version
        && foot.flags == h.flags
        && foot.capacity == h.capacity
        && foot.grain_size == h.grain_size
        && foot.gtes_per_gt == h.gtes_per_gt
        && foot.descriptor_offset == h.descriptor_offset
        && foot.descriptor_size == h.descriptor_size;
    if !same {
        v.refuse(
            "vmdk.footer",
            &f("footer header"),
            at,
            "the footer's copy of the header differs from the header (magic, version, flags, capacity, grain, table or descriptor fields)".into(),
        );
        return Ok(None);
    }
    if foot.gd_offset == GD_AT_END {
        v.refuse(
            "vmdk.footer",
            &f("footer gd offset"),
            at + off::GD_OFFSET as u64,
            "the footer points to yet another footer (GD_AT_END)".into(),
        );
        return Ok(None);
    }
    let before = v.refused;
    v.refused = false;
    check_fields(&foot, size, label, embedded, at, v);
    if v.refused {
        return Ok(None);
    }
    v.refused = before;
    Ok(Some(foot))
}

/// The header rules; `base` is the header's file offset (0, or the footer's).
fn check_fields(
    h: &Header,
    size: u64,
    label: &str,
    embedded: bool,
    base: u64,
    v: &mut Verdict<'_>,
) {
    let f = |name: &str| field(label, name);
    let at = |o: usize| base + o as u64;
    if !(1..=3).contains(&h.version) {
        v.refuse(
            "vmdk.version",
            &f("header version"),
            at(off::VERSION),
            format!("{} is not a hosted sparse version (1, 2 or 3)", h.version),
        );
    }
    let compressed = h.flags & FLAG_COMPRESSED != 0;
    let markers = h.flags & FLAG_MARKERS != 0;
    if compressed != markers {
        v.refuse(
            "vmdk.flags",
            &f("header flags"),
            at(off::FLAGS),
            format!(
                "{:#x}: compressed grains and markers come together (stream-optimized) or not at all",
                h.flags
            ),
        );
    }
    let want_algorithm = if compressed { COMPRESS_DEFLATE } else { 0 };
    if h.compress_algorithm != want_algorithm {
        v.refuse(
            "vmdk.compression",
            &f("header compress algorithm"),
            at(off::COMPRESS),
            format!(
                "{} with compressed grains {}: only deflate (1) for compressed grains, 0 otherwise",
                h.compress_algorithm,
                if compressed { "on" } else { "off" }
            ),
        );
    }
    if h.flags & FLAG_NL_TEST != 0 && h.newlines != *b"\n \r\n" {
        v.refuse(
            "vmdk.newline_test",
            &f("header newline test"),
            at(off::NEWLINES),
            "the four test characters are not \\n, space, \\r, \\n: the file was damaged by a text-mode transfer".into(),
        );
    }
    if h.capacity == 0 || h.capacity > MAX_CAPACITY_SECTORS {
        v.refuse(
            "vmdk.capacity",
            &f("header capacity"),
            at(off::CAPACITY),
            format!(
                "{} sectors is not between 1 and imgport's limit of {MAX_CAPACITY_SECTORS} (64 TiB)",
                h.capacity
            ),
        );
    }
    if !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS {
        v.refuse(
            "vmdk.grain_size",
            &f("header grain size"),
            at(off::GRAIN_SIZE),
            format!(
                "{} sectors is not a power of two up to {MAX_GRAIN_SECTORS} (1 MiB)",
                h.grain_size
            ),
        );
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
        v.refuse(
            "vmdk.gtes_per_gt",
            &f("header grain table entries"),
            at(off::GTES_PER_GT),
            format!("{} is not between 1 and {MAX_GTES_PER_GT}", h.gtes_per_gt),
        );
    }
    let max_desc = MAX_DESCRIPTOR / SECTOR;
    if h.descriptor_size > max_desc {
        v.refuse(
            "vmdk.descriptor_size",
            &f("header descriptor size"),
            at(off::DESCRIPTOR_SIZE),
            format!(
                "{} sectors passes the 1 MiB limit ({max_desc} sectors) on a descriptor",
                h.descriptor_size
            ),
        );
    } else if embedded && h.descriptor_size == 0 {
        v.refuse(
            "vmdk.descriptor_size",
            &f("header descriptor size"),
            at(off::DESCRIPTOR_SIZE),
            "0: this sparse extent has no embedded descriptor; open the descriptor file that names it".into(),
        );
    } else if h.descriptor_size > 0 {
        if h.descriptor_offset != 1 {
            v.refuse(
                "vmdk.descriptor_offset",
                &f("header descriptor offset"),
                at(off::DESCRIPTOR_OFFSET),
                format!(
                    "sector {}: an embedded descriptor must start at sector 1, right after the header",
                    h.descriptor_offset
                ),
            );
        } else if (1 + h.descriptor_size) * SECTOR > size {
            v.refuse(
                "vmdk.truncated",
                &f("header descriptor size"),
                at(off::DESCRIPTOR_SIZE),
                format!(
                    "the descriptor (sectors 1..{}) passes the end of the file ({size} bytes)",
                    1 + h.descriptor_size
                ),
            );
        }
    }
}

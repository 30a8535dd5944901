//! cpio header layouts and their field rules: `newc`/`crc` (110 ASCII bytes: magic and 13
//! fields of 8 hex digits), `odc` (76 ASCII bytes, octal fields) and old binary (26 bytes of
//! 16-bit words in either byte order). Decodes one complete header from bytes; the stream
//! state lives in [`super::cpio`].

use super::error::{At, InitramfsError};
use super::model::{MAX_NAME_LEN, MAX_TOTAL_BYTES};

pub(crate) const NEWC_MAGIC: &[u8; 6] = b"070701";
pub(crate) const CRC_MAGIC: &[u8; 6] = b"070702";
pub(crate) const ODC_MAGIC: &[u8; 6] = b"070707";
/// Old binary magic 070707 (octal) as it appears in little- and big-endian archives.
pub(crate) const BIN_MAGIC_LE: [u8; 2] = [0xC7, 0x71];
pub(crate) const BIN_MAGIC_BE: [u8; 2] = [0x71, 0xC7];
pub(crate) const NEWC_HEADER_LEN: usize = 110;
pub(crate) const ODC_HEADER_LEN: usize = 76;
pub(crate) const BIN_HEADER_LEN: usize = 26;

/// Field names of a newc header after the magic, in order.
const NEWC_FIELDS: [&str; 13] = [
    "c_ino",
    "c_mode",
    "c_uid",
    "c_gid",
    "c_nlink",
    "c_mtime",
    "c_filesize",
    "c_devmajor",
    "c_devminor",
    "c_rdevmajor",
    "c_rdevminor",
    "c_namesize",
    "c_check",
];

/// Whether `bytes` start like a cpio header of any supported format.
pub(crate) fn looks_like_cpio(bytes: &[u8]) -> bool {
    bytes.starts_with(b"0707")
        || bytes.starts_with(&BIN_MAGIC_LE)
        || bytes.starts_with(&BIN_MAGIC_BE)
}

/// A header layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Newc { crc: bool },
    Odc,
    Binary { big_endian: bool },
}

impl Format {
    /// The layout of a 6-byte ASCII magic, with its header length.
    pub(crate) fn from_magic(magic: &[u8]) -> Option<(Format, usize)> {
        if magic == NEWC_MAGIC {
            Some((Format::Newc { crc: false }, NEWC_HEADER_LEN))
        } else if magic == CRC_MAGIC {
            Some((Format::Newc { crc: true }, NEWC_HEADER_LEN))
        } else if magic == ODC_MAGIC {
            Some((Format::Odc, ODC_HEADER_LEN))
        } else {
            None
        }
    }

    /// Alignment of the data start and of the next header, relative to the stream.
    pub(crate) fn align(self) -> u64 {
        match self {
            Format::Newc { .. } => 4,
            Format::Odc => 1,
            Format::Binary { .. } => 2,
        }
    }
}

/// The fields the reader uses, from a validated header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) mode: u32,
    pub(crate) size: u64,
    /// Name length including its NUL.
    pub(crate) namesize: u64,
    /// `c_check` of a `070702` header.
    pub(crate) check: Option<u32>,
}

/// Decodes and validates a complete header `h` of `format` found at `at`.
pub(crate) fn decode(format: Format, h: &[u8], at: At) -> Result<Fields, InitramfsError> {
    let field = |field: &'static str, rule: &'static str| InitramfsError::Field { at, field, rule };
    let mut f = Fields::default();
    match format {
        Format::Newc { crc } => {
            let mut v = [0u32; 13];
            for (i, name) in NEWC_FIELDS.iter().enumerate() {
                let s = h.get(6 + 8 * i..6 + 8 * (i + 1)).unwrap_or_default();
                v[i] = parse_hex(s).ok_or_else(|| field(name, "must be 8 ASCII hex digits"))?;
            }
            f.mode = v[1];
            f.size = u64::from(v[6]);
            f.namesize = u64::from(v[11]);
            f.check = crc.then_some(v[12]);
        }
        Format::Odc => {
            // magic(6) dev(6) ino(6) mode(6) uid(6) gid(6) nlink(6) rdev(6) mtime(11)
            // namesize(6) filesize(11)
            let oct = |range: std::ops::Range<usize>, name: &'static str| {
                h.get(range)
                    .and_then(parse_octal)
                    .ok_or_else(|| field(name, "must be ASCII octal digits"))
            };
            for (r, name) in [
                (6..12, "c_dev"),
                (12..18, "c_ino"),
                (24..30, "c_uid"),
                (30..36, "c_gid"),
                (36..42, "c_nlink"),
                (42..48, "c_rdev"),
                (48..59, "c_mtime"),
            ] {
                oct(r, name)?;
            }
            f.mode = u32::try_from(oct(18..24, "c_mode")?)
                .map_err(|_| field("c_mode", "out of range"))?;
            f.namesize = oct(59..65, "c_namesize")?;
            f.size = oct(65..76, "c_filesize")?;
        }
        Format::Binary { big_endian } => {
            if h.len() < BIN_HEADER_LEN {
                return Err(field("c_magic", "binary header shorter than 26 bytes"));
            }
            let w = |i: usize| {
                let b = [h[2 * i], h[2 * i + 1]];
                if big_endian {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                }
            };
            // magic dev ino mode uid gid nlink rdev mtime[2] namesize filesize[2]
            f.mode = u32::from(w(3));
            f.namesize = u64::from(w(10));
            f.size = (u64::from(w(11)) << 16) | u64::from(w(12));
        }
    }
    if f.namesize == 0 {
        return Err(field(
            "c_namesize",
            "must count the terminating NUL (at least 1)",
        ));
    }
    if f.namesize > MAX_NAME_LEN as u64 + 1 {
        return Err(InitramfsError::NameTooLong {
            at,
            len: f.namesize - 1,
            limit: MAX_NAME_LEN,
        });
    }
    if f.size > MAX_TOTAL_BYTES {
        return Err(field("c_filesize", "exceeds the decompression cap"));
    }
    Ok(f)
}

/// Strict hex: only ASCII hex digits (no spaces or signs, which `strtoul` would accept).
fn parse_hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s {
        let d = (c as char).to_digit(16)?;
        v = v.checked_mul(16)?.checked_add(d)?;
    }
    Some(v)
}

/// Strict octal: only ASCII digits 0-7.
fn parse_octal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = (c as char).to_digit(8)?;
        v = v.checked_mul(8)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

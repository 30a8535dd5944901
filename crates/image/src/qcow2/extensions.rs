//! Header extensions (qcow2.rst "Header extensions"): the {type, length, data, padding}
//! records after the header, parsed from a byte slice inside cluster 0, each bounded by the
//! area and each type at most once. Also the backing file name, which lives in the same
//! cluster. Names are reported, never opened.

use super::details::ExtensionInfo;
use crate::Verdict;
use imgport_base::bytes::{be32, be64};

/// End of the extension area.
pub const EXT_END: u32 = 0x0000_0000;
/// Backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Feature name table.
pub const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
/// Bitmaps extension.
pub const EXT_BITMAPS: u32 = 0x2385_2875;
/// Full disk encryption (LUKS) header pointer.
pub const EXT_FDE: u32 = 0x0537_be77;
/// External data file name.
pub const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Bytes of one feature name table entry.
const FEATURE_ENTRY: usize = 48;
/// Longest name reported (the spec's backing-name limit, used for every name).
pub const MAX_NAME: usize = 1023;

/// What the extensions say.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub found: Vec<ExtensionInfo>,
    /// Backing format name (e.g. `raw`), bounded and escaped.
    pub backing_format: Option<String>,
    /// Feature names: (type 0 incompatible / 1 compatible / 2 autoclear, bit, name).
    pub feature_names: Vec<(u8, u8, String)>,
    /// File offset of the FDE (LUKS) header pointer extension, when present.
    pub fde_at: Option<u64>,
    /// The external data file name and the file offset of its extension.
    pub data_file: Option<(String, u64)>,
    pub bitmaps: Option<BitmapsExt>,
}

/// `bytes` as text: printable ASCII kept, everything else escaped, at most [`MAX_NAME`] bytes.
pub fn escaped(bytes: &[u8]) -> String {
    bytes[..bytes.len().min(MAX_NAME)]
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

fn type_name(t: u32) -> &'static str {
    match t {
        EXT_BACKING_FORMAT => "backing format",
        EXT_FEATURE_NAMES => "feature name table",
        EXT_BITMAPS => "bitmaps",
        EXT_FDE => "full disk encryption header",
        EXT_DATA_FILE => "external data file name",
        _ => "unknown",
    }
}

/// Parses the extension area `area`, which starts at file offset `base` and ends where the
/// first cluster (or the backing file name) begins. Returns `None` when the area is
/// malformed (an extension longer than the area, a duplicate type): then nothing in it can
/// be trusted and the image is refused.
/// The bitmaps extension's fields (qcow2.rst "Bitmaps extension").
#[derive(Debug, Clone, Copy, Default)]
pub struct BitmapsExt {
    /// File offset of the extension record.
    pub at: u64,
    pub nb_bitmaps: u32,
    pub directory_size: u64,
    pub directory_offset: u64,
    /// Bytes of extension data (24 in the spec).
    pub length: u32,
}

pub fn parse(area: &[u8], base: u64, v: &mut Verdict<'_>) -> Option<Extensions> {
    let mut ext = Extensions::default();
    let mut pos = 0usize;
    // Each record takes at least 8 bytes, so the loop runs at most area.len() / 8 times.
    while pos + 8 <= area.len() {
        let at = base + pos as u64;
        let kind = be32(area, pos);
        let len = be32(area, pos + 4);
        if kind == EXT_END {
            break;
        }
        let data_start = pos + 8;
        let room = area.len() - data_start;
        if len as usize > room {
            v.refuse(
                "qcow2.extension_length",
                "header extension length",
                at + 4,
                format!(
                    "extension {kind:#010x} claims {len} bytes but only {room} remain in the header extension area (first cluster)"
                ),
            );
            return None;
        }
        if ext.found.iter().any(|e| e.kind == format!("{kind:#010x}")) {
            v.refuse(
                "qcow2.extension_duplicate",
                "header extension type",
                at,
                format!(
                    "extension {kind:#010x} ({}) appears twice; each type may appear at most once, and two readers could take different copies",
                    type_name(kind)
                ),
            );
            return None;
        }
        let data = &area[data_start..data_start + len as usize];
        ext.found.push(ExtensionInfo {
            kind: format!("{kind:#010x}"),
            name: type_name(kind),
            offset: at,
            length: len,
        });
        match kind {
            EXT_BACKING_FORMAT => ext.backing_format = Some(escaped(data)),
            EXT_FEATURE_NAMES => {
                ext.feature_names = data
                    .chunks_exact(FEATURE_ENTRY)
                    .map(|e| {
                        let name = &e[2..];
                        let n = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                        (e[0], e[1], escaped(&name[..n]))
                    })
                    .collect();
            }
            EXT_BITMAPS => {
                ext.bitmaps = Some(BitmapsExt {
                    at,
                    nb_bitmaps: be32(data, 0),
                    directory_size: be64(data, 8),
                    directory_offset: be64(data, 16),
                    length: len,
                })
            }
            EXT_FDE => ext.fde_at = Some(at),
            EXT_DATA_FILE => ext.data_file = Some((escaped(data), at)),
            _ => {}
        }
        // Data padded to a multiple of 8; a record whose padding passes the area ends it.
        pos = data_start + (len as usize).div_ceil(8) * 8;
    }
    Some(ext)
}

/// True when a backing or data file name uses QEMU's `json:` pseudo-protocol, which can
/// describe any driver chain (host files, NBD exports, quorum) rather than one file.
pub fn is_json_name(name: &[u8]) -> bool {
    name.trim_ascii_start().starts_with(b"json:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Finding;

    fn record(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut r = kind.to_be_bytes().to_vec();
        r.extend((data.len() as u32).to_be_bytes());
        r.extend(data);
        r.resize(8 + data.len().div_ceil(8) * 8, 0);
        r
    }

    fn run(area: &[u8]) -> (Option<Extensions>, Vec<Finding>) {
        let mut findings = Vec::new();
        let mut v = Verdict::new(&mut findings);
        let e = parse(area, 112, &mut v);
        (e, findings)
    }

    #[test]
    fn known_extensions_are_decoded() {
        let mut feature = vec![0u8; FEATURE_ENTRY];
        feature[1] = 4;
        feature[2..13].copy_from_slice(b"extended l2");
        let mut area = record(EXT_BACKING_FORMAT, b"raw");
        area.extend(record(EXT_FEATURE_NAMES, &feature));
        area.extend(record(EXT_DATA_FILE, b"json:{\"x\":1}"));
        area.extend(record(0x1234_5678, &[1, 2, 3]));
        area.extend(record(EXT_END, &[]));
        area.extend([0xAA; 40]); // after the end marker: ignored
        let (e, f) = run(&area);
        let e = e.unwrap();
        assert!(f.is_empty());
        assert_eq!(e.backing_format.as_deref(), Some("raw"));
        assert_eq!(e.feature_names, [(0, 4, "extended l2".to_string())]);
        let (name, at) = e.data_file.clone().unwrap();
        assert_eq!(name, "json:{\\\"x\\\":1}");
        assert_eq!(at, 112 + 16 + 56);
        assert_eq!(e.found.len(), 4);
        assert_eq!(e.found[3].name, "unknown");
    }

    #[test]
    fn an_extension_longer_than_the_area_is_refused() {
        let mut area = record(EXT_BACKING_FORMAT, b"raw");
        area[4..8].copy_from_slice(&1000u32.to_be_bytes());
        let (e, f) = run(&area);
        assert!(e.is_none());
        assert_eq!(f[0].code, "qcow2.extension_length");
        assert_eq!(f[0].offset, Some(116));
    }

    #[test]
    fn duplicate_extensions_are_refused() {
        let mut area = record(EXT_BACKING_FORMAT, b"raw");
        area.extend(record(EXT_BACKING_FORMAT, b"qcow2"));
        let (e, f) = run(&area);
        assert!(e.is_none());
        assert_eq!(f[0].code, "qcow2.extension_duplicate");
        assert_eq!(f[0].offset, Some(112 + 16));
    }

    #[test]
    fn names_are_bounded_and_escaped() {
        let long = vec![b'a'; 5000];
        assert_eq!(escaped(&long).len(), MAX_NAME);
        assert_eq!(escaped(b"a\nb"), "a\\nb");
        assert!(is_json_name(b"  json:{}"));
        assert!(!is_json_name(b"base.raw"));
    }
}

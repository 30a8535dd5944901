//! The QCOW2 header (qcow2 spec, QEMU `docs/interop/qcow2.rst` "Header"): decoded from a byte
//! slice, then judged field by field against the spec and QEMU's limits. Pure: no I/O, no
//! extensions, no tables.

use super::details::Compression;
use crate::{Severity, Verdict};
use imgport_base::bytes::{be32, be64};

/// The QCOW magic `QFI\xfb`.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Length of a version 2 header; extensions follow it directly.
pub const V2_HEADER_LEN: usize = 72;
/// Smallest version 3 header (through `header_length`).
pub const V3_MIN_HEADER_LEN: usize = 104;
/// Bytes of the header decoded: through `compression_type` and its padding.
pub const DECODED_LEN: usize = 112;
/// Smallest cluster: 512 bytes.
pub const MIN_CLUSTER_BITS: u32 = 9;
/// QEMU's implementation limit: 2 MiB clusters.
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Extended L2 entries need 16 KiB clusters at least (32 subclusters of 512 bytes).
pub const MIN_EXTENDED_L2_CLUSTER_BITS: u32 = 14;
/// QEMU's limit on the active L1 table: 32 MiB.
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// QEMU's limit on the refcount table: 8 MiB.
pub const MAX_REFCOUNT_TABLE_BYTES: u64 = 8 << 20;
/// The widest refcount: 64 bits (order 6).
pub const MAX_REFCOUNT_ORDER: u32 = 6;
/// Longest backing file name the spec allows.
pub const MAX_BACKING_NAME: u32 = 1023;
/// QEMU's `QCOW_MAX_SNAPSHOTS`.
pub const MAX_SNAPSHOTS: u32 = 65536;

/// Incompatible feature bits (qcow2.rst "incompatible_features").
pub mod incompat {
    /// Refcounts may be stale (reads are unaffected).
    pub const DIRTY: u64 = 1 << 0;
    /// QEMU found inconsistent metadata.
    pub const CORRUPT: u64 = 1 << 1;
    /// Guest data lives in an external data file.
    pub const DATA_FILE: u64 = 1 << 2;
    /// `compression_type` (byte 104) is not deflate.
    pub const COMPRESSION: u64 = 1 << 3;
    /// 128-bit L2 entries with subclusters.
    pub const EXTENDED_L2: u64 = 1 << 4;
}
/// Compatible bit 0: lazy refcounts.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;
/// Autoclear bit 1: the external data file is a consistent raw image.
pub const AUTOCLEAR_RAW_DATA: u64 = 1 << 1;

/// Header field offsets (qcow2.rst "Header"), for findings.
pub mod off {
    pub const VERSION: u64 = 4;
    pub const BACKING_FILE_OFFSET: u64 = 8;
    pub const BACKING_FILE_SIZE: u64 = 16;
    pub const CLUSTER_BITS: u64 = 20;
    pub const SIZE: u64 = 24;
    pub const CRYPT_METHOD: u64 = 32;
    pub const L1_SIZE: u64 = 36;
    pub const L1_TABLE_OFFSET: u64 = 40;
    pub const REFCOUNT_TABLE_OFFSET: u64 = 48;
    pub const REFCOUNT_TABLE_CLUSTERS: u64 = 56;
    pub const NB_SNAPSHOTS: u64 = 60;
    pub const SNAPSHOTS_OFFSET: u64 = 64;
    pub const INCOMPATIBLE: u64 = 72;
    pub const COMPATIBLE: u64 = 80;
    pub const AUTOCLEAR: u64 = 88;
    pub const REFCOUNT_ORDER: u64 = 96;
    pub const HEADER_LENGTH: u64 = 100;
    pub const COMPRESSION_TYPE: u64 = 104;
}

/// The decoded header, one field per header field of qcow2.rst. Version 2 files leave the
/// version 3 fields at their v2 meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub crypt_method: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    /// Zero for version 2 (bytes 72+ are extensions there, not flags).
    pub incompatible: u64,
    pub compatible: u64,
    pub autoclear: u64,
    /// 4 for version 2.
    pub refcount_order: u32,
    /// 72 for version 2.
    pub header_length: u32,
    /// Byte 104, when `header_length` > 104; else 0.
    pub compression_type: u8,
}

impl Header {
    /// Decodes the header from the first bytes of the file; `None` when fewer bytes than the
    /// version's header needs are given (or the magic is wrong). Missing bytes past the
    /// minimum read as zero.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        if buf.len() < V2_HEADER_LEN || &buf[..4] != MAGIC {
            return None;
        }
        let version = be32(buf, off::VERSION as usize);
        let v3 = version >= 3;
        if v3 && buf.len() < V3_MIN_HEADER_LEN {
            return None;
        }
        let header_length = if v3 {
            be32(buf, off::HEADER_LENGTH as usize)
        } else {
            V2_HEADER_LEN as u32
        };
        let compression_type = if v3 && header_length as usize > off::COMPRESSION_TYPE as usize {
            buf.get(off::COMPRESSION_TYPE as usize)
                .copied()
                .unwrap_or(0)
        } else {
            0
        };
        let v3_field = |o: u64| if v3 { be64(buf, o as usize) } else { 0 };
        Some(Header {
            version,
            backing_file_offset: be64(buf, off::BACKING_FILE_OFFSET as usize),
            backing_file_size: be32(buf, off::BACKING_FILE_SIZE as usize),
            cluster_bits: be32(buf, off::CLUSTER_BITS as usize),
            size: be64(buf, off::SIZE as usize),
            crypt_method: be32(buf, off::CRYPT_METHOD as usize),
            l1_size: be32(buf, off::L1_SIZE as usize),
            l1_table_offset: be64(buf, off::L1_TABLE_OFFSET as usize),
            refcount_table_offset: be64(buf, off::REFCOUNT_TABLE_OFFSET as usize),
            refcount_table_clusters: be32(buf, off::REFCOUNT_TABLE_CLUSTERS as usize),
            nb_snapshots: be32(buf, off::NB_SNAPSHOTS as usize),
            snapshots_offset: be64(buf, off::SNAPSHOTS_OFFSET as usize),
            incompatible: v3_field(off::INCOMPATIBLE),
            compatible: v3_field(off::COMPATIBLE),
            autoclear: v3_field(off::AUTOCLEAR),
            refcount_order: if v3 {
                be32(buf, off::REFCOUNT_ORDER as usize)
            } else {
                4
            },
            header_length,
            compression_type,
        })
    }

    /// Bytes per cluster (only meaningful once `cluster_bits` passed [`Header::validate`]).
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits.min(63)
    }

    /// True when L2 entries are 128 bits with a subcluster bitmap.
    pub fn extended_l2(&self) -> bool {
        self.incompatible & incompat::EXTENDED_L2 != 0
    }

    /// Entries per L2 table.
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / if self.extended_l2() { 16 } else { 8 }
    }

    /// L1 entries needed to map the whole virtual disk.
    pub fn l1_needed(&self) -> u64 {
        let coverage = self.cluster_size() * self.l2_entries();
        self.size.div_ceil(coverage)
    }

    /// The compression of compressed clusters (valid after [`Header::validate`]).
    pub fn compression(&self) -> Compression {
        if self.compression_type == 1 {
            Compression::Zstd
        } else {
            Compression::Deflate
        }
    }

    /// Judges the header against the file size: every safety rule of docs/INSPECTION.md §Safety
    /// item 3 and the sanity limits QEMU applies. Returns `false` when the layout itself is
    /// unusable (nothing after the header can be checked); other refusals are only recorded.
    pub fn validate(&self, file_size: u64, v: &mut Verdict<'_>) -> bool {
        if self.version != 2 && self.version != 3 {
            v.refuse(
                "qcow2.version",
                "version",
                off::VERSION,
                format!(
                    "version {} is not 2 or 3 (1 is the obsolete QCOW, higher versions are unknown)",
                    self.version
                ),
            );
            return false;
        }
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&self.cluster_bits) {
            v.refuse(
                "qcow2.cluster_bits",
                "cluster_bits",
                off::CLUSTER_BITS,
                format!(
                    "{} is outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS} (512-byte to 2 MiB clusters, QEMU's limit)",
                    self.cluster_bits
                ),
            );
            return false;
        }
        let mut usable = true;
        if self.version == 3 {
            usable &= self.validate_v3(v);
        }
        self.validate_safety(v);
        usable &= self.validate_tables(file_size, v);
        usable
    }

    /// Version 3 fields: header length, refcount order, feature bits, compression type.
    fn validate_v3(&self, v: &mut Verdict<'_>) -> bool {
        let mut usable = true;
        let hl = u64::from(self.header_length);
        if hl < V3_MIN_HEADER_LEN as u64 || !hl.is_multiple_of(8) || hl > self.cluster_size() {
            v.refuse(
                "qcow2.header_length",
                "header_length",
                off::HEADER_LENGTH,
                format!(
                    "{hl} must be at least {V3_MIN_HEADER_LEN}, a multiple of 8 and inside the first cluster ({} bytes)",
                    self.cluster_size()
                ),
            );
            usable = false;
        }
        if self.refcount_order > MAX_REFCOUNT_ORDER {
            v.refuse(
                "qcow2.refcount_order",
                "refcount_order",
                off::REFCOUNT_ORDER,
                format!(
                    "{} passes the maximum {MAX_REFCOUNT_ORDER} (64-bit refcounts)",
                    self.refcount_order
                ),
            );
        }
        let inc = self.incompatible;
        if inc & incompat::DIRTY != 0 {
            v.note(
                Severity::Warning,
                "qcow2.dirty",
                "incompatible_features",
                off::INCOMPATIBLE,
                "the dirty bit (0) is set: the image was not closed cleanly and its refcounts may be stale; the guest data is read through L1/L2 and is not affected".into(),
            );
        }
        if inc & incompat::CORRUPT != 0 {
            v.refuse(
                "qcow2.corrupt",
                "incompatible_features",
                off::INCOMPATIBLE,
                "the corrupt bit (1) is set: QEMU found inconsistent metadata; repair it with `qemu-img check -r all` on a trusted machine first".into(),
            );
        }
        let unknown = inc & !INCOMPAT_KNOWN;
        if unknown != 0 {
            let bits: Vec<String> = (0..64)
                .filter(|b| unknown & (1u64 << b) != 0)
                .map(|b| b.to_string())
                .collect();
            v.refuse(
                "qcow2.unknown_incompatible",
                "incompatible_features",
                off::INCOMPATIBLE,
                format!(
                    "unknown incompatible feature bit(s) {} set ({inc:#018x}); the spec says an image with an unknown incompatible bit must not be opened",
                    bits.join(", ")
                ),
            );
            usable = false;
        }
        if self.extended_l2() && self.cluster_bits < MIN_EXTENDED_L2_CLUSTER_BITS {
            v.refuse(
                "qcow2.cluster_bits",
                "cluster_bits",
                off::CLUSTER_BITS,
                format!(
                    "{} is below {MIN_EXTENDED_L2_CLUSTER_BITS}, the minimum with extended L2 entries",
                    self.cluster_bits
                ),
            );
            usable = false;
        }
        let bit = inc & incompat::COMPRESSION != 0;
        match (self.compression_type, bit) {
            (0, false) | (1, true) => {}
            (t, _) => {
                let why = match t {
                    0 => "the compression type bit (3) is set but compression_type is 0 (deflate)"
                        .to_string(),
                    1 => "compression_type is 1 (zstd) but the compression type bit (3) is clear"
                        .to_string(),
                    t => format!("compression_type {t} is neither 0 (deflate) nor 1 (zstd)"),
                };
                v.refuse(
                    "qcow2.compression_type",
                    "compression_type",
                    off::COMPRESSION_TYPE,
                    why,
                );
                usable = false;
            }
        }
        usable
    }

    /// The rules that make an image unsafe to read however sane it is (docs/INSPECTION.md §Safety
    /// item 3).
    fn validate_safety(&self, v: &mut Verdict<'_>) {
        if self.crypt_method != 0 {
            let what = match self.crypt_method {
                1 => "1 (AES-CBC, legacy and insecure)".to_string(),
                2 => "2 (LUKS)".to_string(),
                m => format!("{m} (unknown)"),
            };
            v.refuse(
                "qcow2.encrypted",
                "crypt_method",
                off::CRYPT_METHOD,
                format!(
                    "crypt_method is {what}: an encrypted image cannot be inspected or imported; decrypt it first (`qemu-img convert` on a trusted machine)"
                ),
            );
        }
        if self.incompatible & incompat::DATA_FILE != 0 {
            v.refuse(
                "qcow2.data_file",
                "incompatible_features",
                off::INCOMPATIBLE,
                "the external data file bit (2) is set: guest data lives in another file named by the image (CVE-2024-32498); it is never opened".into(),
            );
        } else if self.autoclear & AUTOCLEAR_RAW_DATA != 0 {
            v.refuse(
                "qcow2.raw_data_without_data_file",
                "autoclear_features",
                off::AUTOCLEAR,
                "the raw external data bit (autoclear 1) is set without the external data file bit (incompatible 2); the spec forbids it".into(),
            );
        }
    }

    /// The L1, refcount and snapshot tables: sizes bounded, offsets aligned and inside the
    /// file. Returns `false` when the L1 table cannot be read.
    fn validate_tables(&self, file_size: u64, v: &mut Verdict<'_>) -> bool {
        let cs = self.cluster_size();
        let mut usable = true;
        // Aligned, after the header cluster, and inside the file.
        let inside = |offset: u64, len: u64| {
            offset >= cs
                && offset.is_multiple_of(cs)
                && offset.checked_add(len).is_some_and(|e| e <= file_size)
        };
        let l1_bytes = u64::from(self.l1_size) * 8;
        let needed = self.l1_needed();
        if l1_bytes > MAX_L1_BYTES {
            v.refuse(
                "qcow2.l1_too_large",
                "l1_size",
                off::L1_SIZE,
                format!(
                    "{} entries ({l1_bytes} bytes) pass QEMU's L1 table limit of {MAX_L1_BYTES} bytes",
                    self.l1_size
                ),
            );
            usable = false;
        } else if u64::from(self.l1_size) < needed {
            v.refuse(
                "qcow2.l1_too_small",
                "l1_size",
                off::L1_SIZE,
                format!(
                    "{} entries cannot map the virtual size {} (it needs {needed})",
                    self.l1_size, self.size
                ),
            );
            usable = false;
        } else if self.l1_size > 0 && !inside(self.l1_table_offset, l1_bytes) {
            v.refuse(
                "qcow2.l1_table_offset",
                "l1_table_offset",
                off::L1_TABLE_OFFSET,
                format!(
                    "the L1 table ({l1_bytes} bytes at {}) must be cluster-aligned ({cs}), after the header cluster and inside the file ({file_size} bytes)",
                    self.l1_table_offset
                ),
            );
            usable = false;
        }
        let rt_bytes = u64::from(self.refcount_table_clusters) * cs;
        if self.refcount_table_clusters == 0 || rt_bytes > MAX_REFCOUNT_TABLE_BYTES {
            v.refuse(
                "qcow2.refcount_table_clusters",
                "refcount_table_clusters",
                off::REFCOUNT_TABLE_CLUSTERS,
                format!(
                    "{} clusters ({rt_bytes} bytes): the refcount table must exist and stay within QEMU's limit of {MAX_REFCOUNT_TABLE_BYTES} bytes",
                    self.refcount_table_clusters
                ),
            );
        } else if !inside(self.refcount_table_offset, rt_bytes) {
            v.refuse(
                "qcow2.refcount_table_offset",
                "refcount_table_offset",
                off::REFCOUNT_TABLE_OFFSET,
                format!(
                    "the refcount table ({rt_bytes} bytes at {}) must be cluster-aligned ({cs}), after the header cluster and inside the file ({file_size} bytes)",
                    self.refcount_table_offset
                ),
            );
        }
        if self.nb_snapshots > MAX_SNAPSHOTS {
            v.refuse(
                "qcow2.snapshots",
                "nb_snapshots",
                off::NB_SNAPSHOTS,
                format!(
                    "{} snapshots pass QEMU's limit of {MAX_SNAPSHOTS}",
                    self.nb_snapshots
                ),
            );
        } else if self.nb_snapshots > 0 && !inside(self.snapshots_offset, 1) {
            v.refuse(
                "qcow2.snapshots_offset",
                "snapshots_offset",
                off::SNAPSHOTS_OFFSET,
                format!(
                    "the snapshot table at {} must be cluster-aligned ({cs}), after the header cluster and inside the file ({file_size} bytes)",
                    self.snapshots_offset
                ),
            );
        }
        usable
    }
}

/// Incompatible feature bits this reader knows (0–4).
const INCOMPAT_KNOWN: u64 = 0x1F;

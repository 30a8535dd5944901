//! What `inspect` reports about a QCOW2 file: plain data, filled in by the reader.

use serde::Serialize;

/// Facts about a QCOW2 file, for `inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct Qcow2Details {
    /// 2 or 3.
    pub version: u32,
    pub cluster_size: u64,
    /// The header's `size` (the virtual size is this rounded down to whole sectors).
    pub size: u64,
    /// Width of a refcount entry in bits.
    pub refcount_bits: u64,
    /// How compressed clusters are compressed.
    pub compression: Compression,
    /// 128-bit L2 entries with 32 subclusters per cluster.
    pub extended_l2: bool,
    /// Compatible bit 0.
    pub lazy_refcounts: bool,
    /// Incompatible bit 0: refcounts may be stale (reads are unaffected).
    pub dirty: bool,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub header_length: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    /// L2 tables the active L1 table points to.
    pub l2_tables: u64,
    /// Guest clusters stored uncompressed (wholly or, with extended L2, in part).
    pub data_clusters: u64,
    pub compressed_clusters: u64,
    /// Guest clusters that read as zeros by the zero flag or bitmap.
    pub zero_clusters: u64,
    /// Names (from the image's feature name table) of the feature bits that are set.
    pub features: Vec<String>,
    /// The header extensions found, in file order.
    pub extensions: Vec<ExtensionInfo>,
    pub snapshots: Snapshots,
}

/// How compressed clusters are compressed (header byte 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Raw deflate (RFC 1951, no zlib header); QEMU calls it `zlib`.
    Deflate,
    /// Zstandard frames.
    Zstd,
}

/// One header extension as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionInfo {
    /// The type, as `0x%08x`.
    pub kind: String,
    /// What the type means, or `unknown`.
    pub name: &'static str,
    /// File offset of the extension's type field.
    pub offset: u64,
    /// Length of its data.
    pub length: u32,
}

/// Snapshots listed by name; the count is always reported.
pub const MAX_LISTED: u32 = 64;

/// One snapshot as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub name: String,
    /// Seconds since the Epoch when it was taken.
    pub date: u32,
    /// Bytes of saved VM state (0 for a disk-only snapshot).
    pub vm_state_size: u64,
    /// The disk size when it was taken, when the entry records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<u64>,
}

/// The snapshot table, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshots {
    /// `nb_snapshots` from the header.
    pub count: u32,
    /// The first [`MAX_LISTED`] entries.
    pub listed: Vec<SnapshotInfo>,
    /// True when more snapshots exist than are listed.
    pub truncated: bool,
    /// Metadata the snapshot table occupies in the file, for the overlap checks: the
    /// table's read entries and each listed snapshot's L1 table (offset, bytes, what).
    #[serde(skip)]
    pub regions: Vec<(u64, u64, String)>,
}

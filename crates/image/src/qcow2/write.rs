//! The QCOW2 v3 metadata imgport's converter writes (qcow2 spec, QEMU `docs/interop/qcow2.rst`):
//! the header and the table entries, laid out with the field offsets the reader decodes.
//! Where the tables go and which clusters they map are the converter's plan
//! (`imgport-transfer`'s layout).

pub use super::header::MAX_L1_BYTES;
use super::header::{DECODED_LEN, MAGIC, off};
pub use super::mapping::COPIED;

/// Header length written: every version 3 field through `compression_type` and its padding.
pub const HEADER_LEN: usize = DECODED_LEN;
/// The version written.
pub const VERSION: u32 = 3;
/// `refcount_order` written: 16-bit refcounts.
pub const REFCOUNT_ORDER: u32 = 4;

/// The fields of a version 3 header with no backing file, encryption, snapshots, feature
/// bits or extensions, and deflate as the (unused) compression type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    /// Virtual disk size in bytes.
    pub size: u64,
    pub cluster_bits: u32,
    /// Entries of the L1 table.
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
}

/// The header bytes for `h`.
pub fn header(h: &HeaderFields) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[..4].copy_from_slice(MAGIC);
    put(&mut b, off::VERSION, &VERSION.to_be_bytes());
    // backing_file_offset/size, crypt_method: none.
    put(&mut b, off::CLUSTER_BITS, &h.cluster_bits.to_be_bytes());
    put(&mut b, off::SIZE, &h.size.to_be_bytes());
    put(&mut b, off::L1_SIZE, &h.l1_size.to_be_bytes());
    put(
        &mut b,
        off::L1_TABLE_OFFSET,
        &h.l1_table_offset.to_be_bytes(),
    );
    put(
        &mut b,
        off::REFCOUNT_TABLE_OFFSET,
        &h.refcount_table_offset.to_be_bytes(),
    );
    put(
        &mut b,
        off::REFCOUNT_TABLE_CLUSTERS,
        &h.refcount_table_clusters.to_be_bytes(),
    );
    // No snapshots; no incompatible, compatible or autoclear feature bits.
    put(&mut b, off::REFCOUNT_ORDER, &REFCOUNT_ORDER.to_be_bytes());
    put(
        &mut b,
        off::HEADER_LENGTH,
        &(HEADER_LEN as u32).to_be_bytes(),
    );
    // compression_type 0 (deflate) and padding.
    b
}

/// An L1 or L2 entry pointing at the table or cluster at host offset `host`, whose refcount
/// is exactly one.
pub fn table_entry(host: u64) -> u64 {
    host | COPIED
}

fn put(buf: &mut [u8], at: u64, bytes: &[u8]) {
    let at = at as usize;
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::super::header::Header;
    use super::*;

    #[test]
    fn header_reads_back() {
        let fields = HeaderFields {
            size: 10 << 30,
            cluster_bits: 16,
            l1_size: 20,
            l1_table_offset: 1 << 16,
            refcount_table_offset: 2 << 16,
            refcount_table_clusters: 1,
        };
        let h = Header::parse(&header(&fields)).unwrap();
        assert_eq!(h.version, VERSION);
        assert_eq!(h.size, fields.size);
        assert_eq!(h.cluster_bits, fields.cluster_bits);
        assert_eq!(h.l1_size, fields.l1_size);
        assert_eq!(h.l1_table_offset, fields.l1_table_offset);
        assert_eq!(h.refcount_table_offset, fields.refcount_table_offset);
        assert_eq!(h.refcount_table_clusters, fields.refcount_table_clusters);
        assert_eq!(h.refcount_order, REFCOUNT_ORDER);
        assert_eq!(h.header_length as usize, HEADER_LEN);
        assert_eq!((h.incompatible, h.compatible, h.autoclear), (0, 0, 0));
        assert_eq!(h.backing_file_offset, 0);
        assert_eq!(h.nb_snapshots, 0);
    }
}

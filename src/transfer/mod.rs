//! Streaming conversion and checksums: the bytes of an output format produced part by part,
//! in order, hashed on the way, from a [`DiskImage`](crate::image::DiskImage)'s data extents.
//!
//! Owns: output-format layouts (raw, dynamic/fixed VHD, qcow2), digests, the buffer pool.
//! Must not touch object storage or cloud APIs: the uploader consumes [`Part`]s.

pub mod digest;

/// One part of an output byte stream, with the checksums object storage wants per part.
pub struct Part {
    /// 1-based part number, as S3 multipart numbers parts.
    pub number: u32,
    /// Offset of the part's first byte in the whole stream.
    pub offset: u64,
    /// The part's bytes.
    pub data: Vec<u8>,
    /// MD5 of `data` (S3 `Content-MD5`, OSS part ETag).
    pub md5: [u8; 16],
    /// CRC-64/XZ of `data` (OSS `x-oss-hash-crc64ecma`).
    pub crc64: u64,
}

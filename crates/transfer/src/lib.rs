//! Streaming conversion and checksums: the bytes of an output format produced part by part,
//! in order, hashed on the way, from a [`DiskImage`](imgport_image::DiskImage)'s data extents.
//!
//! Owns: output-format layouts (raw, dynamic/fixed VHD, qcow2), digests, the buffer pool.
//! Must not touch object storage or cloud APIs: the uploader consumes [`Part`]s from a
//! [`PartSource`].

pub mod content;
pub mod convert;
pub mod digest;
pub mod file;
pub mod layout;
mod output;
pub mod pool;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// One part of an output byte stream, with the checksums object storage wants per part.
pub struct Part {
    /// 1-based part number, as S3 multipart numbers parts.
    pub number: u32,
    /// Offset of the part's first byte in the whole stream.
    pub offset: u64,
    /// The part's bytes: a pooled buffer (derefs to `[u8]`) that returns to the stream's
    /// pool when dropped, so hold parts only as long as needed.
    pub data: pool::PartData,
    /// MD5 of `data` (S3 `Content-MD5`, OSS part ETag); `None` when the stream was asked to
    /// skip it ([`stream::StreamOptions::skip_part_md5`]).
    pub md5: Option<[u8; 16]>,
    /// CRC-64/XZ of `data` (OSS `x-oss-hash-crc64ecma`).
    pub crc64: u64,
    /// SHA-256 of `data`, computed beside the MD5 when the stream was asked for it
    /// ([`stream::StreamOptions::part_sha256`]): the signed payload hash of its UploadPart.
    pub sha256: Option<[u8; 32]>,
}

impl Part {
    /// The part's MD5: the one computed while streaming, else computed now.
    pub fn md5_digest(&self) -> [u8; 16] {
        self.md5.unwrap_or_else(|| digest::md5(&self.data))
    }
}

/// Digests of a whole stream, known once its last part has been produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamDigests {
    /// Total bytes.
    pub size: u64,
    /// SHA-256 of all bytes, lower-case hex.
    pub sha256: String,
    /// CRC-64/XZ of all bytes (combined from the part CRCs).
    pub crc64: u64,
}

/// A byte stream cut into parts of a fixed size (the last may be shorter), produced in order.
pub trait PartSource: Send {
    /// Total bytes the stream will produce.
    fn total_size(&self) -> u64;
    /// Size of every part but the last.
    fn part_size(&self) -> u64;
    /// Number of parts (at least 1, even for an empty stream).
    fn part_count(&self) -> u32 {
        let n = self.total_size().div_ceil(self.part_size().max(1));
        u32::try_from(n.max(1)).unwrap_or(u32::MAX)
    }
    /// The next part, or `None` after the last.
    fn next_part(&mut self) -> Option<Result<Part, TransferError>>;
    /// Digests of the whole stream; `None` until every part has been produced.
    fn digests(&self) -> Option<StreamDigests>;
    /// Passes over the all-zero parts that come next without producing them, when the
    /// stream can account for them without their bytes (its SHA-256 is skipped); returns the
    /// bytes passed over (0: none, or not possible). For consumers that need neither each
    /// part nor its digests, e.g. a local conversion that leaves zeros as holes: a hole of any
    /// size then costs one step.
    fn skip_zero_parts(&mut self) -> u64 {
        0
    }
    /// A handle that reads any part again, e.g. for a retry after the first read's buffer
    /// went back to the pool; `None` when the stream cannot (its consumer must then keep
    /// each part until it is done with it).
    fn reader(&self) -> Option<Arc<dyn PartReader>> {
        None
    }
}

/// Reads single parts of a stream again, from any thread: an uploader keeps only a part's
/// number and digests while it waits for the answer, and reads the part again to retry it.
pub trait PartReader: Send + Sync {
    /// Part `number` (1-based) read again from the source into a fresh buffer, with its
    /// CRC-64 and, when the stream computes them, its SHA-256 (never an MD5: the first
    /// read's stands). Blocks: call it from a blocking thread. The caller compares the
    /// digests with the first read's to tell whether the source changed.
    fn read_part(&self, number: u32) -> Result<Part, TransferError>;
}

/// Errors of the transfer layer.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the source image")]
    Image(#[from] imgport_image::ImageError),
    #[error("planning the output layout")]
    Layout(#[from] layout::LayoutError),
    #[error("{path}: cannot {step}")]
    Write {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("starting a worker thread")]
    Thread(#[source] std::io::Error),
    #[error("a worker thread stopped before finishing its part")]
    WorkerLost,
    #[error("interrupted")]
    Interrupted,
    #[error("part {number} is beyond the stream's last part {parts}")]
    NoSuchPart { number: u32, parts: u32 },
    #[error(
        "part size {part_size} gives {parts} parts for {total} bytes; at most {max} are allowed"
    )]
    TooManyParts {
        part_size: u64,
        parts: u64,
        total: u64,
        max: u64,
    },
}

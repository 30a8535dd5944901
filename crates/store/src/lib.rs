//! Object storage: uploading a [`PartSource`](imgport_transfer::PartSource) to OSS or any
//! S3-compatible server by multipart, resumably, and verifying the result.
//!
//! Owns: the [`ObjectStore`] seam and its one implementation on aws-sdk-s3 ([`S3Store`],
//! `client.rs`), OSS endpoint and client rules (`oss.rs`), credentials for S3 (`credentials.rs`,
//! on top of the one chain in `credentials`), the multipart driver with its one
//! retry predicate (`multipart.rs`, `retry.rs`), the resume journal (`journal.rs`), and the checks after
//! Complete plus the record of our digests (`verify.rs`).
//! Must not touch: image formats or conversion (it consumes parts, it never re-hashes them),
//! ECS APIs, printing (progress leaves through [`Reporter`](imgport_base::report::Reporter)).
//!
//! The entry point for the pipeline is [`upload`] (inside a tokio runtime):
//! ```text
//! let (creds, _from) = store::credentials::resolve(&ChainOptions::default()).await?;
//! let store = S3Store::new(&StoreConfig::oss("cn-hangzhou", false)?, &creds);
//! let stream = LayoutStream::convert(image, OutputFormat::Vhd, &StreamOptions::default())?;
//! let target = ObjectTarget { bucket: "b".into(), key: "disk.vhd".into() };
//! let opts = UploadOptions { journal_dir: Some(journal::default_dir()),
//!                            source_id: "<path, size, mtime, format>".into(), ..Default::default() };
//! let outcome = store::upload(&store, Box::new(stream), &target, &opts, &reporter).await?;
//! // outcome.size / sha256 / crc64 / etag / parts_sent / parts_reused / already_present
//! ```
//! Errors are [`StoreError`]; [`StoreError::is_temporary`] is the retry predicate.

pub mod bucket;
pub mod client;
pub mod credentials;
pub mod in_flight;
pub mod journal;
pub mod multipart;
mod options;
pub mod oss;
pub mod retry;
pub mod verify;

use std::fmt;
use std::future::Future;

pub use client::S3Store;
pub use in_flight::InFlightReport;
pub use multipart::{
    Cleaned, CompleteGate, GateKeeper, UploadOptions, UploadOutcome, abort, clean_stale,
    complete_gate, upload, upload_reopening,
};
pub use oss::StoreConfig;

use imgport_transfer::pool::PartData;

/// Where an object goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectTarget {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
}

impl fmt::Display for ObjectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

/// A part the server holds for an unfinished upload (ListParts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub size: u64,
    /// The part's ETag without quotes (its MD5 hex on S3 and OSS); some servers omit it.
    pub etag: Option<String>,
}

/// What HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// OSS's `x-oss-hash-crc64ecma` (CRC-64/XZ of the whole object), when the server sends it.
    pub crc64: Option<u64>,
}

/// The answer to one UploadPart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReceipt {
    /// ETag without quotes.
    pub etag: String,
    /// `x-oss-hash-crc64ecma` of the part, when the server sends it.
    pub crc64: Option<u64>,
}

/// The object-store calls the multipart driver needs. One real implementation: [`S3Store`].
/// Calls return `Send` futures so that parts upload on several runtime threads at once.
pub trait ObjectStore: Clone + Send + Sync + 'static {
    /// Endpoint URL, for journals and messages.
    fn endpoint(&self) -> &str;
    /// The destination `bucket` is at (account, region, endpoint identity, bucket): what
    /// journals and records name, so that state kept for one never resumes another.
    fn destination(&self, bucket: &str) -> imgport_base::destination::Destination;
    /// GetBucketLocation: the region id `bucket` is in (OSS's `oss-` prefix removed);
    /// `Ok(None)` when there is no such bucket.
    fn bucket_region(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// CreateBucket in `region`.
    fn create_bucket(
        &self,
        bucket: &str,
        region: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The storage class HeadObject reports for `target` (`x-amz-storage-class`), if any.
    fn storage_class(
        &self,
        target: &ObjectTarget,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// CreateMultipartUpload; returns the upload id.
    fn create_multipart(
        &self,
        target: &ObjectTarget,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// UploadPart, its payload signed with `sha256` when given (the stream computed it), with
    /// `Content-MD5: md5` when given. A part always carries one check the store makes: an
    /// unsigned one without an MD5 gets its MD5 computed here.
    fn upload_part(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
        number: u32,
        data: PartData,
        md5: Option<[u8; 16]>,
        sha256: Option<[u8; 32]>,
    ) -> impl Future<Output = Result<PartReceipt, StoreError>> + Send;
    /// ListParts (all pages); `Ok(None)` when the server no longer knows the upload.
    fn list_parts(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<ListedPart>>, StoreError>> + Send;
    /// CompleteMultipartUpload with `(number, etag)` in order; returns the object's ETag and
    /// the whole-object CRC-64 when the server sends it.
    fn complete(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> impl Future<Output = Result<(String, Option<u64>), StoreError>> + Send;
    /// AbortMultipartUpload; an upload the server no longer knows counts as aborted.
    fn abort(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// HeadObject; `Ok(None)` when there is no such object.
    fn head(
        &self,
        target: &ObjectTarget,
    ) -> impl Future<Output = Result<Option<ObjectHead>, StoreError>> + Send;
    /// PutObject of a small body (the digest record).
    fn put_small(
        &self,
        target: &ObjectTarget,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// PutObject of a small body only when no object has the key yet (S3 `If-None-Match: *`,
    /// OSS `x-oss-forbid-overwrite: true`): the one atomic step batch shards claim work with.
    /// `Ok(false)` when the object already exists.
    fn put_new(
        &self,
        target: &ObjectTarget,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keys under `prefix` in `bucket` (ListObjectsV2, all pages, at most `limit` keys).
    fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Open multipart uploads under `prefix` in `bucket` as `(key, upload id)`
    /// (ListMultipartUploads, all pages, at most `limit`): what a killed process left that no
    /// journal names.
    fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// DeleteObject; an object already gone counts as deleted.
    fn delete(&self, target: &ObjectTarget) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// GetObject of a small object, at most `limit` bytes; `Ok(None)` when absent.
    fn get_small(
        &self,
        target: &ObjectTarget,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
}

/// How a request failed on the way (no answer from the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Connect or attempt timeout.
    Timeout,
    /// Connection refused, reset or closed, or another I/O failure.
    Connection,
    /// The answer could not be read or parsed.
    Response,
}

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {target}: {code} (HTTP {status}): {message}")]
    Service {
        op: &'static str,
        target: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{op} {target}: request failed ({kind:?})")]
    Transport {
        op: &'static str,
        target: String,
        kind: TransportKind,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{op} {target}: the request could not be built")]
    Request {
        op: &'static str,
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("invalid store setting: {0}")]
    Config(String),
    #[error("finding credentials")]
    Credentials(#[from] imgport_credentials::CredentialError),
    #[error("producing the bytes to upload")]
    Source(#[from] imgport_transfer::TransferError),
    #[error("resume journal {path}: cannot {step}")]
    Journal {
        path: std::path::PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: part {number}: server ETag {got:?} is not the part's MD5 {want}")]
    PartEtag {
        target: String,
        number: u32,
        got: String,
        want: String,
    },
    #[error("{target}: verification after Complete failed: {what}")]
    Verify { target: String, what: String },
    /// A part read again for a retry gave other bytes than its first read: the source
    /// changed while it was uploaded (the upload is left to resume or abort).
    #[error(
        "{target}: part {number}: read again from the source for a retry, it has {what}: the \
         source changed during the upload; leave it unchanged and run the command again"
    )]
    SourceChanged {
        target: String,
        number: u32,
        what: String,
    },
    #[error("{target}: part {number}: gave up after {attempts} attempts")]
    RetriesExhausted {
        target: String,
        number: u32,
        attempts: u32,
        #[source]
        last: Box<StoreError>,
    },
    /// Kept state no longer describes the source or the object (e.g. the source changed
    /// after a killed run's Complete): the journal was removed, a fresh upload is needed.
    #[error(
        "{target}: {what}; the journal was removed: run the same command again to upload \
             the current bytes afresh"
    )]
    Stale { target: String, what: String },
    /// The upload id went away while this run used it: a killed run's Complete, still being
    /// processed by the server when this run resumed, consumed it (or it was aborted). The
    /// journal is kept; the next run checks the object against the source.
    #[error(
        "{target}: upload {upload_id} was completed or aborted outside this run while it \
         resumed it (a killed run's Complete finishing late?); the journal is kept: run the \
         same command again to check the object against the source"
    )]
    UploadGone {
        target: String,
        upload_id: String,
        #[source]
        failure: Box<StoreError>,
    },
    #[error("interrupted")]
    Interrupted,
    /// The caller withdrew the upload before Complete (see [`multipart::CompleteGate`]); it
    /// was aborted.
    #[error("upload withdrawn before completion")]
    Withdrawn,
}

impl StoreError {
    /// Exit code per README "Exit codes": 130 interrupted, 2 a setting to correct, 4 the storage
    /// service failed or could not be reached, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::Interrupted
            | StoreError::Source(imgport_transfer::TransferError::Interrupted) => 130,
            StoreError::Config(_) => 2,
            StoreError::Service { .. }
            | StoreError::Transport { .. }
            | StoreError::RetriesExhausted { .. }
            | StoreError::PartEtag { .. } => 4,
            _ => 1,
        }
    }

    /// The one retry predicate: only temporary failures are retried — 5xx, throttling
    /// (`SlowDown`, `Throttling*`, 429), `RequestTimeout`, and transport failures (timeouts,
    /// connection resets, truncated answers). Everything else (auth, bad digest, missing
    /// bucket) fails at once.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::Service { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || code == "SlowDown"
                    || code.starts_with("Throttling")
                    || code == "RequestTimeout"
                    || code == "InternalError"
                    || code == "ServiceUnavailable"
            }
            StoreError::Transport { .. } => true,
            _ => false,
        }
    }

    /// HTTP status of a service answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            StoreError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> StoreError {
        StoreError::Service {
            op: "UploadPart",
            target: "b/k".into(),
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(service(503, "SlowDown").is_temporary());
        assert!(service(500, "InternalError").is_temporary());
        assert!(service(400, "RequestTimeout").is_temporary());
        assert!(service(429, "TooManyRequests").is_temporary());
        assert!(!service(403, "AccessDenied").is_temporary());
        assert!(!service(400, "BadDigest").is_temporary());
        assert!(!service(404, "NoSuchUpload").is_temporary());
        let t = StoreError::Transport {
            op: "UploadPart",
            target: "b/k".into(),
            kind: TransportKind::Connection,
            source: "reset".into(),
        };
        assert!(t.is_temporary());
        assert!(!StoreError::Interrupted.is_temporary());
    }
}

//! Checks after CompleteMultipartUpload, and the record of our digests next to the object.
//!
//! Where the SHA-256 lives: in a small sidecar object `<key>.imgport.json`, written after a
//! verified Complete. Object metadata is fixed at CreateMultipartUpload, before the last part
//! (and so the SHA-256) exists; setting it afterwards needs CopyObject onto itself, which OSS
//! limits in size for plain copies (large images would need an UploadPartCopy of every part)
//! and which some OSS S3-compat paths refuse (cloud-api.md §4: `x-amz-copy-source` ignored);
//! object tagging is not in OSS's S3-compatible API subset. A sidecar works on every server.
//! The record names the object's ETag and size, so a replaced object no longer matches it.

use serde::{Deserialize, Serialize};

use super::{ObjectHead, ObjectStore, ObjectTarget, StoreError};

/// Suffix of the digest record's key.
pub const RECORD_SUFFIX: &str = ".imgport.json";
/// Largest digest record read.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The digest record stored at `<key>.imgport.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRecord {
    /// Always `imgport`.
    pub tool: String,
    /// Object size in bytes.
    pub size: u64,
    /// SHA-256 of the object, hex.
    pub sha256: String,
    /// CRC-64/XZ of the object (OSS's `x-oss-hash-crc64ecma`), decimal.
    pub crc64: String,
    /// The object's ETag when the record was written.
    pub etag: String,
    /// Number of parts and the part size.
    pub parts: u32,
    pub part_size: u64,
}

/// Key of the digest record of `target`.
pub fn record_target(target: &ObjectTarget) -> ObjectTarget {
    ObjectTarget {
        bucket: target.bucket.clone(),
        key: format!("{}{RECORD_SUFFIX}", target.key),
    }
}

/// What the uploaded object must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    /// ETag the Complete answer gave.
    pub etag: String,
    /// Combined CRC-64 of all parts.
    pub crc64: u64,
}

/// Compares HEAD's answer with what was uploaded: size, ETag, and the server's CRC-64 when
/// it sends one. Returns the server CRC-64 it checked.
pub fn check_head(
    target: &ObjectTarget,
    head: Option<&ObjectHead>,
    expected: &Expected,
) -> Result<Option<u64>, StoreError> {
    let fail = |what: String| StoreError::Verify {
        target: target.to_string(),
        what,
    };
    let head = head.ok_or_else(|| fail("the object is missing".into()))?;
    if head.size != expected.size {
        return Err(fail(format!(
            "size is {} bytes, {} were uploaded",
            head.size, expected.size
        )));
    }
    if !expected.etag.is_empty() && !head.etag.eq_ignore_ascii_case(&expected.etag) {
        return Err(fail(format!(
            "ETag is {:?}, Complete answered {:?}",
            head.etag, expected.etag
        )));
    }
    if let Some(crc) = head.crc64
        && crc != expected.crc64
    {
        return Err(fail(format!(
            "{} is {crc}, the uploaded bytes have {}",
            super::client::CRC64_HEADER,
            expected.crc64
        )));
    }
    Ok(head.crc64)
}

/// Writes the digest record of `target`.
pub async fn write_record<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    record: &DigestRecord,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(record).unwrap_or_default();
    store.put_small(&record_target(target), body).await
}

/// Reads the digest record of `target`; `Ok(None)` when absent or not ours.
pub async fn read_record<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
) -> Result<Option<DigestRecord>, StoreError> {
    let Some(bytes) = store
        .get_small(&record_target(target), MAX_RECORD_BYTES)
        .await?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<DigestRecord>(&bytes)
        .ok()
        .filter(|r| r.tool == "imgport"))
}

/// True when the object at `target` is the one whose digests are `record_expected`: HEAD
/// matches its size, ETag and CRC-64, and the digest record names the same SHA-256 and ETag.
pub async fn is_present<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    size: u64,
    etag: &str,
    sha256: &str,
    crc64: u64,
) -> Result<bool, StoreError> {
    let head = store.head(target).await?;
    let expected = Expected {
        size,
        etag: etag.to_string(),
        crc64,
    };
    if check_head(target, head.as_ref(), &expected).is_err() {
        return Ok(false);
    }
    Ok(read_record(store, target)
        .await?
        .is_some_and(|r| r.sha256 == sha256 && r.etag.eq_ignore_ascii_case(etag) && r.size == size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> ObjectTarget {
        ObjectTarget {
            bucket: "b".into(),
            key: "disk.vhd".into(),
        }
    }

    #[test]
    fn head_checks_each_field() {
        let want = Expected {
            size: 10,
            etag: "abc-2".into(),
            crc64: 42,
        };
        let ok = ObjectHead {
            size: 10,
            etag: "ABC-2".into(),
            crc64: Some(42),
        };
        assert_eq!(check_head(&t(), Some(&ok), &want).unwrap(), Some(42));
        let no_crc = ObjectHead {
            crc64: None,
            ..ok.clone()
        };
        assert_eq!(check_head(&t(), Some(&no_crc), &want).unwrap(), None);
        for bad in [
            ObjectHead {
                size: 11,
                ..ok.clone()
            },
            ObjectHead {
                etag: "x-2".into(),
                ..ok.clone()
            },
            ObjectHead {
                crc64: Some(1),
                ..ok.clone()
            },
        ] {
            let e = check_head(&t(), Some(&bad), &want).unwrap_err();
            assert!(matches!(e, StoreError::Verify { .. }), "{e}");
        }
        assert!(check_head(&t(), None, &want).is_err());
    }

    #[test]
    fn the_record_sits_beside_the_object() {
        assert_eq!(record_target(&t()).key, "disk.vhd.imgport.json");
    }
}

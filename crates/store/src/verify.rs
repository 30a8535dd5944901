//! Checks after CompleteMultipartUpload, and the record of our digests next to the object.
//!
//! Where the SHA-256 lives: in a small sidecar object `<key>.imgport.json`, written after a
//! verified Complete. Object metadata is fixed at CreateMultipartUpload, before the last part
//! (and so the SHA-256) exists; setting it afterwards needs CopyObject onto itself, which OSS
//! limits in size for plain copies (large images would need an UploadPartCopy of every part)
//! and which some OSS S3-compat paths refuse (docs/CLOUD-API.md §OSS: `x-amz-copy-source` ignored);
//! object tagging is not in OSS's S3-compatible API subset. A sidecar works on every server.
//! The record names the object's ETag and size, so a replaced object no longer matches it,
//! and a digest of the source's identity, so that a re-run knows the object is its own
//! without a journal (journals are removed once their object is verified): this record is
//! the "done" record.
//!
//! What "verified" means: after Complete, HEAD's size equals the bytes sent, its ETag equals
//! the multipart ETag of every part's MD5 (S3 and OSS both form it as `MD5(part MD5s)-N`; a
//! signed part's MD5 is the store's ETag for it, the bytes having been checked against the
//! signed SHA-256), and where the server sends `x-oss-hash-crc64ecma` it equals the CRC-64
//! computed here. An ETag of another form counts only with a matching CRC-64.

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
    /// [`source_digest`] of the source the object was made from (empty in old records).
    #[serde(default)]
    pub source: String,
}

/// A digest of the caller's source identity (path, size, times, format…): names the source
/// in the bucket without showing its local path.
pub fn source_digest(source_id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(source_id.as_bytes()))[..32].to_string()
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
    /// The multipart ETag of the parts' MD5s.
    pub etag: String,
    /// Combined CRC-64 of all parts.
    pub crc64: u64,
}

/// The advice every mismatch carries.
const NOT_OURS: &str = "the stored object is not the bytes read here (changed during the \
upload, or replaced): do not use it; upload again";

/// True for an S3/OSS multipart ETag: 32 hex digits, `-`, the part count.
fn is_multipart_etag(etag: &str) -> bool {
    etag.split_once('-').is_some_and(|(md5, n)| {
        md5.len() == 32
            && md5.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Compares HEAD's answer with what was uploaded: size, the multipart ETag, and the server's
/// CRC-64 when it sends one. Returns the server CRC-64 it checked. An error names both
/// values and says what to do.
pub fn check_head(
    target: &ObjectTarget,
    head: Option<&ObjectHead>,
    expected: &Expected,
) -> Result<Option<u64>, StoreError> {
    let fail = |what: String| StoreError::Verify {
        target: target.to_string(),
        what,
    };
    let head = head.ok_or_else(|| fail("the object is missing after Complete".into()))?;
    if head.size != expected.size {
        return Err(fail(format!(
            "its size is {} bytes, {} were read here; {NOT_OURS}",
            head.size, expected.size
        )));
    }
    if let Some(crc) = head.crc64
        && crc != expected.crc64
    {
        return Err(fail(format!(
            "its {} is {crc}, the CRC-64 of the bytes read here is {}; {NOT_OURS}",
            super::client::CRC64_HEADER,
            expected.crc64
        )));
    }
    if is_multipart_etag(&head.etag) {
        if !head.etag.eq_ignore_ascii_case(&expected.etag) {
            return Err(fail(format!(
                "its ETag is {}, the multipart ETag of the parts read here is {}; {NOT_OURS}",
                head.etag, expected.etag
            )));
        }
    } else if head.crc64.is_none() {
        return Err(fail(format!(
            "its ETag {:?} is not a multipart ETag (local: {}) and the server sends no \
             CRC-64: the stored bytes cannot be verified",
            head.etag, expected.etag
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

/// The digest record of the object at `target` when the object is still the one it
/// describes and was made from the source `source_digest` with `part_size`: HEAD's size,
/// ETag and CRC-64 (when sent) match the record. `Ok(None)` otherwise.
pub async fn present<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    source_digest: &str,
    part_size: u64,
) -> Result<Option<(DigestRecord, Option<u64>)>, StoreError> {
    let Some(head) = store.head(target).await? else {
        return Ok(None);
    };
    let Some(record) = read_record(store, target).await? else {
        return Ok(None);
    };
    let ours = !record.source.is_empty()
        && record.source == source_digest
        && record.part_size == part_size
        && record.size == head.size
        && record.etag.eq_ignore_ascii_case(&head.etag)
        && head.crc64.is_none_or(|c| record.crc64 == c.to_string());
    Ok(ours.then_some((record, head.crc64)))
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
        let etag = format!("{}-2", "ab".repeat(16));
        let want = Expected {
            size: 10,
            etag: etag.clone(),
            crc64: 42,
        };
        let ok = ObjectHead {
            size: 10,
            etag: etag.to_uppercase(),
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
            // Case 9 of issue 26: same size and no CRC-64, other bytes.
            ObjectHead {
                etag: format!("{}-2", "cd".repeat(16)),
                crc64: None,
                ..ok.clone()
            },
            // An ETag that proves nothing, and no CRC-64 to stand in for it.
            ObjectHead {
                etag: "opaque".into(),
                crc64: None,
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
        let e = check_head(
            &t(),
            Some(&ObjectHead {
                etag: format!("{}-2", "cd".repeat(16)),
                ..ok.clone()
            }),
            &want,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&etag) && e.contains(&"cd".repeat(16)), "{e}");
        assert!(e.contains("upload again"), "{e}");
        // A CRC-64 match stands in for an ETag of another form.
        let opaque = ObjectHead {
            etag: "opaque".into(),
            ..ok.clone()
        };
        assert_eq!(check_head(&t(), Some(&opaque), &want).unwrap(), Some(42));
    }

    #[test]
    fn the_record_sits_beside_the_object() {
        assert_eq!(record_target(&t()).key, "disk.vhd.imgport.json");
    }
}

//! The `s3s::S3` operations of the embedded server, translated to the store (`store.rs`) and
//! the uploads (`multipart.rs`), with the OSS behaviour imgport relies on: `Content-MD5`
//! checked (`BadDigest`), `x-oss-hash-crc64ecma` on PutObject, UploadPart, Complete, HEAD and
//! whole GETs, and `x-oss-forbid-overwrite: true` (409 FileAlreadyExists).
//!
//! Kept whole: one `s3s::S3` implementation; each operation is a short translation to `store.rs` or
//! `multipart.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, Bucket, CommonPrefix,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CreateBucketInput,
    CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput,
    DeleteObjectOutput, ETag, ETagCondition, GetObjectInput, GetObjectOutput, HeadBucketInput,
    HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListBucketsInput, ListBucketsOutput,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListObjectsV2Input, ListObjectsV2Output,
    ListPartsInput, ListPartsOutput, Metadata, MultipartUpload, Object, PutObjectInput,
    PutObjectOutput, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::dto::{BucketLocationConstraint, GetBucketLocationInput, GetBucketLocationOutput};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::body::{file_body, stream_into};
use super::multipart::{MAX_PART_NUMBER, MAX_PART_SIZE, UploadInfo, Uploads};
use super::state::Shared;
use super::store::{Digest, Meta, Overwrite, Store};
use crate::bucket::{self, BucketSpec};

/// The header OSS answers with the object's CRC-64/ECMA-182.
const CRC64_HEADER: &str = "x-oss-hash-crc64ecma";
/// S3's largest single PutObject.
const MAX_PUT_SIZE: u64 = 5 << 30;
/// Most keys or parts in one listing page.
const MAX_PAGE: usize = 1000;

/// The S3 service over one object root.
pub(super) struct Backend {
    pub store: Arc<Store>,
    pub uploads: Arc<Uploads>,
    pub shared: Arc<Shared>,
}

/// Runs blocking file work off the runtime's threads.
async fn blocking<T, F>(f: F) -> S3Result<T>
where
    F: FnOnce() -> S3Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| s3_error!(InternalError, "storage task: {e}"))?
}

/// The response `out` with the object's (or part's) CRC-64 header, as OSS sends it.
fn with_crc<T>(out: T, crc: u64) -> S3Response<T> {
    let mut resp = S3Response::new(out);
    resp.headers
        .insert(CRC64_HEADER, hyper::header::HeaderValue::from(crc));
    resp
}

/// The headers GET and HEAD both send about the object `found`, with the `$ty` fields given.
macro_rules! object_output {
    ($ty:ident, $found:expr, { $($field:ident: $value:expr),* $(,)? }) => {
        $ty {
            $($field: $value,)*
            accept_ranges: Some("bytes".into()),
            e_tag: Some(strong(&$found.meta.etag)),
            last_modified: Some(Timestamp::from($found.modified)),
            content_type: $found.meta.content_type.clone(),
            metadata: metadata_out(&$found.meta),
            ..Default::default()
        }
    };
}

fn strong(etag: &str) -> ETag {
    ETag::Strong(etag.to_string())
}

/// The declared body length: none, or 0..=`max` (EntityTooLarge above).
fn declared(len: Option<i64>, max: u64) -> S3Result<Option<u64>> {
    match len {
        None => Ok(None),
        Some(n) => match u64::try_from(n) {
            Ok(n) if n <= max => Ok(Some(n)),
            Ok(_) => Err(s3_error!(EntityTooLarge, "at most {max} bytes")),
            Err(_) => Err(s3_error!(InvalidArgument, "negative Content-Length")),
        },
    }
}

/// The body as declared and as `Content-MD5` says (BadDigest), checked after streaming.
fn check_body(d: &Digest, len: Option<u64>, content_md5: Option<&str>) -> S3Result<()> {
    if let Some(len) = len
        && d.len != len
    {
        return Err(s3_error!(
            IncompleteBody,
            "{} bytes received, Content-Length said {len}",
            d.len
        ));
    }
    if let Some(want) = content_md5 {
        let want = base64::engine::general_purpose::STANDARD
            .decode(want.trim())
            .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
        if want != d.md5 {
            return Err(s3_error!(BadDigest, "Content-MD5 does not match the body"));
        }
    }
    Ok(())
}

/// A request that writes an object and may say whether it may replace one.
trait Conditional {
    /// Its `If-Match` and `If-None-Match`.
    fn conditions(&self) -> (Option<&ETagCondition>, Option<&ETagCondition>);
}

impl Conditional for PutObjectInput {
    fn conditions(&self) -> (Option<&ETagCondition>, Option<&ETagCondition>) {
        (self.if_match.as_ref(), self.if_none_match.as_ref())
    }
}

impl Conditional for CompleteMultipartUploadInput {
    fn conditions(&self) -> (Option<&ETagCondition>, Option<&ETagCondition>) {
        (self.if_match.as_ref(), self.if_none_match.as_ref())
    }
}

/// [`overwrite_rule`] of the write `req`.
fn overwrite_of<T: Conditional>(req: &S3Request<T>) -> S3Result<Overwrite> {
    let (if_match, if_none_match) = req.input.conditions();
    overwrite_rule(&req.headers, if_match, if_none_match)
}

/// OSS's create-only switch, then S3's `If-None-Match: *`; `If-Match` is not supported.
fn overwrite_rule(
    headers: &hyper::HeaderMap,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Overwrite> {
    if if_match.is_some() {
        return Err(s3_error!(NotImplemented, "If-Match"));
    }
    let forbid = headers
        .get("x-oss-forbid-overwrite")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    if forbid {
        return Ok(Overwrite::ForbidOss);
    }
    match if_none_match {
        None => Ok(Overwrite::Allow),
        Some(c) if c.is_any() => Ok(Overwrite::ForbidS3),
        Some(_) => Err(s3_error!(NotImplemented, "If-None-Match with an ETag")),
    }
}

fn user_metadata(m: Option<Metadata>) -> BTreeMap<String, String> {
    m.map(|m| m.into_iter().collect()).unwrap_or_default()
}

fn metadata_out(meta: &Meta) -> Option<Metadata> {
    (!meta.metadata.is_empty()).then(|| meta.metadata.clone().into_iter().collect())
}

#[async_trait::async_trait]
impl S3 for Backend {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        // OSS makes a bucket in the region its LocationConstraint names (`oss-<region>` as
        // GetBucketLocation answers, or the bare region id); without one, the default.
        let region = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|l| l.as_str().trim_start_matches("oss-").to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| bucket::DEFAULT_REGION.to_string());
        let spec: BucketSpec = format!("{}:{region}", req.input.bucket)
            .parse()
            .map_err(|e: String| s3_error!(InvalidLocationConstraint, "{e}"))?;
        let store = self.store.clone();
        blocking(move || {
            store.create_bucket(&spec.name)?;
            bucket::record(store.root(), &spec)
                .map_err(|e| s3_error!(InternalError, "recording the bucket's region: {e}"))
        })
        .await?;
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store.bucket_dir(&req.input.bucket)?;
        let (region, _) = bucket::facts(self.store.root(), &req.input.bucket);
        // OSS names its regions `oss-<region>` here (as its own GetBucketLocation does).
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(format!("oss-{region}"))),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store.bucket_dir(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let store = self.store.clone();
        let buckets = blocking(move || store.buckets()).await?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|(name, at)| Bucket {
                        name: Some(name),
                        creation_date: Some(Timestamp::from(at)),
                        bucket_region: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let max = input.max_keys.map_or(MAX_PAGE, |n| page_size(n, 0));
        let after = match (&input.continuation_token, &input.start_after) {
            (Some(t), Some(s)) => Some(t.clone().max(s.clone())),
            (t, s) => t.clone().or_else(|| s.clone()),
        };
        let (store, bucket) = (self.store.clone(), input.bucket.clone());
        let (prefix, delimiter) = (input.prefix.clone(), input.delimiter.clone());
        let page = blocking(move || {
            store.list(
                &bucket,
                prefix.as_deref().unwrap_or(""),
                delimiter.as_deref(),
                after.as_deref(),
                max,
            )
        })
        .await?;
        let count = page.objects.len() + page.prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(wire_count(max)),
            key_count: Some(wire_count(count)),
            is_truncated: Some(page.next.is_some()),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next,
            start_after: input.start_after,
            encoding_type: input.encoding_type,
            contents: (!page.objects.is_empty()).then(|| {
                page.objects
                    .into_iter()
                    .map(|o| Object {
                        key: Some(o.key),
                        size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
                        last_modified: Some(Timestamp::from(o.modified)),
                        ..Default::default()
                    })
                    .collect()
            }),
            common_prefixes: (!page.prefixes.is_empty()).then(|| {
                page.prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect()
            }),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let overwrite = overwrite_of(&req)?;
        let input = req.input;
        let len = declared(input.content_length, MAX_PUT_SIZE)?;
        let (store, bucket, key) = (self.store.clone(), input.bucket.clone(), input.key.clone());
        // A create-only PUT of an existing object fails before its body is stored; the commit
        // decides atomically for writers racing past this check.
        let tmp = blocking(move || {
            if store.exists(&bucket, &key)? && overwrite != Overwrite::Allow {
                return Err(overwrite.error());
            }
            store.temp_file()
        })
        .await?;
        let (tmp, d) = stream_into(input.body, tmp, len.unwrap_or(MAX_PUT_SIZE)).await?;
        check_body(&d, len, input.content_md5.as_deref())?;
        let mut meta = Meta::new(d.len, hex::encode(d.md5), d.crc64);
        meta.content_type = input.content_type;
        meta.metadata = user_metadata(input.metadata);
        let (store, bucket, key) = (self.store.clone(), input.bucket, input.key);
        let meta = blocking(move || {
            let committed = store.commit(&tmp.path, &bucket, &key, meta, overwrite);
            drop(tmp);
            committed
        })
        .await?;
        Ok(with_crc(
            PutObjectOutput {
                e_tag: Some(strong(&meta.etag)),
                ..Default::default()
            },
            meta.crc64,
        ))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (store, bucket, key) = (self.store.clone(), input.bucket, input.key);
        let range = input.range;
        let (found, file, start, len) = blocking(move || {
            let found = store.head(&bucket, &key)?;
            let (start, len) = match range {
                None => (0, found.meta.size),
                Some(r) => {
                    let r = r
                        .check(found.meta.size)
                        .map_err(|_| s3_error!(InvalidRange))?;
                    (r.start, r.end - r.start)
                }
            };
            let file = std::fs::File::open(&found.path)
                .map_err(|e| s3_error!(e, NoSuchKey, "the object went away"))?;
            Ok((found, file, start, len))
        })
        .await?;
        let whole = range.is_none();
        let size = found.meta.size;
        let body = file_body(file, start, len)?;
        let out = object_output!(GetObjectOutput, found, {
            body: Some(body),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range: (!whole)
                .then(|| format!("bytes {start}-{}/{size}", (start + len).saturating_sub(1))),
        });
        Ok(if whole {
            with_crc(out, found.meta.crc64)
        } else {
            S3Response::new(out)
        })
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let (store, bucket, key) = (self.store.clone(), req.input.bucket, req.input.key);
        let (_, class) = bucket::facts(self.store.root(), &bucket);
        let found = blocking(move || store.head(&bucket, &key)).await?;
        // An object takes its bucket's storage class (imgport sets none on upload); OSS
        // spells the class its own way in the S3 header too (*unverified*, docs/CLOUD-API.md §OSS).
        let out = object_output!(HeadObjectOutput, found, {
            content_length: Some(i64::try_from(found.meta.size).unwrap_or(i64::MAX)),
            storage_class: Some(s3s::dto::StorageClass::from(class.as_str().to_string())),
        });
        // OSS sends the object's CRC-64 on HEAD (docs/CLOUD-API.md §OSS).
        Ok(with_crc(out, found.meta.crc64))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (store, bucket, key) = (self.store.clone(), req.input.bucket, req.input.key);
        blocking(move || store.delete(&bucket, &key)).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let mut info = UploadInfo::new(&input.bucket, &input.key);
        info.content_type = input.content_type;
        info.metadata = user_metadata(input.metadata);
        let (store, uploads) = (self.store.clone(), self.uploads.clone());
        let upload = blocking(move || {
            store.object_path(&info.bucket, &info.key)?;
            uploads.create(info)
        })
        .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.id.clone()),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let number = u32::try_from(input.part_number)
            .ok()
            .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
            .ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
                )
            })?;
        let len = declared(input.content_length, MAX_PART_SIZE)?;
        let uploads = self.uploads.clone();
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        let claim =
            blocking(move || uploads.get(&id, &bucket, &key)?.begin_part(number, len)).await?;
        let (claim, d) = stream_into(input.body, claim, len.unwrap_or(MAX_PART_SIZE)).await?;
        check_body(&d, len, input.content_md5.as_deref())?;
        blocking(move || claim.finish(&d)).await?;
        Ok(with_crc(
            UploadPartOutput {
                e_tag: Some(strong(&hex::encode(d.md5))),
                ..Default::default()
            },
            d.crc64,
        ))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let max = input.max_parts.map_or(MAX_PAGE, |n| page_size(n, 1));
        let marker = input
            .part_number_marker
            .map_or(0, |m| u32::try_from(m).unwrap_or(0));
        let uploads = self.uploads.clone();
        let (id, bucket, key) = (
            input.upload_id.clone(),
            input.bucket.clone(),
            input.key.clone(),
        );
        let upload = blocking(move || uploads.get(&id, &bucket, &key)).await?;
        let (parts, more) = upload.parts_after(marker, max);
        let next = parts.last().filter(|_| more).map(|p| wire_count(p.number));
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            max_parts: Some(wire_count(max)),
            is_truncated: Some(more),
            next_part_number_marker: next,
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| s3s::dto::Part {
                        part_number: Some(wire_count(p.number)),
                        size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                        e_tag: Some(strong(&p.md5)),
                        last_modified: Some(timestamp_ms(p.modified)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let overwrite = overwrite_of(&req)?;
        let input = req.input;
        let chosen = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let n = p
                    .part_number
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
                    .ok_or_else(|| s3_error!(InvalidPart, "a part without a valid number"))?;
                Ok((n, p.e_tag.map(|e| e.value().to_string())))
            })
            .collect::<S3Result<Vec<_>>>()?;
        let (store, uploads) = (self.store.clone(), self.uploads.clone());
        let (id, bucket, key) = (
            input.upload_id.clone(),
            input.bucket.clone(),
            input.key.clone(),
        );
        let tamper = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tamper_after_complete;
        // One blocking task to the end: a client that hangs up does not stop a Complete
        // half-way.
        let meta = blocking(move || {
            let upload = uploads.get(&id, &bucket, &key)?;
            let meta = uploads.complete(&store, &upload, &chosen, overwrite)?;
            if tamper && let Ok(path) = store.object_path(&bucket, &key) {
                // A stand-in for an object replaced behind our back: verification must fail.
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
                    let _ = f.write_all(b"\0");
                }
            }
            Ok(meta)
        })
        .await?;
        Ok(with_crc(
            CompleteMultipartUploadOutput {
                bucket: Some(input.bucket),
                key: Some(input.key),
                e_tag: Some(strong(&meta.etag)),
                ..Default::default()
            },
            meta.crc64,
        ))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let max = input.max_uploads.map_or(MAX_PAGE, |n| page_size(n, 1));
        let uploads = self.uploads.clone();
        let (bucket, prefix) = (
            input.bucket.clone(),
            input.prefix.clone().unwrap_or_default(),
        );
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let mut all = blocking(move || Ok(uploads.list(&bucket, &prefix))).await?;
        // Paging by key only: every upload of the marker's key was on the earlier page.
        all.retain(|(_, info)| key_marker.is_empty() || info.key > key_marker);
        let more = all.len() > max;
        all.truncate(max);
        let next_key = all.last().filter(|_| more).map(|(_, i)| i.key.clone());
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            max_uploads: Some(wire_count(max)),
            is_truncated: Some(more),
            next_key_marker: next_key,
            uploads: Some(
                all.into_iter()
                    .map(|(id, info)| MultipartUpload {
                        key: Some(info.key),
                        upload_id: Some(id),
                        initiated: Some(timestamp_ms(info.created)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let uploads = self.uploads.clone();
        let input = req.input;
        blocking(move || {
            let upload = uploads.get(&input.upload_id, &input.bucket, &input.key)?;
            uploads.abort(&upload)
        })
        .await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}

/// A listing's page size: what the request asked for, between `min` and [`MAX_PAGE`].
fn page_size(asked: i32, min: usize) -> usize {
    usize::try_from(asked).unwrap_or(0).clamp(min, MAX_PAGE)
}

/// A count as the wire's 32-bit integer, saturating.
fn wire_count(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// Milliseconds since the Unix epoch as an S3 timestamp.
fn timestamp_ms(ms: u64) -> Timestamp {
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_transfer::digest::{crc64, md5};

    fn digest(body: &[u8]) -> Digest {
        Digest {
            md5: md5(body),
            crc64: crc64(body),
            len: body.len() as u64,
        }
    }

    #[test]
    fn bodies_are_checked_against_length_and_content_md5() {
        let d = digest(b"hello");
        let b64 = |m: &[u8]| base64::engine::general_purpose::STANDARD.encode(m);
        assert!(check_body(&d, Some(5), Some(&b64(&md5(b"hello")))).is_ok());
        assert!(check_body(&d, None, None).is_ok());
        let code = |r: S3Result<()>| r.unwrap_err().code().as_str().to_string();
        assert_eq!(code(check_body(&d, Some(6), None)), "IncompleteBody");
        assert_eq!(
            code(check_body(&d, None, Some(&b64(&md5(b"other"))))),
            "BadDigest"
        );
        assert_eq!(code(check_body(&d, None, Some("%%"))), "InvalidDigest");
    }

    #[test]
    fn declared_lengths_are_bounded() {
        assert_eq!(declared(None, 10).unwrap(), None);
        assert_eq!(declared(Some(10), 10).unwrap(), Some(10));
        assert_eq!(
            declared(Some(11), 10).unwrap_err().code().as_str(),
            "EntityTooLarge"
        );
        assert!(declared(Some(-1), 10).is_err());
    }

    #[test]
    fn create_only_rules() {
        let mut h = hyper::HeaderMap::new();
        assert_eq!(overwrite_rule(&h, None, None).unwrap(), Overwrite::Allow);
        let any: s3s::dto::ETagCondition = "*".parse().unwrap();
        assert_eq!(
            overwrite_rule(&h, None, Some(&any)).unwrap(),
            Overwrite::ForbidS3
        );
        h.insert("x-oss-forbid-overwrite", "TRUE".parse().unwrap());
        assert_eq!(
            overwrite_rule(&h, None, Some(&any)).unwrap(),
            Overwrite::ForbidOss
        );
    }
}

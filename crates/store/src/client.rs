//! [`S3Store`]: the one [`ObjectStore`] implementation, on aws-sdk-s3, configured for OSS
//! (docs/CLOUD-API.md §OSS): checksum calculation and validation `WhenRequired` (OSS rejects the
//! aws-chunked bodies with CRC32 trailers the SDK sends by default), `Content-MD5` on every
//! part, the SDK's own retries off (the multipart driver owns the one retry predicate), and
//! `x-oss-hash-crc64ecma` read from raw answers, which the SDK's typed outputs do not model.
//!
//! Kept whole: one `ObjectStore` implementation over the AWS SDK: every S3 call beside the OSS
//! quirk it handles.

use std::sync::{Arc, Mutex};

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::Bytes;

use super::credentials::{Credentials, Provider, Renewing, to_sdk};
use super::oss::StoreConfig;
use super::{
    ListedPart, ObjectHead, ObjectStore, ObjectTarget, PartReceipt, StoreError, TransportKind,
};
use imgport_base::destination::{Destination, account_id};
use imgport_transfer::pool::PartData;

/// OSS's CRC-64/XZ header (docs/CLOUD-API.md §OSS): unsigned decimal.
pub const CRC64_HEADER: &str = "x-oss-hash-crc64ecma";
/// Most ListParts pages read (1000 parts a page covers 10,000 parts ten times over).
const MAX_LIST_PAGES: usize = 100;

/// An S3 client for one endpoint.
#[derive(Clone, Debug)]
pub struct S3Store {
    pub(crate) client: aws_sdk_s3::Client,
    config: StoreConfig,
    /// [`account_id`] of the AccessKey ID: names the account in kept state, no secret.
    account: String,
}

impl S3Store {
    /// A client for `config` signing with `credentials`. Needs a tokio runtime to run calls.
    pub fn new(config: &StoreConfig, credentials: &Credentials) -> Self {
        Self::build(
            config,
            aws_credential_types::provider::SharedCredentialsProvider::new(to_sdk(credentials)),
            &credentials.access_key_id,
        )
    }

    /// A client for `config` whose credentials `provider` renews before they expire.
    pub fn with_provider(config: &StoreConfig, provider: Provider) -> Self {
        let id = provider.current().access_key_id;
        Self::build(
            config,
            aws_credential_types::provider::SharedCredentialsProvider::new(Renewing(provider)),
            &id,
        )
    }

    fn build(
        config: &StoreConfig,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
        access_key_id: &str,
    ) -> Self {
        let sdk = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(config.endpoint.clone())
            .force_path_style(config.path_style)
            .credentials_provider(credentials)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.request_timeout)
                    .build(),
            )
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(sdk),
            config: config.clone(),
            account: account_id(access_key_id),
        }
    }

    /// The settings this client was made with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }
}

/// Keeps one response header of the last attempt.
#[derive(Debug, Clone)]
struct CaptureHeader {
    name: &'static str,
    slot: Arc<Mutex<Option<String>>>,
}

impl CaptureHeader {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            slot: Arc::new(Mutex::new(None)),
        }
    }

    fn crc64(&self) -> Option<u64> {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Intercept for CaptureHeader {
    fn name(&self) -> &'static str {
        "imgport-capture-header"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let value = context
            .response()
            .headers()
            .get(self.name)
            .map(str::to_string);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = value;
        Ok(())
    }
}

/// Signs a request with a payload hash computed beforehand (the stream's, per part) instead
/// of letting the SDK hash the body again.
#[derive(Debug)]
struct PrecomputedPayload(String);

impl Intercept for PrecomputedPayload {
    fn name(&self) -> &'static str {
        "imgport-precomputed-payload"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(PayloadSigningOverride::Precomputed(self.0.clone()));
        Ok(())
    }
}

/// Maps an SDK failure to a [`StoreError`] that the retry predicate can judge.
pub(crate) fn sdk_err<E>(op: &'static str, target: &ObjectTarget, e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = target.to_string();
    let kind = match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().map_or_else(
                || match status {
                    404 => "NotFound".to_string(),
                    403 => "Forbidden".to_string(),
                    s => format!("HTTP{s}"),
                },
                str::to_string,
            );
            let message = match ctx.err().message().map(str::trim) {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => no_message(ctx.raw().body().bytes()),
            };
            return StoreError::Service {
                op,
                target,
                status,
                code,
                message,
            };
        }
        SdkError::ConstructionFailure(_) => {
            return StoreError::Request {
                op,
                target,
                source: Box::new(e),
            };
        }
        SdkError::TimeoutError(_) => TransportKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => TransportKind::Timeout,
        SdkError::DispatchFailure(_) => TransportKind::Connection,
        _ => TransportKind::Response,
    };
    StoreError::Transport {
        op,
        target,
        kind,
        source: Box::new(e),
    }
}

/// Longest piece of an error body quoted when it has no `<Message>`.
const MAX_QUOTED_BODY: usize = 200;

/// What an error answer without a message says instead: that its body was empty (HEAD
/// answers never have one), or the beginning of the body with control characters escaped.
fn no_message(body: Option<&[u8]>) -> String {
    match body {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => {
            let text = String::from_utf8_lossy(&b[..b.len().min(MAX_QUOTED_BODY)]);
            let text: String = text.chars().flat_map(char::escape_default).collect();
            let more = if b.len() > MAX_QUOTED_BODY { "…" } else { "" };
            format!("no message in the answer, whose body begins \"{text}{more}\"")
        }
        Some(_) => "the answer's body was empty (no code or message from the server)".into(),
        None => "the answer's body was not kept (no message)".into(),
    }
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

fn b64(md5: &[u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5)
}

impl ObjectStore for S3Store {
    fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    async fn bucket_region(&self, bucket: &str) -> Result<Option<String>, StoreError> {
        self.get_bucket_region(bucket).await
    }

    async fn create_bucket(&self, bucket: &str, region: &str) -> Result<(), StoreError> {
        self.make_bucket(bucket, region).await
    }

    async fn storage_class(&self, target: &ObjectTarget) -> Result<Option<String>, StoreError> {
        self.object_class(target).await
    }

    fn destination(&self, bucket: &str) -> Destination {
        Destination {
            account: self.account.clone(),
            region: self.config.region.clone(),
            endpoint: self
                .config
                .identity
                .clone()
                .unwrap_or_else(|| self.config.endpoint.clone()),
            bucket: bucket.to_string(),
        }
    }

    async fn create_multipart(&self, target: &ObjectTarget) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&target.bucket)
            .key(&target.key)
            .content_type("application/octet-stream")
            .send()
            .await
            .map_err(|e| sdk_err("CreateMultipartUpload", target, e))?;
        out.upload_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| StoreError::Service {
                op: "CreateMultipartUpload",
                target: target.to_string(),
                status: 200,
                code: "MissingUploadId".into(),
                message: "the answer has no UploadId".into(),
            })
    }

    async fn upload_part(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
        number: u32,
        data: PartData,
        md5: Option<[u8; 16]>,
        sha256: Option<[u8; 32]>,
    ) -> Result<PartReceipt, StoreError> {
        let size = data.len() as u64;
        let signed = self.config.sign_payload;
        let md5 = md5.or_else(|| (!signed).then(|| imgport_transfer::digest::md5(&data)));
        let capture = CaptureHeader::new(CRC64_HEADER);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.config.connect_timeout)
            .operation_attempt_timeout(self.config.part_timeout(size))
            .build();
        let number_i32 = i32::try_from(number)
            .map_err(|_| StoreError::Config(format!("part number {number} out of range")))?;
        let mut op = self
            .client
            .upload_part()
            .bucket(&target.bucket)
            .key(&target.key)
            .upload_id(upload_id)
            .part_number(number_i32)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .set_content_md5(md5.map(|m| b64(&m)))
            .body(part_body(data, signed && sha256.is_none()))
            .customize()
            .config_override(aws_sdk_s3::Config::builder().timeout_config(timeouts))
            .interceptor(capture.clone());
        op = match (signed, sha256) {
            (false, _) => op.disable_payload_signing(),
            // The SHA-256 the stream computed: the SDK would hash the body a second time.
            (true, Some(hash)) => op.interceptor(PrecomputedPayload(hex::encode(hash))),
            (true, None) => op,
        };
        let out = op
            .send()
            .await
            .map_err(|e| sdk_err("UploadPart", target, e))?;
        Ok(PartReceipt {
            etag: out.e_tag.as_deref().map(unquote).unwrap_or_default(),
            crc64: capture.crc64(),
        })
    }

    async fn list_parts(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, StoreError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut req = self
                .client
                .list_parts()
                .bucket(&target.bucket)
                .key(&target.key)
                .upload_id(upload_id);
            if let Some(m) = &marker {
                req = req.part_number_marker(m);
            }
            let out = match req.send().await {
                Ok(out) => out,
                Err(e) => {
                    let err = sdk_err("ListParts", target, e);
                    return match &err {
                        StoreError::Service { status: 404, .. } => Ok(None),
                        StoreError::Service { code, .. } if code == "NoSuchUpload" => Ok(None),
                        _ => Err(err),
                    };
                }
            };
            for p in out.parts() {
                let (Some(n), Some(size)) = (p.part_number, p.size) else {
                    continue;
                };
                let (Ok(n), Ok(size)) = (u32::try_from(n), u64::try_from(size)) else {
                    continue;
                };
                parts.push(ListedPart {
                    number: n,
                    size,
                    etag: p.e_tag.as_deref().map(unquote).filter(|e| !e.is_empty()),
                });
            }
            match (out.is_truncated, out.next_part_number_marker) {
                (Some(true), Some(next)) if Some(&next) != marker.as_ref() => marker = Some(next),
                _ => return Ok(Some(parts)),
            }
        }
        Ok(Some(parts))
    }

    async fn complete(
        &self,
        target: &ObjectTarget,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(String, Option<u64>), StoreError> {
        let capture = CaptureHeader::new(CRC64_HEADER);
        let completed = parts
            .iter()
            .map(|(n, etag)| {
                CompletedPart::builder()
                    .part_number(i32::try_from(*n).unwrap_or(i32::MAX))
                    .e_tag(format!("\"{etag}\""))
                    .build()
            })
            .collect::<Vec<_>>();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&target.bucket)
            .key(&target.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| sdk_err("CompleteMultipartUpload", target, e))?;
        Ok((
            out.e_tag.as_deref().map(unquote).unwrap_or_default(),
            capture.crc64(),
        ))
    }

    async fn abort(&self, target: &ObjectTarget, upload_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&target.bucket)
            .key(&target.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match sdk_err("AbortMultipartUpload", target, e) {
                StoreError::Service { status: 404, .. } => Ok(()),
                StoreError::Service { code, .. } if code == "NoSuchUpload" => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, target: &ObjectTarget) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match sdk_err("DeleteObject", target, e) {
                StoreError::Service { status: 404, .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn head(&self, target: &ObjectTarget) -> Result<Option<ObjectHead>, StoreError> {
        let capture = CaptureHeader::new(CRC64_HEADER);
        let out = match self
            .client
            .head_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match sdk_err("HeadObject", target, e) {
                    StoreError::Service { status: 404, .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        Ok(Some(ObjectHead {
            size: out
                .content_length
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            etag: out.e_tag.as_deref().map(unquote).unwrap_or_default(),
            crc64: capture.crc64(),
        }))
    }

    async fn put_small(&self, target: &ObjectTarget, body: Vec<u8>) -> Result<(), StoreError> {
        let md5 = imgport_transfer::digest::md5(&body);
        self.client
            .put_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .content_type("application/json")
            .content_md5(b64(&md5))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_err("PutObject", target, e))?;
        Ok(())
    }

    async fn put_new(&self, target: &ObjectTarget, body: Vec<u8>) -> Result<bool, StoreError> {
        let md5 = imgport_transfer::digest::md5(&body);
        let sent = self
            .client
            .put_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .content_type("application/json")
            .content_md5(b64(&md5))
            .if_none_match("*")
            .body(ByteStream::from(body))
            .customize()
            .mutate_request(|req| {
                // OSS ignores If-None-Match on PutObject; this is its create-only switch.
                req.headers_mut().insert("x-oss-forbid-overwrite", "true");
            })
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) => match sdk_err("PutObject", target, e) {
                // 412 PreconditionFailed (S3), 409 FileAlreadyExists (OSS).
                StoreError::Service {
                    status: 412 | 409, ..
                } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let target = ObjectTarget {
            bucket: bucket.to_string(),
            key: prefix.to_string(),
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_err("ListObjectsV2", &target, e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            if keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let target = ObjectTarget {
            bucket: bucket.to_string(),
            key: prefix.to_string(),
        };
        let mut found = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        for _ in 0..MAX_LIST_PAGES {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| sdk_err("ListMultipartUploads", &target, e))?;
            found.extend(
                out.uploads()
                    .iter()
                    .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string()))),
            );
            if found.len() >= limit {
                found.truncate(limit);
                break;
            }
            match out.next_key_marker() {
                Some(k) if out.is_truncated() == Some(true) => {
                    key_marker = Some(k.to_string());
                    id_marker = out.next_upload_id_marker().map(str::to_string);
                }
                _ => break,
            }
        }
        Ok(found)
    }

    async fn get_small(
        &self,
        target: &ObjectTarget,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match sdk_err("GetObject", target, e) {
                    StoreError::Service { status: 404, .. } => Ok(None),
                    StoreError::Service { code, .. } if code == "NoSuchKey" => Ok(None),
                    other => Err(other),
                };
            }
        };
        if out
            .content_length
            .is_some_and(|n| u64::try_from(n).unwrap_or(u64::MAX) > limit as u64)
        {
            return Err(StoreError::Verify {
                target: target.to_string(),
                what: format!("object larger than the {limit} bytes expected"),
            });
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Transport {
                op: "GetObject",
                target: target.to_string(),
                kind: TransportKind::Response,
                source: Box::new(e),
            })?
            .into_bytes();
        if bytes.len() > limit {
            return Err(StoreError::Verify {
                target: target.to_string(),
                what: format!("object larger than the {limit} bytes expected"),
            });
        }
        Ok(Some(bytes.to_vec()))
    }
}

/// An UploadPart body over the pooled buffer itself (no copy). A stream body the SDK cannot
/// clone: it keeps no copy for a retry of its own (its retries are off; the uploader retries
/// by reading the part again), so the buffer goes back to the pool once the connection has
/// written it, not when the answer comes (docs/PERFORMANCE.md §WAN). `hashed_here`: the
/// signer hashes the payload itself, which needs a body it can read before sending.
fn part_body(data: PartData, hashed_here: bool) -> ByteStream {
    let bytes = Bytes::from_owner(data);
    if hashed_here {
        ByteStream::from(bytes)
    } else {
        ByteStream::from_body_1_x(http_body_util::Full::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_a_message_says_so() {
        assert!(no_message(Some(b"")).contains("body was empty"));
        assert!(no_message(Some(b" \n")).contains("body was empty"));
        assert!(no_message(None).contains("no message"));
        let quoted = no_message(Some(b"<Error><Code>X</Code>\x1b[2J</Error>"));
        assert!(
            quoted.contains("<Code>X</Code>") && !quoted.contains('\x1b'),
            "{quoted}"
        );
        let long = no_message(Some(&[b'a'; 1000]));
        assert!(long.len() < 400 && long.ends_with("…\""), "{long}");
    }
}

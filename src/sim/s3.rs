//! The embedded S3 server: s3s + s3s-fs on 127.0.0.1, serving the emulator's object root.
//!
//! s3s-fs stores an object `bucket`/`key` as the plain file `<root>/<bucket>/<key>` (its
//! `get_object_path`) and keeps its own bookkeeping in hidden files at the root
//! (`.bucket-….metadata.json`, `.upload-<id>.json`, `.upload_id-<id>.part-<n>`), so
//! ImportImage's lookup (`disk::object_path`) finds uploaded objects as they are.
//!
//! On top of s3s-fs, to behave like OSS where tests need it: UploadPart checks `Content-MD5`
//! (`BadDigest`), ListParts reports each part's ETag (its MD5), HeadObject sends
//! `x-oss-hash-crc64ecma`. And a fault layer in front of the HTTP service, configurable while
//! running: fail chosen parts with 500/503 `SlowDown`, drop their connection, delay them; it
//! counts every UploadPart that succeeded, by part number, so tests can assert exactly-once.
//! Must not touch the client side (`store`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateBucketInput, CreateBucketOutput,
    CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput, DeleteObjectOutput,
    ETag, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput,
    HeadObjectOutput, ListBucketsInput, ListBucketsOutput, ListObjectsV2Input, ListObjectsV2Output,
    ListPartsInput, ListPartsOutput, PutObjectInput, PutObjectOutput, UploadPartInput,
    UploadPartOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use tokio::net::TcpListener;

use super::server::{TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, TEST_STS_KEY_ID};
use crate::transfer::digest::{crc64, crc64_combine, hex, md5};

/// What a chosen part's request suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 500 InternalError.
    Internal,
    /// 503 SlowDown (S3's throttling answer).
    SlowDown,
    /// The connection is closed without an answer.
    Drop,
    /// The answer comes after this many milliseconds (and is then served normally).
    DelayMs(u64),
}

/// A fault on the first `times` attempts of part `part` (0 = every part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFault {
    pub part: u32,
    pub kind: FaultKind,
    pub times: u32,
}

impl std::str::FromStr for PartFault {
    type Err = String;
    /// `PART:KIND[:TIMES]` with KIND `500`, `slowdown`, `drop` or `delay=MS`, e.g. `3:slowdown:2`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let part = it
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{s:?}: expected PART:KIND[:TIMES]"))?;
        let kind = match it.next().unwrap_or("") {
            "500" => FaultKind::Internal,
            "slowdown" => FaultKind::SlowDown,
            "drop" => FaultKind::Drop,
            k => match k.strip_prefix("delay=").and_then(|ms| ms.parse().ok()) {
                Some(ms) => FaultKind::DelayMs(ms),
                None => return Err(format!("{s:?}: KIND is 500, slowdown, drop or delay=MS")),
            },
        };
        let times = match it.next() {
            Some(t) => t.parse().map_err(|_| format!("{s:?}: TIMES is a number"))?,
            None => 1,
        };
        Ok(Self { part, kind, times })
    }
}

/// The fault plan, changeable while the server runs.
#[derive(Debug, Clone, Default)]
pub struct S3Faults {
    pub parts: Vec<PartFault>,
    /// After each successful Complete, append a byte to the object (a stand-in for an object
    /// replaced behind our back), so verification must fail.
    pub tamper_after_complete: bool,
    /// Fraction (0..=1) of all requests failed, deterministically (the k-th request fails when
    /// ⌊k·rate⌋ grows), in turn with 500 InternalError, 503 SlowDown and a dropped connection.
    pub rate: f64,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct S3Stats {
    /// Successful UploadPart answers by part number.
    pub parts_ok: BTreeMap<u32, u32>,
    /// Every request seen, and those failed by [`S3Faults::rate`].
    pub requests: u64,
    pub rate_faults: u64,
    /// UploadPart requests by part number (including failed ones).
    pub part_requests: BTreeMap<u32, u32>,
    pub completes: u32,
    /// How UploadPart requests were framed: `content-md5`, `x-amz-content-sha256=<value or
    /// "hash">`, `content-encoding=<v>`, and the names of any `x-amz-checksum-*`,
    /// `x-amz-sdk-checksum-algorithm` or `x-amz-trailer` headers (OSS refuses those).
    pub part_framing: std::collections::BTreeSet<String>,
}

#[derive(Default)]
struct Shared {
    faults: Mutex<S3Faults>,
    stats: Mutex<S3Stats>,
}

/// A running embedded S3 server.
pub struct S3Server {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// The object root.
    pub root: PathBuf,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// A server on its own runtime thread (for tests and tools without a runtime); stops on drop.
pub struct S3Thread {
    pub server: S3Server,
    _runtime: tokio::runtime::Runtime,
}

impl S3Server {
    /// Binds `listen` and serves `root` on the current tokio runtime. Buckets are the
    /// directories of `root`; `buckets` are created first.
    pub async fn start(listen: SocketAddr, root: &Path, buckets: &[&str]) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        for b in buckets {
            std::fs::create_dir_all(root.join(b))?;
        }
        let root = root.canonicalize()?;
        let fs =
            s3s_fs::FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let shared = Arc::new(Shared::default());
        let mut builder = s3s::service::S3ServiceBuilder::new(OssLike {
            fs,
            root: root.clone(),
            crc_cache: Mutex::new(HashMap::new()),
            create_lock: tokio::sync::Mutex::new(()),
            part_crcs: Mutex::new(HashMap::new()),
            shared: shared.clone(),
        });
        let mut auth = s3s::auth::SimpleAuth::new();
        auth.register(TEST_ACCESS_KEY_ID.into(), TEST_ACCESS_KEY_SECRET.into());
        auth.register(TEST_STS_KEY_ID.into(), TEST_ACCESS_KEY_SECRET.into());
        builder.set_auth(auth);
        let service = builder.build();
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared2 = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                let shared = shared2.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        faulty(service.clone(), shared.clone(), req)
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            root,
            shared,
            task,
        })
    }

    /// Starts a server on a runtime thread of its own.
    pub fn spawn(root: &Path, buckets: &[&str]) -> std::io::Result<S3Thread> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server = runtime.block_on(Self::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            root,
            buckets,
        ))?;
        Ok(S3Thread {
            server,
            _runtime: runtime,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, faults: S3Faults) {
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// A copy of the counters.
    pub fn stats(&self) -> S3Stats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves until the task ends (never, unless the runtime stops).
    pub async fn serve(mut self) {
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::ops::Deref for S3Thread {
    type Target = S3Server;
    fn deref(&self) -> &S3Server {
        &self.server
    }
}

/// The part number of an UploadPart request (PUT with `partNumber` and `uploadId`, no copy
/// source), else `None`.
fn upload_part_number<B>(req: &Request<B>) -> Option<u32> {
    if req.method() != hyper::Method::PUT || req.headers().contains_key("x-amz-copy-source") {
        return None;
    }
    let q = req.uri().query()?;
    if !q.split('&').any(|kv| kv.starts_with("uploadId=")) {
        return None;
    }
    q.split('&')
        .find_map(|kv| kv.strip_prefix("partNumber="))
        .and_then(|n| n.parse().ok())
}

fn error_response(status: u16, code: &str) -> Response<s3s::Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the imgport test server</Message></Error>"
    );
    let mut resp = Response::new(s3s::Body::from(xml));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    resp
}

/// The fault layer in front of the S3 service.
/// Counts the request; `Some(n)` (0, 1, 2: which fault) when [`S3Faults::rate`] fails it.
fn rate_fault(shared: &Shared) -> Option<u64> {
    let rate = shared
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rate
        .clamp(0.0, 1.0);
    let mut stats = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
    let k = stats.requests;
    stats.requests += 1;
    if ((k + 1) as f64 * rate).floor() > (k as f64 * rate).floor() {
        stats.rate_faults += 1;
        Some(stats.rate_faults % 3)
    } else {
        None
    }
}

async fn faulty(
    service: s3s::service::S3Service,
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    let part = upload_part_number(&req);
    let is_complete = req.method() == hyper::Method::POST
        && req.uri().query().is_some_and(|q| q.contains("uploadId="));
    if let Some(kind) = rate_fault(&shared) {
        match kind {
            0 => return Ok(error_response(500, "InternalError")),
            1 => return Ok(error_response(503, "SlowDown")),
            _ => {
                return Err(s3s::HttpError::new(Box::new(std::io::Error::other(
                    "connection dropped by the fault layer",
                ))));
            }
        }
    }
    if let Some(n) = part {
        let attempt = {
            let mut stats = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
            for (name, value) in req.headers() {
                let name = name.as_str();
                let value = value.to_str().unwrap_or("?");
                let note = match name {
                    "content-md5" => Some(name.to_string()),
                    "x-amz-content-sha256" if value.len() == 64 => Some(format!("{name}=hash")),
                    "x-amz-content-sha256" | "content-encoding" => Some(format!("{name}={value}")),
                    n if n.starts_with("x-amz-checksum-")
                        || n == "x-amz-sdk-checksum-algorithm"
                        || n == "x-amz-trailer" =>
                    {
                        Some(name.to_string())
                    }
                    _ => None,
                };
                stats.part_framing.extend(note);
            }
            let c = stats.part_requests.entry(n).or_insert(0);
            *c += 1;
            *c
        };
        let fault = shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parts
            .iter()
            .find(|f| (f.part == n || f.part == 0) && attempt <= f.times)
            .copied();
        match fault.map(|f| f.kind) {
            Some(FaultKind::Internal) => return Ok(error_response(500, "InternalError")),
            Some(FaultKind::SlowDown) => return Ok(error_response(503, "SlowDown")),
            Some(FaultKind::Drop) => {
                return Err(s3s::HttpError::new(Box::new(std::io::Error::other(
                    "connection dropped by the fault layer",
                ))));
            }
            Some(FaultKind::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => {}
        }
    }
    let resp = service.call(req.map(s3s::Body::from)).await?;
    if resp.status().is_success() {
        let mut stats = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = part {
            *stats.parts_ok.entry(n).or_insert(0) += 1;
        }
        if is_complete {
            stats.completes += 1;
        }
    }
    Ok(resp)
}

/// s3s-fs with the OSS behaviour the uploader relies on.
struct OssLike {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    /// Held by create-only writes, so their check and write are one step for other writers.
    create_lock: tokio::sync::Mutex<()>,
    crc_cache: Mutex<HashMap<PathBuf, (u64, SystemTime, u64)>>,
    /// CRC-64 and size of each stored part, by (upload id, part number): OSS computes the
    /// CRC on ingest, so Complete and HEAD answer without reading the object again.
    part_crcs: Mutex<HashMap<(String, i32), (u64, u64)>>,
    shared: Arc<Shared>,
}

/// CRC-64/XZ of a file, read in 4 MiB chunks.
fn file_crc64(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut crc = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc64_combine(crc, crc64(&buf[..n]), n as u64);
    }
}

fn file_md5(path: &Path) -> std::io::Result<[u8; 16]> {
    Ok(md5(&std::fs::read(path)?))
}

impl OssLike {
    fn object_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        super::disk::object_path(&self.root, bucket, key)
    }

    async fn crc_of(&self, path: PathBuf) -> Option<u64> {
        let meta = std::fs::metadata(&path).ok()?;
        let stamp = (meta.len(), meta.modified().ok()?);
        if let Some(&(len, mtime, crc)) = self
            .crc_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&path)
            && (len, mtime) == stamp
        {
            return Some(crc);
        }
        let p = path.clone();
        let crc = tokio::task::spawn_blocking(move || file_crc64(&p))
            .await
            .ok()?
            .ok()?;
        self.crc_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path, (stamp.0, stamp.1, crc));
        Some(crc)
    }
}

#[async_trait::async_trait]
impl S3 for OssLike {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        // OSS's create-only write: `x-oss-forbid-overwrite: true` answers 409
        // FileAlreadyExists for an existing object; S3's `If-None-Match: *` answers 412.
        let forbid = req
            .headers
            .get("x-oss-forbid-overwrite")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if !forbid && req.input.if_none_match.is_none() {
            return self.fs.put_object(req).await;
        }
        let _one_at_a_time = self.create_lock.lock().await;
        if forbid
            && self
                .object_path(&req.input.bucket, &req.input.key)
                .is_some_and(|p| p.exists())
        {
            let mut e = s3s::S3Error::with_message(
                s3s::S3ErrorCode::Custom("FileAlreadyExists".into()),
                "The object you specified already exists and can not be overwritten.",
            );
            e.set_status_code(hyper::StatusCode::CONFLICT);
            return Err(e);
        }
        self.fs.put_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let path = self.object_path(&req.input.bucket, &req.input.key);
        let mut resp = self.fs.head_object(req).await?;
        // OSS sends the object's CRC-64 on HEAD (cloud-api.md §4 "x-oss-hash-crc64ecma").
        if let Some(path) = path
            && let Some(crc) = self.crc_of(path).await
            && let Ok(v) = hyper::header::HeaderValue::from_str(&crc.to_string())
        {
            resp.headers.insert(crate::store::client::CRC64_HEADER, v);
        }
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let want = req.input.content_md5.clone();
        let (upload_id, number) = (req.input.upload_id.clone(), req.input.part_number);
        let mut resp = self.fs.upload_part(req).await?;
        // The part's CRC-64, read back while the file is in the page cache.
        let path = self
            .root
            .join(format!(".upload_id-{upload_id}.part-{number}"));
        if let Ok(Ok((len, crc))) = tokio::task::spawn_blocking(move || {
            file_crc64(&path).and_then(|c| Ok((std::fs::metadata(&path)?.len(), c)))
        })
        .await
        {
            self.part_crcs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((upload_id, number), (len, crc));
            if let Ok(v) = hyper::header::HeaderValue::from_str(&crc.to_string()) {
                resp.headers.insert(crate::store::client::CRC64_HEADER, v);
            }
        }
        // s3s-fs does not check Content-MD5; OSS and S3 do (BadDigest). Its ETag is the MD5.
        if let Some(want) = want {
            let got = resp
                .output
                .e_tag
                .as_ref()
                .map(|e| e.value().to_string())
                .unwrap_or_default();
            let want_hex = base64::engine::general_purpose::STANDARD
                .decode(want.trim())
                .map(|b| hex(&b))
                .unwrap_or_default();
            if !got.eq_ignore_ascii_case(&want_hex) {
                return Err(s3_error!(BadDigest, "Content-MD5 does not match the body"));
            }
        }
        Ok(resp)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.root.join(format!(".upload-{upload_id}.json")).exists() {
            return Err(s3_error!(NoSuchUpload));
        }
        let mut resp = self.fs.list_parts(req).await?;
        // s3s-fs lists parts without ETags; OSS lists each part's MD5.
        if let Some(parts) = resp.output.parts.as_mut() {
            parts.sort_by_key(|p| p.part_number);
            for p in parts.iter_mut() {
                let Some(n) = p.part_number else { continue };
                let path = self.root.join(format!(".upload_id-{upload_id}.part-{n}"));
                if let Ok(m) = tokio::task::spawn_blocking(move || file_md5(&path)).await
                    && let Ok(m) = m
                {
                    p.e_tag = Some(ETag::Strong(hex(&m)));
                }
            }
        }
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let path = self.object_path(&req.input.bucket, &req.input.key);
        let numbers: Vec<i32> = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(|ps| ps.iter().filter_map(|p| p.part_number).collect())
            .unwrap_or_default();
        let upload_id = req.input.upload_id.clone();
        let combined = {
            let mut crcs = self.part_crcs.lock().unwrap_or_else(|p| p.into_inner());
            let c = numbers.iter().try_fold(0u64, |acc, n| {
                crcs.get(&(upload_id.clone(), *n))
                    .map(|&(len, crc)| crc64_combine(acc, crc, len))
            });
            crcs.retain(|(id, _), _| *id != upload_id);
            c
        };
        let mut resp = self.fs.complete_multipart_upload(req).await?;
        if let (Some(crc), Some(path)) = (combined, &path)
            && let Ok(meta) = std::fs::metadata(path)
            && let Ok(mtime) = meta.modified()
        {
            self.crc_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.clone(), (meta.len(), mtime, crc));
            if let Ok(v) = hyper::header::HeaderValue::from_str(&crc.to_string()) {
                resp.headers.insert(crate::store::client::CRC64_HEADER, v);
            }
        }
        let tamper = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tamper_after_complete;
        if tamper && let Some(path) = path {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
                let _ = f.write_all(b"\0");
            }
        }
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        if !self
            .root
            .join(format!(".upload-{}.json", req.input.upload_id))
            .exists()
        {
            return Err(s3_error!(NoSuchUpload));
        }
        let upload_id = req.input.upload_id.clone();
        self.part_crcs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| *id != upload_id);
        self.fs.abort_multipart_upload(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse() {
        assert_eq!(
            "3:slowdown:2".parse::<PartFault>().unwrap(),
            PartFault {
                part: 3,
                kind: FaultKind::SlowDown,
                times: 2
            }
        );
        assert_eq!(
            "0:delay=50".parse::<PartFault>().unwrap().kind,
            FaultKind::DelayMs(50)
        );
        assert_eq!("1:drop".parse::<PartFault>().unwrap().times, 1);
        assert_eq!(
            "2:500:9".parse::<PartFault>().unwrap().kind,
            FaultKind::Internal
        );
        for bad in ["", "x:500", "1:boom", "1:500:x", "1:delay=ms"] {
            assert!(bad.parse::<PartFault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_part_requests_are_recognised() {
        let r = |m: &str, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert_eq!(
            upload_part_number(&r("PUT", "/b/k?partNumber=7&uploadId=u")),
            Some(7)
        );
        assert_eq!(upload_part_number(&r("PUT", "/b/k")), None);
        assert_eq!(
            upload_part_number(&r("GET", "/b/k?partNumber=7&uploadId=u")),
            None
        );
    }
}

//! The embedded S3 server: s3s (HTTP, SigV4) on 127.0.0.1 in front of our own file-system
//! backend, serving the emulator's object root. It accepts the fixed test keys and the STS
//! credentials of the emulated STS it is given (`tokens.rs`: token and expiry as OSS checks
//! them). Used by `imgport sim`, the
//! sandbox (`imgport import --sandbox`), the integration tests and the upload benchmarks.
//!
//! Layout (ImportImage reads objects through `disk::object_path`): an object `bucket`/`key`
//! is the plain file `<root>/<bucket>/<key>`; the server's own state is under
//! `<root>/.imgport-s3/` ([`INTERNAL_DIR`]), which no bucket can name: `meta/` holds one
//! sidecar per object (ETag, CRC-64, content type, user metadata, stamped so a file replaced
//! by hand is digested again), `uploads/<id>/` one directory per multipart upload, `tmp/`
//! PutObject bodies on their way in (emptied at start).
//!
//! Why our own backend: s3s-fs spends much CPU per uploaded byte on the cores the client
//! needs (MD5 at UploadPart, a re-read for CRC-64, a 64 KiB-read copy of every part at
//! Complete with another MD5 of the whole object, re-reads at ListParts). Here each body is
//! hashed (MD5 and CRC-64) once while it is written (`body.rs`); parts of equal size are
//! written into their slots of one staging file, which Complete renames into place
//! (`multipart.rs`); every digest S3 or OSS reports is kept, never recomputed (`store.rs`).
//! The S3 operations and the OSS behaviour imgport relies on (`Content-MD5` → `BadDigest`,
//! `x-oss-hash-crc64ecma`, `x-oss-forbid-overwrite`) are in `backend.rs`.
//!
//! In front of the HTTP service, a fault layer configurable while running: fail chosen
//! parts with 500/503 `SlowDown`, drop their connection, delay them; it counts every
//! UploadPart that succeeded, by part number, so tests can assert exactly-once.
//! Must not touch the client side (`store`).

mod backend;
mod body;
mod lanes;
mod multipart;
mod oss;
mod state;
mod store;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use self::state::Shared;
pub use self::state::{FaultKind, PartFault, S3Faults, S3Stats};
pub use self::store::INTERNAL_DIR;
use super::sts::Sts;

/// The file under [`INTERNAL_DIR`] listing each STS AccessKey ID the server accepted, one a
/// line, in the order first seen (key IDs only: no secret, no token).
pub const STS_KEYS_FILE: &str = "sts-keys";

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
    /// directories of `root`; `buckets` (`NAME[:REGION[:CLASS]]`, [`crate::bucket::BucketSpec`])
    /// are created first, with their region and storage class.
    pub async fn start(listen: SocketAddr, root: &Path, buckets: &[&str]) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        for b in buckets {
            let spec: crate::bucket::BucketSpec = b.parse().map_err(std::io::Error::other)?;
            std::fs::create_dir_all(root.join(&spec.name))?;
            crate::bucket::record(root, &spec)?;
        }
        let root = root.canonicalize()?;
        let store = Arc::new(store::Store::open(&root)?);
        let uploads = Arc::new(multipart::Uploads::open(store.uploads_dir())?);
        let shared = Arc::new(Shared {
            sts_log: Some(root.join(INTERNAL_DIR).join(STS_KEYS_FILE)),
            ..Shared::default()
        });
        let mut builder = s3s::service::S3ServiceBuilder::new(backend::Backend {
            store,
            uploads,
            shared: shared.clone(),
        });
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        // Virtual-hosted requests name the bucket in the host: `<bucket>.localhost:<port>`.
        let named = format!("{}:{}", oss::NAMED_HOST, addr.port());
        builder.set_host(s3s::host::SingleDomain::new(&named).map_err(std::io::Error::other)?);
        builder.set_auth(tokens::KeyStore {
            shared: shared.clone(),
        });
        let service = builder.build();
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

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts the credentials `sts` issues (with their token, until they expire), as OSS
    /// accepts those of Alibaba Cloud's STS; `imgport sim` shares its emulated STS here.
    pub fn accept_sts(&self, sts: Arc<Sts>) {
        self.shared.set_sts(sts);
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, faults: S3Faults) {
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Takes `UNSIGNED-PAYLOAD` on PUT and POST as AWS S3 and MinIO do, where OSS refuses it:
    /// a plain S3 server, to measure what signing part payloads costs.
    pub fn take_unsigned_payload(&self, on: bool) {
        self.shared
            .unsigned_payload_ok
            .store(on, std::sync::atomic::Ordering::Relaxed);
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

/// An injected error answer, sent once the request body has been read and dropped: answering
/// and closing while the client still writes would make its error a broken pipe instead of
/// the status the test injected.
async fn error_response(req: Request<Incoming>, status: u16, code: &str) -> Response<s3s::Body> {
    xml_error(
        req,
        status,
        code,
        "injected by the imgport test server",
        None,
    )
    .await
}

/// An S3 error answer (with OSS's `x-oss-ec` when given), sent once the body is read.
async fn xml_error(
    req: Request<Incoming>,
    status: u16,
    code: &str,
    message: &str,
    ec: Option<&str>,
) -> Response<s3s::Body> {
    use http_body_util::BodyExt as _;
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message></Error>"
    );
    let mut resp = Response::new(s3s::Body::from(xml));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    if let Some(ec) = ec.and_then(|e| hyper::header::HeaderValue::from_str(e).ok()) {
        resp.headers_mut().insert("x-oss-ec", ec);
    }
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
    // OSS authenticates when the request arrives: expired or unknown STS tokens first.
    if let Some(r) = tokens::refusal(&req, &shared) {
        return Ok(xml_error(req, r.status, r.code, r.message, r.ec).await);
    }
    if let Some(kind) = rate_fault(&shared) {
        match kind {
            0 => return Ok(error_response(req, 500, "InternalError").await),
            1 => return Ok(error_response(req, 503, "SlowDown").await),
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
            Some(FaultKind::Internal) => {
                return Ok(error_response(req, 500, "InternalError").await);
            }
            Some(FaultKind::SlowDown) => {
                return Ok(error_response(req, 503, "SlowDown").await);
            }
            Some(FaultKind::Drop) => {
                return Err(s3s::HttpError::new(Box::new(std::io::Error::other(
                    "connection dropped by the fault layer",
                ))));
            }
            Some(FaultKind::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultKind::FailAfterMs(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return Ok(error_response(req, 500, "InternalError").await);
            }
            None => {}
        }
    }
    // After the counters above: a test sees what was sent, and then OSS's refusal.
    let unsigned_ok = shared
        .unsigned_payload_ok
        .load(std::sync::atomic::Ordering::Relaxed);
    if let Some(r) = oss::refusal(&req, unsigned_ok) {
        return Ok(xml_error(req, r.status, r.code, r.message, r.ec).await);
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
            "2:500-after=900".parse::<PartFault>().unwrap().kind,
            FaultKind::FailAfterMs(900)
        );
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

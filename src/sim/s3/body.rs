//! Bodies of the embedded S3 server: a request body streamed into a file as it arrives, hashed
//! (MD5, CRC-64) in the same pass; a file streamed out as a response body. Never a whole body
//! in memory: at most two batches of about 1 MiB per request.
//!
//! The frames hyper gives are gathered (no copy: `Bytes` are shared) into a batch; each
//! batch is hashed and written by a blocking task while the next one is received, so the
//! runtime's threads never wait for the disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, SizeHint};
use s3s::dto::StreamingBlob;
use s3s::{S3Result, s3_error};
use tokio::task::JoinHandle;

use super::store::{Digest, Hasher, TempFile, io_error, write_all_vectored_at};

/// Bytes gathered before a write.
const BATCH: usize = 1 << 20;
/// Response bodies up to this size are read at once.
const SMALL_GET: u64 = 1 << 20;

/// Where a streamed body goes.
pub trait WriteAt: Send + 'static {
    /// Writes `bufs`, back to back, at `offset` of the body.
    fn write_at(&self, bufs: &[Bytes], offset: u64) -> S3Result<()>;
}

impl WriteAt for TempFile {
    fn write_at(&self, bufs: &[Bytes], offset: u64) -> S3Result<()> {
        write_all_vectored_at(&self.file, bufs, offset).map_err(io_error("write", &self.path))
    }
}

type Job<T> = (T, Hasher, S3Result<()>);

/// The sink and its hasher, either idle here or inside the blocking task writing a batch.
struct Writer<T> {
    idle: Option<(T, Hasher)>,
    busy: Option<JoinHandle<Job<T>>>,
}

impl<T: WriteAt> Writer<T> {
    /// Waits for the batch under way; its error, if any.
    async fn settle(&mut self) -> S3Result<()> {
        if let Some(h) = self.busy.take() {
            let (sink, hasher, done) = h
                .await
                .map_err(|e| s3_error!(InternalError, "body writer: {e}"))?;
            self.idle = Some((sink, hasher));
            done?;
        }
        Ok(())
    }

    /// Starts hashing and writing `bufs` once the batch under way is done.
    async fn submit(&mut self, bufs: Vec<Bytes>) -> S3Result<()> {
        self.settle().await?;
        let (sink, mut hasher) = self
            .idle
            .take()
            .ok_or_else(|| s3_error!(InternalError, "body writer lost its state"))?;
        self.busy = Some(tokio::task::spawn_blocking(move || {
            let at = hasher.len();
            for b in &bufs {
                hasher.update(b);
            }
            let done = sink.write_at(&bufs, at);
            (sink, hasher, done)
        }));
        Ok(())
    }
}

/// Streams `body` into `sink` from offset 0, refusing more than `limit` bytes; returns the
/// sink and the digest of what was written. On error, and when the request is dropped
/// mid-way, the sink is dropped only after its last write (so its `Drop` may clean up).
pub async fn stream_into<T: WriteAt>(
    body: Option<StreamingBlob>,
    sink: T,
    limit: u64,
) -> S3Result<(T, Digest)> {
    let mut body = s3s::Body::from(body.ok_or_else(|| s3_error!(IncompleteBody))?);
    let mut w = Writer {
        idle: Some((sink, Hasher::new())),
        busy: None,
    };
    let mut batch = Vec::new();
    let (mut batched, mut seen) = (0usize, 0u64);
    let received: S3Result<()> = loop {
        let frame = match body.frame().await {
            None => break Ok(()),
            Some(Ok(f)) => f,
            Some(Err(e)) => break Err(body_error(&*e)),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen += data.len() as u64;
        if seen > limit {
            break Err(s3_error!(
                EntityTooLarge,
                "the body is longer than the {limit} bytes allowed"
            ));
        }
        batched += data.len();
        batch.push(data);
        if batched >= BATCH {
            batched = 0;
            if let Err(e) = w.submit(std::mem::take(&mut batch)).await {
                break Err(e);
            }
        }
    };
    // No write may be under way once we answer.
    let settled = w.settle().await;
    received?;
    settled?;
    if !batch.is_empty() {
        w.submit(batch).await?;
        w.settle().await?;
    }
    let (sink, hasher) = w
        .idle
        .take()
        .ok_or_else(|| s3_error!(InternalError, "body writer lost its state"))?;
    Ok((sink, hasher.finish()))
}

/// A failed body read: a signed payload whose SHA-256 differs (s3s checks it while we read),
/// or a body that ended early.
fn body_error(e: &(dyn std::error::Error + Send + Sync)) -> s3s::S3Error {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(hyper::StatusCode::BAD_REQUEST);
        e
    } else {
        s3_error!(IncompleteBody, "reading the body: {text}")
    }
}

/// `len` bytes of `file` from `offset` as a response body, read by a blocking task in 1 MiB
/// chunks as the client takes them.
pub fn file_body(file: File, offset: u64, len: u64) -> S3Result<StreamingBlob> {
    if len <= SMALL_GET {
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or_default()];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| s3_error!(e, InternalError, "reading the object"))?;
        return Ok(StreamingBlob::from(s3s::Body::from(Bytes::from(buf))));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut at = 0u64;
        while at < len {
            let n = usize::try_from((len - at).min(SMALL_GET)).unwrap_or_default();
            let mut buf = vec![0u8; n];
            let chunk = file
                .read_exact_at(&mut buf, offset + at)
                .map(|()| Bytes::from(buf));
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            at += n as u64;
        }
    });
    Ok(StreamingBlob::from(s3s::Body::http_body_unsync(FileBody {
        rx,
        left: len,
    })))
}

struct FileBody {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        match this.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(b))) => {
                this.left = this.left.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) if this.left > 0 => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the object reader stopped",
            )))),
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

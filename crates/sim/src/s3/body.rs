//! Bodies of the embedded S3 server: a request body streamed into a file as it arrives, hashed
//! (MD5, CRC-64) in the same pass; a file streamed out as a response body. Never a whole body
//! in memory: at most two batches of about 1 MiB per request.
//!
//! The frames hyper gives are gathered (no copy: `Bytes` are shared) into a batch; each
//! batch is written by a blocking task while the next one is received, so the runtime's
//! threads never wait for the disk, and handed to the MD5 lanes, which hash it meanwhile
//! (only the last batch waits for its MD5). The task copies the batch into a page-aligned
//! buffer from a small shared pool and writes whole pages, so the sink can write them past
//! the page cache ([`super::store::write_at`]); the last partial page is carried over to the
//! next batch, and written as it is at the end.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, SizeHint};
use s3s::dto::StreamingBlob;
use s3s::{S3Result, s3_error};
use tokio::task::JoinHandle;

use super::lanes::BodyHash;
use super::store::{DIRECT_ALIGN, Digest, TempFile, io_error, write_at};
use imgport_md5x16::md5_finish;
use imgport_transfer::pool::{BufferPool, PoolBuf};

/// Bytes gathered before a write.
const BATCH: usize = 1 << 20;
/// Size of the aligned buffers batches are copied into (a batch may end with a large frame).
const WRITE_BUFFER: usize = 2 * BATCH;
/// Buffers over all requests, each held until it is written and hashed; more wait for one.
/// Three per body of eight at once: one filling, one being written, one in the MD5 lanes.
const WRITE_BUFFERS: usize = 24;

/// The shared aligned buffers (allocated as first needed, then reused).
fn write_buffers() -> &'static BufferPool {
    static POOL: std::sync::OnceLock<BufferPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| BufferPool::new(WRITE_BUFFER, WRITE_BUFFERS))
}
/// Response bodies up to this size are read at once.
const SMALL_GET: u64 = 1 << 20;

/// Where a streamed body goes.
pub trait WriteAt: Send + 'static {
    /// Writes `data` at `offset` of the body.
    fn write_at(&self, data: &[u8], offset: u64) -> S3Result<()>;
}

impl WriteAt for TempFile {
    fn write_at(&self, data: &[u8], offset: u64) -> S3Result<()> {
        write_at(&self.file, self.direct.as_ref(), data, offset)
            .map_err(io_error("write", &self.path))
    }
}

/// What a request's writer keeps between batches: the sink, the digests so far, and the
/// received bytes not yet written (less than a page).
struct Carry<T> {
    sink: T,
    /// MD5 over the first `md5_done` bytes (whole blocks), once the lanes have hashed them.
    md5: Option<BodyHash>,
    md5_done: u64,
    /// The MD5 once the last batch was written.
    md5_final: Option<[u8; 16]>,
    crc: crc_fast::Digest,
    len: u64,
    tail: Vec<u8>,
}

impl<T: WriteAt> Carry<T> {
    fn new(sink: T) -> Self {
        Carry {
            sink,
            md5: Some(BodyHash::new()),
            md5_done: 0,
            md5_final: None,
            crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Xz),
            len: 0,
            tail: Vec::new(),
        }
    }

    /// Hashes `bufs` and writes them after what was written so far: whole pages only, unless
    /// `last`, when everything goes.
    fn write(&mut self, bufs: &[Bytes], last: bool) -> S3Result<()> {
        // Body offset of the buffer's first byte (a page boundary; MD5 is done up to at
        // least there).
        let mut at = self.len - self.tail.len() as u64;
        for b in bufs {
            self.crc.update(b);
            self.len += b.len() as u64;
        }
        let mut buf = write_buffers().get(WRITE_BUFFER);
        let mut fill = self.tail.len();
        buf[..fill].copy_from_slice(&self.tail);
        self.tail.clear();
        for b in bufs {
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = (WRITE_BUFFER - fill).min(rest.len());
                buf[fill..fill + n].copy_from_slice(&rest[..n]);
                (fill, rest) = (fill + n, &rest[n..]);
                if fill == WRITE_BUFFER {
                    self.flush(buf, at, fill, fill)?;
                    buf = write_buffers().get(WRITE_BUFFER);
                    (at, fill) = (at + fill as u64, 0);
                }
            }
        }
        let whole = if last {
            fill
        } else {
            fill - fill % DIRECT_ALIGN
        };
        self.tail.extend_from_slice(&buf[whole..fill]);
        // The bytes after the last whole MD5 block, for the padding.
        let unhashed = (fill - fill % 64).max((self.md5_done - at) as usize);
        let md5_tail = last.then(|| buf[unhashed..fill].to_vec());
        self.flush(buf, at, fill, whole)?;
        if let Some(md5_tail) = md5_tail {
            let hash = self.md5.take().ok_or_else(finished)?;
            self.md5_final = Some(md5_finish(hash.finish()?, &md5_tail, self.len));
        }
        Ok(())
    }

    /// Hands the whole blocks of `buf[..fill]` not hashed yet to the MD5 lanes (`buf`
    /// starts at body offset `at`) and writes `buf[..upto]` there meanwhile.
    fn flush(&mut self, buf: PoolBuf, at: u64, fill: usize, upto: usize) -> S3Result<()> {
        let from = (self.md5_done - at) as usize;
        let to = fill - fill % 64;
        let buf = Arc::new(buf);
        if to > from {
            self.md5_done = at + to as u64;
            self.md5
                .as_mut()
                .ok_or_else(finished)?
                .add(&buf, from..to)?;
        }
        if upto > 0 {
            self.sink.write_at(&buf[..upto], at)?;
        }
        Ok(())
    }

    /// The digests of the whole body (after the last batch).
    fn digest(&self) -> S3Result<Digest> {
        let md5 = self
            .md5_final
            .ok_or_else(|| s3_error!(InternalError, "body writer did not finish"))?;
        Ok(Digest {
            md5,
            crc64: self.crc.clone().finalize(),
            len: self.len,
        })
    }
}

type Job<T> = (Carry<T>, S3Result<()>);

/// The sink and its state, either idle here or inside the blocking task writing a batch.
struct Writer<T> {
    idle: Option<Carry<T>>,
    busy: Option<JoinHandle<Job<T>>>,
}

impl<T: WriteAt> Writer<T> {
    /// Waits for the batch under way; its error, if any.
    async fn settle(&mut self) -> S3Result<()> {
        if let Some(h) = self.busy.take() {
            let (carry, done) = h
                .await
                .map_err(|e| s3_error!(InternalError, "body writer: {e}"))?;
            self.idle = Some(carry);
            done?;
        }
        Ok(())
    }

    /// Starts hashing and writing `bufs` once the batch under way is done; `last` writes out
    /// the partial page too.
    async fn submit(&mut self, bufs: Vec<Bytes>, last: bool) -> S3Result<()> {
        self.settle().await?;
        let mut carry = self
            .idle
            .take()
            .ok_or_else(|| s3_error!(InternalError, "body writer lost its state"))?;
        self.busy = Some(tokio::task::spawn_blocking(move || {
            let done = carry.write(&bufs, last);
            (carry, done)
        }));
        Ok(())
    }
}

fn finished() -> s3s::S3Error {
    s3_error!(InternalError, "body writer wrote after its last batch")
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
        idle: Some(Carry::new(sink)),
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
            if let Err(e) = w.submit(std::mem::take(&mut batch), false).await {
                break Err(e);
            }
        }
    };
    // No write may be under way once we answer.
    let settled = w.settle().await;
    received?;
    settled?;
    w.submit(batch, true).await?;
    w.settle().await?;
    let carry = w
        .idle
        .take()
        .ok_or_else(|| s3_error!(InternalError, "body writer lost its state"))?;
    let digest = carry.digest()?;
    Ok((carry.sink, digest))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The bytes written, at their place, and each write's offset and length.
    #[derive(Clone, Default)]
    struct Written(Vec<u8>, Vec<(u64, usize)>);

    /// Records each write.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Written>>);

    impl WriteAt for Recorder {
        fn write_at(&self, data: &[u8], offset: u64) -> S3Result<()> {
            let mut g = self.0.lock().unwrap();
            let end = offset as usize + data.len();
            if g.0.len() < end {
                g.0.resize(end, 0);
            }
            g.0[offset as usize..end].copy_from_slice(data);
            g.1.push((offset, data.len()));
            Ok(())
        }
    }

    #[test]
    fn odd_frames_are_written_in_whole_pages_then_the_tail() {
        let rec = Recorder::default();
        let mut carry = Carry::new(rec.clone());
        let mut want = Vec::new();
        let mut frames = |sizes: &[usize], seed: u8| -> Vec<Bytes> {
            sizes
                .iter()
                .map(|&n| {
                    let b: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
                    want.extend_from_slice(&b);
                    Bytes::from(b)
                })
                .collect()
        };
        let batches = [
            frames(&[1, 4095, 7, 100_000], 1),
            frames(&[WRITE_BUFFER + 12_345], 2), // a frame larger than a buffer
            frames(&[0, 3, 65_536, 9], 3),
        ];
        let n = batches.len();
        for (i, b) in batches.iter().enumerate() {
            carry.write(b, i + 1 == n).unwrap();
        }
        let Written(bytes, writes) = rec.0.lock().unwrap().clone();
        assert_eq!(bytes, want);
        let (last, init) = writes.split_last().unwrap();
        for &(off, len) in init {
            assert_eq!((off % DIRECT_ALIGN as u64, len % DIRECT_ALIGN), (0, 0));
        }
        assert_eq!(last.0 as usize + last.1, want.len());
        let d = carry.digest().unwrap();
        assert_eq!(d.len, want.len() as u64);
        assert_eq!(d.md5, imgport_transfer::digest::md5(&want));
        assert_eq!(d.crc64, imgport_transfer::digest::crc64(&want));
    }
}

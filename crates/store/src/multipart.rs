//! The multipart driver, generic over [`ObjectStore`]: takes parts in order from a
//! [`PartSource`] (already cut and hashed by the stream — nothing is hashed again here but
//! the rare part nothing else names), uploads at most `concurrency` at once with per-part retries, reuses the parts a
//! journal and ListParts agree on, completes, verifies, and records the object's digests.
//!
//! Retries: `retry.rs` (one predicate, [`StoreError::is_temporary`]). Non-idempotent Create is guarded
//! by the journal: a re-run resumes the upload id it recorded instead of creating another.
//!
//! Kept whole: the one multipart driver (plan parts, resume, send, complete, verify); options,
//! journal, retry and verification live beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::in_flight::{InFlightReport, Pacer};
use super::journal::{self, Header, Journal, JournalPart};
use super::options::Verdict;
pub use super::options::{CompleteGate, GateKeeper, UploadOptions, complete_gate};
use super::retry::retry;
use super::verify::{self, DigestRecord, Expected};
use super::{ObjectStore, ObjectTarget, PartReceipt, StoreError};
use imgport_base::report::{Reporter, Stage};
use imgport_transfer::pool::PartData;
use imgport_transfer::{Part, PartReader, PartSource, StreamDigests, TransferError};

/// What [`upload`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadOutcome {
    pub bucket: String,
    pub key: String,
    /// Object size in bytes.
    pub size: u64,
    /// SHA-256 of the object, hex.
    pub sha256: String,
    /// CRC-64/XZ of the object (combined from the parts), as OSS's decimal string.
    pub crc64: String,
    /// `x-oss-hash-crc64ecma` the server reported and we compared, if it sent one.
    pub server_crc64: Option<String>,
    /// The object's ETag.
    pub etag: String,
    /// S3's multipart ETag of the parts' MD5s ([`part_md5`]; equal to `etag` on S3-like
    /// servers).
    pub multipart_etag: String,
    pub part_size: u64,
    pub parts: u32,
    /// Parts uploaded by this run.
    pub parts_sent: u32,
    /// Parts found finished on the server (journal + ListParts) and not sent again.
    pub parts_reused: u32,
    /// Failed attempts that were retried.
    pub retries: u32,
    /// The object was already there with our digests: nothing was uploaded or read.
    pub already_present: bool,
    pub upload_id: Option<String>,
    pub journal: Option<PathBuf>,
    /// The parts in flight this run chose within the cap (empty when nothing was sent).
    pub in_flight: InFlightReport,
}

/// Uploads one part with retries, from a task. The part's buffer is the first attempt's
/// body and goes back to the pool once written; a retry reads the part again through
/// `reader` and sends it only when its CRC-64 and SHA-256 equal the first read's. A source
/// without a reader has its part kept for the retries instead.
async fn send_part<S: ObjectStore>(
    store: S,
    target: ObjectTarget,
    upload_id: String,
    part: Part,
    reader: Option<Arc<dyn PartReader>>,
    opts: UploadOptions,
) -> PartResult {
    let started = Instant::now();
    let mut notes = Vec::new();
    let first_read = FirstRead {
        number: part.number,
        size: part.data.len() as u64,
        crc64: part.crc64,
        sha256: part.sha256,
    };
    let (number, md5) = (part.number, part.md5);
    let kept = reader.is_none().then(|| part.data.clone());
    let mut first = Some(part.data);
    let (store_ref, target_ref, id) = (&store, &target, upload_id.as_str());
    let result = retry(
        &opts,
        |attempt, e| {
            notes.push(format!(
                "part {number}: attempt {attempt} failed ({e}); retrying"
            ))
        },
        || {
            let data = first.take().or_else(|| kept.clone());
            let reader = reader.clone();
            async move {
                let data = match data {
                    Some(d) => d,
                    None => first_read.read_again(reader, target_ref).await?,
                };
                store_ref
                    .upload_part(target_ref, id, number, data, md5, first_read.sha256)
                    .await
            }
        },
    )
    .await;
    let result = match result {
        Ok((receipt, _)) => check_receipt(&target, &first_read, md5, kept, reader, receipt).await,
        Err(e) => Err(e),
    };
    let (size, sha256) = (first_read.size, first_read.sha256);
    (number, size, sha256, notes, result, started.elapsed())
}

/// What the uploader keeps of a part while its request waits for the answer: not its bytes
/// (they go back to the pool once written), but what reads it again and checks it.
#[derive(Clone, Copy)]
struct FirstRead {
    number: u32,
    size: u64,
    crc64: u64,
    sha256: Option<[u8; 32]>,
}

impl FirstRead {
    /// The part read again through `reader` (on a blocking thread), refused with
    /// [`StoreError::SourceChanged`] when its size, CRC-64 or SHA-256 differ from the first
    /// read's.
    async fn read_again(
        self,
        reader: Option<Arc<dyn PartReader>>,
        target: &ObjectTarget,
    ) -> Result<PartData, StoreError> {
        let reader = reader.ok_or(StoreError::Source(TransferError::WorkerLost))?;
        let number = self.number;
        let part = tokio::task::spawn_blocking(move || reader.read_part(number))
            .await
            .map_err(|_| StoreError::Source(TransferError::WorkerLost))??;
        let size = part.data.len() as u64;
        let what = if size != self.size {
            Some(format!("{size} bytes, the first read {}", self.size))
        } else if part.crc64 != self.crc64 {
            Some(format!(
                "CRC-64 {}, the first read {}",
                part.crc64, self.crc64
            ))
        } else {
            match (part.sha256, self.sha256) {
                (Some(now), Some(then)) if now != then => Some(format!(
                    "SHA-256 {}, the first read {}",
                    hex::encode(now),
                    hex::encode(then)
                )),
                _ => None,
            }
        };
        match what {
            Some(what) => Err(StoreError::SourceChanged {
                target: target.to_string(),
                number,
                what,
            }),
            None => Ok(part.data),
        }
    }
}

/// Checks a part's answer (the server's CRC-64, an MD5 ETag against ours) and gives the
/// part's MD5 for the multipart ETag ([`part_md5`]).
async fn check_receipt(
    target: &ObjectTarget,
    first: &FirstRead,
    md5: Option<[u8; 16]>,
    kept: Option<PartData>,
    reader: Option<Arc<dyn PartReader>>,
    receipt: PartReceipt,
) -> Result<(PartReceipt, [u8; 16]), StoreError> {
    let number = first.number;
    if let Some(c) = receipt.crc64
        && c != first.crc64
    {
        return Err(StoreError::Verify {
            target: target.to_string(),
            what: format!("part {number}: server CRC-64 {c}, ours {}", first.crc64),
        });
    }
    let md5 = match part_md5(md5, &receipt.etag) {
        Some(m) => m,
        // Rare (a store whose part ETags are not MD5s, and a stream that computed none):
        // the bytes are gone, so they are read again (and checked) for it.
        None => {
            let data = match kept {
                Some(d) => d,
                None => first.read_again(reader, target).await?,
            };
            imgport_transfer::digest::md5(&data)
        }
    };
    // S3 and OSS give a part the MD5 of its bytes as ETag; check ours against it.
    let want = hex::encode(md5);
    if is_md5_hex(&receipt.etag) && !receipt.etag.eq_ignore_ascii_case(&want) {
        return Err(StoreError::PartEtag {
            target: target.to_string(),
            number,
            got: receipt.etag.clone(),
            want,
        });
    }
    Ok((receipt, md5))
}

/// True for an ETag of the MD5 form: 32 hex digits.
fn is_md5_hex(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The MD5 of a sent part, for the multipart ETag: the stream's when it computed one; else the
/// store's ETag, since the store checked the part's bytes against its signed SHA-256 (the
/// client computes a `Content-MD5` for an unsigned part without one); else `None` (to be
/// computed from the bytes).
fn part_md5(md5: Option<[u8; 16]>, etag: &str) -> Option<[u8; 16]> {
    if md5.is_some() {
        return md5;
    }
    let mut from_store = [0u8; 16];
    (is_md5_hex(etag) && hex::decode_to_slice(etag, &mut from_store).is_ok()).then_some(from_store)
}

/// Whether `part` holds the bytes `jp` recorded: by the signed SHA-256 when both have one,
/// else by MD5 (computed now when the stream skipped it). Returns the digest compared on a
/// mismatch: its name, the part's value now, the journal's.
fn same_part(jp: &JournalPart, part: &Part) -> Result<(), (&'static str, String, String)> {
    if jp.size != part.data.len() as u64 {
        let now = part.data.len().to_string();
        return Err(("size", now, jp.size.to_string()));
    }
    if let (Some(ours), Some(theirs)) = (part.sha256, &jp.sha256) {
        let now = hex::encode(ours);
        return if now.eq_ignore_ascii_case(theirs) {
            Ok(())
        } else {
            Err(("SHA-256", now, theirs.clone()))
        };
    }
    let now = hex::encode(part.md5_digest());
    if now.eq_ignore_ascii_case(&jp.md5) {
        Ok(())
    } else {
        Err(("MD5", now, jp.md5.clone()))
    }
}

/// The MD5 a journal recorded for a part, as bytes.
fn journaled_md5(jp: &JournalPart) -> Option<[u8; 16]> {
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(&jp.md5, &mut md5).ok().map(|()| md5)
}

/// Reads parts on a blocking thread and hands them over one at a time.
fn spawn_producer(
    mut source: Box<dyn PartSource>,
) -> (
    tokio::sync::mpsc::Receiver<Result<Part, TransferError>>,
    tokio::task::JoinHandle<Option<StreamDigests>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let handle = tokio::task::spawn_blocking(move || {
        while let Some(p) = source.next_part() {
            let failed = p.is_err();
            if tx.blocking_send(p).is_err() || failed {
                return None;
            }
        }
        source.digests()
    });
    (rx, handle)
}

/// What to do with the journal found for an upload.
enum Plan {
    /// Start a new multipart upload.
    Fresh,
    /// Send the parts the server does not hold yet to this upload.
    Resume {
        upload_id: String,
        reusable: BTreeMap<u32, JournalPart>,
    },
    /// The server no longer knows the upload, and an object of the right size and part count
    /// stands at the key: a killed run's Complete probably went through. The object is checked
    /// against the source's bytes before anything is sent.
    Consumed {
        upload_id: String,
        parts: BTreeMap<u32, JournalPart>,
    },
}

/// Aborts `upload_id` as a best effort: an upload that cannot be aborted must not block a
/// new one (it is reported).
async fn abort_quietly<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    upload_id: &str,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) {
    if let Err(e) = retry(opts, |_, _| {}, || store.abort(target, upload_id)).await {
        reporter.message(&format!("could not abort upload {upload_id}: {e}"));
    }
}

/// Reads the journal at `path`. One that exists but cannot be read (a damaged header, another
/// format version) can never be resumed: the uploads it still names are aborted and it is
/// removed.
async fn open_journal<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    path: &Path,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<Option<journal::State>, StoreError> {
    if let Some(state) = journal::load(path)? {
        return Ok(Some(state));
    }
    if !path.exists() {
        return Ok(None);
    }
    let ids = journal::salvage(path);
    if ids.is_empty() {
        reporter.message(&format!(
            "journal {} is unreadable and no upload id can be read from it; starting over \
             (a multipart upload it started may stay open at {target}: list the bucket's \
             multipart uploads to abort it)",
            path.display()
        ));
    }
    for id in &ids {
        reporter.message(&format!(
            "journal {} is unreadable; aborting the upload {id} it names",
            path.display()
        ));
        abort_quietly(store, target, id, opts, reporter).await;
    }
    journal::remove(path)?;
    Ok(None)
}

/// Decides what to do with an existing journal: resume its upload (with the parts ListParts
/// confirms), check an object its upload may have become, or abort a stale one and start
/// over.
async fn reconcile<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    state: journal::State,
    header: &Header,
    reporter: &dyn Reporter,
    opts: &UploadOptions,
) -> Result<Plan, StoreError> {
    let same = state.header.destination == header.destination
        && state.header.key == header.key
        && state.header.part_size == header.part_size
        && state.header.total_size == header.total_size
        && state.header.source == header.source;
    let id = state.header.upload_id.clone();
    if !same {
        reporter.message(&format!(
            "the journal's upload {id} is for other bytes; aborting it"
        ));
        abort_quietly(store, target, &id, opts, reporter).await;
        return Ok(Plan::Fresh);
    }
    let (listed, _) = retry(opts, |_, _| {}, || store.list_parts(target, &id)).await?;
    let Some(listed) = listed else {
        // Complete consumed the upload id (or it was aborted): the object decides.
        let (head, _) = retry(opts, |_, _| {}, || store.head(target)).await?;
        let suffix = format!("-{}", header.total_size.div_ceil(header.part_size.max(1)));
        if head.is_some_and(|h| h.size == header.total_size && h.etag.ends_with(&suffix)) {
            reporter.message(&format!(
                "upload {id} was completed by an earlier run; checking the object against \
                 the source"
            ));
            return Ok(Plan::Consumed {
                upload_id: id,
                parts: state.parts,
            });
        }
        reporter.message(&format!(
            "upload {id} is no longer known to the server; starting over"
        ));
        return Ok(Plan::Fresh);
    };
    let listed: BTreeMap<u32, _> = listed.into_iter().map(|p| (p.number, p)).collect();
    let reusable: BTreeMap<u32, JournalPart> = state
        .parts
        .into_iter()
        .filter(|(n, jp)| {
            listed.get(n).is_some_and(|lp| {
                lp.size == jp.size
                    && lp
                        .etag
                        .as_ref()
                        .is_none_or(|e| e.eq_ignore_ascii_case(&jp.etag))
            })
        })
        .collect();
    reporter.message(&format!(
        "resuming upload {id}: {} of {} parts are on the server already",
        reusable.len(),
        header.total_size.div_ceil(header.part_size.max(1))
    ));
    Ok(Plan::Resume {
        upload_id: id,
        reusable,
    })
}

/// The fixed facts of one upload, for the steps after the plan.
struct Job<'a> {
    target: &'a ObjectTarget,
    journal_path: Option<PathBuf>,
    part_size: u64,
    part_count: u32,
    source_digest: String,
}

impl Job<'_> {
    fn outcome(&self, d: &StreamDigests, md5s: &[[u8; 16]]) -> UploadOutcome {
        UploadOutcome {
            bucket: self.target.bucket.clone(),
            key: self.target.key.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            crc64: d.crc64.to_string(),
            server_crc64: None,
            etag: String::new(),
            multipart_etag: imgport_transfer::digest::multipart_etag(md5s),
            part_size: self.part_size,
            parts: self.part_count,
            parts_sent: 0,
            parts_reused: 0,
            retries: 0,
            already_present: false,
            upload_id: None,
            journal: None,
            in_flight: InFlightReport::default(),
        }
    }

    /// Checks the object at the key against what was read here (HEAD: size, multipart ETag,
    /// CRC-64), writes the digest record and removes the journal. Fills `etag`,
    /// `server_crc64` and `retries` of `out`.
    async fn verify_and_record<S: ObjectStore>(
        &self,
        store: &S,
        out: &mut UploadOutcome,
        crc64: u64,
        opts: &UploadOptions,
    ) -> Result<(), StoreError> {
        let target = self.target;
        let (head, n) = retry(opts, |_, _| {}, || store.head(target)).await?;
        out.retries += n;
        let expected = Expected {
            size: out.size,
            etag: out.multipart_etag.clone(),
            crc64,
        };
        let server_crc = match verify::check_head(target, head.as_ref(), &expected) {
            Ok(c) => c,
            Err(e) => {
                // The upload id is consumed: nothing is left to resume.
                if let Some(p) = &self.journal_path {
                    journal::remove(p)?;
                }
                return Err(e);
            }
        };
        out.server_crc64 = server_crc.map(|c| c.to_string());
        out.etag = head.map(|h| h.etag).unwrap_or_default();
        let record = DigestRecord {
            tool: "imgport".into(),
            size: out.size,
            sha256: out.sha256.clone(),
            crc64: out.crc64.clone(),
            etag: out.etag.clone(),
            parts: self.part_count,
            part_size: self.part_size,
            source: self.source_digest.clone(),
        };
        let (_, n) = retry(
            opts,
            |_, _| {},
            || verify::write_record(store, target, &record),
        )
        .await?;
        out.retries += n;
        // The object and its record now say it is done: the journal has served.
        if let Some(p) = &self.journal_path {
            journal::remove(p)?;
        }
        Ok(())
    }
}

/// A killed run's Complete went through ([`Plan::Consumed`]): reads the source (sending
/// nothing) and accepts the object only when each part's digest (signed SHA-256, else MD5)
/// equals the journal's and the object's multipart ETag (and CRC-64) equals the one of the
/// parts read here. Otherwise the
/// journal is removed and [`StoreError::Stale`] asks for a fresh upload.
async fn check_consumed<S: ObjectStore>(
    store: &S,
    mut source: Box<dyn PartSource>,
    job: &Job<'_>,
    upload_id: String,
    journaled: &BTreeMap<u32, JournalPart>,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<UploadOutcome, StoreError> {
    let stale = |what: String| -> StoreError {
        if let Some(p) = &job.journal_path {
            let _ = journal::remove(p);
        }
        StoreError::Stale {
            target: job.target.to_string(),
            what,
        }
    };
    reporter.start(Stage::Verify, "verify", Some(source.total_size()));
    let want = journaled.clone();
    // Reads on a blocking thread; stops at the first part the journal disagrees with.
    let read = tokio::task::spawn_blocking(move || {
        let mut parts = Vec::new();
        while let Some(p) = source.next_part() {
            let p = p?;
            let md5 = match want.get(&p.number) {
                Some(jp) => match same_part(jp, &p) {
                    Err((what, now, then)) => return Ok(Err((p.number, what, now, then))),
                    Ok(()) => journaled_md5(jp).unwrap_or_else(|| p.md5_digest()),
                },
                None => p.md5_digest(),
            };
            parts.push(md5);
        }
        Ok::<_, TransferError>(Ok((parts, source.digests())))
    })
    .await
    .map_err(|_| StoreError::Source(TransferError::WorkerLost))?;
    reporter.finish();
    let (md5s, digests) = match read? {
        Ok(r) => r,
        Err((number, what, now, then)) => {
            return Err(stale(format!(
                "part {number} now has {what} {now}, the journal recorded {then} when upload \
                 {upload_id} sent it: the source changed since, so the object holds other bytes"
            )));
        }
    };
    let digests = digests.ok_or(StoreError::Source(TransferError::WorkerLost))?;
    let mut out = job.outcome(&digests, &md5s);
    out.parts_reused = job.part_count;
    out.upload_id = Some(upload_id);
    match job
        .verify_and_record(store, &mut out, digests.crc64, opts)
        .await
    {
        Err(StoreError::Verify { what, .. }) => Err(stale(what)),
        other => other.map(|()| out),
    }
}

/// Uploads `source` to `target` by multipart: the one entry point for the CLI and the
/// pipeline.
///
/// With a journal directory, the run is resumable (kill -9 included). A re-run after success
/// returns at once with `already_present` when the object and its digest record still name
/// this source (`verify::present`). Nothing is reported done until HEAD shows the object
/// holds the bytes read here (size, multipart ETag, CRC-64 when sent); the journal is then
/// removed. Without a journal, any failure after Create aborts the upload; with one, the
/// upload stays resumable (except after a failed verification, whose upload id is spent).
pub async fn upload<S: ObjectStore>(
    store: &S,
    source: Box<dyn PartSource>,
    target: &ObjectTarget,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<UploadOutcome, StoreError> {
    let total = source.total_size();
    let part_size = source.part_size();
    let destination = store.destination(&target.bucket);
    let job = Job {
        target,
        journal_path: opts
            .journal_dir
            .as_ref()
            .map(|d| journal::path_for(d, &destination, target)),
        part_size,
        part_count: source.part_count(),
        source_digest: verify::source_digest(&opts.source_id),
    };
    let mut header = Header {
        version: journal::VERSION,
        destination,
        key: target.key.clone(),
        upload_id: String::new(),
        part_size,
        total_size: total,
        source: opts.source_id.clone(),
    };
    let existing = match &job.journal_path {
        Some(p) => open_journal(store, target, p, opts, reporter).await?,
        None => None,
    };
    // A re-run after success: nothing to do if the object and its record name this source.
    if existing.is_none()
        && !opts.source_id.is_empty()
        && let Some((record, server_crc)) =
            verify::present(store, target, &job.source_digest, part_size).await?
        && record.size == total
    {
        return Ok(UploadOutcome {
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            size: record.size,
            sha256: record.sha256,
            crc64: record.crc64,
            server_crc64: server_crc.map(|c| c.to_string()),
            etag: record.etag,
            multipart_etag: String::new(),
            part_size,
            parts: record.parts,
            parts_sent: 0,
            parts_reused: 0,
            retries: 0,
            already_present: true,
            upload_id: None,
            journal: None,
            in_flight: InFlightReport::default(),
        });
    }
    let plan = match existing {
        Some(state) => reconcile(store, target, state, &header, reporter, opts).await?,
        None => Plan::Fresh,
    };
    let mut retries = 0u32;
    let (upload_id, reusable) = match plan {
        Plan::Resume {
            upload_id,
            reusable,
        } => (upload_id, reusable),
        Plan::Consumed { upload_id, parts } => {
            return check_consumed(store, source, &job, upload_id, &parts, opts, reporter).await;
        }
        Plan::Fresh => {
            let (id, n) = retry(opts, |_, _| {}, || store.create_multipart(target)).await?;
            retries += n;
            (id, BTreeMap::new())
        }
    };
    header.upload_id = upload_id.clone();
    let result = send_and_complete(
        store, source, &job, &header, &reusable, opts, reporter, retries,
    )
    .await;
    match result {
        Ok(o) => Ok(o),
        Err(StoreError::Withdrawn) => {
            abort_quietly(store, target, &upload_id, opts, reporter).await;
            if let Some(p) = &job.journal_path {
                journal::remove(p)?;
            }
            Err(StoreError::Withdrawn)
        }
        Err(e) => {
            // Without a journal nobody can resume: do not leave the parts behind.
            let Some(path) = &job.journal_path else {
                abort_quietly(store, target, &upload_id, opts, reporter).await;
                return Err(e);
            };
            if gone_meanwhile(store, target, &upload_id, path, &e).await {
                return Err(StoreError::UploadGone {
                    target: target.to_string(),
                    upload_id,
                    failure: Box::new(e),
                });
            }
            Err(e)
        }
    }
}

/// A source to upload, as [`upload_reopening`] asks for it: the stream and the
/// [`UploadOptions::source_id`] that names it.
pub type Reopened = (Box<dyn PartSource>, String);

/// [`upload`] of the source `open` gives, with the one policy on kept state that went wrong:
/// when the first attempt finds it stale ([`StoreError::Stale`], the journal is removed by
/// then) or the resumed upload id gone ([`StoreError::UploadGone`], the next attempt checks the
/// object against the source), `open` is called again and the upload runs once more; any other
/// error, or either of these a second time, is the answer. The outer `Err` is `open`'s.
pub async fn upload_reopening<S: ObjectStore, E>(
    store: &S,
    mut open: impl FnMut() -> Result<Reopened, E>,
    target: &ObjectTarget,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<Result<UploadOutcome, StoreError>, E> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (source, source_id) = open()?;
        let opts = UploadOptions {
            source_id,
            ..opts.clone()
        };
        match upload(store, source, target, &opts, reporter).await {
            Err(StoreError::Stale { target, what }) if attempt == 1 => {
                reporter.message(&format!(
                    "{target}: {what}; uploading the current bytes afresh"
                ));
            }
            Err(StoreError::UploadGone {
                target, upload_id, ..
            }) if attempt == 1 => {
                reporter.message(&format!(
                    "{target}: upload {upload_id} went away while this run resumed it (a \
                     killed run's Complete finishing late?); checking the object against the \
                     source"
                ));
            }
            other => return Ok(other),
        }
    }
}

/// Whether a failed part or Complete failed because the upload id went away while this run
/// used it (the journal is still there): a killed run's Complete that the server finished
/// only after this run's ListParts. S3 then answers NoSuchUpload, which is taken at its word:
/// while that Complete is still assembling the object, ListParts may yet list the upload.
/// Some servers answer 5xx instead, so after any other service or transport failure the id
/// is checked once with ListParts.
async fn gone_meanwhile<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    upload_id: &str,
    journal_path: &Path,
    e: &StoreError,
) -> bool {
    let last = match e {
        StoreError::RetriesExhausted { last, .. } => &**last,
        other => other,
    };
    let probe = match last {
        StoreError::Service { code, .. } if code == "NoSuchUpload" => {
            return journal_path.exists();
        }
        StoreError::Service { .. } | StoreError::Transport { .. } => true,
        _ => false,
    };
    probe && journal_path.exists() && matches!(store.list_parts(target, upload_id).await, Ok(None))
}

/// Sends the parts not in `reusable` to `header.upload_id`, completes once the gate allows,
/// and verifies. Any error leaves the upload to the caller (abort or keep).
#[allow(clippy::too_many_arguments)]
async fn send_and_complete<S: ObjectStore>(
    store: &S,
    source: Box<dyn PartSource>,
    job: &Job<'_>,
    header: &Header,
    reusable: &BTreeMap<u32, JournalPart>,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
    mut retries: u32,
) -> Result<UploadOutcome, StoreError> {
    let target = job.target;
    let upload_id = header.upload_id.as_str();
    let mut journal = match &job.journal_path {
        Some(p) => Some(Journal::start(p, header, reusable)?),
        None => None,
    };
    let result = send_all(
        store,
        source,
        target,
        upload_id,
        reusable,
        journal.as_mut(),
        opts,
        reporter,
    )
    .await;
    drop(journal);
    let sent = match result {
        Ok(s) => s,
        Err(_) if opts.gate.as_ref().is_some_and(CompleteGate::withdrawn) => {
            return Err(StoreError::Withdrawn);
        }
        Err(e) => return Err(e),
    };
    if let Some(gate) = &opts.gate {
        match gate.verdict().await {
            Verdict::Proceed => {}
            Verdict::Withdraw => return Err(StoreError::Withdrawn),
            Verdict::Pending => return Err(StoreError::Interrupted),
        }
    }
    retries += sent.retries;
    let etags: Vec<(u32, String)> = sent.etags.iter().map(|(n, e)| (*n, e.clone())).collect();
    let mut complete_retries = 0u32;
    let completed = retry(
        opts,
        |_, _| complete_retries += 1,
        || store.complete(target, upload_id, &etags),
    )
    .await;
    let complete_crc = match completed {
        Ok(((_, crc), n)) => {
            retries += n;
            crc
        }
        // A retried Complete whose first answer was lost finds the upload gone: the object
        // is then judged by HEAD below, like any other (size, multipart ETag, CRC-64).
        Err(StoreError::Service { status, code, .. })
            if complete_retries > 0 && (status == 404 || code == "NoSuchUpload") =>
        {
            retries += complete_retries;
            None
        }
        Err(e) => return Err(e),
    };
    let d = sent.digests;
    let md5s: Vec<[u8; 16]> = sent.md5s.into_values().collect();
    let mut out = job.outcome(&d, &md5s);
    out.parts_sent = sent.sent;
    out.parts_reused = sent.reused;
    out.retries = retries;
    out.upload_id = Some(upload_id.to_string());
    out.in_flight = sent.in_flight;
    if let Some(c) = complete_crc
        && c != d.crc64
    {
        if let Some(p) = &job.journal_path {
            journal::remove(p)?;
        }
        return Err(StoreError::Verify {
            target: target.to_string(),
            what: format!(
                "Complete reported CRC-64 {c}, the bytes read here have {}; the stored object \
                 is not those bytes: do not use it; upload again",
                d.crc64
            ),
        });
    }
    job.verify_and_record(store, &mut out, d.crc64, opts)
        .await?;
    Ok(out)
}

struct Sent {
    etags: BTreeMap<u32, String>,
    /// Each part's MD5 ([`part_md5`]), for the multipart ETag.
    md5s: BTreeMap<u32, [u8; 16]>,
    sent: u32,
    reused: u32,
    retries: u32,
    digests: StreamDigests,
    in_flight: InFlightReport,
}

/// A part's number, size and signed SHA-256, the notes of its failed attempts, the answer
/// with the part's MD5 ([`part_md5`]), and the time from sending to the answer.
type PartResult = (
    u32,
    u64,
    Option<[u8; 32]>,
    Vec<String>,
    Result<(PartReceipt, [u8; 16]), StoreError>,
    Duration,
);

#[allow(clippy::too_many_arguments)]
async fn send_all<S: ObjectStore>(
    store: &S,
    source: Box<dyn PartSource>,
    target: &ObjectTarget,
    upload_id: &str,
    reusable: &BTreeMap<u32, JournalPart>,
    mut journal: Option<&mut Journal>,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<Sent, StoreError> {
    let mut pacer = Pacer::new(opts.concurrency.max(1), source.part_size());
    reporter.start(Stage::Upload, "upload", Some(source.total_size()));
    let reader = source.reader();
    let (mut rx, producer) = spawn_producer(source);
    let mut tasks: JoinSet<PartResult> = JoinSet::new();
    let mut out = Sent {
        etags: BTreeMap::new(),
        md5s: BTreeMap::new(),
        sent: 0,
        reused: 0,
        retries: 0,
        digests: StreamDigests {
            size: 0,
            sha256: String::new(),
            crc64: 0,
        },
        in_flight: InFlightReport::default(),
    };
    let finish = |r: Result<PartResult, tokio::task::JoinError>,
                  out: &mut Sent,
                  journal: &mut Option<&mut Journal>|
     -> Result<(u64, Duration), StoreError> {
        let (number, size, sha256, notes, result, took) =
            r.map_err(|_| StoreError::Source(TransferError::WorkerLost))?;
        out.retries += notes.len() as u32;
        for n in &notes {
            reporter.message(n);
        }
        let (receipt, md5) = result.map_err(|e| match e {
            // Not the store's failure: the source's, named as such.
            e @ (StoreError::SourceChanged { .. } | StoreError::Source(_)) => e,
            e => StoreError::RetriesExhausted {
                target: target.to_string(),
                number,
                attempts: notes.len() as u32 + 1,
                last: Box::new(e),
            },
        })?;
        if let Some(j) = journal.as_deref_mut() {
            j.record_part(&JournalPart {
                part: number,
                size,
                md5: hex::encode(md5),
                sha256: sha256.map(hex::encode),
                etag: receipt.etag.clone(),
                upload_id: upload_id.to_string(),
            })?;
        }
        out.md5s.insert(number, md5);
        out.etags.insert(number, receipt.etag);
        out.sent += 1;
        reporter.sent(size);
        reporter.advance(size);
        Ok((size, took))
    };
    let result: Result<(), StoreError> = async {
        loop {
            // Take the next part when there is room; meanwhile record parts as they finish,
            // so the journal is current when the process is killed.
            // Each finished part tells the pacer whether it waited for the link (every slot
            // taken, the next part ready) and may change the parts in flight.
            let part = if tasks.len() >= pacer.limit() {
                let n = tasks.len();
                if let Some(r) = tasks.join_next().await {
                    let (size, took) = finish(r, &mut out, &mut journal)?;
                    paced(&mut pacer, size, took, n, !rx.is_empty());
                }
                continue;
            } else if tasks.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    biased;
                    Some(r) = tasks.join_next() => {
                        let (size, took) = finish(r, &mut out, &mut journal)?;
                        paced(&mut pacer, size, took, tasks.len() + 1, !rx.is_empty());
                        continue;
                    }
                    p = rx.recv() => p,
                }
            };
            let Some(part) = part else { break };
            let part = part?;
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(StoreError::Interrupted);
            }
            let size = part.data.len() as u64;
            if let Some(jp) = reusable.get(&part.number)
                && same_part(jp, &part).is_ok()
                && let Some(md5) = journaled_md5(jp)
            {
                out.md5s.insert(part.number, md5);
                out.etags.insert(part.number, jp.etag.clone());
                out.reused += 1;
                reporter.advance(size);
                continue;
            }
            tasks.spawn(send_part(
                store.clone(),
                target.clone(),
                upload_id.to_string(),
                part,
                reader.clone(),
                opts.clone(),
            ));
        }
        while let Some(r) = tasks.join_next().await {
            let (size, took) = finish(r, &mut out, &mut journal)?;
            paced(&mut pacer, size, took, tasks.len() + 1, false);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let interrupted = matches!(
            e,
            StoreError::Interrupted | StoreError::Source(TransferError::Interrupted)
        );
        if interrupted {
            // Ctrl-C: let the parts in flight finish and record them, so a resume need not
            // send them again (a second Ctrl-C exits at once).
            while let Some(r) = tasks.join_next().await {
                let _ = finish(r, &mut out, &mut journal);
            }
        }
        tasks.abort_all();
        drop(rx);
        let _ = producer.await;
        reporter.finish();
        return Err(e);
    }
    reporter.finish();
    out.in_flight = pacer.report();
    out.digests = producer
        .await
        .ok()
        .flatten()
        .ok_or(StoreError::Source(TransferError::WorkerLost))?;
    Ok(out)
}

/// Tells `pacer` about a finished part (its changes are in the outcome).
fn paced(pacer: &mut Pacer, size: u64, took: Duration, in_flight: usize, ready: bool) {
    pacer.finished(Instant::now(), size, took, in_flight, ready);
}

/// Aborts the unfinished upload recorded in the journal of `target` (or `upload_id` when
/// given; a damaged journal gives the upload ids it still names) and removes the journal.
/// Returns the upload ids aborted.
pub async fn abort<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    journal_dir: Option<&std::path::Path>,
    upload_id: Option<&str>,
    opts: &UploadOptions,
) -> Result<Vec<String>, StoreError> {
    let destination = store.destination(&target.bucket);
    let path = journal_dir.map(|d| journal::path_for(d, &destination, target));
    let mut ids: Vec<String> = upload_id.map(str::to_string).into_iter().collect();
    if ids.is_empty()
        && let Some(p) = &path
    {
        ids = match journal::load(p)? {
            Some(s) => vec![s.header.upload_id],
            None => journal::salvage(p),
        };
    }
    for id in &ids {
        retry(opts, |_, _| {}, || store.abort(target, id)).await?;
    }
    if let Some(p) = &path {
        journal::remove(p)?;
    }
    Ok(ids)
}

/// What [`clean_stale`] did with one journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cleaned {
    /// The journal file.
    pub journal: PathBuf,
    /// `bucket/key` it described, when readable.
    pub object: Option<String>,
    /// Upload ids aborted.
    pub aborted: Vec<String>,
    /// Upload ids it names that were left alone (another destination: other credentials
    /// are needed to abort them; the journal is kept for that).
    pub kept: Vec<String>,
    /// Whether the journal was removed.
    pub removed: bool,
}

/// Cleans the journals in `dir` untouched for `older_than` or longer: for each that
/// describes an upload at this store's destination (account, region, endpoint), aborts the
/// multipart upload it names and removes it. Journals of other destinations are reported and
/// kept (other credentials abort them). A journal that no longer parses is removed and the
/// upload ids it still names are reported in `kept` (its destination is unknown).
pub async fn clean_stale<S: ObjectStore>(
    store: &S,
    dir: &Path,
    older_than: Duration,
    opts: &UploadOptions,
) -> Result<Vec<Cleaned>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Journal {
                path: dir.to_path_buf(),
                step: "list",
                source,
            });
        }
    };
    let now = std::time::SystemTime::now();
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".json") || name.ends_with(".json.tmp"))
                && std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= older_than)
        })
        .collect();
    paths.sort();
    let mut cleaned = Vec::new();
    for path in paths {
        let mut c = Cleaned {
            journal: path.clone(),
            object: None,
            aborted: Vec::new(),
            kept: Vec::new(),
            removed: false,
        };
        if path.extension().is_some_and(|e| e == "tmp") {
            journal::remove(&path)?;
            c.removed = true;
            cleaned.push(c);
            continue;
        }
        match journal::load(&path)? {
            Some(state) => {
                let h = &state.header;
                let target = ObjectTarget {
                    bucket: h.destination.bucket.clone(),
                    key: h.key.clone(),
                };
                c.object = Some(target.to_string());
                if store.destination(&target.bucket) == h.destination {
                    retry(opts, |_, _| {}, || store.abort(&target, &h.upload_id)).await?;
                    c.aborted.push(h.upload_id.clone());
                    journal::remove(&path)?;
                    c.removed = true;
                } else {
                    c.kept.push(h.upload_id.clone());
                }
            }
            None => {
                // Unreadable: it can never be resumed, and its destination is unknown.
                c.kept = journal::salvage(&path);
                journal::remove(&path)?;
                c.removed = true;
            }
        }
        cleaned.push(c);
    }
    Ok(cleaned)
}

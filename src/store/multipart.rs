//! The multipart driver, generic over [`ObjectStore`]: takes parts in order from a
//! [`PartSource`] (already cut, MD5'd and CRC'd by the stream — nothing is hashed again
//! here), uploads at most `concurrency` at once with per-part retries, reuses the parts a
//! journal and ListParts agree on, completes, verifies, and records the object's digests.
//!
//! Retries: `retry.rs` (one predicate, [`StoreError::is_temporary`]). Non-idempotent Create is guarded
//! by the journal: a re-run resumes the upload id it recorded instead of creating another.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;

use super::journal::{self, Done, Header, Journal, JournalPart};
use super::retry::retry;
use super::verify::{self, DigestRecord, Expected};
use super::{ObjectStore, ObjectTarget, PartReceipt, StoreError};
use crate::report::Reporter;
use crate::transfer::digest::hex;
use crate::transfer::{Part, PartSource, StreamDigests, TransferError};

/// How [`upload`] behaves.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Parts in flight at once (at least 1).
    pub concurrency: usize,
    /// Attempts per request before giving up (at least 1).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    /// Largest backoff.
    pub retry_max: Duration,
    /// Directory of resume journals; `None` uploads without resume (a failure aborts).
    pub journal_dir: Option<PathBuf>,
    /// Identity of the source bytes (e.g. path, size, mtime and output format): a journal
    /// is reused only for the same identity.
    pub source_id: String,
    /// Set (e.g. by a Ctrl-C handler) to stop after the parts in flight; the journal keeps
    /// the upload resumable.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Holds Complete back until the caller decides the object is still wanted.
    pub gate: Option<CompleteGate>,
}

/// What a [`GateKeeper`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pending,
    Proceed,
    Withdraw,
}

/// Holds an upload back before its Complete until the caller decides whether the object is
/// still wanted: an import sends the parts while it looks up whether the same content was
/// imported already. Withdrawn, the upload is aborted and its journal removed.
#[derive(Debug, Clone)]
pub struct CompleteGate(tokio::sync::watch::Receiver<Verdict>);

/// Decides a [`CompleteGate`]. Dropped undecided, the uploads waiting on it stop as if
/// interrupted (resumable from their journal).
#[derive(Debug)]
pub struct GateKeeper(tokio::sync::watch::Sender<Verdict>);

/// A gate and its keeper.
pub fn complete_gate() -> (GateKeeper, CompleteGate) {
    let (tx, rx) = tokio::sync::watch::channel(Verdict::Pending);
    (GateKeeper(tx), CompleteGate(rx))
}

impl GateKeeper {
    /// The uploads may complete.
    pub fn proceed(self) {
        let _ = self.0.send(Verdict::Proceed);
    }

    /// The objects are not wanted: the uploads are aborted.
    pub fn withdraw(self) {
        let _ = self.0.send(Verdict::Withdraw);
    }
}

impl CompleteGate {
    fn withdrawn(&self) -> bool {
        *self.0.borrow() == Verdict::Withdraw
    }

    /// Waits for the decision; `Pending` when the keeper went away without one.
    async fn verdict(&self) -> Verdict {
        let mut rx = self.0.clone();
        match rx.wait_for(|v| *v != Verdict::Pending).await {
            Ok(v) => *v,
            Err(_) => Verdict::Pending,
        }
    }
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            max_attempts: 8,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(20),
            journal_dir: None,
            source_id: String::new(),
            cancel: None,
            gate: None,
        }
    }
}

/// What [`upload`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// S3's multipart ETag computed from our part MD5s (equal to `etag` on S3-like servers).
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
}

/// Uploads one part with retries, from a task.
async fn send_part<S: ObjectStore>(
    store: S,
    target: ObjectTarget,
    upload_id: String,
    part: Part,
    opts: UploadOptions,
) -> (
    u32,
    u64,
    [u8; 16],
    Vec<String>,
    Result<PartReceipt, StoreError>,
) {
    let mut notes = Vec::new();
    let (number, size, md5) = (part.number, part.data.len() as u64, part.md5_digest());
    let result = retry(
        &opts,
        |attempt, e| {
            notes.push(format!(
                "part {number}: attempt {attempt} failed ({e}); retrying"
            ))
        },
        || store.upload_part(&target, &upload_id, number, part.data.clone(), md5),
    )
    .await;
    let result = result.and_then(|(receipt, _)| {
        let want = hex(&md5);
        // S3 and OSS give a part the MD5 of its bytes as ETag; check it when it has that form.
        if receipt.etag.len() == 32 && !receipt.etag.eq_ignore_ascii_case(&want) {
            return Err(StoreError::PartEtag {
                target: target.to_string(),
                number,
                got: receipt.etag.clone(),
                want,
            });
        }
        if let Some(c) = receipt.crc64
            && c != part.crc64
        {
            return Err(StoreError::Verify {
                target: target.to_string(),
                what: format!("part {number}: server CRC-64 {c}, ours {}", part.crc64),
            });
        }
        Ok(receipt)
    });
    (number, size, md5, notes, result)
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

struct Resume {
    upload_id: String,
    reusable: BTreeMap<u32, JournalPart>,
}

/// Decides what to do with an existing journal: resume its upload (with the parts ListParts
/// confirms), or abort a stale one and start over.
async fn reconcile<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    state: journal::State,
    header: &Header,
    reporter: &dyn Reporter,
    opts: &UploadOptions,
) -> Result<Option<Resume>, StoreError> {
    let same = state.header.endpoint == header.endpoint
        && state.header.bucket == header.bucket
        && state.header.key == header.key
        && state.header.part_size == header.part_size
        && state.header.total_size == header.total_size
        && state.header.source == header.source;
    if !same || state.done.is_some() {
        if state.done.is_none() {
            reporter.message(&format!(
                "the journal's upload {} is for other bytes; aborting it",
                state.header.upload_id
            ));
            let id = state.header.upload_id.clone();
            // Best effort: a stale upload that cannot be aborted must not block a new one.
            if let Err(e) = retry(opts, |_, _| {}, || store.abort(target, &id)).await {
                reporter.message(&format!("could not abort upload {id}: {e}"));
            }
        }
        return Ok(None);
    }
    let id = state.header.upload_id.clone();
    let (listed, _) = retry(opts, |_, _| {}, || store.list_parts(target, &id)).await?;
    let Some(listed) = listed else {
        reporter.message(&format!(
            "upload {id} is no longer known to the server; starting over"
        ));
        return Ok(None);
    };
    let listed: BTreeMap<u32, _> = listed.into_iter().map(|p| (p.number, p)).collect();
    let reusable = state
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
    Ok(Some(Resume {
        upload_id: id,
        reusable,
    }))
}

/// Uploads `source` to `target` by multipart: the one entry point for the CLI and the
/// pipeline.
///
/// With a journal directory, the run is resumable (kill -9 included) and a re-run after
/// success returns at once with `already_present` when the object still has our digests
/// (HEAD + the digest record). The result is verified after Complete: size, ETag, the
/// server's CRC-64 if sent, and each part's ETag against its MD5.
pub async fn upload<S: ObjectStore>(
    store: &S,
    source: Box<dyn PartSource>,
    target: &ObjectTarget,
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<UploadOutcome, StoreError> {
    let total = source.total_size();
    let part_size = source.part_size();
    let part_count = source.part_count();
    let journal_path = opts
        .journal_dir
        .as_ref()
        .map(|d| journal::path_for(d, store.endpoint(), target));
    let mut header = Header {
        version: 1,
        endpoint: store.endpoint().to_string(),
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        upload_id: String::new(),
        part_size,
        total_size: total,
        source: opts.source_id.clone(),
    };
    let existing = match &journal_path {
        Some(p) => journal::load(p)?,
        None => None,
    };
    // A re-run after success: nothing to do if the object still has our digests.
    if let Some(state) = &existing
        && let Some(done) = &state.done
        && state.header.source == header.source
        && state.header.part_size == part_size
        && state.header.total_size == total
        && verify::is_present(
            store,
            target,
            done.size,
            &done.etag,
            &done.sha256,
            done.crc64,
        )
        .await?
    {
        return Ok(UploadOutcome {
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            size: done.size,
            sha256: done.sha256.clone(),
            crc64: done.crc64.to_string(),
            server_crc64: None,
            etag: done.etag.clone(),
            multipart_etag: String::new(),
            part_size,
            parts: done.parts,
            parts_sent: 0,
            parts_reused: 0,
            retries: 0,
            already_present: true,
            upload_id: None,
            journal: journal_path,
        });
    }
    let resume = match existing {
        Some(state) => reconcile(store, target, state, &header, reporter, opts).await?,
        None => None,
    };
    let mut retries = 0u32;
    let (upload_id, reusable) = match resume {
        Some(r) => (r.upload_id, r.reusable),
        None => {
            let (id, n) = retry(opts, |_, _| {}, || store.create_multipart(target)).await?;
            retries += n;
            (id, BTreeMap::new())
        }
    };
    header.upload_id = upload_id.clone();
    let mut journal = match &journal_path {
        Some(p) => Some(Journal::start(p, &header, &reusable)?),
        None => None,
    };
    let result = send_all(
        store,
        source,
        target,
        &upload_id,
        &reusable,
        journal.as_mut(),
        opts,
        reporter,
    )
    .await;
    let withdraw = || async {
        let _ = retry(opts, |_, _| {}, || store.abort(target, &upload_id)).await;
        if let Some(p) = &journal_path {
            journal::remove(p)?;
        }
        Err(StoreError::Withdrawn)
    };
    let sent = match result {
        Ok(s) => s,
        Err(_) if opts.gate.as_ref().is_some_and(CompleteGate::withdrawn) => {
            drop(journal);
            return withdraw().await;
        }
        Err(e) => {
            // Without a journal nobody can resume: do not leave the parts behind.
            if journal.is_none() {
                let _ = store.abort(target, &upload_id).await;
            }
            return Err(e);
        }
    };
    if let Some(gate) = &opts.gate {
        match gate.verdict().await {
            Verdict::Proceed => {}
            Verdict::Withdraw => {
                drop(journal);
                return withdraw().await;
            }
            Verdict::Pending => return Err(StoreError::Interrupted),
        }
    }
    retries += sent.retries;
    let etags: Vec<(u32, String)> = sent.etags.iter().map(|(n, e)| (*n, e.clone())).collect();
    let mut complete_retries = 0u32;
    let completed = retry(
        opts,
        |_, _| complete_retries += 1,
        || store.complete(target, &upload_id, &etags),
    )
    .await;
    let (etag, complete_crc) = match completed {
        Ok(((etag, crc), n)) => {
            retries += n;
            (etag, crc)
        }
        // A retried Complete whose first answer was lost finds the upload gone: the object
        // is then judged by HEAD below (size and CRC-64; its ETag is whatever HEAD says).
        Err(StoreError::Service { status, code, .. })
            if complete_retries > 0 && (status == 404 || code == "NoSuchUpload") =>
        {
            retries += complete_retries;
            let etag = store
                .head(target)
                .await?
                .map(|h| h.etag)
                .unwrap_or_default();
            if etag.is_empty() {
                return Err(StoreError::Verify {
                    target: target.to_string(),
                    what: format!("upload {upload_id} vanished and no object is there"),
                });
            }
            (etag, None)
        }
        Err(e) => return Err(e),
    };
    let d = sent.digests;
    if let Some(c) = complete_crc
        && c != d.crc64
    {
        return Err(StoreError::Verify {
            target: target.to_string(),
            what: format!(
                "Complete reported CRC-64 {c}, the uploaded bytes have {}",
                d.crc64
            ),
        });
    }
    let (head, n) = retry(opts, |_, _| {}, || store.head(target)).await?;
    retries += n;
    let expected = Expected {
        size: d.size,
        etag: etag.clone(),
        crc64: d.crc64,
    };
    let server_crc = verify::check_head(target, head.as_ref(), &expected)?;
    let etag = head.map_or(etag, |h| h.etag);
    let record = DigestRecord {
        tool: "imgport".into(),
        size: d.size,
        sha256: d.sha256.clone(),
        crc64: d.crc64.to_string(),
        etag: etag.clone(),
        parts: part_count,
        part_size,
    };
    let (_, n) = retry(
        opts,
        |_, _| {},
        || verify::write_record(store, target, &record),
    )
    .await?;
    retries += n;
    if let Some(j) = journal.as_mut() {
        j.record_done(&Done {
            size: d.size,
            etag: etag.clone(),
            sha256: d.sha256.clone(),
            crc64: d.crc64,
            parts: part_count,
        })?;
    }
    Ok(UploadOutcome {
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        size: d.size,
        sha256: d.sha256,
        crc64: d.crc64.to_string(),
        server_crc64: server_crc.map(|c| c.to_string()),
        etag,
        multipart_etag: crate::transfer::digest::multipart_etag(&sent.md5s),
        part_size,
        parts: part_count,
        parts_sent: sent.sent,
        parts_reused: sent.reused,
        retries,
        already_present: false,
        upload_id: Some(upload_id),
        journal: journal_path,
    })
}

struct Sent {
    etags: BTreeMap<u32, String>,
    md5s: Vec<[u8; 16]>,
    sent: u32,
    reused: u32,
    retries: u32,
    digests: StreamDigests,
}

type PartResult = (
    u32,
    u64,
    [u8; 16],
    Vec<String>,
    Result<PartReceipt, StoreError>,
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
    let concurrency = opts.concurrency.max(1);
    reporter.start("upload", Some(source.total_size()));
    let (mut rx, producer) = spawn_producer(source);
    let mut tasks: JoinSet<PartResult> = JoinSet::new();
    let mut out = Sent {
        etags: BTreeMap::new(),
        md5s: Vec::new(),
        sent: 0,
        reused: 0,
        retries: 0,
        digests: StreamDigests {
            size: 0,
            sha256: String::new(),
            crc64: 0,
        },
    };
    let finish = |r: Result<PartResult, tokio::task::JoinError>,
                  out: &mut Sent,
                  journal: &mut Option<&mut Journal>|
     -> Result<(), StoreError> {
        let (number, size, md5, notes, result) =
            r.map_err(|_| StoreError::Source(TransferError::WorkerLost))?;
        out.retries += notes.len() as u32;
        for n in &notes {
            reporter.message(n);
        }
        let receipt = result.map_err(|e| StoreError::RetriesExhausted {
            target: target.to_string(),
            number,
            attempts: notes.len() as u32 + 1,
            last: Box::new(e),
        })?;
        if let Some(j) = journal.as_deref_mut() {
            j.record_part(&JournalPart {
                part: number,
                size,
                md5: hex(&md5),
                etag: receipt.etag.clone(),
            })?;
        }
        out.etags.insert(number, receipt.etag);
        out.sent += 1;
        reporter.sent(size);
        reporter.advance(size);
        Ok(())
    };
    let result: Result<(), StoreError> = async {
        loop {
            // Take the next part when there is room; meanwhile record parts as they finish,
            // so the journal is current when the process is killed.
            let part = if tasks.len() >= concurrency {
                if let Some(r) = tasks.join_next().await {
                    finish(r, &mut out, &mut journal)?;
                }
                continue;
            } else if tasks.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    biased;
                    Some(r) = tasks.join_next() => {
                        finish(r, &mut out, &mut journal)?;
                        continue;
                    }
                    p = rx.recv() => p,
                }
            };
            let Some(part) = part else { break };
            let mut part = part?;
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(StoreError::Interrupted);
            }
            let md5 = part.md5_digest();
            part.md5 = Some(md5);
            out.md5s.push(md5);
            let size = part.data.len() as u64;
            if let Some(jp) = reusable.get(&part.number)
                && jp.size == size
                && jp.md5 == hex(&md5)
            {
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
                opts.clone(),
            ));
        }
        while let Some(r) = tasks.join_next().await {
            finish(r, &mut out, &mut journal)?;
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
    out.digests = producer
        .await
        .ok()
        .flatten()
        .ok_or(StoreError::Source(TransferError::WorkerLost))?;
    Ok(out)
}

/// Aborts the unfinished upload recorded in the journal of `target` (or `upload_id` when
/// given) and removes the journal. Returns the upload id aborted, if any.
pub async fn abort<S: ObjectStore>(
    store: &S,
    target: &ObjectTarget,
    journal_dir: Option<&std::path::Path>,
    upload_id: Option<&str>,
    opts: &UploadOptions,
) -> Result<Option<String>, StoreError> {
    let path = journal_dir.map(|d| journal::path_for(d, store.endpoint(), target));
    let from_journal = match &path {
        Some(p) => journal::load(p)?.filter(|s| s.done.is_none()),
        None => None,
    };
    let id = upload_id
        .map(str::to_string)
        .or_else(|| from_journal.map(|s| s.header.upload_id));
    if let Some(id) = &id {
        retry(opts, |_, _| {}, || store.abort(target, id)).await?;
    }
    if let Some(p) = &path {
        journal::remove(p)?;
    }
    Ok(id)
}

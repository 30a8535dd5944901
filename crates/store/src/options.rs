//! How an upload behaves ([`UploadOptions`]) and the gate that holds its Complete back, apart
//! from the multipart driver so that the retry policy can read the options without
//! depending on the driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How [`upload`](crate::multipart::upload) behaves.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Most parts in flight at once (at least 1): the cap the buffer pool is sized for.
    /// Within it the upload picks the number from the measured rate (see `in_flight.rs`).
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
pub(crate) enum Verdict {
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
    pub(crate) fn withdrawn(&self) -> bool {
        *self.0.borrow() == Verdict::Withdraw
    }

    /// Waits for the decision; `Pending` when the keeper went away without one.
    pub(crate) async fn verdict(&self) -> Verdict {
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

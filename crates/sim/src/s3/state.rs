//! State the server's handlers share with its owner: injected faults and what was seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::sts::Sts;

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
    /// 500 InternalError after this many milliseconds, the body unread: a part whose first
    /// attempt fails late (a test changes the source meanwhile).
    FailAfterMs(u64),
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
    /// `PART:KIND[:TIMES]` with KIND `500`, `slowdown`, `drop`, `delay=MS` or `500-after=MS`,
    /// e.g. `3:slowdown:2`.
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
            k => {
                let ms = |prefix: &str| k.strip_prefix(prefix).and_then(|ms| ms.parse().ok());
                match (ms("delay="), ms("500-after=")) {
                    (Some(ms), _) => FaultKind::DelayMs(ms),
                    (_, Some(ms)) => FaultKind::FailAfterMs(ms),
                    _ => {
                        return Err(format!(
                            "{s:?}: KIND is 500, slowdown, drop, delay=MS or 500-after=MS"
                        ));
                    }
                }
            }
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
    /// AccessKey IDs of the STS credentials accepted (expiry and token checked), in order of
    /// ID: more than one means the client renewed its credentials during the run.
    pub sts_keys: std::collections::BTreeSet<String>,
}

#[derive(Default)]
pub(super) struct Shared {
    pub(super) faults: Mutex<S3Faults>,
    pub(super) stats: Mutex<S3Stats>,
    /// The emulated STS whose credentials the server accepts, once shared.
    pub(super) sts: Mutex<Option<Arc<Sts>>>,
    /// Where each newly accepted STS key is appended (`<root>/.imgport-s3/sts-keys`), so a
    /// test of the `imgport sim` process can see them.
    pub(super) sts_log: Option<std::path::PathBuf>,
    /// Take `UNSIGNED-PAYLOAD` on PUT and POST, as AWS S3 does ([`super::S3Server::take_unsigned_payload`]).
    pub(super) unsigned_payload_ok: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(super) fn sts(&self) -> Option<Arc<Sts>> {
        self.sts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_sts(&self, sts: Arc<Sts>) {
        *self.sts.lock().unwrap_or_else(|p| p.into_inner()) = Some(sts);
    }

    /// Records an accepted STS key; the first time, also in the log file.
    pub(super) fn note_sts_key(&self, id: &str) {
        let new = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sts_keys
            .insert(id.to_string());
        if new && let Some(path) = &self.sts_log {
            use std::io::Write as _;
            let line = format!("{id}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                tracing::warn!("{}: cannot record STS key: {e}", path.display());
            }
        }
    }
}

//! Many imports: the rows of a batch manifest (or a Packer manifest), several uploading at
//! once and more waiting for the cloud to finish their import, each claimed in its bucket
//! first so shards on other machines skip it, recorded in a local
//! journal so an interrupted batch resumes where it stopped (finished rows skipped; partial
//! uploads resume from their own journals). One row's failure is counted, not fatal.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::claims::{self, Claim, DoneRecord};
use super::import::{self, ImportOutcome, ImportSettings, Targets};
use super::manifest::{BatchItem, Shard};
use super::tuner::{LimitChange, Tuner};
use crate::cloud::aliyun::client::EcsClient;
use crate::cloud::aliyun::ehpc::EhpcClient;
use crate::cloud::aliyun::types::{Architecture, BootMode, LicenseType, OsType, Platform};
use crate::plan::OutputFormat;
use crate::report::Reporter;
use crate::store::ObjectStore;

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Settings every row starts from (the command line); a row's options override them.
    pub base: ImportSettings,
    /// Rows converting and uploading at once (the work of this machine's cores and link).
    pub in_flight: InFlight,
    /// Rows whose disks are uploaded and whose import the cloud is running, at most, beside
    /// the `in_flight` ones: their wait costs this machine nothing.
    pub max_importing: usize,
    /// Local journal of finished rows; `None` keeps no journal.
    pub journal: Option<PathBuf>,
    pub shard: Option<Shard>,
    /// Who claims rows in the bucket (host, process id, start time).
    pub owner: String,
    /// A claim older than this may be taken over (its owner is presumed dead).
    pub claim_ttl: Duration,
}

/// How many rows convert and upload at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Exactly this many (`--in-flight N`).
    Fixed(usize),
    /// From `start`, raised (up to `max`) or lowered by the combined upload rate they reach:
    /// see [`super::tuner`].
    Tuned { start: usize, max: usize },
}

impl InFlight {
    /// The default: start from the cores, tune by the bandwidth measured. Each row already
    /// converts on every core and keeps several parts in flight, so two fill a small machine
    /// on a near link; a far link may take more, up to four times that (sixteen at most), and
    /// no more than half the memory this process may still take holds (`part_size` is the
    /// batch's, 0 for the default).
    pub fn from_machine(part_size: u64) -> InFlight {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let row_memory = crate::transfer::stream::buffer_memory(part_size) + ROW_OVERHEAD;
        Self::tuned_for(cores, crate::mem::available(), row_memory)
    }

    fn tuned_for(cores: usize, memory: Option<u64>, row_memory: u64) -> InFlight {
        let start = (cores / 2).clamp(2, 8);
        let max = (start * 4).min(16);
        let fit = memory.map_or(usize::MAX, |m| {
            usize::try_from(m / 2 / row_memory.max(1)).map_or(usize::MAX, |n| n.max(1))
        });
        InFlight::Tuned {
            start: start.min(fit),
            max: max.min(fit),
        }
    }

    fn start(self) -> usize {
        match self {
            InFlight::Fixed(n) => n.max(1),
            InFlight::Tuned { start, .. } => start.max(1),
        }
    }

    /// Most rows that may run at once: `start` when fixed.
    fn max(self) -> usize {
        match self {
            InFlight::Fixed(_) => self.start(),
            InFlight::Tuned { max, .. } => max.max(1),
        }
    }
}

/// Memory a row takes beside its part buffers: readers' table caches, HTTP buffers, tasks.
const ROW_OVERHEAD: u64 = 32 << 20;

/// How the number of rows uploading at once was chosen, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct InFlightReport {
    /// `true` when the upload rate chose it (no `--in-flight`).
    pub tuned: bool,
    pub start: usize,
    /// Most the tuner may reach (cores and memory); `start` when fixed.
    pub max: usize,
    pub end: usize,
    pub changes: Vec<LimitChange>,
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Imported by this run.
    Imported,
    /// Imported before (local journal or the bucket's state); not imported again.
    AlreadyImported,
    /// Another process holds a live claim on it.
    ClaimedElsewhere,
    /// Not this shard's row.
    OtherShard,
    Failed,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RowReport {
    pub id: String,
    pub position: usize,
    pub files: Vec<PathBuf>,
    pub status: RowStatus,
    pub image_id: Option<String>,
    pub region: Option<String>,
    /// Exit code the row alone would have had.
    pub exit_code: u8,
    pub error: Option<String>,
    pub seconds: f64,
    /// Who holds the claim, for `claimed_elsewhere`.
    pub claimed_by: Option<String>,
    /// When the row started, its disks were all uploaded, and it ended (Unix milliseconds):
    /// a timeline of the batch.
    pub started_unix_ms: u64,
    pub uploaded_unix_ms: Option<u64>,
    pub ended_unix_ms: u64,
    /// The import's own result, for `imported`.
    pub result: Option<ImportOutcome>,
}

/// The JSON report of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub shard: Option<Shard>,
    pub rows: Vec<RowReport>,
    pub imported: usize,
    pub already_imported: usize,
    pub claimed_elsewhere: usize,
    pub other_shard: usize,
    pub failed: usize,
    pub seconds: f64,
    pub in_flight: InFlightReport,
}

impl BatchReport {
    /// 0 when no row failed; else the failed rows' code when they share one, else 1.
    pub fn exit_code(&self) -> u8 {
        let mut codes = self
            .rows
            .iter()
            .filter(|r| r.status == RowStatus::Failed)
            .map(|r| r.exit_code);
        match codes.next() {
            None => 0,
            Some(first) if codes.all(|c| c == first) => first,
            Some(_) => 1,
        }
    }
}

/// Why a row's options are refused before anything runs.
fn bad(field: &str, value: &str, expected: &str) -> String {
    format!("{field} `{value}` is not {expected}")
}

fn parse_opt<T>(
    value: &Option<String>,
    field: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, String> {
    value
        .as_deref()
        .map(|v| parse(v).ok_or_else(|| bad(field, v, expected)))
        .transpose()
}

/// The settings of one row: the base with the row's options on top.
pub fn row_settings(item: &BatchItem, base: &ImportSettings) -> Result<ImportSettings, String> {
    let o = &item.options;
    let mut s = base.clone();
    let p = &mut s.plan;
    if let Some(v) = &o.region {
        p.region = v.clone();
    }
    if let Some(v) = &o.bucket {
        p.bucket = v.clone();
    }
    match &o.key_prefix {
        Some(v) => p.key_prefix = v.clone(),
        // Rows of one batch often share file names (`disk.qcow2` in each build directory):
        // each row gets a folder of its own so their objects never overwrite each other.
        None => p.key_prefix = format!("{}{}/", p.key_prefix, key_safe(&item.id)),
    }
    if p.region.is_empty() || p.bucket.is_empty() {
        return Err("no region or bucket: give --region/--bucket or set them in the row".into());
    }
    if let Some(f) = parse_opt(
        &o.output,
        "output",
        OutputFormat::parse,
        "raw, vhd, vhd-fixed or qcow2",
    )? {
        p.output = Some(f);
    }
    if let Some(n) = o.system_disk {
        if n == 0 || n > item.files.len() {
            return Err(format!(
                "system_disk {n} is not one of the row's {} files (counting from 1)",
                item.files.len()
            ));
        }
        p.system_disk = Some(n - 1);
    }
    let i = &mut p.image;
    if item.name.is_some() {
        i.name = item.name.clone();
    }
    if o.description.is_some() {
        i.description = o.description.clone();
    }
    if o.family.is_some() {
        i.family = o.family.clone();
    }
    let overrides = (
        parse_opt(
            &o.platform,
            "platform",
            Platform::parse,
            "an ImportImage Platform",
        )?,
        parse_opt(&o.os_type, "os_type", OsType::parse, "linux or windows")?,
        parse_opt(
            &o.architecture,
            "architecture",
            Architecture::parse,
            "i386, x86_64 or arm64",
        )?,
        parse_opt(
            &o.boot_mode,
            "boot_mode",
            BootMode::parse,
            "BIOS, UEFI or UEFI-Preferred",
        )?,
        parse_opt(
            &o.license_type,
            "license_type",
            LicenseType::parse,
            "Auto, Aliyun or BYOL",
        )?,
    );
    i.platform = overrides.0.or(i.platform);
    i.os_type = overrides.1.or(i.os_type);
    i.architecture = overrides.2.or(i.architecture);
    i.boot_mode = overrides.3.or(i.boot_mode);
    i.license_type = overrides.4.or(i.license_type);
    for (k, v) in &o.tags {
        i.tags.push((k.clone(), v.clone()));
    }
    Ok(s)
}

/// `id` with every character an object key should not carry replaced by `_`.
pub(crate) fn key_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// One line of the local journal: a finished row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalLine {
    id: String,
    image_id: String,
    region: String,
}

/// Finished rows by id, from the journal at `path` (absent: none). Lines that do not parse
/// (a line cut by a crash) are ignored.
fn load_journal(path: &Path) -> HashMap<String, JournalLine> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<JournalLine>(l).ok())
        .map(|l| (l.id.clone(), l))
        .collect()
}

/// Appends a finished row to the journal and syncs it.
fn append_journal(path: &Path, line: &JournalLine) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn now_unix() -> u64 {
    now_unix_ms() / 1000
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The batch's count of rows holding an upload slot, and the signal that one was freed. A count
/// rather than a semaphore: the tuner moves the limit up and down while slots are held.
#[derive(Default)]
struct Slots {
    busy: AtomicUsize,
    freed: tokio::sync::Notify,
}

/// One row's upload slot: freed when its disks are uploaded, or when the row ends.
struct Slot(Arc<Slots>);

impl Slot {
    fn take(slots: &Arc<Slots>) -> Slot {
        slots.busy.fetch_add(1, Ordering::SeqCst);
        Slot(slots.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.freed.notify_one();
    }
}

/// What one row has uploaded so far, read by the scheduler's tuner.
#[derive(Default)]
struct Traffic {
    bytes: AtomicU64,
    parts: AtomicU64,
    /// Between the row's first part sent and the end of its uploads.
    sending: AtomicBool,
}

/// A row's reporter: counts its upload traffic, gives its upload slot back once the uploads
/// are done, and notes when.
struct RowReporter {
    slot: Mutex<Option<Slot>>,
    traffic: Arc<Traffic>,
    uploaded_unix_ms: AtomicU64,
}

impl Reporter for RowReporter {
    fn sent(&self, bytes: u64) {
        self.traffic.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.traffic.parts.fetch_add(1, Ordering::Relaxed);
        self.traffic.sending.store(true, Ordering::Relaxed);
    }

    fn transfers_done(&self) {
        self.traffic.sending.store(false, Ordering::Relaxed);
        self.uploaded_unix_ms.store(now_unix_ms(), Ordering::SeqCst);
        let slot = self.slot.lock().map(|mut s| s.take());
        drop(slot);
    }
}

/// The scheduler's view of the running rows' traffic: what each had sent at the last tick.
#[derive(Default)]
struct TrafficMeter {
    rows: Vec<(Arc<Traffic>, u64, u64)>,
}

impl TrafficMeter {
    fn watch(&mut self) -> Arc<Traffic> {
        let traffic = Arc::new(Traffic::default());
        self.rows.push((traffic.clone(), 0, 0));
        traffic
    }

    /// Bytes and parts sent since the last read, and the rows sending now; forgets rows that
    /// ended.
    fn read(&mut self) -> (u64, u64, usize) {
        let (mut bytes, mut parts, mut sending) = (0, 0, 0);
        for (traffic, last_bytes, last_parts) in &mut self.rows {
            let now_bytes = traffic.bytes.load(Ordering::Relaxed);
            let now_parts = traffic.parts.load(Ordering::Relaxed);
            bytes += now_bytes - *last_bytes;
            parts += now_parts - *last_parts;
            (*last_bytes, *last_parts) = (now_bytes, now_parts);
            sending += usize::from(traffic.sending.load(Ordering::Relaxed));
        }
        self.rows.retain(|(t, _, _)| Arc::strong_count(t) > 1);
        (bytes, parts, sending)
    }
}

fn row(item: &BatchItem, status: RowStatus) -> RowReport {
    RowReport {
        id: item.id.clone(),
        position: item.position,
        files: item.files.clone(),
        status,
        image_id: None,
        region: None,
        exit_code: 0,
        error: None,
        seconds: 0.0,
        claimed_by: None,
        started_unix_ms: 0,
        uploaded_unix_ms: None,
        ended_unix_ms: 0,
        result: None,
    }
}

fn failed(item: &BatchItem, code: u8, error: String) -> RowReport {
    RowReport {
        exit_code: code,
        error: Some(error),
        ..row(item, RowStatus::Failed)
    }
}

/// Connects to the services of a region: the object store and the ECS client.
pub trait Connect<S: ObjectStore>: Send + Sync {
    /// The clients for `region`: object store, ECS, and E-HPC when images are registered there.
    fn connect(&self, region: &str) -> Result<(S, EcsClient, Option<EhpcClient>), String>;
}

/// Runs one row holding `slot` until its disks are uploaded, and times it.
async fn run_row<S: ObjectStore>(
    item: BatchItem,
    settings: Arc<BatchSettings>,
    connect: Arc<dyn Connect<S>>,
    journal_done: Option<JournalLine>,
    slot: Slot,
    traffic: Arc<Traffic>,
) -> RowReport {
    let started_unix_ms = now_unix_ms();
    let reporter = RowReporter {
        slot: Mutex::new(Some(slot)),
        traffic,
        uploaded_unix_ms: AtomicU64::new(0),
    };
    let report = import_row(item, settings, connect, journal_done, &reporter).await;
    let uploaded = reporter.uploaded_unix_ms.load(Ordering::SeqCst);
    RowReport {
        started_unix_ms,
        uploaded_unix_ms: (uploaded > 0).then_some(uploaded),
        ended_unix_ms: now_unix_ms(),
        ..report
    }
}

/// One row: claim, import, record.
async fn import_row<S: ObjectStore>(
    item: BatchItem,
    settings: Arc<BatchSettings>,
    connect: Arc<dyn Connect<S>>,
    journal_done: Option<JournalLine>,
    reporter: &RowReporter,
) -> RowReport {
    let started = Instant::now();
    if let Some(done) = journal_done {
        return RowReport {
            image_id: Some(done.image_id),
            region: Some(done.region),
            ..row(&item, RowStatus::AlreadyImported)
        };
    }
    let row_settings = match row_settings(&item, &settings.base) {
        Ok(s) => s,
        Err(e) => return failed(&item, 2, e),
    };
    let region = row_settings.plan.region.clone();
    let bucket = row_settings.plan.bucket.clone();
    let (store, ecs, ehpc) = match connect.connect(&region) {
        Ok(c) => c,
        Err(e) => return failed(&item, 2, e),
    };
    let generation = match claims::claim(
        &store,
        &bucket,
        &item.id,
        &settings.owner,
        settings.claim_ttl,
        now_unix(),
    )
    .await
    {
        Ok(Claim::Won { generation }) => generation,
        Ok(Claim::Done(done)) => {
            return RowReport {
                image_id: Some(done.image_id),
                region: Some(done.region),
                claimed_by: Some(done.owner),
                ..row(&item, RowStatus::AlreadyImported)
            };
        }
        Ok(Claim::Busy { owner, .. }) => {
            return RowReport {
                claimed_by: Some(owner),
                ..row(&item, RowStatus::ClaimedElsewhere)
            };
        }
        Err(e) => return failed(&item, e.exit_code(), crate::report::error_chain(&e)),
    };
    let result = import::run(
        &item.files,
        &row_settings,
        Targets {
            store: &store,
            ecs: &ecs,
            ehpc: ehpc.as_ref(),
        },
        reporter,
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(outcome) => {
            let done = DoneRecord {
                image_id: outcome.image_id.clone(),
                region: region.clone(),
                owner: settings.owner.clone(),
                at_unix: now_unix(),
            };
            let mut report = RowReport {
                image_id: Some(outcome.image_id.clone()),
                region: Some(region.clone()),
                seconds,
                result: Some(outcome),
                ..row(&item, RowStatus::Imported)
            };
            let recorded = claims::mark_done(&store, &bucket, &item.id, &done).await;
            if let Err(e) = recorded {
                report.error = Some(format!(
                    "imported, but recording it in the bucket failed: {}",
                    crate::report::error_chain(&e)
                ));
            }
            if let Some(path) = &settings.journal {
                let line = JournalLine {
                    id: item.id.clone(),
                    image_id: done.image_id,
                    region,
                };
                if let Err(e) = append_journal(path, &line) {
                    report.error = Some(format!(
                        "imported, but writing the journal {} failed: {e}",
                        path.display()
                    ));
                }
            }
            report
        }
        Err(e) => {
            // Interrupted rows keep their claim: a re-run by the same owner takes them again.
            if e.exit_code() != 130 {
                let _ = claims::release_failed(
                    &store,
                    &bucket,
                    &item.id,
                    generation,
                    &settings.owner,
                    now_unix(),
                )
                .await;
            }
            RowReport {
                seconds,
                ..failed(&item, e.exit_code(), crate::report::error_chain(&e))
            }
        }
    }
}

/// Runs every row of `items` this shard owns: `settings.in_flight` uploading at a time (tuned
/// each second by the upload rate unless fixed), and up to `settings.max_importing` more whose
/// import the cloud is finishing; `on_row` sees each row's report as it finishes (for progress
/// lines).
pub async fn run<S: ObjectStore>(
    items: Vec<BatchItem>,
    settings: BatchSettings,
    connect: Arc<dyn Connect<S>>,
    on_row: &(dyn Fn(&RowReport) + Sync),
) -> BatchReport {
    let started = Instant::now();
    let journal = settings
        .journal
        .as_deref()
        .map(load_journal)
        .unwrap_or_default();
    let settings = Arc::new(settings);
    let mut rows: Vec<RowReport> = Vec::with_capacity(items.len());
    let mut queue = std::collections::VecDeque::new();
    for item in items {
        match settings.shard {
            Some(shard) if !shard.owns(&item) => rows.push(row(&item, RowStatus::OtherShard)),
            _ => queue.push_back(item),
        }
    }
    let mut tuner = match settings.in_flight {
        InFlight::Tuned { start, max } => Some(Tuner::new(start, max)),
        InFlight::Fixed(_) => None,
    };
    let mut meter = TrafficMeter::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = Instant::now();
    let slots = Arc::new(Slots::default());
    let mut running = tokio::task::JoinSet::new();
    loop {
        let uploading = tuner
            .as_ref()
            .map_or(settings.in_flight.start(), Tuner::limit);
        let started_at_most = uploading + settings.max_importing;
        while slots.busy.load(Ordering::SeqCst) < uploading && running.len() < started_at_most {
            let Some(item) = queue.pop_front() else { break };
            if settings
                .base
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                rows.push(failed(&item, 130, "interrupted before it started".into()));
                continue;
            }
            let done = journal.get(&item.id).cloned();
            let slot = Slot::take(&slots);
            let traffic = meter.watch();
            let row = run_row(item, settings.clone(), connect.clone(), done, slot, traffic);
            running.spawn(row);
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            finished = running.join_next() => match finished {
                Some(Ok(r)) => {
                    on_row(&r);
                    rows.push(r);
                }
                Some(Err(e)) => tracing::error!("a batch row's task ended abnormally: {e}"),
                None => break,
            },
            // A row's uploads are done: the next row may start uploading.
            () = slots.freed.notified() => {}
            _ = ticker.tick(), if tuner.is_some() => {
                let secs = last_tick.elapsed().as_secs_f64();
                last_tick = Instant::now();
                let (bytes, parts, sending) = meter.read();
                if let Some(t) = tuner.as_mut()
                    && let Some(c) = t.tick(secs, bytes, parts, sending, !queue.is_empty())
                {
                    tracing::info!(
                        "rows uploading at once: {} -> {} ({:?} at {:.1} MB/s)",
                        c.from,
                        c.to,
                        c.why,
                        c.rate_at_from / 1e6
                    );
                }
            }
        }
    }
    rows.sort_by_key(|r| r.position);
    let count = |s: RowStatus| rows.iter().filter(|r| r.status == s).count();
    BatchReport {
        shard: settings.shard,
        imported: count(RowStatus::Imported),
        already_imported: count(RowStatus::AlreadyImported),
        claimed_elsewhere: count(RowStatus::ClaimedElsewhere),
        other_shard: count(RowStatus::OtherShard),
        failed: count(RowStatus::Failed),
        seconds: started.elapsed().as_secs_f64(),
        rows,
        in_flight: InFlightReport {
            tuned: tuner.is_some(),
            start: settings.in_flight.start(),
            max: settings.in_flight.max(),
            end: tuner
                .as_ref()
                .map_or(settings.in_flight.start(), Tuner::limit),
            changes: tuner.map(|t| t.changes().to_vec()).unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_default_starts_from_the_cores_and_stops_where_memory_does() {
        let row = crate::transfer::stream::buffer_memory(0) + ROW_OVERHEAD;
        assert_eq!(row, 224 << 20);
        let tuned = |cores, memory| match InFlight::tuned_for(cores, memory, row) {
            InFlight::Tuned { start, max } => (start, max),
            InFlight::Fixed(_) => unreachable!(),
        };
        assert_eq!(tuned(2, None), (2, 8));
        assert_eq!(tuned(2, Some(24 * GIB)), (2, 8));
        assert_eq!(tuned(64, Some(256 * GIB)), (8, 16));
        // A pod with 2 GiB left: half of it holds four rows.
        assert_eq!(tuned(2, Some(2 * GIB)), (2, 4));
        assert_eq!(tuned(16, Some(2 * GIB)), (4, 4));
        // Too little for even one row's buffers: one row still runs.
        assert_eq!(tuned(2, Some(100 << 20)), (1, 1));
    }
}

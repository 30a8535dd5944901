//! Many imports: the rows of a batch manifest (or a Packer manifest), several uploading at
//! once and more waiting for the cloud to finish their import, each claimed in its bucket
//! first so processes here and on other machines skip it (see [`super::claims`]), recorded in
//! a local journal so an interrupted batch resumes where it stopped (finished rows skipped;
//! partial uploads resume from their own journals). One row's failure is counted, not fatal.
//!
//! Every record (journal line, claim, done record) names the row's [`Destination`]; a record
//! for another destination is ignored, and a row counts as imported only once its image is
//! seen `Available` at its destination (DescribeImages), whatever the records say.
//!
//! Kept whole: the batch runner and the row states it reports; claims, manifests and the per-row
//! import live beside it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::claims::{self, Busy, Claim, DoneRecord, Holder, LeaseRules};
use super::import::{self, ImportOutcome, ImportSettings, Targets};
use super::manifest::{BatchItem, RowOptions, Shard};
use super::tuner::{LimitChange, Tuner};
use crate::plan::OutputFormat;
use imgport_base::destination::Destination;
use imgport_base::report::Reporter;
use imgport_cloud::aliyun::client::EcsClient;
use imgport_cloud::aliyun::ehpc::EhpcClient;
use imgport_cloud::aliyun::rpc::RpcError;
use imgport_cloud::aliyun::types::{Architecture, BootMode, LicenseType, OsType, Platform};
use imgport_store::{ObjectStore, ObjectTarget};

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Settings every row starts from (transfer, polling, cancel); the plan's region, bucket,
    /// key prefix and image options come from [`BatchSettings::flags`] and the rows.
    pub base: ImportSettings,
    /// The manifest keys the command line gave: they win over the row's own value, which wins
    /// over the manifest's `[defaults]` (one rule for every key).
    pub flags: RowOptions,
    /// Rows converting and uploading at once (the work of this machine's cores and link).
    pub in_flight: InFlight,
    /// Rows whose disks are uploaded and whose import the cloud is running, at most, beside
    /// the `in_flight` ones: their wait costs this machine nothing.
    pub max_importing: usize,
    /// Local journal of finished rows; `None` keeps no journal.
    pub journal: Option<PathBuf>,
    pub shard: Option<Shard>,
    /// This process, as its claims name it.
    pub holder: Holder,
    /// Leases of claims held from other machines.
    pub lease: LeaseRules,
    /// Rows held by another live process are looked at again this often until they are done
    /// or free; `None` reports them as in progress elsewhere at once.
    pub wait_for_others: Option<Duration>,
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
    /// batch's, when given).
    pub fn from_machine(part_size: Option<crate::plan::PartSize>) -> InFlight {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let part = part_size.map(crate::plan::PartSize::non_zero);
        let row_memory = imgport_transfer::stream::buffer_memory(part) + ROW_OVERHEAD;
        Self::tuned_for(cores, imgport_base::mem::available(), row_memory)
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
    /// Imported before (local journal, the bucket's done record or an image with the same
    /// content), its image confirmed `Available` at the destination; not imported again.
    AlreadyImported,
    /// Another live process holds its claim (here, or a lease from another machine): not
    /// done yet, so the batch's exit code is [`EXIT_IN_PROGRESS_ELSEWHERE`] unless it fails.
    InProgressElsewhere,
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
    /// Who holds the claim, for `in_progress_elsewhere`.
    pub claimed_by: Option<String>,
    /// The destination the row imports to (`bucket … at … in … (account …)`).
    pub destination: Option<String>,
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
    pub in_progress_elsewhere: usize,
    pub other_shard: usize,
    pub failed: usize,
    pub seconds: f64,
    pub in_flight: InFlightReport,
    /// The batch was interrupted (Ctrl-C, SIGTERM; also while waiting for other processes)
    /// with rows left undone.
    pub interrupted: bool,
}

/// Exit code of a batch none of whose rows failed but some of whose rows another live
/// process is still importing (EX_TEMPFAIL of sysexits.h: run it again later).
pub const EXIT_IN_PROGRESS_ELSEWHERE: u8 = 75;

impl BatchReport {
    /// The failed rows' code when they share one, else 1 when rows failed; else 130 when
    /// interrupted; else [`EXIT_IN_PROGRESS_ELSEWHERE`] when rows are in progress elsewhere;
    /// else 0.
    pub fn exit_code(&self) -> u8 {
        let mut codes = self
            .rows
            .iter()
            .filter(|r| r.status == RowStatus::Failed)
            .map(|r| r.exit_code);
        match codes.next() {
            None if self.interrupted => 130,
            None if self.in_progress_elsewhere > 0 => EXIT_IN_PROGRESS_ELSEWHERE,
            None => 0,
            Some(first) if codes.all(|c| c == first) => first,
            Some(_) => 1,
        }
    }

    /// Whether any row was interrupted (its state kept for a re-run to resume).
    pub fn interrupted(&self) -> bool {
        self.interrupted
            || self
                .rows
                .iter()
                .any(|r| r.status == RowStatus::Failed && r.exit_code == 130)
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

/// Key prefix of the rows no flag, row or `[defaults]` gives one.
pub const DEFAULT_KEY_PREFIX: &str = "imgport/";

/// The options of one row by the batch's one precedence: a command-line flag, else the row's
/// own value, else the manifest's `[defaults]`.
pub fn effective_options(item: &BatchItem, flags: &RowOptions) -> RowOptions {
    flags.clone().or(&item.options).or(&item.defaults)
}

/// The settings of one row: the base with its [`effective_options`] on top.
pub fn row_settings(
    item: &BatchItem,
    base: &ImportSettings,
    flags: &RowOptions,
) -> Result<ImportSettings, String> {
    let o = &effective_options(item, flags);
    let mut s = base.clone();
    let p = &mut s.plan;
    p.region = o.region.clone().unwrap_or_default();
    p.bucket = o.bucket.clone().unwrap_or_default();
    // Rows of one batch often share file names (`disk.qcow2` in each build directory): each
    // row gets a folder of its own under the prefix so their objects never overwrite each
    // other.
    let prefix = o.key_prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX);
    p.key_prefix = format!("{prefix}{}/", claims::key_safe(&item.id));
    if o.allow_no_os == Some(true) {
        p.allow_no_os = true;
    }
    if o.allow_nested == Some(true) {
        s.open.allow_nested = true;
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

/// One line of the local journal: a finished row and where its image is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalLine {
    id: String,
    image_id: String,
    region: String,
    /// Lines of older versions carry none and are not trusted.
    #[serde(default)]
    destination: Option<Destination>,
}

/// Finished rows by id and destination fingerprint, from the journal at `path` (absent:
/// none). Lines that do not parse (a line cut by a crash) or name no destination are ignored.
fn load_journal(path: &Path) -> HashMap<(String, String), JournalLine> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<JournalLine>(l).ok())
        .filter_map(|l| {
            let key = (l.id.clone(), l.destination.as_ref()?.fingerprint());
            Some((key, l))
        })
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
        destination: None,
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
    /// The clients for `region`: object store (through OSS's internal endpoint when
    /// `internal`, the plan's [`OssEndpoint`](crate::plan::OssEndpoint)), ECS, and E-HPC when
    /// images are registered there.
    fn connect(
        &self,
        region: &str,
        internal: bool,
    ) -> Result<(S, EcsClient, Option<EhpcClient>), String>;
    /// The destination `bucket` in `region` is, as kept state names it.
    fn destination(&self, region: &str, bucket: &str) -> Destination;
}

/// Runs one row holding `slot` until its disks are uploaded, and times it.
async fn run_row<S: ObjectStore>(
    item: BatchItem,
    settings: Arc<BatchSettings>,
    connect: Arc<dyn Connect<S>>,
    journal: Arc<HashMap<(String, String), JournalLine>>,
    slot: Slot,
    traffic: Arc<Traffic>,
) -> RowReport {
    let started_unix_ms = now_unix_ms();
    let started = Instant::now();
    let reporter = RowReporter {
        slot: Mutex::new(Some(slot)),
        traffic,
        uploaded_unix_ms: AtomicU64::new(0),
    };
    let report = import_row(item, settings, connect, &journal, &reporter).await;
    let uploaded = reporter.uploaded_unix_ms.load(Ordering::SeqCst);
    RowReport {
        started_unix_ms,
        uploaded_unix_ms: (uploaded > 0).then_some(uploaded),
        ended_unix_ms: now_unix_ms(),
        seconds: started.elapsed().as_secs_f64(),
        ..report
    }
}

/// Whether `image_id` is `Available` at the destination `ecs` talks to.
pub async fn confirm_available(ecs: &EcsClient, image_id: &str) -> Result<bool, RpcError> {
    use imgport_cloud::aliyun::ecs::DescribeImagesRequest;
    use imgport_cloud::aliyun::types::ImageStatus;
    let req = DescribeImagesRequest::new(ecs.region())
        .image_id(image_id)
        .status(&[ImageStatus::Available]);
    let resp = ecs.describe_images(&req).await?;
    Ok(resp
        .images
        .image
        .iter()
        .any(|i| i.image_id == image_id && i.status() == Some(ImageStatus::Available)))
}

/// A row recorded as imported as `image_id` (by the journal or the bucket): `Some` report
/// once the image is confirmed `Available`; `None` when it is not (the row is imported
/// again); a failed report when the cloud could not tell.
async fn confirmed(
    item: &BatchItem,
    ecs: &EcsClient,
    image_id: &str,
    region: &str,
    by: Option<String>,
) -> Option<RowReport> {
    match confirm_available(ecs, image_id).await {
        Ok(true) => Some(RowReport {
            image_id: Some(image_id.to_string()),
            region: Some(region.to_string()),
            claimed_by: by,
            ..row(item, RowStatus::AlreadyImported)
        }),
        Ok(false) => {
            tracing::warn!(
                "{}: recorded as imported as {image_id}, but that image is not Available \
                 in {region}: importing it again",
                item.id
            );
            None
        }
        Err(e) => Some(failed(
            item,
            4,
            format!(
                "recorded as imported as {image_id}, but confirming it failed, so whether it \
                 exists is unknown: {}",
                imgport_base::report::error_chain(&e)
            ),
        )),
    }
}

/// Rewrites the claim's lease every `renew_every`, and as soon as this process opens another
/// upload of the row (looked for in its journals every [`UPLOAD_LOOK`]), until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

/// How often the renewal looks for uploads the row opened.
const UPLOAD_LOOK: Duration = Duration::from_millis(200);

impl Renewal {
    fn start<S: ObjectStore>(
        store: S,
        settings: ImportSettings,
        item_id: String,
        generation: u32,
        every: Duration,
    ) -> Renewal {
        Renewal(tokio::spawn(async move {
            let mut last = Instant::now();
            let mut named = Vec::new();
            loop {
                tokio::time::sleep(UPLOAD_LOOK.min(every)).await;
                let open: Vec<claims::OpenUpload> = row_journals(&store, &settings)
                    .into_iter()
                    .map(|s| claims::OpenUpload {
                        key: s.header.key,
                        upload_id: s.header.upload_id,
                    })
                    .collect();
                if last.elapsed() < every && open == named {
                    continue;
                }
                last = Instant::now();
                named = open.clone();
                let bucket = &settings.plan.bucket;
                if let Err(e) =
                    claims::renew(&store, bucket, &item_id, generation, now_unix(), open).await
                {
                    tracing::warn!("{item_id}: renewing the claim's lease failed: {e}");
                }
            }
        }))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// This machine's upload journals of the row's objects (its bucket, under its key prefix).
fn row_journals<S: ObjectStore>(
    store: &S,
    settings: &ImportSettings,
) -> Vec<imgport_store::journal::State> {
    let Some(dir) = settings.upload.journal_dir.as_deref() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| imgport_store::journal::load(&e.path()).ok().flatten())
        .filter(|s| {
            s.header.destination == store.destination(&settings.plan.bucket)
                && s.header.key.starts_with(&settings.plan.key_prefix)
        })
        .collect()
}

/// One row: confirm a recorded import, or claim, import, confirm, record.
async fn import_row<S: ObjectStore>(
    item: BatchItem,
    settings: Arc<BatchSettings>,
    connect: Arc<dyn Connect<S>>,
    journal: &HashMap<(String, String), JournalLine>,
    reporter: &RowReporter,
) -> RowReport {
    let row_settings = match row_settings(&item, &settings.base, &settings.flags) {
        Ok(s) => s,
        Err(e) => return failed(&item, 2, e),
    };
    let region = row_settings.plan.region.clone();
    let bucket = row_settings.plan.bucket.clone();
    let dest = connect.destination(&region, &bucket);
    let with_dest = |r: RowReport| RowReport {
        destination: Some(dest.to_string()),
        ..r
    };
    let internal = match row_settings.plan.internal.decide(&region) {
        Ok(e) => e.internal,
        Err(e) => return with_dest(failed(&item, 2, e.to_string())),
    };
    let (store, ecs, ehpc) = match connect.connect(&region, internal) {
        Ok(c) => c,
        Err(e) => return with_dest(failed(&item, 2, e)),
    };
    if let Some(line) = journal.get(&(item.id.clone(), dest.fingerprint()))
        && let Some(r) = confirmed(&item, &ecs, &line.image_id, &region, None).await
    {
        if r.status == RowStatus::AlreadyImported {
            drop_row_uploads(&store, &row_settings, &item.id).await;
        }
        return with_dest(r);
    }
    let done_first = claims::read_done(&store, &dest, &item.id).await;
    let claimed = match done_first {
        Ok(Some(done)) => Ok(Claim::Done(done)),
        Ok(None) => {
            let won = claims::claim(
                &store,
                &dest,
                &item.id,
                &settings.holder,
                &settings.lease,
                now_unix(),
            )
            .await;
            // Another process may have finished the row between the look and the claim.
            match won {
                Ok(Claim::Won { generation }) => {
                    match claims::read_done(&store, &dest, &item.id).await {
                        Ok(Some(done)) => Ok(Claim::Done(done)),
                        Ok(None) => Ok(Claim::Won { generation }),
                        Err(e) => Err(e),
                    }
                }
                other => other,
            }
        }
        Err(e) => Err(e),
    };
    let generation = match claimed {
        Ok(Claim::Won { generation }) => generation,
        Ok(Claim::Done(done)) => {
            match confirmed(&item, &ecs, &done.image_id, &region, Some(done.owner)).await {
                Some(r) => {
                    if r.status == RowStatus::AlreadyImported {
                        drop_row_uploads(&store, &row_settings, &item.id).await;
                    }
                    return with_dest(r);
                }
                None => match claims::claim(
                    &store,
                    &dest,
                    &item.id,
                    &settings.holder,
                    &settings.lease,
                    now_unix(),
                )
                .await
                {
                    Ok(Claim::Won { generation }) => generation,
                    Ok(Claim::Busy(b)) => return with_dest(in_progress(&item, &b)),
                    Ok(Claim::Done(_)) => {
                        return with_dest(failed(&item, 1, "recorded done twice".into()));
                    }
                    Err(e) => {
                        return with_dest(failed(
                            &item,
                            e.exit_code(),
                            imgport_base::report::error_chain(&e),
                        ));
                    }
                },
            }
        }
        Ok(Claim::Busy(b)) => return with_dest(in_progress(&item, &b)),
        Err(e) => {
            return with_dest(failed(
                &item,
                e.exit_code(),
                imgport_base::report::error_chain(&e),
            ));
        }
    };
    let renewal = Renewal::start(
        store.clone(),
        row_settings.clone(),
        item.id.clone(),
        generation,
        settings.lease.renew_every,
    );
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
    drop(renewal);
    match result {
        Ok(outcome) if outcome.status == "Available" => {
            let done = DoneRecord {
                image_id: outcome.image_id.clone(),
                region: region.clone(),
                owner: settings.holder.label(),
                at_unix: now_unix(),
                destination: Some(dest.clone()),
            };
            let mut report = RowReport {
                image_id: Some(outcome.image_id.clone()),
                region: Some(region.clone()),
                result: Some(outcome),
                ..row(&item, RowStatus::Imported)
            };
            let recorded = claims::mark_done(&store, &item.id, &done).await;
            if let Err(e) = recorded {
                report.error = Some(format!(
                    "imported, but recording it in the bucket failed: {}",
                    imgport_base::report::error_chain(&e)
                ));
            }
            if let Some(path) = &settings.journal {
                let line = JournalLine {
                    id: item.id.clone(),
                    image_id: done.image_id,
                    region,
                    destination: Some(dest.clone()),
                };
                if let Err(e) = append_journal(path, &line) {
                    report.error = Some(format!(
                        "imported, but writing the journal {} failed: {e}",
                        path.display()
                    ));
                }
            }
            drop_row_uploads(&store, &row_settings, &item.id).await;
            with_dest(report)
        }
        Ok(outcome) => with_dest(failed(
            &item,
            4,
            format!(
                "image {} is {}, not Available",
                outcome.image_id, outcome.status
            ),
        )),
        Err(e) => {
            // A holder whose lease lapsed may find its row finished by the one that took it
            // over (which aborted this holder's upload): done, when confirmed there.
            if e.exit_code() != 130
                && let Ok(Some(done)) = claims::read_done(&store, &dest, &item.id).await
                && let Some(r) =
                    confirmed(&item, &ecs, &done.image_id, &region, Some(done.owner)).await
                && r.status == RowStatus::AlreadyImported
            {
                drop_row_uploads(&store, &row_settings, &item.id).await;
                return with_dest(r);
            }
            // Interrupted rows keep their claim: a re-run on this machine takes it over at
            // once (its holder is gone), another machine once its lease lapses.
            if e.exit_code() != 130 {
                let _ = claims::release_failed(
                    &store,
                    &bucket,
                    &item.id,
                    generation,
                    &settings.holder,
                    now_unix(),
                )
                .await;
            }
            let mut message = imgport_base::report::error_chain(&e);
            if e.exit_code() == 130 {
                message.push_str(
                    "; run the same command again to resume (finished disks are skipped, \
                     partial uploads resume from their journals)",
                );
            }
            with_dest(failed(&item, e.exit_code(), message))
        }
    }
}

/// Drops the upload state of a row whose image is confirmed `Available`: this machine's
/// journals of its objects (finished ones, and unfinished ones of an attempt that another
/// process completed) are removed and the multipart uploads they name aborted, and so are
/// the uploads earlier holders named in their leases (a machine that never came back), so
/// neither a journal nor an open upload outlives the row.
async fn drop_row_uploads<S: ObjectStore>(store: &S, settings: &ImportSettings, item_id: &str) {
    let opts = &settings.upload;
    for state in row_journals(store, settings) {
        let target = ObjectTarget {
            bucket: state.header.destination.bucket.clone(),
            key: state.header.key.clone(),
        };
        let dir = opts.journal_dir.as_deref();
        if let Err(e) = imgport_store::multipart::abort(store, &target, dir, None, opts).await {
            tracing::warn!("dropping the finished row's upload state of {target}: {e}");
        }
    }
    let bucket = &settings.plan.bucket;
    let others = match claims::holders_uploads(store, bucket, item_id).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("{item_id}: reading the uploads of earlier holders failed: {e}");
            return;
        }
    };
    for u in others
        .into_iter()
        .filter(|u| u.key.starts_with(&settings.plan.key_prefix))
    {
        let target = ObjectTarget {
            bucket: bucket.clone(),
            key: u.key,
        };
        // An upload the server no longer knows (completed, or aborted) counts as aborted.
        if let Err(e) = store.abort(&target, &u.upload_id).await {
            tracing::warn!("aborting an earlier holder's upload of {target}: {e}");
        }
    }
    // A holder killed between CreateMultipartUpload and naming the upload in its lease left
    // one that only the bucket knows: every upload still open under the row's own key prefix
    // belongs to an attempt at a row that is done.
    match store
        .list_uploads(bucket, &settings.plan.key_prefix, MAX_ROW_UPLOADS)
        .await
    {
        Ok(open) => {
            for (key, upload_id) in open {
                let target = ObjectTarget {
                    bucket: bucket.clone(),
                    key,
                };
                if let Err(e) = store.abort(&target, &upload_id).await {
                    tracing::warn!("aborting a left-over upload of {target}: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("{item_id}: listing the row's open uploads failed: {e}"),
    }
}

/// Most open uploads of one row's objects swept after it is done.
const MAX_ROW_UPLOADS: usize = 1000;

/// The report of a row another live process holds.
fn in_progress(item: &BatchItem, b: &Busy) -> RowReport {
    let by = match (b.on_this_host, b.expires_unix) {
        (true, _) => format!("{} (running on this machine)", b.owner),
        (false, Some(t)) => format!(
            "{} (lease renewed {}s ago, lapses in {}s)",
            b.owner,
            now_unix().saturating_sub(b.since_unix),
            t.saturating_sub(now_unix())
        ),
        (false, None) => b.owner.clone(),
    };
    RowReport {
        claimed_by: Some(by),
        ..row(item, RowStatus::InProgressElsewhere)
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
    let journal = Arc::new(
        settings
            .journal
            .as_deref()
            .map(load_journal)
            .unwrap_or_default(),
    );
    let settings = Arc::new(settings);
    let cancelled = || {
        settings
            .base
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    };
    let mut rows: Vec<RowReport> = Vec::with_capacity(items.len());
    let mut queue = std::collections::VecDeque::new();
    let mut by_position = HashMap::new();
    for item in items {
        match settings.shard {
            Some(shard) if !shard.owns(&item) => rows.push(row(&item, RowStatus::OtherShard)),
            _ => {
                by_position.insert(item.position, item.clone());
                queue.push_back(item);
            }
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
            if cancelled() {
                rows.push(failed(
                    &item,
                    130,
                    "interrupted before it started; run the same command again to resume".into(),
                ));
                continue;
            }
            let slot = Slot::take(&slots);
            let traffic = meter.watch();
            let row = run_row(
                item,
                settings.clone(),
                connect.clone(),
                journal.clone(),
                slot,
                traffic,
            );
            running.spawn(row);
        }
        if running.is_empty() {
            // Rows other live processes hold: looked at again until done or free, when asked.
            let Some(every) = settings.wait_for_others else {
                break;
            };
            let waiting: Vec<usize> = rows
                .iter()
                .filter(|r| r.status == RowStatus::InProgressElsewhere)
                .map(|r| r.position)
                .collect();
            if waiting.is_empty() || cancelled() {
                break;
            }
            let wait_until = Instant::now() + every;
            while Instant::now() < wait_until && !cancelled() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rows.retain(|r| r.status != RowStatus::InProgressElsewhere);
            queue.extend(waiting.iter().filter_map(|p| by_position.get(p).cloned()));
            continue;
        }
        tokio::select! {
            finished = running.join_next() => match finished {
                Some(Ok(r)) => {
                    if !(settings.wait_for_others.is_some()
                        && r.status == RowStatus::InProgressElsewhere)
                    {
                        on_row(&r);
                    }
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
    let unfinished = rows.iter().any(|r| {
        !matches!(
            r.status,
            RowStatus::Imported | RowStatus::AlreadyImported | RowStatus::OtherShard
        )
    });
    BatchReport {
        interrupted: cancelled() && unfinished,
        shard: settings.shard,
        imported: count(RowStatus::Imported),
        already_imported: count(RowStatus::AlreadyImported),
        in_progress_elsewhere: count(RowStatus::InProgressElsewhere),
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

/// The state of one row at its destination, as `imgport batch --status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStateKind {
    /// Recorded as imported and its image confirmed `Available` there.
    Available,
    /// Recorded as imported, but the image is not `Available` there (deleted, or another
    /// account): a run imports it again.
    NotAvailable,
    /// A live process holds it: here, or on another machine whose lease is renewed.
    InProgress,
    /// Its holder is gone (or its lease lapsed): a run takes it over and resumes.
    Interrupted,
    /// The last attempt failed: a run tries again.
    Failed,
    /// Nobody worked on it at this destination.
    NotStarted,
    /// Not this shard's row.
    OtherShard,
    /// Its options are wrong, or the destination could not be asked.
    Unknown,
}

impl RowStateKind {
    /// The name shown in the table.
    pub fn name(self) -> &'static str {
        match self {
            RowStateKind::Available => "available",
            RowStateKind::NotAvailable => "recorded, not available",
            RowStateKind::InProgress => "in progress",
            RowStateKind::Interrupted => "interrupted",
            RowStateKind::Failed => "failed",
            RowStateKind::NotStarted => "not started",
            RowStateKind::OtherShard => "other shard",
            RowStateKind::Unknown => "unknown",
        }
    }
}

/// One row of `imgport batch --status`.
#[derive(Debug, Clone, Serialize)]
pub struct RowState {
    pub id: String,
    pub position: usize,
    pub state: RowStateKind,
    pub image_id: Option<String>,
    pub destination: Option<String>,
    /// Who holds it, what failed, or why the state is unknown.
    pub detail: String,
}

/// Every row's state at its destination; reads only (the journal, the bucket's records and
/// DescribeImages), changes nothing.
pub async fn status<S: ObjectStore>(
    items: Vec<BatchItem>,
    settings: &BatchSettings,
    connect: &dyn Connect<S>,
) -> Vec<RowState> {
    let journal = settings
        .journal
        .as_deref()
        .map(load_journal)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let state = |state, detail: String| RowState {
            id: item.id.clone(),
            position: item.position,
            state,
            image_id: None,
            destination: None,
            detail,
        };
        if settings.shard.is_some_and(|s| !s.owns(&item)) {
            out.push(state(RowStateKind::OtherShard, String::new()));
            continue;
        }
        let row = match row_state(&item, settings, connect, &journal).await {
            Ok(r) => r,
            Err(e) => state(RowStateKind::Unknown, e),
        };
        out.push(row);
    }
    out
}

async fn row_state<S: ObjectStore>(
    item: &BatchItem,
    settings: &BatchSettings,
    connect: &dyn Connect<S>,
    journal: &HashMap<(String, String), JournalLine>,
) -> Result<RowState, String> {
    let s = row_settings(item, &settings.base, &settings.flags)?;
    let dest = connect.destination(&s.plan.region, &s.plan.bucket);
    let internal = s
        .plan
        .internal
        .decide(&s.plan.region)
        .map_err(|e| e.to_string())?
        .internal;
    let (store, ecs, _) = connect.connect(&s.plan.region, internal)?;
    let mut r = RowState {
        id: item.id.clone(),
        position: item.position,
        state: RowStateKind::NotStarted,
        image_id: None,
        destination: Some(dest.to_string()),
        detail: String::new(),
    };
    let done = claims::read_done(&store, &dest, &item.id)
        .await
        .map_err(|e| imgport_base::report::error_chain(&e))?;
    let recorded = done.map(|d| d.image_id).or_else(|| {
        journal
            .get(&(item.id.clone(), dest.fingerprint()))
            .map(|l| l.image_id.clone())
    });
    if let Some(image_id) = recorded {
        let available = confirm_available(&ecs, &image_id)
            .await
            .map_err(|e| imgport_base::report::error_chain(&e))?;
        r.state = if available {
            RowStateKind::Available
        } else {
            RowStateKind::NotAvailable
        };
        r.image_id = Some(image_id);
        if available {
            return Ok(r);
        }
    }
    let newest = claims::read_newest(&store, &dest.bucket, &item.id)
        .await
        .map_err(|e| imgport_base::report::error_chain(&e))?;
    let Some(n) = newest else {
        return Ok(r);
    };
    if n.record.state == claims::ClaimState::Failed {
        r.state = RowStateKind::Failed;
        r.detail = format!("last attempt by {} failed", n.record.owner);
        return Ok(r);
    }
    match claims::holder_state(Some(&n), &settings.holder, &settings.lease, now_unix()) {
        Some(b) => {
            r.state = RowStateKind::InProgress;
            r.detail = in_progress(item, &b).claimed_by.unwrap_or_default();
        }
        None => {
            r.state = RowStateKind::Interrupted;
            r.detail = format!(
                "held by {} (gone or its lease lapsed); a run resumes it",
                n.record.owner
            );
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn opts(region: Option<&str>, bucket: Option<&str>, prefix: Option<&str>) -> RowOptions {
        RowOptions {
            region: region.map(String::from),
            bucket: bucket.map(String::from),
            key_prefix: prefix.map(String::from),
            ..RowOptions::default()
        }
    }

    #[test]
    fn a_flag_wins_over_the_row_which_wins_over_the_defaults_for_every_key() {
        let item = BatchItem {
            id: "web 01".into(),
            position: 0,
            name: Some("web".into()),
            files: vec!["/d/web.qcow2".into()],
            options: opts(None, Some("row-bucket"), Some("row/")),
            defaults: opts(Some("cn-hangzhou"), Some("default-bucket"), Some("d/")),
        };
        let base = ImportSettings::default();
        let s = row_settings(&item, &base, &RowOptions::default()).unwrap();
        assert_eq!(
            (s.plan.region.as_str(), s.plan.bucket.as_str()),
            ("cn-hangzhou", "row-bucket")
        );
        assert_eq!(s.plan.key_prefix, "row/web_01/");
        let flags = opts(Some("eu-central-1"), Some("flag-bucket"), Some("f/"));
        let s = row_settings(&item, &base, &flags).unwrap();
        assert_eq!(
            (s.plan.region.as_str(), s.plan.bucket.as_str()),
            ("eu-central-1", "flag-bucket")
        );
        assert_eq!(s.plan.key_prefix, "f/web_01/");
        let bare = BatchItem {
            options: RowOptions::default(),
            defaults: opts(Some("cn-hangzhou"), Some("b"), None),
            ..item
        };
        let s = row_settings(&bare, &base, &RowOptions::default()).unwrap();
        assert_eq!(s.plan.key_prefix, "imgport/web_01/");
        assert!(!s.plan.allow_no_os);
        let allow = RowOptions {
            allow_no_os: Some(true),
            ..RowOptions::default()
        };
        assert!(row_settings(&bare, &base, &allow).unwrap().plan.allow_no_os);
        assert!(!s.open.allow_nested);
        let nested = RowOptions {
            allow_nested: Some(true),
            ..RowOptions::default()
        };
        assert!(
            row_settings(&bare, &base, &nested)
                .unwrap()
                .open
                .allow_nested
        );
    }

    #[test]
    fn the_default_starts_from_the_cores_and_stops_where_memory_does() {
        let row = imgport_transfer::stream::buffer_memory(None) + ROW_OVERHEAD;
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

//! `imgport batch MANIFEST` and `imgport packer --manifest packer-manifest.json`: import many
//! images, several in flight, resumable from a journal, shardable across machines
//! (`--shard I/N`, Kubernetes Indexed Jobs, Slurm job arrays), with a summary table and a JSON
//! report. Exit 0 when every row is imported (confirmed `Available`); otherwise the failed
//! rows' exit code when they share one (3 refused, 4 cloud, 5 CreateFailed, 130
//! interrupted …), else 1 — so a build hook sees why; 75 when none failed but another live
//! process still holds some rows (`--wait-for-others` waits for them instead).
//!
//! One precedence for every manifest key: a command-line flag, else the row's own value,
//! else the manifest's `[defaults]`, else the built-in default.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::connect::{ConnectFlags, Connection};
use super::convert::cancel_on_signals;
use super::import::block_on;
use super::output::{exit, print_json};
use imgport_core::pipeline::batch::{
    self, BatchReport, BatchSettings, EXIT_IN_PROGRESS_ELSEWHERE, InFlight, RowReport, RowStatus,
};
use imgport_core::pipeline::batch_plan::{self, BatchPlan};
use imgport_core::pipeline::claims::{Holder, LeaseRules};
use imgport_core::pipeline::manifest::{self, BatchItem, RowOptions, Shard};
use imgport_core::pipeline::packer;
use imgport_core::plan::PlanOptions;
use imgport_image::OpenOptions;

/// Flags every batch-like command shares. The manifest keys among them (`--region`,
/// `--bucket`, `--key-prefix`, `--family`, `--allow-no-os`, `--allow-nested`) win over an entry's own value,
/// which wins over the manifest's `[defaults]`.
#[derive(Debug, Args)]
pub struct BatchFlags {
    /// Region id of every image, e.g. cn-hangzhou or us-east-1 (over an entry's `region` and
    /// `[defaults]`).
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID", value_parser = super::vocab::region)]
    pub region: Option<String>,
    /// OSS bucket of every image (over an entry's `bucket` and `[defaults]`).
    #[arg(long, value_parser = super::vocab::bucket)]
    pub bucket: Option<String>,
    /// Prefix of every object key (over an entry's and `[defaults]`; default `imgport/`);
    /// each image's objects go in a folder of their own under it.
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Image family of every image (over an entry's `family` and `[defaults]`).
    #[arg(long)]
    pub family: Option<String>,
    /// Import system disks on which inspection finds no operating system (finding
    /// guest.no_os); without it such an image is refused (exit 3) unless it states its OS
    /// (`platform` or `os_type`). Manifest key: `allow_no_os = true`.
    #[arg(long)]
    pub allow_no_os: bool,
    /// Import disks whose guest data starts with another image format's header (finding
    /// nested.*) as they are; without it such an image is refused (exit 3). Manifest key:
    /// `allow_nested = true`.
    #[arg(long)]
    pub allow_nested: bool,
    /// Images converted and uploaded at once. Default: starts from the cores (each image
    /// already uses them all) and adds or removes images by the combined upload rate they
    /// reach, up to four times the start and what half the free memory (or the container's
    /// limit) holds. Images the cloud is still importing do not count (see --max-importing).
    #[arg(long, value_parser = parse_in_flight)]
    pub in_flight: Option<usize>,
    /// Images whose upload is done and whose import the cloud is running, at most, beside the
    /// ones uploading: their wait until `Available` costs this machine nothing.
    #[arg(long, default_value_t = 16)]
    pub max_importing: usize,
    /// This process's share: I/N (0-based). Filled from JOB_COMPLETION_INDEX + IMGPORT_SHARDS
    /// (Kubernetes Indexed Jobs) or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when absent.
    #[arg(long)]
    pub shard: Option<String>,
    /// Journal of finished images (default: next to the manifest, `.imgport-batch-NAME.jsonl`).
    #[arg(long)]
    pub batch_journal: Option<PathBuf>,
    /// Seconds a claim held from another machine lives without renewal; then its images are
    /// taken over. Claims of processes on this machine are taken over as soon as the process
    /// is gone (or the machine rebooted).
    #[arg(long, alias = "claim-ttl", default_value_t = LeaseRules::default().lease.as_secs_f64())]
    pub lease_seconds: f64,
    /// Seconds between two renewals of this process's claims.
    #[arg(long, default_value_t = LeaseRules::default().renew_every.as_secs_f64())]
    pub lease_renew_seconds: f64,
    /// Wait for images another live process holds (looking again every few seconds) until
    /// they are imported or free, instead of reporting them as in progress elsewhere
    /// (exit 75).
    #[arg(long)]
    pub wait_for_others: bool,
    /// Seconds between two looks at images held elsewhere, with --wait-for-others.
    #[arg(long, default_value_t = 5.0, requires = "wait_for_others")]
    pub wait_interval: f64,
    /// Change nothing: show every image's state at its destination (imported and Available,
    /// in progress and where, interrupted, failed, not started) and exit.
    #[arg(long)]
    pub status: bool,
    /// Change nothing: inspect and plan every image exactly as a run would, print the plans
    /// (with --json, each image's `imgport plan --json` plan) and exit; no upload, no claim, no
    /// call to any service.
    #[arg(long, conflicts_with = "status")]
    pub dry_run: bool,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectFlags,
}

/// Exit codes of `batch` and `packer`, for their help.
macro_rules! exit_help {
    () => {
        "Exit codes: 0 every image imported (confirmed Available) or already imported; 3 \
         refused by inspection, 4 cloud or storage error, 5 CreateFailed, 130 interrupted (run \
         the same command again to resume), 1 images failed for different reasons; 75 none \
         failed but another live process (here or on another machine) still holds some: run \
         again later, or with --wait-for-others."
    };
}
/// `batch`'s help after the flags: exit codes and key precedence.
const BATCH_HELP: &str = concat!(
    exit_help!(),
    " A flag wins over a manifest entry's own value, which wins over the manifest's [defaults]."
);
/// `packer`'s help after the flags.
const EXIT_HELP: &str = exit_help!();

#[derive(Debug, Args)]
#[command(after_help = BATCH_HELP)]
pub struct BatchArgs {
    /// The manifest: TOML (`[[image]]` entries, `[defaults]`) or CSV (`name,files,...`).
    pub manifest: PathBuf,
    #[command(flatten)]
    pub flags: BatchFlags,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub struct PackerArgs {
    /// The file Packer's `manifest` post-processor wrote.
    #[arg(long, default_value = "packer-manifest.json")]
    pub manifest: PathBuf,
    /// Only the builds of the last Packer run (`last_run_uuid`).
    #[arg(long)]
    pub last_run_only: bool,
    #[command(flatten)]
    pub flags: BatchFlags,
}

/// Runs `imgport batch`.
pub fn run_batch(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let items = match manifest::load(&args.manifest) {
        Ok(i) => i,
        Err(e) => return Ok(usage(&e)),
    };
    run_items(items, &args.manifest, args.flags)
}

/// Runs `imgport packer`.
pub fn run_packer(args: PackerArgs) -> anyhow::Result<ExitCode> {
    let items = match packer::load(&args.manifest, args.last_run_only) {
        Ok(i) => i,
        Err(e) => return Ok(usage(&e)),
    };
    run_items(items, &args.manifest, args.flags)
}

fn usage(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {}", super::output::error_chain(e));
    ExitCode::from(exit::USAGE)
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    if s.is_finite() && s >= 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        anyhow::bail!("{flag} must be a non-negative number of seconds")
    }
}

/// The manifest keys the command line sets.
fn flag_options(flags: &BatchFlags) -> RowOptions {
    RowOptions {
        region: flags.region.clone(),
        bucket: flags.bucket.clone(),
        key_prefix: flags.key_prefix.clone(),
        family: flags.family.clone(),
        allow_no_os: flags.allow_no_os.then_some(true),
        allow_nested: flags.allow_nested.then_some(true),
        ..RowOptions::default()
    }
}

/// Reads one text key of a row's options.
type OptionField = fn(&RowOptions) -> &Option<String>;

/// Says which rows' own values a flag overrides, so that none is overridden silently.
fn note_overrides(items: &[BatchItem], flags: &RowOptions) {
    let keys: [(&str, OptionField); 4] = [
        ("region", |o| &o.region),
        ("bucket", |o| &o.bucket),
        ("key-prefix", |o| &o.key_prefix),
        ("family", |o| &o.family),
    ];
    for (name, get) in keys {
        let Some(flag) = get(flags) else { continue };
        let rows: Vec<String> = items
            .iter()
            .filter(|i| get(&i.options).as_ref().is_some_and(|v| v != flag))
            .map(|i| (i.position + 1).to_string())
            .collect();
        if !rows.is_empty() {
            heprintln!(
                "note: --{name} {flag} overrides the {name} of rows {} (a flag wins over the \
                 row, which wins over [defaults])",
                rows.join(", ")
            );
        }
    }
}

fn run_items(
    items: Vec<BatchItem>,
    manifest_path: &std::path::Path,
    flags: BatchFlags,
) -> anyhow::Result<ExitCode> {
    let shard = match Shard::resolve(flags.shard.as_deref(), |k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return Ok(usage(&e)),
    };
    let cancel = cancel_on_signals()?;
    let row_flags = flag_options(&flags);
    if !flags.json {
        note_overrides(&items, &row_flags);
    }
    // Asked once for every row; each row's plan decides with its own region.
    let base_opts = PlanOptions {
        internal: flags.connect.internal_choice(),
        ..PlanOptions::default()
    };
    let base = flags
        .connect
        .settings(base_opts, OpenOptions::default(), cancel)?;
    let journal = flags.batch_journal.clone().unwrap_or_else(|| {
        let name = manifest_path
            .file_name()
            .map_or_else(|| "manifest".into(), |n| n.to_string_lossy().into_owned());
        manifest_path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(format!(".imgport-batch-{name}.jsonl"))
    });
    let in_flight = flags.in_flight.map_or_else(
        || InFlight::from_machine(base.plan.part_size),
        InFlight::Fixed,
    );
    let settings = BatchSettings {
        base,
        flags: row_flags,
        in_flight,
        max_importing: flags.max_importing,
        journal: Some(journal),
        shard,
        holder: Holder::current(),
        lease: LeaseRules {
            lease: seconds("--lease-seconds", flags.lease_seconds)?,
            renew_every: seconds("--lease-renew-seconds", flags.lease_renew_seconds)?
                .max(Duration::from_millis(100)),
        },
        wait_for_others: flags
            .wait_for_others
            .then(|| seconds("--wait-interval", flags.wait_interval))
            .transpose()?,
    };
    let mut buckets: Vec<String> = items
        .iter()
        .filter_map(|i| {
            // A sandbox bucket is made in the region of its import (`NAME:REGION`).
            let o = batch::effective_options(i, &settings.flags);
            o.bucket
                .map(|b| format!("{b}:{}", o.region.unwrap_or_default()))
        })
        .collect();
    buckets.sort();
    buckets.dedup();
    let json = flags.json;
    let report_path = flags.report.clone();
    let on_sandbox = flags.connect.sandbox;
    if flags.dry_run {
        let plan = batch_plan::plan(&items, &settings);
        if let Some(path) = &report_path {
            super::plan::write_atomic(path, &serde_json::to_vec_pretty(&plan)?)?;
        }
        if json {
            print_json(&plan)?;
        } else {
            print_plans(&plan);
        }
        return Ok(ExitCode::from(plan.exit_code()));
    }
    if flags.status {
        let rows = block_on(async move {
            let refs: Vec<&str> = buckets.iter().map(String::as_str).collect();
            let conn = Connection::open(&flags.connect, &refs).await?;
            Ok::<_, anyhow::Error>(batch::status(items, &settings, &conn).await)
        })??;
        if json {
            print_json(&rows)?;
        } else {
            print_status(&rows);
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let report = block_on(async move {
        let refs: Vec<&str> = buckets.iter().map(String::as_str).collect();
        let conn = Connection::open(&flags.connect, &refs).await?;
        // One bar for the whole batch on a terminal; the rows themselves are printed once, in
        // the summary table.
        let bar = super::progress::images(items.len() as u64);
        let progress = |r: &RowReport| {
            if let Some(bar) = &bar {
                bar.set_message(super::output::escape(&r.id).into_owned());
                bar.inc(1);
            }
        };
        let report = batch::run(items, settings, Arc::new(conn), &progress).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok::<_, anyhow::Error>(report)
    })??;
    if let Some(path) = &report_path {
        let text = serde_json::to_vec_pretty(&report)?;
        super::plan::write_atomic(path, &text)?;
    }
    if json {
        print_json(&report)?;
    } else {
        print_summary(&report);
    }
    if report.interrupted() {
        let drop = if on_sandbox {
            "remove the --sandbox-dir and the --journal directory"
        } else {
            "run `imgport upload --clean-stale --older-than 0s` with the same region, \
             endpoint and --journal flags"
        };
        eprintln!(
            "interrupted: run the same command again to resume (imported rows are skipped, \
             partial uploads resume from their journals, and this machine's claims are taken \
             back at once); to drop this machine's unfinished uploads instead, {drop}"
        );
    }
    if report.exit_code() == EXIT_IN_PROGRESS_ELSEWHERE {
        eprintln!(
            "{} rows are in progress in other processes: run again later, or with \
             --wait-for-others (exit {EXIT_IN_PROGRESS_ELSEWHERE})",
            report.in_progress_elsewhere
        );
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// One line per row of a dry run: the image it would make and where its disks would go, or
/// why it has no plan.
fn print_plans(plan: &BatchPlan) {
    let width = id_width(plan.rows.iter().map(|r| r.id.as_str()));
    for r in &plan.rows {
        let id = super::output::escape(&r.id);
        match (&r.plan, &r.error) {
            (Some(p), _) => {
                let objects: Vec<String> = p
                    .disks
                    .iter()
                    .map(|d| format!("oss://{}/{}", d.bucket, d.object_key))
                    .collect();
                println!(
                    "{id:<width$}  planned  {} in {}: {}",
                    super::output::escape(&p.image.name.value),
                    p.region,
                    super::output::escape(&objects.join(", "))
                );
            }
            (None, error) => println!(
                "{id:<width$}  no plan  exit {}: {}",
                r.exit_code,
                super::output::escape(error.as_deref().unwrap_or("no plan"))
            ),
        }
    }
}

fn print_status(rows: &[batch::RowState]) {
    let width = id_width(rows.iter().map(|r| r.id.as_str()));
    hprintln!("{:>4}  {:<width$}  {:<22}  detail", "row", "image", "state");
    for r in rows {
        hprintln!(
            "{:>4}  {:<width$}  {:<22}  {}",
            r.position + 1,
            r.id,
            r.state.name(),
            r.detail
        );
    }
}

fn parse_in_flight(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?}: a whole number of images, at least 1")),
    }
}

fn status_name(s: RowStatus) -> &'static str {
    match s {
        RowStatus::Imported => "imported",
        RowStatus::AlreadyImported => "already imported",
        RowStatus::InProgressElsewhere => "in progress elsewhere",
        RowStatus::OtherShard => "other shard",
        RowStatus::Failed => "FAILED",
    }
}

/// Width of the image column: the longest id shown, at least the header's.
fn id_width<'a>(ids: impl Iterator<Item = &'a str>) -> usize {
    ids.map(|id| super::output::escape(id).chars().count())
        .max()
        .unwrap_or(0)
        .max("image".len())
}

fn row_line(r: &RowReport, width: usize) -> String {
    let detail = match (&r.image_id, &r.error, &r.claimed_by) {
        (_, Some(e), _) => e.clone(),
        (Some(id), None, _) => id.clone(),
        (None, None, Some(by)) => format!("by {by}"),
        _ => String::new(),
    };
    format!(
        "{:>4}  {:<width$}  {:<21}  {:>7.1}s  {detail}",
        r.position + 1,
        r.id,
        status_name(r.status),
        r.seconds
    )
}

fn print_summary(report: &BatchReport) {
    let shown = || {
        report
            .rows
            .iter()
            .filter(|r| r.status != RowStatus::OtherShard)
    };
    let width = id_width(shown().map(|r| r.id.as_str()));
    println!(
        "{:>4}  {:<width$}  {:<21}  {:>8}  image id / error",
        "row", "image", "status", "time"
    );
    for r in shown() {
        hprintln!("{}", row_line(r, width));
    }
    let shard = report
        .shard
        .map(|s| format!(" (shard {}/{})", s.index, s.count))
        .unwrap_or_default();
    println!(
        "{} imported, {} already imported, {} in progress elsewhere, {} failed, {} in other shards{shard}; {:.1}s",
        report.imported,
        report.already_imported,
        report.in_progress_elsewhere,
        report.failed,
        report.other_shard,
        report.seconds
    );
    let f = &report.in_flight;
    if let Some(last) = f.changes.last() {
        println!(
            "images uploading at once: {} at the start, {} at the end (at most {}), by the \
             upload rate ({} changes, the last at {:.0} MB/s; the JSON report lists them)",
            f.start,
            f.end,
            f.max,
            f.changes.len(),
            last.rate_at_from / 1e6
        );
    }
}

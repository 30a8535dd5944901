//! `imgport batch MANIFEST` and `imgport packer --manifest packer-manifest.json`: import many
//! images, several in flight, resumable from a journal, shardable across machines
//! (`--shard I/N`, Kubernetes Indexed Jobs, Slurm job arrays), with a summary table and a JSON
//! report. Exit 0 when no row failed; otherwise the failed rows' exit code when they share
//! one (3 refused, 4 cloud, 5 CreateFailed …), else 1 — so a build hook sees why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::connect::{ConnectFlags, Connection};
use super::convert::cancel_on_signals;
use super::import::block_on;
use super::{exit, print_json};
use crate::pipeline::batch::{self, BatchReport, BatchSettings, InFlight, RowReport, RowStatus};
use crate::pipeline::manifest::{self, BatchItem, Shard};
use crate::pipeline::packer;
use crate::plan::{ImageOptions, PlanOptions};

/// Flags every batch-like command shares.
#[derive(Debug, Args)]
pub struct BatchFlags {
    /// Default region of the rows that do not set one.
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID")]
    pub region: Option<String>,
    /// Default bucket of the rows that do not set one.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Default prefix of every object key.
    #[arg(long, default_value = "imgport/")]
    pub key_prefix: String,
    /// Default image family of the rows that do not set one.
    #[arg(long)]
    pub family: Option<String>,
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
    /// Journal of finished rows (default: next to the manifest, `.imgport-batch-NAME.jsonl`).
    #[arg(long)]
    pub batch_journal: Option<PathBuf>,
    /// Seconds after which another process's claim on a row is presumed dead.
    #[arg(long, default_value_t = 12 * 3600)]
    pub claim_ttl: u64,
    /// Print the JSON report instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectFlags,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The manifest: TOML (`[[image]]` rows, `[defaults]`) or CSV (`name,files,...`).
    pub manifest: PathBuf,
    #[command(flatten)]
    pub flags: BatchFlags,
}

#[derive(Debug, Args)]
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
    eprintln!("error: {}", super::error_chain(e));
    ExitCode::from(exit::USAGE)
}

/// Who claims rows: host, process and start time, unique per run.
fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{host}/{}/{start}", std::process::id())
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
    let plan = PlanOptions {
        region: flags.region.clone().unwrap_or_default(),
        bucket: flags.bucket.clone().unwrap_or_default(),
        key_prefix: flags.key_prefix.clone(),
        output: None,
        system_disk: None,
        image: ImageOptions {
            family: flags.family.clone(),
            ..ImageOptions::default()
        },
    };
    let base = flags.connect.settings(plan, None, cancel)?;
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
        || InFlight::from_machine(base.stream.part_size),
        InFlight::Fixed,
    );
    let settings = BatchSettings {
        base,
        in_flight,
        max_importing: flags.max_importing,
        journal: Some(journal),
        shard,
        owner: owner(),
        claim_ttl: Duration::from_secs(flags.claim_ttl),
    };
    let mut buckets: Vec<String> = items
        .iter()
        .filter_map(|i| i.options.bucket.clone())
        .chain(flags.bucket.clone())
        .collect();
    buckets.sort();
    buckets.dedup();
    let json = flags.json;
    let report_path = flags.report.clone();
    let report = block_on(async move {
        let refs: Vec<&str> = buckets.iter().map(String::as_str).collect();
        let conn = Connection::open(&flags.connect, &refs).await?;
        let progress = |r: &RowReport| {
            if !json {
                eprintln!("{}", row_line(r));
            }
        };
        Ok::<_, anyhow::Error>(batch::run(items, settings, Arc::new(conn), &progress).await)
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
    Ok(ExitCode::from(report.exit_code()))
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
        RowStatus::ClaimedElsewhere => "claimed elsewhere",
        RowStatus::OtherShard => "other shard",
        RowStatus::Failed => "FAILED",
    }
}

fn row_line(r: &RowReport) -> String {
    let detail = match (&r.image_id, &r.error, &r.claimed_by) {
        (_, Some(e), _) => e.clone(),
        (Some(id), None, _) => id.clone(),
        (None, None, Some(by)) => format!("by {by}"),
        _ => String::new(),
    };
    format!(
        "{:>4}  {:<40}  {:<17}  {:>7.1}s  {detail}",
        r.position + 1,
        r.id,
        status_name(r.status),
        r.seconds
    )
}

fn print_summary(report: &BatchReport) {
    println!(
        "{:>4}  {:<40}  {:<17}  {:>8}  image / error",
        "row", "image", "status", "time"
    );
    for r in report
        .rows
        .iter()
        .filter(|r| r.status != RowStatus::OtherShard)
    {
        println!("{}", row_line(r));
    }
    let shard = report
        .shard
        .map(|s| format!(" (shard {}/{})", s.index, s.count))
        .unwrap_or_default();
    println!(
        "{} imported, {} already imported, {} claimed elsewhere, {} failed, {} in other shards{shard}; {:.1}s",
        report.imported,
        report.already_imported,
        report.claimed_elsewhere,
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

//! `imgport import FILE... --region R --bucket B`: inspect, plan, stream-convert-hash-upload
//! every disk, ImportImage, wait until `Available`, finish. `--dry-run` stops after the plan
//! (exactly `imgport plan`); `--sandbox` runs everything against the in-process emulator and
//! S3 server on 127.0.0.1, with no cloud account. `--html`/`--markdown` write the plan's
//! report (as `imgport plan` does) before anything is uploaded, with or without `--dry-run`.
//!
//! `--json` prints one object: `image_id`, `status`, `region`, `image_name`, `task_id`,
//! `client_token`, `disks` (per disk: `device_index`, `source`, `format`, and the upload
//! result: `bucket`, `key`, `size`, `sha256`, `crc64`, `parts_sent`, `parts_reused`, …),
//! `finished`, `timings` (`stage`, `seconds`), `plan` (the plan the run executed: the `plan`
//! of `imgport plan --json` for the same inputs), `sandbox` (bool) and `credentials` (where
//! they came from, never a secret).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::connect::{ConnectFlags, Connection};
use super::convert::cancel_on_signals;
use super::output::{exit, human_bytes, print_json};
use super::plan::{PlanArgs, PlanFlags};
use imgport_core::pipeline::import::{self, ImportOutcome, ImportSettings, Targets};
use imgport_credentials::CredentialSource;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Disk image files: the system disk and data disks, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub connect: ConnectFlags,
    /// Only inspect and plan; print what would happen (as `imgport plan`), upload nothing,
    /// call nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, help = super::vocab::HTML)]
    pub html: Option<PathBuf>,
    #[arg(long, help = super::vocab::MARKDOWN)]
    pub markdown: Option<PathBuf>,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    outcome: &'a ImportOutcome,
    sandbox: bool,
    credentials: &'a CredentialSource,
    /// Requests the sandbox's S3 server saw (total, failed by the fault rate) and successful
    /// uploads per part number.
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox_s3: Option<SandboxS3>,
}

#[derive(Serialize)]
struct SandboxS3 {
    requests: u64,
    injected_faults: u64,
    part_uploads: std::collections::BTreeMap<u32, u32>,
}

/// Runs a future on a fresh multi-threaded runtime (two workers: the machines are small and
/// the heavy work runs on rayon).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(f))
}

/// Runs `imgport import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        let endpoint_given = args.connect.endpoint_given().map(String::from);
        return super::plan::run(PlanArgs {
            files: args.files,
            plan: args.plan,
            run: args.connect.run,
            json: args.json,
            html: args.html,
            markdown: args.markdown,
            endpoint_given,
        });
    }
    // Asked once: the reports and the run plan with the same answer.
    let internal = args.connect.internal_choice();
    if (args.html.is_some() || args.markdown.is_some())
        && let Err(code) = super::plan::reports(
            &args.files,
            &args.plan,
            &args.connect.run,
            &internal,
            args.html.as_deref(),
            args.markdown.as_deref(),
            false,
        )?
    {
        return Ok(code);
    }
    let cancel = cancel_on_signals()?;
    let mut opts = args.plan.options();
    opts.internal = internal;
    let settings = args
        .connect
        .settings(opts, args.plan.open_options(), cancel)?;
    block_on(run_async(args, settings))?
}

async fn run_async(args: ImportArgs, settings: ImportSettings) -> anyhow::Result<ExitCode> {
    let region = settings.plan.region.clone();
    // A sandbox bucket is made in the import's region (`NAME:REGION`).
    let sandbox_bucket = format!("{}:{region}", settings.plan.bucket);
    let conn = Connection::open(&args.connect, &[sandbox_bucket.as_str()]).await?;
    // The endpoint the plan will name (the plan is made from the same options).
    let internal = settings.plan.internal.decide(&region)?.internal;
    let store = conn.store(&region, internal)?;
    let ecs = conn.ecs(&region)?;
    let ehpc = match settings.plan.ehpc_name {
        Some(_) => Some(conn.ehpc(&region)?),
        None => None,
    };
    let reporter = super::progress::reporter();
    let result = import::run(
        &args.files,
        &settings,
        Targets {
            store: &store,
            ecs: &ecs,
            ehpc: ehpc.as_ref(),
        },
        reporter.as_ref(),
    )
    .await;
    drop(reporter);
    match result {
        Ok(outcome) => {
            if args.json {
                print_json(&Output {
                    outcome: &outcome,
                    sandbox: conn.is_sandbox(),
                    credentials: &conn.credential_source,
                    sandbox_s3: conn.sandbox_stats().map(|s| SandboxS3 {
                        requests: s.requests,
                        injected_faults: s.rate_faults,
                        part_uploads: s.parts_ok,
                    }),
                })?;
            } else {
                print_human(&outcome, conn.is_sandbox());
            }
            Ok(ExitCode::from(exit::OK))
        }
        Err(e) => {
            eprintln!("error: {}", super::output::error_chain(&e));
            let code = e.exit_code();
            if code == exit::IMPORT_FAILED {
                // Nothing is deleted before Available.
                heprintln!(
                    "the uploaded objects are kept (imgport deletes nothing before an image \
                     is Available)"
                );
            }
            if code == exit::INTERRUPTED || matches!(e, import::ImportError::Upload { .. }) {
                // The upload journal keeps the work: say how to go on, and how to drop it.
                heprintln!("resume: {}", super::command_line::resume_command());
                if let import::ImportError::Upload { target, .. } = &e
                    && !conn.is_sandbox()
                {
                    let q = super::command_line::shell_quote;
                    let endpoint = args
                        .connect
                        .oss_endpoint
                        .as_deref()
                        .map_or(String::new(), |e| format!(" --oss-endpoint {}", q(e)));
                    heprintln!(
                        "drop:   imgport upload --abort --bucket {} --key {} --region {}{endpoint}",
                        q(&target.bucket),
                        q(&target.key),
                        q(&region)
                    );
                }
            }
            Ok(ExitCode::from(code))
        }
    }
}

/// Human summary of one import.
pub fn print_human(o: &ImportOutcome, sandbox: bool) {
    let where_ = if sandbox { " (sandbox)" } else { "" };
    hprintln!(
        "image {} ({}) is {} in {}{where_}",
        o.image_id,
        o.image_name,
        o.status,
        o.region
    );
    for d in &o.disks {
        let reuse = if d.upload.already_present {
            ", already uploaded".to_string()
        } else if d.upload.parts_reused > 0 {
            format!(", {} parts resumed", d.upload.parts_reused)
        } else {
            String::new()
        };
        hprintln!(
            "  disk {}: {} -> oss://{}/{} ({}, {}, sha256 {}{reuse})",
            d.device_index,
            d.source.display(),
            d.upload.bucket,
            d.upload.key,
            d.format,
            human_bytes(d.upload.size),
            d.upload.sha256
        );
    }
    if o.plan.delete_objects && !o.disks.is_empty() {
        hprintln!(
            "  objects: {}",
            if o.objects_deleted {
                "deleted, as planned (--delete-objects)"
            } else {
                "NOT all deleted: the warning above names each one left"
            }
        );
    }
    let stages: Vec<String> = o
        .timings
        .iter()
        .map(|t| format!("{} {:.1}s", t.stage, t.seconds))
        .collect();
    hprintln!("  timings: {}", stages.join(", "));
}

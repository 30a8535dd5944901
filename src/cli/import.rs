//! `imgport import FILE... --region R --bucket B`: inspect, plan, stream-convert-hash-upload
//! every disk, ImportImage, wait until `Available`, finish. `--dry-run` stops after the plan
//! (exactly `imgport plan`); `--sandbox` runs everything against the in-process emulator and
//! S3 server on 127.0.0.1, with no cloud account.
//!
//! `--json` prints one object: `image_id`, `status`, `region`, `image_name`, `task_id`,
//! `client_token`, `disks` (per disk: `device_index`, `source`, `format`, and the upload
//! result: `bucket`, `key`, `size`, `sha256`, `crc64`, `parts_sent`, `parts_reused`, …),
//! `finished`, `timings` (`stage`, `seconds`), `sandbox` (bool) and `credentials` (where they
//! came from, never a secret).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::convert::{cancel_on_signals, parse_size};
use super::plan::{PlanArgs, PlanFlags};
use super::{exit, human_bytes, print_json};
use crate::cloud::aliyun::client::EcsClient;
use crate::cloud::aliyun::credentials::{ChainOptions, CredentialSource, Credentials};
use crate::cloud::aliyun::poll::WaitOptions;
use crate::cloud::aliyun::rpc::ClientConfig;
use crate::pipeline::import::{self, ImportOutcome, ImportSettings, Targets};
use crate::pipeline::sandbox::{DEFAULT_IMPORT_TIME, Sandbox};
use crate::secret::Secret;
use crate::store::{S3Store, StoreConfig, UploadOptions, journal};
use crate::transfer::stream::StreamOptions;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Disk image files: the system disk and data disks, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Only inspect and plan; print what would happen (as `imgport plan`), upload nothing,
    /// call nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: also write the report as one self-contained HTML file.
    #[arg(long, requires = "dry_run")]
    pub html: Option<PathBuf>,
    /// Run against the embedded emulator and S3 server on 127.0.0.1 (no cloud account).
    #[arg(long, conflicts_with_all = ["ecs_endpoint", "oss_endpoint"])]
    pub sandbox: bool,
    /// Keep the sandbox's objects and state in this directory (default: a temporary one).
    #[arg(long, requires = "sandbox")]
    pub sandbox_dir: Option<PathBuf>,
    /// Seconds a sandbox import takes from Creating to Available.
    #[arg(long, requires = "sandbox", default_value_t = DEFAULT_IMPORT_TIME.as_secs_f64())]
    pub sandbox_import_seconds: f64,
    /// ECS endpoint instead of ecs.REGION.aliyuncs.com (`http://` for a local emulator).
    #[arg(long)]
    pub ecs_endpoint: Option<String>,
    /// OSS/S3 endpoint instead of https://oss-REGION.aliyuncs.com.
    #[arg(long)]
    pub oss_endpoint: Option<String>,
    /// Use OSS's internal (VPC) endpoint.
    #[arg(long)]
    pub internal: bool,
    /// Path-style S3 addressing (for S3-compatible servers on an IP address).
    #[arg(long)]
    pub path_style: bool,
    /// Part size, e.g. 64M (default: 32 MiB, or larger to stay within 10000 parts).
    #[arg(long, value_parser = parse_size)]
    pub part_size: Option<u64>,
    /// Parts in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Directory of resume journals (default: ~/.cache/imgport/uploads).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Seconds between two polls of the importing image.
    #[arg(long, default_value_t = 15.0)]
    pub poll_interval: f64,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 7200.0)]
    pub timeout: f64,
    /// AccessKey ID (else ALIBABA_CLOUD_ACCESS_KEY_ID, ~/.aliyun/config.json, ECS RAM role).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// AccessKey secret (prefer the environment: flags are visible to other local users).
    #[arg(long, hide_env_values = true)]
    pub access_key_secret: Option<String>,
    /// STS security token.
    #[arg(long, hide_env_values = true)]
    pub security_token: Option<String>,
    /// Profile of ~/.aliyun/config.json.
    #[arg(long)]
    pub profile: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    outcome: &'a ImportOutcome,
    sandbox: bool,
    credentials: &'a CredentialSource,
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    if s.is_finite() && s >= 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        anyhow::bail!("{what} must be a non-negative number of seconds")
    }
}

/// Runs `imgport import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        return super::plan::run(PlanArgs {
            files: args.files,
            plan: args.plan,
            json: args.json,
            html: args.html,
            markdown: None,
        });
    }
    let cancel = cancel_on_signals()?;
    let settings = ImportSettings {
        declared: args.plan.declared_format.map(Into::into),
        plan: args.plan.options(),
        stream: StreamOptions {
            part_size: args.part_size.unwrap_or(0),
            ..StreamOptions::default()
        },
        upload: UploadOptions {
            concurrency: args.concurrency.max(1),
            journal_dir: Some(args.journal.clone().unwrap_or_else(journal::default_dir)),
            ..UploadOptions::default()
        },
        wait: WaitOptions {
            interval: seconds("--poll-interval", args.poll_interval)?,
            timeout: seconds("--timeout", args.timeout)?,
            ..WaitOptions::default()
        },
        cancel: Some(cancel),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, settings))
}

async fn run_async(args: ImportArgs, mut settings: ImportSettings) -> anyhow::Result<ExitCode> {
    let region = settings.plan.region.clone();
    // The sandbox lives as long as this function; its directory too unless one was given.
    let mut _sandbox_tmp = None;
    let sandbox = if args.sandbox {
        let dir = match &args.sandbox_dir {
            Some(d) => d.clone(),
            None => {
                let t = tempfile::tempdir().context("creating the sandbox directory")?;
                let p = t.path().to_path_buf();
                _sandbox_tmp = Some(t);
                p
            }
        };
        let import_time = seconds("--sandbox-import-seconds", args.sandbox_import_seconds)?;
        let sandbox = Sandbox::start(&dir, &settings.plan.bucket, import_time)
            .await
            .context("starting the sandbox")?;
        // The emulator finishes in seconds: poll it often.
        settings.wait.interval = settings.wait.interval.min(Duration::from_millis(500));
        Some(sandbox)
    } else {
        None
    };

    let (credentials, source): (Credentials, CredentialSource) = match &sandbox {
        Some(s) => (s.credentials(), CredentialSource::Flags),
        None => {
            let chain = ChainOptions {
                access_key_id: args.access_key_id.clone(),
                access_key_secret: args.access_key_secret.clone().map(Secret::new),
                security_token: args.security_token.clone().map(Secret::new),
                profile: args.profile.clone(),
                allow_aws_env: false,
            };
            match crate::cloud::aliyun::credentials::resolve(&chain).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {}", super::error_chain(&e));
                    return Ok(ExitCode::from(exit::USAGE));
                }
            }
        }
    };

    let store_config = match (&sandbox, &args.oss_endpoint) {
        (Some(s), _) => StoreConfig::custom(&region, &s.s3_endpoint, true),
        (None, Some(e)) => StoreConfig::custom(&region, e, args.path_style),
        (None, None) => StoreConfig::oss(&region, args.internal),
    };
    let store_config = match store_config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", super::error_chain(&e));
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    let store = S3Store::new(&store_config, &credentials);
    let mut ecs_config = ClientConfig::new(region.clone());
    ecs_config.endpoint = match &sandbox {
        Some(s) => Some(s.ecs_endpoint.clone()),
        None => args.ecs_endpoint.clone(),
    };
    let ecs = EcsClient::new(ecs_config, credentials).context("building the ECS client")?;

    let reporter = super::progress::reporter();
    let result = import::run(
        &args.files,
        &settings,
        Targets {
            store: &store,
            ecs: &ecs,
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
                    sandbox: sandbox.is_some(),
                    credentials: &source,
                })?;
            } else {
                print_human(&outcome, sandbox.is_some());
            }
            Ok(ExitCode::from(exit::OK))
        }
        Err(e) => {
            eprintln!("error: {}", super::error_chain(&e));
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

fn print_human(o: &ImportOutcome, sandbox: bool) {
    let where_ = if sandbox { " (sandbox)" } else { "" };
    println!(
        "image {} ({}) is {} in {}{where_}",
        o.image_id, o.image_name, o.status, o.region
    );
    for d in &o.disks {
        let reuse = if d.upload.already_present {
            ", already uploaded".to_string()
        } else if d.upload.parts_reused > 0 {
            format!(", {} parts resumed", d.upload.parts_reused)
        } else {
            String::new()
        };
        println!(
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
    let stages: Vec<String> = o
        .timings
        .iter()
        .map(|t| format!("{} {:.1}s", t.stage, t.seconds))
        .collect();
    println!("  timings: {}", stages.join(", "));
}

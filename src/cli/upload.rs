//! `imgport upload SRC --bucket B --key K`: upload a file as it is, or converted on the fly
//! (`--to raw|vhd|vhd-fixed|qcow2`, no temporary file), to OSS or any S3-compatible server by
//! multipart; resumable from a journal; verified after Complete. `--abort` removes a stale
//! unfinished upload.
//!
//! `--json` prints one object: `bucket`, `key`, `endpoint`, `credentials` (where they came
//! from: `{"kind":"flags"|"environment"|"profile"|"ecs_ram_role"|"aws_environment",
//! "name":…}`, never a secret), `size`, `sha256`, `crc64` (decimal string), `server_crc64`,
//! `etag`, `multipart_etag`, `part_size`, `parts`, `parts_sent`, `parts_reused`, `retries`,
//! `already_present`, `upload_id`, `journal`; with `--abort`: `aborted` (the upload id or null).
//! Exit codes: 0 done, 1 failed, 2 usage, 3 source refused, 4 storage service error,
//! 130 interrupted (the journal keeps the upload resumable).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::convert::{ToArg, cancel_on_signals, open_source, parse_size};
use super::{exit, human_bytes, print_json};
use crate::cloud::aliyun::credentials::{ChainOptions, CredentialSource};
use crate::secret::Secret;
use crate::store::multipart::{UploadOptions, UploadOutcome};
use crate::store::{ObjectTarget, S3Store, StoreConfig, StoreError, oss};
use crate::transfer::PartSource;
use crate::transfer::file::FileStream;
use crate::transfer::stream::{LayoutStream, StreamOptions};

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// File to upload (as it is, or the image to convert with --to).
    #[arg(required_unless_present = "abort")]
    pub src: Option<PathBuf>,
    /// Bucket.
    #[arg(long)]
    pub bucket: String,
    /// Object key.
    #[arg(long)]
    pub key: String,
    /// Region: the OSS endpoint is oss-REGION.aliyuncs.com (HTTPS) unless --endpoint is given.
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID", default_value = "cn-hangzhou")]
    pub region: String,
    /// Use OSS's internal (VPC) endpoint oss-REGION-internal.aliyuncs.com.
    #[arg(long)]
    pub internal: bool,
    /// Endpoint URL instead of OSS's: a custom domain, or any S3-compatible server.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Path-style addressing (endpoint/bucket/key), for S3-compatible servers on an IP
    /// address; OSS needs the default virtual-hosted style.
    #[arg(long)]
    pub path_style: bool,
    /// Convert on the fly to this format (default: upload the file as it is).
    #[arg(long, value_enum)]
    pub to: Option<ToArg>,
    /// Part size, e.g. 64M (default: 5 MiB, or larger to stay within 10000 parts; OSS
    /// accepts 100 KiB to 5 GiB).
    #[arg(long, value_parser = parse_size)]
    pub part_size: Option<u64>,
    /// Parts in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Attempts per request before giving up (temporary errors only are retried).
    #[arg(long, default_value_t = 8)]
    pub attempts: u32,
    /// First retry backoff in milliseconds (doubles per attempt, with jitter, up to 20 s).
    #[arg(long, default_value_t = 200)]
    pub retry_base_ms: u64,
    /// Directory of resume journals (default: ~/.cache/imgport/uploads).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Upload without a journal: no resume, and a failure aborts the upload.
    #[arg(long, conflicts_with = "journal")]
    pub no_journal: bool,
    /// Abort the unfinished upload of BUCKET/KEY recorded in the journal (or --upload-id).
    #[arg(long)]
    pub abort: bool,
    /// Upload id for --abort when there is no journal.
    #[arg(long, requires = "abort")]
    pub upload_id: Option<String>,
    /// Sign each part's SHA-256 (x-amz-content-sha256); default UNSIGNED-PAYLOAD, since
    /// Content-MD5 already protects each part.
    #[arg(long)]
    pub sign_payload: bool,
    /// AccessKey ID (else ALIBABA_CLOUD_ACCESS_KEY_ID, ~/.aliyun/config.json, ECS RAM role,
    /// AWS_ACCESS_KEY_ID).
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
    endpoint: &'a str,
    credentials: &'a CredentialSource,
    #[serde(flatten)]
    outcome: &'a UploadOutcome,
}

#[derive(Serialize)]
struct AbortOutput<'a> {
    bucket: &'a str,
    key: &'a str,
    endpoint: &'a str,
    aborted: Option<String>,
}

fn store_config(args: &UploadArgs) -> Result<StoreConfig, StoreError> {
    let mut c = match &args.endpoint {
        Some(e) => StoreConfig::custom(&args.region, e, args.path_style)?,
        None => StoreConfig::oss(&args.region, args.internal)?,
    };
    c.sign_payload = args.sign_payload;
    Ok(c)
}

/// Identity of the bytes to upload: a journal made for other bytes is never resumed.
fn source_id(path: &std::path::Path, to: Option<ToArg>, part_size: u64) -> String {
    use std::os::unix::fs::MetadataExt;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let (size, mtime, ino) = std::fs::metadata(path)
        .map(|m| (m.len(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.ino()))
        .unwrap_or_default();
    format!(
        "path={};size={size};mtime_ns={mtime};ino={ino};to={};part_size={part_size}",
        abs.display(),
        to.map_or("asis".to_string(), |t| format!("{t:?}").to_lowercase())
    )
}

fn fail(e: &StoreError) -> ExitCode {
    eprintln!("error: {}", super::error_chain(e));
    ExitCode::from(e.exit_code())
}

/// Runs `imgport upload`.
pub fn run(args: UploadArgs) -> anyhow::Result<ExitCode> {
    let config = match store_config(&args).and_then(|c| {
        oss::check_bucket(&args.bucket)?;
        oss::check_key(&args.key)?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => return Ok(fail(&e)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, config))
}

async fn run_async(args: UploadArgs, config: StoreConfig) -> anyhow::Result<ExitCode> {
    let chain = ChainOptions {
        access_key_id: args.access_key_id.clone(),
        access_key_secret: args.access_key_secret.clone().map(Secret::new),
        security_token: args.security_token.clone().map(Secret::new),
        profile: args.profile.clone(),
        allow_aws_env: args.endpoint.is_some(),
    };
    let (credentials, cred_source) = match crate::store::credentials::resolve(&chain).await {
        Ok(c) => c,
        Err(e) => return Ok(fail(&StoreError::Credentials(e))),
    };
    let store = S3Store::new(&config, &credentials);
    let target = ObjectTarget {
        bucket: args.bucket.clone(),
        key: args.key.clone(),
    };
    let journal_dir = if args.no_journal {
        None
    } else {
        Some(
            args.journal
                .clone()
                .unwrap_or_else(crate::store::journal::default_dir),
        )
    };
    let cancel = cancel_on_signals()?;
    let opts = UploadOptions {
        concurrency: args.concurrency.clamp(1, 64),
        max_attempts: args.attempts.max(1),
        retry_base: Duration::from_millis(args.retry_base_ms),
        journal_dir,
        cancel: Some(cancel.clone()),
        ..UploadOptions::default()
    };
    if args.abort {
        let result = crate::store::abort(
            &store,
            &target,
            opts.journal_dir.as_deref(),
            args.upload_id.as_deref(),
            &opts,
        )
        .await;
        return match result {
            Ok(aborted) => {
                if args.json {
                    print_json(&AbortOutput {
                        bucket: &args.bucket,
                        key: &args.key,
                        endpoint: &config.endpoint,
                        aborted,
                    })?;
                } else {
                    match aborted {
                        Some(id) => println!("aborted upload {id} of {target}"),
                        None => println!("no unfinished upload of {target} is recorded"),
                    }
                }
                Ok(ExitCode::from(exit::OK))
            }
            Err(e) => Ok(fail(&e)),
        };
    }
    let Some(src) = args.src.clone() else {
        eprintln!("error: SRC is required");
        return Ok(ExitCode::from(exit::USAGE));
    };
    // Parts the stream may hold: those in flight plus two being filled ahead.
    let stream_opts = StreamOptions {
        part_size: args.part_size.unwrap_or(0),
        buffers: opts.concurrency + 2,
        cancel: Some(cancel),
        skip_sha256: false,
        skip_part_md5: false,
    };
    let source: Box<dyn PartSource> = match args.to {
        None => match FileStream::with_options(&src, &stream_opts) {
            Ok(s) => Box::new(s),
            Err(e) => return Ok(super::convert::failed(&e)),
        },
        Some(to) => {
            let opened = match open_source(&src) {
                Ok(o) => o,
                Err(code) => return Ok(code),
            };
            match LayoutStream::convert(opened.image.clone(), to.into(), &stream_opts) {
                Ok(s) => Box::new(s),
                Err(e) => return Ok(super::convert::failed(&e)),
            }
        }
    };
    if let Err(e) = oss::check_part_size(source.part_size(), source.part_count()) {
        return Ok(fail(&e));
    }
    let opts = UploadOptions {
        source_id: source_id(&src, args.to, source.part_size()),
        ..opts
    };
    let reporter = super::progress::reporter_or_log(Duration::from_secs(5));
    let outcome =
        match crate::store::upload(&store, source, &target, &opts, reporter.as_ref()).await {
            Ok(o) => o,
            Err(e) => return Ok(fail(&e)),
        };
    if args.json {
        print_json(&Output {
            endpoint: &config.endpoint,
            credentials: &cred_source,
            outcome: &outcome,
        })?;
    } else if outcome.already_present {
        println!(
            "{target}: already uploaded ({}, sha256 {}); nothing to do",
            human_bytes(outcome.size),
            outcome.sha256
        );
    } else {
        println!("{target}");
        println!("  endpoint:  {}", config.endpoint);
        println!("  size:      {}", human_bytes(outcome.size));
        println!("  sha256:    {}", outcome.sha256);
        println!("  crc64:     {}", outcome.crc64);
        println!("  etag:      {}", outcome.etag);
        println!(
            "  parts:     {} of {} ({} sent, {} reused, {} retries)",
            outcome.parts,
            human_bytes(outcome.part_size),
            outcome.parts_sent,
            outcome.parts_reused,
            outcome.retries
        );
    }
    Ok(ExitCode::from(exit::OK))
}

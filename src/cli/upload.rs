//! `imgport upload SRC --bucket B --key K`: upload a file as it is, or converted on the fly
//! (`--to raw|vhd|vhd-fixed|qcow2`, no temporary file), to OSS or any S3-compatible server by
//! multipart; resumable from a journal; verified after Complete (exit 0 only when HEAD shows
//! the object is the bytes read: size, multipart ETag, CRC-64 when sent). `--abort` removes
//! an unfinished upload; `--clean-stale [--older-than D]` aborts the uploads of journals left
//! untouched for D (default 7d) and removes them. A finished upload's journal is removed; a
//! re-run knows the object from its digest record.
//!
//! An upload to OSS first runs the import's bucket checks (docs/CLOUD-API.md §OSS; exit 2);
//! elsewhere only `--create-bucket` asks, without the region.
//!
//! On an interrupt or a failure with a journal, stderr says how to resume (the same command,
//! secrets left out) and how to drop the upload (`imgport upload --abort …`); without a
//! journal the upload is aborted.
//!
//! `--json` prints one object: `bucket`, `key`, `endpoint`, `credentials` (where they came
//! from: `{"kind":"flags"|"environment"|"profile"|"ecs_ram_role"|"aws_environment",
//! "name":…}`, never a secret), `size`, `sha256`, `crc64` (decimal string), `server_crc64`,
//! `etag`, `multipart_etag`, `part_size`, `parts`, `parts_sent`, `parts_reused`, `retries`,
//! `already_present`, `upload_id`, `journal` (null once removed); with `--abort`: `aborted`
//! (the first upload id or null) and `aborted_ids`; with `--clean-stale`: `cleaned` (per
//! journal: `journal`, `object`, `aborted`, `kept`, `removed`).
//! Exit codes: 0 done, 1 failed, 2 usage, 3 source refused, 4 storage service error,
//! 130 interrupted (the journal keeps the upload resumable).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::command_line::{resume_command, shell_quote};
use super::convert::{ToArg, cancel_on_signals, open_source_with};
use super::credentials::CredentialFlags;
use super::output::{exit, human_bytes, print_json};
use imgport_core::plan::{PartSize, Parts};
use imgport_credentials::CredentialSource;
use imgport_image::{ImageFile, OpenOptions};
use imgport_store::multipart::{UploadOptions, UploadOutcome};
use imgport_store::{ObjectStore, ObjectTarget, S3Store, StoreConfig, StoreError, oss};
use imgport_transfer::PartSource;
use imgport_transfer::file::FileStream;
use imgport_transfer::stream::{LayoutStream, StreamOptions};

/// Most parts `imgport upload` writes at once: its part buffers are this many and two filled
/// ahead (the memory it took when 32 parts in flight held theirs until their answers).
const WRITING_MAX: usize = 32;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// File to upload (as it is, or the image to convert with --to).
    #[arg(required_unless_present_any = ["abort", "clean_stale"])]
    pub src: Option<PathBuf>,
    #[arg(long, required_unless_present = "clean_stale", help = super::vocab::BUCKET)]
    pub bucket: Option<String>,
    /// Object key.
    #[arg(long, required_unless_present = "clean_stale")]
    pub key: Option<String>,
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID", help = super::vocab::REGION, value_parser = super::vocab::region)]
    pub region: String,
    /// Use OSS's internal (VPC) endpoint of the region. Default: used when the ECS instance
    /// metadata service (asked once, within 300 ms) says this machine is an instance in
    /// --region.
    #[arg(long)]
    pub internal: bool,
    /// Use OSS's public endpoint, without asking the instance metadata service.
    #[arg(long, conflicts_with = "internal")]
    pub no_internal: bool,
    // The old spelling `--endpoint` stays as a hidden alias.
    #[arg(long = "oss-endpoint", alias = "endpoint", env = "IMGPORT_OSS_ENDPOINT", help = super::vocab::OSS_ENDPOINT)]
    pub endpoint: Option<String>,
    /// Path-style addressing (endpoint/bucket/key), for S3-compatible servers on an IP
    /// address; OSS needs the default virtual-hosted style.
    #[arg(long)]
    pub path_style: bool,
    /// Convert on the fly to this format (default: upload the file as it is).
    #[arg(long, value_parser = super::values::OutputParser::<ToArg>::new())]
    pub to: Option<ToArg>,
    /// With --to: convert an image whose guest data starts with another image format's header
    /// (finding nested.*) as it is; without it such a source is refused (exit 3).
    #[arg(long, requires = "to")]
    pub allow_nested: bool,
    #[arg(long, help = super::vocab::PART_SIZE, value_parser = super::values::part_size)]
    pub part_size: Option<PartSize>,
    #[arg(long, help = super::vocab::CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,
    /// Attempts per request before giving up (temporary errors only are retried).
    #[arg(long, default_value_t = 8)]
    pub attempts: u32,
    /// First retry backoff in milliseconds (doubles per attempt, with jitter, up to 20 s).
    #[arg(long, default_value_t = 200)]
    pub retry_base_ms: u64,
    #[arg(long, help = super::vocab::JOURNAL)]
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
    /// Abort the multipart uploads of the journals (of this endpoint and account) untouched
    /// for --older-than, and remove those journals.
    #[arg(long, conflicts_with_all = ["abort", "src", "no_journal"])]
    pub clean_stale: bool,
    /// Age from which --clean-stale takes a journal: a number with s, m, h or d (e.g. 12h).
    #[arg(long, requires = "clean_stale", default_value = "7d", value_parser = parse_age)]
    pub older_than: Duration,
    /// Send parts with x-amz-content-sha256: UNSIGNED-PAYLOAD instead of their SHA-256 (computed
    /// while each part is produced): for S3 servers only, OSS refuses it on PUT.
    #[arg(long)]
    pub unsigned_payload: bool,
    /// Create a missing bucket in --region (CreateBucket) before the upload. On OSS a
    /// missing bucket, or one of another region, is otherwise refused before any byte is sent.
    #[arg(long)]
    pub create_bucket: bool,
    /// As whom the store is called (for a plain S3 `--oss-endpoint`, the AWS variables last).
    #[command(flatten)]
    pub credentials: CredentialFlags,
    #[arg(long, help = super::vocab::JSON)]
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
    aborted: Option<&'a String>,
    aborted_ids: &'a [String],
}

#[derive(Serialize)]
struct CleanOutput<'a> {
    endpoint: &'a str,
    cleaned: &'a [imgport_store::Cleaned],
}

/// `30s`, `15m`, `12h`, `7d` (a bare number is seconds).
fn parse_age(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Why an upload to OSS must name the bucket's region.
const UPLOAD_REGION_RULE: &str = "OSS serves a bucket only at the endpoint of its own region";

/// `imgport upload --abort` for `target` with this run's endpoint flags.
fn abort_command(args: &UploadArgs, target: &ObjectTarget) -> String {
    let mut cmd = vec![
        "imgport upload --abort --bucket".to_string(),
        shell_quote(&target.bucket),
        "--key".into(),
        shell_quote(&target.key),
        "--region".into(),
        shell_quote(&args.region),
    ];
    if let Some(e) = &args.endpoint {
        cmd.extend(["--oss-endpoint".into(), shell_quote(e)]);
    }
    if args.path_style {
        cmd.push("--path-style".into());
    }
    if args.internal {
        cmd.push("--internal".into());
    }
    if args.no_internal {
        cmd.push("--no-internal".into());
    }
    if let Some(j) = &args.journal {
        cmd.extend(["--journal".into(), shell_quote(&j.display().to_string())]);
    }
    cmd.join(" ")
}

fn store_config(args: &UploadArgs) -> Result<StoreConfig, StoreError> {
    let mut c = match &args.endpoint {
        Some(e) => StoreConfig::custom(&args.region, e, args.path_style)?,
        None => {
            let choice = super::plan::internal_choice(None, args.internal, args.no_internal);
            let endpoint = choice.decide(&args.region)?;
            StoreConfig::oss(&args.region, endpoint.internal)?
        }
    };
    c.sign_payload = !args.unsigned_payload;
    Ok(c)
}

/// Identity of the bytes to upload: a journal made for other bytes is never resumed.
fn source_id(path: &std::path::Path, to: Option<ToArg>, part_size: u64) -> String {
    format!(
        "{};to={};part_size={part_size}",
        imgport_store::journal::file_identity(path),
        to.map_or("asis".to_string(), |t| format!("{t:?}").to_lowercase())
    )
}

fn fail(e: &StoreError) -> ExitCode {
    eprintln!("error: {}", super::output::error_chain(e));
    ExitCode::from(e.exit_code())
}

/// Runs `imgport upload`.
pub fn run(args: UploadArgs) -> anyhow::Result<ExitCode> {
    let config = match store_config(&args).and_then(|c| {
        if let Some(b) = &args.bucket {
            oss::check_bucket(b)?;
        }
        if let Some(k) = &args.key {
            oss::check_key(k)?;
        }
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

/// Opens the bytes to upload: the file as it is, or its conversion.
/// The stream of `src` (converted `to` a format, or as it is), cut in the parts
/// [`Parts::for_object_from`] gives for its size and `part_size` (S3's 5 MiB by default):
/// checked before any buffer exists.
fn open_stream(
    src: &std::path::Path,
    to: Option<ToArg>,
    open: &OpenOptions,
    part_size: Option<PartSize>,
    stream_opts: &StreamOptions,
    member: &Mutex<Option<Arc<ImageFile>>>,
) -> Result<Box<dyn PartSource>, ExitCode> {
    let (image, layout) = match to {
        None => FileStream::plan(src).map_err(|e| super::convert::failed(&e))?,
        Some(to) => {
            let opened = open_source_with(src, open)?;
            let layout = imgport_transfer::layout::Layout::plan(opened.image.as_ref(), to.into())
                .map_err(|e| {
                super::convert::failed(&imgport_transfer::TransferError::from(e))
            })?;
            // A disk of an OVA/OVF package: its manifest digest is taken from the bytes this
            // pass reads (those it skips are hashed after).
            if opened.file.has_digest() {
                opened.file.track_digest();
                *member.lock().unwrap_or_else(|p| p.into_inner()) = Some(opened.file.clone());
            }
            (opened.image, layout)
        }
    };
    let parts = Parts::for_object_from(
        imgport_transfer::stream::HASHED_PART_SIZE,
        part_size,
        layout.size,
    )
    .map_err(|e| {
        eprintln!("error: {}: {e}", src.display());
        ExitCode::from(exit::USAGE)
    })?;
    let opts = StreamOptions {
        part_size: Some(parts.part_size.non_zero()),
        ..stream_opts.clone()
    };
    let stream: Result<Box<dyn PartSource>, _> = match to {
        None => FileStream::from_plan(image, layout, &opts).map(|s| Box::new(s) as _),
        Some(_) => LayoutStream::new(layout, image, &opts).map(|s| Box::new(s) as _),
    };
    stream.map_err(|e| super::convert::failed(&e))
}

async fn run_async(args: UploadArgs, config: StoreConfig) -> anyhow::Result<ExitCode> {
    let (credentials, cred_source) = match args
        .credentials
        .resolve_provider(args.endpoint.is_some())
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(fail(&StoreError::Credentials(e))),
    };
    let store = S3Store::with_provider(&config, credentials);
    let journal_dir = if args.no_journal {
        None
    } else {
        Some(
            args.journal
                .clone()
                .unwrap_or_else(imgport_store::journal::default_dir),
        )
    };
    let cancel = cancel_on_signals()?;
    let opts = UploadOptions {
        concurrency: args
            .concurrency
            .map_or(imgport_core::plan::DEFAULT_PARTS_IN_FLIGHT, usize::from),
        max_attempts: args.attempts.max(1),
        retry_base: Duration::from_millis(args.retry_base_ms),
        journal_dir,
        cancel: Some(cancel.clone()),
        ..UploadOptions::default()
    };
    if args.clean_stale {
        let dir = opts.journal_dir.clone().unwrap_or_default();
        return match imgport_store::clean_stale(&store, &dir, args.older_than, &opts).await {
            Ok(cleaned) => {
                if args.json {
                    print_json(&CleanOutput {
                        endpoint: &config.endpoint,
                        cleaned: &cleaned,
                    })?;
                } else {
                    for c in &cleaned {
                        let what = c.object.as_deref().unwrap_or("(unreadable journal)");
                        for id in &c.aborted {
                            hprintln!("aborted upload {id} of {what}");
                        }
                        for id in &c.kept {
                            hprintln!(
                                "upload {id} of {what}: not aborted (another destination, or \
                                 an unreadable journal); journal {}",
                                if c.removed { "removed" } else { "kept" }
                            );
                        }
                    }
                    println!("{} stale journal(s) handled", cleaned.len());
                }
                Ok(ExitCode::from(exit::OK))
            }
            Err(e) => Ok(fail(&e)),
        };
    }
    let (Some(bucket), Some(key)) = (args.bucket.clone(), args.key.clone()) else {
        eprintln!("error: --bucket and --key are required");
        return Ok(ExitCode::from(exit::USAGE));
    };
    let target = ObjectTarget { bucket, key };
    if args.abort {
        let result = imgport_store::abort(
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
                        bucket: &target.bucket,
                        key: &target.key,
                        endpoint: &config.endpoint,
                        aborted: aborted.first(),
                        aborted_ids: &aborted,
                    })?;
                } else if aborted.is_empty() {
                    hprintln!("no unfinished upload of {target} is recorded");
                } else {
                    for id in aborted {
                        hprintln!("aborted upload {id} of {target}");
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
    // The import's bucket check. Elsewhere than OSS not the region: an S3 server names its
    // regions its own way (empty for its default); --region there only signs.
    let on_oss = config.is_oss();
    if on_oss || args.create_bucket {
        let region = on_oss.then_some((args.region.as_str(), UPLOAD_REGION_RULE));
        let checked = imgport_core::pipeline::bucket::check_bucket(
            &store,
            &target.bucket,
            &args.region,
            region,
            args.create_bucket,
        )
        .await;
        if let Err(e) = checked {
            eprintln!("error: {}", super::output::error_chain(&e));
            return Ok(ExitCode::from(e.exit_code()));
        }
    }
    // Parts the stream may hold: those being written (a part in flight holds its buffer only
    // until its request has written it) plus two being filled ahead (the part size is set per
    // object by `open_stream`).
    let stream_opts = StreamOptions {
        buffers: opts.concurrency.min(WRITING_MAX) + 2,
        cancel: Some(cancel),
        ..StreamOptions::upload(!args.unsigned_payload)
    };
    let reporter = super::progress::reporter_or_log(Duration::from_secs(5));
    let open = OpenOptions {
        allow_nested: args.allow_nested,
        ..OpenOptions::default()
    };
    let member = Mutex::new(None);
    let reopen = || {
        let source = open_stream(&src, args.to, &open, args.part_size, &stream_opts, &member)?;
        let id = source_id(&src, args.to, source.part_size());
        Ok((source, id))
    };
    let result =
        imgport_store::upload_reopening(&store, reopen, &target, &opts, reporter.as_ref()).await;
    let outcome = match result {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            let code = fail(&e);
            explain_state(&args, &target, &store, &opts, &e);
            return Ok(code);
        }
        Err(code) => return Ok(code),
    };
    // A disk of an OVA/OVF package: its manifest digest, from the bytes the upload read (or,
    // sent as is without `--to`, from the member read again).
    let tracked = member.lock().unwrap_or_else(|p| p.into_inner()).take();
    let checked = match tracked {
        Some(file) => file.verify_digest(),
        None => imgport_image::ova::open_bytes(&src).and_then(|f| f.verify_digest()),
    };
    if let Err(e) = checked {
        let object = match store.delete(&target).await {
            Ok(()) => format!("the object {target} uploaded from these bytes was deleted"),
            Err(d) => format!(
                "the object {target} was uploaded from these bytes and must not be used (deleting it failed: {})",
                super::output::error_chain(&d)
            ),
        };
        eprintln!("error: {}; {object}", super::output::error_chain(&e));
        return Ok(ExitCode::from(exit::FAILED));
    }
    if args.json {
        print_json(&Output {
            endpoint: &config.endpoint,
            credentials: &cred_source,
            outcome: &outcome,
        })?;
    } else if outcome.already_present {
        hprintln!(
            "{target}: already uploaded ({}, sha256 {}); nothing to do",
            human_bytes(outcome.size),
            outcome.sha256
        );
    } else {
        hprintln!("{target}");
        hprintln!("  endpoint:  {}", config.endpoint);
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

/// After a failed or interrupted upload, says on stderr what state it left: resumable (the
/// command to resume and the one to drop it) or aborted.
fn explain_state(
    args: &UploadArgs,
    target: &ObjectTarget,
    store: &S3Store,
    opts: &UploadOptions,
    e: &StoreError,
) {
    use imgport_store::ObjectStore;
    let journal = opts
        .journal_dir
        .as_ref()
        .map(|d| imgport_store::journal::path_for(d, &store.destination(&target.bucket), target));
    match journal {
        Some(j) if j.exists() => {
            heprintln!("the upload stays resumable (journal {}):", j.display());
            heprintln!("  resume: {}", resume_command());
            heprintln!("  drop:   {}", abort_command(args, target));
        }
        Some(_) => {}
        None if !matches!(e, StoreError::Config(_) | StoreError::Credentials(_)) => {
            eprintln!("no journal (--no-journal): the multipart upload, if started, was aborted")
        }
        None => {}
    }
}

//! `imgport image create` (ECS CreateImage from a snapshot, an instance or several snapshots,
//! then wait for Available) and `imgport image modify` (ModifyImageAttribute, the same typed
//! request the import pipeline finishes images with).
//!
//! `--json` prints one object. create: `image_id`, `region`, `status` (`Available`, or
//! `Creating` with `--no-wait`), `source` (`{"snapshot":ID}` | `{"instance":ID}` |
//! `{"disks":[{snapshot_id,size_gib,device}]}`), `waited_seconds`. modify: `image_id`,
//! `region`, `dry_run`, `request_id`, `changed` (the wire parameters sent, ImageId and RegionId
//! left out), and the image as DescribeImages shows it afterwards (`image`, absent on a dry
//! run). Errors: `{"error":{code,message,request_id,http_status}}` for service errors.
//! Exit codes: 0 ok, 2 usage or a rule broken locally (nothing sent), 4 cloud/API error,
//! 5 the image ended in CreateFailed/UnAvailable, 130 interrupted.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::aliyun::{AliyunFlags, fail_rpc};
use super::output::{exit, print_json};
use super::plan::{architecture, boot_mode, imds, license_type, nvme, platform};
use super::vocab;
use imgport_cloud::aliyun::client::EcsClient;
use imgport_cloud::aliyun::ecs::{
    Action, CreateImageRequest, ImageSource, ModifyImageAttributeRequest, SnapshotDisk,
};
use imgport_cloud::aliyun::poll::WaitOptions;
use imgport_cloud::aliyun::rpc::RpcError;
use imgport_cloud::aliyun::types::{
    Architecture, BootMode, ImdsSupport, LicenseType, ModifiableStatus, NvmeSupport, Platform,
};

/// `imgport image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// CreateImage from a system-disk snapshot, an instance, or several snapshots; waits
    /// until the image is Available.
    Create(CreateArgs),
    /// ModifyImageAttribute: rename, describe, set the family, boot mode, license, status
    /// (Deprecated/Available) or features of a custom image.
    Modify(ModifyArgs),
    /// CancelTask: stop an import left running (an interrupted `import` or `batch` prints
    /// its task id); the image it was making is removed by the service.
    CancelImport(CancelImportArgs),
}

/// One `--disk`: `snapshot=ID,size=GIB,device=/dev/xvdX`, every key optional.
fn disk(s: &str) -> Result<SnapshotDisk, String> {
    let mut d = SnapshotDisk::default();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not KEY=VALUE (keys: snapshot, size, device)"))?;
        match k {
            "snapshot" => d.snapshot_id = Some(v.to_string()),
            "size" => {
                d.size_gib = Some(
                    v.parse()
                        .map_err(|_| format!("size `{v}` is not a whole number of GiB"))?,
                );
            }
            "device" => d.device = Some(v.to_string()),
            other => {
                return Err(format!(
                    "unknown key `{other}` (keys: snapshot, size, device)"
                ));
            }
        }
    }
    Ok(d)
}

fn status(s: &str) -> Result<ModifiableStatus, String> {
    ModifiableStatus::parse(s)
        .ok_or_else(|| format!("unknown status `{s}`; one of Deprecated, Available"))
}

/// `imgport image create`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
pub struct CreateArgs {
    #[command(flatten)]
    pub cloud: AliyunFlags,
    /// Approach 1: a system-disk snapshot.
    #[arg(long, group = "source")]
    pub snapshot: Option<String>,
    /// Approach 2: a Running or Stopped instance (all its disks).
    #[arg(long, group = "source")]
    pub instance: Option<String>,
    /// Approach 3, repeatable: `snapshot=ID,size=GIB,device=/dev/xvdX` (each key optional).
    /// The first is the system disk /dev/xvda, the next data disks /dev/xvdb, /dev/xvdc …;
    /// a disk without snapshot is empty. Size 5–20000 GiB, not below the snapshot.
    #[arg(long = "disk", group = "source", value_parser = disk)]
    pub disks: Vec<SnapshotDisk>,
    /// ImageName (2–128 chars, starts with a letter).
    #[arg(long)]
    pub name: Option<String>,
    /// ImageVersion (1–40 letters and digits).
    #[arg(long)]
    pub image_version: Option<String>,
    /// Description (0–256 chars, not starting with http:// or https://).
    #[arg(long)]
    pub description: Option<String>,
    /// ImageFamily.
    #[arg(long)]
    pub family: Option<String>,
    /// Platform, e.g. "Ubuntu", "Windows Server 2022".
    #[arg(long, value_parser = platform)]
    pub platform: Option<Platform>,
    /// Architecture: i386, x86_64, arm64.
    #[arg(long, value_parser = architecture)]
    pub architecture: Option<Architecture>,
    /// BootMode: BIOS, UEFI, UEFI-Preferred.
    #[arg(long, value_parser = boot_mode)]
    pub boot_mode: Option<BootMode>,
    /// ClientToken (≤ 64 ASCII); one is made when absent, so a retry cannot create twice.
    #[arg(long)]
    pub client_token: Option<String>,
    /// Return once the image is accepted (Creating), without waiting for Available.
    #[arg(long)]
    pub no_wait: bool,
    #[arg(long, help = vocab::POLL_INTERVAL, default_value_t = vocab::POLL_INTERVAL_DEFAULT)]
    pub poll_interval: f64,
    #[arg(long, help = vocab::WAIT_TIMEOUT, default_value_t = vocab::WAIT_TIMEOUT_DEFAULT)]
    pub wait_timeout: f64,
    #[arg(long, help = vocab::JSON)]
    pub json: bool,
}

/// `imgport image modify`.
#[derive(Debug, Args)]
pub struct ModifyArgs {
    /// The custom image, e.g. m-bp1….
    pub image_id: String,
    #[command(flatten)]
    pub cloud: AliyunFlags,
    /// New ImageName (2–128 chars, starts with a letter).
    #[arg(long)]
    pub name: Option<String>,
    /// New Description (2–256 chars, not starting with http:// or https://).
    #[arg(long)]
    pub description: Option<String>,
    /// ImageFamily (same shape as a name).
    #[arg(long)]
    pub family: Option<String>,
    /// BootMode: BIOS, UEFI, UEFI-Preferred.
    #[arg(long, value_parser = boot_mode)]
    pub boot_mode: Option<BootMode>,
    /// LicenseType (only BYOL can be set).
    #[arg(long, value_parser = license_type)]
    pub license_type: Option<LicenseType>,
    /// Status: Deprecated, or Available to undo a deprecation.
    #[arg(long, value_parser = status)]
    pub status: Option<ModifiableStatus>,
    /// Features.NvmeSupport: supported or unsupported.
    #[arg(long, value_parser = nvme)]
    pub nvme_support: Option<NvmeSupport>,
    /// Features.ImdsSupport: only v2 (there is no way back to v1).
    #[arg(long, value_parser = imds)]
    pub imds_support: Option<ImdsSupport>,
    /// Only let the service check the request (DryRun).
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, help = vocab::JSON)]
    pub json: bool,
}

/// `imgport image cancel-import`.
#[derive(Debug, Args)]
pub struct CancelImportArgs {
    /// The import task, e.g. t-bp1….
    pub task_id: String,
    #[command(flatten)]
    pub cloud: AliyunFlags,
    #[arg(long, help = vocab::JSON)]
    pub json: bool,
}

/// Runs `imgport image …`.
pub fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        ImageCommand::Create(a) => runtime.block_on(create(a)),
        ImageCommand::Modify(a) => runtime.block_on(modify(a)),
        ImageCommand::CancelImport(a) => runtime.block_on(cancel_import(a)),
    }
}

fn seconds(what: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{what} must be a non-negative number of seconds"))
}

async fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    let source = if let Some(s) = &a.snapshot {
        ImageSource::Snapshot(s.clone())
    } else if let Some(i) = &a.instance {
        ImageSource::Instance(i.clone())
    } else {
        ImageSource::Disks(a.disks.clone())
    };
    let interval = seconds("poll-interval", a.poll_interval)?;
    let timeout = seconds("wait-timeout", a.wait_timeout)?;
    let mut b = CreateImageRequest::builder(a.cloud.region.clone(), source.clone());
    if let Some(v) = &a.name {
        b = b.image_name(v.clone());
    }
    if let Some(v) = &a.image_version {
        b = b.image_version(v.clone());
    }
    if let Some(v) = &a.description {
        b = b.description(v.clone());
    }
    if let Some(v) = &a.family {
        b = b.image_family(v.clone());
    }
    if let Some(v) = a.platform {
        b = b.platform(v);
    }
    if let Some(v) = a.architecture {
        b = b.architecture(v);
    }
    if let Some(v) = a.boot_mode {
        b = b.boot_mode(v);
    }
    if let Some(v) = &a.client_token {
        b = b.client_token(v.clone());
    }
    let request = match b.build() {
        Ok(r) => r,
        Err(e) => return fail_rpc(&RpcError::Invalid(e), a.json),
    };
    let client = EcsClient::new(a.cloud.config(), a.cloud.resolve_credentials().await?)?;
    let started = Instant::now();
    let created = match client.create_image(request).await {
        Ok(c) => c,
        Err(e) => return fail_rpc(&e, a.json),
    };
    let mut status = "Creating";
    if !a.no_wait {
        let reporter = super::progress::reporter();
        let options = WaitOptions {
            interval,
            timeout,
            ..WaitOptions::default()
        };
        let cancel = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if let Err(e) = client
            .wait_available(&created.image_id, "", options, reporter.as_ref(), cancel)
            .await
        {
            eprintln!("error: {}", super::output::error_chain(&e));
            if a.json {
                print_json(
                    &json!({"image_id": created.image_id, "error": {"message": e.to_string()}}),
                )?;
            }
            return Ok(ExitCode::from(e.exit_code()));
        }
        status = "Available";
    }
    let waited = started.elapsed().as_secs_f64();
    if a.json {
        print_json(&json!({
            "image_id": created.image_id,
            "region": a.cloud.region,
            "status": status,
            "source": source,
            "waited_seconds": waited,
        }))?;
    } else {
        println!("image {} is {status} ({:.1} s)", created.image_id, waited);
    }
    Ok(ExitCode::from(exit::OK))
}

async fn modify(a: ModifyArgs) -> anyhow::Result<ExitCode> {
    let mut b = ModifyImageAttributeRequest::builder(a.cloud.region.clone(), a.image_id.clone());
    if let Some(v) = &a.name {
        b = b.image_name(v.clone());
    }
    if let Some(v) = &a.description {
        b = b.description(v.clone());
    }
    if let Some(v) = &a.family {
        b = b.image_family(v.clone());
    }
    if let Some(v) = a.boot_mode {
        b = b.boot_mode(v);
    }
    if let Some(v) = a.license_type {
        b = b.license_type(v);
    }
    if let Some(v) = a.status {
        b = b.status(v);
    }
    if let Some(v) = a.nvme_support {
        b = b.nvme_support(v);
    }
    if let Some(v) = a.imds_support {
        b = b.imds_support(v);
    }
    let request = match b.dry_run(a.dry_run).build() {
        Ok(r) => r,
        Err(e) => return fail_rpc(&RpcError::Invalid(e), a.json),
    };
    let changed: serde_json::Map<String, serde_json::Value> = request
        .params()
        .into_pairs()
        .into_iter()
        .filter(|(k, _)| k != "ImageId" && k != "RegionId" && k != "DryRun")
        .map(|(k, v)| (k, v.into()))
        .collect();
    let client = EcsClient::new(a.cloud.config(), a.cloud.resolve_credentials().await?)?;
    let request_id = match client.modify_image_attribute(&request).await {
        Ok(ack) => ack.request_id,
        Err(e) if a.dry_run && e.api().is_some_and(|x| x.is_dry_run_success()) => {
            let request_id = e.api().map(|x| x.request_id.clone()).unwrap_or_default();
            if a.json {
                print_json(&json!({
                    "image_id": a.image_id, "region": a.cloud.region, "dry_run": true,
                    "request_id": request_id, "changed": changed,
                }))?;
            } else {
                println!(
                    "dry run passed: ModifyImageAttribute of {} would be accepted",
                    a.image_id
                );
            }
            return Ok(ExitCode::from(exit::OK));
        }
        Err(e) => return fail_rpc(&e, a.json),
    };
    if a.json {
        let image = match client.find_image(&a.image_id).await {
            Ok(i) => i,
            Err(e) => return fail_rpc(&e, true),
        };
        print_json(&json!({
            "image_id": a.image_id, "region": a.cloud.region, "dry_run": false,
            "request_id": request_id, "changed": changed, "image": image,
        }))?;
    } else {
        let list: Vec<String> = changed
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        println!("modified {}: {}", a.image_id, list.join(", "));
    }
    Ok(ExitCode::from(exit::OK))
}

async fn cancel_import(a: CancelImportArgs) -> anyhow::Result<ExitCode> {
    let client = EcsClient::new(a.cloud.config(), a.cloud.resolve_credentials().await?)?;
    let cancelled = match client.cancel_import(&a.task_id).await {
        Ok(c) => c,
        Err(e) => return fail_rpc(&e, a.json),
    };
    if a.json {
        print_json(&json!({
            "task_id": a.task_id, "region": a.cloud.region, "cancelled": cancelled,
        }))?;
    } else if cancelled {
        println!("cancelled import task {}", a.task_id);
    } else {
        println!(
            "import task {} cannot be cancelled now (it has finished, or the service does not \
             allow it)",
            a.task_id
        );
    }
    Ok(ExitCode::from(if cancelled {
        exit::OK
    } else {
        exit::FAILED
    }))
}

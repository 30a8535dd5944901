//! `imgport ksyun reinstall`: Kingsoft KEC (2016-03-04) ModifyInstanceImage, signed with AWS
//! Signature V4: reinstall an instance's system, or replace it with another image. Checked by
//! the rules of docs/CLOUD-API.md §KEC before the call; the password is a [`Secret`] and never
//! printed.
//!
//! Credentials: the chain of `imgport-credentials` for Kingsoft (docs/CLOUD-API.md §KEC):
//! `--access-key`/`--secret-key`, `KSYUN_ACCESS_KEY`/`KSYUN_SECRET_KEY`,
//! `KS_ACCESS_KEY_ID`/`KS_SECRET_ACCESS_KEY`, then `~/.ks/credentials` and `~/.ks/config`
//! (`--profile`, else `KS_PROFILE`, else `default`); region `--region` or `KSYUN_REGION`. `--json` prints `instance_id`, `image_id` (null
//! when the current image is reinstalled), `return`, `request_id`, `login`
//! (`password` | `keep_image_login`), `key_ids`, `user_data_bytes`. Errors:
//! `{"error":{code,message,request_id,http_status}}`. Exit codes: 0 ok, 2 usage or a rule
//! broken locally (nothing sent), 4 cloud/API error (the code is KEC's, e.g.
//! `InstanceStateNotSupported`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::json;

use super::output::{exit, print_json};
use super::values::secret;
use imgport_base::secret::Secret;
use imgport_cloud::ksyun::kec::{
    KecClient, Login, MAX_USER_DATA_BYTES, ModifyInstanceImageRequest, ResizeType,
};
use imgport_cloud::ksyun::sigv4::KsyunConfig;
use imgport_cloud::ksyun::{ENV_REGION, KsyunCredentials};
use imgport_credentials::{ChainOptions, Cloud};

/// `imgport ksyun`.
#[derive(Debug, Args)]
pub struct KsyunArgs {
    #[command(subcommand)]
    pub command: KsyunCommand,
}

/// The `ksyun` subcommands.
#[derive(Debug, Subcommand)]
pub enum KsyunCommand {
    /// ModifyInstanceImage: reinstall a Stopped instance, with its image or another one.
    Reinstall(ReinstallArgs),
}

/// `SystemDisk.ResizeType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResizeArg {
    /// Offline resize.
    Offline,
    /// Online resize.
    Online,
}

/// `imgport ksyun reinstall`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("login").required(true).multiple(false))]
pub struct ReinstallArgs {
    /// Region of the credential scope, e.g. cn-beijing-6.
    #[arg(long, env = ENV_REGION, value_parser = super::vocab::region)]
    pub region: String,
    /// Endpoint override, `host[:port]` or `http(s)://host[:port]` (default kec.api.ksyun.com).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// AccessKey ID (else KSYUN_ACCESS_KEY, KS_ACCESS_KEY_ID, ~/.ks/credentials).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (prefer KSYUN_SECRET_KEY or ~/.ks/credentials: flags show in `ps`).
    #[arg(long, value_parser = secret)]
    pub secret_key: Option<Secret>,
    /// Profile of ~/.ks/credentials or ~/.ks/config (else KS_PROFILE, else `default`).
    #[arg(long)]
    pub profile: Option<String>,
    /// The instance (UUID); it must be Stopped.
    #[arg(long)]
    pub instance: String,
    /// The new image (UUID); without it the current image is reinstalled.
    #[arg(long)]
    pub image: Option<String>,
    /// New login password: 8–32 visible characters with upper, lower case and digits.
    #[arg(long, group = "login", value_parser = secret)]
    pub password: Option<Secret>,
    /// Keep the login set in the (custom) image instead of a password.
    #[arg(long, group = "login")]
    pub keep_image_login: bool,
    /// Key pair id (UUID), repeatable, at most 10.
    #[arg(long = "key-id")]
    pub key_ids: Vec<String>,
    /// SystemDisk.DiskSize in GB.
    #[arg(long)]
    pub system_disk_size: Option<u32>,
    /// SystemDisk.DiskType.
    #[arg(long)]
    pub system_disk_type: Option<String>,
    /// SystemDisk.ResizeType.
    #[arg(long, value_enum)]
    pub resize_type: Option<ResizeArg>,
    /// File whose bytes become UserData (base64 encoded here).
    #[arg(long)]
    pub user_data_file: Option<PathBuf>,
    // The old spelling `--timeout` stays as a hidden alias.
    #[arg(long, alias = "timeout", help = super::vocab::REQUEST_TIMEOUT, default_value_t = super::vocab::REQUEST_TIMEOUT_DEFAULT)]
    pub request_timeout: u64,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
}

/// Reads at most [`MAX_USER_DATA_BYTES`] of `path`; more is an error, not a truncation.
fn read_user_data(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut data = Vec::new();
    file.take(MAX_USER_DATA_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {}", path.display()))?;
    if data.len() > MAX_USER_DATA_BYTES {
        anyhow::bail!(
            "{}: user data is larger than {MAX_USER_DATA_BYTES} bytes",
            path.display()
        );
    }
    Ok(data)
}

/// Runs `imgport ksyun …`.
pub fn run(args: KsyunArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KsyunCommand::Reinstall(a) => reinstall(a),
    }
}

fn reinstall(a: ReinstallArgs) -> anyhow::Result<ExitCode> {
    let login = match &a.password {
        Some(p) => Login::Password(p.clone()),
        None => Login::KeepImageLogin,
    };
    let mut req = ModifyInstanceImageRequest::new(a.instance.clone(), login);
    req.image_id = a.image.clone();
    req.key_ids = a.key_ids.clone();
    req.system_disk_size = a.system_disk_size;
    req.system_disk_type = a.system_disk_type.clone();
    req.resize_type = a.resize_type.map(|r| match r {
        ResizeArg::Offline => ResizeType::Offline,
        ResizeArg::Online => ResizeType::Online,
    });
    let mut user_data_bytes = 0;
    if let Some(path) = &a.user_data_file {
        match read_user_data(path) {
            Ok(data) => {
                user_data_bytes = data.len();
                req = req.user_data_bytes(&data);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(exit::USAGE));
            }
        }
    }
    let mut config = KsyunConfig::new(a.region.clone());
    config.endpoint = a.endpoint.clone();
    config.timeout = Duration::from_secs(a.request_timeout.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let chain = ChainOptions {
        cloud: Cloud::Kingsoft,
        access_key_id: a.access_key.clone(),
        access_key_secret: a.secret_key.clone(),
        profile: a.profile.clone(),
        ..ChainOptions::default()
    };
    let (found, source) = match runtime.block_on(imgport_credentials::resolve(&chain)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    if found.security_token.is_some() {
        // The KEC client signs with an AccessKey pair only.
        eprintln!(
            "error: the Kingsoft credentials found ({source:?}) carry a security token; \
             imgport signs KEC requests with an AccessKey pair only"
        );
        return Ok(ExitCode::from(exit::USAGE));
    }
    let credentials = KsyunCredentials {
        access_key_id: found.access_key_id,
        secret_access_key: found.access_key_secret,
    };
    let client = KecClient::new(config, credentials)?;
    let resp = match runtime.block_on(client.modify_instance_image(&req)) {
        Ok(r) => r,
        Err(e) => return super::aliyun::fail_rpc(&e, a.json),
    };
    let login = if a.keep_image_login {
        "keep_image_login"
    } else {
        "password"
    };
    if a.json {
        print_json(&json!({
            "instance_id": a.instance,
            "image_id": a.image,
            "return": resp.r#return,
            "request_id": resp.request_id,
            "login": login,
            "key_ids": a.key_ids,
            "user_data_bytes": user_data_bytes,
        }))?;
    } else {
        println!(
            "instance {} reinstalled with image {} (return: {})",
            a.instance,
            a.image.as_deref().unwrap_or("(current)"),
            resp.r#return
        );
    }
    Ok(ExitCode::from(if resp.r#return {
        exit::OK
    } else {
        exit::FAILED
    }))
}

//! Flags shared by every command that imports (`import`, `batch`, `packer`): where the
//! services are (or `--sandbox`), the credentials, and the transfer and polling knobs; and
//! the connection they open.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::credentials::CredentialFlags;
use super::plan::RunFlags;
use super::vocab;
use imgport_base::destination::{Destination, account_id};
use imgport_cloud::aliyun::client::EcsClient;
use imgport_cloud::aliyun::ehpc::EhpcClient;
use imgport_cloud::aliyun::poll::WaitOptions;
use imgport_cloud::aliyun::rpc::ClientConfig;
use imgport_core::pipeline::batch::Connect;
use imgport_core::pipeline::import::ImportSettings;
use imgport_core::plan::{InternalChoice, PlanOptions};
use imgport_credentials::{CredentialSource, Provider};
use imgport_image::OpenOptions;
use imgport_sim::sandbox::{DEFAULT_IMPORT_TIME, Sandbox};
use imgport_store::{S3Store, StoreConfig, UploadOptions, journal};
use imgport_transfer::stream::StreamOptions;

#[derive(Debug, Clone, Args)]
pub struct ConnectFlags {
    /// Run against the embedded emulator and S3 server on 127.0.0.1 (no cloud account).
    #[arg(long, conflicts_with_all = ["ecs_endpoint", "oss_endpoint"])]
    pub sandbox: bool,
    /// Keep the sandbox's objects and state in this directory (default: a temporary one).
    #[arg(long, requires = "sandbox")]
    pub sandbox_dir: Option<PathBuf>,
    /// Seconds a sandbox import takes from Creating to Available.
    #[arg(long, requires = "sandbox", default_value_t = DEFAULT_IMPORT_TIME.as_secs_f64())]
    pub sandbox_import_seconds: f64,
    /// Test fault: fraction (0..1) of the sandbox's requests that fail (ECS: throttling or 503;
    /// S3: 500, SlowDown or a dropped connection), to see retries at work.
    #[arg(long, requires = "sandbox", default_value_t = 0.0)]
    pub sandbox_fault_rate: f64,
    /// Test fault: the sandbox's account starts without the RAM import role, as an account
    /// that never imported (ImportImage fails until --create-role creates it).
    #[arg(long, requires = "sandbox")]
    pub sandbox_no_import_role: bool,
    /// ECS endpoint instead of ecs.REGION.aliyuncs.com (`http://` for a local emulator).
    #[arg(long, env = "IMGPORT_ECS_ENDPOINT")]
    pub ecs_endpoint: Option<String>,
    /// E-HPC Instant endpoint instead of ehpcinstant.REGION.aliyuncs.com (for --ehpc-name).
    #[arg(long, env = "IMGPORT_EHPC_ENDPOINT")]
    pub ehpc_endpoint: Option<String>,
    #[arg(long, env = "IMGPORT_OSS_ENDPOINT", help = vocab::OSS_ENDPOINT)]
    pub oss_endpoint: Option<String>,
    /// Path-style S3 addressing (for S3-compatible servers on an IP address).
    #[arg(long)]
    pub path_style: bool,
    #[arg(long, help = vocab::JOURNAL)]
    pub journal: Option<PathBuf>,
    #[arg(long, help = vocab::POLL_INTERVAL, default_value_t = vocab::POLL_INTERVAL_DEFAULT)]
    pub poll_interval: f64,
    // The old spelling `--timeout` stays as a hidden alias.
    #[arg(long, alias = "timeout", help = vocab::WAIT_TIMEOUT, default_value_t = vocab::WAIT_TIMEOUT_DEFAULT)]
    pub wait_timeout: f64,
    /// As whom the cloud is called.
    #[command(flatten)]
    pub credentials: CredentialFlags,
    #[command(flatten)]
    pub run: RunFlags,
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    if s.is_finite() && s >= 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        anyhow::bail!("{what} must be a non-negative number of seconds")
    }
}

impl ConnectFlags {
    /// The explicit object-store endpoint, named: `sandbox` or `--oss-endpoint`.
    pub fn endpoint_given(&self) -> Option<&'static str> {
        if self.sandbox {
            Some("sandbox")
        } else if self.oss_endpoint.is_some() {
            Some("--oss-endpoint")
        } else {
            None
        }
    }

    /// What decides the OSS endpoint's kind (see [`RunFlags::internal_choice`]): an explicit
    /// endpoint is not probed.
    pub fn internal_choice(&self) -> InternalChoice {
        self.run.internal_choice(self.endpoint_given())
    }

    /// The import settings these flags give, around `plan` (with these flags' decisions).
    pub fn settings(
        &self,
        mut plan: PlanOptions,
        open: OpenOptions,
        cancel: Arc<AtomicBool>,
    ) -> anyhow::Result<ImportSettings> {
        let mut wait = WaitOptions {
            interval: seconds("--poll-interval", self.poll_interval)?,
            timeout: seconds("--wait-timeout", self.wait_timeout)?,
            ..WaitOptions::default()
        };
        if self.sandbox {
            // The emulator finishes in seconds: poll it often.
            wait.interval = wait.interval.min(Duration::from_millis(500));
        }
        self.run.apply(&mut plan);
        Ok(ImportSettings {
            open,
            plan,
            // The part size and the buffers (the parts in flight the plan allows, and two
            // more to keep the producer ahead) are the plan's, per disk. Each UploadPart is
            // signed with its SHA-256, computed as the part is filled (OSS wants it on PUT).
            stream: StreamOptions::upload(true),
            upload: UploadOptions {
                journal_dir: Some(self.journal.clone().unwrap_or_else(journal::default_dir)),
                ..UploadOptions::default()
            },
            wait,
            cancel: Some(cancel),
        })
    }
}

/// Where imports go: the real services, or a sandbox running in this process.
pub struct Connection {
    flags: ConnectFlags,
    /// Renewed before they expire during a long import (STS, ECS role).
    credentials: Provider,
    /// Where the credentials came from (safe to print).
    pub credential_source: CredentialSource,
    sandbox: Option<Sandbox>,
    _sandbox_tmp: Option<tempfile::TempDir>,
}

impl Connection {
    /// Resolves credentials, or starts the sandbox (with `buckets` created) when asked. Must
    /// run inside the tokio runtime that will serve the sandbox.
    pub async fn open(flags: &ConnectFlags, buckets: &[&str]) -> anyhow::Result<Self> {
        if !flags.sandbox {
            let (credentials, credential_source) = flags
                .credentials
                .resolve_provider(false)
                .await
                .context("finding credentials")?;
            return Ok(Self {
                flags: flags.clone(),
                credentials,
                credential_source,
                sandbox: None,
                _sandbox_tmp: None,
            });
        }
        let (dir, tmp) = match &flags.sandbox_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir().context("creating the sandbox directory")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let import_time = seconds("--sandbox-import-seconds", flags.sandbox_import_seconds)?;
        if !(0.0..=1.0).contains(&flags.sandbox_fault_rate) {
            anyhow::bail!("--sandbox-fault-rate must be between 0 and 1");
        }
        let ram = imgport_sim::ram::RamConfig {
            import_role: !flags.sandbox_no_import_role,
        };
        let sandbox =
            Sandbox::start_with(&dir, buckets, import_time, flags.sandbox_fault_rate, ram)
                .await
                .context("starting the sandbox")?;
        Ok(Self {
            flags: flags.clone(),
            credentials: Provider::fixed(sandbox.credentials()),
            credential_source: CredentialSource::Sandbox,
            sandbox: Some(sandbox),
            _sandbox_tmp: tmp,
        })
    }

    /// True when running against the in-process sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }

    /// What the sandbox's S3 server saw, for `--json` reports; `None` off the sandbox.
    pub fn sandbox_stats(&self) -> Option<imgport_sim::s3::S3Stats> {
        self.sandbox.as_ref().map(|s| s.s3().stats())
    }

    /// The object store of `region`, through OSS's internal endpoint when `internal` (the
    /// plan's choice; a given endpoint or the sandbox is used as it is).
    pub fn store(&self, region: &str, internal: bool) -> anyhow::Result<S3Store> {
        let config = match (&self.sandbox, &self.flags.oss_endpoint) {
            // Kept state names the sandbox by its directory, not its random port.
            (Some(s), _) => StoreConfig::custom(region, &s.s3_endpoint, true).map(|mut c| {
                c.identity = Some(s.identity.clone());
                c
            }),
            (None, Some(e)) => StoreConfig::custom(region, e, self.flags.path_style),
            (None, None) => StoreConfig::oss(region, internal),
        }
        .context("configuring the object store")?;
        Ok(S3Store::with_provider(&config, self.credentials.clone()))
    }

    /// The E-HPC client of `region` (the sandbox's emulator serves E-HPC too).
    pub fn ehpc(&self, region: &str) -> anyhow::Result<EhpcClient> {
        let mut config = ClientConfig::new(region.to_string());
        config.endpoint = match &self.sandbox {
            Some(s) => Some(s.ecs_endpoint.clone()),
            None => self.flags.ehpc_endpoint.clone(),
        };
        EhpcClient::with_provider(config, self.credentials.clone())
            .context("building the E-HPC client")
    }

    /// The ECS client of `region`.
    pub fn ecs(&self, region: &str) -> anyhow::Result<EcsClient> {
        let mut config = ClientConfig::new(region.to_string());
        config.endpoint = match &self.sandbox {
            Some(s) => Some(s.ecs_endpoint.clone()),
            None => self.flags.ecs_endpoint.clone(),
        };
        EcsClient::with_provider(config, self.credentials.clone())
            .context("building the ECS client")
    }
}

impl Connect<S3Store> for Connection {
    fn connect(
        &self,
        region: &str,
        internal: bool,
    ) -> Result<(S3Store, EcsClient, Option<EhpcClient>), String> {
        let all = self.store(region, internal).and_then(|s| {
            let ehpc = match self.flags.run.ehpc_name {
                Some(_) => Some(self.ehpc(region)?),
                None => None,
            };
            Ok((s, self.ecs(region)?, ehpc))
        });
        all.map_err(|e| format!("{e:#}"))
    }

    fn destination(&self, region: &str, bucket: &str) -> Destination {
        use imgport_store::ObjectStore;
        // The internal and public endpoints name the same destination.
        match self.store(region, false) {
            Ok(store) => store.destination(bucket),
            // No store can be configured for the region: a destination nothing else matches.
            Err(_) => Destination {
                account: account_id(&self.credentials.current().access_key_id),
                region: region.to_string(),
                endpoint: String::new(),
                bucket: bucket.to_string(),
            },
        }
    }
}

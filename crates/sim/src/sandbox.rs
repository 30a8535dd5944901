//! The sandbox behind `imgport import --sandbox`: the ECS emulator and the embedded S3 server
//! started in-process on 127.0.0.1, so the whole pipeline runs on a machine with no cloud
//! account. Both serve one directory: the S3 server stores objects as `<dir>/s3/<bucket>/<key>`
//! and the emulated ImportImage reads them from there with imgport's own inspector.
//!
//! Identity: the servers listen on random ports, so kept state (upload journals, digest
//! records) names a sandbox by its directory ([`Sandbox::identity`]); the S3 server keeps its
//! unfinished uploads under that directory, so a re-run after Ctrl-C resumes them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::ecs::EcsConfig;
use super::ram::RamConfig;
use super::s3::{S3Faults, S3Server};
use super::server::{self, Faults, SimConfig};
use imgport_base::destination::sandbox_endpoint;
use imgport_base::secret::Secret;
use imgport_credentials::Credentials;

/// How long an emulated import takes from `Creating` to `Available` by default.
pub const DEFAULT_IMPORT_TIME: Duration = Duration::from_secs(3);

/// A running sandbox: its endpoints and the credentials it accepts. The servers run on the
/// tokio runtime that started them and stop with it.
pub struct Sandbox {
    /// `http://127.0.0.1:PORT` of the ECS emulator.
    pub ecs_endpoint: String,
    /// `http://127.0.0.1:PORT` of the S3 server (path-style addressing).
    pub s3_endpoint: String,
    /// The stable endpoint identity of this sandbox for kept state:
    /// [`sandbox_endpoint`] of its directory, the same on every run with that directory.
    pub identity: String,
    s3: S3Server,
    ecs: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Starts both servers on the current runtime, keeping their state under `dir`, with
    /// `buckets` created.
    /// `fault_rate` (0..=1) of the requests to each server fail: the emulator answers
    /// throttling or 503, the S3 server 500, SlowDown or a dropped connection.
    pub async fn start(
        dir: &Path,
        buckets: &[&str],
        import_time: Duration,
        fault_rate: f64,
    ) -> std::io::Result<Self> {
        Self::start_with(dir, buckets, import_time, fault_rate, RamConfig::default()).await
    }

    /// [`Sandbox::start`] with the account's RAM starting as `ram` says (e.g. without the
    /// import role).
    pub async fn start_with(
        dir: &Path,
        buckets: &[&str],
        import_time: Duration,
        fault_rate: f64,
        ram: RamConfig,
    ) -> std::io::Result<Self> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let s3_root = dir.join("s3");
        let s3 = S3Server::start(loopback, &s3_root, buckets).await?;
        s3.set_faults(S3Faults {
            rate: fault_rate,
            ..S3Faults::default()
        });
        let config = SimConfig {
            listen: loopback,
            state_dir: Some(dir.join("ecs")),
            ecs: EcsConfig {
                s3_root: s3.root.clone(),
                import_duration: import_time,
                fail_objects_containing: None,
                import_hook: None,
                queue_duration: Duration::ZERO,
                unavailable_objects_containing: None,
            },
            faults: Faults {
                error_rate: fault_rate,
                throttle_rate: fault_rate / 2.0,
                delay: Duration::ZERO,
            },
            ram,
            sts: Default::default(),
        };
        let bound = server::bind(&config).await?;
        s3.accept_sts(bound.sts());
        let ecs_endpoint = format!("http://{}", bound.addr);
        let ecs = tokio::spawn(async move {
            if let Err(e) = bound.serve().await {
                tracing::error!("sandbox ECS emulator stopped: {e}");
            }
        });
        Ok(Self {
            ecs_endpoint,
            s3_endpoint: s3.endpoint(),
            identity: sandbox_endpoint(dir),
            s3,
            ecs,
        })
    }

    /// The fixed test credentials both servers accept (not secrets of any account).
    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: server::TEST_ACCESS_KEY_ID.to_string(),
            access_key_secret: Secret::new(server::TEST_ACCESS_KEY_SECRET),
            security_token: None,
        }
    }

    /// The embedded S3 server, for fault injection and request counts in tests.
    pub fn s3(&self) -> &S3Server {
        &self.s3
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ecs.abort();
    }
}

//! `imgport sim`: run the local cloud emulator on 127.0.0.1 until killed, printing its
//! endpoint and the fixed test credentials it accepts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::output::exit;
use imgport_sim::ecs::EcsConfig;
use imgport_sim::server::{self, Faults, SimConfig};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port; the endpoint line shows it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Directory keeping the emulator's state (JSON) across restarts; memory only if absent.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Root of the object store read by ImportImage: objects are `<root>/<bucket>/<key>`
    /// (default: `<state>/s3`, or `./s3` without --state).
    #[arg(long)]
    pub s3_root: Option<PathBuf>,
    /// Seconds an import takes from Creating to Available.
    #[arg(long, default_value_t = 5.0)]
    pub import_seconds: f64,
    /// Test fault: fraction (0..1) of requests answered Throttling.User.
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Test fault: fraction (0..1) of requests answered 503 ServiceUnavailable.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Test fault: milliseconds of delay before every answer.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Test fault: imports whose system-disk object key contains this text end in
    /// CreateFailed ("no operating system found").
    #[arg(long)]
    pub fail_objects_containing: Option<String>,
    /// Test fault: seconds a new image stays Waiting (queued) before it turns Creating.
    #[arg(long, default_value_t = 0.0)]
    pub queue_seconds: f64,
    /// Test fault: imports whose system-disk object key contains this text end UnAvailable
    /// (the image exists but cannot be used).
    #[arg(long)]
    pub unavailable_objects_containing: Option<String>,
    /// Address of the embedded S3 server serving the object root (port 0 picks one; the
    /// `s3_endpoint` line shows it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub s3_listen: SocketAddr,
    /// Buckets to create in the object root at start, as NAME[:REGION[:CLASS]]: the region
    /// GetBucketLocation answers and ImportImage requires (default cn-hangzhou), and the
    /// storage class (Standard, IA, Archive, ColdArchive, DeepColdArchive; default Standard).
    #[arg(long, value_parser = bucket_spec)]
    pub bucket: Vec<String>,
    /// Test fault of the S3 server on UploadPart: PART:KIND or PART:KIND:TIMES, KIND one of 500,
    /// slowdown, drop, delay=MS, 500-after=MS; PART 0 means every part. Repeatable.
    #[arg(long)]
    pub s3_fault: Vec<imgport_sim::s3::PartFault>,
    /// Start the account without the RAM role AliyunECSImageImportDefaultRole: ImportImage
    /// then fails with NoSetRoletoECSServiceAcount until the role is created.
    #[arg(long)]
    pub no_import_role: bool,
    /// Test fault: STS credentials (AssumeRole, AssumeRoleWithOIDC) expire after this many
    /// seconds whatever DurationSeconds asked, to see them renewed during a long run.
    #[arg(long)]
    pub sts_seconds: Option<f64>,
    /// Test link: put a proxy in front of the S3 server that adds this round-trip time
    /// (milliseconds) and a TCP-like window per connection, like a far region; the
    /// `s3_endpoint` line then shows the proxy (`s3_direct_endpoint` the server).
    #[arg(long)]
    pub wan_rtt_ms: Option<u64>,
    /// Test link: bytes (KiB) each direction of a proxied connection may have unacknowledged.
    #[arg(long, requires = "wan_rtt_ms", default_value_t = 4096)]
    pub wan_window_kib: usize,
    /// Test link: the S3 server takes `UNSIGNED-PAYLOAD` uploads like AWS S3 (OSS refuses them),
    /// so that `upload --unsigned-payload` can be compared with signed parts.
    #[arg(long)]
    pub s3_unsigned_payload: bool,
    /// Also serve the ECS instance metadata service of an instance in this region (its
    /// region-id); the `metadata_endpoint` line shows it, for IMGPORT_ECS_METADATA_ENDPOINT.
    #[arg(long, value_parser = super::vocab::region)]
    pub instance_region: Option<String>,
    /// The RAM role attached to that instance: its credentials are the STS test keys.
    #[arg(long, requires = "instance_region")]
    pub instance_role: Option<String>,
    /// Address of the metadata service (port 0 picks one).
    #[arg(long, requires = "instance_region", default_value = "127.0.0.1:0")]
    pub metadata_listen: SocketAddr,
}

/// Checks a `--bucket` value (kept as text: the S3 server parses it again).
fn bucket_spec(s: &str) -> Result<String, String> {
    s.parse::<imgport_sim::bucket::BucketSpec>()?;
    Ok(s.to_string())
}

/// Serves until killed.
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let s3_root = args.s3_root.clone().unwrap_or_else(|| {
        args.state
            .as_ref()
            .map_or_else(|| PathBuf::from("s3"), |s| s.join("s3"))
    });
    std::fs::create_dir_all(&s3_root)
        .with_context(|| format!("creating the object root {}", s3_root.display()))?;
    let import_seconds = if args.import_seconds.is_finite() && args.import_seconds >= 0.0 {
        args.import_seconds
    } else {
        anyhow::bail!("--import-seconds must be a non-negative number");
    };
    if args
        .sts_seconds
        .is_some_and(|s| !(s.is_finite() && s > 0.0))
    {
        anyhow::bail!("--sts-seconds must be a positive number");
    }
    if !(args.queue_seconds.is_finite() && args.queue_seconds >= 0.0) {
        anyhow::bail!("--queue-seconds must be a non-negative number");
    }
    let config = SimConfig {
        listen: args.listen,
        state_dir: args.state.clone(),
        ecs: EcsConfig {
            s3_root: s3_root.clone(),
            import_duration: Duration::from_secs_f64(import_seconds),
            fail_objects_containing: args.fail_objects_containing.clone(),
            import_hook: None,
            queue_duration: Duration::from_secs_f64(args.queue_seconds),
            unavailable_objects_containing: args.unavailable_objects_containing.clone(),
        },
        faults: Faults {
            throttle_rate: args.throttle_rate,
            error_rate: args.error_rate,
            delay: Duration::from_millis(args.delay_ms),
        },
        ram: imgport_sim::ram::RamConfig {
            import_role: !args.no_import_role,
        },
        sts: imgport_sim::sts::StsConfig {
            lifetime: args.sts_seconds.map(Duration::from_secs_f64),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let bound = server::bind(&config)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let buckets: Vec<&str> = args.bucket.iter().map(String::as_str).collect();
        let s3 = imgport_sim::s3::S3Server::start(args.s3_listen, &s3_root, &buckets)
            .await
            .with_context(|| format!("starting the S3 server on {}", args.s3_listen))?;
        s3.accept_sts(bound.sts());
        s3.set_faults(imgport_sim::s3::S3Faults {
            parts: args.s3_fault.clone(),
            tamper_after_complete: false,
            rate: 0.0,
        });
        s3.take_unsigned_payload(args.s3_unsigned_payload);
        let wan = match args.wan_rtt_ms {
            Some(ms) => {
                let link = imgport_sim::wan::WanLink {
                    rtt: Duration::from_millis(ms),
                    window: args.wan_window_kib.saturating_mul(1024),
                };
                let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                let proxy = imgport_sim::wan::WanProxy::bind(listen, s3.addr(), link)
                    .await
                    .context("starting the WAN proxy")?;
                Some(proxy)
            }
            None => None,
        };
        let metadata = match &args.instance_region {
            Some(region) => {
                let instance = imgport_sim::metadata::InstanceConfig {
                    region: region.clone(),
                    role: args.instance_role.clone(),
                };
                let m = imgport_sim::metadata::MetadataServer::bind(args.metadata_listen, instance)
                    .await
                    .with_context(|| format!("listening on {}", args.metadata_listen))?;
                Some(m)
            }
            None => None,
        };
        {
            use std::fmt::Write as _;
            use std::io::Write;
            // One write for the whole block: a reader that stops after the lines it needs
            // cannot make a later line fail with a broken pipe.
            let mut text = String::new();
            // The emulator's own fixed test credentials: printing them is intended.
            writeln!(text, "endpoint: http://{}", bound.addr)?;
            writeln!(text, "access_key_id: {}", server::TEST_ACCESS_KEY_ID)?;
            writeln!(
                text,
                "access_key_secret: {}",
                server::TEST_ACCESS_KEY_SECRET
            )?;
            writeln!(text, "sts_access_key_id: {}", server::TEST_STS_KEY_ID)?;
            writeln!(text, "security_token: {}", server::TEST_SECURITY_TOKEN)?;
            writeln!(text, "s3_root: {}", s3_root.display())?;
            match &wan {
                Some(p) => {
                    writeln!(text, "s3_endpoint: http://{}", p.addr())?;
                    writeln!(text, "s3_direct_endpoint: {}", s3.endpoint())?;
                }
                None => writeln!(text, "s3_endpoint: {}", s3.endpoint())?,
            }
            if let Some(m) = &metadata {
                writeln!(text, "metadata_endpoint: {}", m.endpoint())?;
            }
            // The fixtures of CreateImage, E-HPC and KEC.
            text.push_str(&imgport_sim::fixtures_text());
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        tokio::spawn(s3.serve());
        if let Some(p) = wan {
            tokio::spawn(p.serve());
        }
        if let Some(m) = metadata {
            tokio::spawn(m.serve());
        }
        bound.serve().await.context("serving")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

//! The values every link of the chain shares: credentials, the chain's errors, its limits,
//! and the STS time format. A leaf: it uses no other module of this crate.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgport_base::secret::Secret;

/// Why an STS call failed (its message names no secret).
pub type StsFailure = Box<dyn std::error::Error + Send + Sync>;

/// An AccessKey pair with an optional STS security token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

/// Where the chain found the credentials (safe to print: it names no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum CredentialSource {
    /// Command-line flags.
    Flags,
    /// `ALIBABA_CLOUD_*` environment variables.
    Environment,
    /// A profile of the Alibaba CLI config file, or of the Kingsoft SDK's credentials or
    /// config file.
    Profile(String),
    /// The ECS RAM role of this instance.
    EcsRamRole(String),
    /// STS credentials of this RAM role ARN (a `RamRoleArn` profile), renewed by AssumeRole.
    RamRoleArn(String),
    /// STS credentials of this RAM role ARN for an OIDC token, renewed by AssumeRoleWithOIDC.
    Oidc(String),
    /// The standard AWS environment variables (plain S3).
    AwsEnvironment,
    /// The fixed test keys of imgport's own sandbox (`--sandbox`).
    Sandbox,
}

/// Timeout of each metadata request (the Alibaba SDKs use 1 s).
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest config file or metadata answer read.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Default lifetime asked of STS (its own default).
pub(crate) const DEFAULT_STS_SECONDS: u32 = 3600;

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("--access-key-id and --access-key-secret must be given together")]
    Incomplete,
    #[error("{path}: cannot read the Alibaba Cloud CLI config")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid Alibaba Cloud CLI config")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: no profile named {name:?}")]
    NoProfile { path: PathBuf, name: String },
    #[error(
        "{path}: profile {name:?} has mode {mode:?}; supported: AK, StsToken, RamRoleArn, OIDC, EcsRamRole"
    )]
    UnsupportedMode {
        path: PathBuf,
        name: String,
        mode: String,
    },
    #[error("{path}: profile {name:?} lacks {field}")]
    ProfileField {
        path: PathBuf,
        name: String,
        field: &'static str,
    },
    #[error("STS: {step}")]
    Sts {
        step: String,
        #[source]
        source: StsFailure,
    },
    #[error("RamRoleArn and OIDC credentials need STS, which this command cannot call")]
    NoSts,
    #[error("ECS instance metadata: {step}")]
    Metadata {
        step: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("{path}: {}{rule}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    KsyunFile {
        path: PathBuf,
        /// 1-based line, when the rule is about one.
        line: Option<usize>,
        rule: &'static str,
    },
    #[error(
        "no Kingsoft Cloud credentials: pass --access-key/--secret-key, set KSYUN_ACCESS_KEY \
         and KSYUN_SECRET_KEY (or KS_ACCESS_KEY_ID and KS_SECRET_ACCESS_KEY), or write them to \
         ~/.ks/credentials (ks_access_key_id, ks_secret_access_key under [default])"
    )]
    KsyunNotFound,
    #[error(
        "no credentials: pass --access-key-id/--access-key-secret, set ALIBABA_CLOUD_ACCESS_KEY_ID \
         and ALIBABA_CLOUD_ACCESS_KEY_SECRET, configure ~/.aliyun/config.json, or name an ECS RAM \
         role in ALIBABA_CLOUD_ECS_METADATA"
    )]
    NotFound,
}

/// Reads `YYYY-MM-DDTHH:MM:SSZ` (STS and instance metadata `Expiration`).
pub fn parse_expiration(s: &str) -> Option<SystemTime> {
    let b = s.trim().as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

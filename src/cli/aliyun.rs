//! Flags every Alibaba Cloud command shares (region, endpoint, credentials, signature
//! version) and the exit codes of RPC errors. Secrets are parsed straight into
//! [`Secret`], so neither `Debug` of the parsed flags nor an error shows them.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::credentials::CredentialFlags;
use super::output::exit;
use super::vocab;
use imgport_cloud::aliyun::rpc::{ApiError, CallError, ClientConfig, SignatureVersion};
use imgport_cloud::ksyun::sigv4::KsyunApiError;
use imgport_credentials::Credentials;

/// Signature versions as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignatureArg {
    /// ACS3-HMAC-SHA256 in the Authorization header.
    V3,
    /// HMAC-SHA1 `Signature` parameter (discontinued, still served).
    V2,
}

/// Where and as whom Alibaba Cloud is called.
#[derive(Debug, Clone, Args)]
pub struct AliyunFlags {
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID", help = vocab::REGION, value_parser = vocab::region)]
    pub region: String,
    /// Endpoint override, `host[:port]` or `http(s)://host[:port]` (e.g. `imgport sim`'s).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// As whom the cloud is called.
    #[command(flatten)]
    pub credentials: CredentialFlags,
    /// Request signature version.
    #[arg(long, value_enum, default_value = "v3")]
    pub signature: SignatureArg,
    // The old spelling `--timeout` stays as a hidden alias.
    #[arg(long, alias = "timeout", help = vocab::REQUEST_TIMEOUT, default_value_t = vocab::REQUEST_TIMEOUT_DEFAULT)]
    pub request_timeout: u64,
}

impl AliyunFlags {
    /// The client configuration.
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.region.clone());
        c.endpoint = self.endpoint.clone();
        c.signature = match self.signature {
            SignatureArg::V3 => SignatureVersion::V3,
            SignatureArg::V2 => SignatureVersion::V2,
        };
        c.timeout = Duration::from_secs(self.request_timeout.max(1));
        c
    }

    /// The credentials of the flags, the environment, the CLI profile or the RAM role.
    pub async fn resolve_credentials(&self) -> anyhow::Result<Credentials> {
        let (credentials, _) = self
            .credentials
            .resolve(false)
            .await
            .context("finding credentials")?;
        Ok(credentials)
    }
}

/// A service's error answer as `--json` shows it, for Alibaba Cloud and ksyun alike.
pub trait ApiJson: std::error::Error + 'static {
    /// `code`, `message`, `request_id`, `http_status`.
    fn api_json(&self) -> serde_json::Value;
}

/// `ApiJson` of service errors that carry these four fields.
macro_rules! api_json {
    ($($t:ty),*) => {$(
        impl ApiJson for $t {
            fn api_json(&self) -> serde_json::Value {
                serde_json::json!({
                    "code": self.code,
                    "message": self.message,
                    "request_id": self.request_id,
                    "http_status": self.http_status,
                })
            }
        }
    )*};
}

api_json!(ApiError, KsyunApiError);

/// Exit code of a cloud call's error: 2 when a rule was broken locally (nothing sent), 4
/// otherwise.
pub fn rpc_exit<A>(e: &CallError<A>) -> u8 {
    match e {
        CallError::Invalid(_) => exit::USAGE,
        _ => exit::CLOUD,
    }
}

/// The JSON shape of a failed call under `--json`: for a service error `code`, `message`,
/// `request_id`, `http_status`; for a rule broken locally `code`, `field`, `message`;
/// otherwise `message`.
pub fn rpc_error_json<A: ApiJson>(e: &CallError<A>) -> serde_json::Value {
    match (e.api(), e) {
        (Some(api), _) => api.api_json(),
        (None, CallError::Invalid(i)) => {
            serde_json::json!({"code": i.code, "field": i.field, "message": i.rule})
        }
        (None, other) => serde_json::json!({"message": super::output::error_chain(other)}),
    }
}

/// Prints `error: …` for `e` (and `{"error": …}` on stdout under `--json`) and returns its
/// exit code.
pub fn fail_rpc<A: ApiJson>(
    e: &CallError<A>,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    eprintln!("error: {}", super::output::error_chain(e));
    if json {
        super::output::print_json(&serde_json::json!({ "error": rpc_error_json(e) }))?;
    }
    Ok(std::process::ExitCode::from(rpc_exit(e)))
}

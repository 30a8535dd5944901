//! STS (API 2015-04-01, RPC style, `sts.aliyuncs.com`): AssumeRole, signed with the caller's
//! AccessKey, and AssumeRoleWithOIDC, anonymous (the OIDC token is the proof, sent in the
//! form body, never in the URL). [`RpcSts`] is the [`Sts`] the credential chain calls to
//! obtain and renew role credentials (docs/CLOUD-API.md §Credentials).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::rpc::{
    ClientConfig, HttpRequest, ReqwestTransport, RetryPolicy, RpcClient, RpcError, Transport,
    new_nonce, parse_error, unix_now, utc_timestamp,
};
use super::sign;
use super::transport::answer;
use imgport_base::secret::Secret;
use imgport_credentials::sts::{StsFailure, parse_expiration};
use imgport_credentials::{AssumeRole, AssumeRoleWithOidc, Credentials, Issued, Sts, StsFuture};

/// The STS API version.
pub const STS_VERSION: &str = "2015-04-01";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    credentials: Issue,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Issue {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

/// STS answered a success without a readable `Expiration`.
#[derive(Debug, thiserror::Error)]
#[error("{0}: the answer's Expiration {1:?} is not YYYY-MM-DDTHH:MM:SSZ")]
struct BadExpiration(&'static str, String);

fn issued(action: &'static str, body: &[u8]) -> Result<Issued, StsFailure> {
    let a: Answer = serde_json::from_slice(body)
        .map_err(|source| Box::new(RpcError::Decode { action, source }))?;
    let expiration: SystemTime = parse_expiration(&a.credentials.expiration)
        .ok_or_else(|| BadExpiration(action, a.credentials.expiration.clone()))?;
    Ok(Issued {
        credentials: Credentials {
            access_key_id: a.credentials.access_key_id,
            access_key_secret: Secret::new(a.credentials.access_key_secret),
            security_token: Some(Secret::new(a.credentials.security_token)),
        },
        expiration,
    })
}

/// The STS client of the credential chain.
#[derive(Debug, Clone)]
pub struct RpcSts {
    /// Timeout of one exchange.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for RpcSts {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
        }
    }
}

impl RpcSts {
    fn config(&self, endpoint: &str) -> ClientConfig {
        // STS is global; the region only names the request's scope.
        let mut c = ClientConfig::new("cn-hangzhou");
        c.endpoint = Some(endpoint.to_string());
        c.timeout = self.timeout;
        c.retry = self.retry;
        c
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Sts for RpcSts {
    fn assume_role<'a>(&'a self, caller: &'a Credentials, req: &'a AssumeRole) -> StsFuture<'a> {
        Box::pin(async move {
            let rpc = RpcClient::new(self.config(&req.endpoint), caller.clone())
                .map_err(|e| Box::new(e) as StsFailure)?;
            let seconds = req.duration_seconds.to_string();
            let params = pairs(&[
                ("RoleArn", &req.role_arn),
                ("RoleSessionName", &req.session_name),
                ("DurationSeconds", &seconds),
            ]);
            let body = rpc
                .call_raw("AssumeRole", STS_VERSION, &params)
                .await
                .map_err(|e| Box::new(e) as StsFailure)?;
            issued("AssumeRole", &body)
        })
    }

    fn assume_role_with_oidc<'a>(&'a self, req: &'a AssumeRoleWithOidc) -> StsFuture<'a> {
        Box::pin(async move {
            let action = "AssumeRoleWithOIDC";
            let (scheme, authority) = self.config(&req.endpoint).base();
            let query = pairs(&[
                ("Action", action),
                ("Version", STS_VERSION),
                ("Format", "JSON"),
                ("Timestamp", &utc_timestamp(unix_now())),
                ("SignatureNonce", &new_nonce()),
            ]);
            let seconds = req.duration_seconds.to_string();
            let form = pairs(&[
                ("RoleArn", &req.role_arn),
                ("OIDCProviderArn", &req.provider_arn),
                ("OIDCToken", req.token.expose()),
                ("RoleSessionName", &req.session_name),
                ("DurationSeconds", &seconds),
            ]);
            let transport =
                ReqwestTransport::new(self.timeout).map_err(|e| Box::new(e) as StsFailure)?;
            let http = HttpRequest {
                method: "POST",
                url: format!("{scheme}://{authority}/?{}", sign::canonical_query(&query)),
                headers: vec![
                    ("host".into(), authority.clone()),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("accept".into(), "application/json".into()),
                ],
                body: sign::canonical_query(&form).into_bytes(),
            };
            let body = answer(action, transport.send(http).await, |r| {
                parse_error(r.status, &r.headers, &r.body)
            })
            .map_err(|e: RpcError| Box::new(e) as StsFailure)?;
            issued(action, &body)
        })
    }
}

//! The Alibaba Cloud RPC client in layers: a pure request builder, the
//! pure signers of [`super::sign`], an injected [`Transport`], ONE [`parse_error`] that turns
//! a failed answer into a typed [`ApiError`], and ONE retry predicate ([`retry_delay`]) over
//! the workspace retry policy (capped exponential backoff, full jitter).
//!
//! V3 (`ACS3-HMAC-SHA256`, headers) is the default; V2 (`HMAC-SHA1`, query) is selectable.
//! STS tokens go in `x-acs-security-token` (V3) or `SecurityToken` (V2). Secrets never reach
//! `Debug`, logs or errors: the transport error drops the URL (V2 URLs carry the signature
//! and token).
//!
//! Kept whole: one request path in its layers (build, sign, send, parse the error, retry) and the
//! tests that drive it.

use std::sync::Arc;
use std::time::Duration;

use super::ecs::{Action, ECS_VERSION};
use super::sign;
use imgport_base::retry::{Backoff, Verdict, retry};
use imgport_credentials::{Credentials, Provider};

pub use super::time::{parse_utc_timestamp, unix_now, utc_timestamp};
use super::transport::answer;
pub use super::transport::{
    CallError, HttpRequest, HttpResponse, ReqwestTransport, SendFuture, SetupError, Transport,
    TransportError, TransportErrorKind, error_chain,
};

/// Which signature the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// Classic `SignatureVersion=1.0` HMAC-SHA1 in the query (discontinued but still served).
    V2,
    /// `ACS3-HMAC-SHA256` in the `Authorization` header.
    #[default]
    V3,
}

/// How often and how long to retry temporary failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one backoff, `x-acs-retry-after` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// ECS hosts that differ from `ecs.<region>.aliyuncs.com`: the official SDKs' endpoint map of
/// ECS 2014-05-26 (docs/CLOUD-API.md §Endpoints), region → host, sorted by region.
pub const ECS_ENDPOINTS: &[(&str, &str)] = &[
    ("ap-northeast-2-pop", "ecs.aliyuncs.com"),
    ("cn-beijing-finance-pop", "ecs.aliyuncs.com"),
    ("cn-beijing-gov-1", "ecs.aliyuncs.com"),
    ("cn-beijing-nu16-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-edge-1", "ecs.cn-qingdao-nebula.aliyuncs.com"),
    ("cn-fujian", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-haidian-cm12-c01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou-bj-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou-finance", "ecs.aliyuncs.com"),
    (
        "cn-hangzhou-internal-prod-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-2",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-3",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    ("cn-hangzhou-test-306", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hongkong-finance-pop", "ecs.aliyuncs.com"),
    (
        "cn-huhehaote-nebula-1",
        "ecs.cn-qingdao-nebula.aliyuncs.com",
    ),
    ("cn-north-2-gov-1", "ecs.aliyuncs.com"),
    ("cn-shanghai-et15-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-et2-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-inner", "ecs.aliyuncs.com"),
    (
        "cn-shanghai-internal-test-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    ("cn-shenzhen-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-inner", "ecs.aliyuncs.com"),
    ("cn-shenzhen-st4-d01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-su18-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-wuhan", "ecs.aliyuncs.com"),
    ("cn-yushanfang", "ecs.aliyuncs.com"),
    ("cn-zhangbei", "ecs.aliyuncs.com"),
    ("cn-zhangbei-na61-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-zhangjiakou-na62-a01", "ecs.cn-zhangjiakou.aliyuncs.com"),
    (
        "cn-zhengzhou-nebula-1",
        "ecs.cn-qingdao-nebula.aliyuncs.com",
    ),
    ("eu-west-1-oxs", "ecs.cn-shenzhen-cloudstone.aliyuncs.com"),
    ("rus-west-1-pop", "ecs.aliyuncs.com"),
];

/// Endpoint of ECS in `region`: [`ECS_ENDPOINTS`]' host where it names the region, else
/// `ecs.<region>.aliyuncs.com` (the SDKs' regional rule).
pub fn ecs_endpoint(region: &str) -> String {
    match ECS_ENDPOINTS.binary_search_by_key(&region, |(r, _)| r) {
        Ok(i) => ECS_ENDPOINTS[i].1.to_string(),
        Err(_) => format!("ecs.{region}.aliyuncs.com"),
    }
}

/// Where and how the client talks.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Region the calls are for; picks the endpoint unless overridden.
    pub region: String,
    /// `host[:port]` or `http(s)://host[:port]`; overrides [`ecs_endpoint`]. Without a
    /// scheme, HTTPS.
    pub endpoint: Option<String>,
    pub signature: SignatureVersion,
    pub retry: RetryPolicy,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `region`: its public endpoint, V3, default retries, 30 s timeout.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            endpoint: None,
            signature: SignatureVersion::V3,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// `(scheme, authority)` of the endpoint.
    pub fn base(&self) -> (String, String) {
        let raw = self
            .endpoint
            .clone()
            .unwrap_or_else(|| ecs_endpoint(&self.region));
        crate::split_endpoint(&raw)
    }
}

/// An error answer of the service, parsed by [`parse_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} (HTTP {http_status}): {message} [RequestId {request_id}]")]
pub struct ApiError {
    /// e.g. `InvalidImageName.Malformed`, `Throttling.User`.
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// Troubleshooting link the service suggests.
    pub recommend: String,
    pub http_status: u16,
    /// From the `x-acs-retry-after` header: milliseconds to wait, as darabonba's retry policy
    /// reads it (it sleeps that many milliseconds, capped by its max delay).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Whether a retry may succeed: throttling, service unavailable, internal errors, 5xx,
    /// or a `x-acs-retry-after` header (darabonba-openapi commit 8b916ca).
    pub fn retryable(&self) -> bool {
        self.code.starts_with("Throttling")
            || self.code.starts_with("ServiceUnavailable")
            || self.code.starts_with("InternalError")
            || self.http_status >= 500
            || self.retry_after.is_some()
    }

    /// A DryRun whose checks passed (`DryRunOperation`, or `DRYRUN.SUCCESS` in the
    /// ImportImage error table).
    pub fn is_dry_run_success(&self) -> bool {
        self.code == "DryRunOperation" || self.code == "DRYRUN.SUCCESS"
    }
}

/// Turns a non-2xx answer into an [`ApiError`]. Reads `Code`/`Message`/`RequestId`/
/// `Recommend` (and the lower-case spellings the SDK also accepts); a body that is not JSON
/// becomes code `Http<status>` with the start of the body as message.
pub fn parse_error(status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let retry_after = header("x-acs-retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .map(Duration::from_millis);
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |names: &[&str]| {
        names.iter().find_map(|n| {
            json.as_ref()
                .and_then(|j| j.get(*n))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    };
    let code = field(&["Code", "code"]).unwrap_or_else(|| format!("Http{status}"));
    let message = field(&["Message", "message"]).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(200).collect()
    });
    ApiError {
        code,
        message,
        request_id: field(&["RequestId", "requestId"])
            .or_else(|| header("x-acs-request-id"))
            .unwrap_or_default(),
        recommend: field(&["Recommend", "recommend"]).unwrap_or_default(),
        http_status: status,
        retry_after,
    }
}

/// Errors of the RPC layer.
pub type RpcError = CallError<ApiError>;

impl RpcError {
    /// The service's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }
}

/// THE retry predicate: whether `err` is temporary, with the wait the server asked for.
fn verdict(err: &RpcError) -> Verdict {
    match err {
        RpcError::Api { source, .. } if source.retryable() => Verdict::Temporary {
            at_least: source.retry_after,
        },
        // Connection refused/reset, timeouts: nothing (or nothing complete) was answered.
        RpcError::Transport { .. } => Verdict::Temporary { at_least: None },
        _ => Verdict::Permanent,
    }
}

impl RetryPolicy {
    /// This policy as the workspace's one retry policy ([`imgport_base::retry`]).
    pub fn backoff(&self) -> Backoff {
        Backoff {
            max_attempts: self.max_attempts,
            base: self.base_delay,
            max: self.max_delay,
        }
    }
}

/// `Some(backoff)` when `err` is temporary and attempt `attempt` (0-based, the one that just
/// failed) may be followed by another; `None` otherwise. Backoff is full jitter under
/// `base × 2^attempt`, capped ([`imgport_base::retry`]); a `x-acs-retry-after` hint is
/// honoured up to the cap.
pub fn retry_delay(err: &RpcError, attempt: u32, policy: &RetryPolicy) -> Option<Duration> {
    policy
        .backoff()
        .next(attempt.saturating_add(1), verdict(err))
}

/// A fresh 32-hex-digit nonce (SignatureNonce / x-acs-signature-nonce).
pub fn new_nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// A fresh ClientToken (ASCII, 36 chars).
pub fn new_client_token() -> String {
    format!("imgport-{:028x}", fastrand::u128(..) >> 16)
}

/// Signs and sends RPC calls with retries.
#[derive(Clone)]
pub struct RpcClient {
    config: ClientConfig,
    /// Renewed before each attempt when they expire soon (STS, ECS role).
    credentials: Provider,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client over the real reqwest transport.
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, RpcError> {
        let transport = Arc::new(ReqwestTransport::new(config.timeout)?);
        Ok(Self::with_transport(config, credentials, transport))
    }

    /// A client over `transport`.
    pub fn with_transport(
        config: ClientConfig,
        credentials: Credentials,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            config,
            credentials: Provider::fixed(credentials),
            transport,
        }
    }

    /// A client over the real transport whose credentials `provider` renews.
    pub fn with_provider(config: ClientConfig, provider: Provider) -> Result<Self, RpcError> {
        let transport = Arc::new(ReqwestTransport::new(config.timeout)?);
        Ok(Self {
            config,
            credentials: provider,
            transport,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The same credentials and transport calling `endpoint` instead: the client of a
    /// companion service (RAM beside ECS).
    pub fn with_endpoint(&self, endpoint: String) -> Self {
        let mut config = self.config.clone();
        config.endpoint = Some(endpoint);
        Self {
            config,
            credentials: self.credentials.clone(),
            transport: self.transport.clone(),
        }
    }

    /// The same client retrying by `retry` instead: a pre-flight look-up that may give up
    /// early (its failure is reported as unverified, not fatal) uses a short policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        let mut client = self.clone();
        client.config.retry = retry;
        client
    }

    /// Builds the signed request for one attempt (pure: nonce and time are inputs).
    pub fn build_request(
        &self,
        action: &str,
        version: &str,
        params: &[(String, String)],
        nonce: &str,
        unix_time: i64,
    ) -> HttpRequest {
        let (scheme, authority) = self.config.base();
        let date = utc_timestamp(unix_time);
        let credentials = self.credentials.current();
        let secret = credentials.access_key_secret.expose();
        match self.config.signature {
            SignatureVersion::V3 => {
                let mut headers = vec![
                    ("host".to_string(), authority.clone()),
                    ("x-acs-action".to_string(), action.to_string()),
                    ("x-acs-version".to_string(), version.to_string()),
                    ("x-acs-date".to_string(), date),
                    ("x-acs-signature-nonce".to_string(), nonce.to_string()),
                    (
                        "x-acs-content-sha256".to_string(),
                        sign::EMPTY_SHA256.to_string(),
                    ),
                ];
                if let Some(token) = &credentials.security_token {
                    headers.push((
                        "x-acs-security-token".to_string(),
                        token.expose().to_string(),
                    ));
                }
                let input = sign::V3Input {
                    method: "POST",
                    uri: "/",
                    query: params,
                    headers: &headers,
                    hashed_payload: sign::EMPTY_SHA256,
                };
                let auth = sign::v3_authorization(&input, &credentials.access_key_id, secret);
                headers.push(("authorization".to_string(), auth));
                headers.push(("accept".to_string(), "application/json".to_string()));
                headers.push((
                    "user-agent".to_string(),
                    concat!("imgport/", env!("CARGO_PKG_VERSION")).to_string(),
                ));
                HttpRequest {
                    method: "POST",
                    url: format!("{scheme}://{authority}/?{}", sign::canonical_query(params)),
                    headers,
                    body: Vec::new(),
                }
            }
            SignatureVersion::V2 => {
                let mut all: Vec<(String, String)> = params.to_vec();
                let common = [
                    ("Action", action),
                    ("Version", version),
                    ("Format", "JSON"),
                    ("AccessKeyId", credentials.access_key_id.as_str()),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce),
                    ("Timestamp", date.as_str()),
                ];
                all.extend(common.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                if let Some(token) = &credentials.security_token {
                    all.push(("SecurityToken".to_string(), token.expose().to_string()));
                }
                let signature = sign::v2_sign("POST", &all, secret);
                all.push(("Signature".to_string(), signature));
                HttpRequest {
                    method: "POST",
                    url: format!("{scheme}://{authority}/?{}", sign::canonical_query(&all)),
                    headers: vec![
                        ("host".to_string(), authority),
                        ("accept".to_string(), "application/json".to_string()),
                    ],
                    body: Vec::new(),
                }
            }
        }
    }

    /// Calls `action` with raw parameters and returns the JSON body of the success, retrying
    /// temporary failures. The same parameters (ClientToken included) are sent every time;
    /// only the nonce, time and signature change.
    pub async fn call_raw(
        &self,
        action: &'static str,
        version: &str,
        params: &[(String, String)],
    ) -> Result<Vec<u8>, RpcError> {
        let send = || async {
            // Expiring credentials are renewed first; a failed renewal is the service's to
            // refuse (its error names the expired token), with the reason logged here.
            if let Err(e) = self.credentials.fresh().await {
                tracing::warn!(action, error = %error_chain(&e), "renewing the credentials failed");
            }
            let req = self.build_request(action, version, params, &new_nonce(), unix_now());
            answer(action, self.transport.send(req).await, |resp| {
                parse_error(resp.status, &resp.headers, &resp.body)
            })
        };
        let note = |attempt: u32, err: &RpcError, delay: Duration| {
            tracing::warn!(
                action,
                attempt,
                ?delay,
                error = %error_chain(err),
                "temporary failure, retrying"
            );
        };
        let (body, _) = retry(&self.config.retry.backoff(), verdict, note, send).await?;
        Ok(body)
    }

    /// Calls a typed ECS action.
    pub async fn call<A: Action>(&self, request: &A) -> Result<A::Response, RpcError> {
        let params = request.params().into_pairs();
        let body = self.call_raw(A::NAME, ECS_VERSION, &params).await?;
        serde_json::from_slice(&body).map_err(|source| RpcError::Decode {
            action: A::NAME,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::validate::Invalid;
    use imgport_base::secret::Secret;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKID".into(),
            access_key_secret: Secret::new("top-secret-value"),
            security_token: token.map(Secret::new),
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(ecs_endpoint("cn-hangzhou"), "ecs-cn-hangzhou.aliyuncs.com");
        assert_eq!(ecs_endpoint("cn-wuhan"), "ecs.aliyuncs.com");
        assert_eq!(ecs_endpoint("cn-zhangbei"), "ecs.aliyuncs.com");
        assert_eq!(
            ecs_endpoint("cn-shanghai-finance-1"),
            "ecs-cn-hangzhou.aliyuncs.com"
        );
        assert!(ECS_ENDPOINTS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            ecs_endpoint("eu-central-1"),
            "ecs.eu-central-1.aliyuncs.com"
        );
        let mut c = ClientConfig::new("cn-beijing");
        assert_eq!(
            c.base(),
            ("https".into(), "ecs.cn-beijing.aliyuncs.com".into())
        );
        c.endpoint = Some("http://127.0.0.1:8080/".into());
        assert_eq!(c.base(), ("http".into(), "127.0.0.1:8080".into()));
    }

    #[test]
    fn v3_request_is_signed_and_carries_the_token() {
        let mut cfg = ClientConfig::new("cn-shanghai");
        cfg.endpoint = Some("http://127.0.0.1:9".into());
        let client = RpcClient::new(cfg, creds(Some("sts-token"))).unwrap();
        let params = vec![("RegionId".to_string(), "cn-shanghai".to_string())];
        let req = client.build_request("DescribeImages", ECS_VERSION, &params, "n1", 0);
        assert_eq!(req.url, "http://127.0.0.1:9/?RegionId=cn-shanghai");
        let h = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(h("x-acs-security-token"), "sts-token");
        assert_eq!(h("x-acs-date"), "1970-01-01T00:00:00Z");
        let auth = sign::parse_v3_authorization(&h("authorization")).unwrap();
        assert!(
            auth.signed_headers
                .contains(&"x-acs-security-token".to_string())
        );
        // Recompute from the signed headers, as a verifier does.
        let signed: Vec<(String, String)> = req
            .headers
            .iter()
            .filter(|(k, _)| auth.signed_headers.contains(k))
            .cloned()
            .collect();
        let input = sign::V3Input {
            method: "POST",
            uri: "/",
            query: &params,
            headers: &signed,
            hashed_payload: sign::EMPTY_SHA256,
        };
        assert_eq!(
            sign::v3_authorization(&input, "AKID", "top-secret-value"),
            h("authorization")
        );
        assert!(!format!("{client:?}").contains("top-secret-value"));
        assert!(!format!("{req:?}").contains("sts-token"));
    }

    #[test]
    fn v2_request_is_signed_and_carries_the_token() {
        let mut cfg = ClientConfig::new("cn-shanghai");
        cfg.signature = SignatureVersion::V2;
        let client = RpcClient::new(cfg, creds(Some("sts-token"))).unwrap();
        let params = vec![("RegionId".to_string(), "cn-shanghai".to_string())];
        let req = client.build_request("DescribeImages", ECS_VERSION, &params, "n1", 0);
        assert!(
            req.url
                .starts_with("https://ecs.cn-shanghai.aliyuncs.com/?")
        );
        assert!(req.url.contains("SecurityToken=sts-token"));
        assert!(req.url.contains("Timestamp=1970-01-01T00%3A00%3A00Z"));
        assert!(req.url.contains("Signature="));
    }

    #[test]
    fn parse_error_reads_the_documented_body() {
        let body = br#"{"RequestId":"R-1","HostId":"ecs.cn-hangzhou.aliyuncs.com","Code":"InvalidParameter","Message":"bad","Recommend":"https://x"}"#;
        let e = parse_error(400, &[], body);
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
            ("InvalidParameter", "bad", "R-1")
        );
        assert_eq!(e.recommend, "https://x");
        assert!(!e.retryable());
        let e = parse_error(400, &[], br#"{"code":"Throttling.User","message":"slow"}"#);
        assert!(e.retryable());
        let e = parse_error(503, &[], b"<html>busy</html>");
        assert_eq!(e.code, "Http503");
        assert!(e.retryable());
        let e = parse_error(
            400,
            &[("X-Acs-Retry-After".into(), "2000".into())],
            br#"{"Code":"Foo"}"#,
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        assert!(e.retryable());
        assert!(parse_error(400, &[], br#"{"Code":"DryRunOperation"}"#).is_dry_run_success());
    }

    #[test]
    fn retry_predicate_and_backoff() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        let api = |code: &str, status| RpcError::Api {
            action: "X",
            source: Box::new(parse_error(
                status,
                &[],
                format!(r#"{{"Code":"{code}"}}"#).as_bytes(),
            )),
        };
        assert!(retry_delay(&api("Throttling", 400), 0, &policy).is_some());
        assert!(retry_delay(&api("ServiceUnavailable", 503), 0, &policy).is_some());
        assert!(retry_delay(&api("InternalError", 500), 0, &policy).is_some());
        assert!(retry_delay(&api("InvalidImageName.Malformed", 400), 0, &policy).is_none());
        assert!(retry_delay(&api("Throttling", 400), 3, &policy).is_none());
        let t = RpcError::Transport {
            action: "X",
            source: TransportError {
                kind: TransportErrorKind::Connect,
                message: "refused".into(),
            },
        };
        for attempt in 0..3 {
            let d = retry_delay(&t, attempt, &policy).unwrap();
            let cap = Duration::from_millis((100u64 << attempt).min(300));
            assert!(d <= cap, "{d:?} vs {cap:?}");
        }
        let hinted = RpcError::Api {
            action: "X",
            source: Box::new(parse_error(
                503,
                &[("x-acs-retry-after".into(), "250".into())],
                br#"{"Code":"ServiceUnavailable"}"#,
            )),
        };
        let d = retry_delay(&hinted, 0, &policy).unwrap();
        assert!(
            d >= Duration::from_millis(250) && d <= policy.max_delay,
            "{d:?}"
        );
        let inv = RpcError::Invalid(Invalid::new("X", "Y", "z"));
        assert!(retry_delay(&inv, 0, &policy).is_none());
    }
}

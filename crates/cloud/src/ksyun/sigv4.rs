//! The ksyun OpenAPI client: form-encoded POST with `Action`/`Version` in the query, signed
//! with AWS Signature V4 (`AWS4-HMAC-SHA256`, signed headers `content-type;host;x-amz-date`,
//! scope `<date>/<region>/<service>/aws4_request`; docs/CLOUD-API.md §KEC) by the `aws-sigv4`
//! crate. One [`parse_error`] turns `{"Error":{"Code","Message"},"RequestId"}` into
//! [`KsyunApiError`].
//!
//! Calls are not retried: ModifyInstanceImage reinstalls a system and has no idempotency
//! token, so a lost answer is reported, not repeated.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;

use super::KsyunCredentials;
use crate::aliyun::sign::{canonical_query, percent_encode};
use crate::aliyun::transport::{
    CallError, HttpRequest, ReqwestTransport, Transport, answer, error_chain,
};

/// Content type of every request body.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Where and how the client talks.
#[derive(Debug, Clone)]
pub struct KsyunConfig {
    /// Region of the credential scope, e.g. `cn-beijing-6`.
    pub region: String,
    /// `host[:port]` or `http(s)://host[:port]`; default `https://<service>.api.ksyun.com`.
    pub endpoint: Option<String>,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
}

impl KsyunConfig {
    /// Defaults for `region`: the public endpoint, 30 s timeout.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            endpoint: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// `(scheme, authority)` of the endpoint of `service`.
    pub fn base(&self, service: &str) -> (String, String) {
        let raw = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("{service}.api.ksyun.com"));
        crate::split_endpoint(&raw)
    }
}

/// An error answer of the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} (HTTP {http_status}): {message} [RequestId {request_id}]")]
pub struct KsyunApiError {
    /// e.g. `InstanceNotFound`, `InstanceStateNotSupported`.
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub http_status: u16,
}

/// Errors of the ksyun client.
pub type KsyunError = CallError<KsyunApiError>;

impl KsyunError {
    /// The service's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }
}

/// Turns a non-2xx answer into a [`KsyunApiError`]: `Error.Code`/`Error.Message` (also
/// top-level `Code`/`Message`), `RequestId`; a body that is not JSON becomes `Http<status>`.
pub fn parse_error(status: u16, body: &[u8]) -> KsyunApiError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let get = |path: &[&str]| {
        let mut v = json.as_ref()?;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    };
    KsyunApiError {
        code: get(&["Error", "Code"])
            .or_else(|| get(&["Code"]))
            .unwrap_or_else(|| format!("Http{status}")),
        message: get(&["Error", "Message"])
            .or_else(|| get(&["Message"]))
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect()),
        request_id: get(&["RequestId"]).unwrap_or_default(),
        http_status: status,
    }
}

/// Signs and sends ksyun OpenAPI calls.
#[derive(Clone)]
pub struct SigV4Client {
    config: KsyunConfig,
    credentials: KsyunCredentials,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for SigV4Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Client")
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Form body `k=v&…` in the given order, RFC 3986 encoded.
pub fn form_body(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl SigV4Client {
    /// A client over the real reqwest transport.
    pub fn new(config: KsyunConfig, credentials: KsyunCredentials) -> Result<Self, KsyunError> {
        let transport = ReqwestTransport::new(config.timeout)
            .map_err(|e| KsyunError::Setup(error_chain(&e)))?;
        Ok(Self {
            config,
            credentials,
            transport: Arc::new(transport),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KsyunConfig {
        &self.config
    }

    /// Builds the signed POST for one call at `time` (pure apart from the inputs): query
    /// `Action` and `Version`, form body `params`, headers `content-type`, `host`,
    /// `x-amz-date` and `authorization`.
    pub fn build_request(
        &self,
        service: &str,
        action: &str,
        version: &str,
        params: &[(String, String)],
        time: SystemTime,
    ) -> Result<HttpRequest, KsyunError> {
        let (scheme, authority) = self.config.base(service);
        let query = canonical_query(&[
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), version.to_string()),
        ]);
        let url = format!("{scheme}://{authority}/?{query}");
        let body = form_body(params);
        let identity = aws_credential_types::Credentials::new(
            self.credentials.access_key_id.clone(),
            self.credentials.secret_access_key.expose().to_string(),
            None,
            None,
            "imgport",
        )
        .into();
        let signing = SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| KsyunError::Sign(e.to_string()))?
            .into();
        let base_headers = [("content-type", FORM), ("host", authority.as_str())];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            base_headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| KsyunError::Sign(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &signing)
            .map_err(|e| KsyunError::Sign(e.to_string()))?
            .into_parts();
        let mut headers: Vec<(String, String)> = base_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())),
        );
        headers.push(("accept".to_string(), "application/json".to_string()));
        Ok(HttpRequest {
            method: "POST",
            url,
            headers,
            body: body.into_bytes(),
        })
    }

    /// Calls `action` of `service` once and returns the JSON body of the success.
    pub async fn call_raw(
        &self,
        service: &str,
        action: &'static str,
        version: &str,
        params: &[(String, String)],
    ) -> Result<Vec<u8>, KsyunError> {
        let req = self.build_request(service, action, version, params, SystemTime::now())?;
        answer(action, self.transport.send(req).await, |resp| {
            parse_error(resp.status, &resp.body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_base::secret::Secret;

    fn client(endpoint: &str, region: &str, ak: &str, sk: &str) -> SigV4Client {
        let mut cfg = KsyunConfig::new(region);
        cfg.endpoint = Some(endpoint.into());
        SigV4Client::new(
            cfg,
            KsyunCredentials {
                access_key_id: ak.into(),
                secret_access_key: Secret::new(sk),
            },
        )
        .unwrap()
    }

    #[test]
    fn request_is_a_signed_form_post() {
        let c = client("http://127.0.0.1:9", "cn-beijing-6", "AKLTX", "sk-value");
        let params = vec![("InstanceId".to_string(), "a b".to_string())];
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_517_682);
        let req = c
            .build_request("kec", "ModifyInstanceImage", "2016-03-04", &params, t)
            .unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/?Action=ModifyInstanceImage&Version=2016-03-04"
        );
        assert_eq!(req.body, b"InstanceId=a%20b");
        let h = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(h("x-amz-date"), "20170720T022802Z");
        let auth = h("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKLTX/20170720/cn-beijing-6/kec/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );
        assert!(!format!("{c:?} {req:?}").contains("sk-value"));
    }

    #[test]
    fn parses_ksyun_errors() {
        let e = parse_error(
            400,
            br#"{"RequestId":"r-1","Error":{"Code":"InstanceNotFound","Message":"no"}}"#,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
            ("InstanceNotFound", "no", "r-1")
        );
        assert_eq!(parse_error(502, b"<html>").code, "Http502");
    }
}

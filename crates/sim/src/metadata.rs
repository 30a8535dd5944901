//! The ECS instance metadata service as an instance sees it at 100.100.100.200, on its own
//! 127.0.0.1 socket (docs/CLOUD-API.md §Metadata): `PUT /latest/api/token` (hardened
//! mode, `X-aliyun-ecs-metadata-token-ttl-seconds` 1–21600), then `GET`s under
//! `/latest/meta-data/`: `region-id`, and `ram/security-credentials/[<role>]` with the
//! emulator's STS test keys. A request with a wrong token is refused (401), one without a
//! token is answered (normal mode), as the service does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;

use super::server::{TEST_ACCESS_KEY_SECRET, TEST_SECURITY_TOKEN, TEST_STS_KEY_ID};
use super::wire::{iso_utc, unix_now};

/// The token the emulated service hands out (a fixed test value).
const TOKEN: &str = "imgport-sim-imds-token";
/// Lifetime of the role credentials it answers (the service renews well before expiry).
const CREDENTIAL_SECONDS: i64 = 6 * 3600;
/// Most seconds a token may be asked to live (the service's documented bound).
const MAX_TOKEN_TTL: u32 = 21600;

/// What the emulated instance is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Its region id (`region-id`).
    pub region: String,
    /// The RAM role attached to it, if any (`ram/security-credentials/`).
    pub role: Option<String>,
}

/// The metadata service, bound and ready to serve.
pub struct MetadataServer {
    listener: TcpListener,
    addr: SocketAddr,
    config: Arc<InstanceConfig>,
}

impl MetadataServer {
    /// Binds `listen` for an instance described by `config`.
    pub async fn bind(listen: SocketAddr, config: InstanceConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Self {
            addr: listener.local_addr()?,
            listener,
            config: Arc::new(config),
        })
    }

    /// Its base URL, as `IMGPORT_ECS_METADATA_ENDPOINT` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) -> std::io::Result<()> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let config = self.config.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (status, body) = answer(&config, &req);
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    async move { Ok::<_, Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "metadata connection ended");
                }
            });
        }
    }
}

/// The status and body of one request.
fn answer<B>(config: &InstanceConfig, req: &Request<B>) -> (StatusCode, String) {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let path = req.uri().path();
    if req.method() == hyper::Method::PUT {
        if path != "/latest/api/token" {
            return (StatusCode::NOT_FOUND, String::new());
        }
        return match header("x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u32>().ok())
        {
            Some(ttl) if (1..=MAX_TOKEN_TTL).contains(&ttl) => (StatusCode::OK, TOKEN.into()),
            _ => (
                StatusCode::BAD_REQUEST,
                format!("X-aliyun-ecs-metadata-token-ttl-seconds must be 1-{MAX_TOKEN_TTL}"),
            ),
        };
    }
    if req.method() != hyper::Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, String::new());
    }
    if header("x-aliyun-ecs-metadata-token").is_some_and(|t| t != TOKEN) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let Some(rest) = path.strip_prefix("/latest/meta-data/") else {
        return (StatusCode::NOT_FOUND, String::new());
    };
    match (rest, &config.role) {
        ("region-id", _) => (StatusCode::OK, config.region.clone()),
        ("ram/security-credentials/", Some(role)) => (StatusCode::OK, role.clone()),
        (r, Some(role)) if r.strip_prefix("ram/security-credentials/") == Some(role) => {
            let now = unix_now();
            let body = json!({
                "Code": "Success",
                "AccessKeyId": TEST_STS_KEY_ID,
                "AccessKeySecret": TEST_ACCESS_KEY_SECRET,
                "SecurityToken": TEST_SECURITY_TOKEN,
                "LastUpdated": iso_utc(now),
                "Expiration": iso_utc(now + CREDENTIAL_SECONDS),
            });
            (StatusCode::OK, body.to_string())
        }
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, token: Option<&str>) -> Request<()> {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header("x-aliyun-ecs-metadata-token", t);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn answers_region_role_and_tokens() {
        let c = InstanceConfig {
            region: "cn-beijing".into(),
            role: Some("imgrole".into()),
        };
        let put = |ttl: &str| {
            Request::put("/latest/api/token")
                .header("X-aliyun-ecs-metadata-token-ttl-seconds", ttl)
                .body(())
                .unwrap()
        };
        assert_eq!(answer(&c, &put("21600")), (StatusCode::OK, TOKEN.into()));
        assert_eq!(answer(&c, &put("0")).0, StatusCode::BAD_REQUEST);
        assert_eq!(answer(&c, &put("21601")).0, StatusCode::BAD_REQUEST);
        let region = "/latest/meta-data/region-id";
        assert_eq!(answer(&c, &get(region, None)).1, "cn-beijing");
        assert_eq!(answer(&c, &get(region, Some(TOKEN))).1, "cn-beijing");
        assert_eq!(
            answer(&c, &get(region, Some("forged"))).0,
            StatusCode::UNAUTHORIZED
        );
        let roles = "/latest/meta-data/ram/security-credentials/";
        assert_eq!(answer(&c, &get(roles, None)).1, "imgrole");
        let (s, body) = answer(&c, &get(&format!("{roles}imgrole"), Some(TOKEN)));
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["AccessKeyId"], TEST_STS_KEY_ID);
        assert_eq!(
            answer(&c, &get(&format!("{roles}other"), None)).0,
            StatusCode::NOT_FOUND
        );
        let no_role = InstanceConfig { role: None, ..c };
        assert_eq!(answer(&no_role, &get(roles, None)).0, StatusCode::NOT_FOUND);
    }
}

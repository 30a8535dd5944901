//! The emulator's HTTP server: hyper on a 127.0.0.1 socket, RPC requests by GET or POST with
//! parameters in the query (and form body), authenticated by [`super::auth`], faults injected
//! on request (throttling, 5xx, delay), answered with the service's JSON shapes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::auth::{self, Incoming, Key, NonceCache};
use super::ecs::{ApiFault, Ecs, EcsConfig};
use super::ehpc::Ehpc;
use super::form::parse_form;
use super::kec::Kec;
use super::ram::{Ram, RamConfig};
use super::sts::{STS_VERSION, Sts, StsConfig};
use super::wire::unix_now;

/// The `Version` of the ECS API (docs/CLOUD-API.md §ImportImage).
pub const ECS_VERSION: &str = "2014-05-26";
/// The `Version` of E-HPC Instant (docs/CLOUD-API.md §EHPC).
pub const EHPC_VERSION: &str = "2023-07-01";
/// The `Version` of RAM (docs/CLOUD-API.md §RAM).
pub const RAM_VERSION: &str = "2015-05-01";

/// AccessKey ID the emulator accepts (a fixed test value).
pub const TEST_ACCESS_KEY_ID: &str = "LTAI-imgport-sim-key";
/// Its secret: a fixed test value, printed by `imgport sim`; never a real secret.
pub const TEST_ACCESS_KEY_SECRET: &str = "imgport-sim-test-secret";
/// An STS AccessKey ID the emulator accepts together with [`TEST_SECURITY_TOKEN`].
pub const TEST_STS_KEY_ID: &str = "STS.imgportSimTestKey";
/// The STS token that goes with [`TEST_STS_KEY_ID`] (secret: [`TEST_ACCESS_KEY_SECRET`]).
pub const TEST_SECURITY_TOKEN: &str = "imgport-sim-test-token";

/// `x-acs-retry-after` sent with injected throttling, in milliseconds.
const THROTTLE_RETRY_AFTER_MS: &str = "20";

/// Largest request body read (RPC bodies are small forms).
const MAX_BODY: usize = 1 << 20;

/// Injected failures for tests. Rates are fractions 0..=1 applied deterministically: with
/// rate r, the k-th request fails when ⌊k·r⌋ grows, so 0.5 fails every second request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Fraction answered `Throttling.User` (HTTP 400).
    pub throttle_rate: f64,
    /// Fraction answered `ServiceUnavailable` (HTTP 503).
    pub error_rate: f64,
    /// Delay before every answer.
    pub delay: Duration,
}

/// Everything `imgport sim` needs.
#[derive(Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Where state is kept (JSON); `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    pub ecs: EcsConfig,
    pub faults: Faults,
    /// Whether the account starts with the import role.
    pub ram: RamConfig,
    /// How long issued STS credentials live.
    pub sts: StsConfig,
}

struct FaultState {
    count: u64,
}

/// The running service.
pub struct Sim {
    ecs: Ecs,
    ehpc: Ehpc,
    kec: Kec,
    ram: Arc<Ram>,
    sts: Arc<Sts>,
    keys: Vec<Key>,
    nonces: Mutex<NonceCache>,
    faults: Faults,
    fault_state: Mutex<FaultState>,
}

/// A bound emulator: its address and the future that serves it.
pub struct Bound {
    pub addr: SocketAddr,
    listener: TcpListener,
    sim: Arc<Sim>,
}

impl Sim {
    /// The service for `config` (loads the state directory).
    pub fn new(config: &SimConfig) -> std::io::Result<Self> {
        let ram = Arc::new(Ram::open(config.ram, config.state_dir.as_deref())?);
        Ok(Self {
            ecs: Ecs::open(config.ecs.clone(), config.state_dir.as_deref())?.with_ram(ram.clone()),
            ram,
            sts: Arc::new(Sts::new(config.sts)),
            ehpc: Ehpc::open(config.state_dir.as_deref())?,
            kec: Kec::open(config.state_dir.as_deref())?,
            keys: vec![
                Key {
                    id: TEST_ACCESS_KEY_ID.into(),
                    secret: TEST_ACCESS_KEY_SECRET.into(),
                    security_token: None,
                },
                Key {
                    id: TEST_STS_KEY_ID.into(),
                    secret: TEST_ACCESS_KEY_SECRET.into(),
                    security_token: Some(TEST_SECURITY_TOKEN.into()),
                },
            ],
            nonces: Mutex::new(NonceCache::default()),
            faults: config.faults,
            fault_state: Mutex::new(FaultState { count: 0 }),
        })
    }

    /// The fault to inject into the next request, if any.
    fn next_fault(&self) -> Option<ApiFault> {
        let mut st = self.fault_state.lock().unwrap_or_else(|p| p.into_inner());
        let k = st.count;
        st.count += 1;
        let hits = |rate: f64| {
            let r = rate.clamp(0.0, 1.0);
            ((k + 1) as f64 * r).floor() > (k as f64 * r).floor()
        };
        if hits(self.faults.throttle_rate) {
            return Some(ApiFault::new(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ));
        }
        if hits(self.faults.error_rate) {
            return Some(ApiFault::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ));
        }
        None
    }

    async fn answer(&self, req: Request<Body>) -> (u16, Value) {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return fault_body(ApiFault::new(
                    400,
                    "InvalidParameter",
                    "The request body is too large or unreadable.",
                ));
            }
        };
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let query = parse_form(parts.uri.query().unwrap_or_default());
        let is_form = headers.iter().any(|(k, v)| {
            k == "content-type" && v.starts_with("application/x-www-form-urlencoded")
        });
        let form = if is_form {
            parse_form(&String::from_utf8_lossy(&body))
        } else {
            Vec::new()
        };
        let method = parts.method.as_str().to_string();
        if method != "GET" && method != "POST" {
            return fault_body(ApiFault::new(
                400,
                "UnsupportedHTTPMethod",
                "This http method is not supported.",
            ));
        }
        let incoming = Incoming {
            method: &method,
            path: parts.uri.path(),
            query: &query,
            form: &form,
            headers: &headers,
            body: &body,
        };
        // KEC requests are signed with AWS SigV4 and answered in KEC's own shapes.
        if Kec::is_sigv4(&headers) {
            return self.kec.handle(&incoming, unix_now());
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // AssumeRoleWithOIDC is anonymous: the OIDC token is the proof.
        let param = |name: &str| {
            query
                .iter()
                .chain(&form)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if param("Action") == Some("AssumeRoleWithOIDC") && param("Version") == Some(STS_VERSION) {
            let params: Vec<(String, String)> = query.iter().chain(&form).cloned().collect();
            return match self.sts.assume_role_with_oidc(&params, &self.ram, now_ms) {
                Ok(v) => (200, v),
                Err(f) => fault_body(f),
            };
        }
        if let Some(id) = access_key_of(&incoming)
            && let Err(f) = self.sts.check_expired(&id, now_ms)
        {
            return fault_body(f);
        }
        let call = {
            let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
            let mut keys = self.keys.clone();
            keys.extend(self.sts.valid_keys(now_ms));
            auth::authenticate(&incoming, &keys, &mut nonces, unix_now())
        };
        let call = match call {
            Ok(c) => c,
            Err(f) => return fault_body(f),
        };
        if !self.faults.delay.is_zero() {
            tokio::time::sleep(self.faults.delay).await;
        }
        if let Some(f) = self.next_fault() {
            return fault_body(f);
        }
        if call.version == EHPC_VERSION {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            return match self.ehpc.handle(&call, &self.ecs, now_ms) {
                Ok(v) => (200, v),
                Err(f) => fault_body(f),
            };
        }
        if call.version == STS_VERSION && call.action == "AssumeRole" {
            return match self.sts.assume_role(&call.params, &self.ram, now_ms) {
                Ok(v) => (200, v),
                Err(f) => fault_body(f),
            };
        }
        if call.version == RAM_VERSION {
            return match self.ram.handle(&call) {
                Ok(v) => (200, v),
                Err(f) => fault_body(f),
            };
        }
        if call.version != ECS_VERSION {
            return fault_body(ApiFault::new(
                400,
                "InvalidParameter",
                "The specified parameter \"Action or Version\" is not valid.",
            ));
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match self.ecs.handle(&call, now_ms).await {
            Ok(v) => (200, v),
            Err(f) => fault_body(f),
        }
    }
}

/// The AccessKey ID a request claims: V3 `Credential=`, else V2 `AccessKeyId`.
fn access_key_of(req: &Incoming<'_>) -> Option<String> {
    let v3 = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .and_then(|(_, v)| auth::parse_v3_authorization(v))
        .map(|a| a.access_key_id);
    v3.or_else(|| {
        req.query
            .iter()
            .chain(req.form)
            .find(|(k, _)| k == "AccessKeyId")
            .map(|(_, v)| v.clone())
    })
}

fn fault_body(f: ApiFault) -> (u16, Value) {
    (
        f.status,
        json!({
            "HostId": "ecs.aliyuncs.com",
            "Code": f.code,
            "Message": f.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&product=Ecs", f.code),
        }),
    )
}

/// Binds `config.listen` and prepares the service.
pub async fn bind(config: &SimConfig) -> std::io::Result<Bound> {
    let sim = Arc::new(Sim::new(config)?);
    let listener = TcpListener::bind(config.listen).await?;
    Ok(Bound {
        addr: listener.local_addr()?,
        listener,
        sim,
    })
}

impl Bound {
    /// The emulated STS, for the S3 server to accept the credentials it issues.
    pub fn sts(&self) -> Arc<Sts> {
        self.sim.sts.clone()
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> std::io::Result<()> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let sim = self.sim.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let sim = sim.clone();
                    async move {
                        let (status, mut value) = sim.answer(req).await;
                        let request_id = super::ecs::new_request_id();
                        if let Value::Object(m) = &mut value {
                            m.insert("RequestId".into(), Value::String(request_id.clone()));
                        }
                        let throttled = value["Code"]
                            .as_str()
                            .is_some_and(|c| c.starts_with("Throttling"));
                        let body = serde_json::to_vec(&value).unwrap_or_default();
                        let mut resp = Response::builder()
                            .status(status)
                            .header("content-type", "application/json;charset=utf-8")
                            .header("x-acs-request-id", request_id);
                        if throttled {
                            // Milliseconds to wait, as the service hints it.
                            resp = resp.header("x-acs-retry-after", THROTTLE_RETRY_AFTER_MS);
                        }
                        resp.body(Full::new(Bytes::from(body)))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    }
}

//! The HTTP seam of the RPC client: plain request/answer values, the [`Transport`] trait the
//! client calls, and the real implementation over reqwest (rustls). Errors never carry the
//! URL, because V2 URLs hold the signature and the STS token.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// An HTTP request as the transport sends it.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: &'static str,
    /// Full URL including the encoded query.
    pub url: String,
    /// Headers to send; `host` is listed because it is signed, the transport may derive it
    /// from the URL instead.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    /// Shows only the method and header names: URLs and header values may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why an exchange produced no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportErrorKind {
    Connect,
    Timeout,
    Other,
}

/// A failed exchange, without the URL.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

/// The HTTP client could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct SetupError(pub String);

/// How one call of a cloud API fails, its service's error answer being `A`: the one shape of
/// [`RpcError`](super::rpc::RpcError) (Alibaba Cloud) and
/// [`KsyunError`](crate::ksyun::sigv4::KsyunError) (ksyun).
#[derive(Debug, thiserror::Error)]
pub enum CallError<A> {
    /// A request broke a documented rule; nothing was sent.
    #[error("request not sent")]
    Invalid(#[from] super::validate::Invalid),
    /// The service answered with an error.
    #[error("{action} failed")]
    Api {
        action: &'static str,
        #[source]
        source: Box<A>,
    },
    /// No answer (connection refused, timeout …).
    #[error("{action}: no answer from the endpoint")]
    Transport {
        action: &'static str,
        #[source]
        source: TransportError,
    },
    /// A 2xx answer that is not the expected JSON.
    #[error("{action}: cannot decode the answer")]
    Decode {
        action: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be signed (the message names no secret); only a SigV4 signer
    /// can fail so.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl<A> From<SetupError> for CallError<A> {
    fn from(e: SetupError) -> Self {
        CallError::Setup(e.0)
    }
}

impl<A> CallError<A> {
    /// The service's error, when there is one.
    pub fn api(&self) -> Option<&A> {
        match self {
            CallError::Api { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The body of `action`'s answer `sent` when it is a success (2xx); else the service's error,
/// which `parse` reads from the answer, or the transport's.
pub fn answer<A>(
    action: &'static str,
    sent: Result<HttpResponse, TransportError>,
    parse: impl FnOnce(&HttpResponse) -> A,
) -> Result<Vec<u8>, CallError<A>> {
    match sent {
        Ok(resp) if (200..300).contains(&resp.status) => Ok(resp.body),
        Ok(resp) => Err(CallError::Api {
            action,
            source: Box::new(parse(&resp)),
        }),
        Err(source) => Err(CallError::Transport { action, source }),
    }
}

/// Future returned by [`Transport::send`].
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'a>>;

/// Sends one HTTP request. Injected so tests and other runtimes can swap it.
pub trait Transport: Send + Sync {
    /// Sends `req` and returns the full answer.
    fn send(&self, req: HttpRequest) -> SendFuture<'_>;
}

/// The real transport: reqwest with rustls.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport whose exchanges time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, SetupError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SetupError(e.without_url().to_string()))?;
        Ok(Self { client })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: HttpRequest) -> SendFuture<'_> {
        Box::pin(async move {
            let method =
                reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| TransportError {
                    kind: TransportErrorKind::Other,
                    message: e.to_string(),
                })?;
            let mut builder = self.client.request(method, &req.url);
            for (k, v) in &req.headers {
                if !k.eq_ignore_ascii_case("host") {
                    builder = builder.header(k, v);
                }
            }
            let classify = |e: reqwest::Error| TransportError {
                kind: if e.is_timeout() {
                    TransportErrorKind::Timeout
                } else if e.is_connect() {
                    TransportErrorKind::Connect
                } else {
                    TransportErrorKind::Other
                },
                message: error_chain(&e.without_url()),
            };
            let resp = builder.body(req.body).send().await.map_err(classify)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.bytes().await.map_err(classify)?.to_vec();
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }
}

/// `error: cause: cause …` of an error and its sources, for logs and transport messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

//! Cloud APIs: Alibaba Cloud (ECS, E-HPC) and Kingsoft Cloud (KEC) clients.
//!
//! Owns: credentials, request signing, the RPC transport with retries, typed requests and
//! responses. Must not touch image files or object uploads.

pub mod aliyun;
pub mod ksyun;

/// `(scheme, authority)` of an endpoint given as `host[:port]` or `http(s)://host[:port]`:
/// HTTPS when no scheme is given; a trailing `/` is dropped.
pub fn split_endpoint(raw: &str) -> (String, String) {
    let (scheme, rest) = if let Some(r) = raw.strip_prefix("http://") {
        ("http", r)
    } else if let Some(r) = raw.strip_prefix("https://") {
        ("https", r)
    } else {
        ("https", raw)
    };
    (scheme.to_string(), rest.trim_end_matches('/').to_string())
}

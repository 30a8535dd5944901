//! What OSS refuses in its S3-compatible API before it looks at the operation
//! (docs/CLOUD-API.md §OSS), checked in front of the S3 service:
//!
//! - path-style addressing on a named host: OSS takes only virtual-hosted requests
//!   (`<bucket>.<endpoint>`); `<endpoint>/<bucket>/…` is 403 `SecondLevelDomainForbidden`.
//!   The emulator's named endpoint is `localhost:<port>`, so `<bucket>.localhost:<port>` is
//!   virtual-hosted; requests to its IP address may name the bucket in the path (clients of a
//!   server on an IP address have no other way);
//! - an `aws-chunked` body unless `x-amz-content-sha256` is
//!   `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (OSS error 0017-00000804, 400 `InvalidArgument`): the
//!   CRC32 trailers current AWS SDKs send by default;
//! - `UNSIGNED-PAYLOAD` on PUT and POST: there `x-amz-content-sha256` must be the SHA-256 of the
//!   body (OSS error 0002-00000427; the code is not on that page, `InvalidArgument` is what
//!   OSS answers for its other header errors, *unverified*). s3s then checks a given hash
//!   against the body (`XAmzContentSHA256Mismatch` at its end).

use std::net::IpAddr;

use hyper::Request;

/// An OSS error answer: HTTP status, code, message and OSS's `x-oss-ec` error id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
    /// OSS's error id (`x-oss-ec`), where its documentation gives one.
    pub ec: Option<&'static str>,
}

/// The named host of the emulator's endpoint (its port aside).
pub(super) const NAMED_HOST: &str = "localhost";

/// The refusal OSS gives `req` before any operation, if any; `unsigned_ok` lets
/// `UNSIGNED-PAYLOAD` writes through, as a plain S3 server would.
pub(super) fn refusal<B>(req: &Request<B>, unsigned_ok: bool) -> Option<Refusal> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let host = header("host").unwrap_or_default();
    if path_style_on_name(host, req.uri().path()) {
        return Some(Refusal {
            status: 403,
            code: "SecondLevelDomainForbidden",
            message: "The bucket you are attempting to access must be addressed using OSS third \
                      level domain.",
            ec: None,
        });
    }
    let sha = header("x-amz-content-sha256").unwrap_or_default();
    let chunked = header("content-encoding").is_some_and(|e| {
        e.split(',')
            .any(|c| c.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    if chunked && sha != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
        return Some(Refusal {
            status: 400,
            code: "InvalidArgument",
            message: "aws-chunked encoding is not supported with the specified \
                      x-amz-content-sha256 value.",
            ec: Some("0017-00000804"),
        });
    }
    let writes = req.method() == hyper::Method::PUT || req.method() == hyper::Method::POST;
    if writes && !unsigned_ok && sha == "UNSIGNED-PAYLOAD" && header("authorization").is_some() {
        return Some(Refusal {
            status: 400,
            code: "InvalidArgument",
            message: "The value of the X-Amz-Content-SHA256 header is invalid: on PUT and POST \
                      it is the SHA-256 of the uploaded content.",
            ec: Some("0002-00000427"),
        });
    }
    None
}

/// A request to the named host (not `<bucket>.<named host>`) whose path names a bucket.
fn path_style_on_name(host: &str, path: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() || bare.parse::<IpAddr>().is_ok() {
        return false;
    }
    name.eq_ignore_ascii_case(NAMED_HOST)
        && path.trim_start_matches('/').split('/').next() != Some("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn addressing() {
        let code = |r: &Request<()>| refusal(r, false).map(|r| r.code);
        assert_eq!(
            code(&req("GET", "localhost:9000", "/b/k", &[])),
            Some("SecondLevelDomainForbidden")
        );
        assert_eq!(
            code(&req("GET", "LOCALHOST", "/b", &[])),
            Some("SecondLevelDomainForbidden")
        );
        assert_eq!(code(&req("GET", "localhost:9000", "/", &[])), None);
        assert_eq!(code(&req("GET", "b.localhost:9000", "/k", &[])), None);
        assert_eq!(code(&req("GET", "127.0.0.1:9000", "/b/k", &[])), None);
        assert_eq!(code(&req("GET", "[::1]:9000", "/b/k", &[])), None);
    }

    #[test]
    fn payload_rules() {
        let code = |r: &Request<()>| refusal(r, false).map(|r| r.ec);
        let ip = "127.0.0.1:1";
        let auth = ("authorization", "AWS4-HMAC-SHA256 Credential=x");
        let trailer = [
            ("content-encoding", "aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            auth,
        ];
        assert_eq!(
            code(&req("PUT", ip, "/b/k", &trailer)),
            Some(Some("0017-00000804"))
        );
        let signed_chunks = [
            ("content-encoding", "aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            auth,
        ];
        assert_eq!(code(&req("PUT", ip, "/b/k", &signed_chunks)), None);
        let unsigned = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), auth];
        assert_eq!(
            code(&req("PUT", ip, "/b/k", &unsigned)),
            Some(Some("0002-00000427"))
        );
        assert_eq!(
            code(&req("POST", ip, "/b/k", &unsigned)),
            Some(Some("0002-00000427"))
        );
        assert_eq!(code(&req("GET", ip, "/b/k", &unsigned)), None);
        // A plain S3 server (`imgport sim --s3-unsigned-payload`) takes them.
        assert_eq!(refusal(&req("PUT", ip, "/b/k", &unsigned), true), None);
        let hashed = [
            (
                "x-amz-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            auth,
        ];
        assert_eq!(code(&req("PUT", ip, "/b/k", &hashed)), None);
    }
}

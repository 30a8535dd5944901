//! Where requests go and how the S3 client must behave for Alibaba OSS and for generic
//! S3-compatible servers (docs/CLOUD-API.md §OSS). Pure values and rules; no I/O.

use std::time::Duration;

use super::StoreError;

mod regions;
pub use regions::{OSS_REGIONS, OssRegion, oss_region};

/// Settings of an [`S3Store`](super::S3Store).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Region id: the OSS region (e.g. `cn-hangzhou`) or the S3 signing region.
    pub region: String,
    /// Endpoint URL (scheme and host, no bucket).
    pub endpoint: String,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. OSS accepts
    /// only virtual-hosted style (403 `SecondLevelDomainForbidden` otherwise, docs/CLOUD-API.md
    /// §OSS); generic servers on an IP address or `localhost` need path style.
    pub path_style: bool,
    /// Sign the SHA-256 of each part body (`x-amz-content-sha256`). On by default: OSS wants
    /// PUT and POST bodies signed with their SHA-256 (docs/CLOUD-API.md §OSS); the stream
    /// computes each part's hash while it produces the part, so the body is not hashed twice.
    /// Off sends `UNSIGNED-PAYLOAD`, which S3 accepts (`Content-MD5` still protects every part).
    pub sign_payload: bool,
    /// Connect timeout of each request.
    pub connect_timeout: Duration,
    /// Timeout of each small request (Create, List, Complete, Head, Abort).
    pub request_timeout: Duration,
    /// Slowest transfer rate a part may have before its attempt times out (bytes/s); the
    /// part's timeout is `request_timeout + size / min_rate`.
    pub min_rate: u64,
    /// The endpoint's identity in kept state (journals, records) when the URL is not stable:
    /// a sandbox is named by its directory ([`imgport_base::destination::sandbox_endpoint`]), not by
    /// its random port. `None`: the URL.
    pub identity: Option<String>,
}

/// Default timeouts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// 256 KiB/s: a 32 MiB part gets 60 s + 128 s.
const MIN_RATE: u64 = 256 * 1024;

impl StoreConfig {
    /// OSS in `region` through its public endpoint, or its internal (VPC) one when
    /// `internal`: the hosts OSS documents for the region ([`OSS_REGIONS`],
    /// docs/CLOUD-API.md §Endpoints). Kept state names the bucket by the public endpoint
    /// either way, so an upload started on one resumes on the other.
    pub fn oss(region: &str, internal: bool) -> Result<Self, StoreError> {
        check_region(region)?;
        let Some(hosts) = oss_region(region) else {
            return Err(StoreError::Config(format!(
                "region {region:?}: OSS documents no endpoint for it (the regions imgport knows \
                 are in docs/CLOUD-API.md §Endpoints); give the bucket's endpoint with \
                 --oss-endpoint"
            )));
        };
        let public = format!("https://{}", hosts.public);
        let host = match (internal, hosts.internal) {
            (false, _) => return Ok(Self::with_endpoint(region, public, false)),
            (true, Some(h)) => h,
            (true, None) => {
                return Err(StoreError::Config(format!(
                    "region {region:?}: OSS documents no internal endpoint for it; upload \
                     without --internal"
                )));
            }
        };
        let mut c = Self::with_endpoint(region, format!("https://{host}"), false);
        c.identity = Some(public);
        Ok(c)
    }

    /// A custom endpoint (OSS custom domain, accelerate endpoint, or any S3-compatible
    /// server). A URL without a scheme gets `https://`. Buckets are addressed in the host
    /// (`bucket.endpoint`, the only style OSS accepts) unless the host is an IP address, which
    /// cannot carry one; `path_style` forces `endpoint/bucket` on a named host too (S3
    /// servers that want it; OSS answers 403 `SecondLevelDomainForbidden`).
    pub fn custom(region: &str, endpoint: &str, path_style: bool) -> Result<Self, StoreError> {
        check_region(region)?;
        let endpoint = endpoint.trim_end_matches('/');
        let url = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        let host = url.split_once("://").map_or("", |(_, h)| h);
        let host_ok = !host.is_empty()
            && !host.starts_with(':')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !host_ok
            || endpoint
                .trim_start_matches("https:")
                .trim_start_matches("http:")
                .is_empty()
        {
            return Err(StoreError::Config(format!(
                "endpoint {endpoint:?}: expected a scheme and host (and port), no path"
            )));
        }
        let path_style = path_style || host_is_ip(host);
        Ok(Self::with_endpoint(region, url, path_style))
    }

    fn with_endpoint(region: &str, endpoint: String, path_style: bool) -> Self {
        Self {
            region: region.to_string(),
            endpoint,
            path_style,
            sign_payload: true,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            min_rate: MIN_RATE,
            identity: None,
        }
    }

    /// The endpoint is Alibaba Cloud OSS: its host is under `aliyuncs.com` (the regional,
    /// internal and accelerate endpoints). Other endpoints may be any S3-compatible server.
    pub fn is_oss(&self) -> bool {
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, h)| h);
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .to_ascii_lowercase();
        name.ends_with(".aliyuncs.com")
    }

    /// Timeout of one UploadPart attempt of `size` bytes.
    pub fn part_timeout(&self, size: u64) -> Duration {
        self.request_timeout + Duration::from_secs(size / self.min_rate.max(1))
    }
}

/// The host of `host[:port]` is an IPv4 or bracketed IPv6 address.
fn host_is_ip(host_port: &str) -> bool {
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host_port,
    };
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    bare.unwrap_or(host).parse::<std::net::IpAddr>().is_ok()
}

/// Smallest part OSS accepts but the last (UploadPart, help doc 31993: 100 KB–5 GB); the
/// plan's `PartSize` is checked against these once, where the plan is made.
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// Largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// Region ids are lower-case letters, digits and hyphens (they become part of a host name).
fn check_region(region: &str) -> Result<(), StoreError> {
    if imgport_base::destination::is_region_id(region) {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "region {region:?}: expected lower-case letters, digits and '-'"
        )))
    }
}

/// OSS bucket names: 3–63 characters of lower-case letters, digits and hyphens, starting and
/// ending with a letter or digit (OSS "Bucket naming conventions").
pub fn check_bucket(bucket: &str) -> Result<(), StoreError> {
    let b = bucket.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "bucket {bucket:?}: 3-63 lower-case letters, digits or '-', not starting or ending with '-'"
        )))
    }
}

/// Object keys: 1–1023 bytes of UTF-8, not starting with `/` or `\` (OSS "Object naming").
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > 1023 || key.starts_with('/') || key.starts_with('\\') {
        return Err(StoreError::Config(format!(
            "object key {key:?}: 1-1023 bytes, not starting with '/' or '\\'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oss_endpoints_from_region() {
        let c = StoreConfig::oss("cn-hangzhou", false).unwrap();
        assert_eq!(c.endpoint, "https://oss-cn-hangzhou.aliyuncs.com");
        assert!(!c.path_style, "OSS needs virtual-hosted style");
        let c = StoreConfig::oss("cn-beijing", true).unwrap();
        assert_eq!(c.endpoint, "https://oss-cn-beijing-internal.aliyuncs.com");
        // Kept state names the bucket by its public endpoint either way.
        assert_eq!(
            c.identity.as_deref(),
            Some("https://oss-cn-beijing.aliyuncs.com")
        );
        let c = StoreConfig::oss("cn-shenzhen-finance-1", true).unwrap();
        assert_eq!(c.endpoint, "https://oss-cn-szfinance-internal.aliyuncs.com");
        let e = StoreConfig::oss("cn-atlantis-1", false).unwrap_err();
        assert!(e.to_string().contains("--oss-endpoint"), "{e}");
        let e = StoreConfig::oss("rg-china-mainland", true).unwrap_err();
        assert!(e.to_string().contains("without --internal"), "{e}");
        assert!(StoreConfig::oss("cn-hangzhou.evil.com/", false).is_err());
        assert!(StoreConfig::oss("", false).is_err());
    }

    #[test]
    fn custom_endpoints() {
        let c = StoreConfig::custom("cn-hangzhou", "img.example.com", false).unwrap();
        assert_eq!(c.endpoint, "https://img.example.com");
        let c = StoreConfig::custom("us-east-1", "http://127.0.0.1:9000/", true).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9000");
        assert!(c.path_style);
        // Virtual-hosted on a name, path style only on an IP address (or when forced).
        let c = StoreConfig::custom("cn-hangzhou", "http://localhost:9000", false).unwrap();
        assert!(!c.path_style);
        assert!(
            StoreConfig::custom("cn-hangzhou", "http://127.0.0.1:9000", false)
                .unwrap()
                .path_style
        );
        assert!(
            StoreConfig::custom("cn-hangzhou", "http://[::1]:9000", false)
                .unwrap()
                .path_style
        );
        assert!(
            StoreConfig::custom("cn-hangzhou", "10.0.0.1", false)
                .unwrap()
                .path_style
        );
        assert!(
            StoreConfig::custom("cn-hangzhou", "http://localhost:9000", true)
                .unwrap()
                .path_style
        );
        assert!(StoreConfig::custom("us-east-1", "http://h/path", true).is_err());
        assert!(StoreConfig::custom("us-east-1", "https://", true).is_err());
        assert!(StoreConfig::custom("us-east-1", "http://u@h", true).is_err());
        assert!(StoreConfig::custom("us-east-1", "http://h?x", true).is_err());
    }

    #[test]
    fn oss_endpoints_are_told_from_other_s3_servers() {
        let oss = |r: Result<StoreConfig, StoreError>| r.unwrap().is_oss();
        assert!(oss(StoreConfig::oss("cn-hangzhou", false)));
        assert!(oss(StoreConfig::oss("cn-hangzhou", true)));
        assert!(oss(StoreConfig::custom(
            "cn-hangzhou",
            "oss-accelerate.aliyuncs.com",
            false
        )));
        assert!(oss(StoreConfig::custom(
            "cn-hangzhou",
            "https://OSS-CN-HANGZHOU.ALIYUNCS.COM:443",
            false
        )));
        for other in [
            "http://127.0.0.1:9000",
            "minio.example.com",
            "s3.amazonaws.com",
            "aliyuncs.com.example.net",
        ] {
            assert!(
                !oss(StoreConfig::custom("us-east-1", other, false)),
                "{other}"
            );
        }
    }

    #[test]
    fn names_and_timeouts() {
        assert!(check_bucket("images-01").is_ok());
        for bad in ["ab", "Images", "-abc", "abc-", "a_b_c", &"a".repeat(64)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
        assert!(check_key("disks/a.qcow2").is_ok());
        assert!(check_key("/a").is_err() && check_key("").is_err());
        let c = StoreConfig::oss("cn-hangzhou", false).unwrap();
        assert_eq!(c.part_timeout(32 << 20), Duration::from_secs(60 + 128));
    }
}

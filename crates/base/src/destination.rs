//! Where kept state points. Every piece of state imgport keeps between runs (upload journals,
//! the batch journal, claims, done records, content-digest look-ups) names the destination it
//! describes, so that state recorded for one destination never satisfies another.
//!
//! Owns: the [`Destination`] value and its stable, non-secret identity.
//! Must not touch: credentials' secrets (only a hash of the AccessKey ID is kept).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether `s` has the shape of a region id: 1 to 64 lower-case letters, digits and hyphens,
/// so that it is safe inside a host name (`oss-<region>.aliyuncs.com`).
pub fn is_region_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The account, region, endpoint and bucket that kept state describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// A stable, non-secret account id: [`account_id`] of the AccessKey ID.
    pub account: String,
    /// Cloud region, e.g. `cn-hangzhou`.
    pub region: String,
    /// The object store's endpoint identity: its URL, or [`sandbox_endpoint`] for a sandbox
    /// (whose port changes from run to run).
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
}

impl Destination {
    /// A short hex fingerprint of the whole destination, for file names and object keys.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for field in [&self.account, &self.region, &self.endpoint, &self.bucket] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        hex16(&h.finalize())
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bucket {} at {} in {} (account {})",
            self.bucket, self.endpoint, self.region, self.account
        )
    }
}

/// A stable account id that names no secret: `ak-` and 16 hex digits of the SHA-256 of the
/// AccessKey ID.
pub fn account_id(access_key_id: &str) -> String {
    format!("ak-{}", hex16(&Sha256::digest(access_key_id.as_bytes())))
}

/// The endpoint identity of a sandbox: its directory, made absolute, not its random port.
pub fn sandbox_endpoint(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("sandbox:{}", dir.display())
}

fn hex16(digest: &[u8]) -> String {
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_ids_are_host_safe() {
        for ok in ["cn-hangzhou", "eu-central-1", "cn-beijing-finance-1"] {
            assert!(is_region_id(ok), "{ok}");
        }
        for bad in [
            "",
            "CN-hangzhou",
            "cn_hangzhou",
            "a.b",
            "x/y",
            &"a".repeat(65),
        ] {
            assert!(!is_region_id(bad), "{bad}");
        }
    }

    fn dest(bucket: &str) -> Destination {
        Destination {
            account: account_id("AKID"),
            region: "cn-hangzhou".into(),
            endpoint: "https://oss-cn-hangzhou.aliyuncs.com".into(),
            bucket: bucket.into(),
        }
    }

    #[test]
    fn the_account_id_hides_the_key_and_is_stable() {
        let id = account_id("LTAIexamplekey");
        assert_eq!(id, account_id("LTAIexamplekey"));
        assert_ne!(id, account_id("LTAIotherkey"));
        assert!(
            !id.contains("LTAI") && id.starts_with("ak-") && id.len() == 19,
            "{id}"
        );
    }

    #[test]
    fn any_field_changes_the_fingerprint() {
        let a = dest("images");
        assert_eq!(a.fingerprint(), dest("images").fingerprint());
        assert_ne!(a.fingerprint(), dest("images2").fingerprint());
        let mut other_region = dest("images");
        other_region.region = "eu-central-1".into();
        assert_ne!(a.fingerprint(), other_region.fingerprint());
    }

    #[test]
    fn a_sandbox_is_named_by_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let a = sandbox_endpoint(dir.path());
        assert_eq!(a, sandbox_endpoint(&dir.path().join(".")));
        assert!(a.starts_with("sandbox:/"), "{a}");
    }
}

//! The emulated STS (2015-04-01, docs/CLOUD-API.md §Credentials): AssumeRole, signed by a key
//! of the account, and AssumeRoleWithOIDC, anonymous, both for a role of the emulated RAM.
//! Issued credentials expire after `DurationSeconds` (900–3600, the default 3600), or after
//! [`StsConfig::lifetime`] when a test asks for short-lived ones; the server refuses an
//! expired token with `InvalidSecurityToken.Expired` before it checks the signature. The
//! embedded S3 server shares this STS ([`crate::s3::S3Server::accept_sts`]) and refuses the
//! issued credentials the way OSS does once they expire.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::auth::Key;
use super::fault::ApiFault;
use super::params::P;
use super::ram::{ACCOUNT, Ram};
use super::wire::iso_utc;

/// The `Version` of STS.
pub const STS_VERSION: &str = "2015-04-01";

/// How the emulated STS issues credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct StsConfig {
    /// Lifetime of every issued credential instead of `DurationSeconds` (a test fault: the
    /// real service issues at least 900 s).
    pub lifetime: Option<Duration>,
}

struct IssuedKey {
    key: Key,
    expires_ms: u64,
}

/// The emulated STS and the credentials it issued.
pub struct Sts {
    config: StsConfig,
    issued: Mutex<Vec<IssuedKey>>,
}

fn invalid(name: &str, why: &str) -> ApiFault {
    ApiFault::new(
        400,
        &format!("InvalidParameter.{name}"),
        format!("The parameter {name} is invalid: {why}."),
    )
}

impl Sts {
    /// An STS issuing as `config` says.
    pub fn new(config: StsConfig) -> Self {
        Self {
            config,
            issued: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IssuedKey>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The issued keys still valid at `now_ms`.
    pub fn valid_keys(&self, now_ms: u64) -> Vec<Key> {
        self.lock()
            .iter()
            .filter(|k| k.expires_ms > now_ms)
            .map(|k| k.key.clone())
            .collect()
    }

    /// How many credentials were issued.
    pub fn issued_count(&self) -> usize {
        self.lock().len()
    }

    /// The issued key `access_key_id` and when it expires (ms since the epoch), if STS
    /// issued it (the S3 server's check of `x-amz-security-token`).
    pub fn issued(&self, access_key_id: &str) -> Option<(Key, u64)> {
        self.lock()
            .iter()
            .find(|k| k.key.id == access_key_id)
            .map(|k| (k.key.clone(), k.expires_ms))
    }

    /// `InvalidSecurityToken.Expired` when `access_key_id` is an issued key expired at
    /// `now_ms`.
    pub fn check_expired(&self, access_key_id: &str, now_ms: u64) -> Result<(), ApiFault> {
        let expired = self
            .lock()
            .iter()
            .any(|k| k.key.id == access_key_id && k.expires_ms <= now_ms);
        if expired {
            return Err(ApiFault::new(
                400,
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            ));
        }
        Ok(())
    }

    /// The role name of `arn` when it is a role of the emulated account.
    fn role_of(arn: &str) -> Result<&str, ApiFault> {
        arn.strip_prefix(&format!("acs:ram::{ACCOUNT}:role/"))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("RoleArn", "not a role ARN of this account"))
    }

    fn issue(&self, p: &P<'_>, ram: &Ram, now_ms: u64) -> Result<Value, ApiFault> {
        let arn = p.required("RoleArn")?;
        let role = Self::role_of(arn)?;
        if !ram.has_role(role) {
            return Err(ApiFault::new(
                404,
                "EntityNotExist.Role",
                format!("The role not exists: {arn}."),
            ));
        }
        let session = p.required("RoleSessionName")?;
        let session_ok = (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
        if !session_ok {
            return Err(invalid(
                "RoleSessionName",
                "2-64 characters of letters, digits and _.@-",
            ));
        }
        let seconds: u64 = match p.get("DurationSeconds") {
            None | Some("") => 3600,
            Some(s) => s
                .parse()
                .ok()
                .filter(|n| (900..=3600).contains(n))
                .ok_or_else(|| invalid("DurationSeconds", "must be 900 to 3600 for this role"))?,
        };
        let life_ms = self
            .config
            .lifetime
            .map_or(seconds * 1000, |d| d.as_millis() as u64);
        let expires_ms = now_ms + life_ms;
        let n = fastrand::u64(..);
        let key = Key {
            id: format!("STS.sim{n:016x}"),
            secret: format!("sim-sts-secret-{:016x}", fastrand::u64(..)),
            security_token: Some(format!("CAISsim{:032x}", fastrand::u128(..))),
        };
        let answer = json!({
            "Credentials": {
                "AccessKeyId": key.id,
                "AccessKeySecret": key.secret,
                "SecurityToken": key.security_token,
                "Expiration": iso_utc((expires_ms / 1000) as i64),
            },
            "AssumedRoleUser": {
                "Arn": format!("acs:ram::{ACCOUNT}:assumed-role/{role}/{session}"),
                "AssumedRoleId": format!("3{:017}:{session}", n % 100_000_000_000_000_000),
            },
        });
        self.lock().push(IssuedKey { key, expires_ms });
        Ok(answer)
    }

    /// AssumeRole, authenticated by the server.
    pub fn assume_role(
        &self,
        params: &[(String, String)],
        ram: &Ram,
        now_ms: u64,
    ) -> Result<Value, ApiFault> {
        self.issue(&P(params), ram, now_ms)
    }

    /// AssumeRoleWithOIDC: anonymous; the provider must be of this account and the token
    /// JWT-shaped (three dot-separated parts).
    pub fn assume_role_with_oidc(
        &self,
        params: &[(String, String)],
        ram: &Ram,
        now_ms: u64,
    ) -> Result<Value, ApiFault> {
        let p = P(params);
        let provider = p.required("OIDCProviderArn")?;
        if !provider.starts_with(&format!("acs:ram::{ACCOUNT}:oidc-provider/")) {
            return Err(invalid(
                "OIDCProviderArn",
                "not an OIDC provider of this account",
            ));
        }
        let token = p.required("OIDCToken")?;
        if token.split('.').count() != 3 {
            return Err(ApiFault::new(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is not a JWT.",
            ));
        }
        self.issue(&p, ram, now_ms)
    }
}

//! STS credentials at the S3 server, as OSS's S3-compatible API takes them
//! (docs/CLOUD-API.md §OSS, "STS credentials"): the AccessKey ID of the SigV4 scope with the
//! token in `x-amz-security-token` (or `X-Amz-Security-Token` of a presigned URL).
//!
//! Checked in front of the S3 service, before the signature, against the emulated STS the
//! server shares ([`super::S3Server::accept_sts`]): an issued key past its expiry is 403
//! `SecurityTokenExpired` (OSS error 0002-00000007); an issued key whose token is missing or
//! not the issued one is 403 `InvalidSecurityToken` (0002-00000006). A key STS never issued
//! gets s3s's 403 `InvalidAccessKeyId` from [`KeyStore`]. These rules are the emulator's own:
//! nothing of the client's signing is used.

use std::sync::Arc;

use hyper::Request;

use super::oss::Refusal;
use super::state::Shared;
use crate::form::parse_form;
use crate::server::{
    TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, TEST_SECURITY_TOKEN, TEST_STS_KEY_ID,
};
use crate::sigv4::parse_authorization;

/// The AccessKey ID and security token a request carries (header or presigned query).
fn claimed<B>(req: &Request<B>) -> (Option<String>, Option<String>) {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let query = req.uri().query().map(parse_form).unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let id = header("authorization")
        .and_then(|a| parse_authorization(&a))
        .map(|a| a.access_key_id)
        .or_else(|| {
            param("X-Amz-Credential")
                .and_then(|c| c.split('/').next().map(str::to_string))
                .filter(|id| !id.is_empty())
        });
    let token = header("x-amz-security-token").or_else(|| param("X-Amz-Security-Token"));
    (id, token)
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

const EXPIRED: Refusal = Refusal {
    status: 403,
    code: "SecurityTokenExpired",
    message: "The security token you provided has expired.",
    ec: Some("0002-00000007"),
};

const INVALID: Refusal = Refusal {
    status: 403,
    code: "InvalidSecurityToken",
    message: "The security token you provided is invalid.",
    ec: Some("0002-00000006"),
};

/// OSS's refusal of the STS credentials `req` carries, if any. An issued key that passes is
/// recorded as used ([`Shared::note_sts_key`]).
pub(super) fn refusal<B>(req: &Request<B>, shared: &Shared) -> Option<Refusal> {
    let (id, token) = claimed(req);
    let id = id?;
    if id == TEST_STS_KEY_ID {
        return (token.as_deref() != Some(TEST_SECURITY_TOKEN)).then_some(INVALID);
    }
    let sts = shared.sts()?;
    let (key, expires_ms) = sts.issued(&id)?;
    if expires_ms <= now_ms() {
        return Some(EXPIRED);
    }
    if token.is_none() || token != key.security_token {
        return Some(INVALID);
    }
    shared.note_sts_key(&id);
    None
}

/// The secrets s3s checks signatures with: the fixed test keys and every key the shared STS
/// issued (expiry and token are checked before, by [`refusal`]).
pub(super) struct KeyStore {
    pub(super) shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        if access_key == TEST_ACCESS_KEY_ID || access_key == TEST_STS_KEY_ID {
            return Ok(TEST_ACCESS_KEY_SECRET.into());
        }
        self.shared
            .sts()
            .and_then(|sts| sts.issued(access_key))
            .map(|(key, _)| key.secret.into())
            .ok_or_else(|| s3s::s3_error!(InvalidAccessKeyId))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::{ACCOUNT, ADMIN_ROLE, Ram, RamConfig};
    use crate::sts::{Sts, StsConfig};

    fn req(auth: Option<&str>, token: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method("GET").uri("/b/k");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        if let Some(t) = token {
            b = b.header("x-amz-security-token", t);
        }
        b.body(()).unwrap()
    }

    fn auth_of(id: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={id}/20260101/cn-hangzhou/s3/aws4_request, \
             SignedHeaders=host, Signature=00"
        )
    }

    /// An STS issuing credentials of `life_ms` and one issued (id, token).
    fn issued(life_ms: u64) -> (Arc<Sts>, String, String) {
        let sts = Arc::new(Sts::new(StsConfig {
            lifetime: Some(std::time::Duration::from_millis(life_ms)),
        }));
        let ram = Ram::open(RamConfig::default(), None).unwrap();
        let arn = format!("acs:ram::{ACCOUNT}:role/{ADMIN_ROLE}");
        let params = vec![
            ("RoleArn".to_string(), arn),
            ("RoleSessionName".to_string(), "unit".to_string()),
        ];
        let v = sts.assume_role(&params, &ram, now_ms()).unwrap();
        let c = &v["Credentials"];
        (
            sts,
            c["AccessKeyId"].as_str().unwrap().to_string(),
            c["SecurityToken"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn issued_keys_need_their_token_until_they_expire() {
        let (sts, id, token) = issued(60_000);
        let shared = Shared::default();
        shared.set_sts(sts);
        let code = |r: &Request<()>| refusal(r, &shared).map(|r| r.code);
        assert_eq!(code(&req(Some(&auth_of(&id)), Some(&token))), None);
        assert_eq!(
            code(&req(Some(&auth_of(&id)), Some("CAISother"))),
            Some("InvalidSecurityToken")
        );
        assert_eq!(
            code(&req(Some(&auth_of(&id)), None)),
            Some("InvalidSecurityToken")
        );
        // Keys STS did not issue are left to the signature check.
        assert_eq!(
            code(&req(Some(&auth_of("STS.unknown")), Some(&token))),
            None
        );
        assert_eq!(code(&req(Some(&auth_of(TEST_ACCESS_KEY_ID)), None)), None);
        assert_eq!(
            code(&req(Some(&auth_of(TEST_STS_KEY_ID)), Some("wrong"))),
            Some("InvalidSecurityToken")
        );
        assert_eq!(
            shared
                .stats
                .lock()
                .unwrap()
                .sts_keys
                .iter()
                .collect::<Vec<_>>(),
            [&id]
        );
        // A presigned URL carries both in the query.
        let url = format!(
            "/b/k?X-Amz-Credential={id}%2F20260101%2Fcn-hangzhou%2Fs3%2Faws4_request\
             &X-Amz-Security-Token=bad"
        );
        let r = Request::builder().uri(url).body(()).unwrap();
        assert_eq!(code(&r), Some("InvalidSecurityToken"));
    }

    #[test]
    fn expired_keys_are_refused_like_oss() {
        let (sts, id, token) = issued(1);
        let shared = Shared::default();
        shared.set_sts(sts);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let r = refusal(&req(Some(&auth_of(&id)), Some(&token)), &shared).unwrap();
        assert_eq!(
            (r.status, r.code, r.ec),
            (403, "SecurityTokenExpired", Some("0002-00000007"))
        );
        assert!(shared.stats.lock().unwrap().sts_keys.is_empty());
    }

    #[test]
    fn the_key_store_knows_issued_keys_only() {
        let (sts, id, _) = issued(60_000);
        let shared = Arc::new(Shared::default());
        let store = KeyStore {
            shared: shared.clone(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        use s3s::auth::S3Auth as _;
        assert!(
            rt.block_on(store.get_secret_key(&id)).is_err(),
            "no STS shared yet"
        );
        shared.set_sts(sts);
        assert!(rt.block_on(store.get_secret_key(&id)).is_ok());
        assert!(rt.block_on(store.get_secret_key("STS.other")).is_err());
        assert!(
            rt.block_on(store.get_secret_key(TEST_ACCESS_KEY_ID))
                .is_ok()
        );
    }
}

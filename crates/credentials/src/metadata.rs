//! The ECS instance metadata service: the STS credentials of the instance's RAM role
//! (docs/CLOUD-API.md §Credentials) and the instance's region (docs/CLOUD-API.md
//! §Metadata). One client for both: the IMDSv2 token first (hardened mode), as the
//! Alibaba SDKs do; a failed token step falls back to v1 requests.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::model::{
    CredentialError, Credentials, MAX_CONFIG_BYTES, METADATA_TIMEOUT, parse_expiration,
};
use imgport_base::secret::Secret;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleAnswer {
    #[serde(default)]
    code: String,
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    #[serde(default)]
    expiration: String,
}

type Cause = Option<Box<dyn std::error::Error + Send + Sync>>;

fn fail(step: &str, source: Cause) -> CredentialError {
    CredentialError::Metadata {
        step: step.to_string(),
        source,
    }
}

/// A session with the metadata service at `base`: its HTTP client and the IMDSv2 token.
struct Session {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

impl Session {
    /// Asks for a token (hardened mode); without one, requests go v1-style.
    async fn open(base: &str, timeout: Duration) -> Result<Self, CredentialError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| fail("building the HTTP client", Some(Box::new(e))))?;
        let token = client
            .put(format!("{base}/latest/api/token"))
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        let token = match token {
            Some(r) => r.text().await.ok(),
            None => None,
        };
        Ok(Self {
            base: base.to_string(),
            client,
            token,
        })
    }

    /// The body of `GET {base}{path}`, sent with the token; `what` names the step in errors.
    async fn get(&self, path: &str, what: &str) -> Result<Vec<u8>, CredentialError> {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("x-aliyun-ecs-metadata-token", t.trim());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fail(&format!("requesting {what}"), Some(Box::new(e))))?;
        if !resp.status().is_success() {
            return Err(fail(
                &format!("{what}: HTTP {}", resp.status().as_u16()),
                None,
            ));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| fail(&format!("reading {what}"), Some(Box::new(e))))?;
        if body.len() as u64 > MAX_CONFIG_BYTES {
            return Err(fail(&format!("{what}: answer too large"), None));
        }
        Ok(body.to_vec())
    }
}

/// Time the region probe may take in all (token, request, answer): short, so a machine off
/// ECS, where nothing answers at the metadata address, waits no longer than this, once.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// The region of the ECS instance this runs on, from the metadata service at `base`
/// (`/latest/meta-data/region-id`), within `timeout` in all. An error means no metadata
/// service answered as ECS's does: not on ECS, or the service is unreachable.
pub async fn instance_region(base: &str, timeout: Duration) -> Result<String, CredentialError> {
    let ask = async {
        let session = Session::open(base, timeout).await?;
        session
            .get("/latest/meta-data/region-id", "the instance's region")
            .await
    };
    let body = tokio::time::timeout(timeout, ask).await.map_err(|_| {
        fail(
            &format!("{base}: no answer within {} ms", timeout.as_millis()),
            None,
        )
    })??;
    let region = String::from_utf8_lossy(&body).trim().to_string();
    if imgport_base::destination::is_region_id(&region) {
        Ok(region)
    } else {
        Err(fail(
            &format!("region-id {region:?}: not a region id (lower-case letters, digits, '-')"),
            None,
        ))
    }
}

/// STS credentials of `role` from the metadata service at `base`.
pub(crate) async fn ecs_role(
    base: &str,
    role: &str,
) -> Result<(Credentials, Option<SystemTime>), CredentialError> {
    let session = Session::open(base, METADATA_TIMEOUT).await?;
    let body = session
        .get(
            &format!("/latest/meta-data/ram/security-credentials/{role}"),
            &format!("role {role:?}"),
        )
        .await?;
    let answer: RoleAnswer = serde_json::from_slice(&body).map_err(|e| {
        fail(
            &format!("parsing role {role:?}'s credentials"),
            Some(Box::new(e)),
        )
    })?;
    if !answer.code.is_empty() && answer.code != "Success" {
        return Err(fail(&format!("role {role:?}: Code {}", answer.code), None));
    }
    let expiration = parse_expiration(&answer.expiration);
    Ok((
        Credentials {
            access_key_id: answer.access_key_id,
            access_key_secret: Secret::new(answer.access_key_secret),
            security_token: Some(Secret::new(answer.security_token)),
        },
        expiration,
    ))
}

//! The ECS instance metadata service: the STS credentials of the instance's RAM role
//! (docs/CLOUD-API.md §Credentials).

use std::time::SystemTime;

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

/// STS credentials of `role` from the metadata service at `base` (IMDSv2 token first, as
/// the Alibaba SDKs do; a failed token step falls back to v1 requests).
pub(crate) async fn ecs_role(
    base: &str,
    role: &str,
) -> Result<(Credentials, Option<SystemTime>), CredentialError> {
    let fail = |step: &str, e: Option<Box<dyn std::error::Error + Send + Sync>>| {
        CredentialError::Metadata {
            step: step.to_string(),
            source: e,
        }
    };
    let client = reqwest::Client::builder()
        .timeout(METADATA_TIMEOUT)
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
    let mut req = client.get(format!(
        "{base}/latest/meta-data/ram/security-credentials/{role}"
    ));
    if let Some(t) = &token {
        req = req.header("x-aliyun-ecs-metadata-token", t.trim());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| fail("requesting the role's credentials", Some(Box::new(e))))?;
    if !resp.status().is_success() {
        return Err(fail(
            &format!("role {role:?}: HTTP {}", resp.status().as_u16()),
            None,
        ));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail("reading the role's credentials", Some(Box::new(e))))?;
    if body.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail("answer too large", None));
    }
    let answer: RoleAnswer = serde_json::from_slice(&body)
        .map_err(|e| fail("parsing the role's credentials", Some(Box::new(e))))?;
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

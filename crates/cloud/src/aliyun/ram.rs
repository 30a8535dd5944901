//! RAM (API 2015-05-01, RPC style, `ram.aliyuncs.com`): the import role ECS needs to read the
//! bucket (docs/CLOUD-API.md §RAM). [`check_import_role`] looks the role up (GetRole,
//! ListPoliciesForRole) and, when asked, creates it with the documented trust policy
//! (CreateRole) and attaches the system policy (AttachPolicyToRole).
//!
//! A check that could not be made (RAM answered AccessDenied, or no answer) is
//! [`RoleStatus::Unknown`]: reported as such, never as a role that is fine. The look-ups are
//! a pre-flight check, so they retry by [`CHECK_RETRY`] (two attempts): an unreachable RAM
//! endpoint gives "unknown" within a second instead of after ECS's retries (about 15 s);
//! CreateRole and AttachPolicyToRole, asked for, keep the client's own policy.

use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::client::EcsClient;
use super::rpc::{RetryPolicy, RpcClient, RpcError};

/// The RAM API version.
pub const RAM_VERSION: &str = "2015-05-01";
/// RAM's one global endpoint.
pub const RAM_ENDPOINT: &str = "ram.aliyuncs.com";
/// The role ImportImage uses when the request names none.
pub const IMPORT_ROLE: &str = "AliyunECSImageImportDefaultRole";
/// The system policy that lets ECS read the bucket.
pub const IMPORT_POLICY: &str = "AliyunECSImageImportRolePolicy";
/// The service that must be trusted to assume the import role.
pub const ECS_SERVICE: &str = "ecs.aliyuncs.com";

/// The trust policy of the import role: the ECS service may assume it (docs/CLOUD-API.md
/// §RAM).
pub fn import_trust_policy() -> String {
    serde_json::json!({
        "Statement": [{
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": [ECS_SERVICE]},
        }],
        "Version": "1",
    })
    .to_string()
}

/// A role as GetRole and CreateRole describe it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    #[serde(default)]
    pub role_name: String,
    #[serde(default)]
    pub arn: String,
    /// The trust policy, a JSON document in a string.
    #[serde(default)]
    pub assume_role_policy_document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleAnswer {
    role: Role,
}

/// A policy attached to a role.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    pub policy_name: String,
    /// `System` or `Custom`.
    pub policy_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PoliciesAnswer {
    #[serde(default)]
    policies: PolicyList,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyList {
    #[serde(default)]
    policy: Vec<AttachedPolicy>,
}

/// Retries of the role look-ups (GetRole, ListPoliciesForRole): two attempts, 100 ms apart.
pub const CHECK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 2,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_millis(500),
};

/// Typed RAM calls.
#[derive(Debug, Clone)]
pub struct RamClient {
    /// For the changes asked for (CreateRole, AttachPolicyToRole).
    rpc: RpcClient,
    /// For the look-ups of the pre-flight check, retried by [`CHECK_RETRY`].
    lookup: RpcClient,
}

impl RamClient {
    /// RAM beside `ecs`, with its credentials: at `ram.aliyuncs.com`, or at the ECS client's
    /// endpoint when that is overridden (an emulator or a proxy serves both).
    pub fn beside(ecs: &EcsClient) -> Self {
        let endpoint = ecs
            .rpc()
            .config()
            .endpoint
            .clone()
            .unwrap_or_else(|| RAM_ENDPOINT.to_string());
        Self::from_rpc(ecs.rpc().with_endpoint(endpoint))
    }

    /// A client over an already built [`RpcClient`] (its endpoint must be RAM's).
    pub fn from_rpc(rpc: RpcClient) -> Self {
        Self {
            lookup: rpc.with_retry(CHECK_RETRY),
            rpc,
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<T, RpcError> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let client = match action {
            "GetRole" | "ListPoliciesForRole" => &self.lookup,
            _ => &self.rpc,
        };
        let body = client.call_raw(action, RAM_VERSION, &params).await?;
        serde_json::from_slice(&body).map_err(|source| RpcError::Decode { action, source })
    }

    /// GetRole; `None` when the role does not exist (`EntityNotExist.Role`).
    pub async fn get_role(&self, name: &str) -> Result<Option<Role>, RpcError> {
        match self
            .call::<RoleAnswer>("GetRole", &[("RoleName", name)])
            .await
        {
            Ok(a) => Ok(Some(a.role)),
            Err(e) if e.code() == Some("EntityNotExist.Role") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// ListPoliciesForRole.
    pub async fn list_policies_for_role(
        &self,
        name: &str,
    ) -> Result<Vec<AttachedPolicy>, RpcError> {
        let a: PoliciesAnswer = self
            .call("ListPoliciesForRole", &[("RoleName", name)])
            .await?;
        Ok(a.policies.policy)
    }

    /// CreateRole with `trust_policy`.
    pub async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        description: &str,
    ) -> Result<Role, RpcError> {
        let a: RoleAnswer = self
            .call(
                "CreateRole",
                &[
                    ("RoleName", name),
                    ("AssumeRolePolicyDocument", trust_policy),
                    ("Description", description),
                ],
            )
            .await?;
        Ok(a.role)
    }

    /// AttachPolicyToRole (`policy_type` `System` or `Custom`).
    pub async fn attach_policy_to_role(
        &self,
        policy_type: &str,
        policy_name: &str,
        role: &str,
    ) -> Result<(), RpcError> {
        let _: serde_json::Value = self
            .call(
                "AttachPolicyToRole",
                &[
                    ("PolicyType", policy_type),
                    ("PolicyName", policy_name),
                    ("RoleName", role),
                ],
            )
            .await?;
        Ok(())
    }
}

/// What the check of the import role found. Only `Ready`, `Created` and `PolicyAttached`
/// say the role was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RoleStatus {
    /// The role exists, trusts ECS and carries the import policy.
    Ready { role: String },
    /// The role was created and the policy attached (`--create-role`).
    Created { role: String },
    /// The role existed; the missing import policy was attached (`--create-role`).
    PolicyAttached { role: String },
    /// Not verified: why (RAM refused the look-up, gave no answer, or the role's custom
    /// policies cannot be judged). The import goes on; ImportImage has the last word.
    Unknown { role: String, reason: String },
    /// The role does not exist.
    Missing { role: String },
    /// The role exists but does not trust `ecs.aliyuncs.com`.
    NotTrusted { role: String },
    /// The role exists with no policy at all.
    NoPolicy { role: String },
}

impl RoleStatus {
    /// The role is known to be unusable: the import would fail after the upload.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Missing { .. } | Self::NotTrusted { .. } | Self::NoPolicy { .. }
        )
    }

    /// One line for the user: what was found and, for a refusal, what to do.
    pub fn message(&self) -> String {
        match self {
            Self::Ready { role } => format!("RAM role {role}: exists with {IMPORT_POLICY}"),
            Self::Created { role } => {
                format!("RAM role {role}: created, trusting {ECS_SERVICE}, with {IMPORT_POLICY}")
            }
            Self::PolicyAttached { role } => {
                format!("RAM role {role}: {IMPORT_POLICY} attached")
            }
            Self::Unknown { role, reason } => {
                format!("RAM role {role}: not verified ({reason})")
            }
            Self::Missing { role } => format!(
                "RAM role {role} does not exist, so ECS cannot read the bucket: run again with \
                 --create-role (needs ram:CreateRole and ram:AttachPolicyToRole), or create it in \
                 the RAM console trusting {ECS_SERVICE} with the system policy {IMPORT_POLICY}"
            ),
            Self::NotTrusted { role } => format!(
                "RAM role {role} does not trust the service {ECS_SERVICE}: edit its trust policy \
                 so that {ECS_SERVICE} may assume it"
            ),
            Self::NoPolicy { role } => format!(
                "RAM role {role} has no policy, so ECS cannot read the bucket: run again with \
                 --create-role to attach the system policy {IMPORT_POLICY}, or attach it in the \
                 RAM console"
            ),
        }
    }
}

/// Whether `code` says the caller may not make the RAM call.
fn denied(code: &str) -> bool {
    ["NoPermission", "Forbidden", "AccessDenied"]
        .iter()
        .any(|p| code.starts_with(p))
}

/// Why a failed call leaves the check unverified.
fn unknown(role: &str, action: &str, e: &RpcError) -> RoleStatus {
    let reason = match e.api() {
        Some(api) if denied(&api.code) => format!(
            "{action} answered {}: these credentials may not read RAM",
            api.code
        ),
        Some(api) => format!("{action} answered {}", api.code),
        None => format!("{action}: {e}"),
    };
    RoleStatus::Unknown {
        role: role.to_string(),
        reason,
    }
}

/// Whether the trust policy `doc` lets `ecs.aliyuncs.com` assume the role.
fn trusts_ecs(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(doc) else {
        return false;
    };
    let statements = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    statements.iter().any(|s| {
        let service = &s["Principal"]["Service"];
        s["Effect"] == "Allow"
            && match service {
                serde_json::Value::String(one) => one == ECS_SERVICE,
                serde_json::Value::Array(all) => all.iter().any(|x| x == ECS_SERVICE),
                _ => false,
            }
    })
}

/// Checks the import role `role`; with `create`, creates it or attaches the missing policy.
/// A call that fails leaves [`RoleStatus::Unknown`]; only a failed CreateRole or
/// AttachPolicyToRole that was asked for is an error.
pub async fn check_import_role(
    ram: &RamClient,
    role: &str,
    create: bool,
) -> Result<RoleStatus, RpcError> {
    let name = role.to_string();
    let found = match ram.get_role(role).await {
        Ok(found) => found,
        Err(e) => return Ok(unknown(role, "GetRole", &e)),
    };
    let Some(found) = found else {
        if !create {
            return Ok(RoleStatus::Missing { role: name });
        }
        ram.create_role(
            role,
            &import_trust_policy(),
            "Lets ECS read OSS objects for ImportImage (created by imgport)",
        )
        .await?;
        ram.attach_policy_to_role("System", IMPORT_POLICY, role)
            .await?;
        return Ok(RoleStatus::Created { role: name });
    };
    if !trusts_ecs(&found.assume_role_policy_document) {
        return Ok(RoleStatus::NotTrusted { role: name });
    }
    let policies = match ram.list_policies_for_role(role).await {
        Ok(p) => p,
        Err(e) => return Ok(unknown(role, "ListPoliciesForRole", &e)),
    };
    if policies.iter().any(|p| p.policy_name == IMPORT_POLICY) {
        return Ok(RoleStatus::Ready { role: name });
    }
    if create {
        ram.attach_policy_to_role("System", IMPORT_POLICY, role)
            .await?;
        return Ok(RoleStatus::PolicyAttached { role: name });
    }
    if policies.is_empty() {
        return Ok(RoleStatus::NoPolicy { role: name });
    }
    let names: Vec<&str> = policies.iter().map(|p| p.policy_name.as_str()).collect();
    Ok(RoleStatus::Unknown {
        role: name,
        reason: format!(
            "it carries {} instead of {IMPORT_POLICY}; whether they allow oss:GetObject, \
             oss:GetBucketLocation and oss:GetBucketInfo is not checked",
            names.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_policy_names_the_ecs_service() {
        assert!(trusts_ecs(&import_trust_policy()));
        assert!(trusts_ecs(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ecs.aliyuncs.com"}}}"#
        ));
        assert!(!trusts_ecs(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["oss.aliyuncs.com"]}}]}"#
        ));
        assert!(!trusts_ecs(
            r#"{"Statement":[{"Effect":"Deny","Principal":{"Service":["ecs.aliyuncs.com"]}}]}"#
        ));
        assert!(!trusts_ecs("not json"));
    }

    /// The real transport to `127.0.0.1:port`, counting the attempts.
    struct Counting {
        inner: super::super::rpc::ReqwestTransport,
        sent: std::sync::atomic::AtomicU32,
    }

    impl super::super::rpc::Transport for Counting {
        fn send(
            &self,
            req: super::super::rpc::HttpRequest,
        ) -> super::super::transport::SendFuture<'_> {
            self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.send(req)
        }
    }

    /// A RAM endpoint nobody listens on: the check is "unknown" (never fine), after the short
    /// look-up policy's attempts, not the client's own six.
    #[test]
    fn an_unreachable_ram_endpoint_is_unknown_after_the_short_policy() {
        use imgport_base::secret::Secret;
        use imgport_credentials::Credentials;
        // A port that was free a moment ago and is closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = super::super::rpc::ClientConfig::new("cn-hangzhou");
        config.endpoint = Some(format!("http://127.0.0.1:{port}"));
        assert!(config.retry.max_attempts > CHECK_RETRY.max_attempts);
        let transport = std::sync::Arc::new(Counting {
            inner: super::super::rpc::ReqwestTransport::new(Duration::from_secs(5)).unwrap(),
            sent: std::sync::atomic::AtomicU32::new(0),
        });
        let rpc = RpcClient::with_transport(
            config,
            Credentials {
                access_key_id: "LTAIunit".into(),
                access_key_secret: Secret::new("unit-secret"),
                security_token: None,
            },
            transport.clone(),
        );
        let ram = RamClient::from_rpc(rpc);
        let status = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(check_import_role(&ram, IMPORT_ROLE, false))
            .unwrap();
        match &status {
            RoleStatus::Unknown { role, reason } => {
                assert_eq!(role, IMPORT_ROLE);
                assert!(reason.starts_with("GetRole"), "{reason}");
            }
            other => panic!("expected unknown, got {other:?}"),
        }
        assert!(!status.is_refusal());
        assert_eq!(
            transport.sent.load(std::sync::atomic::Ordering::SeqCst),
            CHECK_RETRY.max_attempts
        );
    }

    #[test]
    fn only_known_bad_roles_refuse() {
        let role = "r".to_string();
        assert!(RoleStatus::Missing { role: role.clone() }.is_refusal());
        assert!(
            !RoleStatus::Unknown {
                role: role.clone(),
                reason: "x".into()
            }
            .is_refusal()
        );
        assert!(!RoleStatus::Ready { role }.is_refusal());
    }
}

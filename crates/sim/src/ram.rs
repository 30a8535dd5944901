//! The emulated RAM (2015-05-01, docs/CLOUD-API.md §RAM): GetRole, ListPoliciesForRole,
//! CreateRole and AttachPolicyToRole on one account's roles, routed here by their `Version`.
//! ImportImage asks [`Ram::import_ready`] whether ECS may read OSS through the role it names:
//! a missing role, or one that does not trust `ecs.aliyuncs.com`, is
//! `NoSetRoletoECSServiceAcount`; one without the import policy is `InvalidOSS.NotAuthorized`.
//!
//! By default the account already has the import role with its policy, as an account that
//! has imported before; [`RamConfig::import_role`] false starts without it. Roles live in
//! memory and, with a state directory, in `ram-state.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Call;
use super::fault::ApiFault;
use super::params::P;
use super::state_file::StateFile;

/// The role ImportImage uses when its request names none (docs/CLOUD-API.md §ImportImage).
pub const IMPORT_ROLE: &str = "AliyunECSImageImportDefaultRole";
/// The system policy that lets ECS read OSS for an import.
pub const IMPORT_POLICY: &str = "AliyunECSImageImportRolePolicy";
/// The account id in the emulator's ARNs.
pub const ACCOUNT: &str = "1234567890123456";
/// A role of the emulated account that its users may assume (`RamRoleArn` tests).
pub const ADMIN_ROLE: &str = "imgport-sim-admin";
/// System policies the emulated account can attach.
const SYSTEM_POLICIES: &[&str] = &[
    IMPORT_POLICY,
    "AliyunOSSReadOnlyAccess",
    "AliyunECSFullAccess",
];

/// How the emulated RAM starts.
#[derive(Debug, Clone, Copy)]
pub struct RamConfig {
    /// The account has the import role with its policy (when no state says otherwise).
    pub import_role: bool,
}

impl Default for RamConfig {
    fn default() -> Self {
        Self { import_role: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleRec {
    role_id: String,
    name: String,
    description: String,
    trust: String,
    /// `(PolicyType, PolicyName)` in the order attached.
    policies: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RamState {
    next_id: u64,
    roles: BTreeMap<String, RoleRec>,
}

/// The emulated RAM service.
pub struct Ram {
    state: Mutex<RamState>,
    state_file: StateFile,
}

fn entity_not_exist_role(name: &str) -> ApiFault {
    ApiFault::new(
        404,
        "EntityNotExist.Role",
        format!("The role not exists: {name}."),
    )
}

fn ecs_trust() -> String {
    json!({"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow",
        "Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"})
    .to_string()
}

/// Whether the trust policy lets the ECS service assume the role.
fn trusts_ecs(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return false;
    };
    let list = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    list.iter().any(|s| {
        s["Effect"] == "Allow"
            && match &s["Principal"]["Service"] {
                Value::String(x) => x == "ecs.aliyuncs.com",
                Value::Array(a) => a.iter().any(|x| x == "ecs.aliyuncs.com"),
                _ => false,
            }
    })
}

fn role_json(r: &RoleRec) -> Value {
    json!({
        "RoleId": r.role_id,
        "RoleName": r.name,
        "Arn": format!("acs:ram::{ACCOUNT}:role/{}", r.name.to_ascii_lowercase()),
        "Description": r.description,
        "AssumeRolePolicyDocument": r.trust,
        "CreateDate": "2026-01-01T00:00:00Z",
        "UpdateDate": "2026-01-01T00:00:00Z",
        "MaxSessionDuration": 3600,
    })
}

impl Ram {
    /// Loads `ram-state.json` of `state_dir`, else starts as `config` says.
    pub fn open(config: RamConfig, state_dir: Option<&Path>) -> std::io::Result<Self> {
        let state_file = StateFile::new(state_dir, "ram-state.json")?;
        let state = match state_file.load()? {
            Some(saved) => saved,
            None => {
                let mut st = RamState::default();
                // A role the account's own users may assume (AssumeRole, RamRoleArn profiles).
                st.roles.insert(
                    ADMIN_ROLE.to_string(),
                    RoleRec {
                        role_id: "300000000000000002".into(),
                        name: ADMIN_ROLE.into(),
                        description: String::new(),
                        trust: json!({"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow",
                            "Principal":{"RAM":[format!("acs:ram::{ACCOUNT}:root")]}}],"Version":"1"})
                        .to_string(),
                        policies: vec![("System".into(), "AliyunECSFullAccess".into())],
                    },
                );
                if config.import_role {
                    st.roles.insert(
                        IMPORT_ROLE.to_string(),
                        RoleRec {
                            role_id: "300000000000000001".into(),
                            name: IMPORT_ROLE.into(),
                            description: String::new(),
                            trust: ecs_trust(),
                            policies: vec![("System".into(), IMPORT_POLICY.into())],
                        },
                    );
                }
                st
            }
        };
        Ok(Self {
            state: Mutex::new(state),
            state_file,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, st: &RamState) -> Result<(), ApiFault> {
        self.state_file
            .save(st)
            .map_err(|e| ApiFault::new(500, "InternalError", format!("saving state: {e}")))
    }

    /// Whether the role `name` exists (ARNs spell it in lower case).
    pub fn has_role(&self, name: &str) -> bool {
        self.lock()
            .roles
            .keys()
            .any(|k| k.eq_ignore_ascii_case(name))
    }

    /// Whether ImportImage may read OSS through `role` (the request's RoleName, else the
    /// default role): the errors ImportImage answers otherwise.
    pub fn import_ready(&self, role: Option<&str>) -> Result<(), ApiFault> {
        let name = role.filter(|r| !r.is_empty()).unwrap_or(IMPORT_ROLE);
        let st = self.lock();
        let no_role = || {
            ApiFault::new(
                403,
                "NoSetRoletoECSServiceAcount",
                format!(
                    "The ECS service has no permission to access your OSS: create the role \
                     {name} trusted by ecs.aliyuncs.com and attach {IMPORT_POLICY}."
                ),
            )
        };
        let rec = st.roles.get(name).ok_or_else(no_role)?;
        if !trusts_ecs(&rec.trust) {
            return Err(no_role());
        }
        if !rec.policies.iter().any(|(_, p)| p == IMPORT_POLICY) {
            return Err(ApiFault::new(
                403,
                "InvalidOSS.NotAuthorized",
                format!("The role {name} is not authorized to read your OSS objects."),
            ));
        }
        Ok(())
    }

    /// Handles one authenticated RAM call.
    pub fn handle(&self, call: &Call) -> Result<Value, ApiFault> {
        let p = P(&call.params);
        // The role a read call names, as the service looks it up.
        let named_role = |st: &RamState| -> Result<RoleRec, ApiFault> {
            let name = p.required("RoleName")?;
            st.roles
                .get(name)
                .cloned()
                .ok_or_else(|| entity_not_exist_role(name))
        };
        match call.action.as_str() {
            "GetRole" => {
                let rec = named_role(&self.lock())?;
                Ok(json!({ "Role": role_json(&rec) }))
            }
            "ListPoliciesForRole" => {
                let rec = named_role(&self.lock())?;
                let list: Vec<Value> = rec
                    .policies
                    .iter()
                    .map(|(t, n)| {
                        json!({"PolicyName": n, "PolicyType": t, "Description": "",
                            "DefaultVersion": "v1", "AttachDate": "2026-01-01T00:00:00Z"})
                    })
                    .collect();
                Ok(json!({ "Policies": { "Policy": list } }))
            }
            "CreateRole" => self.create_role(&p),
            "AttachPolicyToRole" => self.attach(&p),
            other => Err(ApiFault::new(
                404,
                "InvalidAction.NotFound",
                format!("Specified api {other:?} is not found, please check your url and method."),
            )),
        }
    }

    fn create_role(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let name = p.required("RoleName")?;
        let trust = p.required("AssumeRolePolicyDocument")?;
        let valid_name = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid_name {
            return Err(ApiFault::new(
                400,
                "InvalidParameter.RoleName.InvalidChars",
                "The parameter \"RoleName\" contains invalid chars.",
            ));
        }
        if serde_json::from_str::<Value>(trust).is_err() {
            return Err(ApiFault::new(
                400,
                "MalformedPolicyDocument",
                "The parameter \"AssumeRolePolicyDocument\" is not a valid policy document.",
            ));
        }
        let mut st = self.lock();
        if st.roles.contains_key(name) {
            return Err(ApiFault::new(
                409,
                "EntityAlreadyExists.Role",
                format!("The role already exists: {name}."),
            ));
        }
        st.next_id += 1;
        let rec = RoleRec {
            role_id: format!("3{:017}", st.next_id + 1),
            name: name.to_string(),
            description: p.get("Description").unwrap_or_default().to_string(),
            trust: trust.to_string(),
            policies: Vec::new(),
        };
        let answer = json!({ "Role": role_json(&rec) });
        st.roles.insert(name.to_string(), rec);
        self.persist(&st)?;
        Ok(answer)
    }

    fn attach(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let kind = p.required("PolicyType")?;
        let policy = p.required("PolicyName")?;
        let name = p.required("RoleName")?;
        if kind != "System" && kind != "Custom" {
            return Err(ApiFault::new(
                400,
                "InvalidParameter.PolicyType.InvalidValue",
                "The parameter \"PolicyType\" must be System or Custom.",
            ));
        }
        if kind == "Custom" || !SYSTEM_POLICIES.contains(&policy) {
            return Err(ApiFault::new(
                404,
                "EntityNotExist.Policy",
                format!("The policy not exists: {policy}."),
            ));
        }
        let mut st = self.lock();
        let rec = st
            .roles
            .get_mut(name)
            .ok_or_else(|| entity_not_exist_role(name))?;
        if rec.policies.iter().any(|(_, p)| p == policy) {
            return Err(ApiFault::new(
                409,
                "EntityAlreadyExists.Role.Policy",
                format!("The policy has already been attached to the role: {policy}."),
            ));
        }
        rec.policies.push((kind.to_string(), policy.to_string()));
        self.persist(&st)?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str, params: &[(&str, &str)]) -> Call {
        Call {
            action: action.into(),
            version: "2015-05-01".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            access_key_id: "k".into(),
        }
    }

    #[test]
    fn import_needs_the_role_and_its_policy() {
        let ram = Ram::open(RamConfig { import_role: false }, None).unwrap();
        let err = ram.import_ready(None).unwrap_err();
        assert_eq!(err.code, "NoSetRoletoECSServiceAcount");
        let err = ram
            .handle(&call("GetRole", &[("RoleName", IMPORT_ROLE)]))
            .unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (404, "EntityNotExist.Role")
        );
        ram.handle(&call(
            "CreateRole",
            &[
                ("RoleName", IMPORT_ROLE),
                ("AssumeRolePolicyDocument", &ecs_trust()),
            ],
        ))
        .unwrap();
        assert_eq!(
            ram.import_ready(None).unwrap_err().code,
            "InvalidOSS.NotAuthorized"
        );
        let attach = [
            ("PolicyType", "System"),
            ("PolicyName", IMPORT_POLICY),
            ("RoleName", IMPORT_ROLE),
        ];
        ram.handle(&call("AttachPolicyToRole", &attach)).unwrap();
        ram.import_ready(None).unwrap();
        let again = ram
            .handle(&call("AttachPolicyToRole", &attach))
            .unwrap_err();
        assert_eq!(again.code, "EntityAlreadyExists.Role.Policy");
        let dup = ram
            .handle(&call(
                "CreateRole",
                &[
                    ("RoleName", IMPORT_ROLE),
                    ("AssumeRolePolicyDocument", &ecs_trust()),
                ],
            ))
            .unwrap_err();
        assert_eq!(dup.code, "EntityAlreadyExists.Role");
    }

    #[test]
    fn a_role_trusting_another_service_does_not_serve_ecs() {
        let ram = Ram::open(RamConfig { import_role: false }, None).unwrap();
        let trust = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["fc.aliyuncs.com"]}}],"Version":"1"}"#;
        ram.handle(&call(
            "CreateRole",
            &[("RoleName", "other"), ("AssumeRolePolicyDocument", trust)],
        ))
        .unwrap();
        assert_eq!(
            ram.import_ready(Some("other")).unwrap_err().code,
            "NoSetRoletoECSServiceAcount"
        );
        assert!(
            Ram::open(RamConfig::default(), None)
                .unwrap()
                .import_ready(None)
                .is_ok()
        );
    }
}

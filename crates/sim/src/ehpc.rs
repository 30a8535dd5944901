//! The emulated E-HPC Instant AddImage (EhpcInstant 2023-07-01, docs/CLOUD-API.md §EHPC): RPC calls
//! signed like ECS (V3 or V2, [`super::auth`]) and routed here by their `Version`. A VM image must
//! be an `Available` image of the emulated ECS; every image is registered once. Parameters are
//! judged by the client's own rules ([`AddImageRequest::validate`]) rebuilt from the wire, and
//! answered with the documented codes (`InvalidParams`, `ImageAlreadyExists`, `ImageNotFound`,
//! `EcsError`). Registrations live in memory and, with a state directory, in `ehpc-state.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Call;
use super::ecs::{ApiFault, Ecs, P};
use imgport_base::secret::Secret;
use imgport_cloud::aliyun::ehpc::{
    AddImageRequest, ContainerImageSpec, ImageSpec, RegistryCredential,
};
use imgport_cloud::aliyun::types::ImageStatus;

/// One registered image (never the registry password).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registered {
    image_id: String,
    name: String,
    version: String,
    image_type: String,
    /// VM: the ECS image; container: the registry URL.
    source: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct EhpcState {
    next_id: u64,
    images: BTreeMap<String, Registered>,
}

/// The emulated E-HPC Instant service.
pub struct Ehpc {
    state: Mutex<EhpcState>,
    state_file: Option<PathBuf>,
}

fn params_error(field: &str, why: &str) -> ApiFault {
    ApiFault::new(
        400,
        "InvalidParams",
        format!("The specified parameter {field} is invalid: {why}."),
    )
}

/// Rebuilds the typed request from the wire parameters.
fn request_of(p: &P<'_>) -> Result<AddImageRequest, ApiFault> {
    let name = p.get("Name").unwrap_or_default().to_string();
    let image_type = p.get("ImageType").filter(|s| !s.is_empty()).unwrap_or("VM");
    let json_of = |field: &str| -> Result<Value, ApiFault> {
        let text = p.get(field).unwrap_or("{}");
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| params_error(field, "not a JSON object"))
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let spec = match image_type {
        "VM" => {
            if p.get("ContainerImageSpec").is_some() {
                return Err(params_error("ContainerImageSpec", "not for a VM image"));
            }
            let vm = json_of("VMImageSpec")?;
            ImageSpec::Vm {
                image_id: text(&vm, "ImageId").unwrap_or_default(),
            }
        }
        "Container" => {
            if p.get("VMImageSpec").is_some() {
                return Err(params_error("VMImageSpec", "not for a container image"));
            }
            let c = json_of("ContainerImageSpec")?;
            let credential = c.get("RegistryCredential").map(|cred| RegistryCredential {
                server: text(cred, "Server").unwrap_or_default(),
                user_name: text(cred, "UserName").unwrap_or_default(),
                password: Secret::new(text(cred, "Password").unwrap_or_default()),
            });
            ImageSpec::Container(ContainerImageSpec {
                registry_url: text(&c, "RegistryUrl").unwrap_or_default(),
                is_acr_registry: c.get("IsACRRegistry").and_then(Value::as_bool),
                is_acr_enterprise: c.get("IsACREnterprise").and_then(Value::as_bool),
                registry_cri_id: text(&c, "RegistryCriId"),
                credential,
            })
        }
        other => {
            return Err(params_error(
                "ImageType",
                &format!("{other:?} is neither VM nor Container"),
            ));
        }
    };
    let req = AddImageRequest {
        name,
        image_version: p.get("ImageVersion").map(str::to_string),
        description: p.get("Description").map(str::to_string),
        spec,
    };
    req.validate()
        .map_err(|e| params_error(&e.field, &e.rule))?;
    Ok(req)
}

impl Ehpc {
    /// Loads `ehpc-state.json` of `state_dir` (empty when absent) or keeps state in memory.
    pub fn open(state_dir: Option<&Path>) -> std::io::Result<Self> {
        let state_file = state_dir.map(|d| d.join("ehpc-state.json"));
        let state = match &state_file {
            Some(f) if f.exists() => {
                serde_json::from_slice(&std::fs::read(f)?).map_err(std::io::Error::other)?
            }
            _ => EhpcState::default(),
        };
        Ok(Self {
            state: Mutex::new(state),
            state_file,
        })
    }

    fn persist(&self, st: &EhpcState) -> Result<(), ApiFault> {
        let Some(file) = &self.state_file else {
            return Ok(());
        };
        let tmp = file.with_extension("json.tmp");
        serde_json::to_vec_pretty(st)
            .map_err(std::io::Error::other)
            .and_then(|t| std::fs::write(&tmp, t))
            .and_then(|()| std::fs::rename(&tmp, file))
            .map_err(|e| ApiFault::new(406, "DbError", format!("A database error occurred: {e}")))
    }

    /// Handles one authenticated E-HPC call at `now_ms`; the answer body without RequestId.
    pub fn handle(&self, call: &Call, ecs: &Ecs, now_ms: u64) -> Result<Value, ApiFault> {
        if call.action != "AddImage" {
            return Err(ApiFault::new(
                404,
                "InvalidAction.NotFound",
                format!(
                    "Specified api {:?} is not found, please check your url and method.",
                    call.action
                ),
            ));
        }
        let req = request_of(&P(&call.params))?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let version = req.image_version.clone().unwrap_or_default();
        let (image_id, source) = match &req.spec {
            ImageSpec::Vm { image_id } => {
                let mut ecs_state = ecs.lock();
                ecs_state.refresh(now_ms);
                let img = ecs_state.images.get(image_id).ok_or_else(|| {
                    ApiFault::new(404, "ImageNotFound", "The specified image does not exist.")
                })?;
                if img.status != ImageStatus::Available {
                    return Err(ApiFault::new(
                        406,
                        "EcsError",
                        format!(
                            "An error occurred while calling the ECS API operation: image {image_id} is {}.",
                            img.status
                        ),
                    ));
                }
                (image_id.clone(), image_id.clone())
            }
            ImageSpec::Container(c) => {
                // Random start: ids differ between runs (see the ECS emulator's `next`).
                if st.next_id == 0 {
                    st.next_id = fastrand::u64(1..1 << 40);
                }
                st.next_id += 1;
                (
                    format!("m-ehpcsim{:012x}", st.next_id),
                    c.registry_url.clone(),
                )
            }
        };
        // "The image id already exists" (docs/CLOUD-API.md §EHPC): one registration per image.
        let taken = st.images.values().any(|r| r.source == source);
        if taken {
            return Err(ApiFault::new(
                400,
                "ImageAlreadyExists",
                "The image id already exists.",
            ));
        }
        st.images.insert(
            image_id.clone(),
            Registered {
                image_id: image_id.clone(),
                name: req.name.clone(),
                version,
                image_type: req.image_type().to_string(),
                source,
            },
        );
        self.persist(&st)?;
        Ok(json!({ "Success": true, "ImageId": image_id }))
    }
}

//! The emulated E-HPC Instant AddImage (EhpcInstant 2023-07-01, docs/CLOUD-API.md §EHPC): RPC calls
//! signed like ECS (V3 or V2, [`super::auth`]) and routed here by their `Version`. A VM image must
//! be an `Available` image of the emulated ECS; every image is registered once. Parameters are
//! judged by the emulator's reading of the AddImage page (`request_of`) and answered with the
//! documented codes (`InvalidParams`, `ImageAlreadyExists`, `ImageNotFound`,
//! `EcsError`). Registrations live in memory and, with a state directory, in `ehpc-state.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Call;
use super::ecs::{ApiFault, Ecs, ImageStatus};
use super::params::P;
use super::state_file::StateFile;

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
    state_file: StateFile,
}

fn params_error(field: &str, why: &str) -> ApiFault {
    ApiFault::new(
        400,
        "InvalidParams",
        format!("The specified parameter {field} is invalid: {why}."),
    )
}

/// What an AddImage request registers.
enum Source {
    /// `ImageType=VM`: `VMImageSpec.ImageId`, an ECS image.
    Vm(String),
    /// `ImageType=Container`: `ContainerImageSpec.RegistryUrl`.
    Container(String),
}

/// An AddImage request read from the wire.
struct AddImage {
    name: String,
    version: String,
    image_type: &'static str,
    source: Source,
}

/// Reads AddImage (docs/CLOUD-API.md §EHPC): `Name` is required; `ImageType` is `VM` (the
/// default) or `Container`; each spec is one JSON object in its parameter, and only the one of
/// the type may be given. A VM needs `ImageId`; a container needs `RegistryUrl`; an ACR
/// Enterprise registry is an ACR registry; `RegistryCriId` belongs to ACR Enterprise; a
/// `RegistryCredential` names server, user and password. Every misfit is `InvalidParams`.
fn request_of(p: &P<'_>) -> Result<AddImage, ApiFault> {
    let given = |k: &str| p.get(k).filter(|v| !v.trim().is_empty());
    let name = given("Name").ok_or_else(|| params_error("Name", "the image name is required"))?;
    let object = |field: &str| -> Result<Value, ApiFault> {
        serde_json::from_str::<Value>(p.get(field).unwrap_or("{}"))
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| params_error(field, "not a JSON object"))
    };
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let (image_type, source) = match given("ImageType").unwrap_or("VM") {
        "VM" => {
            if p.get("ContainerImageSpec").is_some() {
                return Err(params_error("ContainerImageSpec", "not for a VM image"));
            }
            let id = text(&object("VMImageSpec")?, "ImageId").ok_or_else(|| {
                params_error("VMImageSpec.ImageId", "a VM image needs the ECS image id")
            })?;
            ("VM", Source::Vm(id))
        }
        "Container" => {
            if p.get("VMImageSpec").is_some() {
                return Err(params_error("VMImageSpec", "not for a container image"));
            }
            let c = object("ContainerImageSpec")?;
            let url = text(&c, "RegistryUrl").ok_or_else(|| {
                params_error(
                    "ContainerImageSpec.RegistryUrl",
                    "a container image needs its registry URL",
                )
            })?;
            let flag = |k: &str| c.get(k).and_then(Value::as_bool) == Some(true);
            if flag("IsACREnterprise") && !flag("IsACRRegistry") {
                return Err(params_error(
                    "ContainerImageSpec.IsACREnterprise",
                    "an ACR Enterprise registry is an ACR registry",
                ));
            }
            if c.get("RegistryCriId").is_some() && !flag("IsACREnterprise") {
                return Err(params_error(
                    "ContainerImageSpec.RegistryCriId",
                    "only for an ACR Enterprise registry",
                ));
            }
            if let Some(cred) = c.get("RegistryCredential")
                && let Some(k) = ["Server", "UserName", "Password"].into_iter().find(|k| {
                    cred.get(k)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                })
            {
                return Err(params_error(
                    &format!("ContainerImageSpec.RegistryCredential.{k}"),
                    "registry credentials need server, user name and password",
                ));
            }
            ("Container", Source::Container(url))
        }
        other => {
            return Err(params_error(
                "ImageType",
                &format!("{other:?} is neither VM nor Container"),
            ));
        }
    };
    Ok(AddImage {
        name: name.to_string(),
        version: p.get("ImageVersion").unwrap_or_default().to_string(),
        image_type,
        source,
    })
}

impl Ehpc {
    /// Loads `ehpc-state.json` of `state_dir` (empty when absent) or keeps state in memory.
    pub fn open(state_dir: Option<&Path>) -> std::io::Result<Self> {
        let state_file = StateFile::new(state_dir, "ehpc-state.json")?;
        let state = state_file.load()?.unwrap_or_default();
        Ok(Self {
            state: Mutex::new(state),
            state_file,
        })
    }

    fn persist(&self, st: &EhpcState) -> Result<(), ApiFault> {
        self.state_file
            .save(st)
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
        let version = req.version.clone();
        let (image_id, source) = match &req.source {
            Source::Vm(image_id) => {
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
                            img.status.as_str()
                        ),
                    ));
                }
                (image_id.clone(), image_id.clone())
            }
            Source::Container(url) => {
                // Random start: ids differ between runs (see the ECS emulator's `next`).
                if st.next_id == 0 {
                    st.next_id = fastrand::u64(1..1 << 40);
                }
                st.next_id += 1;
                (format!("m-ehpcsim{:012x}", st.next_id), url.clone())
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
                image_type: req.image_type.to_string(),
                source,
            },
        );
        self.persist(&st)?;
        Ok(json!({ "Success": true, "ImageId": image_id }))
    }
}

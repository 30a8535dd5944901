//! E-HPC Instant (`EhpcInstant`, API 2023-07-01) AddImage: register a VM image (an ECS image
//! id) or a container image for HPC jobs (docs/CLOUD-API.md §EHPC).
//!
//! Transport is the Alibaba RPC client of [`super::rpc`] (V3 by default) against
//! `ehpcinstant.<region>.aliyuncs.com`; `VMImageSpec` and `ContainerImageSpec` travel as one
//! JSON string each, as the official SDK "shrinks" objects. The registry password is a
//! [`Secret`]: it appears only in the wire parameter, never in Debug, JSON or errors.
//!
//! The import pipeline registers an imported image with [`EhpcClient::register_vm_image`]
//! (the `--ehpc-name NAME` of `imgport import`).

use serde::Deserialize;

use super::ecs::Params;
use super::rpc::{ClientConfig, RpcClient, RpcError};
use super::validate::Invalid;
use imgport_base::secret::Secret;
use imgport_credentials::Credentials;

/// API version of AddImage.
pub const EHPC_VERSION: &str = "2023-07-01";

/// The E-HPC Instant endpoint of `region` (product id `ehpcinstant`).
pub fn ehpc_endpoint(region: &str) -> String {
    format!("ehpcinstant.{region}.aliyuncs.com")
}

/// Credentials of a private registry (`ContainerImageSpec.RegistryCredential`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryCredential {
    /// Login address of the registry, e.g. `registry-vpc.cn-hangzhou.aliyuncs.com`.
    pub server: String,
    pub user_name: String,
    /// Serialises as `***`.
    pub password: Secret,
}

/// `ContainerImageSpec`: where a container image lives and how to log in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerImageSpec {
    /// e.g. `registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest`.
    pub registry_url: String,
    /// An Alibaba Cloud Container Registry (ACR) repository.
    pub is_acr_registry: Option<bool>,
    /// An ACR Enterprise Edition instance.
    pub is_acr_enterprise: Option<bool>,
    /// The ACR Enterprise instance id (`cri-…`).
    pub registry_cri_id: Option<String>,
    pub credential: Option<RegistryCredential>,
}

/// What is registered: a VM image or a container image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSpec {
    /// `ImageType=VM`, `VMImageSpec.ImageId`.
    Vm { image_id: String },
    /// `ImageType=Container`, `ContainerImageSpec`.
    Container(ContainerImageSpec),
}

/// AddImage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddImageRequest {
    /// Required.
    pub name: String,
    pub image_version: Option<String>,
    pub description: Option<String>,
    pub spec: ImageSpec,
}

/// AddImage's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddImageResponse {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub image_id: String,
}

fn invalid(field: &str, rule: &str) -> Invalid {
    // AddImage answers every parameter error (docs/CLOUD-API.md §EHPC) with `InvalidParams`.
    Invalid::new(field, "InvalidParams", rule)
}

impl AddImageRequest {
    /// Registers the VM image `image_id` under `name`.
    pub fn vm(name: impl Into<String>, image_id: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image_version: None,
            description: None,
            spec: ImageSpec::Vm {
                image_id: image_id.into(),
            },
        }
    }

    /// Registers a container image under `name`.
    pub fn container(name: impl Into<String>, spec: ContainerImageSpec) -> Self {
        Self {
            name: name.into(),
            image_version: None,
            description: None,
            spec: ImageSpec::Container(spec),
        }
    }

    /// `ImageType`: `VM` or `Container`, from the spec.
    pub fn image_type(&self) -> &'static str {
        match self.spec {
            ImageSpec::Vm { .. } => "VM",
            ImageSpec::Container(_) => "Container",
        }
    }

    /// Checks the rules of docs/CLOUD-API.md §EHPC before any call: Name is required; a VM image
    /// needs its ImageId, a container image its RegistryUrl; an ACR Enterprise instance id only
    /// with `IsACREnterprise`, Enterprise only with `IsACRRegistry`; a credential needs server,
    /// user name and password.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() {
            return Err(invalid("Name", "the image name is required"));
        }
        match &self.spec {
            ImageSpec::Vm { image_id } => {
                if image_id.trim().is_empty() {
                    return Err(invalid(
                        "VMImageSpec.ImageId",
                        "a VM image needs the ECS image id",
                    ));
                }
            }
            ImageSpec::Container(c) => {
                if c.registry_url.trim().is_empty() {
                    return Err(invalid(
                        "ContainerImageSpec.RegistryUrl",
                        "a container image needs its registry URL",
                    ));
                }
                if c.is_acr_enterprise == Some(true) && c.is_acr_registry != Some(true) {
                    return Err(invalid(
                        "ContainerImageSpec.IsACREnterprise",
                        "an ACR Enterprise registry is an ACR registry: set IsACRRegistry too",
                    ));
                }
                if c.registry_cri_id.is_some() && c.is_acr_enterprise != Some(true) {
                    return Err(invalid(
                        "ContainerImageSpec.RegistryCriId",
                        "an Enterprise instance id is only for an ACR Enterprise registry",
                    ));
                }
                if let Some(cred) = &c.credential {
                    for (field, value) in [
                        ("Server", cred.server.as_str()),
                        ("UserName", cred.user_name.as_str()),
                        ("Password", cred.password.expose()),
                    ] {
                        if value.is_empty() {
                            return Err(invalid(
                                &format!("ContainerImageSpec.RegistryCredential.{field}"),
                                "registry credentials need server, user name and password",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The wire parameters (the specs as JSON strings).
    pub fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("Name", &self.name);
        p.put("ImageType", self.image_type());
        p.put_opt("ImageVersion", self.image_version.as_ref());
        p.put_opt("Description", self.description.as_ref());
        match &self.spec {
            ImageSpec::Vm { image_id } => {
                p.put("VMImageSpec", serde_json::json!({ "ImageId": image_id }));
            }
            ImageSpec::Container(c) => {
                let mut spec = serde_json::json!({ "RegistryUrl": c.registry_url });
                if let Some(v) = c.is_acr_registry {
                    spec["IsACRRegistry"] = v.into();
                }
                if let Some(v) = c.is_acr_enterprise {
                    spec["IsACREnterprise"] = v.into();
                }
                if let Some(v) = &c.registry_cri_id {
                    spec["RegistryCriId"] = v.as_str().into();
                }
                if let Some(cred) = &c.credential {
                    spec["RegistryCredential"] = serde_json::json!({
                        "Server": cred.server,
                        "UserName": cred.user_name,
                        "Password": cred.password.expose(),
                    });
                }
                p.put("ContainerImageSpec", spec);
            }
        }
        p
    }
}

/// Typed E-HPC Instant calls over a signed, retrying [`RpcClient`].
#[derive(Debug, Clone)]
pub struct EhpcClient {
    rpc: RpcClient,
}

impl EhpcClient {
    /// A client for `config`; without an endpoint override it calls [`ehpc_endpoint`].
    pub fn new(mut config: ClientConfig, credentials: Credentials) -> Result<Self, RpcError> {
        if config.endpoint.is_none() {
            config.endpoint = Some(ehpc_endpoint(&config.region));
        }
        Ok(Self {
            rpc: RpcClient::new(config, credentials)?,
        })
    }

    /// [`EhpcClient::new`] with credentials `provider` renews before they expire.
    pub fn with_provider(
        mut config: ClientConfig,
        provider: imgport_credentials::Provider,
    ) -> Result<Self, RpcError> {
        if config.endpoint.is_none() {
            config.endpoint = Some(ehpc_endpoint(&config.region));
        }
        Ok(Self {
            rpc: RpcClient::with_provider(config, provider)?,
        })
    }

    /// AddImage (checked first). AddImage is not idempotent: a retried call after a lost
    /// answer may be refused with `ImageAlreadyExists`, which means it was registered.
    pub async fn add_image(&self, request: &AddImageRequest) -> Result<AddImageResponse, RpcError> {
        request.validate()?;
        let params = request.params().into_pairs();
        let body = self.rpc.call_raw("AddImage", EHPC_VERSION, &params).await?;
        serde_json::from_slice(&body).map_err(|source| RpcError::Decode {
            action: "AddImage",
            source,
        })
    }

    /// The import pipeline's hook: registers the imported, `Available` ECS image `image_id`
    /// as an E-HPC VM image called `name` (`imgport import --ehpc-name NAME`). An image that
    /// E-HPC already holds (`ImageAlreadyExists`) counts as registered, so a re-run of a
    /// finished import does nothing new.
    pub async fn register_vm_image(
        &self,
        name: &str,
        image_id: &str,
        description: Option<&str>,
    ) -> Result<AddImageResponse, RpcError> {
        let mut req = AddImageRequest::vm(name, image_id);
        req.description = description.map(str::to_string);
        match self.add_image(&req).await {
            Err(e) if e.code() == Some("ImageAlreadyExists") => Ok(AddImageResponse {
                request_id: e.api().map(|a| a.request_id.clone()).unwrap_or_default(),
                success: true,
                image_id: image_id.to_string(),
            }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> ContainerImageSpec {
        ContainerImageSpec {
            registry_url: "registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest".into(),
            is_acr_registry: Some(true),
            is_acr_enterprise: Some(true),
            registry_cri_id: Some("cri-xyz".into()),
            credential: Some(RegistryCredential {
                server: "registry-vpc.cn-hangzhou.aliyuncs.com".into(),
                user_name: "user".into(),
                password: Secret::new("pa55-word"),
            }),
        }
    }

    #[test]
    fn params_carry_specs_as_json() {
        let p = AddImageRequest::vm("app-image", "m-1").params();
        assert_eq!(p.get("ImageType"), Some("VM"));
        assert_eq!(p.get("VMImageSpec"), Some(r#"{"ImageId":"m-1"}"#));
        let r = AddImageRequest::container("c", container());
        r.validate().unwrap();
        let p = r.params();
        let spec: serde_json::Value =
            serde_json::from_str(p.get("ContainerImageSpec").unwrap()).unwrap();
        assert_eq!(spec["RegistryCredential"]["Password"], "pa55-word");
        assert_eq!(spec["IsACREnterprise"], true);
        // The password never shows in Debug or JSON of the request.
        let shown = format!("{r:?} {}", serde_json::to_string(&r).unwrap());
        assert!(!shown.contains("pa55-word"), "{shown}");
    }

    #[test]
    fn a_negative_case_per_rule() {
        let field = |r: AddImageRequest| r.validate().unwrap_err().field;
        assert_eq!(field(AddImageRequest::vm(" ", "m-1")), "Name");
        assert_eq!(field(AddImageRequest::vm("n", "")), "VMImageSpec.ImageId");
        let mut c = container();
        c.registry_url.clear();
        assert_eq!(
            field(AddImageRequest::container("n", c)),
            "ContainerImageSpec.RegistryUrl"
        );
        let mut c = container();
        c.is_acr_registry = None;
        assert_eq!(
            field(AddImageRequest::container("n", c)),
            "ContainerImageSpec.IsACREnterprise"
        );
        let mut c = container();
        c.is_acr_enterprise = Some(false);
        assert_eq!(
            field(AddImageRequest::container("n", c)),
            "ContainerImageSpec.RegistryCriId"
        );
        let mut c = container();
        c.credential.as_mut().unwrap().password = Secret::new("");
        assert_eq!(
            field(AddImageRequest::container("n", c)),
            "ContainerImageSpec.RegistryCredential.Password"
        );
        assert_eq!(
            AddImageRequest::vm("", "m").validate().unwrap_err().code,
            "InvalidParams"
        );
    }
}

//! `imgport ehpc add-image`: E-HPC Instant (2023-07-01) AddImage of a VM image (an ECS image
//! id) or a container image (registry URL, ACR flags, registry credentials). The registry
//! password is read into a [`Secret`] and never printed.
//!
//! `--json` prints `image_id`, `success`, `request_id`, `name`, `image_type` (`VM` |
//! `Container`), `image_version`, and `spec` (the VM image id, or the container spec with
//! the password shown as `***`). Errors: `{"error":{code,message,request_id,http_status}}`.
//! Exit codes: 0 ok, 2 usage or a rule broken locally, 4 cloud/API error.

use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::aliyun::{AliyunFlags, fail_rpc};
use super::output::{exit, print_json};
use super::values::secret;
use imgport_base::secret::Secret;
use imgport_cloud::aliyun::ehpc::{
    AddImageRequest, ContainerImageSpec, EhpcClient, ImageSpec, RegistryCredential,
};

/// `imgport ehpc`.
#[derive(Debug, Args)]
pub struct EhpcArgs {
    #[command(subcommand)]
    pub command: EhpcCommand,
}

/// The `ehpc` subcommands.
#[derive(Debug, Subcommand)]
pub enum EhpcCommand {
    /// AddImage: register a VM image or a container image for E-HPC jobs.
    AddImage(AddImageArgs),
}

/// `imgport ehpc add-image`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("kind").required(true).multiple(false))]
pub struct AddImageArgs {
    #[command(flatten)]
    pub cloud: AliyunFlags,
    /// Name of the image in E-HPC (required).
    #[arg(long)]
    pub name: String,
    /// ImageVersion, e.g. V1.0.
    #[arg(long)]
    pub image_version: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// A VM image: the ECS image id (`VMImageSpec.ImageId`).
    #[arg(long, group = "kind")]
    pub vm_image_id: Option<String>,
    /// A container image: its registry URL, e.g.
    /// registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest.
    #[arg(long, group = "kind")]
    pub registry_url: Option<String>,
    /// The registry is Alibaba Cloud Container Registry (IsACRRegistry).
    #[arg(long, conflicts_with = "vm_image_id")]
    pub acr: bool,
    /// The registry is an ACR Enterprise Edition instance (IsACREnterprise).
    #[arg(long, conflicts_with = "vm_image_id")]
    pub acr_enterprise: bool,
    /// ACR Enterprise instance id (RegistryCriId), e.g. cri-xyz….
    #[arg(long, conflicts_with = "vm_image_id")]
    pub cri_id: Option<String>,
    /// Login address of a private registry (RegistryCredential.Server).
    #[arg(long, conflicts_with = "vm_image_id", requires_all = ["registry_user", "registry_password"])]
    pub registry_server: Option<String>,
    /// Registry user name.
    #[arg(long, requires = "registry_server")]
    pub registry_user: Option<String>,
    /// Registry password (prefer the environment variable; never printed).
    #[arg(long, env = "IMGPORT_REGISTRY_PASSWORD", hide_env_values = true, value_parser = secret, requires = "registry_server")]
    pub registry_password: Option<Secret>,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
}

impl AddImageArgs {
    /// The library request.
    fn request(&self) -> AddImageRequest {
        let mut req = match (&self.vm_image_id, &self.registry_url) {
            (Some(id), _) => AddImageRequest::vm(self.name.clone(), id.clone()),
            (None, url) => AddImageRequest::container(
                self.name.clone(),
                ContainerImageSpec {
                    registry_url: url.clone().unwrap_or_default(),
                    is_acr_registry: self.acr.then_some(true),
                    is_acr_enterprise: self.acr_enterprise.then_some(true),
                    registry_cri_id: self.cri_id.clone(),
                    credential: self
                        .registry_server
                        .as_ref()
                        .map(|server| RegistryCredential {
                            server: server.clone(),
                            user_name: self.registry_user.clone().unwrap_or_default(),
                            password: self
                                .registry_password
                                .clone()
                                .unwrap_or_else(|| Secret::new("")),
                        }),
                },
            ),
        };
        req.image_version = self.image_version.clone();
        req.description = self.description.clone();
        req
    }
}

/// Runs `imgport ehpc …`.
pub fn run(args: EhpcArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        EhpcCommand::AddImage(a) => runtime.block_on(add_image(a)),
    }
}

async fn add_image(a: AddImageArgs) -> anyhow::Result<ExitCode> {
    let request = a.request();
    let client = EhpcClient::new(a.cloud.config(), a.cloud.resolve_credentials().await?)?;
    let resp = match client.add_image(&request).await {
        Ok(r) => r,
        Err(e) => return fail_rpc(&e, a.json),
    };
    let spec = match &request.spec {
        ImageSpec::Vm { image_id } => json!({ "image_id": image_id }),
        ImageSpec::Container(c) => serde_json::to_value(c)?,
    };
    if a.json {
        print_json(&json!({
            "image_id": resp.image_id,
            "success": resp.success,
            "request_id": resp.request_id,
            "name": request.name,
            "image_type": request.image_type(),
            "image_version": request.image_version,
            "spec": spec,
        }))?;
    } else {
        println!(
            "registered {} image {:?} as {} (success: {})",
            request.image_type(),
            request.name,
            resp.image_id,
            resp.success
        );
    }
    Ok(ExitCode::from(exit::OK))
}

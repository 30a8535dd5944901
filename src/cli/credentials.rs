//! The one way every command says as whom it calls the cloud: flags first, then the chain of
//! [`imgport_credentials`] (environment, the OIDC role, `~/.aliyun/config.json` with its
//! RamRoleArn and OIDC modes, the ECS RAM role), with STS called by the RPC client.

use clap::Args;

use super::values::secret;
use imgport_base::secret::Secret;
use imgport_cloud::aliyun::sts::RpcSts;
use imgport_credentials::{
    ChainOptions, CredentialError, CredentialSource, Credentials, Provider, StsHandle,
};

/// Credential flags shared by `import`, `plan`, `batch`, `packer`, `upload`, `image` and
/// `ehpc`; each is optional because the chain fills what is missing.
#[derive(Debug, Clone, Default, Args)]
pub struct CredentialFlags {
    /// AccessKey ID (else ALIBABA_CLOUD_ACCESS_KEY_ID, ~/.aliyun/config.json, ECS RAM role).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// AccessKey secret (prefer ALIBABA_CLOUD_ACCESS_KEY_SECRET: flags show in `ps`).
    #[arg(long, value_parser = secret)]
    pub access_key_secret: Option<Secret>,
    /// STS security token (else ALIBABA_CLOUD_SECURITY_TOKEN).
    #[arg(long, value_parser = secret)]
    pub security_token: Option<Secret>,
    /// Profile of ~/.aliyun/config.json (else ALIBABA_CLOUD_PROFILE, else its `current`).
    #[arg(long)]
    pub profile: Option<String>,
}

impl CredentialFlags {
    /// The chain these flags start; `allow_aws_env` accepts the AWS variables at its end
    /// (plain S3 targets).
    pub fn chain(&self, allow_aws_env: bool) -> ChainOptions {
        ChainOptions {
            cloud: imgport_credentials::Cloud::Alibaba,
            access_key_id: self.access_key_id.clone(),
            access_key_secret: self.access_key_secret.clone(),
            security_token: self.security_token.clone(),
            profile: self.profile.clone(),
            allow_aws_env,
            sts: Some(StsHandle(std::sync::Arc::new(RpcSts::default()))),
        }
    }

    /// Like [`CredentialFlags::resolve`], as credentials renewed before they expire (STS,
    /// ECS role): for commands that run long (imports).
    pub async fn resolve_provider(
        &self,
        allow_aws_env: bool,
    ) -> Result<(Provider, CredentialSource), CredentialError> {
        imgport_credentials::resolve_provider(&self.chain(allow_aws_env)).await
    }

    /// Credentials from the flags, else the first link of the chain that has them.
    pub async fn resolve(
        &self,
        allow_aws_env: bool,
    ) -> Result<(Credentials, CredentialSource), CredentialError> {
        imgport_credentials::resolve(&self.chain(allow_aws_env)).await
    }
}

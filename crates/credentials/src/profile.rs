//! The Alibaba Cloud CLI config file (`~/.aliyun/config.json`): its profiles and what each
//! mode asks for (docs/CLOUD-API.md §Credentials).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::model::{CredentialError, Credentials, DEFAULT_STS_SECONDS, MAX_CONFIG_BYTES};
use imgport_base::secret::Secret;

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    ram_role_name: String,
    #[serde(default)]
    ram_role_arn: String,
    #[serde(default)]
    ram_session_name: String,
    #[serde(default)]
    expired_seconds: u32,
    #[serde(default)]
    sts_region: String,
    #[serde(default)]
    oidc_provider_arn: String,
    #[serde(default)]
    oidc_token_file: String,
}

/// What a profile asks for.
pub(crate) enum ProfileCreds {
    Static(Credentials),
    EcsRole(String),
    /// AssumeRole with these caller credentials.
    Role {
        caller: Credentials,
        arn: String,
        session: String,
        seconds: u32,
        sts_region: String,
    },
    /// AssumeRoleWithOIDC.
    Oidc {
        arn: String,
        provider: String,
        token_file: PathBuf,
        session: String,
        seconds: u32,
        sts_region: String,
    },
}

pub(crate) fn read_profile(
    path: &Path,
    wanted: Option<&str>,
) -> Result<(String, ProfileCreds), CredentialError> {
    use std::io::Read;
    let read_err = |source| CredentialError::ConfigRead {
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_CONFIG_BYTES)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    let file: ConfigFile =
        serde_json::from_slice(&text).map_err(|source| CredentialError::ConfigParse {
            path: path.to_path_buf(),
            source,
        })?;
    let name = wanted
        .map(str::to_string)
        .unwrap_or_else(|| file.current.clone());
    let profile = file
        .profiles
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| CredentialError::NoProfile {
            path: path.to_path_buf(),
            name: name.clone(),
        })?;
    let need = |value: String, field: &'static str| {
        if value.is_empty() {
            Err(CredentialError::ProfileField {
                path: path.to_path_buf(),
                name: name.clone(),
                field,
            })
        } else {
            Ok(value)
        }
    };
    let creds = match profile.mode.as_str() {
        "AK" | "" => ProfileCreds::Static(Credentials {
            access_key_id: need(profile.access_key_id, "access_key_id")?,
            access_key_secret: Secret::new(need(profile.access_key_secret, "access_key_secret")?),
            security_token: None,
        }),
        "StsToken" => ProfileCreds::Static(Credentials {
            access_key_id: need(profile.access_key_id, "access_key_id")?,
            access_key_secret: Secret::new(need(profile.access_key_secret, "access_key_secret")?),
            security_token: Some(Secret::new(need(profile.sts_token, "sts_token")?)),
        }),
        "EcsRamRole" => ProfileCreds::EcsRole(need(profile.ram_role_name, "ram_role_name")?),
        "RamRoleArn" => ProfileCreds::Role {
            caller: Credentials {
                access_key_id: need(profile.access_key_id, "access_key_id")?,
                access_key_secret: Secret::new(need(
                    profile.access_key_secret,
                    "access_key_secret",
                )?),
                security_token: Some(profile.sts_token)
                    .filter(|t| !t.is_empty())
                    .map(Secret::new),
            },
            arn: need(profile.ram_role_arn, "ram_role_arn")?,
            session: profile.ram_session_name,
            seconds: match profile.expired_seconds {
                0 => DEFAULT_STS_SECONDS,
                s => s,
            },
            sts_region: profile.sts_region,
        },
        "OIDC" => ProfileCreds::Oidc {
            arn: need(profile.ram_role_arn, "ram_role_arn")?,
            provider: need(profile.oidc_provider_arn, "oidc_provider_arn")?,
            token_file: PathBuf::from(need(profile.oidc_token_file, "oidc_token_file")?),
            session: profile.ram_session_name,
            seconds: profile.expired_seconds,
            sts_region: profile.sts_region,
        },
        other => {
            return Err(CredentialError::UnsupportedMode {
                path: path.to_path_buf(),
                name,
                mode: other.to_string(),
            });
        }
    };
    Ok((name, creds))
}

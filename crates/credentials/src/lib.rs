//! Alibaba Cloud credentials (AccessKey pair, optional STS token) and the one chain that finds
//! them, shared by the OSS uploader (`store`) and the ECS RPC client.
//!
//! Order (docs/CLOUD-API.md §Credentials): explicit values (flags) →
//! `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN` → the OIDC role of
//! Kubernetes RRSA (`ALIBABA_CLOUD_ROLE_ARN`, `_OIDC_PROVIDER_ARN`, `_OIDC_TOKEN_FILE`:
//! AssumeRoleWithOIDC) → a profile of the CLI config (`ALIBABA_CLOUD_CONFIG_FILE` or
//! `~/.aliyun/config.json`; modes `AK`, `StsToken`, `RamRoleArn` (AssumeRole), `OIDC`,
//! `EcsRamRole`) → the ECS RAM role from instance metadata → for plain S3 only, the standard
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
//!
//! STS and ECS-role credentials expire: [`resolve_provider`] gives a [`Provider`] that renews
//! them before they do ([`sts`]). STS is at `IMGPORT_STS_ENDPOINT` when set (tests, the
//! emulator), else `sts.<ALIBABA_CLOUD_STS_REGION or the profile's sts_region>.aliyuncs.com`,
//! else `sts.aliyuncs.com`.
//!
//! Kingsoft Cloud (KEC) credentials come from the same entry points with
//! [`ChainOptions::cloud`] = [`Cloud::Kingsoft`]: flags, its environment variables and the
//! Kingsoft SDK's credentials and config files ([`ksyun`], docs/CLOUD-API.md §KEC).
//!
//! The chain asks instance metadata only when a role is named (`ALIBABA_CLOUD_ECS_METADATA`,
//! or an `EcsRamRole` profile): probing the link-local metadata address off ECS would send
//! traffic where no server of ours is. The one other question, the instance's region
//! ([`instance_region`], for choosing OSS's internal endpoint), goes through the same client,
//! once, within [`PROBE_TIMEOUT`], and only when the user leaves that choice to imgport.
//! Secrets stay in [`Secret`]; nothing here prints or logs them.

#[cfg(test)]
mod chain_tests;
mod ksyun;
mod metadata;
mod model;
mod profile;
pub mod sts;

pub use metadata::{PROBE_TIMEOUT, instance_region};
use model::DEFAULT_STS_SECONDS;
pub use model::{CredentialError, CredentialSource, Credentials};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use imgport_base::secret::Secret;
use profile::{ProfileCreds, read_profile};
use sts::Renew;
pub use sts::{AssumeRole, AssumeRoleWithOidc, Issued, Provider, Sts, StsFuture, StsHandle};

/// Whose credentials the chain looks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cloud {
    /// Alibaba Cloud (ECS, OSS, STS, RAM).
    #[default]
    Alibaba,
    /// Kingsoft Cloud (KEC): no STS, no instance role; fixed AccessKeys only.
    Kingsoft,
}

/// What the chain may use besides the process environment.
#[derive(Debug, Clone, Default)]
pub struct ChainOptions {
    /// Whose credentials (the order of links differs per cloud).
    pub cloud: Cloud,
    /// `--access-key-id`.
    pub access_key_id: Option<String>,
    /// `--access-key-secret`.
    pub access_key_secret: Option<Secret>,
    /// `--security-token`.
    pub security_token: Option<Secret>,
    /// `--profile` (else `ALIBABA_CLOUD_PROFILE`, else the file's `current`; for Kingsoft
    /// `KS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Accept the standard AWS variables at the end of the chain (plain S3 targets).
    pub allow_aws_env: bool,
    /// The STS calls of `RamRoleArn` and OIDC credentials; without it those modes fail.
    pub sts: Option<StsHandle>,
}

/// Default ECS metadata service (docs/CLOUD-API.md §Credentials).
pub const ECS_METADATA_ENDPOINT: &str = "http://100.100.100.200";

/// The metadata service the process environment names: `IMGPORT_ECS_METADATA_ENDPOINT`
/// (tests, the emulator), else [`ECS_METADATA_ENDPOINT`].
pub fn metadata_endpoint() -> String {
    std::env::var("IMGPORT_ECS_METADATA_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| ECS_METADATA_ENDPOINT.to_string())
}

/// The STS endpoint: `IMGPORT_STS_ENDPOINT`, else the regional or global host.
fn sts_endpoint(var: &dyn Fn(&str) -> Option<String>, region: &str) -> String {
    if let Some(e) = var("IMGPORT_STS_ENDPOINT") {
        return e;
    }
    match var("ALIBABA_CLOUD_STS_REGION")
        .or_else(|| Some(region.to_string()).filter(|r| !r.is_empty()))
    {
        Some(r) => format!("sts.{r}.aliyuncs.com"),
        None => "sts.aliyuncs.com".to_string(),
    }
}

/// A session name: the given one, else `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else one naming
/// imgport and the time.
fn session_name(var: &dyn Fn(&str) -> Option<String>, given: &str) -> String {
    if !given.is_empty() {
        return given.to_string();
    }
    var("ALIBABA_CLOUD_ROLE_SESSION_NAME").unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("imgport-{t}")
    })
}

/// The first credentials of `renew` and the provider that renews them.
async fn renewing(renew: Renew, sts: Option<StsHandle>) -> Result<Provider, CredentialError> {
    let issued = sts::renew_once(&renew, sts.as_ref()).await?;
    Ok(Provider::with(
        issued.credentials,
        Some(issued.expiration),
        Some((renew, sts)),
    ))
}

/// Resolves credentials with the process environment.
pub async fn resolve(
    opts: &ChainOptions,
) -> Result<(Credentials, CredentialSource), CredentialError> {
    resolve_with(opts, &|name| std::env::var(name).ok()).await
}

/// Resolves credentials with `env` standing for the process environment (tests).
pub async fn resolve_with(
    opts: &ChainOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(Credentials, CredentialSource), CredentialError> {
    let (p, source) = resolve_provider_with(opts, env).await?;
    Ok((p.current(), source))
}

/// Resolves credentials that renew themselves when they expire, with the process
/// environment.
pub async fn resolve_provider(
    opts: &ChainOptions,
) -> Result<(Provider, CredentialSource), CredentialError> {
    resolve_provider_with(opts, &|name| std::env::var(name).ok()).await
}

/// [`resolve_provider`] with `env` standing for the process environment (tests).
pub async fn resolve_provider_with(
    opts: &ChainOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(Provider, CredentialSource), CredentialError> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let fixed = |c: Credentials, s: CredentialSource| Ok((Provider::fixed(c), s));
    if opts.cloud == Cloud::Kingsoft {
        let flags = ksyun::Flags {
            access_key_id: opts.access_key_id.as_deref(),
            access_key_secret: opts.access_key_secret.as_ref(),
            security_token: opts.security_token.as_ref(),
            profile: opts.profile.as_deref(),
        };
        let (c, s) = ksyun::resolve(&flags, &var)?;
        return fixed(c, s);
    }
    match (&opts.access_key_id, &opts.access_key_secret) {
        (Some(id), Some(secret)) => {
            return fixed(
                Credentials {
                    access_key_id: id.clone(),
                    access_key_secret: secret.clone(),
                    security_token: opts.security_token.clone(),
                },
                CredentialSource::Flags,
            );
        }
        (Some(_), None) | (None, Some(_)) => return Err(CredentialError::Incomplete),
        (None, None) => {}
    }
    if let (Some(id), Some(secret)) = (
        var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ) {
        return fixed(
            Credentials {
                access_key_id: id,
                access_key_secret: Secret::new(secret),
                security_token: var("ALIBABA_CLOUD_SECURITY_TOKEN").map(Secret::new),
            },
            CredentialSource::Environment,
        );
    }
    if let (Some(arn), Some(provider), Some(file)) = (
        var("ALIBABA_CLOUD_ROLE_ARN"),
        var("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
        var("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
    ) {
        let p = oidc(&var, opts, arn.clone(), provider, file.into(), "", 0, "").await?;
        return Ok((p, CredentialSource::Oidc(arn)));
    }
    let metadata =
        var("IMGPORT_ECS_METADATA_ENDPOINT").unwrap_or_else(|| ECS_METADATA_ENDPOINT.to_string());
    if var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED").as_deref() != Some("true") {
        let path = var("ALIBABA_CLOUD_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".aliyun/config.json")));
        if let Some(path) = path.filter(|p| p.exists()) {
            let wanted = opts
                .profile
                .clone()
                .or_else(|| var("ALIBABA_CLOUD_PROFILE"));
            let (name, creds) = read_profile(&path, wanted.as_deref())?;
            return match creds {
                ProfileCreds::Static(c) => fixed(c, CredentialSource::Profile(name)),
                ProfileCreds::EcsRole(role) => {
                    let p = ecs_provider(&metadata, &role).await?;
                    Ok((p, CredentialSource::EcsRamRole(role)))
                }
                ProfileCreds::Role {
                    caller,
                    arn,
                    session,
                    seconds,
                    sts_region,
                } => {
                    let req = AssumeRole {
                        endpoint: sts_endpoint(&var, &sts_region),
                        role_arn: arn.clone(),
                        session_name: session_name(&var, &session),
                        duration_seconds: seconds,
                    };
                    let renew = Renew::AssumeRole { caller, req };
                    let p = renewing(renew, opts.sts.clone()).await?;
                    Ok((p, CredentialSource::RamRoleArn(arn)))
                }
                ProfileCreds::Oidc {
                    arn,
                    provider,
                    token_file,
                    session,
                    seconds,
                    sts_region,
                } => {
                    let p = oidc(
                        &var,
                        opts,
                        arn.clone(),
                        provider,
                        token_file,
                        &session,
                        seconds,
                        &sts_region,
                    )
                    .await?;
                    Ok((p, CredentialSource::Oidc(arn)))
                }
            };
        } else if let Some(name) = &opts.profile {
            return Err(CredentialError::NoProfile {
                path: PathBuf::from("~/.aliyun/config.json"),
                name: name.clone(),
            });
        }
    }
    if var("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() != Some("true")
        && let Some(role) = var("ALIBABA_CLOUD_ECS_METADATA")
    {
        let p = ecs_provider(&metadata, &role).await?;
        return Ok((p, CredentialSource::EcsRamRole(role)));
    }
    if opts.allow_aws_env
        && let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    {
        return fixed(
            Credentials {
                access_key_id: id,
                access_key_secret: Secret::new(secret),
                security_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            },
            CredentialSource::AwsEnvironment,
        );
    }
    Err(CredentialError::NotFound)
}

/// Credentials of the ECS RAM role `role`, renewed from the metadata service at `base`.
async fn ecs_provider(base: &str, role: &str) -> Result<Provider, CredentialError> {
    let renew = Renew::EcsRole {
        base: base.to_string(),
        role: role.to_string(),
    };
    renewing(renew, None).await
}

/// Credentials of the OIDC role `arn`, renewed by AssumeRoleWithOIDC.
#[allow(clippy::too_many_arguments)]
async fn oidc(
    var: &dyn Fn(&str) -> Option<String>,
    opts: &ChainOptions,
    arn: String,
    provider: String,
    token_file: PathBuf,
    session: &str,
    seconds: u32,
    sts_region: &str,
) -> Result<Provider, CredentialError> {
    let req = AssumeRoleWithOidc {
        endpoint: sts_endpoint(var, sts_region),
        role_arn: arn,
        provider_arn: provider,
        token: Secret::new(String::new()),
        session_name: session_name(var, session),
        duration_seconds: if seconds == 0 {
            DEFAULT_STS_SECONDS
        } else {
            seconds
        },
    };
    renewing(Renew::Oidc { token_file, req }, opts.sts.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(
        opts: &ChainOptions,
        vars: &[(&str, &str)],
    ) -> Result<(Credentials, CredentialSource), CredentialError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(resolve_with(opts, &env))
    }

    fn config(dir: &Path) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(
            &p,
            r#"{"current":"default","profiles":[
              {"name":"default","mode":"AK","access_key_id":"AKprof","access_key_secret":"sprof"},
              {"name":"sts","mode":"StsToken","access_key_id":"STS.x","access_key_secret":"s2","sts_token":"tok"},
              {"name":"odd","mode":"CloudSSO"}]}"#,
        )
        .unwrap();
        p
    }

    #[test]
    fn flags_then_env_then_profile_then_aws() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let cfg = cfg.to_str().unwrap();
        let flags = ChainOptions {
            access_key_id: Some("AKflag".into()),
            access_key_secret: Some(Secret::new("sflag")),
            allow_aws_env: true,
            ..ChainOptions::default()
        };
        let env = [
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "AKenv"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "senv"),
            ("ALIBABA_CLOUD_CONFIG_FILE", cfg),
            ("AWS_ACCESS_KEY_ID", "AKaws"),
            ("AWS_SECRET_ACCESS_KEY", "saws"),
        ];
        let (c, s) = run(&flags, &env).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), s),
            ("AKflag", CredentialSource::Flags)
        );
        let none = ChainOptions {
            allow_aws_env: true,
            ..ChainOptions::default()
        };
        let (c, s) = run(&none, &env).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), s),
            ("AKenv", CredentialSource::Environment)
        );
        let (c, s) = run(&none, &env[2..]).unwrap();
        assert_eq!(c.access_key_id, "AKprof");
        assert_eq!(s, CredentialSource::Profile("default".into()));
        let (c, s) = run(&none, &env[3..]).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), s),
            ("AKaws", CredentialSource::AwsEnvironment)
        );
        let no_aws = ChainOptions::default();
        assert!(matches!(
            run(&no_aws, &env[3..]),
            Err(CredentialError::NotFound)
        ));
    }

    #[test]
    fn profiles_by_name_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = [("ALIBABA_CLOUD_CONFIG_FILE", cfg.to_str().unwrap())];
        let sts = ChainOptions {
            profile: Some("sts".into()),
            ..ChainOptions::default()
        };
        let (c, _) = run(&sts, &env).unwrap();
        assert_eq!(c.security_token.unwrap().expose(), "tok");
        let odd = ChainOptions {
            profile: Some("odd".into()),
            ..ChainOptions::default()
        };
        let err = run(&odd, &env).unwrap_err();
        assert!(
            matches!(err, CredentialError::UnsupportedMode { .. }),
            "{err}"
        );
        let missing = ChainOptions {
            profile: Some("nope".into()),
            ..ChainOptions::default()
        };
        assert!(matches!(
            run(&missing, &env),
            Err(CredentialError::NoProfile { .. })
        ));
        let half = ChainOptions {
            access_key_id: Some("x".into()),
            ..ChainOptions::default()
        };
        assert!(matches!(run(&half, &env), Err(CredentialError::Incomplete)));
    }

    /// A metadata service on 127.0.0.1 that wants the IMDSv2 token.
    async fn metadata_server() -> String {
        use http_body_util::Full;
        use hyper::{Request, Response, body::Bytes};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let svc = hyper::service::service_fn(
                    |req: Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let token = req
                            .headers()
                            .get("x-aliyun-ecs-metadata-token")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let (status, body) = match (req.method().as_str(), path.as_str()) {
                        ("PUT", "/latest/api/token") => (200, "tok-1".to_string()),
                        ("GET", "/latest/meta-data/ram/security-credentials/imgrole")
                            if token.as_deref() == Some("tok-1") =>
                        {
                            (200, r#"{"Code":"Success","AccessKeyId":"STS.role","AccessKeySecret":"rs","SecurityToken":"rt","Expiration":"2099-01-01T00:00:00Z"}"#.to_string())
                        }
                        ("GET", "/latest/meta-data/region-id")
                            if token.as_deref() == Some("tok-1") =>
                        {
                            (200, "cn-shanghai\n".to_string())
                        }
                        _ => (404, String::new()),
                    };
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
                );
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn instance_region_from_metadata_with_a_token() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let base = rt.block_on(metadata_server());
        let region = rt.block_on(instance_region(&base, PROBE_TIMEOUT)).unwrap();
        assert_eq!(region, "cn-shanghai");
        // A closed port: an error, not a wait.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let err = rt
            .block_on(instance_region(&format!("http://{addr}"), PROBE_TIMEOUT))
            .unwrap_err();
        assert!(matches!(err, CredentialError::Metadata { .. }), "{err}");
        // A peer that accepts and never answers: the probe gives up at its budget.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let err = rt
            .block_on(instance_region(&format!("http://{addr}"), PROBE_TIMEOUT))
            .unwrap_err();
        assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
        drop(silent);
    }

    #[test]
    fn ecs_ram_role_from_instance_metadata() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let base = rt.block_on(metadata_server());
        let vars: HashMap<String, String> = [
            ("IMGPORT_ECS_METADATA_ENDPOINT", base.as_str()),
            ("ALIBABA_CLOUD_ECS_METADATA", "imgrole"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let (c, s) = rt
            .block_on(resolve_with(&ChainOptions::default(), &env))
            .unwrap();
        assert_eq!(s, CredentialSource::EcsRamRole("imgrole".into()));
        assert_eq!(c.access_key_id, "STS.role");
        assert_eq!(c.security_token.unwrap().expose(), "rt");
        let vars2: HashMap<String, String> = [
            ("IMGPORT_ECS_METADATA_ENDPOINT", base.as_str()),
            ("ALIBABA_CLOUD_ECS_METADATA", "other"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let env2 = move |k: &str| vars2.get(k).cloned();
        let err = rt
            .block_on(resolve_with(&ChainOptions::default(), &env2))
            .unwrap_err();
        assert!(matches!(err, CredentialError::Metadata { .. }), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "AK".into(),
            access_key_secret: Secret::new("very-secret"),
            security_token: Some(Secret::new("token-value")),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("very-secret") && !text.contains("token-value"));
    }
}

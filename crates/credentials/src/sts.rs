//! Credentials that expire and are renewed: STS credentials of a RAM role (profile mode
//! `RamRoleArn`: AssumeRole), of an OIDC token (Kubernetes RRSA: AssumeRoleWithOIDC), and of
//! the ECS RAM role (instance metadata). [`Provider`] hands out the current credentials and
//! renews them before they expire, so a long import never signs with an expired token.
//!
//! This crate signs nothing: the STS calls go through [`Sts`], which the RPC client of
//! `imgport-cloud` implements (docs/CLOUD-API.md §Credentials).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use imgport_base::secret::Secret;

use super::model::{CredentialError, Credentials, MAX_CONFIG_BYTES};

pub use super::model::{StsFailure, parse_expiration};
/// The future of one STS call.
pub type StsFuture<'a> = Pin<Box<dyn Future<Output = Result<Issued, StsFailure>> + Send + 'a>>;

/// Renew when less than this is left, or half the lifetime for short-lived credentials.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(180);

/// AssumeRole: STS credentials of `role_arn` for a caller's AccessKey.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    /// `host[:port]` or `http(s)://host[:port]` of STS.
    pub endpoint: String,
    pub role_arn: String,
    pub session_name: String,
    /// 900–43200; the role's maximum session duration bounds it.
    pub duration_seconds: u32,
}

/// AssumeRoleWithOIDC: STS credentials of `role_arn` for an OIDC token (no AccessKey).
#[derive(Debug, Clone)]
pub struct AssumeRoleWithOidc {
    pub endpoint: String,
    pub role_arn: String,
    pub provider_arn: String,
    /// The token, read from its file for each call (Kubernetes rotates it).
    pub token: Secret,
    pub session_name: String,
    pub duration_seconds: u32,
}

/// STS credentials and when they expire.
#[derive(Debug, Clone)]
pub struct Issued {
    pub credentials: Credentials,
    pub expiration: SystemTime,
}

/// The STS calls the chain makes.
pub trait Sts: Send + Sync {
    /// AssumeRole signed with `caller`.
    fn assume_role<'a>(&'a self, caller: &'a Credentials, req: &'a AssumeRole) -> StsFuture<'a>;
    /// AssumeRoleWithOIDC (anonymous: the token is the proof).
    fn assume_role_with_oidc<'a>(&'a self, req: &'a AssumeRoleWithOidc) -> StsFuture<'a>;
}

/// An [`Sts`] given to the chain (`Debug` names nothing).
#[derive(Clone)]
pub struct StsHandle(pub Arc<dyn Sts>);

impl std::fmt::Debug for StsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StsHandle")
    }
}

/// How expiring credentials are had again.
#[derive(Debug, Clone)]
pub(crate) enum Renew {
    AssumeRole {
        caller: Credentials,
        req: AssumeRole,
    },
    Oidc {
        token_file: PathBuf,
        req: AssumeRoleWithOidc,
    },
    EcsRole {
        base: String,
        role: String,
    },
}

struct Current {
    creds: Credentials,
    issued: SystemTime,
    expires: Option<SystemTime>,
}

struct Inner {
    current: Mutex<Current>,
    renew: Option<(Renew, Option<StsHandle>)>,
    /// One renewal at a time.
    gate: tokio::sync::Mutex<()>,
}

/// The credentials of the chain's answer, renewed before they expire. Cheap to clone.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("access_key_id", &self.current().access_key_id)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Credentials that never change (flags, environment, AK profiles, the sandbox).
    pub fn fixed(credentials: Credentials) -> Self {
        Self::with(credentials, None, None)
    }

    pub(crate) fn with(
        credentials: Credentials,
        expires: Option<SystemTime>,
        renew: Option<(Renew, Option<StsHandle>)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: Mutex::new(Current {
                    creds: credentials,
                    issued: SystemTime::now(),
                    expires,
                }),
                renew,
                gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.inner.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The credentials as they are now (possibly about to expire: prefer [`Provider::fresh`]).
    pub fn current(&self) -> Credentials {
        self.lock().creds.clone()
    }

    /// When the current credentials expire; `None` for credentials that do not.
    pub fn expiration(&self) -> Option<SystemTime> {
        self.lock().expires
    }

    /// Whether these credentials are renewed (STS or the ECS role).
    pub fn renews(&self) -> bool {
        self.inner.renew.is_some()
    }

    fn due(&self, now: SystemTime) -> bool {
        let c = self.lock();
        let Some(expires) = c.expires else {
            return false;
        };
        let life = expires.duration_since(c.issued).unwrap_or_default();
        let margin = REFRESH_MARGIN.min(life / 2);
        expires
            .duration_since(now)
            .map_or(true, |left| left <= margin)
    }

    /// The current credentials, renewed first when they expire soon.
    pub async fn fresh(&self) -> Result<Credentials, CredentialError> {
        if self.inner.renew.is_none() || !self.due(SystemTime::now()) {
            return Ok(self.current());
        }
        let _one = self.inner.gate.lock().await;
        if !self.due(SystemTime::now()) {
            return Ok(self.current());
        }
        let (renew, sts) = self.inner.renew.as_ref().expect("checked above");
        let issued = renew_once(renew, sts.as_ref()).await?;
        let mut c = self.lock();
        c.creds = issued.credentials.clone();
        c.issued = SystemTime::now();
        c.expires = Some(issued.expiration);
        Ok(issued.credentials)
    }
}

fn sts_error(step: &str, source: StsFailure) -> CredentialError {
    CredentialError::Sts {
        step: step.to_string(),
        source,
    }
}

/// Reads the OIDC token file (bounded; the token is a secret).
pub(crate) fn read_token(path: &std::path::Path) -> Result<Secret, CredentialError> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES).read_to_string(&mut text))
        .map_err(|source| CredentialError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Secret::new(text.trim().to_string()))
}

/// One renewal by `renew`.
pub(crate) async fn renew_once(
    renew: &Renew,
    sts: Option<&StsHandle>,
) -> Result<Issued, CredentialError> {
    let need = || CredentialError::NoSts;
    match renew {
        Renew::AssumeRole { caller, req } => {
            let sts = sts.ok_or_else(need)?;
            sts.0
                .assume_role(caller, req)
                .await
                .map_err(|e| sts_error(&format!("AssumeRole {}", req.role_arn), e))
        }
        Renew::Oidc { token_file, req } => {
            let sts = sts.ok_or_else(need)?;
            let mut req = req.clone();
            req.token = read_token(token_file)?;
            sts.0
                .assume_role_with_oidc(&req)
                .await
                .map_err(|e| sts_error(&format!("AssumeRoleWithOIDC {}", req.role_arn), e))
        }
        Renew::EcsRole { base, role } => {
            let (credentials, expiration) = super::metadata::ecs_role(base, role).await?;
            Ok(Issued {
                credentials,
                // Without an Expiration the metadata service is asked again in an hour.
                expiration: expiration
                    .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600)),
            })
        }
    }
}

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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgport_base::secret::Secret;

use super::{CredentialError, Credentials};

/// Why an STS call failed (its message names no secret).
pub type StsFailure = Box<dyn std::error::Error + Send + Sync>;
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
        .and_then(|f| f.take(super::MAX_CONFIG_BYTES).read_to_string(&mut text))
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
            let (credentials, expiration) = super::ecs_role(base, role).await?;
            Ok(Issued {
                credentials,
                // Without an Expiration the metadata service is asked again in an hour.
                expiration: expiration
                    .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600)),
            })
        }
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SSZ` (STS and instance metadata `Expiration`).
pub fn parse_expiration(s: &str) -> Option<SystemTime> {
    let b = s.trim().as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChainOptions, CredentialSource, resolve_provider_with};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An STS that records what it was asked and issues credentials living `life`.
    struct FakeSts {
        calls: AtomicU32,
        life: Duration,
        seen: Mutex<Vec<String>>,
    }

    impl FakeSts {
        fn issue(&self, what: String) -> Result<Issued, StsFailure> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen.lock().unwrap().push(what);
            Ok(Issued {
                credentials: Credentials {
                    access_key_id: format!("STS.issued{n}"),
                    access_key_secret: Secret::new(format!("a_known_secret-{n}")),
                    security_token: Some(Secret::new(format!("a_known_secret-token-{n}"))),
                },
                expiration: SystemTime::now() + self.life,
            })
        }
    }

    impl Sts for FakeSts {
        fn assume_role<'a>(
            &'a self,
            caller: &'a Credentials,
            req: &'a AssumeRole,
        ) -> StsFuture<'a> {
            let what = format!(
                "AssumeRole {} as {} at {} for {}s ({})",
                req.role_arn,
                caller.access_key_id,
                req.endpoint,
                req.duration_seconds,
                req.session_name
            );
            Box::pin(async move { self.issue(what) })
        }
        fn assume_role_with_oidc<'a>(&'a self, req: &'a AssumeRoleWithOidc) -> StsFuture<'a> {
            let what = format!(
                "OIDC {} via {} token {}",
                req.role_arn,
                req.provider_arn,
                req.token.expose()
            );
            Box::pin(async move { self.issue(what) })
        }
    }

    fn fake(life: Duration) -> Arc<FakeSts> {
        Arc::new(FakeSts {
            calls: AtomicU32::new(0),
            life,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Sync + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    const ROLE_CONFIG: &str = r#"{"current":"role","profiles":[
      {"name":"role","mode":"RamRoleArn","access_key_id":"AKcaller","access_key_secret":"a_known_secret-caller",
       "ram_role_arn":"acs:ram::1234567890123456:role/importer","ram_session_name":"ci","expired_seconds":900,"sts_region":"cn-shanghai"},
      {"name":"oidc","mode":"OIDC","ram_role_arn":"acs:ram::1:role/k8s","oidc_provider_arn":"acs:ram::1:oidc-provider/ack","oidc_token_file":"TOKEN"},
      {"name":"half","mode":"RamRoleArn","access_key_id":"AK","access_key_secret":"s"}]}"#;

    #[test]
    fn a_ram_role_arn_profile_assumes_the_role_and_renews_before_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, ROLE_CONFIG).unwrap();
        let sts = fake(Duration::from_secs(2));
        let opts = ChainOptions {
            sts: Some(StsHandle(sts.clone())),
            ..ChainOptions::default()
        };
        let vars = env(&[("ALIBABA_CLOUD_CONFIG_FILE", cfg.to_str().unwrap())]);
        let rt = rt();
        let (p, source) = rt.block_on(resolve_provider_with(&opts, &vars)).unwrap();
        assert_eq!(
            source,
            CredentialSource::RamRoleArn("acs:ram::1234567890123456:role/importer".into())
        );
        assert_eq!(p.current().access_key_id, "STS.issued1");
        assert_eq!(
            sts.seen.lock().unwrap()[0],
            "AssumeRole acs:ram::1234567890123456:role/importer as AKcaller at \
             sts.cn-shanghai.aliyuncs.com for 900s (ci)"
        );
        // Fresh for now: no second call.
        assert_eq!(rt.block_on(p.fresh()).unwrap().access_key_id, "STS.issued1");
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
        // Within half its 2-second life of expiry: renewed, and every clone sees it.
        std::thread::sleep(Duration::from_millis(1100));
        let clone = p.clone();
        assert_eq!(
            rt.block_on(clone.fresh()).unwrap().access_key_id,
            "STS.issued2"
        );
        assert_eq!(p.current().access_key_id, "STS.issued2");
        // Secrets stay out of Debug and of the source.
        let shown = format!("{p:?} {source:?} {:?}", p.current());
        assert!(!shown.contains("a_known_secret"), "{shown}");
    }

    #[test]
    fn the_oidc_role_comes_from_the_environment_before_any_profile() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "a_known_secret-oidc-jwt\n").unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, ROLE_CONFIG).unwrap();
        let sts = fake(Duration::from_secs(3600));
        let opts = ChainOptions {
            sts: Some(StsHandle(sts.clone())),
            ..ChainOptions::default()
        };
        let vars = env(&[
            ("ALIBABA_CLOUD_CONFIG_FILE", cfg.to_str().unwrap()),
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/pod"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1:oidc-provider/ack",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token.to_str().unwrap()),
            ("IMGPORT_STS_ENDPOINT", "http://127.0.0.1:9"),
        ]);
        let (p, source) = rt().block_on(resolve_provider_with(&opts, &vars)).unwrap();
        assert_eq!(source, CredentialSource::Oidc("acs:ram::1:role/pod".into()));
        assert_eq!(
            sts.seen.lock().unwrap()[0],
            "OIDC acs:ram::1:role/pod via acs:ram::1:oidc-provider/ack token a_known_secret-oidc-jwt"
        );
        assert!(p.renews());
    }

    #[test]
    fn role_modes_need_sts_and_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, ROLE_CONFIG).unwrap();
        let vars = env(&[("ALIBABA_CLOUD_CONFIG_FILE", cfg.to_str().unwrap())]);
        let rt = rt();
        let err = rt
            .block_on(resolve_provider_with(&ChainOptions::default(), &vars))
            .unwrap_err();
        assert!(matches!(err, CredentialError::NoSts), "{err}");
        let half = ChainOptions {
            profile: Some("half".into()),
            sts: Some(StsHandle(fake(Duration::from_secs(60)))),
            ..ChainOptions::default()
        };
        let err = rt
            .block_on(resolve_provider_with(&half, &vars))
            .unwrap_err();
        assert!(
            matches!(
                err,
                CredentialError::ProfileField {
                    field: "ram_role_arn",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn expiration_times_parse() {
        let t = parse_expiration("2026-12-07T17:30:00Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_796_664_600
        );
        assert_eq!(parse_expiration("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert!(parse_expiration("2026-13-07T17:30:00Z").is_none());
        assert!(parse_expiration("yesterday").is_none());
    }
}

//! Tests of the chain's STS modes: config-file fixtures and a fake STS.
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::sts::*;
use crate::{ChainOptions, CredentialError, CredentialSource, Credentials, resolve_provider_with};
use imgport_base::secret::Secret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::UNIX_EPOCH;

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
    fn assume_role<'a>(&'a self, caller: &'a Credentials, req: &'a AssumeRole) -> StsFuture<'a> {
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

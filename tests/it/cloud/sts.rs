//! The credential chain's STS modes against the emulator over 127.0.0.1
//! (docs/CLOUD-API.md §Credentials): a `RamRoleArn` profile assumes the role through the
//! emulated STS and ECS accepts the issued credentials; short-lived credentials are renewed
//! before they expire; an expired token is refused with the service's code; no secret shows.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use imgport::cloud::aliyun::sts::RpcSts;
use imgport::credentials::{
    ChainOptions, CredentialSource, Provider, StsHandle, resolve_provider_with,
};

const ROLE_ARN: &str = "acs:ram::1234567890123456:role/imgport-sim-admin";

fn role_profile(dir: &Path, sim: &SimProcess) -> PathBuf {
    let cfg = dir.join("config.json");
    let text = serde_json::json!({
        "current": "role",
        "profiles": [{
            "name": "role", "mode": "RamRoleArn",
            "access_key_id": sim.key_id, "access_key_secret": sim.secret,
            "ram_role_arn": ROLE_ARN, "ram_session_name": "it-test", "expired_seconds": 900
        }]
    });
    std::fs::write(&cfg, text.to_string()).unwrap();
    cfg
}

/// The credentials of a RamRoleArn profile in `dir`, assumed and renewed through `sim`'s STS.
fn role_provider(
    sim: &SimProcess,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> (Provider, CredentialSource) {
    let cfg = role_profile(dir, sim);
    let vars = [
        ("ALIBABA_CLOUD_CONFIG_FILE", cfg.display().to_string()),
        ("IMGPORT_STS_ENDPOINT", sim.endpoint.clone()),
    ];
    let env = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let opts = ChainOptions {
        sts: Some(StsHandle(Arc::new(RpcSts::default()))),
        ..ChainOptions::default()
    };
    rt.block_on(resolve_provider_with(&opts, &env)).unwrap()
}

#[test]
fn a_ram_role_arn_profile_calls_ecs_as_the_assumed_role() {
    let sim = SimProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = role_profile(dir.path(), &sim);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args([
            "image",
            "modify",
            "m-doesnotexist00000001",
            "--region",
            REGION,
        ])
        .args(["--endpoint", &sim.endpoint, "--name", "renamed", "--json"])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_ROLE_ARN")
        .env("HOME", dir.path())
        .env("ALIBABA_CLOUD_CONFIG_FILE", &cfg)
        .env("IMGPORT_STS_ENDPOINT", &sim.endpoint)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Authenticated as the role: the answer is about the image, not the key.
    assert!(
        stdout.contains("InvalidImageId.NotFound"),
        "{stdout}\n{stderr}"
    );
    for secret in [sim.secret.as_str(), "sim-sts-secret-", "CAISsim"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret shows: {stdout}\n{stderr}"
        );
    }
}

#[test]
fn short_lived_sts_credentials_are_renewed_and_expired_ones_refused() {
    let sim = SimProcess::start(&["--sts-seconds", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, source) = role_provider(&sim, dir.path(), &rt);
    assert_eq!(source, CredentialSource::RamRoleArn(ROLE_ARN.into()));
    let first = provider.current();
    assert!(first.access_key_id.starts_with("STS."), "{first:?}");

    let config = sim.config(SignatureVersion::V3);
    // A client holding the first credentials as they are, without renewal.
    let stale = EcsClient::new(config.clone(), first.clone()).unwrap();
    let renewing = EcsClient::with_provider(config, provider.clone()).unwrap();
    let list = |c: &EcsClient| {
        let req = DescribeImagesRequest::new(REGION);
        rt.block_on(async { c.describe_images(&req).await })
    };
    list(&renewing).expect("fresh STS credentials are accepted");
    std::thread::sleep(Duration::from_millis(2200));
    let err = list(&stale).unwrap_err();
    assert_eq!(err.code(), Some("InvalidSecurityToken.Expired"), "{err:?}");
    list(&renewing).expect("renewed before they expired");
    assert_ne!(provider.current().access_key_id, first.access_key_id);
}

/// An import whose STS credentials live 4 s while its upload takes 5 or more: the client renews
/// them before they expire, so the emulator's S3, which refuses expired tokens as OSS does
/// (403 SecurityTokenExpired), accepts every request, and it saw more than one STS key.
#[test]
fn an_import_outlives_its_sts_credentials_by_renewing_them() {
    use crate::util::{image, start_sim_with};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    // Every UploadPart answered after 800 ms: 13 parts two at a time take about 5 s.
    let sim = start_sim_with(
        &state,
        BUCKET,
        &["--sts-seconds", "4", "--s3-fault", "0:delay=800:1000"],
    );
    let cfg = dir.path().join("config.json");
    let profile = serde_json::json!({
        "current": "role",
        "profiles": [{
            "name": "role", "mode": "RamRoleArn",
            "access_key_id": imgport::sim::server::TEST_ACCESS_KEY_ID,
            "access_key_secret": imgport::sim::server::TEST_ACCESS_KEY_SECRET,
            "ram_role_arn": ROLE_ARN, "ram_session_name": "it-renew", "expired_seconds": 900
        }]
    });
    std::fs::write(&cfg, profile.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgport"))
        .arg("import")
        .arg(image("content.raw"))
        .args([
            "--region",
            REGION,
            "--bucket",
            BUCKET,
            "--name",
            "sts-renewal",
        ])
        .args(["--system-disk", "1", "--to", "raw", "--part-size", "5M"])
        .args(["--concurrency", "2", "--allow-no-os", "--no-dedupe"])
        .args(["--poll-interval", "0.2", "--json"])
        .args(["--ecs-endpoint", &sim.ecs, "--oss-endpoint", &sim.s3])
        .arg("--journal")
        .arg(dir.path().join("uploads"))
        .current_dir(dir.path())
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_ROLE_ARN")
        .env("HOME", dir.path())
        .env("ALIBABA_CLOUD_CONFIG_FILE", &cfg)
        .env("IMGPORT_STS_ENDPOINT", &sim.ecs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "Available", "{r}");
    let keys = std::fs::read_to_string(
        state
            .join("s3")
            .join(imgport::sim::s3::INTERNAL_DIR)
            .join(imgport::sim::s3::STS_KEYS_FILE),
    )
    .expect("the S3 server accepted STS credentials");
    let keys: Vec<&str> = keys.lines().collect();
    assert!(
        keys.len() > 1,
        "one STS key served the whole upload: {keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with("STS.")), "{keys:?}");
    for secret in ["sim-sts-secret-", "CAISsim"] {
        assert!(!stderr.contains(secret), "a secret shows: {stderr}");
    }
}

/// The emulator's S3 takes the STS credentials its STS issued, as OSS does through its
/// S3-compatible API (docs/CLOUD-API.md §OSS, "STS credentials"): with their token they are
/// accepted; with another token they are 403 InvalidSecurityToken; once expired, 403
/// SecurityTokenExpired; a key STS never issued is 403 InvalidAccessKeyId.
#[test]
fn the_emulators_s3_checks_sts_tokens_and_their_expiry() {
    use imgport::store::{ObjectStore, S3Store, StoreConfig, StoreError};
    let sim = SimProcess::start(&["--sts-seconds", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, _) = role_provider(&sim, dir.path(), &rt);
    let issued = provider.current();
    let config = StoreConfig::custom(REGION, &sim.s3_endpoint, false).unwrap();
    let code = |c: &Credentials| {
        let store = S3Store::new(&config, c);
        match rt.block_on(store.bucket_region(BUCKET)) {
            Ok(_) => "ok".to_string(),
            Err(StoreError::Service { code, status, .. }) => format!("{status} {code}"),
            Err(e) => panic!("not a service answer: {e:?}"),
        }
    };
    assert_eq!(code(&issued), "ok");
    let mut wrong = issued.clone();
    wrong.security_token = Some(Secret::new("CAISnotthetoken"));
    assert_eq!(code(&wrong), "403 InvalidSecurityToken");
    let mut none = issued.clone();
    none.security_token = None;
    assert_eq!(code(&none), "403 InvalidSecurityToken");
    let mut unknown = issued.clone();
    unknown.access_key_id = "STS.neverissued".into();
    assert_eq!(code(&unknown), "403 InvalidAccessKeyId");
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(code(&issued), "403 SecurityTokenExpired");
}

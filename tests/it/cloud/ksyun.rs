//! `imgport ksyun reinstall` (KEC 2016-03-04 ModifyInstanceImage, docs/CLOUD-API.md §KEC) against
//! the emulator over SigV4: reinstalls that change the emulator's state, every local rule refused
//! before sending, the documented error codes, and signature checks (the client signs with the
//! `aws-sigv4` crate, the emulator verifies with its own code).

use std::time::SystemTime;

use super::*;
use imgport::cloud::ksyun::KsyunCredentials;
use imgport::cloud::ksyun::kec::{KEC_SERVICE, KEC_VERSION, KecClient};
use imgport::cloud::ksyun::sigv4::KsyunConfig;
use imgport::sim::kec::{
    IMAGE_ASSEMBLED, IMAGE_CUSTOM, IMAGE_NO_KEY_LOGIN, IMAGE_PUBLIC, INSTANCE_RUNNING,
    INSTANCE_SPOT, INSTANCE_STOPPED, INSTANCE_STOPPED_2, KEY_ID, TEST_ACCESS_KEY_ID,
    TEST_SECRET_KEY,
};

const PASSWORD: &str = "1qaQ!abcXY";
/// Reinstall the stopped instance with the custom image, keeping the image's login.
const CUSTOM_ON_STOPPED: [&str; 5] = [
    "--instance",
    INSTANCE_STOPPED,
    "--image",
    IMAGE_CUSTOM,
    "--keep-image-login",
];

fn kec(sim: &SimProcess, ak: &str, sk: &str) -> KecClient {
    let mut cfg = KsyunConfig::new("cn-beijing-6");
    cfg.endpoint = Some(sim.endpoint.clone());
    KecClient::new(
        cfg,
        KsyunCredentials {
            access_key_id: ak.into(),
            secret_access_key: Secret::new(sk),
        },
    )
    .unwrap()
}

/// Runs `imgport ksyun reinstall --endpoint EP --json ARGS`.
fn reinstall(ep: &str, args: &[&str]) -> crate::util::Run {
    cli(&[
        &["ksyun", "reinstall", "--endpoint", ep, "--json"][..],
        args,
    ]
    .concat())
}

#[test]
fn reinstall_with_an_image_or_the_current_one() {
    let sim = SimProcess::start(&[]);
    let ep = sim.endpoint.as_str();
    let run = reinstall(ep, &CUSTOM_ON_STOPPED);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(
        (v["return"].as_bool(), v["login"].as_str()),
        (Some(true), Some("keep_image_login")),
        "{v}"
    );
    assert!(!v["request_id"].as_str().unwrap().is_empty());
    // The reinstalled instance boots: a second reinstall is refused until it is stopped.
    let run = reinstall(
        ep,
        &["--instance", INSTANCE_STOPPED, "--password", PASSWORD],
    );
    run.expect_code(4);
    assert_eq!(json_code(&run), "InstanceStateNotSupported");
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
    // The current image again, with a password, a key pair, a bigger disk and user data.
    let dir = tempfile::tempdir().unwrap();
    let user_data = dir.path().join("init.sh");
    std::fs::write(&user_data, b"#!/bin/sh\necho hello\n").unwrap();
    let run = reinstall(
        ep,
        &[
            "--instance",
            INSTANCE_STOPPED_2,
            "--password",
            PASSWORD,
            "--key-id",
            KEY_ID,
            "--system-disk-size",
            "40",
            "--resize-type",
            "online",
            "--user-data-file",
            user_data.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["image_id"], serde_json::Value::Null);
    assert_eq!(v["user_data_bytes"], 21);
    assert_eq!(v["key_ids"][0], KEY_ID);
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
}

#[test]
fn reinstall_refuses_every_local_rule_before_sending() {
    let i = INSTANCE_STOPPED;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
    let big = big.to_str().unwrap().to_string();
    let long = format!("1qaQ{}", "x".repeat(29));
    let upper = i.to_uppercase();
    let keys: Vec<&str> = (0..11).flat_map(|_| ["--key-id", KEY_ID]).collect();
    let on = ["--instance", i];
    let kept = ["--instance", i, "--keep-image-login"];
    let keep = |extra: &[&'static str]| join(&kept, extra);
    let mut cases: Vec<Local<'_>> = vec![
        ("no login", on.to_vec(), "required"),
        (
            "password and keep-image-login",
            join(&on, &["--password", PASSWORD, "--keep-image-login"]),
            "cannot be used with",
        ),
        (
            "instance id not a UUID",
            vec!["--instance", "i-abc", "--keep-image-login"],
            "InstanceNotFound",
        ),
        (
            "instance id in upper case",
            vec!["--instance", &upper, "--keep-image-login"],
            "InstanceNotFound",
        ),
        (
            "image id not a UUID",
            keep(&["--image", "img-1"]),
            "ImageIdInvalidParameterValue",
        ),
        (
            "11 key pairs",
            join(&join(&on, &["--password", PASSWORD]), &keys),
            "InvalidParameter.InstanceKeyLimitExceeded",
        ),
        (
            "key id not a UUID",
            keep(&["--key-id", "my-key"]),
            "KeyIdInvalidParameterValue",
        ),
        (
            "system disk 0",
            keep(&["--system-disk-size", "0"]),
            "RootDiskGbInvalidParameterValue",
        ),
        (
            "resize type sideways",
            keep(&["--resize-type", "sideways"]),
            "invalid value",
        ),
        (
            "user data over 64 KiB",
            join(&kept, &["--user-data-file", &big]),
            "larger than",
        ),
        (
            "user data file missing",
            keep(&["--user-data-file", "/nonexistent/x"]),
            "opening",
        ),
    ];
    // The password rules, each broken by one password.
    cases.extend(
        [
            ("password of 7", "1qaQ!ab", "8 to 32"),
            ("password of 33", long.as_str(), "8 to 32"),
            ("password without upper case", "1qaq!abcd", "upper-case"),
            ("password without lower case", "1QAQ!ABCD", "upper-case"),
            ("password without a digit", "qaQ!abcde", "upper-case"),
            ("password with a space", "1qaQ abcd", "visible"),
        ]
        .map(|(name, password, needle)| (name, join(&on, &["--password", password]), needle)),
    );
    // No password, good or bad, is echoed.
    let secrets = [PASSWORD, long.as_str(), "1qaQ!ab"].map(|s| format!("{s:?}"));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    check_local_refusals(&["ksyun", "reinstall"], &cases, &secrets);
}

#[test]
fn emulator_answers_documented_kec_error_codes() {
    let sim = SimProcess::start(&[]);
    let client = kec(&sim, TEST_ACCESS_KEY_ID, TEST_SECRET_KEY);
    let rt = runtime();
    let call = |action: &'static str, params: &[(&str, &str)]| {
        let p = pairs(params);
        let c = client.sigv4().clone();
        rt.block_on(async move {
            match c.call_raw(KEC_SERVICE, action, KEC_VERSION, &p).await {
                Ok(_) => ("ok".to_string(), 200),
                Err(e) => (
                    e.code().unwrap_or("none").to_string(),
                    match &e {
                        imgport::cloud::ksyun::sigv4::KsyunError::Api { source, .. } => {
                            source.http_status
                        }
                        _ => 0,
                    },
                ),
            }
        })
    };
    let keep = ("KeepImageLogin", "true");
    let pw = ("InstancePassword", PASSWORD);
    let stopped = ("InstanceId", INSTANCE_STOPPED);
    let no_such = "00000000-0000-4000-8000-000000000000";
    let eleven: Vec<(String, String)> = (1..=11)
        .map(|i| (format!("KeyId.{i}"), KEY_ID.to_string()))
        .collect();
    let mut with_keys: Vec<(&str, &str)> = vec![stopped, pw];
    with_keys.extend(eleven.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let cases: Vec<Answer<'_>> = vec![
        (
            "unknown instance",
            vec![("InstanceId", no_such), pw],
            "InstanceNotFound",
            400,
        ),
        (
            "instance id not a UUID",
            vec![("InstanceId", "not-a-uuid"), pw],
            "InstanceNotFound",
            400,
        ),
        (
            "unknown image",
            vec![stopped, ("ImageId", no_such), pw],
            "ImageIdInvalidParameterValue",
            400,
        ),
        (
            "image id not a UUID",
            vec![stopped, ("ImageId", "IMG"), pw],
            "ImageIdInvalidParameterValue",
            400,
        ),
        (
            "running instance",
            vec![("InstanceId", INSTANCE_RUNNING), pw],
            "InstanceStateNotSupported",
            400,
        ),
        (
            "spot instance",
            vec![("InstanceId", INSTANCE_SPOT), pw],
            "OperationDenied.SpotInstance",
            400,
        ),
        (
            "assembled image",
            vec![stopped, ("ImageId", IMAGE_ASSEMBLED), keep],
            "AssembledImageNotSupportReinstallSystem",
            400,
        ),
        (
            "key pair on an image without key login",
            vec![
                stopped,
                ("ImageId", IMAGE_NO_KEY_LOGIN),
                pw,
                ("KeyId.1", KEY_ID),
            ],
            "ImageTypeNotSupportedKeyLogin",
            400,
        ),
        (
            "unknown key pair",
            vec![stopped, pw, ("KeyId.1", no_such)],
            "KeyIdInvalidParameterValue",
            400,
        ),
        (
            "11 key pairs",
            with_keys,
            "InvalidParameter.InstanceKeyLimitExceeded",
            400,
        ),
        (
            "system disk 10 GiB",
            vec![stopped, pw, ("SystemDisk.DiskSize", "10")],
            "RootDiskGbInvalidParameterValue",
            400,
        ),
        (
            "system disk 501 GiB",
            vec![stopped, pw, ("SystemDisk.DiskSize", "501")],
            "RootDiskGbInvalidParameterValue",
            400,
        ),
        (
            "weak password",
            vec![stopped, ("InstancePassword", "weakpass")],
            "InstancePasswordInvalidParameterValue",
            400,
        ),
        (
            "keep-image-login on a public image",
            vec![stopped, ("ImageId", IMAGE_PUBLIC), keep],
            "MissingParameter",
            400,
        ),
        ("no login", vec![stopped], "MissingParameter", 400),
        (
            "user data not base64",
            vec![stopped, pw, ("UserData", "%%%")],
            "UserDataInvalidParameterValue",
            400,
        ),
        // KeepImageLogin with a custom image needs no password.
        (
            "keep-image-login on a custom image",
            vec![stopped, ("ImageId", IMAGE_CUSTOM), keep],
            "ok",
            200,
        ),
    ];
    check_answers(&cases, |params| call("ModifyInstanceImage", params));
    // A wrong action.
    assert_eq!(call("RunInstances", &[]).0, "InvalidAction");
}

/// Sends a prepared request and returns (status, Error.Code).
async fn send_kec(req: HttpRequest) -> (u16, String) {
    let t = ReqwestTransport::new(Duration::from_secs(10)).unwrap();
    let resp = t.send(req).await.expect("an HTTP answer");
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    (
        resp.status,
        v["Error"]["Code"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn emulator_verifies_sigv4_signatures() {
    let sim = SimProcess::start(&[]);
    let rt = runtime();
    let params = pairs(&[
        ("InstanceId", INSTANCE_STOPPED),
        ("ImageId", IMAGE_CUSTOM),
        ("KeepImageLogin", "true"),
    ]);
    let good = kec(&sim, TEST_ACCESS_KEY_ID, TEST_SECRET_KEY);
    let bad_secret = kec(&sim, TEST_ACCESS_KEY_ID, "not-the-secret");
    let unknown = kec(&sim, "AKLTnobody", TEST_SECRET_KEY);
    let untouched: fn(&mut HttpRequest) = |_| {};
    let tamper_body: fn(&mut HttpRequest) = |req| {
        req.body = String::from_utf8(std::mem::take(&mut req.body))
            .unwrap()
            .replace(IMAGE_CUSTOM, IMAGE_PUBLIC)
            .into_bytes();
    };
    let tamper_version: fn(&mut HttpRequest) =
        |req| req.url = req.url.replace("Version=2016-03-04", "Version=2016-03-05");
    let drop_signature: fn(&mut HttpRequest) = |req| {
        for (k, v) in &mut req.headers {
            if k == "authorization" {
                *v = v.split(", Signature=").next().unwrap().to_string();
            }
        }
    };
    let unsigned_host: fn(&mut HttpRequest) = |req| {
        for (k, v) in &mut req.headers {
            if k == "authorization" {
                *v = v.replace("content-type;host;x-amz-date", "content-type;x-amz-date");
            }
        }
    };
    // A case: name, client, signed-for service, age in minutes, a change made after
    // signing, and the expected (status, Error.Code).
    type Sig<'a> = (
        &'a str,
        &'a KecClient,
        &'a str,
        u64,
        fn(&mut HttpRequest),
        (u16, &'a str),
    );
    let cases: Vec<Sig<'_>> = vec![
        (
            "wrong secret",
            &bad_secret,
            KEC_SERVICE,
            0,
            untouched,
            (403, "SignatureDoesNotMatch"),
        ),
        (
            "unknown key",
            &unknown,
            KEC_SERVICE,
            0,
            untouched,
            (403, "InvalidClientTokenId"),
        ),
        (
            "tampered body",
            &good,
            KEC_SERVICE,
            0,
            tamper_body,
            (403, "SignatureDoesNotMatch"),
        ),
        (
            "tampered version",
            &good,
            KEC_SERVICE,
            0,
            tamper_version,
            (403, "SignatureDoesNotMatch"),
        ),
        (
            "another service",
            &good,
            "ec2",
            0,
            untouched,
            (403, "SignatureDoesNotMatch"),
        ),
        (
            "20 minutes old",
            &good,
            KEC_SERVICE,
            20,
            untouched,
            (400, "RequestExpired"),
        ),
        (
            "without Signature=",
            &good,
            KEC_SERVICE,
            0,
            drop_signature,
            (400, "IncompleteSignature"),
        ),
        (
            "host not signed",
            &good,
            KEC_SERVICE,
            0,
            unsigned_host,
            (400, "IncompleteSignature"),
        ),
        // 14 minutes old is still inside the window; the untouched request passes.
        (
            "14 minutes old",
            &good,
            KEC_SERVICE,
            14,
            untouched,
            (200, ""),
        ),
    ];
    let mut failed = Vec::new();
    rt.block_on(async {
        for (name, client, service, minutes, change, want) in &cases {
            let time = SystemTime::now() - Duration::from_secs(minutes * 60);
            let mut req = client
                .sigv4()
                .build_request(service, "ModifyInstanceImage", KEC_VERSION, &params, time)
                .unwrap();
            change(&mut req);
            let got = send_kec(req).await;
            if (got.0, got.1.as_str()) != *want {
                failed.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
    });
    assert_all_passed(&failed, cases.len());
}

#[test]
fn botocore_sigv4_signer_against_the_emulator() {
    let Some(py) = super::ehpc::venv_with("botocore", "botocore") else {
        eprintln!("python3 not found: skipping the botocore SigV4 test");
        return;
    };
    let sim = SimProcess::start(&[]);
    super::sdk::run_smoke(
        &py,
        "kec-botocore-smoke.py",
        &[
            ("SIM_ENDPOINT", &sim.endpoint),
            ("SIM_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
            ("SIM_SECRET_KEY", TEST_SECRET_KEY),
            ("SIM_INSTANCE", INSTANCE_STOPPED),
            ("SIM_IMAGE", IMAGE_CUSTOM),
        ],
        &[
            "bad secret SignatureDoesNotMatch",
            "reinstalled return True",
            "again InstanceStateNotSupported",
        ],
    );
}

#[test]
fn kec_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = |ep: &str| reinstall(ep, &CUSTOM_ON_STOPPED);
    {
        let sim = SimProcess::start_in(&state, &[]);
        args(&sim.endpoint).expect_code(0);
    }
    assert!(state.join("kec-state.json").exists());
    let sim = SimProcess::start_in(&state, &[]);
    let run = args(&sim.endpoint);
    run.expect_code(4);
    assert_eq!(json_code(&run), "InstanceStateNotSupported");
}

/// With no key in flags or the environment, `imgport ksyun` reads the Kingsoft SDK's
/// credentials file under HOME (docs/CLOUD-API.md §KEC, "Credentials"), by `--profile`, or
/// its config file; a malformed file is refused naming the file and line, not the secret.
#[test]
fn reinstall_with_only_the_sdk_credentials_or_config_file() {
    let sim = SimProcess::start(&[]);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ks")).unwrap();
    let creds = home.path().join(".ks/credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\nks_access_key_id = AKLTnotthesimkey\nks_secret_access_key = wrong\n\n\
             [kec]\nks_access_key_id = {TEST_ACCESS_KEY_ID}\nks_secret_access_key = {TEST_SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let run_on = |target: &[&str], extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .args(["ksyun", "reinstall", "--endpoint", &sim.endpoint, "--json"])
            .args(["--region", "cn-beijing-6"])
            .args(target)
            .args(extra)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        crate::util::Run {
            cmd: format!("imgport ksyun reinstall {target:?} {extra:?}"),
            out,
        }
    };
    let run = |extra: &[&str]| run_on(&CUSTOM_ON_STOPPED, extra);
    // The default profile's key is not the emulator's: the call is made and refused.
    let refused = run(&[]);
    refused.expect_code(4);
    let ok = run(&["--profile", "kec"]);
    ok.expect_code(0);
    assert_eq!(ok.json()["return"], true, "{}", ok.stdout());
    // A broken line is named; the secret on it is not shown.
    std::fs::write(
        &creds,
        format!("[kec]\nks_access_key_id = {TEST_ACCESS_KEY_ID}\n{TEST_SECRET_KEY}\n"),
    )
    .unwrap();
    let bad = run(&["--profile", "kec"]);
    bad.expect_code(2);
    let err = bad.stderr();
    assert!(
        err.contains(creds.to_str().unwrap()) && err.contains("line 3"),
        "{err}"
    );
    assert!(!err.contains(TEST_SECRET_KEY) && !bad.stdout().contains(TEST_SECRET_KEY));
    // Only the SDK's config file, its default section.
    std::fs::remove_file(&creds).unwrap();
    std::fs::write(
        home.path().join(".ks/config"),
        format!(
            "[default]\nks_access_key_id = {TEST_ACCESS_KEY_ID}\n\
             ks_secret_access_key = {TEST_SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let ok = run_on(
        &[
            "--instance",
            INSTANCE_STOPPED_2,
            "--image",
            IMAGE_CUSTOM,
            "--keep-image-login",
        ],
        &[],
    );
    ok.expect_code(0);
    assert_eq!(ok.json()["return"], true, "{}", ok.stdout());
}

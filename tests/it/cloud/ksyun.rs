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

#[test]
fn reinstall_with_an_image_or_the_current_one() {
    let sim = SimProcess::start(&[]);
    let ep = sim.endpoint.as_str();
    let run = cli(&[
        "ksyun",
        "reinstall",
        "--endpoint",
        ep,
        "--json",
        "--instance",
        INSTANCE_STOPPED,
        "--image",
        IMAGE_CUSTOM,
        "--keep-image-login",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(
        (v["return"].as_bool(), v["login"].as_str()),
        (Some(true), Some("keep_image_login")),
        "{v}"
    );
    assert!(!v["request_id"].as_str().unwrap().is_empty());
    // The reinstalled instance boots: a second reinstall is refused until it is stopped.
    let run = cli(&[
        "ksyun",
        "reinstall",
        "--endpoint",
        ep,
        "--json",
        "--instance",
        INSTANCE_STOPPED,
        "--password",
        PASSWORD,
    ]);
    run.expect_code(4);
    assert_eq!(json_code(&run), "InstanceStateNotSupported");
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
    // The current image again, with a password, a key pair, a bigger disk and user data.
    let dir = tempfile::tempdir().unwrap();
    let user_data = dir.path().join("init.sh");
    std::fs::write(&user_data, b"#!/bin/sh\necho hello\n").unwrap();
    let run = cli(&[
        "ksyun",
        "reinstall",
        "--endpoint",
        ep,
        "--json",
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
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["image_id"], serde_json::Value::Null);
    assert_eq!(v["user_data_bytes"], 21);
    assert_eq!(v["key_ids"][0], KEY_ID);
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
}

#[test]
fn reinstall_refuses_every_local_rule_before_sending() {
    let base = ["ksyun", "reinstall", "--endpoint", DEAD_ENDPOINT];
    let i = INSTANCE_STOPPED;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
    let big = big.to_str().unwrap().to_string();
    let long = format!("1qaQ{}", "x".repeat(29));
    let upper = i.to_uppercase();
    let keys: Vec<&str> = (0..11).flat_map(|_| ["--key-id", KEY_ID]).collect();
    let mut too_many = vec!["--instance", i, "--password", PASSWORD];
    too_many.extend(&keys);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--instance", i], "required"),
        (
            vec![
                "--instance",
                i,
                "--password",
                PASSWORD,
                "--keep-image-login",
            ],
            "cannot be used with",
        ),
        (
            vec!["--instance", "i-abc", "--keep-image-login"],
            "InstanceNotFound",
        ),
        (
            vec!["--instance", &upper, "--keep-image-login"],
            "InstanceNotFound",
        ),
        (
            vec!["--instance", i, "--image", "img-1", "--keep-image-login"],
            "ImageIdInvalidParameterValue",
        ),
        (vec!["--instance", i, "--password", "1qaQ!ab"], "8 to 32"),
        (vec!["--instance", i, "--password", &long], "8 to 32"),
        (
            vec!["--instance", i, "--password", "1qaq!abcd"],
            "upper-case",
        ),
        (
            vec!["--instance", i, "--password", "1QAQ!ABCD"],
            "upper-case",
        ),
        (
            vec!["--instance", i, "--password", "qaQ!abcde"],
            "upper-case",
        ),
        (vec!["--instance", i, "--password", "1qaQ abcd"], "visible"),
        (too_many, "InvalidParameter.InstanceKeyLimitExceeded"),
        (
            vec!["--instance", i, "--keep-image-login", "--key-id", "my-key"],
            "KeyIdInvalidParameterValue",
        ),
        (
            vec![
                "--instance",
                i,
                "--keep-image-login",
                "--system-disk-size",
                "0",
            ],
            "RootDiskGbInvalidParameterValue",
        ),
        (
            vec![
                "--instance",
                i,
                "--keep-image-login",
                "--resize-type",
                "sideways",
            ],
            "invalid value",
        ),
        (
            vec![
                "--instance",
                i,
                "--keep-image-login",
                "--user-data-file",
                &big,
            ],
            "larger than",
        ),
        (
            vec![
                "--instance",
                i,
                "--keep-image-login",
                "--user-data-file",
                "/nonexistent/x",
            ],
            "opening",
        ),
    ];
    for (extra, needle) in &cases {
        let mut args = base.to_vec();
        args.extend(extra);
        let run = cli(&args);
        run.expect_code(2);
        assert!(
            run.stderr().contains(needle),
            "{}: expected {needle:?} in\n{}",
            run.cmd,
            run.stderr()
        );
        for secret in [PASSWORD, long.as_str(), "1qaQ!ab"] {
            assert!(
                !run.stderr().contains(&format!("{secret:?}")),
                "{}",
                run.stderr()
            );
        }
    }
    let run = cli(&[
        "ksyun",
        "reinstall",
        "--endpoint",
        DEAD_ENDPOINT,
        "--json",
        "--instance",
        i,
        "--password",
        "short1A",
    ]);
    run.expect_code(2);
    assert_eq!(json_code(&run), "InstancePasswordInvalidParameterValue");
    assert!(!run.stdout().contains("short1A"));
    // A valid request is sent: against the dead endpoint that is a cloud error (4).
    cli(&[
        "ksyun",
        "reinstall",
        "--endpoint",
        DEAD_ENDPOINT,
        "--instance",
        i,
        "--keep-image-login",
    ])
    .expect_code(4);
}

#[test]
fn emulator_answers_documented_kec_error_codes() {
    let sim = SimProcess::start(&[]);
    let client = kec(&sim, TEST_ACCESS_KEY_ID, TEST_SECRET_KEY);
    let rt = runtime();
    let raw = |params: &[(&str, &str)]| {
        let p = pairs(params);
        let c = client.sigv4().clone();
        rt.block_on(async move {
            match c
                .call_raw(KEC_SERVICE, "ModifyInstanceImage", KEC_VERSION, &p)
                .await
            {
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
    let k = |n: usize| -> Vec<(String, String)> {
        (1..=n)
            .map(|i| (format!("KeyId.{i}"), KEY_ID.to_string()))
            .collect()
    };
    let eleven = k(11);
    let mut with_keys: Vec<(&str, &str)> = vec![stopped, pw];
    with_keys.extend(eleven.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("InstanceId", "00000000-0000-4000-8000-000000000000"), pw],
            "InstanceNotFound",
        ),
        (vec![("InstanceId", "not-a-uuid"), pw], "InstanceNotFound"),
        (
            vec![
                stopped,
                ("ImageId", "00000000-0000-4000-8000-000000000000"),
                pw,
            ],
            "ImageIdInvalidParameterValue",
        ),
        (
            vec![stopped, ("ImageId", "IMG"), pw],
            "ImageIdInvalidParameterValue",
        ),
        (
            vec![("InstanceId", INSTANCE_RUNNING), pw],
            "InstanceStateNotSupported",
        ),
        (
            vec![("InstanceId", INSTANCE_SPOT), pw],
            "OperationDenied.SpotInstance",
        ),
        (
            vec![stopped, ("ImageId", IMAGE_ASSEMBLED), keep],
            "AssembledImageNotSupportReinstallSystem",
        ),
        (
            vec![
                stopped,
                ("ImageId", IMAGE_NO_KEY_LOGIN),
                pw,
                ("KeyId.1", KEY_ID),
            ],
            "ImageTypeNotSupportedKeyLogin",
        ),
        (
            vec![
                stopped,
                pw,
                ("KeyId.1", "00000000-0000-4000-8000-000000000000"),
            ],
            "KeyIdInvalidParameterValue",
        ),
        (with_keys, "InvalidParameter.InstanceKeyLimitExceeded"),
        (
            vec![stopped, pw, ("SystemDisk.DiskSize", "10")],
            "RootDiskGbInvalidParameterValue",
        ),
        (
            vec![stopped, pw, ("SystemDisk.DiskSize", "501")],
            "RootDiskGbInvalidParameterValue",
        ),
        (
            vec![stopped, ("InstancePassword", "weakpass")],
            "InstancePasswordInvalidParameterValue",
        ),
        (
            vec![stopped, ("ImageId", IMAGE_PUBLIC), keep],
            "MissingParameter",
        ),
        (vec![stopped], "MissingParameter"),
        (
            vec![stopped, pw, ("UserData", "%%%")],
            "UserDataInvalidParameterValue",
        ),
    ];
    for (params, code) in &cases {
        assert_eq!(raw(params), (code.to_string(), 400), "{params:?}");
    }
    // A wrong action or version.
    let c = client.sigv4().clone();
    let got = rt.block_on(async move {
        c.call_raw(KEC_SERVICE, "RunInstances", KEC_VERSION, &[])
            .await
            .unwrap_err()
            .code()
            .map(str::to_string)
    });
    assert_eq!(got.as_deref(), Some("InvalidAction"));
    // KeepImageLogin with a custom image needs no password.
    assert_eq!(
        raw(&[stopped, ("ImageId", IMAGE_CUSTOM), keep]),
        ("ok".into(), 200)
    );
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
    let build = |c: &KecClient, service: &str, time: SystemTime| {
        c.sigv4()
            .build_request(service, "ModifyInstanceImage", KEC_VERSION, &params, time)
            .unwrap()
    };
    let good = kec(&sim, TEST_ACCESS_KEY_ID, TEST_SECRET_KEY);
    rt.block_on(async {
        // A wrong secret, an unknown key, a tampered body, another service, an old date.
        let req = build(
            &kec(&sim, TEST_ACCESS_KEY_ID, "not-the-secret"),
            KEC_SERVICE,
            SystemTime::now(),
        );
        assert_eq!(send_kec(req).await, (403, "SignatureDoesNotMatch".into()));
        let req = build(
            &kec(&sim, "AKLTnobody", TEST_SECRET_KEY),
            KEC_SERVICE,
            SystemTime::now(),
        );
        assert_eq!(send_kec(req).await, (403, "InvalidClientTokenId".into()));
        let mut req = build(&good, KEC_SERVICE, SystemTime::now());
        req.body = String::from_utf8(req.body)
            .unwrap()
            .replace(IMAGE_CUSTOM, IMAGE_PUBLIC)
            .into_bytes();
        assert_eq!(send_kec(req).await, (403, "SignatureDoesNotMatch".into()));
        let mut req = build(&good, KEC_SERVICE, SystemTime::now());
        req.url = req.url.replace("Version=2016-03-04", "Version=2016-03-05");
        assert_eq!(send_kec(req).await, (403, "SignatureDoesNotMatch".into()));
        let req = build(&good, "ec2", SystemTime::now());
        assert_eq!(send_kec(req).await, (403, "SignatureDoesNotMatch".into()));
        let old = SystemTime::now() - Duration::from_secs(20 * 60);
        assert_eq!(
            send_kec(build(&good, KEC_SERVICE, old)).await,
            (400, "RequestExpired".into())
        );
        let mut req = build(&good, KEC_SERVICE, SystemTime::now());
        for (k, v) in &mut req.headers {
            if k == "authorization" {
                *v = v.split(", Signature=").next().unwrap().to_string();
            }
        }
        assert_eq!(send_kec(req).await, (400, "IncompleteSignature".into()));
        let mut req = build(&good, KEC_SERVICE, SystemTime::now());
        for (k, v) in &mut req.headers {
            if k == "authorization" {
                *v = v.replace("content-type;host;x-amz-date", "content-type;x-amz-date");
            }
        }
        assert_eq!(send_kec(req).await, (400, "IncompleteSignature".into()));
        // 14 minutes old is still inside the window; the untouched request passes.
        let recent = SystemTime::now() - Duration::from_secs(14 * 60);
        assert_eq!(
            send_kec(build(&good, KEC_SERVICE, recent)).await,
            (200, String::new())
        );
    });
}

#[test]
fn botocore_sigv4_signer_against_the_emulator() {
    let Some(py) = super::ehpc::venv_with("botocore", "botocore") else {
        eprintln!("python3 not found: skipping the botocore SigV4 test");
        return;
    };
    let sim = SimProcess::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kec-botocore-smoke.py");
    let out = Command::new(py)
        .arg(&script)
        .env("SIM_ENDPOINT", &sim.endpoint)
        .env("SIM_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("SIM_SECRET_KEY", TEST_SECRET_KEY)
        .env("SIM_INSTANCE", INSTANCE_STOPPED)
        .env("SIM_IMAGE", IMAGE_CUSTOM)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kec-botocore-smoke.py failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for line in [
        "bad secret SignatureDoesNotMatch",
        "reinstalled return True",
        "again InstanceStateNotSupported",
    ] {
        assert!(stdout.contains(line), "{line:?} missing in\n{stdout}");
    }
}

#[test]
fn kec_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = |ep: &str| {
        cli(&[
            "ksyun",
            "reinstall",
            "--endpoint",
            ep,
            "--json",
            "--instance",
            INSTANCE_STOPPED,
            "--image",
            IMAGE_CUSTOM,
            "--keep-image-login",
        ])
    };
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

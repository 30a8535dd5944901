//! Import flows against the emulator: import → poll → Available, idempotency, retries,
//! local checks, timeout, CreateFailed, cancellation, persistence.

use super::*;

#[test]
fn import_poll_available_modify_delete_v3_and_v2() {
    let sim = SimProcess::start(&["--import-seconds", "1"]);
    sim.put_raw("disk.raw", (1 << 30) + 4096);
    let rt = runtime();
    for (i, version) in [SignatureVersion::V3, SignatureVersion::V2]
        .into_iter()
        .enumerate()
    {
        let client = sim.client(version);
        let name = format!("golden-{i}");
        let req = ImportImageRequest::builder(REGION)
            .image_name(name.clone())
            .disk(
                DiskDeviceMapping::new(BUCKET, "disk.raw")
                    .format(DiskFormat::Raw)
                    .size_gib(2),
            )
            .tag("team", "images")
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = client.import_image(req).await.expect("ImportImage");
            assert!(resp.image_id.starts_with("m-") && resp.task_id.starts_with("t-"));
            // Without a Status list the service shows only Available images.
            let body = client
                .rpc()
                .call_raw(
                    "DescribeImages",
                    ECS_VERSION,
                    &pairs(&[("RegionId", REGION), ("ImageId", &resp.image_id)]),
                )
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["TotalCount"], 0, "importing image listed by default: {v}");
            // With the Status list it is there, Creating.
            let found = client
                .find_image(&resp.image_id)
                .await
                .unwrap()
                .expect("listed");
            assert_eq!(found.status(), Some(ImageStatus::Creating));
            assert_eq!(found.image_name, name);
            let rec = Recorder::default();
            client
                .wait_available(
                    &resp.image_id,
                    &resp.task_id,
                    fast_wait(Duration::from_secs(30)),
                    &rec,
                    std::future::pending(),
                )
                .await
                .expect("becomes Available");
            let msgs = rec.0.lock().unwrap().join("\n");
            assert!(msgs.contains("Available 100%"), "{msgs}");
            // Now the default listing shows it.
            let listed = client
                .describe_images(
                    &DescribeImagesRequest::new(REGION)
                        .image_id(&resp.image_id)
                        .status(&[ImageStatus::Available]),
                )
                .await
                .unwrap();
            let img = &listed.images.image[0];
            assert_eq!(img.size, 2);
            assert_eq!(
                img.disk_device_mappings.disk_device_mapping[0].format,
                "RAW"
            );
            let task = client.describe_task_attribute(&resp.task_id).await.unwrap();
            assert_eq!(
                (task.task_status.as_str(), task.task_process.as_str()),
                ("Finished", "100%")
            );
            assert!(!task.cancellable());
            // Finish the image, then delete it.
            let modify = ModifyImageAttributeRequest::builder(REGION, &resp.image_id)
                .image_family("golden-family")
                .description("finished by imgport")
                .status(ModifiableStatus::Deprecated)
                .build()
                .unwrap();
            client.modify_image_attribute(&modify).await.unwrap();
            let img = client.find_image(&resp.image_id).await.unwrap().unwrap();
            assert_eq!(
                (img.status.as_str(), img.image_family.as_str()),
                ("Deprecated", "golden-family")
            );
            client.delete_image(&resp.image_id, false).await.unwrap();
            assert!(client.find_image(&resp.image_id).await.unwrap().is_none());
        });
    }
}

#[test]
fn client_token_makes_import_idempotent() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    sim.put_raw("a.raw", 1 << 20);
    sim.put_raw("b.raw", 1 << 20);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    rt.block_on(async {
        let mut req = import_request("a.raw");
        req.client_token = Some("token-1".into());
        let first = client.import_image(req.clone()).await.unwrap();
        let again = client.import_image(req.clone()).await.unwrap();
        assert_eq!(first.image_id, again.image_id);
        assert_eq!(first.task_id, again.task_id);
        let mut other = import_request("b.raw");
        other.client_token = Some("token-1".into());
        let err = client.import_image(other).await.unwrap_err();
        assert_eq!(err.code(), Some("InvalidParamter.Conflict"));
        // Without a token, the client makes one; a second call is a new import of a busy object.
        let err = client
            .import_image(import_request("a.raw"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidImageName.Duplicated"));
        let mut renamed = import_request("a.raw");
        renamed.image_name = Some("another-name".into());
        let err = client.import_image(renamed).await.unwrap_err();
        assert_eq!(err.code(), Some("ImageIsImporting"));
        assert_eq!(err.api().unwrap().http_status, 403);
    });
}

#[test]
fn client_retries_injected_throttling_and_5xx() {
    let sim = SimProcess::start(&["--throttle-rate", "0.5", "--error-rate", "0.5"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..5 {
            client
                .describe_images(&DescribeImagesRequest::new(REGION))
                .await
                .expect("retries hide temporary faults");
        }
    });
    drop(sim);
    // Faults that outlast the retries: a case is its name, the emulator's fault flags, the
    // signature, the attempts, the client's timeout, and what the final error must be.
    type Fault<'a> = (
        &'a str,
        [&'a str; 2],
        SignatureVersion,
        u32,
        Duration,
        fn(&RpcError) -> bool,
    );
    let cases: Vec<Fault<'_>> = vec![
        // The emulator hints its backoff in milliseconds, as the service does.
        (
            "always throttled",
            ["--throttle-rate", "1"],
            SignatureVersion::V3,
            3,
            Duration::from_secs(20),
            |e| {
                e.code() == Some("Throttling.User")
                    && e.api().and_then(|a| a.retry_after) == Some(Duration::from_millis(20))
            },
        ),
        (
            "always unavailable",
            ["--error-rate", "1"],
            SignatureVersion::V2,
            2,
            Duration::from_secs(20),
            |e| {
                e.api().map(|a| (a.code.as_str(), a.http_status))
                    == Some(("ServiceUnavailable", 503))
            },
        ),
        // A slow answer is a timeout, retried, then reported as such.
        (
            "always slower than the timeout",
            ["--delay-ms", "500"],
            SignatureVersion::V3,
            2,
            Duration::from_millis(100),
            |e| matches!(e, RpcError::Transport { source, .. } if source.kind == TransportErrorKind::Timeout),
        ),
    ];
    let mut failed = Vec::new();
    for (name, flags, version, attempts, timeout, expected) in &cases {
        let sim = SimProcess::start(flags);
        let mut cfg = sim.config(*version);
        cfg.timeout = *timeout;
        cfg.retry.max_attempts = *attempts;
        let client = EcsClient::new(cfg, sim.credentials()).unwrap();
        let got = rt.block_on(client.describe_images(&DescribeImagesRequest::new(REGION)));
        match got {
            Err(e) if expected(&e) => {}
            other => failed.push(format!("{name}: {other:?}")),
        }
    }
    assert_all_passed(&failed, cases.len());
}

#[test]
fn client_checks_rules_before_sending() {
    // Nothing listens on port 1: a request that was sent would be a transport error.
    let mut cfg = ClientConfig::new(REGION);
    cfg.endpoint = Some("http://127.0.0.1:1".into());
    cfg.retry.max_attempts = 1;
    let client = EcsClient::new(
        cfg,
        Credentials {
            access_key_id: "AK".into(),
            access_key_secret: Secret::new("SK"),
            security_token: None,
        },
    )
    .unwrap();
    let rt = runtime();
    rt.block_on(async {
        let mut req = import_request("disk.raw");
        req.image_name = Some("acs:reserved".into());
        let err = client.import_image(req).await.unwrap_err();
        assert!(
            matches!(&err, RpcError::Invalid(i) if i.code == "InvalidImageName.Malformed"),
            "{err:?}"
        );
        let mut req = import_request("disk.raw");
        req.client_token = Some("x".repeat(65));
        let err = client.import_image(req).await.unwrap_err();
        assert!(
            matches!(&err, RpcError::Invalid(i) if i.code == "InvalidClientToken.Malformed"),
            "{err:?}"
        );
        let err = client
            .import_image(import_request("disk.raw"))
            .await
            .unwrap_err();
        assert!(matches!(err, RpcError::Transport { .. }), "{err:?}");
    });
    // Neither the secret nor the STS token leaks into errors or Debug, with V2 either (whose
    // URL carries the token and the signature).
    let mut cfg = ClientConfig::new(REGION);
    cfg.endpoint = Some("http://127.0.0.1:1".into());
    cfg.retry.max_attempts = 1;
    cfg.signature = SignatureVersion::V2;
    let client = EcsClient::new(
        cfg,
        Credentials {
            access_key_id: "AK".into(),
            access_key_secret: Secret::new("very-secret-value"),
            security_token: Some(Secret::new("sts-token-value")),
        },
    )
    .unwrap();
    let err = rt
        .block_on(client.describe_images(&DescribeImagesRequest::new(REGION)))
        .unwrap_err();
    let mut text = format!("{err:?} {client:?}");
    let mut cur: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = cur {
        text.push_str(&e.to_string());
        cur = e.source();
    }
    assert!(!text.contains("very-secret-value"), "{text}");
    assert!(!text.contains("sts-token-value"), "{text}");
    assert!(!text.contains("Signature="), "{text}");
}

#[test]
fn poll_times_out_fails_typed_and_cancels() {
    let sim = SimProcess::start(&[
        "--import-seconds",
        "2",
        "--fail-objects-containing",
        "no-os",
    ]);
    sim.put_raw("slow.raw", 1 << 20);
    sim.put_raw("no-os.raw", 1 << 20);
    sim.put_raw("cancel.raw", 1 << 20);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    // Imports `key`, then waits for it for up to `timeout`: the wait's error.
    let import_then_wait = |key: &'static str, timeout: Duration| {
        let client = &client;
        async move {
            let r = client.import_image(import_request(key)).await.unwrap();
            wait_quietly(client, &r.image_id, &r.task_id, timeout)
                .await
                .unwrap_err()
        }
    };
    rt.block_on(async {
        let err = import_then_wait("slow.raw", Duration::from_millis(300)).await;
        assert!(
            matches!(&err, WaitError::Timeout { last_status, .. } if last_status == "Creating"),
            "{err:?}"
        );

        let err = import_then_wait("no-os.raw", Duration::from_secs(30)).await;
        assert_eq!(err.exit_code(), 5);
        match err {
            WaitError::ImportFailed {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(status, ImageStatus::CreateFailed);
                assert_eq!(code, "ImportImageFailed");
                assert_eq!(message, "no operating system found");
            }
            other => panic!("expected ImportFailed, got {other:?}"),
        }

        let c = client
            .import_image(import_request("cancel.raw"))
            .await
            .unwrap();
        let err = client
            .wait_available(
                &c.image_id,
                &c.task_id,
                fast_wait(Duration::from_secs(30)),
                &imgport::report::Silent,
                async {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 130);
        // An interrupted wait leaves the import running; CancelTask stops it.
        assert!(
            matches!(&err, WaitError::Interrupted { task_id, .. } if *task_id == c.task_id),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("imgport image cancel-import"),
            "{err}"
        );
        let mut q = DescribeTasksRequest::new(REGION);
        q.task_ids = vec![c.task_id.clone()];
        let tasks = client.describe_tasks(&q).await.unwrap();
        assert_eq!(tasks.task_set.task[0].task_status, "Processing");
        assert!(client.cancel_import(&c.task_id).await.unwrap());
        let tasks = client.describe_tasks(&q).await.unwrap();
        assert_eq!(tasks.task_set.task[0].task_status, "Cancelled");
        assert!(client.find_image(&c.image_id).await.unwrap().is_none());

        // A never-listed image is "not found" after the bounded number of polls.
        let err = wait_quietly(&client, "m-unknown", "", Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WaitError::NotFound { polls: 4, .. }),
            "{err:?}"
        );
    });
}

#[test]
fn emulator_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let rt = runtime();
    let image_id = {
        let sim = SimProcess::start_in(&state, &["--import-seconds", "0"]);
        sim.put_raw("keep.raw", 1 << 20);
        let client = sim.client(SignatureVersion::V3);
        rt.block_on(client.import_image(import_request("keep.raw")))
            .unwrap()
            .image_id
    };
    let sim = SimProcess::start_in(&state, &[]);
    let client = sim.client(SignatureVersion::V3);
    let img = rt
        .block_on(client.find_image(&image_id))
        .unwrap()
        .expect("kept");
    assert_eq!(img.status(), Some(ImageStatus::Available));
    assert!(state.join("ecs-state.json").exists());
    assert!(!state.join("ecs-state.json.tmp").exists());
}

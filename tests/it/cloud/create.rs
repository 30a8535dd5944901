//! `imgport image create` (ECS CreateImage) against the emulator: each source waits for
//! Available, idempotency by ClientToken, every local rule refused before sending, and the
//! emulator's documented error codes (docs/CLOUD-API.md §CreateImage).

use super::*;
use imgport::cloud::aliyun::ecs::{CreateImageRequest, ImageSource};

#[test]
fn create_from_each_source_waits_for_available() {
    // Two seconds: the --no-wait case below must still find the image Creating after the
    // CLI process has exited, on a loaded machine too.
    let sim = SimProcess::start(&["--import-seconds", "2"]);
    let ep = sim.endpoint.as_str();
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (
            vec!["--snapshot", "s-simsystem40"],
            "from-snapshot",
            vec!["40"],
        ),
        (
            vec!["--instance", "i-simrunning"],
            "from-instance",
            vec!["40", "100"],
        ),
        (
            vec!["--instance", "i-simstopped"],
            "from-stopped",
            vec!["20"],
        ),
        (
            vec![
                "--disk",
                "snapshot=s-simsystem40,size=60",
                "--disk",
                "snapshot=s-simdata100,device=/dev/xvdb",
                "--disk",
                "size=8",
            ],
            "from-disks",
            vec!["60", "100", "8"],
        ),
    ];
    for (i, (source, name, sizes)) in cases.iter().enumerate() {
        let mut args = vec!["image", "create", "--endpoint", ep, "--json"];
        args.extend(source);
        args.extend([
            "--name",
            name,
            "--poll-interval",
            "0.1",
            "--wait-timeout",
            "30",
        ]);
        if i == 1 {
            args.extend([
                "--signature",
                "v2",
                "--image-version",
                "v2",
                "--family",
                "golden",
            ]);
        }
        let run = cli(&args);
        run.expect_code(0);
        let v = run.json();
        assert_eq!(v["status"], "Available", "{v}");
        let id = v["image_id"].as_str().unwrap().to_string();
        let img = rt
            .block_on(client.find_image(&id))
            .unwrap()
            .expect("listed");
        assert_eq!(img.status(), Some(ImageStatus::Available));
        assert_eq!(img.progress, "100%");
        assert_eq!(img.image_name, *name);
        let got: Vec<&str> = img
            .disk_device_mappings
            .disk_device_mapping
            .iter()
            .map(|d| d.size.as_str())
            .collect();
        assert_eq!(got, *sizes, "{name}");
        if i == 1 {
            assert_eq!(img.image_family, "golden");
        }
    }
    // --no-wait returns while the image is Creating; the poller then sees Progress grow.
    let run = cli(&[
        "image",
        "create",
        "--endpoint",
        ep,
        "--json",
        "--no-wait",
        "--snapshot",
        "s-simsystem40",
        "--name",
        "later",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["status"], "Creating");
    let id = v["image_id"].as_str().unwrap().to_string();
    let rec = Recorder::default();
    rt.block_on(client.wait_available(
        &id,
        "",
        fast_wait(Duration::from_secs(30)),
        &rec,
        std::future::pending(),
    ))
    .expect("becomes Available");
    let msgs = rec.0.lock().unwrap().join("\n");
    assert!(
        msgs.contains("Creating") && msgs.contains("Available 100%"),
        "{msgs}"
    );
}

#[test]
fn client_token_makes_create_idempotent() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    rt.block_on(async {
        let req =
            CreateImageRequest::builder(REGION, ImageSource::Snapshot("s-simsystem40".into()))
                .image_name("tokened")
                .client_token("create-token-1")
                .build()
                .unwrap();
        let a = client.create_image(req.clone()).await.unwrap();
        let b = client.create_image(req.clone()).await.unwrap();
        assert_eq!(a.image_id, b.image_id);
        let mut other = req.clone();
        other.image_name = Some("another".into());
        let err = client.create_image(other).await.unwrap_err();
        assert_eq!(err.code(), Some("InvalidParamter.Conflict"));
        assert_eq!(err.api().unwrap().http_status, 403);
        // Without a token the client makes a fresh one: a second call is a new image, whose
        // name is taken.
        let mut fresh = req;
        fresh.client_token = None;
        let err = client.create_image(fresh).await.unwrap_err();
        assert_eq!(err.code(), Some("InvalidImageName.Duplicated"));
    });
}

#[test]
fn create_refuses_every_local_rule_before_sending() {
    let base = ["image", "create", "--endpoint", DEAD_ENDPOINT];
    let (v41, d257, t65) = ("9".repeat(41), "d".repeat(257), "t".repeat(65));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "required"),
        (
            vec!["--snapshot", "s-1", "--instance", "i-1"],
            "cannot be used with",
        ),
        (vec!["--snapshot", ""], "MissingParameter"),
        (vec!["--instance", ""], "MissingParameter"),
        (vec!["--disk", "snapshot=s-1,device=/dev/xvdb"], "/dev/xvda"),
        (
            vec!["--disk", "snapshot=s-1", "--disk", "device=/dev/xvda"],
            "InvalidParameter.Malformed",
        ),
        (
            vec!["--disk", "snapshot=s-1", "--disk", "device=/dev/xvdc"],
            "must be /dev/xvdb",
        ),
        (
            vec!["--disk", "snapshot=s-1,size=4"],
            "InvalidSize.ValueNotSupported",
        ),
        (
            vec!["--disk", "snapshot=s-1,size=20001"],
            "InvalidSize.ValueNotSupported",
        ),
        (vec!["--disk", "snapshot="], "InvalidSnapshotId.NotFound"),
        (vec!["--disk", "snapshot=s-1,colour=red"], "unknown key"),
        (vec!["--disk", "size=big"], "whole number"),
        (
            vec!["--snapshot", "s-1", "--name", "9lives"],
            "InvalidImageName.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--image-version", "1.0"],
            "InvalidImageVersion.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--image-version", &v41],
            "InvalidImageVersion.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--description", "https://example.com"],
            "InvalidDescription.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--description", &d257],
            "InvalidDescription.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--family", "_f"],
            "InvalidImageFamily.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--client-token", &t65],
            "InvalidClientToken.Malformed",
        ),
        (
            vec!["--snapshot", "s-1", "--platform", "Windows 95"],
            "unknown platform",
        ),
        (
            vec!["--snapshot", "s-1", "--boot-mode", "CSM"],
            "unknown boot mode",
        ),
    ];
    let disks18: Vec<String> = (0..18).map(|_| "size=5".to_string()).collect();
    let mut many: Vec<&str> = Vec::new();
    for d in &disks18 {
        many.extend(["--disk", d.as_str()]);
    }
    let mut all = cases;
    all.push((many, "InvalidParameter.DiskDeviceMapping"));
    for (extra, needle) in &all {
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
    }
    // Under --json a local refusal is an error object with the code and field.
    let run = cli(&[
        "image",
        "create",
        "--endpoint",
        DEAD_ENDPOINT,
        "--json",
        "--disk",
        "size=4",
    ]);
    run.expect_code(2);
    assert_eq!(json_code(&run), "InvalidSize.ValueNotSupported");
    assert_eq!(run.json()["error"]["field"], "DiskDeviceMapping.1.Size");
    // A valid request is sent: against the dead endpoint that is a cloud error (4).
    cli(&[
        "image",
        "create",
        "--endpoint",
        DEAD_ENDPOINT,
        "--snapshot",
        "s-1",
        "--timeout",
        "2",
    ])
    .expect_code(4);
}

#[test]
fn emulator_answers_create_image_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let r = ("RegionId", REGION);
    let cases: Vec<(Params, &str, u16)> = vec![
        (vec![r], "MissingParameter", 400),
        (
            vec![("SnapshotId", "s-simsystem40")],
            "MissingParameter",
            400,
        ),
        (
            vec![r, ("SnapshotId", "s-nope")],
            "InvalidSnapshotId.NotFound",
            404,
        ),
        (
            vec![r, ("SnapshotId", "s-simold2012")],
            "InvalidSnapshot.TooOld",
            403,
        ),
        (
            vec![r, ("SnapshotId", "s-simprogressing")],
            "InvalidSnapshotId.NotReady",
            403,
        ),
        (
            vec![r, ("SnapshotId", "s-simdata100")],
            "OperationDenied",
            403,
        ),
        (
            vec![r, ("InstanceId", "i-nope")],
            "InvalidInstanceId.NotFound",
            400,
        ),
        (
            vec![r, ("InstanceId", "i-simstarting")],
            "IncorrectInstanceStatus",
            400,
        ),
        (
            vec![r, ("InstanceId", "i-simlocked")],
            "InstanceLockedForSecurity",
            400,
        ),
        (
            vec![r, ("DiskDeviceMapping.1.SnapshotId", "s-simdata100")],
            "OperationDenied",
            400,
        ),
        (
            vec![
                r,
                ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40"),
                ("DiskDeviceMapping.2.SnapshotId", "s-simsystem40"),
            ],
            "OperationDenied",
            400,
        ),
        (
            vec![
                r,
                ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40"),
                ("DiskDeviceMapping.1.Size", "30"),
            ],
            "InvalidSize.ValueNotSupported",
            400,
        ),
        (
            vec![
                r,
                ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40"),
                ("DiskDeviceMapping.2.Size", "20001"),
            ],
            "InvalidSize.ValueNotSupported",
            400,
        ),
        (
            vec![
                r,
                ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40"),
                ("DiskDeviceMapping.2.Device", "/dev/xvdc"),
            ],
            "InvalidParameter.Malformed",
            400,
        ),
        (
            vec![
                r,
                ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40"),
                ("DiskDeviceMapping.3.Size", "10"),
            ],
            "InvalidParameter.Malformed",
            400,
        ),
        (
            vec![
                r,
                ("SnapshotId", "s-simsystem40"),
                ("ImageName", "http://x"),
            ],
            "InvalidImageName.Malformed",
            400,
        ),
        (
            vec![r, ("SnapshotId", "s-simsystem40"), ("ImageVersion", "v.1")],
            "InvalidImageVersion.Malformed",
            400,
        ),
        (
            vec![
                r,
                ("SnapshotId", "s-simsystem40"),
                ("Description", "https://x"),
            ],
            "InvalidDescription.Malformed",
            400,
        ),
        (
            vec![r, ("SnapshotId", "s-simsystem40"), ("DryRun", "true")],
            "DryRunOperation",
            400,
        ),
        (
            vec![("RegionId", "Nowhere"), ("SnapshotId", "s-simsystem40")],
            "InvalidRegionId.NotFound",
            404,
        ),
    ];
    rt.block_on(async {
        for (params, code, status) in &cases {
            let got = raw_error(&client, "CreateImage", params).await;
            assert_eq!((got.0.as_str(), got.1), (*code, *status), "{params:?}");
        }
        let first = [r, ("SnapshotId", "s-simsystem40"), ("ImageName", "taken")];
        client
            .rpc()
            .call_raw("CreateImage", ECS_VERSION, &pairs(&first))
            .await
            .unwrap();
        let got = raw_error(&client, "CreateImage", &first).await;
        assert_eq!(got, ("InvalidImageName.Duplicated".to_string(), 400));
    });
    // The CLI surfaces the service's code under --json, with exit 4.
    let run = cli(&[
        "image",
        "create",
        "--endpoint",
        &sim.endpoint,
        "--json",
        "--snapshot",
        "s-simold2012",
    ]);
    run.expect_code(4);
    assert_eq!(json_code(&run), "InvalidSnapshot.TooOld");
}

#[test]
fn create_failed_is_exit_5_and_ctrl_c_is_130() {
    let sim = SimProcess::start(&["--import-seconds", "1"]);
    let ep = sim.endpoint.as_str();
    let run = cli(&[
        "image",
        "create",
        "--endpoint",
        ep,
        "--json",
        "--snapshot",
        "s-simbroken",
        "--poll-interval",
        "0.1",
    ]);
    run.expect_code(5);
    assert!(run.stderr().contains("CreateFailed"), "{}", run.stderr());
    assert!(run.json()["image_id"].as_str().unwrap().starts_with("m-"));
    // Ctrl-C while waiting: exit 130.
    let slow = SimProcess::start(&["--import-seconds", "60"]);
    let child = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args([
            "image",
            "create",
            "--endpoint",
            &slow.endpoint,
            "--snapshot",
            "s-simsystem40",
            "--poll-interval",
            "0.1",
        ])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &slow.key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &slow.secret)
        .env("ALIBABA_CLOUD_REGION_ID", REGION)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = slow.client(SignatureVersion::V3);
    let rt = runtime();
    // Wait until the image exists (the command is polling), then interrupt it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = rt
            .block_on(client.describe_images(&DescribeImagesRequest::new(REGION)))
            .unwrap();
        if listed.total_count > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no image was created");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends SIGINT to the child this test spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

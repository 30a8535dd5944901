//! `imgport image create` (ECS CreateImage) against the emulator: each source waits for
//! Available, idempotency by ClientToken, every local rule refused before sending, and the
//! emulator's documented error codes (docs/CLOUD-API.md §CreateImage).

use super::*;
use imgport::cloud::aliyun::ecs::{CreateImageRequest, ImageSource};

/// Runs `imgport image create --endpoint EP --json ARGS`.
fn create(ep: &str, args: &[&str]) -> crate::util::Run {
    cli(&[&["image", "create", "--endpoint", ep, "--json"][..], args].concat())
}

#[test]
fn create_from_each_source_waits_for_available() {
    // Two seconds: the --no-wait case below must still find the image Creating after the
    // CLI process has exited, on a loaded machine too.
    let sim = SimProcess::start(&["--import-seconds", "2"]);
    let ep = sim.endpoint.as_str();
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    // A case: the image name (also the case's name), the source, more arguments, the disk
    // sizes the image must have, and its family.
    type Source<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, &'a str);
    let cases: Vec<Source<'_>> = vec![
        (
            "from-snapshot",
            vec!["--snapshot", "s-simsystem40"],
            vec![],
            vec!["40"],
            "",
        ),
        (
            "from-instance",
            vec!["--instance", "i-simrunning"],
            vec![
                "--signature",
                "v2",
                "--image-version",
                "v2",
                "--family",
                "golden",
            ],
            vec!["40", "100"],
            "golden",
        ),
        (
            "from-stopped",
            vec!["--instance", "i-simstopped"],
            vec![],
            vec!["20"],
            "",
        ),
        (
            "from-disks",
            vec![
                "--disk",
                "snapshot=s-simsystem40,size=60",
                "--disk",
                "snapshot=s-simdata100,device=/dev/xvdb",
                "--disk",
                "size=8",
            ],
            vec![],
            vec!["60", "100", "8"],
            "",
        ),
    ];
    for (name, source, extra, sizes, family) in &cases {
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
        args.extend(extra);
        let run = cli(&args);
        run.expect_code(0);
        let v = run.json();
        assert_eq!(v["status"], "Available", "{name}: {v}");
        let id = v["image_id"].as_str().unwrap().to_string();
        let img = rt
            .block_on(client.find_image(&id))
            .unwrap()
            .expect("listed");
        let got: Vec<&str> = img
            .disk_device_mappings
            .disk_device_mapping
            .iter()
            .map(|d| d.size.as_str())
            .collect();
        assert_eq!(
            (
                img.status(),
                img.progress.as_str(),
                img.image_name.as_str(),
                got,
                img.image_family.as_str()
            ),
            (
                Some(ImageStatus::Available),
                "100%",
                *name,
                sizes.clone(),
                *family
            ),
            "{name}: (status, progress, name, disk sizes, family)"
        );
    }
    // --no-wait returns while the image is Creating; the poller then sees Progress grow.
    let run = create(
        ep,
        &[
            "--no-wait",
            "--snapshot",
            "s-simsystem40",
            "--name",
            "later",
        ],
    );
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
    let (v41, d257, t65) = ("9".repeat(41), "d".repeat(257), "t".repeat(65));
    let disks18: Vec<String> = (0..18).map(|_| "size=5".to_string()).collect();
    let many: Vec<&str> = disks18
        .iter()
        .flat_map(|d| ["--disk", d.as_str()])
        .collect();
    let s = ["--snapshot", "s-1"];
    let cases: Vec<Local<'_>> = vec![
        ("no source", vec![], "required"),
        (
            "snapshot and instance",
            vec!["--snapshot", "s-1", "--instance", "i-1"],
            "cannot be used with",
        ),
        ("empty snapshot", vec!["--snapshot", ""], "MissingParameter"),
        ("empty instance", vec!["--instance", ""], "MissingParameter"),
        (
            "system disk on xvdb",
            vec!["--disk", "snapshot=s-1,device=/dev/xvdb"],
            "/dev/xvda",
        ),
        (
            "data disk on xvda",
            vec!["--disk", "snapshot=s-1", "--disk", "device=/dev/xvda"],
            "InvalidParameter.Malformed",
        ),
        (
            "data disk on xvdc",
            vec!["--disk", "snapshot=s-1", "--disk", "device=/dev/xvdc"],
            "must be /dev/xvdb",
        ),
        (
            "system disk 4 GiB",
            vec!["--disk", "snapshot=s-1,size=4"],
            "InvalidSize.ValueNotSupported",
        ),
        (
            "system disk 20001 GiB",
            vec!["--disk", "snapshot=s-1,size=20001"],
            "InvalidSize.ValueNotSupported",
        ),
        (
            "empty disk snapshot",
            vec!["--disk", "snapshot="],
            "InvalidSnapshotId.NotFound",
        ),
        (
            "unknown disk key",
            vec!["--disk", "snapshot=s-1,colour=red"],
            "unknown key",
        ),
        (
            "disk size not a number",
            vec!["--disk", "size=big"],
            "whole number",
        ),
        (
            "name starts with a digit",
            join(&s, &["--name", "9lives"]),
            "InvalidImageName.Malformed",
        ),
        (
            "version with a dot",
            join(&s, &["--image-version", "1.0"]),
            "InvalidImageVersion.Malformed",
        ),
        (
            "version of 41 digits",
            join(&s, &["--image-version", &v41]),
            "InvalidImageVersion.Malformed",
        ),
        (
            "description with a URL",
            join(&s, &["--description", "https://example.com"]),
            "InvalidDescription.Malformed",
        ),
        (
            "description of 257 characters",
            join(&s, &["--description", &d257]),
            "InvalidDescription.Malformed",
        ),
        (
            "family starts with _",
            join(&s, &["--family", "_f"]),
            "InvalidImageFamily.Malformed",
        ),
        (
            "client token of 65 characters",
            join(&s, &["--client-token", &t65]),
            "InvalidClientToken.Malformed",
        ),
        (
            "unknown platform",
            join(&s, &["--platform", "Windows 95"]),
            "unknown platform",
        ),
        (
            "unknown boot mode",
            join(&s, &["--boot-mode", "CSM"]),
            "unknown boot mode",
        ),
        ("18 disks", many, "InvalidParameter.DiskDeviceMapping"),
    ];
    check_local_refusals(&["image", "create"], &cases, &[]);
}

#[test]
fn emulator_answers_create_image_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let call = |params: &[(&str, &str)]| {
        rt.block_on(answer(client.rpc(), "CreateImage", ECS_VERSION, params))
    };
    let r = ("RegionId", REGION);
    let snap = |id| ("SnapshotId", id);
    let inst = |id| ("InstanceId", id);
    let system = ("DiskDeviceMapping.1.SnapshotId", "s-simsystem40");
    let s40 = snap("s-simsystem40");
    let taken = [r, s40, ("ImageName", "taken")];
    let cases: Vec<Answer<'_>> = vec![
        ("no source", vec![r], "MissingParameter", 400),
        ("no region", vec![s40], "MissingParameter", 400),
        (
            "unknown snapshot",
            vec![r, snap("s-nope")],
            "InvalidSnapshotId.NotFound",
            404,
        ),
        (
            "snapshot from 2012",
            vec![r, snap("s-simold2012")],
            "InvalidSnapshot.TooOld",
            403,
        ),
        (
            "snapshot in progress",
            vec![r, snap("s-simprogressing")],
            "InvalidSnapshotId.NotReady",
            403,
        ),
        (
            "data-disk snapshot",
            vec![r, snap("s-simdata100")],
            "OperationDenied",
            403,
        ),
        (
            "unknown instance",
            vec![r, inst("i-nope")],
            "InvalidInstanceId.NotFound",
            400,
        ),
        (
            "instance starting",
            vec![r, inst("i-simstarting")],
            "IncorrectInstanceStatus",
            400,
        ),
        (
            "instance locked",
            vec![r, inst("i-simlocked")],
            "InstanceLockedForSecurity",
            400,
        ),
        (
            "data-disk snapshot as system disk",
            vec![r, ("DiskDeviceMapping.1.SnapshotId", "s-simdata100")],
            "OperationDenied",
            400,
        ),
        (
            "system snapshot as data disk",
            vec![
                r,
                system,
                ("DiskDeviceMapping.2.SnapshotId", "s-simsystem40"),
            ],
            "OperationDenied",
            400,
        ),
        (
            "system disk below its snapshot",
            vec![r, system, ("DiskDeviceMapping.1.Size", "30")],
            "InvalidSize.ValueNotSupported",
            400,
        ),
        (
            "data disk 20001 GiB",
            vec![r, system, ("DiskDeviceMapping.2.Size", "20001")],
            "InvalidSize.ValueNotSupported",
            400,
        ),
        (
            "data disk on xvdc",
            vec![r, system, ("DiskDeviceMapping.2.Device", "/dev/xvdc")],
            "InvalidParameter.Malformed",
            400,
        ),
        (
            "disk 3 without disk 2",
            vec![r, system, ("DiskDeviceMapping.3.Size", "10")],
            "InvalidParameter.Malformed",
            400,
        ),
        (
            "name with a URL",
            vec![r, s40, ("ImageName", "http://x")],
            "InvalidImageName.Malformed",
            400,
        ),
        (
            "version with a dot",
            vec![r, s40, ("ImageVersion", "v.1")],
            "InvalidImageVersion.Malformed",
            400,
        ),
        (
            "description with a URL",
            vec![r, s40, ("Description", "https://x")],
            "InvalidDescription.Malformed",
            400,
        ),
        (
            "dry run",
            vec![r, s40, ("DryRun", "true")],
            "DryRunOperation",
            400,
        ),
        (
            "unknown region",
            vec![("RegionId", "Nowhere"), s40],
            "InvalidRegionId.NotFound",
            404,
        ),
        // The same name twice: the first is made, the second refused.
        ("first of a name", taken.to_vec(), "ok", 200),
        (
            "name already taken",
            taken.to_vec(),
            "InvalidImageName.Duplicated",
            400,
        ),
    ];
    check_answers(&cases, call);
    // The CLI surfaces the service's code under --json, with exit 4.
    let run = create(&sim.endpoint, &["--snapshot", "s-simold2012"]);
    run.expect_code(4);
    assert_eq!(json_code(&run), "InvalidSnapshot.TooOld");
}

#[test]
fn create_failed_is_exit_5_and_ctrl_c_is_130() {
    let sim = SimProcess::start(&["--import-seconds", "1"]);
    let ep = sim.endpoint.as_str();
    let run = create(ep, &["--snapshot", "s-simbroken", "--poll-interval", "0.1"]);
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

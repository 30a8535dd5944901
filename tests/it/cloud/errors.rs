//! The emulator's documented error codes and its authentication, as the service answers.

use super::*;

#[test]
fn emulator_answers_documented_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    sim.put_raw("disk.raw", (3 << 30) + 1);
    sim.put_raw("empty.raw", 0);
    sim.put_link("bad.vhd", &crate::util::image("content.vhd"));
    sim.put_link("cd.iso", &crate::util::image("plain.iso"));
    sim.put_link("vol.luks", &crate::util::image("luks.luks"));
    sim.put_link("good.vhd", &crate::util::image("content-force.vhd"));
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let call = |params: &[(&str, &str)]| {
        rt.block_on(answer(client.rpc(), "ImportImage", ECS_VERSION, params))
    };
    let r = ("RegionId", REGION);
    let b = ("DiskDeviceMapping.1.OSSBucket", BUCKET);
    let object = |key| ("DiskDeviceMapping.1.OSSObject", key);
    let d1 = [b, object("disk.raw")];
    // A valid request plus `extra`.
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut v = vec![r, b, object("disk.raw")];
        v.extend_from_slice(extra);
        v
    };
    let size = |v| ("DiskDeviceMapping.1.DiskImageSize", v);
    let format = |v| ("DiskDeviceMapping.1.Format", v);
    let cases: Vec<Answer<'_>> = vec![
        ("no region", d1.to_vec(), "MissingParameter", 400),
        ("no disk", vec![r], "MissingParameter", 400),
        ("no object", vec![r, b], "MissingParameter", 400),
        (
            "name starts with a digit",
            with(&[("ImageName", "1-starts-with-digit")]),
            "InvalidImageName.Malformed",
            400,
        ),
        (
            "name starts with aliyun",
            with(&[("ImageName", "aliyun-name")]),
            "InvalidImageName.Malformed",
            400,
        ),
        (
            "description with a URL",
            with(&[("Description", "http://x")]),
            "InvalidDescription.Malformed",
            400,
        ),
        (
            "unknown platform",
            with(&[("Platform", "Windows 95")]),
            "InvalidPlatform.Malformed",
            400,
        ),
        (
            "unknown architecture",
            with(&[("Architecture", "mips")]),
            "InvalidArchitecture.Malformed",
            400,
        ),
        (
            "unknown OS type",
            with(&[("OSType", "beos")]),
            "InvalidOSType.Malformed",
            400,
        ),
        (
            "unknown boot mode",
            with(&[("BootMode", "UEFI-Preferred")]),
            "InvalidBootMode.Malformed",
            400,
        ),
        ("size 0", with(&[size("0")]), "InvalidImageSize", 400),
        (
            "size not a number",
            with(&[size("big")]),
            "InvalidImageSize",
            400,
        ),
        (
            "size below the object",
            with(&[size("3")]),
            "InvalidImageSize",
            400,
        ),
        (
            "data disk too big",
            with(&[
                ("DiskDeviceMapping.2.OSSBucket", BUCKET),
                ("DiskDeviceMapping.2.OSSObject", "disk.raw"),
                ("DiskDeviceMapping.2.DiskImageSize", "4096"),
            ]),
            "InvalidDataDiskSize",
            400,
        ),
        (
            "QCOW2 format",
            with(&[format("QCOW2")]),
            "InvalidImageFormat.Malformed",
            400,
        ),
        (
            "ISO format",
            with(&[format("ISO")]),
            "InvalidImageFormat.Malformed",
            400,
        ),
        (
            "non-ASCII client token",
            with(&[("ClientToken", "tök")]),
            "InvalidClientToken.Malformed",
            400,
        ),
        (
            "dry run",
            with(&[("DryRun", "true")]),
            "DryRunOperation",
            400,
        ),
        (
            "duplicate tag key",
            with(&[
                ("Tag.1.Key", "k"),
                ("Tag.1.Value", "a"),
                ("Tag.2.Key", "k"),
                ("Tag.2.Value", "b"),
            ]),
            "TagKey.Duplication",
            403,
        ),
        (
            "licence Free",
            with(&[("LicenseType", "Free")]),
            "InvalidLicenseType.NotSupported",
            400,
        ),
        (
            "arm64 Windows",
            with(&[("Architecture", "arm64"), ("OSType", "windows")]),
            "InvalidArchitecture.PlatformUnsupported",
            403,
        ),
        (
            "Windows with a detection strategy",
            with(&[("OSType", "windows"), ("DetectionStrategy", "Standard")]),
            "ImageCheckUnsupported.WindowsImage",
            403,
        ),
        (
            "missing object",
            vec![r, b, object("missing.raw")],
            "InvalidOSSObject.NotFound",
            400,
        ),
        (
            "missing bucket",
            vec![
                r,
                ("DiskDeviceMapping.1.OSSBucket", "no-such-bucket"),
                object("x.raw"),
            ],
            "InvalidOSSBucket.NotFound",
            400,
        ),
        (
            "empty object",
            vec![r, b, object("empty.raw")],
            "InvalidOSSObject.Size",
            400,
        ),
        (
            "VHD whose size is not whole",
            vec![r, b, object("bad.vhd")],
            "InvalidVHDImage.IncorrectSize",
            403,
        ),
        (
            "unknown region",
            vec![("RegionId", "Not A Region"), b, object("disk.raw")],
            "InvalidRegionId.NotFound",
            404,
        ),
        // An image the inspector refuses (an ISO, a LUKS volume) is a malformed format.
        (
            "ISO image",
            vec![r, b, object("cd.iso")],
            "InvalidImageFormat.Malformed",
            400,
        ),
        (
            "LUKS volume",
            vec![r, b, object("vol.luks")],
            "InvalidImageFormat.Malformed",
            400,
        ),
        // A dynamic VHD made with force_size passes (below); declared as RAW it is refused.
        (
            "VHD declared RAW",
            vec![r, b, object("good.vhd"), format("RAW")],
            "InvalidImageFormat.Malformed",
            400,
        ),
    ];
    check_answers(&cases, call);
    rt.block_on(async {
        let body = client
            .rpc()
            .call_raw(
                "ImportImage",
                ECS_VERSION,
                &pairs(&[r, b, object("good.vhd"), format("VHD")]),
            )
            .await
            .expect("a force_size VHD is accepted");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let img = client
            .find_image(v["ImageId"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        let disk = &img.disk_device_mappings.disk_device_mapping[0];
        assert_eq!((disk.format.as_str(), disk.size.as_str()), ("VHD", "1"));
    });
    sim.put_raw("other.raw", 1 << 20);
    // An image importing under the name "taken": the state the next table needs.
    assert_eq!(call(&with(&[("ImageName", "taken")])), ("ok".into(), 200));
    let id = rt
        .block_on(client.describe_images(&DescribeImagesRequest::new(REGION).image_name("taken")))
        .unwrap()
        .images
        .image[0]
        .image_id
        .clone();
    let i = ("ImageId", id.as_str());
    let actions: Vec<(&'static str, Answer<'_>)> = vec![
        (
            "ImportImage",
            (
                "name already taken",
                vec![r, ("ImageName", "taken"), b, object("other.raw")],
                "InvalidImageName.Duplicated",
                400,
            ),
        ),
        (
            "ModifyImageAttribute",
            (
                "unknown image",
                vec![r, ("ImageId", "m-nope")],
                "InvalidImageId.NotFound",
                404,
            ),
        ),
        (
            "DescribeTaskAttribute",
            (
                "unknown task",
                vec![r, ("TaskId", "t-nope")],
                "InvalidTaskId.NotFound",
                404,
            ),
        ),
        (
            "DescribeImages",
            ("no region", vec![], "MissingParameter", 400),
        ),
        (
            "NoSuchAction",
            ("unknown action", vec![r], "InvalidAction.NotFound", 404),
        ),
        // An importing image can be neither modified nor deleted.
        (
            "ModifyImageAttribute",
            (
                "modify while importing",
                vec![r, i, ("Description", "later")],
                "InvalidStatus.ImageIsCreating",
                403,
            ),
        ),
        (
            "DeleteImage",
            (
                "delete while importing",
                vec![r, i],
                "IncorrectImageStatus",
                400,
            ),
        ),
    ];
    for (action, case) in actions {
        check_answers(&[case], |params| {
            rt.block_on(answer(client.rpc(), action, ECS_VERSION, params))
        });
    }
}

/// Sends one prepared request over HTTP and returns (status, Code).
async fn send(req: HttpRequest) -> (u16, String) {
    let t = ReqwestTransport::new(Duration::from_secs(10)).unwrap();
    let resp = t.send(req).await.expect("an HTTP answer");
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    (resp.status, v["Code"].as_str().unwrap_or("").to_string())
}

/// Drops the signature from a V3 `Authorization` header, keeping its other parts.
fn drop_v3_signature(req: &mut HttpRequest) {
    for (k, v) in &mut req.headers {
        if k == "authorization" {
            *v = v.split(",Signature=").next().unwrap().to_string();
        }
    }
}

#[test]
fn emulator_authenticates_like_the_service() {
    let sim = SimProcess::start(&[]);
    let rt = runtime();
    let params = pairs(&[("RegionId", REGION)]);
    let rpc = |version, creds: Credentials| RpcClient::new(sim.config(version), creds).unwrap();
    let good = sim.credentials();
    let mut bad_secret = sim.credentials();
    bad_secret.access_key_secret = Secret::new("not-the-secret");
    let mut unknown = sim.credentials();
    unknown.access_key_id = "LTAInobody".into();
    let sts = Credentials {
        access_key_id: sim.sts_key_id.clone(),
        access_key_secret: Secret::new(sim.secret.clone()),
        security_token: Some(Secret::new(sim.token.clone())),
    };
    let mut stolen = sts.clone();
    stolen.security_token = Some(Secret::new("stolen"));
    let untouched: fn(&mut HttpRequest) = |_| {};
    let tamper: fn(&mut HttpRequest) = |req| {
        req.url = req
            .url
            .replace("RegionId=cn-hangzhou", "RegionId=cn-beijing");
    };
    let unsigned: fn(&mut HttpRequest) = |req| req.headers.retain(|(k, _)| k != "authorization");
    // A case: name, signature version, credentials, age in minutes, a change made after
    // signing, and the expected (status, code).
    type Auth<'a> = (
        &'a str,
        SignatureVersion,
        &'a Credentials,
        i64,
        fn(&mut HttpRequest),
        (u16, &'a str),
    );
    let mut cases: Vec<Auth<'_>> = Vec::new();
    for v in [SignatureVersion::V3, SignatureVersion::V2] {
        cases.extend([
            ("good request", v, &good, 0, untouched, (200, "")),
            (
                "tampered parameter",
                v,
                &good,
                0,
                tamper,
                (400, "SignatureDoesNotMatch"),
            ),
            (
                "wrong secret",
                v,
                &bad_secret,
                0,
                untouched,
                (400, "SignatureDoesNotMatch"),
            ),
            (
                "unknown key",
                v,
                &unknown,
                0,
                untouched,
                (404, "InvalidAccessKeyId.NotFound"),
            ),
            ("STS key with its token", v, &sts, 0, untouched, (200, "")),
            (
                "STS key with another token",
                v,
                &stolen,
                0,
                untouched,
                (400, "InvalidSecurityToken.MismatchWithAccessKey"),
            ),
        ]);
    }
    // Old timestamps: V3 allows 15 minutes, V2 31 minutes.
    let (v3, v2) = (SignatureVersion::V3, SignatureVersion::V2);
    cases.extend([
        ("V3 14 minutes old", v3, &good, 14, untouched, (200, "")),
        (
            "V3 20 minutes old",
            v3,
            &good,
            20,
            untouched,
            (400, "IllegalTimestamp"),
        ),
        ("V2 20 minutes old", v2, &good, 20, untouched, (200, "")),
        (
            "V2 40 minutes old",
            v2,
            &good,
            40,
            untouched,
            (400, "InvalidTimeStamp.Expired"),
        ),
        // A V3 request whose Authorization lacks a part, and one with no signature at all.
        (
            "V3 without Signature=",
            v3,
            &good,
            0,
            drop_v3_signature,
            (400, "IncompleteSignature"),
        ),
        (
            "V3 unsigned",
            v3,
            &good,
            0,
            unsigned,
            (400, "IncompleteSignature"),
        ),
    ]);
    let mut failed = Vec::new();
    rt.block_on(async {
        for (name, version, creds, minutes, change, want) in &cases {
            let mut req = rpc(*version, (*creds).clone()).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now() - minutes * 60,
            );
            change(&mut req);
            let got = send(req).await;
            if (got.0, got.1.as_str()) != *want {
                failed.push(format!("{name} ({version:?}): got {got:?}, want {want:?}"));
            }
        }
        // The same nonce again is refused.
        for version in [v3, v2] {
            let req = rpc(version, good.clone()).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(send(req.clone()).await, (200, String::new()), "{version:?}");
            assert_eq!(
                send(req).await,
                (400, "SignatureNonceUsed".into()),
                "nonce used twice ({version:?})"
            );
        }
        // A plain GET signed with V2 by hand (the doc's request style) is accepted.
        let mut get = pairs(&[
            ("Action", "DescribeImages"),
            ("Version", ECS_VERSION),
            ("Format", "JSON"),
            ("AccessKeyId", &sim.key_id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", &new_nonce()),
            (
                "Timestamp",
                &imgport::cloud::aliyun::rpc::utc_timestamp(unix_now()),
            ),
            ("RegionId", REGION),
        ]);
        let signature = imgport::cloud::aliyun::sign::v2_sign("GET", &get, &sim.secret);
        get.push(("Signature".into(), signature));
        let req = HttpRequest {
            method: "GET",
            url: format!(
                "{}/?{}",
                sim.endpoint,
                imgport::cloud::aliyun::sign::canonical_query(&get)
            ),
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert_eq!(
            send(req).await,
            (200, String::new()),
            "V2 GET signed by hand"
        );
    });
    assert_all_passed(&failed, cases.len());
}

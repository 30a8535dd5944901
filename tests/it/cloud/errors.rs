//! The emulator's documented error codes and its authentication, as the service answers.

use super::*;

#[test]
fn emulator_answers_documented_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "30"]);
    sim.put_raw("disk.raw", (3 << 30) + 1);
    sim.put_raw("empty.raw", 0);
    sim.put_link("bad.vhd", &crate::util::image("content.vhd"));
    let client = sim.client(SignatureVersion::V3);
    let d1 = [
        ("DiskDeviceMapping.1.OSSBucket", BUCKET),
        ("DiskDeviceMapping.1.OSSObject", "disk.raw"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut v = vec![("RegionId", REGION)];
        v.extend_from_slice(&d1);
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Params, &str, u16)> = vec![
        (d1.to_vec(), "MissingParameter", 400),
        (vec![("RegionId", REGION)], "MissingParameter", 400),
        (
            vec![
                ("RegionId", REGION),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
            ],
            "MissingParameter",
            400,
        ),
        (
            with(&[("ImageName", "1-starts-with-digit")]),
            "InvalidImageName.Malformed",
            400,
        ),
        (
            with(&[("ImageName", "aliyun-name")]),
            "InvalidImageName.Malformed",
            400,
        ),
        (
            with(&[("Description", "http://x")]),
            "InvalidDescription.Malformed",
            400,
        ),
        (
            with(&[("Platform", "Windows 95")]),
            "InvalidPlatform.Malformed",
            400,
        ),
        (
            with(&[("Architecture", "mips")]),
            "InvalidArchitecture.Malformed",
            400,
        ),
        (with(&[("OSType", "beos")]), "InvalidOSType.Malformed", 400),
        (
            with(&[("BootMode", "UEFI-Preferred")]),
            "InvalidBootMode.Malformed",
            400,
        ),
        (
            with(&[("DiskDeviceMapping.1.DiskImageSize", "0")]),
            "InvalidImageSize",
            400,
        ),
        (
            with(&[("DiskDeviceMapping.1.DiskImageSize", "big")]),
            "InvalidImageSize",
            400,
        ),
        (
            with(&[("DiskDeviceMapping.1.DiskImageSize", "3")]),
            "InvalidImageSize",
            400,
        ),
        (
            with(&[
                ("DiskDeviceMapping.2.OSSBucket", BUCKET),
                ("DiskDeviceMapping.2.OSSObject", "disk.raw"),
                ("DiskDeviceMapping.2.DiskImageSize", "4096"),
            ]),
            "InvalidDataDiskSize",
            400,
        ),
        (
            with(&[("DiskDeviceMapping.1.Format", "QCOW2")]),
            "InvalidImageFormat.Malformed",
            400,
        ),
        (
            with(&[("DiskDeviceMapping.1.Format", "ISO")]),
            "InvalidImageFormat.Malformed",
            400,
        ),
        (
            with(&[("ClientToken", "tök")]),
            "InvalidClientToken.Malformed",
            400,
        ),
        (with(&[("DryRun", "true")]), "DryRunOperation", 400),
        (
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
            with(&[("LicenseType", "Free")]),
            "InvalidLicenseType.NotSupported",
            400,
        ),
        (
            with(&[("Architecture", "arm64"), ("OSType", "windows")]),
            "InvalidArchitecture.PlatformUnsupported",
            403,
        ),
        (
            with(&[("OSType", "windows"), ("DetectionStrategy", "Standard")]),
            "ImageCheckUnsupported.WindowsImage",
            403,
        ),
        (
            vec![
                ("RegionId", REGION),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                ("DiskDeviceMapping.1.OSSObject", "missing.raw"),
            ],
            "InvalidOSSObject.NotFound",
            400,
        ),
        (
            vec![
                ("RegionId", REGION),
                ("DiskDeviceMapping.1.OSSBucket", "no-such-bucket"),
                ("DiskDeviceMapping.1.OSSObject", "x.raw"),
            ],
            "InvalidOSSBucket.NotFound",
            400,
        ),
        (
            vec![
                ("RegionId", REGION),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                ("DiskDeviceMapping.1.OSSObject", "empty.raw"),
            ],
            "InvalidOSSObject.Size",
            400,
        ),
        (
            vec![
                ("RegionId", REGION),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                ("DiskDeviceMapping.1.OSSObject", "bad.vhd"),
            ],
            "InvalidVHDImage.IncorrectSize",
            403,
        ),
        (
            vec![
                ("RegionId", "Not A Region"),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                ("DiskDeviceMapping.1.OSSObject", "disk.raw"),
            ],
            "InvalidRegionId.NotFound",
            404,
        ),
    ];
    let rt = runtime();
    rt.block_on(async {
        for (params, code, status) in &cases {
            let got = raw_error(&client, "ImportImage", params).await;
            assert_eq!(
                (got.0.as_str(), got.1),
                (*code, *status),
                "params {params:?}"
            );
        }
        // An image the inspector refuses (an ISO, a LUKS volume) is a malformed format.
        for (key, file) in [("cd.iso", "plain.iso"), ("vol.luks", "luks.luks")] {
            sim.put_link(key, &crate::util::image(file));
            let got = raw_error(
                &client,
                "ImportImage",
                &[
                    ("RegionId", REGION),
                    ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                    ("DiskDeviceMapping.1.OSSObject", key),
                ],
            )
            .await;
            assert_eq!(
                got,
                ("InvalidImageFormat.Malformed".to_string(), 400),
                "{file}"
            );
        }
        // A dynamic VHD made with force_size passes; declared as RAW it is refused.
        sim.put_link("good.vhd", &crate::util::image("content-force.vhd"));
        let vhd = [
            ("RegionId", REGION),
            ("DiskDeviceMapping.1.OSSBucket", BUCKET),
            ("DiskDeviceMapping.1.OSSObject", "good.vhd"),
        ];
        let mut as_raw = vhd.to_vec();
        as_raw.push(("DiskDeviceMapping.1.Format", "RAW"));
        let got = raw_error(&client, "ImportImage", &as_raw).await;
        assert_eq!(got, ("InvalidImageFormat.Malformed".to_string(), 400));
        let mut as_vhd = vhd.to_vec();
        as_vhd.push(("DiskDeviceMapping.1.Format", "VHD"));
        let body = client
            .rpc()
            .call_raw("ImportImage", ECS_VERSION, &pairs(&as_vhd))
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
        // Duplicate names are refused once an image holds the name.
        client
            .rpc()
            .call_raw(
                "ImportImage",
                ECS_VERSION,
                &pairs(&with(&[("ImageName", "taken")])),
            )
            .await
            .unwrap();
        sim.put_raw("other.raw", 1 << 20);
        let got = raw_error(
            &client,
            "ImportImage",
            &[
                ("RegionId", REGION),
                ("ImageName", "taken"),
                ("DiskDeviceMapping.1.OSSBucket", BUCKET),
                ("DiskDeviceMapping.1.OSSObject", "other.raw"),
            ],
        )
        .await;
        assert_eq!(got, ("InvalidImageName.Duplicated".to_string(), 400));
        // Other actions.
        let got = raw_error(
            &client,
            "ModifyImageAttribute",
            &[("RegionId", REGION), ("ImageId", "m-nope")],
        )
        .await;
        assert_eq!(got, ("InvalidImageId.NotFound".to_string(), 404));
        let got = raw_error(
            &client,
            "DescribeTaskAttribute",
            &[("RegionId", REGION), ("TaskId", "t-nope")],
        )
        .await;
        assert_eq!(got, ("InvalidTaskId.NotFound".to_string(), 404));
        let got = raw_error(&client, "DescribeImages", &[]).await;
        assert_eq!(got, ("MissingParameter".to_string(), 400));
        let got = raw_error(&client, "NoSuchAction", &[("RegionId", REGION)]).await;
        assert_eq!(got, ("InvalidAction.NotFound".to_string(), 404));
        // An importing image can be neither modified nor deleted.
        let listed = client
            .describe_images(&DescribeImagesRequest::new(REGION).image_name("taken"))
            .await
            .unwrap();
        let id = listed.images.image[0].image_id.clone();
        let got = raw_error(
            &client,
            "ModifyImageAttribute",
            &[
                ("RegionId", REGION),
                ("ImageId", &id),
                ("Description", "later"),
            ],
        )
        .await;
        assert_eq!(got, ("InvalidStatus.ImageIsCreating".to_string(), 403));
        let got = raw_error(
            &client,
            "DeleteImage",
            &[("RegionId", REGION), ("ImageId", &id)],
        )
        .await;
        assert_eq!(got, ("IncorrectImageStatus".to_string(), 400));
    });
}

/// Sends one prepared request over HTTP and returns (status, Code).
async fn send(req: HttpRequest) -> (u16, String) {
    let t = ReqwestTransport::new(Duration::from_secs(10)).unwrap();
    let resp = t.send(req).await.expect("an HTTP answer");
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    (resp.status, v["Code"].as_str().unwrap_or("").to_string())
}

#[test]
fn emulator_authenticates_like_the_service() {
    let sim = SimProcess::start(&[]);
    let rt = runtime();
    let params = pairs(&[("RegionId", REGION)]);
    let rpc = |version, creds: Credentials| RpcClient::new(sim.config(version), creds).unwrap();
    rt.block_on(async {
        for version in [SignatureVersion::V3, SignatureVersion::V2] {
            let client = rpc(version, sim.credentials());
            // A good request passes; the same nonce again is refused.
            let req = client.build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(send(req.clone()).await, (200, String::new()));
            assert_eq!(send(req).await, (400, "SignatureNonceUsed".into()));
            // A tampered parameter breaks the signature.
            let mut req = client.build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            req.url = req
                .url
                .replace("RegionId=cn-hangzhou", "RegionId=cn-beijing");
            assert_eq!(send(req).await, (400, "SignatureDoesNotMatch".into()));
            // A wrong secret too.
            let mut bad = sim.credentials();
            bad.access_key_secret = Secret::new("not-the-secret");
            let req = rpc(version, bad).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(send(req).await, (400, "SignatureDoesNotMatch".into()));
            // An unknown key.
            let mut unknown = sim.credentials();
            unknown.access_key_id = "LTAInobody".into();
            let req = rpc(version, unknown).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(send(req).await, (404, "InvalidAccessKeyId.NotFound".into()));
            // STS: the key needs its token.
            let sts = Credentials {
                access_key_id: sim.sts_key_id.clone(),
                access_key_secret: Secret::new(sim.secret.clone()),
                security_token: Some(Secret::new(sim.token.clone())),
            };
            let req = rpc(version, sts.clone()).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(send(req).await, (200, String::new()));
            let mut wrong = sts;
            wrong.security_token = Some(Secret::new("stolen"));
            let req = rpc(version, wrong).build_request(
                "DescribeImages",
                ECS_VERSION,
                &params,
                &new_nonce(),
                unix_now(),
            );
            assert_eq!(
                send(req).await.1,
                "InvalidSecurityToken.MismatchWithAccessKey"
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
        assert_eq!(send(req).await, (200, String::new()));
        // Old timestamps: V3 allows 15 minutes, V2 31 minutes.
        let v3 = rpc(SignatureVersion::V3, sim.credentials());
        let req = v3.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now() - 14 * 60,
        );
        assert_eq!(send(req).await.0, 200);
        let req = v3.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now() - 20 * 60,
        );
        assert_eq!(send(req).await, (400, "IllegalTimestamp".into()));
        let v2 = rpc(SignatureVersion::V2, sim.credentials());
        let req = v2.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now() - 20 * 60,
        );
        assert_eq!(send(req).await.0, 200);
        let req = v2.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now() - 40 * 60,
        );
        assert_eq!(send(req).await, (400, "InvalidTimeStamp.Expired".into()));
        // A V3 request whose Authorization lacks a part, and one with no signature at all.
        let mut req = v3.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now(),
        );
        for (k, v) in &mut req.headers {
            if k == "authorization" {
                *v = v.split(",Signature=").next().unwrap().to_string();
            }
        }
        assert_eq!(send(req).await, (400, "IncompleteSignature".into()));
        let mut req = v3.build_request(
            "DescribeImages",
            ECS_VERSION,
            &params,
            &new_nonce(),
            unix_now(),
        );
        req.headers.retain(|(k, _)| k != "authorization");
        assert_eq!(send(req).await, (400, "IncompleteSignature".into()));
    });
}

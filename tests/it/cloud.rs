//! The Alibaba Cloud client against the real `imgport sim` emulator over loopback HTTP:
//! import → poll → Available, the emulator's documented error codes, authentication
//! failures, retries on injected faults, poll timeout, CreateFailed, cancellation, state
//! persistence, and Alibaba's official Python SDK talking to the emulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imgport::cloud::aliyun::client::EcsClient;
use imgport::cloud::aliyun::credentials::Credentials;
use imgport::cloud::aliyun::ecs::{
    DescribeImagesRequest, DescribeTasksRequest, DiskDeviceMapping, ECS_VERSION,
    ImportImageRequest, ModifyImageAttributeRequest,
};
use imgport::cloud::aliyun::poll::{WaitError, WaitOptions};
use imgport::cloud::aliyun::rpc::{
    ClientConfig, HttpRequest, ReqwestTransport, RetryPolicy, RpcClient, RpcError,
    SignatureVersion, Transport, new_nonce, unix_now,
};
use imgport::cloud::aliyun::types::{DiskFormat, ImageStatus, ModifiableStatus, Platform};
use imgport::report::Reporter;
use imgport::secret::Secret;

const REGION: &str = "cn-hangzhou";
const BUCKET: &str = "images";

/// A running `imgport sim` child process, killed on drop.
struct SimProcess {
    child: Child,
    endpoint: String,
    key_id: String,
    secret: String,
    sts_key_id: String,
    token: String,
    state: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimProcess {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let mut sim = Self::start_in(&state, extra);
        sim._dir = Some(dir);
        sim
    }

    fn start_in(state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .args(["sim", "--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start imgport sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut field = |name: &str| -> String {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("imgport sim ended before printing {name}"))
                .expect("read sim output");
            line.strip_prefix(&format!("{name}: "))
                .unwrap_or_else(|| panic!("expected {name}, got {line:?}"))
                .to_string()
        };
        let endpoint = field("endpoint");
        let key_id = field("access_key_id");
        let secret = field("access_key_secret");
        let sts_key_id = field("sts_access_key_id");
        let token = field("security_token");
        let _ = field("s3_root");
        Self {
            child,
            endpoint,
            key_id,
            secret,
            sts_key_id,
            token,
            state: state.to_path_buf(),
            _dir: None,
        }
    }

    fn s3(&self) -> PathBuf {
        self.state.join("s3")
    }

    /// Places `src` as object `key` of [`BUCKET`] (a symlink: no copy).
    fn put_link(&self, key: &str, src: &Path) {
        let dst = self.s3().join(BUCKET).join(key);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(src, &dst).unwrap();
    }

    /// Places a sparse RAW object of `size` bytes.
    fn put_raw(&self, key: &str, size: u64) {
        let dst = self.s3().join(BUCKET).join(key);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let f = std::fs::File::create(&dst).unwrap();
        f.set_len(size).unwrap();
    }

    fn config(&self, version: SignatureVersion) -> ClientConfig {
        let mut c = ClientConfig::new(REGION);
        c.endpoint = Some(self.endpoint.clone());
        c.signature = version;
        c.timeout = Duration::from_secs(20);
        c.retry = RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        c
    }

    fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.key_id.clone(),
            access_key_secret: Secret::new(self.secret.clone()),
            security_token: None,
        }
    }

    fn client(&self, version: SignatureVersion) -> EcsClient {
        EcsClient::new(self.config(version), self.credentials()).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn import_request(key: &str) -> ImportImageRequest {
    ImportImageRequest::builder(REGION)
        .image_name(format!("img-{}", key.replace(['/', '.'], "-")))
        .platform(Platform::Debian)
        .disk(DiskDeviceMapping::new(BUCKET, key))
        .build()
        .unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Raw parameters of one call.
type Params = Vec<(&'static str, &'static str)>;

/// Calls `action` with raw parameters (bypassing local validation) and returns the error.
async fn raw_error(
    client: &EcsClient,
    action: &'static str,
    params: &[(&str, &str)],
) -> (String, u16) {
    let err = client
        .rpc()
        .call_raw(action, ECS_VERSION, &pairs(params))
        .await
        .expect_err("the emulator should refuse this request");
    let api = err
        .api()
        .unwrap_or_else(|| panic!("not an API error: {err:?}"));
    (api.code.clone(), api.http_status)
}

/// Collects progress messages.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn message(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

fn fast_wait(timeout: Duration) -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(100),
        timeout,
        not_found_polls: 3,
    }
}

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
    let sim = SimProcess::start(&["--throttle-rate", "1"]);
    let mut cfg = sim.config(SignatureVersion::V3);
    cfg.retry.max_attempts = 3;
    let client = EcsClient::new(cfg, sim.credentials()).unwrap();
    rt.block_on(async {
        let err = client
            .describe_images(&DescribeImagesRequest::new(REGION))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("Throttling.User"));
        // The emulator hints its backoff in milliseconds, as the service does.
        assert_eq!(
            err.api().and_then(|e| e.retry_after),
            Some(Duration::from_millis(20))
        );
    });
    drop(sim);
    let sim = SimProcess::start(&["--error-rate", "1"]);
    let mut cfg = sim.config(SignatureVersion::V2);
    cfg.retry.max_attempts = 2;
    let client = EcsClient::new(cfg, sim.credentials()).unwrap();
    rt.block_on(async {
        let err = client
            .describe_images(&DescribeImagesRequest::new(REGION))
            .await
            .unwrap_err();
        assert_eq!(
            err.api().map(|e| (e.code.as_str(), e.http_status)),
            Some(("ServiceUnavailable", 503))
        );
    });
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
    rt.block_on(async {
        let slow = client
            .import_image(import_request("slow.raw"))
            .await
            .unwrap();
        let err = client
            .wait_available(
                &slow.image_id,
                &slow.task_id,
                fast_wait(Duration::from_millis(300)),
                &imgport::report::Silent,
                std::future::pending(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, WaitError::Timeout { last_status, .. } if last_status == "Creating"),
            "{err:?}"
        );

        let bad = client
            .import_image(import_request("no-os.raw"))
            .await
            .unwrap();
        let err = client
            .wait_available(
                &bad.image_id,
                &bad.task_id,
                fast_wait(Duration::from_secs(30)),
                &imgport::report::Silent,
                std::future::pending(),
            )
            .await
            .unwrap_err();
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
        assert!(
            matches!(
                err,
                WaitError::Interrupted {
                    task_cancelled: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut q = DescribeTasksRequest::new(REGION);
        q.task_ids = vec![c.task_id.clone()];
        let tasks = client.describe_tasks(&q).await.unwrap();
        assert_eq!(tasks.task_set.task[0].task_status, "Cancelled");
        assert!(client.find_image(&c.image_id).await.unwrap().is_none());

        // A never-listed image is "not found" after the bounded number of polls.
        let err = client
            .wait_available(
                "m-unknown",
                "",
                fast_wait(Duration::from_secs(30)),
                &imgport::report::Silent,
                std::future::pending(),
            )
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

/// A venv with Alibaba's official ECS SDK, cached between runs; `None` without python3.
fn sdk_python() -> Option<PathBuf> {
    let python = which("python3")?;
    let cache = std::env::var_os("IMGPORT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cache"));
    let venv = cache.join("sdk-venv");
    let py = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .ok()?
            .success()
            && Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "alibabacloud_ecs20140526",
                ])
                .status()
                .ok()?
                .success();
        assert!(
            ok,
            "installing alibabacloud_ecs20140526 into {} failed",
            venv.display()
        );
        std::fs::write(&ready, b"").unwrap();
    }
    Some(py)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn official_python_sdk_imports_against_the_emulator() {
    let Some(py) = sdk_python() else {
        eprintln!("python3 not found: skipping the official SDK smoke test");
        return;
    };
    let sim = SimProcess::start(&["--import-seconds", "1"]);
    sim.put_raw("sdk/disk.raw", 1 << 20);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sdk-smoke.py");
    let out = Command::new(py)
        .arg(&script)
        .env("SIM_ENDPOINT", sim.endpoint.trim_start_matches("http://"))
        .env("SIM_ACCESS_KEY_ID", &sim.key_id)
        .env("SIM_ACCESS_KEY_SECRET", &sim.secret)
        .env("SIM_BUCKET", BUCKET)
        .env("SIM_OBJECT", "sdk/disk.raw")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk-smoke.py failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("status Available"), "{stdout}");
    assert!(
        stdout.contains("error InvalidImageName.Malformed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad secret SignatureDoesNotMatch"),
        "{stdout}"
    );
}

//! The OSS checks of an import, through the binary against `imgport sim` over 127.0.0.1 with
//! real signatures (docs/CLOUD-API.md §OSS): a bucket in another region, a missing bucket, an
//! archive-class bucket are each refused with exit 2 and a message naming the bucket and what
//! to do (the first two before any byte is sent); `--create-bucket` makes a missing bucket in
//! the import's region; the plan lists every check; path style on a named host is refused;
//! `imgport upload` runs the same bucket check (`--create-bucket`, the region on OSS only).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::*;

const REGION: &str = "cn-hangzhou";

/// `imgport import` of the small raw test disk into `bucket` through `sim`.
fn import(sim: &Sim, dir: &Path, bucket: &str, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("import")
        .arg(image("content.raw"))
        .args([
            "--region",
            REGION,
            "--bucket",
            bucket,
            "--name",
            "oss-checks",
        ])
        .args(["--system-disk", "1", "--to", "raw", "--part-size", "5M"])
        .args(["--allow-no-os", "--no-dedupe", "--poll-interval", "0.2"])
        .args(["--ecs-endpoint", &sim.ecs, "--oss-endpoint", &sim.s3])
        .arg("--journal")
        .arg(dir.join("uploads"))
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_sim_keys(&mut cmd);
    cmd.output().expect("run imgport import")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every object file stored in the emulator's buckets (its own state aside).
fn stored_objects(state: &Path) -> Vec<std::path::PathBuf> {
    files_under(&state.join("s3"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".imgport-s3"))
        .collect()
}

/// The emulator made no image (it writes its state file at the first one).
fn no_images(state: &Path) -> bool {
    !state.join("ecs-state.json").exists() || sim_images(state).is_empty()
}

#[test]
fn a_bucket_of_another_region_is_refused_before_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, "images:cn-beijing");
    let out = import(&sim, dir.path(), "images", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in ["images", "cn-beijing", "cn-hangzhou", "--region cn-beijing"] {
        assert!(err.contains(want), "{want} missing in: {err}");
    }
    assert!(stored_objects(&state).is_empty(), "nothing was uploaded");
    assert!(no_images(&state));
}

#[test]
fn a_missing_bucket_is_refused_and_created_with_create_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, "other");
    let out = import(&sim, dir.path(), "fresh-images", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("fresh-images")
            && err.contains("does not exist")
            && err.contains("--create-bucket"),
        "{err}"
    );
    assert!(stored_objects(&state).is_empty(), "nothing was uploaded");

    let out = import(
        &sim,
        dir.path(),
        "fresh-images",
        &["--create-bucket", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "Available", "{r}");
    // The emulator recorded the bucket in the region CreateBucket asked for.
    let facts = std::fs::read_to_string(state.join("s3/.imgport-s3/buckets/fresh-images")).unwrap();
    assert_eq!(facts.lines().next(), Some(REGION));
    let key = r["disks"][0]["key"].as_str().unwrap();
    assert_eq!(
        sha256sum(&state.join("s3/fresh-images").join(key)),
        sha256sum(&image("content.raw"))
    );
}

#[test]
fn an_archive_bucket_is_refused_before_import_image() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, "cold:cn-hangzhou:ColdArchive");
    let out = import(&sim, dir.path(), "cold", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("oss://cold/") && err.contains("ColdArchive") && err.contains("Standard"),
        "{err}"
    );
    assert!(no_images(&state), "ImportImage was not called");
}

#[test]
fn the_plan_lists_the_bucket_checks() {
    let src = image("content.raw");
    let run = imgport([
        "plan".as_ref(),
        "--json".as_ref(),
        "--region".as_ref(),
        REGION.as_ref(),
        "--bucket".as_ref(),
        "my-images".as_ref(),
        "--allow-no-os".as_ref(),
        "--create-bucket".as_ref(),
        src.as_os_str(),
    ]);
    run.expect_code(0);
    let plan = run.json();
    let actions: Vec<&str> = plan["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    let at = |a: &str| {
        actions
            .iter()
            .position(|x| *x == a)
            .unwrap_or_else(|| panic!("{a} in {actions:?}"))
    };
    assert!(at("GetBucketLocation") < at("CreateBucket"));
    assert!(at("CreateBucket") < at("MultipartUpload"));
    assert!(at("MultipartUpload") < at("HeadObject"));
    assert!(at("HeadObject") < at("ImportImage"));
    assert_eq!(plan["plan"]["create_bucket"], true, "{plan}");
}

#[test]
fn path_style_on_a_named_host_is_refused_like_oss() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, "images");
    let named = sim.s3.replace("127.0.0.1", "localhost");
    let src = dir.path().join("small.bin");
    std::fs::write(&src, vec![7u8; 1000]).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("upload")
        .arg(&src)
        .args(["--region", REGION, "--bucket", "images", "--key", "k"])
        .args(["--oss-endpoint", &named, "--path-style"])
        .arg("--journal")
        .arg(dir.path().join("uploads"));
    with_sim_keys(&mut cmd);
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    // The upload's first call is a HEAD, whose answer has no body to carry the code.
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    // A GET, signed with SigV4 by curl, shows the code OSS gives.
    let body = sh(&format!(
        "curl -s --aws-sigv4 aws:amz:{REGION}:s3 --user '{}:{}' '{named}/images/k'",
        imgport::sim::server::TEST_ACCESS_KEY_ID,
        imgport::sim::server::TEST_ACCESS_KEY_SECRET
    ));
    assert!(
        body.contains("<Code>SecondLevelDomainForbidden</Code>"),
        "{body}"
    );
    // Virtual-hosted, the same GET reaches the bucket (the object is not there yet).
    let port = named.rsplit(':').next().unwrap();
    let body = sh(&format!(
        "curl -s --aws-sigv4 aws:amz:{REGION}:s3 --user '{}:{}' \
         -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --connect-to images.localhost:{port}:127.0.0.1:{port} 'http://images.localhost:{port}/k'",
        imgport::sim::server::TEST_ACCESS_KEY_ID,
        imgport::sim::server::TEST_ACCESS_KEY_SECRET
    ));
    assert!(body.contains("<Code>NoSuchKey</Code>"), "{body}");
    // The same request to the IP address may name the bucket in the path.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("upload")
        .arg(&src)
        .args(["--region", REGION, "--bucket", "images", "--key", "k"])
        .args(["--oss-endpoint", &sim.s3])
        .arg("--journal")
        .arg(dir.path().join("uploads"));
    with_sim_keys(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `imgport upload` runs the import's bucket check (one piece of code): `--create-bucket`
/// makes a missing bucket in --region before the upload. The emulator's address is not an OSS
/// host, so, as for any S3 server, the region is not compared there (an S3 server names its
/// regions its own way); without the flag nothing extra is asked of such a server.
#[test]
fn upload_creates_a_missing_bucket_with_create_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, "other:cn-beijing");
    let src = dir.path().join("small.bin");
    std::fs::write(&src, vec![7u8; 300_000]).unwrap();
    let upload = |bucket: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
        cmd.arg("upload")
            .arg(&src)
            .args(["--region", REGION, "--bucket", bucket, "--key", "k"])
            .args(["--oss-endpoint", &sim.s3, "--json"])
            .arg("--journal")
            .arg(dir.path().join("uploads"))
            .args(extra);
        with_sim_keys(&mut cmd);
        cmd.output().unwrap()
    };
    let out = upload("made-by-upload", &["--create-bucket"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let facts =
        std::fs::read_to_string(state.join("s3/.imgport-s3/buckets/made-by-upload")).unwrap();
    assert_eq!(facts.lines().next(), Some(REGION));
    assert_eq!(
        sha256sum(&state.join("s3/made-by-upload/k")),
        sha256sum(&src)
    );
    // A bucket of another region on a non-OSS endpoint: not compared, the upload goes on.
    let out = upload("other", &["--create-bucket"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Without the flag a missing bucket is the server's own answer, after no extra request.
    let out = upload("absent", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

/// The check `imgport upload` runs on an OSS endpoint (the emulator is not at an OSS host, so
/// it is called here as the upload calls it there): a bucket of another region is refused
/// naming both regions; without a region to compare (another S3 server) it passes.
#[test]
fn the_upload_check_compares_the_region_only_when_given_one() {
    use imgport::pipeline::bucket::{BucketError, check_bucket};
    use imgport::store::{S3Store, StoreConfig};
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("sim"), "images:cn-beijing");
    let store = S3Store::new(
        &StoreConfig::custom(REGION, &sim.s3, false).unwrap(),
        &imgport::credentials::Credentials {
            access_key_id: imgport::sim::server::TEST_ACCESS_KEY_ID.into(),
            access_key_secret: imgport::secret::Secret::new(
                imgport::sim::server::TEST_ACCESS_KEY_SECRET,
            ),
            security_token: None,
        },
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let why = "OSS serves a bucket only at the endpoint of its own region";
    let err = rt
        .block_on(check_bucket(
            &store,
            "images",
            REGION,
            Some((REGION, why)),
            false,
        ))
        .unwrap_err();
    assert!(
        matches!(&err, BucketError::WrongRegion { found, .. } if found == "cn-beijing"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(why) && text.contains("--region cn-beijing"),
        "{text}"
    );
    rt.block_on(check_bucket(&store, "images", REGION, None, false))
        .expect("no region to compare");
    let err = rt
        .block_on(check_bucket(&store, "absent", REGION, None, false))
        .unwrap_err();
    assert!(matches!(err, BucketError::Missing { .. }), "{err}");
}

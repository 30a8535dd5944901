//! `imgport import --sandbox`: the whole pipeline against the in-process emulator and S3
//! server — the image ends `Available`, the object holds exactly the converted bytes, a re-run
//! returns the same image, several disks map to DiskDeviceMapping.1..N, a refused image
//! uploads nothing, `--dry-run` is `imgport plan`, and Ctrl-C while waiting exits 130.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const BUCKET: &str = "sandbox";

/// `imgport import --sandbox` with a sandbox and journal under `dir`; the test disks hold
/// no OS.
fn import_args(dir: &Path, files: &[&Path], extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args = sandbox_import_args(dir, BUCKET, files, extra);
    args.push("--allow-no-os".into());
    args
}

fn object(dir: &Path, key: &str) -> std::path::PathBuf {
    sandbox_object(dir, BUCKET, key)
}

/// Image records the emulator keeps in its state file.
fn images_in_state(dir: &Path) -> Vec<serde_json::Value> {
    sim_images(&dir.join("sandbox/ecs")).into_values().collect()
}

#[test]
fn sandbox_import_ends_available_with_the_converted_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&src], &["--system-disk", "1", "--to", "vhd"]),
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    assert!(r["image_id"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(r["region"], "cn-hangzhou");
    assert_eq!(r["sandbox"], true);
    let disk = &r["disks"][0];
    assert_eq!(disk["device_index"], 1);
    assert_eq!(disk["format"], "vhd");
    let key = disk["key"].as_str().unwrap();
    let obj = object(dir.path(), key);
    // The object is exactly what `imgport convert --to vhd` writes, and the same disk.
    assert_eq!(disk["sha256"].as_str().unwrap(), sha256sum(&obj));
    let converted = dir.path().join("converted.vhd");
    imgport_convert(&src, &converted, "vhd").expect_code(0);
    assert_eq!(sha256sum(&converted), sha256sum(&obj));
    sh(&format!(
        "qemu-img compare -f qcow2 -F vpc '{}' '{}'",
        src.display(),
        obj.display()
    ));
    let stages: Vec<&str> = r["timings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["stage"].as_str())
        .collect();
    for s in [
        "inspect and plan",
        "upload disk 1",
        "ImportImage",
        "wait until Available",
    ] {
        assert!(stages.contains(&s), "stage {s} missing in {stages:?}");
    }
}

#[test]
fn delete_objects_removes_the_uploads_once_the_image_is_available() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let extra = ["--system-disk", "1", "--delete-objects"];
    // The dry run shows the deletion, after every cloud call.
    let mut dry = import_args(dir.path(), &[&src], &extra);
    dry.push("--dry-run".into());
    let planned = imgport_in(dir.path(), &dry);
    planned.expect_code(0);
    let planned = planned.json();
    assert_eq!(planned["plan"]["delete_objects"], true, "{planned}");
    let requests = planned["requests"].as_array().unwrap();
    let last = requests.last().unwrap();
    assert_eq!(last["action"], "DeleteObject", "{planned}");
    let key = planned["plan"]["disks"][0]["object_key"].as_str().unwrap();
    assert!(last.to_string().contains(key), "{last}");

    let run = imgport_in(dir.path(), import_args(dir.path(), &[&src], &extra));
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    assert_eq!(r["objects_deleted"], true, "{r}");
    assert_eq!(r["disks"][0]["key"], key, "{r}");
    assert!(!object(dir.path(), key).exists(), "{key} is still stored");
    let images = images_in_state(dir.path());
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["status"], "Available", "{images:?}");

    // By default the objects stay (the plan says so too).
    let kept = tempfile::tempdir().unwrap();
    let run = imgport_in(
        kept.path(),
        import_args(kept.path(), &[&src], &["--system-disk", "1"]),
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["objects_deleted"], false, "{r}");
    assert_eq!(r["plan"]["delete_objects"], false, "{r}");
    assert!(object(kept.path(), key).exists());
}

#[test]
fn a_rerun_finds_the_image_by_its_content_and_creates_no_second_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let args = import_args(dir.path(), &[&src], &["--system-disk", "1"]);
    let first = imgport_in(dir.path(), &args);
    first.expect_code(0);
    let first = first.json();
    assert_eq!(first["already_imported"], false);
    let digest = first["content_digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);
    let stored = |dir: &Path| {
        let mut f = files_under(&dir.join("sandbox/s3"));
        f.extend(files_under(&dir.join("journal")));
        f.sort();
        f
    };
    let after_first = stored(dir.path());
    // The same disk as a RAW file has the same content: found by its tag, not imported
    // again. Its upload, started while the digest was computed, is withdrawn before
    // Complete: no object, no multipart upload and no journal are left.
    let raw = image("content.raw");
    let second = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&raw], &["--system-disk", "1"]),
    );
    second.expect_code(0);
    let second = second.json();
    assert_eq!(second["already_imported"], true, "{second}");
    assert_eq!(second["image_id"], first["image_id"]);
    assert_eq!(second["content_digest"], digest.as_str());
    assert!(second["disks"].as_array().unwrap().is_empty());
    assert_eq!(images_in_state(dir.path()).len(), 1);
    assert_eq!(stored(dir.path()), after_first);
    let uploads = dir.path().join("sandbox/s3/.imgport-s3/uploads");
    let open: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(open.is_empty(), "multipart uploads left: {open:?}");
}

#[test]
fn without_the_lookup_the_client_token_returns_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let args = import_args(dir.path(), &[&src], &["--system-disk", "1", "--no-dedupe"]);
    let first = imgport_in(dir.path(), &args);
    first.expect_code(0);
    let second = imgport_in(dir.path(), &args);
    second.expect_code(0);
    assert_eq!(first.json()["content_digest"], "");
    assert_eq!(second.json()["image_id"], first.json()["image_id"]);
    assert_eq!(second.json()["client_token"], first.json()["client_token"]);
    assert_eq!(images_in_state(dir.path()).len(), 1);
}

#[test]
fn replace_deprecates_the_older_images_of_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let family = ["--system-disk", "1", "--family", "web"];
    let old = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&image("content.qcow2")], &family),
    );
    old.expect_code(0);
    let old_id = old.json()["image_id"].as_str().unwrap().to_string();
    let mut replace = family.to_vec();
    replace.push("--replace");
    let new = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&image("content-zero.qcow2")], &replace),
    );
    new.expect_code(0);
    let new = new.json();
    assert_ne!(new["image_id"].as_str().unwrap(), old_id);
    assert_eq!(new["deprecated"], serde_json::json!([old_id]));
    let status = |id: &str| {
        images_in_state(dir.path())
            .into_iter()
            .find(|i| i["image_id"] == id)
            .map(|i| i["status"].clone())
    };
    assert_eq!(status(&old_id), Some("Deprecated".into()));
    assert_eq!(
        status(new["image_id"].as_str().unwrap()),
        Some("Available".into())
    );
}

#[test]
fn data_disks_follow_the_system_disk_in_the_given_order() {
    let dir = tempfile::tempdir().unwrap();
    let system = image("content.qcow2");
    let data = image("content.vhd");
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&system, &data], &["--system-disk", "1"]),
    );
    run.expect_code(0);
    let r = run.json();
    let disks = r["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    assert_eq!(disks[0]["device_index"], 1);
    assert_eq!(disks[1]["device_index"], 2);
    assert_eq!(disks[1]["format"], "vhd");
    for d in disks {
        let obj = object(dir.path(), d["key"].as_str().unwrap());
        assert_eq!(d["sha256"].as_str().unwrap(), sha256sum(&obj));
    }
    sh(&format!(
        "qemu-img compare -f vpc -F vpc '{}' '{}'",
        data.display(),
        object(dir.path(), disks[1]["key"].as_str().unwrap()).display()
    ));
}

#[test]
fn a_refused_image_uploads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = imgport_in(
        dir.path(),
        import_args(
            dir.path(),
            &[&image("qcow2-backing.qcow2")],
            &["--system-disk", "1"],
        ),
    );
    run.expect_code(3);
    assert!(
        run.stderr().contains("qcow2-backing.qcow2"),
        "{}",
        run.stderr()
    );
    let bucket = dir.path().join("sandbox/s3").join(BUCKET);
    let stored: Vec<_> = files_under(&bucket);
    assert!(stored.is_empty(), "objects were stored: {stored:?}");
}

#[test]
fn dry_run_is_the_plan_and_calls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let common = [&system_disk_flags(BUCKET)[..], &["--json"]].concat();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["import".as_ref(), src.as_os_str(), "--dry-run".as_ref()];
    args.extend(common.iter().map(std::ffi::OsStr::new));
    let dry = imgport_in(dir.path(), &args);
    dry.expect_code(0);
    let mut args: Vec<&std::ffi::OsStr> = vec!["plan".as_ref(), src.as_os_str()];
    args.extend(common.iter().map(std::ffi::OsStr::new));
    let plan = imgport_in(dir.path(), &args);
    plan.expect_code(0);
    assert_eq!(dry.json(), plan.json());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a dry run wrote files"
    );
}

#[test]
fn ctrl_c_while_waiting_cancels_the_task_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let mut args = import_args(dir.path(), &[&src], &["--system-disk", "1"]);
    // A slow import, so the signal arrives while waiting.
    let i = args
        .iter()
        .position(|a| a == "--sandbox-import-seconds")
        .unwrap();
    args[i + 1] = "60".into();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args(&args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until ImportImage was accepted: the emulator's state names an image.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("sandbox/ecs/ecs-state.json").exists()
        || images_in_state(dir.path()).is_empty()
    {
        assert!(Instant::now() < deadline, "the import never started");
        assert!(child.try_wait().unwrap().is_none(), "imgport ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    sh(&format!("kill -INT {}", child.id()));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("the same command waits for it again") && stderr.contains("cancel-import"),
        "{stderr}"
    );
}

#[test]
fn ehpc_name_registers_the_imported_image_as_the_last_stage() {
    let dir = tempfile::tempdir().unwrap();
    let args = import_args(
        dir.path(),
        &[&image("content.qcow2")],
        &["--system-disk", "1", "--ehpc-name", "app-image"],
    );
    let run = imgport_in(dir.path(), &args);
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["ehpc_image"], "app-image");
    let text = std::fs::read_to_string(dir.path().join("sandbox/ecs/ehpc-state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    let registered: Vec<&serde_json::Value> =
        state["images"].as_object().unwrap().values().collect();
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["name"], "app-image");
    assert_eq!(registered[0]["source"], r["image_id"]);
    // A re-run finds the image by its content and the registration stands as it was.
    let again = imgport_in(dir.path(), &args);
    again.expect_code(0);
    assert_eq!(again.json()["already_imported"], true);
    assert_eq!(again.json()["ehpc_image"], "app-image");
    // A name E-HPC would refuse (AddImage requires one) stops the import before any upload.
    let bad = imgport_in(
        dir.path(),
        import_args(
            dir.path(),
            &[&image("content-zero.qcow2")],
            &["--system-disk", "1", "--ehpc-name", " "],
        ),
    );
    bad.expect_code(2);
    assert!(bad.stderr().contains("Name"), "{}", bad.stderr());
    assert!(!object(dir.path(), "imgport/content-zero-disk1.qcow2").exists());
}

//! Issue-9 evidence that runs in the suite: the import completes with 10% of the cloud's and
//! the object store's requests failing (exactly one image, every part stored once); kill -9
//! of `imgport import` at 20 random points, each followed by a re-run that completes with the
//! right bytes, one image and no temp files; and a known secret and token never appear in any
//! output, log or journal of any command.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::*;

const BUCKET: &str = "images";
const REGION: &str = "cn-hangzhou";

#[test]
fn the_import_completes_with_ten_percent_of_requests_failing() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.raw");
    let mut args: Vec<String> = vec!["import".into(), src.display().to_string()];
    for a in [
        "--region",
        REGION,
        "--bucket",
        BUCKET,
        "--sandbox",
        "--sandbox-import-seconds",
        "1",
        "--sandbox-fault-rate",
        "0.1",
        "--allow-no-os",
        "--system-disk",
        "1",
        "--to",
        "raw",
        "--part-size",
        "5M",
        "--json",
    ] {
        args.push(a.into());
    }
    args.push("--sandbox-dir".into());
    args.push(dir.path().join("sandbox").display().to_string());
    args.push("--journal".into());
    args.push(dir.path().join("uploads").display().to_string());
    let run = imgport_in(dir.path(), &args);
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available");
    let s3 = &r["sandbox_s3"];
    assert!(s3["injected_faults"].as_u64().unwrap() >= 1, "{s3}");
    // 64 MiB in 5 MiB parts: 13 parts, each stored exactly once despite the faults.
    let uploads = s3["part_uploads"].as_object().unwrap();
    assert_eq!(uploads.len(), 13, "{s3}");
    assert!(uploads.values().all(|n| n == 1), "{s3}");
    assert_eq!(sim_images(&dir.path().join("sandbox/ecs")).len(), 1);
    assert_first_disk_stored(dir.path(), &r, &src);
}

/// Asserts that the sandbox under `dir` stores the first disk of the import report `r` with
/// the bytes of `src` (a RAW upload of a RAW source).
fn assert_first_disk_stored(dir: &Path, r: &serde_json::Value, src: &Path) {
    let key = r["disks"][0]["key"].as_str().unwrap();
    assert_eq!(sha256sum(&sandbox_object(dir, BUCKET, key)), sha256sum(src));
}

/// `imgport import` against the running emulator `sim`, with its test keys.
fn import_command(sim: &Sim, dir: &Path, src: &Path, name: &str) -> Command {
    let mut cmd = import_via(&sim.ecs, &sim.s3, dir, src, name);
    cmd.arg("--no-dedupe");
    cmd
}

/// `imgport import` with the emulator's test keys against the given ECS and S3 endpoints.
fn import_via(ecs: &str, s3: &str, dir: &Path, src: &Path, name: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("import")
        .arg(src)
        .args(["--region", REGION, "--bucket", BUCKET, "--name", name])
        .args(["--system-disk", "1", "--to", "vhd", "--part-size", "5M"])
        // The test disk holds no OS.
        .arg("--allow-no-os")
        .args(["--json", "--path-style", "--poll-interval", "0.2"])
        .args(["--ecs-endpoint", ecs, "--oss-endpoint", s3])
        .arg("--journal")
        .arg(dir.join("uploads"))
        .env("TMPDIR", dir.join("tmp"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_sim_keys(&mut cmd);
    cmd
}

#[test]
fn an_import_ending_in_create_failed_says_why_and_keeps_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let state = dir.path().join("sim");
    // The emulator fails imports whose object key holds "content", as ECS does for a disk
    // it cannot boot.
    let sim = start_sim_with(&state, BUCKET, &["--fail-objects-containing", "content"]);
    let src = image("content.raw");
    let out = import_command(&sim, dir.path(), &src, "fails")
        .arg("--delete-objects")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("CreateFailed"), "{err}");
    assert!(
        err.contains("ImportImageFailed: no operating system found"),
        "{err}"
    );
    assert!(err.contains("the uploaded objects are kept"), "{err}");
    // Even with --delete-objects: nothing is deleted before Available.
    let stored: Vec<_> = files_under(&state)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "vhd"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[test]
fn kill_9_at_twenty_random_points_then_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    // A disk of several parts, converted on the fly: kills land in every stage.
    let src = image("content.raw");
    let converted = dir.path().join("expected.vhd");
    imgport_convert(&src, &converted, "vhd").expect_code(0);
    let expected = sha256sum(&converted);
    // How long a whole run takes, to spread the kill points over it.
    let started = Instant::now();
    let out = import_command(&sim, dir.path(), &src, "calibrate")
        .output()
        .unwrap();
    crate::util::assert_ok(&out);
    let full = started.elapsed();
    let mut seed = 0x5eed_u64;
    for round in 0..20 {
        let name = format!("crash-{round}");
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let frac = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let at = full.mul_f64(frac);
        let mut child = import_command(&sim, dir.path(), &src, &name)
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = import_command(&sim, dir.path(), &src, &name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round} (killed after {at:?}): re-run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["status"], "Available");
        assert_eq!(
            r["disks"][0]["sha256"].as_str().unwrap(),
            expected,
            "round {round}"
        );
        let obj = state
            .join("s3")
            .join(BUCKET)
            .join(r["disks"][0]["key"].as_str().unwrap());
        assert_eq!(sha256sum(&obj), expected, "round {round}: stored bytes");
        let same_name = sim_images(&state)
            .values()
            .filter(|i| i["name"] == name.as_str())
            .count();
        assert_eq!(same_name, 1, "round {round}: images named {name}");
        let temps = files_under(&dir.path().join("tmp"));
        assert!(
            temps.is_empty(),
            "round {round}: temp files left: {temps:?}"
        );
    }
}

/// A secret, a token and a password no test fixture uses, to search every output for.
const SECRET: &str = "S3cr3t-Known-Value-7c1f0e";
const TOKEN: &str = "T0ken-Known-Value-91ab2d";
const PASSWORD: &str = "Passw0rd-Known-Xy9";

#[test]
fn a_known_secret_and_token_appear_in_no_output_log_or_journal() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let src = image("content.qcow2");
    let s = src.display().to_string();
    let journal = dir.path().join("journal").display().to_string();
    let dead = "http://127.0.0.1:1";
    let out = dir.path().join("out.vhd").display().to_string();
    let manifest = dir.path().join("rows.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[image]]\nname = \"row\"\nfiles = [\"{s}\"]\nregion = \"{REGION}\"\nbucket = \"{BUCKET}\"\nsystem_disk = 1\n"
        ),
    )
    .unwrap();
    let manifest = manifest.display().to_string();
    let uuid = "8c0a1e2b-3f4d-4e5f-8a6b-7c8d9e0f1a2b";
    // What `import` and `batch` are given: the dead cloud endpoints and the credentials.
    let creds = [
        "--access-key-secret",
        SECRET,
        "--security-token",
        TOKEN,
        "--access-key-id",
        "AKIDTEST",
    ];
    let target = system_disk_flags(BUCKET);
    let cloud = [
        &[
            "--ecs-endpoint",
            dead,
            "--oss-endpoint",
            dead,
            "--path-style",
            "--journal",
            &journal,
        ][..],
        &creds,
        &["--json", "--no-dedupe"],
    ]
    .concat();
    let commands: Vec<Vec<String>> = [
        vec!["inspect", &s, "--json"],
        [&["plan", &s][..], &target, &["--json"]].concat(),
        vec![
            "upload",
            &s,
            "--bucket",
            BUCKET,
            "--key",
            "k.qcow2",
            "--region",
            "cn-hangzhou",
            "--endpoint",
            dead,
            "--path-style",
            "--attempts",
            "1",
            "--journal",
            &journal,
        ]
        .into_iter()
        .chain(creds)
        .chain(["--json"])
        .collect(),
        [&["import", &s][..], &target, &cloud].concat(),
        vec![
            "image",
            "modify",
            "m-test",
            "--region",
            REGION,
            "--endpoint",
            dead,
            "--description",
            "xx",
            "--json",
        ],
        vec![
            "ehpc",
            "add-image",
            "--region",
            REGION,
            "--endpoint",
            dead,
            "--name",
            "app",
            "--registry-url",
            "registry.example.com/app:1",
            "--registry-server",
            "registry.example.com",
            "--registry-user",
            "u",
            "--registry-password",
            PASSWORD,
            "--json",
        ],
        vec![
            "ksyun",
            "reinstall",
            "--instance",
            uuid,
            "--password",
            PASSWORD,
            "--endpoint",
            dead,
            "--json",
        ],
        vec![
            "image",
            "create",
            "--region",
            REGION,
            "--endpoint",
            dead,
            "--snapshot",
            "s-test",
            "--name",
            "golden",
            "--json",
        ],
        vec!["convert", &s, &out, "--to", "vhd", "--json"],
        vec!["checksum", &s, "--to", "raw", "--json"],
        [&["batch", &manifest][..], &cloud].concat(),
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect();
    for args in &commands {
        let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .arg("-vvv")
            .args(args)
            .current_dir(dir.path())
            .env("HOME", &home)
            .env("RUST_LOG", "trace")
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "AKIDTEST")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
            .env("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
            .env("KSYUN_ACCESS_KEY", "AKLTTEST")
            .env("KSYUN_SECRET_KEY", SECRET)
            .env("KSYUN_REGION", "cn-beijing-6")
            .env("IMGPORT_REGISTRY_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Each command must get past its arguments and reach the step that uses the secret
        // (a request to the dead endpoint), or the search below would prove nothing.
        assert!(
            !text.is_empty() && !text.contains("Usage:"),
            "imgport {args:?} did not run:\n{text}"
        );
        for needle in [SECRET, TOKEN, PASSWORD] {
            assert!(
                !text.contains(needle),
                "imgport {args:?} printed {needle:?}:\n{text}"
            );
        }
    }
    // Journals, reports and anything else written under the test directory.
    for f in files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for needle in [SECRET, TOKEN, PASSWORD] {
            assert!(!text.contains(needle), "{} holds {needle:?}", f.display());
        }
    }
}

#[test]
fn a_failed_content_lookup_is_the_error_and_leaves_the_upload_resumable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    // An ECS endpoint nobody listens on: the look-up by content fails, the upload to the
    // running S3 server is stopped before Complete and kept for a resume.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let src = image("content.raw");
    let out = import_via(&closed, &sim.s3, dir.path(), &src, "lookup")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("looking for an image with the same content"),
        "{stderr}"
    );
    let objects: Vec<_> = files_under(&state.join("s3").join(BUCKET));
    assert!(objects.is_empty(), "an object was completed: {objects:?}");
    let journals = files_under(&dir.path().join("uploads"));
    assert_eq!(journals.len(), 1, "{journals:?}");
}

/// Issue 19 points 1 and 4: a sandbox is named by its directory, not by its random port, so
/// `import --sandbox --sandbox-dir D` stopped during its upload (SIGKILL, or SIGINT whose
/// message gives the command that resumes) resumes on the re-run (the finished parts are not
/// sent again), and leaves no multipart upload open and no journal.
#[test]
fn a_sandbox_import_killed_mid_upload_resumes_in_the_same_directory() {
    for signal in [libc::SIGKILL, libc::SIGINT] {
        sandbox_import_stopped_mid_upload_resumes(signal);
    }
}

fn sandbox_import_stopped_mid_upload_resumes(signal: i32) {
    let src = image("content.raw");
    // The kill must land during the upload; a run that finished first is tried again.
    for attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("uploads");
        let command = || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
            cmd.arg("import")
                .arg(&src)
                .args(["--region", REGION, "--bucket", BUCKET, "--name", "sbx"])
                .args(["--system-disk", "1", "--to", "raw", "--part-size", "5M"])
                .args([
                    "--concurrency",
                    "1",
                    "--no-dedupe",
                    "--allow-no-os",
                    "--json",
                    "--sandbox",
                ])
                .args(["--sandbox-import-seconds", "0.2", "--sandbox-dir"])
                .arg(dir.path().join("sandbox"))
                .arg("--journal")
                .arg(&journal)
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        };
        let mut child = command().spawn().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while journaled_parts(&journal) < 2 && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let pid = i32::try_from(child.id()).unwrap();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, signal) };
        let stopped = child.wait_with_output().unwrap();
        let journaled = journaled_parts(&journal);
        if journaled < 2 {
            eprintln!("attempt {attempt}: the run ended before the kill; again");
            continue;
        }
        if signal == libc::SIGINT {
            let err = String::from_utf8_lossy(&stopped.stderr);
            assert_eq!(stopped.status.code(), Some(130), "{err}");
            assert!(err.contains("resume: imgport import "), "{err}");
            assert!(err.contains("--sandbox-dir"), "{err}");
        }
        let out = command().output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "re-run failed: {err}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["status"], "Available");
        let reused = r["disks"][0]["parts_reused"].as_u64().unwrap() as usize;
        assert!(
            reused >= 2,
            "the re-run resumed ({journaled} journaled): {r}"
        );
        assert_first_disk_stored(dir.path(), &r, &src);
        let open = dir.path().join("sandbox/s3/.imgport-s3/uploads");
        assert!(files_under(&open).is_empty(), "no upload left open");
        assert!(files_under(&journal).is_empty(), "no journal left");
        return;
    }
    panic!("no run could be killed during its upload");
}

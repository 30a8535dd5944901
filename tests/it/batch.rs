//! `imgport batch` and `imgport packer`: rows imported and summarised, a refused row counted
//! without stopping the others, a re-run skips finished rows, rows added while a far link
//! takes more, shards from `--shard` and from
//! Kubernetes/Slurm variables, and several processes against one emulator (`imgport sim`)
//! import every image exactly once — with disjoint shards and with overlapping runs whose
//! claims in the bucket keep them apart.
//!
//! Kept whole: one command's integration tests sharing one emulator harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::*;

const BUCKET: &str = "images";

/// A TOML manifest of `n` rows named `img-K`, all from `content.qcow2`, plus `extra` text.
fn manifest(dir: &Path, n: usize, extra: &str) -> PathBuf {
    manifest_of(dir, &image("content.qcow2"), "img", n, extra)
}

/// `dir/batch.toml`: `n` rows named `NAME-K`, all from `src`, plus `extra` text.
fn manifest_of(dir: &Path, src: &Path, name: &str, n: usize, extra: &str) -> PathBuf {
    let mut text = format!(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"{BUCKET}\"\nsystem_disk = 1\n\
                 allow_no_os = true\n\n"
    );
    for k in 0..n {
        text.push_str(&format!(
            "[[image]]\nname = \"{name}-{k}\"\nfiles = [\"{}\"]\n\n",
            src.display()
        ));
    }
    text.push_str(extra);
    let p = dir.join("batch.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sandbox_args(dir: &Path) -> Vec<String> {
    sandbox_args_importing_for(dir, "0.5")
}

/// The sandbox flags, with the emulated import taking `seconds`.
fn sandbox_args_importing_for(dir: &Path, seconds: &str) -> Vec<String> {
    [
        "--sandbox",
        "--sandbox-import-seconds",
        seconds,
        "--sandbox-dir",
        &dir.join("sandbox").display().to_string(),
        "--journal",
        &dir.join("uploads").display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_batch_imports_its_rows_counts_a_refused_one_and_a_rerun_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let bad = image("qcow2-backing.qcow2");
    let m = manifest(
        dir.path(),
        2,
        &format!(
            "[[image]]\nname = \"bad\"\nfiles = [\"{}\"]\n",
            bad.display()
        ),
    );
    let mut args = vec![
        "batch".to_string(),
        m.display().to_string(),
        "--json".into(),
    ];
    args.extend(sandbox_args(dir.path()));
    let first = imgport_in(dir.path(), &args);
    // The refused row sets the exit code; the others are imported all the same.
    first.expect_code(3);
    let r = first.json();
    assert_eq!(
        statuses(&r),
        [
            ("img-0".into(), "imported".into()),
            ("img-1".into(), "imported".into()),
            ("bad".into(), "failed".into())
        ]
    );
    assert_eq!(r["imported"], 2);
    assert_eq!(r["failed"], 1);
    assert_eq!(r["rows"][2]["exit_code"], 3);
    // Rows from the same file get objects of their own.
    let keys: Vec<&str> = r["rows"].as_array().unwrap()[..2]
        .iter()
        .map(|row| row["result"]["disks"][0]["key"].as_str().unwrap())
        .collect();
    assert_ne!(keys[0], keys[1]);
    let ids: Vec<&str> = r["rows"].as_array().unwrap()[..2]
        .iter()
        .map(|row| row["image_id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);

    let second = imgport_in(dir.path(), &args);
    second.expect_code(3);
    let r2 = second.json();
    assert_eq!(r2["already_imported"], 2, "{r2}");
    assert_eq!(r2["imported"], 0);
    let again: Vec<&str> = r2["rows"].as_array().unwrap()[..2]
        .iter()
        .map(|row| row["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, again);
}

#[test]
fn a_row_waiting_for_the_cloud_leaves_its_upload_slot_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 3, "");
    let mut args = vec![
        "batch".to_string(),
        m.display().to_string(),
        "--json".into(),
        "--in-flight".into(),
        "1".into(),
        // The rows share one file: each is imported, none found as another's image.
        "--no-dedupe".into(),
    ];
    args.extend(sandbox_args_importing_for(dir.path(), "3"));
    let out = imgport_in(dir.path(), &args);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["imported"], 3, "{r}");
    let rows = r["rows"].as_array().unwrap();
    let ms = |row: &serde_json::Value, field: &str| row[field].as_u64().unwrap();
    for pair in rows.windows(2) {
        let (this, next) = (&pair[0], &pair[1]);
        // One upload at a time: the next row starts once this one's disks are up...
        assert!(
            ms(next, "started_unix_ms") >= ms(this, "uploaded_unix_ms"),
            "{this}\n{next}"
        );
        // ...and not once the cloud has finished importing it.
        assert!(
            ms(next, "started_unix_ms") < ms(this, "ended_unix_ms"),
            "{this}\n{next}"
        );
    }
}

#[test]
fn rows_are_added_while_the_link_takes_more() {
    // Every part waits half a second at the server (a far link): one row with four parts in
    // flight sends about 0.8 MB/s, and every added row adds as much. Rows of 128 parts keep
    // the slots busy for about 20 s, long enough to measure two levels.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim_with(&state, BUCKET, &["--s3-fault", "0:delay=500:1000000"]);
    let disk = dir.path().join("far.raw");
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&disk, data).unwrap();
    let m = manifest_of(dir.path(), &disk, "far", 5, "");
    let extra = ["--part-size", "128K", "--concurrency", "4", "--no-dedupe"];
    let r = finish(batch_process(&sim, dir.path(), &m, &extra, "far"));
    assert_eq!(r["imported"], 5, "{r}");
    let f = &r["in_flight"];
    assert_eq!(f["tuned"], true, "{f}");
    let start = f["start"].as_u64().unwrap();
    let changes = f["changes"].as_array().unwrap();
    let first = &changes.first().unwrap_or_else(|| panic!("no change: {f}"));
    assert_eq!(first["why"], "probe_up", "{f}");
    assert_eq!(first["from"].as_u64(), Some(start), "{f}");
    // Rows are only added until the first step back (if any); a busy machine may not gain
    // from the last row added, and stepping back from the top is the tuner's answer to that.
    let ups = changes
        .iter()
        .position(|c| c["why"] != "probe_up")
        .unwrap_or(changes.len());
    let peak = changes[ups - 1]["to"].as_u64().unwrap();
    let kept = match changes.get(ups) {
        Some(back) => {
            assert_eq!(back["why"], "step_back", "{f}");
            peak - 1
        }
        None => peak,
    };
    // Every row up to the one kept paid off, and the tuner went on to probe one more.
    assert!(kept > start && peak >= start + 2, "{f}");
    assert!(peak <= f["max"].as_u64().unwrap(), "{f}");
}

#[test]
fn shards_come_from_the_flag_kubernetes_or_slurm() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 3, "");
    let run_with = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
        cmd.arg("batch")
            .arg(&m)
            .arg("--json")
            .args(sandbox_args(dir.path()));
        cmd.args(extra).current_dir(dir.path());
        for k in [
            "JOB_COMPLETION_INDEX",
            "IMGPORT_SHARDS",
            "SLURM_ARRAY_TASK_ID",
        ] {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        crate::util::assert_ok(&out);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let k8s = run_with(
        &[("JOB_COMPLETION_INDEX", "1"), ("IMGPORT_SHARDS", "3")],
        &[],
    );
    assert_eq!(k8s["shard"], serde_json::json!({"index": 1, "count": 3}));
    assert_eq!(
        statuses(&k8s),
        [
            ("img-0".into(), "other_shard".into()),
            ("img-1".into(), "imported".into()),
            ("img-2".into(), "other_shard".into())
        ]
    );
    let slurm = run_with(
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
        &[],
    );
    assert_eq!(slurm["shard"], serde_json::json!({"index": 2, "count": 3}));
    assert_eq!(slurm["imported"], 1);
    let flag = run_with(&[], &["--shard", "0/3"]);
    assert_eq!(flag["shard"], serde_json::json!({"index": 0, "count": 3}));
    assert_eq!(flag["imported"], 1);
    let bad = imgport_in(dir.path(), ["batch", m.to_str().unwrap(), "--shard", "3/3"]);
    bad.expect_code(2);
}

fn batch_process(sim: &Sim, dir: &Path, manifest: &Path, extra: &[&str], tag: &str) -> Child {
    batch_as(sim, dir, manifest, tag, &[&["--json"], extra].concat())
}

fn finish(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "batch failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Row ids imported by the given reports, in order of the reports.
fn imported_ids(reports: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = reports
        .iter()
        .flat_map(statuses)
        .filter(|(_, s)| s == "imported")
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn three_shards_as_three_processes_import_each_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    let m = manifest(dir.path(), 6, "");
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            batch_process(&sim, dir.path(), &m, &["--shard", &shard], &i.to_string())
        })
        .collect();
    let reports: Vec<serde_json::Value> = children.into_iter().map(finish).collect();
    let expected: Vec<String> = (0..6).map(|k| format!("img-{k}")).collect();
    assert_eq!(imported_ids(&reports), expected);
    for r in &reports {
        assert_eq!(r["imported"], 2, "{r}");
        assert_eq!(r["other_shard"], 4);
    }
    assert_eq!(sim_images(&state).len(), 6);
}

#[test]
fn overlapping_runs_are_kept_apart_by_claims_in_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    let m = manifest(dir.path(), 4, "");
    // Two unsharded processes with journals of their own: only the bucket's claims stop
    // them from importing the same rows.
    let wait = [
        "--in-flight",
        "2",
        "--wait-for-others",
        "--wait-interval",
        "0.2",
    ];
    let a = batch_process(&sim, dir.path(), &m, &wait, "a");
    let b = batch_process(&sim, dir.path(), &m, &wait, "b");
    let reports = [finish(a), finish(b)];
    let expected: Vec<String> = (0..4).map(|k| format!("img-{k}")).collect();
    assert_eq!(imported_ids(&reports), expected, "{reports:?}");
    for (id, _) in statuses(&reports[0]) {
        let s: Vec<String> = reports
            .iter()
            .map(|r| statuses(r).into_iter().find(|(i, _)| *i == id).unwrap().1)
            .collect();
        assert!(
            s.iter().filter(|x| *x == "imported").count() == 1
                && s.iter()
                    .all(|x| ["imported", "already_imported"].contains(&x.as_str())),
            "{id}: {s:?}"
        );
    }
    assert_eq!(sim_images(&state).len(), 4);
}

#[test]
fn packer_manifest_artifacts_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = packer_args(dir.path());
    args.push("--json".into());
    args.extend(sandbox_args(dir.path()));
    let run = imgport_in(dir.path(), &args);
    run.expect_code(0);
    let r = run.json();
    // Only the last run's build; its checksum file is no disk.
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!(rows[0]["status"], "imported");
    assert_eq!(rows[0]["result"]["image_name"], "web");
    assert_eq!(rows[0]["result"]["disks"].as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["result"]["status"], "Available");
}

#[test]
fn packer_stopped_by_sigterm_says_so_and_the_same_command_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = packer_args(dir.path());
    args.extend(sandbox_args_importing_for(dir.path(), "4"));
    let child = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args(&args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The emulated import takes 4 s: the signal lands while the row is still at work.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stop_and_expect_resume_hint(child, "TERM");
    args.push("--json".into());
    let run = imgport_in(dir.path(), &args);
    run.expect_code(0);
    let r = run.json();
    let row = &r["rows"][0];
    assert!(
        row["status"] == "imported" || row["status"] == "already_imported",
        "{r}"
    );
    assert_eq!(row["result"]["status"], "Available", "{r}");
    assert_eq!(
        sim_images(&dir.path().join("sandbox/ecs")).len(),
        1,
        "one image, {r}"
    );
}

/// Sends `signal` (`INT`, `TERM`) to a running `batch` or `packer` and expects exit 130 with
/// the hint that the same command resumes.
fn stop_and_expect_resume_hint(child: Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
}

/// `imgport packer` over a manifest of two Packer runs whose last one built `web` from a
/// test disk, to be imported (the disk has no OS) into `BUCKET`.
fn packer_args(dir: &Path) -> Vec<String> {
    let src = image("content.qcow2");
    let m = dir.join("packer-manifest.json");
    let text = serde_json::json!({
        "builds": [
            {"name": "old", "builder_type": "qemu", "packer_run_uuid": "run-1",
             "files": [{"name": src.display().to_string(), "size": 1}]},
            {"name": "web", "builder_type": "qemu", "packer_run_uuid": "run-2",
             "files": [{"name": src.display().to_string(), "size": 1},
                       {"name": "SHA256SUMS.sha256", "size": 1}]}
        ],
        "last_run_uuid": "run-2"
    });
    std::fs::write(&m, text.to_string()).unwrap();
    [
        "packer",
        "--manifest",
        &m.display().to_string(),
        "--last-run-only",
        "--region",
        "cn-hangzhou",
        "--bucket",
        BUCKET,
        "--allow-no-os",
    ]
    .map(String::from)
    .to_vec()
}

/// `batch` against `sim` as `machine`, with more flags; not yet waited for.
pub(crate) fn batch_as(
    sim: &Sim,
    dir: &Path,
    manifest: &Path,
    machine: &str,
    extra: &[&str],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("batch")
        .arg(manifest)
        .args([
            "--path-style",
            "--ecs-endpoint",
            &sim.ecs,
            "--oss-endpoint",
            &sim.s3,
        ])
        .args(["--poll-interval", "0.2", "--journal"])
        .arg(dir.join(format!("uploads-{machine}")))
        .arg("--batch-journal")
        .arg(dir.join(format!("journal-{machine}.jsonl")))
        .args(extra)
        .env("IMGPORT_HOST_ID", machine)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_sim_keys(&mut cmd).spawn().unwrap()
}

/// Waits until some claim in the bucket names `machine`.
fn wait_for_claim(state: &Path, machine: &str) {
    let root = state.join("s3").join(BUCKET).join("imgport-state");
    let needle = format!("\"machine\":\"{machine}\"");
    for _ in 0..1000 {
        if files_under(&root).iter().any(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("claim-"))
                && std::fs::read_to_string(f).is_ok_and(|t| t.contains(&needle))
        }) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{machine} never claimed a row");
}

fn ended(child: Child) -> (i32, serde_json::Value, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report: {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn records_of_one_destination_never_satisfy_another() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 2, "");
    // The journal `batch_as` gives machine m0, shared by both runs.
    let journal = dir.path().join("journal-m0.jsonl");
    let mut args = vec![
        "batch".to_string(),
        m.display().to_string(),
        "--json".into(),
        "--batch-journal".into(),
        journal.display().to_string(),
    ];
    args.extend(sandbox_args(dir.path()));
    let first = imgport_in(dir.path(), &args);
    first.expect_code(0);
    assert_eq!(first.json()["imported"], 2);
    // The same manifest and journal against another endpoint: nothing there is imported yet.
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    let (code, r, stderr) = ended(batch_as(&sim, dir.path(), &m, "m0", &["--json"]));
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["imported"], 2, "{r}");
    assert_eq!(r["already_imported"], 0, "{r}");
    assert_eq!(sim_images(&state).len(), 2);
    for row in r["rows"].as_array().unwrap() {
        assert!(
            row["destination"].as_str().unwrap().contains(&sim.s3),
            "{row}"
        );
    }
    // Back at the sandbox, its own records still hold and are confirmed there.
    let again = imgport_in(dir.path(), &args);
    again.expect_code(0);
    assert_eq!(again.json()["already_imported"], 2, "{}", again.json());
}

#[test]
fn a_flag_wins_over_the_row_which_wins_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let text = format!(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"nowhere\"\nkey_prefix = \"d/\"\n\
         allow_no_os = true\n\n\
         [[image]]\nname = \"alpha\"\nfiles = [\"{0}\"]\n\n\
         [[image]]\nname = \"beta\"\nfiles = [\"{0}\"]\nkey_prefix = \"r/\"\nbucket = \"elsewhere\"\n",
        src.display()
    );
    let m = dir.path().join("precedence.toml");
    std::fs::write(&m, text).unwrap();
    // Each run with a sandbox and journal of its own, so none finds another's records.
    let run = |name: &str, extra: &[&str]| {
        let own = dir.path().join(name);
        let mut args = vec![
            "batch".to_string(),
            m.display().to_string(),
            "--bucket".into(),
            BUCKET.into(),
            "--no-dedupe".into(),
            "--batch-journal".into(),
            own.join("batch.jsonl").display().to_string(),
        ];
        args.extend(sandbox_args(&own));
        args.extend(extra.iter().map(|s| s.to_string()));
        let r = imgport_in(dir.path(), &args);
        r.expect_code(0);
        r
    };
    // Human output: the override of row 2's own bucket is said, not silent.
    let human = run("human", &[]);
    assert!(
        human
            .stderr()
            .contains("--bucket images overrides the bucket of rows 2"),
        "{}",
        human.stderr()
    );
    let r = run("json", &["--json"]).json();
    let disk = |n: usize| r["rows"][n]["result"]["disks"][0].clone();
    // --bucket over both the row's and [defaults]'; the row's key_prefix over [defaults]'.
    assert_eq!(disk(0)["bucket"], BUCKET, "{r}");
    assert_eq!(disk(1)["bucket"], BUCKET, "{r}");
    assert!(
        disk(0)["key"].as_str().unwrap().starts_with("d/alpha/"),
        "{r}"
    );
    assert!(
        disk(1)["key"].as_str().unwrap().starts_with("r/beta/"),
        "{r}"
    );
    // And --key-prefix over both.
    let r = run("prefix", &["--json", "--key-prefix", "f/"]).json();
    for n in 0..2 {
        let key = r["rows"][n]["result"]["disks"][0]["key"].as_str().unwrap();
        assert!(key.starts_with("f/"), "{r}");
    }
}

#[test]
fn a_system_disk_without_an_os_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // A text file named like a qcow2 image: inspection finds a raw disk with no OS.
    let fake = dir.path().join("fake.qcow2");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"), &fake).unwrap();
    let text = format!(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"{BUCKET}\"\n\n\
         [[image]]\nname = \"fake\"\nfiles = [\"{}\"]\n",
        fake.display()
    );
    let m = dir.path().join("fake.toml");
    std::fs::write(&m, text).unwrap();
    let mut args = vec![
        "batch".to_string(),
        m.display().to_string(),
        "--json".into(),
    ];
    args.extend(sandbox_args(dir.path()));
    let refused = imgport_in(dir.path(), &args);
    refused.expect_code(3);
    let r = refused.json();
    assert_eq!(r["rows"][0]["status"], "failed", "{r}");
    assert!(
        r["rows"][0]["error"]
            .as_str()
            .unwrap()
            .contains("guest.no_os"),
        "{r}"
    );
    let mut import = vec![
        "import".to_string(),
        fake.display().to_string(),
        "--region".into(),
        "cn-hangzhou".into(),
        "--bucket".into(),
        BUCKET.into(),
    ];
    import.extend(sandbox_args(dir.path()));
    let refused = imgport_in(dir.path(), &import);
    refused.expect_code(3);
    assert!(
        refused.stderr().contains("guest.no_os"),
        "{}",
        refused.stderr()
    );
    // Said so by the user: imported.
    args.push("--allow-no-os".into());
    imgport_in(dir.path(), &args).expect_code(0);
}

#[test]
fn rows_held_by_a_live_process_are_in_progress_elsewhere_and_status_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    // Slow parts keep the first process busy while the second looks.
    let sim = start_sim_with(&state, BUCKET, &["--s3-fault", "0:delay=300:1000000"]);
    let m = manifest(dir.path(), 1, "");
    let slow = ["--json", "--part-size", "128K", "--concurrency", "1"];
    let a = batch_as(&sim, dir.path(), &m, "ma", &slow);
    wait_for_claim(&state, "ma");
    let (code, r, stderr) = ended(batch_as(&sim, dir.path(), &m, "mb", &["--json"]));
    assert_eq!(code, 75, "{r}\n{stderr}");
    assert_eq!(r["in_progress_elsewhere"], 1, "{r}");
    assert_eq!(r["imported"], 0, "{r}");
    assert!(
        r["rows"][0]["claimed_by"].as_str().unwrap().contains("ma"),
        "{r}"
    );
    let status = batch_as(&sim, dir.path(), &m, "mb", &["--status", "--json"]);
    let out = status.wait_with_output().unwrap();
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0]["state"], "in_progress", "{s}");
    let (code, r, stderr) = ended(a);
    assert_eq!(code, 0, "{r}\n{stderr}");
    let (code, r, _) = ended(batch_as(&sim, dir.path(), &m, "mb", &["--json"]));
    assert_eq!((code, r["already_imported"].as_u64()), (0, Some(1)), "{r}");
    let status = batch_as(&sim, dir.path(), &m, "mb", &["--status", "--json"]);
    let s: serde_json::Value =
        serde_json::from_slice(&status.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(s[0]["state"], "available", "{s}");
}

#[test]
fn a_lease_lapsed_while_its_holder_works_on_makes_no_second_image() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim_with(&state, BUCKET, &["--s3-fault", "0:delay=200:1000000"]);
    let m = manifest(dir.path(), 2, "");
    // The first holder is cut off: it never renews its one-second lease, and works on.
    let cut_off = [
        "--json",
        "--no-dedupe",
        "--part-size",
        "128K",
        "--concurrency",
        "1",
        "--lease-seconds",
        "1",
        "--lease-renew-seconds",
        "100000",
    ];
    let a = batch_as(&sim, dir.path(), &m, "ma", &cut_off);
    wait_for_claim(&state, "ma");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // Another machine takes the lapsed rows over and imports them too, a little behind.
    let mut behind = cut_off.to_vec();
    behind.truncate(6);
    let b = batch_as(&sim, dir.path(), &m, "mb", &behind);
    let (code_b, rb, err_b) = ended(b);
    let (code_a, ra, err_a) = ended(a);
    assert_eq!(code_a, 0, "{ra}\n{err_a}");
    assert_eq!(code_b, 0, "{rb}\n{err_b}");
    // Both worked on the rows: the second took the lapsed claims over.
    wait_for_claim(&state, "mb");
    // Whoever finished second either saw its upload aborted by the first (which drops the
    // uploads every holder named) and found the row done, or reached ImportImage, whose
    // ClientToken (same plan, same bytes) returned the first's image. Either way: one image
    // per row, both reports name it, and both say done.
    assert_eq!(sim_images(&state).len(), 2, "{ra}\n{rb}");
    for r in [&ra, &rb] {
        assert_eq!(
            r["imported"].as_u64().unwrap() + r["already_imported"].as_u64().unwrap(),
            2,
            "{r}"
        );
    }
    for n in 0..2 {
        assert_eq!(
            ra["rows"][n]["image_id"], rb["rows"][n]["image_id"],
            "{ra}\n{rb}"
        );
    }
}

#[test]
fn an_interrupted_batch_says_how_to_resume_and_the_rerun_takes_its_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim_with(&state, BUCKET, &["--s3-fault", "0:delay=200:1000000"]);
    let m = manifest(dir.path(), 2, "");
    let slow = ["--part-size", "128K", "--concurrency", "1", "--no-dedupe"];
    let a = batch_as(&sim, dir.path(), &m, "m0", &slow);
    wait_for_claim(&state, "m0");
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop_and_expect_resume_hint(a, "INT");
    // The same machine takes its dead process's claims back at once.
    let mut json = vec!["--json"];
    json.extend(slow);
    let (code, r, stderr) = ended(batch_as(&sim, dir.path(), &m, "m0", &json));
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["imported"], 2, "{r}");
    assert_eq!(sim_images(&state).len(), 2);
}

//! `imgport batch` and `imgport packer`: rows imported and summarised, a refused row counted
//! without stopping the others, a re-run skips finished rows, rows added while a far link
//! takes more, shards from `--shard` and from
//! Kubernetes/Slurm variables, and several processes against one emulator (`imgport sim`)
//! import every image exactly once — with disjoint shards and with overlapping runs whose
//! claims in the bucket keep them apart.

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
    let mut text =
        format!("[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"{BUCKET}\"\nsystem_disk = 1\n\n");
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
    let peak = changes
        .iter()
        .filter_map(|c| c["to"].as_u64())
        .max()
        .unwrap();
    // Each added row paid off: at least two were added.
    assert!(peak >= start + 2, "{f}");
    assert!(peak <= f["max"].as_u64().unwrap(), "{f}");
    assert!(changes.iter().all(|c| c["why"] != "step_back"), "{f}");
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
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
    Command::new(env!("CARGO_BIN_EXE_imgport"))
        .arg("batch")
        .arg(manifest)
        .args([
            "--json",
            "--path-style",
            "--ecs-endpoint",
            &sim.ecs,
            "--oss-endpoint",
            &sim.s3,
        ])
        .args(["--poll-interval", "0.2", "--journal"])
        .arg(dir.join(format!("uploads-{tag}")))
        .arg("--batch-journal")
        .arg(dir.join(format!("journal-{tag}.jsonl")))
        .args(extra)
        .env(
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            imgport::sim::server::TEST_ACCESS_KEY_ID,
        )
        .env(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            imgport::sim::server::TEST_ACCESS_KEY_SECRET,
        )
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
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

/// Images the emulator holds, from its state file.
fn sim_images(state: &Path) -> usize {
    let text = std::fs::read_to_string(state.join("ecs-state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["images"].as_object().map_or(0, |m| m.len())
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
    assert_eq!(sim_images(&state), 6);
}

#[test]
fn overlapping_runs_are_kept_apart_by_claims_in_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim(&state, BUCKET);
    let m = manifest(dir.path(), 4, "");
    // Two unsharded processes with journals of their own: only the bucket's claims stop
    // them from importing the same rows.
    let a = batch_process(&sim, dir.path(), &m, &["--in-flight", "2"], "a");
    let b = batch_process(&sim, dir.path(), &m, &["--in-flight", "2"], "b");
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
                    .all(|x| ["imported", "claimed_elsewhere", "already_imported"]
                        .contains(&x.as_str())),
            "{id}: {s:?}"
        );
    }
    assert_eq!(sim_images(&state), 4);
}

#[test]
fn packer_manifest_artifacts_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let m = dir.path().join("packer-manifest.json");
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
    let mut args = vec![
        "packer".to_string(),
        "--manifest".into(),
        m.display().to_string(),
        "--last-run-only".into(),
        "--region".into(),
        "cn-hangzhou".into(),
        "--bucket".into(),
        BUCKET.into(),
        "--json".into(),
    ];
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

//! Uploads over a far link: an import through the emulator's delaying proxy
//! (`imgport sim --wan-rtt-ms`) completes, stores the source's bytes, and reports the parts in
//! flight it chose within its cap, in its JSON and its `-v` log. How fast it goes is
//! scripts/bench-wan.sh's business, not a test's.

use std::process::{Command, Stdio};

use crate::util::*;

const BUCKET: &str = "images";

#[test]
fn an_import_over_a_far_link_completes_and_reports_its_parts_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim");
    let sim = start_sim_with(&state, BUCKET, &["--wan-rtt-ms", "20"]);
    let src = image("content.raw");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("-v")
        .arg("import")
        .arg(&src)
        .args([
            "--region",
            "cn-hangzhou",
            "--bucket",
            BUCKET,
            "--name",
            "far",
        ])
        .args(["--system-disk", "1", "--allow-no-os", "--no-dedupe"])
        // 64 MiB in 1 MiB parts: enough finished parts for the pacer to measure.
        .args(["--to", "raw", "--part-size", "1M", "--concurrency", "16"])
        .args(["--json", "--path-style", "--poll-interval", "0.2"])
        .args(["--ecs-endpoint", &sim.ecs, "--oss-endpoint", &sim.s3])
        .arg("--journal")
        .arg(dir.path().join("uploads"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_sim_keys(&mut cmd);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "Available");
    let disk = &r["disks"][0];
    let key = disk["key"].as_str().unwrap();
    assert_eq!(
        sha256sum(&state.join("s3").join(BUCKET).join(key)),
        sha256sum(&src)
    );
    let f = &disk["in_flight"];
    assert_eq!(f["max"], 16, "{f}");
    // 40 MiB of 1 MiB parts at the start, within the cap.
    assert_eq!(f["start"], 16, "{f}");
    let chosen = f["chosen"].as_u64().unwrap();
    assert!((1..=16).contains(&chosen), "{f}");
    for c in f["changes"].as_array().unwrap() {
        assert!((1..=16).contains(&c["to"].as_u64().unwrap()), "{f}");
    }
    // The proxy was in the path: no part came back sooner than a round trip.
    assert!(f["part_seconds_median"].as_f64().unwrap() >= 0.02, "{f}");
    let line = err
        .lines()
        .find(|l| l.contains("disk 1: parts in flight: "))
        .unwrap_or_else(|| panic!("no parts-in-flight line in:\n{err}"));
    assert!(
        line.contains(&format!(
            "{chosen} chosen from the measured rate (start 16, cap 16"
        )),
        "{line}"
    );
}

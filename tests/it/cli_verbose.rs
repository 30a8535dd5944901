//! `-v`: one line per stage event of an import (inspect, plan, upload start and resume with
//! the parts already there, part milestones, Complete, ImportImage, each status change,
//! finish), none without it, and no colour codes when stderr is not a terminal.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// `imgport [-v] import content.raw --sandbox` in `dir` (5 MiB parts, one at a time).
fn import(dir: &Path, verbose: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    if verbose {
        cmd.arg("-v");
    }
    cmd.arg("import")
        .arg(image("content.raw"))
        .args(["--region", "cn-hangzhou", "--bucket", "sandbox"])
        .args(["--to", "raw", "--part-size", "5M", "--concurrency", "1"])
        .args(["--no-dedupe", "--allow-no-os", "--json", "--sandbox"])
        .args(["--sandbox-import-seconds", "1", "--sandbox-dir"])
        .arg(dir.join("sandbox"))
        .arg("--journal")
        .arg(dir.join("uploads"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn verbose_import_logs_every_stage_once_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(&mut import(dir.path(), true));
    for event in [
        "inspected ",
        "plan: image ",
        "plan: disk 1 ",
        "disk 1: uploading ",
        "parts done (",
        "disk 1: upload complete: oss://sandbox/",
        "ImportImage: 1 disk(s)",
        "ImportImage: image m-",
        ": Creating",
        ": Available",
        "done: image m-",
    ] {
        assert!(err.contains(event), "no {event:?} in:\n{err}");
    }
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.iter().all(|l| l.contains(" INFO ")), "{err}");
    // content.raw is 64 MiB: 13 parts, a milestone each tenth.
    let milestones = lines.iter().filter(|l| l.contains("parts done")).count();
    assert_eq!(milestones, 10, "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err}");

    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(&mut import(dir.path(), false));
    assert!(err.is_empty(), "without -v: {err}");
}

#[test]
fn verbose_resume_says_how_many_parts_are_there_already() {
    // The kill must land during the upload; a run that finished first is tried again.
    for attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("uploads");
        let mut child = import(dir.path(), false).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while journaled_parts(&journal) < 2 && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let journaled = journaled_parts(&journal);
        if journaled < 2 {
            eprintln!("attempt {attempt}: the run ended before the kill; again");
            continue;
        }
        let err = stderr_of(&mut import(dir.path(), true));
        let resumed = err
            .lines()
            .find(|l| l.contains("resuming upload"))
            .unwrap_or_else(|| panic!("no resume line:\n{err}"));
        let present: usize = resumed
            .split(": ")
            .last()
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {resumed:?}"));
        assert!(present >= 2, "{resumed} ({journaled} journaled)");
        assert!(resumed.contains("of 13 parts"), "{resumed}");
        assert!(
            err.contains(&format!("({} sent, {present} there already)", 13 - present)),
            "{err}"
        );
        return;
    }
    panic!("every run ended before it could be killed");
}

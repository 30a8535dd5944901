//! The RAM import role (docs/CLOUD-API.md §RAM) through the binary against the sandbox: an
//! account without the role fails before anything is uploaded and says what to do;
//! `--create-role` creates it and the import ends `Available`; the plan shows the check.

use std::path::Path;

use crate::util::*;

const BUCKET: &str = "sandbox";

fn import_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["import".into()];
    args.push(image("content.raw").display().to_string());
    for a in [
        "--region",
        "cn-hangzhou",
        "--bucket",
        BUCKET,
        "--sandbox",
        "--json",
        "--allow-no-os",
        "--no-dedupe",
        "--sandbox-import-seconds",
        "0.5",
    ] {
        args.push(a.into());
    }
    args.push("--sandbox-dir".into());
    args.push(dir.join("sandbox").display().to_string());
    args.push("--journal".into());
    args.push(dir.join("journal").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Files the sandbox's S3 server holds in the bucket (uploads in progress included).
fn objects(dir: &Path) -> usize {
    let root = dir.join("sandbox/s3").join(BUCKET);
    walk(&root)
}

fn walk(p: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { walk(&path) } else { 1 }
        })
        .sum()
}

#[test]
fn a_missing_role_fails_before_the_upload_and_create_role_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &["--sandbox-no-import-role"]),
    );
    run.expect_code(4);
    let err = run.stderr();
    assert!(
        err.contains("AliyunECSImageImportDefaultRole does not exist")
            && err.contains("--create-role"),
        "{err}"
    );
    assert_eq!(objects(dir.path()), 0, "nothing may be uploaded: {err}");

    // The same account (sandbox directory) with --create-role: created, then imported.
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &["--sandbox-no-import-role", "--create-role"]),
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    assert_eq!(r["import_role"]["status"], "created", "{r}");
    assert_eq!(r["plan"]["import_role"]["create"], true, "{r}");

    // The role now exists: the next import finds it ready.
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &["--sandbox-no-import-role"]),
    );
    run.expect_code(0);
    assert_eq!(run.json()["import_role"]["status"], "ready");
}

#[test]
fn a_named_role_is_checked_and_its_absence_explained() {
    let dir = tempfile::tempdir().unwrap();
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &["--role-name", "ImgportImportRole"]),
    );
    run.expect_code(4);
    let err = run.stderr();
    assert!(
        err.contains("RAM role ImgportImportRole does not exist"),
        "{err}"
    );
    assert_eq!(objects(dir.path()), 0, "{err}");
}

#[test]
fn the_plan_shows_the_role_check_and_its_creation() {
    let run = imgport([
        "plan",
        "--json",
        image("content.raw").to_str().unwrap(),
        "--region",
        "cn-hangzhou",
        "--bucket",
        BUCKET,
        "--allow-no-os",
        "--create-role",
    ]);
    run.expect_code(0);
    let r = run.json();
    assert_eq!(
        r["plan"]["import_role"],
        serde_json::json!({"role_name": "AliyunECSImageImportDefaultRole", "create": true}),
        "{r}"
    );
    let ram: Vec<String> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["service"] == "ram")
        .map(|q| q["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ram,
        [
            "GetRole",
            "ListPoliciesForRole",
            "CreateRole",
            "AttachPolicyToRole"
        ]
    );
}

//! Messages a user reads: every error names the file once and never a temporary name, a
//! refused image still gets its `--html`/`--markdown` report, a warning does not ask for what
//! the plan already does, and every sandbox run hands out its own image id. (Local checks of
//! `--region` and `--bucket` are in `cli_help`.)

use std::path::Path;

use crate::util::*;

const PLAN: [&str; 5] = ["plan", "--region", "cn-hangzhou", "--bucket", "my-bucket"];

#[test]
fn a_missing_file_is_named_once_by_every_command() {
    let missing = "/nonexistent-imgport-dir/nope.qcow2";
    let mut plan: Vec<&str> = PLAN.to_vec();
    plan.push(missing);
    for args in [
        vec!["inspect", missing],
        vec!["checksum", missing],
        vec!["convert", missing, "out.raw", "--to", "raw"],
        plan,
    ] {
        let run = imgport(&args);
        run.expect_code(1);
        let err = run.stderr();
        assert_eq!(err.matches("nope.qcow2").count(), 1, "{}: {err}", run.cmd);
        assert!(err.contains("cannot read"), "{}: {err}", run.cmd);
    }
}

#[test]
fn converting_into_a_missing_directory_names_the_destination_not_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("missing/out.raw");
    let run = imgport_convert(&image("content.qcow2"), &dst, "raw");
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.contains(&dst.display().to_string()), "{err}");
    assert_eq!(err.matches("out.raw").count(), 1, "{err}");
    assert!(
        !err.contains(".imgport-") && !err.contains("/.out.raw"),
        "{err}"
    );
    assert!(!dst.exists());
}

/// `imgport plan FILE --html H --markdown M`, in `dir`.
fn plan_reports(dir: &Path, file: &Path, extra: &[&str]) -> (Run, String, String) {
    let (html, md) = (dir.join("report.html"), dir.join("report.markdown"));
    let mut args: Vec<std::ffi::OsString> = PLAN.iter().map(Into::into).collect();
    args.push(file.into());
    for a in ["--html".as_ref(), html.as_os_str(), "--markdown".as_ref()] {
        args.push(a.into());
    }
    args.push(md.clone().into());
    args.extend(extra.iter().map(Into::into));
    let run = imgport_in(dir, &args);
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", p.display(), run.stderr()))
    };
    let (h, m) = (read(&html), read(&md));
    (run, h, m)
}

#[test]
fn a_refused_image_still_gets_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = image("vhd-badsum.vhd");
    let (run, html, md) = plan_reports(dir.path(), &file, &[]);
    run.expect_code(3);
    for page in [&html, &md] {
        assert!(page.contains("refused"), "{page}");
        assert!(page.contains("vhd.footer_checksum"), "{page}");
        assert!(page.contains("vhd-badsum.vhd"), "{page}");
    }
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"));
    // Nothing else was left in the directory (no temporary report).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "report.markdown"]);
}

#[test]
fn a_plan_refused_after_inspection_reports_every_disk_and_what_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    // A disk with partitions and no operating system: inspection passes it, the plan refuses
    // it as a system disk (exit 3). A disk image size below the disk is a plan to correct
    // (exit 2). Both reports carry the disk's container verdict and its guest findings.
    for (extra, code, why) in [
        (&[][..], 3, "guest.no_os"),
        (
            &["--allow-no-os", "--disk-image-size", "2=5"][..],
            2,
            "guest.no_os",
        ),
    ] {
        let file = image("content.qcow2");
        let (run, html, md) = plan_reports(dir.path(), &file, extra);
        run.expect_code(code);
        for page in [&html, &md] {
            assert!(page.contains("refused"), "{page}");
            assert!(page.contains("content.qcow2"), "{page}");
            assert!(page.contains(why), "{extra:?}: {page}");
        }
        let mut args: Vec<&str> = PLAN.to_vec();
        let path = file.display().to_string();
        args.push(&path);
        args.extend(extra);
        args.push("--json");
        let run = imgport(&args);
        run.expect_code(code);
        let v: serde_json::Value =
            serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()));
        let disk = &v["disks"][0];
        assert_eq!(disk["format"], "qcow2", "{v}");
        assert!(
            disk["guest"]["partitions"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{v}"
        );
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    }
}

#[test]
fn the_vhd_size_warning_does_not_ask_for_the_conversion_the_plan_makes() {
    let dir = tempfile::tempdir().unwrap();
    let (run, html, md) = plan_reports(dir.path(), &image("content.vhd"), &["--allow-no-os"]);
    run.expect_code(0);
    for page in [&html, &md] {
        assert!(page.contains("vhd.ecs_incorrect_size"), "{page}");
        assert!(page.contains("this plan converts it"), "{page}");
        assert!(!page.contains("so convert it"), "{page}");
    }
    // Inspection alone, which plans nothing, still gives the advice.
    let (run, r) = inspect_one(&image("content.vhd"), &[]);
    run.expect_code(0);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "vhd.ecs_incorrect_size")
        .expect("the finding");
    assert_eq!(f["severity"], "warning");
}

#[test]
fn every_sandbox_run_returns_its_own_image_id() {
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let run = imgport([
                "import",
                image("content.qcow2").to_str().unwrap(),
                "--region",
                "cn-hangzhou",
                "--bucket",
                "sandbox",
                "--sandbox",
                "--sandbox-import-seconds",
                "0",
                "--allow-no-os",
                "--json",
            ]);
            run.expect_code(0);
            run.json()["image_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(ids[0].starts_with("m-"), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}

//! `imgport inspect` at the container level: detection, sizes against qemu-img, refusals.

use crate::util::*;

#[test]
fn raw_sizes_match_qemu_img() {
    for s in ["7M", "128M", "129M", "40G"] {
        let path = image(&format!("raw-{s}.raw"));
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        let q = qemu_info(&path, Some("raw"));
        assert_eq!(r["format"], "raw");
        assert_eq!(r["virtual_size"], q["virtual-size"], "{}", path.display());
        assert_eq!(r["safe"], true);
    }
}

#[test]
fn refused_containers_are_named_with_a_hint() {
    for (file, what) in [
        ("vdi-7M.vdi", "vdi"),
        ("qed.qed", "qed"),
        ("plain.iso", "iso"),
        ("luks.luks", "luks"),
        ("archive.qcow2.gz", "gzip"),
        ("archive.qcow2.xz", "xz"),
        ("archive.qcow2.zst", "zstd"),
        ("archive.tar", "tar"),
        ("qcow1.qcow", "qcow"),
    ] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(3);
        assert_eq!(r["safe"], false, "{file}");
        assert_eq!(r["recognised_as"], what, "{file}");
        let codes = finding_codes(&r);
        assert!(
            codes.contains(&format!("format.unsupported.{what}")),
            "{file}: {codes:?}"
        );
        let msg = r["findings"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("offset"),
            "{file}: message must name the offset: {msg}"
        );
    }
}

#[test]
fn format_confusion_is_refused() {
    for (file, parts) in [
        ("iso-qcow2.iso", ["iso", "qcow2"]),
        ("mbr-qcow2.raw", ["qcow2", "mbr"]),
    ] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(3);
        assert!(
            finding_codes(&r).contains(&"format.confusion".to_string()),
            "{file}"
        );
        let what = r["recognised_as"].as_str().unwrap();
        for p in parts {
            assert!(what.contains(p), "{file}: {what}");
        }
    }
}

#[test]
fn declared_format_must_match() {
    let (run, r) = inspect_one(&image("raw-7M.raw"), &["--declared-format", "raw"]);
    run.expect_code(0);
    assert_eq!(r["safe"], true);
    let (run, r) = inspect_one(&image("qcow2-7M.qcow2"), &["--declared-format", "raw"]);
    run.expect_code(3);
    assert!(finding_codes(&r).contains(&"format.declared_mismatch".to_string()));
    let (run, _) = inspect_one(&image("raw-7M.raw"), &["--declared-format", "qcow2"]);
    run.expect_code(3);
}

#[test]
fn partitioned_raw_and_whole_disk_file_systems_are_raw() {
    for file in [
        "gpt.raw",
        "gpt-hybrid.raw",
        "mbr.raw",
        "whole-ext4.raw",
        "whole-fat32.raw",
        "gpt-oslo.raw",
        "content.raw",
    ] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(0);
        assert_eq!(r["format"], "raw", "{file}");
    }
}

#[test]
fn text_file_is_raw_and_usage_errors_exit_2() {
    let (run, r) = inspect_one(&image("text-file.txt"), &[]);
    run.expect_code(0);
    assert_eq!(r["format"], "raw");
    imgport(["inspect"]).expect_code(2);
    imgport(["inspect", "--declared-format", "vdi", "x"]).expect_code(2);
}

#[test]
fn missing_file_exits_1_and_names_it() {
    let run = imgport(["inspect", "/nonexistent/disk.qcow2"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("/nonexistent/disk.qcow2"),
        "{}",
        run.stderr()
    );
}

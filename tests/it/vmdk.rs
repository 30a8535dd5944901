//! VMDK as an input (scripts/testdata/vmdk.sh): every subformat converts to RAW, QCOW2 and
//! VHD bytes `qemu-img compare` calls equal to the source disk, with the source's content
//! digest; split extents read as qemu-img reads them; the plan converts to qcow2; `--to vmdk`
//! is refused; a streamOptimized disk imports into the sandbox.

use std::path::Path;

use crate::util::*;

/// The images of one small disk (`vmdk/src.raw`), one per subformat.
const SUBFORMATS: [(&str, &str); 6] = [
    ("monolithicSparse.vmdk", "monolithicSparse"),
    ("streamOptimized.vmdk", "streamOptimized"),
    ("gd-at-end.vmdk", "streamOptimized"),
    ("monolithicFlat.vmdk", "monolithicFlat"),
    ("twoGbMaxExtentSparse.vmdk", "twoGbMaxExtentSparse"),
    ("twoGbMaxExtentFlat.vmdk", "twoGbMaxExtentFlat"),
];

/// Output formats and qemu-img's name for each.
const OUTPUTS: [(&str, &str); 3] = [("raw", "raw"), ("qcow2", "qcow2"), ("vhd", "vpc")];

fn vmdk(name: &str) -> std::path::PathBuf {
    image(&format!("vmdk/{name}"))
}

/// `qemu-img compare` of `a` and `b` (a VHD may be longer: its extra bytes must be zeros).
fn compare(a: &Path, afmt: &str, b: &Path, bfmt: &str) {
    sh(&format!(
        "qemu-img compare -f {afmt} -F {bfmt} '{}' '{}'",
        a.display(),
        b.display()
    ));
}

fn content_digest(file: &Path) -> String {
    let run = imgport([
        "checksum".as_ref(),
        file.as_os_str(),
        "--no-sha256".as_ref(),
        "--json".as_ref(),
    ]);
    run.expect_code(0);
    run.json()["content"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no content digest: {}", run.stdout()))
        .to_string()
}

#[test]
fn every_subformat_converts_to_the_source_disk_with_its_content_digest() {
    let src = vmdk("src.raw");
    let expected = imgport_testdata::reference_content_digest(&std::fs::read(&src).unwrap());
    assert_eq!(content_digest(&src), expected);
    let dir = tempfile::tempdir().unwrap();
    for (name, sub) in SUBFORMATS {
        let path = vmdk(name);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        assert_eq!(r["format"], "vmdk", "{name}");
        assert_eq!(r["subformat"], sub, "{name}");
        assert_eq!(
            r["virtual_size"],
            qemu_info(&path, Some("vmdk"))["virtual-size"],
            "{name}"
        );
        assert_eq!(content_digest(&path), expected, "{name}");
        for (to, qfmt) in OUTPUTS {
            let out = dir.path().join(format!("out.{to}"));
            let run = imgport([
                "convert".as_ref(),
                path.as_os_str(),
                out.as_os_str(),
                "--to".as_ref(),
                to.as_ref(),
                "--json".as_ref(),
            ]);
            run.expect_code(0);
            let v = run.json();
            assert_eq!(v["content"]["digest"], expected.as_str(), "{name} -> {to}");
            compare(&src, "raw", &out, qfmt);
            std::fs::remove_file(&out).unwrap();
        }
    }
}

#[test]
fn split_extents_read_as_qemu_reads_them() {
    let raw = vmdk("big.raw");
    let expected = content_digest(&raw);
    let dir = tempfile::tempdir().unwrap();
    for name in ["big-sparse.vmdk", "big-flat.vmdk"] {
        let path = vmdk(name);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        assert_eq!(
            r["details"]["extents"].as_array().unwrap().len(),
            2,
            "{name}"
        );
        let out = dir.path().join("out.qcow2");
        imgport_convert(&path, &out, "qcow2").expect_code(0);
        compare(&path, "vmdk", &out, "qcow2");
        compare(&raw, "raw", &out, "qcow2");
        assert_eq!(content_digest(&path), expected, "{name}");
    }
}

#[test]
fn the_plan_converts_a_vmdk_to_qcow2() {
    let path = vmdk("streamOptimized.vmdk");
    let run = imgport([
        "plan",
        "--json",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "my-images",
        "--allow-no-os",
        path.to_str().unwrap(),
    ]);
    run.expect_code(0);
    let v = run.json();
    let disk = &v["plan"]["disks"][0];
    assert_eq!(disk["source_format"], "vmdk", "{disk}");
    assert_eq!(disk["output"]["value"], "qcow2", "{disk}");
    assert!(
        disk["object_key"].as_str().unwrap().ends_with(".qcow2"),
        "{disk}"
    );
    assert_params(
        &import_params(&v),
        &[("DiskDeviceMapping.1.Format", "QCOW2")],
    );
}

#[test]
fn vmdk_is_not_an_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.vmdk");
    let run = imgport_convert(&vmdk("streamOptimized.vmdk"), &out, "vmdk");
    run.expect_code(2);
    assert!(run.stderr().contains("--to"), "{}", run.stderr());
    assert!(!out.exists());
}

#[test]
fn a_stream_optimized_vmdk_imports_into_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let src = vmdk("streamOptimized.vmdk");
    let mut args: Vec<std::ffi::OsString> = vec!["import".into(), src.clone().into()];
    for a in [
        "--region",
        "cn-hangzhou",
        "--bucket",
        "sandbox",
        "--sandbox",
        "--json",
        "--allow-no-os",
        "--sandbox-import-seconds",
        "1",
    ] {
        args.push(a.into());
    }
    args.push("--sandbox-dir".into());
    args.push(dir.path().join("sandbox").into());
    args.push("--journal".into());
    args.push(dir.path().join("journal").into());
    let run = imgport_in(dir.path(), args);
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    let disk = &r["disks"][0];
    assert_eq!(disk["format"], "qcow2", "{r}");
    let obj = sandbox_object(dir.path(), "sandbox", disk["key"].as_str().unwrap());
    compare(&vmdk("src.raw"), "raw", &obj, "qcow2");
}

//! VHDX inputs (test-data part `vhdx`, made by `qemu-img convert -O vhdx`): every option that
//! changes the layout converts to raw, qcow2 and vhd with bytes `qemu-img compare` finds equal
//! to the source and the source's content digest; sizes match `qemu-img info`; the hostile
//! variants are refused by their rule; `--to vhdx` is refused; an import reaches Available.

use std::path::{Path, PathBuf};

use crate::util::*;

/// An image of the `vhdx` part.
fn vhdx(name: &str) -> PathBuf {
    image(&format!("vhdx/{name}"))
}

/// Files of the part made from `src.raw`, whether qemu can open them (it cannot open
/// 4096-byte logical sectors), and their subformat.
const FROM_SRC: [(&str, bool, &str); 7] = [
    ("dynamic.vhdx", true, "dynamic"),
    ("fixed.vhdx", true, "fixed"),
    ("block1m.vhdx", true, "dynamic"),
    ("block32m.vhdx", true, "dynamic"),
    ("log8m.vhdx", true, "dynamic"),
    ("sector4k.vhdx", false, "dynamic"),
    ("fixed4k.vhdx", false, "fixed"),
];

fn qemu_compare(a: &Path, a_fmt: &str, b: &Path, b_fmt: &str) {
    sh(&format!(
        "qemu-img compare -f {a_fmt} -F {b_fmt} '{}' '{}'",
        a.display(),
        b.display()
    ));
}

fn convert_json(src: &Path, dst: &Path, to: &str) -> serde_json::Value {
    let run = imgport([
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--to".as_ref(),
        to.as_ref(),
        "--json".as_ref(),
    ]);
    run.expect_code(0);
    run.json()
}

fn content_digest(path: &Path) -> String {
    let run = imgport(["checksum".as_ref(), path.as_os_str(), "--json".as_ref()]);
    run.expect_code(0);
    run.json()["content"]["digest"]
        .as_str()
        .expect("content digest")
        .to_string()
}

#[test]
fn every_vhdx_option_converts_to_the_source_bytes_and_digest() {
    let src = vhdx("src.raw");
    let want = imgport_testdata::reference_content_digest(&std::fs::read(&src).unwrap());
    let dir = tempfile::tempdir().unwrap();
    for (name, qemu_opens, sub) in FROM_SRC {
        let path = vhdx(name);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        assert_eq!(r["format"], "vhdx", "{name}");
        assert_eq!(r["subformat"], sub, "{name}");
        assert_eq!(r["virtual_size"], 24u64 << 20, "{name}");
        if qemu_opens {
            let q = qemu_info(&path, Some("vhdx"));
            assert_eq!(r["virtual_size"], q["virtual-size"], "{name}");
        } else {
            assert_eq!(r["details"]["logical_sector_size"], 4096, "{name}");
        }
        assert_eq!(content_digest(&path), want, "{name}: checksum");
        for (to, qfmt) in [("raw", "raw"), ("qcow2", "qcow2"), ("vhd", "vpc")] {
            let out = dir.path().join(format!("out.{to}"));
            let v = convert_json(&path, &out, to);
            assert_eq!(v["source_format"], "vhdx", "{name}");
            assert_eq!(v["content"]["digest"], want.as_str(), "{name} → {to}");
            qemu_compare(&src, "raw", &out, qfmt);
            if qemu_opens {
                qemu_compare(&path, "vhdx", &out, qfmt);
            }
            std::fs::remove_file(&out).unwrap();
        }
    }
}

#[test]
fn a_bat_across_chunks_skips_the_sector_bitmap_entry() {
    // 5 GiB in 1 MiB blocks: 5120 payload blocks, a sector bitmap entry after the first 4096;
    // data at block 1 and at blocks 4600-4601 (BAT entries 4601-4602).
    let path = vhdx("big.vhdx");
    let (run, r) = inspect_one(&path, &[]);
    run.expect_code(0);
    assert_eq!(r["details"]["chunk_ratio"], 4096);
    assert_eq!(r["details"]["blocks"], 5120);
    assert_eq!(r["details"]["present_blocks"], 3);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    convert_json(&path, &raw, "raw");
    qemu_compare(&path, "vhdx", &raw, "raw");
    let qcow = dir.path().join("big.qcow2");
    let v = convert_json(&path, &qcow, "qcow2");
    qemu_compare(&path, "vhdx", &qcow, "qcow2");
    // qemu's own conversion of the VHDX has the same content digest.
    let qraw = dir.path().join("qemu.raw");
    sh(&format!(
        "qemu-img convert -f vhdx -O raw '{}' '{}'",
        path.display(),
        qraw.display()
    ));
    assert_eq!(
        v["content"]["digest"].as_str().unwrap(),
        content_digest(&qraw)
    );
}

#[test]
fn hostile_vhdx_files_are_refused_by_their_rule() {
    for (name, code) in [
        ("dirty-log.vhdx", "vhdx.log_replay"),
        ("has-parent.vhdx", "vhdx.differencing"),
        ("parent-locator.vhdx", "vhdx.parent_locator"),
        ("bat-past-eof.vhdx", "vhdx.bat_entry_past_eof"),
        ("region-count.vhdx", "vhdx.region_count"),
        ("metadata-count.vhdx", "vhdx.metadata_count"),
        ("item-length.vhdx", "vhdx.metadata_item_location"),
        ("unknown-region.vhdx", "vhdx.region_unknown_required"),
        ("unknown-item.vhdx", "vhdx.metadata_unknown_required"),
    ] {
        let path = vhdx(name);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(3);
        assert_eq!(r["safe"], false, "{name}");
        assert!(
            finding_codes(&r).iter().any(|c| c == code),
            "{name}: no {code} in {r}"
        );
        let f = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code)
            .unwrap();
        assert!(
            f["offset"].is_u64() && f["field"].is_string(),
            "{name}: {f}"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.raw");
        let run = imgport_convert(&path, &out, "raw");
        run.expect_code(3);
        assert!(run.stderr().contains(name), "{name}: {}", run.stderr());
        assert!(!out.exists(), "{name}: output written");
    }
}

#[test]
fn qemu_replays_the_dirty_log_that_imgport_refuses() {
    // The refused log entry is a real one: qemu-img check -r all replays it, and the replayed
    // file is the source disk and opens in imgport.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("replayed.vhdx");
    std::fs::copy(vhdx("dirty-log.vhdx"), &copy).unwrap();
    sh(&format!("qemu-img check -q -r all '{}'", copy.display()));
    let (run, r) = inspect_one(&copy, &[]);
    run.expect_code(0);
    assert_eq!(r["format"], "vhdx");
    let src = vhdx("src.raw");
    let want = imgport_testdata::reference_content_digest(&std::fs::read(&src).unwrap());
    assert_eq!(content_digest(&copy), want);
}

#[test]
fn vhdx_is_an_input_format_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.vhdx");
    let run = imgport_convert(&vhdx("dynamic.vhdx"), &out, "vhdx");
    run.expect_code(2);
    assert!(
        run.stderr().contains("--to vhdx") && run.stderr().contains("input format only"),
        "{}",
        run.stderr()
    );
    assert!(!out.exists());
    let src = vhdx("dynamic.vhdx");
    for cmd in ["checksum", "plan", "upload"] {
        let run = imgport([
            cmd.as_ref(),
            src.as_os_str(),
            "--to".as_ref(),
            "vhdx".as_ref(),
        ]);
        run.expect_code(2);
        assert!(
            run.stderr().contains("input format only"),
            "{cmd}: {}",
            run.stderr()
        );
    }
    // The plan converts a VHDX to qcow2, which ECS imports.
    let run = imgport([
        "plan".as_ref(),
        vhdx("dynamic.vhdx").as_os_str(),
        "--region".as_ref(),
        "cn-hangzhou".as_ref(),
        "--bucket".as_ref(),
        "bkt".as_ref(),
        "--allow-no-os".as_ref(),
        "--json".as_ref(),
    ]);
    run.expect_code(0);
    let plan = run.json();
    let disk = &plan["plan"]["disks"][0];
    assert_eq!(disk["source_format"], "vhdx", "{plan}");
    assert_eq!(disk["output"]["value"], "qcow2", "{plan}");
}

#[test]
fn sandbox_import_of_a_dynamic_vhdx_ends_available() {
    let dir = tempfile::tempdir().unwrap();
    let src = vhdx("dynamic.vhdx");
    let sandbox = dir.path().join("sandbox");
    let journal = dir.path().join("journal");
    let run = imgport_in(
        dir.path(),
        [
            "import".as_ref(),
            src.as_os_str(),
            "--region".as_ref(),
            "cn-hangzhou".as_ref(),
            "--bucket".as_ref(),
            "sandbox".as_ref(),
            "--sandbox".as_ref(),
            "--json".as_ref(),
            "--allow-no-os".as_ref(),
            "--sandbox-dir".as_ref(),
            sandbox.as_os_str(),
            "--journal".as_ref(),
            journal.as_os_str(),
            "--sandbox-import-seconds".as_ref(),
            "1".as_ref(),
        ],
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    let disk = &r["disks"][0];
    assert_eq!(disk["format"], "qcow2", "{r}");
    let obj = sandbox_object(dir.path(), "sandbox", disk["key"].as_str().unwrap());
    qemu_compare(&vhdx("src.raw"), "raw", &obj, "qcow2");
}

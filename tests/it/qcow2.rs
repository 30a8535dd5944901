//! `imgport inspect` on QCOW2 files: format, subformat and sizes against `qemu-img`, the
//! metadata-only read budget, and the `qcow2.*` verdict on every hostile image of the cache.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Bytes `qemu-img map` reports as data (stored in the file, compressed or not).
fn qemu_allocated(path: &Path) -> u64 {
    let out = Command::new("qemu-img")
        .args(["map", "-f", "qcow2", "--output=json"])
        .arg(path)
        .output()
        .expect("run qemu-img map");
    let v = ok_json(&out);
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"].as_bool() == Some(true))
        .map(|e| e["length"].as_u64().unwrap())
        .sum()
}

#[test]
fn qcow2_sizes_and_subformats_match_qemu_img() {
    let mut files: Vec<(String, &str)> = Vec::new();
    for s in ["7M", "128M", "129M", "40G"] {
        files.push((format!("qcow2-{s}.qcow2"), "v3"));
        files.push((format!("qcow2v2-{s}.qcow2"), "v2"));
    }
    let others = [("big.qcow2", "v3"), ("qcow2-lazy.qcow2", "v3")];
    for (f, sub) in imgport_testdata::QCOW2_CONTENT.into_iter().chain(others) {
        files.push((f.to_string(), sub));
    }
    for (file, sub) in &files {
        let path = image(file);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        let q = qemu_info(&path, Some("qcow2"));
        assert_eq!(r["format"], "qcow2", "{file}");
        assert_eq!(r["subformat"], *sub, "{file}");
        assert_eq!(r["virtual_size"], q["virtual-size"], "{file}");
        assert_eq!(r["safe"], true, "{file}");
        assert_eq!(
            r["allocated_size"].as_u64(),
            Some(qemu_allocated(&path)),
            "{file}"
        );
        assert_eq!(r["details"]["cluster_size"], q["cluster-size"], "{file}");
    }
}

#[test]
fn inspecting_40_gib_qcow2_reads_at_most_1_mib() {
    for file in ["qcow2-40G.qcow2", "qcow2v2-40G.qcow2", "big.qcow2"] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(0);
        let read = r["bytes_read"].as_u64().unwrap();
        assert!(read <= 1 << 20, "{file}: read {read} bytes");
    }
}

/// Inspects `file`, expects a refusal carrying `code`, and returns that finding.
fn refusal(file: &str, code: &str) -> serde_json::Value {
    let (run, r) = inspect_one(&image(file), &[]);
    run.expect_code(3);
    assert_eq!(r["safe"], false, "{file}");
    assert_eq!(r["format"], "qcow2", "{file}");
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code && f["severity"] == "refuse")
        .unwrap_or_else(|| panic!("{file}: no {code} in {r}"))
        .clone();
    assert!(
        f["field"].is_string() && f["offset"].is_u64(),
        "{file}: {f}"
    );
    assert!(f["message"].as_str().unwrap().contains("offset"), "{f}");
    f
}

#[test]
fn hostile_qcow2_images_are_refused_with_their_rule() {
    let msg = |f: &serde_json::Value| f["message"].as_str().unwrap().to_string();
    let f = refusal("qcow2-backing.qcow2", "qcow2.backing_file");
    assert!(msg(&f).contains("base.raw"), "{f}");
    let f = refusal("qcow2-backing-json.qcow2", "qcow2.backing_file");
    assert!(
        msg(&f).contains("json:") && msg(&f).contains("/etc/shadow"),
        "{f}"
    );
    refusal("qcow2-datafile.qcow2", "qcow2.data_file");
    let f = refusal("qcow2-datafile-ext-only.qcow2", "qcow2.data_file");
    assert!(msg(&f).contains("/etc/shadow"), "{f}");
    refusal("qcow2-luks.qcow2", "qcow2.encrypted");
    refusal("qcow2-aes.qcow2", "qcow2.encrypted");
    refusal("qcow2-corrupt.qcow2", "qcow2.corrupt");
    refusal("qcow2-bit5.qcow2", "qcow2.unknown_incompatible");
    refusal("qcow2-v4.qcow2", "qcow2.version");
    let f = refusal("qcow2-l2-past-eof.qcow2", "qcow2.l2_entry_past_eof");
    assert!(msg(&f).contains("L2 table at"), "{f}");
    refusal("qcow2-l2-reserved.qcow2", "qcow2.l2_entry_reserved");
    refusal("qcow2-l1-past-eof.qcow2", "qcow2.l1_entry_past_eof");
    refusal("qcow2-truncated.qcow2", "qcow2.l1_entry_past_eof");
}

#[test]
fn dirty_images_warn_and_snapshots_are_reported() {
    let (run, r) = inspect_one(&image("qcow2-dirty.qcow2"), &[]);
    run.expect_code(0);
    assert!(
        finding_codes(&r).contains(&"qcow2.dirty".to_string()),
        "{r}"
    );
    assert_eq!(r["details"]["dirty"], true);
    let (run, r) = inspect_one(&image("content-snap.qcow2"), &[]);
    run.expect_code(0);
    assert!(
        finding_codes(&r).contains(&"qcow2.snapshots".to_string()),
        "{r}"
    );
    assert_eq!(r["details"]["snapshots"]["count"], 1);
    assert_eq!(r["details"]["snapshots"]["listed"][0]["name"], "snap1");
    let (_, r) = inspect_one(&image("content-zstd.qcow2"), &[]);
    assert_eq!(r["details"]["compression"], "zstd");
    let (_, r) = inspect_one(&image("content-extl2.qcow2"), &[]);
    assert_eq!(r["details"]["extended_l2"], true);
    // Named by the feature name table qemu-img writes.
    assert_eq!(
        r["details"]["features"],
        serde_json::json!(["extended L2 entries"])
    );
    let (_, r) = inspect_one(&image("qcow2-lazy.qcow2"), &[]);
    assert_eq!(
        r["details"]["features"],
        serde_json::json!(["lazy refcounts"])
    );
}

#[test]
fn hostile_tables_from_the_qcow2_part_are_refused() {
    refusal("qcow2/share-l2.qcow2", "qcow2.l2_table_shared");
    refusal("qcow2/l1-loop.qcow2", "qcow2.l2_table_overlap");
    refusal("qcow2/l1-size.qcow2", "qcow2.l1_too_large");
    let (run, _) = inspect_one(&image("qcow2/base.qcow2"), &[]);
    run.expect_code(0);
}

#[test]
fn a_deflate_bomb_decompresses_to_one_cluster_like_qemu() {
    // 64 MiB of zeros in one compressed 64 KiB cluster: reading stops at the cluster.
    let src = image("qcow2/bomb.qcow2");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("bomb.raw");
    imgport([
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--to".as_ref(),
        "raw".as_ref(),
    ])
    .expect_code(0);
    let out = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "qcow2", "-F", "raw"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

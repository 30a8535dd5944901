//! `imgport inspect` on VHD files: detection (fixed VHDs too, which qemu and oslo probe as
//! raw), subformat, virtual size against `qemu-img info -f vpc`, and the refusals.

use crate::util::*;

/// Every safe VHD in the cache and its subformat.
fn safe_vhds() -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = Vec::new();
    for s in ["7M", "128M", "129M", "40G"] {
        v.push((format!("vhd-{s}.vhd"), "dynamic"));
    }
    for s in ["7M", "128M", "129M"] {
        v.push((format!("vhdfixed-{s}.vhd"), "fixed"));
        v.push((format!("vhdforce-{s}.vhd"), "dynamic"));
    }
    for (f, sub) in [
        ("vhd-base-129M.vhd", "dynamic"),
        ("content.vhd", "dynamic"),
        ("content-fixed.vhd", "fixed"),
        ("content-force.vhd", "dynamic"),
        ("big.vhd", "dynamic"),
        ("vhd-creator-win.vhd", "dynamic"),
        ("vhd-creator-wa.vhd", "dynamic"),
        ("vhd-creator-vpc.vhd", "dynamic"),
        ("vhd-creator-qemu-maxchs.vhd", "dynamic"),
        ("vhd-fixed-511.vhd", "fixed"),
    ] {
        v.push((f.to_string(), sub));
    }
    v
}

#[test]
fn vhd_sizes_match_qemu_img_vpc() {
    for (file, sub) in safe_vhds() {
        let path = image(&file);
        let (run, r) = inspect_one(&path, &[]);
        run.expect_code(0);
        assert_eq!(r["format"], "vhd", "{file}");
        assert_eq!(r["subformat"], sub, "{file}");
        assert_eq!(r["safe"], true, "{file}");
        let q = qemu_info(&path, Some("vpc"));
        assert_eq!(r["virtual_size"], q["virtual-size"], "{file}");
        assert_eq!(r["details"]["virtual_size"], q["virtual-size"], "{file}");
    }
}

#[test]
fn fixed_vhd_is_vhd_where_qemu_probes_raw() {
    let path = image("vhdfixed-7M.vhd");
    let probed = qemu_info(&path, None);
    assert_eq!(probed["format"], "raw");
    let (run, r) = inspect_one(&path, &[]);
    run.expect_code(0);
    assert_eq!(r["format"], "vhd");
    assert_eq!(r["subformat"], "fixed");
    // qemu's raw probe counts the footer as disk data; the VHD is 512 bytes smaller.
    assert_eq!(
        r["virtual_size"].as_u64().unwrap() + 512,
        probed["virtual-size"].as_u64().unwrap()
    );
}

#[test]
fn size_source_follows_the_creator() {
    let (run, r) = inspect_one(&image("vhd-129M.vhd"), &[]);
    run.expect_code(0);
    assert_eq!(r["details"]["size_source"], "chs");
    assert_eq!(r["details"]["chs_size"], r["details"]["current_size"]);
    for (file, source, creator) in [
        ("vhd-creator-vpc.vhd", "chs", "vpc "),
        ("vhd-creator-win.vhd", "current_size", "win "),
        ("vhd-creator-wa.vhd", "current_size", "wa\\x00\\x00"),
        ("vhdforce-129M.vhd", "current_size", "qem2"),
        ("vhd-creator-qemu-maxchs.vhd", "current_size", "qemu"),
    ] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(0);
        let d = &r["details"];
        assert_eq!(d["size_source"], source, "{file}");
        assert_eq!(d["creator_app"], creator, "{file}");
        // Each of these has a CHS size different from current_size: both are reported.
        assert_ne!(d["chs_size"], d["current_size"], "{file}");
        assert!(
            finding_codes(&r).contains(&"vhd.chs_size_differs".to_string()),
            "{file}"
        );
    }
}

#[test]
fn legacy_511_byte_footer_is_recognised() {
    let (run, r) = inspect_one(&image("vhd-fixed-511.vhd"), &[]);
    run.expect_code(0);
    assert_eq!(r["format"], "vhd");
    assert_eq!(r["details"]["footer_length"], 511);
}

#[test]
fn dynamic_details_and_ecs_size_note() {
    let (run, r) = inspect_one(&image("content.vhd"), &[]);
    run.expect_code(0);
    let d = &r["details"]["dynamic"];
    assert_eq!(d["block_size"], 2 << 20);
    assert_eq!(d["max_table_entries"], 33);
    // 33 × 2 MiB ≠ the CHS-rounded 64 MiB disk qemu-img wrote: ECS would refuse it as is.
    assert!(finding_codes(&r).contains(&"vhd.ecs_incorrect_size".to_string()));
    assert_eq!(r["allocated_size"], 6 * (2 << 20));
}

#[test]
fn unsafe_vhds_are_refused_with_the_rule() {
    for (file, code) in [
        ("vhd-badsum.vhd", "vhd.footer_checksum"),
        ("vhd-diff.vhd", "vhd.differencing"),
        ("vhd-creator-xyz1.vhd", "vhd.page_table_too_small"),
        ("vhd-bat-past-eof.vhd", "vhd.bat_entry_past_eof"),
        ("vhd-bat-overlap.vhd", "vhd.bat_overlap"),
        ("vhd-fixed-size-mismatch.vhd", "vhd.fixed_size_mismatch"),
    ] {
        let (run, r) = inspect_one(&image(file), &[]);
        run.expect_code(3);
        assert_eq!(r["safe"], false, "{file}");
        assert_eq!(r["format"], "vhd", "{file}");
        let f = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("{file}: no {code} in {r}"));
        assert_eq!(f["severity"], "refuse", "{file}");
        assert!(
            f["field"].is_string() && f["offset"].is_u64(),
            "{file}: {f}"
        );
        assert!(
            f["message"].as_str().unwrap().contains("offset"),
            "{file}: {f}"
        );
    }
}

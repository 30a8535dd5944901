//! Tests against the cached images made by `scripts/make-testdata.sh`, with qemu-img as the
//! oracle: metadata-only opening, whole-disk contents and extents.

use std::process::Command;

use super::*;
use crate::test_util::{assert_parallel_reads, data_ranges, read_in_odd_chunks};
use crate::{OpenOptions, open};
use imgport_testdata::{cached, qemu_data_ranges};

#[test]
fn opening_large_dynamic_vhds_reads_only_metadata() {
    for name in ["vhd-40G.vhd", "big.vhd"] {
        let opened =
            open(&cached(name), &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.report.subformat.as_deref(), Some("dynamic"));
        let read = opened.file.bytes_read();
        assert!(read <= 1 << 20, "{name}: opening read {read} bytes");
    }
}

#[test]
fn content_vhds_read_as_the_raw_disk_and_map_like_qemu() {
    let raw = std::fs::read(cached("content.raw")).unwrap();
    for (name, sub) in [
        ("content.vhd", "dynamic"),
        ("content-fixed.vhd", "fixed"),
        ("content-force.vhd", "dynamic"),
    ] {
        let path = cached(name);
        let opened = open(&path, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.report.subformat.as_deref(), Some(sub), "{name}");
        let img = opened.image;
        let size = img.virtual_size() as usize;
        assert!(size >= raw.len(), "{name}: {size}");
        let disk = read_in_odd_chunks(&*img);
        assert!(
            disk[..raw.len()] == raw[..],
            "{name}: contents differ from content.raw"
        );
        assert!(
            disk[raw.len()..].iter().all(|&b| b == 0),
            "{name}: non-zero tail"
        );
        assert_eq!(
            data_ranges(img.as_ref()),
            qemu_data_ranges(&path, "vpc"),
            "{name}"
        );
    }
}

#[test]
fn chs_round_up_matches_fresh_qemu_img_images() {
    // One size per branch of the spec's algorithm (17, 31, 63, 255 sectors per track).
    let dir = tempfile::tempdir().unwrap();
    for size in [7u64 << 20, 200 << 20, 1 << 30, 33 << 30] {
        let path = dir.path().join(format!("{size}.vhd"));
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "vpc"])
            .arg(&path)
            .arg(size.to_string())
            .output()
            .expect("run qemu-img create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let f = Footer::parse(&bytes[bytes.len() - FOOTER_LEN..]);
        assert_eq!(chs_round_up(size / 512), Some(f.geometry), "{size}");
    }
}

#[test]
fn concurrent_reads_agree_with_the_raw_disk() {
    let raw = std::fs::read(cached("content.raw")).unwrap();
    let opened = open(&cached("content.vhd"), &OpenOptions::default()).unwrap();
    assert_parallel_reads("content.vhd", &*opened.image, &raw);
}

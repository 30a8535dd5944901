//! Helpers for the workspace's unit tests that read the cached test images of `scripts/make-testdata.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache directory: `$IMGPORT_TESTDATA` (a shared cache), else `testdata/cache`.
pub fn testdata_dir() -> PathBuf {
    std::env::var_os("IMGPORT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"))
}

/// Path of the cached image `name` (e.g. `content.qcow2`, `xfs/v5.img`); panics with the
/// command that builds it when it is missing.
pub fn cached(name: &str) -> PathBuf {
    let p = testdata_dir().join(name);
    assert!(
        p.exists(),
        "{} missing: run scripts/make-testdata.sh",
        p.display()
    );
    p
}

/// The qcow2 copies of `content.raw` that scripts/testdata writes with qemu-img (one per
/// cluster size, compression, version and feature), with the subformat each must report.
pub const QCOW2_CONTENT: [(&str, &str); 9] = [
    ("content.qcow2", "v3"),
    ("content-v2.qcow2", "v2"),
    ("content-zlib.qcow2", "v3"),
    ("content-zstd.qcow2", "v3"),
    ("content-extl2.qcow2", "v3"),
    ("content-4k.qcow2", "v3"),
    ("content-2m.qcow2", "v3"),
    ("content-snap.qcow2", "v3"),
    ("content-zero.qcow2", "v3"),
];

/// The bytes of the cached file `name`.
pub fn cached_bytes(name: &str) -> Vec<u8> {
    let p = cached(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Appends `[start, end)` to sorted `ranges`, merging it with the last one when they touch.
pub fn push_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match ranges.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => ranges.push((start, end)),
    }
}

/// Merged `[start, end)` ranges that `qemu-img map -f FORMAT` reports as data (stored in the
/// file, compressed or not; holes are not data). For VHD a range qemu also flags `zero` counts
/// as no data, as the VHD reader's extents do; for QCOW2 every allocated cluster is data.
pub fn qemu_data_ranges(path: &Path, format: &str) -> Vec<(u64, u64)> {
    let zero_is_hole = format == "vpc";
    let out = Command::new("qemu-img")
        .args(["map", "-f", format, "--output=json"])
        .arg(path)
        .output()
        .expect("run qemu-img map");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("qemu-img JSON");
    let mut ranges = Vec::new();
    for e in v.as_array().expect("array") {
        if e["data"].as_bool() != Some(true) || (zero_is_hole && e["zero"].as_bool() == Some(true))
        {
            continue;
        }
        let start = e["start"].as_u64().unwrap();
        push_range(&mut ranges, start, start + e["length"].as_u64().unwrap());
    }
    ranges
}

/// The content digest built the plain way from the bytes of a RAW disk, as hex: BLAKE3 of
/// every 64 KiB block, then BLAKE3 over one record per block (a run of full all-zero blocks
/// is one record `0, run length as u64 LE`; any other block `1, its digest`) and the size
/// (u64 LE). An oracle for the streaming digest of imgport-transfer, written apart from it.
pub fn reference_content_digest(bytes: &[u8]) -> String {
    const BLOCK: usize = 64 * 1024;
    let mut outer = blake3::Hasher::new();
    let mut run = 0u64;
    let flush = |outer: &mut blake3::Hasher, run: &mut u64| {
        if *run > 0 {
            outer.update(&[0]);
            outer.update(&run.to_le_bytes());
            *run = 0;
        }
    };
    for block in bytes.chunks(BLOCK) {
        if block.len() == BLOCK && block.iter().all(|&b| b == 0) {
            run += 1;
            continue;
        }
        flush(&mut outer, &mut run);
        outer.update(&[1]);
        outer.update(blake3::hash(block).as_bytes());
    }
    flush(&mut outer, &mut run);
    outer.update(&(bytes.len() as u64).to_le_bytes());
    hex::encode(outer.finalize().as_bytes())
}

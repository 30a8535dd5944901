//! `imgport convert` and `imgport checksum`: every output equals its source by `qemu-img
//! compare`, digests equal `sha256sum` / `md5sum` / `xz`'s CRC-64 of the written bytes, VHD
//! sizes as `qemu-img info -f vpc` reads them, `qemu-img check` on QCOW2 output, the content
//! digest against an independent computation, and failures leave no file behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

const FORMATS: [(&str, &str); 4] = [
    ("raw", "raw"),
    ("vhd", "vpc"),
    ("vhd-fixed", "vpc"),
    ("qcow2", "qcow2"),
];

/// MD5 of `len` bytes at `offset` of `path`, by `tail -c` and `head -c`.
fn md5_range(path: &Path, offset: u64, len: u64) -> String {
    first_word(&sh(&format!(
        "tail -c +{} '{}' | head -c {len} | md5sum",
        offset + 1,
        path.display()
    )))
}

/// CRC-64/XZ of a file as `xz` computes it for its block check (an independent oracle).
fn xz_crc64(path: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let xz = dir.path().join("f.xz");
    sh(&format!(
        "xz -T1 -0 --check=crc64 -c '{}' > '{}'",
        path.display(),
        xz.display()
    ));
    let list = sh(&format!("xz --robot -lvv '{}'", xz.display()));
    // Robot mode: "block\t<stream>\t<block>\t...\t<check name>\t<check value>\t..."
    let line = list
        .lines()
        .find(|l| l.starts_with("block\t"))
        .expect("xz block line");
    let fields: Vec<&str> = line.split('\t').collect();
    let value = fields
        .iter()
        .position(|f| *f == "CRC64")
        .and_then(|i| fields.get(i + 1))
        .expect("CRC64 check value");
    value.to_string()
}

fn compare(src: &Path, src_fmt: &str, out: &Path, out_fmt: &str) {
    let o = Command::new("qemu-img")
        .args(["compare", "-f", src_fmt, "-F", out_fmt])
        .arg(src)
        .arg(out)
        .output()
        .expect("run qemu-img compare");
    assert!(
        o.status.success(),
        "qemu-img compare {} {}: {}{}",
        src.display(),
        out.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn convert(src: &Path, dst: &Path, to: &str, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        src.into(),
        dst.into(),
        "--to".into(),
        to.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let run = imgport(&args);
    run.expect_code(0);
    run.json()
}

fn checksum(file: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<std::ffi::OsString> = vec!["checksum".into(), file.into(), "--json".into()];
    args.extend(extra.iter().map(Into::into));
    let run = imgport(&args);
    run.expect_code(0);
    run.json()
}

/// Checks the JSON digests against the written file: whole SHA-256, CRC-64, the part layout,
/// and every part's MD5 when a part size was asked for (`part_md5`), else that there is none.
fn check_digests(v: &serde_json::Value, file: &Path, part_md5: bool) {
    let size = std::fs::metadata(file).unwrap().len();
    assert_eq!(v["size"], size, "{}", file.display());
    assert_eq!(v["sha256"], sha256sum(file), "{}", file.display());
    assert_eq!(v["crc64_hex"], xz_crc64(file), "{}", file.display());
    let crc: u64 = v["crc64"].as_str().unwrap().parse().unwrap();
    assert_eq!(format!("{crc:016x}"), v["crc64_hex"].as_str().unwrap());
    let parts = v["parts"].as_array().unwrap();
    let mut next = 0u64;
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["number"], i as u64 + 1);
        let off = p["offset"].as_u64().unwrap();
        let len = p["size"].as_u64().unwrap();
        assert_eq!(off, next);
        if part_md5 {
            assert_eq!(
                p["md5"],
                md5_range(file, off, len),
                "part {} of {}",
                i + 1,
                file.display()
            );
        } else {
            assert!(p.get("md5").is_none(), "part {}: {p}", i + 1);
        }
        next = off + len;
    }
    assert_eq!(next, size);
    assert_eq!(
        v.get("multipart_etag").is_some(),
        part_md5,
        "{}",
        file.display()
    );
}

/// The content digest computed the plain way from a RAW file (see
/// [`imgport_testdata::reference_content_digest`]).
fn reference_content_digest(raw: &Path) -> String {
    imgport_testdata::reference_content_digest(&std::fs::read(raw).unwrap())
}

#[test]
fn content_raw_to_every_format_is_identical_with_matching_digests() {
    let src = image("content.raw");
    let dir = tempfile::tempdir().unwrap();
    let expected_content = reference_content_digest(&src);
    for (to, qfmt) in FORMATS {
        let out = dir.path().join(format!("out.{to}"));
        let v = convert(&src, &out, to, &["--part-size", "5M"]);
        compare(&src, "raw", &out, qfmt);
        check_digests(&v, &out, true);
        assert_eq!(v["format"], to);
        assert_eq!(v["virtual_size"], 64u64 << 20);
        assert_eq!(
            v["parts"].as_array().unwrap().len() as u64,
            v["size"].as_u64().unwrap().div_ceil(5 << 20)
        );
        assert_eq!(v["content"]["digest"], expected_content.as_str(), "{to}");
        if qfmt == "vpc" {
            assert_eq!(qemu_info(&out, Some("vpc"))["virtual-size"], 64u64 << 20);
        }
        if to == "qcow2" {
            sh(&format!("qemu-img check -f qcow2 '{}'", out.display()));
        }
    }
    // Nothing but the outputs is left in the directory (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out.qcow2", "out.raw", "out.vhd", "out.vhd-fixed"]);
}

#[test]
fn raw_output_is_sparse_and_vhd_allocates_only_data_blocks() {
    let src = image("content.raw");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("o.raw");
    convert(&src, &raw, "raw", &[]);
    use std::os::unix::fs::MetadataExt;
    let used = std::fs::metadata(&raw).unwrap().blocks() * 512;
    let src_used = std::fs::metadata(&src).unwrap().blocks() * 512;
    assert!(
        used <= src_used,
        "output uses {used} bytes, source {src_used}"
    );
    let vhd = dir.path().join("o.vhd");
    convert(&src, &vhd, "vhd", &[]);
    // Data sits in 6 of the 32 blocks of 2 MiB (GPT at both ends, 20-23 MiB, 37.5 MiB, 40 MiB):
    // footer + header + BAT (512) + 6 × (bitmap + block) + footer, as qemu-img writes it too.
    let qemu_vhd = image("content.vhd");
    assert_eq!(
        std::fs::metadata(&vhd).unwrap().len(),
        std::fs::metadata(&qemu_vhd).unwrap().len()
    );
}

#[test]
fn big_sparse_raw_converts_without_reading_holes() {
    let src = image("big.raw");
    let dir = tempfile::tempdir().unwrap();
    for (to, qfmt) in FORMATS {
        let out = dir.path().join(format!("big.{to}"));
        // SHA-256 of 40 GiB of zeros is long serial work on one core: skip it for big RAW forms.
        let extra: &[&str] = if to == "vhd" || to == "qcow2" {
            &[]
        } else {
            &["--no-sha256", "--part-size", "32M"]
        };
        let v = convert(&src, &out, to, extra);
        compare(&src, "raw", &out, qfmt);
        use std::os::unix::fs::MetadataExt;
        let used = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(used < 64 << 20, "{to}: {used} bytes allocated");
        if extra.is_empty() {
            check_digests(&v, &out, false);
        } else {
            assert!(v.get("sha256").is_none());
            // First part holds data; the second is all zeros.
            let parts = v["parts"].as_array().unwrap();
            for p in &parts[..2] {
                let (off, len) = (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap());
                assert_eq!(p["md5"], md5_range(&out, off, len), "{to}");
            }
        }
        if qfmt == "vpc" {
            assert_eq!(qemu_info(&out, Some("vpc"))["virtual-size"], 40u64 << 30);
        }
    }
}

#[test]
fn vhd_size_is_rounded_up_to_whole_blocks_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    // 129 MiB: not a multiple of the 2 MiB block.
    let src = image("raw-129M.raw");
    let out = dir.path().join("o.vhd");
    let v = convert(&src, &out, "vhd", &[]);
    assert_eq!(v["source_virtual_size"], 129u64 << 20);
    assert_eq!(v["virtual_size"], 130u64 << 20);
    let notice = v["notices"][0].as_str().unwrap();
    assert!(notice.contains("IncorrectSize"), "{notice}");
    assert_eq!(qemu_info(&out, Some("vpc"))["virtual-size"], 130u64 << 20);
    compare(&src, "raw", &out, "vpc");
    check_digests(&v, &out, false);

    // A source that is not a whole number of sectors is padded for every format.
    let odd = dir.path().join("odd-source.raw");
    sh(&format!(
        "head -c 1000000 /dev/urandom > '{}'",
        odd.display()
    ));
    for (to, qfmt) in FORMATS {
        let out = dir.path().join(format!("odd.{to}"));
        let v = convert(&odd, &out, to, &["--part-size", "300K"]);
        assert!(v["virtual_size"].as_u64().unwrap() >= 1_000_448, "{to}");
        assert!(!v["notices"].as_array().unwrap().is_empty(), "{to}: {v}");
        compare(&odd, "raw", &out, qfmt);
        check_digests(&v, &out, true);
    }
}

#[test]
fn parts_that_straddle_sectors_are_written_exactly() {
    // A part size that is no multiple of 512: part edges fall inside sectors, so the writer
    // mixes direct (aligned) and buffered (unaligned) writes within one file.
    let src = image("content.raw");
    let dir = tempfile::tempdir().unwrap();
    for (to, qfmt) in FORMATS {
        let out = dir.path().join(format!("odd-parts.{to}"));
        let v = convert(&src, &out, to, &["--part-size", "1000001"]);
        compare(&src, "raw", &out, qfmt);
        check_digests(&v, &out, true);
    }
}

#[test]
fn checksum_of_a_file_as_it_is_and_as_converted() {
    let src = image("content.raw");
    let v = checksum(&src, &["--part-size", "7M"]);
    assert!(v.get("format").is_none());
    check_digests(&v, &src, true);
    assert_eq!(
        v["content"]["digest"],
        reference_content_digest(&src).as_str()
    );

    // --to gives the digests of the bytes convert writes, without writing them.
    let dir = tempfile::tempdir().unwrap();
    for (to, _) in FORMATS {
        let out = dir.path().join(format!("o.{to}"));
        let c = convert(&src, &out, to, &["--part-size", "7M"]);
        let s = checksum(&src, &["--to", to, "--part-size", "7M"]);
        assert_eq!(s["sha256"], c["sha256"], "{to}");
        assert_eq!(s["parts"], c["parts"], "{to}");
        assert_eq!(s["crc64"], c["crc64"], "{to}");
        assert!(s.get("output").is_none());
    }
    // The checksum of a converted RAW output has the same content digest as its source.
    let again = checksum(&dir.path().join("o.raw"), &[]);
    assert_eq!(again["content"], v["content"]);
}

#[test]
fn crc64_check_values() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("check.raw");
    std::fs::write(&f, b"123456789").unwrap();
    let v = checksum(&f, &[]);
    // CRC-64/XZ check value, as OSS prints x-oss-hash-crc64ecma (unsigned decimal).
    assert_eq!(v["crc64"], "11051210869376104954");
    assert_eq!(v["crc64_hex"], "995dc9bbdf1939fa");
    assert_eq!(v["parts"][0]["crc64"], "11051210869376104954");
    assert!(v["parts"][0].get("md5").is_none(), "no part size, no MD5");
    let v = checksum(&f, &["--part-size", "1M"]);
    assert_eq!(v["parts"][0]["md5"], "25f9e794323b453885f5181f1b624d0b");
    assert_eq!(v["parts"][0]["crc64"], "11051210869376104954");
    assert_eq!(
        v["sha256"],
        "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
    );
}

fn dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn failed_conversions_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // Source refused: exit 3, nothing created.
    let run = imgport_convert(&image("vdi-7M.vdi"), &dir.path().join("o.vhd"), "vhd");
    run.expect_code(3);
    assert!(dir_names(dir.path()).is_empty());

    // Destination directory missing: exit 1.
    let run = imgport_convert(
        &image("content.raw"),
        &dir.path().join("missing/o.vhd"),
        "vhd",
    );
    run.expect_code(1);
    assert!(dir_names(dir.path()).is_empty());

    // A write failing half-way (file size limit: EFBIG): exit 1, temporary file removed.
    let out = dir.path().join("o.raw");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 2048; exec '{}' convert '{}' '{}' --to raw",
            env!("CARGO_BIN_EXE_imgport"),
            image("content.raw").display(),
            out.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        dir_names(dir.path()).is_empty(),
        "{:?}",
        dir_names(dir.path())
    );
}

#[test]
fn interrupted_conversion_exits_130_and_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.raw");
    // With SHA-256 of 40 GiB (asked for: by default a digest over that many zeros is skipped)
    // this runs for many seconds: time enough to interrupt it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .arg("convert")
        .arg(image("big.raw"))
        .arg(&out)
        .args(["--to", "raw", "--sha256"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tmp_seen = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        !dir_names(dir.path()).is_empty()
    });
    assert!(tmp_seen, "the temporary file never appeared");
    send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        dir_names(dir.path()).is_empty(),
        "{:?}",
        dir_names(dir.path())
    );
}

fn send_signal(pid: u32, sig: &str) {
    sh(&format!("kill -{sig} {pid}"));
}

// --- QCOW2 and VHD sources ---

/// Converts `name` to every format and checks each output against the source. For the 40 GiB
/// sources the RAW and fixed VHD outputs skip SHA-256 (40 GiB of zeros) and check only two parts.
fn source_to_every_format(name: &str, fmt: &str) -> Vec<serde_json::Value> {
    let src = image(name);
    let big = name.starts_with("big");
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (to, qfmt) in FORMATS {
        let dst = dir.path().join(format!("o.{to}"));
        let full = !big || to == "vhd" || to == "qcow2";
        let extra: &[&str] = if full {
            &["--part-size", "5M"]
        } else {
            &["--no-sha256", "--part-size", "32M"]
        };
        let v = convert(&src, &dst, to, extra);
        compare(&src, fmt, &dst, qfmt);
        if full {
            check_digests(&v, &dst, true);
        } else {
            for p in &v["parts"].as_array().unwrap()[..2] {
                let (off, len) = (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap());
                assert_eq!(p["md5"], md5_range(&dst, off, len), "{name} {to}");
            }
        }
        if to == "qcow2" {
            sh(&format!("qemu-img check -f qcow2 '{}'", dst.display()));
        }
        out.push(v);
    }
    out
}

#[test]
fn qcow2_sources_convert_identically_and_share_the_content_digest() {
    let expected = reference_content_digest(&image("content.raw"));
    for name in [
        "content.qcow2",
        "content-v2.qcow2",
        "content-zlib.qcow2",
        "content-zstd.qcow2",
        "content-extl2.qcow2",
        "content-4k.qcow2",
        "content-2m.qcow2",
    ] {
        for v in source_to_every_format(name, "qcow2") {
            assert_eq!(v["content"]["digest"], expected.as_str(), "{name}");
        }
        let c = checksum(&image(name), &[]);
        assert_eq!(c["content"]["digest"], expected.as_str(), "{name}");
    }
    source_to_every_format("content-zero.qcow2", "qcow2");
    source_to_every_format("big.qcow2", "qcow2");
    // Our own QCOW2 output reads back with the same content digest.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.qcow2");
    convert(&image("content.raw"), &out, "qcow2", &[]);
    assert_eq!(checksum(&out, &[])["content"]["digest"], expected.as_str());
}

#[test]
fn vhd_sources_convert_identically_and_share_the_content_digest() {
    source_to_every_format("content.vhd", "vpc");
    source_to_every_format("content-fixed.vhd", "vpc");
    source_to_every_format("big.vhd", "vpc");
    // force_size=on keeps the exact 64 MiB, so the content digest equals the RAW one.
    let expected = reference_content_digest(&image("content.raw"));
    for v in source_to_every_format("content-force.vhd", "vpc") {
        assert_eq!(v["content"]["digest"], expected.as_str());
    }
    // Our own VHD and QCOW2 outputs read back with the same content digest.
    let dir = tempfile::tempdir().unwrap();
    for to in ["vhd", "vhd-fixed"] {
        let out: PathBuf = dir.path().join(format!("o.{to}"));
        convert(&image("content.raw"), &out, to, &[]);
        assert_eq!(
            checksum(&out, &[])["content"]["digest"],
            expected.as_str(),
            "{to}"
        );
    }
}

#[test]
fn converting_a_file_onto_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("disk.raw");
    std::fs::copy(image("raw-7M.raw"), &f).unwrap();
    let run = imgport_convert(&f, &f, "raw");
    run.expect_code(2);
    assert_eq!(dir_names(dir.path()), ["disk.raw"]);
}

#[test]
fn checksum_of_a_refused_image_exits_3() {
    let run = imgport(["checksum".as_ref(), image("vdi-7M.vdi").as_os_str()]);
    run.expect_code(3);
    let run = imgport([
        "checksum".as_ref(),
        image("vdi-7M.vdi").as_os_str(),
        "--to".as_ref(),
        "raw".as_ref(),
    ]);
    run.expect_code(3);
}

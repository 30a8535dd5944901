//! Tests of the initramfs reader: a byte fixture and a negative test for every cpio rule,
//! decompression caps, a corruption sweep, and real archives made by cpio, gzip, xz, zstd and
//! lz4 (scripts/testdata/initramfs.sh).

use std::io::Write;

use super::cpio::{Collector, Parser};
use super::*;

// ---------------------------------------------------------------------------------------
// Fixtures: a newc writer with every field spelled out.

/// One newc header: magic then 13 fields of 8 hex digits (ino, mode, uid, gid, nlink, mtime,
/// filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check).
pub(super) fn newc_header(
    magic: &str,
    mode: u32,
    filesize: u32,
    namesize: u32,
    check: u32,
) -> Vec<u8> {
    let fields = [1, mode, 0, 0, 1, 0, filesize, 0, 0, 0, 0, namesize, check];
    let mut h = magic.as_bytes().to_vec();
    for f in fields {
        h.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    assert_eq!(h.len(), 110);
    h
}

pub(super) fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// A newc member (header, name, NUL, padding, data, padding) appended to `v`.
pub(super) fn member(v: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    v.extend(newc_header(
        "070701",
        mode,
        data.len() as u32,
        name.len() as u32 + 1,
        0,
    ));
    let _ = sum;
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    pad4(v);
    v.extend_from_slice(data);
    pad4(v);
}

pub(super) fn trailer(v: &mut Vec<u8>) {
    member(v, "TRAILER!!!", 0, b"");
}

pub(super) const DIR: u32 = 0o040755;
pub(super) const REG: u32 = 0o100644;
pub(super) const LNK: u32 = 0o120777;

/// A small archive: a directory, a file, a symlink, a wanted config file.
pub(super) fn sample() -> Vec<u8> {
    let mut v = Vec::new();
    member(&mut v, ".", DIR, b"");
    member(&mut v, "usr", DIR, b"");
    member(
        &mut v,
        "./usr/lib/modules/6.1.0-test/modules.builtin",
        REG,
        b"kernel/drivers/block/virtio_blk.ko\n",
    );
    member(&mut v, "lib", LNK, b"usr/lib");
    member(&mut v, "etc/modprobe.d/a.conf", REG, b"blacklist floppy\n");
    trailer(&mut v);
    v
}

pub(super) fn want_all(_: &str) -> bool {
    true
}

pub(super) fn parse_all(data: &[u8]) -> Result<Initramfs, InitramfsError> {
    let opts = ReadOptions {
        want: &want_all,
        ..ReadOptions::default()
    };
    parse(data, &opts)
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The rule text of an `Archive` error, or the whole message otherwise.
pub(super) fn rule(e: &InitramfsError) -> String {
    match e {
        InitramfsError::Archive { rule, .. } => (*rule).to_string(),
        other => other.to_string(),
    }
}

mod caps;
mod real;
mod rules;

// ---------------------------------------------------------------------------------------
// Positive cases.

#[test]
fn newc_members_paths_kinds_and_kept_files() {
    let ini = parse_all(&sample()).unwrap();
    let paths: Vec<&str> = ini.entries.iter().map(|e| e.path.as_str()).collect();
    // "." is the root and not listed; "./" prefixes are dropped.
    assert_eq!(
        paths,
        [
            "usr",
            "usr/lib/modules/6.1.0-test/modules.builtin",
            "lib",
            "etc/modprobe.d/a.conf"
        ]
    );
    assert_eq!(ini.entry("usr").unwrap().kind, EntryKind::Dir);
    let lib = ini.entry("lib").unwrap();
    assert_eq!(lib.kind, EntryKind::Symlink);
    assert_eq!(lib.link_target.as_deref(), Some("usr/lib"));
    assert_eq!(
        ini.file("etc/modprobe.d/a.conf"),
        Some(&b"blacklist floppy\n"[..])
    );
    assert_eq!(ini.archives.len(), 1);
    assert_eq!(ini.archives[0].compression, Compression::None);
    assert_eq!(ini.archives[0].members, 4);
    assert_eq!(ini.archives[0].len, sample().len() as u64);
}

#[test]
fn nothing_kept_unless_wanted_and_caps_respected() {
    let ini = parse(&sample(), &ReadOptions::default()).unwrap();
    assert_eq!(ini.kept_files().count(), 0);
    let opts = ReadOptions {
        want: &want_all,
        max_file_size: 20,
        max_captured_total: 1 << 20,
        ..ReadOptions::default()
    };
    let ini = parse(&sample(), &opts).unwrap();
    assert_eq!(
        ini.kept_files().collect::<Vec<_>>(),
        ["etc/modprobe.d/a.conf"]
    );
    assert_eq!(
        ini.oversized,
        ["usr/lib/modules/6.1.0-test/modules.builtin"]
    );
}

#[test]
fn later_member_wins_and_padding_between_archives() {
    let mut v = sample();
    v.extend_from_slice(&[0; 512]);
    let mut second = Vec::new();
    member(&mut second, "etc/modprobe.d/a.conf", REG, b"second\n");
    trailer(&mut second);
    v.extend_from_slice(&gzip(&second));
    v.extend_from_slice(&[0; 3]);
    let ini = parse_all(&v).unwrap();
    assert_eq!(ini.archives.len(), 2);
    assert_eq!(ini.archives[1].compression, Compression::Gzip);
    assert_eq!(ini.archives[1].offset, sample().len() as u64 + 512);
    assert_eq!(ini.file("etc/modprobe.d/a.conf"), Some(&b"second\n"[..]));
    assert_eq!(
        ini.entry("etc/modprobe.d/a.conf").unwrap().archive,
        ini.archives[1].offset
    );
}

#[test]
fn byte_by_byte_feeding_matches_one_push() {
    let data = sample();
    let opts = ReadOptions {
        want: &want_all,
        ..ReadOptions::default()
    };
    let mut a = Collector::new(&opts);
    let mut p = Parser::new(&mut a, 0, Compression::Gzip, 0, true);
    for b in &data {
        p.feed(std::slice::from_ref(b)).unwrap();
    }
    assert!(p.at_end());
    let whole = parse_all(&data).unwrap();
    assert_eq!(a.entries, whole.entries);
    assert_eq!(
        a.files.get("etc/modprobe.d/a.conf").map(Vec::as_slice),
        Some(&b"blacklist floppy\n"[..])
    );
}

#[test]
fn crc_format_checks_the_sum() {
    let data = b"hello";
    let sum: u32 = data.iter().map(|&b| u32::from(b)).sum();
    let mk = |check: u32| {
        let mut v = newc_header("070702", REG, 5, 2, check);
        v.extend_from_slice(b"f\0");
        pad4(&mut v);
        v.extend_from_slice(data);
        pad4(&mut v);
        trailer(&mut v);
        v
    };
    assert_eq!(parse_all(&mk(sum)).unwrap().entries[0].path, "f");
    match parse_all(&mk(sum + 1)).unwrap_err() {
        InitramfsError::Checksum {
            expected,
            actual,
            name,
            ..
        } => {
            assert_eq!((expected, actual, name.as_str()), (sum + 1, sum, "f"));
        }
        e => panic!("{e}"),
    }
}

#[test]
fn odc_and_binary_headers() {
    // odc: magic dev ino mode uid gid nlink rdev (6 octal digits each) mtime(11) namesize(6)
    // filesize(11), then the name (no padding), then the data.
    let mut v = Vec::new();
    let odc = |v: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
        v.extend(
            format!(
                "070707{:06o}{:06o}{:06o}{:06o}{:06o}{:06o}{:06o}{:011o}{:06o}{:011o}",
                0,
                1,
                mode,
                0,
                0,
                1,
                0,
                0,
                name.len() + 1,
                data.len()
            )
            .as_bytes(),
        );
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        v.extend_from_slice(data);
    };
    odc(&mut v, "a", REG, b"xyz");
    odc(&mut v, "TRAILER!!!", 0, b"");
    let ini = parse_all(&v).unwrap();
    assert_eq!(ini.entries[0].size, 3);
    assert_eq!(ini.file("a"), Some(&b"xyz"[..]));

    // old binary, little-endian: 13 u16 words, name padded to even, data padded to even.
    let bin = |v: &mut Vec<u8>, name: &str, mode: u16, data: &[u8]| {
        let words = [
            0o070707u16,
            0,
            1,
            mode,
            0,
            0,
            1,
            0,
            0,
            0,
            name.len() as u16 + 1,
            0,
            data.len() as u16,
        ];
        for w in words {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        if v.len() % 2 == 1 {
            v.push(0);
        }
        v.extend_from_slice(data);
        if v.len() % 2 == 1 {
            v.push(0);
        }
    };
    let mut v = Vec::new();
    bin(&mut v, "bb", 0o100644, b"abc");
    bin(&mut v, "TRAILER!!!", 0, b"");
    let ini = parse_all(&v).unwrap();
    assert_eq!(ini.file("bb"), Some(&b"abc"[..]));

    // Formats may change from one member to the next: binary, then newc.
    let mut v = Vec::new();
    bin(&mut v, "bb", 0o100644, b"abcdef"); // 26 + 3 + 1 pad + 6 = 36: newc stays aligned
    member(&mut v, "cc", REG, b"x");
    trailer(&mut v);
    let ini = parse_all(&v).unwrap();
    assert_eq!(
        (ini.file("bb"), ini.file("cc")),
        (Some(&b"abcdef"[..]), Some(&b"x"[..]))
    );
}

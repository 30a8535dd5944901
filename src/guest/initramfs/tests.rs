//! Tests of the initramfs reader: a byte fixture and a negative test for every cpio rule,
//! decompression caps, a corruption sweep, and real archives made by cpio, gzip, xz, zstd and
//! lz4 (scripts/testdata/initramfs.sh).

use std::io::Write;
use std::path::PathBuf;

use super::cpio::{Collector, Parser};
use super::*;

// ---------------------------------------------------------------------------------------
// Fixtures: a newc writer with every field spelled out.

/// One newc header: magic then 13 fields of 8 hex digits (ino, mode, uid, gid, nlink, mtime,
/// filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check).
fn newc_header(magic: &str, mode: u32, filesize: u32, namesize: u32, check: u32) -> Vec<u8> {
    let fields = [1, mode, 0, 0, 1, 0, filesize, 0, 0, 0, 0, namesize, check];
    let mut h = magic.as_bytes().to_vec();
    for f in fields {
        h.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    assert_eq!(h.len(), 110);
    h
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// A newc member (header, name, NUL, padding, data, padding) appended to `v`.
fn member(v: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
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

fn trailer(v: &mut Vec<u8>) {
    member(v, "TRAILER!!!", 0, b"");
}

const DIR: u32 = 0o040755;
const REG: u32 = 0o100644;
const LNK: u32 = 0o120777;

/// A small archive: a directory, a file, a symlink, a wanted config file.
fn sample() -> Vec<u8> {
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

fn want_all(_: &str) -> bool {
    true
}

fn parse_all(data: &[u8]) -> Result<Initramfs, InitramfsError> {
    let opts = ReadOptions {
        want: &want_all,
        ..ReadOptions::default()
    };
    parse(data, &opts)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The rule text of an `Archive` error, or the whole message otherwise.
fn rule(e: &InitramfsError) -> String {
    match e {
        InitramfsError::Archive { rule, .. } => (*rule).to_string(),
        other => other.to_string(),
    }
}

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
}

// ---------------------------------------------------------------------------------------
// One negative test per rule.

#[test]
fn every_newc_field_must_be_hex() {
    let names = [
        "c_ino",
        "c_mode",
        "c_uid",
        "c_gid",
        "c_nlink",
        "c_mtime",
        "c_filesize",
        "c_devmajor",
        "c_devminor",
        "c_rdevmajor",
        "c_rdevminor",
        "c_namesize",
        "c_check",
    ];
    for (i, want) in names.iter().enumerate() {
        let mut v = sample();
        v[6 + 8 * i + 3] = b'g';
        match parse_all(&v).unwrap_err() {
            InitramfsError::Field { field, at, .. } => {
                assert_eq!(field, *want);
                assert_eq!(at.offset, 0);
            }
            e => panic!("field {want}: {e}"),
        }
    }
    // A space or a sign is not a hex digit either (the kernel's strtoul would accept them).
    let mut v = sample();
    v[6] = b' ';
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field { field: "c_ino", .. }
    ));
}

#[test]
fn odc_field_must_be_octal() {
    let mut v = b"070707".to_vec();
    v.extend_from_slice(b"000000000009"); // dev ok, ino has a 9
    v.resize(76, b'0');
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field { field: "c_ino", .. }
    ));
}

#[test]
fn bad_cpio_magic() {
    let mut v = sample();
    v[5] = b'3'; // 070703
    assert!(rule(&parse_all(&v).unwrap_err()).contains("bad cpio magic"));
    // Inside a decompressed stream too.
    let mut v = sample();
    let second = v.len() - 124; // start of the trailer member
    v[second + 1] = b'8';
    assert!(rule(&parse_all(&gzip(&v)).unwrap_err()).contains("bad cpio magic"));
}

#[test]
fn namesize_zero_and_too_long() {
    let mut v = newc_header("070701", REG, 0, 0, 0);
    trailer(&mut v);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field {
            field: "c_namesize",
            ..
        }
    ));
    let v = newc_header("070701", REG, 0, MAX_NAME_LEN as u32 + 2, 0);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::NameTooLong { len: 4096, .. }
    ));
}

#[test]
fn name_must_end_in_one_nul() {
    let mut v = newc_header("070701", REG, 0, 4, 0);
    v.extend_from_slice(b"abcd");
    pad4(&mut v);
    trailer(&mut v);
    assert_eq!(
        rule(&parse_all(&v).unwrap_err()),
        "name is not NUL-terminated"
    );
    let mut v = newc_header("070701", REG, 0, 4, 0);
    v.extend_from_slice(b"a\0c\0");
    pad4(&mut v);
    trailer(&mut v);
    assert_eq!(
        rule(&parse_all(&v).unwrap_err()),
        "NUL byte inside the name"
    );
}

#[test]
fn newc_must_start_aligned() {
    let mut v = vec![0u8, 0];
    v.extend(sample());
    let e = parse_all(&v).unwrap_err();
    assert_eq!(rule(&e), "newc header not on a 4-byte boundary");
    assert!(e.to_string().contains("file offset 2"), "{e}");
}

#[test]
fn truncated_archives_are_refused() {
    let v = sample();
    for cut in [50, 110, 115, v.len() - 124, v.len() - 1] {
        let e = parse_all(&v[..cut]).unwrap_err();
        assert!(
            rule(&e).contains("archive ends inside a member"),
            "cut {cut}: {e}"
        );
        let e = parse_all(&gzip(&v[..cut])).unwrap_err();
        assert!(
            rule(&e).contains("archive ends inside a member"),
            "gzip cut {cut}: {e}"
        );
    }
    // A cut compressed stream is a decompression error.
    let gz = gzip(&v);
    assert!(matches!(
        parse_all(&gz[..gz.len() - 5]).unwrap_err(),
        InitramfsError::Decompress { method: "gzip", .. }
    ));
}

#[test]
fn junk_after_trailer() {
    let mut v = sample();
    v.extend_from_slice(b"\0\0\0\0JUNK");
    assert!(rule(&parse_all(&gzip(&v)).unwrap_err()).contains("junk after TRAILER!!!"));
    // At top level the junk is an unknown archive magic.
    match parse_all(&v).unwrap_err() {
        InitramfsError::UnknownMagic { offset, magic } => {
            assert_eq!(offset, sample().len() as u64 + 4);
            assert_eq!(magic, "4a554e4b");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn symlink_target_and_file_size_caps() {
    let mut v = newc_header("070701", LNK, 5000, 2, 0);
    v.extend_from_slice(b"l\0");
    assert!(rule(&parse_all(&v).unwrap_err()).contains("symlink target longer"));
    let v = newc_header("070701", REG, u32::MAX, 2, 0);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field {
            field: "c_filesize",
            ..
        }
    ));
}

#[test]
fn unsupported_and_unknown_compression() {
    let mut v = sample();
    v.extend_from_slice(b"BZh91AY&SY");
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Unsupported {
            method: "bzip2",
            ..
        }
    ));
    assert!(matches!(
        parse_all(b"\x7fELF").unwrap_err(),
        InitramfsError::UnknownMagic { offset: 0, .. }
    ));
}

#[test]
fn too_many_archives() {
    let one = sample();
    let v: Vec<u8> = std::iter::repeat_n(one.as_slice(), MAX_ARCHIVES + 1)
        .flatten()
        .copied()
        .collect();
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::TooManyArchives {
            limit: MAX_ARCHIVES,
            ..
        }
    ));
    let v: Vec<u8> = std::iter::repeat_n(one.as_slice(), MAX_ARCHIVES)
        .flatten()
        .copied()
        .collect();
    assert_eq!(parse_all(&v).unwrap().archives.len(), MAX_ARCHIVES);
}

#[test]
fn too_many_entries() {
    let mut v = Vec::new();
    for i in 0..=MAX_ENTRIES {
        member(&mut v, &format!("{i:x}"), REG, b"");
    }
    trailer(&mut v);
    assert!(matches!(
        parse(&v, &ReadOptions::default()).unwrap_err(),
        InitramfsError::TooManyEntries {
            limit: MAX_ENTRIES,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Decompression caps.

/// An LZ4 legacy stream of `blocks` blocks of 8 MiB of zeros: about 33 KiB per block.
fn lz4_zero_bomb(blocks: usize) -> Vec<u8> {
    let mut v = vec![0x02, 0x21, 0x4C, 0x18];
    let mut first = sample();
    first.resize(8 << 20, 0);
    let head = lz4_flex::block::compress(&first);
    let zeros = lz4_flex::block::compress(&vec![0u8; 8 << 20]);
    for i in 0..blocks {
        let b = if i == 0 { &head } else { &zeros };
        v.extend_from_slice(&(b.len() as u32).to_le_bytes());
        v.extend_from_slice(b);
    }
    v
}

#[test]
fn lz4_bomb_refused_by_the_cap() {
    // 8 MiB is a cpio followed by zeros: fine.
    let ini = parse_all(&lz4_zero_bomb(1)).unwrap();
    assert_eq!(ini.archives[0].compression, Compression::Lz4Legacy);
    assert_eq!(ini.entries.len(), 4);
    // 129 blocks = 1032 MiB > 1 GiB: refused while streaming, in a few MiB of memory.
    let bomb = lz4_zero_bomb(129);
    assert!(bomb.len() < 5 << 20);
    match parse_all(&bomb).unwrap_err() {
        InitramfsError::TooLarge { limit, at } => {
            assert_eq!(limit, MAX_TOTAL_BYTES);
            assert_eq!(at.compression, Compression::Lz4Legacy);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn lz4_block_bound() {
    let mut v = vec![0x02, 0x21, 0x4C, 0x18];
    v.extend_from_slice(&(9u32 << 20).to_le_bytes());
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Decompress { method: "lz4", .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Real archives from scripts/testdata/initramfs.sh.

fn testdata(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("IMGPORT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/cache"));
    let p = dir.join("initramfs").join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/make-testdata.sh", p.display()))
}

const MODDIR: &str = "usr/lib/modules/6.1.0-test";

fn has(ini: &Initramfs, rel: &str) -> bool {
    ini.entry(&format!("{MODDIR}/{rel}")).is_some()
}

fn check_virtio_tree(ini: &Initramfs) {
    assert!(has(ini, "kernel/drivers/block/virtio_blk.ko.xz"));
    assert!(has(ini, "kernel/drivers/nvme/host/nvme.ko.xz"));
    assert_eq!(
        ini.entry(&format!("{MODDIR}/kernel/drivers/block"))
            .unwrap()
            .kind,
        EntryKind::Dir
    );
    assert_eq!(
        ini.entry("lib").unwrap().link_target.as_deref(),
        Some("usr/lib")
    );
    assert_eq!(ini.entry("usr/bin/busybox").unwrap().size, 70000);
    assert_eq!(
        ini.file(&format!("{MODDIR}/modules.builtin")),
        Some(&b"kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n"[..])
    );
    assert_eq!(
        ini.file("etc/modprobe.d/local.conf"),
        Some(&b"options ext4 debug=0\n"[..])
    );
}

fn want_small(p: &str) -> bool {
    p.ends_with("modules.builtin") || p.starts_with("etc/modprobe.d/")
}

fn real(name: &str) -> Result<Initramfs, InitramfsError> {
    let opts = ReadOptions {
        want: &want_small,
        ..ReadOptions::default()
    };
    parse(&testdata(name), &opts)
}

#[test]
fn real_single_archives_every_format_and_compression() {
    for name in [
        "virtio.cpio",
        "virtio-crc.cpio",
        "virtio-odc.cpio",
        "virtio-bin.cpio",
        "virtio.cpio.gz",
        "virtio.cpio.xz",
        "virtio.cpio.lzma",
        "virtio.cpio.zst",
        "virtio.cpio.lz4",
    ] {
        let ini = real(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_virtio_tree(&ini);
        assert_eq!(ini.archives.len(), 1, "{name}");
        // An uncompressed archive ends after its trailer; cpio pads the file to 512 bytes.
        let data = testdata(name);
        let len = ini.archives[0].len as usize;
        assert!(
            len <= data.len() && data[len..].iter().all(|&b| b == 0),
            "{name}"
        );
        if !name.ends_with(".cpio") {
            assert_eq!(len, data.len(), "{name}");
        }
    }
}

#[test]
fn real_early_microcode_then_compressed_main() {
    let early_len = testdata("early.cpio").len() as u64;
    for (name, comp) in [
        ("early-virtio-zstd.img", Compression::Zstd),
        ("early-virtio-xz.img", Compression::Xz),
        ("early-virtio-lz4.img", Compression::Lz4Legacy),
    ] {
        let ini = real(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_virtio_tree(&ini);
        let kinds: Vec<_> = ini
            .archives
            .iter()
            .map(|a| (a.offset, a.compression))
            .collect();
        assert_eq!(kinds, [(0, Compression::None), (early_len, comp)], "{name}");
        let ucode = ini.entry("kernel/x86/microcode/GenuineIntel.bin").unwrap();
        assert_eq!((ucode.size, ucode.archive), (10000, 0));
    }
    let ini = real("early-plain-gzip.img").unwrap();
    assert!(!has(&ini, "kernel/drivers/block/virtio_blk.ko.xz"));
    assert!(has(&ini, "kernel/fs/ext4/ext4.ko.xz"));
    assert_eq!(ini.archives[1].compression, Compression::Gzip);
}

#[test]
fn real_multi_archive_streams() {
    let ini = real("two-in-one.cpio.gz").unwrap();
    assert_eq!(ini.archives.len(), 1);
    check_virtio_tree(&ini);
    // The plain tree came first; the virtio tree's modules.builtin replaced it.
    assert_eq!(
        ini.entries
            .iter()
            .filter(|e| e.path == "usr/bin/busybox")
            .count(),
        2
    );
    let ini = real("two-frames.cpio.zst").unwrap();
    assert_eq!(ini.archives.len(), 1);
    check_virtio_tree(&ini);
    let ini = real("gz-pad-xz.img").unwrap();
    let kinds: Vec<_> = ini.archives.iter().map(|a| a.compression).collect();
    assert_eq!(kinds, [Compression::Gzip, Compression::Xz]);
    check_virtio_tree(&ini);
}

#[test]
fn real_broken_images_are_refused_with_the_place() {
    let e = real("truncated.cpio.gz").unwrap_err();
    assert!(
        matches!(
            e,
            InitramfsError::Decompress {
                offset: 0,
                method: "gzip",
                ..
            }
        ),
        "{e}"
    );
    let e = real("truncated.cpio").unwrap_err();
    assert!(rule(&e).contains("archive ends inside a member"), "{e}");
    let e = real("early-truncated-zstd.img").unwrap_err();
    let early_len = testdata("early.cpio").len() as u64;
    assert!(
        matches!(e, InitramfsError::Decompress { method: "zstd", offset, .. } if offset == early_len),
        "{e}"
    );
    assert!(matches!(
        real("corrupt.cpio.gz").unwrap_err(),
        InitramfsError::Decompress { .. }
    ));
    let e = real("badhex.cpio").unwrap_err();
    assert!(
        matches!(
            e,
            InitramfsError::Field {
                field: "c_mode",
                at: At { offset: 0, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        real("junk-after.img").unwrap_err(),
        InitramfsError::UnknownMagic { .. }
    ));
    assert!(matches!(
        real("early-bzip2.img").unwrap_err(),
        InitramfsError::Unsupported {
            method: "bzip2",
            ..
        }
    ));
}

#[test]
fn real_zstd_bomb_refused_by_the_cap() {
    let data = testdata("bomb.cpio.zst");
    assert!(data.len() < 1 << 20);
    match real("bomb.cpio.zst").unwrap_err() {
        InitramfsError::TooLarge { limit, at } => {
            assert_eq!(limit, MAX_TOTAL_BYTES);
            assert_eq!(at.offset, MAX_TOTAL_BYTES);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn corruption_sweep_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0x1417);
    let names = [
        "early-virtio-zstd.img",
        "early-virtio-xz.img",
        "early-virtio-lz4.img",
        "virtio.cpio.gz",
        "virtio.cpio.lzma",
        "virtio-crc.cpio",
        "virtio-odc.cpio",
        "virtio-bin.cpio",
    ];
    let mut refused = 0;
    let mut runs = 0;
    for name in names {
        let good = testdata(name);
        for round in 0..60 {
            let mut v = good.clone();
            match round % 3 {
                0 => {
                    for _ in 0..rng.usize(1..8) {
                        let i = rng.usize(..v.len());
                        v[i] = rng.u8(..);
                    }
                }
                1 => v.truncate(rng.usize(..v.len())),
                _ => {
                    // Corrupt the headers region of the uncompressed part, where rules live.
                    let i = rng.usize(..v.len().min(12000));
                    v[i] = rng.u8(..);
                }
            }
            runs += 1;
            if real_bytes(&v).is_err() {
                refused += 1;
            }
        }
    }
    // Most mutations must be caught (checksums, structure); this proves the sweep bites.
    assert!(refused * 2 > runs, "{refused} of {runs} refused");
}

#[test]
fn every_single_byte_mutation_of_a_fixture() {
    // Exhaustive over positions and a few values, plain and gzip-wrapped (the same bytes as
    // a decompressed stream): never a panic, and never more members than the fixture has.
    let good = sample();
    for i in 0..good.len() {
        for val in [0u8, b'0', b'7', b'f', b'g', 0xff] {
            let mut v = good.clone();
            v[i] = val;
            if let Ok(ini) = parse_all(&v) {
                assert!(ini.entries.len() <= 5, "byte {i} = {val}");
            }
            if let Ok(ini) = parse_all(&gzip(&v)) {
                assert!(ini.entries.len() <= 5, "gzip byte {i} = {val}");
            }
        }
    }
    // Random bytes alone and behind each magic.
    let mut rng = fastrand::Rng::with_seed(7);
    let magics: [&[u8]; 7] = [
        b"",
        b"070701",
        b"\x1f\x8b",
        b"\xfd7zXZ\0",
        b"\x28\xb5\x2f\xfd",
        b"\x02\x21\x4c\x18",
        b"\x5d\0\0",
    ];
    for magic in magics {
        for _ in 0..200 {
            let mut v = magic.to_vec();
            v.extend((0..rng.usize(0..300)).map(|_| rng.u8(..)));
            let _ = parse_all(&v);
        }
    }
}

fn real_bytes(v: &[u8]) -> Result<Initramfs, InitramfsError> {
    let opts = ReadOptions {
        want: &want_small,
        ..ReadOptions::default()
    };
    parse(v, &opts)
}

#[test]
fn host_initramfs_if_present() {
    // Not part of the contract: only exercised on machines that have a real /boot.
    let Ok(dir) = std::fs::read_dir("/boot") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("initrd.img-") || name.starts_with("initramfs-"))
            || name.contains("kdump")
        {
            continue;
        }
        let Ok(data) = std::fs::read(e.path()) else {
            continue;
        };
        let ini = real_bytes(&data).unwrap_or_else(|err| panic!("/boot/{name}: {err}"));
        assert!(
            ini.entries.iter().any(|e| e.path.contains("/modules/")),
            "/boot/{name}"
        );
    }
}

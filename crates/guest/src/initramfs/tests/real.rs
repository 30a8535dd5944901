//! Real archives from scripts/testdata/initramfs.sh, and corruption sweeps over them.

use super::*;

fn testdata(name: &str) -> Vec<u8> {
    imgport_testdata::cached_bytes(&format!("initramfs/{name}"))
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
    // 1.2 GiB of cpio stream in a few hundred KiB: the decoder streams (its window is capped
    // by MAX_WINDOW), so the cap stops it, not the memory.
    let data = testdata("bomb.cpio.zst");
    assert!(data.len() < 1 << 20);
    match real("bomb.cpio.zst").unwrap_err() {
        InitramfsError::TooLarge { limit, at } => {
            assert_eq!(limit, MAX_TOTAL_BYTES);
            assert_eq!(
                (at.offset, at.compression),
                (MAX_TOTAL_BYTES, Compression::Zstd)
            );
        }
        e => panic!("{e}"),
    }
}

#[test]
fn real_xz_bomb_refused_by_a_lower_cap() {
    let data = testdata("bomb.cpio.xz");
    let opts = ReadOptions {
        max_total_bytes: 64 << 20,
        ..ReadOptions::default()
    };
    match parse(&data, &opts).unwrap_err() {
        InitramfsError::TooLarge { limit, at } => {
            assert_eq!(limit, 64 << 20);
            assert_eq!((at.offset, at.compression), (64 << 20, Compression::Xz));
        }
        e => panic!("{e}"),
    }
    // Under the full cap the same stream is accepted: zeros after a trailer are padding.
    let ini = parse(&data, &ReadOptions::default()).unwrap();
    assert!(ini.entry("kernel/x86/microcode/GenuineIntel.bin").is_some());
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

/// `parse_chunks` over `data` cut into pieces of `size` bytes.
fn in_pieces(data: &[u8], size: usize) -> Result<Initramfs, InitramfsError> {
    let opts = ReadOptions {
        want: &want_small,
        ..ReadOptions::default()
    };
    let mut pieces = data.chunks(size).map(<[u8]>::to_vec);
    parse_chunks(data.len() as u64, &mut pieces, &opts)
}

/// The whole answer (members, kept files, archives) or the error, as text.
fn answer(r: &Result<Initramfs, InitramfsError>) -> String {
    match r {
        Ok(ini) => {
            let files: Vec<(&str, Option<&[u8]>)> =
                ini.kept_files().map(|p| (p, ini.file(p))).collect();
            format!("{ini:?} {files:?}")
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn pieces_give_the_answers_of_the_whole_file() {
    // Every real archive, good and broken, whole and mutated: pieces split magics, headers,
    // gzip trailers and the zeros between archives, and must change no answer nor error.
    let mut rng = fastrand::Rng::with_seed(0x2005);
    let dir = imgport_testdata::cached("initramfs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "STAMP")
        .collect();
    names.sort();
    assert!(names.len() > 20, "{names:?}");
    for name in &names {
        let good = testdata(name);
        let mut inputs = vec![good.clone()];
        for _ in 0..4 {
            let mut v = good.clone();
            if v.is_empty() {
                break;
            }
            let i = rng.usize(..v.len());
            v[i] = rng.u8(..);
            inputs.push(v);
        }
        inputs.push(good[..rng.usize(..good.len().max(1))].to_vec());
        for v in &inputs {
            let whole = answer(&real_bytes(v));
            for size in [1, 5, 4096, 65_537] {
                assert_eq!(
                    answer(&in_pieces(v, size)),
                    whole,
                    "{name}, pieces of {size}"
                );
            }
        }
    }
}

//! FAT reads compared with the files mtools copied in (scripts/testdata/windows.sh), plus
//! corruption cases made by patching those images.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;

/// Bytes of `windows/<name>` from the test-image cache (`$IMGPORT_TESTDATA`, else
/// `testdata/cache`); fails loudly when scripts/make-testdata.sh has not built it.
pub(crate) fn test_image(name: &str) -> Vec<u8> {
    let p = test_image_path(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "test image {} missing ({e}): run scripts/make-testdata.sh",
            p.display()
        )
    })
}

/// Path of `windows/<name>` in the test-image cache.
pub(crate) fn test_image_path(name: &str) -> PathBuf {
    imgport_testdata::testdata_dir().join("windows").join(name)
}

fn open_img(name: &str) -> FatFs {
    open(Arc::new(test_image(name))).unwrap()
}

fn read_all(fs: &dyn FileSystem, path: &str) -> Vec<u8> {
    let info = fs.lstat(path.as_bytes()).unwrap().unwrap();
    let mut buf = vec![0u8; info.size as usize + 10];
    let n = fs.read_at(path.as_bytes(), 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn check_volume(name: &str, fat_type: &str, label: &str, uuid: &str) {
    let fs = open_img(name);
    assert_eq!(fs.fat_type(), fat_type);
    assert_eq!(fs.kind(), "vfat");
    assert!(fs.case_insensitive());
    assert_eq!(fs.label().as_deref(), Some(label));
    assert_eq!(fs.uuid().as_deref(), Some(uuid));
    for (path, src) in [
        ("/EFI/BOOT/BOOTX64.EFI", "BOOTX64.EFI"),
        ("/efi/boot/bootx64.efi", "BOOTX64.EFI"),
        ("/EFI/Microsoft/Boot/bootmgfw.efi", "bootmgfw.efi"),
        ("/EFI/MICROSOFT/BOOT/BOOTMGFW.EFI", "bootmgfw.efi"),
        ("/A long file name, with spaces.txt", "long.txt"),
        ("/a LONG file name, WITH spaces.TXT", "long.txt"),
        ("/ALONGF~1.TXT", "long.txt"),
        ("/big.bin", "big.bin"),
        ("/many/entry-117.txt", "entry-117.txt"),
    ] {
        assert_eq!(
            read_all(&fs, path),
            test_image(&format!("files/{src}")),
            "{name}: {path}"
        );
    }
    // A read from the middle crosses cluster boundaries.
    let big = test_image("files/big.bin");
    let mut buf = vec![0u8; 10_000];
    assert_eq!(fs.read_at(b"/big.bin", 123_457, &mut buf).unwrap(), 10_000);
    assert_eq!(buf, big[123_457..133_457]);
    assert_eq!(fs.read_at(b"/big.bin", 299_990, &mut buf).unwrap(), 10);
    assert_eq!(fs.read_at(b"/big.bin", 400_000, &mut buf).unwrap(), 0);

    let mut root: Vec<String> = fs
        .read_dir(b"/")
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    root.sort();
    assert_eq!(
        root,
        [
            "A long file name, with spaces.txt",
            "EFI",
            "big.bin",
            "lower.txt",
            "many"
        ]
    );
    let many = fs.read_dir(b"/many").unwrap();
    assert_eq!(many.len(), 120);
    assert!(many.iter().all(|e| e.kind == NodeKind::File));
    assert_eq!(
        fs.lstat(b"/EFI").unwrap(),
        Some(NodeInfo {
            kind: NodeKind::Dir,
            size: 0
        })
    );
    assert_eq!(fs.lstat(b"/").unwrap().unwrap().kind, NodeKind::Dir);
    assert!(fs.lstat(b"/EFI/nope").unwrap().is_none());
    assert!(fs.lstat(b"/big.bin/under-a-file").unwrap().is_none());
    assert!(fs.read_dir(b"/big.bin").is_err());
    assert!(fs.read_at(b"/EFI", 0, &mut buf).is_err());
    assert!(fs.read_link(b"/big.bin").is_err());
}

#[test]
fn fat32_esp() {
    check_volume("esp32.img", "fat32", "ESP", "1234-ABCD");
}

#[test]
fn fat16() {
    check_volume("esp16.img", "fat16", "FAT16VOL", "0BAD-F00D");
}

#[test]
fn fat12() {
    check_volume("esp12.img", "fat12", "FAT12VOL", "00C0-FFEE");
}

#[test]
fn probe_accepts_fat_and_refuses_others() {
    for img in ["esp32.img", "esp16.img", "esp12.img"] {
        assert!(probe(&test_image(img)[..512]), "{img}");
    }
    assert!(!probe(&test_image("ntfs-win2022.img")[..512]));
    assert!(!probe(&[0u8; 512]));
    assert!(!probe(&[0u8; 100]));
}

/// Finds the FAT entry offset (in the image) of the first cluster of `/big.bin`.
fn big_bin_fat_entry(img: &[u8]) -> (usize, u32) {
    let fs = open(Arc::new(img.to_vec())).unwrap();
    let Some(Node::Entry(e)) = fs.lookup(b"/big.bin").unwrap() else {
        panic!("big.bin missing")
    };
    (
        fs.bpb.fat_offset as usize + 4 * e.first_cluster as usize,
        e.first_cluster,
    )
}

#[test]
fn cluster_chain_loop_and_range_are_refused() {
    let good = test_image("esp32.img");
    let (at, first) = big_bin_fat_entry(&good);
    // The first cluster points back to itself: a loop.
    let mut img = good.clone();
    img[at..at + 4].copy_from_slice(&first.to_le_bytes());
    let fs = open(Arc::new(img)).unwrap();
    let err = fs.read_at(b"/big.bin", 0, &mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("loops back"), "{err}");
    // The chain points past the last cluster.
    let mut img = good.clone();
    img[at..at + 4].copy_from_slice(&0x0FFF_FFF0u32.to_le_bytes());
    let fs = open(Arc::new(img)).unwrap();
    let err = fs.read_at(b"/big.bin", 0, &mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("outside 2.."), "{err}");
    // The chain ends early: fewer clusters than the size needs.
    let mut img = good.clone();
    img[at..at + 4].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
    let fs = open(Arc::new(img)).unwrap();
    let err = fs.read_at(b"/big.bin", 0, &mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("cannot hold"), "{err}");
}

#[test]
fn boot_sector_rules() {
    let good = test_image("esp16.img");
    let cases: [(usize, &[u8], &str); 6] = [
        (510, &[0, 0], "55 AA"),
        (11, &[0x00, 0x03], "BPB_BytsPerSec"),
        (13, &[3], "BPB_SecPerClus"),
        (14, &[0, 0], "BPB_RsvdSecCnt"),
        (16, &[0], "BPB_NumFATs"),
        (17, &[0, 0], "BPB_RootEntCnt"),
    ];
    for (at, bytes, want) in cases {
        let mut img = good.clone();
        img[at..at + bytes.len()].copy_from_slice(bytes);
        let err = open(Arc::new(img)).err().expect(want).to_string();
        assert!(err.contains(want), "{err} lacks {want}");
    }
    // More sectors than the volume holds.
    let mut img = good.clone();
    img[19..21].copy_from_slice(&[0, 0]);
    img[32..36].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    let err = open(Arc::new(img)).err().unwrap().to_string();
    assert!(err.contains("pass the end"), "{err}");
    // Metadata larger than the volume.
    let mut img = good.clone();
    img[22..24].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let err = open(Arc::new(img)).err().unwrap().to_string();
    assert!(err.contains("leave no room"), "{err}");
    // No FAT size (FAT32 keeps it at 36; 22 is already 0).
    let mut img = test_image("esp32.img");
    img[36..40].copy_from_slice(&[0; 4]);
    let err = open(Arc::new(img)).err().unwrap().to_string();
    assert!(err.contains("BPB_FATSz"), "{err}");
    // FAT32 with a fixed root directory count.
    let mut img = test_image("esp32.img");
    img[17..19].copy_from_slice(&16u16.to_le_bytes());
    let err = open(Arc::new(img)).err().unwrap().to_string();
    assert!(err.contains("not 0 on FAT32"), "{err}");
    // Clusters above 256 KiB.
    let mut img = good.clone();
    img[11..13].copy_from_slice(&4096u16.to_le_bytes());
    img[13] = 128;
    let err = open(Arc::new(img)).err().unwrap().to_string();
    assert!(
        err.contains("256 KiB") || err.contains("leave no room"),
        "{err}"
    );
}

#[test]
fn hostile_byte_flips_never_panic() {
    let good = test_image("esp12.img");
    // The metadata region: boot sector, FATs, root directory and the first clusters.
    let meta = 64 * 1024;
    let mut rng = fastrand::Rng::with_seed(0xFA7);
    for _ in 0..400 {
        let mut img = good.clone();
        for _ in 0..rng.usize(1..16) {
            let i = rng.usize(0..meta);
            img[i] = rng.u8(..);
        }
        if let Ok(fs) = open(Arc::new(img)) {
            for p in ["/", "/EFI/BOOT", "/many", "/EFI/Microsoft/Boot"] {
                if let Ok(entries) = fs.read_dir(p.as_bytes()) {
                    for e in entries.iter().take(8) {
                        let mut path = p.trim_end_matches('/').as_bytes().to_vec();
                        path.push(b'/');
                        path.extend_from_slice(&e.name);
                        let _ = fs.lstat(&path);
                        let _ = fs.read_at(&path, 0, &mut [0u8; 4096]);
                    }
                }
            }
        }
    }
}

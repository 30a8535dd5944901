//! The XFS, FAT, NTFS and registry readers wired into the guest inspector: a whole Windows
//! disk (`scripts/testdata/guestwin.sh`), the loaders on an ESP as boot evidence, and dirty
//! XFS / NTFS volumes. Oracles: hivexget for the hives, blkid for the volumes, mtools for the
//! ESP, the on-disk structures (read here by hand) for the dirty flags.

use crate::guest::{assert_table, blkid, codes, fs_by_device, guest_of, sh_out, warnings};
use crate::util::*;

/// A sparse copy of a cached test disk, to patch the way a crash or a user would, with the
/// guest facts of the untouched original.
struct PatchedCopy {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clean: serde_json::Value,
}

impl PatchedCopy {
    fn of(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("patched.raw");
        sh_out(&format!(
            "cp --sparse=always '{}' '{}'",
            image(name).display(),
            path.display()
        ));
        Self {
            dir,
            path,
            clean: guest_of(name),
        }
    }

    fn read_at(&self, at: u64, len: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mut b = vec![0u8; len];
        std::fs::File::open(&self.path)
            .unwrap()
            .read_exact_at(&mut b, at)
            .unwrap();
        b
    }

    fn write_at(&self, at: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap()
            .write_all_at(bytes, at)
            .unwrap();
    }
}

/// A GPT Windows Server 2022 disk (`scripts/testdata/guestwin.sh`): FAT32 ESP with Windows
/// Boot Manager and the removable-media loader, NTFS system volume with the hives.
#[test]
fn windows_server_2022_gpt_disk() {
    let path = image("guestwin/win2022-gpt.raw");
    let g = guest_of("guestwin/win2022-gpt.raw");
    assert_table(&g, &path);
    // the hive's own values, read back by hivexget (libhivex) as the oracle
    let hive = testdata().join("guestwin/hives");
    let hivex = |file: &str, key: &str, value: &str| {
        sh_out(&format!(
            "hivexget '{}' '{key}' {value}",
            hive.join(file).display()
        ))
        .trim()
        .to_string()
    };
    let cv = r"Microsoft\Windows NT\CurrentVersion";
    assert_eq!(g["os_type"], "windows");
    assert_eq!(g["distro"], "windows");
    assert_eq!(g["product_name"], hivex("SOFTWARE", cv, "ProductName"));
    assert_eq!(g["platform"], "Windows Server 2022");
    assert_eq!(
        g["version"],
        format!("10.0.{}", hivex("SOFTWARE", cv, "CurrentBuildNumber"))
    );
    // cmd.exe is an x86-64 PE file
    assert_eq!(g["architecture"], "x86_64");
    // GPT system disk, ESP with bootmgfw.efi: UEFI
    assert_eq!(g["boot_mode"], "UEFI");
    assert_eq!(
        g["boot_evidence"],
        serde_json::json!([
            "ESP partition 1: EFI/BOOT/BOOTX64.EFI (x86_64)",
            "ESP partition 1: EFI/MICROSOFT/BOOT/BOOTMGFW.EFI (x86_64)"
        ])
    );
    let esp = fs_by_device(&g, "partition 1");
    let (kind, uuid, label) = blkid(&path, g["partitions"][0]["start"].as_u64().unwrap());
    assert_eq!(
        (esp["kind"].as_str(), kind.as_str()),
        (Some("vfat"), "vfat")
    );
    assert_eq!(
        (esp["uuid"].as_str(), esp["label"].as_str()),
        (Some(uuid.as_str()), Some(label.as_str()))
    );
    assert_eq!(esp["role"], "esp");
    let win = fs_by_device(&g, "partition 2");
    let (kind, uuid, label) = blkid(&path, g["partitions"][1]["start"].as_u64().unwrap());
    assert_eq!(
        (win["kind"].as_str(), kind.as_str()),
        (Some("ntfs"), "ntfs")
    );
    assert_eq!(
        (win["uuid"].as_str(), win["label"].as_str()),
        (Some(uuid.as_str()), Some(label.as_str()))
    );
    assert_eq!(win["role"], "windows");
    // drivers from the services of the current control set: viostor and stornvme boot-start
    let svc = |name: &str| {
        hivex(
            "SYSTEM",
            &format!(r"ControlSet001\Services\{name}"),
            "Start",
        )
    };
    assert_eq!(
        (svc("viostor"), svc("stornvme")),
        ("0".to_string(), "0".to_string())
    );
    assert_eq!(g["drivers"]["virtio"], true);
    assert_eq!(g["drivers"]["virtio_in_initramfs"], true);
    assert_eq!(g["drivers"]["nvme"], true);
    assert_eq!(g["drivers"]["nvme_in_initramfs"], true);
    assert_eq!(g["cloud_init"], true, "cloudbase-init service, Start=2");
    // clean volume and hives: no warnings, and each finding once
    assert!(warnings(&g).is_empty(), "{:?}", warnings(&g));
    let c = codes(&g);
    let mut dedup = c.clone();
    dedup.dedup();
    assert_eq!(c, dedup);

    assert_params(
        &planned_import_params(&path),
        &[
            ("Platform", "Windows Server 2022"),
            ("OSType", "windows"),
            ("Architecture", "x86_64"),
            ("BootMode", "UEFI"),
        ],
    );
}

/// The NTFS `$Volume` dirty flag set on the Windows disk's system volume (as Windows leaves
/// it after a crash) is a warning of its own; the facts are still read.
#[test]
fn dirty_ntfs_volume_is_flagged() {
    let copy = PatchedCopy::of("guestwin/win2022-gpt.raw");
    assert!(!codes(&copy.clean).contains(&"guest.ntfs_dirty".to_string()));
    let start = copy.clean["partitions"][1]["start"].as_u64().unwrap();
    // boot sector: bytes per sector (0x0B), sectors per cluster (0x0D), $MFT cluster (0x30)
    let boot = copy.read_at(start, 512);
    let cluster = u64::from(u16::from_le_bytes([boot[0x0b], boot[0x0c]])) * u64::from(boot[0x0d]);
    let mft = u64::from_le_bytes(boot[0x30..0x38].try_into().unwrap()) * cluster;
    // MFT record 3 is $Volume (1 KiB records); find $VOLUME_INFORMATION (type 0x70)
    let rec_at = start + mft + 3 * 1024;
    let rec = copy.read_at(rec_at, 1024);
    assert_eq!(&rec[..4], b"FILE");
    let le16 = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = le16(&rec, 0x14);
    while le32(&rec, at) != 0x70 {
        assert_ne!(le32(&rec, at), u32::MAX, "no $VOLUME_INFORMATION");
        at += le32(&rec, at + 4) as usize;
    }
    // flags: 10 bytes into the resident value; bit 0 is VOLUME_IS_DIRTY (the record's
    // update sequence covers the last two bytes of each sector only)
    let flags = at + le16(&rec, at + 0x14) + 10;
    copy.write_at(rec_at + flags as u64, &[rec[flags] | 1]);
    let (run, obj) = inspect_one(&copy.path, &[]);
    run.expect_code(0);
    let g = &obj["guest"];
    let c = codes(g);
    assert_eq!(
        c.iter().filter(|x| *x == "guest.ntfs_dirty").count(),
        1,
        "{c:?}"
    );
    assert_eq!(g["platform"], "Windows Server 2022");
}

/// EFI loaders for another architecture than the userland's (arm64 loaders on the x86-64
/// Debian disk, written with mtools into a copy of its ESP) are a warning.
#[test]
fn esp_loader_architecture_is_cross_checked() {
    let copy = PatchedCopy::of("guest/debian-gpt.raw");
    assert!(!codes(&copy.clean).contains(&"guest.arch_mismatch".to_string()));
    let esp_at = format!(
        "{}@@{}",
        copy.path.display(),
        copy.clean["partitions"][0]["start"]
    );
    let pe = copy.dir.path().join("aa64.efi");
    sh_out(&format!(
        "python3 '{}/scripts/testdata/windows.py' pe '{}' 0xAA64 10 4096",
        env!("CARGO_MANIFEST_DIR"),
        pe.display()
    ));
    sh_out(&format!(
        "export MTOOLS_SKIP_CHECK=1; mcopy -o -i '{esp_at}' '{0}' ::/EFI/BOOT/BOOTX64.EFI && \
         mcopy -o -i '{esp_at}' '{0}' ::/EFI/debian/grubx64.efi",
        pe.display()
    ));
    let (run, obj) = inspect_one(&copy.path, &[]);
    run.expect_code(0);
    let g = &obj["guest"];
    assert_eq!(g["architecture"], "x86_64", "the userland decides");
    assert_eq!(
        g["boot_evidence"],
        serde_json::json!([
            "ESP partition 1: EFI/BOOT/BOOTX64.EFI (arm64)",
            "ESP partition 1: EFI/DEBIAN/GRUBX64.EFI (arm64)"
        ]),
        "the PE header wins over the file name"
    );
    assert!(
        codes(g).contains(&"guest.arch_mismatch".to_string()),
        "{:?}",
        codes(g)
    );
}

/// An XFS log that does not end with an unmount record (the CentOS disk's /boot, patched as
/// a crash would leave it) is a warning of its own.
#[test]
fn dirty_xfs_log_is_flagged() {
    let copy = PatchedCopy::of("guest/rhel-lvm.raw");
    assert!(!codes(&copy.clean).contains(&"guest.xfs_dirty_log".to_string()));
    let start = copy.clean["partitions"][0]["start"].as_u64().unwrap();
    // superblock (xfs_sb): blocksize at 4, logstart at 48, agblocks at 84, agblklog at 124
    let sb = copy.read_at(start, 512);
    assert_eq!(&sb[..4], b"XFSB");
    let be32 =
        |b: &[u8], at: usize| u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()));
    let block = be32(&sb, 4);
    let logstart = u64::from_be_bytes(sb[48..56].try_into().unwrap());
    let (agblocks, agblklog) = (be32(&sb, 84), sb[124]);
    let (agno, agbno) = (logstart >> agblklog, logstart & ((1 << agblklog) - 1));
    let log = start + (agno * agblocks + agbno) * block;
    // mkfs leaves one record: its header block (magic 0xFEEDBABE), then the unmount
    // operation, whose flags byte (XLOG_UNMOUNT_TRANS) is cleared here
    let head = copy.read_at(log, 1024);
    assert_eq!(&head[..4], &[0xfe, 0xed, 0xba, 0xbe]);
    copy.write_at(log + 512 + 9, &[0]);
    let (run, obj) = inspect_one(&copy.path, &[]);
    run.expect_code(0);
    let g = &obj["guest"];
    let c = codes(g);
    assert_eq!(
        c.iter().filter(|x| *x == "guest.xfs_dirty_log").count(),
        1,
        "{c:?}"
    );
    // the volume is still read: /boot keeps its role and mount
    assert_eq!(fs_by_device(g, "partition 1")["mountpoint"], "/boot");
}

/// The Windows reader's own findings reach the guest facts once each: Server 2019's bare
/// system volume (`scripts/testdata/windows.sh`) has a dirty SYSTEM hive, no virtio in the
/// current control set and an LZNT1-compressed cmd.exe.
#[test]
fn windows_findings_are_kept_once() {
    let g = guest_of("windows/ntfs-win2019.img");
    assert_eq!(g["os_type"], "windows");
    assert_eq!(g["platform"], "Windows Server 2019");
    assert_eq!(fs_by_device(&g, "disk")["role"], "windows");
    let c = codes(&g);
    for want in [
        "windows.dirty_hive",
        "windows.no_virtio",
        "windows.cmd_unreadable",
        "guest.no_partition_table",
    ] {
        assert_eq!(
            c.iter().filter(|x| *x == want).count(),
            1,
            "{want} in {c:?}"
        );
    }
    assert_eq!(g["drivers"]["virtio"], false);
}

//! Guest inspection on real disks: a debootstrap Debian tree packed into GPT+ESP and MBR
//! disks (raw, qcow2, vhd), and two LVM layouts with real lvm2 metadata
//! (`scripts/testdata/guest.sh`). Oracles: sfdisk for the tables, blkid for the file systems,
//! the Debian tree itself for the OS facts.
//!
//! Kept whole: one stage's tests over the same real disks and oracles.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

pub(crate) fn guest_of(name: &str) -> Value {
    let (run, obj) = inspect_one(&image(name), &[]);
    run.expect_code(0);
    let g = obj["guest"].clone();
    assert!(g.is_object(), "no guest object for {name}: {obj}");
    g
}

/// The cached disk `name` and its guest report.
fn disk(name: &str) -> (PathBuf, Value) {
    (image(name), guest_of(name))
}

/// The cached Debian disk `name` and its guest report, once its partition table and the
/// facts of [`assert_debian`] are checked.
fn debian_disk(name: &str) -> (PathBuf, Value) {
    let (path, g) = disk(name);
    assert_table(&g, &path);
    assert_debian(&g, &path);
    (path, g)
}

pub(crate) fn sh_out(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Debian tree the disks were packed from.
fn tree() -> std::path::PathBuf {
    testdata().join("guest/tree")
}

fn tree_text(rel: &str) -> String {
    std::fs::read_to_string(tree().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn os_release_value(key: &str) -> String {
    // /etc/os-release is a symlink to ../usr/lib/os-release in the tree
    tree_text("usr/lib/os-release")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} missing"))
}

/// sfdisk's view of the table: (index, start byte, size byte, type) per partition.
fn sfdisk_partitions(path: &Path) -> (String, Vec<(u64, u64, u64, String)>) {
    sfdisk_parse(&sh_out(&format!("sfdisk --json '{}'", path.display())))
}

fn sfdisk_parse(json: &str) -> (String, Vec<(u64, u64, u64, String)>) {
    let v: Value = serde_json::from_str(json).expect("sfdisk JSON");
    let t = &v["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    let parts = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let index: u64 = node
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
                .parse()
                .unwrap();
            (
                index,
                p["start"].as_u64().unwrap() * sector,
                p["size"].as_u64().unwrap() * sector,
                norm_type(p["type"].as_str().unwrap()),
            )
        })
        .collect();
    (t["label"].as_str().unwrap().to_string(), parts)
}

/// A partition type as comparable text: GUIDs upper case, MBR bytes as two hex digits
/// (sfdisk prints `5` and `83`, imgport `0x05` and `0x83`).
fn norm_type(t: &str) -> String {
    let hex = t.trim_start_matches("0x");
    match u8::from_str_radix(hex, 16) {
        Ok(b) if hex.len() <= 2 => format!("{b:02X}"),
        _ => t.to_ascii_uppercase(),
    }
}

/// blkid's TYPE, UUID and LABEL of the volume at `offset` of `path`.
pub(crate) fn blkid(path: &Path, offset: u64) -> (String, String, String) {
    let text = sh_out(&format!(
        "blkid -p -O {offset} -o export '{}' || true",
        path.display()
    ));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    (get("TYPE"), get("UUID"), get("LABEL"))
}

pub(crate) fn codes(g: &Value) -> Vec<String> {
    finding_codes(g)
}

pub(crate) fn warnings(g: &Value) -> Vec<String> {
    g["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| format!("{}: {}", f["code"], f["message"]))
        .collect()
}

pub(crate) fn fs_by_device<'a>(g: &'a Value, device: &str) -> &'a Value {
    g["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["device"] == device)
        .unwrap_or_else(|| panic!("no file system {device} in {}", g["filesystems"]))
}

/// Asserts that each `(key, value)` of `want` is a string fact of the guest report `g`.
fn assert_facts(g: &Value, want: &[(&str, &str)]) {
    for (key, value) in want {
        assert_eq!(g[key], *value, "{key}");
    }
}

/// Asserts that `device` of the guest report `g` holds the root file system, a btrfs with
/// the UUID and label blkid reads at byte `offset` of `path`.
fn assert_btrfs_root(g: &Value, path: &Path, device: &str, offset: u64) {
    let root = fs_by_device(g, device);
    let (kind, uuid, label) = blkid(path, offset);
    assert_eq!(
        (root["kind"].as_str(), kind.as_str()),
        (Some("btrfs"), "btrfs")
    );
    assert_eq!(root["uuid"], uuid);
    assert_eq!(root["label"], label);
    assert_eq!(root["role"], "root");
}

/// The facts every Debian disk shares, each checked against the tree or a tool.
fn assert_debian(g: &Value, path: &Path) {
    assert_eq!(g["os_type"], "linux");
    assert_eq!(g["distro"], os_release_value("ID"));
    let major = os_release_value("VERSION_ID");
    let debian_version = tree_text("etc/debian_version").trim().to_string();
    assert!(debian_version.starts_with(&format!("{major}.")));
    assert_eq!(
        g["version"], debian_version,
        "minor version from /etc/debian_version"
    );
    assert_eq!(g["product_name"], os_release_value("PRETTY_NAME"));
    assert_eq!(g["platform"], "Debian");
    let file = sh_out(&format!("file -L '{}'", tree().join("bin/bash").display()));
    assert!(file.contains("x86-64"), "{file}");
    assert_eq!(g["architecture"], "x86_64");
    assert_eq!(g["hostname"], tree_text("etc/hostname").trim());
    let kernels: Vec<String> = std::fs::read_dir(tree().join("lib/modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kernels.len(), 1);
    assert_eq!(g["kernel"], kernels[0]);
    // drivers: the kernel config of the tree is the oracle
    let config = tree_text(&format!("boot/config-{}", kernels[0]));
    let sym = |s: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{s}=")))
            .unwrap_or("n")
            .to_string()
    };
    assert!(sym("CONFIG_VIRTIO_BLK") != "n" && sym("CONFIG_VIRTIO_NET") != "n");
    assert_eq!(g["drivers"]["virtio"], true);
    assert_eq!(g["drivers"]["nvme"], sym("CONFIG_BLK_DEV_NVME") != "n");
    if sym("CONFIG_BLK_DEV_NVME") == "y" {
        assert_eq!(g["drivers"]["nvme_in_initramfs"], true);
    }
    // virtio at boot: the cloud kernel builds virtio_blk and virtio_pci as modules, so the
    // answer comes from the initramfs itself; cpio's listing of it is the oracle
    let initrd = format!("boot/initrd.img-{}", kernels[0]);
    let members = sh_out(&format!(
        "zcat '{}' | cpio -it --quiet",
        tree().join(&initrd).display()
    ));
    let in_initrd = |m: &str| members.lines().any(|l| l.ends_with(&format!("/{m}.ko")));
    assert_eq!(
        (sym("CONFIG_VIRTIO_BLK"), sym("CONFIG_VIRTIO_PCI")),
        ("m".to_string(), "m".to_string())
    );
    assert!(
        in_initrd("virtio_blk") && in_initrd("virtio_pci"),
        "{members}"
    );
    assert_eq!(g["drivers"]["virtio_in_initramfs"], true);
    let evidence: Vec<&str> = g["drivers"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for m in ["virtio_blk", "virtio_pci"] {
        let want = format!("{m} module in initramfs /{initrd}");
        assert!(
            evidence.iter().any(|e| e.contains(&want)),
            "{want:?} missing in {evidence:?}"
        );
    }
    // agents
    assert!(
        tree()
            .join("etc/systemd/system/cloud-init.target.wants")
            .is_dir()
    );
    assert_eq!(g["cloud_init"], true);
    assert!(tree().join("usr/sbin/qemu-ga").exists());
    assert_eq!(g["qemu_guest_agent"], true);
    // the root file system, identified as blkid sees it
    let root = g["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "root")
        .expect("a root file system");
    assert_eq!(root["mountpoint"], "/");
    let root_part = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| format!("partition {}", p["index"]) == root["device"])
        .unwrap();
    let (kind, uuid, label) = blkid(path, root_part["start"].as_u64().unwrap());
    assert_eq!(root["kind"], kind);
    assert_eq!(root["uuid"], uuid);
    assert_eq!(root["label"], label);
    // no readiness warnings for a cloud-ready Debian, and the read budget is kept
    assert!(warnings(g).is_empty(), "{:?}", warnings(g));
    assert!(g["bytes_read"].as_u64().unwrap() <= 64 << 20);
}

pub(crate) fn assert_table(g: &Value, path: &Path) {
    let (label, parts) = sfdisk_partitions(path);
    let want_label = if label == "dos" { "mbr" } else { "gpt" };
    assert_eq!(g["partition_table"], want_label);
    assert_partitions(g, path, &parts);
}

fn assert_partitions(g: &Value, path: &Path, parts: &[(u64, u64, u64, String)]) {
    let got: Vec<(u64, u64, u64, String)> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = norm_type(p["type_id"].as_str().unwrap());
            (
                p["index"].as_u64().unwrap(),
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                t,
            )
        })
        .collect();
    assert_eq!(got, parts, "partitions of {}", path.display());
    for p in g["partitions"].as_array().unwrap() {
        let (kind, _, _) = blkid(path, p["start"].as_u64().unwrap());
        // imgport names an LVM PV `lvm2` where blkid says `LVM2_member`
        let kind = match kind.as_str() {
            "" => Value::Null,
            "LVM2_member" => Value::from("lvm2"),
            k => Value::from(k),
        };
        assert_eq!(p["filesystem"], kind, "partition {}", p["index"]);
    }
}

#[test]
fn gpt_on_4096_byte_sectors() {
    // made by sgdisk on a loop device with 4096-byte logical blocks; sfdisk's JSON of that
    // device was saved beside the image as the oracle
    let (path, g) = disk("guest/tables-4kn.raw");
    let json = std::fs::read_to_string(image("guest/tables-4kn.sfdisk.json")).unwrap();
    let (label, parts) = sfdisk_parse(&json);
    assert_eq!(label, "gpt");
    assert_eq!(g["partition_table"], "gpt");
    assert_partitions(&g, &path, &parts);
    assert!(
        g["partitions"][0]["start"]
            .as_u64()
            .unwrap()
            .is_multiple_of(4096)
    );
}

#[test]
fn mbr_extended_partition_and_logicals() {
    let (path, g) = disk("guest/tables-ebr.raw");
    assert_table(&g, &path);
    let idx: Vec<u64> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [1, 2, 5, 6, 7]);
    assert_eq!(g["partitions"][1]["type_name"], "Extended");
}

#[test]
fn hybrid_mbr_is_reported() {
    let (path, g) = disk("guest/tables-hybrid.raw");
    let (label, parts) = sfdisk_partitions(&path);
    assert_eq!(label, "gpt");
    assert_eq!(g["partition_table"], "hybrid");
    assert_partitions(&g, &path, &parts);
    assert!(codes(&g).contains(&"guest.hybrid_mbr".to_string()));
}

#[test]
fn corrupt_primary_gpt_uses_the_backup() {
    let (path, g) = disk("guest/tables-bad-primary.raw");
    // sfdisk also falls back to the backup table
    let (_, parts) = sfdisk_partitions(&path);
    assert_eq!(g["partition_table"], "gpt");
    assert_partitions(&g, &path, &parts);
    assert!(
        codes(&g).contains(&"guest.gpt_primary_corrupt".to_string()),
        "{:?}",
        codes(&g)
    );
}

#[test]
fn debian_gpt_esp_ext4_raw() {
    let (path, g) = debian_disk("guest/debian-gpt.raw");
    assert_eq!(g["boot_mode"], "UEFI");
    let names: Vec<&str> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ESP", "root"]);
    assert_eq!(g["partitions"][0]["type_name"], "EFI System");
    // the ESP is read; its identity is blkid's and the tree's fstab mounts it by that UUID
    let esp = fs_by_device(&g, "partition 1");
    assert_eq!(esp["role"], "esp");
    let (kind, uuid, label) = blkid(&path, g["partitions"][0]["start"].as_u64().unwrap());
    assert_eq!(
        (esp["kind"].as_str(), esp["uuid"].as_str()),
        (Some(kind.as_str()), Some(uuid.as_str()))
    );
    assert_eq!(esp["label"], label);
    assert!(tree_text("etc/fstab").contains(&format!("UUID={uuid} /boot/efi")));
    assert_eq!(esp["mountpoint"], "/boot/efi");
    // its loaders are the boot evidence; mtools' listing of the ESP is the oracle
    let esp_at = format!("{}@@{}", path.display(), g["partitions"][0]["start"]);
    let listed = sh_out(&format!(
        "MTOOLS_SKIP_CHECK=1 mdir -b -/ -i '{esp_at}' ::/EFI"
    ));
    let mut want: Vec<String> = listed
        .lines()
        .filter(|l| l.to_ascii_uppercase().ends_with(".EFI"))
        .map(|l| {
            let rel = l.trim_start_matches("::").trim_start_matches('/');
            format!("ESP partition 1: {} (x86_64)", rel.to_ascii_uppercase())
        })
        .collect();
    want.sort();
    assert_eq!(
        want,
        [
            "ESP partition 1: EFI/BOOT/BOOTX64.EFI (x86_64)",
            "ESP partition 1: EFI/DEBIAN/GRUBX64.EFI (x86_64)"
        ]
    );
    assert_eq!(g["boot_evidence"], serde_json::json!(want));
}

#[test]
fn debian_mbr_ext4_raw() {
    let (path, g) = debian_disk("guest/debian-mbr.raw");
    // GRUB's boot.img is in sector 0 and the partition is active
    let mut code = vec![0u8; 440];
    use std::io::Read;
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut code)
        .unwrap();
    assert!(code.iter().any(|&b| b != 0));
    assert_eq!(g["boot_mode"], "BIOS");
}

/// The same disk in another container gives the same guest facts.
fn same_as_raw(raw: &str, other: &str) {
    let mut a = guest_of(raw);
    let mut b = guest_of(other);
    a["bytes_read"] = Value::Null;
    b["bytes_read"] = Value::Null;
    assert_eq!(a, b, "{raw} vs {other}");
}

#[test]
fn debian_vhd_matches_raw() {
    same_as_raw("guest/debian-gpt.raw", "guest/debian-gpt.vhd");
    same_as_raw("guest/debian-mbr.raw", "guest/debian-mbr.vhd");
}

#[test]
fn debian_qcow2_matches_raw() {
    same_as_raw("guest/debian-gpt.raw", "guest/debian-gpt.qcow2");
    same_as_raw("guest/debian-mbr.raw", "guest/debian-mbr.qcow2");
}

#[test]
fn lvm_ext4_root_over_two_segments() {
    let (path, g) = disk("guest/lvm-ext4.raw");
    assert_table(&g, &path);
    assert_eq!(g["partitions"][0]["type_name"], "BIOS boot");
    // /boot is a partition of its own, mounted by the root's fstab (UUID=)
    let boot = fs_by_device(&g, "partition 2");
    let (_, boot_uuid, _) = blkid(&path, g["partitions"][1]["start"].as_u64().unwrap());
    assert_eq!(boot["uuid"], boot_uuid);
    assert_eq!(boot["role"], "boot");
    assert_eq!(boot["mountpoint"], "/boot");
    assert_eq!(g["partitions"][2]["filesystem"], "lvm2");
    let root = fs_by_device(&g, "lvm vg-test/root");
    assert_eq!(root["kind"], "ext4");
    assert_eq!(root["label"], "rockyroot");
    assert_eq!(root["role"], "root");
    assert_eq!(root["mountpoint"], "/");
    assert_facts(
        &g,
        &[
            ("distro", "rocky"),
            ("version", "8.8"),
            ("platform", "Rocky Linux"),
            ("architecture", "x86_64"),
            ("hostname", "rocky-lvm"),
            ("kernel", "4.18.0-477.10.1.el8_8.x86_64"),
        ],
    );
    assert_eq!(
        g["boot_mode"], "BIOS",
        "GPT with a BIOS boot partition and no ESP"
    );
    assert_eq!(g["cloud_init"], false);
    assert_eq!(g["drivers"]["virtio"], true);
    assert_eq!(g["drivers"]["nvme"], true);
    // the kernel config lives on /boot: the FW_CFG finding needs the mount
    let c = codes(&g);
    for want in [
        "guest.fstab_device_name",
        "guest.no_cloud_init",
        "guest.no_fw_cfg_sysfs",
    ] {
        assert!(c.iter().any(|x| x == want), "{want} missing in {c:?}");
    }
}

#[test]
fn lvm_centos_layout_finds_xfs_and_swap_volumes() {
    let (path, g) = disk("guest/rhel-lvm.raw");
    assert_table(&g, &path);
    assert_eq!(g["partition_table"], "mbr");
    let boot = fs_by_device(&g, "partition 1");
    assert_eq!(boot["kind"], "xfs");
    let (_, uuid, _) = blkid(&path, g["partitions"][0]["start"].as_u64().unwrap());
    assert_eq!(boot["uuid"], uuid);
    assert_eq!(fs_by_device(&g, "partition 2")["kind"], "lvm2");
    assert_eq!(fs_by_device(&g, "lvm centos/root")["kind"], "xfs");
    let swap = fs_by_device(&g, "lvm centos/swap");
    assert_eq!(swap["kind"], "swap");
    // the UUID guest.sh gave mkswap
    assert_eq!(swap["uuid"], "5a5a5a5a-0000-4000-8000-000000000001");
    // an active MBR partition is a BIOS boot path
    assert_eq!(g["boot_mode"], "BIOS");
    // the XFS root is read: the OS facts come from the release files guest.sh wrote
    let root = fs_by_device(&g, "lvm centos/root");
    assert_eq!(
        (&root["role"], &root["mountpoint"]),
        (&"root".into(), &"/".into())
    );
    assert_eq!(
        (&boot["role"], &boot["mountpoint"]),
        (&"boot".into(), &"/boot".into())
    );
    assert_eq!(g["os_type"], "linux");
    assert_eq!(g["distro"], "centos");
    assert_eq!(
        g["version"], "7.9",
        "minor version from /etc/centos-release (CentOS Linux release 7.9.2009)"
    );
    assert_eq!(g["product_name"], "CentOS Linux 7 (Core)");
    assert_eq!(g["platform"], "CentOS");
    // /usr/bin/bash (the Debian tree's x86-64 bash) through the /bin -> usr/bin symlink
    assert_eq!(g["architecture"], "x86_64");
    assert_eq!(g["kernel"], "3.10.0-1160.el7.x86_64");
    assert_eq!(g["drivers"]["virtio"], true);
    assert!(!codes(&g).iter().any(|c| c == "guest.xfs_dirty_log"));
}

#[test]
fn plan_uses_the_guest_facts() {
    let path = image("guest/debian-gpt.raw");
    assert_params(
        &planned_import_params(&path),
        &[
            ("Platform", "Debian"),
            ("OSType", "linux"),
            ("Architecture", "x86_64"),
            ("BootMode", "UEFI"),
        ],
    );
}

#[test]
fn human_output_shows_the_guest() {
    let run = imgport(["inspect", image("guest/debian-mbr.raw").to_str().unwrap()]);
    run.expect_code(0);
    let out = run.stdout();
    for want in [
        "guest os:",
        "Debian",
        "boot mode:      BIOS",
        "architecture:   x86_64",
    ] {
        assert!(out.contains(want), "{want:?} missing in\n{out}");
    }
}

#[test]
fn btrfs_luks_swap_and_ext2_are_detected() {
    let (path, g) = disk("guest/volumes.raw");
    let want = ["btrfs", "luks", "swap", "ext2"];
    // an empty btrfs and ext2 are read (no root on them), LUKS and swap are not
    for (i, kind) in want.iter().enumerate() {
        let p = &g["partitions"][i];
        assert_eq!(p["filesystem"], *kind, "partition {}", i + 1);
        let (blk, uuid, label) = blkid(&path, p["start"].as_u64().unwrap());
        // blkid's name for LUKS is crypto_LUKS
        assert_eq!(blk.replace("crypto_LUKS", "luks"), *kind);
        let f = fs_by_device(&g, &format!("partition {}", i + 1));
        assert_eq!(f["uuid"], uuid, "partition {}", i + 1);
        if !label.is_empty() {
            assert_eq!(f["label"], label);
        }
    }
    let c = codes(&g);
    assert!(c.contains(&"guest.encrypted_volume".to_string()), "{c:?}");
    assert!(!c.contains(&"guest.fs_not_read".to_string()), "{c:?}");
    assert_eq!(fs_by_device(&g, "partition 1")["role"], "data");
    assert_eq!(fs_by_device(&g, "partition 4")["role"], "data");
    assert_eq!(g["os_type"], Value::Null);
    // the LUKS volume may hold the OS: unknown, never "no OS" (issue 20 item 4)
    assert!(!c.contains(&"guest.no_os".to_string()), "{c:?}");
}

#[test]
fn opensuse_on_btrfs() {
    let (path, g) = disk("guest/suse-btrfs.raw");
    assert_table(&g, &path);
    let start = g["partitions"][1]["start"].as_u64().unwrap();
    assert_btrfs_root(&g, &path, "partition 2", start);
    // architecture: /usr/bin/bash (a regular extent) through the /bin -> usr/bin symlink
    assert_facts(
        &g,
        &[
            ("distro", "opensuse-leap"),
            ("version", "15.5"),
            ("platform", "OpenSUSE"),
            ("architecture", "x86_64"),
            ("hostname", "suse-btrfs"),
        ],
    );
    assert_eq!(
        g["boot_mode"], "UEFI-Preferred",
        "ESP and BIOS boot partition"
    );
}

#[test]
fn whole_disk_file_systems_are_read_and_flagged() {
    for (name, kind) in [("whole-ext4.raw", "ext4"), ("whole-fat32.raw", "vfat")] {
        let path = image(name);
        let g = guest_of(name);
        assert_eq!(g["partition_table"], "none", "{name}");
        assert_eq!(g["partitions"], Value::Array(vec![]));
        let f = fs_by_device(&g, "disk");
        let (blk, uuid, _) = blkid(&path, 0);
        assert_eq!(
            (f["kind"].as_str(), blk.as_str()),
            (Some(kind), kind),
            "{name}"
        );
        assert_eq!(f["uuid"], uuid, "{name}");
        let c = codes(&g);
        assert!(c.contains(&"guest.no_partition_table".to_string()), "{c:?}");
        assert!(c.contains(&"guest.no_os".to_string()), "{c:?}");
    }
}

#[test]
fn disks_over_2048_gib_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.raw");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(2049 << 30).unwrap(); // sparse
    drop(f);
    let (run, obj) = inspect_one(&path, &[]);
    run.expect_code(0);
    let c = codes(&obj["guest"]);
    assert!(c.contains(&"guest.disk_too_large".to_string()), "{c:?}");
    let small = dir.path().join("small.raw");
    std::fs::File::create(&small)
        .unwrap()
        .set_len(2048 << 30)
        .unwrap();
    let (_, obj) = inspect_one(&small, &[]);
    assert!(!codes(&obj["guest"]).contains(&"guest.disk_too_large".to_string()));
}

/// Flipped bytes in the metadata of real btrfs and ext4 volumes give findings, never a
/// panic (the stage would report `guest.inspection_failed`), a hang or a failed exit.
#[test]
fn corrupted_file_system_metadata_is_survived() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    // (image, partition index, bytes of the partition to corrupt)
    for (name, part, span) in [
        ("guest/suse-btrfs.raw", 1usize, 40u64 << 20),
        ("guest/lvm-ext4.raw", 1, 4 << 20),
    ] {
        let copy = dir.path().join("copy.raw");
        sh_out(&format!(
            "cp --sparse=always '{}' '{}'",
            image(name).display(),
            copy.display()
        ));
        let g = guest_of(name);
        let start = g["partitions"][part]["start"].as_u64().unwrap();
        let mut rng = fastrand::Rng::with_seed(42);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&copy)
            .unwrap();
        for round in 0..25 {
            // 64 random bytes at random places of the first `span` bytes (superblocks,
            // chunk and tree nodes, group descriptors, inode tables)
            for _ in 0..64 {
                let at = start + 1024 + rng.u64(..span);
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(&[rng.u8(..)]).unwrap();
            }
            f.flush().unwrap();
            let (run, obj) = inspect_one(&copy, &[]);
            run.expect_code(0);
            let c = codes(&obj["guest"]);
            assert!(
                !c.contains(&"guest.inspection_failed".to_string()),
                "{name} round {round}: a reader panicked"
            );
        }
    }
}

/// Every guest test image: the raw disks of every guest part (`scripts/testdata/guest*.sh`),
/// found by listing the cache, so a new part is covered without naming it here.
fn guest_raw_images() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for e in std::fs::read_dir(testdata()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `NAME.tmp` is a part being built (scripts/make-testdata.sh).
        if name.starts_with("guest") && !name.contains('.') && e.path().is_dir() {
            parts.push(name);
        }
    }
    parts.sort();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testdata");
    for e in std::fs::read_dir(&scripts).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(part) = name.strip_suffix(".sh").filter(|p| p.starts_with("guest")) {
            assert!(
                parts.iter().any(|p| p == part),
                "test-data part {part} is not built: run scripts/make-testdata.sh"
            );
        }
    }
    for part in &parts {
        for e in std::fs::read_dir(testdata().join(part)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "raw") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    assert!(out.len() >= 16, "{out:?}");
    out
}

/// The guest facts of `path` as JSON, inspected in this process.
fn guest_in_process(path: &Path) -> Value {
    let opened = imgport::image::open(path, &imgport::image::OpenOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let source = std::sync::Arc::new(imgport::image::ImageSource(opened.image.clone()));
    serde_json::to_value(imgport::guest::inspect(source)).unwrap()
}

/// The forms a raw disk is converted to: qemu-img's format, its options, the file suffix.
const FORMS: [(&str, &str, &str); 3] = [
    ("qcow2", "", "qcow2"),
    // force_size: the VHD's size is the raw disk's, not rounded to a CHS geometry (a GPT's
    // backup header must stay in the last sector)
    ("vpc", "subformat=dynamic,force_size=on", "vhd"),
    ("vpc", "subformat=fixed,force_size=on", "fixed.vhd"),
];

/// `raw` converted by `qemu-img convert` to each of [`FORMS`], kept in the test's target
/// directory under a name that changes with the raw file (its part, name, size and
/// modification time), so each conversion runs once per build of the test data.
fn converted_forms(raw: &Path) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-forms");
    std::fs::create_dir_all(&dir).unwrap();
    let meta = std::fs::metadata(raw).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let part = raw.parent().unwrap().file_name().unwrap().to_string_lossy();
    let stem = raw.file_stem().unwrap().to_string_lossy();
    let key = format!("{part}-{stem}-{}-{}", meta.len(), mtime.as_nanos());
    FORMS
        .iter()
        .map(|(fmt, opts, ext)| {
            let out = dir.join(format!("{key}.{ext}"));
            if !out.exists() {
                let tmp = dir.join(format!("{key}.{ext}.{}.tmp", std::process::id()));
                let mut cmd = Command::new("qemu-img");
                cmd.args(["convert", "-f", "raw", "-O", fmt]);
                if !opts.is_empty() {
                    cmd.args(["-o", opts]);
                }
                let st = cmd.arg(raw).arg(&tmp).status().expect("qemu-img");
                assert!(st.success(), "qemu-img convert {} to {ext}", raw.display());
                std::fs::rename(&tmp, &out).unwrap();
            }
            out
        })
        .collect()
}

/// Load on the machine while it lives: a spinning thread in this process and a spinning
/// shell beside it; both stop when it is dropped (also when an assertion fails).
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    process: std::process::Child,
}

impl Load {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut x = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                std::hint::black_box(x);
            }
        });
        let process = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        Load {
            stop,
            thread: Some(thread),
            process,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.process.kill();
        let _ = self.process.wait();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Issue 20 item 1: every guest test image gives the same guest facts in raw, qcow2, dynamic
/// and fixed VHD (each made by qemu-img), from the library and the binary alike, and over 20
/// runs of each form while the machine is loaded: a spinning thread and process, and two
/// inspections of the same disk at once (reads must not race for the read budget). The
/// guest JSON has no timings, so it is compared whole.
#[test]
fn guest_facts_are_the_same_in_every_form_and_run() {
    const RUNS: usize = 20;
    let images = guest_raw_images();
    // Converted before the load starts: qemu-img's speed is not under test.
    let forms: Vec<Vec<PathBuf>> = images.iter().map(|r| converted_forms(r)).collect();
    let _load = Load::start();
    for (raw, forms) in images.iter().zip(&forms) {
        let part = raw.parent().unwrap().file_name().unwrap().to_string_lossy();
        let name = format!("{part}/{}", raw.file_name().unwrap().to_string_lossy());
        let want = guest_in_process(raw);
        assert!(want["partition_table"].is_string(), "{name}: {want}");
        for path in std::iter::once(raw).chain(forms) {
            let form = path.file_name().unwrap().to_string_lossy();
            // Two threads, RUNS inspections in all, half of them while the other runs.
            let runs: Vec<Value> = std::thread::scope(|s| {
                let half = || (0..RUNS / 2).map(|_| guest_in_process(path)).collect();
                let a = s.spawn(half);
                let b = s.spawn(half);
                let mut v: Vec<Value> = a.join().unwrap();
                v.extend(b.join().unwrap());
                v
            });
            for (run, got) in runs.iter().enumerate() {
                assert_eq!(
                    *got, want,
                    "{name}: {form} run {run} differs from the raw disk"
                );
            }
            // The binary says the same.
            assert_eq!(
                guest_of(path.to_str().unwrap()),
                want,
                "{name}: the binary on {form} vs the library on the raw disk"
            );
        }
    }
}

/// Issue 20 item 2: a read budget that runs out anywhere leaves facts unknown (null), never
/// another value, says so in a finding, and adds no readiness finding the full inspection
/// does not give (no false "no ESP", "no cloud-init", "no OS").
#[test]
fn a_spent_budget_leaves_facts_unknown_never_wrong() {
    // The tree's facts, and two that depend on the disk around it.
    let facts: Vec<&str> = OS_FACTS
        .into_iter()
        .chain(["boot_mode", "hostname"])
        .collect();
    const DRIVERS: [&str; 4] = ["virtio", "virtio_in_initramfs", "nvme", "nvme_in_initramfs"];
    // What a cut budget may add: the findings that say what was not read.
    const CUT: [&str; 6] = [
        "guest.read_budget_spent",
        "guest.initramfs_skipped",
        "guest.fs_unreadable",
        "guest.partition_table_unreadable",
        "guest.lvm_unreadable",
        "guest.read_failed",
    ];
    for name in [
        "guestbtrfs/debian-btrfs.raw",
        "guest/debian-gpt.raw",
        "guest/debian-mbr.raw",
        "guest/lvm-ext4.raw",
        "guest/rhel-lvm.raw",
    ] {
        let path = image(name);
        let inspect = |budget: u64| {
            let opened =
                imgport::image::open(&path, &imgport::image::OpenOptions::default()).unwrap();
            let source = std::sync::Arc::new(imgport::image::ImageSource(opened.image.clone()));
            serde_json::to_value(imgport::guest::inspect::inspect_within(source, budget)).unwrap()
        };
        let full = inspect(imgport::guest::inspect::READ_BUDGET);
        assert!(
            !codes(&full).iter().any(|c| CUT.contains(&c.as_str())),
            "{name}: the full budget does not fit: {:?}",
            codes(&full)
        );
        let used = full["bytes_read"].as_u64().unwrap();
        let mut budgets: Vec<u64> = vec![0, 4096, 64 << 10, 1 << 20];
        budgets.extend((1..8).map(|i| used * i / 8));
        for budget in budgets {
            let cut = inspect(budget);
            assert_eq!(
                inspect(budget),
                cut,
                "{name} at {budget}: not deterministic"
            );
            let c = codes(&cut);
            let mut changed = Vec::new();
            for &k in &facts {
                if cut[k] != full[k] {
                    assert_eq!(
                        cut[k],
                        Value::Null,
                        "{name} at {budget}: {k} is wrong: {c:?}"
                    );
                    changed.push(k);
                }
            }
            for k in DRIVERS {
                if cut["drivers"][k] != full["drivers"][k] {
                    let v = &cut["drivers"][k];
                    assert_eq!(*v, Value::Null, "{name} at {budget}: {k} is wrong: {c:?}");
                    changed.push(k);
                }
            }
            for code in &c {
                assert!(
                    codes(&full).contains(code) || CUT.contains(&code.as_str()),
                    "{name} at {budget}: {code} is not in the full inspection: {c:?}"
                );
            }
            if !changed.is_empty() {
                assert!(
                    c.iter().any(|x| CUT.contains(&x.as_str())),
                    "{name} at {budget}: {changed:?} unknown without a finding: {c:?}"
                );
            }
        }
    }
}

/// Facts read from the OS tree alone, whatever disk holds it (the drivers too, an object).
const OS_FACTS: [&str; 9] = [
    "os_type",
    "distro",
    "version",
    "product_name",
    "platform",
    "architecture",
    "cloud_init",
    "qemu_guest_agent",
    "kernel",
];

fn assert_same_tree(g: &Value, name: &str) {
    let want = guest_of("guest/debian-gpt.raw");
    // A layout must not change the Debian tree's facts, as debian-gpt.raw (ext4, GPT, ESP)
    // gives them (`debian_gpt_esp_ext4_raw` checks those against the tree itself).
    for k in OS_FACTS.into_iter().chain(["drivers"]) {
        assert_eq!(g[k], want[k], "{name}: {k}");
    }
}

#[test]
fn debian_on_btrfs_with_esp() {
    let (path, g) = disk("guestbtrfs/debian-btrfs.raw");
    assert_same_tree(&g, "debian-btrfs");
    assert_eq!(g["boot_mode"], "UEFI");
    assert_eq!(g["hostname"], "imgport-btrfs");
    assert_btrfs_root(&g, &path, "partition 2", 17 << 20);
    assert_eq!(fs_by_device(&g, "partition 1")["mountpoint"], "/boot/efi");
    assert!(warnings(&g).is_empty(), "{:?}", warnings(&g));
}

/// Issue 20 item 4: `/usr` on a partition of its own (so `/bin`, `/lib` and
/// `/etc/os-release` resolve only through fstab's mount), the root on the whole disk, and
/// the root on a GPT disk of 4096-byte sectors.
#[test]
fn usr_apart_whole_disk_and_4kn_roots() {
    let g = guest_of("guestlayouts/usr-split.raw");
    assert_same_tree(&g, "usr-split");
    assert_eq!(g["boot_mode"], "UEFI");
    assert_eq!(fs_by_device(&g, "partition 2")["role"], "root");
    assert_eq!(fs_by_device(&g, "partition 3")["mountpoint"], "/usr");
    assert!(warnings(&g).is_empty(), "{:?}", warnings(&g));

    let g = guest_of("guestlayouts/whole-debian.raw");
    assert_same_tree(&g, "whole-debian");
    assert_eq!(g["partition_table"], "none");
    assert_eq!(fs_by_device(&g, "disk")["role"], "root");
    let c = codes(&g);
    assert!(c.contains(&"guest.no_partition_table".to_string()), "{c:?}");
    assert!(!c.contains(&"guest.no_os".to_string()), "{c:?}");

    let (path, g) = disk("guestlayouts/gpt-4kn.raw");
    assert_same_tree(&g, "gpt-4kn");
    let json = std::fs::read_to_string(image("guestlayouts/gpt-4kn.sfdisk.json")).unwrap();
    let (label, parts) = sfdisk_parse(&json);
    assert_eq!(
        (label.as_str(), g["partition_table"].as_str()),
        ("gpt", Some("gpt"))
    );
    assert_partitions(&g, &path, &parts);
    assert_eq!(g["boot_mode"], "UEFI");
    assert!(warnings(&g).is_empty(), "{:?}", warnings(&g));
}

/// Issue 20 item 4: a LUKS-encrypted root (a real LUKS header) with `/boot` apart is
/// reported as encrypted, never as a disk without an OS.
#[test]
fn luks_root_is_encrypted_not_no_os() {
    let (path, g) = disk("guestlayouts/luks-root.raw");
    let luks = &g["partitions"][2];
    assert_eq!(luks["filesystem"], "luks");
    let (blk, uuid, _) = blkid(&path, luks["start"].as_u64().unwrap());
    assert_eq!(blk, "crypto_LUKS");
    assert_eq!(fs_by_device(&g, "partition 3")["uuid"], uuid);
    assert_eq!(fs_by_device(&g, "partition 2")["role"], "boot");
    assert_eq!(g["os_type"], Value::Null);
    let c = codes(&g);
    assert!(c.contains(&"guest.encrypted_volume".to_string()), "{c:?}");
    assert!(!c.contains(&"guest.no_os".to_string()), "{c:?}");
}

/// `mdadm --examine`'s value of `key` in the member report the guestmd part saved.
fn examine_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix(key)?
                .trim_start()
                .strip_prefix(": ")
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

/// Issue 20 item 4: one member disk of an md RAID1 root made by real mdadm and Linux's md
/// driver (`scripts/testdata/guestmd.sh`), metadata 1.2 (GPT, superblock 4 KiB in, data at
/// the data offset) and 0.90 (MBR 0xfd, superblock at the end, data from byte 0). The member
/// is a member, as blkid says; the Debian facts come through the array, from one member
/// (`guest_facts_are_the_same_in_every_form_and_run` checks qcow2 and VHD forms). Oracles: `mdadm --examine` (the array's UUID, data
/// offset and size), blkid (the member, and the file system inside at that offset and size).
#[test]
fn md_raid1_member_disks_from_mdadm() {
    for (name, part, boot) in [("md12-a", 2, "UEFI"), ("md090-a", 1, "BIOS")] {
        let (path, g) = disk(&format!("guestmd/{name}.raw"));
        assert_same_tree(&g, name);
        assert_table(&g, &path);
        assert_eq!(g["boot_mode"], boot, "{name}");
        let member = &g["partitions"][part - 1];
        assert_eq!(member["filesystem"], "linux_raid_member", "{name}");
        assert_eq!(member["type_name"], "Linux RAID", "{name}");
        let device = format!("partition {part}");
        assert_eq!(fs_by_device(&g, &device)["role"], Value::Null, "{name}");

        let examine = std::fs::read_to_string(image(&format!("guestmd/{name}.examine.txt")))
            .expect("examine");
        let (uuid, offset) = if name == "md12-a" {
            let sectors = examine_value(&examine, "Data Offset");
            let sectors: u64 = sectors.trim_end_matches(" sectors").parse().unwrap();
            (examine_value(&examine, "Array UUID"), sectors * 512)
        } else {
            (examine_value(&examine, "UUID"), 0)
        };
        let kib: u64 = examine_value(&examine, "Array Size")
            .split([' ', 'K'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let array = fs_by_device(&g, &format!("md {uuid} ({device})"));
        let start = member["start"].as_u64().unwrap() + offset;
        let inside = sh_out(&format!(
            "blkid -p -O {start} -S {} -o export '{}'",
            kib * 1024,
            path.display()
        ));
        assert!(inside.contains("TYPE=ext4"), "{name}: {inside}");
        assert!(
            inside.contains(&format!("UUID={}", array["uuid"].as_str().unwrap())),
            "{name}: {inside} vs {array}"
        );
        assert_eq!(array["kind"], "ext4", "{name}");
        assert_eq!(array["role"], "root", "{name}");
        assert_eq!(array["mountpoint"], "/", "{name}");
        assert!(warnings(&g).is_empty(), "{name}: {:?}", warnings(&g));
    }
}

/// Issue 20 item 4: openSUSE's Btrfs layout (`scripts/testdata/guestsnapper.sh`): the root
/// is the default subvolume, a snapper snapshot left by a rollback, not the top level, not
/// `@` and not the first snapshot; `/home`, `/var` and `/usr/local` are subvolumes of `@`.
#[test]
fn opensuse_root_is_the_default_snapper_snapshot() {
    let (path, g) = disk("guestsnapper/leap-snapper.raw");
    // btrfs-progs' own account of the image: which subvolume is the default.
    let default = std::fs::read_to_string(image("guestsnapper/subvolume-default.txt")).unwrap();
    assert!(
        default.trim_end().ends_with("path @/.snapshots/2/snapshot"),
        "{default}"
    );
    assert_table(&g, &path);
    let start = g["partitions"][1]["start"].as_u64().unwrap();
    assert_btrfs_root(&g, &path, "partition 2", start);
    // Snapshot 1 says leap-old and 15.4; only the default (snapshot 2) says these.
    assert_facts(
        &g,
        &[
            ("os_type", "linux"),
            ("distro", "opensuse-leap"),
            ("version", "15.5"),
            ("platform", "OpenSUSE"),
            ("architecture", "x86_64"),
            ("hostname", "leap-rollback"),
            ("boot_mode", "UEFI"),
        ],
    );
    assert_eq!(fs_by_device(&g, "partition 2")["mountpoint"], "/");
    assert_eq!(fs_by_device(&g, "partition 1")["mountpoint"], "/boot/efi");
    let c = codes(&g);
    for bad in ["guest.no_os", "guest.fs_unreadable", "guest.read_failed"] {
        assert!(!c.contains(&bad.to_string()), "{c:?}");
    }
}

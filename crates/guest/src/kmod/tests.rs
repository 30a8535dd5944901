//! Tests of the driver decisions: parsers of each source, the recipe, and real initramfs
//! images from scripts/testdata/initramfs.sh.

use super::*;
use crate::initramfs::{self, ReadOptions};

/// Lines as a Debian 12 `/boot/config-6.1.0-18-amd64` has them.
const DEBIAN_CONFIG: &str = "\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.76 Kernel Configuration
#
CONFIG_VIRTIO_PCI=m
CONFIG_VIRTIO_PCI_LEGACY=y
CONFIG_VIRTIO_BLK=m
CONFIG_SCSI_VIRTIO=m
CONFIG_VIRTIO_NET=m
CONFIG_BLK_DEV_NVME=m
CONFIG_FW_CFG_SYSFS=m
# CONFIG_FW_CFG_SYSFS_CMDLINE is not set
";

/// An Alibaba/RHEL-style config with virtio built in and NVMe not set.
const BUILTIN_CONFIG: &str = "\
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_SCSI_VIRTIO=y
CONFIG_VIRTIO_NET=y
# CONFIG_BLK_DEV_NVME is not set
CONFIG_BLK_DEV_NVME_SCSI=y
";

#[test]
fn config_values() {
    assert_eq!(
        config_value(DEBIAN_CONFIG, "CONFIG_VIRTIO_BLK"),
        Tristate::Module
    );
    assert_eq!(
        config_value(DEBIAN_CONFIG, "CONFIG_VIRTIO_PCI"),
        Tristate::Module
    );
    assert_eq!(
        config_value(BUILTIN_CONFIG, "CONFIG_VIRTIO_PCI"),
        Tristate::Yes
    );
    // A longer symbol with the same prefix does not count.
    assert_eq!(
        config_value(BUILTIN_CONFIG, "CONFIG_BLK_DEV_NVME"),
        Tristate::No
    );
    assert_eq!(
        config_value(DEBIAN_CONFIG, "CONFIG_FW_CFG_SYSFS"),
        Tristate::Module
    );
    assert_eq!(
        config_value(DEBIAN_CONFIG, "CONFIG_NOT_THERE"),
        Tristate::No
    );
    assert_eq!(
        config_value("CONFIG_X=\"y\"\nCONFIG_X=n\n", "CONFIG_X"),
        Tristate::No
    );
}

#[test]
fn module_names_and_listings() {
    assert_eq!(
        module_name("kernel/drivers/block/virtio_blk.ko.xz").as_deref(),
        Some("virtio_blk")
    );
    assert_eq!(
        module_name("virtio_net.ko.zst").as_deref(),
        Some("virtio_net")
    );
    assert_eq!(module_name("nvme.ko.gz").as_deref(), Some("nvme"));
    assert_eq!(
        module_name("kernel/drivers/nvme/host/nvme-core.ko").as_deref(),
        Some("nvme_core")
    );
    assert_eq!(module_name("kernel/drivers/block/virtio_blk.ko.bz2"), None);
    assert_eq!(module_name("modules.dep"), None);
    assert_eq!(module_name(".ko"), None);

    let builtin = "kernel/drivers/virtio/virtio.ko\nkernel/drivers/block/virtio_blk.ko\n\n";
    assert_eq!(
        listed_modules(builtin).into_iter().collect::<Vec<_>>(),
        ["virtio", "virtio_blk"]
    );
    let dep = "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\nkernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz\n";
    assert_eq!(
        dep_modules(dep).into_iter().collect::<Vec<_>>(),
        ["nvme", "virtio_blk"]
    );
    let modinfo = b"virtio_blk.license=GPL\0virtio_blk.description=Virtio block driver\0ext4.alias=fs-ext4\0\0";
    assert_eq!(
        modinfo_modules(modinfo).into_iter().collect::<Vec<_>>(),
        ["ext4", "virtio_blk"]
    );
    let modprobe = "# comment\nblacklist virtio-blk\ninstall nvme /bin/false\ninstall foo /sbin/modprobe --ignore-install foo\noptions x y=1\n";
    assert_eq!(
        modprobe_disabled(modprobe).into_iter().collect::<Vec<_>>(),
        ["nvme", "virtio_blk"]
    );
}

#[test]
fn wanted_initramfs_files() {
    for p in [
        "usr/lib/modules/6.1.0-18-amd64/modules.builtin",
        "lib/modules/5.14.0-362.el9.x86_64/modules.builtin.modinfo",
        "lib/modules/6.1.0/modules.order",
        "etc/modprobe.d/blacklist.conf",
        "usr/lib/modprobe.d/systemd.conf",
    ] {
        assert!(initramfs_wanted(p), "{p}");
    }
    for p in [
        "usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko",
        "usr/lib/modules/6.1.0/modules.dep",
        "etc/modprobe.d",
        "etc/modprobe.d/sub/x.conf",
        "usr/bin/busybox",
    ] {
        assert!(!initramfs_wanted(p), "{p}");
    }
}

#[test]
fn modules_from_config_only() {
    let mut src = KernelSources::new("6.1.0-18-amd64");
    src.config = Some(DEBIAN_CONFIG);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.built_in, Some(false));
    assert_eq!(k.virtio_blk.module, Some(true));
    assert_eq!(k.virtio_blk.in_initramfs, None);
    assert_eq!(k.virtio_blk.present(), Some(true));
    assert_eq!(k.virtio_blk.at_boot(), None);
    assert_eq!(k.fw_cfg_sysfs, Some(true));
    assert!(
        k.evidence
            .iter()
            .any(|e| e == "no initramfs found for kernel 6.1.0-18-amd64")
    );
    let f = driver_facts(&k, None);
    assert_eq!(
        (f.virtio, f.virtio_in_initramfs, f.nvme, f.nvme_in_initramfs),
        (Some(true), None, Some(true), None)
    );
}

#[test]
fn built_in_drivers_boot_without_initramfs_modules() {
    let mut src = KernelSources::new("5.10.134-16.al8.x86_64");
    src.config = Some(BUILTIN_CONFIG);
    let files: Vec<String> = vec!["kernel/fs/ext4/ext4.ko.xz".into()];
    src.module_files = Some(&files);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.built_in, Some(true));
    assert_eq!(k.virtio_blk.module, Some(false));
    assert_eq!(k.virtio_blk.at_boot(), Some(true));
    assert_eq!(k.nvme.present(), Some(false));
    assert_evidence(&k.nvme.evidence, "CONFIG_BLK_DEV_NVME not set");
    assert_eq!(k.fw_cfg_sysfs, Some(false));
    let f = driver_facts(&k, Some("grub.cfg default \"0\""));
    assert_eq!(
        (f.virtio, f.virtio_in_initramfs, f.nvme, f.nvme_in_initramfs),
        (Some(true), Some(true), Some(false), Some(false))
    );
    assert_eq!(
        f.evidence[0],
        "kernel 5.10.134-16.al8.x86_64: grub.cfg default \"0\""
    );
    assert_evidence(
        &f.evidence,
        "virtio_blk present yes, at boot yes (CONFIG_VIRTIO_BLK=y",
    );
}

#[test]
fn config_says_module_but_file_missing() {
    let mut src = KernelSources::new("6.1.0-18-amd64");
    src.config = Some(DEBIAN_CONFIG);
    let dep = "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n";
    src.modules_dep = Some(dep);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.module, Some(true));
    assert_eq!(k.virtio_net.module, Some(false));
    assert_evidence(
        &k.virtio_net.evidence,
        "=m in /boot/config-6.1.0-18-amd64 but no virtio_net module file",
    );
    // Missing virtio_net makes `virtio` false even though the disk driver is there.
    assert_eq!(driver_facts(&k, None).virtio, Some(false));
}

#[test]
fn nothing_known_is_unknown() {
    let k = kernel_drivers(&KernelSources::new("1.2.3"));
    for d in Driver::ALL {
        assert_eq!(k.get(d), &DriverStatus::default(), "{d:?}");
    }
    assert_eq!(k.fw_cfg_sysfs, None);
    let f = driver_facts(&k, None);
    assert_eq!(
        (f.virtio, f.virtio_in_initramfs, f.nvme, f.nvme_in_initramfs),
        (None, None, None, None)
    );
    assert_evidence(&f.evidence, "/boot/config-1.2.3 not found");
}

#[test]
fn builtin_listing_and_modinfo() {
    let mut src = KernelSources::new("6.6.0");
    src.modules_builtin = Some("kernel/drivers/virtio/virtio_pci.ko\n");
    let modinfo = b"virtio_blk.license=GPL\0";
    src.modules_builtin_modinfo = Some(modinfo);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_pci.built_in, Some(true));
    assert_eq!(k.virtio_blk.built_in, Some(true));
    assert_eq!(k.virtio_net.built_in, Some(false));
    assert_eq!(k.virtio_net.module, None);
    assert!(k.virtio_blk.evidence[0].contains("modules.builtin.modinfo"));
}

/// Asserts that a line of `evidence` contains `text`.
fn assert_evidence(evidence: &[String], text: &str) {
    assert!(
        evidence.iter().any(|e| e.contains(text)),
        "no {text:?} in {evidence:?}"
    );
}

// Real initramfs images.

fn testdata(name: &str) -> Vec<u8> {
    imgport_testdata::cached_bytes(&format!("initramfs/{name}"))
}

fn read_initramfs(name: &str) -> Initramfs {
    let opts = ReadOptions {
        want: &initramfs_wanted,
        ..ReadOptions::default()
    };
    initramfs::parse(&testdata(name), &opts).unwrap()
}

/// Sources whose only initramfs, `ini`, was read at `path` (`/boot/initrd.img-VERSION`).
fn reading_initramfs<'a>(path: &'a str, ini: &'a Initramfs) -> KernelSources<'a> {
    let version = path.strip_prefix("/boot/initrd.img-").unwrap();
    let mut src = KernelSources::new(version);
    src.initramfs = InitramfsInput::Read {
        path,
        contents: ini,
    };
    src
}

#[test]
fn real_initramfs_with_virtio_modules() {
    let ini = read_initramfs("early-virtio-zstd.img");
    let mut src = reading_initramfs("/boot/initrd.img-6.1.0-test", &ini);
    src.config = Some(DEBIAN_CONFIG);
    let k = kernel_drivers(&src);
    for d in Driver::ALL {
        assert_eq!(k.get(d).in_initramfs, Some(true), "{d:?}");
        assert_eq!(k.get(d).at_boot(), Some(true), "{d:?}");
    }
    // The initramfs's modules.builtin was used, since the root's was not given.
    assert_eq!(k.virtio_blk.built_in, Some(false));
    let f = driver_facts(&k, None);
    assert_eq!(
        (f.virtio, f.virtio_in_initramfs, f.nvme, f.nvme_in_initramfs),
        (Some(true), Some(true), Some(true), Some(true))
    );
    assert_evidence(
        &f.evidence,
        "virtio_blk module in initramfs /boot/initrd.img-6.1.0-test",
    );
}

#[test]
fn real_initramfs_without_virtio_modules() {
    let ini = read_initramfs("early-plain-gzip.img");
    let mut src = reading_initramfs("/boot/initrd.img-6.1.0-test", &ini);
    src.config = Some(DEBIAN_CONFIG);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.in_initramfs, Some(false));
    assert_eq!(k.virtio_blk.at_boot(), Some(false));
    let f = driver_facts(&k, None);
    // Installed as modules (config =m), but the initramfs cannot load the root disk driver.
    assert_eq!(
        (f.virtio, f.virtio_in_initramfs, f.nvme_in_initramfs),
        (Some(true), Some(false), Some(false))
    );
    assert_evidence(&f.evidence, "virtio_blk module not in initramfs");
}

#[test]
fn real_initramfs_for_another_version_and_blacklist() {
    let ini = read_initramfs("early-virtio-xz.img");
    let src = reading_initramfs("/boot/initrd.img-6.1.0-other", &ini);
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.in_initramfs, Some(false));
    assert_evidence(
        &k.evidence,
        "holds modules for 6.1.0-test but none for 6.1.0-other",
    );

    let conf = [("/etc/modprobe.d/no-virtio.conf", "blacklist virtio_blk\n")];
    let mut src = reading_initramfs("/boot/initrd.img-6.1.0-test", &ini);
    src.modprobe_d = &conf;
    let k = kernel_drivers(&src);
    assert!(k.virtio_blk.disabled);
    assert_eq!(k.virtio_blk.at_boot(), Some(false));
    assert_eq!(k.virtio_scsi.at_boot(), Some(true));
    // virtio_scsi still boots the disk.
    assert_eq!(driver_facts(&k, None).virtio_in_initramfs, Some(true));
}

#[test]
fn unreadable_initramfs_is_evidence() {
    let opts = ReadOptions {
        want: &initramfs_wanted,
        ..ReadOptions::default()
    };
    let err = initramfs::parse(&testdata("truncated.cpio.gz"), &opts)
        .unwrap_err()
        .to_string();
    let mut src = KernelSources::new("6.1.0-test");
    src.initramfs = InitramfsInput::Unreadable {
        path: "/boot/initrd.img-6.1.0-test",
        reason: &err,
    };
    let k = kernel_drivers(&src);
    assert_eq!(k.virtio_blk.in_initramfs, None);
    assert!(
        k.evidence[0].starts_with(
            "initramfs /boot/initrd.img-6.1.0-test unreadable: initramfs file offset 0: gzip"
        ),
        "{:?}",
        k.evidence
    );
}

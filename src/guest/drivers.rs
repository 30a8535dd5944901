//! Linux drivers that decide whether the guest boots on the cloud's virtual hardware
//! (reference §2.7, §5.2.7–8): virtio (blk, scsi, net, pci) and NVMe, from the kernel's
//! module files, `modules.builtin` and `/boot/config-<version>`.
//!
//! The reading (which kernel, which files) is [`gather`]; the conclusions are the pure
//! [`conclude`] over plain text and names, so a richer kernel/initramfs analysis can replace
//! either half. The initramfs is not opened here: `virtio_in_initramfs` is known only when the
//! driver is built into the kernel.

use super::facts::DriverFacts;
use super::fs::{Guest, NodeKind};

/// Most kernels looked at under `/lib/modules`.
const MAX_KERNELS: usize = 64;
/// `/boot/config-*` files are ~250 KiB; larger ones are not read.
const CONFIG_CAP: u64 = 4 * 1024 * 1024;

/// A driver: its module name, the path of its `.ko` below `kernel/`, and its config symbol.
struct Driver {
    module: &'static str,
    dir: &'static str,
    config: &'static str,
}

const VIRTIO_BLK: Driver = Driver {
    module: "virtio_blk",
    dir: "drivers/block",
    config: "CONFIG_VIRTIO_BLK",
};
const VIRTIO_SCSI: Driver = Driver {
    module: "virtio_scsi",
    dir: "drivers/scsi",
    config: "CONFIG_SCSI_VIRTIO",
};
const VIRTIO_NET: Driver = Driver {
    module: "virtio_net",
    dir: "drivers/net",
    config: "CONFIG_VIRTIO_NET",
};
const VIRTIO_PCI: Driver = Driver {
    module: "virtio_pci",
    dir: "drivers/virtio",
    config: "CONFIG_VIRTIO_PCI",
};
const NVME: Driver = Driver {
    module: "nvme",
    dir: "drivers/nvme/host",
    config: "CONFIG_BLK_DEV_NVME",
};

/// What was read from the guest about one kernel.
#[derive(Debug, Clone, Default)]
pub struct KernelInputs {
    /// The version directory under `/lib/modules`, e.g. `6.1.0-18-amd64`.
    pub version: String,
    /// `/lib/modules/<v>/modules.builtin`.
    pub builtin: Option<String>,
    /// `/boot/config-<v>`.
    pub config: Option<String>,
    /// Module file names found in the driver directories (`virtio_blk.ko.xz` …), as
    /// `<dir>/<file>` below `kernel/`.
    pub module_files: Vec<String>,
}

/// How a driver is provided by one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provided {
    BuiltIn,
    Module,
    Absent,
}

fn config_value<'a>(config: &'a str, symbol: &str) -> Option<&'a str> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == symbol).then(|| v.trim())
    })
}

/// The value of `symbol` in a kernel config (`y`, `m`, a string …); `None` when not set.
pub fn config_symbol<'a>(inputs: &'a KernelInputs, symbol: &str) -> Option<&'a str> {
    inputs
        .config
        .as_deref()
        .and_then(|c| config_value(c, symbol))
}

fn provided(k: &KernelInputs, d: &Driver) -> Provided {
    let ko = format!("{}/{}.ko", d.dir, d.module);
    let builtin = k.builtin.as_deref().is_some_and(|b| {
        b.lines()
            .any(|l| l.trim().strip_prefix("kernel/") == Some(ko.as_str()))
    });
    if builtin || k.config.as_deref().and_then(|c| config_value(c, d.config)) == Some("y") {
        return Provided::BuiltIn;
    }
    let module = k.module_files.iter().any(|f| {
        f.strip_prefix(&ko)
            .is_some_and(|rest| matches!(rest, "" | ".xz" | ".zst" | ".gz"))
    });
    if module || k.config.as_deref().and_then(|c| config_value(c, d.config)) == Some("m") {
        Provided::Module
    } else {
        Provided::Absent
    }
}

/// Driver facts for one kernel, from plain inputs.
pub fn conclude(k: &KernelInputs) -> DriverFacts {
    let mut f = DriverFacts::default();
    let blk = provided(k, &VIRTIO_BLK);
    let scsi = provided(k, &VIRTIO_SCSI);
    let net = provided(k, &VIRTIO_NET);
    let pci = provided(k, &VIRTIO_PCI);
    let nvme = provided(k, &NVME);
    let have = |p: Provided| p != Provided::Absent;
    f.virtio = Some((have(blk) || have(scsi)) && have(net) && have(pci));
    f.nvme = Some(have(nvme));
    // Built-in drivers are in every initramfs; modules need the initramfs opened.
    if blk == Provided::BuiltIn && pci == Provided::BuiltIn {
        f.virtio_in_initramfs = Some(true);
    }
    if nvme == Provided::BuiltIn {
        f.nvme_in_initramfs = Some(true);
    }
    let src = if k.config.is_some() {
        format!("/boot/config-{}", k.version)
    } else {
        format!("/lib/modules/{}", k.version)
    };
    for (name, p) in [
        ("virtio_blk", blk),
        ("virtio_scsi", scsi),
        ("virtio_net", net),
        ("virtio_pci", pci),
        ("nvme", nvme),
    ] {
        let how = match p {
            Provided::BuiltIn => "built in",
            Provided::Module => "module",
            Provided::Absent => "absent",
        };
        f.evidence
            .push(format!("{name}: {how} (kernel {}, {src})", k.version));
    }
    f
}

/// Orders kernel versions by their numeric parts (`6.1.0-18` < `6.1.0-20`).
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// The kernel versions installed under `/lib/modules`, newest first.
pub fn kernels(guest: &Guest) -> Vec<String> {
    let Ok(Some(entries)) = guest.read_dir(b"/lib/modules") else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .into_iter()
        .filter(|e| e.kind == NodeKind::Dir || e.kind == NodeKind::Symlink)
        .filter_map(|e| String::from_utf8(e.name).ok())
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .take(MAX_KERNELS)
        .collect();
    v.sort_by_key(|s| std::cmp::Reverse(version_key(s)));
    v
}

/// Reads the inputs for kernel `version` from the guest.
pub fn gather(guest: &Guest, version: &str) -> KernelInputs {
    let base = format!("/lib/modules/{version}");
    let mut module_files = Vec::new();
    for d in [&VIRTIO_BLK, &VIRTIO_SCSI, &VIRTIO_NET, &VIRTIO_PCI, &NVME] {
        let dir = format!("{base}/kernel/{}", d.dir);
        if let Ok(Some(entries)) = guest.read_dir(dir.as_bytes()) {
            module_files.extend(
                entries
                    .into_iter()
                    .filter(|e| e.name.starts_with(d.module.as_bytes()))
                    .map(|e| format!("{}/{}", d.dir, String::from_utf8_lossy(&e.name))),
            );
        }
    }
    KernelInputs {
        version: version.to_string(),
        builtin: guest.read_text(&format!("{base}/modules.builtin")),
        config: guest
            .read_file(format!("/boot/config-{version}").as_bytes(), CONFIG_CAP)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        module_files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_builtin_and_config() {
        let k = KernelInputs {
            version: "6.1.0-18-amd64".into(),
            builtin: Some("kernel/drivers/nvme/host/nvme.ko\n".into()),
            config: Some("CONFIG_VIRTIO_PCI=y\n# CONFIG_X is not set\n".into()),
            module_files: vec![
                "drivers/block/virtio_blk.ko.xz".into(),
                "drivers/net/virtio_net.ko".into(),
            ],
        };
        let f = conclude(&k);
        assert_eq!(f.virtio, Some(true));
        assert_eq!(f.nvme, Some(true));
        assert_eq!(f.nvme_in_initramfs, Some(true));
        assert_eq!(f.virtio_in_initramfs, None);
        assert!(
            f.evidence[0].contains("virtio_blk: module"),
            "{:?}",
            f.evidence
        );

        let k = KernelInputs {
            version: "3.10".into(),
            module_files: vec!["drivers/block/virtio_blk.ko.bak".into()],
            ..Default::default()
        };
        let f = conclude(&k);
        assert_eq!((f.virtio, f.nvme), (Some(false), Some(false)));
        assert!(version_key("6.1.0-20") > version_key("6.1.0-18"));
    }
}

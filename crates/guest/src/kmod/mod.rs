//! Linux kernel driver facts, decided from bytes the caller read from the guest: the kernel
//! config (`/boot/config-<ver>`), `modules.builtin`, `modules.builtin.modinfo`, `modules.dep`,
//! `modules.order`, the module files under `/lib/modules/<ver>/kernel`, `modprobe.d` files,
//! and the member list of the kernel's initramfs ([`crate::initramfs`]). Also which
//! kernel boots by default ([`boot`]) and kernel version order ([`version`]).
//!
//! Recipe (virt-v2v `linux_kernels.ml`, docs/INSPECTION.md §Drivers): a driver is
//! present when its module file exists or `CONFIG_X` is `y`/`m`; it is available at boot when
//! it is built in or its module is in the initramfs.
//!
//! Wiring, for the inspector that reads the guest: list `/boot` and call
//! [`installed_kernels`]; read `grub.cfg`, `grubenv` and `/boot/loader/entries/*.conf` into a
//! [`BootConfig`] and call [`default_kernel`]; for that kernel read its initramfs (size checked
//! against [`crate::initramfs::MAX_IMAGE_BYTES`]) and parse it with
//! [`initramfs_wanted`] as the filter; fill [`KernelSources`] with whatever else exists
//! (`modules.dep` alone is enough to know the module files); then
//! `driver_facts(&kernel_drivers(&sources), Some(&default.reason))`.
//!
//! Owns: these pure decisions and [`DriverFacts`] filling. Must not touch file systems,
//! partitions or OS detection: the caller reads the files.

pub mod boot;
pub mod sources;
pub mod version;

use std::collections::BTreeSet;

use serde::Serialize;

use super::facts::DriverFacts;
use super::initramfs::{EntryKind, Initramfs};

pub use boot::{BootConfig, DefaultKernel, InstalledKernel, default_kernel, installed_kernels};
pub use sources::{
    Tristate, config_value, dep_modules, initramfs_wanted, listed_modules, modinfo_modules,
    modprobe_disabled, module_name,
};
pub use version::compare_versions;

/// A driver that decides whether the guest boots and talks on the cloud's virtual hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// virtio block disk (`virtio_blk`).
    VirtioBlk,
    /// virtio SCSI disk controller (`virtio_scsi`).
    VirtioScsi,
    /// virtio network card (`virtio_net`).
    VirtioNet,
    /// virtio PCI transport (`virtio_pci`), needed by all of the above on PCI machines.
    VirtioPci,
    /// NVMe disk (`nvme`).
    Nvme,
}

impl Driver {
    /// All drivers, in report order.
    pub const ALL: [Driver; 5] = [
        Driver::VirtioBlk,
        Driver::VirtioScsi,
        Driver::VirtioNet,
        Driver::VirtioPci,
        Driver::Nvme,
    ];

    /// Module name, as `modprobe` and `modules.builtin` spell it.
    pub fn module(self) -> &'static str {
        match self {
            Driver::VirtioBlk => "virtio_blk",
            Driver::VirtioScsi => "virtio_scsi",
            Driver::VirtioNet => "virtio_net",
            Driver::VirtioPci => "virtio_pci",
            Driver::Nvme => "nvme",
        }
    }

    /// Kernel config symbol.
    pub fn config(self) -> &'static str {
        match self {
            Driver::VirtioBlk => "CONFIG_VIRTIO_BLK",
            Driver::VirtioScsi => "CONFIG_SCSI_VIRTIO",
            Driver::VirtioNet => "CONFIG_VIRTIO_NET",
            Driver::VirtioPci => "CONFIG_VIRTIO_PCI",
            Driver::Nvme => "CONFIG_BLK_DEV_NVME",
        }
    }
}

/// Config symbol of the QEMU firmware-config sysfs driver (`qemu_fw_cfg`).
pub const FW_CFG_CONFIG: &str = "CONFIG_FW_CFG_SYSFS";
const FW_CFG_MODULE: &str = "qemu_fw_cfg";

/// The kernel's initramfs as the caller found it.
#[derive(Debug, Clone, Copy)]
pub enum InitramfsInput<'a> {
    /// No initramfs for this kernel.
    Absent,
    /// It exists but could not be read or parsed; `reason` is the error text.
    Unreadable { path: &'a str, reason: &'a str },
    /// Parsed (with [`initramfs_wanted`] as the `want` filter, so its small files are kept).
    Read {
        path: &'a str,
        contents: &'a Initramfs,
    },
}

/// What the caller read for one kernel version. `None` means the file was not there.
#[derive(Debug, Clone, Copy)]
pub struct KernelSources<'a> {
    /// Kernel version, as in `/lib/modules/<version>`.
    pub version: &'a str,
    /// `/boot/config-<ver>`.
    pub config: Option<&'a str>,
    /// `/lib/modules/<ver>/modules.builtin`.
    pub modules_builtin: Option<&'a str>,
    /// `/lib/modules/<ver>/modules.builtin.modinfo`.
    pub modules_builtin_modinfo: Option<&'a [u8]>,
    /// `/lib/modules/<ver>/modules.dep`.
    pub modules_dep: Option<&'a str>,
    /// `/lib/modules/<ver>/modules.order`.
    pub modules_order: Option<&'a str>,
    /// Module files found under `/lib/modules/<ver>/` (paths relative to it, or file names).
    pub module_files: Option<&'a [String]>,
    /// `(path, text)` of `/etc/modprobe.d/*.conf` and `/lib/modprobe.d/*.conf` on the root.
    pub modprobe_d: &'a [(&'a str, &'a str)],
    /// The kernel's initramfs.
    pub initramfs: InitramfsInput<'a>,
}

impl<'a> KernelSources<'a> {
    /// Sources with nothing read yet, for a version.
    pub fn new(version: &'a str) -> Self {
        KernelSources {
            version,
            config: None,
            modules_builtin: None,
            modules_builtin_modinfo: None,
            modules_dep: None,
            modules_order: None,
            module_files: None,
            modprobe_d: &[],
            initramfs: InitramfsInput::Absent,
        }
    }
}

/// Status of one driver for one kernel. `None` where no source could tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriverStatus {
    /// Built into the kernel image (`=y`, or listed in `modules.builtin`).
    pub built_in: Option<bool>,
    /// Its module exists on the root file system (or, with no listing, `=m`).
    pub module: Option<bool>,
    /// Its module is in the initramfs.
    pub in_initramfs: Option<bool>,
    /// A `modprobe.d` rule disables it (`blacklist` / `install … /bin/false`).
    pub disabled: bool,
    /// Where each conclusion came from.
    pub evidence: Vec<String>,
}

impl DriverStatus {
    /// The driver exists for this kernel (built in or as a module).
    pub fn present(&self) -> Option<bool> {
        or3(self.built_in, self.module)
    }

    /// The driver is usable when the root disk is mounted: built in, or in the initramfs and
    /// not disabled. A driver that does not exist is not usable, initramfs or not.
    pub fn at_boot(&self) -> Option<bool> {
        if self.present() == Some(false) && self.in_initramfs != Some(true) {
            return Some(false);
        }
        let loadable = match self.in_initramfs {
            Some(true) if self.disabled => Some(false),
            v => v,
        };
        or3(self.built_in, loadable)
    }
}

/// Three-valued or: true wins, unknown beats false.
fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// Three-valued and: false wins, unknown beats true.
fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// Driver facts for one kernel version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelDrivers {
    /// Kernel version.
    pub version: String,
    /// `virtio_blk` ([`Driver::VirtioBlk`]).
    pub virtio_blk: DriverStatus,
    /// `virtio_scsi` ([`Driver::VirtioScsi`]).
    pub virtio_scsi: DriverStatus,
    /// `virtio_net` ([`Driver::VirtioNet`]).
    pub virtio_net: DriverStatus,
    /// `virtio_pci` ([`Driver::VirtioPci`]).
    pub virtio_pci: DriverStatus,
    /// `nvme` ([`Driver::Nvme`]).
    pub nvme: DriverStatus,
    /// `qemu_fw_cfg` available (`CONFIG_FW_CFG_SYSFS=y|m`, or its module exists).
    pub fw_cfg_sysfs: Option<bool>,
    /// Notes about the sources themselves (missing files, unreadable initramfs).
    pub evidence: Vec<String>,
}

impl KernelDrivers {
    /// The status of one driver.
    pub fn get(&self, d: Driver) -> &DriverStatus {
        match d {
            Driver::VirtioBlk => &self.virtio_blk,
            Driver::VirtioScsi => &self.virtio_scsi,
            Driver::VirtioNet => &self.virtio_net,
            Driver::VirtioPci => &self.virtio_pci,
            Driver::Nvme => &self.nvme,
        }
    }

    fn get_mut(&mut self, d: Driver) -> &mut DriverStatus {
        match d {
            Driver::VirtioBlk => &mut self.virtio_blk,
            Driver::VirtioScsi => &mut self.virtio_scsi,
            Driver::VirtioNet => &mut self.virtio_net,
            Driver::VirtioPci => &mut self.virtio_pci,
            Driver::Nvme => &mut self.nvme,
        }
    }
}

/// A set of module names with the label of the file it came from.
struct Listing {
    label: String,
    names: BTreeSet<String>,
}

/// Decides the driver facts of one kernel from what the caller read.
pub fn kernel_drivers(src: &KernelSources<'_>) -> KernelDrivers {
    let ver = src.version;
    let moddir = format!("/lib/modules/{ver}");
    let mut k = KernelDrivers {
        version: ver.to_string(),
        virtio_blk: DriverStatus::default(),
        virtio_scsi: DriverStatus::default(),
        virtio_net: DriverStatus::default(),
        virtio_pci: DriverStatus::default(),
        nvme: DriverStatus::default(),
        fw_cfg_sysfs: None,
        evidence: Vec::new(),
    };
    let config_label = format!("/boot/config-{ver}");

    // Built-in listings: the root's, else the initramfs's copy.
    let mut builtin: Vec<Listing> = Vec::new();
    if let Some(t) = src.modules_builtin {
        builtin.push(Listing {
            label: format!("{moddir}/modules.builtin"),
            names: listed_modules(t),
        });
    }
    if let Some(b) = src.modules_builtin_modinfo {
        builtin.push(Listing {
            label: format!("{moddir}/modules.builtin.modinfo"),
            names: modinfo_modules(b),
        });
    }
    // Module listings on the root.
    let mut modules: Vec<Listing> = Vec::new();
    if let Some(files) = src.module_files {
        modules.push(Listing {
            label: format!("{moddir}/kernel"),
            names: files.iter().filter_map(|f| module_name(f)).collect(),
        });
    }
    if let Some(t) = src.modules_dep {
        modules.push(Listing {
            label: format!("{moddir}/modules.dep"),
            names: dep_modules(t),
        });
    }
    if let Some(t) = src.modules_order {
        modules.push(Listing {
            label: format!("{moddir}/modules.order"),
            names: listed_modules(t),
        });
    }
    let mut disabled: Vec<(String, BTreeSet<String>)> = src
        .modprobe_d
        .iter()
        .map(|(p, t)| ((*p).to_string(), modprobe_disabled(t)))
        .collect();

    // The initramfs: its modules for this version, its own modules.builtin and modprobe.d.
    let mut initramfs_mods: Option<(String, BTreeSet<String>)> = None;
    match src.initramfs {
        InitramfsInput::Absent => k
            .evidence
            .push(format!("no initramfs found for kernel {ver}")),
        InitramfsInput::Unreadable { path, reason } => {
            k.evidence
                .push(format!("initramfs {path} unreadable: {reason}"));
        }
        InitramfsInput::Read { path, contents } => {
            let (mods, other_versions) = initramfs_modules(contents, ver);
            if mods.is_empty() && !other_versions.is_empty() {
                let v: Vec<&str> = other_versions.iter().map(String::as_str).collect();
                k.evidence.push(format!(
                    "initramfs {path} holds modules for {} but none for {ver}",
                    v.join(", ")
                ));
            }
            if src.modules_builtin.is_none() {
                for pre in ["usr/lib", "lib"] {
                    let p = format!("{pre}/modules/{ver}/modules.builtin");
                    if let Some(b) = contents.file(&p) {
                        builtin.push(Listing {
                            label: format!("initramfs {path}:/{p}"),
                            names: listed_modules(&String::from_utf8_lossy(b)),
                        });
                        break;
                    }
                }
            }
            for p in contents.kept_files() {
                if p.contains("modprobe.d/")
                    && let Some(b) = contents.file(p)
                {
                    disabled.push((
                        format!("initramfs {path}:/{p}"),
                        modprobe_disabled(&String::from_utf8_lossy(b)),
                    ));
                }
            }
            initramfs_mods = Some((path.to_string(), mods));
        }
    }

    let config = src.config;
    if config.is_none() {
        k.evidence.push(format!("{config_label} not found"));
    }
    for d in Driver::ALL {
        let cv = config.map(|c| config_value(c, d.config()));
        let s = k.get_mut(d);
        decide(
            s,
            d.module(),
            d.config(),
            cv,
            &config_label,
            &builtin,
            &modules,
            &disabled,
            initramfs_mods.as_ref(),
        );
    }

    // fw_cfg: config, or the module, or built in.
    let fw_cv = config.map(|c| config_value(c, FW_CFG_CONFIG));
    let fw_listed = modules
        .iter()
        .chain(builtin.iter())
        .any(|l| l.names.contains(FW_CFG_MODULE));
    k.fw_cfg_sysfs = match fw_cv {
        Some(Tristate::Yes | Tristate::Module) => Some(true),
        _ if fw_listed => Some(true),
        Some(Tristate::No) => Some(false),
        None if !modules.is_empty() => Some(false),
        None => None,
    };
    k
}

/// Fills one driver's status.
#[allow(clippy::too_many_arguments)]
fn decide(
    s: &mut DriverStatus,
    module: &str,
    symbol: &str,
    cv: Option<Tristate>,
    config_label: &str,
    builtin: &[Listing],
    modules: &[Listing],
    disabled: &[(String, BTreeSet<String>)],
    initramfs: Option<&(String, BTreeSet<String>)>,
) {
    // Built in.
    let listed_builtin = builtin.iter().find(|l| l.names.contains(module));
    s.built_in = if cv == Some(Tristate::Yes) {
        s.evidence.push(format!("{symbol}=y in {config_label}"));
        Some(true)
    } else if let Some(l) = listed_builtin {
        s.evidence.push(format!("{module} listed in {}", l.label));
        Some(true)
    } else if cv.is_some() || !builtin.is_empty() {
        Some(false)
    } else {
        None
    };
    // Module on the root.
    let found = modules.iter().find(|l| l.names.contains(module));
    s.module = if let Some(l) = found {
        s.evidence.push(format!("{module} module in {}", l.label));
        Some(true)
    } else if !modules.is_empty() {
        if cv == Some(Tristate::Module) {
            s.evidence.push(format!(
                "{symbol}=m in {config_label} but no {module} module file"
            ));
        }
        Some(false)
    } else if cv == Some(Tristate::Module) {
        s.evidence.push(format!("{symbol}=m in {config_label}"));
        Some(true)
    } else {
        cv.map(|_| false)
    };
    if cv == Some(Tristate::No) && s.built_in == Some(false) && s.module != Some(true) {
        s.evidence
            .push(format!("{symbol} not set in {config_label}"));
    }
    // Initramfs.
    s.in_initramfs = initramfs.map(|(path, mods)| {
        let has = mods.contains(module);
        if has {
            s.evidence
                .push(format!("{module} module in initramfs {path}"));
        } else if s.built_in != Some(true) {
            s.evidence
                .push(format!("{module} module not in initramfs {path}"));
        }
        has
    });
    // Disabled by modprobe.d.
    for (label, set) in disabled {
        if set.contains(module) {
            s.disabled = true;
            s.evidence.push(format!("{module} disabled in {label}"));
        }
    }
}

/// Module names in the initramfs under `(usr/)lib/modules/<ver>/`, and the other versions
/// that have a module directory there.
fn initramfs_modules(ini: &Initramfs, ver: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut mods = BTreeSet::new();
    let mut others = BTreeSet::new();
    for e in &ini.entries {
        if !matches!(e.kind, EntryKind::File | EntryKind::Symlink) {
            continue;
        }
        let p = e.path.strip_prefix("usr/").unwrap_or(&e.path);
        let Some(rest) = p.strip_prefix("lib/modules/") else {
            continue;
        };
        let Some((v, file)) = rest.split_once('/') else {
            continue;
        };
        let Some(name) = module_name(file) else {
            continue;
        };
        if v == ver {
            mods.insert(name);
        } else {
            others.insert(v.to_string());
        }
    }
    (mods, others)
}

/// [`DriverFacts`] for the kernel that boots: `virtio` when a virtio disk driver (blk or
/// scsi), virtio_net and virtio_pci are present; `virtio_in_initramfs` when a virtio disk
/// driver and virtio_pci are available at boot (built in or in the initramfs, not disabled);
/// likewise for NVMe. `why` (e.g. the default-kernel reason) opens the evidence.
pub fn driver_facts(k: &KernelDrivers, why: Option<&str>) -> DriverFacts {
    let disk_present = or3(k.virtio_blk.present(), k.virtio_scsi.present());
    let disk_boot = or3(k.virtio_blk.at_boot(), k.virtio_scsi.at_boot());
    let mut evidence = Vec::new();
    if let Some(w) = why {
        evidence.push(format!("kernel {}: {w}", k.version));
    }
    for note in &k.evidence {
        evidence.push(format!("kernel {}: {note}", k.version));
    }
    for d in Driver::ALL {
        let s = k.get(d);
        let word = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        evidence.push(format!(
            "kernel {}: {} present {}, at boot {}{}",
            k.version,
            d.module(),
            word(s.present()),
            word(s.at_boot()),
            if s.evidence.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.evidence.join("; "))
            }
        ));
    }
    DriverFacts {
        virtio: and3(
            and3(disk_present, k.virtio_net.present()),
            k.virtio_pci.present(),
        ),
        virtio_in_initramfs: and3(disk_boot, k.virtio_pci.at_boot()),
        nvme: k.nvme.present(),
        nvme_in_initramfs: k.nvme.at_boot(),
        evidence,
    }
}

#[cfg(test)]
mod tests;

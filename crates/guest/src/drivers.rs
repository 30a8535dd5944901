//! Linux drivers that decide whether the guest boots on the cloud's virtual hardware
//! (docs/INSPECTION.md §Drivers): this file only GATHERS what [`crate::kmod`] decides
//! from — the default kernel (from `/boot` and the GRUB / BLS configuration), its config,
//! `modules.*` files, module directories, `modprobe.d` rules and its parsed initramfs.
//!
//! Owns: which guest files are read, in what order, within which caps and byte budget. Must
//! not decide anything about drivers itself: every rule lives in `kmod` (and the cpio rules
//! in `initramfs`), called from here.

use std::sync::mpsc::channel;

use super::facts::DriverFacts;
use super::fs::{Guest, NodeKind};
use super::initramfs::{self, Initramfs, ReadOptions};
use super::kmod::{self, BootConfig, InitramfsInput, KernelSources, Tristate};
use imgport_image::{Finding, Severity};

/// Most entries looked at in one listed directory (`/boot`, `/lib/modules`, `modprobe.d`,
/// `loader/entries`, a module directory).
const MAX_DIR_ENTRIES: usize = 4096;
/// Cap on each text read (`/boot/config-*` is ~250 KiB, `modules.dep` ~1 MiB on a full
/// distribution kernel, `grub.cfg` rarely above 100 KiB).
const TEXT_CAP: u64 = 8 * 1024 * 1024;
/// Most `modprobe.d` files and BLS entries read.
const MAX_CONF_FILES: usize = 256;
/// Bytes of the disk budget kept for what the inspection reads after the drivers (module
/// ELF headers, the ESP's loaders): an initramfs that would eat into it is skipped.
pub const AFTER_DRIVERS_RESERVE: u64 = 4 * 1024 * 1024;

/// Directories below `/lib/modules/<v>/kernel` whose module files are listed: where the
/// drivers of [`kmod::Driver::ALL`] and `qemu_fw_cfg` live.
const MODULE_DIRS: [&str; 6] = [
    "drivers/block",
    "drivers/scsi",
    "drivers/net",
    "drivers/virtio",
    "drivers/nvme/host",
    "drivers/firmware",
];

/// The driver facts of the default kernel, and what the rest of the inspection needs of it.
#[derive(Debug, Clone, Default)]
pub struct KernelReport {
    /// The kernel version the facts are about.
    pub version: String,
    pub drivers: DriverFacts,
    /// `CONFIG_FW_CFG_SYSFS` as the readiness rule needs it: `None` without a config,
    /// `Some(None)` when not set, else `y` or `m` (Alibaba requires `=y`, docs/CLOUD-API.md
    /// §ImportImage).
    pub fw_cfg_sysfs: Option<Option<String>>,
    /// Module files found, as guest paths (`/lib/modules/<v>/kernel/drivers/...`), for the
    /// kernel-architecture check.
    pub module_paths: Vec<String>,
    /// Findings about the sources (an initramfs skipped for the byte budget or unreadable).
    pub findings: Vec<Finding>,
}

fn names_in(guest: &Guest, dir: &str) -> Vec<(String, NodeKind)> {
    match guest.read_dir(dir.as_bytes()) {
        Ok(Some(entries)) => entries
            .into_iter()
            .take(MAX_DIR_ENTRIES)
            .filter_map(|e| Some((String::from_utf8(e.name).ok()?, e.kind)))
            .collect(),
        _ => Vec::new(),
    }
}

fn text(guest: &Guest, path: &str) -> Option<String> {
    bytes(guest, path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn bytes(guest: &Guest, path: &str) -> Option<Vec<u8>> {
    guest.read_file(path.as_bytes(), TEXT_CAP).ok().flatten()
}

fn first_text(guest: &Guest, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| text(guest, p))
}

/// `(path, text)` of the `*.conf` files in `dirs`.
fn conf_files(guest: &Guest, dirs: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut names: Vec<String> = names_in(guest, dir)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".conf"))
            .map(|(n, _)| n)
            .collect();
        names.sort();
        for n in names {
            if out.len() >= MAX_CONF_FILES {
                return out;
            }
            let path = format!("{dir}/{n}");
            if let Some(t) = text(guest, &path) {
                out.push((path, t));
            }
        }
    }
    out
}

/// The default kernel's version, its initramfs file name and why it was chosen: from
/// `/boot` and the boot loader configuration ([`kmod::default_kernel`]), else the newest
/// version under `/lib/modules` ([`kmod::compare_versions`]).
fn default_kernel(guest: &Guest) -> Option<(String, Option<String>, String)> {
    let boot: Vec<String> = names_in(guest, "/boot")
        .into_iter()
        .filter(|(_, k)| matches!(k, NodeKind::File | NodeKind::Symlink))
        .map(|(n, _)| n)
        .collect();
    let refs: Vec<&str> = boot.iter().map(String::as_str).collect();
    let installed = kmod::installed_kernels(&refs);
    if !installed.is_empty() {
        let grub_cfg = first_text(guest, &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"]);
        let grubenv = first_text(guest, &["/boot/grub/grubenv", "/boot/grub2/grubenv"]);
        let bls = conf_files(guest, &["/boot/loader/entries"]);
        let bls_refs: Vec<(&str, &str)> = bls
            .iter()
            .map(|(p, t)| (p.rsplit('/').next().unwrap_or(p), t.as_str()))
            .collect();
        let cfg = BootConfig {
            grub_cfg: grub_cfg.as_deref(),
            grubenv: grubenv.as_deref(),
            bls_entries: &bls_refs,
        };
        let d = kmod::default_kernel(&installed, &cfg)?;
        let initrd = installed
            .iter()
            .find(|k| k.version == d.version)
            .and_then(|k| k.initrd.clone());
        return Some((d.version, initrd, d.reason));
    }
    let mut versions: Vec<String> = names_in(guest, "/lib/modules")
        .into_iter()
        .filter(|(n, k)| {
            matches!(k, NodeKind::Dir | NodeKind::Symlink)
                && n.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(|(n, _)| n)
        .collect();
    versions.sort_by(|a, b| kmod::compare_versions(b, a));
    let v = versions.into_iter().next()?;
    Some((
        v.clone(),
        None,
        format!("no kernel image in /boot; newest of /lib/modules is {v}"),
    ))
}

/// What became of the initramfs read.
enum Initrd {
    Absent,
    Unreadable { path: String, reason: String },
    Read { path: String, contents: Initramfs },
}

/// Reads and parses the initramfs `/boot/<name>` when it fits in `budget_left` bytes of the
/// disk read budget (less [`AFTER_DRIVERS_RESERVE`]), parsing it as it is read. `fetched` is
/// called (or dropped) once all its bytes are read or it is known to be absent, so other
/// readers can take the volume.
fn read_initrd(
    guest: &Guest,
    name: Option<&str>,
    budget_left: u64,
    findings: &mut Vec<Finding>,
    fetched: impl FnOnce() + Send + 'static,
) -> Initrd {
    let Some(name) = name else {
        return Initrd::Absent;
    };
    let path = format!("/boot/{name}");
    let size = match guest.stat(path.as_bytes()) {
        Ok(Some(i)) if i.kind == NodeKind::File => i.size,
        _ => return Initrd::Absent,
    };
    let unreadable = |reason: String| Initrd::Unreadable {
        path: path.clone(),
        reason,
    };
    if size > initramfs::MAX_IMAGE_BYTES {
        return unreadable(format!(
            "{size} bytes is more than the {}-byte cap",
            initramfs::MAX_IMAGE_BYTES
        ));
    }
    if size.saturating_add(AFTER_DRIVERS_RESERVE) > budget_left {
        findings.push(Finding::new(
            Severity::Info,
            "guest.initramfs_skipped",
            format!(
                "{path} ({} MiB) is not read: it would exceed the inspection's read budget \
                 ({} MiB left); whether it holds the virtio drivers is unknown",
                size.div_ceil(1 << 20),
                budget_left >> 20
            ),
        ));
        return unreadable("skipped for the read budget".into());
    }
    let read = guest.read_file_chunks(
        path.as_bytes(),
        initramfs::MAX_IMAGE_BYTES,
        Box::new(fetched),
    );
    let (len, mut chunks) = match read {
        Ok(Some(c)) => c,
        Ok(None) => return Initrd::Absent,
        Err(e) => return unreadable(e.to_string()),
    };
    let opts = ReadOptions {
        want: &kmod::initramfs_wanted,
        ..Default::default()
    };
    let parsed = initramfs::parse_chunks(len, &mut chunks, &opts);
    // The whole file is read wherever the parser stopped (so the disk reads never depend on
    // the parse), and a failed read is the answer, as when the file was read before parsing.
    if let Some(e) = chunks.finish() {
        return unreadable(e.to_string());
    }
    match parsed {
        Ok(contents) => Initrd::Read { path, contents },
        Err(e) => {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.initramfs_unreadable",
                format!("{path} cannot be parsed: {e}"),
            ));
            unreadable(e.to_string())
        }
    }
}

/// Gathers the sources of the default kernel from `guest` and lets [`kmod`] decide; `None`
/// when no kernel is installed. `budget_left` is what remains of the disk read budget.
/// Reads happen one after another in a fixed order (the initramfs first, then the kernel's
/// other files while it is decompressed), so which reads fit a budget never depends on timing.
pub fn inspect(guest: &Guest, budget_left: u64) -> Option<KernelReport> {
    let (version, initrd_name, reason) = default_kernel(guest)?;
    // The initramfs (tens of MiB to decompress) is read first, on a second thread; the
    // kernel's other files are read while it is decompressed.
    std::thread::scope(|scope| {
        let (read_tx, read_rx) = channel::<()>();
        let initrd = scope.spawn(move || {
            let mut findings = Vec::new();
            let done = move || drop(read_tx);
            let name = initrd_name.as_deref();
            let initrd = read_initrd(guest, name, budget_left, &mut findings, done);
            (initrd, findings)
        });
        let _ = read_rx.recv(); // returns when the sender is dropped
        let others = KernelFiles::read(guest, &version);
        let (initrd, findings) = initrd
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Some(decide(version, reason, others, initrd, findings))
    })
}

/// The default kernel's files other than its initramfs.
struct KernelFiles {
    moddir: String,
    config: Option<String>,
    builtin: Option<String>,
    modinfo: Option<Vec<u8>>,
    dep: Option<String>,
    order: Option<String>,
    /// Module files below `moddir`, when any of [`MODULE_DIRS`] exists.
    module_files: Option<Vec<String>>,
    modprobe: Vec<(String, String)>,
}

impl KernelFiles {
    fn read(guest: &Guest, version: &str) -> Self {
        let moddir = format!("/lib/modules/{version}");
        let mut module_files = Vec::new();
        let mut any_dir = false;
        for dir in MODULE_DIRS {
            let full = format!("{moddir}/kernel/{dir}");
            if guest.is(&full, NodeKind::Dir) {
                any_dir = true;
            }
            for (n, k) in names_in(guest, &full) {
                if k == NodeKind::File && kmod::module_name(&n).is_some() {
                    module_files.push(format!("kernel/{dir}/{n}"));
                }
            }
        }
        KernelFiles {
            config: text(guest, &format!("/boot/config-{version}")),
            builtin: text(guest, &format!("{moddir}/modules.builtin")),
            modinfo: bytes(guest, &format!("{moddir}/modules.builtin.modinfo")),
            dep: text(guest, &format!("{moddir}/modules.dep")),
            order: text(guest, &format!("{moddir}/modules.order")),
            module_files: any_dir.then_some(module_files),
            modprobe: conf_files(guest, &["/etc/modprobe.d", "/lib/modprobe.d"]),
            moddir,
        }
    }
}

/// Lets [`kmod`] decide from the files read.
fn decide(
    version: String,
    reason: String,
    files: KernelFiles,
    initrd: Initrd,
    findings: Vec<Finding>,
) -> KernelReport {
    let modprobe_refs: Vec<(&str, &str)> = files
        .modprobe
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let mut src = KernelSources::new(&version);
    src.config = files.config.as_deref();
    src.modules_builtin = files.builtin.as_deref();
    src.modules_builtin_modinfo = files.modinfo.as_deref();
    src.modules_dep = files.dep.as_deref();
    src.modules_order = files.order.as_deref();
    src.module_files = files.module_files.as_deref();
    src.modprobe_d = &modprobe_refs;
    src.initramfs = match &initrd {
        Initrd::Absent => InitramfsInput::Absent,
        Initrd::Unreadable { path, reason } => InitramfsInput::Unreadable { path, reason },
        Initrd::Read { path, contents } => InitramfsInput::Read { path, contents },
    };
    let k = kmod::kernel_drivers(&src);
    let fw_cfg_sysfs =
        files
            .config
            .as_deref()
            .map(|c| match kmod::config_value(c, kmod::FW_CFG_CONFIG) {
                Tristate::Yes => Some("y".to_string()),
                Tristate::Module => Some("m".to_string()),
                Tristate::No => None,
            });
    KernelReport {
        drivers: kmod::driver_facts(&k, Some(&reason)),
        module_paths: files
            .module_files
            .iter()
            .flatten()
            .map(|f| format!("{}/{f}", files.moddir))
            .collect(),
        version,
        fw_cfg_sysfs,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fs::memfs::MemFs;
    use super::*;

    /// An uncompressed newc cpio of empty regular files, as `initramfs::parse` reads it.
    fn cpio(files: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |name: &str, mode: u32| {
            // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
            // namesize check
            let namesize = name.len() as u32 + 1;
            let fields = [1, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, namesize, 0];
            out.extend_from_slice(b"070701");
            for f in fields {
                out.extend_from_slice(format!("{f:08x}").as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        for f in files {
            put(f, 0o100644);
        }
        put("TRAILER!!!", 0);
        out
    }

    #[test]
    fn gathers_the_default_kernel_and_its_initramfs() {
        let v = "6.1.0-18-amd64";
        let initrd = cpio(&[&format!(
            "usr/lib/modules/{v}/kernel/drivers/block/virtio_blk.ko"
        )]);
        let mut fs = MemFs::default();
        fs.file(&format!("/boot/vmlinuz-{v}"), b"k")
            .file("/boot/vmlinuz-5.10.0-1-amd64", b"k")
            .file(&format!("/boot/initrd.img-{v}"), &initrd)
            .file(
                &format!("/boot/config-{v}"),
                b"CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_NET=m\n",
            )
            .file(
                &format!("/lib/modules/{v}/kernel/drivers/block/virtio_blk.ko"),
                b"",
            )
            .file(
                &format!("/lib/modules/{v}/kernel/drivers/net/virtio_net.ko"),
                b"",
            );
        let g = Guest::new(Arc::new(fs));
        let r = inspect(&g, 64 << 20).unwrap();
        assert_eq!(r.version, v);
        assert_eq!(r.drivers.virtio, Some(true));
        assert_eq!(r.drivers.virtio_in_initramfs, Some(true));
        assert_eq!(r.fw_cfg_sysfs, Some(None));
        let ev = r.drivers.evidence.join("\n");
        assert!(
            ev.contains(&format!("initramfs /boot/initrd.img-{v}")),
            "{ev}"
        );
        assert!(r.findings.is_empty());
        // a budget too small for the initramfs: skipped with an Info finding, answer unknown
        let r = inspect(&g, AFTER_DRIVERS_RESERVE).unwrap();
        assert_eq!(r.findings[0].code, "guest.initramfs_skipped");
        assert_eq!(r.drivers.virtio_in_initramfs, None);

        // GRUB's default wins over the newest kernel; without an initramfs and with the
        // drivers as modules, whether they load at boot is unknown
        let mut fs = MemFs::default();
        fs.file(&format!("/boot/vmlinuz-{v}"), b"k")
            .file("/boot/vmlinuz-5.10.0-1-amd64", b"k")
            .file(
                "/boot/grub/grub.cfg",
                b"set default=0\nmenuentry 'Debian, 5.10' {\n linux /boot/vmlinuz-5.10.0-1-amd64 ro\n}\n",
            )
            .file(
                "/boot/config-5.10.0-1-amd64",
                b"CONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_BLK=m\nCONFIG_FW_CFG_SYSFS=y\n",
            );
        let r = inspect(&Guest::new(Arc::new(fs)), 64 << 20).unwrap();
        assert_eq!(r.version, "5.10.0-1-amd64");
        assert!(
            r.drivers.evidence[0].contains("grub.cfg"),
            "{:?}",
            r.drivers.evidence
        );
        assert_eq!(r.drivers.virtio_in_initramfs, None);
        assert_eq!(r.fw_cfg_sysfs, Some(Some("y".into())));
    }
}

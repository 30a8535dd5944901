//! The guest-inspection stage: partition table → volumes (partitions, LVM logical volumes) →
//! file systems → roles → OS, architecture, boot mode, drivers, agents → readiness.
//! One bad partition or file system becomes a finding; the stage itself never fails.
//! Every read goes through a [`Metered`] source with a byte budget ([`READ_BUDGET`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::boot::{self, BootEvidence};
use super::drivers;
use super::elf;
use super::facts::{FilesystemFact, GuestFacts, PartitionFact};
use super::fs::{FileSystem, FsKind, Guest, NodeKind, open_filesystem, probe};
use super::fstab::{self, DeviceSpec, FstabEntry};
use super::linux;
use super::lvm;
use super::partition::{self, Partition};
use super::readiness;
use super::windows;
use crate::image::{Finding, Severity};
use crate::source::{ByteSource, Slice, check_bounds};

/// Most bytes of the virtual disk one inspection may read.
pub const READ_BUDGET: u64 = 64 * 1024 * 1024;

/// A source that counts the bytes read through it and refuses reads past a budget.
pub struct Metered {
    inner: Arc<dyn ByteSource>,
    read: AtomicU64,
    budget: u64,
}

impl Metered {
    /// Wraps `inner` with a budget of `budget` bytes.
    pub fn new(inner: Arc<dyn ByteSource>, budget: u64) -> Self {
        Self {
            inner,
            read: AtomicU64::new(0),
            budget,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl ByteSource for Metered {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        check_bounds(self.inner.size(), buf.len(), offset)?;
        let before = self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if before + buf.len() as u64 > self.budget {
            return Err(std::io::Error::other(format!(
                "the inspection read budget of {} MiB is spent",
                self.budget >> 20
            )));
        }
        self.inner.read_exact_at(buf, offset)
    }
}

/// One volume that may hold a file system.
struct Volume {
    /// `partition 2`, `lvm centos/root`, `disk`.
    device: String,
    source: Arc<dyn ByteSource>,
    kind: Option<FsKind>,
    /// Label and UUID from the superblock, known even without a reader.
    label: Option<String>,
    uuid: Option<String>,
    /// The partition it is (or lies on).
    partition: Option<Partition>,
    /// `vg/lv` for logical volumes.
    lv: Option<(String, String)>,
    fs: Option<Arc<dyn FileSystem>>,
    role: Option<&'static str>,
    mountpoint: Option<String>,
}

fn fs_finding(device: &str, e: impl std::fmt::Display) -> Finding {
    Finding::new(
        Severity::Warning,
        "guest.fs_unreadable",
        format!("{device}: the file system cannot be read: {e}"),
    )
}

/// Probes `source` and opens a reader when one exists for its kind.
fn volume(
    device: String,
    source: Arc<dyn ByteSource>,
    partition: Option<Partition>,
    lv: Option<(String, String)>,
    findings: &mut Vec<Finding>,
) -> Volume {
    let probed = match probe::probe(&*source) {
        Ok(p) => p,
        Err(e) => {
            findings.push(fs_finding(&device, e));
            None
        }
    };
    let kind = probed.as_ref().map(|p| p.kind);
    let fs: Option<Arc<dyn FileSystem>> = match kind {
        Some(k) => match open_filesystem(k, source.clone()) {
            Ok(None) if k.is_filesystem() => {
                findings.push(Finding::new(
                    Severity::Info,
                    "guest.fs_not_read",
                    format!(
                        "{device} holds {}, which imgport has no reader for",
                        k.name()
                    ),
                ));
                None
            }
            Ok(fs) => fs.map(Arc::from),
            Err(e) => {
                findings.push(fs_finding(&device, e));
                None
            }
        },
        None => None,
    };
    if let Some(k) = kind.filter(|k| k.is_encrypted()) {
        findings.push(Finding::new(
            Severity::Warning,
            "guest.encrypted_volume",
            format!(
                "{device} is {} encrypted; its content cannot be inspected",
                k.name()
            ),
        ));
    }
    if let Some(fs) = &fs
        && let Some(reasons) = fs.dirty()
    {
        let code = match fs.kind() {
            "xfs" => "guest.xfs_dirty_log",
            "ntfs" => "guest.ntfs_dirty",
            _ => "guest.fs_dirty",
        };
        findings.push(Finding::new(
            Severity::Warning,
            code,
            format!(
                "{device}: the {} file system was not cleanly unmounted ({}); what is read \
                 from it may be stale",
                fs.kind(),
                reasons.join("; ")
            ),
        ));
    }
    let (mut label, mut uuid) = probed.map(|p| (p.label, p.uuid)).unwrap_or_default();
    if let Some(fs) = &fs {
        label = fs.label().or(label);
        uuid = fs.uuid().or(uuid);
    }
    Volume {
        device,
        source,
        kind,
        label,
        uuid,
        partition,
        lv,
        fs,
        role: None,
        mountpoint: None,
    }
}

/// Logical volumes of the PV on `v`, as further volumes.
fn lvm_volumes(v: &Volume, findings: &mut Vec<Finding>) -> Vec<Volume> {
    let pv = match lvm::open(v.source.clone()) {
        Ok(pv) => pv,
        Err(e) => {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.lvm_unreadable",
                format!("{}: the LVM physical volume cannot be read: {e}", v.device),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for lv in pv.lvs {
        let device = format!("lvm {}/{}", lv.vg, lv.name);
        match lv.source {
            Some(src) => out.push(volume(
                device,
                src,
                v.partition.clone(),
                Some((lv.vg, lv.name)),
                findings,
            )),
            None => findings.push(Finding::new(
                Severity::Info,
                "guest.lvm_lv_not_read",
                format!(
                    "{device} ({}) is not read: {}",
                    lv.segment_types.join(", "),
                    lv.unreadable.unwrap_or_default()
                ),
            )),
        }
    }
    out
}

/// The role a file system plays (reference §2.2; first match wins).
fn role_of(v: &Volume) -> Option<&'static str> {
    let esp_type = v.lv.is_none() && v.partition.as_ref().is_some_and(|p| p.part_type.is_esp());
    let Some(fs) = v.fs.as_ref() else {
        // Unread volumes get a role only from their partition type.
        return (esp_type && v.kind == Some(FsKind::Vfat)).then_some("esp");
    };
    let g = Guest::new(fs.clone());
    if esp_type && g.is("/EFI", NodeKind::Dir) {
        return Some("esp");
    }
    if [
        "/grub/grub.cfg",
        "/grub2/grub.cfg",
        "/grub/menu.lst",
        "/grub/grub.conf",
        "/loader/entries",
    ]
    .iter()
    .any(|p| g.exists(p))
    {
        return Some("boot");
    }
    if linux::is_root(&g) {
        return Some("root");
    }
    if g.is("/Windows/System32/config", NodeKind::Dir)
        || g.is("/WINDOWS/system32/config", NodeKind::Dir)
    {
        return Some("windows");
    }
    if g.is("/EFI", NodeKind::Dir) && fs.kind() == "vfat" {
        return Some("esp");
    }
    Some("data")
}

/// The volume an fstab device names, by UUID, label, PARTUUID, PARTLABEL, LVM path or the
/// partition number of a kernel name (`/dev/sda2` → partition 2 of this disk).
fn matches(v: &Volume, spec: &DeviceSpec) -> bool {
    match spec {
        DeviceSpec::Uuid(u) => v.uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u)),
        DeviceSpec::Label(l) => v.label.as_deref() == Some(l.as_str()),
        DeviceSpec::PartUuid(u) => {
            v.lv.is_none()
                && v.partition
                    .as_ref()
                    .and_then(|p| p.part_uuid.as_deref())
                    .is_some_and(|x| x.eq_ignore_ascii_case(u))
        }
        DeviceSpec::PartLabel(l) => {
            v.lv.is_none()
                && v.partition
                    .as_ref()
                    .and_then(|p| p.name.as_deref())
                    .is_some_and(|x| x == l)
        }
        DeviceSpec::Kernel(dev) => {
            let digits: String = dev
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            v.lv.is_none()
                && !digits.is_empty()
                && v.partition.as_ref().map(|p| p.index.to_string()) == Some(digits)
        }
        DeviceSpec::Path(p) => v.lv.as_ref().is_some_and(|(vg, lv)| {
            // /dev/<vg>/<lv>, or /dev/mapper/<vg>-<lv> with '-' doubled inside names
            *p == format!("/dev/{vg}/{lv}")
                || *p
                    == format!(
                        "/dev/mapper/{}-{}",
                        vg.replace('-', "--"),
                        lv.replace('-', "--")
                    )
        }),
        DeviceSpec::Other(_) => false,
    }
}

/// Inspects the virtual disk `source`. Never fails: problems become findings, and a panic in
/// a reader is caught here and reported (reference §5.1.7: fail closed at stage level).
pub fn inspect(source: Arc<dyn ByteSource>) -> GuestFacts {
    let disk = Arc::new(Metered::new(source, READ_BUDGET));
    let run = std::panic::AssertUnwindSafe(|| inspect_metered(disk.clone()));
    match std::panic::catch_unwind(run) {
        Ok(facts) => facts,
        Err(_) => GuestFacts {
            findings: vec![Finding::new(
                Severity::Warning,
                "guest.inspection_failed",
                "a reader failed on malformed data; nothing inside the disk is reported",
            )],
            bytes_read: disk.bytes_read(),
            ..Default::default()
        },
    }
}

fn inspect_metered(disk: Arc<Metered>) -> GuestFacts {
    let mut facts = GuestFacts::default();
    let mut findings = Vec::new();
    let disk_size = disk.size();

    // 1. partitions → volumes
    let table = match partition::read(&*disk) {
        Ok(t) => Some(t),
        Err(e) => {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.partition_table_unreadable",
                format!("the partition table cannot be read: {e}"),
            ));
            None
        }
    };
    let mut volumes = Vec::new();
    let whole: Arc<dyn ByteSource> = disk.clone();
    match &table {
        Some(t) if !t.partitions.is_empty() => {
            findings.extend(t.findings.iter().cloned());
            for p in &t.partitions {
                match Slice::new(whole.clone(), p.start, p.size) {
                    Ok(s) => volumes.push(volume(
                        format!("partition {}", p.index),
                        Arc::new(s),
                        Some(p.clone()),
                        None,
                        &mut findings,
                    )),
                    Err(e) => findings.push(fs_finding(&format!("partition {}", p.index), e)),
                }
            }
        }
        Some(t) => {
            findings.extend(t.findings.iter().cloned());
            let v = volume("disk".into(), whole.clone(), None, None, &mut findings);
            if v.kind.is_some() {
                findings.push(Finding::new(
                    Severity::Warning,
                    "guest.no_partition_table",
                    "the file system covers the whole disk (no partition table); firmware \
                     cannot boot it",
                ));
                volumes.push(v);
            }
        }
        None => {}
    }
    let pvs: Vec<usize> = (0..volumes.len())
        .filter(|&i| volumes[i].kind == Some(FsKind::Lvm2))
        .collect();
    for i in pvs {
        let lvs = lvm_volumes(&volumes[i], &mut findings);
        volumes.extend(lvs);
    }
    for v in &mut volumes {
        v.role = role_of(v);
    }
    facts.partition_table = table.as_ref().map(|t| t.kind.name().to_string());

    // 2. the root, and the volumes its fstab mounts below it
    let root = volumes
        .iter()
        .position(|v| v.role == Some("root"))
        .and_then(|r| Some((r, volumes[r].fs.clone()?)));
    let mut guest = None;
    let mut tab: Vec<FstabEntry> = Vec::new();
    if let Some((r, root_fs)) = root {
        let mut g = Guest::new(root_fs);
        volumes[r].mountpoint = Some("/".into());
        tab = g
            .read_text("/etc/fstab")
            .map(|t| fstab::parse(&t))
            .unwrap_or_default();
        for e in &tab {
            if e.mountpoint == "/" || !e.mountpoint.starts_with('/') {
                continue;
            }
            if let Some(v) = volumes
                .iter_mut()
                .find(|v| matches(v, &e.device) && v.mountpoint.is_none())
            {
                v.mountpoint = Some(e.mountpoint.clone());
                if let Some(fs) = &v.fs {
                    g.mount(e.mountpoint.as_bytes(), fs.clone());
                }
            }
        }
        guest = Some(g);
    }

    // 3. OS facts. The kernel's drivers (mostly decompressing its initramfs) are worked out
    // on another thread meanwhile.
    let mut fw_cfg = None;
    let mut cloud_init_installed = None;
    let (fetched, initrd_read) = std::sync::mpsc::channel::<()>();
    let kernel = guest.clone().map(|g| {
        let budget_left = READ_BUDGET.saturating_sub(disk.bytes_read());
        std::thread::spawn(move || drivers::inspect(&g, budget_left, fetched))
    });
    // The initramfs read goes first: the volume's reader serves one request at a time.
    let _ = initrd_read.recv();
    if let Some(g) = &guest {
        facts.os_type = Some("linux".into());
        match linux::detect(g) {
            Some(os) => {
                facts.distro = Some(os.distro);
                facts.version = os.version;
                facts.product_name = os.product_name;
                facts.platform = Some(os.platform.to_string());
            }
            None => {
                facts.platform = Some(linux::OTHERS_LINUX.into());
                findings.push(Finding::new(
                    Severity::Warning,
                    "guest.distro_unknown",
                    "a Linux root was found but no release file names the distribution",
                ));
            }
        }
        facts.hostname = linux::hostname(g);
        facts.architecture = elf::PROBE_BINARIES.iter().find_map(|p| {
            let head = g.read_prefix(p.as_bytes(), elf::HEADER_LEN).ok()??;
            elf::machine(&head).map(str::to_string)
        });
        let ci = linux::cloud_init(g);
        facts.cloud_init = Some(ci.enabled);
        cloud_init_installed = Some(ci.installed);
        facts.qemu_guest_agent = Some(linux::qemu_guest_agent(g));
        let kernel = kernel.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        if let Some(k) = kernel.flatten() {
            fw_cfg = k.fw_cfg_sysfs.clone();
            facts.drivers = k.drivers;
            findings.extend(k.findings);
            // The kernel's architecture, from an uncompressed module (reference §2.4): a
            // 32-bit userland on a 64-bit kernel is worth a warning.
            let kernel_arch = k
                .module_paths
                .iter()
                .filter(|f| f.ends_with(".ko"))
                .find_map(|path| {
                    let head = g.read_prefix(path.as_bytes(), elf::HEADER_LEN).ok()??;
                    elf::machine(&head)
                });
            if let (Some(user), Some(kernel)) = (facts.architecture.as_deref(), kernel_arch)
                && user != kernel
            {
                findings.push(Finding::new(
                    Severity::Warning,
                    "guest.arch_kernel_mismatch",
                    format!(
                        "the userland is {user} but kernel {}'s modules are {kernel}",
                        k.version
                    ),
                ));
            }
            facts.kernel = Some(k.version);
        }
    } else if let Some(w) = volumes.iter_mut().find(|v| v.role == Some("windows")) {
        w.mountpoint = Some("C:".into());
        facts.os_type = Some("windows".into());
        facts.distro = Some("windows".into());
        if let Some(fs) = &w.fs {
            match windows::inspect(fs.as_ref()) {
                Ok(Some(win)) => {
                    win.apply_to(&mut facts);
                    // apply_to extends `facts.findings`; this stage keeps its findings in
                    // `findings` until the end, so they move there (once).
                    findings.append(&mut facts.findings);
                }
                Ok(None) => findings.push(Finding::new(
                    Severity::Warning,
                    "guest.windows_no_systemroot",
                    format!(
                        "{} has a Windows folder but no SystemRoot with System32\\cmd.exe",
                        w.device
                    ),
                )),
                Err(e) => findings.push(fs_finding(&w.device, e)),
            }
        }
    }
    if let Some(a) = &facts.architecture
        && !elf::importable(a)
    {
        findings.push(Finding::new(
            Severity::Warning,
            "guest.arch_unsupported",
            format!("the guest's architecture is {a}; ImportImage takes i386, x86_64 or arm64"),
        ));
    }

    // 4. boot mode
    if let Some(t) = &table {
        let mut ev: BootEvidence = boot::table_evidence(t);
        if let Some(g) = &guest {
            boot::root_evidence(g, &mut ev);
        }
        ev.windows = facts.os_type.as_deref() == Some("windows");
        if let Some(esp) = volumes.iter().find(|v| v.role == Some("esp"))
            && let Some(fs) = &esp.fs
        {
            let loaders = boot::esp_loaders(&Guest::new(fs.clone()));
            for l in &loaders {
                facts.boot_evidence.push(format!(
                    "ESP {}: EFI/{} ({})",
                    esp.device,
                    l.path,
                    l.arch.unwrap_or("architecture unknown")
                ));
            }
            ev.esp_loaders = Some(loaders);
        }
        // The loader architecture cross-checks the userland's (issue 3 item 4).
        if let Some(loaders) = &ev.esp_loaders {
            let efi_arch: Vec<&str> = loaders.iter().filter_map(|l| l.arch).collect();
            match (&facts.architecture, efi_arch.first()) {
                (None, Some(a)) => facts.architecture = Some(a.to_string()),
                (Some(a), Some(b)) if !efi_arch.contains(&a.as_str()) => {
                    findings.push(Finding::new(
                        Severity::Warning,
                        "guest.arch_mismatch",
                        format!("the userland is {a} but the EFI loaders are for {b}"),
                    ))
                }
                _ => {}
            }
        }
        facts.boot_mode = boot::decide(&ev, facts.architecture.as_deref()).map(str::to_string);
    }

    // 5. the report
    for v in &volumes {
        if v.lv.is_none()
            && let Some(p) = &v.partition
        {
            facts.partitions.push(partition_fact(p, v.kind));
        }
        if let Some(kind) = v.kind {
            facts.filesystems.push(FilesystemFact {
                device: v.device.clone(),
                kind: v
                    .fs
                    .as_ref()
                    .map(|f| f.kind())
                    .unwrap_or(kind.name())
                    .to_string(),
                label: v.label.clone(),
                uuid: v.uuid.clone(),
                mountpoint: v.mountpoint.clone(),
                role: v.role.map(str::to_string),
            });
        }
    }
    if let Some(t) = &table {
        // partitions whose volume could not be sliced are still listed
        for p in &t.partitions {
            if !facts.partitions.iter().any(|f| f.index == p.index) {
                facts.partitions.push(partition_fact(p, None));
            }
        }
        facts.partitions.sort_by_key(|p| p.index);
    }
    let inputs = readiness::Inputs {
        disk_size,
        fstab: &tab,
        fw_cfg_sysfs: fw_cfg,
        cloud_init_installed,
    };
    findings.extend(readiness::check(&facts, &inputs));
    facts.findings = findings;
    facts.bytes_read = disk.bytes_read();
    facts
}

fn partition_fact(p: &Partition, kind: Option<FsKind>) -> PartitionFact {
    PartitionFact {
        index: p.index,
        start: p.start,
        size: p.size,
        type_id: p.part_type.id(),
        type_name: p.part_type.name().map(str::to_string),
        name: p.name.clone(),
        filesystem: kind.map(|k| k.name().to_string()),
    }
}

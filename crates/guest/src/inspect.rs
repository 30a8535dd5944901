//! The guest-inspection stage: partition table → volumes (partitions, LVM logical volumes) →
//! file systems → roles → OS, architecture, boot mode, drivers, agents → readiness.
//! One bad partition or file system becomes a finding; the stage itself never fails.
//! Every read goes through a [`Metered`] source with a byte budget ([`READ_BUDGET`]).
//!
//! Kept whole: the inspection stage in the order it runs, one volume walk feeding every fact; the
//! recipes it calls live in their own files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::boot::{self, BootEvidence};
use super::drivers;
use super::elf;
use super::facts::{FilesystemFact, GuestFacts, PartitionFact};
use super::fs::resolve::ReadLog;
use super::fs::{FileSystem, FsError, FsKind, Guest, NodeKind, open_filesystem, probe};
use super::fstab::{self, DeviceSpec, FstabEntry};
use super::linux;
use super::lvm;
use super::md;
use super::partition::{self, Partition};
use super::readiness;
use super::windows;
use imgport_image::source::{ByteSource, Slice, check_bounds};
use imgport_image::{Finding, Severity};

/// Most bytes of the virtual disk one inspection may read: a bound for hostile disks that
/// a whole distribution fits in. Sized from what real roots need: a full Debian 12 root
/// (generic kernel) on Btrfs reads 37.84 MiB, 30 % of it, the initramfs being 35.2 MiB of
/// that (docs/INSPECTION.md §Budget; `scripts/bench-guest.sh --full-btrfs` repeats it).
pub const READ_BUDGET: u64 = 128 * 1024 * 1024;

/// A source that counts the bytes read through it and refuses reads past a budget. A refused
/// read is not counted (later, smaller reads may still fit) but is remembered, so the stage
/// can tell which of its answers rest on a read that was refused.
pub struct Metered {
    inner: Arc<dyn ByteSource>,
    read: AtomicU64,
    refused: AtomicU64,
    budget: u64,
}

impl Metered {
    /// Wraps `inner` with a budget of `budget` bytes.
    pub fn new(inner: Arc<dyn ByteSource>, budget: u64) -> Self {
        Self {
            inner,
            read: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            budget,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::SeqCst)
    }

    /// Reads refused for the budget so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// The budget, in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }
}

impl ByteSource for Metered {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        check_bounds(self.inner.size(), buf.len(), offset)?;
        let len = buf.len() as u64;
        let fits = self
            .read
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |before| {
                before
                    .checked_add(len)
                    .filter(|&after| after <= self.budget)
            })
            .is_ok();
        if !fits {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::other(format!(
                "the inspection read budget of {} MiB is spent ({len} bytes at offset {offset} \
                 refused)",
                self.budget >> 20
            )));
        }
        self.inner.read_exact_at(buf, offset)
    }
}

/// Watches the reads of one step of the inspection: the guest paths that failed (through a
/// [`ReadLog`]) and the disk reads the budget refused (through [`Metered`]).
struct Watch<'a> {
    disk: &'a Metered,
    log: ReadLog,
}

/// Where a step began: the counts of failed reads then.
struct Mark {
    errors: usize,
    refused: u64,
}

/// Most failed reads named in one finding.
const MAX_NAMED: usize = 4;

impl Watch<'_> {
    fn mark(&self) -> Mark {
        Mark {
            errors: self.log.count(),
            refused: self.disk.refused(),
        }
    }

    /// A finding when reads failed since `m`, naming what was read (`what`), the reads that
    /// failed, and the facts left unknown for it (`unknown`); `None` when every read worked.
    fn trouble(&self, m: &Mark, what: &str, unknown: &str) -> Option<Finding> {
        let (errors, n) = self.log.since(m.errors);
        let refused = self.disk.refused() - m.refused;
        if n == 0 && refused == 0 {
            return None;
        }
        let mut named: Vec<String> = errors.into_iter().take(MAX_NAMED).collect();
        if n > named.len() {
            named.push(format!("{} more", n - named.len()));
        }
        let failed = if named.is_empty() {
            format!("{refused} disk reads")
        } else {
            named.join("; ")
        };
        Some(if refused > 0 {
            Finding::new(
                Severity::Warning,
                "guest.read_budget_spent",
                format!(
                    "the inspection's read budget of {} MiB ran out while reading {what}; \
                     skipped: {failed}; {unknown} left unknown",
                    self.disk.budget() >> 20
                ),
            )
        } else {
            Finding::new(
                Severity::Warning,
                "guest.read_failed",
                format!("{what} could not be read ({failed}); {unknown} left unknown"),
            )
        })
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
    // An md member with its superblock at the end (0.90, 1.0) starts with the array's data
    // and so probes as the file system inside; on a RAID-typed partition the end is read
    // too, and such a member is a member, as blkid says (docs/INSPECTION.md §Probes). Its
    // data is then read once, through the array (`md_volume`).
    let raid_typed = partition
        .as_ref()
        .is_some_and(|p| p.part_type.is_linux_raid());
    let probed = match probed {
        Some(p) if raid_typed && p.kind != FsKind::MdRaid => match md::read_end(&*source) {
            Ok(Some(_)) => Some(probe::Probed {
                kind: FsKind::MdRaid,
                label: None,
                uuid: None,
            }),
            Ok(None) => Some(p),
            Err(e) => {
                findings.push(Finding::new(
                    Severity::Warning,
                    "guest.md_unreadable",
                    format!(
                        "{device}: the md RAID member cannot be read: {e}; its file system is \
                         read in place"
                    ),
                ));
                Some(p)
            }
        },
        p => p,
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

/// The array data on the md member `v`, as a further volume, for the first member of each
/// RAID1 array met (`arrays` holds the array UUIDs already read: a mirror is read once).
fn md_volume(v: &Volume, arrays: &mut Vec<String>, findings: &mut Vec<Finding>) -> Option<Volume> {
    let m = match md::read(&*v.source) {
        Ok(m) => m?,
        Err(e) => {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.md_unreadable",
                format!("{}: the md RAID member cannot be read: {e}", v.device),
            ));
            return None;
        }
    };
    let Some((offset, len)) = m.data else {
        findings.push(Finding::new(
            Severity::Info,
            "guest.md_not_read",
            format!(
                "{} is a member of md array {} (RAID level {}, {} disks), whose data cannot be \
                 read from one member",
                v.device, m.array_uuid, m.level, m.raid_disks
            ),
        ));
        return None;
    };
    if arrays.contains(&m.array_uuid) {
        return None;
    }
    arrays.push(m.array_uuid.clone());
    match Slice::new(v.source.clone(), offset, len) {
        // Not tied to the member's partition: fstab names the array, never the member.
        Ok(s) => Some(volume(
            format!("md {} ({})", m.array_uuid, v.device),
            Arc::new(s),
            None,
            None,
            findings,
        )),
        Err(e) => {
            findings.push(fs_finding(&v.device, e));
            None
        }
    }
}

/// The role a file system plays (docs/INSPECTION.md §Roles; first match wins).
fn role_of(v: &Volume, log: &ReadLog) -> Option<&'static str> {
    let esp_type = v.lv.is_none() && v.partition.as_ref().is_some_and(|p| p.part_type.is_esp());
    let Some(fs) = v.fs.as_ref() else {
        // Unread volumes get a role only from their partition type.
        return (esp_type && v.kind == Some(FsKind::Vfat)).then_some("esp");
    };
    let g = Guest::with_log(fs.clone(), log.clone());
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
    // `\Windows`, `\WINNT` (NT 4.0, 2000, and 2003 upgraded from 2000) …, in any case.
    match windows::has_system_config(fs.as_ref()) {
        Ok(true) => return Some("windows"),
        Ok(false) => {}
        Err(e) => log.note(b"/", &e),
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
/// a reader is caught here and reported (docs/INSPECTION.md §Safety item 9: fail closed at stage
/// level).
pub fn inspect(source: Arc<dyn ByteSource>) -> GuestFacts {
    inspect_within(source, READ_BUDGET)
}

/// [`inspect`] with a read budget of `budget` bytes instead of [`READ_BUDGET`] (tests check
/// with it that a budget that runs out leaves facts unknown, never wrong).
pub fn inspect_within(source: Arc<dyn ByteSource>, budget: u64) -> GuestFacts {
    let disk = Arc::new(Metered::new(source, budget));
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
            // An extended partition only holds the logicals (listed on their own); probing it
            // would find what lies at the start of its first logical.
            for p in t.partitions.iter().filter(|p| !p.part_type.is_extended()) {
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
    let members: Vec<usize> = (0..volumes.len())
        .filter(|&i| volumes[i].kind == Some(FsKind::MdRaid))
        .collect();
    let mut arrays = Vec::new();
    for i in members {
        if let Some(v) = md_volume(&volumes[i], &mut arrays, &mut findings) {
            volumes.push(v);
        }
    }
    // Reads below happen one after another in a fixed order, so which of them fit the
    // budget never depends on timing; each step checks for failed reads (`watch`) and
    // leaves its facts unknown, with a finding, rather than reading absence into a failure.
    let watch = Watch {
        disk: &disk,
        log: ReadLog::default(),
    };
    let mut role_unknown = false;
    for v in &mut volumes {
        let m = watch.mark();
        v.role = role_of(v, &watch.log);
        if let Some(f) = watch.trouble(&m, &format!("the role of {}", v.device), "its role") {
            findings.push(f);
            v.role = None;
            role_unknown = true;
        }
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
        let mut g = Guest::with_log(root_fs, watch.log.clone());
        volumes[r].mountpoint = Some("/".into());
        let m = watch.mark();
        tab = g
            .read_text("/etc/fstab")
            .map(|t| fstab::parse(&t))
            .unwrap_or_default();
        findings.extend(watch.trouble(&m, "/etc/fstab", "the mount points below /"));
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

    // 3. what ImportImage needs first: the OS, its architecture (the boot mode, step 4,
    // follows); then what readiness needs.
    let mut fw_cfg = None;
    let mut cloud_init_installed = None;
    // An encrypted volume (LUKS, BitLocker) may hold the OS: not finding one is then no
    // evidence that there is none (its own finding says it cannot be looked into).
    // So may a volume that could not be read (or the table that lists the volumes).
    let unread = table.is_none()
        || findings.iter().any(|f| {
            matches!(
                f.code.as_str(),
                "guest.fs_unreadable"
                    | "guest.lvm_unreadable"
                    | "guest.md_unreadable"
                    | "guest.md_not_read"
            )
        });
    let mut os_unknown = role_unknown
        || unread
        || volumes
            .iter()
            .any(|v| v.kind.is_some_and(|k| k.is_encrypted()));
    if let Some(g) = &guest {
        facts.os_type = Some("linux".into());
        let m = watch.mark();
        let os = linux::detect(g);
        if let Some(f) = watch.trouble(&m, "the release files", "the distribution and version") {
            findings.push(f);
        } else {
            match os {
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
        }
        let m = watch.mark();
        // A header that was read is evidence; a failed read only makes the answer unknown.
        facts.architecture = elf::PROBE_BINARIES.iter().find_map(|p| {
            let head = g.read_prefix(p.as_bytes(), elf::HEADER_LEN).ok()??;
            elf::machine(&head).map(str::to_string)
        });
        if facts.architecture.is_none() {
            findings.extend(watch.trouble(&m, "the ELF binaries", "the architecture"));
        }
    } else if let Some(w) = volumes.iter_mut().find(|v| v.role == Some("windows")) {
        w.mountpoint = Some("C:".into());
        facts.os_type = Some("windows".into());
        facts.distro = Some("windows".into());
        if let Some(fs) = &w.fs {
            let m = watch.mark();
            let found = match windows::inspect(fs.as_ref(), &watch.log) {
                // A failed read while looking for the SystemRoot: nothing is known.
                Err(e @ FsError::Io(_)) => {
                    watch.log.note(b"the SystemRoot", &e);
                    Ok(None)
                }
                r => r,
            };
            let unknown = match &found {
                Ok(Some(win)) if !win.unread.is_empty() => win.unread.join("; "),
                _ => "the Windows version, Platform, architecture and drivers".into(),
            };
            let what = format!("the Windows files on {}", w.device);
            let trouble = watch.trouble(&m, &what, &unknown);
            match found {
                Ok(Some(win)) => {
                    win.apply_to(&mut facts);
                    // apply_to extends `facts.findings`; this stage keeps its findings in
                    // `findings` until the end, so they move there (once).
                    findings.append(&mut facts.findings);
                }
                Ok(None) if trouble.is_some() => {}
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
            findings.extend(trouble);
        }
    }
    if facts.os_type.is_none()
        && let Some((p, os)) = table.iter().flat_map(|t| &t.partitions).find_map(|p| {
            let id = p.part_type.id();
            unreadable_os(&id).map(|os| (p, os))
        })
    {
        // The OS may well be there; its file systems are not read, so its facts are unknown.
        os_unknown = true;
        findings.push(Finding::new(
            Severity::Warning,
            "guest.os_unreadable",
            format!(
                "partition {} is a {os} partition (type {}): its file systems (UFS, ZFS) are                  not read, so the OS, architecture and drivers are unknown; give the                  platform explicitly",
                p.index,
                p.part_type.id()
            ),
        ));
    }
    if facts.os_type.is_some() {
        os_unknown = false;
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
    let mut boot_unknown = false;
    if let Some(t) = &table {
        let m = watch.mark();
        let mut ev: BootEvidence = boot::table_evidence(t);
        if let Some(g) = &guest {
            boot::root_evidence(g, &mut ev);
        }
        ev.windows = facts.os_type.as_deref() == Some("windows");
        if let Some(esp) = volumes.iter().find(|v| v.role == Some("esp"))
            && let Some(fs) = &esp.fs
        {
            let loaders = boot::esp_loaders(&Guest::with_log(fs.clone(), watch.log.clone()));
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
        if let Some(f) = watch.trouble(&m, "the boot files", "the boot mode") {
            findings.push(f);
            facts.boot_evidence.clear();
            boot_unknown = true;
        } else {
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
    }

    // 5. Linux: agents, host name, then the kernel's drivers with what is left of the budget
    // (the initramfs is the largest read of all).
    if let Some(g) = &guest {
        let m = watch.mark();
        facts.hostname = linux::hostname(g);
        findings.extend(watch.trouble(&m, "/etc/hostname", "the host name"));
        let m = watch.mark();
        let ci = linux::cloud_init(g);
        if let Some(f) = watch.trouble(&m, "the cloud-init files", "whether cloud-init runs") {
            findings.push(f);
        } else {
            facts.cloud_init = Some(ci.enabled);
            cloud_init_installed = Some(ci.installed);
        }
        let m = watch.mark();
        let qga = linux::qemu_guest_agent(g);
        match watch.trouble(&m, "the guest agent's files", "the QEMU guest agent") {
            Some(f) => findings.push(f),
            None => facts.qemu_guest_agent = Some(qga),
        }
        let m = watch.mark();
        let kernel = drivers::inspect(g, disk.budget().saturating_sub(disk.bytes_read()));
        let trouble = watch.trouble(&m, "the kernel's files", "the kernel's drivers");
        if let Some(k) = kernel {
            findings.extend(k.findings);
            facts.kernel = Some(k.version.clone());
            if let Some(f) = trouble {
                findings.push(f);
            } else {
                fw_cfg = k.fw_cfg_sysfs.clone();
                facts.drivers = k.drivers;
            }
            // The kernel's architecture, from an uncompressed module (docs/INSPECTION.md
            // §Architecture): a 32-bit userland on a 64-bit kernel is worth a warning.
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
        } else if let Some(f) = trouble {
            findings.push(f);
        }
    }

    // 6. the report
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
        os_unknown,
        boot_unknown,
    };
    findings.extend(readiness::check(&facts, &inputs));
    facts.findings = findings;
    facts.bytes_read = disk.bytes_read();
    facts
}

/// The system a partition type belongs to when its file systems are ones imgport does not
/// read: the MBR FreeBSD slice (`0xa5`) and the GPT freebsd-ufs and freebsd-zfs types
/// (FreeBSD gpart(8)).
fn unreadable_os(type_id: &str) -> Option<&'static str> {
    match type_id {
        "0xa5"
        | "516E7CB6-6ECF-11D6-8FF8-00022D09712B"
        | "516E7CBA-6ECF-11D6-8FF8-00022D09712B" => Some("FreeBSD"),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One MBR partition entry: boot flag, type, first LBA and length in sectors.
    fn entry(sector: &mut [u8], slot: usize, kind: u8, start: u32, len: u32) {
        let at = 446 + slot * 16;
        sector[at + 4] = kind;
        sector[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        sector[at + 12..at + 16].copy_from_slice(&len.to_le_bytes());
        sector[510] = 0x55;
        sector[511] = 0xaa;
    }

    /// The Debian installer's LVM layout (issue 20 item 3): sda1 at LBA 2048, sda2 extended
    /// at LBA 4096 whose first EBR puts logical sda5 two sectors in (LBA 4098), and sda5 an
    /// LVM PV (label in its sector 1). The extended partition is not taken for the PV.
    #[test]
    fn extended_partition_before_a_pv_is_not_a_pv() {
        let mut d = vec![0u8; 8192 * 512];
        entry(&mut d[..512], 0, 0x83, 2048, 2048);
        entry(&mut d[..512], 1, 0x05, 4096, 4096);
        let ebr = 4096 * 512;
        entry(&mut d[ebr..ebr + 512], 0, 0x8e, 2, 4094);
        let label = 4099 * 512;
        d[label..label + 8].copy_from_slice(b"LABELONE"); // id
        d[label + 8..label + 16].copy_from_slice(&1u64.to_le_bytes()); // sector_xl
        d[label + 24..label + 32].copy_from_slice(b"LVM2 001"); // type
        let facts = inspect(Arc::new(d));
        let kinds: Vec<(u32, Option<&str>)> = facts
            .partitions
            .iter()
            .map(|p| (p.index, p.filesystem.as_deref()))
            .collect();
        assert_eq!(kinds, [(1, None), (2, None), (5, Some("lvm2"))]);
        let on_extended: Vec<&Finding> = facts
            .findings
            .iter()
            .filter(|f| f.message.starts_with("partition 2"))
            .collect();
        assert!(on_extended.is_empty(), "{on_extended:?}");
    }

    /// A BitLocker volume (OEM id `-FVE-FS-`) is reported as encrypted, and the disk is not
    /// said to hold no OS: it may well hold one (issue 20 item 3).
    #[test]
    fn bitlocker_volume_is_encrypted_not_no_os() {
        let mut d = vec![0u8; 4096 * 512];
        entry(&mut d[..512], 0, 0x07, 2048, 2048);
        let vbr = 2048 * 512;
        d[vbr..vbr + 3].copy_from_slice(&[0xeb, 0x58, 0x90]); // jump
        d[vbr + 3..vbr + 11].copy_from_slice(b"-FVE-FS-"); // OEM id
        d[vbr + 510] = 0x55;
        d[vbr + 511] = 0xaa;
        let facts = inspect(Arc::new(d));
        let codes: Vec<&str> = facts.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(facts.partitions[0].filesystem.as_deref(), Some("bitlocker"));
        assert!(codes.contains(&"guest.encrypted_volume"), "{codes:?}");
        assert!(!codes.contains(&"guest.no_os"), "{codes:?}");
    }

    /// A FreeBSD slice (MBR type 0xA5, UFS inside, which is not read) leaves the OS unknown
    /// with a finding that says why, never "no OS" (ImportImage has a FreeBSD Platform).
    #[test]
    fn freebsd_slice_is_os_unknown_not_no_os() {
        let mut d = vec![0u8; 4096 * 512];
        entry(&mut d[..512], 0, 0xa5, 2048, 2048);
        let facts = inspect(Arc::new(d));
        let codes: Vec<&str> = facts.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(facts.os_type, None);
        assert!(codes.contains(&"guest.os_unreadable"), "{codes:?}");
        assert!(!codes.contains(&"guest.no_os"), "{codes:?}");
        assert_eq!(
            unreadable_os("516E7CB6-6ECF-11D6-8FF8-00022D09712B"),
            Some("FreeBSD")
        );
        assert_eq!(unreadable_os("0x83"), None);
    }

    /// Two RAID1 members (md metadata 1.2, type 0xFD): the array's data is read once, from
    /// the first member, as a volume of its own; a RAID5 member is reported, not read.
    #[test]
    fn md_raid1_members_are_read_once() {
        let mut d = vec![0u8; 16384 * 512];
        entry(&mut d[..512], 0, 0xfd, 2048, 4096);
        entry(&mut d[..512], 1, 0xfd, 6144, 4096);
        entry(&mut d[..512], 2, 0xfd, 10240, 4096);
        for (start, level) in [(2048usize, 1i32), (6144, 1), (10240, 5)] {
            let sb = start * 512 + 4096;
            d[sb..sb + 4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes()); // magic
            d[sb + 4..sb + 8].copy_from_slice(&1u32.to_le_bytes()); // major_version
            d[sb + 16..sb + 32].copy_from_slice(&[level as u8; 16]); // set_uuid
            d[sb + 72..sb + 76].copy_from_slice(&level.to_le_bytes()); // level
            d[sb + 92..sb + 96].copy_from_slice(&2u32.to_le_bytes()); // raid_disks
            d[sb + 128..sb + 136].copy_from_slice(&2048u64.to_le_bytes()); // data_offset
            d[sb + 136..sb + 144].copy_from_slice(&2048u64.to_le_bytes()); // data_size
            d[sb + 144..sb + 152].copy_from_slice(&8u64.to_le_bytes()); // super_offset
            // an ext2 superblock magic in the array data, 1 KiB in
            let ext = (start + 2048) * 512 + 1024;
            d[ext + 0x38] = 0x53;
            d[ext + 0x39] = 0xef;
        }
        let facts = inspect(Arc::new(d));
        let md: Vec<&str> = facts
            .filesystems
            .iter()
            .map(|f| f.device.as_str())
            .filter(|d| d.starts_with("md "))
            .collect();
        assert_eq!(md, ["md 01010101:01010101:01010101:01010101 (partition 1)"]);
        let codes: Vec<&str> = facts.findings.iter().map(|f| f.code.as_str()).collect();
        assert!(codes.contains(&"guest.md_not_read"), "{codes:?}");
        assert!(!codes.contains(&"guest.no_os"), "{codes:?}");
    }

    /// md metadata 0.90 keeps its superblock at the end and the data from byte 0, so the
    /// member starts with the file system: on a RAID-typed partition it is a member, read
    /// through its array; a broken superblock is a warning and the file system is read in
    /// place; on a Linux-typed partition the end is not looked at.
    #[test]
    fn md_090_members_at_the_end() {
        let member = crate::md::tests::member_090(4096 * 512, 1900);
        let mut d = vec![0u8; 16384 * 512];
        entry(&mut d[..512], 0, 0xfd, 2048, 4096);
        entry(&mut d[..512], 1, 0xfd, 6144, 4096);
        entry(&mut d[..512], 2, 0x83, 10240, 4096);
        for (start, flip) in [(2048usize, false), (6144, true), (10240, false)] {
            let at = start * 512;
            d[at..at + member.len()].copy_from_slice(&member);
            d[at + 1024 + 0x38] = 0x53; // ext2 magic
            d[at + 1024 + 0x39] = 0xef;
            if flip {
                d[at + (4096 - 128) * 512 + 100] ^= 1; // in the superblock: bad checksum
            }
        }
        let facts = inspect(Arc::new(d));
        let kinds: Vec<(&str, &str)> = facts
            .filesystems
            .iter()
            .map(|f| (f.device.as_str(), f.kind.as_str()))
            .collect();
        let md = "md 1b2c3d4e:5f6a7b8c:9d0e1f2a:3b4c5d6e (partition 1)";
        assert_eq!(
            kinds,
            [
                ("partition 1", "linux_raid_member"),
                ("partition 2", "ext2"),
                ("partition 3", "ext2"),
                (md, "ext2"),
            ]
        );
        let unreadable: Vec<&str> = facts
            .findings
            .iter()
            .filter(|f| f.code == "guest.md_unreadable")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert!(
            unreadable[0].starts_with("partition 2: ") && unreadable[0].contains("checksum"),
            "{unreadable:?}"
        );
    }
}

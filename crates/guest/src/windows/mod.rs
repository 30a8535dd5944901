//! Windows facts from a system volume: version and edition, the ImportImage platform,
//! architecture, the current control set, boot drivers (virtio, NVMe) and cloudbase-init.
//!
//! Owns the Windows recipe (docs/INSPECTION.md §Windows): which files and registry
//! keys to read and what they mean. Reads only through [`FileSystem`] and the hive reader in
//! `guest::registry`; it must not parse file systems or hives itself, nor touch partitions.
//! Problems inside the guest (an unreadable or dirty hive, a compressed `cmd.exe`, a client
//! edition) become [`Finding`]s. A file whose read fails (I/O, or the read budget) is logged
//! in the caller's [`ReadLog`] and leaves the facts it holds unknown ([`WindowsFacts::unread`]
//! says which), never read as absent; only a failure while looking for the SystemRoot is an
//! error.

mod facts;
mod hives;
mod version;

#[cfg(test)]
mod tests;

use self::hives::{read_software, read_system, with_hive};
use super::arch::{self, Arch};
use super::facts::GuestFacts;
use super::fs::resolve::ReadLog;
use super::fs::{FileSystem, FsError, NodeKind};
use super::registry::MAX_HIVE_SIZE;
use imgport_image::{Finding, Severity};

pub use facts::WindowsFacts;
pub use version::{OTHER_WINDOWS, Product, VersionInfo, WINDOWS_11_BUILD, product};

/// SystemRoot candidates, in libguestfs's order (docs/INSPECTION.md §Windows).
const SYSTEMROOTS: [&str; 5] = ["Windows", "WINNT", "Win32", "Win", "ReactOS"];
/// Bytes of `cmd.exe` we read for its PE header.
const PE_HEADER_BYTES: usize = 4096;

/// Reads the Windows facts of `fs`; `Ok(None)` when no SystemRoot is found (a SystemRoot
/// needs `System32`, `System32\config` and `System32\cmd.exe`, so a data volume with a
/// `Windows` folder is not taken for a system volume). Reads that fail once the SystemRoot
/// is found go to `log` (see the module comment).
pub fn inspect(fs: &dyn FileSystem, log: &ReadLog) -> Result<Option<WindowsFacts>, FsError> {
    let Some(root) = find_systemroot(fs)? else {
        return Ok(None);
    };
    let mut w = WindowsFacts {
        systemroot: root.root.clone(),
        ..Default::default()
    };
    let failed = Failed { log };
    let software_path = format!("{}/SOFTWARE", root.config);
    let software = match read_hive(fs, &software_path, &mut w) {
        Ok(b) => b,
        Err(e) => failed.read(
            &software_path,
            &e,
            "the version, edition and Platform",
            &mut w,
        ),
    };
    let software_failed = !w.unread.is_empty();
    let system_path = format!("{}/SYSTEM", root.config);
    let system = match read_hive(fs, &system_path, &mut w) {
        Ok(b) => b,
        Err(e) => failed.read(
            &system_path,
            &e,
            "the boot drivers, host name and cloudbase-init",
            &mut w,
        ),
    };
    if let Some(bytes) = &software {
        with_hive(bytes, "SOFTWARE", &mut w, read_software);
    }
    let mut registry_arch = None;
    let system_read = system.as_ref().is_some_and(|bytes| {
        with_hive(bytes, "SYSTEM", &mut w, |h, w| {
            registry_arch = read_system(h, w)?;
            Ok(())
        })
    });
    let cloudbase = ["Program Files", "Cloudbase Solutions", "Cloudbase-Init"];
    let cloudbase_dir = match find_path(fs, &cloudbase) {
        Ok(dir) => Some(dir),
        Err(e) => failed.read(&cloudbase.join("/"), &e, "cloudbase-init", &mut w),
    };
    if let Some(Some(dir)) = &cloudbase_dir {
        w.drivers.evidence.push(format!("{dir} exists"));
        // A disabled service wins over the files being there.
        w.cloud_init.get_or_insert(true);
    }
    if system_read && cloudbase_dir.is_some() {
        // No service and no program directory; unknown when SYSTEM or the directory could
        // not be read.
        w.cloud_init.get_or_insert(false);
    }
    architecture(fs, &root.cmd, registry_arch, &failed, &mut w);
    classify(&mut w, software_failed);
    hibernation(fs, &failed, &mut w);
    Ok(Some(w))
}

/// Where the reads that fail go: the caller's log, and the facts they leave unknown.
struct Failed<'a> {
    log: &'a ReadLog,
}

impl Failed<'_> {
    /// Logs the failed read of `path` and notes `unknown` as left unknown; `None` to use as
    /// the value that could not be read.
    fn read<T>(&self, path: &str, e: &FsError, unknown: &str, w: &mut WindowsFacts) -> Option<T> {
        self.log.note(path.as_bytes(), e);
        w.unread.push(unknown.to_string());
        None
    }
}

impl WindowsFacts {
    /// Copies these facts into the disk's [`GuestFacts`] (OS fields, drivers, cloud-init,
    /// findings); boot mode, partitions and file systems are the caller's.
    pub fn apply_to(&self, g: &mut GuestFacts) {
        g.os_type = Some("windows".into());
        g.distro = Some("windows".into());
        g.version = self.version.clone();
        g.product_name = self.product_name.clone().or_else(|| self.product.clone());
        g.platform = self.platform.clone();
        g.architecture = self.architecture.clone();
        g.hostname = self.hostname.clone();
        g.drivers = self.drivers.clone();
        g.cloud_init = self.cloud_init;
        g.findings.extend(self.findings.iter().cloned());
    }
}

/// Paths of a found SystemRoot (see [`find_child`] for their spelling).
struct SystemRoot {
    root: String,
    config: String,
    cmd: String,
}

fn find_systemroot(fs: &dyn FileSystem) -> Result<Option<SystemRoot>, FsError> {
    for cand in SYSTEMROOTS {
        let Some(root) = find_path(fs, &[cand])? else {
            continue;
        };
        let Some(sys32) = find_child(fs, &root, "System32")? else {
            continue;
        };
        let config = find_child(fs, &sys32, "config")?;
        let cmd = find_child(fs, &sys32, "cmd.exe")?;
        if let (Some(config), Some(cmd)) = (config, cmd)
            && is_kind(fs, &config, NodeKind::Dir)?
            && is_kind(fs, &cmd, NodeKind::File)?
        {
            return Ok(Some(SystemRoot { root, config, cmd }));
        }
    }
    Ok(None)
}

/// True when `fs` has a SystemRoot candidate (`\Windows`, `\WINNT`, … in any case) with a
/// `System32\config` directory: the mark of a Windows system volume, which [`inspect`] then
/// reads (and reports on when `cmd.exe` is missing).
pub fn has_system_config(fs: &dyn FileSystem) -> Result<bool, FsError> {
    for cand in SYSTEMROOTS {
        if let Some(config) = find_path(fs, &[cand, "System32", "config"])?
            && is_kind(fs, &config, NodeKind::Dir)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_kind(fs: &dyn FileSystem, path: &str, kind: NodeKind) -> Result<bool, FsError> {
    Ok(fs.lstat(path.as_bytes())?.is_some_and(|i| i.kind == kind))
}

/// `dir/name`, matched without case even on a case-sensitive file system (there the stored
/// spelling is returned; on a case-insensitive one, the requested spelling).
fn find_child(fs: &dyn FileSystem, dir: &str, name: &str) -> Result<Option<String>, FsError> {
    let join = |n: &str| format!("{}/{n}", dir.trim_end_matches('/'));
    if fs.case_insensitive() {
        return Ok(fs.lstat(join(name).as_bytes())?.map(|_| join(name)));
    }
    if !is_kind(fs, if dir.is_empty() { "/" } else { dir }, NodeKind::Dir)? {
        return Ok(None);
    }
    let entries = fs.read_dir(if dir.is_empty() { b"/" } else { dir.as_bytes() })?;
    Ok(entries
        .into_iter()
        .filter_map(|e| String::from_utf8(e.name).ok())
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| join(&n)))
}

fn find_path(fs: &dyn FileSystem, parts: &[&str]) -> Result<Option<String>, FsError> {
    let mut path = String::new();
    for p in parts {
        match find_child(fs, &path, p)? {
            Some(next) => path = next,
            None => return Ok(None),
        }
    }
    Ok(Some(path))
}

/// Reads a whole file of at most `cap` bytes.
fn read_file(
    fs: &dyn FileSystem,
    path: &str,
    cap: u64,
) -> Result<Result<Vec<u8>, String>, FsError> {
    let Some(info) = fs.lstat(path.as_bytes())? else {
        return Ok(Err("is missing".into()));
    };
    if info.kind != NodeKind::File {
        return Ok(Err("is not a regular file".into()));
    }
    if info.size > cap {
        return Ok(Err(format!(
            "is {} bytes, above the {cap}-byte cap",
            info.size
        )));
    }
    let mut buf = vec![0u8; info.size as usize];
    let mut done = 0;
    while done < buf.len() {
        let n = match fs.read_at(path.as_bytes(), done as u64, &mut buf[done..]) {
            Ok(n) => n,
            Err(e @ (FsError::Unsupported { .. } | FsError::Corrupt { .. })) => {
                return Ok(Err(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Err(format!("ended after {done} of {} bytes", info.size)));
        }
        done += n;
    }
    Ok(Ok(buf))
}

/// The bytes of a hive file, or a finding saying why they cannot be had.
fn read_hive(
    fs: &dyn FileSystem,
    path: &str,
    w: &mut WindowsFacts,
) -> Result<Option<Vec<u8>>, FsError> {
    match read_file(fs, path, MAX_HIVE_SIZE as u64)? {
        Ok(b) => Ok(Some(b)),
        Err(why) => {
            w.findings.push(Finding::new(
                Severity::Warning,
                "windows.hive_unreadable",
                format!("registry hive {path} {why}; facts from it are missing"),
            ));
            Ok(None)
        }
    }
}

/// The architecture from `cmd.exe`'s PE header, cross-checked with the registry.
fn architecture(
    fs: &dyn FileSystem,
    cmd: &str,
    registry: Option<String>,
    failed: &Failed<'_>,
    w: &mut WindowsFacts,
) {
    let reg = registry
        .as_deref()
        .map(|r| match r.to_ascii_uppercase().as_str() {
            "AMD64" => Ok(Arch::X86_64),
            "X86" => Ok(Arch::I386),
            "ARM64" => Ok(Arch::Arm64),
            _ => Err(r.to_string()),
        });
    let mut head = vec![0u8; PE_HEADER_BYTES];
    let pe = match fs.read_at(cmd.as_bytes(), 0, &mut head) {
        Ok(n) => match arch::pe_machine_raw(&head[..n]) {
            Some(m) => match arch::pe_machine(&head[..n]) {
                Some(a) => Some(a),
                None => {
                    w.findings.push(Finding::new(
                        Severity::Warning,
                        "windows.arch_unsupported",
                        format!(
                            "{cmd} is a PE file for machine {m:#06x}, not i386, x86_64 or arm64"
                        ),
                    ));
                    None
                }
            },
            None => {
                w.findings.push(Finding::new(
                    Severity::Warning,
                    "windows.cmd_not_pe",
                    format!("{cmd} has no PE header"),
                ));
                None
            }
        },
        Err(e @ (FsError::Unsupported { .. } | FsError::Corrupt { .. })) => {
            w.findings.push(Finding::new(
                Severity::Info,
                "windows.cmd_unreadable",
                format!("{e}; the architecture comes from the registry alone"),
            ));
            None
        }
        Err(e) => failed.read(cmd, &e, "cmd.exe's architecture", w),
    };
    let reg_arch = match reg {
        Some(Ok(a)) => Some(a),
        Some(Err(other)) => {
            w.findings.push(Finding::new(
                Severity::Warning,
                "windows.arch_unsupported",
                format!("PROCESSOR_ARCHITECTURE is {other:?}, not AMD64, x86 or ARM64"),
            ));
            None
        }
        None => None,
    };
    if let (Some(p), Some(r)) = (pe, reg_arch)
        && p != r
    {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.arch_mismatch",
            format!(
                "{cmd} is {} but PROCESSOR_ARCHITECTURE says {}; using the PE header",
                p.as_str(),
                r.as_str()
            ),
        ));
    }
    match pe.or(reg_arch) {
        Some(a) => w.architecture = Some(a.as_str().into()),
        // A failed read already says why.
        None if !w.unread.is_empty() => {}
        None => w.findings.push(Finding::new(
            Severity::Warning,
            "windows.arch_unknown",
            "neither cmd.exe nor the registry gave the architecture",
        )),
    }
}

/// Names the product, sets the platform and the client/server findings; `software_failed`:
/// the SOFTWARE hive could not be read, so a missing version is no finding of its own.
fn classify(w: &mut WindowsFacts, software_failed: bool) {
    let pn = w.product_name.clone().unwrap_or_default();
    // InstallationType (`Client`, `Server`, `Server Core`, `Nano Server`) exists from
    // Windows 7 / 2008 R2 on; ProductType on every NT; ProductName and EditionID are the
    // last resort (Windows 2000 Server's ProductName does not say "Server").
    w.server = match (w.installation_type.as_deref(), w.product_type.as_deref()) {
        (Some(t), _) => t.contains("Server"),
        (None, Some(t)) => !t.eq_ignore_ascii_case("WinNT"),
        (None, None) => {
            pn.contains("Server")
                || w.edition_id
                    .as_deref()
                    .is_some_and(|e| e.starts_with("Server"))
        }
    };
    if let (Some(ma), Some(mi)) = (w.major_version, w.minor_version) {
        w.version = Some(match w.build {
            Some(b) => format!("{ma}.{mi}.{b}"),
            None => format!("{ma}.{mi}"),
        });
    }
    let Some(p) = product(&VersionInfo {
        major: w.major_version,
        minor: w.minor_version,
        build: w.build,
        server: w.server,
        product_name: pn.clone(),
    }) else {
        if software_failed {
            return;
        }
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.version_unknown",
            "the registry gave no Windows version (CurrentMajorVersionNumber or CurrentVersion)",
        ));
        return;
    };
    w.platform = Some(p.platform.to_string());
    if !w.server {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.client_edition",
            format!(
                "{} is a client edition ({}); ECS ImportImage names only Windows Server \
                 platforms (2003 to 2022), so its Platform is \"{OTHER_WINDOWS}\"",
                p.name,
                w.edition_id.as_deref().unwrap_or("edition unknown")
            ),
        ));
    } else if p.platform == OTHER_WINDOWS {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.platform_unlisted",
            format!(
                "{} (build {}) is not named in the ImportImage Platform list (Windows Server \
                 2003 to 2022), so its Platform is \"{OTHER_WINDOWS}\"",
                p.name,
                w.build.map_or("unknown".into(), |b| b.to_string())
            ),
        ));
    }
    w.product = Some(p.name);
}

/// A non-zero `hiberfil.sys` header means hibernation or Fast Startup (docs/INSPECTION.md
/// §Windows).
fn hibernation(fs: &dyn FileSystem, failed: &Failed<'_>, w: &mut WindowsFacts) {
    const UNKNOWN: &str = "whether Windows is hibernated";
    let path = match find_path(fs, &["hiberfil.sys"]) {
        Ok(Some(path)) => path,
        Ok(None) => return,
        Err(e) => {
            failed.read::<()>("/hiberfil.sys", &e, UNKNOWN, w);
            return;
        }
    };
    let mut head = [0u8; 4];
    match fs.read_at(path.as_bytes(), 0, &mut head) {
        Ok(4) if head != [0; 4] => w.findings.push(Finding::new(
            Severity::Warning,
            "windows.hibernated",
            format!(
                "{path} starts with {:?}: Windows was hibernated or shut down with Fast Startup; \
                 the volume may not be consistent (shut down fully before capturing)",
                String::from_utf8_lossy(&head)
            ),
        )),
        Ok(_) | Err(FsError::Unsupported { .. } | FsError::Corrupt { .. }) => {}
        Err(e) => {
            failed.read::<()>(&path, &e, UNKNOWN, w);
        }
    }
}

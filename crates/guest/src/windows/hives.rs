//! The registry half of the Windows recipe: what `SOFTWARE` and `SYSTEM` say about the
//! version, the control set, boot drivers and cloudbase-init (docs/INSPECTION.md
//! §Windows). Reads hives only through `guest::registry`.

use super::facts::WindowsFacts;
use crate::registry::{Hive, Key, RegistryError};
use imgport_image::{Finding, Severity};

/// Services whose presence and `Start` we report.
const VIRTIO_BLOCK: [&str; 2] = ["viostor", "vioscsi"];
const VIRTIO_NET: &str = "netkvm";
const NVME: &str = "stornvme";
const CLOUDBASE: &str = "cloudbase-init";
/// `Start` = 0: the driver loads at boot (SERVICE_BOOT_START); 4 = disabled.
const BOOT_START: u64 = 0;
const DISABLED: u64 = 4;

/// Parses a hive and runs `f` on it; a registry error becomes a finding. True when both
/// succeeded.
pub(super) fn with_hive(
    bytes: &[u8],
    name: &str,
    w: &mut WindowsFacts,
    f: impl FnOnce(&Hive<'_>, &mut WindowsFacts) -> Result<(), RegistryError>,
) -> bool {
    let result = Hive::parse(bytes).and_then(|h| {
        if h.is_dirty() {
            let (p, s) = h.sequence_numbers();
            w.findings.push(Finding::new(
                Severity::Warning,
                "windows.dirty_hive",
                format!(
                    "registry hive {name} is dirty (sequence numbers {p} and {s} differ): \
                     Windows did not shut down cleanly and recent changes may sit only in \
                     its .LOG1/.LOG2 files, which are not replayed"
                ),
            ));
        }
        f(&h, w)
    });
    match result {
        Ok(()) => true,
        Err(e) => {
            w.findings.push(Finding::new(
                Severity::Warning,
                "windows.hive_corrupt",
                format!("registry hive {name}: {e}"),
            ));
            false
        }
    }
}

fn string_value(k: &Key<'_>, name: &str) -> Result<Option<String>, RegistryError> {
    Ok(match k.value(name)? {
        Some(v) => v.data()?.as_str().map(str::to_string),
        None => None,
    })
}

fn number_value(k: &Key<'_>, name: &str) -> Result<Option<u64>, RegistryError> {
    Ok(match k.value(name)? {
        Some(v) => v.data()?.as_u64(),
        None => None,
    })
}

pub(super) fn read_software(h: &Hive<'_>, w: &mut WindowsFacts) -> Result<(), RegistryError> {
    let Some(cv) = h.key("Microsoft\\Windows NT\\CurrentVersion")? else {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.no_current_version",
            "SOFTWARE has no Microsoft\\Windows NT\\CurrentVersion key",
        ));
        return Ok(());
    };
    w.product_name = string_value(&cv, "ProductName")?;
    w.edition_id = string_value(&cv, "EditionID")?;
    w.installation_type = string_value(&cv, "InstallationType")?;
    w.display_version = string_value(&cv, "DisplayVersion")?;
    let u32_of = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
    w.ubr = u32_of(number_value(&cv, "UBR")?);
    w.build = u32_of(number_value(&cv, "CurrentBuildNumber")?)
        .or(u32_of(number_value(&cv, "CurrentBuild")?));
    // CurrentMajor/MinorVersionNumber exist from Windows 10 on; before, CurrentVersion
    // ("6.3") is the version (it still reads 6.3 on Windows 10).
    w.major_version = u32_of(number_value(&cv, "CurrentMajorVersionNumber")?);
    w.minor_version = u32_of(number_value(&cv, "CurrentMinorVersionNumber")?);
    if w.major_version.is_none()
        && let Some(cur) = string_value(&cv, "CurrentVersion")?
        && let Some((ma, mi)) = cur.trim().split_once('.')
    {
        w.major_version = ma.parse().ok();
        w.minor_version = mi.parse().ok();
    }
    Ok(())
}

/// Reads `Select\Current`, the services and `PROCESSOR_ARCHITECTURE`; returns the latter.
pub(super) fn read_system(
    h: &Hive<'_>,
    w: &mut WindowsFacts,
) -> Result<Option<String>, RegistryError> {
    let current = match h.key("Select")? {
        Some(k) => number_value(&k, "Current")?,
        None => None,
    };
    let ccs = match current {
        Some(n) => format!("ControlSet{n:03}"),
        None => {
            w.findings.push(Finding::new(
                Severity::Warning,
                "windows.no_select_current",
                "SYSTEM has no Select\\Current value; reading ControlSet001",
            ));
            "ControlSet001".into()
        }
    };
    let Some(cs) = h.key(&ccs)? else {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.no_control_set",
            format!("SYSTEM has no {ccs} key (named by Select\\Current)"),
        ));
        return Ok(None);
    };
    w.current_control_set = Some(ccs.clone());
    let arch = match h.key(&format!("{ccs}\\Control\\Session Manager\\Environment"))? {
        Some(env) => string_value(&env, "PROCESSOR_ARCHITECTURE")?,
        None => None,
    };
    if let Some(o) = h.key(&format!("{ccs}\\Control\\ProductOptions"))? {
        w.product_type = string_value(&o, "ProductType")?;
    }
    if let Some(p) = h.key(&format!("{ccs}\\Services\\Tcpip\\Parameters"))? {
        w.hostname = string_value(&p, "Hostname")?;
    }
    let services = cs.subkey("Services")?;
    // The Start value of each service of interest; None when the service is absent.
    let mut start_of = |name: &str| -> Result<Option<u64>, RegistryError> {
        let Some(svc) = services
            .as_ref()
            .map(|s| s.subkey(name))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let start = number_value(&svc, "Start")?;
        w.drivers.evidence.push(format!(
            "SYSTEM\\{ccs}\\Services\\{name} Start={}",
            start.map_or("missing".into(), |s| s.to_string())
        ));
        Ok(Some(start.unwrap_or(u64::MAX)))
    };
    let block: Vec<(String, u64)> = VIRTIO_BLOCK
        .iter()
        .filter_map(|n| {
            start_of(n)
                .transpose()
                .map(|s| s.map(|s| (n.to_string(), s)))
        })
        .collect::<Result<_, _>>()?;
    let net = start_of(VIRTIO_NET)?;
    let nvme = start_of(NVME)?;
    let cloudbase = start_of(CLOUDBASE)?;
    w.drivers.virtio = Some(!block.is_empty() || net.is_some());
    w.drivers.virtio_in_initramfs = Some(block.iter().any(|(_, s)| *s == BOOT_START));
    w.drivers.nvme = Some(nvme.is_some());
    w.drivers.nvme_in_initramfs = Some(nvme == Some(BOOT_START));
    if block.is_empty() {
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.no_virtio",
            format!(
                "no virtio block driver service (viostor, vioscsi) in {ccs}: the image may not \
                 boot on ECS virtio disks; install the virtio drivers before importing"
            ),
        ));
    } else if !block.iter().any(|(_, s)| *s == BOOT_START) {
        let list: Vec<String> = block
            .iter()
            .map(|(n, s)| format!("{n} Start={s}"))
            .collect();
        w.findings.push(Finding::new(
            Severity::Warning,
            "windows.virtio_not_boot_start",
            format!(
                "virtio block drivers are installed but not boot-start ({}): Windows cannot \
                 load them in time to mount its system disk (Start must be 0)",
                list.join(", ")
            ),
        ));
    }
    if nvme.is_none() {
        w.findings.push(Finding::new(
            Severity::Info,
            "windows.no_nvme",
            format!("no stornvme service in {ccs}: NVMe instance types will not boot"),
        ));
    }
    if let Some(s) = cloudbase {
        w.cloud_init = Some(s != DISABLED);
    }
    Ok(arch)
}

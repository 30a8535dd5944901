//! Readiness findings, like Alibaba Cloud's image check: what would keep the imported image
//! from booting or from being managed, each with a stable `guest.<rule>` code.
//! Pure: it judges facts already gathered and reads nothing.

use super::facts::GuestFacts;
use super::fstab::FstabEntry;
use imgport_image::{Finding, Severity};

/// Largest system disk ImportImage accepts (`DiskImageSize` 1–2048 GiB, docs/CLOUD-API.md
/// §ImportImage).
pub const MAX_DISK_BYTES: u64 = 2048 * 1024 * 1024 * 1024;

/// Platforms (and arm64) for which Alibaba requires `CONFIG_FW_CFG_SYSFS=y` (docs/CLOUD-API.md
/// §ImportImage, ImportImage usage notes).
const FW_CFG_PLATFORMS: &[&str] = &[
    "CentOS Stream",
    "Anolis",
    "AlmaLinux",
    "UOS",
    "Kylin",
    "Rocky Linux",
];

/// What the rules look at beyond [`GuestFacts`].
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    pub disk_size: u64,
    pub fstab: &'a [FstabEntry],
    /// `CONFIG_FW_CFG_SYSFS` of the default kernel: `None` when no kernel config was read,
    /// `Some(None)` when the symbol is not set.
    pub fw_cfg_sysfs: Option<Option<String>>,
    /// cloud-init installed (it may be installed but disabled).
    pub cloud_init_installed: Option<bool>,
    /// A volume's role could not be decided for failed reads: finding no OS is no evidence
    /// that there is none.
    pub os_unknown: bool,
    /// The boot files could not be read: no boot mode is no evidence of no boot path.
    pub boot_unknown: bool,
}

/// The readiness findings for `facts`.
pub fn check(facts: &GuestFacts, inputs: &Inputs<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let warn = |out: &mut Vec<Finding>, code: &str, msg: String| {
        out.push(Finding::new(Severity::Warning, code, msg));
    };
    if inputs.disk_size > MAX_DISK_BYTES {
        warn(
            &mut out,
            "guest.disk_too_large",
            format!(
                "the disk is {} GiB; ImportImage takes system disks of at most 2048 GiB",
                inputs.disk_size.div_ceil(1 << 30)
            ),
        );
    }
    let Some(os) = facts.os_type.as_deref() else {
        if inputs.os_unknown {
            return out;
        }
        out.push(Finding::new(
            Severity::Warning,
            "guest.no_os",
            "no operating system was found on the disk; it cannot be a system disk",
        ));
        return out;
    };
    let arch = facts.architecture.as_deref();
    if arch == Some("arm64") && facts.boot_mode.as_deref() != Some("UEFI") {
        warn(
            &mut out,
            "guest.arm64_without_uefi",
            "arm64 images boot only by UEFI, but no UEFI boot path (ESP with a loader) was found"
                .into(),
        );
    }
    if facts.boot_mode.is_none() && !inputs.boot_unknown {
        warn(
            &mut out,
            "guest.no_boot_path",
            "no boot path was found: no ESP, BIOS boot partition or MBR boot code".into(),
        );
    }
    if os != "linux" {
        return out;
    }
    match (facts.drivers.virtio, facts.drivers.virtio_in_initramfs) {
        (Some(false), _) => warn(
            &mut out,
            "guest.no_virtio_driver",
            "the kernel has no virtio block/net drivers; the instance will not boot on ECS".into(),
        ),
        (_, Some(false)) => warn(
            &mut out,
            "guest.no_virtio_in_initramfs",
            "the initramfs has no virtio block driver; the root disk will not be found at boot"
                .into(),
        ),
        _ => {}
    }
    for e in inputs.fstab {
        if e.device.is_unstable_kernel_name()
            && let super::fstab::DeviceSpec::Kernel(dev) = &e.device
        {
            warn(
                &mut out,
                "guest.fstab_device_name",
                format!(
                    "/etc/fstab mounts {} by the device name {dev}, which changes on other disk \
                     controllers; use UUID= or LABEL=",
                    e.mountpoint
                ),
            );
        }
    }
    match (inputs.cloud_init_installed, facts.cloud_init) {
        (Some(false), _) => warn(
            &mut out,
            "guest.no_cloud_init",
            "cloud-init is not installed: passwords, host names and SSH keys will not be set"
                .into(),
        ),
        (Some(true), Some(false)) => warn(
            &mut out,
            "guest.cloud_init_disabled",
            "cloud-init is installed but not enabled at boot".into(),
        ),
        _ => {}
    }
    let needs_fw_cfg = arch == Some("arm64")
        || facts
            .platform
            .as_deref()
            .is_some_and(|p| FW_CFG_PLATFORMS.contains(&p));
    if needs_fw_cfg
        && let Some(value) = &inputs.fw_cfg_sysfs
        && value.as_deref() != Some("y")
    {
        warn(
            &mut out,
            "guest.no_fw_cfg_sysfs",
            format!(
                "the kernel has CONFIG_FW_CFG_SYSFS={}; this platform needs =y",
                value.as_deref().unwrap_or("(not set)")
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fstab;
    use super::*;

    fn linux() -> GuestFacts {
        GuestFacts {
            os_type: Some("linux".into()),
            platform: Some("Debian".into()),
            architecture: Some("x86_64".into()),
            boot_mode: Some("BIOS".into()),
            cloud_init: Some(true),
            ..Default::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn each_rule() {
        let ok = check(&linux(), &Inputs::default());
        assert!(ok.is_empty(), "{ok:?}");

        let big = Inputs {
            disk_size: MAX_DISK_BYTES + 1,
            ..Default::default()
        };
        assert_eq!(codes(&check(&linux(), &big)), ["guest.disk_too_large"]);

        let mut g = linux();
        g.architecture = Some("arm64".into());
        let fw = Inputs {
            fw_cfg_sysfs: Some(Some("m".into())),
            ..Default::default()
        };
        assert_eq!(
            codes(&check(&g, &fw)),
            ["guest.arm64_without_uefi", "guest.no_fw_cfg_sysfs"]
        );
        let mut g = linux();
        g.platform = Some("Rocky Linux".into());
        assert_eq!(codes(&check(&g, &fw)), ["guest.no_fw_cfg_sysfs"]);
        let fw_y = Inputs {
            fw_cfg_sysfs: Some(Some("y".into())),
            ..Default::default()
        };
        assert!(check(&g, &fw_y).is_empty());

        let mut g = linux();
        g.drivers.virtio = Some(true);
        g.drivers.virtio_in_initramfs = Some(false);
        assert_eq!(
            codes(&check(&g, &Inputs::default())),
            ["guest.no_virtio_in_initramfs"]
        );
        g.drivers.virtio = Some(false);
        assert_eq!(
            codes(&check(&g, &Inputs::default())),
            ["guest.no_virtio_driver"]
        );

        let tab = fstab::parse("/dev/sda1 / ext4 defaults\nUUID=x /boot ext4 defaults\n");
        let i = Inputs {
            fstab: &tab,
            cloud_init_installed: Some(false),
            ..Default::default()
        };
        assert_eq!(
            codes(&check(&linux(), &i)),
            ["guest.fstab_device_name", "guest.no_cloud_init"]
        );
        let i = Inputs {
            cloud_init_installed: Some(true),
            ..Default::default()
        };
        let mut g = linux();
        g.cloud_init = Some(false);
        g.boot_mode = None;
        assert_eq!(
            codes(&check(&g, &i)),
            ["guest.no_boot_path", "guest.cloud_init_disabled"]
        );
        assert_eq!(
            codes(&check(&GuestFacts::default(), &Inputs::default())),
            ["guest.no_os"]
        );
    }
}

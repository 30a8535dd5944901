//! The hints of an OVF descriptor as evidence in the plan: the operating system, firmware and
//! disk controller the exporting hypervisor recorded, shown beside what inspection of the
//! system disk found. Inspection wins when they disagree (a finding says so); a hint fills a
//! value only where inspection found nothing and the user said nothing.

use std::path::PathBuf;

use serde::Serialize;

use super::{PlannedImage, Source, Sourced};
use imgport_cloud::aliyun::types::{BootMode, NvmeSupport, OsType, Platform};
use imgport_guest::facts::GuestFacts;
use imgport_image::ova::PackageDisk;
use imgport_image::{Finding, Severity};

/// One hint of the descriptor and how the plan used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    /// The plan field it bears on: `platform`, `boot_mode` or `driver`.
    pub field: String,
    /// What the descriptor says, e.g. `Ubuntu`, `UEFI`, `NVMe`.
    pub ovf: String,
    /// Where in the descriptor, e.g. `vmw:osType="ubuntu64Guest"`.
    pub from: String,
    /// What inspection of the system disk found, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection: Option<String>,
    /// `agrees`, `inspection wins`, `used` (inspection found nothing) or `given` (the user's
    /// value is used).
    pub outcome: String,
}

/// The descriptor's hints for the system disk's package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvfEvidence {
    pub package: PathBuf,
    pub hints: Vec<Hint>,
}

/// Weighs `package`'s hints against `guest` (inspection of the system disk) and updates
/// `image` where inspection and the user left a default; disagreements become `notes`.
pub(super) fn weigh(
    package: &PackageDisk,
    guest: Option<&GuestFacts>,
    image: &mut PlannedImage,
    notes: &mut Vec<Finding>,
) -> OvfEvidence {
    let h = &package.hints;
    let mut hints = Vec::new();
    let is_default = |s: &Source| matches!(s, Source::Default { .. });
    let mut disagree = |field: &str, ovf: &str, from: &str, found: &str| {
        notes.push(Finding::new(
            Severity::Warning,
            "ovf.hint_disagrees",
            format!(
                "{}: the OVF descriptor says {field} {ovf} ({from}) but inspection of the system disk found {found}; inspection wins",
                package.package.display()
            ),
        ));
    };
    if let (Some(p), Some(from)) = (&h.platform, &h.os_from)
        && let Some(platform) = Platform::parse(p)
    {
        let found = guest.and_then(|g| g.platform.as_deref());
        let outcome = if image.platform.source == Source::User {
            "given"
        } else if let Some(f) = found.and_then(Platform::parse) {
            if f == platform {
                "agrees"
            } else {
                disagree("platform", p, from, found.unwrap_or_default());
                "inspection wins"
            }
        } else if is_default(&image.platform.source) {
            let why = format!("the OVF descriptor ({from}); inspection found no distribution");
            image.platform = Sourced::inferred(platform, why.clone());
            if let Some(os) = h.os_type.as_deref().and_then(OsType::parse)
                && is_default(&image.os_type.source)
            {
                image.os_type = Sourced::inferred(os, why);
            }
            "used"
        } else {
            "inspection wins"
        };
        hints.push(Hint {
            field: "platform".into(),
            ovf: p.clone(),
            from: from.clone(),
            inspection: found.map(str::to_string),
            outcome: outcome.into(),
        });
    }
    if let (Some(b), Some(from)) = (&h.boot_mode, &h.boot_from)
        && let Some(mode) = BootMode::parse(b)
    {
        let found = guest.and_then(|g| g.boot_mode.as_deref());
        let as_import = |m: BootMode| match m {
            BootMode::UefiPreferred => BootMode::Uefi,
            m => m,
        };
        let outcome = if image.boot_mode.source == Source::User {
            "given"
        } else if let Some(f) = found.and_then(BootMode::parse) {
            if as_import(f) == mode {
                "agrees"
            } else {
                disagree("boot mode", b, from, found.unwrap_or_default());
                "inspection wins"
            }
        } else if is_default(&image.boot_mode.source) {
            image.boot_mode = Sourced::inferred(
                mode,
                format!("the OVF descriptor ({from}); inspection found no boot loader"),
            );
            "used"
        } else {
            "inspection wins"
        };
        hints.push(Hint {
            field: "boot_mode".into(),
            ovf: b.clone(),
            from: from.clone(),
            inspection: found.map(str::to_string),
            outcome: outcome.into(),
        });
    }
    if let Some(c) = &package.controller {
        let nvme = guest.and_then(|g| g.drivers.nvme);
        let from = format!("the controller of disk {:?}", package.disk_id);
        let inspection = nvme.map(|n| {
            if n {
                "an NVMe driver".to_string()
            } else {
                "no NVMe driver".to_string()
            }
        });
        let outcome = match (c.as_str(), nvme) {
            (_, _)
                if image
                    .nvme_support
                    .as_ref()
                    .is_some_and(|s| s.source == Source::User) =>
            {
                "given"
            }
            ("NVMe", Some(false)) => {
                disagree(
                    "the system disk's controller is",
                    c,
                    &from,
                    "no NVMe driver",
                );
                "inspection wins"
            }
            ("NVMe", Some(true)) => "agrees",
            ("NVMe", None) => {
                image.nvme_support = Some(Sourced::inferred(
                    NvmeSupport::Supported,
                    "the OVF descriptor: the system disk booted from an NVMe controller",
                ));
                "used"
            }
            _ => "shown",
        };
        hints.push(Hint {
            field: "driver".into(),
            ovf: c.clone(),
            from,
            inspection,
            outcome: outcome.into(),
        });
    }
    OvfEvidence {
        package: package.package.clone(),
        hints,
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::{DiskInput, GIB, PlanOptions, infer};
    use imgport_cloud::aliyun::types::{BootMode, NvmeSupport, Platform};
    use imgport_guest::facts::GuestFacts;
    use imgport_image::ova::PackageDisk;
    use imgport_image::ova::ovf::OvfHints;
    use imgport_image::{ContainerReport, ImageFormat};

    fn report() -> ContainerReport {
        ContainerReport {
            path: PathBuf::from("vm.ova/disk1.vmdk"),
            format: Some(ImageFormat::Qcow2),
            subformat: None,
            recognised_as: None,
            virtual_size: Some(GIB),
            allocated_size: Some(0),
            file_size: GIB,
            bytes_read: 0,
            safe: true,
            findings: vec![],
            details: None,
        }
    }

    fn package() -> PackageDisk {
        PackageDisk {
            package: PathBuf::from("vm.ova"),
            disk_id: "vmdisk1".into(),
            href: "disk1.vmdk".into(),
            capacity: Some(GIB),
            controller: Some("NVMe".into()),
            manifest: None,
            hints: OvfHints {
                platform: Some("Ubuntu".into()),
                os_type: Some("linux".into()),
                os_from: Some("vmw:osType=\"ubuntu64Guest\"".into()),
                boot_mode: Some("UEFI".into()),
                boot_from: Some("vmw:Config firmware=\"efi\"".into()),
                controllers: vec![("vmdisk1".into(), "NVMe".into())],
            },
        }
    }

    fn plan(guest: &GuestFacts) -> super::super::ImportPlan {
        let r = report();
        let p = package();
        let disks = [DiskInput {
            path: Path::new("vm.ova/disk1.vmdk"),
            container: &r,
            guest: Some(guest),
            package: Some(&p),
        }];
        let opts = PlanOptions {
            region: "cn-hangzhou".into(),
            bucket: "images".into(),
            allow_no_os: true,
            ..Default::default()
        };
        infer(&disks, &opts, &|_, _| Ok(GIB)).unwrap()
    }

    #[test]
    fn inspection_wins_and_the_disagreement_is_a_finding() {
        let guest = GuestFacts {
            os_type: Some("linux".into()),
            platform: Some("Debian".into()),
            boot_mode: Some("BIOS".into()),
            ..Default::default()
        };
        let p = plan(&guest);
        assert_eq!(p.image.platform.value, Platform::Debian);
        assert_eq!(p.image.boot_mode.value, BootMode::Bios);
        let e = p.ovf.unwrap();
        assert_eq!(e.hints[0].outcome, "inspection wins");
        assert_eq!(e.hints[0].inspection.as_deref(), Some("Debian"));
        let disagreements = p
            .notes
            .iter()
            .filter(|n| n.code == "ovf.hint_disagrees")
            .count();
        assert_eq!(disagreements, 2, "{:?}", p.notes);
    }

    #[test]
    fn hints_fill_what_inspection_did_not_find() {
        let p = plan(&GuestFacts::default());
        assert_eq!(p.image.platform.value, Platform::Ubuntu);
        assert_eq!(p.image.boot_mode.value, BootMode::Uefi);
        assert_eq!(
            p.image.nvme_support.as_ref().map(|s| s.value),
            Some(NvmeSupport::Supported)
        );
        let outcomes: Vec<&str> = p
            .ovf
            .as_ref()
            .unwrap()
            .hints
            .iter()
            .map(|h| h.outcome.as_str())
            .collect();
        assert_eq!(outcomes, ["used", "used", "used"]);
        assert!(!p.notes.iter().any(|n| n.code == "ovf.hint_disagrees"));
    }
}

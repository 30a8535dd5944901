//! The hints of an OVF descriptor as evidence in the plan: the operating system, firmware and
//! disk controller the exporting hypervisor recorded, shown beside what inspection of the
//! system disk found. Inspection wins when they disagree (a finding says so); a hint fills a
//! value only where inspection found nothing and the user said nothing.

use std::path::PathBuf;

use serde::Serialize;

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

/// How a plan field was set before the hints are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Was {
    /// By the user: a hint never changes it.
    Given,
    /// From inspection.
    Found,
    /// A default: a hint may fill it.
    Default,
}

/// How each field the hints bear on was set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current {
    pub platform: Was,
    pub os_type: Was,
    pub boot_mode: Was,
    pub nvme: Was,
}

/// The hints weighed: the evidence to show, disagreements, and the values a hint fills (each
/// with where it came from).
#[derive(Debug, Default)]
pub(crate) struct Weighed {
    pub hints: Vec<Hint>,
    pub notes: Vec<Finding>,
    pub platform: Option<(Platform, String)>,
    pub os_type: Option<(OsType, String)>,
    pub boot_mode: Option<(BootMode, String)>,
    pub nvme: Option<(NvmeSupport, String)>,
}

/// Weighs `package`'s hints against `guest` (inspection of the system disk), given how each
/// field was set: inspection wins (a disagreement is a note), a hint fills only a default.
pub(crate) fn weigh(package: &PackageDisk, guest: Option<&GuestFacts>, now: Current) -> Weighed {
    let h = &package.hints;
    let mut w = Weighed::default();
    let disagree = |notes: &mut Vec<Finding>, field: &str, ovf: &str, from: &str, found: &str| {
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
        let outcome = if now.platform == Was::Given {
            "given"
        } else if let Some(f) = found.and_then(Platform::parse) {
            if f == platform {
                "agrees"
            } else {
                disagree(&mut w.notes, "platform", p, from, found.unwrap_or_default());
                "inspection wins"
            }
        } else if now.platform == Was::Default {
            let why = format!("the OVF descriptor ({from}); inspection found no distribution");
            w.platform = Some((platform, why.clone()));
            if let Some(os) = h.os_type.as_deref().and_then(OsType::parse)
                && now.os_type == Was::Default
            {
                w.os_type = Some((os, why));
            }
            "used"
        } else {
            "inspection wins"
        };
        w.hints.push(Hint {
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
        let outcome = if now.boot_mode == Was::Given {
            "given"
        } else if let Some(f) = found.and_then(BootMode::parse) {
            if as_import(f) == mode {
                "agrees"
            } else {
                disagree(
                    &mut w.notes,
                    "boot mode",
                    b,
                    from,
                    found.unwrap_or_default(),
                );
                "inspection wins"
            }
        } else if now.boot_mode == Was::Default {
            w.boot_mode = Some((
                mode,
                format!("the OVF descriptor ({from}); inspection found no boot loader"),
            ));
            "used"
        } else {
            "inspection wins"
        };
        w.hints.push(Hint {
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
            _ if now.nvme == Was::Given => "given",
            ("NVMe", Some(false)) => {
                disagree(
                    &mut w.notes,
                    "the system disk's controller is",
                    c,
                    &from,
                    "no NVMe driver",
                );
                "inspection wins"
            }
            ("NVMe", Some(true)) => "agrees",
            ("NVMe", None) => {
                w.nvme = Some((
                    NvmeSupport::Supported,
                    "the OVF descriptor: the system disk booted from an NVMe controller".into(),
                ));
                "used"
            }
            _ => "shown",
        };
        w.hints.push(Hint {
            field: "driver".into(),
            ovf: c.clone(),
            from,
            inspection,
            outcome: outcome.into(),
        });
    }
    w
}

#[cfg(test)]
mod tests;

//! `imgport inspect FILE...`: the container verdict and, for safe images, the guest facts
//! (partitions, file systems, OS, architecture, boot mode, drivers, readiness) per file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::output::{exit, human_bytes, print_json};
use super::values::FormatArg;
use imgport_guest::{self as guest, facts::GuestFacts};
use imgport_image::{
    self as image, ContainerReport, Finding, ImageError, ImageFormat, ImageSource, OpenOptions,
    Severity,
};

/// One file's result: the container report, plus `guest` when the image is safe to read.
#[derive(Debug, Serialize)]
struct Inspected {
    #[serde(flatten)]
    report: ContainerReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest: Option<GuestFacts>,
    /// The OVA/OVF package the disk came from and its descriptor's hints.
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<image::ova::PackageDisk>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image files to inspect; an OVA/OVF package is inspected disk by disk.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
    /// The format the files are supposed to have; a different detected format is refused.
    #[arg(long, value_enum)]
    pub declared_format: Option<FormatArg>,
    /// Report the container verdict only; do not look inside the disk.
    #[arg(long)]
    pub no_guest: bool,
    /// Accept guest data that begins (at the disk's or a partition's first byte) with another
    /// image format's header, and import that nested image as-is; by default it is refused.
    #[arg(long)]
    pub allow_nested: bool,
}

/// Inspects every file; exit 0 when all are safe, 3 when any is refused, 1 on I/O errors.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let opts = OpenOptions {
        declared: args.declared_format.map(Into::into),
        allow_nested: args.allow_nested,
    };
    let mut reports = Vec::new();
    let mut io_failed = false;
    for path in &args.files {
        // An OVA/OVF package: each of its disks, in its descriptor's order.
        match image::open_all(path, &opts) {
            Ok(all) => {
                for opened in all {
                    let guest = (!args.no_guest)
                        .then(|| guest::inspect(Arc::new(ImageSource(opened.image.clone()))));
                    let mut report = opened.report;
                    report.findings.extend(extension_mismatch(&report));
                    reports.push(Inspected {
                        report,
                        guest,
                        package: opened.package,
                    });
                }
            }
            Err(ImageError::Refused { report }) => reports.push(Inspected {
                report: *report,
                guest: None,
                package: None,
            }),
            Err(e) => {
                io_failed = true;
                eprintln!("error: {}", super::output::error_chain(&e));
            }
        }
    }
    if args.json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            print_human(r);
        }
    }
    let code = if io_failed {
        exit::FAILED
    } else if reports.iter().any(|r| !r.report.safe) {
        exit::REFUSED
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}

/// The format a file name's extension promises, when it names one.
fn format_of_name(path: &std::path::Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "qcow2" | "qcow" => "qcow2",
        "vhd" | "vpc" => "vhd",
        "raw" => "raw",
        "vmdk" => "vmdk",
        "vhdx" => "vhdx",
        "vdi" => "vdi",
        _ => return None,
    })
}

/// A warning when the file's name promises another format than the one detected (`cp
/// notes.txt disk.qcow2` is a raw disk, whatever its name says).
fn extension_mismatch(r: &ContainerReport) -> Option<Finding> {
    let named = format_of_name(&r.path)?;
    let detected = r.format.map(ImageFormat::name)?;
    (named != detected).then(|| {
        Finding::new(
            Severity::Warning,
            "container.extension_mismatch",
            format!(
                "the file name says {named}, but the content is {detected}: the name is not \
                 what was detected (a copied or renamed file?)"
            ),
        )
    })
}

fn print_human(i: &Inspected) {
    let r = &i.report;
    let verdict = if r.safe { "safe" } else { "REFUSED" };
    hprintln!("{}: {verdict}", r.path.display());
    let format = match (&r.format, &r.recognised_as) {
        (Some(f), _) => f.to_string(),
        (None, Some(what)) => what.clone(),
        (None, None) => "unknown".to_string(),
    };
    match &r.subformat {
        Some(sub) => hprintln!("  format:         {format} ({sub})"),
        None => hprintln!("  format:         {format}"),
    }
    if let Some(v) = r.virtual_size {
        hprintln!("  virtual size:   {}", human_bytes(v));
    }
    if let Some(a) = r.allocated_size {
        hprintln!("  allocated size: {}", human_bytes(a));
    }
    hprintln!("  file size:      {}", human_bytes(r.file_size));
    if let Some(p) = &i.package {
        hprintln!("  ovf hints:      {}", ovf_hints(p));
    }
    print_findings(&r.findings);
    if let Some(g) = &i.guest {
        print_guest(g);
    }
}

/// The descriptor's hints for one disk, in a line.
fn ovf_hints(p: &image::ova::PackageDisk) -> String {
    let h = &p.hints;
    let mut parts = Vec::new();
    if let (Some(v), Some(from)) = (&h.platform, &h.os_from) {
        parts.push(format!("platform {v} ({from})"));
    }
    if let (Some(v), Some(from)) = (&h.boot_mode, &h.boot_from) {
        parts.push(format!("boot mode {v} ({from})"));
    }
    if let Some(c) = &p.controller {
        parts.push(format!("{c} controller"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn print_guest(g: &GuestFacts) {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    match (&g.os_type, &g.product_name) {
        (Some(os), Some(p)) => hprintln!("  guest os:       {os}: {p}"),
        (Some(os), None) => hprintln!("  guest os:       {os}"),
        (None, _) => hprintln!("  guest os:       none found"),
    }
    if g.os_type.is_some() {
        hprintln!(
            "  platform:       {} ({} {})",
            or(&g.platform),
            or(&g.distro),
            or(&g.version)
        );
    }
    hprintln!("  architecture:   {}", or(&g.architecture));
    hprintln!("  boot mode:      {}", or(&g.boot_mode));
    hprintln!("  partitions:     {}", or(&g.partition_table));
    for p in &g.partitions {
        hprintln!(
            "    {:>3}  {:>10}  {:<22} {}",
            p.index,
            human_bytes(p.size),
            p.type_name.clone().unwrap_or_else(|| p.type_id.clone()),
            p.filesystem.as_deref().unwrap_or("")
        );
    }
    for f in &g.filesystems {
        hprintln!(
            "  filesystem:     {} {}{}{}",
            f.device,
            f.kind,
            f.role
                .as_ref()
                .map(|r| format!(" role={r}"))
                .unwrap_or_default(),
            f.mountpoint
                .as_ref()
                .map(|m| format!(" on {m}"))
                .unwrap_or_default()
        );
    }
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    if g.os_type.is_some() {
        hprintln!(
            "  drivers:        virtio {}, in initramfs {}, nvme {}",
            yn(g.drivers.virtio),
            yn(g.drivers.virtio_in_initramfs),
            yn(g.drivers.nvme)
        );
        hprintln!(
            "  agents:         cloud-init {}, qemu-guest-agent {}",
            yn(g.cloud_init),
            yn(g.qemu_guest_agent)
        );
    }
    print_findings(&g.findings);
}

fn print_findings(findings: &[imgport_image::Finding]) {
    for f in findings {
        let tag = match f.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Refuse => "refused",
        };
        hprintln!("  {tag}: [{}] {}", f.code, f.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_disagrees_with_the_content_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.qcow2");
        std::fs::write(&fake, vec![b'#'; 4096]).unwrap();
        let report = image::open(&fake, &OpenOptions::default()).unwrap().report;
        let f = extension_mismatch(&report).expect("a warning");
        assert_eq!(f.code, "container.extension_mismatch");
        assert!(
            f.message.contains("qcow2") && f.message.contains("raw"),
            "{}",
            f.message
        );
        let named_right = dir.path().join("disk.raw");
        std::fs::rename(&fake, &named_right).unwrap();
        let report = image::open(&named_right, &OpenOptions::default())
            .unwrap()
            .report;
        assert!(extension_mismatch(&report).is_none());
    }
}

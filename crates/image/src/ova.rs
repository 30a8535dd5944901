//! OVA and OVF packages, as VMware and VirtualBox export them: an OVA is a POSIX tar with the
//! `.ovf` descriptor first, then optionally the `.mf` manifest (and a `.cert`), then the
//! files the descriptor references; an `.ovf` may also lie beside its files in a directory.
//!
//! Every disk of the DiskSection becomes one opened disk, in the descriptor's order; each is
//! a window of the `.ova` read in place (no extraction, no temporary file) and goes through
//! the same detection as any file. The manifest's digests are checked as the disks stream
//! ([`ImageFile::verify_digest`]); the descriptor's own digest is checked when it is read.
//! The descriptor's hints (OS, firmware, controllers) travel with each disk for the plan.

mod assemble;
pub mod digest;
pub(crate) mod disk;
mod manifest;
pub mod ovf;
mod read;
pub mod tar;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::detect::{OpenOptions, Opened, open_file};
use crate::file::ImageFile;
use crate::finding::{Finding, Severity};
use crate::{ContainerReport, ImageError};
use digest::MemberDigest;
pub use disk::PackageDisk;
use ovf::{DiskDef, OvfHints};

/// Largest descriptor read: real ones are a few KiB to a few hundred KiB.
pub const MAX_DESCRIPTOR: u64 = 4 << 20;

/// Where a disk's bytes are.
#[derive(Debug, Clone)]
pub(super) enum Place {
    /// `[start, start + len)` of the archive.
    Member { start: u64, len: u64 },
    /// A file beside the descriptor.
    Beside(PathBuf),
}

#[derive(Debug, Clone)]
pub(super) struct Located {
    def: DiskDef,
    href: String,
    place: Place,
    digest: Option<MemberDigest>,
}

/// A package read: its disks located and checked, not yet opened.
pub struct Package {
    path: PathBuf,
    archive: Option<Arc<ImageFile>>,
    disks: Vec<Located>,
    hints: OvfHints,
    findings: Vec<Finding>,
}

/// Whether `path` names a package (`*.ova`, `*.ovf`) or a member of one (`vm.ova/disk1.vmdk`):
/// the package path and the member name.
pub fn package_path(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let is_pkg = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("ova") || e.eq_ignore_ascii_case("ovf"))
    };
    if is_pkg(path) {
        return Some((path.to_path_buf(), None));
    }
    let parent = path.parent()?;
    let name = path.file_name()?.to_str()?;
    (is_pkg(parent) && std::fs::metadata(parent).is_ok_and(|m| m.is_file()))
        .then(|| (parent.to_path_buf(), Some(name.to_string())))
}

fn refused(path: &Path, size: u64, kind: &str, findings: Vec<Finding>) -> ImageError {
    ImageError::Refused {
        report: Box::new(ContainerReport {
            path: path.to_path_buf(),
            format: None,
            subformat: None,
            recognised_as: Some(kind.to_string()),
            virtual_size: None,
            allocated_size: None,
            file_size: size,
            bytes_read: 0,
            safe: false,
            findings,
            details: None,
        }),
    }
}

pub(super) fn rule(code: &str, field: &str, message: String) -> Finding {
    let mut f = Finding::new(Severity::Refuse, code, message);
    f.field = Some(field.to_string());
    f
}

/// The rule an `ovf:href` breaks, if any: a plain name in the package, never a URL or path.
pub(super) fn href_rule(href: &str) -> Option<&'static str> {
    if href.contains(':') {
        Some("a URL; imgport reads only files inside the package")
    } else {
        tar::name_rule(href)
    }
}

impl Package {
    /// Reads the package at `path` (`.ova` archive or `.ovf` descriptor) and checks every
    /// rule; a broken one is [`ImageError::Refused`] with a finding naming the member.
    pub fn read(path: &Path) -> Result<Package, ImageError> {
        let file = Arc::new(ImageFile::open(path)?);
        let is_ova = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("ova"));
        let kind = if is_ova { "ova" } else { "ovf" };
        let size = file.size();
        let result = if is_ova {
            Self::read_ova(path, &file)?
        } else {
            Self::read_ovf(path, &file)?
        };
        result.map_err(|f| refused(path, size, kind, f))
    }

    /// The package's findings (certificate notes, disks not imported).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The hints of the descriptor.
    pub fn hints(&self) -> &OvfHints {
        &self.hints
    }

    /// `href` of each disk, in the descriptor's order.
    pub fn disk_names(&self) -> Vec<&str> {
        self.disks.iter().map(|d| d.href.as_str()).collect()
    }

    /// Opens every disk, in the descriptor's order; the first refused one stops.
    pub fn open_all(&self, opts: &OpenOptions) -> Result<Vec<Opened>, ImageError> {
        self.disks.iter().map(|d| self.open_disk(d, opts)).collect()
    }

    /// Opens the disk named `member` (its `ovf:href`), or the only disk when `None`.
    pub fn open_one(&self, member: Option<&str>, opts: &OpenOptions) -> Result<Opened, ImageError> {
        let names = self.disk_names().join(", ");
        let pick = match member {
            Some(m) => self.disks.iter().find(|d| d.href == m).ok_or_else(|| {
                format!("{m:?} is not a disk of this package; its disks are: {names}")
            }),
            None if self.disks.len() == 1 => Ok(&self.disks[0]),
            None => Err(format!(
                "the package holds {} disks ({names}); name one as {}/<disk> to use it alone, or give the package to `imgport import`, `plan` or `batch`, which take every disk",
                self.disks.len(),
                self.path.display()
            )),
        };
        match pick {
            Ok(d) => self.open_disk(d, opts),
            Err(message) => Err(refused(
                &self.path,
                self.archive.as_ref().map_or(0, |a| a.size()),
                "ova",
                vec![rule("ova.which_disk", "disk", message)],
            )),
        }
    }

    fn open_disk(&self, d: &Located, opts: &OpenOptions) -> Result<Opened, ImageError> {
        let display = self.path.join(&d.href);
        let file = match (&d.place, &self.archive) {
            (Place::Member { start, len }, Some(archive)) => {
                ImageFile::window(archive, display, *start, *len, d.digest.clone())?
            }
            (Place::Beside(p), _) => ImageFile::open_no_follow(p)?.with_digest(d.digest.clone()),
            (Place::Member { .. }, None) => unreachable_member(&self.path)?,
        };
        let package = PackageDisk {
            package: self.path.clone(),
            disk_id: d.def.disk_id.clone(),
            href: d.href.clone(),
            capacity: d.def.capacity,
            controller: self
                .hints
                .controllers
                .iter()
                .find(|(id, _)| *id == d.def.disk_id)
                .map(|(_, c)| c.clone()),
            manifest: d
                .digest
                .as_ref()
                .map(|g| format!("{} from {}", g.algorithm.name(), g.manifest)),
            hints: self.hints.clone(),
        };
        let mut opened = match open_file(Arc::new(file), opts) {
            Ok(o) => o,
            Err(ImageError::Refused { mut report }) => {
                report.findings.insert(0, member_note(&package, &d.def));
                return Err(ImageError::Refused { report });
            }
            Err(e) => return Err(e),
        };
        opened
            .report
            .findings
            .insert(0, member_note(&package, &d.def));
        opened.report.findings.extend(self.findings.iter().cloned());
        if let Some(m) = &package.manifest {
            opened.report.findings.push(Finding::new(
                Severity::Info,
                "ova.manifest.pending",
                format!(
                    "{}: the manifest digest ({m}) is not yet verified: it is checked as the disk streams (convert, checksum, upload, import), and a mismatch stops the run before ImportImage",
                    package.href
                ),
            ));
        }
        let size = opened.image.virtual_size();
        if let Some(capacity) = d.def.capacity
            && capacity != size
        {
            opened.report.findings.push(rule(
                "ova.capacity_mismatch",
                &d.def.disk_id,
                format!(
                    "disk {:?}: the descriptor gives a capacity of {capacity} bytes ({}) but {} holds a virtual disk of {size} bytes",
                    d.def.disk_id,
                    d.def.capacity_text,
                    d.href
                ),
            ));
            opened.report.safe = false;
            return Err(ImageError::Refused {
                report: Box::new(opened.report),
            });
        }
        opened.package = Some(package);
        Ok(opened)
    }
}

/// The bytes `path` names, as stored: a file, or the member `vm.ova/disk1.vmdk` (or the one
/// disk of a package) as a window of its archive, with its manifest digest to check.
pub fn open_bytes(path: &Path) -> Result<ImageFile, ImageError> {
    let Some((package, member)) = package_path(path) else {
        return ImageFile::open(path);
    };
    let pkg = Package::read(&package)?;
    let disk = match &member {
        Some(m) => pkg.disks.iter().find(|d| d.href == *m),
        None if pkg.disks.len() == 1 => pkg.disks.first(),
        None => None,
    };
    let Some(d) = disk else {
        // The same refusal opening it as a disk gives.
        return Err(pkg
            .open_one(member.as_deref(), &OpenOptions::default())
            .err()
            .unwrap_or_else(|| refused(&package, 0, "ova", Vec::new())));
    };
    match (&d.place, &pkg.archive) {
        (Place::Member { start, len }, Some(archive)) => ImageFile::window(
            archive,
            package.join(&d.href),
            *start,
            *len,
            d.digest.clone(),
        ),
        (Place::Beside(p), _) => Ok(ImageFile::open_no_follow(p)?.with_digest(d.digest.clone())),
        (Place::Member { .. }, None) => unreachable_member(&package),
    }
}

fn unreachable_member(path: &Path) -> Result<ImageFile, ImageError> {
    Err(ImageError::Corrupt {
        path: path.to_path_buf(),
        field: "archive".into(),
        offset: 0,
        rule: "an archive member without its archive".into(),
    })
}

fn member_note(p: &PackageDisk, def: &DiskDef) -> Finding {
    Finding::new(
        Severity::Info,
        "ova.disk",
        format!(
            "disk {:?} of {} ({}), {}",
            def.disk_id,
            p.package.display(),
            def.capacity_text,
            p.controller
                .as_deref()
                .map_or("no controller named".to_string(), |c| format!(
                    "on a {c} controller"
                ))
        ),
    )
}

#[cfg(test)]
mod tests;

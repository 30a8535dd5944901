//! OVA and OVF packages, as VMware and VirtualBox export them: an OVA is a POSIX tar with the
//! `.ovf` descriptor first, then optionally the `.mf` manifest (and a `.cert`), then the
//! files the descriptor references; an `.ovf` may also lie beside its files in a directory.
//!
//! Every disk of the DiskSection becomes one opened disk, in the descriptor's order; each is
//! a window of the `.ova` read in place (no extraction, no temporary file) and goes through
//! the same detection as any file. The manifest's digests are checked as the disks stream
//! ([`ImageFile::verify_digest`]); the descriptor's own digest is checked when it is read.
//! The descriptor's hints (OS, firmware, controllers) travel with each disk for the plan.

pub mod digest;
mod manifest;
pub mod ovf;
pub mod tar;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::detect::{OpenOptions, Opened, open_file};
use crate::file::ImageFile;
use crate::finding::{Finding, Severity};
use crate::{ContainerReport, ImageError};
use digest::MemberDigest;
use ovf::{DiskDef, OvfHints};

/// Largest descriptor read: real ones are a few KiB to a few hundred KiB.
pub const MAX_DESCRIPTOR: u64 = 4 << 20;

/// What an opened disk knows of the package it came from, for the plan and the report.
#[derive(Debug, Clone, Serialize)]
pub struct PackageDisk {
    /// The `.ova` or `.ovf` path.
    pub package: PathBuf,
    /// `ovf:diskId`.
    pub disk_id: String,
    /// The file's `ovf:href` (the archive member or the file beside the descriptor).
    pub href: String,
    /// The descriptor's capacity in bytes, checked against the disk's virtual size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// The controller the descriptor attaches the disk to (e.g. `NVMe`, `SCSI (lsilogic)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The manifest digest the disk's bytes must have, e.g. `SHA256 from vm.mf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The machine-level hints of the descriptor (the same for each disk of a package).
    pub hints: OvfHints,
}

/// Where a disk's bytes are.
#[derive(Debug, Clone)]
enum Place {
    /// `[start, start + len)` of the archive.
    Member { start: u64, len: u64 },
    /// A file beside the descriptor.
    Beside(PathBuf),
}

#[derive(Debug, Clone)]
struct Located {
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

fn rule(code: &str, field: &str, message: String) -> Finding {
    let mut f = Finding::new(Severity::Refuse, code, message);
    f.field = Some(field.to_string());
    f
}

/// The text of a descriptor or manifest of `len` bytes; `Err` is the rule it breaks.
fn text(bytes: Vec<u8>, what: &str) -> Result<String, String> {
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The rule an `ovf:href` breaks, if any: a plain name in the package, never a URL or path.
fn href_rule(href: &str) -> Option<&'static str> {
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

    fn read_ova(
        path: &Path,
        file: &Arc<ImageFile>,
    ) -> Result<Result<Package, Vec<Finding>>, ImageError> {
        let members = match tar::index(file)? {
            Ok(m) => m,
            Err(f) => return Ok(Err(vec![f])),
        };
        let lower = |m: &tar::Member, ext: &str| m.name.to_ascii_lowercase().ends_with(ext);
        let Some(first) = members.first().filter(|m| lower(m, ".ovf")) else {
            let what = members
                .first()
                .map_or("nothing".to_string(), |m| format!("{:?}", m.name));
            return Ok(Err(vec![rule(
                "ova.order",
                "tar member 1",
                format!(
                    "the first member is {what}, not the .ovf descriptor; an OVA starts with its descriptor (OVF specification, OVA section)"
                ),
            )]));
        };
        if let Some(second) = members.iter().skip(1).find(|m| lower(m, ".ovf")) {
            return Ok(Err(vec![rule(
                "ova.second_descriptor",
                &second.name,
                format!(
                    "member {:?} is a second descriptor; an OVA holds one",
                    second.name
                ),
            )]));
        }
        let read_member = |m: &tar::Member,
                           max: u64,
                           what: &str|
         -> Result<Result<String, Finding>, ImageError> {
            if m.size > max {
                return Ok(Err(rule(
                    &format!("ova.{what}.too_large"),
                    &m.name,
                    format!(
                        "{what} {:?} is {} bytes; imgport reads at most {max}",
                        m.name, m.size
                    ),
                )));
            }
            let mut buf = vec![0u8; m.size as usize];
            file.read_exact_at(&mut buf, m.data)?;
            Ok(text(buf, &format!("{what} {:?}", m.name))
                .map_err(|e| rule(&format!("ova.{what}.invalid"), &m.name, e)))
        };
        let descriptor = match read_member(first, MAX_DESCRIPTOR, "descriptor")? {
            Ok(t) => t,
            Err(f) => return Ok(Err(vec![f])),
        };
        let manifests: Vec<&tar::Member> = members.iter().filter(|m| lower(m, ".mf")).collect();
        if manifests.len() > 1 {
            return Ok(Err(vec![rule(
                "ova.second_manifest",
                &manifests[1].name,
                format!(
                    "member {:?} is a second manifest; an OVA holds one",
                    manifests[1].name
                ),
            )]));
        }
        let manifest = match manifests.first() {
            Some(m) => match read_member(m, manifest::MAX_MANIFEST, "manifest")? {
                Ok(t) => Some((m.name.clone(), t)),
                Err(f) => return Ok(Err(vec![f])),
            },
            None => None,
        };
        let find = |name: &str| {
            members
                .iter()
                .find(|m| m.name == name)
                .map(|m| (m.data, m.size))
        };
        let mut pkg = match assemble(path, &first.name, &descriptor, manifest, &|href| {
            Ok(find(href).map(|(start, len)| (Place::Member { start, len }, len)))
        })? {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        // Every member must be the descriptor, the manifest, a certificate or a referenced file.
        let referenced = |name: &str| pkg.referenced.iter().any(|h| h == name);
        for m in &members[1..] {
            if lower(m, ".mf") {
                continue;
            }
            if lower(m, ".cert") {
                pkg.package.findings.push(Finding::new(
                    Severity::Info,
                    "ova.certificate",
                    format!("{:?}: the package's signature is not checked by imgport; the manifest digests are", m.name),
                ));
                continue;
            }
            if !referenced(&m.name) {
                return Ok(Err(vec![rule(
                    "ova.unreferenced_member",
                    &m.name,
                    format!(
                        "member {:?} is not referenced by the descriptor's References; an OVA holds only the files its descriptor names",
                        m.name
                    ),
                )]));
            }
        }
        pkg.package.archive = Some(file.clone());
        Ok(Ok(pkg.package))
    }

    fn read_ovf(
        path: &Path,
        file: &Arc<ImageFile>,
    ) -> Result<Result<Package, Vec<Finding>>, ImageError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.size() > MAX_DESCRIPTOR {
            return Ok(Err(vec![rule(
                "ova.descriptor.too_large",
                &name,
                format!(
                    "descriptor {name:?} is {} bytes; imgport reads at most {MAX_DESCRIPTOR}",
                    file.size()
                ),
            )]));
        }
        let descriptor = match text(
            file.read_upto(0, MAX_DESCRIPTOR as usize)?,
            &format!("descriptor {name:?}"),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(Err(vec![rule("ova.descriptor.invalid", &name, e)])),
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let beside = |href: &str| -> Result<Result<Option<PathBuf>, Finding>, ImageError> {
            let p = dir.join(href);
            match std::fs::symlink_metadata(&p) {
                Err(_) => Ok(Ok(None)),
                Ok(m) if m.is_symlink() => Ok(Err(rule(
                    "ova.symlink",
                    href,
                    format!(
                        "{}: is a symbolic link; the files of an .ovf must be regular files beside it",
                        p.display()
                    ),
                ))),
                Ok(m) if !m.is_file() => Ok(Err(rule(
                    "ova.not_regular",
                    href,
                    format!("{}: is not a regular file", p.display()),
                ))),
                Ok(_) => Ok(Ok(Some(p))),
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mf_name = format!("{stem}.mf");
        let manifest = match beside(&mf_name)? {
            Err(f) => return Ok(Err(vec![f])),
            Ok(None) => None,
            Ok(Some(p)) => {
                let mf = ImageFile::open(&p)?;
                if mf.size() > manifest::MAX_MANIFEST {
                    return Ok(Err(vec![rule(
                        "ova.manifest.too_large",
                        &mf_name,
                        format!(
                            "manifest {mf_name:?} is {} bytes; imgport reads at most {}",
                            mf.size(),
                            manifest::MAX_MANIFEST
                        ),
                    )]));
                }
                match text(
                    mf.read_upto(0, manifest::MAX_MANIFEST as usize)?,
                    &format!("manifest {mf_name:?}"),
                ) {
                    Ok(t) => Some((mf_name.clone(), t)),
                    Err(e) => return Ok(Err(vec![rule("ova.manifest.invalid", &mf_name, e)])),
                }
            }
        };
        let locate = |href: &str| -> Result<Option<(Place, u64)>, ImageError> {
            match beside(href)? {
                Ok(Some(p)) => {
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    Ok(Some((Place::Beside(p), len)))
                }
                _ => Ok(None),
            }
        };
        // A symbolic link or a special file is refused with its own rule, before "missing".
        if let Ok(d) = ovf::parse(&descriptor) {
            for f in &d.files {
                if href_rule(&f.href).is_none()
                    && let Err(finding) = beside(&f.href)?
                {
                    return Ok(Err(vec![finding]));
                }
            }
        }
        Ok(assemble(path, &name, &descriptor, manifest, &locate)?.map(|a| a.package))
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
            (Place::Beside(p), _) => ImageFile::open(p)?.with_digest(d.digest.clone()),
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
        (Place::Beside(p), _) => Ok(ImageFile::open(p)?.with_digest(d.digest.clone())),
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

struct Assembled {
    package: Package,
    /// Every `ovf:href` of References.
    referenced: Vec<String>,
}

type Locate<'a> = &'a dyn Fn(&str) -> Result<Option<(Place, u64)>, ImageError>;

/// Checks the descriptor against the files found (`locate`) and the manifest, and lays out
/// the disks in the descriptor's order.
fn assemble(
    path: &Path,
    descriptor_name: &str,
    descriptor: &str,
    manifest: Option<(String, String)>,
    locate: Locate,
) -> Result<Result<Assembled, Vec<Finding>>, ImageError> {
    let fail = |code: &str, field: &str, m: String| Ok(Err(vec![rule(code, field, m)]));
    let d = match ovf::parse(descriptor) {
        Ok(d) => d,
        Err(e) => {
            return fail(
                "ova.descriptor.invalid",
                descriptor_name,
                format!("descriptor {descriptor_name:?}: {e}"),
            );
        }
    };
    let entries = match &manifest {
        Some((name, t)) => match manifest::parse(t) {
            Ok(e) => e,
            Err(e) => {
                return fail(
                    "ova.manifest.invalid",
                    name,
                    format!("manifest {name:?}: {e}"),
                );
            }
        },
        None => manifest::Entries::new(),
    };
    let mf_name = manifest
        .as_ref()
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    let mut findings = Vec::new();
    if let Some((alg, want)) = entries.get(descriptor_name) {
        let got = alg.hash(descriptor.as_bytes());
        // The BOM, if any, was stripped: compare against the bytes as stored too.
        if got != *want
            && alg.hash(&[b"\xef\xbb\xbf".as_slice(), descriptor.as_bytes()].concat()) != *want
        {
            return fail(
                "ova.manifest.mismatch",
                descriptor_name,
                format!(
                    "descriptor {descriptor_name:?}: the manifest {mf_name:?} gives {} {want} but its bytes hash to {got}",
                    alg.name()
                ),
            );
        }
    } else if manifest.is_some() {
        findings.push(Finding::new(
            Severity::Warning,
            "ova.manifest.unlisted",
            format!(
                "the manifest {mf_name:?} gives no digest of the descriptor {descriptor_name:?}"
            ),
        ));
    }
    let mut located_files = Vec::new();
    for f in &d.files {
        if let Some(r) = href_rule(&f.href) {
            return fail(
                "ova.href",
                &f.href,
                format!("File {:?}: ovf:href {:?} is {r}", f.id, f.href),
            );
        }
        if let Some(c) = &f.compression {
            return fail(
                "ova.compressed",
                &f.href,
                format!(
                    "File {:?} ({}) is stored {c}-compressed (ovf:compression); imgport reads disks in place and does not decompress members: re-export without compression",
                    f.id, f.href
                ),
            );
        }
        let Some((place, len)) = locate(&f.href)? else {
            return fail(
                "ova.missing_member",
                &f.href,
                format!(
                    "File {:?}: {:?} is referenced by the descriptor but is not in the package",
                    f.id, f.href
                ),
            );
        };
        if let Some(size) = f.size
            && size != len
        {
            return fail(
                "ova.size_mismatch",
                &f.href,
                format!(
                    "File {:?}: the descriptor gives ovf:size {size} but {:?} holds {len} bytes",
                    f.id, f.href
                ),
            );
        }
        if located_files
            .iter()
            .any(|(h, _): &(String, Place)| *h == f.href)
        {
            return fail(
                "ova.duplicate_reference",
                &f.href,
                format!("{:?} is referenced twice in References", f.href),
            );
        }
        located_files.push((f.href.clone(), place));
    }
    for name in entries.keys() {
        if name != descriptor_name && !d.files.iter().any(|f| f.href == *name) {
            return fail(
                "ova.manifest.unknown_file",
                name,
                format!(
                    "the manifest {mf_name:?} gives a digest of {name:?}, which the descriptor does not reference"
                ),
            );
        }
    }
    if d.disks.is_empty() {
        return fail(
            "ova.no_disks",
            descriptor_name,
            format!(
                "descriptor {descriptor_name:?} has no DiskSection disk; there is nothing to import"
            ),
        );
    }
    let mut disks: Vec<Located> = Vec::new();
    for def in &d.disks {
        let Some(file_ref) = &def.file_ref else {
            return fail(
                "ova.disk_without_file",
                &def.disk_id,
                format!(
                    "disk {:?} has no ovf:fileRef: an empty disk created on deployment has no bytes to import",
                    def.disk_id
                ),
            );
        };
        let Some(f) = d.files.iter().find(|f| f.id == *file_ref) else {
            return fail(
                "ova.dangling_file_ref",
                &def.disk_id,
                format!(
                    "disk {:?}: ovf:fileRef {file_ref:?} names no File of References",
                    def.disk_id
                ),
            );
        };
        if disks.iter().any(|l| l.href == f.href) {
            return fail(
                "ova.shared_file",
                &f.href,
                format!("{:?} backs two disks", f.href),
            );
        }
        let place = located_files
            .iter()
            .find(|(h, _)| *h == f.href)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| ImageError::Corrupt {
                path: path.to_path_buf(),
                field: f.href.clone(),
                offset: 0,
                rule: "located above".into(),
            })?;
        let digest = entries
            .get(&f.href)
            .map(|(algorithm, expected)| MemberDigest {
                algorithm: *algorithm,
                expected: expected.clone(),
                manifest: mf_name.clone(),
            });
        if digest.is_none() && manifest.is_some() {
            findings.push(Finding::new(
                Severity::Warning,
                "ova.manifest.unlisted",
                format!("the manifest {mf_name:?} gives no digest of disk {:?}: its bytes are not checked", f.href),
            ));
        }
        disks.push(Located {
            def: def.clone(),
            href: f.href.clone(),
            place,
            digest,
        });
    }
    for f in &d.files {
        if !disks.iter().any(|l| l.href == f.href) {
            findings.push(Finding::new(
                Severity::Info,
                "ova.not_a_disk",
                format!(
                    "{:?} is referenced but backs no disk of the DiskSection: not imported",
                    f.href
                ),
            ));
        }
    }
    Ok(Ok(Assembled {
        referenced: d.files.iter().map(|f| f.href.clone()).collect(),
        package: Package {
            path: path.to_path_buf(),
            archive: None,
            disks,
            hints: d.hints,
            findings,
        },
    }))
}

#[cfg(test)]
mod tests;

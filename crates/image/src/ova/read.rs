//! Reading a package: the `.ova` archive's index and members, or the `.ovf` and the files
//! beside it, up to the checks [`assemble`](super::assemble) makes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::assemble::assemble;
use super::{MAX_DESCRIPTOR, Package, Place, href_rule, manifest, ovf, rule, tar};
use crate::ImageError;
use crate::file::ImageFile;
use crate::finding::{Finding, Severity};

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

impl Package {
    pub(super) fn read_ova(
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

    pub(super) fn read_ovf(
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
                let mf = ImageFile::open_no_follow(&p)?;
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
}

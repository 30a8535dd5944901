//! The descriptor checked against the files found and the manifest: every File located
//! (plain names only, no compression, sizes as declared), every Disk backed by one File, the
//! manifest naming only files of the package, the descriptor's own digest checked.

use std::path::Path;

use super::digest::MemberDigest;
use super::{Located, Package, Place, href_rule, manifest, ovf, rule};
use crate::ImageError;
use crate::finding::{Finding, Severity};

pub(super) struct Assembled {
    pub(super) package: Package,
    /// Every `ovf:href` of References.
    pub(super) referenced: Vec<String>,
}

pub(super) type Locate<'a> = &'a dyn Fn(&str) -> Result<Option<(Place, u64)>, ImageError>;

/// Checks the descriptor against the files found (`locate`) and the manifest, and lays out
/// the disks in the descriptor's order.
pub(super) fn assemble(
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

//! What a path names as input: an image file, an OVA/OVF package (every disk of it, in its
//! descriptor's order), or one disk of a package as `vm.ova/disk2.vmdk`. Every command opens
//! its inputs here, so each takes packages alike.

use std::path::Path;

use crate::detect::{self, OpenOptions, Opened};
use crate::ova::{Package, package_path};
use crate::{ContainerReport, ImageError};

/// Opens `path` when it is safe; a refused file is [`ImageError::Refused`] with its report.
/// An OVA/OVF package of one disk opens as that disk; `vm.ova/disk2.vmdk` opens one disk of
/// a package (see [`open_all`] for every disk).
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Opened, ImageError> {
    match package_path(path) {
        Some((package, member)) => Package::read(&package)?.open_one(member.as_deref(), opts),
        None => detect::open(path, opts),
    }
}

/// Every disk `path` names: the disks of an OVA/OVF package in its descriptor's order, or
/// the one disk [`open`] opens.
pub fn open_all(path: &Path, opts: &OpenOptions) -> Result<Vec<Opened>, ImageError> {
    match package_path(path) {
        Some((package, None)) => Package::read(&package)?.open_all(opts),
        _ => open(path, opts).map(|o| vec![o]),
    }
}

/// Inspects `path` and reports its format, sizes and safety verdict. Only I/O errors are
/// errors; a refused file is a report with `safe == false`.
pub fn inspect(path: &Path, opts: &OpenOptions) -> Result<ContainerReport, ImageError> {
    match open(path, opts) {
        Ok(opened) => Ok(opened.report),
        Err(ImageError::Refused { report }) => Ok(*report),
        Err(e) => Err(e),
    }
}

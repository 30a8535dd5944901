//! What an opened disk knows of the OVA/OVF package it came from.

use std::path::PathBuf;

use serde::Serialize;

use super::ovf::OvfHints;

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

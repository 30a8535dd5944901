//! What `inspect` reports about one container file.

use std::path::PathBuf;

use serde::Serialize;

use crate::finding::Finding;
use crate::format::ImageFormat;
use crate::qcow2::Qcow2Details;
use crate::vhd::VhdDetails;
use crate::vhdx::VhdxDetails;
use crate::vmdk::VmdkDetails;

/// Format-specific facts reported by `inspect`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FormatDetails {
    Raw(RawDetails),
    Vhd(VhdDetails),
    Qcow2(Qcow2Details),
    Vmdk(VmdkDetails),
    Vhdx(VhdxDetails),
}

/// The container-level result of inspecting one file.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub path: PathBuf,
    /// The detected format; `None` when the file is refused before a format was settled
    /// (e.g. a VDI, or two formats matching).
    pub format: Option<ImageFormat>,
    /// e.g. `fixed` / `dynamic` for VHD, `v2` / `v3` for QCOW2, `sparse` / `full` for RAW,
    /// the `createType` (`streamOptimized`, …) for VMDK.
    pub subformat: Option<String>,
    /// What the file really is when it is a format imgport refuses (e.g. `vdi`, `iso`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recognised_as: Option<String>,
    pub virtual_size: Option<u64>,
    pub allocated_size: Option<u64>,
    pub file_size: u64,
    /// Bytes of the file read to reach this verdict (metadata only for QCOW2 and VHD).
    pub bytes_read: u64,
    pub safe: bool,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<FormatDetails>,
}

/// Facts about a RAW file.
#[derive(Debug, Clone, Serialize)]
pub struct RawDetails {
    /// Bytes the file system has allocated for the file (`st_blocks * 512`).
    pub disk_usage: u64,
}

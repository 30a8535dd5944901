//! The container formats imgport names.

use std::fmt;

use serde::Serialize;

/// The container formats imgport reads; all but the input-only ones (see
/// [`ImageFormat::is_input_only`]) it also writes and uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Raw,
    Vhd,
    Qcow2,
    /// Read only: converted to RAW, VHD or QCOW2, never written or given to ImportImage.
    Vmdk,
    /// Read only: converted to one of the others, never written or imported as is.
    Vhdx,
}

impl ImageFormat {
    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhdx => "vhdx",
        }
    }

    /// True for a format imgport reads but never writes, uploads as is or hands to an
    /// import (VMDK, VHDX): a plan converts it to an output format first.
    pub fn is_input_only(self) -> bool {
        Self::INPUT_ONLY.contains(&self)
    }

    /// The formats imgport reads but never writes.
    pub const INPUT_ONLY: &[ImageFormat] = &[ImageFormat::Vmdk, ImageFormat::Vhdx];
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

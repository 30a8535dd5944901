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
}

impl ImageFormat {
    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
        }
    }

    /// True for a format imgport reads but never writes or uploads as is (VMDK): a plan
    /// converts it to an output format.
    pub fn is_input_only(self) -> bool {
        matches!(self, ImageFormat::Vmdk)
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

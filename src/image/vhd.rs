//! VHD (Microsoft Virtual Hard Disk v1.0) fixed and dynamic images. (Reader being written.)

use std::sync::Arc;

use serde::Serialize;

use super::{DiskImage, Extent, Finding, ImageError, ImageFile, ImageFormat};

/// Facts about a VHD file.
#[derive(Debug, Clone, Serialize)]
pub struct VhdDetails {}

/// A fixed or dynamic VHD.
pub struct VhdImage {
    _file: Arc<ImageFile>,
}

impl VhdImage {
    /// Parses and judges the footer (and dynamic header, BAT); `None` when refused.
    pub fn open(
        _file: Arc<ImageFile>,
        _findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        todo!("vhd reader")
    }
    /// `fixed` or `dynamic`.
    pub fn subformat(&self) -> &'static str {
        todo!()
    }
    /// Footer facts.
    pub fn details(&self) -> VhdDetails {
        todo!()
    }
}

impl DiskImage for VhdImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Vhd
    }
    fn virtual_size(&self) -> u64 {
        todo!()
    }
    fn read_at(&self, _buf: &mut [u8], _offset: u64) -> Result<(), ImageError> {
        todo!()
    }
    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        todo!()
    }
}

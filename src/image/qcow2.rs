//! QCOW2 v2 and v3 images. (Reader being written.)

use std::sync::Arc;

use serde::Serialize;

use super::{DiskImage, Extent, Finding, ImageError, ImageFile, ImageFormat};

/// Facts about a QCOW2 file.
#[derive(Debug, Clone, Serialize)]
pub struct Qcow2Details {}

/// A QCOW2 image.
pub struct Qcow2Image {
    _file: Arc<ImageFile>,
}

impl Qcow2Image {
    /// Parses and judges the header, extensions and tables; `None` when refused.
    pub fn open(
        _file: Arc<ImageFile>,
        _findings: &mut Vec<Finding>,
    ) -> Result<Option<Self>, ImageError> {
        todo!("qcow2 reader")
    }
    /// `v2` or `v3`.
    pub fn subformat(&self) -> &'static str {
        todo!()
    }
    /// Header facts.
    pub fn details(&self) -> Qcow2Details {
        todo!()
    }
}

impl DiskImage for Qcow2Image {
    fn format(&self) -> ImageFormat {
        ImageFormat::Qcow2
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

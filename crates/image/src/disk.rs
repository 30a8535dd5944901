//! The [`DiskImage`] seam every format reader implements, and its byte-source adapter.

use std::io;
use std::sync::Arc;

use crate::error::ImageError;
use crate::extent::{Extent, ExtentKind};
use crate::format::ImageFormat;

/// A virtual disk read through its container format.
///
/// Implementations are immutable after opening and safe to read from many threads at once.
pub trait DiskImage: Send + Sync {
    /// The container format of the file.
    fn format(&self) -> ImageFormat;

    /// Size of the virtual disk in bytes, as `qemu-img info` reports it.
    fn virtual_size(&self) -> u64;

    /// Fill `buf` with the virtual disk's bytes at `offset`; holes read as zeros.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError>;

    /// The whole virtual disk as sorted, non-overlapping, merged extents, from metadata only.
    fn extents(&self) -> Result<Vec<Extent>, ImageError>;

    /// Bytes of the virtual disk that hold data (the sum of the data extents).
    fn allocated_size(&self) -> Result<u64, ImageError> {
        Ok(self
            .extents()?
            .iter()
            .filter(|e| e.kind == ExtentKind::Data)
            .map(|e| e.length)
            .sum())
    }
}

/// A virtual disk seen as a plain [`ByteSource`](crate::source::ByteSource) for the guest layer.
pub struct ImageSource(pub Arc<dyn DiskImage>);

impl crate::source::ByteSource for ImageSource {
    fn size(&self) -> u64 {
        self.0.virtual_size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        crate::source::check_bounds(self.0.virtual_size(), buf.len(), offset)?;
        self.0.read_at(buf, offset).map_err(io::Error::other)
    }
}

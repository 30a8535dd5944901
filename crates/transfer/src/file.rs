//! A file's bytes as they are, as a [`PartSource`]: for uploading an image without conversion.
//! It runs on the same engine as conversions (an identity layout over the file read as RAW),
//! so holes of a sparse file are never read.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;

use super::layout::Layout;
use super::stream::{LayoutStream, StreamOptions};
use super::{Part, PartReader, PartSource, StreamDigests, TransferError};
use imgport_image::DiskImage;
use imgport_image::raw::RawImage;

/// Reads a file part by part, hashing as it goes.
pub struct FileStream {
    inner: LayoutStream,
}

impl FileStream {
    /// Opens `path` to be streamed in parts of `part_size` bytes.
    pub fn open(path: &Path, part_size: NonZeroU64) -> Result<Self, TransferError> {
        Self::with_options(
            path,
            &StreamOptions {
                part_size: Some(part_size),
                ..StreamOptions::default()
            },
        )
    }

    /// Opens `path` with full stream options (no part size picks one).
    pub fn with_options(path: &Path, opts: &StreamOptions) -> Result<Self, TransferError> {
        let (image, layout) = Self::plan(path)?;
        Self::from_plan(image, layout, opts)
    }

    /// The file at `path` read as RAW and its identity layout, for a caller that decides the
    /// stream options from the layout (e.g. whether a SHA-256 over its holes is worth it).
    pub fn plan(path: &Path) -> Result<(Arc<dyn DiskImage>, Layout), TransferError> {
        // `vm.ova/disk1.vmdk` (or an OVA of one disk): the member's bytes, read in place.
        let file = Arc::new(imgport_image::ova::open_bytes(path)?);
        // The file is read as bytes, whatever it contains: RAW's verdicts do not apply.
        let mut ignored = Vec::new();
        let image: Arc<dyn DiskImage> = Arc::new(RawImage::open(file, &mut ignored)?);
        let layout = Layout::identity(image.as_ref())?;
        Ok((image, layout))
    }

    /// Streams a plan made by [`FileStream::plan`].
    pub fn from_plan(
        image: Arc<dyn DiskImage>,
        layout: Layout,
        opts: &StreamOptions,
    ) -> Result<Self, TransferError> {
        Ok(Self {
            inner: LayoutStream::new(layout, image, opts)?,
        })
    }

    /// The identity layout being streamed.
    pub fn layout(&self) -> &Layout {
        self.inner.layout()
    }
}

impl PartSource for FileStream {
    fn total_size(&self) -> u64 {
        self.inner.total_size()
    }

    fn part_size(&self) -> u64 {
        self.inner.part_size()
    }

    fn next_part(&mut self) -> Option<Result<Part, TransferError>> {
        self.inner.next_part()
    }

    fn digests(&self) -> Option<StreamDigests> {
        self.inner.digests()
    }

    fn skip_zero_parts(&mut self) -> u64 {
        self.inner.skip_zero_parts()
    }

    fn reader(&self) -> Option<Arc<dyn PartReader>> {
        self.inner.reader()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{crc64, md5};
    use sha2::{Digest, Sha256};

    #[test]
    fn parts_cover_the_file_and_digests_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut s = FileStream::open(&path, NonZeroU64::new(4096).unwrap()).unwrap();
        assert_eq!(s.part_count(), 3);
        let mut all = Vec::new();
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            assert_eq!(p.md5, Some(md5(&p.data)));
            assert_eq!(p.offset as usize, all.len());
            all.extend_from_slice(&p.data);
        }
        assert_eq!(all, bytes);
        let d = s.digests().unwrap();
        assert_eq!(d.crc64, crc64(&bytes));
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&bytes)));
    }

    #[test]
    fn empty_file_is_one_empty_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        std::fs::write(&path, b"").unwrap();
        let mut s = FileStream::open(&path, NonZeroU64::new(4096).unwrap()).unwrap();
        let p = s.next_part().unwrap().unwrap();
        assert!(p.data.is_empty());
        assert!(s.next_part().is_none());
        assert_eq!(s.digests().unwrap().size, 0);
    }
}

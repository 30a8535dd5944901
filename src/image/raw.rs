//! RAW images: the file is the virtual disk. Allocation comes from the file system
//! (`SEEK_DATA` / `SEEK_HOLE`), so holes are never read.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use serde::Serialize;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Severity,
    check_read, push_extent,
};

/// Facts about a RAW file.
#[derive(Debug, Clone, Serialize)]
pub struct RawDetails {
    /// Bytes the file system has allocated for the file (`st_blocks * 512`).
    pub disk_usage: u64,
}

/// A RAW disk image.
pub struct RawImage {
    file: Arc<ImageFile>,
}

/// Upper bound on SEEK_DATA/SEEK_HOLE round trips, so a pathological file system cannot
/// make extent listing unbounded; past it the rest of the file is reported as data.
const MAX_SEEK_EXTENTS: usize = 4 * 1024 * 1024;

impl RawImage {
    /// Opens a RAW file; warns about sizes ECS will not take as they are.
    pub fn open(file: Arc<ImageFile>, findings: &mut Vec<Finding>) -> Result<Self, ImageError> {
        let size = file.size();
        if size == 0 {
            findings.push(Finding::new(
                Severity::Refuse,
                "raw.empty",
                "the file is empty: there is no disk to import",
            ));
        } else if size % 512 != 0 {
            findings.push(Finding::new(
                Severity::Warning,
                "raw.size_not_sector_multiple",
                format!("file size {size} is not a multiple of 512 bytes; the last partial sector will be padded with zeros on conversion"),
            ));
        }
        Ok(Self { file })
    }

    /// `sparse` when the file system reports holes, else `full`.
    pub fn subformat(&self) -> &'static str {
        if self.details().disk_usage < self.file.size() {
            "sparse"
        } else {
            "full"
        }
    }

    /// Allocation facts from `stat`.
    pub fn details(&self) -> RawDetails {
        use std::os::unix::fs::MetadataExt;
        let disk_usage = self
            .file
            .file()
            .metadata()
            .map(|m| m.blocks() * 512)
            .unwrap_or(self.file.size());
        RawDetails { disk_usage }
    }
}

/// `lseek(fd, offset, whence)`; `None` when the kernel says ENXIO (no more data/holes).
fn seek(file: &ImageFile, offset: u64, whence: libc::c_int) -> Result<Option<u64>, ImageError> {
    let fd = file.file().as_raw_fd();
    let Ok(pos) = libc::off_t::try_from(offset) else {
        return Ok(None);
    };
    // SAFETY: lseek on a valid, owned descriptor has no memory effects; the shared file
    // position it moves is never used (all reads are positional).
    let r = unsafe { libc::lseek(fd, pos, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        // File systems without SEEK_DATA support: everything is data.
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(Some(if whence == libc::SEEK_DATA {
            offset
        } else {
            file.size()
        })),
        _ => Err(ImageError::Io {
            path: file.path().to_path_buf(),
            source: err,
        }),
    }
}

/// The first `len` bytes of `file` as data and unallocated extents, from the file system's
/// `SEEK_DATA` / `SEEK_HOLE` answers (holes are never read). Shared by RAW and fixed VHD,
/// whose data region starts at offset 0 of the file.
pub(crate) fn file_extents(file: &ImageFile, len: u64) -> Result<Vec<Extent>, ImageError> {
    let size = len.min(file.size());
    let mut extents = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        if extents.len() >= MAX_SEEK_EXTENTS {
            push_extent(
                &mut extents,
                Extent {
                    offset: pos,
                    length: size - pos,
                    kind: ExtentKind::Data,
                },
            );
            break;
        }
        let data = seek(file, pos, libc::SEEK_DATA)?.unwrap_or(size).min(size);
        push_extent(
            &mut extents,
            Extent {
                offset: pos,
                length: data - pos,
                kind: ExtentKind::Unallocated,
            },
        );
        if data >= size {
            break;
        }
        let hole = seek(file, data, libc::SEEK_HOLE)?
            .unwrap_or(size)
            .clamp(data + 1, size);
        push_extent(
            &mut extents,
            Extent {
                offset: data,
                length: hole - data,
                kind: ExtentKind::Data,
            },
        );
        pos = hole;
    }
    Ok(extents)
}

impl DiskImage for RawImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Raw
    }

    fn virtual_size(&self) -> u64 {
        self.file.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size(), buf.len(), offset)?;
        self.file.read_exact_at(buf, offset)
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        file_extents(&self.file, self.file.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn sparse_file_extents_skip_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(8 << 20).unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(&[0xab; 4096]).unwrap();
        drop(f);
        let file = Arc::new(ImageFile::open(&path).unwrap());
        let mut findings = Vec::new();
        let img = RawImage::open(file, &mut findings).unwrap();
        assert!(findings.is_empty());
        let ext = img.extents().unwrap();
        let data: Vec<_> = ext.iter().filter(|e| e.kind == ExtentKind::Data).collect();
        assert_eq!(data.len(), 1);
        assert!(data[0].offset <= 4 << 20 && data[0].end() >= (4 << 20) + 4096);
        assert_eq!(ext.last().unwrap().end(), 8 << 20);
        let mut b = [0u8; 2];
        img.read_at(&mut b, (4 << 20) + 10).unwrap();
        assert_eq!(b, [0xab, 0xab]);
        assert!(img.read_at(&mut b, (8 << 20) - 1).is_err());
    }
}

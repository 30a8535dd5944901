//! An image file opened for reading, with a count of the bytes read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ImageError;

/// An image file opened for reading, counting the bytes read so tests and benchmarks can
/// prove that inspection touches only metadata.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    path: PathBuf,
    size: u64,
    bytes_read: AtomicU64,
}

impl ImageFile {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        Self::open_flags(path, 0)
    }

    /// Opens `path` read-only like [`ImageFile::open`], but refuses a symbolic link as the
    /// last component (`O_NOFOLLOW`): for files named inside another file (VMDK extents).
    pub fn open_no_follow(path: &Path) -> Result<Self, ImageError> {
        Self::open_flags(path, libc::O_NOFOLLOW)
    }

    fn open_flags(path: &Path, extra: libc::c_int) -> Result<Self, ImageError> {
        let io_err = |source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        };
        let not_regular = |kind| ImageError::NotRegular {
            path: path.to_path_buf(),
            kind,
        };
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. The file
        // is judged by fstat on the opened descriptor, so it cannot change between the check
        // and the reads.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | extra)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if extra & libc::O_NOFOLLOW != 0 && e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(not_regular("a symbolic link"));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dangling = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
                return Err(if dangling {
                    not_regular("a symbolic link to nothing")
                } else {
                    io_err(e)
                });
            }
            Err(e) => return Err(io_err(e)),
        };
        let meta = file.metadata().map_err(io_err)?;
        let kind = meta.file_type();
        if !kind.is_file() {
            use std::os::unix::fs::FileTypeExt;
            return Err(not_regular(if kind.is_dir() {
                "a directory"
            } else if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() {
                "a block device"
            } else if kind.is_char_device() {
                "a character device"
            } else {
                "not a file"
            }));
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            size: meta.len(),
            bytes_read: AtomicU64::new(0),
        })
    }

    /// The path the file was opened from, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The underlying file, for SEEK_DATA/SEEK_HOLE queries.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Total bytes read through [`ImageFile::read_exact_at`] so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Reads exactly `buf.len()` bytes at `offset`; reading past the end of the file is a
    /// [`ImageError::Truncated`] naming the offset.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(ImageError::Truncated {
                path: self.path.clone(),
                offset,
                length: buf.len() as u64,
                file_size: self.size,
            });
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| ImageError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads up to `len` bytes at `offset`, fewer when the file ends first.
    pub fn read_upto(&self, offset: u64, len: usize) -> Result<Vec<u8>, ImageError> {
        let avail = self.size.saturating_sub(offset).min(len as u64) as usize;
        let mut buf = vec![0u8; avail];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

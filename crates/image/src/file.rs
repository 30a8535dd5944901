//! An image file opened for reading, with a count of the bytes read; or a window of one
//! (a member of an OVA archive, read in place), optionally hashed as it is read so a
//! manifest digest is checked in the same pass as the conversion or upload.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ImageError;
use crate::ova::digest::{MemberDigest, Tracker};

/// An image file opened for reading, counting the bytes read so tests and benchmarks can
/// prove that inspection touches only metadata.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    path: PathBuf,
    size: u64,
    /// Offset of byte 0 in `file`: 0 for a file, the data offset of an archive member.
    base: u64,
    bytes_read: AtomicU64,
    /// The manifest digest a member's bytes must have, and its running hash.
    digest: Option<Mutex<Tracker>>,
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
            base: 0,
            bytes_read: AtomicU64::new(0),
            digest: None,
        })
    }

    /// The window `[start, start + len)` of `archive` as a file of its own, named `path` in
    /// messages: an archive member read in place. `digest`, when given, is the manifest
    /// digest its bytes must have (checked by [`ImageFile::verify_digest`]).
    pub(crate) fn window(
        archive: &ImageFile,
        path: PathBuf,
        start: u64,
        len: u64,
        digest: Option<MemberDigest>,
    ) -> Result<Self, ImageError> {
        let inside = start
            .checked_add(len)
            .is_some_and(|end| end <= archive.size);
        if !inside {
            return Err(ImageError::Truncated {
                path: archive.path.clone(),
                offset: start,
                length: len,
                file_size: archive.size,
            });
        }
        let file = archive.file.try_clone().map_err(|source| ImageError::Io {
            path: archive.path.clone(),
            source,
        })?;
        Ok(Self {
            file,
            path,
            size: len,
            base: archive.base + start,
            bytes_read: AtomicU64::new(0),
            digest: digest.map(|d| Mutex::new(Tracker::new(d))),
        })
    }

    /// This file with the manifest digest its bytes must have (a file beside an `.ovf`).
    pub(crate) fn with_digest(mut self, digest: Option<MemberDigest>) -> Self {
        self.digest = digest.map(|d| Mutex::new(Tracker::new(d)));
        self
    }

    /// Offset of this file's byte 0 in [`ImageFile::file`] (non-zero for archive members).
    pub(crate) fn base(&self) -> u64 {
        self.base
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
        self.read_raw(buf, offset)?;
        if let Some(tracker) = &self.digest {
            let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
            t.feed(buf, offset, &|gap, at| self.read_raw(gap, at))?;
        }
        Ok(())
    }

    /// The positional read itself, counted, without feeding the digest.
    fn read_raw(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        self.file
            .read_exact_at(buf, self.base + offset)
            .map_err(|source| ImageError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Starts hashing the bytes as they are read (in order; a forward jump hashes the bytes
    /// skipped): called before the one streaming pass, so inspection reads stay small.
    pub fn track_digest(&self) {
        if let Some(tracker) = &self.digest {
            tracker.lock().unwrap_or_else(|p| p.into_inner()).start();
        }
    }

    /// Checks the manifest digest of a member: hashes whatever the streaming pass did not
    /// read, then compares. `Ok(None)` when there is no manifest digest to check; a
    /// mismatch is [`ImageError::ManifestMismatch`].
    pub fn verify_digest(&self) -> Result<Option<String>, ImageError> {
        let Some(tracker) = &self.digest else {
            return Ok(None);
        };
        let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
        t.start();
        t.finish(self.size, &|gap, at| self.read_raw(gap, at))?;
        t.check(&self.path).map(Some)
    }

    /// Whether this file carries a manifest digest to check.
    pub fn has_digest(&self) -> bool {
        self.digest.is_some()
    }

    /// Reads up to `len` bytes at `offset`, fewer when the file ends first.
    pub fn read_upto(&self, offset: u64, len: usize) -> Result<Vec<u8>, ImageError> {
        let avail = self.size.saturating_sub(offset).min(len as u64) as usize;
        let mut buf = vec![0u8; avail];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

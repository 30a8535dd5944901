//! The file a conversion writes: created under a temporary name beside the destination, written
//! with holes where the bytes are zeros, made durable and renamed into place, or removed on any
//! failure or interruption.
//!
//! Writes go through `O_DIRECT` where the file system allows it and the range is aligned as it
//! asks (`statx` `STATX_DIOALIGN`): buffered writeback is slower than direct writes on
//! virtual disks (docs/LIMITS.md §Memory). Other ranges are written buffered and
//! pushed out early with `sync_file_range`; the final fsync covers both.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::content::all_zero;
use super::layout::{Layout, Piece};
use super::pool::BUFFER_ALIGN;
use super::{Part, TransferError};

/// Granularity of hole detection inside data when writing.
const WRITE_BLOCK: usize = 4096;

/// A temporary output file, removed on drop unless [`OutputFile::persist`] renamed it.
pub(crate) struct OutputFile {
    /// The temporary file.
    path: PathBuf,
    /// The destination: errors name it, never the temporary name the user did not choose.
    dst: PathBuf,
    file: File,
    direct: Option<Direct>,
    /// Bytes written buffered since the last writeback request.
    buffered: Cell<bool>,
    done: bool,
}

/// A second descriptor of the file opened with `O_DIRECT`, and the alignment it needs.
struct Direct {
    file: File,
    /// Alignment of offsets and lengths.
    offset_align: u64,
    /// Alignment of memory addresses.
    mem_align: usize,
    /// Cleared when the file system refuses a direct write it said it takes.
    usable: Cell<bool>,
}

impl Direct {
    fn open(path: &Path, file: &File) -> Option<Self> {
        let (mem_align, offset_align) = dio_align(file)?;
        if mem_align == 0 || offset_align == 0 || mem_align > BUFFER_ALIGN {
            return None;
        }
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        Some(Self {
            file,
            offset_align: u64::from(offset_align),
            mem_align,
            usable: Cell::new(true),
        })
    }

    fn takes(&self, bytes: &[u8], at: u64) -> bool {
        self.usable.get()
            && at.is_multiple_of(self.offset_align)
            && (bytes.len() as u64).is_multiple_of(self.offset_align)
            && (bytes.as_ptr() as usize).is_multiple_of(self.mem_align)
    }
}

/// The direct-I/O alignment (memory, offset) the file system reports for `file`, if any.
fn dio_align(file: &File) -> Option<(usize, u32)> {
    // SAFETY: statx writes only into `stx`, a plain struct we own, and reads the empty C string;
    // AT_EMPTY_PATH makes it describe the open descriptor.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    (rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0)
        .then_some((stx.stx_dio_mem_align as usize, stx.stx_dio_offset_align))
}

impl OutputFile {
    /// Creates the temporary file for `dst` in `dst`'s directory.
    pub(crate) fn create(dst: &Path) -> Result<Self, TransferError> {
        let err = |step, source| TransferError::Write {
            path: dst.to_path_buf(),
            step,
            source,
        };
        let name = dst.file_name().ok_or_else(|| {
            err(
                "name the output",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
            )
        })?;
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".imgport-{}.tmp", std::process::id()));
        let path = dir.join(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| TransferError::Write {
                path: dst.to_path_buf(),
                step: "create it (a temporary file in its directory, renamed when complete)",
                source: e,
            })?;
        let direct = Direct::open(&path, &file);
        Ok(Self {
            path,
            dst: dst.to_path_buf(),
            file,
            direct,
            buffered: Cell::new(false),
            done: false,
        })
    }

    fn err(&self, step: &'static str, source: std::io::Error) -> TransferError {
        TransferError::Write {
            path: self.dst.clone(),
            step,
            source,
        }
    }

    /// Writes one run of data: direct when aligned, else buffered.
    fn write_run(&self, bytes: &[u8], at: u64) -> Result<(), TransferError> {
        if let Some(d) = self.direct.as_ref().filter(|d| d.takes(bytes, at)) {
            match d.file.write_all_at(bytes, at) {
                Ok(()) => return Ok(()),
                // The file system refuses after all: write buffered from now on (the same
                // bytes at the same offset, so a partial direct write is simply overwritten).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => d.usable.set(false),
                Err(e) => return Err(self.err("write", e)),
            }
        }
        self.buffered.set(true);
        self.file
            .write_all_at(bytes, at)
            .map_err(|e| self.err("write", e))
    }

    /// Writes `bytes` at `at`, leaving all-zero 4 KiB blocks (aligned in the file) as holes.
    fn write_sparse(&self, bytes: &[u8], at: u64) -> Result<(), TransferError> {
        let mut i = 0usize;
        let mut run: Option<usize> = None;
        while i < bytes.len() {
            let abs = at + i as u64;
            let to_boundary = WRITE_BLOCK - (abs % WRITE_BLOCK as u64) as usize;
            let n = to_boundary.min(bytes.len() - i);
            let zero = all_zero(&bytes[i..i + n]);
            match (zero, run) {
                (false, None) => run = Some(i),
                (true, Some(s)) => {
                    self.write_run(&bytes[s..i], at + s as u64)?;
                    run = None;
                }
                _ => {}
            }
            i += n;
        }
        if let Some(s) = run {
            self.write_run(&bytes[s..], at + s as u64)?;
        }
        Ok(())
    }

    /// Writes the non-zero bytes of `part`, which `layout` places in the file.
    pub(crate) fn write_part(&self, layout: &Layout, part: &Part) -> Result<(), TransferError> {
        let len = part.data.len() as u64;
        for seg in layout.segments_in(part.offset, len) {
            if matches!(seg.piece, Piece::Zero) {
                continue;
            }
            let from = seg.offset.max(part.offset);
            let to = seg.end().min(part.offset + len);
            let bytes = &part.data[(from - part.offset) as usize..(to - part.offset) as usize];
            self.write_sparse(bytes, from)?;
        }
        if self.buffered.replace(false) {
            self.start_writeback(part.offset, len);
        }
        Ok(())
    }

    /// Asks the kernel to start writing buffered bytes back now, so the final fsync does not
    /// have to flush the whole file at once. Advisory: errors surface at fsync.
    fn start_writeback(&self, offset: u64, len: u64) {
        let (Ok(off), Ok(n)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return;
        };
        // SAFETY: sync_file_range only reads its integer arguments and acts on a descriptor
        // this struct owns; it touches no memory of ours.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
        }
    }

    /// Sets the final length, makes the file durable and renames it to `dst`.
    pub(crate) fn persist(mut self, size: u64, dst: &Path) -> Result<(), TransferError> {
        self.file
            .set_len(size)
            .map_err(|e| self.err("set the length of", e))?;
        self.file.sync_all().map_err(|e| self.err("fsync", e))?;
        std::fs::rename(&self.path, dst).map_err(|e| self.err("rename into place", e))?;
        self.done = true;
        // Make the rename durable (a bare file name's directory is the current one); a
        // failure here leaves a complete file, so ignore it.
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

//! Container formats: how the bytes of a RAW, VHD or QCOW2 file map to a virtual disk, and
//! whether the file is safe to read at all.
//!
//! Owns: the [`DiskImage`] seam, one reader per format (`raw.rs`, `vhd.rs`, `qcow2.rs`) and the
//! one place that chooses among them (`detect.rs`). Must not touch what is inside the virtual
//! disk (partitions, file systems: that is `guest`) nor write files; the metadata bytes the
//! converter writes are laid out beside each reader (`vhd/write.rs`, `qcow2/write.rs`).

pub mod detect;
pub mod qcow2;
pub mod raw;
pub mod source;
#[cfg(test)]
mod test_util;
pub mod vhd;

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub use detect::{OpenOptions, Opened, inspect, open};

/// The container formats imgport reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Raw,
    Vhd,
    Qcow2,
}

impl ImageFormat {
    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a range of the virtual disk holds, as the format's metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtentKind {
    /// Bytes stored in the file (possibly compressed).
    Data,
    /// Explicitly marked as reading zeros (qcow2 zero clusters).
    Zero,
    /// Not allocated: reads as zeros, nothing stored.
    Unallocated,
}

/// A contiguous range of the virtual disk with one [`ExtentKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub length: u64,
    pub kind: ExtentKind,
}

impl Extent {
    /// One past the last byte of the extent.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Appends `next` to `extents`, merging it into the last extent when they touch and agree.
pub fn push_extent(extents: &mut Vec<Extent>, next: Extent) {
    if next.length == 0 {
        return;
    }
    if let Some(last) = extents.last_mut()
        && last.kind == next.kind
        && last.end() == next.offset
    {
        last.length += next.length;
        return;
    }
    extents.push(next);
}

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
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
        {
            Ok(f) => f,
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

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact worth showing (snapshots present, size rounding).
    Info,
    /// Readable, but the user should know (dirty bit, hybrid MBR).
    Warning,
    /// The image is refused: reading or importing it is unsafe or impossible.
    Refuse,
}

/// One observation of the safety inspection, with a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier of the rule, e.g. `qcow2.backing_file`.
    pub code: String,
    /// Human sentence naming the field, the offset and the rule.
    pub message: String,
    /// Header field the rule is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Byte offset in the file of the field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Finding {
    /// A finding with no field or offset.
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        Self {
            severity,
            code: code.to_string(),
            message: message.into(),
            field: None,
            offset: None,
        }
    }

    /// A finding about `field` stored at byte `offset` of the file.
    pub fn at(
        severity: Severity,
        code: &str,
        field: &str,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code: code.to_string(),
            message: message.into(),
            field: Some(field.to_string()),
            offset: Some(offset),
        }
    }

    /// True when this finding refuses the image.
    pub fn refuses(&self) -> bool {
        self.severity == Severity::Refuse
    }
}

/// Collects a reader's findings while it judges a file, and remembers whether one refused.
/// Every message starts with the field and its offset, then states the rule broken.
pub(crate) struct Verdict<'a> {
    pub(crate) findings: &'a mut Vec<Finding>,
    pub(crate) refused: bool,
}

impl<'a> Verdict<'a> {
    /// A verdict that has refused nothing yet, recording into `findings`.
    pub(crate) fn new(findings: &'a mut Vec<Finding>) -> Self {
        Verdict {
            findings,
            refused: false,
        }
    }

    /// Records a refusal of `code` about `field` at file offset `offset`.
    pub(crate) fn refuse(&mut self, code: &str, field: &str, offset: u64, msg: String) {
        self.refused = true;
        self.findings.push(Finding::at(
            Severity::Refuse,
            code,
            field,
            offset,
            format!("{field} at offset {offset}: {msg}"),
        ));
    }

    /// Records a finding of severity `sev` (a refusal still counts as one).
    pub(crate) fn note(
        &mut self,
        sev: Severity,
        code: &str,
        field: &str,
        offset: u64,
        msg: String,
    ) {
        self.refused |= sev == Severity::Refuse;
        self.findings.push(Finding::at(
            sev,
            code,
            field,
            offset,
            format!("{field} at offset {offset}: {msg}"),
        ));
    }
}

/// Format-specific facts reported by `inspect`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FormatDetails {
    Raw(raw::RawDetails),
    Vhd(vhd::VhdDetails),
    Qcow2(qcow2::Qcow2Details),
}

/// The container-level result of inspecting one file.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub path: PathBuf,
    /// The detected format; `None` when the file is refused before a format was settled
    /// (e.g. a VMDK, or two formats matching).
    pub format: Option<ImageFormat>,
    /// e.g. `fixed` / `dynamic` for VHD, `v2` / `v3` for QCOW2, `sparse` / `full` for RAW.
    pub subformat: Option<String>,
    /// What the file really is when it is a format imgport refuses (e.g. `vmdk`, `iso`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recognised_as: Option<String>,
    pub virtual_size: Option<u64>,
    pub allocated_size: Option<u64>,
    pub file_size: u64,
    /// Bytes of the file read to reach this verdict (metadata only for QCOW2 and VHD).
    pub bytes_read: u64,
    pub safe: bool,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<FormatDetails>,
}

/// Errors of the container layer.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The path names something other than a regular file: every command refuses it with
    /// this one wording, before reading a byte.
    #[error("{path}: is {kind}, not a regular file; imgport reads disk images from regular files")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: cannot read")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: truncated: {length} bytes at offset {offset} pass the end of the file ({file_size} bytes)"
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        length: u64,
        file_size: u64,
    },
    #[error("{path}: {field} at offset {offset}: {rule}")]
    Corrupt {
        path: PathBuf,
        field: String,
        offset: u64,
        rule: String,
    },
    #[error("{}: refused: {}", .report.path.display(), refusal_summary(.report))]
    Refused { report: Box<ContainerReport> },
    #[error("read of {length} bytes at offset {offset} passes the virtual disk size {size}")]
    OutOfRange { offset: u64, length: u64, size: u64 },
}

fn refusal_summary(report: &ContainerReport) -> String {
    let reasons: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.message.as_str())
        .collect();
    reasons.join("; ")
}

/// Checks a read request against the virtual size; every reader calls it first.
pub fn check_read(size: u64, len: usize, offset: u64) -> Result<(), ImageError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(ImageError::OutOfRange {
            offset,
            length: len as u64,
            size,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_extent_merges_touching_same_kind() {
        let mut v = Vec::new();
        push_extent(
            &mut v,
            Extent {
                offset: 0,
                length: 10,
                kind: ExtentKind::Data,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 10,
                length: 5,
                kind: ExtentKind::Data,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 15,
                length: 5,
                kind: ExtentKind::Zero,
            },
        );
        push_extent(
            &mut v,
            Extent {
                offset: 20,
                length: 0,
                kind: ExtentKind::Data,
            },
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].length, 15);
    }

    #[test]
    fn check_read_refuses_overflow() {
        assert!(check_read(100, 10, 90).is_ok());
        assert!(check_read(100, 11, 90).is_err());
        assert!(check_read(100, 1, u64::MAX).is_err());
    }
}

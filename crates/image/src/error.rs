//! Errors of the container layer.

use std::io;
use std::path::PathBuf;

use crate::report::ContainerReport;

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
    /// An archive member's bytes do not have the digest its manifest gives; `detail` names
    /// the manifest, the algorithm and both digests.
    #[error("{path}: {detail}; the archive was changed or damaged after it was written")]
    ManifestMismatch { path: PathBuf, detail: String },
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

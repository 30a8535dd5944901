//! Converting to a file and checksumming streams: the consumers of a [`PartSource`] that live
//! on the local machine.
//!
//! A conversion writes to a temporary name in the destination directory, fsyncs it and renames
//! it into place; the temporary file is removed on any failure, including an interruption
//! requested through [`StreamOptions::cancel`]. Ranges the layout says are zeros are left as
//! holes, and so are all-zero 4 KiB blocks of data (as `qemu-img convert -S 4k` does): zero runs
//! are never written.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::content::{ContentDigest, all_zero, content_digest};
use super::digest::{hex, multipart_etag};
use super::layout::{Layout, OutputFormat, Piece};
use super::stream::{LayoutStream, StreamOptions};
use super::{Part, PartSource, TransferError};
use crate::image::DiskImage;
use crate::report::Reporter;

/// Granularity of hole detection inside data when writing.
const WRITE_BLOCK: usize = 4096;

/// Digests of one part, as the JSON output and the uploader's checks use them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartDigest {
    /// 1-based part number.
    pub number: u32,
    /// Offset of the part in the stream.
    pub offset: u64,
    /// Bytes in the part.
    pub size: u64,
    /// MD5, lower-case hex; absent when no part size was asked for (only uploads need it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// CRC-64/XZ as OSS prints it (`x-oss-hash-crc64ecma`): unsigned decimal.
    pub crc64: String,
    /// CRC-64/XZ, lower-case hex (16 digits).
    pub crc64_hex: String,
}

/// The result of streaming a layout: sizes, digests, parts and notices.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Output format; `None` when the stream is a file as it is (`imgport checksum` without
    /// `--to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
    /// The file written, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Virtual size of the source disk.
    pub source_virtual_size: u64,
    /// Virtual size of the output disk (after any rounding).
    pub virtual_size: u64,
    /// Bytes of the output stream.
    pub size: u64,
    /// SHA-256 of the output stream, lower-case hex (absent when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// CRC-64/XZ of the output stream as an unsigned decimal string (OSS's form).
    pub crc64: String,
    /// The same CRC-64/XZ in hex.
    pub crc64_hex: String,
    /// Part size the per-part digests were computed for.
    pub part_size: u64,
    /// Per-part digests, in order.
    pub parts: Vec<PartDigest>,
    /// The ETag S3/OSS give a multipart object of these parts: MD5 of the part MD5s, `-N`
    /// (absent when the part MD5s were skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart_etag: Option<String>,
    /// Content digest of the source's virtual disk, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDigest>,
    /// Facts the user should know (e.g. the size was rounded up).
    pub notices: Vec<String>,
}

/// What [`drain`] collects: the whole-stream digests, each part's, and the multipart ETag
/// (when every part had its MD5).
struct Drained {
    /// Digests of the whole stream.
    pub digests: super::StreamDigests,
    /// Digests of each part, in order.
    pub parts: Vec<PartDigest>,
    /// The multipart ETag of the parts.
    pub multipart_etag: Option<String>,
}

/// Drains `stream`, handing each part to `sink`, and collects the digests.
fn drain(
    stream: &mut dyn PartSource,
    reporter: &dyn Reporter,
    mut sink: impl FnMut(&Part) -> Result<(), TransferError>,
) -> Result<Drained, TransferError> {
    let mut parts = Vec::with_capacity(stream.part_count() as usize);
    let mut md5s = Some(Vec::with_capacity(parts.capacity()));
    while let Some(part) = stream.next_part() {
        let part = part?;
        sink(&part)?;
        reporter.advance(part.data.len() as u64);
        md5s = md5s.zip(part.md5).map(|(mut all, m)| {
            all.push(m);
            all
        });
        parts.push(PartDigest {
            number: part.number,
            offset: part.offset,
            size: part.data.len() as u64,
            md5: part.md5.as_ref().map(|m| hex(m)),
            crc64: part.crc64.to_string(),
            crc64_hex: format!("{:016x}", part.crc64),
        });
    }
    let digests = stream.digests().ok_or(TransferError::WorkerLost)?;
    Ok(Drained {
        digests,
        parts,
        multipart_etag: md5s.map(|m| multipart_etag(&m)),
    })
}

fn report(
    layout: &Layout,
    drained: Drained,
    part_size: u64,
    output: Option<PathBuf>,
    content: Option<ContentDigest>,
) -> StreamReport {
    let Drained {
        digests,
        parts,
        multipart_etag,
    } = drained;
    StreamReport {
        format: Some(layout.format),
        output,
        source_virtual_size: layout.source_size,
        virtual_size: layout.virtual_size,
        size: digests.size,
        sha256: Some(digests.sha256).filter(|s| !s.is_empty()),
        crc64: digests.crc64.to_string(),
        crc64_hex: format!("{:016x}", digests.crc64),
        part_size,
        multipart_etag,
        parts,
        content,
        notices: layout.notices.clone(),
    }
}

/// Options of [`convert`] and [`checksum`].
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Part size, buffers, cancellation.
    pub stream: StreamOptions,
    /// Also compute the content digest of the source disk (a second, parallel, hole-skipping
    /// pass over the source's data).
    pub content_digest: bool,
}

/// The digests of `src` converted to `format`, without writing anything.
pub fn checksum(
    src: Arc<dyn DiskImage>,
    format: OutputFormat,
    opts: &ConvertOptions,
    reporter: &dyn Reporter,
) -> Result<StreamReport, TransferError> {
    let mut stream = LayoutStream::convert(src.clone(), format, &opts.stream)?;
    reporter.start("checksum", Some(stream.total_size()));
    let drained = drain(&mut stream, reporter, |_| Ok(()))?;
    reporter.finish();
    let content = content_if(opts, src.as_ref(), reporter)?;
    Ok(report(
        stream.layout(),
        drained,
        stream.part_size(),
        None,
        content,
    ))
}

fn content_if(
    opts: &ConvertOptions,
    src: &dyn DiskImage,
    reporter: &dyn Reporter,
) -> Result<Option<ContentDigest>, TransferError> {
    if opts.content_digest {
        Ok(Some(content_digest(
            src,
            reporter,
            opts.stream.cancel.as_deref(),
        )?))
    } else {
        Ok(None)
    }
}

/// The digests of the file at `path` as it is (no conversion), e.g. before uploading it.
pub fn checksum_file(
    path: &Path,
    opts: &StreamOptions,
    reporter: &dyn Reporter,
) -> Result<StreamReport, TransferError> {
    let mut stream = super::file::FileStream::with_options(path, opts)?;
    reporter.start("checksum", Some(stream.total_size()));
    let drained = drain(&mut stream, reporter, |_| Ok(()))?;
    reporter.finish();
    let mut r = report(stream.layout(), drained, stream.part_size(), None, None);
    r.format = None;
    Ok(r)
}

/// A temporary output file, removed on drop unless [`TempFile::persist`] renamed it.
struct TempFile {
    path: PathBuf,
    file: File,
    done: bool,
}

impl TempFile {
    fn create(dst: &Path) -> Result<Self, TransferError> {
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
                path: path.clone(),
                step: "create the temporary file",
                source: e,
            })?;
        Ok(Self {
            path,
            file,
            done: false,
        })
    }

    fn err(&self, step: &'static str, source: std::io::Error) -> TransferError {
        TransferError::Write {
            path: self.path.clone(),
            step,
            source,
        }
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
                    self.file
                        .write_all_at(&bytes[s..i], at + s as u64)
                        .map_err(|e| self.err("write", e))?;
                    run = None;
                }
                _ => {}
            }
            i += n;
        }
        if let Some(s) = run {
            self.file
                .write_all_at(&bytes[s..], at + s as u64)
                .map_err(|e| self.err("write", e))?;
        }
        Ok(())
    }

    fn write_part(&self, layout: &Layout, part: &Part) -> Result<(), TransferError> {
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
        self.start_writeback(part.offset, len);
        Ok(())
    }

    /// Asks the kernel to start writing the part back now, so the final fsync does not have
    /// to flush the whole file at once (buffered writeback is slow on the project's VMs,
    /// performance-limits.md §B.4). Advisory: errors surface at fsync.
    fn start_writeback(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
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

    fn persist(mut self, size: u64, dst: &Path) -> Result<(), TransferError> {
        self.file
            .set_len(size)
            .map_err(|e| self.err("set the length of", e))?;
        self.file.sync_all().map_err(|e| self.err("fsync", e))?;
        std::fs::rename(&self.path, dst).map_err(|e| self.err("rename into place", e))?;
        self.done = true;
        if let Some(dir) = dst.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; a failure here leaves a complete file, so ignore it.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Converts `src` to `format` into the file `dst` (atomically), computing the digests of the
/// written bytes in the same pass.
pub fn convert(
    src: Arc<dyn DiskImage>,
    dst: &Path,
    format: OutputFormat,
    opts: &ConvertOptions,
    reporter: &dyn Reporter,
) -> Result<StreamReport, TransferError> {
    let mut stream = LayoutStream::convert(src.clone(), format, &opts.stream)?;
    let tmp = TempFile::create(dst)?;
    reporter.start("convert", Some(stream.total_size()));
    let layout = stream.layout().clone();
    let drained = drain(&mut stream, reporter, |part| tmp.write_part(&layout, part))?;
    tmp.persist(drained.digests.size, dst)?;
    reporter.finish();
    let content = content_if(opts, src.as_ref(), reporter)?;
    Ok(report(
        &layout,
        drained,
        stream.part_size(),
        Some(dst.to_path_buf()),
        content,
    ))
}

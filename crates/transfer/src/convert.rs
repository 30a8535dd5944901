//! Converting to a file and checksumming streams: the consumers of a [`PartSource`] that live
//! on the local machine.
//!
//! A conversion writes to a temporary name in the destination directory, fsyncs it and renames
//! it into place; the temporary file is removed on any failure, including an interruption
//! requested through [`StreamOptions::cancel`]. Ranges the layout says are zeros are left as
//! holes, and so are all-zero 4 KiB blocks of data (as `qemu-img convert -S 4k` does): zero runs
//! are never written.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::content::{ContentDigest, content_digest};
use super::digest::{crc64_combine, multipart_etag};
use super::layout::{Layout, OutputFormat};
use super::output::OutputFile;
use super::stream::{LayoutStream, MAX_PARTS, StreamOptions, local_buffer_part, local_part_size};
use super::{Part, PartSource, TransferError};
use imgport_base::report::{Reporter, Stage};
use imgport_image::DiskImage;

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

/// Drains `stream` as progress `task` (announcing `notice` first), handing each part to
/// `sink`, and collects the digests; the caller finishes the progress. `report_part` is the
/// part size the per-part digests are listed for: the stream's own, or a multiple of it when
/// the stream's parts are only buffers (their CRCs are then combined; MD5s cannot be, so a
/// stream with part MD5s is listed in its own parts).
fn drain(
    stream: &mut dyn PartSource,
    report_part: u64,
    task: &str,
    notice: Option<&str>,
    reporter: &dyn Reporter,
    mut sink: impl FnMut(&Part) -> Result<(), TransferError>,
) -> Result<Drained, TransferError> {
    reporter.start(Stage::Read, task, Some(stream.total_size()));
    if let Some(n) = notice {
        reporter.message(n);
    }
    let report_part = report_part.max(stream.part_size());
    let report_count = stream.total_size().div_ceil(report_part).max(1);
    // A local stream of a huge disk may have millions of parts: their list is kept only when
    // it is one an object store could take, so memory stays bounded by MAX_PARTS entries.
    let keep = report_count <= MAX_PARTS;
    let mut parts = Vec::with_capacity(if keep { report_count as usize } else { 0 });
    let mut md5s = Some(Vec::with_capacity(parts.capacity())).filter(|_| keep);
    // The listed part being combined from stream parts: (offset, size, crc).
    let mut group: Option<(u64, u64, u64)> = None;
    let total = stream.total_size();
    loop {
        if !keep {
            // Nothing per part is kept: a run of zero parts is passed over in one step.
            let skipped = stream.skip_zero_parts();
            if skipped > 0 {
                reporter.advance(skipped);
            }
        }
        let Some(part) = stream.next_part() else {
            break;
        };
        let part = part?;
        sink(&part)?;
        let len = part.data.len() as u64;
        reporter.advance(len);
        if !keep {
            continue;
        }
        if report_part == stream.part_size() {
            md5s = md5s.zip(part.md5).map(|(mut all, m)| {
                all.push(m);
                all
            });
            parts.push(part_digest(
                part.number,
                part.offset,
                len,
                part.md5,
                part.crc64,
            ));
            continue;
        }
        md5s = None;
        let (offset, size, crc) = group.unwrap_or((part.offset, 0, 0));
        let (size, crc) = (size + len, crc64_combine(crc, part.crc64, len));
        if size == report_part || offset + size == total {
            let number = u32::try_from(offset / report_part + 1).unwrap_or(u32::MAX);
            parts.push(part_digest(number, offset, size, None, crc));
            group = None;
        } else {
            group = Some((offset, size, crc));
        }
    }
    let digests = stream.digests().ok_or(TransferError::WorkerLost)?;
    Ok(Drained {
        digests,
        parts,
        multipart_etag: md5s.map(|m| multipart_etag(&m)),
    })
}

fn part_digest(number: u32, offset: u64, size: u64, md5: Option<[u8; 16]>, crc: u64) -> PartDigest {
    PartDigest {
        number,
        offset,
        size,
        md5: md5.as_ref().map(hex::encode),
        crc64: crc.to_string(),
        crc64_hex: format!("{crc:016x}"),
    }
}

/// `r` with the stream's `notice` added, and a note why it lists no part digests (more parts
/// than an upload could have) when it lists none.
fn with_notices(mut r: StreamReport, notice: Option<String>) -> StreamReport {
    r.notices.extend(notice);
    if r.parts.is_empty() && r.size > 0 {
        r.notices.push(format!(
            "per-part digests are not listed: the output's {} parts of {} bytes are more than an upload may have ({MAX_PARTS})",
            r.size.div_ceil(r.part_size.max(1)),
            r.part_size
        ));
    }
    r
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
    /// Skip the SHA-256 of the output (with a notice saying so) when the output holds more
    /// than this many bytes of planned zeros: SHA-256 has to hash every one of them, so its
    /// cost follows the virtual size, not the data. `None` always computes it (unless
    /// [`StreamOptions::skip_sha256`]); either way a large cost is announced before streaming.
    pub sha256_zero_limit: Option<u64>,
}

/// Planned zero bytes over which [`ConvertOptions::sha256_zero_limit`]'s default skips the
/// SHA-256, and over which a requested one is announced as costly.
pub const SHA256_ZERO_LIMIT: u64 = 4 << 30;

/// `bytes` in GiB with one decimal, for notices.
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The stream options for `layout`: the SHA-256 skipped when it would hash more planned zeros
/// than allowed. The returned notice says what was decided and what it costs; callers send it
/// to the reporter as soon as the work starts (before any byte is streamed) and keep it in
/// the report.
fn sha256_policy(layout: &Layout, opts: &ConvertOptions) -> (StreamOptions, Option<String>) {
    let mut stream = opts.stream.clone();
    let zeros = layout.zero_bytes();
    if stream.skip_sha256 || zeros <= SHA256_ZERO_LIMIT {
        return (stream, None);
    }
    let notice = match opts.sha256_zero_limit {
        Some(limit) if zeros > limit => {
            stream.skip_sha256 = true;
            format!(
                "sha256 skipped: the output holds {} of zeros (holes, never read) that a SHA-256 \
                 of it would still have to hash; pass --sha256 to compute it anyway",
                gib(zeros)
            )
        }
        _ => format!(
            "sha256 hashes {} of zeros (holes, never read) besides the data: its time follows \
             the output size, not the data",
            gib(zeros)
        ),
    };
    (stream, Some(notice))
}

/// A stream planned for a local consumer: the stream, the notice of its SHA-256 policy, and
/// the part size its per-part digests are listed in.
struct Planned {
    stream: LayoutStream,
    notice: Option<String>,
    report_part: u64,
}

/// The stream of `src` converted to `format`. Without a part size given (no part MD5s), the
/// digests are listed in [`local_part_size`] parts while the stream itself moves the bytes in
/// [`local_buffer_part`] buffers, so a conversion holds a few MiB, not a few listed parts.
fn planned_stream(
    src: &Arc<dyn DiskImage>,
    format: OutputFormat,
    opts: &ConvertOptions,
) -> Result<Planned, TransferError> {
    let layout = Layout::plan(src.as_ref(), format)?;
    let (mut stream_opts, notice) = sha256_policy(&layout, opts);
    let mut report_part = 0;
    if stream_opts.part_size.is_none() && !stream_opts.for_upload() {
        report_part = local_part_size(layout.size);
        stream_opts.part_size = NonZeroU64::new(local_buffer_part(report_part, layout.size));
    }
    let stream = LayoutStream::new(layout, src.clone(), &stream_opts)?;
    Ok(Planned {
        report_part: report_part.max(stream.part_size()),
        stream,
        notice,
    })
}

/// Reads `stream` to its end for its digests alone (listed in `report_part` parts),
/// announcing `notice` first.
fn digests_only(
    stream: &mut dyn PartSource,
    report_part: u64,
    notice: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Drained, TransferError> {
    let drained = drain(
        stream,
        report_part,
        "checksum",
        notice,
        reporter,
        |_| Ok(()),
    )?;
    reporter.finish();
    Ok(drained)
}

/// The digests of `src` converted to `format`, without writing anything.
pub fn checksum(
    src: Arc<dyn DiskImage>,
    format: OutputFormat,
    opts: &ConvertOptions,
    reporter: &dyn Reporter,
) -> Result<StreamReport, TransferError> {
    let Planned {
        mut stream,
        notice,
        report_part,
    } = planned_stream(&src, format, opts)?;
    let drained = digests_only(&mut stream, report_part, notice.as_deref(), reporter)?;
    let content = content_if(opts, src.as_ref(), reporter)?;
    let r = report(stream.layout(), drained, report_part, None, content);
    Ok(with_notices(r, notice))
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
/// `opts.content_digest` does not apply (the file is not read as a disk).
pub fn checksum_file(
    path: &Path,
    opts: &ConvertOptions,
    reporter: &dyn Reporter,
) -> Result<StreamReport, TransferError> {
    let (image, layout) = super::file::FileStream::plan(path)?;
    let (stream_opts, notice) = sha256_policy(&layout, opts);
    let mut stream = super::file::FileStream::from_plan(image, layout, &stream_opts)?;
    let report_part = stream.part_size();
    let drained = digests_only(&mut stream, report_part, notice.as_deref(), reporter)?;
    let mut r = report(stream.layout(), drained, stream.part_size(), None, None);
    r.format = None;
    Ok(with_notices(r, notice))
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
    let Planned {
        mut stream,
        notice,
        report_part,
    } = planned_stream(&src, format, opts)?;
    let tmp = OutputFile::create(dst)?;
    let layout = stream.layout().clone();
    let drained = drain(
        &mut stream,
        report_part,
        "convert",
        notice.as_deref(),
        reporter,
        |part| tmp.write_part(&layout, part),
    )?;
    tmp.persist(drained.digests.size, dst)?;
    reporter.finish();
    let content = content_if(opts, src.as_ref(), reporter)?;
    let r = report(
        &layout,
        drained,
        report_part,
        Some(dst.to_path_buf()),
        content,
    );
    Ok(with_notices(r, notice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_base::report::Silent;
    use imgport_image::ImageFile;
    use imgport_image::raw::RawImage;
    use std::io::{Seek, SeekFrom, Write};

    /// A sparse RAW disk of `size` bytes with 40 MiB of varied data at 20 MiB.
    fn disk(dir: &Path, size: u64) -> Arc<dyn DiskImage> {
        let path = dir.join(format!("disk-{size}.raw"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        f.seek(SeekFrom::Start(20 << 20)).unwrap();
        let data: Vec<u8> = (0..40u32 << 20).map(|i| (i % 253) as u8 + 1).collect();
        f.write_all(&data).unwrap();
        drop(f);
        let file = Arc::new(ImageFile::open(&path).unwrap());
        Arc::new(RawImage::open(file, &mut Vec::new()).unwrap())
    }

    fn local_opts() -> ConvertOptions {
        ConvertOptions {
            stream: StreamOptions {
                skip_part_md5: true,
                ..StreamOptions::default()
            },
            ..ConvertOptions::default()
        }
    }

    #[test]
    fn listed_parts_combine_small_buffers_into_the_usual_part_size() {
        let dir = tempfile::tempdir().unwrap();
        let src = disk(dir.path(), 100 << 20);
        let out = dir.path().join("out.raw");
        let r = convert(src, &out, OutputFormat::Raw, &local_opts(), &Silent).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(
            r.part_size,
            32 << 20,
            "the listed part size is the usual one"
        );
        assert_eq!(r.parts.len(), 4);
        for p in &r.parts {
            let range = &bytes[p.offset as usize..(p.offset + p.size) as usize];
            assert_eq!(p.crc64, super::super::digest::crc64(range).to_string());
            assert_eq!(p.size, (32 << 20).min(bytes.len() as u64 - p.offset));
            assert!(p.md5.is_none());
        }
        assert_eq!(r.crc64, super::super::digest::crc64(&bytes).to_string());
    }

    #[test]
    fn a_conversion_holds_a_few_small_buffers_whatever_the_disk_size() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = |size: u64| {
            let planned =
                planned_stream(&disk(dir.path(), size), OutputFormat::Vhd, &local_opts()).unwrap();
            assert_eq!(planned.stream.part_size(), 4 << 20);
            planned.stream.buffer_capacity()
        };
        let small = capacity(1 << 30);
        assert_eq!(small, capacity(2040 << 30));
        assert!(small <= 32 << 20, "{small} bytes of buffers");
    }
}

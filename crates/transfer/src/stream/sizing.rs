//! How a stream is cut and buffered: part sizes, buffer counts, MD5 batches. Memory follows
//! the parts in flight and the threads filling them, never the disk's size.

use std::num::NonZeroU64;

/// Most parts S3 and OSS accept in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Default part size: large enough for few requests, small enough that a handful of parts in
/// flight stay within the memory budget.
pub const DEFAULT_PART_SIZE: u64 = 32 * 1024 * 1024;
/// Unit of parallel work inside a part.
pub const CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Default part size of a stream that hashes each part (an upload): S3's 5 MiB minimum for
/// every part but the last (OSS takes 100 KiB), so a batch of [`MD5_LANES`] parts and those
/// in flight take as little fresh memory as S3 allows (first touch is costly on VMs whose
/// balloon reports free pages: docs/LIMITS.md §Memory).
pub const HASHED_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Memory the part buffers may use by default.
pub const DEFAULT_BUFFER_BUDGET: u64 = 192 * 1024 * 1024;
/// Fewest and most part buffers a stream keeps by default (when they fit the budget).
const DEFAULT_BUFFERS: (u64, u64) = (3, 8);
/// Largest part S3 and OSS accept; a hashed stream (an upload's) whose output needs larger
/// parts to fit [`MAX_PARTS`] is refused before anything is allocated.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Largest part a stream that does not hash parts (a local conversion or checksum) picks by
/// itself: it may then have more than [`MAX_PARTS`] parts, so a huge, mostly empty disk never
/// gets part buffers sized from its virtual size.
pub const LOCAL_MAX_PART_SIZE: u64 = 64 * 1024 * 1024;
/// Most parts started ahead of the consumer. Zero parts take no buffer, so without this bound
/// a long hole would queue every one of its parts at once.
pub(super) const MAX_AHEAD: usize = 64;
/// Memory a stream that batches part MD5s adds to the buffers its caller asks for: 3 parts
/// of S3's smallest size ([`md5_extra_buffers`]).
pub const MD5_BATCH_BUDGET: u64 = 3 * HASHED_PART_SIZE;

/// Buffers of `part_size` bytes a stream that batches part MD5s adds to those its caller
/// asks for (the parts in flight and two filled ahead): as many as [`MD5_BATCH_BUDGET`]
/// holds, at least one. A batch takes every buffer not held by the consumer, up to
/// [`MD5_LANES`] parts, so with a consumer that returns its parts quickly it is nearly full,
/// and with one that holds many it is smaller (MD5 costs more per byte: the lanes run in
/// lockstep, so 8 parts take as long as 16) but memory stays the same.
pub fn md5_extra_buffers(part_size: u64) -> usize {
    (MD5_BATCH_BUDGET / part_size.max(1)).clamp(1, MD5_LANES as u64) as usize
}

/// Part buffers an upload stream's [`reader`](crate::PartSource::reader) fills parts again
/// in, on top of the stream's own: retries are rare, so they take turns.
pub const REREAD_BUFFERS: usize = 1;

/// Parts of an upload filled ahead of those being sent: one waiting in the uploader's queue
/// and one its producer holds ready.
pub const UPLOAD_FILLED_AHEAD: usize = 2;

/// Part buffers an upload's stream keeps with at most `writing` parts of `part_size` bytes
/// being written at once: those, [`UPLOAD_FILLED_AHEAD`], the
/// [`REREAD_BUFFERS`] retries read parts again in, and
/// [`md5_extra_buffers`] when it batches part MD5s (`md5_batch`: an unsigned upload's). A
/// part holds its buffer from its filling until its request has written it, not until the
/// answer (the uploader reads a part again to retry it), so the parts in flight are not
/// bounded by this. What [`StreamOptions::buffers`](super::StreamOptions::buffers) is set
/// from is `writing + UPLOAD_FILLED_AHEAD`: the stream adds the others itself.
pub fn upload_buffers(writing: usize, part_size: u64, md5_batch: bool) -> usize {
    let batch = if md5_batch {
        md5_extra_buffers(part_size)
    } else {
        0
    };
    writing + UPLOAD_FILLED_AHEAD + REREAD_BUFFERS + batch
}

/// Most parts of `part_size` bytes an upload may be writing at once so that all its part
/// buffers ([`upload_buffers`]) fit in `budget` bytes; `None` when not even one fits (the
/// parts are too large for the budget).
pub fn writing_within(budget: u64, part_size: u64, md5_batch: bool) -> Option<usize> {
    let fixed = upload_buffers(0, part_size, md5_batch) as u64;
    let n = (budget / part_size.max(1)).checked_sub(fixed)?;
    (n >= 1).then(|| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Parts whose MD5s are computed together ([`imgport_md5x16::md5_many`]: one AVX-512 register).
pub const MD5_LANES: usize = 16;

/// Most memory the part buffers of one stream take with the default buffer count and
/// `part_size` parts (`None`: the default size): for callers deciding how many streams fit.
pub fn buffer_memory(part_size: Option<NonZeroU64>) -> u64 {
    let part = part_size.map_or(DEFAULT_PART_SIZE, NonZeroU64::get);
    // The buffers fill the budget (MD5 batches take only what is left of it), unless even the
    // fewest buffers are over it.
    DEFAULT_BUFFER_BUDGET.max(part.saturating_mul(DEFAULT_BUFFERS.0))
}

/// Buffers of `buffer_size` bytes a stream keeps when not told: one per thread filling parts,
/// one the consumer holds and one the SHA-256 thread reads, at least [`DEFAULT_BUFFERS`]'
/// fewest and at most what fits [`DEFAULT_BUFFER_BUDGET`] (the fewest at least): more only
/// queue parts ahead of whichever of those is the bottleneck, and cost memory.
pub(super) fn default_buffers(buffer_size: u64) -> usize {
    let wanted = (rayon::current_num_threads() as u64 + 2).min(DEFAULT_BUFFERS.1);
    let fit = DEFAULT_BUFFER_BUDGET / buffer_size.max(1);
    wanted.min(fit).max(DEFAULT_BUFFERS.0) as usize
}

/// The part size used when none is given: [`DEFAULT_PART_SIZE`], or larger (whole MiB) when
/// the stream would otherwise need more than [`MAX_PARTS`] parts.
pub fn auto_part_size(total: u64) -> u64 {
    part_size_at_least(DEFAULT_PART_SIZE, total)
}

/// The part size a local stream (no part MD5s) lists its per-part digests in:
/// [`auto_part_size`], at most [`LOCAL_MAX_PART_SIZE`].
pub fn local_part_size(total: u64) -> u64 {
    auto_part_size(total).min(LOCAL_MAX_PART_SIZE)
}

/// Buffer unit of a local stream whose digests are listed in `report_part` parts: the
/// largest of [`CHUNK_SIZE`], 2 MiB and 1 MiB that divides `report_part` (a part's CRC is
/// then combined from whole buffers), or `report_part` itself when none does or when the
/// buffers of a `total`-byte stream would be too many to number.
pub fn local_buffer_part(report_part: u64, total: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    [CHUNK_SIZE as u64, 2 * MIB, MIB]
        .into_iter()
        .find(|&unit| {
            unit <= report_part
                && report_part.is_multiple_of(unit)
                && total.div_ceil(unit) <= u64::from(u32::MAX)
        })
        .unwrap_or(report_part)
}

/// `base`, or the smallest whole number of MiB above it that cuts `total` into at most
/// [`MAX_PARTS`] parts.
pub(super) fn part_size_at_least(base: u64, total: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let min = total.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    base.max(min)
}

//! The vocabulary of a layout: output formats, segments and their pieces, the [`Layout`]
//! value and reading output bytes from it, and the builders every format's planner uses.

use std::sync::Arc;

use serde::Serialize;

use imgport_image::{DiskImage, Extent, ImageError};

/// Block size of dynamic VHD output (the spec's and QEMU's default).
pub const VHD_BLOCK_SIZE: u64 = 2 * 1024 * 1024;

/// Fixed VHD sizes are whole MiB.
pub(crate) const FIXED_ALIGN: u64 = 1024 * 1024;

/// Sector size every output format's virtual size is a multiple of.
pub const SECTOR: u64 = 512;

/// The output formats imgport writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// The virtual disk as a plain (sparse) file.
    Raw,
    /// Dynamic VHD with 2 MiB blocks (what ECS imports without a size error).
    Vhd,
    /// Fixed VHD: the disk followed by a footer.
    VhdFixed,
    /// QCOW2 version 3, 64 KiB clusters, no compression.
    Qcow2,
}

impl OutputFormat {
    /// What the output's virtual size is rounded up to a multiple of: 512-byte sectors for
    /// RAW and QCOW2, whole 2 MiB blocks for a dynamic VHD (ECS wants size = MaxTableEntries ×
    /// BlockSize), whole MiB for a fixed VHD (Azure's rule).
    pub fn size_alignment(self) -> u64 {
        match self {
            OutputFormat::Raw | OutputFormat::Qcow2 => SECTOR,
            OutputFormat::Vhd => VHD_BLOCK_SIZE,
            OutputFormat::VhdFixed => FIXED_ALIGN,
        }
    }

    /// Virtual size of the output for a source disk of `size` bytes; `None` on overflow.
    pub fn output_virtual_size(self, size: u64) -> Option<u64> {
        round_up(size, self.size_alignment())
    }

    /// Object-key suffix ECS expects for the format (`UnsupportedSuffix.OSSObject` otherwise).
    pub fn suffix(self) -> &'static str {
        match self {
            OutputFormat::Raw => "raw",
            OutputFormat::Vhd | OutputFormat::VhdFixed => "vhd",
            OutputFormat::Qcow2 => "qcow2",
        }
    }

    /// Every output format.
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Raw,
        OutputFormat::Vhd,
        OutputFormat::VhdFixed,
        OutputFormat::Qcow2,
    ];

    /// The format named `name` (as [`OutputFormat::name`] spells it).
    pub fn parse(name: &str) -> Option<OutputFormat> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Raw => "raw",
            OutputFormat::Vhd => "vhd",
            OutputFormat::VhdFixed => "vhd-fixed",
            OutputFormat::Qcow2 => "qcow2",
        }
    }
}

/// What the bytes of one [`Segment`] are.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Zeros: written as a hole, hashed without reading anything.
    Zero,
    /// The source's virtual disk from `offset` on.
    Source { offset: u64 },
    /// Literal metadata, from byte `start` of `data`.
    Bytes { data: Arc<[u8]>, start: usize },
    /// QCOW2 L2 table number `table` (the one L1 entry `table` points to), generated.
    Qcow2L2 { table: u64 },
    /// QCOW2 refcount block number `block`, generated.
    Qcow2Refcount { block: u64 },
    /// A table generated on read (a dynamic VHD's block allocation table).
    Table(Arc<dyn TableBytes>),
}

/// A metadata table whose bytes are made on read, so a layout holds what it was planned from
/// rather than a table as large as the disk.
pub trait TableBytes: std::fmt::Debug + Send + Sync {
    /// Bytes `[skip, skip + dst.len())` of the table.
    fn fill(&self, skip: u64, dst: &mut [u8]);
}

/// A contiguous range `[offset, offset + length)` of the output and what it holds.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Offset of the segment in the output.
    pub offset: u64,
    /// Bytes in the segment.
    pub length: u64,
    /// What the bytes are.
    pub piece: Piece,
}

impl Segment {
    /// One past the segment's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// The complete plan of one output file.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Format of the output.
    pub format: OutputFormat,
    /// Virtual size of the source disk.
    pub source_size: u64,
    /// Virtual size of the output disk (the source size rounded up as the format requires).
    pub virtual_size: u64,
    /// Total bytes of the output file.
    pub size: u64,
    /// Ordered segments covering `[0, size)` without gaps.
    pub segments: Vec<Segment>,
    /// Facts the user should know, e.g. that the size was rounded up.
    pub notices: Vec<String>,
    /// The generator of metadata tables the segments name (QCOW2 L2 and refcount blocks).
    pub(crate) tables: Option<Arc<dyn Qcow2Tables>>,
}

/// Errors building a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("listing the source's extents")]
    Extents(#[source] ImageError),
    #[error("{format}: a virtual size of {size} bytes is over the format's limit of {max} bytes")]
    TooLarge {
        format: &'static str,
        size: u64,
        max: u64,
    },
    #[error(
        "source extent at offset {offset} (+{length}) is unsorted, overlapping or past the disk size {size}"
    )]
    BadExtent { offset: u64, length: u64, size: u64 },
}

impl Layout {
    /// Bytes of the output that are zeros by plan (holes and unallocated ranges): what a
    /// digest over every output byte must hash without anything to read.
    pub fn zero_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| matches!(s.piece, Piece::Zero))
            .map(|s| s.length)
            .sum()
    }

    /// End of the run of [`Piece::Zero`] segments that starts at `offset` (`offset` itself
    /// when the byte there is not planned as zero).
    pub fn zero_run_end(&self, offset: u64) -> u64 {
        let mut end = offset;
        for s in &self.segments[self.find(offset)..] {
            if !matches!(s.piece, Piece::Zero) || s.offset > end {
                break;
            }
            end = s.end();
        }
        end.max(offset)
    }

    /// Index of the segment holding output byte `offset` (or `segments.len()` past the end).
    fn find(&self, offset: u64) -> usize {
        self.segments.partition_point(|s| s.end() <= offset)
    }

    /// True when `[offset, offset + len)` lies entirely in [`Piece::Zero`] segments.
    pub fn is_zero(&self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len);
        self.segments[self.find(offset)..]
            .iter()
            .take_while(|s| s.offset < end)
            .all(|s| matches!(s.piece, Piece::Zero))
    }

    /// The segments overlapping `[offset, offset + len)`.
    pub fn segments_in(&self, offset: u64, len: u64) -> impl Iterator<Item = &Segment> {
        let end = offset.saturating_add(len);
        self.segments[self.find(offset)..]
            .iter()
            .take_while(move |s| s.offset < end)
    }

    /// Fills `buf` with the output bytes at `offset`, reading `src` for source ranges.
    pub fn read(&self, src: &dyn DiskImage, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(ImageError::OutOfRange {
                offset,
                length: len,
                size: self.size,
            });
        }
        let mut pos = offset;
        let mut out = &mut buf[..];
        for seg in self.segments_in(offset, len) {
            if out.is_empty() {
                break;
            }
            let skip = pos - seg.offset;
            let n = (seg.length - skip).min(out.len() as u64) as usize;
            let (dst, rest) = out.split_at_mut(n);
            match &seg.piece {
                Piece::Zero => dst.fill(0),
                Piece::Source { offset } => src.read_at(dst, offset + skip)?,
                Piece::Bytes { data, start } => {
                    let from = start + skip as usize;
                    match data.get(from..from + n) {
                        Some(bytes) => dst.copy_from_slice(bytes),
                        None => dst.fill(0),
                    }
                }
                Piece::Qcow2L2 { table } => match &self.tables {
                    Some(map) => map.fill_l2(*table, skip, dst),
                    None => dst.fill(0),
                },
                Piece::Qcow2Refcount { block } => match &self.tables {
                    Some(map) => map.fill_refcount(*block, skip, dst),
                    None => dst.fill(0),
                },
                Piece::Table(table) => table.fill(skip, dst),
            }
            pos += n as u64;
            out = rest;
        }
        Ok(())
    }
}

/// Builds a gap-free segment list, merging neighbours that continue each other.
pub(crate) struct SegmentBuilder {
    segments: Vec<Segment>,
    pos: u64,
}

impl SegmentBuilder {
    pub(crate) fn new() -> Self {
        Self {
            segments: Vec::new(),
            pos: 0,
        }
    }

    pub(crate) fn push(&mut self, length: u64, piece: Piece) {
        if length == 0 {
            return;
        }
        if let Some(last) = self.segments.last_mut() {
            let merged = match (&last.piece, &piece) {
                (Piece::Zero, Piece::Zero) => true,
                (Piece::Source { offset: a }, Piece::Source { offset: b }) => {
                    a.checked_add(last.length) == Some(*b)
                }
                _ => false,
            };
            if merged {
                last.length += length;
                self.pos += length;
                return;
            }
        }
        self.segments.push(Segment {
            offset: self.pos,
            length,
            piece,
        });
        self.pos += length;
    }

    pub(crate) fn bytes(&mut self, data: Arc<[u8]>) {
        let len = data.len() as u64;
        self.push(len, Piece::Bytes { data, start: 0 });
    }

    /// Plans the virtual range `[start, end)`: data extents as source reads, the rest zeros.
    /// `cursor` indexes `data` and only moves forward, so successive ranges must increase.
    pub(crate) fn virtual_range(
        &mut self,
        data: &[Extent],
        cursor: &mut usize,
        start: u64,
        end: u64,
    ) {
        let mut pos = start;
        while *cursor < data.len() && data[*cursor].end() <= start {
            *cursor += 1;
        }
        let mut i = *cursor;
        while pos < end {
            match data.get(i) {
                Some(e) if e.offset < end => {
                    if e.offset > pos {
                        self.push(e.offset - pos, Piece::Zero);
                        pos = e.offset;
                    }
                    let stop = e.end().min(end);
                    if stop > pos {
                        self.push(stop - pos, Piece::Source { offset: pos });
                        pos = stop;
                    }
                    if e.end() <= end {
                        i += 1;
                    } else {
                        break;
                    }
                }
                _ => {
                    self.push(end - pos, Piece::Zero);
                    pos = end;
                }
            }
        }
        *cursor = i;
    }

    /// The finished plan of a `format` file holding a `source_size` disk as a
    /// `virtual_size` one: the segments built so far, no QCOW2 tables.
    pub(crate) fn layout(
        self,
        format: OutputFormat,
        source_size: u64,
        virtual_size: u64,
        notices: Vec<String>,
    ) -> Layout {
        Layout {
            format,
            source_size,
            virtual_size,
            size: self.pos,
            segments: self.segments,
            notices,
            tables: None,
        }
    }
}

/// The notice that `what` was rounded up from `size` to `to` bytes (`why`); none when it was
/// not.
pub(crate) fn rounding_notice(what: &str, size: u64, to: u64, why: &str) -> Vec<String> {
    if to == size {
        return Vec::new();
    }
    vec![format!(
        "{what} rounded up from {size} to {to} bytes ({why}); the padding reads as zeros"
    )]
}

/// Runs of allocation units (VHD blocks, QCOW2 clusters) of `unit` bytes touched by `data`,
/// as `(first unit, count)`, sorted and merged.
pub(crate) fn unit_runs(data: &[Extent], unit: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for e in data {
        let first = e.offset / unit;
        let last = (e.end() - 1) / unit;
        match runs.last_mut() {
            Some((s, n)) if first <= *s + *n => {
                let end = (*s + *n).max(last + 1);
                *n = end - *s;
            }
            _ => runs.push((first, last - first + 1)),
        }
    }
    runs
}

/// Rounds `v` up to a multiple of `to`, `None` on overflow.
pub(crate) fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_next_multiple_of(to)
}

/// Generates the bytes of QCOW2 metadata tables on demand, so a layout holds the extents it
/// was planned from rather than every table of a large disk.
pub(crate) trait Qcow2Tables: std::fmt::Debug + Send + Sync {
    /// Bytes `[skip, skip + dst.len())` of L2 table `table`.
    fn fill_l2(&self, table: u64, skip: u64, dst: &mut [u8]);
    /// Bytes `[skip, skip + dst.len())` of refcount block `block`.
    fn fill_refcount(&self, block: u64, skip: u64, dst: &mut [u8]);
}

//! Hosted sparse extents (`KDMV`), plain or stream-optimized: the header and footer judged,
//! the grain directory and grain tables loaded with every bound checked, and grains read
//! (compressed ones inflated into at most one grain).
//!
//! Memory follows the file: the directory and every table must lie inside the file and the
//! tables may not overlap each other or other metadata, so the loaded tables are never larger
//! than the file.

use std::sync::Arc;

use imgport_base::bytes::{le32, le64};

use super::details::SparseDetails;
use super::grain::inflate;
use super::header::{
    COMPRESS_DEFLATE, FLAG_COMPRESSED, FLAG_MARKERS, FLAG_NL_TEST, FLAG_ZERO_GRAIN, GD_AT_END,
    GRAIN_MARKER_LEN, Header, MARKER_EOS, MARKER_FOOTER, MAX_CAPACITY_SECTORS, MAX_DESCRIPTOR,
    MAX_GRAIN_SECTORS, MAX_GTES_PER_GT, SECTOR, off, parse_marker,
};
use crate::{Extent, ExtentKind, ImageError, ImageFile, Severity, Verdict, push_extent};

/// A grain directory slot with no grain table.
const NO_TABLE: u32 = u32::MAX;
/// A grain table entry of a grain never written (reads as zeros).
const GTE_UNALLOCATED: u32 = 0;
/// A grain table entry of a zeroed grain (with [`FLAG_ZERO_GRAIN`]).
const GTE_ZEROED: u32 = 1;

/// A hosted sparse extent ready to read.
pub struct SparseExtent {
    file: Arc<ImageFile>,
    /// Prefix of field names in messages: empty for the opened file, `extent "NAME"` else.
    label: String,
    grain_bytes: u64,
    grain_sectors: u64,
    /// Bytes of virtual disk this extent holds.
    capacity: u64,
    gtes_per_gt: u64,
    /// Per directory entry: the index of its table in `tables`, or [`NO_TABLE`].
    directory: Vec<u32>,
    /// Every loaded grain table, `gtes_per_gt` entries each.
    tables: Vec<u32>,
    zero_grain: bool,
    compressed: bool,
    pub(super) details: SparseDetails,
}

/// A file range holding metadata, for overlap checks.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    what: &'static str,
    /// Field offset to name in a refusal.
    at: u64,
}

impl SparseExtent {
    fn field(&self, f: &str) -> String {
        field(&self.label, f)
    }

    /// Bytes of virtual disk in the extent.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn entry(&self, grain: u64) -> u32 {
        let t = (grain / self.gtes_per_gt) as usize;
        match self.directory.get(t).copied() {
            Some(slot) if slot != NO_TABLE => {
                let i =
                    slot as usize * self.gtes_per_gt as usize + (grain % self.gtes_per_gt) as usize;
                self.tables.get(i).copied().unwrap_or(GTE_UNALLOCATED)
            }
            _ => GTE_UNALLOCATED,
        }
    }

    /// Fills `buf` from extent offset `offset` (the caller keeps it inside the capacity).
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let grain = pos / self.grain_bytes;
            let within = pos % self.grain_bytes;
            let n = ((self.grain_bytes - within) as usize).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match self.entry(grain) {
                GTE_UNALLOCATED => chunk.fill(0),
                GTE_ZEROED if self.zero_grain => chunk.fill(0),
                e if self.compressed => self.read_compressed(grain, e, within, chunk)?,
                e => {
                    self.file
                        .read_exact_at(chunk, u64::from(e) * SECTOR + within)?;
                }
            }
            done += n;
        }
        Ok(())
    }

    /// Reads the grain whose marker is at sector `entry`, checks the marker, and inflates it
    /// into at most one grain.
    fn read_compressed(
        &self,
        grain: u64,
        entry: u32,
        within: u64,
        chunk: &mut [u8],
    ) -> Result<(), ImageError> {
        let at = u64::from(entry) * SECTOR;
        let corrupt = |f: &str, rule: String| ImageError::Corrupt {
            path: self.file.path().to_path_buf(),
            field: self.field(f),
            offset: at,
            rule,
        };
        let mut marker = [0u8; GRAIN_MARKER_LEN as usize];
        self.file.read_exact_at(&mut marker, at)?;
        let lba = le64(&marker, 0);
        let size = u64::from(le32(&marker, 8));
        if lba != grain * self.grain_sectors {
            return Err(corrupt(
                "grain marker lba",
                format!(
                    "is sector {lba}, but the grain table places this grain at sector {}",
                    grain * self.grain_sectors
                ),
            ));
        }
        // zlib's worst case for incompressible data is a few bytes per 16 KiB; twice a grain
        // is far above it and bounds the read.
        if size == 0 || size > 2 * self.grain_bytes {
            return Err(corrupt(
                "grain marker size",
                format!(
                    "{size} bytes of compressed data is not between 1 and twice the grain ({} bytes)",
                    2 * self.grain_bytes
                ),
            ));
        }
        let mut input = vec![0u8; size as usize];
        self.file.read_exact_at(&mut input, at + GRAIN_MARKER_LEN)?;
        let used = self.used(grain);
        let whole = within == 0 && chunk.len() as u64 == self.grain_bytes;
        let mut scratch = Vec::new();
        let out: &mut [u8] = if whole {
            chunk
        } else {
            scratch.resize(self.grain_bytes as usize, 0);
            &mut scratch
        };
        let got = inflate(&input, out).map_err(|rule| corrupt("compressed grain", rule))?;
        if (got as u64) < used {
            return Err(corrupt(
                "compressed grain",
                format!("inflates to {got} bytes, less than the {used} bytes of the grain"),
            ));
        }
        out[got..].fill(0);
        if !whole {
            let w = within as usize;
            chunk.copy_from_slice(&scratch[w..w + chunk.len()]);
        }
        Ok(())
    }

    /// Bytes of grain `grain` inside the capacity (the last grain may be partial).
    fn used(&self, grain: u64) -> u64 {
        self.grain_bytes
            .min(self.capacity.saturating_sub(grain * self.grain_bytes))
    }

    /// The extent's extents, from the tables alone, with offsets inside the extent.
    pub fn extents(&self) -> Vec<Extent> {
        let mut out = Vec::new();
        let span = self.grain_bytes * self.gtes_per_gt;
        for (t, &slot) in self.directory.iter().enumerate() {
            let start = t as u64 * span;
            if start >= self.capacity {
                break;
            }
            if slot == NO_TABLE {
                push_extent(
                    &mut out,
                    Extent {
                        offset: start,
                        length: span.min(self.capacity - start),
                        kind: ExtentKind::Unallocated,
                    },
                );
                continue;
            }
            for j in 0..self.gtes_per_gt {
                let g = t as u64 * self.gtes_per_gt + j;
                let offset = g * self.grain_bytes;
                if offset >= self.capacity {
                    break;
                }
                let kind = match self.entry(g) {
                    GTE_UNALLOCATED => ExtentKind::Unallocated,
                    GTE_ZEROED if self.zero_grain => ExtentKind::Zero,
                    _ => ExtentKind::Data,
                };
                push_extent(
                    &mut out,
                    Extent {
                        offset,
                        length: self.used(g),
                        kind,
                    },
                );
            }
        }
        out
    }
}

/// `f`, prefixed by `label` when there is one.
pub(super) fn field(label: &str, f: &str) -> String {
    if label.is_empty() {
        f.to_string()
    } else {
        format!("{label} {f}")
    }
}

/// Judges the header of `file` (and the footer of a stream-optimized extent whose directory is
/// at the end); returns the header to use and whether it is the footer's copy. `embedded` asks for an embedded descriptor (the
/// opened file is a monolithic sparse VMDK).
pub fn judge_header(
    file: &ImageFile,
    label: &str,
    embedded: bool,
    v: &mut Verdict<'_>,
) -> Result<Option<(Header, bool)>, ImageError> {
    let f = |name: &str| field(label, name);
    let size = file.size();
    if size < SECTOR {
        v.refuse(
            "vmdk.truncated",
            &f("header"),
            0,
            format!("the file holds {size} bytes, less than the 512-byte sparse header"),
        );
        return Ok(None);
    }
    let mut b = [0u8; SECTOR as usize];
    file.read_exact_at(&mut b, 0)?;
    let h = Header::parse(&b);
    if !h.magic_ok {
        v.refuse(
            "vmdk.magic",
            &f("header magic"),
            0,
            "is not \"KDMV\": the file is not a hosted sparse extent".into(),
        );
        return Ok(None);
    }
    let before = v.refused;
    v.refused = false;
    check_fields(&h, size, label, embedded, 0, v);
    if v.refused {
        return Ok(None);
    }
    v.refused = before;
    if h.unclean_shutdown {
        v.note(
            Severity::Warning,
            "vmdk.unclean_shutdown",
            &f("header unclean shutdown"),
            off::UNCLEAN as u64,
            "the disk was not closed cleanly; file systems may be inconsistent".into(),
        );
    }
    if h.gd_offset != GD_AT_END {
        return Ok(Some((h, false)));
    }
    if !h.stream_optimized() {
        v.refuse(
            "vmdk.gd_offset",
            &f("header gd offset"),
            off::GD_OFFSET as u64,
            "the grain directory is \"at the end\" (GD_AT_END), which only a stream-optimized extent may use".into(),
        );
        return Ok(None);
    }
    Ok(judge_footer(file, &h, label, embedded, v)?.map(|foot| (foot, true)))
}

/// The footer of a stream-optimized extent: a footer marker, a copy of the header that holds
/// the real directory offset, and the end-of-stream marker, in the last 1536 bytes.
fn judge_footer(
    file: &ImageFile,
    h: &Header,
    label: &str,
    embedded: bool,
    v: &mut Verdict<'_>,
) -> Result<Option<Header>, ImageError> {
    let f = |name: &str| field(label, name);
    let size = file.size();
    let Some(start) = size.checked_sub(3 * SECTOR).filter(|&s| s >= SECTOR) else {
        v.refuse(
            "vmdk.footer",
            &f("footer"),
            0,
            "the header puts the grain directory at the end (GD_AT_END), but the file is too short to hold the footer marker, footer and end-of-stream marker".into(),
        );
        return Ok(None);
    };
    let mut tail = vec![0u8; 3 * SECTOR as usize];
    file.read_exact_at(&mut tail, start)?;
    let (_, msize, mtype, mpad) = parse_marker(&tail[..512]);
    if msize != 0 || mtype != MARKER_FOOTER || !mpad {
        v.refuse(
            "vmdk.footer",
            &f("footer marker"),
            start,
            format!(
                "size {msize}, type {mtype}: a footer marker has size 0, type 3 and zero padding"
            ),
        );
        return Ok(None);
    }
    let (eval, esize, etype, epad) = parse_marker(&tail[1024..]);
    if eval != 0 || esize != 0 || etype != MARKER_EOS || !epad {
        v.refuse(
            "vmdk.footer",
            &f("end-of-stream marker"),
            start + 1024,
            "the last sector is not an end-of-stream marker (all zeros)".into(),
        );
        return Ok(None);
    }
    let foot = Header::parse(&tail[512..1024]);
    let at = start + SECTOR;
    let same = foot.magic_ok
        && foot.version == h.version
        && foot.flags == h.flags
        && foot.capacity == h.capacity
        && foot.grain_size == h.grain_size
        && foot.gtes_per_gt == h.gtes_per_gt
        && foot.descriptor_offset == h.descriptor_offset
        && foot.descriptor_size == h.descriptor_size;
    if !same {
        v.refuse(
            "vmdk.footer",
            &f("footer header"),
            at,
            "the footer's copy of the header differs from the header (magic, version, flags, capacity, grain, table or descriptor fields)".into(),
        );
        return Ok(None);
    }
    if foot.gd_offset == GD_AT_END {
        v.refuse(
            "vmdk.footer",
            &f("footer gd offset"),
            at + off::GD_OFFSET as u64,
            "the footer points to yet another footer (GD_AT_END)".into(),
        );
        return Ok(None);
    }
    let before = v.refused;
    v.refused = false;
    check_fields(&foot, size, label, embedded, at, v);
    if v.refused {
        return Ok(None);
    }
    v.refused = before;
    Ok(Some(foot))
}

/// The header rules; `base` is the header's file offset (0, or the footer's).
fn check_fields(
    h: &Header,
    size: u64,
    label: &str,
    embedded: bool,
    base: u64,
    v: &mut Verdict<'_>,
) {
    let f = |name: &str| field(label, name);
    let at = |o: usize| base + o as u64;
    if !(1..=3).contains(&h.version) {
        v.refuse(
            "vmdk.version",
            &f("header version"),
            at(off::VERSION),
            format!("{} is not a hosted sparse version (1, 2 or 3)", h.version),
        );
    }
    let compressed = h.flags & FLAG_COMPRESSED != 0;
    let markers = h.flags & FLAG_MARKERS != 0;
    if compressed != markers {
        v.refuse(
            "vmdk.flags",
            &f("header flags"),
            at(off::FLAGS),
            format!(
                "{:#x}: compressed grains and markers come together (stream-optimized) or not at all",
                h.flags
            ),
        );
    }
    let want_algorithm = if compressed { COMPRESS_DEFLATE } else { 0 };
    if h.compress_algorithm != want_algorithm {
        v.refuse(
            "vmdk.compression",
            &f("header compress algorithm"),
            at(off::COMPRESS),
            format!(
                "{} with compressed grains {}: only deflate (1) for compressed grains, 0 otherwise",
                h.compress_algorithm,
                if compressed { "on" } else { "off" }
            ),
        );
    }
    if h.flags & FLAG_NL_TEST != 0 && h.newlines != *b"\n \r\n" {
        v.refuse(
            "vmdk.newline_test",
            &f("header newline test"),
            at(off::NEWLINES),
            "the four test characters are not \\n, space, \\r, \\n: the file was damaged by a text-mode transfer".into(),
        );
    }
    if h.capacity == 0 || h.capacity > MAX_CAPACITY_SECTORS {
        v.refuse(
            "vmdk.capacity",
            &f("header capacity"),
            at(off::CAPACITY),
            format!(
                "{} sectors is not between 1 and imgport's limit of {MAX_CAPACITY_SECTORS} (64 TiB)",
                h.capacity
            ),
        );
    }
    if !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS {
        v.refuse(
            "vmdk.grain_size",
            &f("header grain size"),
            at(off::GRAIN_SIZE),
            format!(
                "{} sectors is not a power of two up to {MAX_GRAIN_SECTORS} (1 MiB)",
                h.grain_size
            ),
        );
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
        v.refuse(
            "vmdk.gtes_per_gt",
            &f("header grain table entries"),
            at(off::GTES_PER_GT),
            format!("{} is not between 1 and {MAX_GTES_PER_GT}", h.gtes_per_gt),
        );
    }
    let max_desc = MAX_DESCRIPTOR / SECTOR;
    if h.descriptor_size > max_desc {
        v.refuse(
            "vmdk.descriptor_size",
            &f("header descriptor size"),
            at(off::DESCRIPTOR_SIZE),
            format!(
                "{} sectors passes the 1 MiB limit ({max_desc} sectors) on a descriptor",
                h.descriptor_size
            ),
        );
    } else if embedded && h.descriptor_size == 0 {
        v.refuse(
            "vmdk.descriptor_size",
            &f("header descriptor size"),
            at(off::DESCRIPTOR_SIZE),
            "0: this sparse extent has no embedded descriptor; open the descriptor file that names it".into(),
        );
    } else if h.descriptor_size > 0 {
        if h.descriptor_offset != 1 {
            v.refuse(
                "vmdk.descriptor_offset",
                &f("header descriptor offset"),
                at(off::DESCRIPTOR_OFFSET),
                format!(
                    "sector {}: an embedded descriptor must start at sector 1, right after the header",
                    h.descriptor_offset
                ),
            );
        } else if (1 + h.descriptor_size) * SECTOR > size {
            v.refuse(
                "vmdk.truncated",
                &f("header descriptor size"),
                at(off::DESCRIPTOR_SIZE),
                format!(
                    "the descriptor (sectors 1..{}) passes the end of the file ({size} bytes)",
                    1 + h.descriptor_size
                ),
            );
        }
    }
}

/// Loads the directory and tables of a judged header, checking every bound; `None` when
/// refused.
pub fn load(
    file: Arc<ImageFile>,
    h: &Header,
    label: &str,
    footer: bool,
    v: &mut Verdict<'_>,
) -> Result<Option<SparseExtent>, ImageError> {
    let f = |name: &str| field(label, name);
    let size = file.size();
    let hdr_at = if footer { size - 2 * SECTOR } else { 0 };
    let grain_sectors = h.grain_size;
    let grain_bytes = grain_sectors * SECTOR;
    let gtes = u64::from(h.gtes_per_gt);
    let capacity = h.capacity * SECTOR;
    // Bounded by the header rules: capacity ≤ 2^37 sectors, so every product below fits.
    let grains = h.capacity.div_ceil(grain_sectors);
    let tables = grains.div_ceil(gtes);
    let gd_start = h.gd_offset.checked_mul(SECTOR);
    let gd_len = tables * 4;
    let gd_end = gd_start.and_then(|s| s.checked_add(gd_len));
    let gd_field = f("header gd offset");
    let gd_field_at = hdr_at + off::GD_OFFSET as u64;
    let (Some(gd_start), Some(gd_end)) = (gd_start, gd_end) else {
        v.refuse(
            "vmdk.gd_past_eof",
            &gd_field,
            gd_field_at,
            format!("sector {} overflows", h.gd_offset),
        );
        return Ok(None);
    };
    if h.gd_offset == 0 || gd_end > size {
        v.refuse(
            "vmdk.gd_past_eof",
            &gd_field,
            gd_field_at,
            format!(
                "the grain directory ({tables} entries, {gd_len} bytes at sector {}) must lie after the header and inside the file ({size} bytes)",
                h.gd_offset
            ),
        );
        return Ok(None);
    }
    let mut metadata = vec![Span {
        start: 0,
        end: SECTOR * (1 + h.descriptor_size),
        what: "the header and descriptor",
        at: 0,
    }];
    if footer {
        metadata.push(Span {
            start: size - 3 * SECTOR,
            end: size,
            what: "the footer",
            at: size - 3 * SECTOR,
        });
    }
    metadata.push(Span {
        start: gd_start,
        end: gd_end,
        what: "the grain directory",
        at: gd_field_at,
    });
    // Bounded: the directory lies inside the file.
    let mut raw = vec![0u8; gd_len as usize];
    file.read_exact_at(&mut raw, gd_start)?;
    let gd: Vec<u32> = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
    drop(raw);
    let gt_len = gtes * 4;
    let mut directory = vec![NO_TABLE; gd.len()];
    let mut table_at = Vec::new();
    for (i, &e) in gd.iter().enumerate() {
        if e == 0 {
            continue;
        }
        let entry_at = gd_start + 4 * i as u64;
        let start = u64::from(e) * SECTOR;
        if start + gt_len > size {
            v.refuse(
                "vmdk.gt_past_eof",
                &f(&format!("grain directory entry {i}")),
                entry_at,
                format!(
                    "the grain table at sector {e} ({gt_len} bytes) passes the end of the file ({size} bytes)"
                ),
            );
            return Ok(None);
        }
        metadata.push(Span {
            start,
            end: start + gt_len,
            what: "a grain table",
            at: entry_at,
        });
        directory[i] = table_at.len() as u32;
        table_at.push(start);
    }
    if let Some((a, b)) = first_overlap(&mut metadata) {
        v.refuse(
            "vmdk.metadata_overlap",
            &f("grain directory"),
            b.at,
            format!(
                "{} (bytes {}..{}) overlaps {} (bytes {}..{}); each table must have its own place in the file",
                b.what, b.start, b.end, a.what, a.start, a.end
            ),
        );
        return Ok(None);
    }
    // Bounded: the tables lie inside the file without overlapping.
    let mut tables_mem = vec![0u32; table_at.len() * gtes as usize];
    let mut buf = vec![0u8; gt_len as usize];
    for (slot, &start) in table_at.iter().enumerate() {
        file.read_exact_at(&mut buf, start)?;
        let dst = &mut tables_mem[slot * gtes as usize..(slot + 1) * gtes as usize];
        for (d, c) in dst.iter_mut().zip(buf.chunks_exact(4)) {
            *d = le32(c, 0);
        }
    }
    let compressed = h.stream_optimized();
    let zero_grain = h.flags & FLAG_ZERO_GRAIN != 0;
    let mut ext = SparseExtent {
        file,
        label: label.to_string(),
        grain_bytes,
        grain_sectors,
        capacity,
        gtes_per_gt: gtes,
        directory,
        tables: tables_mem,
        zero_grain,
        compressed,
        details: SparseDetails {
            version: h.version,
            flags: h.flags,
            capacity_sectors: h.capacity,
            grain_sectors,
            gtes_per_gt: h.gtes_per_gt,
            gd_offset_sectors: h.gd_offset,
            gd_at_end: footer,
            compressed,
            allocated_grains: 0,
            zero_grains: 0,
        },
    };
    if !check_grains(&mut ext, &metadata, &table_at, v) {
        return Ok(None);
    }
    Ok(Some(ext))
}

/// Every allocated grain must lie inside the file; an uncompressed one also apart from the
/// metadata and from every other grain. Counts grains for the details.
fn check_grains(
    ext: &mut SparseExtent,
    metadata: &[Span],
    table_at: &[u64],
    v: &mut Verdict<'_>,
) -> bool {
    let size = ext.file.size();
    let mut grains: Vec<(u64, u64, u64)> = Vec::new();
    let (mut allocated, mut zeros) = (0u64, 0u64);
    let total = ext.capacity.div_ceil(ext.grain_bytes);
    // Only loaded tables are walked: their number is bounded by the file, the capacity is not.
    for (t, &slot) in ext.directory.iter().enumerate() {
        if slot == NO_TABLE {
            continue;
        }
        for j in 0..ext.gtes_per_gt {
            let g = t as u64 * ext.gtes_per_gt + j;
            if g >= total {
                break;
            }
            let e = ext.entry(g);
            let entry_at = table_at[slot as usize] + 4 * (g % ext.gtes_per_gt);
            match e {
                GTE_UNALLOCATED => continue,
                GTE_ZEROED if ext.zero_grain => {
                    zeros += 1;
                    continue;
                }
                _ => {}
            }
            allocated += 1;
            let start = u64::from(e) * SECTOR;
            let len = if ext.compressed {
                GRAIN_MARKER_LEN
            } else {
                ext.used(g)
            };
            if start + len > size {
                v.refuse(
                "vmdk.grain_past_eof",
                &ext.field(&format!("grain table entry for grain {g}")),
                entry_at,
                format!(
                    "the grain at sector {e} ({len} bytes) passes the end of the file ({size} bytes)"
                ),
            );
                return false;
            }
            if !ext.compressed {
                // Non-overlapping grains fit in the file: more than that is an overlap already,
                // and stopping here keeps the list no larger than the file's grain count.
                if grains.len() as u64 > size / ext.grain_bytes + 1 {
                    v.refuse(
                    "vmdk.grain_overlap",
                    &ext.field("grain tables"),
                    entry_at,
                    format!(
                        "more grains are allocated than a {size}-byte file can hold apart: grains share storage"
                    ),
                );
                    return false;
                }
                grains.push((start, start + len, entry_at));
            }
        }
    }
    ext.details.allocated_grains = allocated;
    ext.details.zero_grains = zeros;
    if ext.compressed {
        return true;
    }
    let mut spans: Vec<Span> = metadata.to_vec();
    spans.extend(grains.iter().map(|&(start, end, at)| Span {
        start,
        end,
        what: "a grain",
        at,
    }));
    if let Some((a, b)) = first_overlap(&mut spans) {
        let at = if b.what == "a grain" { b.at } else { a.at };
        v.refuse(
            "vmdk.grain_overlap",
            &ext.field("grain table entry"),
            at,
            format!(
                "{} (bytes {}..{}) overlaps {} (bytes {}..{}); two parts of the disk would share storage",
                b.what, b.start, b.end, a.what, a.start, a.end
            ),
        );
        return false;
    }
    true
}

/// Sorts `spans` and returns the first pair that overlaps (the earlier one first).
fn first_overlap(spans: &mut [Span]) -> Option<(Span, Span)> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut reach: Option<Span> = None;
    for s in spans.iter() {
        if let Some(r) = reach {
            if s.start < r.end {
                return Some((r, *s));
            }
            if s.end > r.end {
                reach = Some(*s);
            }
        } else {
            reach = Some(*s);
        }
    }
    None
}

//! Output layouts: the complete byte plan of an output file (RAW, dynamic or fixed VHD,
//! QCOW2 v3), computed from the source's extents before any data is read.
//!
//! A [`Layout`] is a value: the total size and an ordered, gap-free list of [`Segment`]s, each
//! literal metadata bytes, a range of the source's virtual disk, zeros, or a metadata table
//! generated on demand (QCOW2 L2 and refcount blocks, so memory stays bounded by the number
//! of extents, not the disk size). Blocks and clusters holding no data are not allocated.

mod qcow2;
mod segments;
mod vhd;

use imgport_image::{DiskImage, Extent, ExtentKind};

pub use segments::{
    Layout, LayoutError, OutputFormat, Piece, SECTOR, Segment, TableBytes, VHD_BLOCK_SIZE,
};
use segments::{SegmentBuilder, round_up, rounding_notice};

impl Layout {
    /// Plans `format` output for `src`, from its extents only.
    pub fn plan(src: &dyn DiskImage, format: OutputFormat) -> Result<Layout, LayoutError> {
        let size = src.virtual_size();
        let data = data_extents(src)?;
        match format {
            OutputFormat::Raw => Ok(raw(size, &data, true)),
            OutputFormat::Vhd => vhd::dynamic(size, &data),
            OutputFormat::VhdFixed => vhd::fixed(size, &data),
            OutputFormat::Qcow2 => qcow2::plan(size, &data),
        }
    }

    /// The source's bytes as they are (no rounding): how a file is streamed unconverted.
    pub fn identity(src: &dyn DiskImage) -> Result<Layout, LayoutError> {
        let data = data_extents(src)?;
        Ok(raw(src.virtual_size(), &data, false))
    }
}

/// The source's data extents, checked to be sorted, disjoint and inside the disk.
fn data_extents(src: &dyn DiskImage) -> Result<Vec<Extent>, LayoutError> {
    let size = src.virtual_size();
    let mut last_end = 0u64;
    let mut out = Vec::new();
    for e in src.extents().map_err(LayoutError::Extents)? {
        let bad = || LayoutError::BadExtent {
            offset: e.offset,
            length: e.length,
            size,
        };
        let end = e.offset.checked_add(e.length).ok_or_else(bad)?;
        if e.offset < last_end || end > size {
            return Err(bad());
        }
        last_end = end;
        if e.kind == ExtentKind::Data && e.length > 0 {
            out.push(e);
        }
    }
    Ok(out)
}

fn raw(size: u64, data: &[Extent], pad_sector: bool) -> Layout {
    let virtual_size = if pad_sector {
        round_up(size, SECTOR).unwrap_or(size)
    } else {
        size
    };
    let notices = rounding_notice(
        "virtual size",
        size,
        virtual_size,
        "a whole number of 512-byte sectors",
    );
    let mut b = SegmentBuilder::new();
    let mut cursor = 0;
    b.virtual_range(data, &mut cursor, 0, virtual_size);
    b.layout(OutputFormat::Raw, size, virtual_size, notices)
}

#[cfg(test)]
mod tests {
    use super::segments::unit_runs;
    use super::*;

    fn ext(offset: u64, length: u64) -> Extent {
        Extent {
            offset,
            length,
            kind: ExtentKind::Data,
        }
    }

    #[test]
    fn virtual_range_interleaves_data_and_zeros() {
        let data = [ext(10, 5), ext(20, 10)];
        let mut b = SegmentBuilder::new();
        let mut c = 0;
        b.virtual_range(&data, &mut c, 0, 25);
        b.virtual_range(&data, &mut c, 25, 40);
        let l = b.layout(OutputFormat::Raw, 40, 40, Vec::new());
        assert_eq!(l.size, 40);
        let kinds: Vec<(u64, u64, bool)> = l
            .segments
            .iter()
            .map(|s| (s.offset, s.length, matches!(s.piece, Piece::Zero)))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, 10, true),
                (10, 5, false),
                (15, 5, true),
                (20, 10, false),
                (30, 10, true)
            ]
        );
    }

    #[test]
    fn unit_runs_merge_touching_units() {
        let data = [ext(0, 1), ext(100, 1), ext(250, 200), ext(1000, 1)];
        assert_eq!(unit_runs(&data, 100), vec![(0, 5), (10, 1)]);
    }
}

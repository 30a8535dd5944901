//! Test helpers that need this crate's types.

use imgport_testdata::push_range;

use crate::{DiskImage, ExtentKind};

/// Merged `[start, end)` ranges of `img`'s data extents.
pub fn data_ranges(img: &dyn DiskImage) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    for e in img.extents().unwrap() {
        if e.kind == ExtentKind::Data {
            push_range(&mut ranges, e.offset, e.end());
        }
    }
    ranges
}

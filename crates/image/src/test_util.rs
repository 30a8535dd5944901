//! Test helpers that need this crate's types.

use std::io::Write;
use std::sync::Arc;

use imgport_testdata::push_range;

use crate::{DiskImage, ExtentKind, Finding, ImageError, ImageFile};

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

/// The reader's `open` of one format: parses and judges a file, `None` when refused.
type OpenFn<T> = fn(Arc<ImageFile>, &mut Vec<Finding>) -> Result<Option<T>, ImageError>;

/// Writes `bytes` to a temporary file and opens it with `open`: the image (when accepted)
/// and every finding.
pub fn open_bytes<T>(bytes: &[u8], open: OpenFn<T>) -> (Option<T>, Vec<Finding>) {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.write_all(bytes).unwrap();
    let file = Arc::new(ImageFile::open(tmp.path()).unwrap());
    let mut findings = Vec::new();
    let img = open(file, &mut findings).unwrap();
    (img, findings)
}

/// Asserts that `bytes` are refused by `open` with `code`, the finding naming its field and
/// offset; returns that finding.
pub fn refused<T>(bytes: &[u8], open: OpenFn<T>, code: &str) -> Finding {
    let (img, findings) = open_bytes(bytes, open);
    assert!(img.is_none(), "{code}: opened; findings {findings:?}");
    let f = findings
        .iter()
        .find(|f| f.code == code && f.refuses())
        .unwrap_or_else(|| panic!("no refusal {code} in {findings:?}"))
        .clone();
    assert!(f.field.is_some() && f.offset.is_some(), "{f:?}");
    assert!(f.message.contains("offset"), "{f:?}");
    f
}

/// Asserts that four threads reading `img` at once, in interleaved chunks that straddle
/// blocks, each read the bytes of `raw`; `name` labels a failure.
pub fn assert_parallel_reads(name: &str, img: &dyn DiskImage, raw: &[u8]) {
    let chunk = (1 << 20) + 4097;
    std::thread::scope(|s| {
        for t in 0..4usize {
            s.spawn(move || {
                let mut buf = vec![0u8; chunk];
                let mut pos = t * chunk;
                while pos + chunk <= raw.len() {
                    img.read_at(&mut buf, pos as u64).unwrap();
                    assert!(
                        buf[..] == raw[pos..pos + chunk],
                        "{name} thread {t} at {pos}"
                    );
                    pos += 4 * chunk;
                }
            });
        }
    });
}

/// `img`'s extents as `(offset, length, kind)`, for comparing with a table.
pub fn extent_kinds(img: &dyn DiskImage) -> Vec<(u64, u64, ExtentKind)> {
    img.extents()
        .unwrap()
        .iter()
        .map(|e| (e.offset, e.length, e.kind))
        .collect()
}

/// The whole virtual disk of `img`, read in odd-sized chunks that straddle clusters, blocks
/// and tables.
pub fn read_in_odd_chunks(img: &dyn DiskImage) -> Vec<u8> {
    let size = img.virtual_size() as usize;
    let mut disk = vec![0u8; size];
    let mut pos = 0;
    while pos < size {
        let n = (3 << 20 | 777).min(size - pos);
        img.read_at(&mut disk[pos..pos + n], pos as u64).unwrap();
        pos += n;
    }
    disk
}

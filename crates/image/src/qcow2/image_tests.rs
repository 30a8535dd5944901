//! Tests against the cached images made by `scripts/make-testdata.sh`, with qemu-img as the
//! oracle: whole-disk contents of every content*.qcow2 variant against content.raw, data
//! ranges against `qemu-img map`, concurrent reads.

use crate::test_util::{assert_parallel_reads, data_ranges, read_in_odd_chunks};
use crate::{ExtentKind, OpenOptions, open};
use imgport_testdata::{QCOW2_CONTENT, cached, qemu_data_ranges};

#[test]
fn content_images_read_as_the_raw_disk_and_map_like_qemu() {
    let mut raw = std::fs::read(cached("content.raw")).unwrap();
    for (name, sub) in QCOW2_CONTENT {
        let path = cached(name);
        let opened = open(&path, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.report.subformat.as_deref(), Some(sub), "{name}");
        let img = opened.image;
        let size = img.virtual_size() as usize;
        assert_eq!(size, raw.len(), "{name}");
        let disk = read_in_odd_chunks(&*img);
        if name == "content-zero.qcow2" {
            // `qemu-io write -z 20M 1M` zeroed that range.
            raw[20 << 20..21 << 20].fill(0);
        }
        assert!(disk == raw, "{name}: contents differ from content.raw");
        let ours = data_ranges(img.as_ref());
        assert_eq!(ours, qemu_data_ranges(&path, "qcow2"), "{name}");
        let sum: u64 = ours.iter().map(|(s, e)| e - s).sum();
        assert_eq!(opened.report.allocated_size, Some(sum), "{name}");
        if name == "content-zero.qcow2" {
            raw = std::fs::read(cached("content.raw")).unwrap();
        }
    }
}

#[test]
fn zero_clusters_are_zero_extents() {
    let opened = open(&cached("content-zero.qcow2"), &OpenOptions::default()).unwrap();
    let ext = opened.image.extents().unwrap();
    let z = ext
        .iter()
        .find(|e| e.kind == ExtentKind::Zero)
        .expect("a zero extent");
    assert_eq!((z.offset, z.length), (20 << 20, 1 << 20));
}

#[test]
fn opening_large_images_reads_only_metadata() {
    for name in ["qcow2-40G.qcow2", "qcow2v2-40G.qcow2", "big.qcow2"] {
        let opened =
            open(&cached(name), &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let read = opened.file.bytes_read();
        assert!(read <= 1 << 20, "{name}: opening read {read} bytes");
    }
}

#[test]
fn concurrent_reads_agree_with_the_raw_disk() {
    let raw = std::fs::read(cached("content.raw")).unwrap();
    for name in ["content.qcow2", "content-zlib.qcow2", "content-extl2.qcow2"] {
        let img = open(&cached(name), &OpenOptions::default()).unwrap().image;
        assert_parallel_reads(name, &*img, &raw);
    }
}

//! Tests against the images of the `vmdk` test-data part (scripts/testdata/vmdk.sh), with
//! qemu-img as the oracle: every subformat reads as the raw source, sparse extents map like
//! `qemu-img map`, and opening reads metadata only.

use super::*;
use crate::test_util::{assert_parallel_reads, data_ranges, read_in_odd_chunks};
use crate::{OpenOptions, open};
use imgport_testdata::{cached, qemu_data_ranges};

/// Each image of the part and the `createType` it must report.
const IMAGES: [(&str, &str); 6] = [
    ("vmdk/monolithicSparse.vmdk", "monolithicSparse"),
    ("vmdk/streamOptimized.vmdk", "streamOptimized"),
    ("vmdk/gd-at-end.vmdk", "streamOptimized"),
    ("vmdk/monolithicFlat.vmdk", "monolithicFlat"),
    ("vmdk/twoGbMaxExtentSparse.vmdk", "twoGbMaxExtentSparse"),
    ("vmdk/twoGbMaxExtentFlat.vmdk", "twoGbMaxExtentFlat"),
];

#[test]
fn every_subformat_reads_as_the_raw_source() {
    let raw = std::fs::read(cached("vmdk/src.raw")).unwrap();
    for (name, sub) in IMAGES {
        let opened =
            open(&cached(name), &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.report.format, Some(ImageFormat::Vmdk), "{name}");
        assert_eq!(opened.report.subformat.as_deref(), Some(sub), "{name}");
        let img = opened.image;
        assert_eq!(img.virtual_size(), raw.len() as u64, "{name}");
        assert!(
            read_in_odd_chunks(&*img) == raw,
            "{name}: differs from src.raw"
        );
        assert_parallel_reads(name, &*img, &raw);
    }
}

#[test]
fn sparse_extents_map_like_qemu_and_opening_reads_metadata_only() {
    for name in [
        "vmdk/monolithicSparse.vmdk",
        "vmdk/streamOptimized.vmdk",
        "vmdk/gd-at-end.vmdk",
        "vmdk/twoGbMaxExtentSparse.vmdk",
        "vmdk/big-sparse.vmdk",
    ] {
        let path = cached(name);
        let opened = open(&path, &OpenOptions::default()).unwrap();
        assert_eq!(
            data_ranges(opened.image.as_ref()),
            qemu_data_ranges(&path, "vmdk"),
            "{name}"
        );
        let read = opened.file.bytes_read();
        assert!(read <= 128 << 10, "{name}: opening read {read} bytes");
    }
}

#[test]
fn split_extents_place_each_file_after_the_last() {
    for (name, kind) in [
        ("vmdk/big-sparse.vmdk", "sparse"),
        ("vmdk/big-flat.vmdk", "flat"),
    ] {
        let opened = open(&cached(name), &OpenOptions::default()).unwrap();
        let Some(crate::FormatDetails::Vmdk(d)) = &opened.report.details else {
            panic!("{name}: no VMDK details");
        };
        assert_eq!(d.extents.len(), 2, "{name}");
        assert!(d.extents.iter().all(|e| e.kind == kind), "{name}");
        assert_eq!(d.extents[1].disk_offset, d.extents[0].length, "{name}");
        let img = opened.image;
        assert_eq!(img.virtual_size(), 2100 << 20, "{name}");
        // qemu-io wrote 0x62 over [2047 MiB, 2049 MiB): across the split at 2 GiB.
        let mut buf = vec![0u8; 2 << 20];
        img.read_at(&mut buf, 2047 << 20).unwrap();
        assert!(buf.iter().all(|&b| b == 0x62), "{name}");
        let mut tail = vec![0u8; 1 << 20];
        img.read_at(&mut tail, 2099 << 20).unwrap();
        assert!(tail.iter().all(|&b| b == 0x63), "{name}");
        img.read_at(&mut tail, 1 << 30).unwrap();
        assert!(tail.iter().all(|&b| b == 0), "{name}");
    }
}

#[test]
fn the_stream_footer_gives_the_directory() {
    let opened = open(&cached("vmdk/gd-at-end.vmdk"), &OpenOptions::default()).unwrap();
    let Some(crate::FormatDetails::Vmdk(d)) = &opened.report.details else {
        panic!("no VMDK details");
    };
    let s = d.extents[0].sparse.as_ref().unwrap();
    assert!(s.gd_at_end && s.compressed, "{s:?}");
    assert_ne!(s.gd_offset_sectors, u64::MAX);
}

//! Tests against the `vhdx` test-data part (`scripts/testdata/vhdx.sh`): contents against
//! `src.raw`, the allocation map against the BAT (qemu's vhdx driver reports no block status:
//! `qemu-img map` calls the whole disk data, so it is no oracle here).

use crate::test_util::{assert_parallel_reads, data_ranges, read_in_odd_chunks};
use crate::{OpenOptions, open};
use imgport_testdata::cached;

#[test]
fn part_images_read_as_the_source_and_map_like_qemu() {
    let raw = std::fs::read(cached("vhdx/src.raw")).unwrap();
    for (name, sparse) in [
        ("vhdx/dynamic.vhdx", false),
        ("vhdx/fixed.vhdx", false),
        ("vhdx/block1m.vhdx", true),
        ("vhdx/block32m.vhdx", false),
        ("vhdx/sector4k.vhdx", true),
    ] {
        let path = cached(name);
        let opened = open(&path, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let img = opened.image;
        assert_eq!(read_in_odd_chunks(&*img), raw, "{name}");
        // Every non-zero byte lies in a data extent.
        let data = data_ranges(img.as_ref());
        for (i, _) in raw
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .step_by(4096)
        {
            let i = i as u64;
            assert!(
                data.iter().any(|&(s, e)| s <= i && i < e),
                "{name}: byte {i}"
            );
        }
        if sparse {
            // 24 blocks of 1 MiB, data in 2..5 MiB, 12..13 MiB and the last MiB.
            assert_eq!(
                data,
                [
                    (2 << 20, 5 << 20),
                    (12 << 20, 13 << 20),
                    (23 << 20, 24 << 20)
                ],
                "{name}"
            );
        }
        // Opening reads metadata only.
        assert!(
            opened.report.bytes_read < 1 << 20,
            "{name}: {}",
            opened.report.bytes_read
        );
    }
}

#[test]
fn concurrent_reads_agree_with_the_source() {
    let raw = std::fs::read(cached("vhdx/src.raw")).unwrap();
    let opened = open(&cached("vhdx/block1m.vhdx"), &OpenOptions::default()).unwrap();
    assert_parallel_reads("block1m.vhdx", &*opened.image, &raw);
}

//! Hostile VHDX (issue 24): the patched files of the `vhdx` test-data part
//! (scripts/testdata/vhdx.sh) and a dynamic VHDX truncated at every metadata boundary, under
//! the limits of the corpus ([`super::MAX_SECONDS`], [`super::MAX_RSS_KB`]).

use super::{Expect, Worst, around, check_all, le32, le64, run_cuts};
use crate::util::image;

/// The hostile images of the `vhdx` part (scripts/testdata/vhdx.sh, patched by vhdx.py).
const VHDX: &[&str] = &[
    "dirty-log.vhdx",
    "has-parent.vhdx",
    "parent-locator.vhdx",
    "bat-past-eof.vhdx",
    "region-count.vhdx",
    "metadata-count.vhdx",
    "item-length.vhdx",
    "unknown-region.vhdx",
    "unknown-item.vhdx",
];

#[test]
fn vhdx_hostile_part_is_refused_within_limits() {
    let mut worst = Worst::default();
    for name in VHDX {
        check_all(&image(&format!("vhdx/{name}")), Expect::Refused, &mut worst);
    }
    worst.print("vhdx part");
}

#[test]
fn dynamic_vhdx_truncated_at_every_metadata_boundary_is_refused() {
    let src = image("vhdx/block1m.vhdx");
    let d = std::fs::read(&src).unwrap();
    let size = d.len() as u64;
    // VHDX spec §2.2: identifier, headers at 64 and 128 KiB, region tables at 192 and
    // 256 KiB, then the log, the BAT and metadata regions; metadata items; payload blocks.
    let current = if le64(&d, 128 << 10 | 8) > le64(&d, 64 << 10 | 8) {
        128u64 << 10
    } else {
        64 << 10
    };
    let log_len = le32(&d, current + 68);
    let log = le64(&d, current + 72);
    let mut regions = Vec::new();
    for i in 0..le32(&d, (192 << 10) + 8) {
        let e = (192 << 10) + 16 + 32 * i;
        regions.push((le64(&d, e + 16), le32(&d, e + 24)));
    }
    // The BAT region is listed first by qemu-img, the metadata region second.
    let (bat, bat_len) = regions[0];
    let (meta, meta_len) = regions[1];
    let mut boundaries = vec![
        8,
        64 << 10,
        (64 << 10) + 4096,
        128 << 10,
        (128 << 10) + 4096,
        192 << 10,
        256 << 10,
        320 << 10,
        log,
        log + log_len,
        bat,
        bat + bat_len,
        meta,
        meta + (64 << 10),
        meta + meta_len,
        size - 1,
    ];
    for i in 0..u64::from(le16(&d, meta + 10)) {
        let e = meta + 32 + 32 * i;
        let (off, len) = (le32(&d, e + 16), le32(&d, e + 20));
        boundaries.extend([meta + off, meta + off + len]);
    }
    // Payload blocks of 1 MiB: the first present one and the end of the last.
    let blocks: Vec<u64> = (0..bat_len / 8)
        .map(|i| le64(&d, bat + 8 * i))
        .filter(|e| e & 7 == 6)
        .map(|e| (e >> 20) << 20)
        .collect();
    let data_end = blocks.iter().max().expect("block1m.vhdx has data") + (1 << 20);
    boundaries.extend([blocks[0], blocks[0] + (1 << 20)]);
    let mut worst = Worst::default();
    // Shorter than the identifier, the file is no VHDX (and reads as raw).
    let cuts: Vec<_> = around(&boundaries, size)
        .into_iter()
        .filter(|&c| c >= 8)
        .map(|c| {
            (
                c,
                if c < data_end {
                    Expect::Refused
                } else {
                    Expect::Handled
                },
            )
        })
        .collect();
    assert!(cuts.iter().filter(|c| c.1 == Expect::Refused).count() > 30);
    run_cuts(&src, &cuts, &mut worst);
    worst.print("vhdx truncations");
}

fn le16(d: &[u8], at: u64) -> u16 {
    u16::from_le_bytes(d[at as usize..at as usize + 2].try_into().unwrap())
}

//! Hostile VMDKs under the corpus limits ([`super::MAX_SECONDS`], [`super::MAX_RSS_KB`]):
//! the `hostile-*` images of scripts/testdata/vmdk.sh (extent names outside the descriptor's
//! directory, links, FIFOs, parents, a huge descriptor, tables past the end, a grain that
//! inflates past a grain) and single-file VMDKs truncated at every metadata boundary.

use super::{Expect, Worst, around, check_all, le32, le64, run_cuts};
use crate::util::{image, testdata};

/// The hostile images of the vmdk part, and what each must end in.
const HOSTILE_VMDK: &[(&str, Expect)] = &[
    ("hostile-absolute.vmdk", Expect::Refused),
    ("hostile-dotdot.vmdk", Expect::Refused),
    ("hostile-json.vmdk", Expect::Refused),
    ("hostile-symlink.vmdk", Expect::Refused),
    ("hostile-fifo.vmdk", Expect::Refused),
    ("hostile-self.vmdk", Expect::Refused),
    ("hostile-short.vmdk", Expect::Refused),
    ("hostile-parent.vmdk", Expect::Refused),
    ("hostile-parentcid.vmdk", Expect::Refused),
    ("hostile-huge-desc.vmdk", Expect::Refused),
    ("hostile-gd-past-eof.vmdk", Expect::Refused),
    ("hostile-gt-past-eof.vmdk", Expect::Refused),
    // Opens (the grain's marker is sound); reading the grain fails naming the file and rule.
    ("hostile-bomb.vmdk", Expect::Fails),
];

#[test]
fn hostile_vmdks_are_refused_within_limits() {
    let dir = testdata().join("vmdk");
    let mut built: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/make-testdata.sh)", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hostile-") && n.ends_with(".vmdk"))
        .collect();
    built.sort();
    let mut listed: Vec<String> = HOSTILE_VMDK.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        built, listed,
        "scripts/testdata/vmdk.sh and HOSTILE_VMDK differ"
    );
    let mut worst = Worst::default();
    for &(name, expect) in HOSTILE_VMDK {
        check_all(&image(&format!("vmdk/{name}")), expect, &mut worst);
    }
    worst.print("vmdk");
}

/// The metadata boundaries of a single-file sparse VMDK (spec "Hosted Sparse Extent Header"):
/// the header fields, the embedded descriptor, the grain directory, the first grain table,
/// and the first grain (`grain_len` bytes of it: a whole grain, or a compressed grain's
/// marker).
fn sparse_boundaries(d: &[u8], compressed: bool) -> (Vec<u64>, u64) {
    let desc_end = 512 * (le64(d, 28) + le64(d, 36));
    let gd = 512 * le64(d, 56);
    let gtes = le32(d, 44);
    let grain = 512 * le64(d, 20);
    let gd_len = 4 * (le64(d, 12).div_ceil(le64(d, 20)).div_ceil(gtes));
    let gt = 512 * le32(d, gd);
    let first = 512 * le32(d, gt);
    assert!(gt > 0 && first > 0, "no grain table or grain");
    let grain_end = if compressed {
        first + 12 + le32(d, first + 8)
    } else {
        first + grain
    };
    let boundaries = vec![
        4,
        12,
        64,
        512,
        desc_end,
        gd,
        gd + gd_len,
        gt,
        gt + 4 * gtes,
        first,
        first + 12,
        grain_end,
    ];
    (boundaries, grain_end)
}

#[test]
fn monolithic_sparse_truncated_at_every_metadata_boundary_is_refused() {
    let src = image("vmdk/monolithicSparse.vmdk");
    let d = std::fs::read(&src).unwrap();
    let (boundaries, _) = sparse_boundaries(&d, false);
    // Shorter than the magic, the file is no VMDK (and reads as raw); every other cut leaves
    // a table, or a grain, past the end. (The file's last bytes are the unused tail of the
    // partial last grain: a cut there loses nothing of the disk.)
    let cuts: Vec<_> = around(&boundaries, d.len() as u64)
        .into_iter()
        .filter(|&c| c >= 4)
        .map(|c| (c, Expect::Refused))
        .collect();
    let mut worst = Worst::default();
    run_cuts(&src, &cuts, &mut worst);
    worst.print("vmdk sparse truncations");
}

#[test]
fn stream_optimized_truncated_at_every_metadata_boundary_is_refused() {
    let mut worst = Worst::default();
    // VMware's layout: any cut loses the footer, so every cut is refused at opening.
    let src = image("vmdk/gd-at-end.vmdk");
    let d = std::fs::read(&src).unwrap();
    let size = d.len() as u64;
    let mut boundaries = vec![4, 512, size - 1536, size - 1024, size - 512, size - 1];
    boundaries.extend((1..8).map(|i| i * size / 8));
    let cuts: Vec<_> = around(&boundaries, size)
        .into_iter()
        .filter(|&c| c >= 4)
        .map(|c| (c, Expect::Refused))
        .collect();
    run_cuts(&src, &cuts, &mut worst);
    // qemu-img's layout (directory first): cuts before the first grain's marker ends are
    // refused at opening; a cut inside its compressed data fails the first read (inspection
    // reads the disk's first bytes), naming the file.
    let src = image("vmdk/streamOptimized.vmdk");
    let d = std::fs::read(&src).unwrap();
    let (boundaries, grain_end) = sparse_boundaries(&d, true);
    let marker_end = boundaries[10];
    let cuts: Vec<_> = around(&boundaries, d.len() as u64)
        .into_iter()
        .filter(|&c| c >= 4 && c < grain_end)
        .map(|c| {
            let expect = if c < marker_end {
                Expect::Refused
            } else {
                Expect::Fails
            };
            (c, expect)
        })
        .collect();
    run_cuts(&src, &cuts, &mut worst);
    worst.print("vmdk stream truncations");
}

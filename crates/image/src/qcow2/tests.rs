//! Byte-fixture tests: a small version 3 image built field by field (512-byte clusters), a
//! negative test for every rule of the verdict, and a sweep over every single-byte change
//! of its metadata.
//!
//! Kept whole: one fixture image and a negative test per verdict rule; splitting would repeat the
//! fixture.

use super::header::MAGIC;
use super::*;
use crate::ExtentKind;
use crate::test_util;
use flate2::write::DeflateEncoder;
use std::io::Write;

/// Cluster size of the fixture: the smallest, so tables are 512 bytes.
const CB: u32 = 9;
const CS: u64 = 1 << CB;
/// Virtual size: one and a half L2 tables (64 entries × 512 bytes = 32 KiB each).
const VSIZE: u64 = 48 << 10;
/// File layout, one cluster each.
const RT: u64 = CS; // refcount table
const RB: u64 = 2 * CS; // refcount block (never read)
const L1: u64 = 3 * CS; // L1 table, 2 entries
const L2: u64 = 4 * CS; // L2 table of L1 entry 0
const D0: u64 = 5 * CS; // guest cluster 0
const D1: u64 = 6 * CS; // guest cluster 1, host-contiguous with D0
const CMP: u64 = 7 * CS; // compressed guest cluster 4
const ZA: u64 = 8 * CS; // preallocated zero cluster (guest 5), filled with junk
const FILE_LEN: u64 = 9 * CS;
/// First byte of the header extension area.
const EXT: usize = 112;

fn put32(b: &mut [u8], off: u64, v: u32) {
    b[off as usize..off as usize + 4].copy_from_slice(&v.to_be_bytes());
}
fn put64(b: &mut [u8], off: u64, v: u64) {
    b[off as usize..off as usize + 8].copy_from_slice(&v.to_be_bytes());
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..CS).map(|i| seed.wrapping_add((i % 13) as u8)).collect()
}

fn deflated(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A compressed L2 entry for 512-byte clusters: x = 61 offset bits, then 1 sector bit.
fn compressed_entry(offset: u64, extra_sectors: u64) -> u64 {
    (1 << 62) | (extra_sectors << 61) | offset
}

/// The good fixture: data, zero, unallocated, compressed and zero-preallocated clusters.
fn image() -> Vec<u8> {
    let mut b = vec![0u8; FILE_LEN as usize];
    b[0..4].copy_from_slice(MAGIC); // magic
    put32(&mut b, 4, 3); // version
    put64(&mut b, 8, 0); // backing_file_offset: none
    put32(&mut b, 16, 0); // backing_file_size
    put32(&mut b, 20, CB); // cluster_bits
    put64(&mut b, 24, VSIZE); // size
    put32(&mut b, 32, 0); // crypt_method: none
    put32(&mut b, 36, 2); // l1_size: 2 entries cover 64 KiB
    put64(&mut b, 40, L1); // l1_table_offset
    put64(&mut b, 48, RT); // refcount_table_offset
    put32(&mut b, 56, 1); // refcount_table_clusters
    put32(&mut b, 60, 0); // nb_snapshots
    put64(&mut b, 64, 0); // snapshots_offset
    put64(&mut b, 72, 0); // incompatible_features
    put64(&mut b, 80, 0); // compatible_features
    put64(&mut b, 88, 0); // autoclear_features
    put32(&mut b, 96, 4); // refcount_order: 16-bit
    put32(&mut b, 100, 112); // header_length
    // 104 compression_type 0 (deflate), 105..112 padding; extension area: end marker.
    put64(&mut b, RT, RB | (1 << 63)); // refcount table → block (not checked by the reader)
    put64(&mut b, L1, L2 | (1 << 63)); // L1[0] → L2; L1[1] = 0 (unallocated table)
    let l2 = |b: &mut Vec<u8>, i: u64, e: u64| put64(b, L2 + 8 * i, e);
    l2(&mut b, 0, D0 | (1 << 63));
    l2(&mut b, 1, D1 | (1 << 63));
    l2(&mut b, 2, 1); // reads as zeros, nothing allocated
    // 3: unallocated
    let c = deflated(&pattern(0x40));
    assert!(c.len() < CS as usize - 100);
    l2(&mut b, 4, compressed_entry(CMP + 100, 0));
    l2(&mut b, 5, ZA | (1 << 63) | 1); // preallocated, reads as zeros
    b[D0 as usize..(D0 + CS) as usize].copy_from_slice(&pattern(0x10));
    b[D1 as usize..(D1 + CS) as usize].copy_from_slice(&pattern(0x80));
    b[(CMP + 100) as usize..(CMP + 100) as usize + c.len()].copy_from_slice(&c);
    b[ZA as usize..(ZA + CS) as usize].fill(0xEE);
    b
}

/// The guest disk the fixture describes.
fn expected_disk() -> Vec<u8> {
    let mut d = vec![0u8; VSIZE as usize];
    d[..512].copy_from_slice(&pattern(0x10));
    d[512..1024].copy_from_slice(&pattern(0x80));
    d[2048..2560].copy_from_slice(&pattern(0x40));
    d
}

fn open_bytes(bytes: &[u8]) -> (Option<Qcow2Image>, Vec<Finding>) {
    test_util::open_bytes(bytes, Qcow2Image::open)
}

/// Asserts that `bytes` are refused with `code`, the finding naming its field and offset.
fn refused(bytes: &[u8], code: &str) -> Finding {
    test_util::refused(bytes, Qcow2Image::open, code)
}

fn with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = image();
    f(&mut b);
    b
}

/// Appends an extension record at `pos` of the extension area (then an end marker).
fn add_ext(b: &mut [u8], pos: usize, kind: u32, data: &[u8]) -> usize {
    put32(b, pos as u64, kind);
    put32(b, pos as u64 + 4, data.len() as u32);
    b[pos + 8..pos + 8 + data.len()].copy_from_slice(data);
    let next = pos + 8 + data.len().div_ceil(8) * 8;
    b[next..next + 8].fill(0);
    next
}

#[test]
fn fixture_reads_every_cluster_kind() {
    let (img, findings) = open_bytes(&image());
    let img = img.unwrap_or_else(|| panic!("refused: {findings:?}"));
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(img.subformat(), "v3");
    assert_eq!(img.virtual_size(), VSIZE);
    let mut disk = vec![0xAAu8; VSIZE as usize];
    img.read_at(&mut disk, 0).unwrap();
    assert!(disk == expected_disk());
    // Unaligned reads inside and across clusters, and inside the compressed one.
    let want = expected_disk();
    for (off, len) in [(300u64, 900usize), (2100, 10), (1000, 1200), (VSIZE - 7, 7)] {
        let mut b = vec![0u8; len];
        img.read_at(&mut b, off).unwrap();
        assert_eq!(b, want[off as usize..off as usize + len], "{off}+{len}");
    }
    assert!(img.read_at(&mut [0u8; 2], VSIZE - 1).is_err());
    let kinds = test_util::extent_kinds(&img);
    use ExtentKind::*;
    assert_eq!(
        kinds,
        [
            (0, 1024, Data),
            (1024, 512, Zero),
            (1536, 512, Unallocated),
            (2048, 512, Data),
            (2560, 512, Zero),
            (3072, VSIZE - 3072, Unallocated),
        ]
    );
    assert_eq!(img.allocated_size().unwrap(), 1536);
    let d = img.details();
    assert_eq!((d.version, d.cluster_size, d.l2_tables), (3, 512, 1));
    assert_eq!(
        (d.data_clusters, d.compressed_clusters, d.zero_clusters),
        (2, 1, 2)
    );
    assert_eq!(d.compression, Compression::Deflate);
}

#[test]
fn version_must_be_2_or_3() {
    for version in [0, 1, 4, 0x0100_0003] {
        let f = refused(&with(|b| put32(b, 4, version)), "qcow2.version");
        assert_eq!(f.offset, Some(4));
    }
}

#[test]
fn truncated_headers_are_refused() {
    refused(&image()[..60], "qcow2.truncated_header");
    refused(&image()[..100], "qcow2.truncated_header"); // v3 needs 104
}

#[test]
fn version_2_reads_no_feature_fields() {
    // A v2 header ends at 72: the bytes after it are extensions, never flags. The corrupt
    // and bit-5 patterns of a v3 header are an end marker there.
    let v2 = |b: &mut Vec<u8>| {
        put32(b, 4, 2);
        b[72..112].fill(0);
        put64(b, L2 + 16, 0); // no zero flag in v2
        put64(b, L2 + 40, 0);
    };
    for bits in [0u64, 0x02, 0x20] {
        let (img, findings) = open_bytes(&with(|b| {
            v2(b);
            put64(b, 72, bits);
        }));
        let img = img.unwrap_or_else(|| panic!("{bits:#x}: {findings:?}"));
        assert_eq!(img.subformat(), "v2");
        assert_eq!(img.details().refcount_bits, 16);
    }
    // Version 2 has no zero flag: entry 2 (bit 0 only) sets a reserved bit there.
    let f = refused(
        &with(|b| {
            v2(b);
            put64(b, L2 + 40, 1);
        }),
        "qcow2.l2_entry_reserved",
    );
    assert_eq!(f.offset, Some(L2 + 40));
}

#[test]
fn cluster_bits_are_bounded() {
    for bits in [0, 8, 22, 63, 64, u32::MAX] {
        refused(&with(|b| put32(b, 20, bits)), "qcow2.cluster_bits");
    }
    // Extended L2 entries need 16 KiB clusters.
    let f = refused(&with(|b| put64(b, 72, 1 << 4)), "qcow2.cluster_bits");
    assert_eq!(f.offset, Some(20));
}

#[test]
fn header_length_rules() {
    for len in [0u32, 72, 100, 108, 113, 1024] {
        refused(&with(|b| put32(b, 100, len)), "qcow2.header_length");
    }
    // 104 (no compression type byte) is fine.
    let (img, f) = open_bytes(&with(|b| put32(b, 100, 104)));
    assert!(img.is_some(), "{f:?}");
}

#[test]
fn refcount_order_at_most_6() {
    refused(&with(|b| put32(b, 96, 7)), "qcow2.refcount_order");
    let (img, _) = open_bytes(&with(|b| put32(b, 96, 6)));
    assert_eq!(img.unwrap().details().refcount_bits, 64);
}

#[test]
fn dirty_warns_and_lazy_refcounts_pass() {
    let (img, findings) = open_bytes(&with(|b| {
        put64(b, 72, 1);
        put64(b, 80, 1);
    }));
    let img = img.unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, "qcow2.dirty");
    assert_eq!(findings[0].severity, Severity::Warning);
    assert!(img.details().dirty && img.details().lazy_refcounts);
}

#[test]
fn corrupt_and_unknown_incompatible_bits_are_refused() {
    refused(&with(|b| put64(b, 72, 1 << 1)), "qcow2.corrupt");
    for bit in [5, 12, 63] {
        let f = refused(
            &with(|b| put64(b, 72, 1 << bit)),
            "qcow2.unknown_incompatible",
        );
        assert!(f.message.contains(&bit.to_string()), "{f:?}");
    }
    // Unknown compatible and autoclear bits are harmless.
    let (img, f) = open_bytes(&with(|b| {
        put64(b, 80, 1 << 40);
        put64(b, 88, 1 << 40);
    }));
    assert!(img.is_some(), "{f:?}");
}

#[test]
fn compression_type_must_agree_with_its_bit() {
    refused(&with(|b| b[104] = 1), "qcow2.compression_type");
    refused(&with(|b| put64(b, 72, 1 << 3)), "qcow2.compression_type");
    refused(
        &with(|b| {
            b[104] = 2;
            put64(b, 72, 1 << 3);
        }),
        "qcow2.compression_type",
    );
    // The type byte is not read when header_length is 104.
    refused(
        &with(|b| {
            put32(b, 100, 104);
            put64(b, 72, 1 << 3);
            b[104] = 1;
        }),
        "qcow2.compression_type",
    );
}

#[test]
fn any_encryption_is_refused() {
    for m in [1, 2, 3] {
        let f = refused(&with(|b| put32(b, 32, m)), "qcow2.encrypted");
        assert_eq!(f.offset, Some(32));
    }
    // A LUKS header pointer with crypt_method 0.
    let f = refused(
        &with(|b| {
            add_ext(b, EXT, extensions::EXT_FDE, &[0; 16]);
        }),
        "qcow2.encrypted",
    );
    assert_eq!(f.offset, Some(EXT as u64));
}

#[test]
fn external_data_files_are_refused() {
    refused(&with(|b| put64(b, 72, 1 << 2)), "qcow2.data_file");
    let f = refused(
        &with(|b| {
            add_ext(
                b,
                EXT,
                extensions::EXT_DATA_FILE,
                b"json:{\"x\":\"/etc/shadow\"}",
            );
        }),
        "qcow2.data_file",
    );
    assert!(f.message.contains("/etc/shadow") && f.message.contains("json:"));
    refused(
        &with(|b| put64(b, 88, 1 << 1)),
        "qcow2.raw_data_without_data_file",
    );
}

#[test]
fn backing_files_are_refused_and_named() {
    let name = b"json:{\"file.filename\":\"/etc/shadow\"}";
    let f = refused(
        &with(|b| {
            put64(b, 8, 400);
            put32(b, 16, name.len() as u32);
            b[400..400 + name.len()].copy_from_slice(name);
        }),
        "qcow2.backing_file",
    );
    assert_eq!(f.offset, Some(8));
    assert!(
        f.message.contains("/etc/shadow") && f.message.contains("json:"),
        "{f:?}"
    );
    // A name past the first cluster, or too long, is still a refusal.
    let f = refused(
        &with(|b| {
            put64(b, 8, 4000);
            put32(b, 16, 5000);
        }),
        "qcow2.backing_file",
    );
    assert!(f.message.contains("1023"), "{f:?}");
}

#[test]
fn l1_table_rules() {
    refused(&with(|b| put32(b, 36, 1)), "qcow2.l1_too_small");
    refused(
        &with(|b| put32(b, 36, (32 << 20) / 8 + 1)),
        "qcow2.l1_too_large",
    );
    refused(&with(|b| put64(b, 40, L1 + 8)), "qcow2.l1_table_offset");
    refused(&with(|b| put64(b, 40, FILE_LEN)), "qcow2.l1_table_offset");
    refused(&with(|b| put64(b, 40, 0)), "qcow2.l1_table_offset");
    refused(
        &with(|b| put64(b, 40, u64::MAX - 511)),
        "qcow2.l1_table_offset",
    );
    // A larger L1 than needed is fine (VM state lives past the disk).
    let (img, f) = open_bytes(&with(|b| put32(b, 36, 3)));
    assert!(img.is_some(), "{f:?}");
}

#[test]
fn refcount_table_rules() {
    refused(&with(|b| put32(b, 56, 0)), "qcow2.refcount_table_clusters");
    refused(
        &with(|b| put32(b, 56, (8 << 20) / 512 + 1)),
        "qcow2.refcount_table_clusters",
    );
    refused(
        &with(|b| put64(b, 48, RT + 1)),
        "qcow2.refcount_table_offset",
    );
    refused(
        &with(|b| put64(b, 48, FILE_LEN)),
        "qcow2.refcount_table_offset",
    );
    refused(&with(|b| put64(b, 48, 0)), "qcow2.refcount_table_offset");
}

#[test]
fn l1_entry_rules() {
    for (entry, code) in [
        (L2 | 1, "qcow2.l1_entry_reserved"),
        (L2 | (1 << 60), "qcow2.l1_entry_reserved"),
        (L2 + 1024 * 1024 * 1024, "qcow2.l1_entry_past_eof"),
        (FILE_LEN, "qcow2.l1_entry_past_eof"),
    ] {
        let f = refused(&with(|b| put64(b, L1, entry)), code);
        assert_eq!(f.offset, Some(L1), "{code}");
    }
    // Unaligned needs a cluster larger than the 512-byte offset granularity.
    let geo = Geometry {
        cluster_bits: 16,
        cluster_size: 65536,
        l2_entries: 8192,
        extended: false,
        v3: true,
        compression: Compression::Deflate,
        file_size: 1 << 30,
        virtual_size: 1 << 30,
    };
    assert_eq!(
        geo.l1_entry(0x1_0200).unwrap_err().rule,
        "l1_entry_unaligned"
    );
    assert_eq!(
        geo.l2_entry(0x1_0200, 0).unwrap_err().rule,
        "l2_entry_unaligned"
    );
}

#[test]
fn l2_tables_must_not_overlap_metadata_or_each_other() {
    for target in [RT, L1] {
        refused(&with(|b| put64(b, L1, target)), "qcow2.l2_table_overlap");
    }
    refused(&with(|b| put64(b, L1 + 8, L2)), "qcow2.l2_table_shared");
}

#[test]
fn l2_entry_rules() {
    for (entry, code) in [
        (D0 | 2, "qcow2.l2_entry_reserved"),
        (D0 | (1 << 57), "qcow2.l2_entry_reserved"),
        (FILE_LEN, "qcow2.l2_entry_past_eof"),
        (1 << 50, "qcow2.l2_entry_past_eof"),
        (1 << 63, "qcow2.l2_entry_invalid"),
        (compressed_entry(FILE_LEN, 0), "qcow2.compressed_past_eof"),
        (
            compressed_entry(FILE_LEN - 100, 1),
            "qcow2.compressed_past_eof",
        ),
        (compressed_entry(100, 0), "qcow2.compressed_past_eof"),
        (
            compressed_entry(CMP, 0) | (1 << 63),
            "qcow2.l2_entry_reserved",
        ),
    ] {
        let f = refused(&with(|b| put64(b, L2 + 24, entry)), code);
        assert_eq!(f.offset, Some(L2 + 24), "{code}");
        assert!(
            f.message.contains("entry 3") && f.message.contains("2048"),
            "{f:?}"
        );
    }
    // Entries past the virtual size are never looked at.
    let (img, f) = open_bytes(&with(|b| {
        put64(b, 24, 1024);
        put64(b, L2 + 24, 2);
    }));
    assert!(img.is_some(), "{f:?}");
}

#[test]
fn size_not_a_sector_multiple_warns_and_rounds_down() {
    let (img, f) = open_bytes(&with(|b| put64(b, 24, VSIZE - 100)));
    assert_eq!(img.unwrap().virtual_size(), VSIZE - 512);
    assert_eq!(f[0].code, "qcow2.size_not_sector_multiple");
}

#[test]
fn snapshots_are_listed_and_bounded() {
    // Two clusters appended: the snapshot table, then the snapshot's own L1 table (sharing
    // a cluster with any other metadata is refused by the overlap checks).
    let snap = with(|b| {
        b.resize((FILE_LEN + 2 * CS) as usize, 0);
        put32(b, 60, 1);
        put64(b, 64, FILE_LEN);
        let e = FILE_LEN;
        put64(b, e, FILE_LEN + CS); // snapshot L1 (never read)
        put32(b, e + 8, 2);
        b[(e + 12) as usize..(e + 16) as usize].copy_from_slice(&[0, 1, 0, 5]); // id 1, name 5
        put32(b, e + 16, 1_700_000_000);
        put32(b, e + 36, 16); // extra data: vm state size, disk size
        put64(b, e + 48, VSIZE);
        b[(e + 56) as usize] = b'1';
        b[(e + 57) as usize..(e + 62) as usize].copy_from_slice(b"snap1");
    });
    let (img, f) = open_bytes(&snap);
    let img = img.unwrap_or_else(|| panic!("{f:?}"));
    assert_eq!(f[0].code, "qcow2.snapshots");
    assert_eq!(f[0].severity, Severity::Info);
    assert!(f[0].message.contains("\"snap1\""));
    let s = img.details().snapshots;
    assert_eq!((s.count, s.truncated), (1, false));
    assert_eq!(s.listed[0].name, "snap1");
    assert_eq!(s.listed[0].disk_size, Some(VSIZE));
    // Entries that run past the file, too many snapshots, a misplaced table.
    refused(
        &with(|b| {
            put32(b, 60, 3);
            put64(b, 64, ZA);
            put32(b, ZA + 36, 1024);
        }),
        "qcow2.snapshot_table",
    );
    refused(&with(|b| put32(b, 60, 65537)), "qcow2.snapshots");
    refused(
        &with(|b| {
            put32(b, 60, 1);
            put64(b, 64, FILE_LEN);
        }),
        "qcow2.snapshots_offset",
    );
}

#[test]
fn metadata_overlaps_are_refused_as_qemu_overlap_check_all() {
    // Guest data clusters pointing into metadata: refcount table and block, L1, the
    // L2 table itself.
    for target in [RT, RB, L1, L2] {
        let f = refused(
            &with(|b| {
                put64(b, L2, target | (1 << 63));
                // The fixture's refcount table entry sets bit 63, which is not part of the
                // offset (bits 9-63 are, qcow2.rst): make it point at RB for real.
                put64(b, RT, RB);
            }),
            "qcow2.data_overlaps_metadata",
        );
        assert_eq!(f.offset, Some(target), "{f:?}");
    }
    // A compressed cluster whose bytes lie in the L1 table.
    refused(
        &with(|b| put64(b, L2 + 4 * 8, compressed_entry(L1 + 8, 0))),
        "qcow2.data_overlaps_metadata",
    );
    // Two metadata structures sharing bytes: a refcount block on the L2 table, a snapshot
    // table on the refcount block, a snapshot's L1 table on the active one.
    refused(&with(|b| put64(b, RT, L2)), "qcow2.metadata_overlap");
    refused(
        &with(|b| {
            b.resize((FILE_LEN + CS) as usize, 0);
            put64(b, RT, RB);
            put32(b, 60, 1);
            put64(b, 64, RB);
        }),
        "qcow2.metadata_overlap",
    );
    refused(
        &with(|b| {
            b.resize((FILE_LEN + CS) as usize, 0);
            put32(b, 60, 1);
            put64(b, 64, FILE_LEN);
            put64(b, FILE_LEN, L1);
            put32(b, FILE_LEN + 8, 2);
        }),
        "qcow2.metadata_overlap",
    );
}

#[test]
fn a_bitmap_directory_must_lie_in_the_file() {
    // The bitmaps extension (nb_bitmaps, reserved, directory size, directory offset) with
    // autoclear bit 0 set, so QEMU would use it.
    let bitmaps = |dir_offset: u64, dir_size: u64| {
        with(move |b| {
            put64(b, 88, 1);
            let mut data = [0u8; 24];
            data[..4].copy_from_slice(&1u32.to_be_bytes());
            data[8..16].copy_from_slice(&dir_size.to_be_bytes());
            data[16..24].copy_from_slice(&dir_offset.to_be_bytes());
            add_ext(b, EXT, extensions::EXT_BITMAPS, &data);
            // One directory entry: its bitmap table in the appended cluster.
            b.resize((FILE_LEN + 2 * CS) as usize, 0);
            put64(b, FILE_LEN, FILE_LEN + CS); // bitmap_table_offset
            put32(b, FILE_LEN + 8, 1); // bitmap_table_size
            b[(FILE_LEN + 18) as usize..(FILE_LEN + 20) as usize].copy_from_slice(&[0, 2]);
        })
    };
    let (img, f) = open_bytes(&bitmaps(FILE_LEN, 32));
    assert!(img.is_some(), "{f:?}");
    refused(&bitmaps(FILE_LEN + 64 * CS, 32), "qcow2.bitmap_directory");
    refused(&bitmaps(FILE_LEN, 0), "qcow2.bitmap_directory");
    // A bitmap table on the L1 table.
    let mut b = bitmaps(FILE_LEN, 32);
    put64(&mut b, FILE_LEN, L1);
    refused(&b, "qcow2.metadata_overlap");
}

#[test]
fn extension_area_rules_apply_to_the_image() {
    refused(
        &with(|b| {
            put32(b, EXT as u64, 0x1234);
            put32(b, EXT as u64 + 4, 4096);
        }),
        "qcow2.extension_length",
    );
    refused(
        &with(|b| {
            let n = add_ext(b, EXT, extensions::EXT_BACKING_FORMAT, b"raw");
            add_ext(b, n, extensions::EXT_BACKING_FORMAT, b"raw");
        }),
        "qcow2.extension_duplicate",
    );
    let (img, f) = open_bytes(&with(|b| {
        add_ext(b, EXT, 0x7777_0000, b"future");
    }));
    let ext = img.unwrap_or_else(|| panic!("{f:?}")).details().extensions;
    assert_eq!(ext[0].name, "unknown");
}

mod reads;

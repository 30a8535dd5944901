//! Unit tests of the VMDK rules: a small synthetic monolithicSparse (and stream-optimized)
//! file and descriptor files in a temporary directory, each broken in one way per rule.

use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::test_util::{open_bytes, refused};
use flate2::write::ZlibEncoder;

const CAPACITY: u64 = 64; // sectors: 8 grains of 8 sectors, 2 tables of 4 entries
const GRAIN: u64 = 8;
const GTES: u32 = 4;
const GD: u64 = 3; // sector of the directory
const GT0: u64 = 4;
const GT1: u64 = 5;

fn put32(b: &mut [u8], at: u64, v: u32) {
    b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: u64, v: u64) {
    b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
}

fn descriptor(create_type: &str, extents: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n{extents}\n\n# The Disk Data Base\nddb.adapterType = \"ide\"\n"
    )
}

/// Header fields of the synthetic image.
fn header(b: &mut [u8], flags: u32, algorithm: u16) {
    b[..4].copy_from_slice(b"KDMV");
    put32(b, 4, 1);
    put32(b, 8, flags);
    put64(b, 12, CAPACITY);
    put64(b, 20, GRAIN);
    put64(b, 28, 1);
    put64(b, 36, 2);
    put32(b, 44, GTES);
    put64(b, 56, GD);
    put64(b, 64, 8);
    b[73..77].copy_from_slice(b"\n \r\n");
    b[77..79].copy_from_slice(&algorithm.to_le_bytes());
}

/// A monolithicSparse disk of 32 KiB: grain 0 holds 0x11, grain 5 holds 0x22, grain 6 is a
/// zeroed grain (entry 1), the rest is unallocated.
fn sparse_with(text: &str) -> Vec<u8> {
    let mut b = vec![0u8; 24 * 512];
    header(&mut b, 1 | 4, 0);
    b[512..512 + text.len()].copy_from_slice(text.as_bytes());
    put32(&mut b, GD * 512, GT0 as u32);
    put32(&mut b, GD * 512 + 4, GT1 as u32);
    put32(&mut b, GT0 * 512, 8);
    put32(&mut b, GT1 * 512 + 4, 16);
    put32(&mut b, GT1 * 512 + 8, 1);
    b[8 * 512..16 * 512].fill(0x11);
    b[16 * 512..24 * 512].fill(0x22);
    b
}

fn sparse() -> Vec<u8> {
    sparse_with(&descriptor("monolithicSparse", "RW 64 SPARSE \"t.vmdk\""))
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The same disk stream-optimized: grain 0 (0x11) compressed behind its marker at sector 8.
fn stream_with(lba: u64, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 24 * 512];
    header(&mut b, 1 | (1 << 16) | (1 << 17), 1);
    let text = descriptor("streamOptimized", "RW 64 SPARSE \"t.vmdk\"");
    b[512..512 + text.len()].copy_from_slice(text.as_bytes());
    put32(&mut b, GD * 512, GT0 as u32);
    put32(&mut b, GT0 * 512, 8);
    let z = zlib(data);
    put64(&mut b, 8 * 512, lba);
    put32(&mut b, 8 * 512 + 8, z.len() as u32);
    b[8 * 512 + 12..8 * 512 + 12 + z.len()].copy_from_slice(&z);
    b
}

fn open_ok(bytes: &[u8]) -> VmdkImage {
    let (img, findings) = open_bytes(bytes, VmdkImage::open);
    img.unwrap_or_else(|| panic!("refused: {findings:?}"))
}

fn broken(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = sparse();
    edit(&mut b);
    b
}

#[test]
fn the_synthetic_disk_reads_and_maps_its_grains() {
    let img = open_ok(&sparse());
    assert_eq!(img.virtual_size(), CAPACITY * 512);
    let mut disk = vec![0xffu8; (CAPACITY * 512) as usize];
    img.read_at(&mut disk, 0).unwrap();
    assert!(disk[..4096].iter().all(|&b| b == 0x11));
    assert!(disk[4096..5 * 4096].iter().all(|&b| b == 0));
    assert!(disk[5 * 4096..6 * 4096].iter().all(|&b| b == 0x22));
    assert!(disk[6 * 4096..].iter().all(|&b| b == 0));
    let kinds: Vec<_> = img
        .extents()
        .unwrap()
        .iter()
        .map(|e| (e.offset / 4096, e.length / 4096, e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, 1, ExtentKind::Data),
            (1, 4, ExtentKind::Unallocated),
            (5, 1, ExtentKind::Data),
            (6, 1, ExtentKind::Zero),
            (7, 1, ExtentKind::Unallocated),
        ]
    );
}

#[test]
fn header_rules() {
    let open = VmdkImage::open;
    refused(&broken(|b| put32(b, 4, 4)), open, "vmdk.version");
    refused(&broken(|b| put32(b, 8, 1 << 16)), open, "vmdk.flags");
    refused(
        &broken(|b| b[77..79].copy_from_slice(&1u16.to_le_bytes())),
        open,
        "vmdk.compression",
    );
    refused(
        &broken(|b| b[73..77].copy_from_slice(b"\n \n\n")),
        open,
        "vmdk.newline_test",
    );
    refused(&broken(|b| put64(b, 12, 0)), open, "vmdk.capacity");
    refused(&broken(|b| put64(b, 12, 1 << 40)), open, "vmdk.capacity");
    refused(&broken(|b| put64(b, 20, 3)), open, "vmdk.grain_size");
    refused(&broken(|b| put64(b, 20, 4096)), open, "vmdk.grain_size");
    refused(&broken(|b| put32(b, 44, 0)), open, "vmdk.gtes_per_gt");
    refused(&broken(|b| put32(b, 44, 513)), open, "vmdk.gtes_per_gt");
    refused(
        &broken(|b| put64(b, 36, 4096)),
        open,
        "vmdk.descriptor_size",
    );
    refused(&broken(|b| put64(b, 36, 0)), open, "vmdk.descriptor_size");
    refused(&broken(|b| put64(b, 28, 2)), open, "vmdk.descriptor_offset");
    refused(&broken(|b| put64(b, 36, 100)), open, "vmdk.truncated");
    refused(&broken(|b| b.truncate(300)), open, "vmdk.truncated");
    refused(&broken(|b| put64(b, 56, u64::MAX)), open, "vmdk.gd_offset");
}

#[test]
fn table_and_grain_rules() {
    let open = VmdkImage::open;
    refused(&broken(|b| put64(b, 56, 0)), open, "vmdk.gd_past_eof");
    refused(&broken(|b| put64(b, 56, 1 << 40)), open, "vmdk.gd_past_eof");
    refused(
        &broken(|b| put64(b, 56, u64::MAX - 1)),
        open,
        "vmdk.gd_past_eof",
    );
    refused(
        &broken(|b| put32(b, GD * 512 + 4, 1 << 30)),
        open,
        "vmdk.gt_past_eof",
    );
    // Two directory entries share one table; a table inside the descriptor.
    refused(
        &broken(|b| put32(b, GD * 512 + 4, GT0 as u32)),
        open,
        "vmdk.metadata_overlap",
    );
    refused(
        &broken(|b| put32(b, GD * 512, 2)),
        open,
        "vmdk.metadata_overlap",
    );
    refused(
        &broken(|b| put32(b, GT0 * 512, 23)),
        open,
        "vmdk.grain_past_eof",
    );
    refused(
        &broken(|b| put32(b, GT1 * 512 + 4, 10)),
        open,
        "vmdk.grain_overlap",
    );
    refused(
        &broken(|b| put32(b, GT0 * 512, 4)),
        open,
        "vmdk.grain_overlap",
    );
    // Without the zeroed-grain flag, entry 1 is a grain at sector 1: inside the descriptor.
    refused(&broken(|b| put32(b, 8, 1)), open, "vmdk.grain_overlap");
}

#[test]
fn embedded_descriptor_rules() {
    let open = VmdkImage::open;
    let with = |ct: &str, ext: &str| sparse_with(&descriptor(ct, ext));
    refused(
        &with("vmfs", "RW 64 SPARSE \"t.vmdk\""),
        open,
        "vmdk.create_type",
    );
    refused(
        &with("streamOptimized", "RW 64 SPARSE \"t.vmdk\""),
        open,
        "vmdk.create_type",
    );
    refused(
        &with(
            "monolithicSparse",
            "RW 32 SPARSE \"t.vmdk\"\nRW 32 SPARSE \"u.vmdk\"",
        ),
        open,
        "vmdk.extent_count",
    );
    refused(
        &with("monolithicSparse", "RW 63 SPARSE \"t.vmdk\""),
        open,
        "vmdk.extent_size",
    );
    refused(
        &with("monolithicSparse", "RW 64 FLAT \"t.vmdk\" 0"),
        open,
        "vmdk.extent_type",
    );
    refused(
        &with("monolithicSparse", "RW 64 VMFS \"t.vmdk\""),
        open,
        "vmdk.extent_type",
    );
    refused(
        &with("monolithicSparse", "RW sixty SPARSE \"t.vmdk\""),
        open,
        "vmdk.extent_line",
    );
    refused(
        &with("monolithicSparse", "RW 64 SPARSE t.vmdk"),
        open,
        "vmdk.extent_line",
    );
    refused(
        &with("monolithicSparse", "RW 64 SPARSE \"../t.vmdk\""),
        open,
        "vmdk.extent_name",
    );
    refused(
        &with("monolithicSparse", "this is not a descriptor line"),
        open,
        "vmdk.descriptor_line",
    );
    refused(&with("monolithicSparse", ""), open, "vmdk.no_extents");
    let text = descriptor("monolithicSparse", "RW 64 SPARSE \"t.vmdk\"");
    refused(
        &sparse_with(&text.replace("parentCID=ffffffff", "parentCID=1234abcd")),
        open,
        "vmdk.differencing",
    );
    refused(
        &sparse_with(&format!("{text}parentFileNameHint=\"base.vmdk\"\n")),
        open,
        "vmdk.differencing",
    );
    refused(
        &sparse_with(&format!("{text}\x1b[2J\n")),
        open,
        "vmdk.descriptor_text",
    );
    refused(
        &sparse_with(&text.replace("createType=\"monolithicSparse\"\n", "")),
        open,
        "vmdk.create_type",
    );
    let long = format!("createType=\"{}\"", "x".repeat(64));
    refused(
        &sparse_with(&text.replace("createType=\"monolithicSparse\"", &long)),
        open,
        "vmdk.create_type",
    );
}

#[test]
fn extent_names_stay_in_the_descriptors_directory() {
    for bad in [
        "",
        "/etc/hosts",
        "../x",
        "a/b",
        "a\\b",
        ".",
        "..",
        "json:{}",
        "nbd:host",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    for good in ["disk-flat.vmdk", "disk s001.vmdk", "..disk"] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn compressed_grains_are_checked_when_read() {
    let grain = vec![0x11u8; 4096];
    let img = open_ok(&stream_with(0, &grain));
    let mut buf = vec![0u8; 8192];
    img.read_at(&mut buf, 0).unwrap();
    assert!(buf[..4096].iter().all(|&b| b == 0x11) && buf[4096..].iter().all(|&b| b == 0));
    let mut part = vec![0u8; 100];
    img.read_at(&mut part, 4000).unwrap();
    assert!(part[..96].iter().all(|&b| b == 0x11) && part[96..].iter().all(|&b| b == 0));

    let corrupt = |bytes: Vec<u8>, field: &str| {
        let img = open_ok(&bytes);
        let e = img.read_at(&mut vec![0u8; 4096], 0).unwrap_err();
        assert!(
            matches!(&e, ImageError::Corrupt { field: f, offset: 4096, .. } if f == field),
            "{e}"
        );
    };
    corrupt(stream_with(8, &grain), "grain marker lba");
    corrupt(stream_with(0, &vec![0u8; 4097]), "compressed grain");
    corrupt(stream_with(0, &[0u8; 100]), "compressed grain");
    let mut b = stream_with(0, &grain);
    put32(&mut b, 8 * 512 + 8, 0);
    corrupt(b, "grain marker size");
    // A marker whose size passes the end of the file is a truncation naming the offset.
    let mut b = stream_with(0, &grain);
    put32(&mut b, 8 * 512 + 8, 8190);
    let img = open_ok(&b);
    let e = img.read_at(&mut vec![0u8; 4096], 0).unwrap_err();
    assert!(matches!(e, ImageError::Truncated { .. }), "{e}");
}

#[test]
fn a_stream_header_needs_its_footer_when_the_directory_is_at_the_end() {
    let mut b = stream_with(0, &[0x11u8; 4096]);
    put64(&mut b, 56, u64::MAX);
    refused(&b, VmdkImage::open, "vmdk.footer");
    // With the footer marker, a footer holding the real offset and the end-of-stream marker.
    let mut footer = b[..512].to_vec();
    put64(&mut footer, 56, GD);
    let mut marker = vec![0u8; 512];
    put64(&mut marker, 0, 1);
    put32(&mut marker, 12, 3);
    b.extend_from_slice(&marker);
    b.extend_from_slice(&footer);
    b.extend_from_slice(&[0u8; 512]);
    let img = open_ok(&b);
    let mut buf = vec![0u8; 4096];
    img.read_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|&x| x == 0x11));
    // A footer that differs from the header, or that points to another footer.
    let n = b.len();
    let mut c = b.clone();
    put64(&mut c, (n - 1024 + 12) as u64, CAPACITY * 2);
    refused(&c, VmdkImage::open, "vmdk.footer");
    let mut c = b.clone();
    put64(&mut c, (n - 1024 + 56) as u64, u64::MAX);
    refused(&c, VmdkImage::open, "vmdk.footer");
    let mut c = b.clone();
    put32(&mut c, (n - 1536 + 12) as u64, 2);
    refused(&c, VmdkImage::open, "vmdk.footer");
    let mut c = b;
    c[n - 100] = 1;
    refused(&c, VmdkImage::open, "vmdk.footer");
}

/// Writes `files` into a temporary directory and opens `disk.vmdk` there.
fn open_dir(files: &[(&str, &[u8])]) -> (Option<VmdkImage>, Vec<Finding>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let file = Arc::new(ImageFile::open(&dir.path().join("disk.vmdk")).unwrap());
    let mut findings = Vec::new();
    let img = VmdkImage::open(file, &mut findings).unwrap();
    (img, findings, dir)
}

fn refused_dir(files: &[(&str, &[u8])], code: &str) -> Finding {
    let (img, findings, _dir) = open_dir(files);
    assert!(img.is_none(), "{code}: opened; {findings:?}");
    findings
        .into_iter()
        .find(|f| f.code == code && f.refuses())
        .unwrap_or_else(|| panic!("no {code}"))
}

#[test]
fn descriptor_files_join_flat_zero_and_sparse_extents() {
    let text = descriptor(
        "twoGbMaxExtentFlat",
        "RW 2 FLAT \"a.bin\" 1\nRW 3 ZERO\nRDONLY  1\tFLAT  \"b.bin\"",
    );
    let a: Vec<u8> = (0..1536u32).map(|i| (i / 512) as u8 + 1).collect();
    let (img, findings, _dir) = open_dir(&[
        ("disk.vmdk", text.as_bytes()),
        ("a.bin", &a),
        ("b.bin", &[9u8; 512]),
    ]);
    let img = img.unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(img.virtual_size(), 6 * 512);
    let mut disk = vec![0xffu8; 6 * 512];
    img.read_at(&mut disk, 0).unwrap();
    assert!(disk[..512].iter().all(|&b| b == 2));
    assert!(disk[512..1024].iter().all(|&b| b == 3));
    assert!(disk[1024..2560].iter().all(|&b| b == 0));
    assert!(disk[2560..].iter().all(|&b| b == 9));
    let ext = img.extents().unwrap();
    assert_eq!(ext.iter().map(|e| e.length).sum::<u64>(), 6 * 512);
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Zero));

    // A split sparse disk: the extent file is the synthetic sparse file.
    let text = descriptor("twoGbMaxExtentSparse", "RW 64 SPARSE \"s001.vmdk\"");
    let (img, findings, _dir) =
        open_dir(&[("disk.vmdk", text.as_bytes()), ("s001.vmdk", &sparse())]);
    let img = img.unwrap_or_else(|| panic!("{findings:?}"));
    let mut g = vec![0u8; 4096];
    img.read_at(&mut g, 5 * 4096).unwrap();
    assert!(g.iter().all(|&b| b == 0x22));
}

#[test]
fn descriptor_file_rules() {
    let flat = [7u8; 1024];
    let d = |ct: &str, ext: &str| descriptor(ct, ext).into_bytes();
    refused_dir(
        &[
            ("disk.vmdk", &d("vmfs", "RW 2 FLAT \"a.bin\" 0")),
            ("a.bin", &flat),
        ],
        "vmdk.create_type",
    );
    refused_dir(
        &[
            ("disk.vmdk", &d("monolithicFlat", "RW 2 SPARSE \"a.bin\"")),
            ("a.bin", &flat),
        ],
        "vmdk.extent_type",
    );
    refused_dir(
        &[
            (
                "disk.vmdk",
                &d("monolithicFlat", "NOACCESS 2 FLAT \"a.bin\" 0"),
            ),
            ("a.bin", &flat),
        ],
        "vmdk.extent_access",
    );
    refused_dir(
        &[
            ("disk.vmdk", &d("monolithicFlat", "RW 0 FLAT \"a.bin\" 0")),
            ("a.bin", &flat),
        ],
        "vmdk.extent_size",
    );
    refused_dir(
        &[(
            "disk.vmdk",
            &d("monolithicFlat", "RW 2 FLAT \"missing.bin\" 0"),
        )],
        "vmdk.extent_file",
    );
    refused_dir(
        &[
            ("disk.vmdk", &d("monolithicFlat", "RW 2 FLAT \"a.bin\" 1")),
            ("a.bin", &flat),
        ],
        "vmdk.extent_past_eof",
    );
    refused_dir(
        &[
            (
                "disk.vmdk",
                &d("monolithicFlat", "RW 2 FLAT \"a.bin\" 18446744073709551615"),
            ),
            ("a.bin", &flat),
        ],
        "vmdk.extent_past_eof",
    );
    refused_dir(
        &[
            (
                "disk.vmdk",
                &d(
                    "monolithicFlat",
                    "RW 1 FLAT \"a.bin\" 0\nRW 1 FLAT \"a.bin\" 1",
                ),
            ),
            ("a.bin", &flat),
        ],
        "vmdk.extent_file",
    );
    refused_dir(
        &[(
            "disk.vmdk",
            &d("monolithicFlat", "RW 1 FLAT \"disk.vmdk\" 0"),
        )],
        "vmdk.extent_file",
    );
    refused_dir(
        &[(
            "disk.vmdk",
            &d("monolithicFlat", "RW 137438953472 ZERO\nRW 1 ZERO"),
        )],
        "vmdk.capacity",
    );
    // The sparse extent's capacity must equal the extent line's size.
    refused_dir(
        &[
            (
                "disk.vmdk",
                &d("twoGbMaxExtentSparse", "RW 65 SPARSE \"s.vmdk\""),
            ),
            ("s.vmdk", &sparse()),
        ],
        "vmdk.extent_size",
    );
    // A sparse extent file's own rules name the file.
    let mut bad = sparse();
    put64(&mut bad, 20, 3);
    let f = refused_dir(
        &[
            (
                "disk.vmdk",
                &d("twoGbMaxExtentSparse", "RW 64 SPARSE \"s.vmdk\""),
            ),
            ("s.vmdk", &bad),
        ],
        "vmdk.grain_size",
    );
    assert!(f.message.contains("\"s.vmdk\""), "{f:?}");
    let lines = "RW 1 ZERO\n".repeat(MAX_EXTENTS + 1);
    refused_dir(
        &[("disk.vmdk", &d("monolithicFlat", &lines))],
        "vmdk.too_many_extents",
    );
}

#[test]
fn a_symbolic_link_extent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("real.bin"), [1u8; 1024]).unwrap();
    std::os::unix::fs::symlink("real.bin", dir.path().join("a.bin")).unwrap();
    std::fs::write(
        dir.path().join("disk.vmdk"),
        descriptor("monolithicFlat", "RW 2 FLAT \"a.bin\" 0"),
    )
    .unwrap();
    let file = Arc::new(ImageFile::open(&dir.path().join("disk.vmdk")).unwrap());
    let mut findings = Vec::new();
    assert!(VmdkImage::open(file, &mut findings).unwrap().is_none());
    assert!(
        findings
            .iter()
            .any(|f| f.code == "vmdk.extent_file" && f.message.contains("symbolic link")),
        "{findings:?}"
    );
}

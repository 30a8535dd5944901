//! Reads through the byte fixture: compressed clusters (deflate, zstd, broken data),
//! extended L2 entry decoding, and the single-byte corruption sweep of the metadata.

use super::*;

#[test]
fn a_compressed_cluster_that_does_not_decompress_is_refused_at_open() {
    // The first compressed cluster is decoded when the image is judged, so `safe` means a
    // conversion will read it (a wrong compression type is found only this way).
    let b = with(|b| b[(CMP + 100) as usize..(CMP + CS) as usize].fill(0xFF));
    let f = refused(&b, "qcow2.compressed_data");
    assert_eq!(f.offset, Some(CMP + 100));
    assert!(f.message.contains("guest offset 2048"), "{}", f.message);
}

#[test]
fn zstd_declared_over_deflate_data_is_refused_at_open() {
    // Incompatible bit 3 and compression_type 1 (zstd) over the fixture's deflate cluster.
    let b = with(|b| {
        put64(b, 72, 1 << 3);
        b[104] = 1;
    });
    refused(&b, "qcow2.compressed_data");
}

#[test]
fn every_single_byte_corruption_of_the_metadata_is_handled() {
    // Each metadata byte changed in turn: opening must refuse or succeed, never panic, and
    // an opened image must list its extents and read its whole disk (or fail cleanly).
    let good = image();
    let positions = (0..EXT + 24)
        .chain(RT as usize..RT as usize + 8)
        .chain(L1 as usize..L1 as usize + 16)
        .chain(L2 as usize..(L2 + CS) as usize);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.qcow2");
    let started = std::time::Instant::now();
    for pos in positions {
        for delta in [1u8, 0x80] {
            let mut bytes = good.clone();
            bytes[pos] = bytes[pos].wrapping_add(delta);
            std::fs::write(&path, &bytes).unwrap();
            let file = Arc::new(ImageFile::open(&path).unwrap());
            let mut findings = Vec::new();
            match Qcow2Image::open(file, &mut findings) {
                Ok(Some(img)) => {
                    assert!(!findings.iter().any(Finding::refuses), "byte {pos}");
                    let size = img.virtual_size();
                    img.extents().unwrap();
                    if size <= 1 << 20 {
                        let mut buf = vec![0u8; size as usize];
                        // Compressed data is only judged when read.
                        let _ = img.read_at(&mut buf, 0);
                    }
                }
                Ok(None) => assert!(findings.iter().any(Finding::refuses), "byte {pos}"),
                Err(e) => panic!("byte {pos} +{delta}: I/O error {e}"),
            }
        }
    }
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn zstd_clusters_read_through_the_image() {
    let data = pattern(0x33);
    let frame = zstd::bulk::compress(&data, 1).unwrap();
    assert!(frame.len() < 400);
    let b = with(|b| {
        put64(b, 72, 1 << 3);
        b[104] = 1;
        b[(CMP + 100) as usize..(CMP + CS) as usize].fill(0);
        b[(CMP + 100) as usize..(CMP + 100) as usize + frame.len()].copy_from_slice(&frame);
    });
    let (img, f) = open_bytes(&b);
    let img = img.unwrap_or_else(|| panic!("{f:?}"));
    assert_eq!(img.details().compression, Compression::Zstd);
    let mut buf = vec![0u8; 512];
    img.read_at(&mut buf, 2048).unwrap();
    assert_eq!(buf, data);
}

#[test]
fn extended_l2_entries_decode_per_subcluster() {
    let geo = Geometry {
        cluster_bits: 16,
        cluster_size: 65536,
        l2_entries: 4096,
        extended: true,
        v3: true,
        compression: Compression::Deflate,
        file_size: 1 << 30,
        virtual_size: 1 << 30,
    };
    let host = 0x3_0000u64;
    assert_eq!(
        geo.l2_entry(host, 0xFFFF_FFFF).unwrap(),
        Cluster::Data { host }
    );
    assert_eq!(geo.l2_entry(0, 0xFFFF_FFFF << 32).unwrap(), Cluster::Zero);
    assert_eq!(geo.l2_entry(host, 0).unwrap(), Cluster::Unallocated);
    assert_eq!(
        geo.l2_entry(host, 0x0000_0F00_0000_00F0).unwrap(),
        Cluster::Subclusters {
            host,
            alloc: 0xF0,
            zero: 0xF00
        }
    );
    let rule = |e: u64, b: u64| geo.l2_entry(e, b).unwrap_err().rule;
    assert_eq!(rule(host, 0x0000_0001_0000_0001), "l2_entry_invalid"); // allocated and zero
    assert_eq!(rule(0, 1), "l2_entry_invalid"); // allocated without a host cluster
    assert_eq!(rule(host | 1, 0), "l2_entry_reserved"); // no zero flag with extended L2
    assert_eq!(rule((1 << 62) | host, 1), "l2_entry_reserved"); // compressed with a bitmap
}

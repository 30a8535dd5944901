//! Tests against the cached images made by `scripts/make-testdata.sh`, with qemu-img as the
//! oracle: whole-disk contents of every content*.qcow2 variant against content.raw, data
//! ranges against `qemu-img map`, concurrent reads.

use crate::test_util::data_ranges;
use crate::{ExtentKind, OpenOptions, open};
use imgport_testdata::{cached, qemu_data_ranges};

const CONTENT: [(&str, &str); 9] = [
    ("content.qcow2", "v3"),
    ("content-v2.qcow2", "v2"),
    ("content-zlib.qcow2", "v3"),
    ("content-zstd.qcow2", "v3"),
    ("content-extl2.qcow2", "v3"),
    ("content-4k.qcow2", "v3"),
    ("content-2m.qcow2", "v3"),
    ("content-snap.qcow2", "v3"),
    ("content-zero.qcow2", "v3"),
];

#[test]
fn content_images_read_as_the_raw_disk_and_map_like_qemu() {
    let mut raw = std::fs::read(cached("content.raw")).unwrap();
    for (name, sub) in CONTENT {
        let path = cached(name);
        let opened = open(&path, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.report.subformat.as_deref(), Some(sub), "{name}");
        let img = opened.image;
        let size = img.virtual_size() as usize;
        assert_eq!(size, raw.len(), "{name}");
        let mut disk = vec![0u8; size];
        // Odd-sized chunks exercise reads that straddle clusters and L2 tables.
        let mut pos = 0;
        while pos < size {
            let n = (3 << 20 | 777).min(size - pos);
            img.read_at(&mut disk[pos..pos + n], pos as u64).unwrap();
            pos += n;
        }
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
        let chunk = (1 << 20) + 4097;
        std::thread::scope(|s| {
            for t in 0..4usize {
                let (img, raw) = (&img, &raw);
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
}

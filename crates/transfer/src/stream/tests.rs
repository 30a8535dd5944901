//! Tests of the streaming engine: parts, digests and memory bound against real files.

use super::*;
use crate::layout::OutputFormat;
use imgport_image::ImageFile;
use imgport_image::raw::RawImage;
use std::io::{Seek, SeekFrom, Write};

fn sparse_image(dir: &std::path::Path) -> (Arc<ImageFile>, Arc<dyn DiskImage>) {
    let path = dir.join("disk.raw");
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    f.seek(SeekFrom::Start(500 << 20)).unwrap();
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8 + 1).collect();
    f.write_all(&data).unwrap();
    drop(f);
    let file = Arc::new(ImageFile::open(&path).unwrap());
    let img: Arc<dyn DiskImage> = Arc::new(RawImage::open(file.clone(), &mut Vec::new()).unwrap());
    (file, img)
}

#[test]
fn part_md5s_are_batched_and_right_for_dense_data_and_any_part_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dense.raw");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..(37 << 20) + 999)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &data).unwrap();
    let file = Arc::new(ImageFile::open(&path).unwrap());
    let img: Arc<dyn DiskImage> = Arc::new(RawImage::open(file, &mut Vec::new()).unwrap());
    // 38 parts: two full batches of 16 and a short one; then a size where one buffer is
    // added, so batches are as large as the buffers the consumer leaves free; then one part,
    // hashed on its own.
    for part_size in [1 << 20, 20 << 20, 64 << 20] {
        let opts = StreamOptions {
            part_size: NonZeroU64::new(part_size),
            buffers: 3,
            ..StreamOptions::default()
        };
        let layout = Layout::identity(img.as_ref()).unwrap();
        let mut s = LayoutStream::new(layout, img.clone(), &opts).unwrap();
        let mut held = VecDeque::new();
        let mut next = 1;
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            assert_eq!(p.number, next);
            let start = p.offset as usize;
            let want = &data[start..start + p.data.len()];
            assert_eq!(p.md5, Some(super::super::digest::md5(want)), "part {next}");
            next += 1;
            // A consumer holding as many parts as it asked buffers for still progresses.
            held.push_back(p);
            if held.len() == 3 {
                held.pop_front();
            }
        }
        assert_eq!(u64::from(next - 1), (data.len() as u64).div_ceil(part_size));
    }
}

#[test]
fn holes_are_never_read_and_parts_follow_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (file, img) = sparse_image(dir.path());
    for format in [OutputFormat::Vhd, OutputFormat::Qcow2, OutputFormat::Raw] {
        let before = file.bytes_read();
        let reference = Layout::plan(img.as_ref(), format).unwrap();
        let opts = StreamOptions {
            part_size: NonZeroU64::new(3 << 20 | 12345),
            buffers: 2,
            ..StreamOptions::default()
        };
        let mut s = LayoutStream::convert(img.clone(), format, &opts).unwrap();
        let mut sha = Sha256::new();
        let mut crc = 0u64;
        let mut expect_offset = 0u64;
        let mut probe = vec![0u8; 1 << 20];
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            assert_eq!(p.offset, expect_offset);
            assert_eq!(p.md5, Some(super::super::digest::md5(&p.data)));
            assert_eq!(p.crc64, crc64(&p.data));
            // Spot-check the part against a direct read of the layout.
            let n = probe.len().min(p.data.len());
            reference
                .read(img.as_ref(), &mut probe[..n], p.offset)
                .unwrap();
            assert_eq!(&probe[..n], &p.data[..n]);
            sha.update(&p.data[..]);
            crc = crc64_combine(crc, p.crc64, p.data.len() as u64);
            expect_offset += p.data.len() as u64;
        }
        let d = s.digests().unwrap();
        assert_eq!(s.digests().as_ref(), Some(&d), "digests stay available");
        assert_eq!(d.size, expect_offset);
        assert_eq!(d.sha256, hex::encode(sha.finalize()));
        assert_eq!(d.crc64, crc);
        let read = file.bytes_read() - before;
        // Only the data extents are read (plus the spot checks above, which also skip holes).
        let data = img.allocated_size().unwrap();
        assert!(
            read <= 2 * data,
            "{format:?}: read {read} bytes for {data} of data"
        );
    }
}

#[test]
fn part_md5_is_skipped_when_asked_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, img) = sparse_image(dir.path());
    let run = |skip_part_md5| {
        let opts = StreamOptions {
            part_size: NonZeroU64::new(1 << 20),
            skip_part_md5,
            ..StreamOptions::default()
        };
        let mut s = LayoutStream::convert(img.clone(), OutputFormat::Vhd, &opts).unwrap();
        let mut parts = Vec::new();
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            parts.push((p.md5, p.crc64));
        }
        (parts, s.digests().unwrap())
    };
    let (with, d1) = run(false);
    let (without, d2) = run(true);
    assert_eq!(d1, d2);
    assert!(with.iter().all(|(m, _)| m.is_some()));
    assert!(without.iter().all(|(m, _)| m.is_none()));
    let crcs = |v: &[(Option<[u8; 16]>, u64)]| v.iter().map(|p| p.1).collect::<Vec<_>>();
    assert_eq!(crcs(&with), crcs(&without));
}

#[test]
fn a_signed_upload_stream_hashes_each_part_once_and_is_held_to_the_part_count() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, img) = sparse_image(dir.path());
    for signed in [true, false] {
        let opts = StreamOptions {
            part_size: NonZeroU64::new(1 << 20),
            ..StreamOptions::upload(signed)
        };
        assert!(opts.for_upload());
        let mut s = LayoutStream::convert(img.clone(), OutputFormat::Vhd, &opts).unwrap();
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            // One store-checked digest per part: the signed SHA-256, else the MD5.
            assert_eq!(p.sha256, signed.then(|| crate::digest::sha256(&p.data)));
            assert_eq!(p.md5, (!signed).then(|| crate::digest::md5(&p.data)));
        }
        // 10,001 parts of 100 KiB: more than an object store takes.
        let too_many = StreamOptions {
            part_size: NonZeroU64::new(100 << 10),
            ..StreamOptions::upload(signed)
        };
        let big = sized_image(dir.path(), (MAX_PARTS + 1) * (100 << 10));
        assert!(matches!(
            LayoutStream::convert(big, OutputFormat::Raw, &too_many),
            Err(TransferError::TooManyParts { .. })
        ));
    }
}

#[test]
fn zero_parts_take_no_buffer_and_skipping_them_keeps_the_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, img) = sparse_image(dir.path());
    let opts = StreamOptions {
        part_size: NonZeroU64::new(1 << 20),
        buffers: 2,
        skip_sha256: true,
        skip_part_md5: true,
        ..StreamOptions::default()
    };
    let layout = || Layout::plan(img.as_ref(), OutputFormat::Raw).unwrap();
    // Every part produced: the zero ones borrow the shared zeros.
    let mut s = LayoutStream::new(layout(), img.clone(), &opts).unwrap();
    let (mut all, mut zero_parts) = (Vec::new(), 0);
    while let Some(p) = s.next_part() {
        let p = p.unwrap();
        zero_parts += usize::from(p.data.is_zero_part());
        all.push((p.offset, p.crc64));
    }
    let whole = s.digests().unwrap();
    assert_eq!(zero_parts, 1024 - 3, "1 GiB, data in parts 500..=502");
    // Zero runs skipped: only the data parts come out, and the digests agree.
    let mut s = LayoutStream::new(layout(), img.clone(), &opts).unwrap();
    let (mut seen, mut skipped) = (Vec::new(), 0u64);
    loop {
        skipped += s.skip_zero_parts();
        let Some(p) = s.next_part() else { break };
        let p = p.unwrap();
        seen.push((p.offset, p.crc64));
    }
    assert_eq!(s.digests().unwrap(), whole);
    assert!(seen.len() < 70, "{} parts produced", seen.len());
    let produced: u64 = seen.len() as u64 * (1 << 20);
    assert_eq!(skipped + produced, 1 << 30);
    for p in &seen {
        assert!(all.contains(p));
    }
    // With the SHA-256 wanted, nothing may be skipped.
    let mut s = LayoutStream::new(
        layout(),
        img,
        &StreamOptions {
            skip_sha256: false,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(s.skip_zero_parts(), 0);
}

#[test]
fn cancel_stops_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, img) = sparse_image(dir.path());
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = StreamOptions {
        part_size: NonZeroU64::new(1 << 20),
        cancel: Some(cancel.clone()),
        ..StreamOptions::default()
    };
    let layout = Layout::plan(img.as_ref(), OutputFormat::Raw).unwrap();
    let mut s = LayoutStream::new(layout, img, &opts).unwrap();
    assert!(s.next_part().unwrap().is_ok());
    cancel.store(true, Ordering::Relaxed);
    assert!(matches!(
        s.next_part(),
        Some(Err(TransferError::Interrupted))
    ));
    assert!(s.next_part().is_none());
    assert!(s.digests().is_none());
}

#[test]
fn too_many_parts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, img) = sparse_image(dir.path());
    let layout = Layout::plan(img.as_ref(), OutputFormat::Raw).unwrap();
    let opts = StreamOptions {
        part_size: NonZeroU64::new(4096),
        ..StreamOptions::default()
    };
    assert!(matches!(
        LayoutStream::new(layout, img, &opts),
        Err(TransferError::TooManyParts { .. })
    ));
    assert_eq!(auto_part_size(1 << 40), 105 << 20);
}

/// A sparse RAW disk of `size` bytes holding 12 MiB of data at 500 MiB.
fn sized_image(dir: &std::path::Path, size: u64) -> Arc<dyn DiskImage> {
    let path = dir.join(format!("disk-{size}.raw"));
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    f.seek(SeekFrom::Start(500 << 20)).unwrap();
    f.write_all(&vec![7u8; 12 << 20]).unwrap();
    drop(f);
    let file = Arc::new(ImageFile::open(&path).unwrap());
    Arc::new(RawImage::open(file, &mut Vec::new()).unwrap())
}

#[test]
fn buffer_capacity_follows_the_parts_in_flight_not_the_disk_size() {
    let dir = tempfile::tempdir().unwrap();
    // An upload's stream: 5 MiB parts, 8 in flight and 2 filled ahead, part MD5s in batches.
    let opts = StreamOptions {
        part_size: NonZeroU64::new(HASHED_PART_SIZE),
        buffers: 10,
        ..StreamOptions::default()
    };
    let capacity = |size: u64| {
        let img = sized_image(dir.path(), size);
        let s = LayoutStream::convert(img, OutputFormat::Vhd, &opts).unwrap();
        assert!(s.part_count() > 1, "the MD5s are batched");
        s.buffer_capacity()
    };
    let small = capacity(1 << 30);
    assert_eq!(
        small,
        capacity(2040 << 30),
        "a 2040 GiB disk with the same data"
    );
    let extra = md5_extra_buffers(HASHED_PART_SIZE) as u64;
    assert_eq!(extra, 3);
    assert_eq!(
        small,
        (10 + extra + REREAD_BUFFERS as u64) * HASHED_PART_SIZE
    );
}

#[test]
fn an_upload_pool_never_holds_more_than_its_part_memory() {
    let dir = tempfile::tempdir().unwrap();
    const MIB: u64 = 1 << 20;
    let images = [1u64 << 30, 2040 << 30].map(|size| sized_image(dir.path(), size));
    // Signed uploads compute no part MD5 and batch none; unsigned ones batch them.
    for signed in [false, true] {
        for budget in [16 * MIB, 64 * MIB, 200 * MIB] {
            for part in [100 << 10, MIB, 2 * MIB, 5 * MIB, 11 * MIB] {
                for cap in [1, 8, 32, 256] {
                    // What the plan does: a buffer per part in flight being written, lowered
                    // to what the budget holds (the parts in flight are bounded by the cap
                    // alone: their buffers go back once written).
                    let batch = !signed;
                    let Some(fit) = writing_within(budget, part, batch) else {
                        assert!(upload_buffers(1, part, batch) as u64 * part > budget);
                        continue;
                    };
                    let writing = fit.min(cap);
                    let opts = StreamOptions {
                        part_size: NonZeroU64::new(part),
                        buffers: writing + UPLOAD_FILLED_AHEAD,
                        ..StreamOptions::upload(signed)
                    };
                    for img in &images {
                        let s =
                            LayoutStream::convert(img.clone(), OutputFormat::Vhd, &opts).unwrap();
                        assert!(s.part_count() > 1);
                        let held = s.buffer_capacity();
                        assert!(held <= budget, "{held} > {budget}: {part} × {writing}");
                        assert_eq!(held, upload_buffers(writing, part, batch) as u64 * part);
                    }
                }
            }
        }
    }
}

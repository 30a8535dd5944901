//! One negative test per cpio and archive rule.

use super::*;

#[test]
fn every_newc_field_must_be_hex() {
    let names = [
        "c_ino",
        "c_mode",
        "c_uid",
        "c_gid",
        "c_nlink",
        "c_mtime",
        "c_filesize",
        "c_devmajor",
        "c_devminor",
        "c_rdevmajor",
        "c_rdevminor",
        "c_namesize",
        "c_check",
    ];
    for (i, want) in names.iter().enumerate() {
        let mut v = sample();
        v[6 + 8 * i + 3] = b'g';
        match parse_all(&v).unwrap_err() {
            InitramfsError::Field { field, at, .. } => {
                assert_eq!(field, *want);
                assert_eq!(at.offset, 0);
            }
            e => panic!("field {want}: {e}"),
        }
    }
    // A space or a sign is not a hex digit either (the kernel's strtoul would accept them).
    let mut v = sample();
    v[6] = b' ';
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field { field: "c_ino", .. }
    ));
}

#[test]
fn odc_field_must_be_octal() {
    let mut v = b"070707".to_vec();
    v.extend_from_slice(b"000000000009"); // dev ok, ino has a 9
    v.resize(76, b'0');
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field { field: "c_ino", .. }
    ));
}

#[test]
fn bad_cpio_magic() {
    let mut v = sample();
    v[5] = b'3'; // 070703
    assert!(rule(&parse_all(&v).unwrap_err()).contains("bad cpio magic"));
    // Inside a decompressed stream too.
    let mut v = sample();
    let second = v.len() - 124; // start of the trailer member
    v[second + 1] = b'8';
    assert!(rule(&parse_all(&gzip(&v)).unwrap_err()).contains("bad cpio magic"));
}

#[test]
fn namesize_zero_and_too_long() {
    let mut v = newc_header("070701", REG, 0, 0, 0);
    trailer(&mut v);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field {
            field: "c_namesize",
            ..
        }
    ));
    let v = newc_header("070701", REG, 0, MAX_NAME_LEN as u32 + 2, 0);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::NameTooLong { len: 4096, .. }
    ));
}

#[test]
fn name_must_end_in_one_nul() {
    let mut v = newc_header("070701", REG, 0, 4, 0);
    v.extend_from_slice(b"abcd");
    pad4(&mut v);
    trailer(&mut v);
    assert_eq!(
        rule(&parse_all(&v).unwrap_err()),
        "name is not NUL-terminated"
    );
    let mut v = newc_header("070701", REG, 0, 4, 0);
    v.extend_from_slice(b"a\0c\0");
    pad4(&mut v);
    trailer(&mut v);
    assert_eq!(
        rule(&parse_all(&v).unwrap_err()),
        "NUL byte inside the name"
    );
}

#[test]
fn newc_must_start_aligned() {
    let mut v = vec![0u8, 0];
    v.extend(sample());
    let e = parse_all(&v).unwrap_err();
    assert_eq!(rule(&e), "newc header not on a 4-byte boundary");
    assert!(e.to_string().contains("file offset 2"), "{e}");
}

#[test]
fn truncated_archives_are_refused() {
    let v = sample();
    for cut in [50, 110, 115, v.len() - 124, v.len() - 1] {
        let e = parse_all(&v[..cut]).unwrap_err();
        assert!(
            rule(&e).contains("archive ends inside a member"),
            "cut {cut}: {e}"
        );
        let e = parse_all(&gzip(&v[..cut])).unwrap_err();
        assert!(
            rule(&e).contains("archive ends inside a member"),
            "gzip cut {cut}: {e}"
        );
    }
    // A cut compressed stream is a decompression error.
    let gz = gzip(&v);
    assert!(matches!(
        parse_all(&gz[..gz.len() - 5]).unwrap_err(),
        InitramfsError::Decompress { method: "gzip", .. }
    ));
}

#[test]
fn junk_after_trailer() {
    let mut v = sample();
    v.extend_from_slice(b"\0\0\0\0JUNK");
    assert!(rule(&parse_all(&gzip(&v)).unwrap_err()).contains("junk after TRAILER!!!"));
    // At top level the junk is an unknown archive magic.
    match parse_all(&v).unwrap_err() {
        InitramfsError::UnknownMagic { offset, magic } => {
            assert_eq!(offset, sample().len() as u64 + 4);
            assert_eq!(magic, "4a554e4b");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn symlink_target_and_file_size_caps() {
    let mut v = newc_header("070701", LNK, 5000, 2, 0);
    v.extend_from_slice(b"l\0");
    assert!(rule(&parse_all(&v).unwrap_err()).contains("symlink target longer"));
    let v = newc_header("070701", REG, u32::MAX, 2, 0);
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Field {
            field: "c_filesize",
            ..
        }
    ));
}

#[test]
fn unsupported_and_unknown_compression() {
    let mut v = sample();
    v.extend_from_slice(b"BZh91AY&SY");
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Unsupported {
            method: "bzip2",
            ..
        }
    ));
    assert!(matches!(
        parse_all(b"\x7fELF").unwrap_err(),
        InitramfsError::UnknownMagic { offset: 0, .. }
    ));
}

#[test]
fn too_many_archives() {
    let one = sample();
    let v: Vec<u8> = std::iter::repeat_n(one.as_slice(), MAX_ARCHIVES + 1)
        .flatten()
        .copied()
        .collect();
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::TooManyArchives {
            limit: MAX_ARCHIVES,
            ..
        }
    ));
    let v: Vec<u8> = std::iter::repeat_n(one.as_slice(), MAX_ARCHIVES)
        .flatten()
        .copied()
        .collect();
    assert_eq!(parse_all(&v).unwrap().archives.len(), MAX_ARCHIVES);
}

#[test]
fn too_many_entries() {
    let mut v = Vec::new();
    for i in 0..=MAX_ENTRIES {
        member(&mut v, &format!("{i:x}"), REG, b"");
    }
    trailer(&mut v);
    assert!(matches!(
        parse(&v, &ReadOptions::default()).unwrap_err(),
        InitramfsError::TooManyEntries {
            limit: MAX_ENTRIES,
            ..
        }
    ));
}

#[test]
fn image_size_cap() {
    // Zeroed pages are never touched: the length is checked first.
    let big = vec![0u8; MAX_IMAGE_BYTES as usize + 1];
    assert!(matches!(
        parse_all(&big).unwrap_err(),
        InitramfsError::ImageTooLarge {
            limit: MAX_IMAGE_BYTES,
            ..
        }
    ));
}

#[test]
fn name_bytes_cap() {
    // 17,000 names of 4,000 bytes = 68 MB of names in 70 MB of archive: refused before the
    // entry cap, so names cannot take more memory than MAX_NAME_BYTES.
    let mut v = Vec::new();
    let long = "d/".repeat(1999);
    for i in 0..17_000 {
        member(&mut v, &format!("{long}{i:05}"), REG, b"");
    }
    trailer(&mut v);
    assert!(matches!(
        parse(&v, &ReadOptions::default()).unwrap_err(),
        InitramfsError::TooMuchMetadata {
            limit: MAX_NAME_BYTES,
            ..
        }
    ));
}

#[test]
fn zstd_skippable_frames_are_passed_over_and_oversized_windows_refused() {
    let cpio = sample();
    let (head, tail) = cpio.split_at(100);
    let mut v = zstd::encode_all(head, 3).unwrap();
    // A skippable frame (magic 0x184D2A5A, 5 bytes of payload) between the two frames.
    v.extend_from_slice(&[0x5A, 0x2A, 0x4D, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
    v.extend(zstd::encode_all(tail, 3).unwrap());
    let whole = parse_all(&v).unwrap();
    assert_eq!(whole.archives.len(), 1);
    assert_eq!(whole.archives[0].len, v.len() as u64);
    assert_eq!(whole.entries, parse_all(&cpio).unwrap().entries);

    // A frame that declares a 128 MiB window, twice the decoder's limit.
    let mut enc = zstd::stream::raw::Encoder::new(1).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
        .unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
        .unwrap();
    let mut big = Vec::new();
    {
        let mut w = zstd::stream::zio::Writer::new(&mut big, enc);
        std::io::Write::write_all(&mut w, &vec![7u8; 1 << 20]).unwrap();
        w.finish().unwrap();
    }
    assert!(matches!(
        parse_all(&big).unwrap_err(),
        InitramfsError::Decompress { method: "zstd", .. }
    ));
}

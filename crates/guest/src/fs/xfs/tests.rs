//! Tests against the images `scripts/testdata/xfs.sh` builds with mkfs.xfs from a host tree:
//! every directory listing, file's bytes and symlink target is compared with that tree; then
//! a corruption sweep over superblock, inode cores, directory and bmbt blocks.
//!
//! Kept whole: one table of real-image comparisons and one corruption sweep, sharing their
//! fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::disk::crc_ok;
use super::*;
use imgport_image::raw::RawImage;
use imgport_image::{ImageFile, ImageSource};

const IMAGES: [&str; 5] = ["v5", "v4", "v5-1k", "v5-i1k", "v5-ci"];

fn part_dir() -> PathBuf {
    let base = imgport_testdata::testdata_dir();
    let dir = base.join("xfs");
    assert!(
        dir.join("STAMP").exists(),
        "{} missing: run scripts/make-testdata.sh",
        dir.display()
    );
    dir
}

fn source(name: &str) -> Arc<dyn ByteSource> {
    let file = Arc::new(ImageFile::open(&part_dir().join(format!("{name}.img"))).unwrap());
    let raw = RawImage::open(file, &mut Vec::new()).unwrap();
    Arc::new(ImageSource(Arc::new(raw)))
}

fn open_image(name: &str) -> XfsFs {
    open(source(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn host_kind(p: &Path) -> NodeKind {
    let t = std::fs::symlink_metadata(p).unwrap().file_type();
    if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_dir() {
        NodeKind::Dir
    } else if t.is_file() {
        NodeKind::File
    } else {
        NodeKind::Other
    }
}

/// Reads a whole file through `read_at` in uneven chunks.
fn read_all(fs: &XfsFs, path: &[u8], size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_001];
    loop {
        let n = fs.read_at(path, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        assert!(out.len() as u64 <= size);
    }
    out
}

/// Compares the guest directory `guest` with host directory `host`, recursively; returns the
/// number of nodes compared.
fn compare(name: &str, fs: &XfsFs, host: &Path, guest: &[u8]) -> usize {
    let mut want = BTreeMap::new();
    for e in std::fs::read_dir(host).unwrap() {
        let e = e.unwrap();
        want.insert(e.file_name().into_encoded_bytes(), host_kind(&e.path()));
    }
    let got: BTreeMap<Vec<u8>, NodeKind> = fs
        .read_dir(guest)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: {} entry count",
        String::from_utf8_lossy(guest)
    );
    assert!(
        got == want,
        "{name}: listing of {} differs",
        String::from_utf8_lossy(guest)
    );
    let mut seen = 1;
    for (n, kind) in want {
        let hp = host.join(std::ffi::OsStr::from_encoded_bytes_unchecked_safe(&n));
        let mut gp = guest.to_vec();
        if gp.last() != Some(&b'/') {
            gp.push(b'/');
        }
        gp.extend_from_slice(&n);
        let shown = String::from_utf8_lossy(&gp).into_owned();
        let info = fs
            .lstat(&gp)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: {shown} missing"));
        assert_eq!(info.kind, kind, "{name}: {shown}");
        match kind {
            NodeKind::Dir => seen += compare(name, fs, &hp, &gp),
            NodeKind::File => {
                let want = std::fs::read(&hp).unwrap();
                assert_eq!(info.size, want.len() as u64, "{name}: {shown} size");
                assert!(
                    read_all(fs, &gp, info.size) == want,
                    "{name}: {shown} bytes differ"
                );
                seen += 1;
            }
            NodeKind::Symlink => {
                let want = std::fs::read_link(&hp)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes();
                assert_eq!(info.size, want.len() as u64, "{name}: {shown} size");
                assert_eq!(fs.read_link(&gp).unwrap(), want, "{name}: {shown} target");
                seen += 1;
            }
            NodeKind::Other => {}
        }
    }
    seen
}

trait FromBytes {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

#[test]
fn every_image_matches_its_host_tree() {
    let tree = part_dir().join("tree");
    let files = walkdir_count(&tree);
    for name in IMAGES {
        let fs = open_image(name);
        let seen = compare(name, &fs, &tree, b"/");
        assert_eq!(seen, files, "{name}: nodes compared");
        assert!(!fs.dirty(), "{name}: {:?}", fs.dirty_reasons());
    }
}

fn walkdir_count(p: &Path) -> usize {
    1 + std::fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if host_kind(&e.path()) == NodeKind::Dir {
                walkdir_count(&e.path())
            } else {
                1
            }
        })
        .sum::<usize>()
}

#[test]
fn label_uuid_and_geometry_match_xfs_db() {
    for (name, version, bs) in [
        ("v5", 5, 4096),
        ("v4", 4, 4096),
        ("v5-1k", 5, 1024),
        ("v5-i1k", 5, 4096),
    ] {
        let fs = open_image(name);
        let meta = std::fs::read_to_string(part_dir().join(format!("{name}.meta"))).unwrap();
        let uuid = meta
            .lines()
            .find_map(|l| l.strip_prefix("UUID = "))
            .unwrap();
        let label = meta
            .lines()
            .find_map(|l| l.strip_prefix("label = "))
            .unwrap()
            .trim_matches('"');
        assert_eq!(fs.uuid().as_deref(), Some(uuid), "{name}");
        assert_eq!(
            fs.label().as_deref(),
            (!label.is_empty()).then_some(label),
            "{name}"
        );
        assert_eq!(
            (fs.kind(), fs.version(), fs.block_size()),
            ("xfs", version, bs),
            "{name}"
        );
        assert_eq!(fs.case_insensitive(), name == "v5-ci", "{name}");
    }
}

#[test]
fn ascii_ci_volumes_find_names_in_any_case() {
    let ci = open_image("v5-ci");
    assert_eq!(
        ci.read_link(b"/ETC/OS-Release").unwrap(),
        b"../usr/lib/os-release"
    );
    assert_eq!(
        ci.lstat(b"/BLOCK50/Entry-049").unwrap().unwrap().kind,
        NodeKind::File
    );
    assert!(ci.lstat(b"/block50/entry-050").unwrap().is_none());
    // Listings keep the case the names were created with.
    assert!(
        ci.read_dir(b"/Long")
            .unwrap()
            .iter()
            .any(|e| e.name == [b'L'; 255])
    );
    let cs = open_image("v5");
    assert!(cs.lstat(b"/ETC/os-release").unwrap().is_none());
}

/// The images really hold the shapes the reader claims to decode.
#[test]
fn images_cover_every_directory_and_fork_format() {
    for name in IMAGES {
        let fs = open_image(name);
        let node = |p: &[u8]| fs.walk(p).unwrap().unwrap();
        assert_eq!(node(b"/small").format, inode::Format::Local, "{name}");
        // With 64 KiB directory blocks the big directory needs few enough extents to stay
        // in the inode.
        let big = if name == "v5-i1k" {
            inode::Format::Extents
        } else {
            inode::Format::Btree
        };
        assert_eq!(node(b"/big50k").format, big, "{name}: big50k");
        let leaf = node(b"/leaf2000");
        assert!(
            leaf.size > u64::from(fs.sb.dir_block_size),
            "{name}: leaf2000 has several data blocks"
        );
        // The first block at the leaf offset tells leaf form (LEAF1) from node form (DA node).
        let leaf_magic = |p: &[u8]| {
            let n = node(p);
            let lblk = (32u64 << 30) >> fs.sb.block_log;
            let e = fs
                .extents(&n)
                .unwrap()
                .into_iter()
                .find(|e| e.lblk == lblk)
                .unwrap();
            disk::be16(
                &read(fs.source.as_ref(), fs.sb.fsb_offset(e.fsb).unwrap(), 16).unwrap(),
                8,
            )
        };
        let (leaf1, danode) = if fs.sb.has_crc() {
            (0x3df1, 0x3ebe)
        } else {
            (0xd2f1, 0xfebe)
        };
        if name == "v5-i1k" {
            assert_eq!(node(b"/leaf300").size, 65536, "{name}: one 64 KiB block");
            assert_eq!(leaf_magic(b"/leaf2000"), leaf1, "{name}");
        } else {
            assert_eq!(leaf_magic(b"/leaf300"), leaf1, "{name}");
            assert_eq!(leaf_magic(b"/leaf2000"), danode, "{name}");
        }
        let holes = node(b"/data/holes");
        let ext = fs.extents(&holes).unwrap();
        assert_eq!(ext.len(), 4, "{name}");
        assert!(ext[2].unwritten && !ext[0].unwritten, "{name}");
        assert_eq!(
            node(b"/links/inline").format,
            inode::Format::Local,
            "{name}"
        );
        assert_eq!(
            node(b"/links/remote-long").format,
            inode::Format::Extents,
            "{name}"
        );
        assert_eq!(fs.read_dir(b"/big50k").unwrap().len(), 50_000, "{name}");
    }
}

#[test]
fn paths_and_reads_at_the_edges() {
    let fs = open_image("v5");
    assert_eq!(
        fs.lstat(b"/etc/os-release").unwrap().unwrap().kind,
        NodeKind::Symlink
    );
    assert_eq!(
        fs.read_link(b"/etc/os-release").unwrap(),
        b"../usr/lib/os-release"
    );
    assert!(fs.lstat(b"/etc/missing").unwrap().is_none());
    assert!(fs.lstat(b"/empty/below-a-file").unwrap().is_none());
    assert!(matches!(fs.read_dir(b"/empty"), Err(FsError::Path { .. })));
    assert!(matches!(fs.read_link(b"/empty"), Err(FsError::Path { .. })));
    assert!(matches!(
        fs.read_at(b"/small", 0, &mut [0; 4]),
        Err(FsError::Path { .. })
    ));
    assert!(matches!(fs.lstat(b"relative"), Err(FsError::Path { .. })));
    assert!(matches!(
        fs.lstat(b"/etc/../etc"),
        Err(FsError::Path { .. })
    ));
    assert_eq!(
        fs.lstat(b"//usr//lib/").unwrap().unwrap().kind,
        NodeKind::Dir
    );
    let want = std::fs::read(part_dir().join("tree/data/holes")).unwrap();
    let mut buf = vec![0xaa; 10_000];
    // From inside the first extent across the first hole into the second extent.
    let n = fs.read_at(b"/data/holes", 4000, &mut buf).unwrap();
    assert_eq!(&buf[..n], &want[4000..14000]);
    // Past the end: nothing; straddling it: a short read.
    assert_eq!(
        fs.read_at(b"/data/holes", want.len() as u64, &mut buf)
            .unwrap(),
        0
    );
    assert_eq!(fs.read_at(b"/data/holes", u64::MAX, &mut buf).unwrap(), 0);
    let n = fs
        .read_at(b"/data/holes", want.len() as u64 - 5, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &want[want.len() - 5..]);
    assert_eq!(fs.read_at(b"/empty", 0, &mut buf).unwrap(), 0);
}

#[test]
fn probe_accepts_xfs_only() {
    let mut head = vec![0u8; 512];
    source("v4").read_exact_at(&mut head, 0).unwrap();
    assert!(probe(&head));
    head[0] = b'Y';
    assert!(!probe(&head));
    assert!(!probe(&[0; 512]));
    assert!(!probe(b"XFSB"));
}

/// A source with some bytes replaced: the corruption tests' view of an image.
struct Patched {
    inner: Arc<dyn ByteSource>,
    patches: Vec<(u64, Vec<u8>)>,
}

impl ByteSource for Patched {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        for (at, bytes) in &self.patches {
            let pend = at + bytes.len() as u64;
            if *at < end && pend > offset {
                let from = (*at).max(offset);
                let to = pend.min(end);
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
            }
        }
        Ok(())
    }
}

/// `block` with byte `i` xor-ed by `x` and, when `crc_off` is given, its CRC made valid
/// again so the corruption reaches the decoder.
fn mutate(block: &[u8], i: usize, x: u8, crc_off: Option<usize>) -> Vec<u8> {
    let mut b = block.to_vec();
    b[i] ^= x;
    if let Some(off) = crc_off
        && !(off..off + 4).contains(&i)
    {
        b[off..off + 4].fill(0);
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &b) as u32;
        b[off..off + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(crc_ok(&b, off));
    }
    b
}

#[test]
fn unknown_incompatible_features_are_refused_and_bad_crcs_reported() {
    let src = source("v5-1k");
    let fs = open(src.clone()).unwrap();
    let sect = read(src.as_ref(), 0, 512).unwrap();
    // An unknown incompat bit, CRC fixed: Unsupported, not a misread.
    let mut sb = sect.clone();
    sb[216] |= 0x80;
    let sb = mutate(&sb, 0, 0, Some(224));
    let err = open(Arc::new(Patched {
        inner: src.clone(),
        patches: vec![(0, sb)],
    }))
    .err()
    .unwrap();
    assert!(matches!(err, FsError::Unsupported { .. }), "{err}");
    // Read-only-compatible features (rmapbt, reflink and ones not yet defined) do not stop a
    // reader.
    let mut sb = sect.clone();
    sb[212..216].copy_from_slice(&0x8000_0006u32.to_be_bytes());
    let ro = open(Arc::new(Patched {
        inner: src.clone(),
        patches: vec![(0, mutate(&sb, 0, 0, Some(224)))],
    }))
    .unwrap();
    assert_eq!(
        ro.read_link(b"/etc/os-release").unwrap(),
        b"../usr/lib/os-release"
    );
    // A flipped byte without a CRC fix: Corrupt, naming the CRC.
    let err = open(Arc::new(Patched {
        inner: src.clone(),
        patches: vec![(0, mutate(&sect, 130, 1, None))],
    }))
    .err()
    .unwrap();
    assert!(err.to_string().contains("CRC"), "{err}");
    // needsrepair is read but reported.
    let mut sb = sect.clone();
    sb[219] |= 0x10;
    let dirty = open(Arc::new(Patched {
        inner: src.clone(),
        patches: vec![(0, mutate(&sb, 0, 0, Some(224)))],
    }))
    .unwrap();
    assert!(dirty.dirty() && dirty.dirty_reasons()[0].contains("needsrepair"));
    // An inode with a bad CRC is Corrupt naming the inode.
    let ino = fs.walk(b"/data/tiny").unwrap().unwrap().ino;
    let at = fs.sb.ino_offset(ino).unwrap();
    let core = read(src.as_ref(), at, 512).unwrap();
    let bad = open(Arc::new(Patched {
        inner: src,
        patches: vec![(at, mutate(&core, 60, 1, None))],
    }))
    .unwrap();
    let err = bad.lstat(b"/data/tiny").err().unwrap().to_string();
    assert!(
        err.contains(&format!("inode {ino}")) && err.contains("CRC"),
        "{err}"
    );
}

#[test]
fn a_log_without_a_final_unmount_record_is_dirty() {
    for name in ["v4", "v5-1k"] {
        let src = source(name);
        let fs = open(src.clone()).unwrap();
        assert!(!fs.dirty(), "{name}: {:?}", fs.dirty_reasons());
        // mkfs leaves one record at the log's start: a header block, then the unmount op.
        let log = fs.sb.fsb_offset(fs.sb.log_start).unwrap();
        let head = read(src.as_ref(), log, 1024).unwrap();
        assert_eq!(disk::be32(&head, 0), 0xfeed_babe, "{name}");
        let mut no_unmount = head.clone();
        no_unmount[512 + 9] = 0;
        let fs = open(Arc::new(Patched {
            inner: src.clone(),
            patches: vec![(log, no_unmount)],
        }))
        .unwrap();
        assert!(
            fs.dirty() && fs.dirty_reasons()[0].contains("unmount"),
            "{name}: {:?}",
            fs.dirty_reasons()
        );
        let fs = open(Arc::new(Patched {
            inner: src.clone(),
            patches: vec![(log, vec![0; 1024])],
        }))
        .unwrap();
        assert!(fs.dirty(), "{name}: a log without records");
        // Reading still works on a dirty volume.
        assert_eq!(fs.lstat(b"/etc").unwrap().unwrap().kind, NodeKind::Dir);
    }
}

/// What a corrupted image is asked: the root, then the node whose metadata was hit (`region`;
/// `/` for the superblock, which everything depends on). None of it may panic or take long.
fn exercise(src: Arc<dyn ByteSource>, region: &[u8]) {
    let Ok(fs) = open(src) else { return };
    let mut buf = vec![0u8; 8192];
    let _ = fs.read_dir(b"/");
    let _ = fs.lstat(region);
    let everything = region == b"/";
    if everything || region == b"/data/holes" {
        let _ = fs.read_at(b"/data/holes", 0, &mut buf);
        let _ = fs.read_at(b"/data/holes", 12_000, &mut buf);
    }
    if everything || region == b"/links/remote-long" {
        let _ = fs.read_link(b"/links/remote-long");
    }
    for (dir, child) in [
        (&b"/small"[..], &b"/small/a"[..]),
        (b"/block50", b"/block50/entry-049"),
        (b"/leaf2000", b"/leaf2000/file-with-a-longer-name-01999"),
        (b"/big50k", b"/big50k/absent"),
    ] {
        if region == dir || (everything && dir != b"/big50k") {
            let _ = fs.read_dir(dir);
            let _ = fs.lstat(child);
            let _ = fs.read_at(child, 0, &mut buf);
        }
    }
}

/// A metadata region: the path it belongs to, its offset, its bytes, its CRC offset (v5).
type Region = (&'static [u8], u64, Vec<u8>, Option<usize>);

/// The metadata regions worth corrupting in `name`: (offset, bytes, CRC offset on v5).
fn regions(name: &str) -> Vec<Region> {
    let src = source(name);
    let fs = open(src.clone()).unwrap();
    let v5 = fs.sb.has_crc();
    let crc = |off| v5.then_some(off);
    let isz = fs.sb.inode_size as usize;
    let mut out = vec![(&b"/"[..], 0, read(src.as_ref(), 0, 512).unwrap(), crc(224))];
    for p in [
        &b"/"[..],
        b"/small",
        b"/block50",
        b"/leaf2000",
        b"/big50k",
        b"/data/holes",
        b"/links/remote-long",
    ] {
        let node = fs.walk(p).unwrap().unwrap();
        let at = fs.sb.ino_offset(node.ino).unwrap();
        // The core and the start of the fork: where the decoders look.
        out.push((p, at, read(src.as_ref(), at, isz).unwrap(), crc(100)));
    }
    for (p, crc_off) in [
        (&b"/block50"[..], 4),
        (b"/leaf2000", 4),
        (b"/big50k", 64),
        (b"/links/remote-long", 12),
    ] {
        let node = fs.walk(p).unwrap().unwrap();
        let mut len = fs.sb.block_size;
        let at = if node.format == inode::Format::Btree {
            // The first bmbt block the root points to.
            let maxrecs = (node.fork.len() - 4) / 16;
            fs.sb
                .fsb_offset(disk::be64(&node.fork, 4 + maxrecs * 8))
                .unwrap()
        } else {
            let ext = fs.extents(&node).unwrap();
            // A whole directory block when the first extent holds one (the CRC covers it).
            if p != b"/links/remote-long"
                && ext[0].len * u64::from(fs.sb.block_size) >= u64::from(fs.sb.dir_block_size)
            {
                len = fs.sb.dir_block_size;
            }
            fs.sb.fsb_offset(ext[0].fsb).unwrap()
        };
        out.push((
            p,
            at,
            read(src.as_ref(), at, len as usize).unwrap(),
            crc(crc_off),
        ));
    }
    out
}

/// Fuzz finding (fuzz/fuzz_targets/xfs.rs): a volume of 102 or 103 bytes passed the probe
/// (magic and version) and `open` indexed the sector size at 102 past its end.
#[test]
fn volume_ending_inside_the_superblock_is_an_error() {
    for len in [102, 103] {
        let mut vol = vec![0u8; len];
        vol[..4].copy_from_slice(b"XFSB");
        vol[100..102].copy_from_slice(&5u16.to_be_bytes());
        let err = open(Arc::new(vol)).err().expect("refused");
        assert!(matches!(err, FsError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("too small"), "{err}");
    }
}

#[test]
fn corruption_sweep_never_panics_or_hangs() {
    let started = Instant::now();
    let mut cases = 0;
    for name in ["v4", "v5-1k"] {
        let src = source(name);
        for (path, at, block, crc_off) in regions(name) {
            // Every header byte two ways and a stride through the rest; sparser for the big
            // directory, which each case lists whole.
            let (dense, stride) = if path == b"/big50k" {
                (32, 251)
            } else {
                (128, 41)
            };
            let head = (0..block.len().min(dense)).flat_map(|i| [(i, 0x01), (i, 0xff)]);
            let rest = (dense..block.len()).step_by(stride).map(|i| (i, 0xff));
            for (i, x) in head.chain(rest) {
                let patched = Patched {
                    inner: src.clone(),
                    patches: vec![(at, mutate(&block, i, x, crc_off))],
                };
                let t = Instant::now();
                exercise(Arc::new(patched), path);
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "{name}: byte {i} at {at} took {:?}",
                    t.elapsed()
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "{cases} cases");
    eprintln!("{cases} corruptions in {:?}", started.elapsed());
}

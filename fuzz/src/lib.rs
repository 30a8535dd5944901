//! Shared drivers of the fuzz targets: each target is one call into here, so adding a target
//! for a new reader is a ten-line file in `fuzz_targets/` plus its `[[bin]]` entry.
//!
//! A driver exercises a reader's whole read path on the fuzzer's bytes (open, list, read),
//! with every walk bounded so a slow input is the reader's fault, never the driver's. It only
//! calls imgport's public API; it must not reimplement any parsing.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use imgport::guest::fs::{FileSystem, NodeKind};
use imgport::guest::{initramfs, registry};
use imgport::image::detect::{self, OpenOptions};
use imgport::image::{
    DiskImage, ImageFile, ImageFormat, qcow2::Qcow2Image, vhd::VhdImage, vhdx::VhdxImage,
    vmdk::VmdkImage,
};
use imgport::source::ByteSource;

pub use imgport::source::sparse::SparseSource;

/// Directories a file-system walk lists at most.
const MAX_DIRS: usize = 64;
/// Directory entries a walk visits at most.
const MAX_NODES: usize = 512;
/// Bytes read from one file or one extent at most.
const READ_LEN: usize = 8192;
/// Extents whose first bytes are read at most.
const MAX_EXTENT_READS: usize = 16;

/// Wall time one input may take in any target (issue 26: inspection is bounded in time).
pub const TIME_BOUND: Duration = Duration::from_secs(2);
/// Peak resident memory of the fuzzing process, in KiB (issue 26: memory depends on the data,
/// never on claimed sizes).
pub const PEAK_RSS_BOUND_KIB: u64 = 512 << 10;

/// The process's peak resident set size in KiB (`VmHWM` of `/proc/self/status`), or `None`
/// where that file is not there.
pub fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Which bound, if any, one input broke: `elapsed` against [`TIME_BOUND`] and `peak_kib`
/// against [`PEAK_RSS_BOUND_KIB`]; the message names the bound.
pub fn broken_bound(target: &str, elapsed: Duration, peak_kib: Option<u64>) -> Option<String> {
    if elapsed > TIME_BOUND {
        return Some(format!(
            "{target}: one input took {elapsed:?}, over the time bound of {TIME_BOUND:?}"
        ));
    }
    match peak_kib {
        Some(kib) if kib > PEAK_RSS_BOUND_KIB => Some(format!(
            "{target}: peak RSS {kib} KiB, over the memory bound of {PEAK_RSS_BOUND_KIB} KiB"
        )),
        _ => None,
    }
}

/// Held for the processing of one input by every target: when dropped (unless already
/// unwinding from another failure) it panics if a bound of [`broken_bound`] was broken, so a
/// slow or memory-hungry input is a finding like a crash.
struct Bounded {
    target: &'static str,
    started: Instant,
}

impl Bounded {
    fn start(target: &'static str) -> Self {
        Bounded {
            target,
            started: Instant::now(),
        }
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(msg) = broken_bound(self.target, self.started.elapsed(), peak_rss_kib()) {
            panic!("{msg}");
        }
    }
}

/// The per-process file the container targets hand to [`ImageFile`], which reads a real file.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() {
            dir
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("imgport-fuzz-{}", std::process::id()))
    })
}

/// The per-process input file of one run, removed when the run ends (a fuzzer or the smoke
/// test leaves nothing behind in `/dev/shm`).
struct Input(&'static PathBuf);

impl std::ops::Deref for Input {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        self.0
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

/// Writes `data` to the per-process input file.
fn write_input(data: &[u8]) -> Input {
    let path = input_path();
    let mut f = fs::File::create(path).expect("create the fuzz input file");
    f.write_all(data).expect("write the fuzz input file");
    Input(path)
}

/// Reads a bounded set of ranges of an opened virtual disk: its start and end, and the first
/// bytes of its first extents.
fn read_disk(image: &dyn DiskImage) {
    let size = image.virtual_size();
    let mut buf = vec![0u8; READ_LEN];
    let mut read = |offset: u64| {
        let len = size.saturating_sub(offset).min(READ_LEN as u64) as usize;
        let _ = image.read_at(&mut buf[..len], offset);
    };
    read(0);
    read(size.saturating_sub(READ_LEN as u64));
    let _ = image.allocated_size();
    if let Ok(extents) = image.extents() {
        for e in extents.iter().take(MAX_EXTENT_READS) {
            read(e.offset);
        }
    }
}

/// Image headers at the first byte of guest data that [`detect::open`] must never accept
/// (issue 26 "nested images"): a property checked on every opened input.
const NESTED_MAGICS: [&[u8]; 8] = [
    b"QFI\xfb",
    b"conectix",
    b"vhdxfile",
    b"KDMV",
    b"QED\0",
    b"LUKS\xba\xbe",
    b"WithoutFreeSpace",
    b"Bochs Virtual HD Image\0",
];

/// Panics when an opened, non-RAW image's guest data starts with another image's header
/// (for RAW the guest data is the file, which detection itself judged).
fn assert_no_nested_image(image: &dyn DiskImage) {
    if image.format() == ImageFormat::Raw {
        return;
    }
    let mut head = vec![0u8; image.virtual_size().min(64) as usize];
    if image.read_at(&mut head, 0).is_err() {
        return;
    }
    for magic in NESTED_MAGICS {
        assert!(
            !head.starts_with(magic),
            "an image nested in the image was accepted: guest data starts with {magic:?}"
        );
    }
}

/// The container format detector and whichever reader it picks, on a whole file.
pub fn detect(data: &[u8]) {
    let _bounds = Bounded::start("detect");
    let path = write_input(data);
    let _ = detect::inspect(&path, &OpenOptions::default());
    for declared in [
        None,
        Some(ImageFormat::Qcow2),
        Some(ImageFormat::Vhd),
        Some(ImageFormat::Vhdx),
    ] {
        let opts = OpenOptions {
            declared,
            ..OpenOptions::default()
        };
        if let Ok(opened) = detect::open(&path, &opts) {
            assert_no_nested_image(opened.image.as_ref());
            read_disk(opened.image.as_ref());
        }
    }
}

/// An OVA package: the tar index, descriptor, manifest and each disk through detection, then
/// each disk's manifest digest (its member's bytes, at most the input's size).
pub fn ova(data: &[u8]) {
    let _bounds = Bounded::start("ova");
    let input = write_input(data);
    // The package is named by its extension; the input file is linked under that name.
    let path = input.with_extension("ova");
    let _ = fs::remove_file(&path);
    if fs::hard_link(&*input, &path).is_err() {
        return;
    }
    if let Ok(disks) = imgport::image::open_all(&path, &OpenOptions::default()) {
        for opened in &disks {
            opened.file.track_digest();
            read_disk(opened.image.as_ref());
            let _ = opened.file.verify_digest();
            let _ = imgport::image::ova::open_bytes(&opened.report.path);
        }
    }
    let _ = imgport::image::inspect(&path, &OpenOptions::default());
    let _ = fs::remove_file(&path);
}

/// The qcow2 reader on its own, past the detector (so mutated magic still reaches it).
pub fn qcow2(data: &[u8]) {
    let _bounds = Bounded::start("qcow2");
    let path = write_input(data);
    let Ok(file) = ImageFile::open(&path) else {
        return;
    };
    let mut findings = Vec::new();
    if let Ok(Some(image)) = Qcow2Image::open(Arc::new(file), &mut findings) {
        let _ = image.details();
        read_disk(&image);
    }
}

/// The VHD reader on its own, past the detector.
pub fn vhd(data: &[u8]) {
    let _bounds = Bounded::start("vhd");
    let path = write_input(data);
    let Ok(file) = ImageFile::open(&path) else {
        return;
    };
    let mut findings = Vec::new();
    if let Ok(Some(image)) = VhdImage::open(Arc::new(file), &mut findings) {
        let _ = image.details();
        read_disk(&image);
    }
}

/// The VMDK reader on its own, past the detector. A descriptor input may name extent files
/// beside the input file; only regular files there can be opened.
pub fn vmdk(data: &[u8]) {
    let _bounds = Bounded::start("vmdk");
    let path = write_input(data);
    let Ok(file) = ImageFile::open(&path) else {
        return;
    };
    let mut findings = Vec::new();
    if let Ok(Some(image)) = VmdkImage::open(Arc::new(file), &mut findings) {
        let _ = image.details();
        read_disk(&image);
    }
}

/// The VHDX reader on its own, past the detector. Its structures sit at MiB offsets, so a
/// seed in the SPRS form (fuzz/sparse.py) is expanded into a sparse file of its size.
pub fn vhdx(data: &[u8]) {
    let _bounds = Bounded::start("vhdx");
    let path = match SparseSource::parse(data) {
        Some(sparse) => write_sparse_input(&sparse),
        None => write_input(data),
    };
    let Ok(file) = ImageFile::open(&path) else {
        return;
    };
    let mut findings = Vec::new();
    if let Ok(Some(image)) = VhdxImage::open(Arc::new(file), &mut findings) {
        let _ = image.details();
        read_disk(&image);
    }
}

/// Largest file a VHDX seed expands to: the SPRS form may claim 4 GiB, and scanning that in
/// the driver (not the reader) took 12 s on one input.
const MAX_SPARSE_FILE: u64 = 64 << 20;

/// Writes `src` (its first [`MAX_SPARSE_FILE`] bytes) to the per-process input file, leaving
/// its zero pieces as holes.
fn write_sparse_input(src: &SparseSource) -> Input {
    use std::os::unix::fs::FileExt;
    let path = input_path();
    let size = src.size().min(MAX_SPARSE_FILE);
    let f = fs::File::create(path).expect("create the fuzz input file");
    f.set_len(size).expect("size the fuzz input file");
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        if src.read_exact_at(&mut buf[..n], at).is_ok() && buf[..n].iter().any(|&b| b != 0) {
            f.write_all_at(&buf[..n], at)
                .expect("write the fuzz input file");
        }
        at += n as u64;
    }
    Input(path)
}

/// The volume a file-system target reads: a [`SparseSource`] when the input is in that
/// form (how large volumes are seeded), else the bytes themselves.
pub fn volume(data: &[u8]) -> Arc<dyn ByteSource> {
    match SparseSource::parse(data) {
        Some(s) => Arc::new(s),
        None => Arc::new(data.to_vec()),
    }
}

/// Walks a file system breadth-first from `/`, bounded: lists directories, stats every
/// entry, reads the start and a middle range of files and the targets of symlinks.
pub fn walk(fs: &dyn FileSystem) {
    let _ = (fs.kind(), fs.label(), fs.uuid(), fs.case_insensitive());
    let mut queue: Vec<Vec<u8>> = vec![b"/".to_vec()];
    let mut dirs = 0;
    let mut nodes = 0;
    let mut buf = vec![0u8; READ_LEN];
    while let Some(dir) = queue.pop() {
        if dirs == MAX_DIRS {
            break;
        }
        dirs += 1;
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            if nodes == MAX_NODES {
                return;
            }
            nodes += 1;
            let name = &entry.name;
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                continue;
            }
            let mut path = dir.clone();
            if path.len() > 1 {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let Ok(Some(info)) = fs.lstat(&path) else {
                continue;
            };
            match info.kind {
                NodeKind::Dir => queue.push(path),
                NodeKind::File => {
                    let _ = fs.read_at(&path, 0, &mut buf);
                    let _ = fs.read_at(&path, info.size / 2, &mut buf);
                }
                NodeKind::Symlink => {
                    let _ = fs.read_link(&path);
                }
                NodeKind::Other => {}
            }
        }
    }
}

/// The XFS reader on a volume.
pub fn xfs(data: &[u8]) {
    let _bounds = Bounded::start("xfs");
    if let Ok(fs) = imgport::guest::fs::xfs::open(volume(data)) {
        let _ = (
            fs.dirty(),
            fs.dirty_reasons(),
            fs.version(),
            fs.block_size(),
        );
        walk(&fs);
    }
}

/// The ext2/3/4 reader (`ext4-view` behind our geometry checks) on a volume.
pub fn ext4(data: &[u8]) {
    let _bounds = Bounded::start("ext4");
    use imgport::guest::fs::{ext4::Ext4Fs, probe::FsKind};
    tolerate_crate_panics();
    if let Ok(fs) = Ext4Fs::open(volume(data), FsKind::Ext4) {
        walk(&fs);
    }
}

/// The FAT reader on a volume.
pub fn fat(data: &[u8]) {
    let _bounds = Bounded::start("fat");
    if let Ok(fs) = imgport::guest::fs::fat::open(volume(data)) {
        let _ = fs.fat_type();
        walk(&fs);
    }
}

/// Lets panics raised in third-party code (the `ntfs` and `ext4-view` crates and what they
/// call, e.g. `byteorder`) unwind to our readers, which turn them into errors (see
/// `contain_panics` in src/guest/fs/mod.rs); libFuzzer's hook still aborts on a panic in
/// imgport's own code.
fn tolerate_crate_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_crate = info
                .location()
                .is_some_and(|l| l.file().contains("/registry/src/"));
            if !in_crate {
                abort(info);
            }
        }));
    });
}

/// The NTFS reader on a volume.
pub fn ntfs(data: &[u8]) {
    let _bounds = Bounded::start("ntfs");
    tolerate_crate_panics();
    if let Ok(fs) = imgport::guest::fs::ntfs::open(volume(data)) {
        let _ = fs.is_dirty();
        walk(&fs);
    }
}

/// Keys a registry walk visits at most.
const MAX_KEYS: usize = 2000;

/// The registry hive reader: parse, then walk keys and decode every value, bounded.
pub fn registry(data: &[u8]) {
    let _bounds = Bounded::start("registry");
    let Ok(hive) = registry::Hive::parse(data) else {
        return;
    };
    let _ = (hive.is_dirty(), hive.sequence_numbers(), hive.version());
    let _ = hive.key("ControlSet001\\Control\\Session Manager");
    let Ok(root) = hive.root() else {
        return;
    };
    let mut stack = vec![(root, 0usize)];
    let mut keys = 0;
    while let Some((key, depth)) = stack.pop() {
        if keys == MAX_KEYS {
            break;
        }
        keys += 1;
        let _ = (key.name(), key.subkey_count(), key.offset());
        if let Ok(values) = key.values() {
            for v in values {
                let _ = (v.name(), v.value_type(), v.raw_data());
                if let Ok(d) = v.data() {
                    let _ = (d.as_str(), d.as_u64());
                }
            }
        }
        if depth < registry::MAX_KEY_DEPTH
            && let Ok(subkeys) = key.subkeys()
        {
            stack.extend(subkeys.into_iter().map(|k| (k, depth + 1)));
        }
    }
}

/// The initramfs reader, keeping every file within small caps (the decompression cap is
/// lowered too, so a bomb costs milliseconds; the reader's own cap is tested elsewhere).
pub fn initramfs(data: &[u8]) {
    let _bounds = Bounded::start("initramfs");
    let opts = initramfs::ReadOptions {
        want: &|_| true,
        max_file_size: 64 << 10,
        max_captured_total: 1 << 20,
        max_total_bytes: 16 << 20,
    };
    if let Ok(img) = initramfs::parse(data, &opts) {
        for path in img.kept_files() {
            let _ = img.file(path);
            let _ = img.entry(path);
        }
    }
}

/// The partition-table reader (MBR with its logical chain, GPT primary and backup, 512 and
/// 4096-byte sectors, hybrid) on a whole disk.
pub fn partition(data: &[u8]) {
    let _bounds = Bounded::start("partition");
    let disk = volume(data);
    let _ = imgport::guest::partition::read(disk.as_ref());
}

/// The LVM2 reader on a physical volume: label, metadata text, and the first bytes of every
/// linear logical volume it exposes.
pub fn lvm(data: &[u8]) {
    let _bounds = Bounded::start("lvm");
    if let Ok(pv) = imgport::guest::lvm::open(volume(data)) {
        let mut buf = vec![0u8; READ_LEN];
        for lv in &pv.lvs {
            if let Some(src) = &lv.source {
                let len = src.size().min(READ_LEN as u64) as usize;
                let _ = src.read_exact_at(&mut buf[..len], 0);
                let end = src.size().saturating_sub(len as u64);
                let _ = src.read_exact_at(&mut buf[..len], end);
            }
        }
    }
}

/// The btrfs reader (default subvolume) on a volume.
pub fn btrfs(data: &[u8]) {
    let _bounds = Bounded::start("btrfs");
    if let Ok(fs) = imgport::guest::fs::btrfs::BtrfsFs::open(volume(data)) {
        walk(&fs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_what_was_broken() {
        assert_eq!(
            broken_bound("t", Duration::from_millis(10), Some(1024)),
            None
        );
        assert_eq!(broken_bound("t", Duration::from_millis(10), None), None);
        let slow = broken_bound("detect", TIME_BOUND * 2, Some(1024)).unwrap();
        assert!(slow.contains("time bound of 2s"), "{slow}");
        let fat = broken_bound("qcow2", Duration::ZERO, Some(PEAK_RSS_BOUND_KIB + 1)).unwrap();
        assert!(fat.contains("memory bound of 524288 KiB"), "{fat}");
    }

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
    }
}

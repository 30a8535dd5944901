//! NTFS through the `ntfs` crate (read-only, no unsafe), behind [`FileSystem`].
//!
//! Owns the adapter from [`ByteSource`] to the crate's `Read + Seek` and the mapping of its
//! API to ours; the on-disk format is the crate's. Names compare without case (the volume's
//! `$UpCase` table). What the crate cannot read (compressed, encrypted, reparse-point data such
//! as WOF/CompactOS files) is [`FsError::Unsupported`] naming the file, never wrong bytes.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileNamespace, NtfsVolumeFlags};
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsFile, NtfsReadSeek};

use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind, contain_panics};
use imgport_image::source::ByteSource;

/// Most entries we list from one directory.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Deepest path we walk.
const MAX_PATH_DEPTH: usize = 64;
/// File record numbers below this are the NTFS metafiles (`$MFT` … `$Extend`, reserved);
/// they are not listed (as ntfs-3g hides them).
const FIRST_USER_RECORD: u64 = 16;

/// `Read + Seek` over a [`ByteSource`], as the `ntfs` crate wants.
struct Reader<'a> {
    src: &'a dyn ByteSource,
    pos: u64,
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.src.size().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.src.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Reader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// An opened NTFS volume.
pub struct NtfsFs {
    source: Arc<dyn ByteSource>,
    ntfs: Ntfs,
    label: Option<String>,
    dirty: Option<bool>,
}

/// True when `boot` (the first 512 bytes of a volume) is an NTFS boot sector (`NTFS    ` at 3
/// and the 55 AA signature).
pub fn probe(boot: &[u8]) -> bool {
    boot.len() >= 512 && &boot[3..11] == b"NTFS    " && boot[510..512] == [0x55, 0xAA]
}

/// Runs `f` with panics of the `ntfs` crate contained (see [`contain_panics`]): the crate (0.4)
/// indexes slices with lengths taken from the volume without checking them all, e.g. an index
/// entry whose length is below its 16-byte header panics in `NtfsIndexEntry::index_entry_length`
/// (found by `fuzz/fuzz_targets/ntfs.rs`). Every call into the crate goes through here.
fn contain<T>(what: &[u8], f: impl FnOnce() -> Result<T, FsError>) -> Result<T, FsError> {
    contain_panics("ntfs", what, f)
}

/// Opens the NTFS volume on `source` and reads its `$UpCase` table and label.
pub fn open(source: Arc<dyn ByteSource>) -> Result<NtfsFs, FsError> {
    contain(b"volume", || open_volume(source))
}

fn open_volume(source: Arc<dyn ByteSource>) -> Result<NtfsFs, FsError> {
    let mut boot = [0u8; 512];
    source.read_exact_at(&mut boot, 0)?;
    if !probe(&boot) {
        return Err(corrupt(
            "boot sector",
            "no \"NTFS    \" signature at 3".into(),
        ));
    }
    let mut r = Reader {
        src: source.as_ref(),
        pos: 0,
    };
    let mut ntfs = Ntfs::new(&mut r).map_err(|e| ntfs_err("boot sector", e))?;
    ntfs.read_upcase_table(&mut r)
        .map_err(|e| ntfs_err("$UpCase", e))?;
    let label = match ntfs.volume_name(&mut r) {
        Some(Ok(name)) => Some(name.name().to_string_lossy()).filter(|s| !s.is_empty()),
        _ => None,
    };
    let dirty = ntfs
        .volume_info(&mut r)
        .ok()
        .map(|i| i.flags().contains(NtfsVolumeFlags::IS_DIRTY));
    Ok(NtfsFs {
        source,
        ntfs,
        label,
        dirty,
    })
}

/// The crate's error as ours: a read of the volume that failed stays [`FsError::Io`], so a
/// caller can tell a failed read from damage; a read past the volume's end or a seek before
/// its start (which only the volume's own metadata can ask for) and every other error is
/// [`FsError::Corrupt`].
fn ntfs_err(what: &str, e: ntfs::NtfsError) -> FsError {
    match e {
        ntfs::NtfsError::Io(io)
            if !matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput
            ) =>
        {
            FsError::Io(io)
        }
        e => corrupt(what, e.to_string()),
    }
}

fn corrupt(what: &str, rule: String) -> FsError {
    FsError::Corrupt {
        fs: "ntfs",
        what: what.to_string(),
        rule,
    }
}

fn path_str(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn path_err(path: &[u8], rule: &str) -> FsError {
    FsError::Path {
        path: path_str(path),
        rule: rule.to_string(),
    }
}

fn kind_of(file: &NtfsFile<'_>) -> Result<NodeKind, ntfs::NtfsError> {
    let attrs = file.info()?.file_attributes();
    Ok(if attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT) {
        // Junctions, symlinks and WOF files: the crate cannot interpret reparse data.
        NodeKind::Other
    } else if file.is_directory() {
        NodeKind::Dir
    } else {
        NodeKind::File
    })
}

impl NtfsFs {
    /// The `$Volume` dirty flag: Windows did not unmount cleanly (or chkdsk is pending), so
    /// the captured volume may be inconsistent (docs/INSPECTION.md §Windows). `None` when the
    /// volume information cannot be read.
    pub fn is_dirty(&self) -> Option<bool> {
        self.dirty
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            src: self.source.as_ref(),
            pos: 0,
        }
    }

    /// The file at `path`; `None` when a component is absent.
    fn lookup<'n>(
        &'n self,
        r: &mut Reader<'_>,
        path: &[u8],
    ) -> Result<Option<NtfsFile<'n>>, FsError> {
        let text = std::str::from_utf8(path).map_err(|_| path_err(path, "not UTF-8"))?;
        let err = |e: ntfs::NtfsError| ntfs_err(&path_str(path), e);
        let mut file = self.ntfs.root_directory(r).map_err(err)?;
        for (depth, part) in text.split('/').filter(|p| !p.is_empty()).enumerate() {
            if depth >= MAX_PATH_DEPTH {
                return Err(path_err(path, "deeper than 64 levels"));
            }
            if !file.is_directory() {
                return Ok(None);
            }
            let index = file.directory_index(r).map_err(err)?;
            let mut finder = index.finder();
            let next = match NtfsFileNameIndex::find(&mut finder, &self.ntfs, r, part) {
                None => return Ok(None),
                Some(entry) => entry.map_err(err)?.to_file(&self.ntfs, r).map_err(err)?,
            };
            file = next;
        }
        Ok(Some(file))
    }
}

/// The [`FileSystem`] operations; the trait methods run them inside [`contain`].
impl NtfsFs {
    fn lstat_inner(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        let mut r = self.reader();
        let Some(file) = self.lookup(&mut r, path)? else {
            return Ok(None);
        };
        let err = |e: ntfs::NtfsError| ntfs_err(&path_str(path), e);
        let kind = kind_of(&file).map_err(err)?;
        let size = match kind {
            NodeKind::File => match file.data(&mut r, "") {
                Some(item) => item
                    .map_err(err)?
                    .to_attribute()
                    .map_err(err)?
                    .value_length(),
                None => 0,
            },
            _ => 0,
        };
        Ok(Some(NodeInfo { kind, size }))
    }

    fn read_dir_inner(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let mut r = self.reader();
        let file = self
            .lookup(&mut r, path)?
            .ok_or_else(|| path_err(path, "no such directory"))?;
        if !file.is_directory() {
            return Err(path_err(path, "not a directory"));
        }
        let err = |e: ntfs::NtfsError| ntfs_err(&path_str(path), e);
        let index = file.directory_index(&mut r).map_err(err)?;
        let mut entries = index.entries();
        let mut out = Vec::new();
        while let Some(entry) = entries.next(&mut r) {
            let entry = entry.map_err(err)?;
            let Some(name) = entry.key() else { continue };
            let name = name.map_err(err)?;
            if name.namespace() == NtfsFileNamespace::Dos
                || entry.file_reference().file_record_number() < FIRST_USER_RECORD
            {
                continue;
            }
            if out.len() >= MAX_DIR_ENTRIES {
                return Err(corrupt(
                    &path_str(path),
                    format!("directory holds more than {MAX_DIR_ENTRIES} entries"),
                ));
            }
            let attrs = name.file_attributes();
            let kind = if attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT) {
                NodeKind::Other
            } else if name.is_directory() {
                NodeKind::Dir
            } else {
                NodeKind::File
            };
            out.push(DirEntry {
                name: name.name().to_string_lossy().into_bytes(),
                kind,
            });
        }
        Ok(out)
    }

    fn read_at_inner(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let mut r = self.reader();
        let file = self
            .lookup(&mut r, path)?
            .ok_or_else(|| path_err(path, "no such file"))?;
        let err = |e: ntfs::NtfsError| ntfs_err(&path_str(path), e);
        match kind_of(&file).map_err(err)? {
            NodeKind::File => {}
            NodeKind::Dir => return Err(path_err(path, "is a directory")),
            _ => {
                return Err(FsError::Unsupported {
                    fs: "ntfs",
                    what: format!(
                        "reading {} (a reparse point, e.g. a WOF-compressed file)",
                        path_str(path)
                    ),
                });
            }
        }
        let Some(item) = file.data(&mut r, "") else {
            return Ok(0);
        };
        let item = item.map_err(err)?;
        let attr = item.to_attribute().map_err(err)?;
        let flags = attr.flags();
        if flags.intersects(NtfsAttributeFlags::COMPRESSED | NtfsAttributeFlags::ENCRYPTED) {
            let how = if flags.contains(NtfsAttributeFlags::ENCRYPTED) {
                "encrypted"
            } else {
                "compressed"
            };
            return Err(FsError::Unsupported {
                fs: "ntfs",
                what: format!("reading {} ({how} data)", path_str(path)),
            });
        }
        let size = attr.value_length();
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = (size - offset).min(buf.len() as u64) as usize;
        let mut value = attr.value(&mut r).map_err(err)?;
        value.seek(&mut r, SeekFrom::Start(offset)).map_err(err)?;
        let mut done = 0;
        while done < want {
            let n = value.read(&mut r, &mut buf[done..want]).map_err(err)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

impl FileSystem for NtfsFs {
    fn kind(&self) -> &'static str {
        "ntfs"
    }

    fn dirty(&self) -> Option<Vec<String>> {
        (self.is_dirty() == Some(true)).then(|| {
            vec!["the $Volume dirty flag is set (not shut down cleanly, or chkdsk pending)".into()]
        })
    }

    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// The 64-bit volume serial as blkid prints it: 16 upper-case hex digits.
    fn uuid(&self) -> Option<String> {
        Some(format!("{:016X}", self.ntfs.serial_number()))
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        contain(path, || self.lstat_inner(path))
    }

    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        Err(FsError::Unsupported {
            fs: "ntfs",
            what: format!("reparse point {}", path_str(path)),
        })
    }

    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        contain(path, || self.read_dir_inner(path))
    }

    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        contain(path, || self.read_at_inner(path, offset, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fat::tests::test_image;

    fn open_img(name: &str) -> NtfsFs {
        open(Arc::new(test_image(name))).unwrap()
    }

    #[test]
    fn reads_files_case_insensitively() {
        let fs = open_img("ntfs-win2022.img");
        assert_eq!(fs.kind(), "ntfs");
        assert!(fs.case_insensitive());
        assert_eq!(fs.label().as_deref(), Some("WIN2022"));
        let uuid = fs.uuid().unwrap();
        assert_eq!(uuid.len(), 16);
        assert!(
            uuid.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        for (path, src) in [
            (
                "/Windows/System32/config/SOFTWARE",
                "hives/win2022/SOFTWARE",
            ),
            (
                "/WINDOWS/system32/Config/software",
                "hives/win2022/SOFTWARE",
            ),
            ("/windows/System32/config/SYSTEM", "hives/win2022/SYSTEM"),
            ("/Windows/System32/cmd.exe", "files/cmd-x86_64.exe"),
        ] {
            let want = test_image(src);
            let info = fs.lstat(path.as_bytes()).unwrap().unwrap();
            assert_eq!(info.kind, NodeKind::File);
            assert_eq!(info.size, want.len() as u64, "{path}");
            let mut buf = vec![0u8; want.len() + 7];
            let n = fs.read_at(path.as_bytes(), 0, &mut buf).unwrap();
            assert_eq!(&buf[..n], &want[..], "{path}");
            // A read from the middle.
            let mut part = vec![0u8; 1000];
            let n = fs.read_at(path.as_bytes(), 4000, &mut part).unwrap();
            assert_eq!(&part[..n], &want[4000..4000 + n]);
        }
        let mut names: Vec<String> = fs
            .read_dir(b"/Windows")
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["SysWOW64", "System32"]);
        let root: Vec<String> = fs
            .read_dir(b"/")
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        assert!(root.contains(&"Windows".to_string()), "{root:?}");
        assert!(!root.iter().any(|n| n == "$MFT"), "{root:?}");
        assert_eq!(
            fs.lstat(b"/windows/system32").unwrap().unwrap().kind,
            NodeKind::Dir
        );
        assert!(fs.lstat(b"/Windows/nope").unwrap().is_none());
        assert!(fs.lstat(b"/Windows/System32/cmd.exe/x").unwrap().is_none());
        assert!(fs.read_dir(b"/Windows/System32/cmd.exe").is_err());
        assert!(fs.read_at(b"/Windows", 0, &mut [0u8; 4]).is_err());
    }

    #[test]
    fn reads_resident_data_and_names_with_spaces() {
        let fs = open_img("ntfs-win2012r2.img");
        let path = b"/program files/Cloudbase Solutions/cloudbase-init/BIN/OpenStackService.exe";
        assert_eq!(fs.lstat(path).unwrap().unwrap().size, 2);
        let mut buf = [0u8; 8];
        assert_eq!(fs.read_at(path, 0, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"MZ");
        assert_eq!(fs.read_at(path, 1, &mut buf).unwrap(), 1);
        assert_eq!(fs.read_at(path, 2, &mut buf).unwrap(), 0);
    }

    #[test]
    fn compressed_file_is_unsupported_by_name() {
        let fs = open_img("ntfs-win2019.img");
        let err = fs
            .read_at(b"/Windows/System32/cmd.exe", 0, &mut [0u8; 64])
            .unwrap_err();
        assert!(matches!(err, FsError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("cmd.exe"), "{err}");
        assert!(err.to_string().contains("compressed"), "{err}");
        // The hives beside it were written before System32 was marked compressed.
        let want = test_image("hives/win2019/SYSTEM");
        let mut buf = vec![0u8; want.len()];
        let n = fs
            .read_at(b"/Windows/System32/config/SYSTEM", 0, &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], &want[..]);
    }

    /// Sets the dirty flag in `$Volume`'s `$VOLUME_INFORMATION` (MFT record 3; the MFT is at
    /// cluster 4 of 4 KiB in these images, records are 1 KiB).
    fn make_dirty(img: &mut [u8]) {
        let rec = 0x4000 + 3 * 1024;
        assert_eq!(&img[rec..rec + 4], b"FILE");
        let le16 = |b: &[u8], at: usize| usize::from(imgport_base::bytes::le16(b, at));
        let le32 = imgport_base::bytes::le32;
        let mut at = rec + le16(img, rec + 0x14);
        while le32(img, at) != 0x70 {
            assert_ne!(le32(img, at), u32::MAX, "no $VOLUME_INFORMATION");
            at += le32(img, at + 4) as usize;
        }
        let flags = at + le16(img, at + 0x14) + 10;
        img[flags] |= 1;
    }

    /// Fuzz finding (fuzz/fuzz_targets/ntfs.rs): an index entry length below the 16-byte
    /// entry header made the `ntfs` crate index an empty slice and panic while listing the
    /// directory. It is now a corrupt-volume error naming the path.
    #[test]
    fn index_entry_shorter_than_its_header_is_an_error() {
        let mut img = test_image("ntfs-win2022.img");
        // The root directory is MFT record 5; its $INDEX_ROOT (0x90) value is a 16-byte
        // root header, then the node header whose first field is the entries' offset.
        let rec = 0x4000 + 5 * 1024;
        assert_eq!(&img[rec..rec + 4], b"FILE");
        let le16 = |b: &[u8], at: usize| usize::from(imgport_base::bytes::le16(b, at));
        let le32 = imgport_base::bytes::le32;
        let mut at = rec + le16(&img, rec + 0x14);
        while le32(&img, at) != 0x90 {
            assert_ne!(le32(&img, at), u32::MAX, "no $INDEX_ROOT");
            at += le32(&img, at + 4) as usize;
        }
        let node = at + le16(&img, at + 0x14) + 16;
        let entry_len = node + le32(&img, node) as usize + 8;
        assert_ne!(entry_len % 512, 510, "on an update-sequence slot");
        img[entry_len..entry_len + 2].copy_from_slice(&0u16.to_le_bytes());
        let fs = open(Arc::new(img)).unwrap();
        let err = fs.read_dir(b"/").unwrap_err();
        assert!(matches!(err, FsError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn dirty_volume_flag() {
        assert_eq!(open_img("ntfs-win2022.img").is_dirty(), Some(false));
        let mut img = test_image("ntfs-win2022.img");
        make_dirty(&mut img);
        assert_eq!(open(Arc::new(img)).unwrap().is_dirty(), Some(true));
    }

    #[test]
    fn probe_accepts_ntfs_only() {
        assert!(probe(&test_image("ntfs-win2022.img")[..512]));
        assert!(!probe(&test_image("esp32.img")[..512]));
        assert!(open(Arc::new(test_image("esp32.img"))).is_err());
    }

    #[test]
    fn hostile_byte_flips_never_panic() {
        let good = test_image("ntfs-win2012r2.img");
        // The boot sector and the MFT (cluster 4 of 4 KiB): records 0..80 of 1 KiB hold the
        // metafiles and, from record 64, the files windows.sh wrote.
        let mut rng = fastrand::Rng::with_seed(0x4e7f5);
        let mut opened = 0;
        for _ in 0..150 {
            let mut img = good.clone();
            for _ in 0..rng.usize(1..12) {
                let i = if rng.bool() {
                    rng.usize(0..1024)
                } else {
                    rng.usize(0x4000..0x4000 + 80 * 1024)
                };
                img[i] = rng.u8(..);
            }
            if let Ok(fs) = open(Arc::new(img)) {
                opened += 1;
                let _ = fs.read_dir(b"/");
                let _ = fs.read_dir(b"/Windows/System32");
                let _ = fs.lstat(b"/Windows/System32/config/SOFTWARE");
                let _ = fs.read_at(b"/Windows/System32/cmd.exe", 0, &mut [0u8; 512]);
            }
        }
        assert!(
            opened > 20,
            "the sweep reached the file reads ({opened} opened)"
        );
    }
}

//! ext2/3/4 through the `ext4-view` crate (read-only, journal replayed in memory, built for
//! untrusted input), behind [`FileSystem`].
//!
//! `ext4_view::Ext4` is reference-counted and not `Send`, while [`FileSystem`] must be shared
//! across threads: the volume is therefore owned by one worker thread, and every call is a
//! request to it over a channel. The thread ends when the [`Ext4Fs`] is dropped. A file read
//! in pieces (`read_head_chunks`, the initramfs) comes back over a bounded channel while the
//! thread reads on, so its reading and its parsing overlap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, SyncSender, channel, sync_channel};

use ext4_view::{Ext4, Ext4Error, Ext4Read};

use super::kind::FsKind;
use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind, contain_panics};
use imgport_image::source::ByteSource;

/// Most entries returned for one directory (a bound against hostile directories).
pub const MAX_DIR_ENTRIES: usize = 100_000;

type Reply<T> = Sender<Result<T, FsError>>;

enum Request {
    Lstat(Vec<u8>, Reply<Option<NodeInfo>>),
    ReadLink(Vec<u8>, Reply<Vec<u8>>),
    ReadDir(Vec<u8>, Reply<Vec<DirEntry>>),
    ReadAt(Vec<u8>, u64, usize, Reply<Vec<u8>>),
    /// The first `len` bytes in [`PIECE`]-byte pieces, then `done`.
    ReadHead(
        Vec<u8>,
        usize,
        SyncSender<Result<Vec<u8>, FsError>>,
        Box<dyn FnOnce() + Send>,
    ),
}

/// Size of the pieces [`FileSystem::read_head_chunks`] hands over: a multiple of every block
/// size (at most 64 KiB), so the pieces take the same block reads as one whole read.
const PIECE: usize = 256 << 10;
/// Pieces read ahead of the caller: what a streamed file holds in memory is about
/// `(PIECES_AHEAD + 2) * PIECE` bytes, not the file.
const PIECES_AHEAD: usize = 4;

/// An ext2/3/4 volume opened read-only.
pub struct Ext4Fs {
    kind: &'static str,
    label: Option<String>,
    uuid: Option<String>,
    tx: Mutex<Sender<Request>>,
    /// Answers of `lstat` calls that worked: the path resolver asks for every prefix of every
    /// path, and each `ext4-view` lookup walks (and checksums) the directories from the root.
    lstats: Mutex<HashMap<Vec<u8>, Option<NodeInfo>>>,
}

/// Most `lstat` answers kept (about 100 bytes each); past it, later answers are not kept.
const MAX_LSTATS: usize = 8192;

/// Block groups accepted (2^18: 32 TiB with 4 KiB blocks, far past ImportImage's 2 TiB). The
/// `ext4-view` crate allocates its group-descriptor list from the superblock's counts before
/// reading it, so a hostile count would abort the process (fuzz finding: a 32 GiB allocation).
const MAX_BLOCK_GROUPS: u64 = 1 << 18;

/// Checks the superblock's geometry before `ext4-view` trusts it: block size, blocks per group,
/// and a group count that is bounded and whose descriptor table fits in the volume. Returns the
/// block size.
/// Offsets are those of the ext4 superblock (at byte 1024 of the volume).
fn check_geometry(source: &dyn ByteSource) -> Result<u64, FsError> {
    let bad = |rule: String| FsError::Corrupt {
        fs: "ext4",
        what: "superblock".into(),
        rule,
    };
    let mut sb = [0u8; 1024];
    source
        .read_exact_at(&mut sb, 1024)
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    let u32_at = |o: usize| imgport_base::bytes::le32(&sb, o);
    let u16_at = |o: usize| imgport_base::bytes::le16(&sb, o);
    let log_block = u32_at(0x18);
    if log_block > 6 {
        return Err(bad(format!(
            "s_log_block_size {log_block} gives a block over 64 KiB"
        )));
    }
    let block_size = 1024u64 << log_block;
    let incompat = u32_at(0x60);
    let is_64bit = incompat & 0x80 != 0;
    // `ext4-view` counts s_blocks_count_hi even without the 64bit feature (fuzz finding: a
    // 32-bit volume with a stray high word made it allocate 1.8 GiB of descriptors), so the
    // check must count it too.
    let blocks = (u64::from(u32_at(0x150)) << 32) | u64::from(u32_at(0x4));
    let first_data_block = u64::from(u32_at(0x14));
    let per_group = u64::from(u32_at(0x20));
    // With bigalloc a bitmap bit is a cluster of blocks, so a group may hold more blocks.
    let bigalloc = u32_at(0x64) & 0x200 != 0;
    if per_group == 0 || (!bigalloc && per_group > 8 * block_size) {
        return Err(bad(format!(
            "s_blocks_per_group {per_group} is not within 1..={} (one bitmap block)",
            8 * block_size
        )));
    }
    let groups = blocks.saturating_sub(first_data_block).div_ceil(per_group);
    if groups > MAX_BLOCK_GROUPS {
        return Err(bad(format!(
            "{groups} block groups ({blocks} blocks of {per_group} per group); at most \
             {MAX_BLOCK_GROUPS} are read"
        )));
    }
    let desc_size = if is_64bit {
        u64::from(u16_at(0xFE)).max(32)
    } else {
        32
    };
    let table = groups.saturating_mul(desc_size);
    if table > source.size() {
        return Err(bad(format!(
            "the group descriptor table ({table} bytes) is larger than the volume ({} bytes)",
            source.size()
        )));
    }
    Ok(block_size)
}

/// `ext4-view` reads through this adapter.
struct Reader(Arc<dyn ByteSource>);

impl Ext4Read for Reader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.read_exact_at(dst, start_byte).map_err(Into::into)
    }
}

fn corrupt(e: Ext4Error, what: &[u8]) -> FsError {
    match e {
        Ext4Error::Incompatible(i) => FsError::Unsupported {
            fs: "ext4",
            what: format!("{} ({i})", String::from_utf8_lossy(what)),
        },
        other => FsError::Corrupt {
            fs: "ext4",
            what: String::from_utf8_lossy(what).into_owned(),
            rule: other.to_string(),
        },
    }
}

fn kind_of(t: ext4_view::FileType) -> NodeKind {
    if t.is_regular_file() {
        NodeKind::File
    } else if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else {
        NodeKind::Other
    }
}

/// Runs one request with `ext4-view`'s panics contained: its `File::read_bytes` unwraps a next
/// block that a file whose size exceeds its block map does not have (fuzz finding).
fn contained<T>(path: &[u8], f: impl FnOnce() -> Result<T, FsError>) -> Result<T, FsError> {
    contain_panics("ext4", path, f)
}

/// Blocks `ext4-view` may step through to reach a read offset: its `File::seek_to` walks the
/// block map one block at a time, so one read of a hostile file of 2^40 bytes stepped through
/// up to 2^30 blocks (fuzz finding). 2^20 blocks is 1 GiB into a file of 1 KiB blocks, far past
/// what inspection reads.
const MAX_SEEK_BLOCKS: u64 = 1 << 20;

/// Longest symlink target read: Linux's `PATH_MAX`.
const MAX_LINK_TARGET: u64 = 4096;

fn serve(fs: &Ext4, block_size: u64, req: Request) {
    fn path(p: &[u8]) -> Result<ext4_view::Path<'_>, FsError> {
        ext4_view::Path::try_from(p).map_err(|e| FsError::Path {
            path: String::from_utf8_lossy(p).into_owned(),
            rule: e.to_string(),
        })
    }
    match req {
        Request::Lstat(p, reply) => {
            let r = contained(&p, || {
                path(&p).and_then(|path| match fs.symlink_metadata(path) {
                    Ok(m) => Ok(Some(NodeInfo {
                        kind: kind_of(m.file_type()),
                        size: m.len(),
                    })),
                    Err(Ext4Error::NotFound | Ext4Error::NotADirectory) => Ok(None),
                    Err(e) => Err(corrupt(e, &p)),
                })
            });
            let _ = reply.send(r);
        }
        Request::ReadLink(p, reply) => {
            let r = contained(&p, || {
                path(&p).and_then(|path| {
                    // `ext4-view` allocates the size the inode claims before reading it (a
                    // 1 TB symlink aborted the process: fuzz finding).
                    let size = fs.symlink_metadata(path).map_err(|e| corrupt(e, &p))?.len();
                    if size > MAX_LINK_TARGET {
                        return Err(FsError::Corrupt {
                            fs: "ext4",
                            what: String::from_utf8_lossy(&p).into_owned(),
                            rule: format!(
                                "the symlink claims a {size}-byte target; a target is at most \
                                 {MAX_LINK_TARGET} bytes (PATH_MAX)"
                            ),
                        });
                    }
                    fs.read_link(path)
                        .map(|t| t.as_ref().to_vec())
                        .map_err(|e| corrupt(e, &p))
                })
            });
            let _ = reply.send(r);
        }
        Request::ReadDir(p, reply) => {
            let r = contained(&p, || {
                path(&p).and_then(|path| {
                    let mut out = Vec::new();
                    for entry in fs.read_dir(path).map_err(|e| corrupt(e, &p))? {
                        let entry = entry.map_err(|e| corrupt(e, &p))?;
                        let name = entry.file_name().as_ref().to_vec();
                        if name == b"." || name == b".." {
                            continue;
                        }
                        if out.len() >= MAX_DIR_ENTRIES {
                            return Err(FsError::Path {
                                path: String::from_utf8_lossy(&p).into_owned(),
                                rule: format!("more than {MAX_DIR_ENTRIES} directory entries"),
                            });
                        }
                        let kind = entry.file_type().map(kind_of).unwrap_or(NodeKind::Other);
                        out.push(DirEntry { name, kind });
                    }
                    Ok(out)
                })
            });
            let _ = reply.send(r);
        }
        Request::ReadAt(p, offset, len, reply) => {
            let r = contained(&p, || {
                path(&p).and_then(|path| {
                    let mut file = fs.open(path).map_err(|e| corrupt(e, &p))?;
                    let size = file.metadata().len();
                    if offset >= size {
                        return Ok(Vec::new());
                    }
                    let want = (size - offset).min(len as u64) as usize;
                    if offset / block_size > MAX_SEEK_BLOCKS {
                        return Err(FsError::Path {
                            path: String::from_utf8_lossy(&p).into_owned(),
                            rule: format!(
                                "reading at offset {offset} walks {} blocks of its block map; \
                                 at most {MAX_SEEK_BLOCKS} are walked",
                                offset / block_size
                            ),
                        });
                    }
                    let mut buf = vec![0u8; want];
                    imgport_base::mem::advise_huge_pages(buf.as_ptr(), buf.len());
                    file.seek_to(offset).map_err(|e| corrupt(e, &p))?;
                    let mut filled = 0;
                    while filled < want {
                        let n = file
                            .read_bytes(&mut buf[filled..])
                            .map_err(|e| corrupt(e, &p))?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    buf.truncate(filled);
                    Ok(buf)
                })
            });
            let _ = reply.send(r);
        }
        Request::ReadHead(p, len, pieces, done) => {
            let r = contained(&p, || {
                path(&p).and_then(|path| {
                    let mut file = fs.open(path).map_err(|e| corrupt(e, &p))?;
                    let want = file.metadata().len().min(len as u64) as usize;
                    file.seek_to(0).map_err(|e| corrupt(e, &p))?;
                    // The same `read_bytes` calls as one whole read (ReadAt), into pieces.
                    let mut filled = 0;
                    while filled < want {
                        let mut piece = vec![0u8; (want - filled).min(PIECE)];
                        let mut got = 0;
                        let mut end = false;
                        while got < piece.len() {
                            let n = file
                                .read_bytes(&mut piece[got..])
                                .map_err(|e| corrupt(e, &p))?;
                            if n == 0 {
                                end = true;
                                break;
                            }
                            got += n;
                        }
                        piece.truncate(got);
                        filled += got;
                        if (got > 0 && pieces.send(Ok(piece)).is_err()) || end {
                            break; // the caller is gone, or the file ended early
                        }
                    }
                    Ok(())
                })
            });
            if let Err(e) = r {
                let _ = pieces.send(Err(e));
            }
            done();
        }
    }
}

impl Ext4Fs {
    /// Opens the ext2/3/4 volume on `source` (its superblock, group descriptors and journal
    /// are read and checked now).
    pub fn open(source: Arc<dyn ByteSource>, kind: FsKind) -> Result<Self, FsError> {
        let block_size = check_geometry(source.as_ref())?;
        let (tx, rx) = channel::<Request>();
        let (ready_tx, ready_rx) = channel();
        std::thread::Builder::new()
            .name("ext4".into())
            .spawn(move || {
                let loaded = contained(b"superblock", || {
                    Ext4::load(Box::new(Reader(source))).map_err(|e| corrupt(e, b"superblock"))
                });
                let fs = match loaded {
                    Ok(fs) => fs,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let label = fs.label().to_str().ok().map(str::to_owned);
                let uuid = fs.uuid().to_string();
                let _ = ready_tx.send(Ok((label, uuid)));
                for req in rx {
                    serve(&fs, block_size, req);
                }
            })?;
        let (label, uuid) = ready_rx.recv().map_err(|_| FsError::Corrupt {
            fs: "ext4",
            what: "superblock".into(),
            rule: "the reader stopped while loading".into(),
        })??;
        Ok(Self {
            kind: kind.name(),
            label: label.filter(|l| !l.is_empty()),
            uuid: Some(uuid),
            tx: Mutex::new(tx),
            lstats: Mutex::new(HashMap::new()),
        })
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, FsError> {
        let (reply, answer) = channel();
        let sent = self
            .tx
            .lock()
            .map_err(|_| stopped())?
            .send(make(reply))
            .is_ok();
        if !sent {
            return Err(stopped());
        }
        answer.recv().map_err(|_| stopped())?
    }
}

fn stopped() -> FsError {
    FsError::Corrupt {
        fs: "ext4",
        what: "volume".into(),
        rule: "the reader thread stopped".into(),
    }
}

impl FileSystem for Ext4Fs {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn uuid(&self) -> Option<String> {
        self.uuid.clone()
    }
    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        if let Some(known) = self.lstats.lock().ok().and_then(|m| m.get(path).copied()) {
            return Ok(known);
        }
        // A failed lookup is not kept: it is asked (and fails, or is logged) again.
        let info = self.ask(|r| Request::Lstat(path.to_vec(), r))?;
        if let Ok(mut m) = self.lstats.lock()
            && m.len() < MAX_LSTATS
        {
            m.insert(path.to_vec(), info);
        }
        Ok(info)
    }
    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.ask(|r| Request::ReadLink(path.to_vec(), r))
    }
    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        self.ask(|r| Request::ReadDir(path.to_vec(), r))
    }
    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let data = self.ask(|r| Request::ReadAt(path.to_vec(), offset, buf.len(), r))?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
    fn read_head(&self, path: &[u8], len: usize) -> Result<Vec<u8>, FsError> {
        self.ask(|r| Request::ReadAt(path.to_vec(), 0, len, r))
    }
    fn read_head_chunks(
        &self,
        path: &[u8],
        len: usize,
        done: Box<dyn FnOnce() + Send>,
    ) -> Box<dyn Iterator<Item = Result<Vec<u8>, FsError>> + '_> {
        let (tx, rx) = sync_channel(PIECES_AHEAD);
        let sent = self
            .tx
            .lock()
            .map(|t| {
                t.send(Request::ReadHead(path.to_vec(), len, tx, done))
                    .is_ok()
            })
            .unwrap_or(false);
        if !sent {
            return Box::new(std::iter::once(Err(stopped())));
        }
        Box::new(rx.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_group_count_is_refused_before_ext4_view_allocates() {
        // A 64 KiB volume whose superblock claims 2^40 blocks of 1 KiB, 8 per group.
        let mut v = vec![0u8; 64 * 1024];
        let sb = 1024;
        v[sb + 0x38..sb + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        v[sb + 0x60..sb + 0x64].copy_from_slice(&0x80u32.to_le_bytes()); // 64bit
        v[sb + 0x150..sb + 0x154].copy_from_slice(&256u32.to_le_bytes()); // hi: 2^40 blocks
        v[sb + 0x20..sb + 0x24].copy_from_slice(&8u32.to_le_bytes());
        let err = check_geometry(&v).unwrap_err().to_string();
        assert!(err.contains("block groups"), "{err}");
        // Blocks per group past one bitmap block, and a block size past 64 KiB.
        v[sb + 0x150..sb + 0x154].copy_from_slice(&0u32.to_le_bytes());
        v[sb + 0x20..sb + 0x24].copy_from_slice(&(8 * 1024 + 1u32).to_le_bytes());
        assert!(check_geometry(&v).is_err());
        v[sb + 0x20..sb + 0x24].copy_from_slice(&8192u32.to_le_bytes());
        v[sb + 0x18..sb + 0x1C].copy_from_slice(&7u32.to_le_bytes());
        assert!(check_geometry(&v).is_err());
        // A 32-bit volume (no 64bit feature) with a stray s_blocks_count_hi.
        v[sb + 0x18..sb + 0x1C].copy_from_slice(&0u32.to_le_bytes());
        v[sb + 0x60..sb + 0x64].copy_from_slice(&0x2u32.to_le_bytes()); // filetype only
        v[sb + 0x150..sb + 0x154].copy_from_slice(&0xDDu32.to_le_bytes());
        let err = check_geometry(&v).unwrap_err().to_string();
        assert!(err.contains("block groups"), "{err}");
        v[sb + 0x150..sb + 0x154].copy_from_slice(&0u32.to_le_bytes());
        // A sane geometry passes.
        v[sb + 0x18..sb + 0x1C].copy_from_slice(&0u32.to_le_bytes());
        v[sb + 0x04..sb + 0x08].copy_from_slice(&64u32.to_le_bytes());
        assert_eq!(check_geometry(&v).unwrap(), 1024);
    }

    /// Opens a fuzz finding (SPRS-encoded volume in fuzz/findings/) and reads every file the
    /// way the fuzz driver does; it must end in errors, never a panic.
    fn read_everything(finding: &str) -> Vec<String> {
        let path = format!(
            "{}/../../fuzz/findings/{finding}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        let volume = imgport_image::source::sparse::SparseSource::parse(&bytes).unwrap();
        let mut errors = Vec::new();
        let fs = match Ext4Fs::open(Arc::new(volume), FsKind::Ext4) {
            Ok(fs) => fs,
            Err(e) => return vec![e.to_string()],
        };
        let mut dirs = vec![b"/".to_vec()];
        let mut buf = vec![0u8; 8192];
        while let Some(dir) = dirs.pop() {
            let entries = match fs.read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            for entry in entries {
                let mut p = dir.clone();
                if p.len() > 1 {
                    p.push(b'/');
                }
                p.extend_from_slice(&entry.name);
                match fs.lstat(&p) {
                    Ok(Some(i)) if i.kind == NodeKind::Dir => dirs.push(p),
                    Ok(Some(i)) if i.kind == NodeKind::File => {
                        for at in [0, i.size / 2] {
                            if let Err(e) = fs.read_at(&p, at, &mut buf) {
                                errors.push(e.to_string());
                            }
                        }
                    }
                    Ok(Some(i)) if i.kind == NodeKind::Symlink => {
                        if let Err(e) = fs.read_link(&p) {
                            errors.push(e.to_string());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        errors
    }

    #[test]
    fn a_symlink_claiming_a_huge_target_is_refused_before_ext4_view_allocates() {
        // Without the bound ext4-view asked for a 1 TB buffer and the process aborted.
        let errors = read_everything("ext4-huge-symlink");
        assert!(
            errors.iter().any(|e| e.contains("-byte target")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_stray_high_block_count_is_refused_before_ext4_view_allocates() {
        let errors = read_everything("ext4-blocks-hi");
        assert!(errors[0].contains("block groups"), "{errors:?}");
    }

    #[test]
    fn a_read_deep_into_a_huge_sparse_file_is_refused_not_walked() {
        // Without the bound the read succeeds only after walking the whole map.
        let errors = read_everything("ext4-huge-sparse-file");
        assert!(
            errors.iter().any(|e| e.contains("blocks of its block map")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_file_larger_than_its_block_map_is_an_error_not_a_panic() {
        let errors = read_everything("ext4-short-block-map");
        assert!(
            errors.iter().any(|e| e.contains("malformed metadata")),
            "{errors:?}"
        );
    }
}

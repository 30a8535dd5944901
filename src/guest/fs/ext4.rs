//! ext2/3/4 through the `ext4-view` crate (read-only, journal replayed in memory, built for
//! untrusted input), behind [`FileSystem`].
//!
//! `ext4_view::Ext4` is reference-counted and not `Send`, while [`FileSystem`] must be shared
//! across threads: the volume is therefore owned by one worker thread, and every call is a
//! request to it over a channel. The thread ends when the [`Ext4Fs`] is dropped.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use ext4_view::{Ext4, Ext4Error, Ext4Read};

use super::probe::FsKind;
use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};
use crate::source::ByteSource;

/// Most entries returned for one directory (a bound against hostile directories).
pub const MAX_DIR_ENTRIES: usize = 100_000;

type Reply<T> = Sender<Result<T, FsError>>;

enum Request {
    Lstat(Vec<u8>, Reply<Option<NodeInfo>>),
    ReadLink(Vec<u8>, Reply<Vec<u8>>),
    ReadDir(Vec<u8>, Reply<Vec<DirEntry>>),
    ReadAt(Vec<u8>, u64, usize, Reply<Vec<u8>>),
}

/// An ext2/3/4 volume opened read-only.
pub struct Ext4Fs {
    kind: &'static str,
    label: Option<String>,
    uuid: Option<String>,
    tx: Mutex<Sender<Request>>,
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

fn serve(fs: &Ext4, req: Request) {
    fn path(p: &[u8]) -> Result<ext4_view::Path<'_>, FsError> {
        ext4_view::Path::try_from(p).map_err(|e| FsError::Path {
            path: String::from_utf8_lossy(p).into_owned(),
            rule: e.to_string(),
        })
    }
    match req {
        Request::Lstat(p, reply) => {
            let r = path(&p).and_then(|path| match fs.symlink_metadata(path) {
                Ok(m) => Ok(Some(NodeInfo {
                    kind: kind_of(m.file_type()),
                    size: m.len(),
                })),
                Err(Ext4Error::NotFound | Ext4Error::NotADirectory) => Ok(None),
                Err(e) => Err(corrupt(e, &p)),
            });
            let _ = reply.send(r);
        }
        Request::ReadLink(p, reply) => {
            let r = path(&p).and_then(|path| {
                fs.read_link(path)
                    .map(|t| t.as_ref().to_vec())
                    .map_err(|e| corrupt(e, &p))
            });
            let _ = reply.send(r);
        }
        Request::ReadDir(p, reply) => {
            let r = path(&p).and_then(|path| {
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
            });
            let _ = reply.send(r);
        }
        Request::ReadAt(p, offset, len, reply) => {
            let r = path(&p).and_then(|path| {
                let mut file = fs.open(path).map_err(|e| corrupt(e, &p))?;
                let size = file.metadata().len();
                if offset >= size {
                    return Ok(Vec::new());
                }
                let want = (size - offset).min(len as u64) as usize;
                let mut buf = vec![0u8; want];
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
            });
            let _ = reply.send(r);
        }
    }
}

impl Ext4Fs {
    /// Opens the ext2/3/4 volume on `source` (its superblock, group descriptors and journal
    /// are read and checked now).
    pub fn open(source: Arc<dyn ByteSource>, kind: FsKind) -> Result<Self, FsError> {
        let (tx, rx) = channel::<Request>();
        let (ready_tx, ready_rx) = channel();
        std::thread::Builder::new()
            .name("ext4".into())
            .spawn(move || {
                let fs = match Ext4::load(Box::new(Reader(source))) {
                    Ok(fs) => fs,
                    Err(e) => {
                        let _ = ready_tx.send(Err(corrupt(e, b"superblock")));
                        return;
                    }
                };
                let label = fs.label().to_str().ok().map(str::to_owned);
                let uuid = fs.uuid().to_string();
                let _ = ready_tx.send(Ok((label, uuid)));
                for req in rx {
                    serve(&fs, req);
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
        self.ask(|r| Request::Lstat(path.to_vec(), r))
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
}

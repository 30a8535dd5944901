//! Read-only file-system readers behind one small trait, and the one path resolver that walks
//! guest paths with symlinks resolved *inside* the guest, with bounded depth.

pub mod btrfs;
pub mod ext4;
pub mod fat;
pub mod kind;
#[cfg(test)]
pub mod memfs;
pub mod ntfs;
pub mod probe;
pub mod resolve;
pub mod xfs;

use std::fmt;

pub use kind::FsKind;
pub use probe::open_filesystem;
pub use resolve::Guest;

/// What a directory entry or path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// `lstat` result: the kind and, for files, the size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: NodeKind,
    pub size: u64,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub kind: NodeKind,
}

/// Errors of the file-system readers.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot read the volume")]
    Io(#[from] std::io::Error),
    #[error("{fs}: {what}: {rule}")]
    Corrupt {
        fs: &'static str,
        what: String,
        rule: String,
    },
    #[error("{fs}: {what} is not supported")]
    Unsupported { fs: &'static str, what: String },
    #[error("{path}: {rule}")]
    Path { path: String, rule: String },
}

/// Runs `f`, turning a panic inside the third-party crate that reads `fs` into
/// [`FsError::Corrupt`] for `what`, so a hostile volume is an error, never a crash (fuzz
/// findings in `ntfs` 0.4 and `ext4-view` 1.0 index or unwrap values taken from the volume).
/// The default panic hook still prints the crate's message to stderr.
pub(crate) fn contain_panics<T>(
    fs: &'static str,
    what: &[u8],
    f: impl FnOnce() -> Result<T, FsError>,
) -> Result<T, FsError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(FsError::Corrupt {
            fs,
            what: String::from_utf8_lossy(what).into_owned(),
            rule: format!("malformed metadata the {fs} reader crate cannot read ({why})"),
        })
    })
}

/// A read-only file system. Paths handed to it are absolute and already free of symlinks
/// (the resolver guarantees it); the implementation must not follow symlinks itself.
pub trait FileSystem: Send + Sync {
    /// Short kind, e.g. `ext4`, `xfs`, `vfat`, `ntfs`.
    fn kind(&self) -> &'static str;
    /// Volume label, when set.
    fn label(&self) -> Option<String> {
        None
    }
    /// Volume UUID (or serial), formatted as the guest's tools print it.
    fn uuid(&self) -> Option<String> {
        None
    }
    /// True for file systems whose names compare without case (FAT, NTFS).
    fn case_insensitive(&self) -> bool {
        false
    }
    /// Why the volume was not cleanly unmounted (a dirty XFS log, the NTFS dirty flag), one
    /// sentence each; `None` when clean or when the reader cannot tell.
    fn dirty(&self) -> Option<Vec<String>> {
        None
    }
    /// Kind and size of `path` without following a final symlink; `None` when absent.
    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError>;
    /// Target of the symlink at `path`.
    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError>;
    /// Entries of the directory at `path`, without `.` and `..`.
    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError>;
    /// Reads up to `buf.len()` bytes of the file at `path` from `offset`; returns bytes read.
    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// Up to `len` bytes of the file at `path` from its start, in a buffer of its own; readers
    /// that build one anyway override it to hand that over without another copy.
    fn read_head(&self, path: &[u8], len: usize) -> Result<Vec<u8>, FsError> {
        let mut buf = vec![0u8; len];
        let n = self.read_at(path, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
    /// What [`FileSystem::read_head`] reads, handed over in pieces in file order (an error is
    /// the last item), so a caller that streams them never holds the whole file. `done` runs
    /// (or is dropped) once every read is made, maybe before the last pieces are taken: other
    /// reads may start then without changing the order of the disk reads. The default reads
    /// the file whole now; a reader that streams reads on its own thread, reading ahead of
    /// the caller by a bounded number of pieces, and stops when the iterator is dropped.
    fn read_head_chunks(
        &self,
        path: &[u8],
        len: usize,
        done: Box<dyn FnOnce() + Send>,
    ) -> Box<dyn Iterator<Item = Result<Vec<u8>, FsError>> + '_> {
        let r = self.read_head(path, len);
        done();
        Box::new(std::iter::once(r))
    }
}

impl fmt::Debug for dyn FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileSystem({})", self.kind())
    }
}

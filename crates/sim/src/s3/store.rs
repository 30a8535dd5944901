//! Objects of the embedded S3 server on disk: buckets are the directories of the root, an
//! object `bucket`/`key` is the plain file `<root>/<bucket>/<key>`, and what S3 says about it
//! beyond its bytes (ETag, CRC-64, content type, user metadata) sits in a sidecar under
//! `<root>/.imgport-s3/meta/`, stamped with the file's inode, size, mtime and ctime so a file
//! replaced by other means is recognised and its digests computed again, once.
//!
//! Every object write lands as a whole: bytes go to a temporary file (or an upload's staging
//! file) and are renamed into place; create-only writes hard-link instead, which fails
//! atomically when the object exists. Blocking calls: run them off the async runtime.
//!
//! Kept whole: the on-disk rules every object operation shares (atomic writes, sidecars, stamps,
//! ranges copied in the kernel).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use md5::Digest as _;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use serde::{Deserialize, Serialize};

/// The server's own directory under the root; a leading dot makes it no valid bucket name.
pub const INTERNAL_DIR: &str = ".imgport-s3";
/// Temporary files placed next to an object (only when a rename must cross file systems)
/// start with this, and listings skip them.
const TEMP_PREFIX: &str = ".imgport-tmp-";
/// S3's longest key (bytes).
const MAX_KEY_LEN: usize = 1024;
/// Longest `/`-separated key segment: a file name (255 bytes on Linux) less the sidecar's
/// `.json`.
const MAX_SEGMENT_LEN: usize = 250;
/// Read size when digesting or copying with plain reads.
const READ_CHUNK: usize = 4 << 20;

/// MD5, CRC-64/XZ and length of a byte stream, fed in pieces.
pub struct Hasher {
    md5: md5::Md5,
    /// Streaming CRC-64/XZ: combining a CRC per frame costs more than computing it.
    crc: crc_fast::Digest,
    len: u64,
}

/// What a [`Hasher`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub md5: [u8; 16],
    pub crc64: u64,
    pub len: u64,
}

impl Hasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Self {
            md5: md5::Md5::new(),
            crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Xz),
            len: 0,
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.crc.update(data);
        self.len += data.len() as u64;
    }

    /// The digests of all bytes fed.
    pub fn finish(self) -> Digest {
        Digest {
            md5: self.md5.finalize().into(),
            crc64: self.crc.finalize(),
            len: self.len,
        }
    }
}

/// Which file version a sidecar describes: any write, truncation, rename or replacement of
/// the file changes one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ctime: i64,
    ctime_ns: i64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_ns: m.ctime_nsec(),
        }
    }
}

/// What HEAD answers beyond the bytes: the sidecar's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub size: u64,
    /// Hex MD5, or S3's multipart form `md5(md5_1‖…‖md5_n)-n`; without quotes.
    pub etag: String,
    pub crc64: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`), names without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Unset until the object is committed.
    #[serde(default)]
    stamp: Option<Stamp>,
}

impl Meta {
    /// A sidecar without content type and user metadata, not yet stamped.
    pub fn new(size: u64, etag: String, crc64: u64) -> Self {
        Self {
            size,
            etag,
            crc64,
            content_type: None,
            metadata: BTreeMap::new(),
            stamp: None,
        }
    }
}

/// An object found by [`Store::head`].
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub meta: Meta,
    pub modified: SystemTime,
}

/// How a commit treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Allow,
    /// OSS's `x-oss-forbid-overwrite: true`: 409 FileAlreadyExists.
    ForbidOss,
    /// S3's `If-None-Match: *`: 412 PreconditionFailed.
    ForbidS3,
}

impl Overwrite {
    /// The answer when the object exists.
    pub fn error(self) -> S3Error {
        match self {
            Self::ForbidOss => {
                let mut e = S3Error::with_message(
                    S3ErrorCode::Custom("FileAlreadyExists".into()),
                    "The object you specified already exists and can not be overwritten.",
                );
                e.set_status_code(hyper::StatusCode::CONFLICT);
                e
            }
            Self::Allow | Self::ForbidS3 => {
                s3_error!(PreconditionFailed, "the object already exists")
            }
        }
    }
}

/// A temporary file under the internal directory, removed on drop unless committed.
pub struct TempFile {
    pub path: PathBuf,
    pub file: File,
    /// The same file opened for direct writes, when possible.
    pub direct: Option<File>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Committed files were renamed away: NotFound is the normal case then.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// A page of ListObjectsV2.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<Listed>,
    pub prefixes: Vec<String>,
    /// Set when more entries follow; then the continuation token is the last entry's name.
    pub next: Option<String>,
}

/// An I/O failure as S3's InternalError, naming the step and the path.
pub fn io_error<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> S3Error + 'a {
    move |e| s3_error!(e, InternalError, "{step} {}", path.display())
}

/// Checks a key the way the store needs it: 1..=1024 bytes, `/`-separated segments that are
/// not empty, `.` or `..` and at most 250 bytes, no NUL. So every key has exactly one file
/// under its bucket and one sidecar, and none leaves the bucket.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(s3_error!(
            KeyTooLongError,
            "keys are 1 to {MAX_KEY_LEN} bytes"
        ));
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains('\0') {
            return Err(s3_error!(
                InvalidArgument,
                "key {key:?}: empty, `.` and `..` segments are not stored"
            ));
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return Err(s3_error!(
                KeyTooLongError,
                "key segments are at most {MAX_SEGMENT_LEN} bytes"
            ));
        }
    }
    Ok(())
}

/// Path of the sidecar of `key` under `meta/<bucket>`: each directory segment gets `.d`, the
/// last `.json`, so the file of key `a` and the directory of key `a.json/b` never collide.
fn sidecar_rel(key: &str) -> PathBuf {
    let mut segs: Vec<&str> = key.split('/').collect();
    let last = segs.pop().unwrap_or_default();
    let mut p = PathBuf::new();
    for s in segs {
        p.push(format!("{s}.d"));
    }
    p.push(format!("{last}.json"));
    p
}

/// A key the file tree cannot hold next to existing ones (`a/b` when object `a` exists, or
/// `a` when `a/b` does) is the client's error, as in MinIO; anything else is ours.
fn file_tree_error(e: io::Error, key: &str, step: &'static str, path: &Path) -> S3Error {
    match e.kind() {
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory | ErrorKind::IsADirectory => {
            s3_error!(
                InvalidArgument,
                "key {key:?}: an object is a prefix of it, or it is a prefix of objects"
            )
        }
        _ => io_error(step, path)(e),
    }
}

fn not_found(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` inside the kernel
/// (`copy_file_range`, which may share extents), with plain reads and writes where the file
/// systems cannot (EXDEV, ENOSYS, EOPNOTSUPP, EINVAL).
pub fn copy_range(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> io::Result<()> {
    let (mut from, mut to, mut left) = (src_off, dst_off, len);
    while left > 0 {
        let (Ok(mut off_in), Ok(mut off_out)) = (i64::try_from(from), i64::try_from(to)) else {
            return Err(io::Error::new(ErrorKind::InvalidInput, "offset too large"));
        };
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        // SAFETY: both descriptors are open files we borrow for the call; the kernel reads and
        // updates only the two offsets, which live on our stack.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                chunk,
                0,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL) => {
                    copy_range_plain(src, from, dst, to, left)
                }
                Some(libc::EINTR) => continue,
                _ => Err(err),
            };
        }
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "source shorter than the range",
            ));
        }
        let n = n as u64;
        from += n;
        to += n;
        left -= n;
    }
    Ok(())
}

fn copy_range_plain(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK.min(usize::try_from(len).unwrap_or(READ_CHUNK))];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from(len - done).map_or(buf.len(), |l| l.min(buf.len()));
        src.read_exact_at(&mut buf[..n], src_off + done)?;
        dst.write_all_at(&buf[..n], dst_off + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Alignment of memory, file offset and length that the direct path takes: a page, which
/// covers devices of 512- and 4096-byte logical blocks.
pub const DIRECT_ALIGN: usize = 4096;

/// `path` opened again for writes that bypass the page cache (`O_DIRECT`), when its file
/// system allows that.
pub fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

/// Writes `data` at `offset` of `file`. When memory, offset and length are aligned to
/// [`DIRECT_ALIGN`], through `direct` (the same file opened with `O_DIRECT`): an object's
/// bytes then go to the disk without filling the page cache, whose fresh pages are costly
/// on VMs with balloon free-page reporting (docs/LIMITS.md §Memory). Anything else, or a direct
/// write the file system refuses, goes through `file`.
pub fn write_at(file: &File, direct: Option<&File>, data: &[u8], offset: u64) -> io::Result<()> {
    let aligned = |n: usize| n.is_multiple_of(DIRECT_ALIGN);
    if let Some(d) = direct
        && aligned(data.as_ptr() as usize)
        && aligned(data.len())
        && offset.is_multiple_of(DIRECT_ALIGN as u64)
    {
        match d.write_all_at(data, offset) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            done => return done,
        }
    }
    file.write_all_at(data, offset)
}

/// MD5 and CRC-64 of a whole file.
fn file_digest(path: &Path) -> io::Result<Digest> {
    let f = File::open(path)?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut h = Hasher::new();
    loop {
        let n = f.read_at(&mut buf, h.len())?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// Writes `bytes` to `path` through a temporary name in the same directory, so readers see
/// the old or the new content, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The object store under one root.
pub struct Store {
    root: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    /// Held while an object's file and sidecar change (commit, delete, caching digests), so
    /// a sidecar written describes the file it was written for.
    commit: Mutex<()>,
    seq: AtomicU64,
}

impl Store {
    /// The store of `root` (canonical), with its internal directories made and temporary
    /// files of an earlier run removed (so one root is served by one server at a time).
    pub fn open(root: &Path) -> io::Result<Self> {
        let internal = root.join(INTERNAL_DIR);
        let tmp = internal.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        std::fs::create_dir_all(internal.join("meta"))?;
        Ok(Self {
            root: root.to_path_buf(),
            meta: internal.join("meta"),
            tmp,
            commit: Mutex::new(()),
            seq: AtomicU64::new(0),
        })
    }

    /// The object root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of multipart uploads.
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("uploads")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of `bucket`, which must exist (NoSuchBucket).
    pub fn bucket_dir(&self, bucket: &str) -> S3Result<PathBuf> {
        if !s3s::path::check_bucket_name(bucket) {
            return Err(s3_error!(InvalidBucketName));
        }
        let dir = self.root.join(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }

    /// The file of `bucket`/`key` in an existing bucket.
    pub fn object_path(&self, bucket: &str, key: &str) -> S3Result<PathBuf> {
        check_key(key)?;
        self.bucket_dir(bucket)?;
        crate::disk::object_path(&self.root, bucket, key)
            .ok_or_else(|| s3_error!(InvalidArgument, "key {key:?} is not stored"))
    }

    fn sidecar(&self, bucket: &str, key: &str) -> PathBuf {
        self.meta.join(bucket).join(sidecar_rel(key))
    }

    /// Creates a bucket (BucketAlreadyOwnedByYou if it exists).
    pub fn create_bucket(&self, bucket: &str) -> S3Result<()> {
        if !s3s::path::check_bucket_name(bucket) {
            return Err(s3_error!(InvalidBucketName));
        }
        let dir = self.root.join(bucket);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                Err(s3_error!(BucketAlreadyOwnedByYou))
            }
            Err(e) => Err(io_error("create", &dir)(e)),
        }
    }

    /// The buckets and when their directories were made (or last changed).
    pub fn buckets(&self) -> S3Result<Vec<(String, SystemTime)>> {
        let rd = std::fs::read_dir(&self.root).map_err(io_error("list", &self.root))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() && s3s::path::check_bucket_name(&name) {
                let at = m
                    .created()
                    .or_else(|_| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((name, at));
            }
        }
        out.sort();
        Ok(out)
    }

    /// A new temporary file on the root's file system.
    pub fn temp_file(&self) -> S3Result<TempFile> {
        let path = self.tmp.join(format!(
            "{}-{}-{:016x}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            fastrand::u64(..)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error("create", &path))?;
        let direct = open_direct(&path);
        Ok(TempFile { path, file, direct })
    }

    fn read_sidecar(&self, bucket: &str, key: &str) -> Option<Meta> {
        let bytes = std::fs::read(self.sidecar(bucket, key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_sidecar(&self, bucket: &str, key: &str, meta: &Meta) {
        let path = self.sidecar(bucket, key);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_atomic(&path, &serde_json::to_vec(meta).unwrap_or_default()));
        if let Err(e) = written {
            // The object stands; HEAD computes its digests again without the sidecar.
            tracing::warn!("S3 sidecar {}: {e}", path.display());
        }
    }

    /// The object `bucket`/`key`: its file and sidecar. A file without a valid sidecar (put
    /// there by hand, or changed since) gets its MD5 and CRC-64 computed now and cached.
    pub fn head(&self, bucket: &str, key: &str) -> S3Result<Found> {
        let path = self.object_path(bucket, key)?;
        for _ in 0..3 {
            let m = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => return Err(s3_error!(NoSuchKey)),
                Err(e) if not_found(&e) => return Err(s3_error!(NoSuchKey)),
                Err(e) => return Err(io_error("stat", &path)(e)),
            };
            let stamp = Stamp::of(&m);
            let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let found = |meta| Found {
                path: path.clone(),
                meta,
                modified,
            };
            if let Some(meta) = self.read_sidecar(bucket, key)
                && meta.stamp == Some(stamp)
            {
                return Ok(found(meta));
            }
            let d = match file_digest(&path) {
                Ok(d) => d,
                Err(e) if not_found(&e) => return Err(s3_error!(NoSuchKey)),
                Err(e) => return Err(io_error("read", &path)(e)),
            };
            let _commit = self.lock();
            match std::fs::metadata(&path) {
                Ok(now) if Stamp::of(&now) == stamp => {}
                // Changed while we read it: look again.
                _ => continue,
            }
            // A commit may have written the sidecar meanwhile: it knows the content type.
            if let Some(meta) = self.read_sidecar(bucket, key)
                && meta.stamp == Some(stamp)
            {
                return Ok(found(meta));
            }
            let mut meta = Meta::new(d.len, hex::encode(d.md5), d.crc64);
            meta.stamp = Some(stamp);
            self.write_sidecar(bucket, key, &meta);
            return Ok(found(meta));
        }
        Err(s3_error!(InternalError, "the object keeps changing"))
    }

    /// Puts the file `src` in place as `bucket`/`key` (rename, or hard link and unlink when
    /// overwriting is forbidden) and writes its sidecar `meta`.
    pub fn commit(
        &self,
        src: &Path,
        bucket: &str,
        key: &str,
        mut meta: Meta,
        overwrite: Overwrite,
    ) -> S3Result<Meta> {
        let dest = self.object_path(bucket, key)?;
        let _commit = self.lock();
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| file_tree_error(e, key, "create the directory of", &dest))?;
        }
        if overwrite == Overwrite::Allow {
            rename_into(src, &dest).map_err(|e| file_tree_error(e, key, "rename into", &dest))?;
        } else {
            match std::fs::hard_link(src, &dest) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(overwrite.error()),
                Err(e) => return Err(io_error("link", &dest)(e)),
            }
            let _ = std::fs::remove_file(src);
        }
        // The object is in place: from here nothing fails. Stat after the rename or unlink,
        // which both change the inode's ctime; without a stamp HEAD digests the file again.
        match std::fs::metadata(&dest) {
            Ok(m) => {
                meta.stamp = Some(Stamp::of(&m));
                self.write_sidecar(bucket, key, &meta);
            }
            Err(e) => tracing::warn!("S3 object {}: {e}", dest.display()),
        }
        Ok(meta)
    }

    /// Whether `bucket`/`key` exists now (a hint: commits decide atomically); errors for a
    /// bad key or a missing bucket.
    pub fn exists(&self, bucket: &str, key: &str) -> S3Result<bool> {
        Ok(self.object_path(bucket, key)?.is_file())
    }

    /// Deletes `bucket`/`key` and its sidecar; a missing object is no error (S3's 204).
    pub fn delete(&self, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.object_path(bucket, key)?;
        let sidecar = self.sidecar(bucket, key);
        let _commit = self.lock();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(io_error("remove", &path)(e)),
        }
        let _ = std::fs::remove_file(&sidecar);
        // Empty directories left behind would block a later object of the same name.
        prune(&path, &self.root.join(bucket));
        prune(&sidecar, &self.meta.join(bucket));
        Ok(())
    }

    /// ListObjectsV2: keys under `prefix` after `after`, at most `max` entries (objects and,
    /// with a delimiter, common prefixes), in byte order.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> S3Result<Listing> {
        let dir = self.bucket_dir(bucket)?;
        let mut keys = Vec::new();
        let mut todo = vec![(dir.clone(), String::new())];
        while let Some((d, rel)) = todo.pop() {
            let rd = match std::fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(io_error("list", &d)(e)),
            };
            for e in rd.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                let Ok(ft) = e.file_type() else { continue };
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let key = format!("{rel}{name}");
                if ft.is_dir() {
                    let sub = format!("{key}/");
                    if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                        todo.push((e.path(), sub));
                    }
                } else if ft.is_file() && key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort_unstable();
        // Entries in order: an object, or a common prefix standing for the keys it groups.
        let mut entries: Vec<(String, bool)> = Vec::new();
        for key in keys {
            let grouped = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| prefix.len() + i + d.len())
            });
            match grouped {
                Some(end) => {
                    let p = &key[..end];
                    if entries.last().is_none_or(|(last, obj)| *obj || last != p) {
                        entries.push((p.to_string(), false));
                    }
                }
                None => entries.push((key, true)),
            }
        }
        let mut page = Listing::default();
        let mut rest = entries
            .into_iter()
            .filter(|(name, _)| after.is_none_or(|a| name.as_str() > a))
            .peekable();
        let mut last = None;
        while page.objects.len() + page.prefixes.len() < max {
            let Some((name, obj)) = rest.next() else {
                break;
            };
            if obj {
                let m = std::fs::symlink_metadata(dir.join(&name)).ok();
                page.objects.push(Listed {
                    key: name.clone(),
                    size: m.as_ref().map_or(0, |m| m.len()),
                    modified: m
                        .and_then(|m| m.modified().ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                });
            } else {
                page.prefixes.push(name.clone());
            }
            last = Some(name);
        }
        if max > 0 && rest.peek().is_some() {
            page.next = last;
        }
        Ok(page)
    }
}

/// `rename`, or across file systems a copy next to `dest` renamed over it.
fn rename_into(src: &Path, dest: &Path) -> io::Result<()> {
    match std::fs::rename(src, dest) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
            let tmp = dest.with_file_name(format!(
                "{TEMP_PREFIX}{}-{:016x}",
                name.unwrap_or_default(),
                fastrand::u64(..)
            ));
            let copied = std::fs::copy(src, &tmp).and_then(|_| std::fs::rename(&tmp, dest));
            if copied.is_err() {
                let _ = std::fs::remove_file(&tmp);
            } else {
                let _ = std::fs::remove_file(src);
            }
            copied
        }
        other => other,
    }
}

/// Removes the empty directories from `path`'s parent up to (not including) `top`.
fn prune(path: &Path, top: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == top || !d.starts_with(top) || std::fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_transfer::digest::{crc64, md5};

    #[test]
    fn a_stream_hashed_in_pieces_has_the_digests_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut h = Hasher::new();
        for piece in data.chunks(4099) {
            h.update(piece);
        }
        assert_eq!(
            h.finish(),
            Digest {
                md5: md5(&data),
                crc64: crc64(&data),
                len: data.len() as u64
            }
        );
        assert_eq!(Hasher::new().finish().crc64, crc64(b""));
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bkt")).unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn put(s: &Store, key: &str, body: &[u8], overwrite: Overwrite) -> S3Result<Meta> {
        let tmp = s.temp_file().unwrap();
        tmp.file.write_all_at(body, 0).unwrap();
        let meta = Meta::new(body.len() as u64, hex::encode(md5(body)), crc64(body));
        s.commit(&tmp.path, "bkt", key, meta, overwrite)
    }

    #[test]
    fn keys_that_would_alias_or_escape_are_refused() {
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/./b", "../a", "a/../b", "a\0b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(251)).is_err());
        assert!(
            check_key(&["b"; 600].join("/")).is_err(),
            "longer than 1024"
        );
        for good in ["a", "d/disk.raw", ".hidden", "a b/c..d", "x.json/y"] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn sidecars_of_a_file_and_a_directory_never_collide() {
        assert_eq!(sidecar_rel("a"), Path::new("a.json"));
        assert_eq!(sidecar_rel("a.json/b"), Path::new("a.json.d/b.json"));
        assert_eq!(sidecar_rel("x/y/z"), Path::new("x.d/y.d/z.json"));
    }

    #[test]
    fn an_object_is_the_plain_file_and_head_uses_the_sidecar() {
        let (dir, s) = store();
        let mut meta = Meta::new(3, "e".repeat(32), 7);
        meta.content_type = Some("application/json".into());
        let tmp = s.temp_file().unwrap();
        tmp.file.write_all_at(b"abc", 0).unwrap();
        s.commit(&tmp.path, "bkt", "d/k", meta, Overwrite::Allow)
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("bkt/d/k")).unwrap(), b"abc");
        let f = s.head("bkt", "d/k").unwrap();
        assert_eq!(
            (f.meta.etag.as_str(), f.meta.crc64),
            ("e".repeat(32).as_str(), 7)
        );
        assert_eq!(f.meta.content_type.as_deref(), Some("application/json"));
        assert!(
            std::fs::read_dir(&s.tmp).unwrap().next().is_none(),
            "no temp file left"
        );
    }

    #[test]
    fn a_file_put_by_hand_or_replaced_gets_its_digests_computed() {
        let (dir, s) = store();
        let body = b"by hand".to_vec();
        std::fs::write(dir.path().join("bkt/h"), &body).unwrap();
        let f = s.head("bkt", "h").unwrap();
        assert_eq!(f.meta.etag, hex::encode(md5(&body)));
        assert_eq!(f.meta.crc64, crc64(&body));
        assert_eq!(f.meta.size, body.len() as u64);
        put(&s, "r", b"first", Overwrite::Allow).unwrap();
        // Same size, new bytes, same inode.
        std::fs::write(dir.path().join("bkt/r"), b"other").unwrap();
        let f = s.head("bkt", "r").unwrap();
        assert_eq!(f.meta.etag, hex::encode(md5(b"other")));
        assert_eq!(f.meta.crc64, crc64(b"other"));
        assert!(matches!(
            s.head("bkt", "missing").unwrap_err().code(),
            S3ErrorCode::NoSuchKey
        ));
        assert!(matches!(
            s.head("nob", "h").unwrap_err().code(),
            S3ErrorCode::NoSuchBucket
        ));
    }

    #[test]
    fn create_only_commits_refuse_an_existing_object() {
        let (_dir, s) = store();
        put(&s, "k", b"one", Overwrite::ForbidOss).unwrap();
        let e = put(&s, "k", b"two", Overwrite::ForbidOss).unwrap_err();
        assert_eq!(e.status_code(), Some(hyper::StatusCode::CONFLICT));
        let e = put(&s, "k", b"two", Overwrite::ForbidS3).unwrap_err();
        assert!(matches!(e.code(), S3ErrorCode::PreconditionFailed));
        assert_eq!(
            s.head("bkt", "k").unwrap().meta.etag,
            hex::encode(md5(b"one"))
        );
        put(&s, "k", b"two", Overwrite::Allow).unwrap();
        assert_eq!(
            s.head("bkt", "k").unwrap().meta.etag,
            hex::encode(md5(b"two"))
        );
        assert!(
            std::fs::read_dir(&s.tmp).unwrap().next().is_none(),
            "no temp file left"
        );
    }

    #[test]
    fn listing_pages_through_prefixes_and_delimiters() {
        let (_dir, s) = store();
        for k in ["a/1", "a/2", "b", "c/x/1", "c/y", "d"] {
            put(&s, k, b"x", Overwrite::Allow).unwrap();
        }
        let keys = |l: &Listing| l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
        let all = s.list("bkt", "", None, None, 1000).unwrap();
        assert_eq!(keys(&all), ["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        assert_eq!(all.next, None);
        let p = s.list("bkt", "c/", None, None, 1000).unwrap();
        assert_eq!(keys(&p), ["c/x/1", "c/y"]);
        let page1 = s.list("bkt", "", None, None, 4).unwrap();
        assert_eq!(page1.next.as_deref(), Some("c/x/1"));
        let page2 = s.list("bkt", "", None, page1.next.as_deref(), 4).unwrap();
        assert_eq!(keys(&page2), ["c/y", "d"]);
        assert_eq!(page2.next, None);
        let d = s.list("bkt", "", Some("/"), None, 1000).unwrap();
        assert_eq!(keys(&d), ["b", "d"]);
        assert_eq!(d.prefixes, ["a/", "c/"]);
        let d = s.list("bkt", "", Some("/"), Some("a/"), 1000).unwrap();
        assert_eq!(
            d.prefixes,
            ["c/"],
            "a group is not listed again after its token"
        );
    }

    #[test]
    fn delete_removes_the_file_its_sidecar_and_empty_directories() {
        let (dir, s) = store();
        put(&s, "x/y/z", b"1", Overwrite::Allow).unwrap();
        s.delete("bkt", "x/y/z").unwrap();
        s.delete("bkt", "x/y/z").unwrap();
        assert!(!dir.path().join("bkt/x").exists());
        assert!(!s.meta.join("bkt/x.d").exists());
        // The name is free again for an object.
        put(&s, "x", b"2", Overwrite::Allow).unwrap();
        for clash in ["x/y", "x/y/z"] {
            let e = put(&s, clash, b"3", Overwrite::Allow).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidArgument", "{clash}");
        }
        put(&s, "p/q", b"4", Overwrite::Allow).unwrap();
        let e = put(&s, "p", b"5", Overwrite::Allow).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidArgument");
        assert!(
            std::fs::read_dir(&s.tmp).unwrap().next().is_none(),
            "no temp file left"
        );
    }

    #[test]
    fn aligned_writes_go_direct_and_the_rest_buffered_with_the_same_bytes() {
        let (_dir, s) = store();
        let t = s.temp_file().unwrap();
        let mut pool =
            imgport_transfer::pool::BufferPool::new(3 * DIRECT_ALIGN, 1).get(3 * DIRECT_ALIGN);
        for (i, b) in pool.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // aligned (direct when the file system allows it), then an unaligned length, then an
        // unaligned offset: all must land where asked
        write_at(&t.file, t.direct.as_ref(), &pool[..2 * DIRECT_ALIGN], 0).unwrap();
        write_at(
            &t.file,
            t.direct.as_ref(),
            &pool[..100],
            2 * DIRECT_ALIGN as u64,
        )
        .unwrap();
        write_at(
            &t.file,
            t.direct.as_ref(),
            &pool[1..DIRECT_ALIGN + 1],
            3 * DIRECT_ALIGN as u64 + 5,
        )
        .unwrap();
        let mut want = pool[..2 * DIRECT_ALIGN].to_vec();
        want.extend_from_slice(&pool[..100]);
        want.resize(3 * DIRECT_ALIGN + 5, 0);
        want.extend_from_slice(&pool[1..DIRECT_ALIGN + 1]);
        let got = std::fs::read(&t.path).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn copy_range_copies_exactly_the_range() {
        let (_dir, s) = store();
        let a = s.temp_file().unwrap();
        let b = s.temp_file().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        a.file.write_all_at(&data, 0).unwrap();
        copy_range(&a.file, 1000, &b.file, 10, 200_000).unwrap();
        let mut got = vec![0u8; 200_000];
        b.file.read_exact_at(&mut got, 10).unwrap();
        assert_eq!(got, data[1000..201_000]);
        assert!(
            copy_range(&a.file, 299_000, &b.file, 0, 5000).is_err(),
            "past the end"
        );
        copy_range_plain(&a.file, 5, &b.file, 0, 100).unwrap();
        let mut got = vec![0u8; 100];
        b.file.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, data[5..105]);
    }
}

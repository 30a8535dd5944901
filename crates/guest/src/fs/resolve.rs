//! The one path resolver: walks absolute guest paths over a root [`FileSystem`] and the file
//! systems mounted on it (a separate `/boot` or `/usr` from fstab), resolving symlinks
//! *inside the guest*: absolute targets restart at the guest root, `..` stops at the root,
//! and at most [`MAX_SYMLINKS`] links are followed per lookup.

use std::sync::{Arc, Mutex};

use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};

/// Most symlinks followed while resolving one path (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;
/// Most components a resolved path may have.
const MAX_COMPONENTS: usize = 256;
/// Cap for configuration files read whole (libguestfs's `is_small_file`, docs/INSPECTION.md
/// §Fstab).
pub const CONFIG_CAP: u64 = 2 * 1024 * 1024;

/// A path as its components.
type Components = Vec<Vec<u8>>;

/// Most read errors a [`ReadLog`] keeps word for word; later ones are only counted.
const MAX_LOGGED: usize = 16;

/// The read errors met while walking a guest, shared by every clone of a [`Guest`] (and by
/// guests made with [`Guest::with_log`]): a lookup that fails on a read error is told apart
/// from a file that is absent, even where a caller only asks "does it exist?".
#[derive(Clone, Default)]
pub struct ReadLog(Arc<Mutex<LogState>>);

#[derive(Default)]
struct LogState {
    count: usize,
    kept: Vec<String>,
}

impl ReadLog {
    /// Errors logged so far (a mark for [`ReadLog::since`]).
    pub fn count(&self) -> usize {
        self.0.lock().map(|s| s.count).unwrap_or(0)
    }

    /// The errors logged after `mark` (at most [`MAX_LOGGED`] kept word for word in all),
    /// and how many there were.
    pub fn since(&self, mark: usize) -> (Vec<String>, usize) {
        let Ok(s) = self.0.lock() else {
            return (Vec::new(), 0);
        };
        let kept = s.kept.iter().skip(mark).cloned().collect();
        (kept, s.count.saturating_sub(mark))
    }

    /// Logs `e`, met reading `path` outside a [`Guest`] (straight from a file system).
    pub fn note(&self, path: &[u8], e: &FsError) {
        self.record(path, e);
    }

    fn record(&self, path: &[u8], e: &FsError) {
        if let Ok(mut s) = self.0.lock() {
            s.count += 1;
            if s.kept.len() < MAX_LOGGED {
                let mut msg = format!("{}: {e}", String::from_utf8_lossy(path));
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    msg.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                s.kept.push(msg);
            }
        }
    }
}

/// The pieces of a file from [`Guest::read_file_chunks`]; they end at the first read error,
/// which is logged against the file's path.
pub struct FileChunks<'g> {
    inner: Box<dyn Iterator<Item = Result<Vec<u8>, FsError>> + 'g>,
    log: &'g ReadLog,
    path: Vec<u8>,
    error: Option<FsError>,
}

impl Iterator for FileChunks<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.error.is_some() {
            return None;
        }
        match self.inner.next()? {
            Ok(piece) => Some(piece),
            Err(e) => {
                self.log.record(&self.path, &e);
                self.error = Some(e);
                None
            }
        }
    }
}

impl FileChunks<'_> {
    /// Takes the pieces not taken yet, so the whole file is read wherever its consumer
    /// stopped, and returns the read error, if any.
    pub fn finish(mut self) -> Option<FsError> {
        for _ in &mut self {}
        self.error
    }
}

/// A guest's directory tree: a root file system and the file systems mounted below it.
#[derive(Clone)]
pub struct Guest {
    /// (mount point as components, file system), the deepest first.
    mounts: Vec<(Components, Arc<dyn FileSystem>)>,
    log: ReadLog,
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    if comps.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for c in comps {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

fn path_err(path: &[u8], rule: impl Into<String>) -> FsError {
    FsError::Path {
        path: String::from_utf8_lossy(path).into_owned(),
        rule: rule.into(),
    }
}

/// A regular file found by path: its file system, its path there, and its size.
struct Located<'a>(&'a dyn FileSystem, Vec<u8>, u64);

impl Guest {
    /// A guest whose `/` is `root`.
    pub fn new(root: Arc<dyn FileSystem>) -> Self {
        Self::with_log(root, ReadLog::default())
    }

    /// A guest whose `/` is `root` and whose read errors go to `log`.
    pub fn with_log(root: Arc<dyn FileSystem>, log: ReadLog) -> Self {
        Self {
            mounts: vec![(Vec::new(), root)],
            log,
        }
    }

    /// Where this guest's read errors are logged.
    pub fn log(&self) -> &ReadLog {
        &self.log
    }

    /// `r`, with an error logged against `path`.
    fn logged<T>(&self, path: &[u8], r: Result<T, FsError>) -> Result<T, FsError> {
        if let Err(e) = &r {
            self.log.record(path, e);
        }
        r
    }

    /// Mounts `fs` at the absolute guest path `point` (e.g. `/boot`); later lookups below it
    /// go to `fs`. The mount point itself is taken literally (not resolved).
    pub fn mount(&mut self, point: &[u8], fs: Arc<dyn FileSystem>) {
        let comps: Vec<Vec<u8>> = components(point).map(<[u8]>::to_vec).collect();
        self.mounts.retain(|(p, _)| *p != comps);
        self.mounts.push((comps, fs));
        // longest mount point first, so the deepest mount wins
        self.mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    /// The root file system.
    pub fn root(&self) -> &Arc<dyn FileSystem> {
        &self
            .mounts
            .iter()
            .find(|(p, _)| p.is_empty())
            .expect("the root mount is never removed")
            .1
    }

    /// The file system holding the symlink-free path `comps`, and the path inside it.
    fn locate(&self, comps: &[Vec<u8>]) -> (&dyn FileSystem, Vec<u8>) {
        for (point, fs) in &self.mounts {
            if comps.len() >= point.len() && comps[..point.len()] == point[..] {
                return (fs.as_ref(), join(&comps[point.len()..]));
            }
        }
        (self.root().as_ref(), join(comps))
    }

    fn lstat_canonical(&self, comps: &[Vec<u8>]) -> Result<Option<NodeInfo>, FsError> {
        if comps.is_empty() {
            return Ok(Some(NodeInfo {
                kind: NodeKind::Dir,
                size: 0,
            }));
        }
        let (fs, inner) = self.locate(comps);
        fs.lstat(&inner)
    }

    /// Resolves `path` to its symlink-free components; `follow_last` decides whether a final
    /// symlink is followed. `Ok(None)` when a component does not exist or is not a directory.
    fn resolve(
        &self,
        path: &[u8],
        follow_last: bool,
    ) -> Result<Option<(Components, NodeInfo)>, FsError> {
        if !path.starts_with(b"/") {
            return Err(path_err(path, "guest paths must be absolute"));
        }
        // Components still to walk, in reverse (a stack).
        let mut todo: Vec<Vec<u8>> = components(path).rev().map(<[u8]>::to_vec).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut info = NodeInfo {
            kind: NodeKind::Dir,
            size: 0,
        };
        let mut links = 0;
        while let Some(c) = todo.pop() {
            match &c[..] {
                b"." => continue,
                b".." => {
                    done.pop(); // clamped at the root
                    continue;
                }
                _ => {}
            }
            if info.kind != NodeKind::Dir {
                return Ok(None);
            }
            done.push(c);
            if done.len() > MAX_COMPONENTS || todo.len() > MAX_COMPONENTS * 4 {
                return Err(path_err(path, "too many path components"));
            }
            let Some(node) = self.lstat_canonical(&done)? else {
                return Ok(None);
            };
            if node.kind == NodeKind::Symlink && (follow_last || !todo.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(path_err(path, format!("more than {MAX_SYMLINKS} symlinks")));
                }
                let (fs, inner) = self.locate(&done);
                let target = fs.read_link(&inner)?;
                done.pop();
                if target.starts_with(b"/") {
                    done.clear();
                }
                todo.extend(components(&target).rev().map(<[u8]>::to_vec));
                info = NodeInfo {
                    kind: NodeKind::Dir,
                    size: 0,
                };
                continue;
            }
            info = node;
        }
        Ok(Some((done, info)))
    }

    /// The path with every symlink resolved inside the guest, or `None` when it does not exist.
    pub fn canonicalize(&self, path: &[u8]) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.canonicalize_unlogged(path);
        self.logged(path, r)
    }

    /// Kind and size of `path`, following symlinks; `None` when it does not exist.
    pub fn stat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        let r = self.stat_unlogged(path);
        self.logged(path, r)
    }

    /// Kind and size of `path` without following a final symlink.
    pub fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        let r = self.lstat_unlogged(path);
        self.logged(path, r)
    }

    /// True when `path` exists (following symlinks) and has `kind`.
    pub fn is(&self, path: &str, kind: NodeKind) -> bool {
        matches!(self.stat(path.as_bytes()), Ok(Some(i)) if i.kind == kind)
    }

    /// True when `path` exists, whatever it is (a dangling final symlink counts).
    pub fn exists(&self, path: &str) -> bool {
        matches!(self.lstat(path.as_bytes()), Ok(Some(_)))
    }

    /// Target of the symlink at `path` (its parent directories resolved), as stored.
    pub fn read_link(&self, path: &[u8]) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.read_link_unlogged(path);
        self.logged(path, r)
    }

    /// Entries of the directory at `path`; `None` when it is absent or not a directory.
    pub fn read_dir(&self, path: &[u8]) -> Result<Option<Vec<DirEntry>>, FsError> {
        let r = self.read_dir_unlogged(path);
        self.logged(path, r)
    }

    /// The regular file at `path` (symlinks followed); `None` when absent or not a regular
    /// file.
    fn regular_file(&self, path: &[u8]) -> Result<Option<Located<'_>>, FsError> {
        let Some((c, info)) = self.resolve(path, true)? else {
            return Ok(None);
        };
        if info.kind != NodeKind::File {
            return Ok(None);
        }
        let (fs, inner) = self.locate(&c);
        Ok(Some(Located(fs, inner, info.size)))
    }

    /// The whole regular file at `path` when it is at most `cap` bytes; `None` when absent or
    /// not a regular file; an error when larger than `cap`.
    pub fn read_file(&self, path: &[u8], cap: u64) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.read_file_unlogged(path, cap);
        self.logged(path, r)
    }

    /// At most the first `len` bytes of the regular file at `path` (for headers such as ELF).
    pub fn read_prefix(&self, path: &[u8], len: usize) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.read_prefix_unlogged(path, len);
        self.logged(path, r)
    }

    /// Up to `len` bytes of the regular file at `path` from `offset` (a trailer, say);
    /// `None` when absent or not a regular file.
    pub fn read_range(
        &self,
        path: &[u8],
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.read_range_unlogged(path, offset, len);
        self.logged(path, r)
    }

    fn canonicalize_unlogged(&self, path: &[u8]) -> Result<Option<Vec<u8>>, FsError> {
        Ok(self.resolve(path, true)?.map(|(c, _)| join(&c)))
    }

    fn stat_unlogged(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.resolve(path, true)?.map(|(_, i)| i))
    }

    fn lstat_unlogged(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.resolve(path, false)?.map(|(_, i)| i))
    }

    fn read_link_unlogged(&self, path: &[u8]) -> Result<Option<Vec<u8>>, FsError> {
        match self.resolve(path, false)? {
            Some((c, i)) if i.kind == NodeKind::Symlink => {
                let (fs, inner) = self.locate(&c);
                Ok(Some(fs.read_link(&inner)?))
            }
            _ => Ok(None),
        }
    }

    fn read_dir_unlogged(&self, path: &[u8]) -> Result<Option<Vec<DirEntry>>, FsError> {
        match self.resolve(path, true)? {
            Some((c, i)) if i.kind == NodeKind::Dir => {
                let (fs, inner) = self.locate(&c);
                Ok(Some(fs.read_dir(&inner)?))
            }
            _ => Ok(None),
        }
    }

    fn read_file_unlogged(&self, path: &[u8], cap: u64) -> Result<Option<Vec<u8>>, FsError> {
        let Some(Located(fs, inner, size)) = self.regular_file_within(path, cap)? else {
            return Ok(None);
        };
        Ok(Some(fs.read_head(&inner, size as usize)?))
    }

    /// The regular file at `path` when it is at most `cap` bytes.
    fn regular_file_within(&self, path: &[u8], cap: u64) -> Result<Option<Located<'_>>, FsError> {
        let located = self.regular_file(path)?;
        if let Some(Located(_, _, size)) = &located
            && *size > cap
        {
            return Err(path_err(
                path,
                format!("{size} bytes is more than the {cap}-byte cap"),
            ));
        }
        Ok(located)
    }

    /// [`Guest::read_file`] in pieces as the file system reads them (see
    /// [`FileSystem::read_head_chunks`], which `done` is passed to): the file's size and its
    /// pieces, whose read error is logged and kept ([`FileChunks::finish`]).
    pub fn read_file_chunks(
        &self,
        path: &[u8],
        cap: u64,
        done: Box<dyn FnOnce() + Send>,
    ) -> Result<Option<(u64, FileChunks<'_>)>, FsError> {
        let r = self.regular_file_within(path, cap);
        let Some(Located(fs, inner, size)) = self.logged(path, r)? else {
            return Ok(None);
        };
        let chunks = FileChunks {
            inner: fs.read_head_chunks(&inner, size as usize, done),
            log: &self.log,
            path: path.to_vec(),
            error: None,
        };
        Ok(Some((size, chunks)))
    }

    fn read_prefix_unlogged(&self, path: &[u8], len: usize) -> Result<Option<Vec<u8>>, FsError> {
        let Some(Located(fs, inner, size)) = self.regular_file(path)? else {
            return Ok(None);
        };
        Ok(Some(fs.read_head(&inner, size.min(len as u64) as usize)?))
    }

    fn read_range_unlogged(
        &self,
        path: &[u8],
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, FsError> {
        let Some(Located(fs, inner, size)) = self.regular_file(path)? else {
            return Ok(None);
        };
        let mut buf = vec![0u8; size.saturating_sub(offset).min(len as u64) as usize];
        let n = fs.read_at(&inner, offset, &mut buf)?;
        buf.truncate(n);
        Ok(Some(buf))
    }

    /// A config file as text (lossy UTF-8), capped at [`CONFIG_CAP`]; `None` when absent,
    /// not a regular file, unreadable or too large.
    pub fn read_text(&self, path: &str) -> Option<String> {
        self.read_file(path.as_bytes(), CONFIG_CAP)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::memfs::MemFs;
    use super::*;

    fn guest() -> Guest {
        let mut fs = MemFs::default();
        fs.dir("/usr/lib")
            .file("/usr/lib/os-release", b"ID=debian\n")
            .link("/etc", "usr/etc")
            .dir("/usr/etc")
            .link("/usr/etc/os-release", "../lib/os-release")
            .link("/bin", "usr/bin")
            .dir("/usr/bin")
            .file("/usr/bin/bash", b"\x7fELF")
            .link("/usr/bin/sh", "/bin/bash")
            .link("/escape", "../../../../usr/lib/os-release")
            .link("/loop1", "loop2")
            .link("/loop2", "/loop1")
            .link("/dangling", "/nowhere");
        Guest::new(Arc::new(fs))
    }

    #[test]
    fn symlinks_resolve_inside_the_guest() {
        let g = guest();
        assert_eq!(
            g.canonicalize(b"/etc/os-release").unwrap().unwrap(),
            b"/usr/lib/os-release"
        );
        assert_eq!(
            g.read_file(b"/etc/os-release", 100).unwrap().unwrap(),
            b"ID=debian\n"
        );
        assert_eq!(
            g.canonicalize(b"/bin/sh").unwrap().unwrap(),
            b"/usr/bin/bash"
        );
        // `..` past the root stays at the root
        assert_eq!(
            g.canonicalize(b"/escape").unwrap().unwrap(),
            b"/usr/lib/os-release"
        );
        assert_eq!(
            g.canonicalize(b"/../../usr/./lib").unwrap().unwrap(),
            b"/usr/lib"
        );
        let err = g.stat(b"/loop1").unwrap_err();
        assert!(err.to_string().contains("symlinks"), "{err}");
        assert!(g.stat(b"/dangling").unwrap().is_none());
        assert!(g.exists("/dangling"));
        assert_eq!(g.read_link(b"/dangling").unwrap().unwrap(), b"/nowhere");
        assert!(g.stat(b"/usr/bin/bash/x").unwrap().is_none());
        assert!(g.stat(b"relative").is_err());
    }

    #[test]
    fn read_file_caps_size() {
        let g = guest();
        assert!(g.read_file(b"/etc/os-release", 3).is_err());
        assert_eq!(g.read_prefix(b"/bin/sh", 2).unwrap().unwrap(), b"\x7fE");
        assert!(g.read_file(b"/usr", 100).unwrap().is_none());
    }

    #[test]
    fn mounts_take_their_subtree() {
        let mut g = guest();
        let mut boot = MemFs::default();
        boot.file("/grub.cfg", b"menuentry")
            .link("/up", "../usr/lib/os-release");
        g.mount(b"/boot", Arc::new(boot));
        assert_eq!(
            g.read_file(b"/boot/grub.cfg", 100).unwrap().unwrap(),
            b"menuentry"
        );
        // `..` out of a mount goes back to the parent file system
        assert_eq!(
            g.read_file(b"/boot/up", 100).unwrap().unwrap(),
            b"ID=debian\n"
        );
        let names: Vec<Vec<u8>> = g
            .read_dir(b"/boot")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"grub.cfg".to_vec(), b"up".to_vec()]);
    }
}

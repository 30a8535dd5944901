//! The resume journal of one upload: which multipart upload id belongs to which source and
//! object, and which parts finished with which MD5 and ETag; after Complete, the object's
//! digests, so that a re-run can tell it has nothing to do.
//!
//! Format: JSON lines. The first line (the header) and every compaction are written to a
//! temporary file, fsync'd and renamed over the journal (then the directory is fsync'd), so
//! the journal is always whole; each finished part is then one appended line. Part lines are
//! not fsync'd: a killed process loses nothing the kernel holds, and what a power cut loses
//! only means those parts are sent again (a resume reuses only the parts the journal and
//! ListParts agree on), while an fdatasync per part would write a block per part (512 for a
//! 4 GiB upload). The final `done` line is fdatasync'd. Appending keeps the cost per part
//! constant (rewriting the whole file per part would be quadratic in parts); a torn line is
//! the last one and is ignored on load, which only means that part is uploaded again.
//! It holds no secret: endpoint, bucket, key, upload id, sizes and digests.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ObjectTarget, StoreError};

/// Largest journal read (10,000 parts of ~150 bytes fit many times over).
const MAX_JOURNAL_BYTES: u64 = 16 << 20;
/// Journal format version.
const VERSION: u32 = 1;

/// What an upload is: the same header means the same upload can be resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
    pub total_size: u64,
    /// Identity of the source bytes (path, size, mtime, output format), chosen by the caller.
    pub source: String,
}

/// A finished part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPart {
    pub part: u32,
    pub size: u64,
    /// MD5 of the part, hex.
    pub md5: String,
    /// ETag the server gave, without quotes.
    pub etag: String,
}

/// The object after a verified Complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub size: u64,
    pub etag: String,
    pub sha256: String,
    pub crc64: u64,
    pub parts: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Done { done: Done },
    Part(JournalPart),
    Header(Header),
}

/// A journal as read from disk.
#[derive(Debug, Clone)]
pub struct State {
    pub header: Header,
    pub parts: BTreeMap<u32, JournalPart>,
    pub done: Option<Done>,
}

/// An open journal, appending finished parts.
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// The default journal directory: `$XDG_CACHE_HOME/imgport/uploads` or
/// `~/.cache/imgport/uploads`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("imgport/uploads")
}

/// The journal file of `target` at `endpoint` in `dir` (one journal per object).
pub fn path_for(dir: &Path, endpoint: &str, target: &ObjectTarget) -> PathBuf {
    let mut h = Sha256::new();
    for s in [endpoint, &target.bucket, &target.key] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let hex = crate::transfer::digest::hex(&h.finalize());
    dir.join(format!("{}.json", &hex[..32]))
}

fn io_err(path: &Path, step: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Journal { path, step, source }
}

/// Reads the journal at `path`; `Ok(None)` when there is none or its header is unreadable
/// (a journal from another version is ignored, never trusted).
pub fn load(path: &Path) -> Result<Option<State>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "open")(e)),
    };
    let mut text = Vec::new();
    file.take(MAX_JOURNAL_BYTES)
        .read_to_end(&mut text)
        .map_err(io_err(path, "read"))?;
    let mut lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header = match lines.next().map(serde_json::from_slice::<Header>) {
        Some(Ok(h)) if h.version == VERSION => h,
        _ => return Ok(None),
    };
    let mut state = State {
        header,
        parts: BTreeMap::new(),
        done: None,
    };
    for line in lines {
        // A torn last line (kill -9 during an append) does not parse: stop there.
        match serde_json::from_slice::<Line>(line) {
            Ok(Line::Part(p)) if p.part >= 1 && p.part <= 10_000 => {
                state.parts.insert(p.part, p);
            }
            Ok(Line::Done { done }) => state.done = Some(done),
            _ => break,
        }
    }
    Ok(Some(state))
}

fn line(value: &impl Serialize) -> Vec<u8> {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    v
}

impl Journal {
    /// Writes a journal holding `header` and `parts` atomically over `path` and opens it
    /// for appending.
    pub fn start(
        path: &Path,
        header: &Header,
        parts: &BTreeMap<u32, JournalPart>,
    ) -> Result<Self, StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create its directory"))?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp, "create"))?;
            let mut body = line(header);
            for p in parts.values() {
                body.extend_from_slice(&line(p));
            }
            f.write_all(&body).map_err(io_err(&tmp, "write"))?;
            f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        }
        std::fs::rename(&tmp, path).map_err(io_err(path, "rename into place"))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path, "open for appending"))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a finished part (kept through a kill, not fsync'd: see the module doc).
    pub fn record_part(&mut self, part: &JournalPart) -> Result<(), StoreError> {
        self.append(&line(part))
    }

    /// Records the verified object durably.
    pub fn record_done(&mut self, done: &Done) -> Result<(), StoreError> {
        self.append(&line(&Line::Done { done: done.clone() }))?;
        self.file
            .sync_data()
            .map_err(io_err(&self.path, "fdatasync"))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(bytes)
            .map_err(io_err(&self.path, "append"))
    }
}

/// Removes the journal at `path` (absent is fine).
pub fn remove(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "remove")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            version: VERSION,
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u-1".into(),
            part_size: 5 << 20,
            total_size: 12 << 20,
            source: "src".into(),
        }
    }

    fn part(n: u32) -> JournalPart {
        JournalPart {
            part: n,
            size: 5 << 20,
            md5: format!("{n:032x}"),
            etag: format!("{n:032x}"),
        }
    }

    #[test]
    fn parts_survive_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let target = ObjectTarget {
            bucket: "b".into(),
            key: "k".into(),
        };
        let path = path_for(dir.path(), "http://127.0.0.1:1", &target);
        assert!(load(&path).unwrap().is_none());
        let mut j = Journal::start(&path, &header(), &BTreeMap::new()).unwrap();
        j.record_part(&part(1)).unwrap();
        j.record_part(&part(3)).unwrap();
        drop(j);
        // kill -9 in the middle of an append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"part":2,"size":52"#).unwrap();
        drop(f);
        let s = load(&path).unwrap().unwrap();
        assert_eq!(s.header, header());
        assert_eq!(s.parts.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert!(s.done.is_none());
        // Compaction rewrites the good lines; done is recorded.
        let mut j = Journal::start(&path, &s.header, &s.parts).unwrap();
        let done = Done {
            size: 1,
            etag: "e".into(),
            sha256: "s".into(),
            crc64: 7,
            parts: 3,
        };
        j.record_done(&done).unwrap();
        let s = load(&path).unwrap().unwrap();
        assert_eq!(s.parts.len(), 2);
        assert_eq!(s.done, Some(done));
        remove(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        remove(&path).unwrap();
    }

    #[test]
    fn foreign_or_garbage_journals_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        std::fs::write(&path, b"not json\n").unwrap();
        assert!(load(&path).unwrap().is_none());
        let mut h = header();
        h.version = 99;
        std::fs::write(&path, line(&h)).unwrap();
        assert!(load(&path).unwrap().is_none());
    }
}

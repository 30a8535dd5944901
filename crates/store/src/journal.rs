//! The resume journal of one upload: which multipart upload id belongs to which source and
//! object, and which parts finished with which MD5 and ETag.
//!
//! Format: JSON lines. The first line (the header) and every compaction are written to a
//! temporary file, fsync'd and renamed over the journal (then the directory is fsync'd), so
//! the journal is always whole; each finished part is then one appended line. Part lines are
//! not fsync'd: a killed process loses nothing the kernel holds, and what a power cut loses
//! only means those parts are sent again (a resume reuses only the parts the journal and
//! ListParts agree on), while an fdatasync per part would write a block per part (512 for a
//! 4 GiB upload). Appending keeps the cost per part
//! constant (rewriting the whole file per part would be quadratic in parts); a torn line is
//! the last one and is ignored on load, which only means that part is uploaded again.
//! It holds no secret: the destination (account as a hash of the AccessKey ID, region,
//! endpoint identity, bucket), key, upload id, sizes and digests. The file's name is derived
//! from the destination and key, so a journal for one destination is never even read for
//! another; the header names them again and a resume checks it.
//!
//! Lifetime: a journal lives from CreateMultipartUpload to the verified object and is then
//! removed; "this object is already uploaded" is decided from the object itself (HEAD and
//! its digest record, `verify.rs`), not from a journal. Every part line repeats the upload
//! id, so a journal whose header is damaged still names the upload to abort ([`salvage`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ObjectTarget, StoreError};
use imgport_base::destination::Destination;

/// Largest journal read (10,000 parts of ~150 bytes fit many times over).
const MAX_JOURNAL_BYTES: u64 = 16 << 20;
/// Journal format version (2: the header names the whole destination).
pub const VERSION: u32 = 2;

/// What an upload is: the same header means the same upload can be resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    /// Account, region, endpoint identity and bucket.
    pub destination: Destination,
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
    /// MD5 of the part, hex: ours, or the store's ETag when the part was signed (the store
    /// checked its bytes against the signed SHA-256).
    pub md5: String,
    /// The signed payload SHA-256 of the part, hex: names its bytes when no MD5 of ours does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// ETag the server gave, without quotes.
    pub etag: String,
    /// The upload the part belongs to (see [`salvage`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upload_id: String,
}

/// A journal as read from disk.
#[derive(Debug, Clone)]
pub struct State {
    pub header: Header,
    pub parts: BTreeMap<u32, JournalPart>,
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

/// The journal file of `target` at `destination` in `dir` (one journal per object and
/// destination): `<destination fingerprint>-<hash of the key>.json`.
pub fn path_for(dir: &Path, destination: &Destination, target: &ObjectTarget) -> PathBuf {
    let mut h = Sha256::new();
    for s in [&target.bucket, &target.key] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let hex = hex::encode(h.finalize());
    dir.join(format!("{}-{}.json", destination.fingerprint(), &hex[..16]))
}

/// Identity of a local file's bytes as far as metadata tells: absolute path, size, mtime,
/// ctime and inode. ctime changes with any write even when mtime is set back (`touch -d`),
/// so a file edited in place is not taken for the one a journal describes. Bytes are still
/// checked (each reused part's MD5, the object's multipart ETag): this only decides early.
pub fn file_identity(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A member of an archive (`vm.ova/disk1.vmdk`) is named by a path that does not exist:
    // the archive's identity stands for it, with the member's name kept in the path.
    let stat = path.ancestors().find_map(|p| {
        std::fs::metadata(p)
            .ok()
            .filter(|m| p == path || m.is_file())
    });
    let (size, mtime, ctime, ino) = stat
        .ok_or(())
        .map(|m| {
            (
                m.len(),
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                m.ctime() * 1_000_000_000 + m.ctime_nsec(),
                m.ino(),
            )
        })
        .unwrap_or_default();
    format!(
        "path={};size={size};mtime_ns={mtime};ctime_ns={ctime};ino={ino}",
        abs.display()
    )
}

/// The upload ids a journal names anywhere (header or part lines), even when its header is
/// damaged: the uploads to abort when it cannot be resumed.
pub fn salvage(path: &Path) -> Vec<String> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut text = Vec::new();
    if file.take(MAX_JOURNAL_BYTES).read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    let mut ids = std::collections::BTreeSet::new();
    for line in text.split(|b| *b == b'\n') {
        match serde_json::from_slice(line) {
            Ok(serde_json::Value::Object(m)) => {
                if let Some(serde_json::Value::String(id)) = m.get("upload_id")
                    && !id.is_empty()
                {
                    ids.insert(id.clone());
                }
            }
            // A line that is no longer JSON (a header with a damaged byte, and no part line
            // after it when the run was killed before its first part) may still hold its id.
            _ => ids.extend(ids_in_damaged_line(line)),
        }
    }
    ids.into_iter().collect()
}

/// Longest upload id taken from a damaged line (S3's are ~60 characters, OSS's 32).
const MAX_UPLOAD_ID: usize = 1024;

/// The upload ids written as `"upload_id":"…"` in a line that no longer parses: only ids made
/// of the characters S3 and OSS use (letters, digits, `-._~+/=`), ended by their quote.
fn ids_in_damaged_line(line: &[u8]) -> Vec<String> {
    const FIELD: &[u8] = b"\"upload_id\"";
    let mut ids = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.windows(FIELD.len()).position(|w| w == FIELD) {
        rest = &rest[at + FIELD.len()..];
        let value = rest.trim_ascii_start();
        let Some(value) = value.strip_prefix(b":") else {
            continue;
        };
        let Some(value) = value.trim_ascii_start().strip_prefix(b"\"") else {
            continue;
        };
        let len = value
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b))
            .count();
        if (1..=MAX_UPLOAD_ID).contains(&len) && value.get(len) == Some(&b'"') {
            ids.push(String::from_utf8_lossy(&value[..len]).into_owned());
        }
    }
    ids
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
    };
    for line in lines {
        // A torn last line (kill -9 during an append) does not parse: stop there.
        match serde_json::from_slice::<JournalPart>(line) {
            Ok(p) if p.part >= 1 && p.part <= 10_000 => {
                state.parts.insert(p.part, p);
            }
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
    use imgport_base::destination::account_id;

    fn dest(endpoint: &str) -> Destination {
        Destination {
            account: account_id("AKID"),
            region: "cn-hangzhou".into(),
            endpoint: endpoint.into(),
            bucket: "b".into(),
        }
    }

    fn header() -> Header {
        Header {
            version: VERSION,
            destination: dest("http://127.0.0.1:1"),
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
            sha256: None,
            etag: format!("{n:032x}"),
            upload_id: "u-1".into(),
        }
    }

    fn target() -> ObjectTarget {
        ObjectTarget {
            bucket: "b".into(),
            key: "k".into(),
        }
    }

    #[test]
    fn parts_survive_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), &dest("http://127.0.0.1:1"), &target());
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
        // Compaction rewrites the good lines.
        drop(Journal::start(&path, &s.header, &s.parts).unwrap());
        assert_eq!(load(&path).unwrap().unwrap().parts.len(), 2);
        remove(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        remove(&path).unwrap();
    }

    #[test]
    fn each_destination_has_its_own_journal() {
        let dir = Path::new("/j");
        let a = path_for(dir, &dest("http://127.0.0.1:1"), &target());
        assert_eq!(a, path_for(dir, &dest("http://127.0.0.1:1"), &target()));
        assert_ne!(a, path_for(dir, &dest("http://127.0.0.1:2"), &target()));
        let mut other_account = dest("http://127.0.0.1:1");
        other_account.account = account_id("AKID2");
        assert_ne!(a, path_for(dir, &other_account, &target()));
        let other_key = ObjectTarget {
            key: "k2".into(),
            ..target()
        };
        assert_ne!(a, path_for(dir, &dest("http://127.0.0.1:1"), &other_key));
    }

    #[test]
    fn foreign_or_garbage_journals_are_not_trusted_but_name_their_upload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        std::fs::write(&path, b"not json\n").unwrap();
        assert!(load(&path).unwrap().is_none());
        assert!(salvage(&path).is_empty());
        let mut h = header();
        h.version = 99;
        std::fs::write(&path, line(&h)).unwrap();
        assert!(load(&path).unwrap().is_none());
        assert_eq!(salvage(&path), ["u-1"]);
        // A damaged header: the part lines still name the upload.
        let mut body = b"\x00garbage{\n".to_vec();
        body.extend(line(&part(1)));
        std::fs::write(&path, body).unwrap();
        assert!(load(&path).unwrap().is_none());
        assert_eq!(salvage(&path), ["u-1"]);
        // A header with a damaged byte and no part line (killed before its first part): the
        // id is still read from the header's text; a cut or odd value gives none.
        let text = String::from_utf8(line(&header())).unwrap();
        std::fs::write(&path, text.replacen('{', "\u{1}", 1)).unwrap();
        assert!(load(&path).unwrap().is_none());
        assert_eq!(salvage(&path), ["u-1"]);
        std::fs::write(&path, b"x\"upload_id\" : \"a+b/c=\",\"upload_id\":\"cut").unwrap();
        assert_eq!(salvage(&path), ["a+b/c="]);
        std::fs::write(&path, b"x\"upload_id\":\"a b\" \"upload_id\":12").unwrap();
        assert!(salvage(&path).is_empty());
    }
}

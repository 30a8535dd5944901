//! Multipart uploads of the embedded S3 server, laid out so that CompleteMultipartUpload
//! usually copies no byte.
//!
//! An upload is the directory `<root>/.imgport-s3/uploads/<id>/`: `upload.json` (bucket,
//! key, content type, user metadata), one `staging` file, `parts/<n>.json` per stored part
//! (size, MD5, CRC-64, where its bytes are) and `part-<n>-<random>` files for parts that do
//! not fit the staging layout. The records make ListParts and Complete work after a restart.
//!
//! The staging layout: the first part to arrive fixes the slot size P (clients send equal
//! parts but the last: imgport, aws-cli); part n of at most P bytes is written at
//! (n-1)·P of the staging file. A part larger than P, a part of unknown length, a second
//! attempt at a part while one is being written, and a new attempt at a part already stored
//! in its slot (so the stored one survives a failed attempt) get files of their own. When
//! Complete names parts 1..=N, N-1 of them P bytes and the last at most P, the staging file
//! is the object: parts kept elsewhere are copied into their slots (`copy_file_range`), the
//! file is cut to length and renamed into place. Any other list is assembled into a new file
//! by `copy_file_range`.
//!
//! Concurrency: parts of one upload arrive at once. The per-upload state lock is held only to
//! place a part and to record it, never during data I/O; positioned writes share the staging
//! file. Complete and Abort first close the upload (later parts get NoSuchUpload), then take
//! the write gate exclusively, which waits for any write under way.
//!
//! Kept whole: the staging layout and its locking, which must be read together to see that no part
//! is lost or copied twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use s3s::{S3Error, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use super::body::WriteAt;
use super::store::{
    Digest, Meta, Overwrite, Store, copy_range, io_error, open_direct, write_at, write_atomic,
};
use imgport_transfer::digest::{crc64_combine, multipart_etag};

/// S3's part numbers are 1..=10000.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// The smallest part OSS (which this server stands in for) accepts, except the last: 100 KiB
/// (S3's own is 5 MiB). Checked at Complete (EntityTooSmall).
const MIN_PART_SIZE: u64 = 100 << 10;
const STAGING: &str = "staging";
const INFO: &str = "upload.json";
const PARTS: &str = "parts";
const OWN_PREFIX: &str = "part-";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "the upload does not exist or was completed or aborted"
    )
}

/// What CreateMultipartUpload was told, for the final object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub created: u64,
}

impl UploadInfo {
    /// An upload of `bucket`/`key` created now, without content type or user metadata.
    pub fn new(bucket: &str, key: &str) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            content_type: None,
            metadata: BTreeMap::new(),
            created: now_ms(),
        }
    }
}

/// Where a stored part's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// In the staging file at `(number - 1) * slot_size`.
    Slot { slot_size: u64 },
    /// The whole file `name` in the upload's directory.
    File { name: String },
}

/// A stored part (its record file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub number: u32,
    pub size: u64,
    /// Hex MD5: the part's ETag.
    pub md5: String,
    pub crc64: u64,
    /// Unix milliseconds.
    pub modified: u64,
    pub at: Place,
}

impl Part {
    fn md5_bytes(&self) -> Option<[u8; 16]> {
        let b = self.md5.as_bytes();
        if b.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            let s = std::str::from_utf8(&b[2 * i..2 * i + 2]).ok()?;
            *o = u8::from_str_radix(s, 16).ok()?;
        }
        Some(out)
    }

    /// Offset in the staging file, for a part in a slot.
    fn slot_offset(&self) -> Option<u64> {
        match self.at {
            Place::Slot { slot_size } => u64::from(self.number - 1).checked_mul(slot_size),
            Place::File { .. } => None,
        }
    }
}

#[derive(Default)]
struct State {
    /// P, once the first part of known, non-zero length arrived.
    slot_size: Option<u64>,
    parts: BTreeMap<u32, Part>,
    /// Parts being written into their slot.
    busy: BTreeSet<u32>,
}

/// One multipart upload.
pub struct Upload {
    pub id: String,
    pub info: UploadInfo,
    dir: PathBuf,
    staging: Arc<File>,
    /// The staging file opened for direct writes, when its file system allows them.
    staging_direct: Option<Arc<File>>,
    state: Mutex<State>,
    /// Held while a part's record is written and put in `state`, and while the upload is
    /// closed or reopened, so records on disk and in memory agree.
    persist: Mutex<()>,
    /// Shared by each positioned write; Complete and Abort take it exclusively once closed.
    gate: RwLock<()>,
    closed: AtomicBool,
}

/// The bytes of one part attempt go through this; dropping it unrecorded frees its slot or
/// removes its own file.
pub struct PartClaim {
    upload: Arc<Upload>,
    number: u32,
    file: Arc<File>,
    direct: Option<Arc<File>>,
    base: u64,
    place: Place,
    recorded: bool,
}

impl WriteAt for PartClaim {
    fn write_at(&self, data: &[u8], offset: u64) -> S3Result<()> {
        let _gate = self.upload.gate.read().unwrap_or_else(|p| p.into_inner());
        if self.upload.closed.load(Ordering::Acquire) {
            return Err(no_such_upload());
        }
        write_at(&self.file, self.direct.as_deref(), data, self.base + offset)
            .map_err(|e| s3_error!(e, InternalError, "writing part {}", self.number))
    }
}

impl PartClaim {
    /// Records the part whose bytes were written: its record file, then the upload's state.
    /// A part stored before under the same number is replaced (its own file removed).
    pub fn finish(mut self, d: &Digest) -> S3Result<Part> {
        let up = self.upload.clone();
        let _persist = lock(&up.persist);
        if up.closed.load(Ordering::Acquire) {
            return Err(no_such_upload());
        }
        let part = Part {
            number: self.number,
            size: d.len,
            md5: hex::encode(d.md5),
            crc64: d.crc64,
            modified: now_ms(),
            at: self.place.clone(),
        };
        let rec = up.record_path(self.number);
        let json = serde_json::to_vec(&part).unwrap_or_default();
        write_atomic(&rec, &json).map_err(io_error("write", &rec))?;
        let old = {
            let mut st = lock(&up.state);
            st.busy.remove(&self.number);
            st.parts.insert(self.number, part.clone())
        };
        self.recorded = true;
        if let Some(Part {
            at: Place::File { name },
            ..
        }) = old
            && part.at != (Place::File { name: name.clone() })
        {
            let _ = std::fs::remove_file(up.dir.join(name));
        }
        Ok(part)
    }
}

impl Drop for PartClaim {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        match &self.place {
            Place::Slot { .. } => {
                lock(&self.upload.state).busy.remove(&self.number);
            }
            Place::File { name } => {
                let _ = std::fs::remove_file(self.upload.dir.join(name));
            }
        }
    }
}

/// How Complete makes the object from the chosen parts.
#[derive(Debug, PartialEq, Eq)]
enum Layout<'a> {
    /// The staging file, with parts stored elsewhere copied into their slots.
    Staging(u64),
    /// The one part's own file.
    Single(&'a str),
    /// A new file, all parts copied.
    Assemble,
}

fn layout(parts: &[Part], slot_size: Option<u64>) -> Layout<'_> {
    if let [only] = parts
        && let Place::File { name } = &only.at
    {
        return Layout::Single(name);
    }
    if let Some(p) = slot_size {
        let last = parts.len();
        let uniform = parts.iter().enumerate().all(|(i, part)| {
            part.number as usize == i + 1
                && if i + 1 < last {
                    part.size == p
                } else {
                    part.size <= p
                }
        });
        if uniform {
            return Layout::Staging(p);
        }
    }
    Layout::Assemble
}

impl Upload {
    fn new(id: String, info: UploadInfo, dir: PathBuf, staging: File, state: State) -> Self {
        Self {
            id,
            info,
            staging_direct: open_direct(&dir.join(STAGING)).map(Arc::new),
            dir,
            staging: Arc::new(staging),
            state: Mutex::new(state),
            persist: Mutex::new(()),
            gate: RwLock::new(()),
            closed: AtomicBool::new(false),
        }
    }

    fn record_path(&self, number: u32) -> PathBuf {
        self.dir.join(PARTS).join(format!("{number}.json"))
    }

    /// Where an attempt at part `number` of `size` bytes (if known) writes.
    pub fn begin_part(self: &Arc<Self>, number: u32, size: Option<u64>) -> S3Result<PartClaim> {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
            ));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(no_such_upload());
        }
        let slot = {
            let mut st = lock(&self.state);
            match size {
                Some(s) if s > 0 && s <= MAX_PART_SIZE => {
                    let p = *st.slot_size.get_or_insert(s);
                    let taken = st.busy.contains(&number)
                        || st
                            .parts
                            .get(&number)
                            .is_some_and(|r| matches!(r.at, Place::Slot { .. }));
                    (s <= p && !taken).then(|| {
                        st.busy.insert(number);
                        p
                    })
                }
                _ => None,
            }
        };
        if let Some(slot_size) = slot {
            return Ok(PartClaim {
                upload: self.clone(),
                number,
                file: self.staging.clone(),
                direct: self.staging_direct.clone(),
                base: u64::from(number - 1) * slot_size,
                place: Place::Slot { slot_size },
                recorded: false,
            });
        }
        let name = format!("{OWN_PREFIX}{number}-{:016x}", fastrand::u64(..));
        let path = self.dir.join(&name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error("create", &path))?;
        Ok(PartClaim {
            upload: self.clone(),
            number,
            file: Arc::new(file),
            direct: open_direct(&path).map(Arc::new),
            base: 0,
            place: Place::File { name },
            recorded: false,
        })
    }

    /// Stored parts after `marker`, at most `max`, and whether more follow.
    pub fn parts_after(&self, marker: u32, max: usize) -> (Vec<Part>, bool) {
        let st = lock(&self.state);
        let mut it = st
            .parts
            .range(marker.saturating_add(1)..)
            .map(|(_, p)| p.clone());
        let page: Vec<Part> = it.by_ref().take(max).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// Checks Complete's list against the stored parts and closes the upload; the chosen
    /// parts and P.
    fn close_for_complete(
        &self,
        chosen: &[(u32, Option<String>)],
    ) -> S3Result<(Vec<Part>, Option<u64>)> {
        if chosen.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        if chosen.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order"
            ));
        }
        let _persist = lock(&self.persist);
        let st = lock(&self.state);
        if self.closed.load(Ordering::Acquire) {
            return Err(no_such_upload());
        }
        let mut parts = Vec::with_capacity(chosen.len());
        for (i, (n, etag)) in chosen.iter().enumerate() {
            let p = st
                .parts
                .get(n)
                .ok_or_else(|| s3_error!(InvalidPart, "part {n} was not uploaded"))?;
            if let Some(e) = etag {
                let e = e.trim().trim_matches('"');
                if !e.eq_ignore_ascii_case(&p.md5) {
                    return Err(s3_error!(
                        InvalidPart,
                        "part {n}: ETag {e:?} is not the stored part's {:?}",
                        p.md5
                    ));
                }
            }
            if i + 1 < chosen.len() && p.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "part {n} is {} bytes: all parts but the last have at least {MIN_PART_SIZE}",
                    p.size
                ));
            }
            parts.push(p.clone());
        }
        self.closed.store(true, Ordering::Release);
        Ok((parts, st.slot_size))
    }

    /// Opens the upload again after a failed Complete. `cut` is the staging file's new
    /// length when it was truncated: slots past it are gone.
    fn reopen(&self, cut: Option<u64>) {
        let _persist = lock(&self.persist);
        let mut st = lock(&self.state);
        if let Some(len) = cut {
            let lost: Vec<u32> = st
                .parts
                .values()
                .filter(|p| p.slot_offset().is_some_and(|o| o + p.size > len))
                .map(|p| p.number)
                .collect();
            for n in lost {
                st.parts.remove(&n);
                let _ = std::fs::remove_file(self.record_path(n));
            }
        }
        self.closed.store(false, Ordering::Release);
    }

    /// Waits until no write into the upload's files is under way (after closing).
    fn drain_writes(&self) {
        drop(self.gate.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// Makes the object from `parts` (validated, upload closed) and commits it. On error,
    /// also the staging file's new length if it was cut.
    fn build(
        &self,
        store: &Store,
        parts: &[Part],
        slot_size: Option<u64>,
        overwrite: Overwrite,
    ) -> Result<Meta, (S3Error, Option<u64>)> {
        let total: u64 = parts.iter().map(|p| p.size).sum();
        let md5s = parts
            .iter()
            .map(|p| p.md5_bytes())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                (
                    s3_error!(InternalError, "a part record has a bad MD5"),
                    None,
                )
            })?;
        let crc = parts
            .iter()
            .fold(0, |acc, p| crc64_combine(acc, p.crc64, p.size));
        let mut meta = Meta::new(total, multipart_etag(&md5s), crc);
        meta.content_type = self.info.content_type.clone();
        meta.metadata = self.info.metadata.clone();
        let (bucket, key) = (&self.info.bucket, &self.info.key);
        match layout(parts, slot_size) {
            Layout::Single(name) => store
                .commit(&self.dir.join(name), bucket, key, meta, overwrite)
                .map_err(|e| (e, None)),
            Layout::Staging(p) => {
                for part in parts {
                    if let Place::File { name } = &part.at {
                        let at = u64::from(part.number - 1) * p;
                        let path = self.dir.join(name);
                        File::open(&path)
                            .and_then(|f| copy_range(&f, 0, &self.staging, at, part.size))
                            .map_err(|e| (io_error("copy", &path)(e), None))?;
                    }
                }
                let staging = self.dir.join(STAGING);
                self.staging
                    .set_len(total)
                    .map_err(|e| (io_error("truncate", &staging)(e), Some(total)))?;
                store
                    .commit(&staging, bucket, key, meta, overwrite)
                    .map_err(|e| (e, Some(total)))
            }
            Layout::Assemble => {
                let tmp = store.temp_file().map_err(|e| (e, None))?;
                let mut at = 0;
                for part in parts {
                    let copied = match &part.at {
                        Place::Slot { .. } => {
                            let off = part.slot_offset().unwrap_or_default();
                            copy_range(&self.staging, off, &tmp.file, at, part.size)
                        }
                        Place::File { name } => File::open(self.dir.join(name))
                            .and_then(|f| copy_range(&f, 0, &tmp.file, at, part.size)),
                    };
                    copied.map_err(|e| (io_error("assemble", &tmp.path)(e), None))?;
                    at += part.size;
                }
                store
                    .commit(&tmp.path, bucket, key, meta, overwrite)
                    .map_err(|e| (e, None))
            }
        }
    }
}

/// True for the ids [`Uploads::create`] makes: 32 lower-case hex digits (so an id is a safe
/// directory name).
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn open_staging(dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(STAGING))
}

/// Reads an upload's directory after a restart: its records that still describe bytes on
/// disk; other records, record temporaries and unreferenced part files are removed.
fn load(dir: &Path, id: &str) -> io::Result<Option<Upload>> {
    let info: UploadInfo = match std::fs::read(dir.join(INFO)) {
        Ok(b) => serde_json::from_slice(&b).map_err(io::Error::other)?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let staging = open_staging(dir)?;
    let staging_len = staging.metadata()?.len();
    let mut st = State::default();
    let mut keep = BTreeSet::new();
    let parts_dir = dir.join(PARTS);
    std::fs::create_dir_all(&parts_dir)?;
    for e in std::fs::read_dir(&parts_dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let part = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<Part>(&b).ok())
            .filter(|p| {
                name == format!("{}.json", p.number)
                    && (1..=MAX_PART_NUMBER).contains(&p.number)
                    && p.md5_bytes().is_some()
            });
        let usable = part.filter(|p| match &p.at {
            Place::Slot { slot_size } => {
                *slot_size > 0
                    && p.size <= *slot_size
                    && *st.slot_size.get_or_insert(*slot_size) == *slot_size
                    && p.slot_offset().is_some_and(|o| o + p.size <= staging_len)
            }
            Place::File { name } => {
                name.starts_with(OWN_PREFIX)
                    && !name.contains('/')
                    && std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == p.size)
            }
        });
        match usable {
            Some(p) => {
                if let Place::File { name } = &p.at {
                    keep.insert(name.clone());
                }
                st.parts.insert(p.number, p);
            }
            None => {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with(OWN_PREFIX) && !keep.contains(&name)) || name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(Some(Upload::new(
        id.to_string(),
        info,
        dir.to_path_buf(),
        staging,
        st,
    )))
}

/// The uploads of one server.
pub struct Uploads {
    dir: PathBuf,
    /// Uploads in use, by id; others are read from disk when first named.
    open: Mutex<HashMap<String, Arc<Upload>>>,
}

impl Uploads {
    /// The uploads under `dir`; directories a crash left without `upload.json` are removed.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        for e in std::fs::read_dir(&dir)?.flatten() {
            if !e.path().join(INFO).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(Self {
            dir,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A new upload of `info.bucket`/`info.key`.
    pub fn create(&self, info: UploadInfo) -> S3Result<Arc<Upload>> {
        let (id, dir) = loop {
            let id = format!("{:032x}", fastrand::u128(..));
            let dir = self.dir.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => break (id, dir),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("create", &dir)(e)),
            }
        };
        let made = std::fs::create_dir(dir.join(PARTS))
            .and_then(|()| open_staging(&dir))
            .and_then(|staging| {
                let json = serde_json::to_vec(&info).unwrap_or_default();
                write_atomic(&dir.join(INFO), &json).map(|()| staging)
            });
        let staging = match made {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io_error("create", &dir)(e));
            }
        };
        let upload = Arc::new(Upload::new(
            id.clone(),
            info,
            dir,
            staging,
            State::default(),
        ));
        lock(&self.open).insert(id, upload.clone());
        Ok(upload)
    }

    /// The upload `id` of `bucket`/`key` (NoSuchUpload for any other).
    pub fn get(&self, id: &str, bucket: &str, key: &str) -> S3Result<Arc<Upload>> {
        if !valid_id(id) {
            return Err(no_such_upload());
        }
        let upload = {
            let mut open = lock(&self.open);
            match open.get(id) {
                Some(u) => u.clone(),
                None => {
                    // Under the lock: two loads must not clean up each other's files.
                    let dir = self.dir.join(id);
                    let loaded = load(&dir, id)
                        .map_err(io_error("read", &dir))?
                        .ok_or_else(no_such_upload)?;
                    let u = Arc::new(loaded);
                    open.insert(id.to_string(), u.clone());
                    u
                }
            }
        };
        if upload.info.bucket != bucket || upload.info.key != key {
            return Err(no_such_upload());
        }
        Ok(upload)
    }

    /// The open uploads of `bucket` whose key starts with `prefix`, by key then creation
    /// (ListMultipartUploads): `(upload id, what Create was told)`.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, UploadInfo)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, UploadInfo)> = entries
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let json = std::fs::read(e.path().join(INFO)).ok()?;
                let info: UploadInfo = serde_json::from_slice(&json).ok()?;
                (valid_id(&id) && info.bucket == bucket && info.key.starts_with(prefix))
                    .then_some((id, info))
            })
            .collect();
        found.sort_by(|a, b| (&a.1.key, a.1.created).cmp(&(&b.1.key, b.1.created)));
        found
    }

    /// Removes a closed upload: first its `upload.json` (so it cannot be loaded again), then
    /// its directory, then its entry.
    fn forget(&self, upload: &Upload) {
        let _ = std::fs::remove_file(upload.dir.join(INFO));
        let _ = std::fs::remove_dir_all(&upload.dir);
        lock(&self.open).remove(&upload.id);
    }

    /// CompleteMultipartUpload with `chosen` (part number, ETag if given): the object's
    /// sidecar. A failed Complete leaves the upload open for another try.
    pub fn complete(
        &self,
        store: &Store,
        upload: &Upload,
        chosen: &[(u32, Option<String>)],
        overwrite: Overwrite,
    ) -> S3Result<Meta> {
        let (parts, slot_size) = upload.close_for_complete(chosen)?;
        upload.drain_writes();
        match upload.build(store, &parts, slot_size, overwrite) {
            Ok(meta) => {
                self.forget(upload);
                Ok(meta)
            }
            Err((e, cut)) => {
                upload.reopen(cut);
                Err(e)
            }
        }
    }

    /// AbortMultipartUpload: the upload and all its files are gone.
    pub fn abort(&self, upload: &Upload) -> S3Result<()> {
        {
            let _persist = lock(&upload.persist);
            let _st = lock(&upload.state);
            if upload.closed.swap(true, Ordering::AcqRel) {
                return Err(no_such_upload());
            }
        }
        upload.drain_writes();
        self.forget(upload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_transfer::digest::{crc64, md5};
    use std::os::unix::fs::MetadataExt;

    struct Fixture {
        dir: tempfile::TempDir,
        store: Store,
        uploads: Uploads,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bkt")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let uploads = Uploads::open(store.uploads_dir()).unwrap();
        Fixture {
            dir,
            store,
            uploads,
        }
    }

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    /// Sends part `n` as one buffer, as UploadPart does in batches.
    fn send(u: &Arc<Upload>, n: u32, bytes: &[u8]) -> S3Result<Part> {
        let claim = u.begin_part(n, Some(bytes.len() as u64))?;
        claim.write_at(bytes, 0)?;
        let d = Digest {
            md5: md5(bytes),
            crc64: crc64(bytes),
            len: bytes.len() as u64,
        };
        claim.finish(&d)
    }

    fn chosen(parts: &[&Part]) -> Vec<(u32, Option<String>)> {
        parts
            .iter()
            .map(|p| (p.number, Some(format!("\"{}\"", p.md5))))
            .collect()
    }

    fn object(f: &Fixture, key: &str) -> Vec<u8> {
        std::fs::read(f.dir.path().join("bkt").join(key)).unwrap()
    }

    const P: usize = 5 << 20;

    #[test]
    fn equal_parts_in_any_order_become_the_object_without_a_copy() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "d/obj")).unwrap();
        let body = data(3 * P + 1234, 1);
        let staging_ino = std::fs::metadata(u.dir.join(STAGING)).unwrap().ino();
        // Part 1 first fixes P; then out of order, the last (short) one before part 2.
        let p1 = send(&u, 1, &body[..P]).unwrap();
        let p4 = send(&u, 4, &body[3 * P..]).unwrap();
        let p3 = send(&u, 3, &body[2 * P..3 * P]).unwrap();
        let p2 = send(&u, 2, &body[P..2 * P]).unwrap();
        assert!(matches!(p4.at, Place::Slot { .. }));
        let (listed, more) = u.parts_after(0, 1000);
        assert_eq!(
            listed.iter().map(|p| p.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(!more);
        let meta = f
            .uploads
            .complete(
                &f.store,
                &u,
                &chosen(&[&p1, &p2, &p3, &p4]),
                Overwrite::Allow,
            )
            .unwrap();
        assert_eq!(object(&f, "d/obj"), body);
        let ino = std::fs::metadata(f.dir.path().join("bkt/d/obj"))
            .unwrap()
            .ino();
        assert_eq!(ino, staging_ino, "the staging file was renamed, not copied");
        let md5s: Vec<[u8; 16]> = body.chunks(P).map(md5).collect();
        assert_eq!(meta.etag, multipart_etag(&md5s));
        assert_eq!(meta.crc64, crc64(&body));
        assert_eq!(f.store.head("bkt", "d/obj").unwrap().meta, meta);
        assert!(!u.dir.exists(), "the upload's directory is gone");
        assert!(f.uploads.get(&u.id, "bkt", "d/obj").is_err());
    }

    #[test]
    fn parts_that_do_not_fit_the_layout_are_copied_in() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let body = data(3 * P, 2);
        // The last part arrives first and fixes a small P: the others do not fit.
        let p3 = send(&u, 3, &body[2 * P + P / 2..]).unwrap();
        let p1 = send(&u, 1, &body[..P]).unwrap();
        let p2 = send(&u, 2, &body[P..2 * P + P / 2]).unwrap();
        assert!(matches!(p1.at, Place::File { .. }));
        f.uploads
            .complete(&f.store, &u, &chosen(&[&p1, &p2, &p3]), Overwrite::Allow)
            .unwrap();
        assert_eq!(object(&f, "k"), body);
        assert!(
            std::fs::read_dir(f.store.uploads_dir())
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn a_part_sent_again_replaces_the_stored_one_and_is_patched_into_its_slot() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let body = data(2 * P, 3);
        let p1 = send(&u, 1, &body[..P]).unwrap();
        send(&u, 2, &data(P, 99)).unwrap();
        // Part 2 again, with other bytes: a file of its own, the slot stays intact meanwhile.
        let p2 = send(&u, 2, &body[P..]).unwrap();
        assert!(matches!(p2.at, Place::File { .. }));
        let (listed, _) = u.parts_after(0, 10);
        assert_eq!(listed[1].md5, p2.md5);
        f.uploads
            .complete(&f.store, &u, &chosen(&[&p1, &p2]), Overwrite::Allow)
            .unwrap();
        assert_eq!(object(&f, "k"), body);
    }

    #[test]
    fn a_chosen_subset_or_gap_is_assembled() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let parts: Vec<Vec<u8>> = (0..3).map(|i| data(P, 10 + i)).collect();
        let p: Vec<Part> = (0..3)
            .map(|i| send(&u, i as u32 + 1, &parts[i]).unwrap())
            .collect();
        f.uploads
            .complete(&f.store, &u, &chosen(&[&p[0], &p[2]]), Overwrite::Allow)
            .unwrap();
        assert_eq!(object(&f, "k"), [&parts[0][..], &parts[2][..]].concat());
    }

    #[test]
    fn complete_checks_the_list_and_stays_open_when_refused() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let p1 = send(&u, 1, &data(1000, 4)).unwrap();
        let p2 = send(&u, 2, &data(1000, 5)).unwrap();
        let code = |chosen: &[(u32, Option<String>)]| {
            f.uploads
                .complete(&f.store, &u, chosen, Overwrite::Allow)
                .unwrap_err()
                .code()
                .as_str()
                .to_string()
        };
        assert_eq!(code(&[]), "InvalidPart");
        assert_eq!(code(&[(3, None)]), "InvalidPart");
        assert_eq!(code(&[(1, Some("\"00\"".into()))]), "InvalidPart");
        assert_eq!(code(&[(2, None), (1, None)]), "InvalidPartOrder");
        assert_eq!(code(&chosen(&[&p1, &p2])), "EntityTooSmall");
        let e = u.begin_part(10_001, Some(1)).err().unwrap();
        assert_eq!(e.code().as_str(), "InvalidArgument");
        assert!(u.begin_part(0, Some(1)).is_err());
        // Still open: a one-part upload of a small part completes.
        f.uploads
            .complete(&f.store, &u, &chosen(&[&p2]), Overwrite::Allow)
            .unwrap();
        assert_eq!(object(&f, "k"), data(1000, 5));
    }

    #[test]
    fn create_only_complete_keeps_the_upload_when_the_object_exists() {
        let f = fixture();
        std::fs::write(f.dir.path().join("bkt/k"), b"old").unwrap();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let p1 = send(&u, 1, b"new").unwrap();
        let e = f
            .uploads
            .complete(&f.store, &u, &chosen(&[&p1]), Overwrite::ForbidS3)
            .unwrap_err();
        assert_eq!(e.code().as_str(), "PreconditionFailed");
        assert_eq!(object(&f, "k"), b"old");
        assert_eq!(u.parts_after(0, 10).0.len(), 1, "the part survives");
    }

    #[test]
    fn abort_removes_everything_and_later_parts_are_refused() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        send(&u, 1, &data(P, 6)).unwrap();
        let claim = u.begin_part(2, None).unwrap();
        f.uploads.abort(&u).unwrap();
        assert_eq!(
            claim.write_at(b"x", 0).unwrap_err().code().as_str(),
            "NoSuchUpload"
        );
        drop(claim);
        assert!(!u.dir.exists());
        assert_eq!(
            f.uploads.abort(&u).unwrap_err().code().as_str(),
            "NoSuchUpload"
        );
        assert!(f.uploads.get(&u.id, "bkt", "k").is_err());
        assert!(f.uploads.get("../../etc", "bkt", "k").is_err());
    }

    #[test]
    fn an_unrecorded_attempt_leaves_nothing_behind() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let claim = u.begin_part(1, None).unwrap();
        claim.write_at(b"half", 0).unwrap();
        drop(claim);
        let claim = u.begin_part(1, Some(4)).unwrap();
        drop(claim);
        assert!(u.parts_after(0, 10).0.is_empty());
        let names: Vec<_> = std::fs::read_dir(&u.dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(OWN_PREFIX))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        assert!(lock(&u.state).busy.is_empty());
    }

    #[test]
    fn parts_survive_a_restart() {
        let f = fixture();
        let u = f.uploads.create(UploadInfo::new("bkt", "k")).unwrap();
        let body = data(2 * P + 10, 7);
        let p1 = send(&u, 1, &body[..P]).unwrap();
        let p3 = send(&u, 3, &body[2 * P..]).unwrap();
        let big = send(&u, 5, &data(P + 1, 8)).unwrap();
        assert!(matches!(big.at, Place::File { .. }));
        let id = u.id.clone();
        drop(u);
        // A new server on the same root.
        let uploads = Uploads::open(f.store.uploads_dir()).unwrap();
        let u = uploads.get(&id, "bkt", "k").unwrap();
        let (listed, _) = u.parts_after(0, 10);
        assert_eq!(listed, [p1.clone(), p3.clone(), big]);
        assert!(uploads.get(&id, "bkt", "other").is_err());
        let p2 = send(&u, 2, &body[P..2 * P]).unwrap();
        assert!(matches!(p2.at, Place::Slot { slot_size } if slot_size == P as u64));
        uploads
            .complete(&f.store, &u, &chosen(&[&p1, &p2, &p3]), Overwrite::Allow)
            .unwrap();
        assert_eq!(object(&f, "k"), body);
    }

    #[test]
    fn layouts() {
        let part = |number, size, at: Place| Part {
            number,
            size,
            md5: String::new(),
            crc64: 0,
            modified: 0,
            at,
        };
        let slot = || Place::Slot { slot_size: 10 };
        let own = || Place::File { name: "f".into() };
        let l = |parts: &[Part]| format!("{:?}", layout(parts, Some(10)));
        assert_eq!(l(&[part(1, 10, slot()), part(2, 3, slot())]), "Staging(10)");
        assert_eq!(l(&[part(1, 10, own()), part(2, 10, slot())]), "Staging(10)");
        assert_eq!(l(&[part(1, 7, own())]), "Single(\"f\")");
        assert_eq!(l(&[part(1, 3, slot()), part(2, 3, slot())]), "Assemble");
        assert_eq!(l(&[part(2, 10, slot())]), "Assemble");
        assert_eq!(l(&[part(1, 10, slot()), part(3, 3, slot())]), "Assemble");
        assert_eq!(l(&[part(1, 11, own())]), "Single(\"f\")");
    }
}

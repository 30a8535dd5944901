//! The streaming engine: produces the bytes of a [`Layout`] part by part, in order, as a
//! [`PartSource`], with no temporary file.
//!
//! Each part is filled on the rayon pool in chunks (source reads and decompression run on
//! several threads through `DiskImage::read_at`), its CRC-64 computed per chunk while the bytes
//! are in cache and combined. Part MD5s are computed up to [`MD5_LANES`] parts at a time by the
//! multi-buffer MD5 (as many as the buffers the consumer leaves free), else per part on the
//! pool. SHA-256
//! of the whole stream runs on its own thread over the same buffers. Parts come from a bounded
//! [`BufferPool`], so memory is bounded by the buffer count × part size whatever the image size.
//!
//! Kept whole: one streaming engine (parts filled ahead on workers with every per-part digest,
//! zero parts, MD5 batches, the whole-stream SHA-256); its tests are in `stream/tests.rs`.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::digest::{crc64, crc64_combine};
use super::layout::Layout;
use super::pool::{BufferPool, PartData, PoolBuf, Zeros};
use super::{Part, PartReader, PartSource, StreamDigests, TransferError};
use imgport_image::DiskImage;
use imgport_md5x16::md5_many;

mod sizing;

pub use sizing::*;
use sizing::{MAX_AHEAD, default_buffers, part_size_at_least};

/// How a stream cuts and buffers its output.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Size of every part but the last; `None` picks [`auto_part_size`].
    pub part_size: Option<NonZeroU64>,
    /// Parts that may exist at once (being filled, hashed, or held by the consumer); 0 picks
    /// one per thread filling parts and two more, within [`DEFAULT_BUFFER_BUDGET`]. A consumer that holds
    /// this many parts blocks the next `next_part` until it drops one. A stream that batches
    /// part MD5s adds [`md5_extra_buffers`] to this.
    pub buffers: usize,
    /// Set from a signal handler to stop the stream at the next part.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Skip the whole-stream SHA-256 (serial on one core: it dominates for a large sparse RAW
    /// output, where everything else is nearly free); [`StreamDigests::sha256`] is then empty.
    pub skip_sha256: bool,
    /// Skip the per-part MD5 (a full pass over every part), which only an upload's `Content-MD5`
    /// needs; [`Part::md5`] is then `None`.
    pub skip_part_md5: bool,
    /// Also compute each part's SHA-256 ([`Part::sha256`]) on the worker that fills it: the
    /// signed payload hash of its UploadPart (docs/CLOUD-API.md §OSS).
    pub part_sha256: bool,
}

impl StreamOptions {
    /// Whether the parts go to an object store: each part is hashed for it (MD5 or SHA-256),
    /// parts are at least S3's smallest by default, and at most [`MAX_PARTS`] of them.
    pub fn for_upload(&self) -> bool {
        !self.skip_part_md5 || self.part_sha256
    }

    /// Options for an upload's stream: each part checked by the store either through its
    /// signed payload SHA-256 (`signed`) or, unsigned, through `Content-MD5`. One check per
    /// part is enough, so a signed stream computes no MD5.
    pub fn upload(signed: bool) -> Self {
        Self {
            part_sha256: signed,
            skip_part_md5: signed,
            ..Self::default()
        }
    }
}

/// MD5 (when computed), CRC-64 and SHA-256 (when computed) of an all-zero part.
type ZeroDigests = (Option<[u8; 16]>, u64, Option<[u8; 32]>);

struct Shared {
    layout: Layout,
    src: Arc<dyn DiskImage>,
    /// MD5 and CRC-64 of an all-zero part, by length: a sparse disk has many such parts.
    zero_digests: Mutex<HashMap<usize, ZeroDigests>>,
    /// What zero parts borrow instead of a buffer: allocated at the first zero part, `None`
    /// when the allocator refused (zero parts are then filled like data parts).
    zeros: std::sync::OnceLock<Option<Zeros>>,
    /// Size of the zeros to allocate: the part buffer size.
    zeros_len: usize,
    /// CRC-64 of zero runs by length (chunks and parts of a hole).
    zero_crcs: Mutex<HashMap<u64, u64>>,
    part_md5: bool,
    part_sha256: bool,
    /// Part MD5s are left to the batch in [`LayoutStream::next_part`], not done per part.
    batch_md5: bool,
}

struct Filled {
    data: PartData,
    md5: Option<[u8; 16]>,
    crc64: u64,
    sha256: Option<[u8; 32]>,
}

/// A part started ahead: being filled by a worker, or (a zero part) already complete.
enum Pending {
    Filling(Receiver<Result<Filled, TransferError>>),
    Ready(Filled),
}

enum ShaState {
    Running(JoinHandle<String>),
    Done(String),
    Failed,
}

/// The bytes of a [`Layout`] as a [`PartSource`].
pub struct LayoutStream {
    shared: Arc<Shared>,
    pool: BufferPool,
    part_size: u64,
    parts: u32,
    next_launch: u32,
    next_out: u32,
    pending: VecDeque<(u32, Pending)>,
    /// Filled parts whose MD5 batch is done, in order.
    ready: VecDeque<(u32, Filled)>,
    /// Parts per MD5 batch (1: MD5 per part on the pool).
    md5_lanes: usize,
    /// Most parts holding a buffer that are filled ahead of the consumer.
    fill_ahead: usize,
    sha_tx: Option<SyncSender<PartData>>,
    sha: Mutex<ShaState>,
    crc: u64,
    /// The CRC-64 shift for the usual part length, computed once.
    combine: super::digest::Crc64Combiner,
    /// The SHA-256 is skipped: parts are not sent to its thread at all.
    skip_sha256: bool,
    failed: bool,
    cancel: Option<Arc<AtomicBool>>,
    /// The pool parts read again are filled in ([`REREAD_BUFFERS`], allocated on first use):
    /// an upload's stream only (nothing retries a local one's parts).
    reread_pool: Option<BufferPool>,
}

impl LayoutStream {
    /// Streams `layout`, reading source ranges from `src`.
    pub fn new(
        layout: Layout,
        src: Arc<dyn DiskImage>,
        opts: &StreamOptions,
    ) -> Result<Self, TransferError> {
        let total = layout.size;
        let part_size = match opts.part_size {
            Some(given) => given.get(),
            None if opts.for_upload() => {
                part_size_at_least(HASHED_PART_SIZE, total).min(MAX_PART_SIZE)
            }
            None => local_part_size(total),
        };
        let parts = total.div_ceil(part_size).max(1);
        // Only a stream an upload sends is held to the object store's part count; a local
        // one may have more (its per-part list is then dropped).
        let max_parts = if opts.for_upload() {
            MAX_PARTS
        } else {
            u64::from(u32::MAX)
        };
        if parts > max_parts {
            return Err(TransferError::TooManyParts {
                part_size,
                parts,
                total,
                max: max_parts,
            });
        }
        let buffer_size = usize::try_from(part_size.min(total.max(1))).map_err(|_| {
            TransferError::TooManyParts {
                part_size,
                parts,
                total,
                max: max_parts,
            }
        })?;
        let buffers = if opts.buffers == 0 {
            default_buffers(buffer_size as u64)
        } else {
            opts.buffers
        };
        // A batch of part MD5s holds its parts at once: a few buffers on top of those asked
        // for, and whatever the consumer does not hold.
        let md5_lanes = if opts.skip_part_md5 || parts < 2 {
            1
        } else {
            MD5_LANES
        };
        let buffers = if md5_lanes > 1 {
            buffers + md5_extra_buffers(buffer_size as u64)
        } else {
            buffers
        };
        // The SHA-256 thread, when there is a SHA-256 to compute: skipped, no thread is
        // started (a fixed cost that dominated an empty disk's conversion, docs/PERFORMANCE.md
        // §Sparse).
        let (sha_tx, sha) = if opts.skip_sha256 {
            (None, ShaState::Done(String::new()))
        } else {
            let (tx, rx) = sync_channel::<PartData>(buffers);
            let handle = std::thread::Builder::new()
                .name("imgport-sha256".into())
                .spawn(move || {
                    let mut h = Sha256::new();
                    for part in rx {
                        h.update(&part[..]);
                    }
                    hex::encode(h.finalize())
                })
                .map_err(TransferError::Thread)?;
            (Some(tx), ShaState::Running(handle))
        };
        Ok(Self {
            shared: Arc::new(Shared {
                layout,
                src,
                zero_digests: Mutex::new(HashMap::new()),
                zeros: std::sync::OnceLock::new(),
                zeros_len: buffer_size,
                zero_crcs: Mutex::new(HashMap::new()),
                part_md5: !opts.skip_part_md5,
                part_sha256: opts.part_sha256,
                batch_md5: md5_lanes > 1,
            }),
            pool: BufferPool::new(buffer_size, buffers),
            part_size,
            parts: parts as u32,
            next_launch: 1,
            next_out: 1,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            md5_lanes,
            fill_ahead: if md5_lanes > 1 {
                md5_lanes
            } else {
                rayon::current_num_threads() + 1
            },
            sha_tx,
            sha: Mutex::new(sha),
            crc: 0,
            combine: super::digest::Crc64Combiner::new(part_size),
            skip_sha256: opts.skip_sha256,
            failed: false,
            cancel: opts.cancel.clone(),
            reread_pool: opts
                .for_upload()
                .then(|| BufferPool::new(buffer_size, REREAD_BUFFERS)),
        })
    }

    /// Streams `src` converted to `format`: what the uploader uses to upload a conversion
    /// without a temporary file.
    pub fn convert(
        src: Arc<dyn DiskImage>,
        format: super::layout::OutputFormat,
        opts: &StreamOptions,
    ) -> Result<Self, TransferError> {
        let layout = Layout::plan(src.as_ref(), format)?;
        Self::new(layout, src, opts)
    }

    /// Most bytes the part buffers can ever hold (the pools' buffers × their size, with the
    /// [`REREAD_BUFFERS`]): set by the part size and the buffers the caller asks for, never
    /// by the disk's size.
    pub fn buffer_capacity(&self) -> u64 {
        let reread = self.reread_pool.as_ref().map_or(0, BufferPool::max_buffers);
        let buffers = self.pool.max_buffers() + reread;
        buffers as u64 * self.pool.buffer_size() as u64
    }

    /// The layout being streamed.
    pub fn layout(&self) -> &Layout {
        &self.shared.layout
    }

    fn part_range(&self, number: u32) -> (u64, usize) {
        let offset = u64::from(number - 1) * self.part_size;
        let len = (self.shared.layout.size - offset).min(self.part_size) as usize;
        (offset, len)
    }

    fn launch(&mut self, buf: PoolBuf) {
        let number = self.next_launch;
        self.next_launch += 1;
        let (offset, _) = self.part_range(number);
        let (tx, rx) = sync_channel(1);
        let shared = self.shared.clone();
        rayon::spawn(move || {
            let _ = tx.send(fill_part(&shared, buf, offset));
        });
        self.pending.push_back((number, Pending::Filling(rx)));
    }

    /// Queues the next part, known from the layout to be all zeros: no buffer, no read, no
    /// worker, digests from the cache.
    fn launch_zero(&mut self, len: usize) {
        // Only called once the zeros exist (see `launch_ahead`).
        let Some(zeros) = self.shared.zeros() else {
            return;
        };
        let filled = zero_part(&self.shared, zeros, len);
        let number = self.next_launch;
        self.next_launch += 1;
        self.pending.push_back((number, Pending::Ready(filled)));
    }

    /// Starts filling parts ahead while buffers are free; waits for one only when nothing is
    /// in flight or filled (else the consumer may hold every buffer while it waits for a part
    /// that is ready).
    fn launch_ahead(&mut self) {
        while self.next_launch <= self.parts && self.pending.len() < MAX_AHEAD {
            let (offset, len) = self.part_range(self.next_launch);
            if self.shared.layout.is_zero(offset, len as u64) && self.shared.zeros().is_some() {
                self.launch_zero(len);
                continue;
            }
            // Parts filled ahead of the consumer: one MD5 batch, or one per filling thread
            // and one more. More would only take buffers (memory) from the parts in flight.
            if self.buffered_ahead() >= self.fill_ahead {
                break;
            }
            let buf = if self.pending.is_empty() && self.ready.is_empty() {
                self.pool.get(len)
            } else {
                match self.pool.try_get(len) {
                    Some(b) => b,
                    None => break,
                }
            };
            self.launch(buf);
        }
    }

    /// Parts started or filled ahead of the consumer that hold a buffer.
    fn buffered_ahead(&self) -> usize {
        let held = |d: &PartData| !d.is_zero_part();
        self.pending
            .iter()
            .filter(|(_, p)| match p {
                Pending::Filling(_) => true,
                Pending::Ready(f) => held(&f.data),
            })
            .count()
            + self.ready.iter().filter(|(_, f)| held(&f.data)).count()
    }

    /// The next filled part in order. With batched MD5s, the first part of a batch waits
    /// for the whole batch to be filled and hashes it in one [`md5_many`] call; a batch is
    /// up to [`MD5_LANES`] parts, fewer when no more buffers are free.
    fn next_filled(&mut self) -> Option<Result<(u32, Filled), TransferError>> {
        if self.ready.is_empty() {
            let want = if self.shared.batch_md5 {
                self.md5_lanes
            } else {
                1
            };
            while self.ready.len() < want {
                if self.pending.is_empty() {
                    self.launch_ahead();
                }
                let Some((number, pending)) = self.pending.pop_front() else {
                    break;
                };
                match pending {
                    Pending::Ready(filled) => self.ready.push_back((number, filled)),
                    Pending::Filling(rx) => match rx.recv() {
                        Ok(Ok(filled)) => self.ready.push_back((number, filled)),
                        Ok(Err(e)) => return Some(Err(e)),
                        Err(_) => return Some(Err(TransferError::WorkerLost)),
                    },
                }
                self.launch_ahead();
            }
            if self.shared.batch_md5 {
                let md5s = {
                    let unhashed: Vec<&[u8]> = self
                        .ready
                        .iter()
                        .filter(|(_, f)| f.md5.is_none())
                        .map(|(_, f)| &f.data[..])
                        .collect();
                    md5_many(&unhashed)
                };
                let unhashed = self.ready.iter_mut().filter(|(_, f)| f.md5.is_none());
                for ((_, f), md5) in unhashed.zip(md5s) {
                    f.md5 = Some(md5);
                }
            }
        }
        self.ready.pop_front().map(Ok)
    }

    fn finish_sha(&self) -> Option<String> {
        let mut state = self.sha.lock().unwrap_or_else(|p| p.into_inner());
        // Join the thread once (it ends when the last part has been sent) and keep the value.
        let current = std::mem::replace(&mut *state, ShaState::Failed);
        *state = match current {
            ShaState::Running(handle) => handle.join().map_or(ShaState::Failed, ShaState::Done),
            other => other,
        };
        match &*state {
            ShaState::Done(hex) => Some(hex.clone()),
            _ => None,
        }
    }
}

impl Shared {
    /// The shared zeros zero parts borrow, allocated on first use.
    fn zeros(&self) -> Option<&Zeros> {
        self.zeros
            .get_or_init(|| Zeros::try_new(self.zeros_len))
            .as_ref()
    }

    /// CRC-64 of `len` zero bytes, from the closed form, cached by length.
    fn zero_crc(&self, len: u64) -> u64 {
        let mut cache = self.zero_crcs.lock().unwrap_or_else(|p| p.into_inner());
        *cache
            .entry(len)
            .or_insert_with(|| super::digest::crc64_zeros(len))
    }

    /// The MD5 of a part's bytes when it is computed per part.
    fn md5_of(&self, data: &[u8]) -> Option<[u8; 16]> {
        (self.part_md5 && !self.batch_md5).then(|| super::digest::md5(data))
    }
}

/// A part of `len` zero bytes: a borrowed run of [`Zeros`], digests computed once per length.
fn zero_part(shared: &Shared, zeros: &Zeros, len: usize) -> Filled {
    let data = PartData::zeros(zeros, len);
    let cached = shared
        .zero_digests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&len)
        .copied();
    let (md5, crc, sha256) = match cached {
        Some(d) => d,
        None => {
            let (md5, sha) = (super::digest::md5, super::digest::sha256);
            let d = (
                shared.part_md5.then(|| md5(&data)),
                shared.zero_crc(len as u64),
                shared.part_sha256.then(|| sha(&data)),
            );
            shared
                .zero_digests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(len, d);
            d
        }
    };
    Filled {
        data,
        md5,
        crc64: crc,
        sha256,
    }
}

fn fill_part(shared: &Shared, mut buf: PoolBuf, offset: u64) -> Result<Filled, TransferError> {
    let layout = &shared.layout;
    let (bytes, zero_map) = buf.with_zero_map(CHUNK_SIZE);
    // Chunks the layout plans as zeros are written only when the reused buffer does not
    // hold zeros there already, and their CRC has a closed form: a part with a little data
    // in a large hole costs its data, not its length.
    let crcs: Vec<(u64, u64)> = bytes
        .par_chunks_mut(CHUNK_SIZE)
        .zip(zero_map.par_iter_mut())
        .enumerate()
        .map(|(i, (chunk, known_zero))| {
            let at = offset + (i * CHUNK_SIZE) as u64;
            let len = chunk.len() as u64;
            if layout.is_zero(at, len) {
                if !*known_zero {
                    chunk.fill(0);
                    // A short chunk leaves the rest of the buffer's chunk as it was.
                    *known_zero = chunk.len() == CHUNK_SIZE;
                }
                return Ok((shared.zero_crc(len), len));
            }
            *known_zero = false;
            layout.read(shared.src.as_ref(), chunk, at)?;
            Ok((crc64(chunk), len))
        })
        .collect::<Result<_, imgport_image::ImageError>>()?;
    let crc = crcs
        .iter()
        .fold(0u64, |acc, &(c, n)| crc64_combine(acc, c, n));
    let md5 = shared.md5_of(&buf);
    Ok(Filled {
        sha256: shared.part_sha256.then(|| super::digest::sha256(&buf)),
        data: PartData::new(buf),
        md5,
        crc64: crc,
    })
}

impl PartSource for LayoutStream {
    fn total_size(&self) -> u64 {
        self.shared.layout.size
    }

    fn part_size(&self) -> u64 {
        self.part_size
    }

    fn next_part(&mut self) -> Option<Result<Part, TransferError>> {
        if self.failed || self.next_out > self.parts {
            return None;
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            self.failed = true;
            self.sha_tx = None;
            return Some(Err(TransferError::Interrupted));
        }
        self.launch_ahead();
        let (number, filled) = match self.next_filled()? {
            Ok(next) => next,
            Err(e) => {
                self.failed = true;
                self.sha_tx = None;
                return Some(Err(e));
            }
        };
        let (offset, len) = self.part_range(number);
        let data = filled.data;
        if !self.skip_sha256
            && let Some(tx) = &self.sha_tx
            && tx.send(data.clone()).is_err()
        {
            self.sha_tx = None;
        }
        self.crc = self.combine.combine(self.crc, filled.crc64, len as u64);
        self.next_out += 1;
        if self.next_out > self.parts {
            self.sha_tx = None; // ends the SHA-256 thread's loop
        } else {
            self.launch_ahead();
        }
        Some(Ok(Part {
            number,
            offset,
            data,
            md5: filled.md5,
            crc64: filled.crc64,
            sha256: filled.sha256,
        }))
    }

    fn skip_zero_parts(&mut self) -> u64 {
        if !self.skip_sha256 || self.failed || !self.ready.is_empty() {
            return 0;
        }
        let mut skipped = 0u64;
        // Zero parts already started ahead are complete: account for them in order.
        while let Some((number, Pending::Ready(filled))) = self.pending.front()
            && filled.data.is_zero_part()
        {
            let (_, len) = self.part_range(*number);
            self.crc = self.combine.combine(self.crc, filled.crc64, len as u64);
            self.next_out += 1;
            skipped += len as u64;
            self.pending.pop_front();
        }
        // Then the rest of the run, in one step, when nothing else is in flight.
        if self.pending.is_empty() && self.next_launch == self.next_out {
            let (offset, _) = self.part_range(self.next_out.min(self.parts));
            let run_end = self.shared.layout.zero_run_end(offset);
            let total = self.shared.layout.size;
            let whole = if run_end >= total {
                u64::from(self.parts + 1 - self.next_out)
            } else {
                (run_end - offset) / self.part_size
            };
            if self.next_out <= self.parts && whole > 0 {
                let bytes = (whole * self.part_size).min(total - offset);
                self.crc = crc64_combine(self.crc, super::digest::crc64_zeros(bytes), bytes);
                self.next_out += whole as u32;
                self.next_launch = self.next_out;
                skipped += bytes;
            }
        }
        if self.next_out > self.parts {
            self.sha_tx = None;
        }
        skipped
    }

    fn reader(&self) -> Option<Arc<dyn PartReader>> {
        let pool = self.reread_pool.clone()?;
        Some(Arc::new(Reread {
            shared: self.shared.clone(),
            pool,
            part_size: self.part_size,
            parts: self.parts,
        }))
    }

    fn digests(&self) -> Option<StreamDigests> {
        if self.failed || self.next_out <= self.parts {
            return None;
        }
        Some(StreamDigests {
            size: self.shared.layout.size,
            sha256: self.finish_sha()?,
            crc64: self.crc,
        })
    }
}

/// Reads parts of a [`LayoutStream`] again: the same layout and source, its own pool.
struct Reread {
    shared: Arc<Shared>,
    pool: BufferPool,
    part_size: u64,
    parts: u32,
}

impl PartReader for Reread {
    fn read_part(&self, number: u32) -> Result<Part, TransferError> {
        if number == 0 || number > self.parts {
            return Err(TransferError::NoSuchPart {
                number,
                parts: self.parts,
            });
        }
        let offset = u64::from(number - 1) * self.part_size;
        let len = (self.shared.layout.size - offset).min(self.part_size) as usize;
        let filled = match self.shared.zeros() {
            Some(zeros) if self.shared.layout.is_zero(offset, len as u64) => {
                zero_part(&self.shared, zeros, len)
            }
            _ => fill_part(&self.shared, self.pool.get(len), offset)?,
        };
        Ok(Part {
            number,
            offset,
            data: filled.data,
            md5: None,
            crc64: filled.crc64,
            sha256: filled.sha256,
        })
    }
}

#[cfg(test)]
mod tests;

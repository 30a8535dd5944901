//! The part MD5s of all request bodies being received, hashed together. One MD5 stream is
//! serial and costly per byte, while the multi-buffer MD5 hashes sixteen lanes for about the
//! cost of one, so one thread hashes the bodies' batches in
//! rounds, one lane per body.
//!
//! A body hands its batches over and goes on receiving and writing; only its last batch
//! waits for the MD5 ([`BodyHash::finish`]). The thread keeps each body's state and queue,
//! so the batches of one body are hashed in order while the bodies wait for nobody.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use s3s::{S3Result, s3_error};

use imgport_md5x16::{Md5State, md5_blocks_many};
use imgport_transfer::pool::PoolBuf;

/// Most bodies hashed in one round (two AVX-512 registers of lanes).
const MAX_LANES: usize = 32;
/// Most bytes of one body hashed in a round.
const ROUND: usize = 1 << 20;
/// Longest the thread waits for more bodies to have a batch before a round that would
/// leave lanes idle. Waiting costs the bodies nothing (they do not wait for their MD5 but
/// at the end); a round costs the same with one lane busy as with sixteen.
const GATHER: Duration = Duration::from_millis(8);

/// Request bodies being hashed now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

enum Msg {
    /// Whole 64-byte blocks of `buf[range]` follow the body's bytes so far.
    Blocks {
        body: u64,
        buf: Arc<PoolBuf>,
        range: Range<usize>,
    },
    /// The body's state once its queue is hashed.
    Finish {
        body: u64,
        reply: SyncSender<Md5State>,
    },
    /// The body was dropped unfinished: forget its state and queue.
    Forget { body: u64 },
}

enum Queued {
    Blocks(Arc<PoolBuf>, Range<usize>),
    Finish(SyncSender<Md5State>),
}

#[derive(Default)]
struct Body {
    state: Md5State,
    queue: VecDeque<Queued>,
}

/// The thread's view of every body.
#[derive(Default)]
struct Lanes {
    bodies: HashMap<u64, Body>,
}

impl Lanes {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Blocks { body, buf, range } => self
                .bodies
                .entry(body)
                .or_default()
                .queue
                .push_back(Queued::Blocks(buf, range)),
            Msg::Finish { body, reply } => self
                .bodies
                .entry(body)
                .or_default()
                .queue
                .push_back(Queued::Finish(reply)),
            Msg::Forget { body } => {
                self.bodies.remove(&body);
            }
        }
    }

    /// Answers the bodies whose queue is down to their Finish; returns how many bodies
    /// have blocks to hash, and whether one of them waits for its answer (then a round
    /// starts without waiting for more).
    fn settle(&mut self) -> (usize, bool) {
        self.bodies.retain(|_, b| match b.queue.front() {
            Some(Queued::Finish(reply)) => {
                let _ = reply.send(b.state);
                false
            }
            _ => true,
        });
        let ready = self.bodies.values().filter(|b| !b.queue.is_empty()).count();
        let waiting = self
            .bodies
            .values()
            .any(|b| matches!(b.queue.back(), Some(Queued::Finish(_))));
        (ready, waiting)
    }

    /// One round: up to [`ROUND`] bytes of the first batch of up to [`MAX_LANES`] bodies.
    fn round(&mut self) {
        let mut lanes: Vec<(&mut Md5State, &[u8], &mut Range<usize>)> = Vec::new();
        for Body { state, queue } in self.bodies.values_mut() {
            if lanes.len() == MAX_LANES {
                break;
            }
            if let Some(Queued::Blocks(buf, range)) = queue.front_mut() {
                lanes.push((state, &buf[range.clone()], range));
            }
        }
        // Every lane hashes as much as the shortest: a round lasts as long as its longest
        // lane, so none idles.
        let even = lanes
            .iter()
            .map(|(_, d, _)| d.len())
            .min()
            .unwrap_or(0)
            .min(ROUND);
        for (_, data, _) in &mut lanes {
            *data = &data[..even];
        }
        let mut states: Vec<Md5State> = lanes.iter().map(|(s, ..)| **s).collect();
        let blocks: Vec<&[u8]> = lanes.iter().map(|(_, d, _)| *d).collect();
        md5_blocks_many(&mut states, &blocks);
        for ((state, data, range), new) in lanes.into_iter().zip(states) {
            *state = new;
            range.start += data.len();
        }
        // A finished batch gives its buffer back to the pool.
        for b in self.bodies.values_mut() {
            if let Some(Queued::Blocks(_, range)) = b.queue.front()
                && range.is_empty()
            {
                b.queue.pop_front();
            }
        }
    }
}

fn run(rx: Receiver<Msg>) {
    let mut lanes = Lanes::default();
    loop {
        if lanes.settle().0 == 0 {
            match rx.recv() {
                Ok(m) => lanes.take(m),
                Err(_) => return,
            }
        }
        while let Ok(m) = rx.try_recv() {
            lanes.take(m);
        }
        let (mut ready, mut waiting) = lanes.settle();
        let deadline = Instant::now() + GATHER;
        while ready > 0 && !waiting && ready < ACTIVE.load(Ordering::Relaxed).min(MAX_LANES) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(m) => lanes.take(m),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            (ready, waiting) = lanes.settle();
        }
        if ready > 0 {
            lanes.round();
        }
    }
}

fn service() -> Option<&'static SyncSender<Msg>> {
    static TX: OnceLock<Option<SyncSender<Msg>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = sync_channel::<Msg>(4 * MAX_LANES);
        std::thread::Builder::new()
            .name("imgport-s3-md5".into())
            .spawn(move || run(rx))
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

fn lost() -> s3s::S3Error {
    s3_error!(InternalError, "the MD5 thread stopped")
}

/// The MD5 of one request body, hashed in the lanes (or here, when the thread could not be
/// started).
pub struct BodyHash {
    id: u64,
    /// The state when hashing here.
    local: Option<Md5State>,
    done: bool,
}

impl BodyHash {
    /// A new body, counted as being hashed until finished or dropped.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        BodyHash {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            local: service().is_none().then(Md5State::default),
            done: false,
        }
    }

    /// Hashes the whole 64-byte blocks of `buf[range]` after the body's bytes so far; the
    /// buffer is shared until they are hashed.
    pub fn add(&mut self, buf: &Arc<PoolBuf>, range: Range<usize>) -> S3Result<()> {
        if let Some(state) = &mut self.local {
            md5_blocks_many(std::slice::from_mut(state), &[&buf[range]]);
            return Ok(());
        }
        let msg = Msg::Blocks {
            body: self.id,
            buf: buf.clone(),
            range,
        };
        service().ok_or_else(lost)?.send(msg).map_err(|_| lost())
    }

    /// The state over every block added, once they are hashed.
    pub fn finish(mut self) -> S3Result<Md5State> {
        self.done = true;
        if let Some(state) = self.local {
            return Ok(state);
        }
        let (reply, answer) = sync_channel(1);
        let msg = Msg::Finish {
            body: self.id,
            reply,
        };
        service().ok_or_else(lost)?.send(msg).map_err(|_| lost())?;
        answer.recv().map_err(|_| lost())
    }
}

impl Drop for BodyHash {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
        if !self.done
            && self.local.is_none()
            && let Some(tx) = service()
        {
            let _ = tx.send(Msg::Forget { body: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_md5x16::md5_finish;
    use imgport_transfer::digest::md5;
    use imgport_transfer::pool::BufferPool;

    fn buffer(pool: &BufferPool, bytes: &[u8]) -> Arc<PoolBuf> {
        let mut buf = pool.get(bytes.len());
        buf.copy_from_slice(bytes);
        Arc::new(buf)
    }

    /// Hashes `message` through the lanes in batches of the given sizes (whole blocks), then
    /// finishes it with its tail.
    fn hash_in_batches(pool: &BufferPool, message: &[u8], batches: &[usize]) -> [u8; 16] {
        let whole = message.len() / 64 * 64;
        let mut hash = BodyHash::new();
        let mut at = 0;
        for &size in batches.iter().cycle() {
            if at == whole {
                break;
            }
            let end = (at + size * 64).min(whole);
            let buf = buffer(pool, &message[at..end]);
            hash.add(&buf, 0..end - at).unwrap();
            at = end;
        }
        md5_finish(
            hash.finish().unwrap(),
            &message[whole..],
            message.len() as u64,
        )
    }

    #[test]
    fn bodies_hashed_side_by_side_get_their_own_md5() {
        let pool = BufferPool::new(3 << 20, 256);
        std::thread::scope(|s| {
            for body in 0..40usize {
                let pool = &pool;
                s.spawn(move || {
                    let len = body * 37_001 + body % 64;
                    let message: Vec<u8> = (0..len).map(|i| (i * 7 + body) as u8).collect();
                    let batches = [1 + body % 5, 300 + body * 11, 20_000];
                    assert_eq!(
                        hash_in_batches(pool, &message, &batches),
                        md5(&message),
                        "body {body} of {len} bytes"
                    );
                });
            }
        });
    }

    #[test]
    fn a_body_without_whole_blocks_finishes_with_the_initial_state() {
        assert_eq!(BodyHash::new().finish().unwrap(), Md5State::default());
        let pool = BufferPool::new(1 << 20, 4);
        assert_eq!(hash_in_batches(&pool, b"short", &[1]), md5(b"short"));
    }

    #[test]
    fn a_forgotten_body_is_dropped_with_its_queue_and_others_go_on() {
        let pool = BufferPool::new(1 << 20, 4);
        let (forgotten, kept) = (buffer(&pool, &[1; 4096]), buffer(&pool, &[2; 4096]));
        let mut lanes = Lanes::default();
        for (body, buf) in [(1, &forgotten), (2, &kept)] {
            let (buf, range) = (buf.clone(), 0..buf.len());
            lanes.take(Msg::Blocks { body, buf, range });
        }
        lanes.take(Msg::Forget { body: 1 });
        assert_eq!(
            Arc::strong_count(&forgotten),
            1,
            "its queued buffer is given back"
        );
        let (reply, answer) = sync_channel(1);
        lanes.take(Msg::Finish { body: 2, reply });
        assert_eq!(lanes.settle(), (1, true));
        lanes.round();
        assert_eq!(lanes.settle(), (0, false));
        assert!(lanes.bodies.is_empty(), "no state is kept for either body");
        let state = answer.try_recv().expect("the kept body was answered");
        assert_eq!(md5_finish(state, &[], 4096), md5(&[2; 4096]));
        assert_eq!(Arc::strong_count(&kept), 1);
    }
}

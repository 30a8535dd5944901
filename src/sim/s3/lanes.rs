//! The part MD5s of all requests in flight, hashed together. One thread takes every batch
//! that is waiting and runs them through the multi-buffer MD5 at once: one MD5 stream is
//! about 0.55 GiB/s per core (performance-limits.md §B.5), several lanes cost about the same
//! as one, and the ETag of every part otherwise bounds the server's upload speed.

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

use s3s::{S3Result, s3_error};

use crate::transfer::md5x16::{Md5State, md5_blocks_many};
use crate::transfer::pool::PoolBuf;

/// Most batches hashed in one go (two AVX-512 registers of lanes).
const MAX_LANES: usize = 32;
/// Longest the thread waits for the other bodies being received to send their batch. A
/// body sends a 1 MiB batch every 10–15 ms while eight are received at once, and a round
/// costs the same with one lane busy as with sixteen: in a 4 GiB import, 3 ms gathered 4.2
/// bodies' worth per round and 8 ms 5.5 (server CPU 5.4 -> 4.5–5.1 s).
const GATHER: Duration = Duration::from_millis(8);

/// Request bodies being received now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a body as being received while it lives, so the thread knows how many batches
/// to wait for.
pub struct Receiving(());

impl Receiving {
    /// Marks one more body as being received.
    pub fn start() -> Self {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Receiving(())
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Job {
    buf: PoolBuf,
    range: Range<usize>,
    state: Md5State,
    reply: SyncSender<(PoolBuf, Md5State)>,
}

fn service() -> Option<&'static SyncSender<Job>> {
    static TX: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = sync_channel::<Job>(2 * MAX_LANES);
        std::thread::Builder::new()
            .name("imgport-s3-md5".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    let deadline = Instant::now() + GATHER;
                    while jobs.len() < MAX_LANES {
                        if let Ok(j) = rx.try_recv() {
                            jobs.push(j);
                            continue;
                        }
                        let now = Instant::now();
                        if jobs.len() >= ACTIVE.load(Ordering::Relaxed) || now >= deadline {
                            break;
                        }
                        match rx.recv_timeout(deadline - now) {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let mut states: Vec<Md5State> = jobs.iter().map(|j| j.state).collect();
                    let blocks: Vec<&[u8]> = jobs.iter().map(|j| &j.buf[j.range.clone()]).collect();
                    md5_blocks_many(&mut states, &blocks);
                    drop(blocks);
                    for (j, st) in jobs.into_iter().zip(states) {
                        let _ = j.reply.send((j.buf, st));
                    }
                }
            })
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

/// Advances `state` over the whole 64-byte blocks of `buf[range]`, together with the other
/// requests' batches; hands the buffer back.
pub fn hash_blocks(buf: PoolBuf, range: Range<usize>, state: &mut Md5State) -> S3Result<PoolBuf> {
    let here = |buf: PoolBuf, range: Range<usize>, state: &mut Md5State| {
        md5_blocks_many(std::slice::from_mut(state), &[&buf[range]]);
        Ok(buf)
    };
    let Some(tx) = service() else {
        return here(buf, range, state);
    };
    let (reply, answer) = sync_channel(1);
    let job = Job {
        buf,
        range,
        state: *state,
        reply,
    };
    if let Err(std::sync::mpsc::SendError(job)) = tx.send(job) {
        return here(job.buf, job.range, state);
    }
    let (buf, st) = answer
        .recv()
        .map_err(|_| s3_error!(InternalError, "the MD5 thread stopped"))?;
    *state = st;
    Ok(buf)
}

//! A bounded pool of reused byte buffers.
//!
//! Fresh memory is expensive on VMs whose balloon reports free pages (first touch takes a host
//! fault, docs/LIMITS.md §Memory), and buffers above glibc's mmap
//! threshold are unmapped on free. So every large buffer the streaming engine uses comes from
//! here: at most `max_buffers` are ever allocated, and a dropped buffer goes back to the pool.
//! Every buffer starts on a [`BUFFER_ALIGN`] boundary, so it can be written with `O_DIRECT`.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Alignment of every buffer's first byte (a page: what `O_DIRECT` asks of memory at most).
pub const BUFFER_ALIGN: usize = 4096;

/// A pool of at most `max_buffers` buffers of `buffer_size` bytes each.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    buffer_size: usize,
    max_buffers: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    free: Vec<Aligned>,
    created: usize,
}

/// An allocation with room to start a buffer on a [`BUFFER_ALIGN`] boundary inside it.
struct Aligned {
    data: Vec<u8>,
    start: usize,
    /// Per chunk of a caller's choosing: whether it is known to hold only zeros (empty: the
    /// buffer is fresh, so all of it is). See [`PoolBuf::with_zero_map`].
    zero_map: Vec<bool>,
}

impl Aligned {
    fn new(size: usize) -> Self {
        let data = vec![0u8; size + BUFFER_ALIGN];
        imgport_base::mem::advise_huge_pages(data.as_ptr(), data.len());
        let start = data.as_ptr().align_offset(BUFFER_ALIGN);
        Self {
            data,
            start,
            zero_map: Vec::new(),
        }
    }

    fn get(&self, len: usize) -> &[u8] {
        self.data
            .get(self.start..self.start + len)
            .unwrap_or_default()
    }

    fn get_mut(&mut self, len: usize) -> &mut [u8] {
        self.data
            .get_mut(self.start..self.start + len)
            .unwrap_or_default()
    }
}

impl BufferPool {
    /// A pool handing out buffers of up to `buffer_size` bytes, at most `max_buffers` at once.
    pub fn new(buffer_size: usize, max_buffers: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                buffer_size,
                max_buffers: max_buffers.max(1),
                state: Mutex::new(PoolState {
                    free: Vec::new(),
                    created: 0,
                }),
                returned: Condvar::new(),
            }),
        }
    }

    /// Size in bytes of every buffer of the pool.
    pub fn buffer_size(&self) -> usize {
        self.inner.buffer_size
    }

    /// Most buffers the pool will ever hold.
    pub fn max_buffers(&self) -> usize {
        self.inner.max_buffers
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A poisoned lock only means another thread panicked while holding it; the free list
        // itself is always consistent.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn take(&self, state: &mut PoolState, len: usize) -> Option<PoolBuf> {
        let len = len.min(self.inner.buffer_size);
        let data = if let Some(buf) = state.free.pop() {
            buf
        } else if state.created < self.inner.max_buffers {
            state.created += 1;
            Aligned::new(self.inner.buffer_size)
        } else {
            return None;
        };
        Some(PoolBuf {
            data,
            len,
            pool: self.inner.clone(),
        })
    }

    /// A buffer of `len` bytes (capped at the buffer size) if one is free now.
    pub fn try_get(&self, len: usize) -> Option<PoolBuf> {
        let mut state = self.lock();
        self.take(&mut state, len)
    }

    /// A buffer of `len` bytes (capped at the buffer size), waiting until one is returned.
    pub fn get(&self, len: usize) -> PoolBuf {
        let mut state = self.lock();
        loop {
            if let Some(buf) = self.take(&mut state, len) {
                return buf;
            }
            state = self
                .inner
                .returned
                .wait(state)
                .unwrap_or_else(|poison| poison.into_inner());
        }
    }
}

/// A buffer borrowed from a [`BufferPool`]; it goes back to the pool when dropped.
/// Its contents are whatever the previous user left: callers overwrite every byte.
pub struct PoolBuf {
    data: Aligned,
    len: usize,
    pool: Arc<PoolInner>,
}

impl Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data.get(self.len)
    }
}

impl DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.data.get_mut(self.len)
    }
}

impl PoolBuf {
    /// The buffer's bytes and, per `chunk`-byte chunk of the whole buffer, whether that chunk
    /// is known to hold only zeros, for a filler that writes zero ranges only where they are
    /// not zero already (a reused buffer keeps its map; a fresh one is all zeros). The filler
    /// keeps the map true to the bytes; `chunk` must be the same on every use of a pool.
    pub fn with_zero_map(&mut self, chunk: usize) -> (&mut [u8], &mut [bool]) {
        let chunks = self.pool.buffer_size.div_ceil(chunk.max(1));
        if self.data.zero_map.len() != chunks {
            self.data.zero_map = vec![true; chunks];
        }
        let Aligned {
            data,
            start,
            zero_map,
        } = &mut self.data;
        let bytes = data.get_mut(*start..*start + self.len).unwrap_or_default();
        (bytes, zero_map)
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        let data = std::mem::replace(
            &mut self.data,
            Aligned {
                data: Vec::new(),
                start: 0,
                zero_map: Vec::new(),
            },
        );
        let mut state = self
            .pool
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.free.push(data);
        drop(state);
        self.pool.returned.notify_one();
    }
}

/// The bytes of one part, shared read-only between the consumer (uploader, writer) and the
/// SHA-256 thread; a pooled buffer returns to its pool when the last holder drops it.
///
/// A part that is all zeros holds no buffer of its own: it borrows a prefix of a shared
/// [`Zeros`] allocation that is never written, so its pages stay unmapped (reading them maps
/// the kernel's shared zero page) and a disk of any size streams its holes without filling or
/// holding memory for them.
#[derive(Clone)]
pub struct PartData(PartBytes);

#[derive(Clone)]
enum PartBytes {
    Pooled(Arc<PoolBuf>),
    Zero(Zeros, usize),
}

impl PartData {
    /// Freezes a filled buffer.
    pub fn new(buf: PoolBuf) -> Self {
        Self(PartBytes::Pooled(Arc::new(buf)))
    }

    /// `len` zero bytes borrowed from `zeros` (`len` is capped at its size).
    pub fn zeros(zeros: &Zeros, len: usize) -> Self {
        Self(PartBytes::Zero(zeros.clone(), len.min(zeros.0.len())))
    }

    /// True when the part is known to be all zeros without looking at its bytes.
    pub fn is_zero_part(&self) -> bool {
        matches!(self.0, PartBytes::Zero(..))
    }
}

/// A shared, never-written run of zero bytes that zero parts borrow (see [`PartData`]).
/// It is asked of the allocator as zeroed memory, which fresh pages already are, so creating
/// it touches nothing.
#[derive(Clone)]
pub struct Zeros(Arc<Vec<u8>>);

impl Zeros {
    /// `len` zero bytes, allocated without being touched; `None` when the allocator refuses
    /// (the caller then fills pooled buffers instead of aborting the process).
    pub fn try_new(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(Self(Arc::new(Vec::new())));
        }
        let layout = std::alloc::Layout::array::<u8>(len).ok()?;
        // SAFETY: the layout has a non-zero size; a null result is handled. The pointer comes
        // from the global allocator with exactly this layout (align 1, `len` bytes), all of
        // them initialised (zeroed), which is what `Vec::from_raw_parts` requires.
        let v = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout);
            if ptr.is_null() {
                return None;
            }
            Vec::from_raw_parts(ptr, len, len)
        };
        Some(Self(Arc::new(v)))
    }
}

impl Deref for PartData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            PartBytes::Pooled(buf) => buf,
            PartBytes::Zero(zeros, len) => zeros.0.get(..*len).unwrap_or_default(),
        }
    }
}

impl AsRef<[u8]> for PartData {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for PartData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PartData({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_bounded() {
        let pool = BufferPool::new(1024, 2);
        let a = pool.get(100);
        let b = pool.get(2000);
        assert_eq!(a.len(), 100);
        assert_eq!(b.len(), 1024);
        assert_eq!(a.as_ptr() as usize % BUFFER_ALIGN, 0);
        assert_eq!(b.as_ptr() as usize % BUFFER_ALIGN, 0);
        assert!(pool.try_get(10).is_none());
        let ptr = a.as_ptr();
        drop(a);
        let c = pool.try_get(10).unwrap();
        assert_eq!(c.as_ptr(), ptr, "the returned buffer is reused");
        let shared = PartData::new(c);
        let other = shared.clone();
        drop(shared);
        assert!(pool.try_get(1).is_none(), "still held by a clone");
        drop(other);
        assert!(pool.try_get(1).is_some());
    }

    #[test]
    fn zero_parts_borrow_untouched_zeros_and_an_impossible_size_is_no_abort() {
        let zeros = Zeros::try_new(1 << 20).unwrap();
        let part = PartData::zeros(&zeros, 4096);
        assert!(part.is_zero_part());
        assert_eq!(part.len(), 4096);
        assert!(part.iter().all(|&b| b == 0));
        assert_eq!(PartData::zeros(&zeros, 2 << 20).len(), 1 << 20, "capped");
        assert!(Zeros::try_new(usize::MAX).is_none());
    }

    #[test]
    fn get_waits_for_a_returned_buffer() {
        let pool = BufferPool::new(16, 1);
        let held = pool.get(16);
        let p2 = pool.clone();
        let t = std::thread::spawn(move || p2.get(8).len());
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(held);
        assert_eq!(t.join().unwrap(), 8);
    }
}

//! Multi-buffer MD5: independent messages hashed together, one per 32-bit lane of an
//! AVX-512 register (16 lanes, or two registers interleaved for 17 or more), so that the
//! `Content-MD5` of 16 multipart-upload parts costs about as much as one scalar MD5.
//! Without AVX-512F (AMD before Zen 4, most client CPUs) the 16 lanes are two AVX2
//! registers of 8; without AVX2, a portable scalar MD5.
//!
//! Kept whole: one algorithm in three kernels (AVX-512, AVX2, scalar) that must stay step for step
//! alike, and the tests that compare them.

/// MD5 of each slice (any lengths, any count; `result[i]` is `md5(slices[i])`).
///
/// Fastest with many slices of similar length per call: 16 fill one register, 32 two.
pub fn md5_many(slices: &[&[u8]]) -> Vec<[u8; 16]> {
    #[cfg(target_arch = "x86_64")]
    if slices.len() > 1
        && let Some(kernel) = x16::Kernel::detect()
    {
        return x16::md5_many(kernel, slices);
    }
    slices.iter().map(|s| md5_scalar(s)).collect()
}

/// Initial MD5 state (A, B, C, D).
const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The state of a message hashed in steps: the MD5 chaining words after its first whole
/// blocks. Lets messages that arrive piecemeal (request bodies) share the lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Md5State([u32; 4]);

impl Default for Md5State {
    fn default() -> Self {
        Md5State(IV)
    }
}

/// Advances each `states[i]` over `blocks[i]`, which must be whole 64-byte blocks (a
/// trailing partial block is ignored); the messages are hashed together in the lanes.
pub fn md5_blocks_many(states: &mut [Md5State], blocks: &[&[u8]]) {
    #[cfg(target_arch = "x86_64")]
    if states.len() > 1
        && let Some(kernel) = x16::Kernel::detect()
    {
        return x16::blocks_many(kernel, states, blocks);
    }
    for (st, b) in states.iter_mut().zip(blocks) {
        for block in b.as_chunks::<64>().0 {
            compress(&mut st.0, block);
        }
    }
}

/// The MD5 of a message of `len` bytes whose whole blocks are in `state` and whose last
/// `len % 64` bytes are `tail`.
pub fn md5_finish(state: Md5State, tail: &[u8], len: u64) -> [u8; 16] {
    let mut st = state.0;
    let mut buf = [0u8; 128];
    let used = pad(tail, len, &mut buf);
    for block in buf[..used].as_chunks::<64>().0 {
        compress(&mut st, block);
    }
    digest(st)
}

/// Per-step additive constants, `floor(abs(sin(i + 1)) * 2^32)`.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// Expands the 64 MD5 steps of one block. `$step!(f, a, b, c, d, word, k, shift)` does
/// `a = b + rol(a + f(b, c, d) + m[word] + k, shift)`, with `f` one of
/// `F`/`G`/`H`/`I` given as its `vpternlogd` truth table (0xca, 0xe4, 0x96, 0x39).
macro_rules! md5_steps {
    ($step:ident, $a:ident, $b:ident, $c:ident, $d:ident) => {
        md5_steps!(@quad $step, 0xca, 0, $a, $b, $c, $d, [0, 1, 2, 3], [7, 12, 17, 22]);
        md5_steps!(@quad $step, 0xca, 4, $a, $b, $c, $d, [4, 5, 6, 7], [7, 12, 17, 22]);
        md5_steps!(@quad $step, 0xca, 8, $a, $b, $c, $d, [8, 9, 10, 11], [7, 12, 17, 22]);
        md5_steps!(@quad $step, 0xca, 12, $a, $b, $c, $d, [12, 13, 14, 15], [7, 12, 17, 22]);
        md5_steps!(@quad $step, 0xe4, 16, $a, $b, $c, $d, [1, 6, 11, 0], [5, 9, 14, 20]);
        md5_steps!(@quad $step, 0xe4, 20, $a, $b, $c, $d, [5, 10, 15, 4], [5, 9, 14, 20]);
        md5_steps!(@quad $step, 0xe4, 24, $a, $b, $c, $d, [9, 14, 3, 8], [5, 9, 14, 20]);
        md5_steps!(@quad $step, 0xe4, 28, $a, $b, $c, $d, [13, 2, 7, 12], [5, 9, 14, 20]);
        md5_steps!(@quad $step, 0x96, 32, $a, $b, $c, $d, [5, 8, 11, 14], [4, 11, 16, 23]);
        md5_steps!(@quad $step, 0x96, 36, $a, $b, $c, $d, [1, 4, 7, 10], [4, 11, 16, 23]);
        md5_steps!(@quad $step, 0x96, 40, $a, $b, $c, $d, [13, 0, 3, 6], [4, 11, 16, 23]);
        md5_steps!(@quad $step, 0x96, 44, $a, $b, $c, $d, [9, 12, 15, 2], [4, 11, 16, 23]);
        md5_steps!(@quad $step, 0x39, 48, $a, $b, $c, $d, [0, 7, 14, 5], [6, 10, 15, 21]);
        md5_steps!(@quad $step, 0x39, 52, $a, $b, $c, $d, [12, 3, 10, 1], [6, 10, 15, 21]);
        md5_steps!(@quad $step, 0x39, 56, $a, $b, $c, $d, [8, 15, 6, 13], [6, 10, 15, 21]);
        md5_steps!(@quad $step, 0x39, 60, $a, $b, $c, $d, [4, 11, 2, 9], [6, 10, 15, 21]);
    };
    (@quad $step:ident, $f:literal, $i:literal, $a:ident, $b:ident, $c:ident, $d:ident,
     [$w0:literal, $w1:literal, $w2:literal, $w3:literal],
     [$s0:literal, $s1:literal, $s2:literal, $s3:literal]) => {
        $step!($f, $a, $b, $c, $d, $w0, K[$i], $s0);
        $step!($f, $d, $a, $b, $c, $w1, K[$i + 1], $s1);
        $step!($f, $c, $d, $a, $b, $w2, K[$i + 2], $s2);
        $step!($f, $b, $c, $d, $a, $w3, K[$i + 3], $s3);
    };
}

/// Scalar MD5 compression of one 64-byte block.
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut m = [0u32; 16];
    for (w, b) in m.iter_mut().zip(block.as_chunks::<4>().0) {
        *w = u32::from_le_bytes(*b);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    macro_rules! step {
        ($f:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $k:expr, $s:literal) => {
            // `t` takes what does not depend on `b`, the newest word, first.
            let t = $a.wrapping_add(m[$w]).wrapping_add($k);
            let t = match $f {
                0xca => t.wrapping_add($d ^ ($b & ($c ^ $d))),
                // G's two halves have disjoint bits, so they can be added one by one.
                0xe4 => t.wrapping_add($c & !$d).wrapping_add($b & $d),
                0x96 => t.wrapping_add($b ^ $c ^ $d),
                _ => t.wrapping_add($c ^ ($b | !$d)),
            };
            $a = $b.wrapping_add(t.rotate_left($s));
        };
    }
    md5_steps!(step, a, b, c, d);
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

/// Writes MD5's padding for a message of `len` bytes whose last `rest.len() < 64` bytes
/// are `rest` into `buf`; returns the number of bytes used (64 or 128).
fn pad(rest: &[u8], len: u64, buf: &mut [u8; 128]) -> usize {
    let r = rest.len().min(63);
    buf.fill(0);
    buf[..r].copy_from_slice(&rest[..r]);
    buf[r] = 0x80;
    let used = if r < 56 { 64 } else { 128 };
    buf[used - 8..used].copy_from_slice(&len.wrapping_mul(8).to_le_bytes());
    used
}

/// The digest bytes of a final state.
fn digest(state: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_le_bytes());
    }
    out
}

/// Portable one-message MD5 (the fallback of [`md5_many`]).
fn md5_scalar(data: &[u8]) -> [u8; 16] {
    let mut state = IV;
    let (blocks, rest) = data.as_chunks::<64>();
    let mut tail = [0u8; 128];
    let used = pad(rest, data.len() as u64, &mut tail);
    for block in blocks.iter().chain(tail[..used].as_chunks::<64>().0) {
        compress(&mut state, block);
    }
    digest(state)
}

#[cfg(target_arch = "x86_64")]
mod x16 {
    use super::{IV, K, compress as compress1, digest, pad};
    use core::arch::x86_64::*;

    /// Lanes per register; the kernel runs one or two registers' worth of lanes at once.
    const W: usize = 16;

    /// How many blocks ahead of each lane to prefetch.
    const PREFETCH: usize = 8;

    /// A multi-lane kernel and the proof that the CPU runs it: only [`Kernel::detect`] and
    /// [`Kernel::supported`] make one.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Kernel(Isa);

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Isa {
        /// A register of 16 lanes is one AVX-512 register.
        Avx512,
        /// A register of 16 lanes is two AVX2 registers of 8, interleaved.
        Avx2,
    }

    impl Kernel {
        /// The fastest kernel this CPU runs, if any.
        pub(super) fn detect() -> Option<Self> {
            if std::arch::is_x86_feature_detected!("avx512f") {
                Some(Kernel(Isa::Avx512))
            } else if std::arch::is_x86_feature_detected!("avx2") {
                Some(Kernel(Isa::Avx2))
            } else {
                None
            }
        }

        /// Every kernel this CPU runs (so that tests cover each one).
        #[cfg(test)]
        pub(super) fn supported() -> Vec<Self> {
            let mut all = Vec::new();
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Kernel(Isa::Avx512));
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                all.push(Kernel(Isa::Avx2));
            }
            all
        }
    }

    /// A full block of zeros that idle lanes hash (their results are discarded).
    static IDLE: [u8; 64] = [0; 64];

    /// One lane's message: full blocks still to hash, then its padded tail.
    struct Lane<'a> {
        /// Index of the message in the caller's list.
        index: usize,
        /// Full 64-byte blocks not yet hashed (a multiple of 64 bytes).
        blocks: &'a [u8],
        /// Remainder plus padding, `tail[tail_at..tail_end]` not yet hashed.
        tail: [u8; 128],
        tail_at: usize,
        tail_end: usize,
    }

    impl<'a> Lane<'a> {
        fn new(index: usize, data: &'a [u8]) -> Self {
            let full = data.len() - data.len() % 64;
            let mut tail = [0u8; 128];
            let tail_end = pad(&data[full..], data.len() as u64, &mut tail);
            Lane {
                index,
                blocks: &data[..full],
                tail,
                tail_at: 0,
                tail_end,
            }
        }

        /// The bytes this lane hashes next: a non-empty multiple of 64 until it is done.
        fn source(&self) -> &[u8] {
            if self.blocks.is_empty() {
                &self.tail[self.tail_at..self.tail_end]
            } else {
                self.blocks
            }
        }

        /// All the blocks this lane has still to hash.
        fn rest(&self) -> impl Iterator<Item = &[u8; 64]> {
            let tail = &self.tail[self.tail_at..self.tail_end];
            self.blocks.as_chunks().0.iter().chain(tail.as_chunks().0)
        }

        /// Marks `n` blocks of `source()` hashed; returns whether the lane is done.
        fn advance(&mut self, n: usize) -> bool {
            if self.blocks.is_empty() {
                self.tail_at += 64 * n;
            } else {
                self.blocks = &self.blocks[64 * n..];
            }
            self.blocks.is_empty() && self.tail_at >= self.tail_end
        }
    }

    /// The states of two registers of lanes, word-major as the kernel loads them:
    /// `self.0[g][w][l]` is word w (A, B, C, D) of lane `W * g + l`.
    struct States([[[u32; W]; 4]; 2]);

    impl States {
        /// The state of `lane`.
        fn get(&self, lane: usize) -> [u32; 4] {
            self.0[lane / W].map(|w| w[lane % W])
        }

        /// Sets the state of `lane`.
        fn set(&mut self, lane: usize, words: [u32; 4]) {
            for (w, v) in self.0[lane / W].iter_mut().zip(words) {
                w[lane % W] = v;
            }
        }
    }

    /// Multi-lane MD5 of all `slices`. Lanes hash in lockstep, a lane whose message ends
    /// takes the next waiting one, and with more than 16 messages in flight two registers
    /// of lanes run interleaved (one MD5 chain alone is latency-bound).
    pub(super) fn md5_many(kernel: Kernel, slices: &[&[u8]]) -> Vec<[u8; 16]> {
        let mut out = vec![[0u8; 16]; slices.len()];
        let mut waiting = slices.iter().enumerate();
        let mut lanes: [Option<Lane>; 2 * W] = Default::default();
        let mut state = States([[[0; W]; 4]; 2]);
        loop {
            for (l, lane) in lanes.iter_mut().enumerate() {
                if lane.is_none()
                    && let Some((i, s)) = waiting.next()
                {
                    *lane = Some(Lane::new(i, s));
                    state.set(l, IV);
                }
            }
            let busy = lanes.iter().flatten().count();
            if busy == 0 {
                break;
            }
            if busy == 1 && waiting.len() == 0 {
                // One message left: the scalar code hashes a single lane faster.
                if let Some((l, Some(lane))) = lanes.iter().enumerate().find(|(_, l)| l.is_some()) {
                    let mut one = state.get(l);
                    for block in lane.rest() {
                        compress1(&mut one, block);
                    }
                    out[lane.index] = digest(one);
                }
                break;
            }
            if busy <= W {
                // Move lanes of the second register into free lanes of the first.
                for from in W..2 * W {
                    if lanes[from].is_some()
                        && let Some(to) = lanes[..W].iter().position(Option::is_none)
                    {
                        lanes[to] = lanes[from].take();
                        state.set(to, state.get(from));
                    }
                }
            }
            // Blocks that every busy lane can hash from its current source (at least one).
            let n = lanes
                .iter()
                .flatten()
                .map(|l| l.source().len() / 64)
                .min()
                .unwrap_or(0);
            let inputs: [Option<&[u8]>; 2 * W] =
                core::array::from_fn(|l| lanes[l].as_ref().map(Lane::source));
            if busy <= W {
                hash_blocks(kernel, &mut state.0[..1], &inputs[..W], n);
            } else {
                hash_blocks(kernel, &mut state.0, &inputs, n);
            }
            for (l, slot) in lanes.iter_mut().enumerate() {
                if let Some(lane) = slot
                    && lane.advance(n)
                {
                    out[lane.index] = digest(state.get(l));
                    *slot = None;
                }
            }
        }
        out
    }

    /// [`super::md5_blocks_many`] in lanes: up to 32 messages at a time, in lockstep over
    /// the blocks all of them still have; a message that runs out leaves with its state.
    pub(super) fn blocks_many(kernel: Kernel, states: &mut [super::Md5State], blocks: &[&[u8]]) {
        for (sts, bls) in states.chunks_mut(2 * W).zip(blocks.chunks(2 * W)) {
            let mut state = States([[[0; W]; 4]; 2]);
            let mut rest: [&[u8]; 2 * W] = [&[]; 2 * W];
            for (l, (st, b)) in sts.iter().zip(bls).enumerate() {
                state.set(l, st.0);
                rest[l] = &b[..b.len() - b.len() % 64];
            }
            while let Some(n) = rest
                .iter()
                .filter(|r| !r.is_empty())
                .map(|r| r.len() / 64)
                .min()
            {
                let inputs: [Option<&[u8]>; 2 * W] =
                    core::array::from_fn(|l| (!rest[l].is_empty()).then_some(rest[l]));
                let wide = inputs[W..].iter().any(Option::is_some);
                hash_blocks(
                    kernel,
                    &mut state.0[..1 + usize::from(wide)],
                    &inputs[..W * (1 + usize::from(wide))],
                    n,
                );
                for (l, r) in rest.iter_mut().enumerate() {
                    if !r.is_empty() {
                        *r = &r[64 * n..];
                        if r.is_empty() {
                            // Idle lanes hash a dummy block from now on: keep the result.
                            sts[l].0 = state.get(l);
                        }
                    }
                }
            }
        }
    }

    /// Hashes `n` blocks in each lane of the `state.len()` (1 or 2) registers: lane `l`
    /// reads `inputs[l]` (at least `64 * n` bytes), idle lanes (`None`) a dummy block.
    fn hash_blocks(
        kernel: Kernel,
        state: &mut [[[u32; W]; 4]],
        inputs: &[Option<&[u8]>],
        n: usize,
    ) {
        let mut ptrs = [[IDLE.as_ptr(); W]; 2];
        let mut steps = [[0usize; W]; 2];
        for (l, input) in inputs.iter().enumerate().take(2 * W) {
            if let Some(s) = input {
                if s.len() < 64 * n {
                    debug_assert!(false, "lane {l} has fewer than {n} blocks");
                    return;
                }
                ptrs[l / W][l % W] = s.as_ptr();
                steps[l / W][l % W] = 64;
            }
        }
        // SAFETY (all calls): the `Kernel` token proves the CPU feature its kernel needs, and
        // every lane's pointer is valid for `steps * (n - 1) + 64` bytes: busy lanes were
        // checked above and idle ones read the 64-byte `IDLE` block in place.
        match kernel.0 {
            Isa::Avx512 => {
                if let Ok(s) = <&mut [_; 1]>::try_from(&mut *state) {
                    unsafe { compress::<1>(s, [ptrs[0]], [steps[0]], n) }
                } else if let Ok(s) = <&mut [_; 2]>::try_from(state) {
                    unsafe { compress::<2>(s, ptrs, steps, n) }
                }
            }
            Isa::Avx2 => {
                // Two registers of 16 lanes would be 16 AVX2 registers of state alone: one
                // after the other instead (the lanes are independent).
                for (g, s) in state.iter_mut().enumerate().take(2) {
                    unsafe { compress_avx2(s, ptrs[g], steps[g], n) }
                }
            }
        }
    }

    /// MD5 compression of `n` blocks in each lane of `G` registers, interleaved; lane `l` of
    /// register `g` reads its blocks at `ptrs[g][l]`, stepping `steps[g][l]` bytes (64, or 0
    /// to repeat one block) after each.
    ///
    /// # Safety
    /// The CPU supports AVX-512F, and each `ptrs[g][l]` is valid for reads of
    /// `steps[g][l] * (n - 1) + 64` bytes.
    #[target_feature(enable = "avx512f")]
    unsafe fn compress<const G: usize>(
        state: &mut [[[u32; W]; 4]; G],
        mut ptrs: [[*const u8; W]; G],
        steps: [[usize; W]; G],
        n: usize,
    ) {
        // SAFETY: `state[g][w]` is 64 readable bytes.
        let load = |g: usize, w: usize| unsafe { _mm512_loadu_si512(state[g][w].as_ptr().cast()) };
        let mut a: [__m512i; G] = core::array::from_fn(|g| load(g, 0));
        let mut b: [__m512i; G] = core::array::from_fn(|g| load(g, 1));
        let mut c: [__m512i; G] = core::array::from_fn(|g| load(g, 2));
        let mut d: [__m512i; G] = core::array::from_fn(|g| load(g, 3));
        for _ in 0..n {
            // m[g][w]: message word w of every lane of register g.
            let m: [[__m512i; 16]; G] = core::array::from_fn(|g| {
                // SAFETY: the current block of each lane is readable (the contract above).
                transpose(core::array::from_fn(|l| unsafe {
                    _mm512_loadu_si512(ptrs[g][l].cast())
                }))
            });
            for (p, s) in ptrs.as_flattened_mut().iter_mut().zip(steps.as_flattened()) {
                *p = p.wrapping_add(*s);
                // Prefetching never faults, so running past a lane's end is harmless.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH * *s).cast());
            }
            let (a0, b0, c0, d0) = (a, b, c, d);
            macro_rules! step {
                ($f:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $k:expr, $s:literal) => {
                    for g in 0..G {
                        let mk = _mm512_add_epi32(m[g][$w], _mm512_set1_epi32($k as i32));
                        let t = opaque(_mm512_add_epi32($a[g], mk));
                        let t = _mm512_add_epi32(
                            t,
                            _mm512_ternarylogic_epi32::<$f>($b[g], $c[g], $d[g]),
                        );
                        $a[g] = _mm512_add_epi32($b[g], _mm512_rol_epi32::<$s>(t));
                    }
                };
            }
            md5_steps!(step, a, b, c, d);
            for g in 0..G {
                a[g] = _mm512_add_epi32(a[g], a0[g]);
                b[g] = _mm512_add_epi32(b[g], b0[g]);
                c[g] = _mm512_add_epi32(c[g], c0[g]);
                d[g] = _mm512_add_epi32(d[g], d0[g]);
            }
        }
        for (g, s) in state.iter_mut().enumerate() {
            for (w, v) in s.iter_mut().zip([a[g], b[g], c[g], d[g]]) {
                // SAFETY: `w` is 64 writable bytes.
                unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), v) };
            }
        }
    }

    /// [`compress`] of one register of 16 lanes on AVX2, as two 8-lane halves interleaved.
    ///
    /// # Safety
    /// The CPU supports AVX2, and each `ptrs[l]` is valid for reads of
    /// `steps[l] * (n - 1) + 64` bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn compress_avx2(
        state: &mut [[u32; W]; 4],
        mut ptrs: [*const u8; W],
        steps: [usize; W],
        n: usize,
    ) {
        const H: usize = W / 8;
        // SAFETY: `state[w][8 * h..]` is 32 readable bytes.
        let load =
            |w: usize, h: usize| unsafe { _mm256_loadu_si256(state[w][8 * h..].as_ptr().cast()) };
        let mut a: [__m256i; H] = core::array::from_fn(|h| load(0, h));
        let mut b: [__m256i; H] = core::array::from_fn(|h| load(1, h));
        let mut c: [__m256i; H] = core::array::from_fn(|h| load(2, h));
        let mut d: [__m256i; H] = core::array::from_fn(|h| load(3, h));
        let ones = _mm256_set1_epi32(-1);
        for _ in 0..n {
            // m[h][w]: message word w of lanes 8h..8h + 8.
            let m: [[__m256i; 16]; H] = core::array::from_fn(|h| {
                let rows = |half: usize| -> [__m256i; 8] {
                    // SAFETY: the current block of each lane is readable (the contract above).
                    core::array::from_fn(|l| unsafe {
                        _mm256_loadu_si256(ptrs[8 * h + l].add(32 * half).cast())
                    })
                };
                let (lo, hi) = (transpose8(rows(0)), transpose8(rows(1)));
                core::array::from_fn(|w| if w < 8 { lo[w] } else { hi[w - 8] })
            });
            for (p, s) in ptrs.iter_mut().zip(&steps) {
                *p = p.wrapping_add(*s);
                // Prefetching never faults, so running past a lane's end is harmless.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH * *s).cast());
            }
            let (a0, b0, c0, d0) = (a, b, c, d);
            macro_rules! step {
                ($f:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $k:expr, $s:literal) => {
                    for h in 0..H {
                        let (b, c, d) = ($b[h], $c[h], $d[h]);
                        let mk = _mm256_add_epi32(m[h][$w], _mm256_set1_epi32($k as i32));
                        let t = opaque256(_mm256_add_epi32($a[h], mk));
                        // As in the scalar code: what does not depend on `b` goes first.
                        let t = match $f {
                            0xca => _mm256_add_epi32(
                                t,
                                _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d))),
                            ),
                            0xe4 => _mm256_add_epi32(
                                opaque256(_mm256_add_epi32(t, _mm256_andnot_si256(d, c))),
                                _mm256_and_si256(b, d),
                            ),
                            0x96 => _mm256_add_epi32(
                                t,
                                _mm256_xor_si256(b, opaque256(_mm256_xor_si256(c, d))),
                            ),
                            _ => _mm256_add_epi32(
                                t,
                                _mm256_xor_si256(
                                    c,
                                    _mm256_or_si256(b, opaque256(_mm256_xor_si256(d, ones))),
                                ),
                            ),
                        };
                        let rol = _mm256_or_si256(
                            _mm256_slli_epi32::<$s>(t),
                            _mm256_srli_epi32::<{ 32 - $s }>(t),
                        );
                        $a[h] = _mm256_add_epi32(b, rol);
                    }
                };
            }
            md5_steps!(step, a, b, c, d);
            for h in 0..H {
                a[h] = _mm256_add_epi32(a[h], a0[h]);
                b[h] = _mm256_add_epi32(b[h], b0[h]);
                c[h] = _mm256_add_epi32(c[h], c0[h]);
                d[h] = _mm256_add_epi32(d[h], d0[h]);
            }
        }
        for (w, v) in state.iter_mut().zip([a, b, c, d]) {
            for (h, half) in v.into_iter().enumerate() {
                // SAFETY: `w[8 * h..]` is 32 writable bytes.
                unsafe { _mm256_storeu_si256(w[8 * h..].as_mut_ptr().cast(), half) };
            }
        }
    }

    /// [`opaque`] for an AVX2 register.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn opaque256(mut x: __m256i) -> __m256i {
        // SAFETY: an empty asm block that only names one register does nothing.
        unsafe {
            core::arch::asm!(
                "/* {0} */",
                inout(ymm_reg) x,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        x
    }

    /// Transposes 8 rows of 8 dwords: `out[w]` lane `l` is `rows[l]` lane `w`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
        // Pairs of rows interleaved by dword, then by qword: `u[4 * g + w]` holds words w
        // (low 128 bits) and w + 4 (high) of rows 4g..4g + 4.
        let mut u = [_mm256_setzero_si256(); 8];
        for g in 0..2 {
            let [r0, r1, r2, r3] = [r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]];
            let (t0, t1) = (_mm256_unpacklo_epi32(r0, r1), _mm256_unpackhi_epi32(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_epi32(r2, r3), _mm256_unpackhi_epi32(r2, r3));
            u[4 * g] = _mm256_unpacklo_epi64(t0, t2);
            u[4 * g + 1] = _mm256_unpackhi_epi64(t0, t2);
            u[4 * g + 2] = _mm256_unpacklo_epi64(t1, t3);
            u[4 * g + 3] = _mm256_unpackhi_epi64(t1, t3);
        }
        let mut m = [_mm256_setzero_si256(); 8];
        for w in 0..4 {
            m[w] = _mm256_permute2x128_si256::<0x20>(u[w], u[4 + w]);
            m[w + 4] = _mm256_permute2x128_si256::<0x31>(u[w], u[4 + w]);
        }
        m
    }

    /// Returns `x`, hidden from the optimizer: otherwise LLVM reassociates
    /// `a + m + k + f` so that the constant `k` is added after `f`, putting one more
    /// addition on the step's dependency chain through `b`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn opaque(mut x: __m512i) -> __m512i {
        // SAFETY: an empty asm block that only names one register does nothing.
        unsafe {
            core::arch::asm!(
                "/* {0} */",
                inout(zmm_reg) x,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        x
    }

    /// Transposes 16 rows of 16 dwords: `out[w]` lane `l` is `rows[l]` lane `w`.
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
        // Pairs of rows interleaved by dword, then groups of four by qword: `u[4 * g + w]`
        // holds, in its 128-bit chunk k, word 4k + w of rows 4g..4g + 4.
        let mut u = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            let [r0, r1, r2, r3] = [r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]];
            let (t0, t1) = (_mm512_unpacklo_epi32(r0, r1), _mm512_unpackhi_epi32(r0, r1));
            let (t2, t3) = (_mm512_unpacklo_epi32(r2, r3), _mm512_unpackhi_epi32(r2, r3));
            u[4 * g] = _mm512_unpacklo_epi64(t0, t2);
            u[4 * g + 1] = _mm512_unpackhi_epi64(t0, t2);
            u[4 * g + 2] = _mm512_unpacklo_epi64(t1, t3);
            u[4 * g + 3] = _mm512_unpackhi_epi64(t1, t3);
        }
        // Then a 4x4 transpose of 128-bit chunks for each w.
        let mut m = [_mm512_setzero_si512(); 16];
        for w in 0..4 {
            let [u0, u1, u2, u3] = [u[w], u[4 + w], u[8 + w], u[12 + w]];
            let v0 = _mm512_shuffle_i32x4::<0x44>(u0, u1);
            let v1 = _mm512_shuffle_i32x4::<0xee>(u0, u1);
            let v2 = _mm512_shuffle_i32x4::<0x44>(u2, u3);
            let v3 = _mm512_shuffle_i32x4::<0xee>(u2, u3);
            m[w] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
            m[4 + w] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
            m[8 + w] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
            m[12 + w] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest as _;

    fn oracle(data: &[u8]) -> [u8; 16] {
        md5::Md5::digest(data).into()
    }

    /// Deterministic pseudo-random bytes (xorshift64).
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// `md5_many` of `slices`, and the result of each lane kernel this CPU runs by name.
    fn every_kernel(slices: &[&[u8]]) -> Vec<(String, Vec<[u8; 16]>)> {
        let mut runs = vec![("md5_many".to_string(), md5_many(slices))];
        #[cfg(target_arch = "x86_64")]
        for k in x16::Kernel::supported() {
            runs.push((format!("{k:?}"), x16::md5_many(k, slices)));
        }
        runs
    }

    fn check(data: &[Vec<u8>]) {
        let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        for (kernel, got) in every_kernel(&slices) {
            assert_eq!(got.len(), data.len(), "{kernel}");
            for (i, (g, d)) in got.iter().zip(data).enumerate() {
                assert_eq!(
                    *g,
                    oracle(d),
                    "{kernel}: slice {i} of {} (len {})",
                    data.len(),
                    d.len()
                );
            }
        }
    }

    #[test]
    fn rfc1321_vectors() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        let slices: Vec<&[u8]> = cases.iter().map(|(m, _)| m.as_bytes()).collect();
        for (kernel, many) in every_kernel(&slices) {
            for ((m, want), got) in cases.iter().zip(&many) {
                assert_eq!(hex::encode(got), *want, "{kernel}({m:?})");
                assert_eq!(
                    hex::encode(md5_scalar(m.as_bytes())),
                    *want,
                    "md5_scalar({m:?})"
                );
                assert_eq!(md5_many(&[m.as_bytes()]), [*got]);
            }
        }
    }

    #[test]
    fn empty_inputs() {
        assert!(md5_many(&[]).is_empty());
        let want = oracle(b"");
        assert_eq!(md5_many(&[&[][..]; 20]), vec![want; 20]);
    }

    #[test]
    fn scalar_every_length() {
        let data = bytes(300, 1);
        for len in 0..=300 {
            assert_eq!(md5_scalar(&data[..len]), oracle(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn every_length_0_to_300_across_lanes() {
        // 301 messages of lengths 0..=300, 16 at a time and all at once.
        let all: Vec<Vec<u8>> = (0..=300).map(|len| bytes(len, len as u64)).collect();
        for group in all.chunks(16) {
            check(group);
        }
        check(&all);
        // Reversed, so lanes finish in a different order.
        let rev: Vec<Vec<u8>> = all.iter().rev().cloned().collect();
        check(&rev);
    }

    #[test]
    fn sixteen_equal_lanes() {
        let data: Vec<Vec<u8>> = (0..16).map(|i| bytes(1 << 20, 100 + i)).collect();
        check(&data);
        // Two to seventeen lanes, so with idle lanes in one register or two.
        let data: Vec<Vec<u8>> = (0..17).map(|i| bytes(4096 + 13, 200 + i)).collect();
        for k in 2..=17 {
            check(&data[..k]);
        }
    }

    #[test]
    fn mixed_lengths() {
        const MIB: usize = 1 << 20;
        let lens = [
            0,
            1,
            55,
            56,
            63,
            64,
            65,
            119,
            120,
            128,
            4 * MIB,
            4 * MIB + 1,
            MIB - 1,
            MIB + 56,
            1000,
            3 * MIB + 7,
            127,
        ];
        let data: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| bytes(n, i as u64))
            .collect();
        check(&data);
    }

    #[test]
    fn more_than_sixteen() {
        // Parts of a multipart upload: equal sizes, a short last one, and a tiny extra.
        let mut data: Vec<Vec<u8>> = (0..39).map(|i| bytes(64 * 1024 + 64, 500 + i)).collect();
        data.push(bytes(12_345, 999));
        check(&data);
        let lens: Vec<Vec<u8>> = (0..40)
            .map(|i| bytes(i * 997 % 5000, 700 + i as u64))
            .collect();
        check(&lens);
        // One long message among short ones: it ends alone, on the scalar code.
        let mut one_long: Vec<Vec<u8>> = (0..19).map(|i| bytes(i * 10, 800 + i as u64)).collect();
        one_long.insert(7, bytes(300_000 + 5, 7));
        check(&one_long);
    }

    /// Hashes `msgs` in three steps of whole blocks each with `blocks_many`, then finishes.
    fn in_steps(
        msgs: &[Vec<u8>],
        blocks_many: impl Fn(&mut [Md5State], &[&[u8]]),
    ) -> Vec<[u8; 16]> {
        let mut states = vec![Md5State::default(); msgs.len()];
        let mut done = vec![0usize; msgs.len()];
        for step in 0..3 {
            let blocks: Vec<&[u8]> = msgs
                .iter()
                .zip(&done)
                .map(|(m, &d)| {
                    let whole = m.len() - m.len() % 64;
                    let to = if step == 2 {
                        whole
                    } else {
                        (whole / 3 * (step + 1)) / 64 * 64
                    };
                    &m[d..to.max(d)]
                })
                .collect();
            let lens: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
            blocks_many(&mut states, &blocks);
            for (d, n) in done.iter_mut().zip(lens) {
                *d += n;
            }
        }
        msgs.iter()
            .enumerate()
            .map(|(i, m)| md5_finish(states[i], &m[done[i]..], m.len() as u64))
            .collect()
    }

    #[test]
    fn blocks_in_steps_across_lanes_match_whole_messages() {
        // 40 messages (two chunks of lanes), of unequal lengths, fed in three steps each.
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| bytes(64 * (i * 7 % 23) + i, i as u64))
            .collect();
        let want: Vec<String> = msgs.iter().map(|m| hex::encode(oracle(m))).collect();
        let mut runs = vec![(
            "md5_blocks_many".to_string(),
            in_steps(&msgs, md5_blocks_many),
        )];
        #[cfg(target_arch = "x86_64")]
        for k in x16::Kernel::supported() {
            runs.push((
                format!("{k:?}"),
                in_steps(&msgs, |s, b| x16::blocks_many(k, s, b)),
            ));
        }
        for (kernel, got) in runs {
            let got: Vec<String> = got.iter().map(hex::encode).collect();
            assert_eq!(got, want, "{kernel}");
        }
        // One lane (the scalar path) agrees too.
        let mut one = [Md5State::default()];
        let m = &msgs[5];
        let whole = m.len() - m.len() % 64;
        md5_blocks_many(&mut one, &[&m[..whole]]);
        assert_eq!(md5_finish(one[0], &m[whole..], m.len() as u64), oracle(m));
    }

    #[test]
    fn scalar_fallback_matches() {
        for (i, len) in [0, 1, 63, 64, 65, 1 << 16, (1 << 20) + 3]
            .into_iter()
            .enumerate()
        {
            let d = bytes(len, 42 + i as u64);
            assert_eq!(md5_scalar(&d), oracle(&d), "len {len}");
        }
    }
}

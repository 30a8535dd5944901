//! Push parser for cpio archives: `newc` (070701), `crc` (070702), `odc` (070707, octal) and
//! old binary (0x71C7, either byte order). Bytes arrive in pieces of any size from the
//! decompressors; the parser keeps names, modes and sizes, and the contents only of the small
//! files the caller asked for. It never sees the compression and never touches a file system.
//!
//! Layout rules follow the kernel's `init/initramfs.c` and
//! `Documentation/driver-api/early-userspace/buffer-format.rst`: a newc header is 110 ASCII
//! bytes (magic + 13 fields of 8 hex digits), the name (with its NUL) is padded so that the
//! data starts on a 4-byte boundary of the stream, and the data is padded to 4 bytes again.
//! The member named `TRAILER!!!` ends an archive.

use std::collections::BTreeMap;

use super::error::{At, InitramfsError};
use super::header::{self, BIN_HEADER_LEN, BIN_MAGIC_BE, BIN_MAGIC_LE, Format, NEWC_HEADER_LEN};
use super::model::{
    Compression, Entry, EntryKind, MAX_ENTRIES, MAX_LINK_TARGET, MAX_NAME_BYTES, MAX_TOTAL_BYTES,
    ReadOptions,
};

const TRAILER: &[u8] = b"TRAILER!!!";
/// Wanted-but-too-large paths listed at most (the list is a diagnostic).
const MAX_OVERSIZED: usize = 1000;

/// What the parser expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting header bytes; `need` grows once the magic tells the format.
    Header { need: usize },
    /// Collecting the name (with its NUL).
    Name { remaining: u64 },
    /// Padding after header + name.
    NamePad { remaining: u64 },
    /// Member data.
    Data { remaining: u64 },
    /// Padding after the data.
    DataPad { remaining: u64 },
    /// After a trailer inside a decompressed stream: zeros, or the next archive.
    Between,
    /// After a trailer in an uncompressed archive: the caller takes over.
    Done,
}

/// The member being read.
#[derive(Debug, Default)]
struct Member {
    header_at: u64,
    mode: u32,
    size: u64,
    check: u32,
    crc: bool,
    sum: u32,
    name: Vec<u8>,
    /// Collected data: a symlink target, or a file the caller asked for.
    body: Option<Vec<u8>>,
}

/// Everything kept across archives: the result in the making.
pub(crate) struct Collector<'o> {
    opts: &'o ReadOptions<'o>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) files: BTreeMap<String, Vec<u8>>,
    pub(crate) oversized: Vec<String>,
    captured: usize,
    /// Bytes fed to the parser over all archives, and their cap.
    total: u64,
    limit: u64,
    /// Bytes of names and symlink targets kept.
    name_bytes: u64,
}

impl<'o> Collector<'o> {
    pub(crate) fn new(opts: &'o ReadOptions<'o>) -> Self {
        Collector {
            opts,
            entries: Vec::new(),
            files: BTreeMap::new(),
            oversized: Vec::new(),
            captured: 0,
            total: 0,
            limit: opts.max_total_bytes.min(MAX_TOTAL_BYTES),
            name_bytes: 0,
        }
    }
}

/// Parser for the cpio stream of one archive (one segment of the initramfs).
pub(crate) struct Parser<'c, 'o> {
    out: &'c mut Collector<'o>,
    archive: u64,
    compression: Compression,
    /// Stream offset of the next byte (file offset for uncompressed archives).
    pos: u64,
    /// A decompressed stream may hold several archives back to back.
    multi: bool,
    state: State,
    format: Format,
    header: [u8; NEWC_HEADER_LEN],
    have: usize,
    header_at: u64,
    member: Member,
    after_trailer: bool,
    /// Members of this segment.
    pub(crate) members: usize,
}

impl<'c, 'o> Parser<'c, 'o> {
    /// A parser for the archive at file offset `archive`; `start` is the stream offset of its
    /// first byte. `multi` accepts more archives after a trailer (decompressed streams).
    pub(crate) fn new(
        out: &'c mut Collector<'o>,
        archive: u64,
        compression: Compression,
        start: u64,
        multi: bool,
    ) -> Self {
        Parser {
            out,
            archive,
            compression,
            pos: start,
            multi,
            state: State::Header { need: 2 },
            format: Format::Newc { crc: false },
            header: [0; NEWC_HEADER_LEN],
            have: 0,
            header_at: start,
            member: Member::default(),
            after_trailer: false,
            members: 0,
        }
    }

    fn at(&self, offset: u64) -> At {
        At {
            archive: self.archive,
            compression: self.compression,
            offset,
        }
    }

    fn rule(&self, offset: u64, rule: &'static str) -> InitramfsError {
        InitramfsError::Archive {
            at: self.at(offset),
            rule,
        }
    }

    /// Whether the stream may end here: after a trailer.
    pub(crate) fn at_end(&self) -> bool {
        matches!(self.state, State::Between | State::Done)
    }

    /// The error for a stream that ended at the current position.
    pub(crate) fn truncated(&self) -> InitramfsError {
        self.rule(self.pos, "archive ends inside a member (no TRAILER!!!)")
    }

    /// Feeds bytes; returns how many were used. Fewer than `data.len()` only when an
    /// uncompressed archive ended at its trailer.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<usize, InitramfsError> {
        let mut used = 0usize;
        while used < data.len() {
            if self.state == State::Done {
                break;
            }
            let limit = self.out.limit;
            let budget = limit.saturating_sub(self.out.total);
            if budget == 0 {
                return Err(InitramfsError::TooLarge {
                    at: self.at(self.pos),
                    limit,
                });
            }
            let end = used
                .saturating_add(clamp(budget, usize::MAX))
                .min(data.len());
            let n = self.step(&data[used..end])?;
            used += n;
            self.out.total = self.out.total.saturating_add(n as u64);
        }
        Ok(used)
    }

    /// Consumes a prefix of `data` (at least one byte, unless the state needs none).
    fn step(&mut self, data: &[u8]) -> Result<usize, InitramfsError> {
        match self.state {
            State::Header { need } => {
                if self.have == 0 {
                    self.header_at = self.pos;
                }
                let take = (need - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                self.advance(take);
                if self.have == need {
                    self.header_progress(need)?;
                }
                Ok(take)
            }
            State::Name { remaining } => {
                let take = clamp(remaining, data.len());
                self.member.name.extend_from_slice(&data[..take]);
                self.advance(take);
                let left = remaining - take as u64;
                if left == 0 {
                    self.name_done()?;
                } else {
                    self.state = State::Name { remaining: left };
                }
                Ok(take)
            }
            State::NamePad { remaining } => {
                let take = clamp(remaining, data.len());
                self.advance(take);
                let left = remaining - take as u64;
                if left == 0 {
                    self.start_data()?;
                } else {
                    self.state = State::NamePad { remaining: left };
                }
                Ok(take)
            }
            State::Data { remaining } => {
                let take = clamp(remaining, data.len());
                let chunk = &data[..take];
                if self.member.crc {
                    self.member.sum = chunk
                        .iter()
                        .fold(self.member.sum, |s, &b| s.wrapping_add(u32::from(b)));
                }
                if let Some(body) = self.member.body.as_mut() {
                    body.extend_from_slice(chunk);
                }
                self.advance(take);
                let left = remaining - take as u64;
                if left == 0 {
                    self.data_done()?;
                } else {
                    self.state = State::Data { remaining: left };
                }
                Ok(take)
            }
            State::DataPad { remaining } => {
                let take = clamp(remaining, data.len());
                self.advance(take);
                let left = remaining - take as u64;
                if left == 0 {
                    self.next_member();
                } else {
                    self.state = State::DataPad { remaining: left };
                }
                Ok(take)
            }
            State::Between => {
                let zeros = leading_zeros(data);
                if zeros == data.len() {
                    self.advance(zeros);
                    return Ok(zeros);
                }
                if zeros == 0 {
                    // Not consumed here: the header state reads it.
                    if !(data[0] == b'0'
                        || data[0] == BIN_MAGIC_LE[0]
                        || data[0] == BIN_MAGIC_BE[0])
                    {
                        return Err(self.rule(
                            self.pos,
                            "junk after TRAILER!!! inside a compressed archive",
                        ));
                    }
                    self.state = State::Header { need: 2 };
                    self.have = 0;
                    return self.step(data);
                }
                self.advance(zeros);
                Ok(zeros)
            }
            State::Done => Ok(0),
        }
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n as u64);
    }

    /// Called when `need` header bytes are present: 2 tell binary from ASCII, 6 tell the
    /// ASCII format, the full length is decoded.
    fn header_progress(&mut self, need: usize) -> Result<(), InitramfsError> {
        const BAD_MAGIC: &str = "bad cpio magic (want 070701, 070702, 070707 or binary 0x71c7)";
        let start = self.header_at;
        if need == 2 {
            let head = [self.header[0], self.header[1]];
            if head == BIN_MAGIC_LE || head == BIN_MAGIC_BE {
                self.format = Format::Binary {
                    big_endian: head == BIN_MAGIC_BE,
                };
                self.state = State::Header {
                    need: BIN_HEADER_LEN,
                };
            } else if head == *b"07" {
                self.state = State::Header { need: 6 };
            } else {
                return Err(self.rule(start, BAD_MAGIC));
            }
            return Ok(());
        }
        if need == 6 {
            let Some((format, len)) = Format::from_magic(&self.header[..6]) else {
                return Err(self.rule(start, BAD_MAGIC));
            };
            if matches!(format, Format::Newc { .. }) && !start.is_multiple_of(4) {
                return Err(self.rule(start, "newc header not on a 4-byte boundary"));
            }
            self.format = format;
            self.state = State::Header { need: len };
            return Ok(());
        }
        self.decode_header(start)
    }

    /// Decodes a complete header of the current format.
    fn decode_header(&mut self, start: u64) -> Result<(), InitramfsError> {
        let at = self.at(start);
        let f = header::decode(self.format, &self.header[..self.have], at)?;
        if self.out.entries.len() >= MAX_ENTRIES {
            return Err(InitramfsError::TooManyEntries {
                at,
                limit: MAX_ENTRIES,
            });
        }
        self.member = Member {
            header_at: start,
            mode: f.mode,
            size: f.size,
            check: f.check.unwrap_or(0),
            crc: f.check.is_some(),
            ..Member::default()
        };
        self.state = State::Name {
            remaining: f.namesize,
        };
        self.have = 0;
        Ok(())
    }

    /// The name is complete: validate it and decide what to keep of the data.
    fn name_done(&mut self) -> Result<(), InitramfsError> {
        let at = self.member.header_at;
        let name = &self.member.name;
        if name.last() != Some(&0) {
            return Err(self.rule(at, "name is not NUL-terminated"));
        }
        if name[..name.len() - 1].contains(&0) {
            return Err(self.rule(at, "NUL byte inside the name"));
        }
        let pad = padding(self.pos, self.format.align());
        self.state = State::NamePad { remaining: pad };
        if pad == 0 {
            self.start_data()?;
        }
        Ok(())
    }

    /// Header and name done: set up the data state.
    fn start_data(&mut self) -> Result<(), InitramfsError> {
        let m = &mut self.member;
        let kind = EntryKind::from_mode(m.mode);
        if kind == EntryKind::Symlink {
            if m.size > MAX_LINK_TARGET as u64 {
                let at = m.header_at;
                return Err(self.rule(at, "symlink target longer than 4096 bytes"));
            }
            m.body = Some(Vec::with_capacity(clamp(m.size, MAX_LINK_TARGET)));
        } else if kind == EntryKind::File && m.size > 0 {
            let path = normalise(&m.name[..m.name.len() - 1]);
            if (self.out.opts.want)(&path) {
                let fits = m.size <= self.out.opts.max_file_size as u64
                    && (self.out.captured as u64).saturating_add(m.size)
                        <= self.out.opts.max_captured_total as u64;
                if fits {
                    m.body = Some(Vec::with_capacity(clamp(m.size, usize::MAX)));
                    self.out.captured += clamp(m.size, usize::MAX);
                } else if self.out.oversized.len() < MAX_OVERSIZED {
                    self.out.oversized.push(path);
                }
            }
        }
        if self.member.size == 0 {
            self.data_done()
        } else {
            self.state = State::Data {
                remaining: self.member.size,
            };
            Ok(())
        }
    }

    /// Data done: check the crc, record the member, move to padding.
    fn data_done(&mut self) -> Result<(), InitramfsError> {
        let m = std::mem::take(&mut self.member);
        let raw_name = &m.name[..m.name.len() - 1];
        let kind = EntryKind::from_mode(m.mode);
        if m.crc && kind == EntryKind::File && m.sum != m.check {
            return Err(InitramfsError::Checksum {
                at: self.at(m.header_at),
                name: String::from_utf8_lossy(raw_name).into_owned(),
                expected: m.check,
                actual: m.sum,
            });
        }
        self.after_trailer = raw_name == TRAILER;
        if !self.after_trailer {
            let path = normalise(raw_name);
            if !path.is_empty() {
                self.members += 1;
                let kept = path.len() as u64
                    + if kind == EntryKind::Symlink {
                        m.size
                    } else {
                        0
                    };
                self.out.name_bytes = self.out.name_bytes.saturating_add(kept);
                if self.out.name_bytes > MAX_NAME_BYTES {
                    return Err(InitramfsError::TooMuchMetadata {
                        at: self.at(m.header_at),
                        limit: MAX_NAME_BYTES,
                    });
                }
                let mut link_target = None;
                if kind == EntryKind::Symlink {
                    link_target = m.body.map(|b| String::from_utf8_lossy(&b).into_owned());
                } else if let Some(body) = m.body {
                    self.out.files.insert(path.clone(), body);
                }
                self.out.entries.push(Entry {
                    path,
                    kind,
                    mode: m.mode,
                    size: m.size,
                    link_target,
                    archive: self.archive,
                });
            }
        }
        // The trailer's data padding still belongs to this archive.
        let pad = padding(self.pos, self.format.align());
        self.state = State::DataPad { remaining: pad };
        if pad == 0 {
            self.next_member();
        }
        Ok(())
    }

    /// Padding done: the next header, or the end of this archive after a trailer.
    fn next_member(&mut self) {
        self.have = 0;
        if self.after_trailer {
            self.after_trailer = false;
            self.state = if self.multi {
                State::Between
            } else {
                State::Done
            };
        } else {
            self.state = State::Header { need: 2 };
        }
    }
}

/// Number of zero bytes at the front of `data`. Compares whole blocks with `memcmp` first,
/// so that padding between archives (or a bomb of zeros) is skipped quickly.
pub(crate) fn leading_zeros(data: &[u8]) -> usize {
    static ZEROS: [u8; 4096] = [0; 4096];
    let mut n = 0;
    for block in data.chunks(ZEROS.len()) {
        if block == &ZEROS[..block.len()] {
            n += block.len();
        } else {
            return n + block.iter().take_while(|&&b| b == 0).count();
        }
    }
    n
}

/// `n` as a usize no larger than `max`.
fn clamp(n: u64, max: usize) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).min(max)
}

/// Bytes needed to bring `pos` to a multiple of `align`.
fn padding(pos: u64, align: u64) -> u64 {
    (align - pos % align) % align
}

/// A member name as a path relative to the initramfs root: no leading `/` or `./`.
fn normalise(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut p: &str = &s;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    if p == "." {
        p = "";
    }
    p.trim_end_matches('/').to_string()
}

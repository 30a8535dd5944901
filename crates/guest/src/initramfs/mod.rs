//! Reader of Linux initramfs images given as bytes, whole ([`parse`]) or in pieces as they are
//! read ([`parse_chunks`]): the list of members (path, kind, mode, size, symlink target) and
//! the contents of the few small files the caller asks for.
//!
//! An initramfs is a sequence of archives (kernel `init/initramfs.c`, `unpack_to_rootfs`):
//! typically an uncompressed early cpio with CPU microcode, zero padding, then a compressed
//! main cpio. At each archive boundary zeros are skipped and the next archive is recognised by
//! its magic: a cpio header (uncompressed) or gzip, xz, zstd, lz4 legacy or lzma. A
//! decompressed stream may itself hold several cpio archives.
//!
//! Owns: cpio parsing and initramfs decompression. Must not touch file systems (the caller
//! reads the initramfs file and hands over its bytes) nor decide anything about drivers
//! (that is [`crate::kmod`]). Memory stays bounded: contents are streamed, only names
//! and the requested small files are kept, and every total has a named cap.

mod cpio;
mod decompress;
mod error;
mod header;
mod input;
mod model;

use std::collections::BTreeMap;

use serde::Serialize;

use input::Input;
use std::io::BufRead;

/// Bytes a magic is recognised by (the longest, xz's, is 6); an unknown one is named by as many.
const MAGIC_LEN: usize = 6;

pub use decompress::MAX_WINDOW;
pub use error::{At, InitramfsError};
pub use model::{
    Compression, Entry, EntryKind, MAX_ARCHIVES, MAX_ENTRIES, MAX_IMAGE_BYTES, MAX_LINK_TARGET,
    MAX_NAME_BYTES, MAX_NAME_LEN, MAX_TOTAL_BYTES, ReadOptions,
};

/// One archive of the sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archive {
    /// File offset of its first byte (cpio header or compression magic).
    pub offset: u64,
    /// Bytes of the file it occupies (compressed size).
    pub len: u64,
    /// How it is compressed.
    pub compression: Compression,
    /// Members it holds, trailers not counted.
    pub members: usize,
}

/// The members of an initramfs and the contents of the files that were asked for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Initramfs {
    /// The concatenated archives, in file order.
    pub archives: Vec<Archive>,
    /// All members in archive order; a later member with the same path replaces an earlier
    /// one when the kernel unpacks, so look-ups take the last.
    pub entries: Vec<Entry>,
    /// Wanted files that were not kept because of the size caps (the first 1000).
    pub oversized: Vec<String>,
    #[serde(skip)]
    files: BTreeMap<String, Vec<u8>>,
}

impl Initramfs {
    /// The member at `path` (normalised, e.g. `etc/modprobe.d/x.conf`), last one winning.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.path == path)
    }

    /// Contents of a kept file (asked for through [`ReadOptions::want`] and within the caps).
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Paths of all kept files.
    pub fn kept_files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// Parses a whole initramfs image. Any broken rule refuses the image with an error naming
/// the archive and offset; nothing on any input panics, and work and memory are bounded by
/// the input size and the `MAX_*` caps.
pub fn parse(data: &[u8], opts: &ReadOptions<'_>) -> Result<Initramfs, InitramfsError> {
    if data.len() as u64 > MAX_IMAGE_BYTES {
        return Err(InitramfsError::ImageTooLarge {
            len: data.len() as u64,
            limit: MAX_IMAGE_BYTES,
        });
    }
    parse_input(Input::whole(data), opts)
}

/// [`parse`] for an image of `len` bytes given as the pieces `chunks` yields in file order
/// (as a file system reads them): gzip archives, the usual kind, and uncompressed ones are
/// parsed as the pieces arrive, so the image is never held whole; other compressions take the
/// rest of the image in one buffer. Same answers and errors as [`parse`] on the joined bytes.
pub fn parse_chunks(
    len: u64,
    chunks: &mut dyn Iterator<Item = Vec<u8>>,
    opts: &ReadOptions<'_>,
) -> Result<Initramfs, InitramfsError> {
    if len > MAX_IMAGE_BYTES {
        return Err(InitramfsError::ImageTooLarge {
            len,
            limit: MAX_IMAGE_BYTES,
        });
    }
    // The pieces may hold more than `len` claimed; the cap holds whatever they do.
    let mut seen = 0u64;
    let mut capped = chunks.take_while(|c| {
        seen = seen.saturating_add(c.len() as u64);
        seen <= MAX_IMAGE_BYTES
    });
    let parsed = parse_input(Input::chunks(&mut capped), opts);
    if seen > MAX_IMAGE_BYTES {
        return Err(InitramfsError::ImageTooLarge {
            len: seen,
            limit: MAX_IMAGE_BYTES,
        });
    }
    parsed
}

fn parse_input(mut input: Input<'_>, opts: &ReadOptions<'_>) -> Result<Initramfs, InitramfsError> {
    let mut out = cpio::Collector::new(opts);
    let mut archives = Vec::new();
    loop {
        input.skip_zeros();
        if input.at_end() {
            break;
        }
        let offset = input.pos();
        if archives.len() >= MAX_ARCHIVES {
            return Err(InitramfsError::TooManyArchives {
                offset,
                limit: MAX_ARCHIVES,
            });
        }
        let head = input.peek(MAGIC_LEN);
        let (compression, used, members) = if header::looks_like_cpio(head) {
            let mut p = cpio::Parser::new(&mut out, offset, Compression::None, offset, false);
            let mut used = 0usize;
            loop {
                let piece = input.fill_buf().unwrap_or_default();
                if piece.is_empty() {
                    break;
                }
                let len = piece.len();
                let n = p.feed(piece)?;
                input.consume(n);
                used += n;
                if n < len {
                    break; // the archive ended at its trailer
                }
            }
            if !p.at_end() {
                return Err(p.truncated());
            }
            (Compression::None, used, p.members)
        } else if let Some(method) = decompress::detect(head) {
            let mut p = cpio::Parser::new(&mut out, offset, method, 0, true);
            let used = decompress::decompress(method, &mut input, offset, &mut |chunk| {
                p.feed(chunk).map(|_| ())
            })?;
            if !p.at_end() {
                return Err(p.truncated());
            }
            (method, used, p.members)
        } else {
            let magic = hex::encode(head);
            return Err(InitramfsError::UnknownMagic { offset, magic });
        };
        // A stream that used no input would loop forever; a decoder never returns that, but
        // the reader must not depend on it.
        if used == 0 {
            input.consume(1);
        }
        archives.push(Archive {
            offset,
            len: used.max(1) as u64,
            compression,
            members,
        });
    }
    Ok(Initramfs {
        archives,
        entries: out.entries,
        oversized: out.oversized,
        files: out.files,
    })
}

#[cfg(test)]
mod tests;

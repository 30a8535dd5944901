//! Reader of Linux initramfs images given as bytes: the list of members (path, kind, mode,
//! size, symlink target) and the contents of the few small files the caller asks for.
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

use std::collections::BTreeMap;

use serde::Serialize;

pub use decompress::{MAX_WINDOW, output_size_hint};
pub use error::{At, InitramfsError};

/// Cap on the initramfs file itself: callers check the file size against it before reading
/// the file into memory (real ones are 10–150 MiB).
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;
/// Cap on the decompressed cpio bytes of all archives together (a compression bomb stops here).
/// It bounds the time too: the slowest decoder (xz) must reach it within the inspection's
/// time budget per image (docs/RELIABILITY.md), and real images decompress to 50–300 MiB.
pub const MAX_TOTAL_BYTES: u64 = 384 << 20;
/// Cap on the number of members over all archives (real images hold a few thousand).
pub const MAX_ENTRIES: usize = 200_000;
/// Cap on the bytes of all names and symlink targets kept (real images need well under 1 MiB;
/// without it [`MAX_ENTRIES`] names of [`MAX_NAME_LEN`] would take 800 MiB).
pub const MAX_NAME_BYTES: u64 = 64 << 20;
/// Cap on a member name, without its NUL (Linux `PATH_MAX` is 4096 with the NUL).
pub const MAX_NAME_LEN: usize = 4095;
/// Cap on a symlink target, as the kernel's `PATH_MAX`.
pub const MAX_LINK_TARGET: usize = 4096;
/// Cap on the number of concatenated archives.
pub const MAX_ARCHIVES: usize = 64;

/// How an archive in the initramfs is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// A plain cpio archive.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`); the kernel wants `--check=crc32`, any check is read here.
    Xz,
    /// zstd (`28 b5 2f fd`); frames back to back form one stream.
    Zstd,
    /// The LZ4 legacy frame (`lz4 -l`), the only LZ4 format the kernel unpacks.
    Lz4Legacy,
    /// Legacy `.lzma` (LZMA-alone).
    Lzma,
    /// Recognised but not decoded: bzip2.
    Bzip2,
    /// Recognised but not decoded: lzop.
    Lzo,
    /// Recognised but not decoded: the modern LZ4 frame (the kernel does not unpack it either).
    Lz4Frame,
}

impl Compression {
    /// Short name, as in the kernel's `CONFIG_RD_*` options.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4Legacy => "lz4",
            Compression::Lzma => "lzma",
            Compression::Bzip2 => "bzip2",
            Compression::Lzo => "lzo",
            Compression::Lz4Frame => "lz4 frame",
        }
    }
}

/// File type of a member, from the `S_IFMT` bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link; the target is in [`Entry::link_target`].
    Symlink,
    /// Character device node.
    CharDev,
    /// Block device node.
    BlockDev,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// A type the kernel would ignore.
    Unknown,
}

impl EntryKind {
    /// Kind from a POSIX mode.
    pub fn from_mode(mode: u32) -> EntryKind {
        match mode & 0o170000 {
            0o100000 => EntryKind::File,
            0o040000 => EntryKind::Dir,
            0o120000 => EntryKind::Symlink,
            0o020000 => EntryKind::CharDev,
            0o060000 => EntryKind::BlockDev,
            0o010000 => EntryKind::Fifo,
            0o140000 => EntryKind::Socket,
            _ => EntryKind::Unknown,
        }
    }
}

/// One member of the initramfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Path relative to the initramfs root, without leading `/` or `./`, e.g.
    /// `usr/lib/modules/6.1.0-18-amd64/kernel/drivers/block/virtio_blk.ko`.
    pub path: String,
    /// File type from the mode.
    pub kind: EntryKind,
    /// Full mode (type and permission bits).
    pub mode: u32,
    /// Data size from the header (0 for all but the last link of a newc hard-link set).
    pub size: u64,
    /// Target of a symlink.
    pub link_target: Option<String>,
    /// File offset of the archive that holds this member.
    pub archive: u64,
}

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

/// What the caller wants kept of the contents, and the caps on it.
pub struct ReadOptions<'a> {
    /// Whether to keep the contents of the regular file at this (normalised) path.
    pub want: &'a dyn Fn(&str) -> bool,
    /// A wanted file larger than this is not kept (listed in [`Initramfs::oversized`]).
    pub max_file_size: usize,
    /// Cap on all kept contents together.
    pub max_captured_total: usize,
    /// Cap on decompressed cpio bytes; never above [`MAX_TOTAL_BYTES`].
    pub max_total_bytes: u64,
}

impl Default for ReadOptions<'_> {
    /// Keep no contents; 1 MiB per file and 16 MiB in all when a `want` is set; the full
    /// decompression cap.
    fn default() -> Self {
        ReadOptions {
            want: &|_| false,
            max_file_size: 1 << 20,
            max_captured_total: 16 << 20,
            max_total_bytes: MAX_TOTAL_BYTES,
        }
    }
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
    parse_into(data, opts, Vec::new())
}

/// [`parse`], decoding a whole gzip member into `scratch` when it has room for it: a buffer
/// of [`output_size_hint`] bytes the caller prepared (pages faulted in) while it read the file.
pub fn parse_into(
    data: &[u8],
    opts: &ReadOptions<'_>,
    mut scratch: Vec<u8>,
) -> Result<Initramfs, InitramfsError> {
    if data.len() as u64 > MAX_IMAGE_BYTES {
        return Err(InitramfsError::ImageTooLarge {
            len: data.len() as u64,
            limit: MAX_IMAGE_BYTES,
        });
    }
    let mut out = cpio::Collector::new(opts);
    let mut archives = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        if data[pos] == 0 {
            pos += cpio::leading_zeros(&data[pos..]);
            continue;
        }
        let offset = pos as u64;
        if archives.len() >= MAX_ARCHIVES {
            return Err(InitramfsError::TooManyArchives {
                offset,
                limit: MAX_ARCHIVES,
            });
        }
        let rest = &data[pos..];
        let (compression, used, members) = if header::looks_like_cpio(rest) {
            let mut p = cpio::Parser::new(&mut out, offset, Compression::None, offset, false);
            let used = p.feed(rest)?;
            if !p.at_end() {
                return Err(p.truncated());
            }
            (Compression::None, used, p.members)
        } else if let Some(method) = decompress::detect(rest) {
            let mut p = cpio::Parser::new(&mut out, offset, method, 0, true);
            let used = decompress::decompress(method, rest, offset, &mut scratch, &mut |chunk| {
                p.feed(chunk).map(|_| ())
            })?;
            if !p.at_end() {
                return Err(p.truncated());
            }
            (method, used, p.members)
        } else {
            let magic = hex::encode(&rest[..rest.len().min(6)]);
            return Err(InitramfsError::UnknownMagic { offset, magic });
        };
        // A stream that used no input would loop forever; a decoder never returns that, but
        // the reader must not depend on it.
        let used = used.max(1);
        archives.push(Archive {
            offset,
            len: used as u64,
            compression,
            members,
        });
        pos = pos.saturating_add(used);
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

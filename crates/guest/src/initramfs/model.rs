//! The vocabulary every initramfs reader shares: the caps, the compressions, members and
//! read options.

use serde::Serialize;

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

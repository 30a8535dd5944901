//! [`InitramfsError`]: why an initramfs image was refused, with the archive and offset.

use std::fmt;
use std::io;

use super::model::Compression;

/// Where in the initramfs a rule was broken: the archive (segment) and the byte inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// File offset where the archive starts (its compression magic or first cpio header).
    pub archive: u64,
    /// How that archive is compressed.
    pub compression: Compression,
    /// Offset of the offending byte: a file offset for an uncompressed archive, an offset in
    /// the decompressed stream otherwise.
    pub offset: u64,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.compression == Compression::None {
            write!(f, "file offset {}", self.offset)
        } else {
            write!(
                f,
                "offset {} of the {} archive at file offset {}",
                self.offset,
                self.compression.name(),
                self.archive
            )
        }
    }
}

/// An initramfs the reader refuses. Every variant names where and which rule.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// Neither a cpio header nor a known compression magic where an archive must start.
    #[error(
        "initramfs file offset {offset}: unknown archive magic {magic} (an archive must start with a cpio header or a compression magic)"
    )]
    UnknownMagic { offset: u64, magic: String },
    /// A compression the kernel knows but this reader does not decode.
    #[error("initramfs file offset {offset}: {method} compression is not supported")]
    Unsupported { offset: u64, method: &'static str },
    /// The compressed stream is corrupt or truncated.
    #[error("initramfs file offset {offset}: {method} stream cannot be decompressed")]
    Decompress {
        offset: u64,
        method: &'static str,
        #[source]
        source: io::Error,
    },
    /// A cpio header field is malformed.
    #[error("initramfs {at}: cpio header field `{field}` {rule}")]
    Field {
        at: At,
        field: &'static str,
        rule: &'static str,
    },
    /// A structural cpio rule is broken (magic, name, alignment, truncation, junk).
    #[error("initramfs {at}: {rule}")]
    Archive { at: At, rule: &'static str },
    /// A member name is longer than [`super::MAX_NAME_LEN`].
    #[error("initramfs {at}: name of {len} bytes exceeds the limit of {limit}")]
    NameTooLong { at: At, len: u64, limit: usize },
    /// A `070702` member's data does not sum to its `check` field.
    #[error("initramfs {at}: crc of `{name}` is {actual:#010x}, header says {expected:#010x}")]
    Checksum {
        at: At,
        name: String,
        expected: u32,
        actual: u32,
    },
    /// The decompressed archives together exceed the cap (`ReadOptions::max_total_bytes`,
    /// at most [`super::MAX_TOTAL_BYTES`]).
    #[error("initramfs {at}: more than {limit} bytes of cpio data (decompression cap)")]
    TooLarge { at: At, limit: u64 },
    /// More members than [`super::MAX_ENTRIES`].
    #[error("initramfs {at}: more than {limit} members")]
    TooManyEntries { at: At, limit: usize },
    /// The initramfs file is larger than [`super::MAX_IMAGE_BYTES`].
    #[error("initramfs of {len} bytes exceeds the limit of {limit}")]
    ImageTooLarge { len: u64, limit: u64 },
    /// The names and symlink targets together exceed [`super::MAX_NAME_BYTES`].
    #[error("initramfs {at}: names and link targets exceed {limit} bytes")]
    TooMuchMetadata { at: At, limit: u64 },
    /// More concatenated archives than [`super::MAX_ARCHIVES`].
    #[error("initramfs file offset {offset}: more than {limit} concatenated archives")]
    TooManyArchives { offset: u64, limit: usize },
}

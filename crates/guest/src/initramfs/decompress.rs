//! Compression of one initramfs archive: detection by magic and streaming decoders that push
//! the decompressed bytes into a sink, with memory bounded by named constants (never by the
//! sizes an attacker writes into a header). Knows nothing of cpio.
//!
//! Magics as the kernel's `lib/decompress.c` lists them; lz4 is the legacy frame that
//! `lz4 -l` writes (`lib/decompress_unlz4.c`): magic 0x184C2102, then blocks of a little-endian
//! u32 compressed size and an LZ4 block of at most 8 MiB output.
//!
//! gzip, the common case, is streamed through flate2 (zlib-rs backend, the one deflate crate
//! of the workspace: docs/DEPENDENCIES.md) in [`CHUNK`] pieces: the output is never held
//! whole, so a 50 MiB initramfs costs no 50 MiB buffer nor the page faults to fill it; its
//! input is read as the file system hands it over, so not held whole either. zstd
//! (Debian's and Ubuntu's default) is decoded by libzstd through the `zstd` crate.

use std::io::{self, BufRead, Read};

use super::error::InitramfsError;
use super::input::Input;
use super::model::Compression;

/// Decoder window or dictionary limit for xz, lzma and zstd (64 MiB; `xz -9` and `zstd -19`
/// stay below it, dracut and initramfs-tools use far less).
pub const MAX_WINDOW: u64 = 64 << 20;
/// Output of one LZ4 legacy block (`lz4 -l` writes 8 MiB blocks).
const LZ4_LEGACY_BLOCK: usize = 8 << 20;
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4C, 0x18];
/// `LZ4_compressBound(8 MiB)`: a legacy block larger than this is corrupt.
const LZ4_LEGACY_BOUND: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Cap on zstd frames in one archive.
const MAX_FRAMES: usize = 4096;

/// A zstd skippable frame: magic 0x184D2A50..=0x184D2A5F, then a u32 length (RFC 8878 §3.1.2).
fn is_skippable(b: &[u8]) -> bool {
    b.len() >= 8 && (b[0] & 0xF0) == 0x50 && b[1..4] == [0x2A, 0x4D, 0x18]
}

/// Size of the buffer decoders fill before a push.
const CHUNK: usize = 64 << 10;

/// What starts at the front of `bytes`: a compression, or `None` when nothing known does.
/// Unsupported methods are returned too, so the error can name them.
pub(crate) fn detect(bytes: &[u8]) -> Option<Compression> {
    const TABLE: [(&[u8], Compression); 9] = [
        (&[0x1F, 0x8B], Compression::Gzip),
        (&[0x1F, 0x9E], Compression::Gzip),
        (&[0xFD, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        (&ZSTD_MAGIC, Compression::Zstd),
        (&LZ4_LEGACY_MAGIC, Compression::Lz4Legacy),
        (&[0x5D, 0x00, 0x00], Compression::Lzma),
        (b"BZh", Compression::Bzip2),
        (&[0x89, b'L', b'Z', b'O'], Compression::Lzo),
        (&[0x04, 0x22, 0x4D, 0x18], Compression::Lz4Frame),
    ];
    TABLE
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|&(_, c)| c)
}

/// Decompresses the stream at the front of `input` (of kind `method`, found at file offset
/// `offset`) into `sink`, reading it from `input`; returns how many input bytes the stream
/// used. gzip is read as the pieces arrive; the other methods take the rest of the file as
/// one slice. Errors from the sink come back unchanged; decoder errors become
/// [`InitramfsError::Decompress`].
pub(crate) fn decompress(
    method: Compression,
    input: &mut Input<'_>,
    offset: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), InitramfsError>,
) -> Result<usize, InitramfsError> {
    if method == Compression::Gzip {
        let fail = |source: io::Error| InitramfsError::Decompress {
            offset,
            method: method.name(),
            source,
        };
        let before = input.pos();
        let mut dec = flate2::bufread::GzDecoder::new(&mut *input);
        pump(&mut dec, sink, fail)?;
        drop(dec);
        return Ok((input.pos() - before) as usize);
    }
    let used = decompress_slice(method, input.contiguous(), offset, sink)?;
    input.consume(used);
    Ok(used)
}

/// [`decompress`] for the methods other than gzip, whose input is all in `input`.
fn decompress_slice(
    method: Compression,
    input: &[u8],
    offset: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), InitramfsError>,
) -> Result<usize, InitramfsError> {
    let fail = |source: io::Error| InitramfsError::Decompress {
        offset,
        method: method.name(),
        source,
    };
    let mut rest: &[u8] = input;
    match method {
        Compression::Xz => {
            let kib = u32::try_from(MAX_WINDOW >> 10).unwrap_or(u32::MAX);
            let mut dec = lzma_rust2::XzReader::new_mem_limit(&mut rest, false, kib);
            pump(&mut dec, sink, fail)?;
        }
        Compression::Lzma => {
            let kib = u32::try_from(MAX_WINDOW >> 10).unwrap_or(u32::MAX);
            let mut dec =
                lzma_rust2::LzmaReader::new_mem_limit(&mut rest, kib, None).map_err(fail)?;
            pump(&mut dec, sink, fail)?;
            // The reader buffers ahead; what it did not use is still part of the file.
            let (_, unused) = dec.into_parts();
            let used = input.len() - rest.len();
            return Ok(used.saturating_sub(unused.len()));
        }
        Compression::Zstd => {
            // Frames written back to back (`zstd` on split input, `cat a.zst b.zst`) are one
            // stream, as the kernel's unzstd reads them; skippable frames are passed over.
            let mut dec = zstd::stream::raw::Decoder::new().map_err(fail)?;
            dec.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
                MAX_WINDOW.ilog2(),
            ))
            .map_err(fail)?;
            let mut out = vec![0u8; CHUNK];
            let mut frames = 0usize;
            while frames == 0 || rest.starts_with(&ZSTD_MAGIC) || is_skippable(rest) {
                frames += 1;
                if frames > MAX_FRAMES {
                    return Err(fail(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("more than {MAX_FRAMES} zstd frames"),
                    )));
                }
                if is_skippable(rest) {
                    let len = imgport_base::bytes::le32(rest, 4) as usize;
                    let Some(after) = rest.get(8usize.saturating_add(len)..) else {
                        return Err(fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd skippable frame runs past the end of the file",
                        )));
                    };
                    rest = after;
                    continue;
                }
                let used = zstd_frame(&mut dec, rest, &mut out, sink, &fail)?;
                rest = &rest[used..];
            }
        }
        Compression::Lz4Legacy => return lz4_legacy(input, sink, fail),
        // gzip never comes here: `decompress` streams it.
        Compression::Gzip
        | Compression::Bzip2
        | Compression::Lzo
        | Compression::Lz4Frame
        | Compression::None => {
            return Err(InitramfsError::Unsupported {
                offset,
                method: method.name(),
            });
        }
    }
    Ok(input.len() - rest.len())
}

/// Decodes the one zstd frame at the front of `input` through `out` into `sink` with
/// libzstd (faster than a pure-Rust decoder on initramfs-sized frames); returns
/// the input bytes the frame used. A frame cut short is an `UnexpectedEof`.
fn zstd_frame(
    dec: &mut zstd::stream::raw::Decoder<'_>,
    input: &[u8],
    out: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> Result<(), InitramfsError>,
    fail: &impl Fn(io::Error) -> InitramfsError,
) -> Result<usize, InitramfsError> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    dec.reinit().map_err(fail)?;
    let mut src = InBuffer::around(input);
    loop {
        let before = src.pos();
        let mut dst = OutBuffer::around(&mut *out);
        let left = dec.run(&mut src, &mut dst).map_err(fail)?;
        let made = dst.pos();
        if made > 0 {
            sink(&out[..made])?;
        }
        if left == 0 {
            return Ok(src.pos());
        }
        if made == 0 && src.pos() == before {
            return Err(fail(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "zstd frame runs past the end of the file",
            )));
        }
    }
}

/// Reads `dec` to its end in [`CHUNK`] pieces, pushing each into `sink`.
fn pump(
    dec: &mut dyn Read,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), InitramfsError>,
    fail: impl Fn(io::Error) -> InitramfsError,
) -> Result<(), InitramfsError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        sink(&buf[..n])?;
    }
}

/// The LZ4 legacy frame: blocks until the input ends, a zero size word (padding) or
/// something that is not a plausible block. A repeated magic starts a new frame.
fn lz4_legacy(
    input: &[u8],
    sink: &mut dyn FnMut(&[u8]) -> Result<(), InitramfsError>,
    fail: impl Fn(io::Error) -> InitramfsError,
) -> Result<usize, InitramfsError> {
    let mut out = vec![0u8; LZ4_LEGACY_BLOCK];
    let mut pos = LZ4_LEGACY_MAGIC.len();
    loop {
        let Some(word) = input.get(pos..pos + 4) else {
            return Ok(pos.min(input.len()));
        };
        let word: [u8; 4] = [word[0], word[1], word[2], word[3]];
        if word == LZ4_LEGACY_MAGIC {
            pos += 4;
            continue;
        }
        let size = u32::from_le_bytes(word) as usize;
        if size == 0 {
            return Ok(pos);
        }
        if size > LZ4_LEGACY_BOUND {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "lz4 block at stream offset {pos} claims {size} bytes, more than the 8 MiB block bound"
                ),
            )));
        }
        let start = pos + 4;
        let Some(block) = input.get(start..start + size) else {
            return Err(fail(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("lz4 block at stream offset {pos} runs past the end of the file"),
            )));
        };
        let n = lz4_flex::block::decompress_into(block, &mut out)
            .map_err(|e| fail(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        sink(&out[..n])?;
        pos = start + size;
    }
}

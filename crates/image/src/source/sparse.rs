//! A compact encoding of a large, mostly empty volume, so a 300 MiB XFS fuzz seed or a test's
//! hostile volume is a few KiB (fuzz/sparse.py writes it): `SPRS`, the volume size (u64 LE),
//! then chunks of offset (u64 LE), length (u32 LE) and that many bytes. Everything not in a
//! chunk reads as zeros; a later chunk wins where two overlap. Owns only this encoding.

use std::io;

use super::{ByteSource, check_bounds};

const MAGIC: &[u8; 4] = b"SPRS";
/// Largest volume the encoding may declare (XFS needs 300 MiB; more buys nothing).
const MAX_SIZE: u64 = 1 << 32;
/// Chunks kept at most.
const MAX_CHUNKS: usize = 4096;

/// A volume of zeros with some byte ranges set.
pub struct SparseSource {
    size: u64,
    chunks: Vec<(u64, Vec<u8>)>,
}

impl SparseSource {
    /// Decodes `data`; `None` when it does not start with the magic. A truncated last chunk
    /// keeps the bytes present.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let rest = data.strip_prefix(MAGIC)?;
        let size = imgport_base::bytes::get_le64(rest, 0)?.min(MAX_SIZE);
        let mut rest = &rest[8..];
        let mut chunks = Vec::new();
        while rest.len() >= 12 && chunks.len() < MAX_CHUNKS {
            let offset = imgport_base::bytes::get_le64(rest, 0)?;
            let len = imgport_base::bytes::get_le32(rest, 8)? as usize;
            let body = &rest[12..];
            let len = len.min(body.len());
            if offset < size {
                let len = len.min((size - offset) as usize);
                chunks.push((offset, body[..len].to_vec()));
            }
            rest = &body[len..];
        }
        Some(Self { size, chunks })
    }
}

impl ByteSource for SparseSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.size, buf.len(), offset)?;
        buf.fill(0);
        let end = offset + buf.len() as u64;
        for (start, bytes) in &self.chunks {
            let stop = start + bytes.len() as u64;
            if *start >= end || stop <= offset {
                continue;
            }
            let from = offset.max(*start);
            let to = end.min(stop);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }
}

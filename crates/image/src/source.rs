//! Random-access byte sources: the one abstraction every reader below the container layer
//! (partition tables, file systems, volume managers) reads through.

use std::io;
use std::sync::Arc;

pub mod sparse;

/// Something that can be read at any offset: a virtual disk, a partition, a logical volume.
pub trait ByteSource: Send + Sync {
    /// Length in bytes; reads past it fail.
    fn size(&self) -> u64;

    /// Fill `buf` from `offset`; a read that would pass `size()` is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// A window `[start, start + len)` of another source, e.g. a partition on a disk.
#[derive(Clone)]
pub struct Slice {
    inner: Arc<dyn ByteSource>,
    start: u64,
    len: u64,
}

impl Slice {
    /// A window of `inner`; refused when it does not lie inside `inner`.
    pub fn new(inner: Arc<dyn ByteSource>, start: u64, len: u64) -> io::Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Self { inner, start, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "window {start}+{len} lies outside a source of {} bytes",
                    inner.size()
                ),
            )),
        }
    }
}

impl ByteSource for Slice {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.len, buf.len(), offset)?;
        self.inner.read_exact_at(buf, self.start + offset)
    }
}

/// Bytes held in memory; used for tests and small embedded volumes.
impl ByteSource for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.len() as u64, buf.len(), offset)?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// The shared bounds rule of every source: `offset + len` must not pass `size`.
pub fn check_bounds(size: u64, len: usize, offset: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read of {len} bytes at offset {offset} passes the end ({size} bytes)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_inside_and_refuses_outside() {
        let disk: Arc<dyn ByteSource> = Arc::new((0u8..=255).collect::<Vec<u8>>());
        let part = Slice::new(disk.clone(), 16, 32).unwrap();
        let mut buf = [0u8; 4];
        part.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, [16, 17, 18, 19]);
        assert!(part.read_exact_at(&mut buf, 30).is_err());
        assert!(Slice::new(disk, 250, 10).is_err());
        assert!(check_bounds(10, 1, u64::MAX).is_err());
    }
}

//! A file's bytes as they are, as a [`PartSource`]: for uploading an image without conversion.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::digest::{crc64, crc64_combine, hex, md5};
use super::{Part, PartSource, StreamDigests, TransferError};

/// Reads a file part by part, hashing as it goes.
pub struct FileStream {
    file: File,
    path: PathBuf,
    size: u64,
    part_size: u64,
    next: u32,
    sha: Sha256,
    crc: u64,
    done: Option<StreamDigests>,
}

impl FileStream {
    /// Opens `path` to be streamed in parts of `part_size` bytes.
    pub fn open(path: &Path, part_size: u64) -> Result<Self, TransferError> {
        let read_err = |source| TransferError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            size,
            part_size: part_size.max(1),
            next: 1,
            sha: Sha256::new(),
            crc: 0,
            done: None,
        })
    }
}

impl PartSource for FileStream {
    fn total_size(&self) -> u64 {
        self.size
    }

    fn part_size(&self) -> u64 {
        self.part_size
    }

    fn next_part(&mut self) -> Option<Result<Part, TransferError>> {
        if self.next > self.part_count() {
            return None;
        }
        let offset = u64::from(self.next - 1) * self.part_size;
        let len = (self.size - offset).min(self.part_size) as usize;
        let mut data = vec![0u8; len];
        if let Err(source) = self.file.read_exact_at(&mut data, offset) {
            return Some(Err(TransferError::Read {
                path: self.path.clone(),
                source,
            }));
        }
        self.sha.update(&data);
        let part_crc = crc64(&data);
        self.crc = crc64_combine(self.crc, part_crc, len as u64);
        let part = Part {
            number: self.next,
            offset,
            md5: md5(&data),
            crc64: part_crc,
            data,
        };
        self.next += 1;
        if self.next > self.part_count() {
            self.done = Some(StreamDigests {
                size: self.size,
                sha256: hex(&self.sha.clone().finalize()),
                crc64: self.crc,
            });
        }
        Some(Ok(part))
    }

    fn digests(&self) -> Option<StreamDigests> {
        self.done.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_and_digests_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut s = FileStream::open(&path, 4096).unwrap();
        assert_eq!(s.part_count(), 3);
        let mut all = Vec::new();
        while let Some(p) = s.next_part() {
            let p = p.unwrap();
            assert_eq!(p.md5, md5(&p.data));
            assert_eq!(p.offset as usize, all.len());
            all.extend_from_slice(&p.data);
        }
        assert_eq!(all, bytes);
        let d = s.digests().unwrap();
        assert_eq!(d.crc64, crc64(&bytes));
        assert_eq!(d.sha256, hex(&Sha256::digest(&bytes)));
    }

    #[test]
    fn empty_file_is_one_empty_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        std::fs::write(&path, b"").unwrap();
        let mut s = FileStream::open(&path, 4096).unwrap();
        let p = s.next_part().unwrap().unwrap();
        assert!(p.data.is_empty());
        assert!(s.next_part().is_none());
        assert_eq!(s.digests().unwrap().size, 0);
    }
}

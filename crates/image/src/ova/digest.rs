//! A member's manifest digest, computed from the bytes as the streaming pass reads them.
//!
//! Reads come in order for the usual members (streamOptimized VMDK, RAW); a read that jumps
//! forward first hashes the bytes it skipped, and reads behind the running offset (metadata
//! read again) add nothing, so the digest is always of the member's bytes in order and the
//! member is read at most twice in all, never buffered.

use std::path::Path;

use sha1::Digest as _;

use crate::error::ImageError;

/// The hash functions OVF manifests use (`SHA1(name)= …`, `SHA256(...)`, `SHA512(...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name as a manifest line writes it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// The algorithm a manifest line names, if one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// Length of the digest in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The digest of `bytes`, lower-case hex.
    pub fn hash(self, bytes: &[u8]) -> String {
        let mut h = Hasher::new(self);
        h.update(bytes);
        h.finish()
    }
}

/// The digest a member must have, as its manifest gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDigest {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub expected: String,
    /// Name of the manifest that gives it, for messages.
    pub manifest: String,
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    fn new(a: Algorithm) -> Self {
        match a {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Bytes hashed per read when catching up over a gap.
const GAP_CHUNK: usize = 1 << 20;

/// Reads `buf.len()` bytes of the member at an offset, without feeding the tracker.
pub(crate) type ReadGap<'a> = &'a dyn Fn(&mut [u8], u64) -> Result<(), ImageError>;

/// The running digest of one member.
#[derive(Debug)]
pub(crate) struct Tracker {
    want: MemberDigest,
    on: bool,
    cursor: u64,
    hasher: Option<Hasher>,
    actual: Option<String>,
}

impl Tracker {
    pub(crate) fn new(want: MemberDigest) -> Self {
        let hasher = Some(Hasher::new(want.algorithm));
        Self {
            want,
            on: false,
            cursor: 0,
            hasher,
            actual: None,
        }
    }

    /// From now on, reads feed the digest.
    pub(crate) fn start(&mut self) {
        self.on = true;
    }

    /// Feeds the bytes of a read of `buf` at `offset`.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        offset: u64,
        read: ReadGap,
    ) -> Result<(), ImageError> {
        if !self.on || self.hasher.is_none() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        if end <= self.cursor {
            return Ok(());
        }
        if offset > self.cursor {
            self.catch_up(offset, read)?;
        }
        let skip = (self.cursor - offset) as usize;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[skip..]);
        }
        self.cursor = end;
        Ok(())
    }

    fn catch_up(&mut self, to: u64, read: ReadGap) -> Result<(), ImageError> {
        let mut chunk = vec![0u8; GAP_CHUNK.min((to.saturating_sub(self.cursor)) as usize)];
        while self.cursor < to {
            let n = (to - self.cursor).min(GAP_CHUNK as u64) as usize;
            read(&mut chunk[..n], self.cursor)?;
            if let Some(h) = &mut self.hasher {
                h.update(&chunk[..n]);
            }
            self.cursor += n as u64;
        }
        Ok(())
    }

    /// Hashes the rest of the member (`size` bytes in all) and ends the digest.
    pub(crate) fn finish(&mut self, size: u64, read: ReadGap) -> Result<(), ImageError> {
        if self.actual.is_some() {
            return Ok(());
        }
        self.catch_up(size, read)?;
        self.actual = self.hasher.take().map(Hasher::finish);
        Ok(())
    }

    /// The digest when it equals the manifest's, else [`ImageError::ManifestMismatch`].
    pub(crate) fn check(&self, path: &Path) -> Result<String, ImageError> {
        let actual = self.actual.clone().unwrap_or_default();
        if actual == self.want.expected {
            Ok(actual)
        } else {
            Err(ImageError::ManifestMismatch {
                path: path.to_path_buf(),
                detail: format!(
                    "the manifest {} gives {} {} but the member's bytes hash to {actual}",
                    self.want.manifest,
                    self.want.algorithm.name(),
                    self.want.expected
                ),
            })
        }
    }
}

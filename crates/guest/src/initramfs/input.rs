//! The bytes of an initramfs as the parser takes them: either one slice (the whole file in
//! memory) or pieces as a file system reads them, so a file streamed from the disk is parsed
//! while it is read and never held whole. Tracks the file offset of the next unread byte.
//!
//! Pieces may split anything (a magic, a cpio header, a gzip trailer): [`Input::peek`] joins
//! the few bytes a magic needs, and the decoders take the input as a [`BufRead`].

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

/// Unread bytes of an initramfs file and where they are in it.
pub(crate) struct Input<'a> {
    /// The current piece; `buf[start..]` is unread.
    buf: Cow<'a, [u8]>,
    start: usize,
    /// The pieces still to come (none for a slice).
    rest: Option<&'a mut dyn Iterator<Item = Vec<u8>>>,
    /// File offset of `buf[start]`.
    pos: u64,
}

impl<'a> Input<'a> {
    /// The whole file as one slice.
    pub(crate) fn whole(data: &'a [u8]) -> Self {
        Input {
            buf: Cow::Borrowed(data),
            start: 0,
            rest: None,
            pos: 0,
        }
    }

    /// The file as the pieces `chunks` yields, in order.
    pub(crate) fn chunks(chunks: &'a mut dyn Iterator<Item = Vec<u8>>) -> Self {
        Input {
            buf: Cow::Borrowed(&[]),
            start: 0,
            rest: Some(chunks),
            pos: 0,
        }
    }

    /// File offset of the next unread byte.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Takes the next non-empty piece when the current one is used up; false at the end.
    fn refill(&mut self) -> bool {
        while self.start >= self.buf.len() {
            let Some(next) = self.rest.as_mut().and_then(|r| r.next()) else {
                return false;
            };
            self.buf = Cow::Owned(next);
            self.start = 0;
        }
        true
    }

    /// True when every byte has been read.
    pub(crate) fn at_end(&mut self) -> bool {
        !self.refill()
    }

    /// The next `n` unread bytes in one slice (fewer at the end of the file), without reading
    /// them: pieces are joined as needed.
    pub(crate) fn peek(&mut self, n: usize) -> &[u8] {
        self.refill();
        while self.buf.len() - self.start < n {
            let Some(next) = self.rest.as_mut().and_then(|r| r.next()) else {
                break;
            };
            let mut joined = self.buf[self.start..].to_vec();
            joined.extend_from_slice(&next);
            self.buf = Cow::Owned(joined);
            self.start = 0;
        }
        let end = self.buf.len().min(self.start + n);
        &self.buf[self.start..end]
    }

    /// Reads past zero bytes (the padding between archives).
    pub(crate) fn skip_zeros(&mut self) {
        while self.refill() {
            let n = super::cpio::leading_zeros(&self.buf[self.start..]);
            self.consume(n);
            if self.start < self.buf.len() {
                return;
            }
        }
    }

    /// Every unread byte in one slice: the rest of the pieces are joined (for the decoders
    /// that need their whole input at once). Reading from it is done through
    /// [`BufRead::consume`].
    pub(crate) fn contiguous(&mut self) -> &[u8] {
        if let Some(rest) = self.rest.take() {
            let mut joined = self.buf[self.start..].to_vec();
            for next in rest {
                joined.extend_from_slice(&next);
            }
            self.buf = Cow::Owned(joined);
            self.start = 0;
        }
        &self.buf[self.start..]
    }
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.refill();
        Ok(&self.buf[self.start..])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.start);
        self.start += n;
        self.pos += n as u64;
    }
}

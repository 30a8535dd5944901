//! Memory hints shared by the layers that fill large fresh buffers.

/// Asks for transparent huge pages on the 2 MiB-aligned middle of `len` bytes at `ptr`: a
/// fresh buffer of tens of MiB then takes a few dozen page faults instead of thousands, which
/// matters on these VMs where first touch is slow (performance-limits.md §B.6). Only a hint;
/// contents are unchanged.
pub(crate) fn advise_huge_pages(ptr: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize).saturating_add(len) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside the caller's allocation; MADV_HUGEPAGE changes no
        // contents and cannot fail in a way that matters here.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// An empty buffer with room for `len` bytes whose pages are already faulted in (huge pages
/// advised): made on an idle core while the caller does other work, so the thread that fills
/// it later does not pay the first-touch cost on its critical path.
pub(crate) fn prefaulted(len: usize) -> Vec<u8> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    advise_huge_pages(buf.as_ptr(), buf.capacity());
    let spare = buf.spare_capacity_mut();
    for page in spare.chunks_mut(4096) {
        page[0].write(0);
    }
    buf
}

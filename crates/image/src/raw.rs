//! RAW images: the file is the virtual disk. Allocation comes from the file system
//! (`SEEK_DATA` / `SEEK_HOLE`), so holes are never read.

use std::os::fd::AsRawFd;
use std::sync::Arc;

pub use crate::report::RawDetails;

use super::{
    DiskImage, Extent, ExtentKind, Finding, ImageError, ImageFile, ImageFormat, Severity,
    check_read, push_extent,
};

/// A RAW disk image.
pub struct RawImage {
    file: Arc<ImageFile>,
}

/// Upper bound on SEEK_DATA/SEEK_HOLE round trips, so a pathological file system cannot
/// make extent listing unbounded; past it the rest of the file is reported as data.
const MAX_SEEK_EXTENTS: usize = 4 * 1024 * 1024;

impl RawImage {
    /// Opens a RAW file; warns about sizes ECS will not take as they are.
    pub fn open(file: Arc<ImageFile>, findings: &mut Vec<Finding>) -> Result<Self, ImageError> {
        let size = file.size();
        if size == 0 {
            findings.push(Finding::new(
                Severity::Refuse,
                "raw.empty",
                "the file is empty: there is no disk to import",
            ));
        } else if !size.is_multiple_of(512) {
            findings.push(Finding::new(
                Severity::Warning,
                "raw.size_not_sector_multiple",
                format!("file size {size} is not a multiple of 512 bytes; the last partial sector will be padded with zeros on conversion"),
            ));
        }
        if size >= 512 {
            let mut sector = [0u8; 512];
            file.read_exact_at(&mut sector, 0)?;
            check_boot_sector(&sector, findings);
        }
        Ok(Self { file })
    }

    /// `sparse` when the file system reports holes, else `full`.
    pub fn subformat(&self) -> &'static str {
        if self.details().disk_usage < self.file.size() {
            "sparse"
        } else {
            "full"
        }
    }

    /// Allocation facts from `stat`.
    pub fn details(&self) -> RawDetails {
        use std::os::unix::fs::MetadataExt;
        let disk_usage = self
            .file
            .file()
            .metadata()
            .map(|m| m.blocks() * 512)
            .unwrap_or(self.file.size());
        RawDetails { disk_usage }
    }
}

/// `lseek(fd, offset, whence)`; `None` when the kernel says ENXIO (no more data/holes).
fn seek(file: &ImageFile, offset: u64, whence: libc::c_int) -> Result<Option<u64>, ImageError> {
    let fd = file.file().as_raw_fd();
    // An archive member is a window of its file: offsets move by its base, and the answer
    // is clipped to the window.
    let base = file.base();
    let Some(pos) = offset
        .checked_add(base)
        .and_then(|p| libc::off_t::try_from(p).ok())
    else {
        return Ok(None);
    };
    // SAFETY: lseek on a valid, owned descriptor has no memory effects; the shared file
    // position it moves is never used (all reads are positional).
    let r = unsafe { libc::lseek(fd, pos, whence) };
    if r >= 0 {
        let at = (r as u64).saturating_sub(base);
        return Ok(if at >= file.size() {
            (whence != libc::SEEK_DATA).then_some(file.size())
        } else {
            Some(at)
        });
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        // File systems without SEEK_DATA support: everything is data.
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(Some(if whence == libc::SEEK_DATA {
            offset
        } else {
            file.size()
        })),
        _ => Err(ImageError::Io {
            path: file.path().to_path_buf(),
            source: err,
        }),
    }
}

/// The first `len` bytes of `file` as data and unallocated extents, from the file system's
/// `SEEK_DATA` / `SEEK_HOLE` answers (holes are never read). Shared by RAW and fixed VHD,
/// whose data region starts at offset 0 of the file.
pub(crate) fn file_extents(file: &ImageFile, len: u64) -> Result<Vec<Extent>, ImageError> {
    file_extents_from(file, 0, len)
}

/// Like [`file_extents`] for the `len` bytes from file offset `start` (a flat VMDK extent),
/// with offsets relative to `start`.
pub(crate) fn file_extents_from(
    file: &ImageFile,
    start: u64,
    len: u64,
) -> Result<Vec<Extent>, ImageError> {
    let size = start.saturating_add(len).min(file.size());
    let mut extents = Vec::new();
    let mut pos = start.min(size);
    while pos < size {
        if extents.len() >= MAX_SEEK_EXTENTS {
            push_extent(
                &mut extents,
                Extent {
                    offset: pos,
                    length: size - pos,
                    kind: ExtentKind::Data,
                },
            );
            break;
        }
        let data = seek(file, pos, libc::SEEK_DATA)?.unwrap_or(size).min(size);
        push_extent(
            &mut extents,
            Extent {
                offset: pos,
                length: data - pos,
                kind: ExtentKind::Unallocated,
            },
        );
        if data >= size {
            break;
        }
        let hole = seek(file, data, libc::SEEK_HOLE)?
            .unwrap_or(size)
            .clamp(data + 1, size);
        push_extent(
            &mut extents,
            Extent {
                offset: data,
                length: hole - data,
                kind: ExtentKind::Data,
            },
        );
        pos = hole;
    }
    for e in &mut extents {
        e.offset -= start;
    }
    Ok(extents)
}

impl DiskImage for RawImage {
    fn format(&self) -> ImageFormat {
        ImageFormat::Raw
    }

    fn virtual_size(&self) -> u64 {
        self.file.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        check_read(self.virtual_size(), buf.len(), offset)?;
        self.file.read_exact_at(buf, offset)
    }

    fn extents(&self) -> Result<Vec<Extent>, ImageError> {
        file_extents(&self.file, self.file.size())
    }
}

/// Offset of the four MBR partition entries in sector 0.
const MBR_ENTRIES: usize = 446;
/// Size of one MBR partition entry.
const MBR_ENTRY_LEN: usize = 16;
/// Partition type of the protective entry that guards a GPT.
const GPT_PROTECTIVE: u8 = 0xEE;

/// True when sector 0 is a FAT or NTFS volume boot record rather than an MBR: those also end
/// in 55 AA but carry a BIOS parameter block.
pub fn is_volume_boot_record(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    at(3, b"NTFS    ")
        || at(3, b"EXFAT   ")
        || at(3, b"-FVE-FS-")
        || at(0x36, b"FAT1")
        || at(0x52, b"FAT32   ")
}

/// Judges sector 0 of a RAW disk when it carries an MBR signature: the rules of
/// oslo.utils' `mbr` safety check, except that a hybrid MBR (a protective entry next to
/// others) is a legitimate layout and only warned about.
fn check_boot_sector(sector: &[u8; 512], findings: &mut Vec<Finding>) {
    if sector[510..512] != [0x55, 0xAA] || is_volume_boot_record(sector) {
        return;
    }
    let entries: Vec<(usize, &[u8])> = (0..4)
        .map(|i| {
            let off = MBR_ENTRIES + i * MBR_ENTRY_LEN;
            (off, &sector[off..off + MBR_ENTRY_LEN])
        })
        .collect();
    for (i, (off, e)) in entries.iter().enumerate() {
        if e[0] != 0x00 && e[0] != 0x80 {
            findings.push(Finding::at(
                Severity::Refuse,
                "mbr.boot_flag",
                &format!("partition entry {} boot flag", i + 1),
                *off as u64,
                format!(
                    "MBR partition entry {} at offset {off} has boot flag {:#04x}; only 0x00 and 0x80 are valid, so sector 0 is not a sane MBR",
                    i + 1,
                    e[0]
                ),
            ));
        }
    }
    let used: Vec<&(usize, &[u8])> = entries.iter().filter(|(_, e)| e[4] != 0).collect();
    if used.is_empty() {
        findings.push(Finding::at(
            Severity::Refuse,
            "mbr.no_partitions",
            "partition types",
            MBR_ENTRIES as u64,
            "sector 0 carries an MBR signature (55 AA at offset 510) but no partition entry is defined",
        ));
        return;
    }
    if let Some((off, e)) = entries.iter().find(|(_, e)| e[4] == GPT_PROTECTIVE) {
        let start_lba = imgport_base::bytes::le32(e, 8);
        if start_lba != 1 {
            findings.push(Finding::at(
                Severity::Refuse,
                "mbr.protective_start_lba",
                "protective entry start LBA",
                *off as u64 + 8,
                format!("the GPT protective MBR entry at offset {off} starts at LBA {start_lba}; it must start at LBA 1"),
            ));
        }
        if e[1..4] != [0x00, 0x02, 0x00] {
            findings.push(Finding::at(
                Severity::Refuse,
                "mbr.protective_start_chs",
                "protective entry start CHS",
                *off as u64 + 1,
                format!(
                    "the GPT protective MBR entry at offset {off} has start CHS {:02x} {:02x} {:02x}; it must be 00 02 00",
                    e[1], e[2], e[3]
                ),
            ));
        }
        if used.len() > 1 {
            findings.push(Finding::at(
                Severity::Warning,
                "mbr.hybrid",
                "partition entries",
                MBR_ENTRIES as u64,
                "hybrid MBR: a GPT protective entry sits next to other MBR partitions; firmware that boots by MBR sees a different layout than GPT",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// Sector 0 with one MBR entry: boot flag, start CHS, type, start LBA (protective GPT).
    fn mbr(boot: u8, chs: [u8; 3], kind: u8, lba: u32) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[446] = boot;
        s[447..450].copy_from_slice(&chs);
        s[450] = kind;
        s[454..458].copy_from_slice(&lba.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    fn codes(sector: &[u8; 512]) -> Vec<String> {
        let mut f = Vec::new();
        check_boot_sector(sector, &mut f);
        f.into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn oslo_mbr_cases() {
        // The protective entry oslo's synthetic GPT uses passes.
        assert!(codes(&mbr(0, [0, 2, 0], 0xEE, 1)).is_empty());
        assert_eq!(codes(&mbr(0x0A, [0, 2, 0], 0xEE, 1)), ["mbr.boot_flag"]);
        assert_eq!(codes(&mbr(0, [0, 2, 0], 0, 1)), ["mbr.no_partitions"]);
        assert_eq!(
            codes(&mbr(0, [1, 2, 0], 0xEE, 1)),
            ["mbr.protective_start_chs"]
        );
        assert_eq!(
            codes(&mbr(0, [0, 2, 0], 0xEE, 2)),
            ["mbr.protective_start_lba"]
        );
        // Non-protective types accept any CHS and LBA.
        assert!(codes(&mbr(0x80, [9, 9, 9], 0x83, 77)).is_empty());
        // A second entry next to the protective one is a hybrid MBR: warned, not refused.
        let mut hybrid = mbr(0, [0, 2, 0], 0xEE, 1);
        hybrid[462 + 4] = 0x0C;
        assert_eq!(codes(&hybrid), ["mbr.hybrid"]);
        // No signature: nothing to judge.
        let mut blank = mbr(0x0A, [0, 2, 0], 0, 1);
        blank[510] = 0;
        assert!(codes(&blank).is_empty());
    }

    #[test]
    fn sparse_file_extents_skip_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(8 << 20).unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(&[0xab; 4096]).unwrap();
        drop(f);
        let file = Arc::new(ImageFile::open(&path).unwrap());
        let mut findings = Vec::new();
        let img = RawImage::open(file, &mut findings).unwrap();
        assert!(findings.is_empty());
        let ext = img.extents().unwrap();
        let data: Vec<_> = ext.iter().filter(|e| e.kind == ExtentKind::Data).collect();
        assert_eq!(data.len(), 1);
        assert!(data[0].offset <= 4 << 20 && data[0].end() >= (4 << 20) + 4096);
        assert_eq!(ext.last().unwrap().end(), 8 << 20);
        let mut b = [0u8; 2];
        img.read_at(&mut b, (4 << 20) + 10).unwrap();
        assert_eq!(b, [0xab, 0xab]);
        assert!(img.read_at(&mut b, (8 << 20) - 1).is_err());
    }
}

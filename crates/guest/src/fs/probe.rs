//! What a volume holds, from its magic numbers (docs/INSPECTION.md §Probes), and the one place that
//! opens a reader for a detected kind ([`open_filesystem`]).

use imgport_base::bytes::le32;
use std::sync::Arc;

use super::{FileSystem, FsError};
use imgport_image::source::ByteSource;

/// Bytes read from the start of a volume to probe it: enough for the btrfs superblock at
/// 64 KiB and a swap signature at the end of a 64 KiB page.
pub const PROBE_LEN: usize = 0x10000 + 0x1000;

pub use super::kind::FsKind;

fn at(buf: &[u8], offset: usize, magic: &[u8]) -> bool {
    buf.get(offset..offset + magic.len()) == Some(magic)
}

/// The kind of the volume whose first bytes are `head` (at most [`PROBE_LEN`]); `None` when
/// nothing known matches.
pub fn detect(head: &[u8]) -> Option<FsKind> {
    if at(head, 0, b"LUKS\xba\xbe") {
        return Some(FsKind::Luks);
    }
    if at(head, 3, b"-FVE-FS-") {
        return Some(FsKind::BitLocker);
    }
    // LVM2 PV label: "LABELONE" at the start of one of sectors 0-3, "LVM2 001" at +24, and
    // its own sector number at +8 (lvm2 ignores a label whose number is not where it lies).
    // The number tells a PV from a volume that merely holds one a few sectors in, as the
    // Debian installer's extended partition does, starting two sectors before its PV.
    if (0..4).any(|s| {
        at(head, s * 512, b"LABELONE")
            && at(head, s * 512 + 24, b"LVM2 001")
            && at(head, s * 512 + 8, &(s as u64).to_le_bytes())
    }) {
        return Some(FsKind::Lvm2);
    }
    if at(head, 0, b"XFSB") {
        return Some(FsKind::Xfs);
    }
    if at(head, 3, b"NTFS    ") {
        return Some(FsKind::Ntfs);
    }
    if at(head, 3, b"EXFAT   ") {
        return Some(FsKind::Exfat);
    }
    if at(head, 0x10040, b"_BHRfS_M") {
        return Some(FsKind::Btrfs);
    }
    // ext2/3/4: magic 0xEF53 at 1024+0x38; the features tell the generation apart.
    if at(head, 1080, &[0x53, 0xef]) {
        let compat = le32(head, 1024 + 0x5c);
        let incompat = le32(head, 1024 + 0x60);
        // INCOMPAT_EXTENTS 0x40, 64BIT 0x80, FLEX_BG 0x200; COMPAT_HAS_JOURNAL 0x4.
        return Some(if incompat & (0x40 | 0x80 | 0x200) != 0 {
            FsKind::Ext4
        } else if compat & 0x4 != 0 {
            FsKind::Ext3
        } else {
            FsKind::Ext2
        });
    }
    if le32(head, 4096) == 0xa92b_4efc || le32(head, 0) == 0xa92b_4efc {
        return Some(FsKind::MdRaid);
    }
    if (at(head, 0x36, b"FAT1") || at(head, 0x52, b"FAT32   ")) && at(head, 510, &[0x55, 0xaa]) {
        return Some(FsKind::Vfat);
    }
    for page in [4096usize, 8192, 16384, 65536] {
        if at(head, page - 10, b"SWAPSPACE2") || at(head, page - 10, b"SWAP-SPACE") {
            return Some(FsKind::Swap);
        }
    }
    None
}

/// Label and UUID of a volume of `kind` from its probe window, as blkid prints them; lets
/// fstab lines and reports name volumes that have no reader.
pub fn identity(kind: FsKind, head: &[u8]) -> (Option<String>, Option<String>) {
    let text = |at: usize, len: usize| {
        head.get(at..at + len).and_then(|b| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(len);
            let t = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
            (!t.is_empty()).then_some(t)
        })
    };
    let uuid = |at: usize| {
        head.get(at..at + 16)
            .filter(|b| b.iter().any(|&c| c != 0))
            .and_then(|b| <&[u8; 16]>::try_from(b).ok())
            .map(imgport_base::bytes::uuid_text)
    };
    match kind {
        FsKind::Vfat => {
            // FAT32 keeps the serial and label at 0x43/0x47, FAT12/16 at 0x27/0x2B.
            let (serial, label) = if at(head, 0x52, b"FAT32   ") {
                (0x43, 0x47)
            } else {
                (0x27, 0x2b)
            };
            let s = le32(head, serial);
            let label = text(label, 11).filter(|l| l != "NO NAME");
            (label, Some(format!("{:04X}-{:04X}", s >> 16, s & 0xffff)))
        }
        FsKind::Xfs => (text(108, 12), uuid(32)),
        FsKind::Swap => (text(1024 + 28, 16), uuid(1024 + 12)),
        FsKind::Btrfs => (text(0x1012b, 256), uuid(0x10020)),
        FsKind::Ntfs => {
            let serial = head
                .get(0x48..0x50)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
            (None, serial.map(|s| format!("{s:016X}")))
        }
        FsKind::Luks => (None, text(168, 40)),
        _ => (None, None),
    }
}

/// Reads the probe window of `source` (shorter when the volume is) and detects its kind.
pub fn probe(source: &dyn ByteSource) -> std::io::Result<Option<Probed>> {
    let len = (PROBE_LEN as u64).min(source.size()) as usize;
    let mut head = vec![0u8; len];
    source.read_exact_at(&mut head, 0)?;
    Ok(detect(&head).map(|kind| {
        let (label, uuid) = identity(kind, &head);
        Probed { kind, label, uuid }
    }))
}

/// What the probe window tells about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub kind: FsKind,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

/// Opens a read-only reader for a volume of `kind`; `Ok(None)` when imgport has no reader for
/// that kind (the volume is then reported by kind only).
///
/// This is the one dispatch point: each file-system reader adds its arm here.
pub fn open_filesystem(
    kind: FsKind,
    source: Arc<dyn ByteSource>,
) -> Result<Option<Box<dyn FileSystem>>, FsError> {
    match kind {
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => {
            Ok(Some(Box::new(super::ext4::Ext4Fs::open(source, kind)?)))
        }
        FsKind::Xfs => Ok(Some(Box::new(super::xfs::open(source)?))),
        FsKind::Vfat => Ok(Some(Box::new(super::fat::open(source)?))),
        FsKind::Ntfs => Ok(Some(Box::new(super::ntfs::open(source)?))),
        FsKind::Btrfs => Ok(Some(Box::new(super::btrfs::BtrfsFs::open(source)?))),
        FsKind::Exfat => Ok(None),
        FsKind::Swap | FsKind::Luks | FsKind::BitLocker | FsKind::Lvm2 | FsKind::MdRaid => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        let mut b = vec![0u8; PROBE_LEN];
        assert_eq!(detect(&b), None);
        b[1080] = 0x53;
        b[1081] = 0xef;
        assert_eq!(detect(&b), Some(FsKind::Ext2));
        b[1024 + 0x5c] = 4;
        assert_eq!(detect(&b), Some(FsKind::Ext3));
        b[1024 + 0x60] = 0x40;
        assert_eq!(detect(&b), Some(FsKind::Ext4));
        let mut b = vec![0u8; PROBE_LEN];
        b[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        assert_eq!(detect(&b), Some(FsKind::Btrfs));
        let mut b = vec![0u8; PROBE_LEN];
        b[4086..4096].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(detect(&b), Some(FsKind::Swap));
        let mut b = vec![0u8; PROBE_LEN];
        b[..6].copy_from_slice(b"LUKS\xba\xbe");
        assert_eq!(detect(&b), Some(FsKind::Luks));
        assert!(FsKind::Luks.is_encrypted());
        let mut b = vec![0u8; PROBE_LEN];
        b[512..520].copy_from_slice(b"LABELONE");
        b[536..544].copy_from_slice(b"LVM2 001");
        // sector_xl says 0, but the label lies in sector 1: not this volume's label
        assert_eq!(detect(&b), None);
        b[520..528].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(detect(&b), Some(FsKind::Lvm2));
        // the same PV seen from two sectors before it (an MBR extended partition of the
        // Debian installer's layout): the label is in sector 3 but names sector 1
        let mut ext = vec![0u8; PROBE_LEN];
        ext[1024..].copy_from_slice(&b[..PROBE_LEN - 1024]);
        assert_eq!(detect(&ext), None);
        // a short head never panics
        assert_eq!(detect(&[0u8; 3]), None);
        assert_eq!(identity(FsKind::Btrfs, &[0u8; 3]), (None, None));
        let mut b = vec![0u8; PROBE_LEN];
        b[0x27..0x2b].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
        b[0x2b..0x36].copy_from_slice(b"ESP        ");
        assert_eq!(
            identity(FsKind::Vfat, &b),
            (Some("ESP".into()), Some("1234-ABCD".into()))
        );
        let mut b = vec![0u8; PROBE_LEN];
        b[32..48].copy_from_slice(&[
            0x3e, 0x8d, 0x1c, 0x52, 0x1b, 0x2a, 0x4c, 0x6d, 0x8e, 0x9f, 0, 0x1b, 0x2c, 0x3d, 0x4e,
            0x5f,
        ]);
        assert_eq!(
            identity(FsKind::Xfs, &b).1.as_deref(),
            Some("3e8d1c52-1b2a-4c6d-8e9f-001b2c3d4e5f")
        );
    }
}

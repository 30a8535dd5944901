//! The kinds of volume content the probe recognises, apart from the probe so that each
//! reader can name its kind without depending on the probe that opens it.

/// The kinds of volume content recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Vfat,
    Ntfs,
    Exfat,
    Swap,
    Luks,
    BitLocker,
    Lvm2,
    MdRaid,
}

impl FsKind {
    /// The name used in JSON (blkid's spelling).
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Vfat => "vfat",
            FsKind::Ntfs => "ntfs",
            FsKind::Exfat => "exfat",
            FsKind::Swap => "swap",
            FsKind::Luks => "luks",
            FsKind::BitLocker => "bitlocker",
            FsKind::Lvm2 => "lvm2",
            FsKind::MdRaid => "linux_raid_member",
        }
    }

    /// True for kinds that hold files (not swap, volume managers or encrypted containers).
    pub fn is_filesystem(self) -> bool {
        !matches!(
            self,
            FsKind::Swap | FsKind::Luks | FsKind::BitLocker | FsKind::Lvm2 | FsKind::MdRaid
        )
    }

    /// True for encrypted containers whose content cannot be inspected.
    pub fn is_encrypted(self) -> bool {
        matches!(self, FsKind::Luks | FsKind::BitLocker)
    }
}

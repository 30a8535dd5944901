//! The FAT boot sector (BIOS parameter block) and the FAT type decision.
//!
//! Field offsets and the cluster-count rule follow Microsoft's "FAT: General Overview of
//! On-Disk Format" (fatgen103), sections "Boot Sector and BPB" and "FAT Type Determination".

use super::super::FsError;
use imgport_base::bytes::{self, le32};

/// Which FAT variant, decided by the count of data clusters (fatgen103 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// The geometry we need from the BPB, validated.
#[derive(Debug, Clone)]
pub struct Bpb {
    pub fat_type: FatType,
    pub cluster_size: u32,
    /// Byte offset of the first FAT.
    pub fat_offset: u64,
    /// Byte offset of the FAT12/16 fixed root directory (unused for FAT32).
    pub root_offset: u64,
    /// Bytes of the FAT12/16 fixed root directory.
    pub root_bytes: u32,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
    /// Number of data clusters; valid cluster numbers are `2..cluster_count + 2`.
    pub cluster_count: u32,
    /// FAT32 root directory cluster.
    pub root_cluster: u32,
    /// Volume serial number from the extended BPB, when its signature is there.
    pub serial: Option<u32>,
    /// Volume label from the extended BPB (trailing spaces removed), when set.
    pub label: Option<String>,
}

/// A 16-bit BPB field widened to the u32 the sums below use.
fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(bytes::le16(b, at))
}

fn corrupt(what: &str, rule: String) -> FsError {
    FsError::Corrupt {
        fs: "vfat",
        what: what.to_string(),
        rule,
    }
}

/// True when `boot` (the first 512 bytes of a volume) is a FAT boot sector: a sane BPB and a
/// `FAT12`/`FAT16`/`FAT32` type string (at 0x36, or 0x52 for FAT32).
pub fn probe(boot: &[u8]) -> bool {
    if boot.len() < 512 {
        return false;
    }
    let tagged = boot[0x36..0x39] == *b"FAT" || boot[0x52..0x57] == *b"FAT32";
    tagged && &boot[3..11] != b"NTFS    " && Bpb::parse(boot, u64::MAX).is_ok()
}

impl Bpb {
    /// Parses and validates the BPB of a volume of `volume_size` bytes.
    pub fn parse(boot: &[u8], volume_size: u64) -> Result<Self, FsError> {
        if boot.len() < 512 {
            return Err(corrupt("boot sector", "shorter than 512 bytes".into()));
        }
        if boot[510..512] != [0x55, 0xAA] {
            return Err(corrupt("boot sector", "no 55 AA signature at 510".into()));
        }
        let bps = le16(boot, 11);
        if !(512..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(corrupt(
                "BPB_BytsPerSec at 11",
                format!("{bps} is not a power of two in 512..=4096"),
            ));
        }
        let spc = u32::from(boot[13]);
        if spc == 0 || !spc.is_power_of_two() {
            return Err(corrupt(
                "BPB_SecPerClus at 13",
                format!("{spc} is not a power of two"),
            ));
        }
        let reserved = le16(boot, 14);
        if reserved == 0 {
            return Err(corrupt("BPB_RsvdSecCnt at 14", "is 0".into()));
        }
        let fats = u32::from(boot[16]);
        if fats == 0 {
            return Err(corrupt("BPB_NumFATs at 16", "is 0".into()));
        }
        let root_entries = le16(boot, 17);
        let total = match le16(boot, 19) {
            0 => le32(boot, 32),
            t => t,
        };
        let fat_sectors = match le16(boot, 22) {
            0 => le32(boot, 36),
            f => f,
        };
        if fat_sectors == 0 {
            return Err(corrupt("BPB_FATSz at 22/36", "is 0".into()));
        }
        let root_bytes = root_entries * 32;
        let root_sectors = root_bytes.div_ceil(bps);
        let meta = u64::from(reserved)
            + u64::from(fats) * u64::from(fat_sectors)
            + u64::from(root_sectors);
        let data_sectors = u64::from(total).checked_sub(meta).ok_or_else(|| {
            corrupt(
                "BPB_TotSec at 19/32",
                format!("{total} sectors leave no room after {meta} sectors of metadata"),
            )
        })?;
        let cluster_count = (data_sectors / u64::from(spc)) as u32;
        let fat_type = match cluster_count {
            0..4085 => FatType::Fat12,
            4085..65525 => FatType::Fat16,
            _ => FatType::Fat32,
        };
        let bps64 = u64::from(bps);
        let cluster_size = bps * spc;
        if cluster_size > 256 * 1024 {
            return Err(corrupt(
                "cluster size",
                format!("{cluster_size} bytes is above 256 KiB"),
            ));
        }
        if u64::from(total) * bps64 > volume_size {
            return Err(corrupt(
                "BPB_TotSec at 19/32",
                format!(
                    "{total} sectors of {bps} bytes pass the end of the {volume_size}-byte volume"
                ),
            ));
        }
        let (ext, root_cluster) = if fat_type == FatType::Fat32 {
            if root_entries != 0 {
                return Err(corrupt("BPB_RootEntCnt at 17", "is not 0 on FAT32".into()));
            }
            (64, le32(boot, 44))
        } else {
            if root_entries == 0 {
                return Err(corrupt("BPB_RootEntCnt at 17", "is 0 on FAT12/16".into()));
            }
            (36, 0)
        };
        // Extended boot signature 0x29 (or 0x28: serial only) at 38 / 66 (fatgen103 §3.2/3.3).
        let sig = boot[ext + 2];
        let serial = matches!(sig, 0x28 | 0x29).then(|| le32(boot, ext + 3));
        let label = (sig == 0x29)
            .then(|| clean_label(&boot[ext + 7..ext + 18]))
            .flatten();
        Ok(Self {
            fat_type,
            cluster_size,
            fat_offset: u64::from(reserved) * bps64,
            root_offset: (u64::from(reserved) + u64::from(fats) * u64::from(fat_sectors)) * bps64,
            root_bytes,
            data_offset: meta * bps64,
            cluster_count,
            root_cluster,
            serial,
            label,
        })
    }

    /// Bytes of FAT entries covering every valid cluster number.
    pub fn fat_bytes(&self) -> u64 {
        let entries = u64::from(self.cluster_count) + 2;
        match self.fat_type {
            FatType::Fat12 => (entries * 3).div_ceil(2),
            FatType::Fat16 => entries * 2,
            FatType::Fat32 => entries * 4,
        }
    }
}

/// An 11-byte label with trailing spaces removed; `None` when empty or `NO NAME`.
pub fn clean_label(raw: &[u8]) -> Option<String> {
    let s: String = raw.iter().map(|&b| char::from(b)).collect();
    let s = s.trim_end_matches([' ', '\0']);
    (!s.is_empty() && s != "NO NAME").then(|| s.to_string())
}

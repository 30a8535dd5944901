//! The MBR of sector 0 and the chain of extended boot records (EBRs) that holds logical
//! partitions. The chain is bounded ([`MAX_LOGICAL`]) and loop-safe (each EBR is visited once).

use imgport_base::bytes::le32;
use std::collections::HashSet;

use super::entry::{PartType, Partition, PartitionError, check_overlaps, read_at};
use imgport_image::source::ByteSource;
use imgport_image::{Finding, Severity};

/// Offset of the four 16-byte partition entries in sector 0.
const ENTRIES_AT: usize = 446;
/// Most logical partitions followed along an EBR chain (Linux allows 60 on SCSI disks).
pub const MAX_LOGICAL: usize = 128;
/// Protective-MBR type of a GPT disk.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xee;

/// One of the four primary entries (or an EBR entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Slot 1..=4.
    pub slot: u32,
    pub boot: u8,
    pub kind: u8,
    pub lba_start: u32,
    pub sectors: u32,
}

/// A parsed sector 0 that is an MBR (ends in 55 AA and is not a volume boot record).
#[derive(Debug, Clone)]
pub struct Mbr {
    /// Non-empty entries (type ≠ 0).
    pub entries: Vec<Entry>,
    /// Disk signature at 0x1B8 (what `PARTUUID=xxxxxxxx-nn` names).
    pub disk_id: u32,
}

impl Mbr {
    /// True when an entry has the GPT protective type 0xEE.
    pub fn has_protective(&self) -> bool {
        self.entries.iter().any(|e| e.kind == TYPE_GPT_PROTECTIVE)
    }

    /// True for a hybrid MBR: the 0xEE entry plus other real entries.
    pub fn is_hybrid(&self) -> bool {
        self.has_protective() && self.entries.iter().any(|e| e.kind != TYPE_GPT_PROTECTIVE)
    }
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

/// Parses the four entries of a 512-byte boot sector; `None` when it has no 55 AA signature,
/// is a FAT/NTFS volume boot record, or has an entry with an invalid boot flag.
pub fn parse_sector0(sector: &[u8]) -> Option<Mbr> {
    if sector.len() < 512 || sector[510] != 0x55 || sector[511] != 0xaa {
        return None;
    }
    if imgport_image::detect::is_volume_boot_record(sector) {
        return None;
    }
    let entries = parse_entries(sector)?;
    Some(Mbr {
        entries,
        disk_id: le32(sector, 0x1b8),
    })
}

/// The non-empty entries of a boot sector or EBR; `None` on a boot flag other than 0x00/0x80.
fn parse_entries(sector: &[u8]) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    for slot in 0..4 {
        let e = &sector[ENTRIES_AT + slot * 16..ENTRIES_AT + slot * 16 + 16];
        if e[0] != 0 && e[0] != 0x80 {
            return None;
        }
        if e[4] == 0 {
            continue;
        }
        entries.push(Entry {
            slot: slot as u32 + 1,
            boot: e[0],
            kind: e[4],
            lba_start: le32(e, 8),
            sectors: le32(e, 12),
        });
    }
    Some(entries)
}

/// The partitions of `mbr` (primaries 1–4, logicals from 5) with `sector`-byte LBAs; entries
/// past the end of the disk and broken EBR chains become findings.
pub fn partitions(
    disk: &dyn ByteSource,
    mbr: &Mbr,
    sector: u64,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Partition>, PartitionError> {
    let mut parts = Vec::new();
    for e in &mbr.entries {
        if is_extended(e.kind) {
            // The container itself is listed (as sfdisk and parted do), then its logicals.
            if let Some(p) = to_partition(disk, mbr, e.slot, e, 0, sector, findings) {
                parts.push(p);
                logicals(disk, mbr, e, sector, &mut parts, findings)?;
            }
            continue;
        }
        if let Some(p) = to_partition(disk, mbr, e.slot, e, 0, sector, findings) {
            parts.push(p);
        }
    }
    parts.sort_by_key(|p| p.index);
    check_overlaps(&parts, findings);
    Ok(parts)
}

fn to_partition(
    disk: &dyn ByteSource,
    mbr: &Mbr,
    index: u32,
    e: &Entry,
    base_lba: u64,
    sector: u64,
    findings: &mut Vec<Finding>,
) -> Option<Partition> {
    let start = (base_lba + u64::from(e.lba_start)) * sector;
    let size = u64::from(e.sectors) * sector;
    if size == 0 || start.checked_add(size).is_none_or(|end| end > disk.size()) {
        findings.push(Finding::new(
            Severity::Warning,
            "guest.partition_out_of_disk",
            format!(
                "MBR partition {index} (bytes {start}+{size}) is empty or passes the end of the \
                 disk ({} bytes); ignored",
                disk.size()
            ),
        ));
        return None;
    }
    Some(Partition {
        index,
        start,
        size,
        part_type: PartType::Mbr(e.kind),
        name: None,
        part_uuid: Some(format!("{:08x}-{index:02x}", mbr.disk_id)),
        bootable: e.boot == 0x80,
    })
}

/// Follows the EBR chain of the extended partition `ext`: each EBR's first entry is a logical
/// partition relative to that EBR, its second links to the next EBR relative to `ext`.
fn logicals(
    disk: &dyn ByteSource,
    mbr: &Mbr,
    ext: &Entry,
    sector: u64,
    parts: &mut Vec<Partition>,
    findings: &mut Vec<Finding>,
) -> Result<(), PartitionError> {
    let ext_lba = u64::from(ext.lba_start);
    let ext_end = ext_lba + u64::from(ext.sectors);
    let mut ebr_lba = ext_lba;
    let mut seen = HashSet::new();
    let mut index = 5u32;
    loop {
        if !seen.insert(ebr_lba) {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.ebr_loop",
                format!("the EBR chain loops back to sector {ebr_lba}; chain cut there"),
            ));
            return Ok(());
        }
        if seen.len() > MAX_LOGICAL {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.ebr_chain_too_long",
                format!("more than {MAX_LOGICAL} logical partitions; chain cut there"),
            ));
            return Ok(());
        }
        let offset = ebr_lba * sector;
        if ebr_lba < ext_lba
            || ebr_lba >= ext_end
            || offset.checked_add(512).is_none_or(|e| e > disk.size())
        {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.ebr_out_of_range",
                format!("an EBR link points to sector {ebr_lba}, outside the extended partition"),
            ));
            return Ok(());
        }
        let ebr = read_at(disk, offset, 512)?;
        let entries = match (ebr[510], ebr[511], parse_entries(&ebr)) {
            (0x55, 0xaa, Some(e)) => e,
            _ => {
                findings.push(Finding::new(
                    Severity::Warning,
                    "guest.ebr_invalid",
                    format!("the EBR at sector {ebr_lba} has no valid signature or entries"),
                ));
                return Ok(());
            }
        };
        let mut next = None;
        for e in &entries {
            if is_extended(e.kind) {
                next.get_or_insert(ext_lba + u64::from(e.lba_start));
            } else if let Some(p) = to_partition(disk, mbr, index, e, ebr_lba, sector, findings) {
                parts.push(p);
                index += 1;
            }
        }
        match next {
            Some(n) => ebr_lba = n,
            None => return Ok(()),
        }
    }
}

/// Short names of common MBR system ids.
pub fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0e => "FAT16",
        0x05 | 0x0f | 0x85 => "Extended",
        0x07 => "NTFS/exFAT",
        0x0b | 0x0c => "FAT32",
        0x27 => "Windows RE",
        0x42 => "Windows LDM",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8e => "Linux LVM",
        0xa5 => "FreeBSD",
        0xee => "GPT protective",
        0xef => "EFI System",
        0xfd => "Linux RAID",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sector: &mut [u8], slot: usize, boot: u8, kind: u8, start: u32, len: u32) {
        let e = &mut sector[ENTRIES_AT + slot * 16..ENTRIES_AT + slot * 16 + 16];
        e[0] = boot;
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&len.to_le_bytes());
    }

    fn disk_with_sector0(size: usize) -> Vec<u8> {
        let mut d = vec![0u8; size];
        d[510] = 0x55;
        d[511] = 0xaa;
        d
    }

    #[test]
    fn primaries_and_logicals_with_loop_cut() {
        // 1 MiB disk: primary 1 at LBA 64 (64 sectors), extended at LBA 256 (512 sectors).
        let mut d = disk_with_sector0(1 << 20);
        entry(&mut d[..512], 0, 0x80, 0x83, 64, 64);
        entry(&mut d[..512], 1, 0, 0x05, 256, 512);
        // EBR 1 at LBA 256: logical at +8 (16 sectors), next EBR at ext+100.
        let ebr1 = 256 * 512;
        d[ebr1 + 510] = 0x55;
        d[ebr1 + 511] = 0xaa;
        entry(&mut d[ebr1..ebr1 + 512], 0, 0, 0x83, 8, 16);
        entry(&mut d[ebr1..ebr1 + 512], 1, 0, 0x05, 100, 50);
        // EBR 2 at LBA 356: logical at +4 (8 sectors), next EBR links back to EBR 1 (a loop).
        let ebr2 = 356 * 512;
        d[ebr2 + 510] = 0x55;
        d[ebr2 + 511] = 0xaa;
        entry(&mut d[ebr2..ebr2 + 512], 0, 0, 0x82, 4, 8);
        entry(&mut d[ebr2..ebr2 + 512], 1, 0, 0x05, 0, 50);
        let mbr = parse_sector0(&d[..512]).unwrap();
        let mut findings = Vec::new();
        let parts = partitions(&d, &mbr, 512, &mut findings).unwrap();
        let got: Vec<(u32, u64, u64, u8)> = parts
            .iter()
            .map(|p| match p.part_type {
                PartType::Mbr(t) => (p.index, p.start, p.size, t),
                PartType::Gpt(_) => unreachable!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 64 * 512, 64 * 512, 0x83),
                (2, 256 * 512, 512 * 512, 0x05),
                (5, 264 * 512, 16 * 512, 0x83),
                (6, 360 * 512, 8 * 512, 0x82),
            ]
        );
        assert!(parts[0].bootable);
        assert!(findings.iter().any(|f| f.code == "guest.ebr_loop"));
    }

    #[test]
    fn refuses_bad_boot_flag_and_out_of_disk_entries() {
        let mut d = disk_with_sector0(4096);
        entry(&mut d[..512], 0, 0x0a, 0x83, 1, 2);
        assert!(parse_sector0(&d[..512]).is_none());
        let mut d = disk_with_sector0(4096);
        entry(&mut d[..512], 0, 0, 0x83, 1, 1000);
        let mbr = parse_sector0(&d[..512]).unwrap();
        let mut f = Vec::new();
        assert!(partitions(&d, &mbr, 512, &mut f).unwrap().is_empty());
        assert_eq!(f[0].code, "guest.partition_out_of_disk");
    }

    #[test]
    fn hybrid_is_protective_plus_others() {
        let mut d = disk_with_sector0(512);
        entry(&mut d[..512], 0, 0, 0xee, 1, 100);
        assert!(!parse_sector0(&d).unwrap().is_hybrid());
        entry(&mut d[..512], 1, 0, 0x83, 200, 100);
        let m = parse_sector0(&d).unwrap();
        assert!(m.has_protective() && m.is_hybrid());
    }
}

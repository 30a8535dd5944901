//! Partition tables of a virtual disk: MBR (with the EBR chain of logical partitions), GPT
//! (primary and backup header, both CRC-checked, 512 and 4096-byte sectors) and the hybrid of
//! the two. Parsed from bytes with every offset checked and every loop bounded.
//!
//! Owns: finding where partitions are and what their type says. Must not look inside a
//! partition (that is `fs`) nor decide roles or boot mode.

mod entry;
pub mod gpt;
pub mod mbr;

use entry::read_at;
pub use entry::{GUID_BIOS_BOOT, GUID_ESP, PartType, Partition, PartitionError};

use imgport_image::source::ByteSource;
use imgport_image::{Finding, Severity};

/// Which kind of table the disk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
    /// A GPT whose protective MBR also lists real partitions (`sgdisk -h`).
    Hybrid,
    /// No table: empty disk or a file system on the whole disk.
    None,
}

impl TableKind {
    /// The lower-case name used in JSON (`gpt`, `mbr`, `hybrid`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Gpt => "gpt",
            TableKind::Mbr => "mbr",
            TableKind::Hybrid => "hybrid",
            TableKind::None => "none",
        }
    }
}

/// Everything the partition layer found on one disk.
#[derive(Debug, Clone)]
pub struct PartitionTable {
    pub kind: TableKind,
    /// Logical sector size the table uses (512 or 4096).
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
    /// Sector 0 holds boot code (some of its first 440 bytes are non-zero) and ends in 55 AA.
    pub mbr_boot_code: bool,
    /// Problems found on the way (corrupt primary GPT, EBR loop, overlaps …).
    pub findings: Vec<Finding>,
}

/// Reads the partition table of `disk`: GPT when a valid primary or backup header exists (at
/// 512 or 4096-byte sectors), else MBR, else none.
pub fn read(disk: &dyn ByteSource) -> Result<PartitionTable, PartitionError> {
    let mut findings = Vec::new();
    if disk.size() < 512 {
        return Ok(PartitionTable {
            kind: TableKind::None,
            sector_size: 512,
            partitions: Vec::new(),
            mbr_boot_code: false,
            findings,
        });
    }
    let sector0 = read_at(disk, 0, 512)?;
    let mbr = mbr::parse_sector0(&sector0);
    let mbr_boot_code = mbr.is_some() && sector0[..440].iter().any(|&b| b != 0);

    if let Some(g) = gpt::read(disk, &mut findings)? {
        let protective = mbr.as_ref().is_some_and(|m| m.has_protective());
        let hybrid = mbr.as_ref().is_some_and(|m| m.is_hybrid());
        if mbr.is_some() && !protective {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.gpt_no_protective_mbr",
                "the disk has a GPT but sector 0 has no protective 0xEE entry (stale MBR); \
                 the GPT is used",
            ));
        }
        if hybrid {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.hybrid_mbr",
                "hybrid MBR: the protective MBR also lists partitions; firmware booting in \
                 BIOS mode sees those, UEFI sees the GPT",
            ));
        }
        return Ok(PartitionTable {
            kind: if hybrid {
                TableKind::Hybrid
            } else {
                TableKind::Gpt
            },
            sector_size: g.sector_size,
            partitions: g.partitions,
            mbr_boot_code,
            findings,
        });
    }

    match mbr {
        Some(m) if m.has_protective() => {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.gpt_unreadable",
                "sector 0 is a protective MBR but neither GPT header is valid",
            ));
            Ok(PartitionTable {
                kind: TableKind::Gpt,
                sector_size: 512,
                partitions: Vec::new(),
                mbr_boot_code,
                findings,
            })
        }
        Some(m) => {
            let partitions = mbr::partitions(disk, &m, 512, &mut findings)?;
            Ok(PartitionTable {
                kind: TableKind::Mbr,
                sector_size: 512,
                partitions,
                mbr_boot_code,
                findings,
            })
        }
        None => Ok(PartitionTable {
            kind: TableKind::None,
            sector_size: 512,
            partitions: Vec::new(),
            mbr_boot_code: false,
            findings,
        }),
    }
}

impl PartType {
    /// `0x83` for MBR, the upper-case GUID for GPT.
    pub fn id(&self) -> String {
        match self {
            PartType::Mbr(t) => format!("0x{t:02x}"),
            PartType::Gpt(g) => gpt::format_guid(g),
        }
    }

    /// A short name for well-known types.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            PartType::Mbr(t) => mbr::type_name(*t),
            PartType::Gpt(_) => gpt::type_name(&self.id()),
        }
    }

    /// True for an EFI system partition (MBR 0xEF or the ESP GUID).
    pub fn is_esp(&self) -> bool {
        match self {
            PartType::Mbr(t) => *t == 0xef,
            PartType::Gpt(_) => self.id() == GUID_ESP,
        }
    }

    /// True for an MBR extended partition (0x05, 0x0F, 0x85): a container of logical
    /// partitions, never a volume itself.
    pub fn is_extended(&self) -> bool {
        matches!(self, PartType::Mbr(0x05 | 0x0f | 0x85))
    }

    /// True for a Linux RAID member partition (MBR `0xFD`, GPT `A19D880F-…`), where an md
    /// superblock may sit at the end, behind the file system the member starts with.
    pub fn is_linux_raid(&self) -> bool {
        match self {
            PartType::Mbr(t) => *t == 0xfd,
            PartType::Gpt(_) => self.id() == "A19D880F-05FC-4D3B-A006-743F0F84911E",
        }
    }

    /// True for a GRUB BIOS boot partition (GPT only).
    pub fn is_bios_boot(&self) -> bool {
        matches!(self, PartType::Gpt(_)) && self.id() == GUID_BIOS_BOOT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Garbage and mutated tables never panic, hang or allocate without bound.
    #[test]
    fn hostile_tables_do_not_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let valid = gpt::tests::gpt_disk(512, 256);
        for round in 0..300 {
            let mut d = if round % 2 == 0 {
                valid.clone()
            } else {
                (0..256 * 512).map(|_| rng.u8(..)).collect()
            };
            // sprinkle bytes over the MBR, the GPT header and the first entries
            for _ in 0..16 {
                let at = rng.usize(..4096);
                d[at] = rng.u8(..);
            }
            d[510] = 0x55;
            d[511] = 0xaa;
            let t = read(&d).expect("in-memory reads do not fail");
            for p in &t.partitions {
                assert!(p.start + p.size <= d.len() as u64);
            }
        }
    }
}

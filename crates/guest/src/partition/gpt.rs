//! GUID partition tables (UEFI 2.10 §5.3): the primary header at LBA 1 and the backup at the
//! last LBA, each with its header CRC32 and partition-entry-array CRC32 checked. Logical
//! sectors of 512 and 4096 bytes are tried (4Kn disks put LBA 1 at byte 4096). A corrupt
//! primary falls back to the backup with a warning.

use super::entry::{PartType, Partition, PartitionError, check_overlaps, read_at};
use imgport_base::bytes::{le16, le32, le64};
use imgport_image::source::ByteSource;
use imgport_image::{Finding, Severity};

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Smallest header the spec allows (92 bytes of fields).
const MIN_HEADER: u32 = 92;
/// Most partition entries accepted; the spec's minimum array is 128 entries, tools rarely
/// write more than a few hundred.
pub const MAX_ENTRIES: u32 = 4096;
/// Largest entry array read (MAX_ENTRIES × 128 bytes is 512 KiB).
const MAX_ARRAY_BYTES: u64 = 1 << 20;

/// CRC32 of the header and the entry array (UEFI 2.10 §5.3.2: the ISO-HDLC polynomial).
fn crc32(bytes: &[u8]) -> u32 {
    // A CRC-32 fits its 32 bits; crc-fast returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, bytes) as u32
}

/// A valid GPT: its sector size and partitions.
#[derive(Debug, Clone)]
pub struct Gpt {
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
}

/// The fields of a header that passed its checks.
#[derive(Debug, Clone, Copy)]
struct Header {
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    entries_lba: u64,
    entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// Parses and checks the header in `sector` that claims to sit at `lba`; the error is the
/// rule broken.
fn parse_header(sector: &[u8], lba: u64) -> Result<Header, String> {
    if &sector[..8] != SIGNATURE {
        return Err("no \"EFI PART\" signature".into());
    }
    let size = le32(sector, 12);
    if size < MIN_HEADER || size as usize > sector.len() {
        return Err(format!("header size {size} outside 92..={}", sector.len()));
    }
    let mut copy = sector[..size as usize].to_vec();
    copy[16..20].fill(0);
    let stored = le32(sector, 16);
    let computed = crc32(&copy);
    if stored != computed {
        return Err(format!(
            "header CRC32 is {stored:#010x}, the header computes {computed:#010x}"
        ));
    }
    let my_lba = le64(sector, 24);
    if my_lba != lba {
        return Err(format!(
            "header says it is at LBA {my_lba}, found at LBA {lba}"
        ));
    }
    let h = Header {
        alternate_lba: le64(sector, 32),
        first_usable: le64(sector, 40),
        last_usable: le64(sector, 48),
        entries_lba: le64(sector, 72),
        entries: le32(sector, 80),
        entry_size: le32(sector, 84),
        entries_crc: le32(sector, 88),
    };
    if h.entry_size < 128 || !h.entry_size.is_power_of_two() || h.entry_size > 4096 {
        return Err(format!(
            "entry size {} is not a power of two in 128..=4096",
            h.entry_size
        ));
    }
    if h.entries > MAX_ENTRIES {
        return Err(format!(
            "{} partition entries (more than {MAX_ENTRIES})",
            h.entries
        ));
    }
    if h.first_usable > h.last_usable {
        return Err("first usable LBA is after the last usable LBA".into());
    }
    Ok(h)
}

/// Reads the header at `lba` and its entry array; `Err(rule)` when anything fails a check.
fn read_one(
    disk: &dyn ByteSource,
    sector: u64,
    lba: u64,
) -> Result<Result<(Header, Vec<u8>), String>, PartitionError> {
    let Some(offset) = lba.checked_mul(sector) else {
        return Ok(Err(format!("LBA {lba} overflows")));
    };
    if offset.checked_add(sector).is_none_or(|e| e > disk.size()) {
        return Ok(Err(format!("LBA {lba} passes the end of the disk")));
    }
    let buf = read_at(disk, offset, sector as usize)?;
    let h = match parse_header(&buf, lba) {
        Ok(h) => h,
        Err(rule) => return Ok(Err(rule)),
    };
    let len = u64::from(h.entries) * u64::from(h.entry_size);
    let start = h.entries_lba.checked_mul(sector);
    match start.and_then(|s| s.checked_add(len)) {
        Some(end) if end <= disk.size() && len <= MAX_ARRAY_BYTES => {}
        _ => {
            return Ok(Err(
                "the partition entry array passes the end of the disk".into()
            ));
        }
    }
    let array = read_at(disk, h.entries_lba * sector, len as usize)?;
    let computed = crc32(&array);
    if computed != h.entries_crc {
        return Ok(Err(format!(
            "entry array CRC32 is {:#010x}, the entries compute {computed:#010x}",
            h.entries_crc
        )));
    }
    Ok(Ok((h, array)))
}

/// Finds a valid GPT at 512 or 4096-byte sectors. Corrupt headers become findings; `None`
/// when no valid header exists.
pub fn read(
    disk: &dyn ByteSource,
    findings: &mut Vec<Finding>,
) -> Result<Option<Gpt>, PartitionError> {
    for sector in [512u64, 4096] {
        if disk.size() < sector * 2 {
            continue;
        }
        let sig = read_at(disk, sector, 8)?;
        let last_lba = disk.size() / sector - 1;
        let primary = if sig == SIGNATURE {
            Some(read_one(disk, sector, 1)?)
        } else {
            None
        };
        let backup_lba = match &primary {
            Some(Ok((h, _))) => h.alternate_lba,
            _ => last_lba,
        };
        let backup = read_one(disk, sector, backup_lba)?;
        let chosen = match (primary, backup) {
            (Some(Ok(p)), Ok(_)) => p,
            (Some(Ok(p)), Err(rule)) => {
                findings.push(Finding::at(
                    Severity::Warning,
                    "guest.gpt_backup_corrupt",
                    "backup GPT header",
                    backup_lba * sector,
                    format!("the backup GPT header at LBA {backup_lba} is not valid: {rule}"),
                ));
                p
            }
            (Some(Err(rule)), Ok(b)) => {
                findings.push(Finding::at(
                    Severity::Warning,
                    "guest.gpt_primary_corrupt",
                    "primary GPT header",
                    sector,
                    format!("the primary GPT header is not valid ({rule}); the backup is used"),
                ));
                b
            }
            (None, Ok(b)) => {
                findings.push(Finding::at(
                    Severity::Warning,
                    "guest.gpt_primary_corrupt",
                    "primary GPT header",
                    sector,
                    "the primary GPT header is missing; the backup is used",
                ));
                b
            }
            (Some(Err(rule)), Err(_)) => {
                findings.push(Finding::at(
                    Severity::Warning,
                    "guest.gpt_corrupt",
                    "primary GPT header",
                    sector,
                    format!("the GPT header is not valid ({rule}) and there is no valid backup"),
                ));
                continue;
            }
            (None, Err(_)) => continue,
        };
        let (header, array) = chosen;
        let partitions = entries(disk, sector, &header, &array, findings);
        return Ok(Some(Gpt {
            sector_size: sector,
            partitions,
        }));
    }
    Ok(None)
}

fn entries(
    disk: &dyn ByteSource,
    sector: u64,
    h: &Header,
    array: &[u8],
    findings: &mut Vec<Finding>,
) -> Vec<Partition> {
    let mut parts = Vec::new();
    for (i, e) in array.chunks_exact(h.entry_size as usize).enumerate() {
        let type_guid: [u8; 16] = e[..16].try_into().unwrap_or_default();
        if type_guid == [0; 16] {
            continue;
        }
        let index = i as u32 + 1;
        let first = le64(e, 32);
        let last = le64(e, 40);
        let range = last
            .checked_sub(first)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| n.checked_mul(sector))
            .zip(first.checked_mul(sector));
        let Some((size, start)) = range.filter(|(size, start)| {
            start
                .checked_add(*size)
                .is_some_and(|end| end <= disk.size())
        }) else {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.partition_out_of_disk",
                format!(
                    "GPT partition {index} (LBA {first}..={last}) is inverted or passes the end \
                     of the disk; ignored"
                ),
            ));
            continue;
        };
        if first < h.first_usable || last > h.last_usable {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.partition_outside_usable",
                format!(
                    "GPT partition {index} (LBA {first}..={last}) lies outside the usable range \
                     {}..={}",
                    h.first_usable, h.last_usable
                ),
            ));
        }
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| le16(c, 0))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        let unique: [u8; 16] = e[16..32].try_into().unwrap_or_default();
        parts.push(Partition {
            index,
            start,
            size,
            part_type: PartType::Gpt(type_guid),
            name: (!name.is_empty()).then_some(name),
            part_uuid: Some(format_guid(&unique).to_lowercase()),
            bootable: false,
        });
    }
    check_overlaps(&parts, findings);
    parts
}

/// Formats an on-disk GUID (first three fields little-endian) as upper-case text.
pub fn format_guid(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(g, 0),
        le16(g, 4),
        le16(g, 6),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// Short names of well-known GPT type GUIDs (docs/INSPECTION.md §Probes).
pub fn type_name(guid: &str) -> Option<&'static str> {
    Some(match guid {
        super::GUID_ESP => "EFI System",
        super::GUID_BIOS_BOOT => "BIOS boot",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => "Windows RE",
        "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3" => "Windows LDM metadata",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => "Linux root (ARM64)",
        "44479540-F297-41B2-9AF7-D131D5F0458A" => "Linux root (x86)",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A disk of `lbas` sectors of `sector` bytes with a primary and backup GPT holding one
    /// partition (LBA 34..=99), as `sgdisk` would lay it out.
    pub(crate) fn gpt_disk(sector: u64, lbas: u64) -> Vec<u8> {
        let mut d = vec![0u8; (sector * lbas) as usize];
        let mut array = vec![0u8; 128 * 128];
        let esp = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        array[..16].copy_from_slice(&esp);
        array[16] = 0xab;
        array[32..40].copy_from_slice(&34u64.to_le_bytes());
        array[40..48].copy_from_slice(&99u64.to_le_bytes());
        for (i, c) in "EFI".encode_utf16().enumerate() {
            array[56 + i * 2..58 + i * 2].copy_from_slice(&c.to_le_bytes());
        }
        let array_sectors = (array.len() as u64).div_ceil(sector);
        let last = lbas - 1;
        let write_header = |d: &mut Vec<u8>, my: u64, alt: u64, entries: u64| {
            let mut h = vec![0u8; 92];
            h[..8].copy_from_slice(SIGNATURE);
            h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            h[12..16].copy_from_slice(&92u32.to_le_bytes());
            h[24..32].copy_from_slice(&my.to_le_bytes());
            h[32..40].copy_from_slice(&alt.to_le_bytes());
            h[40..48].copy_from_slice(&(2 + array_sectors).to_le_bytes());
            h[48..56].copy_from_slice(&(last - 1 - array_sectors).to_le_bytes());
            h[72..80].copy_from_slice(&entries.to_le_bytes());
            h[80..84].copy_from_slice(&128u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
            let crc = crc32(&h);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            let at = (my * sector) as usize;
            d[at..at + 92].copy_from_slice(&h);
            let at = (entries * sector) as usize;
            d[at..at + array.len()].copy_from_slice(&array);
        };
        write_header(&mut d, 1, last, 2);
        write_header(&mut d, last, 1, last - array_sectors);
        d
    }

    #[test]
    fn reads_512_and_4096_byte_sectors() {
        for sector in [512u64, 4096] {
            let d = gpt_disk(sector, 4096);
            let mut f = Vec::new();
            let g = read(&d, &mut f).unwrap().unwrap();
            assert_eq!(g.sector_size, sector);
            assert!(f.is_empty(), "{f:?}");
            let p = &g.partitions[0];
            assert_eq!((p.index, p.start, p.size), (1, 34 * sector, 66 * sector));
            assert_eq!(p.part_type.id(), super::super::GUID_ESP);
            assert_eq!(p.name.as_deref(), Some("EFI"));
        }
    }

    #[test]
    fn corrupt_primary_uses_backup_and_corrupt_backup_warns() {
        let mut d = gpt_disk(512, 4096);
        d[512 + 40] ^= 1; // a header field changes: header CRC fails
        let mut f = Vec::new();
        let g = read(&d, &mut f).unwrap().unwrap();
        assert_eq!(g.partitions.len(), 1);
        assert_eq!(f[0].code, "guest.gpt_primary_corrupt");
        assert!(f[0].message.contains("CRC32"), "{}", f[0].message);

        let mut d = gpt_disk(512, 4096);
        d[2 * 512 + 33] ^= 1; // the primary entry array changes: entries CRC fails
        let mut f = Vec::new();
        read(&d, &mut f).unwrap().unwrap();
        assert!(f[0].message.contains("entry array CRC32"), "{f:?}");

        let mut d = gpt_disk(512, 4096);
        let last = d.len() - 512;
        d[last + 24] ^= 1; // backup my_lba wrong
        let mut f = Vec::new();
        read(&d, &mut f).unwrap().unwrap();
        assert_eq!(f[0].code, "guest.gpt_backup_corrupt");
    }

    #[test]
    fn refuses_absurd_entry_counts() {
        let mut sector = vec![0u8; 512];
        sector[..8].copy_from_slice(SIGNATURE);
        sector[12..16].copy_from_slice(&92u32.to_le_bytes());
        sector[24..32].copy_from_slice(&1u64.to_le_bytes());
        sector[80..84].copy_from_slice(&(MAX_ENTRIES + 1).to_le_bytes());
        sector[84..88].copy_from_slice(&128u32.to_le_bytes());
        let crc = crc32(&sector[..92]);
        sector[16..20].copy_from_slice(&crc.to_le_bytes());
        let err = parse_header(&sector, 1).unwrap_err();
        assert!(err.contains("partition entries"), "{err}");
    }
}

//! What every partition-table reader yields: partitions, their types, the errors, and the
//! checks all tables share.

use imgport_image::source::ByteSource;
use imgport_image::{Finding, Severity};

/// The partition type, as the table stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartType {
    /// MBR system id byte.
    Mbr(u8),
    /// GPT partition type GUID, in its on-disk (mixed-endian) byte order.
    Gpt([u8; 16]),
}

/// GPT type GUID of an EFI system partition (UEFI 2.10 §5.3.3).
pub const GUID_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// GPT type GUID of a GRUB BIOS boot partition.
pub const GUID_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";

/// One partition found in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based index; MBR logical partitions start at 5.
    pub index: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    pub part_type: PartType,
    /// GPT partition name (UTF-16LE on disk), when set.
    pub name: Option<String>,
    /// GPT unique partition GUID (what `PARTUUID=` names), or the MBR `<disk id>-<nn>` form.
    pub part_uuid: Option<String>,
    /// MBR active flag (0x80).
    pub bootable: bool,
}

/// Why the table could not be read at all (I/O); malformed tables are findings instead.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("reading the partition table at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `len` bytes at `offset`, naming the offset on failure.
pub(crate) fn read_at(
    disk: &dyn ByteSource,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, PartitionError> {
    let mut buf = vec![0u8; len];
    disk.read_exact_at(&mut buf, offset)
        .map_err(|source| PartitionError::Io { offset, source })?;
    Ok(buf)
}

/// Adds an overlap finding for every pair of partitions that share bytes.
pub(crate) fn check_overlaps(parts: &[Partition], findings: &mut Vec<Finding>) {
    // An extended partition contains its logicals by design.
    let mut sorted: Vec<&Partition> = parts
        .iter()
        .filter(|p| !matches!(p.part_type, PartType::Mbr(0x05 | 0x0f | 0x85)))
        .collect();
    sorted.sort_by_key(|p| p.start);
    for w in sorted.windows(2) {
        if w[0].start.saturating_add(w[0].size) > w[1].start {
            findings.push(Finding::new(
                Severity::Warning,
                "guest.partition_overlap",
                format!(
                    "partitions {} and {} overlap (bytes {}..{} and {}..)",
                    w[0].index,
                    w[1].index,
                    w[0].start,
                    w[0].start.saturating_add(w[0].size),
                    w[1].start
                ),
            ));
        }
    }
}

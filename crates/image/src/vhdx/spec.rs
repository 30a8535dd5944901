//! The VHDX format's constants, GUIDs, field offsets and checksum (Microsoft "VHDX Format
//! Specification" v1.00).

/// 1 MiB: the unit of region, log and payload block offsets (spec §2.2, §2.5).
pub const MIB: u64 = 1 << 20;
/// 64 KiB: the unit of the file's first structures (spec §2.2).
pub const KIB64: u64 = 64 << 10;

/// File type identifier signature at offset 0 (spec §2.2.1).
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
/// Offsets of the two headers (spec §2.2.2).
pub const HEADER_OFFSETS: [u64; 2] = [KIB64, 2 * KIB64];
/// Bytes a header's checksum covers (spec §2.2.2: the whole 4 KiB).
pub const HEADER_LEN: usize = 4096;
/// Header signature `head`.
pub const HEADER_SIGNATURE: &[u8; 4] = b"head";
/// Offsets of the two region tables (spec §2.2.3).
pub const REGION_TABLE_OFFSETS: [u64; 2] = [3 * KIB64, 4 * KIB64];
/// Bytes a region table occupies and its checksum covers.
pub const REGION_TABLE_LEN: usize = 64 << 10;
/// Region table signature `regi`.
pub const REGION_SIGNATURE: &[u8; 4] = b"regi";
/// Metadata table signature (spec §2.6.1).
pub const METADATA_SIGNATURE: &[u8; 8] = b"metadata";
/// Bytes of the metadata table at the start of the metadata region.
pub const METADATA_TABLE_LEN: u64 = 64 << 10;
/// Entries a region or metadata table may hold: the spec's limit is 2047 (< 2048).
pub const MAX_TABLE_ENTRIES: u32 = 2047;
/// Largest metadata item (spec §2.6.1.2: Length ≤ 1 MiB).
pub const MAX_ITEM_LEN: u32 = 1 << 20;
/// Largest virtual disk (spec §2.6.2.2: 64 TiB).
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// Block sizes allowed (spec §2.6.2.1: a power of two from 1 MiB to 256 MiB).
pub const MIN_BLOCK_SIZE: u32 = 1 << 20;
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest BAT imgport loads (64 MiB, 8 Mi entries: 8 TiB in 1 MiB blocks, the whole 64 TiB
/// from 8 MiB blocks up); a larger one is refused rather than allocated.
pub const MAX_BAT_BYTES: u64 = 64 << 20;
/// Log entry signature `loge` (spec §2.3.1.1).
pub const LOG_ENTRY_SIGNATURE: &[u8; 4] = b"loge";
/// Log entries are whole 4 KiB sectors.
pub const LOG_SECTOR: u64 = 4096;

/// Header field offsets (spec §2.2.2).
pub mod head {
    pub const CHECKSUM: usize = 4;
    pub const SEQUENCE: usize = 8;
    pub const LOG_GUID: usize = 48;
    pub const LOG_VERSION: usize = 64;
    pub const VERSION: usize = 66;
    pub const LOG_LENGTH: usize = 68;
    pub const LOG_OFFSET: usize = 72;
}

/// Payload block states of a BAT entry (spec §2.5.1.1).
pub mod state {
    pub const NOT_PRESENT: u8 = 0;
    pub const UNDEFINED: u8 = 1;
    pub const ZERO: u8 = 2;
    pub const UNMAPPED: u8 = 3;
    pub const FULLY_PRESENT: u8 = 6;
    pub const PARTIALLY_PRESENT: u8 = 7;
    /// Sector bitmap block state "present" (spec §2.5.1.2); 0 is "not present".
    pub const SB_PRESENT: u8 = 6;
}

/// A GUID as the file stores it: the first three fields little-endian, the rest as bytes.
pub type Guid = [u8; 16];

/// The stored bytes of the GUID written `a-b-c-d`.
pub const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> Guid {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// The GUID in its usual text form.
pub fn guid_text(g: &Guid) -> String {
    let a = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
    let b = u16::from_le_bytes([g[4], g[5]]);
    let c = u16::from_le_bytes([g[6], g[7]]);
    format!(
        "{a:08X}-{b:04X}-{c:04X}-{:02X}{:02X}-{}",
        g[8],
        g[9],
        g[10..]
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<String>()
    )
}

/// Region GUIDs (spec §2.2.3.2).
pub const REGION_BAT: Guid = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
pub const REGION_METADATA: Guid = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);

/// Metadata item GUIDs (spec §2.6.2).
pub const ITEM_FILE_PARAMETERS: Guid = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
pub const ITEM_VIRTUAL_DISK_SIZE: Guid = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
pub const ITEM_VIRTUAL_DISK_ID: Guid = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
pub const ITEM_LOGICAL_SECTOR_SIZE: Guid = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
pub const ITEM_PHYSICAL_SECTOR_SIZE: Guid = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
pub const ITEM_PARENT_LOCATOR: Guid = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

/// CRC-32C (Castagnoli) of `bytes` with the 4-byte checksum field at `at` taken as zero, as
/// every VHDX checksum is computed (spec §2.2.2, §2.2.3.1, §2.3.1.1).
pub fn crc32c_without(bytes: &[u8], at: usize) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let at = at.min(bytes.len());
    let after = (at + 4).min(bytes.len());
    d.update(&bytes[..at]);
    d.update(&[0u8; 4][..after - at]);
    d.update(&bytes[after..]);
    // A CRC-32 fits its 32 bits; crc-fast returns every width as u64.
    d.finalize() as u32
}

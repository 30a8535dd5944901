//! Linux md (software RAID) members: where a RAID1 member keeps its copy of the array's
//! data, so the file system inside can be read from one member.
//!
//! Owns the superblock layouts (Linux `include/uapi/linux/raid/md_p.h`): version 1
//! (`struct mdp_superblock_1`) at the start of the member (`mdadm --metadata=1.1`), 4 KiB in
//! (`1.2`, the data at `data_offset`) or near its end (`1.0`), and version 0.90
//! (`mdp_super_t`, 4 KiB in the last 64 KiB-aligned 64 KiB of the member, little-endian as
//! x86 writes it). 1.0 and 0.90 members hold the data from their first byte, so they also
//! probe as the file system inside; [`read_end`] tells them apart. Striped or parity levels
//! cannot be read from one member and are reported by kind only.

use imgport_base::bytes::{le32, le64};
use imgport_image::source::ByteSource;

/// `MD_SB_MAGIC`.
const MAGIC: u32 = 0xa92b_4efc;
/// Where a version-1 superblock may lie: 4 KiB in (1.2), at the start (1.1).
const SUPER_AT: [u64; 2] = [4096, 0];
/// Bytes of the superblock read (the fixed part is 256 bytes).
const SUPER_LEN: usize = 256;
/// Field offsets in `struct mdp_superblock_1`.
const MAJOR_VERSION: usize = 4;
const SET_UUID: usize = 16;
const LEVEL: usize = 72;
const SIZE: usize = 80;
const RAID_DISKS: usize = 92;
const DATA_OFFSET: usize = 128;
const DATA_SIZE: usize = 136;
const SUPER_OFFSET: usize = 144;
/// `level` of a mirror.
const RAID1: i32 = 1;

/// Bytes of a version-0.90 superblock (`MD_SB_BYTES`), all covered by its checksum.
const SB090_LEN: usize = 4096;
/// Room a version-0.90 superblock keeps at the end of the member (`MD_RESERVED_BYTES`).
const SB090_RESERVED: u64 = 64 * 1024;
/// Word indexes in `mdp_super_t` (32-bit words).
const SB090_MAJOR: usize = 1;
const SB090_UUID0: usize = 5;
const SB090_LEVEL: usize = 7;
const SB090_SIZE_KIB: usize = 8;
const SB090_RAID_DISKS: usize = 10;
const SB090_UUID123: usize = 13;
const SB090_CSUM: usize = 38;

/// An md member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The array's UUID, as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
    pub array_uuid: String,
    /// RAID level (`1` for a mirror).
    pub level: i32,
    /// Members the array has (`raid_disks`).
    pub raid_disks: u32,
    /// The array's data on this member: byte offset and length. Set for RAID1 only.
    pub data: Option<(u64, u64)>,
}

/// Parses the version-1 superblock `sb` found `at` bytes into a member of `member_size`
/// bytes; `Err` names the rule a field breaks.
pub fn parse(sb: &[u8], at: u64, member_size: u64) -> Result<Member, String> {
    if sb.len() < SUPER_LEN || le32(sb, 0) != MAGIC {
        return Err("no md superblock magic".into());
    }
    if le32(sb, MAJOR_VERSION) != 1 {
        return Err(format!(
            "superblock major version {} (only 1 is read here)",
            le32(sb, MAJOR_VERSION)
        ));
    }
    if le64(sb, SUPER_OFFSET) != at / 512 {
        return Err(format!(
            "super_offset says sector {}, but the superblock is at sector {}",
            le64(sb, SUPER_OFFSET),
            at / 512
        ));
    }
    let uuid: Vec<String> = sb[SET_UUID..SET_UUID + 16]
        .chunks(4)
        .map(hex::encode)
        .collect();
    let level = le32(sb, LEVEL) as i32;
    let data = if level == RAID1 {
        let offset = le64(sb, DATA_OFFSET)
            .checked_mul(512)
            .ok_or("data_offset overflows")?;
        // `size` is what the array uses of each member; `data_size` what is there.
        let sectors = match le64(sb, SIZE) {
            0 => le64(sb, DATA_SIZE),
            n => n.min(le64(sb, DATA_SIZE)),
        };
        let len = sectors.checked_mul(512).ok_or("data size overflows")?;
        if offset < at + SUPER_LEN as u64 && at < offset.saturating_add(len) {
            return Err("the data area overlaps the superblock".into());
        }
        if offset.checked_add(len).is_none_or(|end| end > member_size) || len == 0 {
            return Err(format!(
                "data area of {len} bytes at {offset} is not inside the {member_size}-byte member"
            ));
        }
        Some((offset, len))
    } else {
        None
    };
    Ok(Member {
        array_uuid: uuid.join(":"),
        level,
        raid_disks: le32(sb, RAID_DISKS),
        data,
    })
}

/// Parses the version-0.90 superblock `sb` (4096 bytes) found `at` bytes into its member;
/// `Err` names the rule a field breaks.
pub fn parse_090(sb: &[u8], at: u64) -> Result<Member, String> {
    let word = |i: usize| le32(sb, i * 4);
    if sb.len() < SB090_LEN || word(0) != MAGIC {
        return Err("no md superblock magic".into());
    }
    if word(SB090_MAJOR) != 0 {
        return Err(format!(
            "superblock major version {} at a 0.90 superblock's place",
            word(SB090_MAJOR)
        ));
    }
    // The kernel's calc_sb_csum: the 32-bit words summed into 64 bits with the checksum
    // word as zero, the carry folded back once.
    let sum: u64 = (0..SB090_LEN / 4)
        .filter(|&i| i != SB090_CSUM)
        .map(|i| u64::from(word(i)))
        .sum();
    let csum = (sum & 0xffff_ffff) + (sum >> 32);
    if csum as u32 != word(SB090_CSUM) {
        return Err(format!(
            "checksum {:08x} does not match the superblock's {:08x}",
            csum as u32,
            word(SB090_CSUM)
        ));
    }
    let level = word(SB090_LEVEL) as i32;
    let data = if level == RAID1 {
        let len = u64::from(word(SB090_SIZE_KIB)) * 1024;
        if len == 0 || len > at {
            return Err(format!(
                "data area of {len} bytes does not end before the superblock at byte {at}"
            ));
        }
        Some((0, len))
    } else {
        None
    };
    let uuid = [
        SB090_UUID0,
        SB090_UUID123,
        SB090_UUID123 + 1,
        SB090_UUID123 + 2,
    ]
    .map(|i| format!("{:08x}", word(i)));
    Ok(Member {
        array_uuid: uuid.join(":"),
        level,
        raid_disks: word(SB090_RAID_DISKS),
        data,
    })
}

/// Reads `len` bytes at `at` of `source`; `None` when the magic is not there.
fn superblock_at(source: &dyn ByteSource, at: u64, len: usize) -> Result<Option<Vec<u8>>, String> {
    let mut sb = vec![0u8; len];
    source
        .read_exact_at(&mut sb, at)
        .map_err(|e| format!("reading the md superblock at byte {at}: {e}"))?;
    Ok((le32(&sb, 0) == MAGIC).then_some(sb))
}

/// The md member on `source`, its superblock at the start (1.1, 1.2) or the end (1.0, 0.90):
/// `Ok(None)` when no superblock place holds the magic; `Err` for a superblock that breaks
/// a rule (the message names it) or a failed read.
pub fn read(source: &dyn ByteSource) -> Result<Option<Member>, String> {
    for at in SUPER_AT {
        if at + SUPER_LEN as u64 > source.size() {
            continue;
        }
        if let Some(sb) = superblock_at(source, at, SUPER_LEN)? {
            return parse(&sb, at, source.size())
                .map(Some)
                .map_err(|rule| format!("md superblock at byte {at}: {rule}"));
        }
    }
    read_end(source)
}

/// The md member whose superblock sits at the end of `source` (metadata 1.0, then 0.90, the
/// order mdadm tries them in): `Ok(None)` when neither place holds the magic.
pub fn read_end(source: &dyn ByteSource) -> Result<Option<Member>, String> {
    let size = source.size();
    // 1.0: 8 KiB from the end, rounded down to 4 KiB (md_p.h, `(sectors - 16) & ~7`).
    if size >= 3 * 8192 {
        let at = ((size / 512 - 16) & !7) * 512;
        if let Some(sb) = superblock_at(source, at, SUPER_LEN)? {
            return parse(&sb, at, size)
                .map(Some)
                .map_err(|rule| format!("md superblock at byte {at}: {rule}"));
        }
    }
    // 0.90: the last 64 KiB-aligned 64 KiB (`MD_NEW_SIZE_SECTORS`).
    if size >= 2 * SB090_RESERVED {
        let at = (size & !(SB090_RESERVED - 1)) - SB090_RESERVED;
        if let Some(sb) = superblock_at(source, at, SB090_LEN)? {
            return parse_090(&sb, at)
                .map(Some)
                .map_err(|rule| format!("md 0.90 superblock at byte {at}: {rule}"));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version-1.2 superblock (4 KiB in) of a RAID1 member of `member` bytes whose data
    /// starts at sector 2048 (mdadm's default data_offset for small members).
    fn member_v12(member: usize, level: i32) -> Vec<u8> {
        let mut d = vec![0u8; member];
        let sb = 4096;
        d[sb..sb + 4].copy_from_slice(&MAGIC.to_le_bytes()); // magic
        d[sb + 4..sb + 8].copy_from_slice(&1u32.to_le_bytes()); // major_version
        d[sb + 16..sb + 32].copy_from_slice(&[0x11; 16]); // set_uuid
        d[sb + 72..sb + 76].copy_from_slice(&level.to_le_bytes()); // level
        let sectors = (member as u64 / 512) - 2048;
        d[sb + 80..sb + 88].copy_from_slice(&(sectors - 8).to_le_bytes()); // size
        d[sb + 92..sb + 96].copy_from_slice(&2u32.to_le_bytes()); // raid_disks
        d[sb + 128..sb + 136].copy_from_slice(&2048u64.to_le_bytes()); // data_offset
        d[sb + 136..sb + 144].copy_from_slice(&sectors.to_le_bytes()); // data_size
        d[sb + 144..sb + 152].copy_from_slice(&8u64.to_le_bytes()); // super_offset
        d
    }

    #[test]
    fn raid1_member_data_area() {
        let size = 4 << 20;
        let d = member_v12(size, 1);
        let m = read(&d).unwrap().unwrap();
        assert_eq!(m.level, 1);
        assert_eq!(m.raid_disks, 2);
        assert_eq!(m.array_uuid, "11111111:11111111:11111111:11111111");
        let sectors = (size as u64 / 512) - 2048 - 8;
        assert_eq!(m.data, Some((2048 * 512, sectors * 512)));
        // RAID0/5: no data area to read from one member
        let d = member_v12(size, 5);
        assert_eq!(read(&d).unwrap().unwrap().data, None);
        // no superblock
        assert_eq!(read(&vec![0u8; size]).unwrap(), None);
    }

    /// A version-0.90 RAID1 member of `member` bytes, its superblock (checksum set) where
    /// the kernel puts it, the array `size_kib` long.
    pub(crate) fn member_090(member: usize, size_kib: u32) -> Vec<u8> {
        let mut d = vec![0u8; member];
        let sb = (member & !0xffff) - 0x10000;
        let mut put = |word: usize, v: u32| {
            d[sb + word * 4..sb + word * 4 + 4].copy_from_slice(&v.to_le_bytes())
        };
        put(0, MAGIC);
        put(2, 90); // minor_version
        put(5, 0x1b2c_3d4e); // set_uuid0
        put(7, 1); // level
        put(8, size_kib);
        put(10, 2); // raid_disks
        put(13, 0x5f6a_7b8c);
        put(14, 0x9d0e_1f2a);
        put(15, 0x3b4c_5d6e);
        let sum: u64 = (0..1024).map(|i| u64::from(le32(&d, sb + i * 4))).sum();
        let csum = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
        d[sb + 152..sb + 156].copy_from_slice(&csum.to_le_bytes());
        d
    }

    #[test]
    fn end_superblocks_090_and_10() {
        // 0.90: 4 MiB + 100 KiB member; the superblock 64 KiB below the last 64 KiB boundary
        let size = (4 << 20) + 100 * 1024;
        let d = member_090(size, 4032);
        let m = read(&d).unwrap().unwrap();
        assert_eq!(m.array_uuid, "1b2c3d4e:5f6a7b8c:9d0e1f2a:3b4c5d6e");
        assert_eq!((m.level, m.raid_disks), (1, 2));
        assert_eq!(m.data, Some((0, 4032 * 1024)));
        assert_eq!(read_end(&d).unwrap(), Some(m));
        // a flipped bit breaks the checksum; a data area over the superblock is refused
        let mut bad = d.clone();
        bad[(4 << 20) + 200] ^= 1;
        assert!(
            read(&bad).unwrap_err().contains("checksum"),
            "{:?}",
            read(&bad)
        );
        let d = member_090(size, 4100);
        assert!(read(&d).unwrap_err().contains("does not end before"));

        // 1.0: a version-1 superblock at ((sectors - 16) & ~7), the data from byte 0
        let size = 4 << 20;
        let mut d = vec![0u8; size];
        let at = ((size as u64 / 512 - 16) & !7) * 512;
        let sb = at as usize;
        d[sb..sb + 4].copy_from_slice(&MAGIC.to_le_bytes());
        d[sb + 4..sb + 8].copy_from_slice(&1u32.to_le_bytes());
        d[sb + 72..sb + 76].copy_from_slice(&1i32.to_le_bytes());
        d[sb + 80..sb + 88].copy_from_slice(&(at / 512).to_le_bytes()); // size
        d[sb + 92..sb + 96].copy_from_slice(&2u32.to_le_bytes());
        d[sb + 136..sb + 144].copy_from_slice(&(at / 512).to_le_bytes()); // data_size
        d[sb + 144..sb + 152].copy_from_slice(&(at / 512).to_le_bytes()); // super_offset
        let m = read_end(&d).unwrap().unwrap();
        assert_eq!(m.data, Some((0, at)));
        // nothing at either end place
        assert_eq!(read_end(&vec![0u8; size]).unwrap(), None);
    }

    #[test]
    fn broken_superblocks_are_errors() {
        let size = 4 << 20;
        let mut d = member_v12(size, 1);
        d[4096 + 144] = 0; // super_offset no longer names sector 8
        assert!(read(&d).unwrap_err().contains("super_offset"));
        let mut d = member_v12(size, 1);
        d[4096 + 128..4096 + 136].copy_from_slice(&u64::MAX.to_le_bytes()); // data_offset
        assert!(read(&d).unwrap_err().contains("overflows"));
        let mut d = member_v12(size, 1);
        d[4096 + 136..4096 + 144].copy_from_slice(&(1u64 << 40).to_le_bytes()); // data_size
        d[4096 + 80..4096 + 88].copy_from_slice(&0u64.to_le_bytes()); // size
        assert!(read(&d).unwrap_err().contains("not inside"));
        let mut d = member_v12(size, 1);
        d[4096 + 128..4096 + 136].copy_from_slice(&0u64.to_le_bytes()); // data over the sb
        assert!(read(&d).unwrap_err().contains("overlaps"));
        let mut d = member_v12(size, 1);
        d[4096 + 4] = 0; // major_version 0
        assert!(read(&d).unwrap_err().contains("major version"));
    }
}

//! Linux md (software RAID) members with a version-1 superblock (`mdadm --metadata=1.1` at
//! the start of the member, `1.2` 4 KiB in): where a RAID1 member keeps its copy of the
//! array's data, so the file system inside can be read from one member.
//!
//! Owns the superblock layout (`struct mdp_superblock_1`, Linux `include/uapi/linux/raid/
//! md_p.h`). Metadata 0.90 and 1.0 sit at the end of the member with the data from its
//! first byte: those members are read as the file system they start with. Striped or
//! parity levels cannot be read from one member and are reported by kind only.

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

/// A version-1 md member.
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

/// The version-1 md member on `source`: `Ok(None)` when neither superblock place holds the
/// magic; `Err` for a superblock that breaks a rule (the message names it) or a failed read.
pub fn read(source: &dyn ByteSource) -> Result<Option<Member>, String> {
    for at in SUPER_AT {
        if at + SUPER_LEN as u64 > source.size() {
            continue;
        }
        let mut sb = vec![0u8; SUPER_LEN];
        source
            .read_exact_at(&mut sb, at)
            .map_err(|e| format!("reading the md superblock at byte {at}: {e}"))?;
        if le32(&sb, 0) == MAGIC {
            return parse(&sb, at, source.size())
                .map(Some)
                .map_err(|rule| format!("md superblock at byte {at}: {rule}"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
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

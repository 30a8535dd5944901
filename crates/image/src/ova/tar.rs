//! The index of an OVA's POSIX tar: member names and where their bytes lie, from the headers
//! alone (the data is never walked). Every header is checked (magic, checksum, size field in
//! octal or base-256) and every member must be a regular file with a plain name whose bytes
//! lie inside the archive; the first rule broken is a finding naming the member.

use crate::file::ImageFile;
use crate::finding::{Finding, Severity};

/// Size of a tar block.
const BLOCK: u64 = 512;
/// Most members an OVA may hold (descriptor, manifest, certificate, up to a few hundred files).
pub(crate) const MAX_MEMBERS: usize = 1024;

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Offset of the member's header in the archive.
    pub header: u64,
    /// Offset of the member's first data byte in the archive.
    pub data: u64,
    pub size: u64,
}

fn refuse(code: &str, offset: u64, message: String) -> Finding {
    Finding::at(Severity::Refuse, code, "tar header", offset, message)
}

/// The value of a numeric header field: octal digits (NUL- or space-terminated, leading
/// spaces allowed) or base-256 (first byte 0x80, big-endian, as GNU tar writes large sizes).
pub(crate) fn number(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if first != 0x80 {
            return None; // negative or a form we do not take
        }
        let mut v: u64 = 0;
        for &b in rest {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// What a non-regular type flag is, for messages.
fn type_name(flag: u8) -> &'static str {
    match flag {
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' => "a character device",
        b'4' => "a block device",
        b'5' => "a directory",
        b'6' => "a FIFO",
        b'7' => "a contiguous file",
        b'x' | b'g' => "a pax extended header",
        b'L' | b'K' => "a GNU long-name header",
        _ => "an unknown member type",
    }
}

/// The rule a member name breaks, if any: OVA members are plain file names in the archive's
/// top directory, as the OVF specification's OVA section lays them out.
pub(crate) fn name_rule(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name.starts_with('/') {
        Some("an absolute path, outside the archive")
    } else if name.split(['/', '\\']).any(|c| c == "..") {
        Some("a `..` component, a path outside the archive")
    } else if name.contains('/') || name.contains('\\') {
        Some("a path with a directory; OVA members are plain file names")
    } else if name == "." || name.chars().any(char::is_control) {
        Some("not a plain file name")
    } else {
        None
    }
}

/// The members of the tar `file`, in archive order; the first broken rule is a finding.
pub fn index(file: &ImageFile) -> Result<Result<Vec<Member>, Finding>, crate::ImageError> {
    let size = file.size();
    let mut members: Vec<Member> = Vec::new();
    let mut pos = 0u64;
    let mut header = [0u8; BLOCK as usize];
    loop {
        if pos.checked_add(BLOCK).is_none_or(|end| end > size) {
            return Ok(Err(refuse(
                "ova.tar.truncated",
                pos,
                format!(
                    "the archive ends at byte {size} inside or before the header at offset {pos}; a tar ends with zero blocks (truncated archive)"
                ),
            )));
        }
        file.read_exact_at(&mut header, pos)?;
        if header.iter().all(|&b| b == 0) {
            break;
        }
        if members.len() >= MAX_MEMBERS {
            return Ok(Err(refuse(
                "ova.tar.too_many",
                pos,
                format!(
                    "more than {MAX_MEMBERS} members; an OVA holds a descriptor, a manifest and its disks"
                ),
            )));
        }
        if &header[257..262] != b"ustar" {
            return Ok(Err(refuse(
                "ova.tar.magic",
                pos,
                format!(
                    "the header at offset {pos} has no `ustar` magic at byte 257; OVAs are POSIX (ustar) tar archives"
                ),
            )));
        }
        let stored = number(&header[148..156]);
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != Some(sum) {
            return Ok(Err(refuse(
                "ova.tar.checksum",
                pos,
                format!(
                    "the header at offset {pos} has checksum {stored:?} but its bytes sum to {sum}; a damaged or forged header"
                ),
            )));
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &header[r];
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8(f[..end].to_vec()).ok()
        };
        let (Some(base), Some(prefix)) = (field(0..100), field(345..500)) else {
            return Ok(Err(refuse(
                "ova.tar.name",
                pos,
                format!("the member at offset {pos} has a name that is not UTF-8"),
            )));
        };
        let name = if prefix.is_empty() {
            base
        } else {
            format!("{prefix}/{base}")
        };
        let flag = header[156];
        if flag != b'0' && flag != 0 {
            return Ok(Err(refuse(
                "ova.tar.not_regular",
                pos,
                format!(
                    "member {name:?} at offset {pos} is {} (type flag {:?}); an OVA holds only regular files",
                    type_name(flag),
                    flag as char
                ),
            )));
        }
        if let Some(rule) = name_rule(&name) {
            return Ok(Err(refuse(
                "ova.tar.path",
                pos,
                format!("member {name:?} at offset {pos} has {rule}"),
            )));
        }
        let Some(len) = number(&header[124..136]) else {
            return Ok(Err(refuse(
                "ova.tar.size",
                pos + 124,
                format!(
                    "member {name:?}: the size field at offset {} is neither octal nor base-256",
                    pos + 124
                ),
            )));
        };
        let data = pos + BLOCK;
        let end = data.checked_add(len).filter(|&e| e <= size);
        let Some(end) = end else {
            return Ok(Err(refuse(
                "ova.tar.truncated",
                pos + 124,
                format!(
                    "member {name:?} declares {len} bytes from offset {data}, past the end of the archive ({size} bytes): truncated archive"
                ),
            )));
        };
        if let Some(first) = members.iter().find(|m| m.name == name) {
            return Ok(Err(refuse(
                "ova.tar.duplicate",
                pos,
                format!(
                    "member {name:?} at offset {pos} repeats the member of that name at offset {}; which one is meant is ambiguous",
                    first.header
                ),
            )));
        }
        members.push(Member {
            name,
            header: pos,
            data,
            size: len,
        });
        // The padding after the last member may be missing only where the file ends.
        pos = end.div_ceil(BLOCK) * BLOCK;
    }
    Ok(Ok(members))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(number(b"00000001750\0"), Some(1000));
        assert_eq!(number(b"     17 \0\0\0\0"), Some(15));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Some(1 << 32)
        );
        assert_eq!(number(b"0009"), None);
        assert_eq!(number(&[0xff, 0xff]), None);
        assert_eq!(
            number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]),
            None
        );
    }

    #[test]
    fn names_outside_or_nested_are_refused() {
        assert!(name_rule("disk1.vmdk").is_none());
        assert!(name_rule("../x").is_some());
        assert!(name_rule("/etc/passwd").is_some());
        assert!(name_rule("a/b").is_some());
        assert!(name_rule("").is_some());
        assert!(name_rule("a\\..\\b").is_some());
    }
}

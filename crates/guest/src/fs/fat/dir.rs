//! FAT directory entries: 8.3 short entries and VFAT long-file-name (LFN) entries
//! (fatgen103 §6 "Directory Structure", §7 "Long File Name Implementation").

/// Attribute bits (fatgen103 §6).
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
/// All of read-only, hidden, system, volume id: an LFN entry.
const ATTR_LONG_NAME: u8 = 0x0F;
/// NT case bits in byte 12: base name / extension stored in lower case.
const NT_LOWER_BASE: u8 = 0x08;
const NT_LOWER_EXT: u8 = 0x10;

/// One decoded directory entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The long name when a valid LFN run precedes the entry, else the 8.3 name.
    pub name: String,
    /// The 8.3 name (`PROGRA~1`), which Windows also resolves.
    pub short: String,
    pub is_dir: bool,
    pub first_cluster: u32,
    pub size: u32,
}

/// What one 32-byte slot held.
pub enum Slot {
    /// First byte 0: no further entries in this directory.
    End,
    Entry(Entry),
    /// The volume label entry (root directory only).
    Label(String),
    /// Deleted, LFN piece, `.`/`..`: nothing to report.
    Skip,
}

/// Decodes directory slots one by one, assembling LFN runs.
#[derive(Default)]
pub struct Decoder {
    /// LFN pieces by sequence number (1-based), up to 20 pieces of 13 UTF-16 units.
    lfn: Vec<[u16; 13]>,
    /// Sequence number expected next (counting down), 0 when no run is open.
    expect: u8,
    checksum: u8,
}

/// The LFN checksum of an 11-byte short name (fatgen103 §7).
pub fn short_name_checksum(name: &[u8]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

impl Decoder {
    /// Decodes the 32-byte slot `e`.
    pub fn slot(&mut self, e: &[u8]) -> Slot {
        match e[0] {
            0x00 => return Slot::End,
            0xE5 => {
                self.expect = 0;
                return Slot::Skip;
            }
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3F == ATTR_LONG_NAME {
            self.lfn_piece(e);
            return Slot::Skip;
        }
        let long = self.take_long(&e[0..11]);
        if attr & ATTR_VOLUME_ID != 0 {
            return Slot::Label(super::bpb::clean_label(&e[0..11]).unwrap_or_default());
        }
        if e[0] == b'.' && (e[1..11].iter().all(|&b| b == b' ') || &e[1..11] == b".         ") {
            return Slot::Skip;
        }
        let short = short_name(e);
        let name = long.unwrap_or_else(|| short.clone());
        let hi = u32::from(imgport_base::bytes::le16(e, 20));
        let lo = u32::from(imgport_base::bytes::le16(e, 26));
        Slot::Entry(Entry {
            name,
            short,
            is_dir: attr & ATTR_DIRECTORY != 0,
            first_cluster: hi << 16 | lo,
            size: imgport_base::bytes::le32(e, 28),
        })
    }

    fn lfn_piece(&mut self, e: &[u8]) {
        let ord = e[0];
        let seq = ord & 0x1F;
        if ord & 0x40 != 0 {
            // The last piece comes first; it opens a run of `seq` pieces.
            if seq == 0 || seq > 20 {
                self.expect = 0;
                return;
            }
            self.lfn = vec![[0xFFFF; 13]; usize::from(seq)];
            self.expect = seq;
            self.checksum = e[13];
        } else if self.expect == 0 || seq != self.expect || e[13] != self.checksum {
            self.expect = 0;
            return;
        }
        let mut units = [0u16; 13];
        let offs = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (u, &o) in units.iter_mut().zip(offs.iter()) {
            *u = imgport_base::bytes::le16(e, o);
        }
        self.lfn[usize::from(seq) - 1] = units;
        self.expect = seq - 1;
        if self.expect == 0 {
            // Complete: mark it ready with a sentinel of 0xFF as the expected sequence.
            self.expect = 0xFF;
        }
    }

    /// The long name of a complete run that belongs to `short` (checksum match).
    fn take_long(&mut self, short: &[u8]) -> Option<String> {
        let ready = self.expect == 0xFF && self.checksum == short_name_checksum(short);
        self.expect = 0;
        if !ready {
            return None;
        }
        let units: Vec<u16> = self
            .lfn
            .iter()
            .flatten()
            .copied()
            .take_while(|&u| u != 0 && u != 0xFFFF)
            .collect();
        let s = String::from_utf16(&units).ok()?;
        (!s.is_empty()).then_some(s)
    }
}

/// `NAME.EXT` from an 8.3 entry, honouring the NT lower-case bits.
fn short_name(e: &[u8]) -> String {
    let latin = |b: &[u8], lower: bool| -> String {
        let s: String = b.iter().map(|&c| char::from(c)).collect();
        let s = s.trim_end_matches(' ').to_string();
        if lower { s.to_lowercase() } else { s }
    };
    let mut base = e[0..8].to_vec();
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let base = latin(&base, e[12] & NT_LOWER_BASE != 0);
    let ext = latin(&e[8..11], e[12] & NT_LOWER_EXT != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

//! LVM2 physical volumes (lvm2 `format_text/layout.h`): the `LABELONE` label in one of
//! sectors 0–3, the PV header with its data and metadata areas, the metadata-area header and
//! the text-format VG metadata it points to. Linear logical volumes (one or more segments of
//! type `linear`, or `striped` with one stripe) on this PV are exposed as a [`ByteSource`];
//! other segment types (thin, raid, mirror, cache …) and LVs on other PVs are reported only.
//!
//! Owns: LVM on-disk structures. Must not look inside the volumes.

use imgport_base::bytes::{le32, le64};
use std::sync::Arc;

use imgport_image::source::{ByteSource, check_bounds};

mod error;
mod text;

pub use error::LvmError;
use error::corrupt;

use text::{Section, Value, get, int, parse, section, string};

const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// The metadata-area header occupies the first 512 bytes of the area.
const MDA_HEADER_SIZE: u64 = 512;
/// Largest metadata text read (lvm2's default metadata area is 1 MiB).
pub const MAX_METADATA: u64 = 1 << 20;
/// Most metadata areas and data areas listed in a PV header.
const MAX_AREAS: usize = 8;
/// Most segments of one LV.
const MAX_SEGMENTS: usize = 1024;

/// lvm2's `calc_crc`: reflected CRC-32 (polynomial 0xEDB88320) seeded with 0xF597A6CF and
/// no final XOR.
pub fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xf597_a6cf;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & 0u32.wrapping_sub(crc & 1));
        }
    }
    crc
}

fn read(pv: &dyn ByteSource, offset: u64, len: usize) -> Result<Vec<u8>, LvmError> {
    let mut buf = vec![0u8; len];
    pv.read_exact_at(&mut buf, offset)
        .map_err(|source| LvmError::Io { offset, source })?;
    Ok(buf)
}

/// One logical volume of the VG.
pub struct LogicalVolume {
    pub vg: String,
    pub name: String,
    /// Segment types, e.g. `["linear"]`, `["thin"]`.
    pub segment_types: Vec<String>,
    /// The LV's bytes, when it is linear and lies wholly on this PV.
    pub source: Option<Arc<dyn ByteSource>>,
    /// Why `source` is `None`.
    pub unreadable: Option<String>,
}

/// What one PV holds.
pub struct PhysicalVolume {
    /// PV UUID as lvm2 prints it (with dashes).
    pub uuid: String,
    pub vg: String,
    /// Sequence number of the metadata used (the highest valid one).
    pub seqno: u64,
    pub lvs: Vec<LogicalVolume>,
}

/// Formats a 32-character LVM id with lvm2's dashes (6-4-4-4-4-4-6).
fn dashed(id: &str) -> String {
    let mut out = String::new();
    let mut rest = id;
    for n in [6, 4, 4, 4, 4, 4, 6] {
        if rest.len() < n {
            return id.to_string();
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// Reads the PV on `pv`: label, header, every metadata area; parses the newest metadata.
pub fn open(pv: Arc<dyn ByteSource>) -> Result<PhysicalVolume, LvmError> {
    let head = read(&*pv, 0, (4 * 512).min(pv.size()) as usize)?;
    let label_at = (0..head.len() / 512)
        .map(|s| s * 512)
        .find(|&o| &head[o..o + 8] == LABEL_ID && &head[o + 24..o + 32] == LABEL_TYPE)
        .ok_or_else(|| corrupt("label", "no LABELONE/LVM2 001 label in sectors 0-3"))?;
    let label = &head[label_at..label_at + 512];
    let stored = le32(label, 16);
    let computed = lvm_crc(&label[20..]);
    if stored != computed {
        return Err(corrupt(
            "label",
            format!("CRC is {stored:#010x}, the label computes {computed:#010x}"),
        ));
    }
    let hdr = label_at + le32(label, 20) as usize;
    if hdr + 40 > head.len() {
        return Err(corrupt(
            "PV header",
            "offset points outside the label sectors",
        ));
    }
    let uuid = String::from_utf8_lossy(&head[hdr..hdr + 32]).into_owned();
    // disk_locn lists: data areas, then metadata areas, each ended by a zero entry.
    let mut at = hdr + 40;
    let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            if at + 16 > head.len() || list.len() > MAX_AREAS {
                return Err(corrupt(
                    "PV header",
                    "area list runs past the label sectors",
                ));
            }
            let (off, size) = (le64(&head, at), le64(&head, at + 8));
            at += 16;
            if off == 0 && size == 0 {
                break;
            }
            list.push((off, size));
        }
    }
    let mut best: Option<(u64, Section)> = None;
    let mut last_err = None;
    for &(mda, _) in &lists[1] {
        match read_mda(&*pv, mda) {
            Ok((seq, vg)) if best.as_ref().is_none_or(|(s, _)| seq > *s) => best = Some((seq, vg)),
            Ok(_) => {}
            Err(e) => last_err = Some(e),
        }
    }
    let Some((seqno, meta)) = best else {
        return Err(last_err.unwrap_or_else(|| corrupt("PV header", "no metadata area")));
    };
    build(pv, &uuid, seqno, &meta)
}

/// Reads the metadata area at `mda`: header checks, then the current text; returns the VG's
/// sequence number and its parsed text.
fn read_mda(pv: &dyn ByteSource, mda: u64) -> Result<(u64, Section), LvmError> {
    let h = read(pv, mda, MDA_HEADER_SIZE as usize)?;
    if &h[4..20] != MDA_MAGIC {
        return Err(corrupt("metadata area header", "bad magic"));
    }
    if le32(&h, 0) != lvm_crc(&h[4..]) {
        return Err(corrupt("metadata area header", "CRC mismatch"));
    }
    let start = le64(&h, 24);
    let size = le64(&h, 32);
    let (off, len, crc) = (le64(&h, 40), le64(&h, 48), le32(&h, 56));
    if start != mda || size <= MDA_HEADER_SIZE || off < MDA_HEADER_SIZE || off >= size {
        return Err(corrupt(
            "metadata area header",
            "inconsistent start/size/offset",
        ));
    }
    if len == 0 || len > MAX_METADATA || len > size - MDA_HEADER_SIZE {
        return Err(corrupt("metadata", format!("size {len} out of bounds")));
    }
    // The text is a ring buffer after the header: it may wrap to start + 512.
    let first = len.min(size - off);
    let text_at = start
        .checked_add(off)
        .ok_or_else(|| corrupt("metadata area header", "offset overflows"))?;
    let mut text = read(pv, text_at, first as usize)?;
    if first < len {
        text.extend(read(pv, start + MDA_HEADER_SIZE, (len - first) as usize)?);
    }
    if lvm_crc(&text) != crc {
        return Err(corrupt("metadata", "text CRC mismatch"));
    }
    // The stored text ends with a NUL byte.
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = String::from_utf8_lossy(&text[..end]);
    let root = parse(&text)?;
    let (_, vg) = root
        .iter()
        .find_map(|(k, v)| match v {
            Value::Section(s) => Some((k, s)),
            _ => None,
        })
        .ok_or_else(|| corrupt("metadata", "no volume group section"))?;
    let seq = int(vg, "seqno").unwrap_or(0) as u64;
    Ok((seq, root))
}

/// A linear mapping: LV bytes `[lv_start, lv_start + len)` are PV bytes from `pv_start`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    lv_start: u64,
    len: u64,
    pv_start: u64,
}

/// A linear LV read through its pieces on the PV.
pub struct LinearVolume {
    pv: Arc<dyn ByteSource>,
    pieces: Vec<Piece>,
    size: u64,
}

impl ByteSource for LinearVolume {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        check_bounds(self.size, buf.len(), offset)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let i = self.pieces.partition_point(|p| p.lv_start + p.len <= pos);
            let p = self.pieces[i];
            let n = ((p.lv_start + p.len - pos) as usize).min(buf.len() - done);
            self.pv
                .read_exact_at(&mut buf[done..done + n], p.pv_start + (pos - p.lv_start))?;
            done += n;
        }
        Ok(())
    }
}

fn build(
    pv: Arc<dyn ByteSource>,
    uuid: &str,
    seqno: u64,
    root: &Section,
) -> Result<PhysicalVolume, LvmError> {
    let (vg_name, vg) = root
        .iter()
        .find_map(|(k, v)| match v {
            Value::Section(s) => Some((k.clone(), s)),
            _ => None,
        })
        .ok_or_else(|| corrupt("metadata", "no volume group section"))?;
    let extent = int(vg, "extent_size")
        .filter(|&e| e > 0)
        .ok_or_else(|| corrupt("metadata", "missing extent_size"))? as u64
        * 512;
    let want = dashed(uuid);
    // The name of this PV in the VG (pv0, pv1 …) and where its extents start.
    let mut this = None;
    if let Some(pvs) = section(vg, "physical_volumes") {
        for (key, v) in pvs {
            if let Value::Section(s) = v
                && string(s, "id").is_some_and(|id| id.replace('-', "") == uuid)
            {
                this = Some((key.clone(), int(s, "pe_start").unwrap_or(0) as u64 * 512));
            }
        }
    }
    let (pv_key, pe_start) =
        this.ok_or_else(|| corrupt("metadata", format!("PV {want} is not in VG {vg_name}")))?;
    let mut lvs = Vec::new();
    for (name, v) in section(vg, "logical_volumes").into_iter().flatten() {
        let Value::Section(lv) = v else { continue };
        let mut types = Vec::new();
        let mut pieces = Vec::new();
        let mut why = None;
        let mut segs: Vec<&Section> = lv
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Section(s) if k.starts_with("segment") => Some(s),
                _ => None,
            })
            .take(MAX_SEGMENTS)
            .collect();
        segs.sort_by_key(|s| int(s, "start_extent").unwrap_or(0));
        let mut next = 0u64;
        for s in segs {
            let t = string(s, "type").unwrap_or("?").to_string();
            let start = int(s, "start_extent").unwrap_or(-1);
            let count = int(s, "extent_count").unwrap_or(0);
            let stripes = match get(s, "stripes") {
                Some(Value::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            let linear = (t == "striped" && int(s, "stripe_count") == Some(1)) || t == "linear";
            types.push(if linear {
                "linear".to_string()
            } else {
                t.clone()
            });
            if why.is_some() {
                continue;
            }
            if !linear {
                why = Some(format!("segment type {t} is not read"));
                continue;
            }
            match (&stripes[..], start, count) {
                ([Value::Str(p), Value::Int(pe)], s0, n) if s0 >= 0 && n > 0 && *pe >= 0 => {
                    if *p != pv_key {
                        why = Some(format!("a segment lies on another PV ({p})"));
                        continue;
                    }
                    if s0 as u64 != next {
                        why = Some("segments leave a gap".into());
                        continue;
                    }
                    let lv_start = (s0 as u64).checked_mul(extent);
                    let len = (n as u64).checked_mul(extent);
                    let pv_start = (*pe as u64)
                        .checked_mul(extent)
                        .and_then(|o| o.checked_add(pe_start));
                    match (lv_start, len, pv_start) {
                        (Some(l), Some(n_b), Some(p_b))
                            if p_b.checked_add(n_b).is_some_and(|e| e <= pv.size()) =>
                        {
                            pieces.push(Piece {
                                lv_start: l,
                                len: n_b,
                                pv_start: p_b,
                            });
                            next = s0 as u64 + n as u64;
                        }
                        _ => why = Some("a segment passes the end of the PV".into()),
                    }
                }
                _ => why = Some("a segment has malformed stripes".into()),
            }
        }
        if pieces.is_empty() && why.is_none() {
            why = Some("no segments".into());
        }
        let source: Option<Arc<dyn ByteSource>> = match &why {
            None => Some(Arc::new(LinearVolume {
                pv: pv.clone(),
                size: next * extent,
                pieces,
            })),
            Some(_) => None,
        };
        lvs.push(LogicalVolume {
            vg: vg_name.clone(),
            name: name.clone(),
            segment_types: types,
            source,
            unreadable: why,
        });
    }
    Ok(PhysicalVolume {
        uuid: want,
        vg: vg_name,
        seqno,
        lvs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const META: &str = r#"vg0 {
id = "abc"
seqno = 7
extent_size = 8   # 4 KiB extents
physical_volumes {
  pv0 { id = "AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG" pe_start = 16 pe_count = 20 }
}
logical_volumes {
  root {
    status = ["READ", "WRITE", "VISIBLE"]
    segment2 { start_extent = 2 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 9] }
    segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
  }
  thin { segment1 { start_extent = 0 extent_count = 1 type = "thin" } }
}
}
contents = "Text Format Volume Group"
version = 1
"#;

    /// A PV of 128 KiB: label in sector 1, one metadata area at 4 KiB holding META.
    pub(super) fn pv() -> Vec<u8> {
        let mut d = vec![0u8; 128 * 1024];
        let l = 512;
        d[l..l + 8].copy_from_slice(LABEL_ID);
        d[l + 8..l + 16].copy_from_slice(&1u64.to_le_bytes());
        d[l + 20..l + 24].copy_from_slice(&32u32.to_le_bytes());
        d[l + 24..l + 32].copy_from_slice(LABEL_TYPE);
        let h = l + 32;
        d[h..h + 32].copy_from_slice(b"AAAAAABBBBCCCCDDDDEEEEFFFFGGGGGG");
        d[h + 32..h + 40].copy_from_slice(&(128u64 * 1024).to_le_bytes());
        // data area (8 KiB, 0), end; metadata area (4 KiB, 4 KiB), end
        d[h + 40..h + 48].copy_from_slice(&8192u64.to_le_bytes());
        d[h + 72..h + 80].copy_from_slice(&4096u64.to_le_bytes());
        d[h + 80..h + 88].copy_from_slice(&4096u64.to_le_bytes());
        let crc = lvm_crc(&d[l + 20..l + 512]);
        d[l + 16..l + 20].copy_from_slice(&crc.to_le_bytes());
        let m = 4096;
        d[m + 4..m + 20].copy_from_slice(MDA_MAGIC);
        d[m + 20..m + 24].copy_from_slice(&1u32.to_le_bytes());
        d[m + 24..m + 32].copy_from_slice(&4096u64.to_le_bytes());
        d[m + 32..m + 40].copy_from_slice(&4096u64.to_le_bytes());
        d[m + 40..m + 48].copy_from_slice(&512u64.to_le_bytes());
        d[m + 48..m + 56].copy_from_slice(&(META.len() as u64).to_le_bytes());
        d[m + 56..m + 60].copy_from_slice(&lvm_crc(META.as_bytes()).to_le_bytes());
        let crc = lvm_crc(&d[m + 4..m + 512]);
        d[m..m + 4].copy_from_slice(&crc.to_le_bytes());
        d[m + 512..m + 512 + META.len()].copy_from_slice(META.as_bytes());
        // mark the LV's extents: PV extent e starts at 8 KiB + e * 4 KiB
        for e in 0..20u8 {
            let at = 8192 + e as usize * 4096;
            d[at] = e;
        }
        d
    }

    #[test]
    fn linear_lv_over_two_segments() {
        let pv = open(Arc::new(pv())).unwrap();
        assert_eq!(pv.vg, "vg0");
        assert_eq!(pv.seqno, 7);
        assert_eq!(pv.uuid, "AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG");
        let root = &pv.lvs[0];
        assert_eq!(root.name, "root");
        assert_eq!(root.segment_types, ["linear", "linear"]);
        let src = root.source.as_ref().unwrap();
        assert_eq!(src.size(), 3 * 4096);
        let mut b = [0u8; 1];
        for (lv_extent, pv_extent) in [(0u64, 0u8), (1, 1), (2, 9)] {
            src.read_exact_at(&mut b, lv_extent * 4096).unwrap();
            assert_eq!(b[0], pv_extent);
        }
        // a read across the segment boundary
        let mut two = vec![0u8; 4097];
        src.read_exact_at(&mut two, 4096).unwrap();
        assert_eq!((two[0], two[4096]), (1, 9));
        assert!(src.read_exact_at(&mut b, 3 * 4096).is_err());
        let thin = &pv.lvs[1];
        assert!(thin.source.is_none());
        assert!(thin.unreadable.as_deref().unwrap().contains("thin"));
    }

    #[test]
    fn bad_crcs_and_text_are_errors() {
        let mut d = pv();
        d[512 + 40] ^= 1;
        assert!(open(Arc::new(d)).err().unwrap().to_string().contains("CRC"));
        let mut d = pv();
        d[4096 + 512 + 3] ^= 1;
        assert!(open(Arc::new(d)).is_err());
        assert!(parse("a { b = ").is_err());
        assert!(parse(&"x {".repeat(100)).is_err());
        assert!(parse("a = [1, \"two\", [3]]\n# c\nb { }").is_ok());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// Mutated PVs and metadata texts give errors or partial results, never a panic.
    #[test]
    fn mutated_pvs_do_not_panic() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..300 {
            let mut d = tests::pv();
            for _ in 0..8 {
                let at = rng.usize(..8192);
                d[at] = rng.u8(..);
            }
            let _ = open(Arc::new(d));
            let text: Vec<u8> = tests::META
                .bytes()
                .map(|b| if rng.u8(..) < 8 { rng.u8(..) } else { b })
                .collect();
            let _ = parse(&String::from_utf8_lossy(&text));
        }
    }
}

//! The internal snapshot table (qcow2.rst "Snapshots"): counted and named for the report,
//! never followed (only the active L1 table is read and imported). Reads are bounded: at
//! most [`MAX_LISTED`] entries, each of at most 40 + 1024 + 2 × 65535 bytes.

use super::details::{MAX_LISTED, SnapshotInfo, Snapshots};
use super::extensions::escaped;
use super::header::{Header, off};
use crate::{ImageError, ImageFile, Severity, Verdict};
use imgport_base::bytes::{be32, be64};

/// QEMU's `QCOW_MAX_SNAPSHOT_EXTRA_DATA`.
pub const MAX_EXTRA_DATA: u32 = 1024;
/// Fixed part of a snapshot table entry.
const ENTRY_HEADER: usize = 40;

/// Reads the first entries of the snapshot table (the header already checked the table
/// offset) and reports their presence; a table that runs past the file is refused.
pub fn read(file: &ImageFile, h: &Header, v: &mut Verdict<'_>) -> Result<Snapshots, ImageError> {
    let mut s = Snapshots {
        count: h.nb_snapshots,
        listed: Vec::new(),
        truncated: h.nb_snapshots > MAX_LISTED,
        regions: Vec::new(),
    };
    if h.nb_snapshots == 0 {
        return Ok(s);
    }
    let size = file.size();
    let mut pos = h.snapshots_offset;
    for i in 0..h.nb_snapshots.min(MAX_LISTED) {
        let field = format!("snapshot table entry {i}");
        if pos
            .checked_add(ENTRY_HEADER as u64)
            .is_none_or(|e| e > size)
        {
            v.refuse(
                "qcow2.snapshot_table",
                &field,
                pos,
                format!("the entry passes the end of the file ({size} bytes)"),
            );
            return Ok(s);
        }
        let mut e = [0u8; ENTRY_HEADER];
        file.read_exact_at(&mut e, pos)?;
        let id_len = u32::from(imgport_base::bytes::be16(&e, 12));
        let name_len = u32::from(imgport_base::bytes::be16(&e, 14));
        let extra = be32(&e, 36);
        if extra > MAX_EXTRA_DATA {
            v.refuse(
                "qcow2.snapshot_table",
                &field,
                pos + 36,
                format!("{extra} bytes of extra data pass QEMU's limit of {MAX_EXTRA_DATA}"),
            );
            return Ok(s);
        }
        let rest = u64::from(extra + id_len + name_len);
        let body = pos + ENTRY_HEADER as u64;
        if body + rest > size {
            v.refuse(
                "qcow2.snapshot_table",
                &field,
                pos,
                format!("the entry's {rest} bytes of extra data, ID and name pass the end of the file ({size} bytes)"),
            );
            return Ok(s);
        }
        let mut b = vec![0u8; rest as usize];
        file.read_exact_at(&mut b, body)?;
        let (extra_b, names) = b.split_at(extra as usize);
        let (id, name) = names.split_at(id_len as usize);
        let vm_state_size = if extra >= 8 {
            be64(extra_b, 0)
        } else {
            u64::from(be32(&e, 32))
        };
        let l1_offset = be64(&e, 0);
        let l1_bytes = u64::from(be32(&e, 8)) * 8;
        if l1_bytes > 0 {
            s.regions
                .push((l1_offset, l1_bytes, format!("the L1 table of snapshot {i}")));
        }
        s.listed.push(SnapshotInfo {
            id: escaped(id),
            name: escaped(name),
            date: be32(&e, 16),
            vm_state_size,
            disk_size: (extra >= 16).then(|| be64(extra_b, 8)),
        });
        pos = (body + rest).next_multiple_of(8);
    }
    s.regions.push((
        h.snapshots_offset,
        pos - h.snapshots_offset,
        "the snapshot table".into(),
    ));
    let names: Vec<String> = s
        .listed
        .iter()
        .take(8)
        .map(|x| format!("\"{}\"", x.name))
        .collect();
    v.note(
        Severity::Info,
        "qcow2.snapshots",
        "nb_snapshots",
        off::NB_SNAPSHOTS,
        format!(
            "the image holds {} internal snapshot(s) ({}{}); only the active state is read and imported",
            h.nb_snapshots,
            names.join(", "),
            if h.nb_snapshots as usize > names.len() {
                ", …"
            } else {
                ""
            }
        ),
    );
    Ok(s)
}

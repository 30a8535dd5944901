//! QCOW2 v3 output layout (qcow2 spec, QEMU `docs/interop/qcow2.rst`): header cluster, L1
//! table, refcount table, refcount blocks, L2 tables, then the data clusters in virtual order.
//! The header and entry bytes come from [`imgport_image::qcow2::write`], beside the reader;
//! this file plans where they go.
//! 64 KiB clusters, 16-bit refcounts, no compression, no extensions. Only clusters that hold
//! data are allocated; L2 tables only where they map one. L2 tables and refcount blocks are
//! generated on demand from the cluster runs, so planning memory grows with the extents only.

use std::sync::Arc;

use super::segments::{
    Layout, LayoutError, OutputFormat, Piece, Qcow2Tables, SECTOR, SegmentBuilder, round_up,
    unit_runs,
};
use imgport_image::Extent;
use imgport_image::qcow2::write::{HEADER_LEN, HeaderFields, MAX_L1_BYTES, header, table_entry};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 8-byte L2 entries per cluster.
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts (refcount_order 4) per refcount block.
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;

/// A run of consecutive virtual clusters stored at consecutive host clusters.
#[derive(Debug, Clone, Copy)]
struct Run {
    virt: u64,
    host: u64,
    count: u64,
}

/// What the generated tables of a QCOW2 layout need to know.
#[derive(Debug, Clone)]
pub(super) struct Qcow2Map {
    runs: Vec<Run>,
    total_clusters: u64,
}

impl Qcow2Map {
    fn host_of(&self, virt: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.virt + r.count <= virt);
        let r = self.runs.get(i)?;
        (r.virt <= virt).then(|| r.host + (virt - r.virt))
    }
}

impl Qcow2Tables for Qcow2Map {
    /// Bytes `[skip, skip + dst.len())` of L2 table `table`.
    fn fill_l2(&self, table: u64, skip: u64, dst: &mut [u8]) {
        let mut i = 0usize;
        let mut off = skip;
        while i < dst.len() {
            let entry = off / 8;
            let within = (off % 8) as usize;
            let value = self
                .host_of(table * L2_ENTRIES + entry)
                .map_or(0, |h| table_entry(h << CLUSTER_BITS));
            let bytes = value.to_be_bytes();
            let n = (8 - within).min(dst.len() - i);
            dst[i..i + n].copy_from_slice(&bytes[within..within + n]);
            i += n;
            off += n as u64;
        }
    }

    /// Bytes `[skip, skip + dst.len())` of refcount block `block`: 1 for every cluster of the
    /// file, 0 past its end (big-endian u16 entries).
    fn fill_refcount(&self, block: u64, skip: u64, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            let j = skip + i as u64;
            let cluster = block * REFCOUNTS_PER_BLOCK + j / 2;
            *b = u8::from(j % 2 == 1 && cluster < self.total_clusters);
        }
    }
}

/// Plans a QCOW2 v3 file.
pub(super) fn plan(source_size: u64, data: &[Extent]) -> Result<Layout, LayoutError> {
    let too_large = || LayoutError::TooLarge {
        format: "qcow2",
        size: source_size,
        max: MAX_L1_BYTES / 8 * L2_ENTRIES * CLUSTER,
    };
    let size = round_up(source_size, SECTOR).ok_or_else(too_large)?;
    let mut notices = Vec::new();
    if size != source_size {
        notices.push(format!(
            "virtual size rounded up from {source_size} to {size} bytes (a whole number of 512-byte sectors); the padding reads as zeros"
        ));
    }
    let vclusters = size.div_ceil(CLUSTER);
    let l1_entries = vclusters.div_ceil(L2_ENTRIES);
    if l1_entries * 8 > MAX_L1_BYTES {
        return Err(too_large());
    }
    let l1_clusters = (l1_entries * 8).div_ceil(CLUSTER).max(1);

    let cluster_runs = unit_runs(data, CLUSTER);
    let n_data: u64 = cluster_runs.iter().map(|r| r.1).sum();
    let mut tables: Vec<u64> = Vec::new();
    for &(start, count) in &cluster_runs {
        for t in start / L2_ENTRIES..=(start + count - 1) / L2_ENTRIES {
            if tables.last() != Some(&t) {
                tables.push(t);
            }
        }
    }
    let n_l2 = tables.len() as u64;

    // Refcount blocks must count themselves and the refcount table: iterate to a fixed point.
    let fixed = 1 + l1_clusters + n_l2 + n_data;
    let (mut rt, mut rb) = (1u64, 1u64);
    loop {
        let total = fixed + rt + rb;
        let rb2 = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let rt2 = (rb2 * 8).div_ceil(CLUSTER).max(1);
        if (rt2, rb2) == (rt, rb) {
            break;
        }
        (rt, rb) = (rt2, rb2);
    }
    let total_clusters = fixed + rt + rb;
    let l1_start = 1;
    let rt_start = l1_start + l1_clusters;
    let rb_start = rt_start + rt;
    let l2_start = rb_start + rb;
    let data_start = l2_start + n_l2;

    let mut runs = Vec::with_capacity(cluster_runs.len());
    let mut host = data_start;
    for &(virt, count) in &cluster_runs {
        runs.push(Run { virt, host, count });
        host += count;
    }

    let mut l1 = vec![0u8; (l1_entries * 8) as usize];
    for (k, &t) in tables.iter().enumerate() {
        let off = table_entry((l2_start + k as u64) << CLUSTER_BITS);
        let i = t as usize * 8;
        if let Some(slot) = l1.get_mut(i..i + 8) {
            slot.copy_from_slice(&off.to_be_bytes());
        }
    }
    let mut rtable = vec![0u8; (rb * 8) as usize];
    for k in 0..rb {
        let i = k as usize * 8;
        rtable[i..i + 8].copy_from_slice(&((rb_start + k) << CLUSTER_BITS).to_be_bytes());
    }

    let hdr = header(&HeaderFields {
        size,
        cluster_bits: CLUSTER_BITS,
        l1_size: l1_entries as u32,
        l1_table_offset: l1_start << CLUSTER_BITS,
        refcount_table_offset: rt_start << CLUSTER_BITS,
        refcount_table_clusters: rt as u32,
    });
    let mut b = SegmentBuilder::new();
    let pad = |b: &mut SegmentBuilder, used: u64, clusters: u64| {
        b.push(clusters * CLUSTER - used, Piece::Zero);
    };
    b.bytes(Arc::new(hdr));
    pad(&mut b, HEADER_LEN as u64, 1);
    let l1_len = l1.len() as u64;
    b.bytes(Arc::from(l1));
    pad(&mut b, l1_len, l1_clusters);
    let rt_len = rtable.len() as u64;
    b.bytes(Arc::from(rtable));
    pad(&mut b, rt_len, rt);
    for block in 0..rb {
        b.push(CLUSTER, Piece::Qcow2Refcount { block });
    }
    for &table in &tables {
        b.push(CLUSTER, Piece::Qcow2L2 { table });
    }
    let mut cursor = 0;
    for r in &runs {
        b.virtual_range(
            data,
            &mut cursor,
            r.virt * CLUSTER,
            (r.virt + r.count) * CLUSTER,
        );
    }
    let mut layout = b.layout(OutputFormat::Qcow2, source_size, size, notices);
    debug_assert_eq!(layout.size, total_clusters * CLUSTER);
    layout.tables = Some(Arc::new(Qcow2Map {
        runs,
        total_clusters,
    }));
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_image::ExtentKind;

    #[test]
    fn tables_map_data_clusters() {
        let data = [
            Extent {
                offset: 0,
                length: 10,
                kind: ExtentKind::Data,
            },
            Extent {
                offset: 5 * CLUSTER * L2_ENTRIES + 3,
                length: CLUSTER,
                kind: ExtentKind::Data,
            },
        ];
        let l = plan(6 * CLUSTER * L2_ENTRIES, &data).unwrap();
        let map = l.tables.as_ref().unwrap();
        // header, L1, refcount table, 1 refcount block, 2 L2 tables, 3 data clusters
        assert_eq!(l.size, (1 + 1 + 1 + 1 + 2 + 3) * CLUSTER);
        let mut e = [0u8; 8];
        map.fill_l2(0, 0, &mut e);
        assert_eq!(u64::from_be_bytes(e), table_entry(6 << CLUSTER_BITS));
        map.fill_l2(5, 8, &mut e);
        assert_eq!(u64::from_be_bytes(e), table_entry(8 << CLUSTER_BITS));
        map.fill_l2(5, 16, &mut e);
        assert_eq!(u64::from_be_bytes(e), 0);
        let mut r = [0u8; 20];
        map.fill_refcount(0, 0, &mut r);
        assert_eq!(r[..18], [0, 1].repeat(9)[..]);
        assert_eq!(r[18..], [0, 0]);
    }
}

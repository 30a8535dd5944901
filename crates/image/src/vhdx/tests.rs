//! Unit tests: one synthetic VHDX built in memory (VHDX spec v1.00 layout) and one change
//! per rule.

use super::spec::*;
use super::*;
use crate::test_util::{open_bytes, refused};
use crate::{DiskImage, ExtentKind, Severity};

const LOG: usize = 1 << 20;
const BAT: usize = 2 << 20;
const META: usize = 3 << 20;
const DATA: usize = 4 << 20;

/// A dynamic VHDX of 4 MiB in 1 MiB blocks: block 0 present (0x11) at 4 MiB, block 1 ZERO,
/// block 2 not present, block 3 present (0x33) at 5 MiB. Header 2 is current (sequence 2).
struct Built(Vec<u8>);

impl Built {
    fn new() -> Self {
        let mut d = vec![0u8; 6 << 20];
        d[..8].copy_from_slice(FILE_SIGNATURE);
        for (i, off) in HEADER_OFFSETS.iter().enumerate() {
            let h = *off as usize;
            d[h..h + 4].copy_from_slice(HEADER_SIGNATURE);
            d[h + 8..h + 16].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            d[h + 66..h + 68].copy_from_slice(&1u16.to_le_bytes());
            d[h + 68..h + 72].copy_from_slice(&(LOG as u32).to_le_bytes());
            d[h + 72..h + 80].copy_from_slice(&(LOG as u64).to_le_bytes());
        }
        let mut b = Built(d);
        b.set_regions(&[
            (REGION_BAT, BAT as u64, 1 << 20, 1),
            (REGION_METADATA, META as u64, 1 << 20, 1),
        ]);
        b.set_items(&[
            (
                ITEM_FILE_PARAMETERS,
                4,
                [&(1u32 << 20).to_le_bytes()[..], &[0; 4]].concat(),
            ),
            (
                ITEM_VIRTUAL_DISK_SIZE,
                4,
                (4u64 << 20).to_le_bytes().to_vec(),
            ),
            (ITEM_VIRTUAL_DISK_ID, 4, vec![7; 16]),
            (ITEM_LOGICAL_SECTOR_SIZE, 4, 512u32.to_le_bytes().to_vec()),
            (ITEM_PHYSICAL_SECTOR_SIZE, 4, 4096u32.to_le_bytes().to_vec()),
        ]);
        b.bat(0, (4 << 20) | 6);
        b.bat(1, 2);
        b.bat(3, (5 << 20) | 6);
        b.0[DATA..DATA + (1 << 20)].fill(0x11);
        b.0[DATA + (1 << 20)..].fill(0x33);
        b.reseal();
        b
    }

    fn bat(&mut self, index: usize, entry: u64) {
        let at = BAT + 8 * index;
        self.0[at..at + 8].copy_from_slice(&entry.to_le_bytes());
    }

    fn set_regions(&mut self, regions: &[(Guid, u64, u32, u32)]) {
        for t in REGION_TABLE_OFFSETS {
            let t = t as usize;
            self.0[t..t + REGION_TABLE_LEN].fill(0);
            self.0[t..t + 4].copy_from_slice(REGION_SIGNATURE);
            self.0[t + 8..t + 12].copy_from_slice(&(regions.len() as u32).to_le_bytes());
            for (i, (g, off, len, req)) in regions.iter().enumerate() {
                let e = t + 16 + 32 * i;
                self.0[e..e + 16].copy_from_slice(g);
                self.0[e + 16..e + 24].copy_from_slice(&off.to_le_bytes());
                self.0[e + 24..e + 28].copy_from_slice(&len.to_le_bytes());
                self.0[e + 28..e + 32].copy_from_slice(&req.to_le_bytes());
            }
        }
    }

    /// Items (GUID, flags, bytes) laid out from 64 KiB into the metadata region.
    fn set_items(&mut self, items: &[(Guid, u32, Vec<u8>)]) {
        self.0[META..META + (1 << 20)].fill(0);
        self.0[META..META + 8].copy_from_slice(METADATA_SIGNATURE);
        self.0[META + 10..META + 12].copy_from_slice(&(items.len() as u16).to_le_bytes());
        let mut off = 64 << 10;
        for (i, (g, flags, bytes)) in items.iter().enumerate() {
            let e = META + 32 + 32 * i;
            self.0[e..e + 16].copy_from_slice(g);
            self.0[e + 16..e + 20].copy_from_slice(&(off as u32).to_le_bytes());
            self.0[e + 20..e + 24].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            self.0[e + 24..e + 28].copy_from_slice(&flags.to_le_bytes());
            self.0[META + off..META + off + bytes.len()].copy_from_slice(bytes);
            off += 4096;
        }
    }

    /// Recomputes every header and region table checksum.
    fn reseal(&mut self) {
        for h in HEADER_OFFSETS {
            let h = h as usize;
            let sum = crc32c_without(&self.0[h..h + HEADER_LEN], 4);
            self.0[h + 4..h + 8].copy_from_slice(&sum.to_le_bytes());
        }
        for t in REGION_TABLE_OFFSETS {
            let t = t as usize;
            let sum = crc32c_without(&self.0[t..t + REGION_TABLE_LEN], 4);
            self.0[t + 4..t + 8].copy_from_slice(&sum.to_le_bytes());
        }
    }

    /// Sets `bytes` at `at` and reseals.
    fn poke(mut self, at: usize, bytes: &[u8]) -> Self {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
        self.reseal();
        self
    }
}

fn open(b: &Built) -> (Option<VhdxImage>, Vec<crate::Finding>) {
    open_bytes(&b.0, VhdxImage::open)
}

fn refuses(b: &Built, code: &str) -> crate::Finding {
    refused(&b.0, VhdxImage::open, code)
}

/// Offset of metadata item `n`'s value (items are 4 KiB apart from 64 KiB).
fn item(n: usize) -> usize {
    META + (64 << 10) + 4096 * n
}

#[test]
fn reads_present_zero_and_absent_blocks() {
    let (img, findings) = open(&Built::new());
    let img = img.unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(img.virtual_size(), 4 << 20);
    assert_eq!(img.subformat(), "dynamic");
    let mut buf = vec![0xffu8; 4 << 20];
    img.read_at(&mut buf, 0).unwrap();
    assert!(buf[..1 << 20].iter().all(|&b| b == 0x11));
    assert!(buf[1 << 20..3 << 20].iter().all(|&b| b == 0));
    assert!(buf[3 << 20..].iter().all(|&b| b == 0x33));
    let kinds: Vec<_> = img.extents().unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            ExtentKind::Data,
            ExtentKind::Zero,
            ExtentKind::Unallocated,
            ExtentKind::Data
        ]
    );
    let d = img.details();
    assert_eq!(
        (d.header_offset, d.present_blocks, d.zero_blocks),
        (128 << 10, 2, 1)
    );
    assert_eq!(d.physical_sector_size, 4096);
}

#[test]
fn the_current_header_is_the_valid_one_with_the_larger_sequence() {
    // Header 1 with the larger sequence is current.
    let b = Built::new().poke(HEADER_OFFSETS[0] as usize + 8, &9u64.to_le_bytes());
    assert_eq!(open(&b).0.unwrap().details().header_offset, 64 << 10);
    // A bad checksum on header 2 leaves header 1, with a note.
    let mut b = Built::new();
    b.0[(128 << 10) + 100] = 1;
    let (img, findings) = open(&b);
    assert_eq!(img.unwrap().details().header_offset, 64 << 10);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "vhdx.header_copy_invalid")
    );
    // Both bad: refused.
    b.0[(64 << 10) + 100] = 1;
    refuses(&b, "vhdx.header");
}

#[test]
fn header_version_and_log_location_are_checked() {
    refuses(
        &Built::new().poke((128 << 10) + 66, &2u16.to_le_bytes()),
        "vhdx.version",
    );
    refuses(
        &Built::new().poke((128 << 10) + 64, &1u16.to_le_bytes()),
        "vhdx.log_version",
    );
    refuses(
        &Built::new().poke((128 << 10) + 72, &(u64::MAX - 4095).to_le_bytes()),
        "vhdx.log_location",
    );
}

#[test]
fn the_second_region_table_stands_in_for_a_corrupt_first() {
    let mut b = Built::new();
    b.0[(192 << 10) + 100] = 1;
    let (img, _) = open(&b);
    assert_eq!(img.unwrap().details().region_table_offset, 256 << 10);
    b.0[(256 << 10) + 100] = 1;
    refuses(&b, "vhdx.region_table");
}

#[test]
fn region_entries_are_bounded_located_and_known() {
    let mut b = Built::new();
    b.0[(192 << 10) + 8..(192 << 10) + 12].copy_from_slice(&2048u32.to_le_bytes());
    b.0[(256 << 10) + 100] = 1;
    b.reseal();
    refuses(&b, "vhdx.region_count");
    const OTHER: Guid = [9; 16];
    let with = |regions: &[(Guid, u64, u32, u32)]| {
        let mut b = Built::new();
        b.set_regions(regions);
        b.reseal();
        b
    };
    let bat = (REGION_BAT, BAT as u64, 1 << 20, 1);
    let meta = (REGION_METADATA, META as u64, 1 << 20, 1);
    // An unknown region is fine unless marked required.
    assert!(
        open(&with(&[bat, meta, (OTHER, 5 << 20, 1 << 20, 0)]))
            .0
            .is_some()
    );
    refuses(
        &with(&[bat, meta, (OTHER, 5 << 20, 1 << 20, 1)]),
        "vhdx.region_unknown_required",
    );
    refuses(
        &with(&[bat, (REGION_METADATA, 6 << 20, 1 << 20, 1)]),
        "vhdx.region_location",
    );
    refuses(
        &with(&[bat, (REGION_METADATA, META as u64 + 4096, 1 << 20, 1)]),
        "vhdx.region_location",
    );
    refuses(
        &with(&[bat, (REGION_METADATA, LOG as u64, 1 << 20, 1)]),
        "vhdx.region_overlap",
    );
    refuses(
        &with(&[bat, meta, (REGION_BAT, 5 << 20, 1 << 20, 1)]),
        "vhdx.region_duplicate",
    );
    refuses(&with(&[bat]), "vhdx.region_missing");
}

#[test]
fn metadata_table_and_items_are_bounded_and_known() {
    refuses(
        &Built::new().poke(META + 10, &2048u16.to_le_bytes()),
        "vhdx.metadata_count",
    );
    refuses(
        &Built::new().poke(META, b"metadatX"),
        "vhdx.metadata_signature",
    );
    // Entry 1 (Virtual Disk Size): length past 1 MiB, then offset into the table.
    refuses(
        &Built::new().poke(META + 32 + 32 + 20, &((1u32 << 20) + 1).to_le_bytes()),
        "vhdx.metadata_item_location",
    );
    refuses(
        &Built::new().poke(META + 32 + 32 + 16, &64u32.to_le_bytes()),
        "vhdx.metadata_item_location",
    );
    refuses(
        &Built::new().poke(META + 32 + 32 + 20, &4u32.to_le_bytes()),
        "vhdx.metadata_item_length",
    );
    // Entry 2 (Virtual Disk ID) becomes an unknown item, required or not.
    let unknown = |flags: u32| {
        Built::new()
            .poke(META + 32 + 64, &[9; 16])
            .poke(META + 32 + 64 + 24, &flags.to_le_bytes())
    };
    assert!(open(&unknown(0)).0.is_some());
    refuses(&unknown(4), "vhdx.metadata_unknown_required");
    // Entry 1 becomes a second File Parameters entry; entry 1's size item then is missing.
    refuses(
        &Built::new().poke(META + 32 + 32, &ITEM_FILE_PARAMETERS),
        "vhdx.metadata_duplicate",
    );
    refuses(
        &Built::new()
            .poke(META + 32 + 32, &[9; 16])
            .poke(META + 32 + 32 + 24, &0u32.to_le_bytes()),
        "vhdx.metadata_missing",
    );
}

#[test]
fn system_item_values_are_checked() {
    refuses(
        &Built::new().poke(item(0) + 4, &2u32.to_le_bytes()),
        "vhdx.differencing",
    );
    refuses(
        &Built::new().poke(item(0), &(3u32 << 20).to_le_bytes()),
        "vhdx.block_size",
    );
    refuses(
        &Built::new().poke(item(0), &(512u32 << 20).to_le_bytes()),
        "vhdx.block_size",
    );
    refuses(
        &Built::new().poke(item(3), &1024u32.to_le_bytes()),
        "vhdx.sector_size",
    );
    refuses(
        &Built::new().poke(item(1), &0u64.to_le_bytes()),
        "vhdx.virtual_size",
    );
    refuses(
        &Built::new().poke(item(1), &(65u64 << 40).to_le_bytes()),
        "vhdx.virtual_size",
    );
    // 4 MiB + 512 is not a multiple of a 4096-byte logical sector.
    let b = Built::new()
        .poke(item(3), &4096u32.to_le_bytes())
        .poke(item(1), &((4u64 << 20) + 512).to_le_bytes());
    refuses(&b, "vhdx.virtual_size");
    // LeaveBlocksAllocated is a fixed disk.
    let b = Built::new().poke(item(0) + 4, &1u32.to_le_bytes());
    assert_eq!(open(&b).0.unwrap().subformat(), "fixed");
}

#[test]
fn a_parent_locator_is_refused() {
    let b = Built::new().poke(META + 32 + 64, &ITEM_PARENT_LOCATOR);
    refuses(&b, "vhdx.parent_locator");
}

#[test]
fn bat_entries_are_checked_in_the_file_and_apart() {
    let bat = |index: usize, entry: u64| {
        let mut b = Built::new();
        b.bat(index, entry);
        b
    };
    refuses(&bat(2, (6 << 20) | 6), "vhdx.bat_entry_past_eof");
    refuses(&bat(2, !0xfffff_u64 | 6), "vhdx.bat_entry_past_eof");
    refuses(&bat(2, 6), "vhdx.bat_entry_past_eof");
    refuses(&bat(2, (4 << 20) | 6), "vhdx.bat_overlap");
    refuses(&bat(2, (3 << 20) | 6), "vhdx.bat_overlap");
    refuses(&bat(2, (1 << 20) | 6), "vhdx.bat_overlap");
    refuses(&bat(2, 7), "vhdx.bat_partially_present");
    refuses(&bat(2, 4), "vhdx.bat_state");
    // UNDEFINED and UNMAPPED read as holes.
    for st in [1, 3] {
        let (img, f) = open(&bat(2, st));
        let kinds = img.unwrap_or_else(|| panic!("{f:?}")).extents().unwrap();
        assert_eq!(kinds[2].kind, ExtentKind::Unallocated);
    }
}

#[test]
fn the_bat_must_hold_every_entry_and_stay_bounded() {
    // 2 GiB in 1 MiB blocks needs 2048 entries (16 KiB): fits. 1 TiB needs 8 MiB: does not.
    assert!(
        open(&Built::new().poke(item(1), &(2u64 << 30).to_le_bytes()))
            .0
            .is_some()
    );
    refuses(
        &Built::new().poke(item(1), &(1u64 << 40).to_le_bytes()),
        "vhdx.bat_region_small",
    );
    refuses(
        &Built::new().poke(item(1), &(64u64 << 40).to_le_bytes()),
        "vhdx.bat_too_large",
    );
}

#[test]
fn a_sector_bitmap_entry_follows_each_chunk() {
    // 512-byte sectors, 1 MiB blocks: 4096 blocks per chunk. Block 4096 is BAT entry 4097;
    // entry 4096 is the chunk's sector bitmap, which must be 0 or 6 and is never data.
    let mut b = Built::new().poke(item(1), &((4097u64) << 20).to_le_bytes());
    b.bat(4097, (5 << 20) | 6);
    b.bat(3, 0);
    let (img, f) = open(&b);
    let img = img.unwrap_or_else(|| panic!("{f:?}"));
    assert_eq!(img.details().chunk_ratio, 4096);
    let mut buf = [0u8; 16];
    img.read_at(&mut buf, 4096 << 20).unwrap();
    assert_eq!(buf, [0x33; 16]);
    b.bat(4096, 2);
    refuses(&b, "vhdx.bat_state");
    b.bat(4096, (9 << 20) | 6);
    refuses(&b, "vhdx.bat_entry_past_eof");
    // With 4096-byte sectors a chunk is 32768 blocks: entry 4096 is block 4096's.
    let mut b = Built::new()
        .poke(item(3), &4096u32.to_le_bytes())
        .poke(item(1), &((4097u64) << 20).to_le_bytes());
    b.bat(3, 0);
    b.bat(4096, (5 << 20) | 6);
    let img = open(&b).0.unwrap();
    assert_eq!(img.details().chunk_ratio, 32768);
    img.read_at(&mut buf, 4096 << 20).unwrap();
    assert_eq!(buf, [0x33; 16]);
}

/// Writes a log entry of `guid` at the log's start: one 4 KiB sector, checksum `ok` or not.
fn with_log_entry(b: Built, guid: Guid, ok: bool) -> Built {
    let mut e = vec![0u8; 4096];
    e[..4].copy_from_slice(LOG_ENTRY_SIGNATURE);
    e[8..12].copy_from_slice(&4096u32.to_le_bytes());
    e[16..24].copy_from_slice(&1u64.to_le_bytes());
    e[32..48].copy_from_slice(&guid);
    let sum = crc32c_without(&e, 4) ^ u32::from(!ok);
    e[4..8].copy_from_slice(&sum.to_le_bytes());
    let mut b = b.poke(LOG, &e);
    for h in HEADER_OFFSETS {
        let h = h as usize + head::LOG_GUID;
        b.0[h..h + 16].copy_from_slice(&[5; 16]);
    }
    b.reseal();
    b
}

#[test]
fn a_log_with_a_valid_entry_is_refused_never_ignored() {
    let f = refuses(
        &with_log_entry(Built::new(), [5; 16], true),
        "vhdx.log_replay",
    );
    assert!(f.message.contains("replay"), "{f:?}");
    // A bad checksum or another GUID is no entry: the log is empty.
    for b in [
        with_log_entry(Built::new(), [5; 16], false),
        with_log_entry(Built::new(), [6; 16], true),
    ] {
        let (img, findings) = open(&b);
        assert!(img.is_some(), "{findings:?}");
        assert!(
            findings
                .iter()
                .any(|f| f.code == "vhdx.log_empty" && f.severity == Severity::Info)
        );
    }
}

#[test]
fn guids_read_as_the_spec_writes_them() {
    assert_eq!(
        guid_text(&REGION_BAT),
        "2DC27766-F623-4200-9D64-115E9BFD4A08"
    );
    assert_eq!(
        guid_text(&ITEM_VIRTUAL_DISK_SIZE),
        "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
    );
}

#[test]
fn more_present_blocks_than_the_file_holds_are_refused_early() {
    // 64 blocks all pointing at one stored block of a 6 MiB file.
    let mut b = Built::new().poke(item(1), &(64u64 << 20).to_le_bytes());
    for i in 0..64 {
        b.bat(i, (4 << 20) | 6);
    }
    let f = refuses(&b, "vhdx.bat_overlap");
    assert!(f.message.contains("share storage"), "{f:?}");
}

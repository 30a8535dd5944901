//! Byte-fixture tests: a tiny hive builder (test-only), positive reads, one negative test per
//! validation rule, and a hostile sweep of random byte flips.

use super::*;

/// Builds hive bins cell by cell (test-only; the generator for real test images is
/// scripts/testdata/windows.py).
pub(crate) struct Builder {
    bins: Vec<u8>,
}

const B: usize = BASE_BLOCK_SIZE;

impl Builder {
    pub(crate) fn new() -> Self {
        let mut bins = vec![0u8; 32];
        bins[0..4].copy_from_slice(b"hbin");
        Self { bins }
    }

    /// Appends an allocated cell holding `data`; returns its hive offset.
    fn cell(&mut self, data: &[u8]) -> u32 {
        let size = (4 + data.len()).div_ceil(8) * 8;
        let off = self.bins.len();
        self.bins.extend_from_slice(&(-(size as i32)).to_le_bytes());
        self.bins.extend_from_slice(data);
        self.bins.resize(off + size, 0);
        off as u32
    }

    pub(crate) fn vk(&mut self, name: &str, ty: u32, data: &[u8]) -> u32 {
        let (size, off) = if data.len() <= 4 {
            let mut d = [0u8; 4];
            d[..data.len()].copy_from_slice(data);
            (0x8000_0000 | data.len() as u32, u32::from_le_bytes(d))
        } else {
            (data.len() as u32, self.cell(data))
        };
        self.vk_raw(name, ty, size, off)
    }

    fn vk_raw(&mut self, name: &str, ty: u32, size: u32, data_off: u32) -> u32 {
        let mut c = vec![0u8; 0x14];
        c[0..2].copy_from_slice(b"vk");
        c[2..4].copy_from_slice(&(name.len() as u16).to_le_bytes());
        c[4..8].copy_from_slice(&size.to_le_bytes());
        c[8..12].copy_from_slice(&data_off.to_le_bytes());
        c[12..16].copy_from_slice(&ty.to_le_bytes());
        c[16..18].copy_from_slice(&1u16.to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.cell(&c)
    }

    fn list(&mut self, sig: &[u8; 2], items: &[u32]) -> u32 {
        let mut c = sig.to_vec();
        c.extend_from_slice(&(items.len() as u16).to_le_bytes());
        for &i in items {
            c.extend_from_slice(&i.to_le_bytes());
            if sig == b"lf" || sig == b"lh" {
                c.extend_from_slice(&[0; 4]);
            }
        }
        self.cell(&c)
    }

    /// A key node with ASCII `name`, an `lh` list of `subkeys` and a value list.
    pub(crate) fn nk(&mut self, name: &str, subkeys: &[u32], values: &[u32]) -> u32 {
        let list = if subkeys.is_empty() {
            u32::MAX
        } else {
            self.list(b"lh", subkeys)
        };
        let vlist = if values.is_empty() {
            u32::MAX
        } else {
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.cell(&raw)
        };
        self.nk_raw(name, subkeys.len() as u32, list, values.len() as u32, vlist)
    }

    fn nk_raw(&mut self, name: &str, nsub: u32, list: u32, nval: u32, vlist: u32) -> u32 {
        let mut c = vec![0u8; 0x4C];
        c[0..2].copy_from_slice(b"nk");
        c[2..4].copy_from_slice(&0x20u16.to_le_bytes());
        c[0x14..0x18].copy_from_slice(&nsub.to_le_bytes());
        c[0x1C..0x20].copy_from_slice(&list.to_le_bytes());
        c[0x20..0x24].copy_from_slice(&u32::MAX.to_le_bytes());
        c[0x24..0x28].copy_from_slice(&nval.to_le_bytes());
        c[0x28..0x2C].copy_from_slice(&vlist.to_le_bytes());
        c[0x48..0x4A].copy_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.cell(&c)
    }

    /// The whole file: base block (sequence numbers `seq`), one hive bin padded to 4096.
    fn finish_seq(mut self, root: u32, seq: (u32, u32)) -> Vec<u8> {
        let size = self.bins.len().div_ceil(4096) * 4096;
        let free = size - self.bins.len();
        if free >= 8 {
            let at = self.bins.len();
            self.bins.resize(size, 0);
            self.bins[at..at + 4].copy_from_slice(&(free as i32).to_le_bytes());
        }
        self.bins.resize(size, 0);
        self.bins[8..12].copy_from_slice(&(size as u32).to_le_bytes());
        let mut f = vec![0u8; B];
        f[0..4].copy_from_slice(b"regf");
        f[4..8].copy_from_slice(&seq.0.to_le_bytes());
        f[8..12].copy_from_slice(&seq.1.to_le_bytes());
        f[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        f[0x18..0x1C].copy_from_slice(&5u32.to_le_bytes());
        f[0x20..0x24].copy_from_slice(&1u32.to_le_bytes());
        f[0x24..0x28].copy_from_slice(&root.to_le_bytes());
        f[0x28..0x2C].copy_from_slice(&(size as u32).to_le_bytes());
        f[0x2C..0x30].copy_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&self.bins);
        fix_checksum(&mut f);
        f
    }

    pub(crate) fn finish(self, root: u32) -> Vec<u8> {
        self.finish_seq(root, (7, 7))
    }
}

fn fix_checksum(f: &mut [u8]) {
    let c = base_block_checksum(f);
    f[508..512].copy_from_slice(&c.to_le_bytes());
}

pub(crate) fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// File offset of field `field` of the cell at hive offset `cell` (after its size).
fn at(cell: u32, field: usize) -> usize {
    B + cell as usize + 4 + field
}

/// A hive with `Microsoft\Windows NT\CurrentVersion` holding one value of each type.
fn sample() -> (Vec<u8>, u32) {
    let mut b = Builder::new();
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let seg1 = b.cell(&big[..16344]);
    let seg2 = b.cell(&big[16344..32688]);
    let seg3 = b.cell(&big[32688..]);
    let seglist = b.cell(&[seg1, seg2, seg3].map(u32::to_le_bytes).concat());
    let mut db = b"db".to_vec();
    db.extend_from_slice(&3u16.to_le_bytes());
    db.extend_from_slice(&seglist.to_le_bytes());
    let db = b.cell(&db);
    let mut multi = utf16z("one");
    multi.extend(utf16z("two"));
    multi.extend([0, 0]);
    let vals = [
        b.vk("ProductName", 1, &utf16z("Windows Server 2022 Datacenter")),
        b.vk("PathName", 2, &utf16z("%SystemRoot%")),
        b.vk("CurrentMajorVersionNumber", 4, &10u32.to_le_bytes()),
        b.vk("InstallTime", 11, &0x0102_0304_0506_0708u64.to_le_bytes()),
        b.vk("Names", 7, &multi),
        b.vk("DigitalProductId", 3, &[1, 2, 3, 4, 5, 6]),
        b.vk("Tiny", 3, &[9, 8]),
        b.vk_raw("Big", 3, big.len() as u32, db),
        b.vk("", 1, &utf16z("default")),
    ];
    let cv = b.nk("CurrentVersion", &[], &vals);
    let nt = b.nk("Windows NT", &[cv], &[]);
    let other = b.nk("Classes", &[], &[]);
    let ms = b.nk("Microsoft", &[other, nt], &[]);
    let root = b.nk("ROOT", &[ms], &[]);
    (b.finish(root), cv)
}

#[test]
fn reads_keys_and_every_value_type() {
    let (f, _) = sample();
    let h = Hive::parse(&f).unwrap();
    assert!(!h.is_dirty());
    assert_eq!(h.version(), (1, 5));
    let cv = h
        .key("microsoft\\WINDOWS nt\\CurrentVersion")
        .unwrap()
        .unwrap();
    assert_eq!(cv.name(), "CurrentVersion");
    let get = |n: &str| cv.value(n).unwrap().unwrap().data().unwrap();
    assert_eq!(
        get("productname"),
        ValueData::String("Windows Server 2022 Datacenter".into())
    );
    assert_eq!(
        get("PathName"),
        ValueData::ExpandString("%SystemRoot%".into())
    );
    assert_eq!(get("CurrentMajorVersionNumber"), ValueData::Dword(10));
    assert_eq!(get("InstallTime"), ValueData::Qword(0x0102_0304_0506_0708));
    assert_eq!(
        get("Names"),
        ValueData::MultiString(vec!["one".into(), "two".into()])
    );
    assert_eq!(
        get("DigitalProductId"),
        ValueData::Binary(vec![1, 2, 3, 4, 5, 6])
    );
    assert_eq!(get("Tiny"), ValueData::Binary(vec![9, 8]));
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(get("Big"), ValueData::Binary(big));
    assert_eq!(get(""), ValueData::String("default".into()));
    assert!(cv.value("Missing").unwrap().is_none());
    assert!(h.key("Microsoft\\Nope").unwrap().is_none());
    let ms = h.key("Microsoft").unwrap().unwrap();
    let names: Vec<String> = ms.subkeys().unwrap().iter().map(Key::name).collect();
    assert_eq!(names, ["Classes", "Windows NT"]);
    assert_eq!(h.root().unwrap().name(), "ROOT");
    assert!(h.key("").unwrap().is_some());
}

#[test]
fn subkey_lists_of_every_kind_and_utf16_names() {
    let mut b = Builder::new();
    let a = b.nk("a", &[], &[]);
    let c = b.nk("c", &[], &[]);
    // A UTF-16 name (flag KEY_COMP_NAME clear).
    let u = b.nk("xx", &[], &[]);
    let li = b.list(b"li", &[a]);
    let lf = b.list(b"lf", &[c, u]);
    let ri = b.list(b"ri", &[li, lf]);
    let root = b.nk_raw("r", 3, ri, 0, u32::MAX);
    let mut f = b.finish(root);
    // Rewrite "xx" as UTF-16 "É" (2 bytes) with flags 0.
    f[at(u, 2)..at(u, 4)].copy_from_slice(&0u16.to_le_bytes());
    f[at(u, 0x48)..at(u, 0x4A)].copy_from_slice(&2u16.to_le_bytes());
    f[at(u, 0x4C)..at(u, 0x4E)].copy_from_slice(&0xC9u16.to_le_bytes());
    let h = Hive::parse(&f).unwrap();
    let names: Vec<String> = h
        .root()
        .unwrap()
        .subkeys()
        .unwrap()
        .iter()
        .map(Key::name)
        .collect();
    assert_eq!(names, ["a", "c", "É"]);
    assert!(h.key("é").unwrap().is_some());
    assert!(h.key("A").unwrap().is_some());
}

#[test]
fn dirty_when_sequence_numbers_differ() {
    let mut b = Builder::new();
    let root = b.nk("r", &[], &[]);
    let f = b.finish_seq(root, (8, 7));
    let h = Hive::parse(&f).unwrap();
    assert!(h.is_dirty());
    assert_eq!(h.sequence_numbers(), (8, 7));
}

/// Asserts that parsing (or reading through `read`) fails with a message containing `want`.
fn refuses(f: &[u8], want: &str) {
    let msg = match Hive::parse(f) {
        Err(e) => e.to_string(),
        Ok(h) => match walk_all(&h) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("expected an error containing {want:?}"),
        },
    };
    assert!(msg.contains(want), "{msg:?} lacks {want:?}");
}

/// Reads every key and value reachable (bounded to the depth of the fixtures).
fn walk_all(h: &Hive<'_>) -> Result<(), RegistryError> {
    fn walk(k: &Key<'_>, depth: usize) -> Result<(), RegistryError> {
        if depth > 8 {
            return Ok(());
        }
        for v in k.values()? {
            v.data()?;
        }
        for s in k.subkeys()? {
            walk(&s, depth + 1)?;
        }
        Ok(())
    }
    walk(&h.root()?, 0)
}

#[test]
fn base_block_rules() {
    let (good, _) = sample();
    refuses(&good[..100], "shorter than the 4096-byte base block");
    let mut f = good.clone();
    f[0] = b'x';
    refuses(&f, "not \"regf\"");
    let mut f = good.clone();
    f[100] ^= 1;
    refuses(&f, "checksum at 508");
    let mut f = good.clone();
    put32(&mut f, 0x14, 2);
    fix_checksum(&mut f);
    refuses(&f, "major version");
    let mut f = good.clone();
    put32(&mut f, 0x1C, 1);
    fix_checksum(&mut f);
    refuses(&f, "file type");
    for bad in [0u32, 100] {
        let mut f = good.clone();
        put32(&mut f, 0x28, bad);
        fix_checksum(&mut f);
        refuses(&f, "not a non-zero multiple of 4096");
    }
    let mut f = good.clone();
    put32(&mut f, 0x28, 0x10_0000);
    fix_checksum(&mut f);
    refuses(&f, "passes the end");
    assert!(matches!(
        Hive::parse_with_cap(&good, 4096),
        Err(RegistryError::TooLarge { .. })
    ));
    assert_eq!(base_block_checksum(&[0u8; 512]), 1);
    let mut ones = [0u8; 512];
    ones[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(base_block_checksum(&ones), u32::MAX - 1);
}

#[test]
fn hive_bin_rules() {
    let (good, _) = sample();
    let mut f = good.clone();
    f[B] = b'x';
    refuses(&f, "not \"hbin\"");
    let mut f = good.clone();
    put32(&mut f, B + 4, 0x1000);
    refuses(&f, "records offset");
    let mut f = good.clone();
    put32(&mut f, B + 8, 0x1001);
    refuses(&f, "size 0x1001");
    // Two bins, the second one too short for a bin.
    let mut f = good.clone();
    let bins = u32::from_le_bytes(f[0x28..0x2C].try_into().unwrap());
    put32(&mut f, B + 8, bins - 4096);
    refuses(&f, "signature is not \"hbin\"");
}

#[test]
fn cell_rules() {
    let (good, cv) = sample();
    let root = u32::from_le_bytes(good[0x24..0x28].try_into().unwrap());
    let with_root = |r: u32| {
        let mut f = good.clone();
        put32(&mut f, 0x24, r);
        fix_checksum(&mut f);
        f
    };
    refuses(&with_root(root + 4), "not 8-byte aligned");
    refuses(&with_root(0x100_0000), "passes the end");
    refuses(&with_root(8), "header of the hive bin");
    let vlist = u32::from_le_bytes(good[at(cv, 0x28)..at(cv, 0x2C)].try_into().unwrap());
    let vk = u32::from_le_bytes(good[at(vlist, 0)..at(vlist, 4)].try_into().unwrap());
    refuses(&with_root(vk), "not a key node");
    // A free cell (positive size).
    let mut f = good.clone();
    let sz = i32::from_le_bytes(
        f[B + root as usize..B + root as usize + 4]
            .try_into()
            .unwrap(),
    );
    put32(&mut f, B + root as usize, (-sz) as u32);
    refuses(&f, "the cell is free");
    let mut f = good.clone();
    put32(&mut f, B + root as usize, (-4i32) as u32);
    refuses(&f, "below the 8-byte minimum");
    let mut f = good.clone();
    put32(&mut f, B + root as usize, (-0x10_0000i32) as u32);
    refuses(&f, "passes the end of its hive bin");
}

#[test]
fn key_node_rules() {
    let mut b = Builder::new();
    let child = b.nk("c", &[], &[]);
    let bad_sig = b.list(b"zz", &[child]);
    let k_badsig = b.nk_raw("badsig", 1, bad_sig, 0, u32::MAX);
    let k_nolist = b.nk_raw("nolist", 1, u32::MAX, 0, u32::MAX);
    let two = b.list(b"lh", &[child, child]);
    let k_more = b.nk_raw("more", 1, two, 0, u32::MAX);
    let k_fewer = b.nk_raw("fewer", 3, two, 0, u32::MAX);
    let long = b.nk("longname", &[], &[]);
    let root = b.nk("r", &[], &[]);
    let f = b.finish(root);
    let check = |key: u32, f: &[u8], want: &str| {
        let mut f = f.to_vec();
        put32(&mut f, 0x24, key);
        fix_checksum(&mut f);
        refuses(&f, want);
    };
    check(k_badsig, &f, "is not a subkey list");
    check(k_nolist, &f, "has no subkey list");
    check(k_more, &f, "more than the 1 subkeys");
    check(k_fewer, &f, "declares 3 subkeys but its list holds 2");
    let mut g = f.clone();
    g[at(long, 0x48)..at(long, 0x4A)].copy_from_slice(&200u16.to_le_bytes());
    check(long, &g, "key name of 200 bytes");
    // List count larger than the cell.
    let mut g = f.clone();
    g[at(two, 2)..at(two, 4)].copy_from_slice(&50u16.to_le_bytes());
    check(k_more, &g, "50 elements of 8 bytes");
}

#[test]
fn index_root_nesting_is_bounded() {
    let mut b = Builder::new();
    // An ri whose single element points at itself: reserve its offset first.
    let off = b.bins.len() as u32;
    let ri = b.list(b"ri", &[off]);
    assert_eq!(ri, off);
    let root = b.nk_raw("r", 1, ri, 0, u32::MAX);
    refuses(&b.finish(root), "nest deeper than 4 levels");
}

#[test]
fn value_rules() {
    let mut b = Builder::new();
    let short_data = b.cell(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let v_inline5 = b.vk_raw("i5", 3, 0x8000_0005, 0);
    let v_huge = b.vk_raw("huge", 3, 0x7000_0000, short_data);
    let v_short = b.vk_raw("short", 3, 100, short_data);
    let v_dword = b.vk("dw", 4, &[1, 2, 3]);
    let v_qword = b.vk("qw", 11, &[1, 2, 3, 4, 5]);
    let not_vk = b.cell(b"xx______________________");
    let v_name = b.vk("nm", 1, &utf16z("x"));
    let seg = b.cell(&[0u8; 100]);
    let seglist = b.cell(&seg.to_le_bytes());
    let mut db = b"db".to_vec();
    db.extend_from_slice(&2u16.to_le_bytes());
    db.extend_from_slice(&seglist.to_le_bytes());
    let db2 = b.cell(&db);
    let v_dbcount = b.vk_raw("dbcount", 3, 40000, db2);
    let mut db1 = b"db".to_vec();
    db1.extend_from_slice(&1u16.to_le_bytes());
    db1.extend_from_slice(&seglist.to_le_bytes());
    let db1 = b.cell(&db1);
    let v_dbseg = b.vk_raw("dbseg", 3, 16000, db1);
    let v_dbseg_big = b.vk_raw("dbsegbig", 3, 16345, db1);
    let vlist_short = b.cell(&[0u8; 4]);
    let root = b.nk("r", &[], &[]);
    let f = b.finish(root);
    let check = |v: u32, want: &str| {
        let mut g = f.clone();
        // Point the root's value list at a one-element list holding `v`: reuse `vlist_short`.
        put32(&mut g, at(vlist_short, 0), v);
        put32(&mut g, at(root, 0x24), 1);
        put32(&mut g, at(root, 0x28), vlist_short);
        refuses(&g, want);
    };
    check(v_inline5, "inline data of 5 bytes");
    check(v_huge, "exceeds the");
    check(v_short, "shorter than the value's 100 bytes");
    check(v_dword, "REG_DWORD data is 3 bytes");
    check(v_qword, "REG_QWORD data is 5 bytes");
    check(not_vk, "not a value");
    check(v_dbcount, "2 segments cannot hold 40000 bytes");
    check(v_dbseg, "shorter than the value's 16000 bytes");
    check(v_dbseg_big, "1 segments cannot hold 16345 bytes");
    let mut g = f.clone();
    g[at(v_name, 2)..at(v_name, 4)].copy_from_slice(&300u16.to_le_bytes());
    put32(&mut g, at(vlist_short, 0), v_name);
    put32(&mut g, at(root, 0x24), 1);
    put32(&mut g, at(root, 0x28), vlist_short);
    refuses(&g, "value name of 300 bytes");
    // A value list too short for the declared count.
    let mut g = f.clone();
    put32(&mut g, at(root, 0x24), 3);
    put32(&mut g, at(root, 0x28), vlist_short);
    refuses(&g, "cannot hold the 3 values");
}

#[test]
fn big_data_list_and_segment_rules() {
    let mut b = Builder::new();
    let seg_short = b.cell(&[0u8; 100]);
    let seg_full = b.cell(&vec![7u8; 16344]);
    let list_short = b.cell(&seg_full.to_le_bytes());
    let list_two = b.cell(&[seg_full, seg_short].map(u32::to_le_bytes).concat());
    let mk_db = |b: &mut Builder, list: u32| {
        let mut db = b"db".to_vec();
        db.extend_from_slice(&2u16.to_le_bytes());
        db.extend_from_slice(&list.to_le_bytes());
        b.cell(&db)
    };
    let db_list_short = mk_db(&mut b, list_short);
    let db_seg_short = mk_db(&mut b, list_two);
    let v1 = b.vk_raw("a", 3, 20000, db_list_short);
    let v2 = b.vk_raw("b", 3, 20000, db_seg_short);
    let db_tiny = b.cell(b"db\x02\x00");
    let v3 = b.vk_raw("c", 3, 20000, db_tiny);
    let r3 = b.nk("r3", &[], &[v3]);
    let r1 = b.nk("r1", &[], &[v1]);
    let r2 = b.nk("r2", &[], &[v2]);
    let f = b.finish(r1);
    refuses(&f, "segment list of 4 bytes cannot hold 2 offsets");
    let mut g = f.clone();
    put32(&mut g, 0x24, r2);
    fix_checksum(&mut g);
    refuses(
        &g,
        "big data segment of 100 bytes is shorter than the 3656 bytes",
    );
    let mut g = f.clone();
    put32(&mut g, 0x24, r3);
    fix_checksum(&mut g);
    refuses(&g, "big data record shorter than 8 bytes");
}

#[test]
fn hostile_byte_flips_never_panic() {
    let (good, _) = sample();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut f = good.clone();
        for _ in 0..rng.usize(1..8) {
            // Mostly inside the cells (after the base block), sometimes in the base block.
            let i = if rng.bool() {
                rng.usize(B..f.len())
            } else {
                rng.usize(0..f.len())
            };
            f[i] = rng.u8(..);
        }
        if rng.u8(..) < 40 {
            fix_checksum(&mut f);
        }
        if let Ok(h) = Hive::parse(&f) {
            parsed += 1;
            let _ = walk_all(&h);
            let _ = h.key("Microsoft\\Windows NT\\CurrentVersion");
        }
    }
    assert!(
        parsed > 100,
        "the sweep exercised the reader ({parsed} parsed)"
    );
}

#[test]
fn version_1_3_keeps_large_data_in_one_cell() {
    let mut b = Builder::new();
    let mut data = b"db".to_vec();
    data.extend((0..20_000u32).map(|i| i as u8));
    let cell = b.cell(&data);
    let v = b.vk_raw("large", 3, data.len() as u32, cell);
    let root = b.nk("r", &[], &[v]);
    let mut f = b.finish(root);
    // Format 1.5 reads a "db" cell as big data, which this is not.
    refuses(&f, "segments cannot hold");
    put32(&mut f, 0x18, 3);
    fix_checksum(&mut f);
    let h = Hive::parse(&f).unwrap();
    let got = h
        .root()
        .unwrap()
        .value("LARGE")
        .unwrap()
        .unwrap()
        .data()
        .unwrap();
    assert_eq!(got, ValueData::Binary(data));
}

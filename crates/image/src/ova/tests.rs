//! OVAs built in memory: the layout VMware and VirtualBox write, and each broken rule.

use super::*;
use crate::ova::digest::Algorithm;

/// A ustar archive of `members` (name, bytes) with the closing zero blocks.
pub(crate) fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A descriptor of `disks` (href, capacity in bytes).
pub(crate) fn descriptor(disks: &[(&str, u64)]) -> String {
    let mut refs = String::new();
    let mut section = String::new();
    for (i, (href, cap)) in disks.iter().enumerate() {
        refs += &format!("<File ovf:href=\"{href}\" ovf:id=\"file{i}\"/>");
        section += &format!(
            "<Disk ovf:capacity=\"{cap}\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk{i}\" ovf:fileRef=\"file{i}\"/>"
        );
    }
    format!(
        "<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>{refs}</References><DiskSection>{section}</DiskSection><VirtualSystem ovf:id=\"vm\"><OperatingSystemSection ovf:id=\"96\"/></VirtualSystem></Envelope>"
    )
}

fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.ova");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn refusal(bytes: &[u8]) -> (String, String) {
    let (_dir, path) = write(bytes);
    match Package::read(&path).and_then(|p| p.open_all(&OpenOptions::default())) {
        Err(ImageError::Refused { report }) => {
            let f = report
                .findings
                .iter()
                .find(|f| f.refuses())
                .unwrap()
                .clone();
            (f.code, f.message)
        }
        Err(e) => panic!("an error, not a refusal: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

fn disk(n: u8) -> Vec<u8> {
    vec![n; 64 * 1024]
}

fn good_members(mf_ok: bool) -> (String, String) {
    let ovf = descriptor(&[("system.img", 65536), ("data.img", 65536)]);
    let mut data = disk(2);
    if !mf_ok {
        data[100] ^= 1;
    }
    let mf = format!(
        "SHA256(vm.ovf)= {}\nSHA256(system.img)= {}\nSHA1(data.img)= {}\n",
        Algorithm::Sha256.hash(ovf.as_bytes()),
        Algorithm::Sha256.hash(&disk(1)),
        Algorithm::Sha1.hash(&disk(2)),
    );
    (ovf, mf)
}

#[test]
fn vmware_layout_opens_every_disk_in_order() {
    let (ovf, mf) = good_members(true);
    let bytes = tar(&[
        ("vm.ovf", ovf.as_bytes()),
        ("vm.mf", mf.as_bytes()),
        ("system.img", &disk(1)),
        ("data.img", &disk(2)),
    ]);
    let (_dir, path) = write(&bytes);
    let disks = crate::open_all(&path, &OpenOptions::default()).unwrap();
    assert_eq!(disks.len(), 2);
    assert_eq!(disks[0].report.path, path.join("system.img"));
    assert_eq!(disks[1].report.virtual_size, Some(65536));
    let p = disks[0].package.as_ref().unwrap();
    assert_eq!(p.hints.platform.as_deref(), Some("Debian"));
    assert_eq!(p.manifest.as_deref(), Some("SHA256 from vm.mf"));
    let mut buf = [0u8; 4];
    disks[1].image.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, [2; 4]);
    // The manifest is checked from the member's bytes, read in order and then the rest.
    disks[0].file.track_digest();
    let mut half = vec![0u8; 4096];
    disks[0].file.read_exact_at(&mut half, 8192).unwrap();
    assert_eq!(
        disks[0].file.verify_digest().unwrap(),
        Some(Algorithm::Sha256.hash(&disk(1)))
    );
    assert!(disks[1].file.verify_digest().is_ok());
    // One disk by its member path.
    let one = crate::open(&path.join("data.img"), &OpenOptions::default()).unwrap();
    assert_eq!(one.package.unwrap().disk_id, "vmdisk1");
    let (code, msg) = match crate::open(&path, &OpenOptions::default()) {
        Err(ImageError::Refused { report }) => (
            report.findings[0].code.clone(),
            report.findings[0].message.clone(),
        ),
        _ => panic!("a package of two disks opened as one"),
    };
    assert_eq!(code, "ova.which_disk", "{msg}");
}

#[test]
fn manifest_mismatch_found_while_streaming() {
    let (ovf, mf) = good_members(true);
    let mut bad = disk(2);
    bad[100] ^= 1;
    let bytes = tar(&[
        ("vm.ovf", ovf.as_bytes()),
        ("vm.mf", mf.as_bytes()),
        ("system.img", &disk(1)),
        ("data.img", &bad),
    ]);
    let (_dir, path) = write(&bytes);
    let disks = crate::open_all(&path, &OpenOptions::default()).unwrap();
    disks[1].file.track_digest();
    let mut all = vec![0u8; 65536];
    disks[1].file.read_exact_at(&mut all, 0).unwrap();
    let e = disks[1].file.verify_digest().unwrap_err();
    assert!(matches!(e, ImageError::ManifestMismatch { .. }), "{e}");
    assert!(e.to_string().contains("data.img"), "{e}");
}

#[test]
fn each_broken_rule_is_refused_naming_the_member() {
    let (ovf, mf) = good_members(true);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            tar(&[("vm.ovf", ovf.as_bytes()), ("../x", b"x")]),
            "ova.tar.path",
            "../x",
        ),
        (
            tar(&[("vm.ovf", ovf.as_bytes()), ("/etc/x", b"x")]),
            "ova.tar.path",
            "/etc/x",
        ),
        (
            tar(&[
                ("vm.ovf", ovf.as_bytes()),
                ("system.img", &disk(1)),
                ("system.img", &disk(1)),
            ]),
            "ova.tar.duplicate",
            "system.img",
        ),
        (
            tar(&[("vm.ovf", ovf.as_bytes()), ("system.img", &disk(1))]),
            "ova.missing_member",
            "data.img",
        ),
        (
            tar(&[
                ("system.img", &disk(1)),
                ("vm.ovf", ovf.as_bytes()),
                ("data.img", &disk(2)),
            ]),
            "ova.order",
            "system.img",
        ),
        (
            tar(&[
                ("vm.ovf", ovf.as_bytes()),
                ("vm.mf", mf.as_bytes()),
                ("system.img", &disk(1)),
                ("data.img", &disk(2)),
                ("extra.img", b"x"),
            ]),
            "ova.unreferenced_member",
            "extra.img",
        ),
        (
            tar(&[
                ("vm.ovf", descriptor(&[("system.img", 4096)]).as_bytes()),
                ("system.img", &disk(1)),
            ]),
            "ova.capacity_mismatch",
            "4096",
        ),
        (
            tar(&[("vm.ovf", descriptor(&[("http://x/y.img", 1)]).as_bytes())]),
            "ova.href",
            "http://x/y.img",
        ),
        (
            tar(&[("vm.ovf", descriptor(&[("sub/y.img", 1)]).as_bytes())]),
            "ova.href",
            "sub/y.img",
        ),
    ];
    for (bytes, code, names) in cases {
        let (c, m) = refusal(&bytes);
        assert_eq!(c, code, "{m}");
        assert!(m.contains(names), "{m}");
    }
}

#[test]
fn damaged_archives_are_refused() {
    let (ovf, _) = good_members(true);
    let good = tar(&[
        ("vm.ovf", ovf.as_bytes()),
        ("system.img", &disk(1)),
        ("data.img", &disk(2)),
    ]);
    // Truncated inside the last member.
    let (c, m) = refusal(&good[..good.len() - 1024 - 4096]);
    assert_eq!(c, "ova.tar.truncated", "{m}");
    // A symbolic link member.
    let mut link = tar(&[("vm.ovf", ovf.as_bytes()), ("system.img", b"")]);
    let h = 512 * (1 + ovf.len().div_ceil(512));
    link[h + 156] = b'2';
    let sum: u32 = link[h..h + 512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    link[h + 148..h + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let (c, m) = refusal(&link);
    assert_eq!(c, "ova.tar.not_regular", "{m}");
    assert!(m.contains("symbolic link"), "{m}");
    // A bad checksum.
    let mut bad = good.clone();
    bad[0] = b'w';
    assert_eq!(refusal(&bad).0, "ova.tar.checksum");
    // A descriptor over the bound.
    let huge = format!("{}{}", ovf, " ".repeat(MAX_DESCRIPTOR as usize));
    let (c, m) = refusal(&tar(&[("vm.ovf", huge.as_bytes())]));
    assert_eq!(c, "ova.descriptor.too_large", "{m}");
    // A compressed member.
    let gz = ovf.replace(
        "ovf:id=\"file0\"",
        "ovf:id=\"file0\" ovf:compression=\"gzip\"",
    );
    let (c, m) = refusal(&tar(&[
        ("vm.ovf", gz.as_bytes()),
        ("system.img", &disk(1)),
        ("data.img", &disk(2)),
    ]));
    assert_eq!(c, "ova.compressed", "{m}");
}

#[test]
fn ovf_beside_its_files_and_no_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let ovf = descriptor(&[("system.img", 65536)]);
    std::fs::write(dir.path().join("vm.ovf"), &ovf).unwrap();
    std::fs::write(dir.path().join("real.img"), disk(1)).unwrap();
    std::os::unix::fs::symlink("real.img", dir.path().join("system.img")).unwrap();
    let path = dir.path().join("vm.ovf");
    match crate::open_all(&path, &OpenOptions::default()) {
        Err(ImageError::Refused { report }) => assert_eq!(report.findings[0].code, "ova.symlink"),
        _ => panic!("a symbolic link was followed"),
    }
    std::fs::remove_file(dir.path().join("system.img")).unwrap();
    std::fs::rename(dir.path().join("real.img"), dir.path().join("system.img")).unwrap();
    let disks = crate::open_all(&path, &OpenOptions::default()).unwrap();
    assert_eq!(disks[0].report.path, dir.path().join("system.img"));
}

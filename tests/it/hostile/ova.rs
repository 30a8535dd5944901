//! Hostile OVA packages (issue 24): members outside the archive, duplicates, missing disks,
//! a manifest that does not match, a huge descriptor, a truncated tar, links, a descriptor
//! not first. Each is built here and must be refused (or fail, for the manifest) naming the
//! member, within the corpus limits, by `inspect`, `convert` and `checksum`.

use std::ffi::OsStr;
use std::path::PathBuf;

use super::{Expect, Worst, check_all, run_limited};

/// A ustar archive of `members` (name, bytes, type flag) with its closing zero blocks.
pub(crate) fn tar(members: &[(&str, &[u8], u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, flag) in members {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = *flag;
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

/// A descriptor of one disk `href` of `capacity` bytes.
fn descriptor(href: &str, capacity: u64) -> String {
    format!(
        "<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References><File ovf:href=\"{href}\" ovf:id=\"file1\"/></References><DiskSection><Disk ovf:capacity=\"{capacity}\" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\"/></DiskSection><VirtualSystem ovf:id=\"vm\"/></Envelope>"
    )
}

/// SHA-256 of `b` in hex, by `sha256sum` (the tool a manifest is usually checked with).
fn sha256(b: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(b).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

const REG: u8 = b'0';

#[test]
fn hostile_ova_packages_are_refused_naming_the_member() {
    let dir = tempfile::tempdir().unwrap();
    let disk = vec![0x5au8; 1 << 20];
    let ovf = descriptor("disk.img", disk.len() as u64);
    let o = ovf.as_bytes();
    let huge = format!("{ovf}{}", " ".repeat(5 << 20));
    let good = tar(&[("vm.ovf", o, REG), ("disk.img", &disk, REG)]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.ova",
            tar(&[("vm.ovf", o, REG), ("../x", b"x", REG)]),
            "../x",
        ),
        (
            "absolute.ova",
            tar(&[("vm.ovf", o, REG), ("/tmp/x", b"x", REG)]),
            "/tmp/x",
        ),
        (
            "duplicate.ova",
            tar(&[
                ("vm.ovf", o, REG),
                ("disk.img", &disk, REG),
                ("disk.img", &disk, REG),
            ]),
            "disk.img",
        ),
        ("missing-disk.ova", tar(&[("vm.ovf", o, REG)]), "disk.img"),
        (
            "extra-disk.ova",
            tar(&[
                ("vm.ovf", o, REG),
                ("disk.img", &disk, REG),
                ("other.img", &disk, REG),
            ]),
            "other.img",
        ),
        (
            "symlink.ova",
            tar(&[("vm.ovf", o, REG), ("disk.img", b"", b'2')]),
            "disk.img",
        ),
        (
            "hardlink.ova",
            tar(&[("vm.ovf", o, REG), ("disk.img", b"", b'1')]),
            "disk.img",
        ),
        (
            "directory.ova",
            tar(&[("vm.ovf", o, REG), ("disk.img", b"", b'5')]),
            "disk.img",
        ),
        (
            "not-first.ova",
            tar(&[("disk.img", &disk, REG), ("vm.ovf", o, REG)]),
            "disk.img",
        ),
        (
            "huge-ovf.ova",
            tar(&[("vm.ovf", huge.as_bytes(), REG)]),
            "vm.ovf",
        ),
        (
            "truncated.ova",
            good[..good.len() - 1024 - 4096].to_vec(),
            "disk.img",
        ),
        (
            "url.ova",
            tar(&[(
                "vm.ovf",
                descriptor("http://example.com/d.img", 1).as_bytes(),
                REG,
            )]),
            "http://example.com/d.img",
        ),
    ];
    let mut worst = Worst::default();
    for (name, bytes, member) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        check_all(&path, Expect::Refused, &mut worst);
        let r = run_limited(dir.path(), &[OsStr::new("inspect"), path.as_ref()]);
        assert!(
            r.stdout.contains(member),
            "{name}: the refusal does not name {member:?}: {}",
            r.describe()
        );
    }
    // A capacity that is not the disk's virtual size: refused in the disk's own report.
    let path = dir.path().join("capacity.ova");
    let bytes = tar(&[
        ("vm.ovf", descriptor("disk.img", 4096).as_bytes(), REG),
        ("disk.img", &disk, REG),
    ]);
    std::fs::write(&path, bytes).unwrap();
    let r = run_limited(dir.path(), &[OsStr::new("inspect"), path.as_ref()]);
    worst.note(&r);
    assert_eq!(r.code, 3, "{}", r.describe());
    assert!(
        r.stdout.contains("capacity.ova/disk.img")
            && r.stdout.contains("4096 bytes")
            && r.stdout.contains("1048576 bytes"),
        "{}",
        r.describe()
    );
    worst.print("ova");
}

#[test]
fn manifest_mismatch_fails_convert_and_checksum_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = vec![0x5au8; 1 << 20];
    let ovf = descriptor("disk.img", disk.len() as u64);
    let mut other = disk.clone();
    other[12345] ^= 1;
    let mf = format!(
        "SHA256(vm.ovf)= {}\nSHA256(disk.img)= {}\n",
        sha256(ovf.as_bytes()),
        sha256(&other)
    );
    let path: PathBuf = dir.path().join("mismatch.ova");
    std::fs::write(
        &path,
        tar(&[
            ("vm.ovf", ovf.as_bytes(), REG),
            ("vm.mf", mf.as_bytes(), REG),
            ("disk.img", &disk, REG),
        ]),
    )
    .unwrap();
    // Inspection says the manifest is not yet verified.
    let r = run_limited(dir.path(), &[OsStr::new("inspect"), path.as_ref()]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(r.stdout.contains("not yet verified"), "{}", r.describe());
    let out = dir.path().join("out.raw");
    for args in [
        vec![
            OsStr::new("convert"),
            "--to".as_ref(),
            "raw".as_ref(),
            path.as_ref(),
            out.as_ref(),
        ],
        vec![OsStr::new("checksum"), path.as_ref()],
        vec![
            OsStr::new("checksum"),
            "--to".as_ref(),
            "qcow2".as_ref(),
            path.as_ref(),
        ],
    ] {
        let r = run_limited(dir.path(), &args);
        assert_eq!(r.code, 1, "{}", r.describe());
        assert!(
            r.stderr.contains("mismatch.ova/disk.img") && r.stderr.contains("manifest"),
            "{}",
            r.describe()
        );
        assert!(!out.exists(), "convert left its output: {}", r.describe());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // The same package with the right digest converts, and says the manifest matched.
    let mf = format!("SHA256(disk.img)= {}\n", sha256(&disk));
    std::fs::write(
        &path,
        tar(&[
            ("vm.ovf", ovf.as_bytes(), REG),
            ("vm.mf", mf.as_bytes(), REG),
            ("disk.img", &disk, REG),
        ]),
    )
    .unwrap();
    let r = run_limited(
        dir.path(),
        &[
            OsStr::new("convert"),
            "--to".as_ref(),
            "raw".as_ref(),
            path.as_ref(),
            out.as_ref(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(r.stdout.contains("manifest's digest"), "{}", r.describe());
    assert_eq!(std::fs::read(&out).unwrap(), disk);
}

//! Issue 20 item 2: a read error is told apart from "not found". The Debian GPT disk and the
//! Windows Server 2022 GPT disk are inspected through a source whose reads fail wherever they
//! touch the blocks of one guest file or directory (located by the file systems' own tools,
//! the oracles: `debugfs` for the ext4 root, `mshowfat` and `minfo` for the FAT ESP,
//! `ntfsinfo` for the NTFS system volume); the facts that rest on it must become
//! unknown with a `guest.read_failed` finding that names the error, never take another value,
//! and no readiness finding may read the failure as absence (`guest.no_cloud_init` when the
//! cloud-init files could not be read, say).

use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use imgport::image::source::ByteSource;
use serde_json::Value;

use crate::guest::{codes, sh_out};
use crate::util::*;

/// What every injected error says, so a finding can be checked to name it.
const INJECTED: &str = "injected read error";

/// A disk whose reads fail when they overlap one of the `bad` byte ranges (or, with
/// `starts_only`, when they start in one).
struct FailingDisk {
    inner: Arc<dyn ByteSource>,
    bad: Vec<(u64, u64)>,
    starts_only: bool,
    /// Reads failed so far: a range that is never read proves nothing.
    failed: AtomicU64,
}

impl ByteSource for FailingDisk {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        let hit =
            |&(s, e): &(u64, u64)| offset < e && (s <= offset || (!self.starts_only && s < end));
        if self.bad.iter().any(hit) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other(format!(
                "{INJECTED} at disk bytes {offset}..{end}"
            )));
        }
        self.inner.read_exact_at(buf, offset)
    }
}

/// The guest facts of `path` as JSON, read through reads that fail in `bad` (see
/// [`FailingDisk`]), and how many reads failed.
fn inspect_failing(path: &Path, bad: Vec<(u64, u64)>, starts_only: bool) -> (Value, u64) {
    let opened = imgport::image::open(path, &imgport::image::OpenOptions::default()).unwrap();
    let disk = Arc::new(FailingDisk {
        inner: Arc::new(imgport::image::ImageSource(opened.image.clone())),
        bad,
        starts_only,
        failed: AtomicU64::new(0),
    });
    let facts = imgport::guest::inspect(disk.clone());
    (
        serde_json::to_value(facts).unwrap(),
        disk.failed.load(Ordering::SeqCst),
    )
}

/// Byte offset of partition `index` (1-based) of `img`, from sfdisk.
fn partition_start(img: &Path, index: usize) -> u64 {
    let t: Value =
        serde_json::from_str(&sh_out(&format!("sfdisk -J '{}'", img.display()))).unwrap();
    let t = &t["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    t["partitions"][index - 1]["start"].as_u64().unwrap() * sector
}

/// `units` (numbers of `size`-byte units from `base`) as merged byte ranges.
fn ranges(base: u64, size: u64, units: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut units: Vec<u64> = units.into_iter().collect();
    units.sort_unstable();
    for u in units {
        let (s, e) = (base + u * size, base + (u + 1) * size);
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    assert!(!out.is_empty(), "no blocks");
    out
}

/// The disk byte ranges of the blocks of `path` (file data, directory blocks) on the ext4
/// volume at byte `start` of `img`, as `debugfs` lists them. `path` must be free of symlinks.
fn ext4_ranges(img: &Path, start: u64, path: &str) -> Vec<(u64, u64)> {
    let dev = format!("{}?offset={start}", img.display());
    let run = |req: &str| {
        let out = Command::new("debugfs")
            .args(["-R", req, &dev])
            .output()
            .expect("debugfs");
        assert!(out.status.success(), "debugfs -R '{req}' {dev}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stats = run("stats");
    let block: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no block size in debugfs stats: {stats}"));
    let blocks = run(&format!("blocks {path}"));
    let units = blocks
        .split_whitespace()
        .map(|b| b.parse().unwrap_or_else(|_| panic!("{path}: {blocks}")));
    ranges(start, block, units)
}

/// The disk byte ranges of the clusters of `path` on the FAT volume at byte `start` of
/// `img`: the cluster chain from `mshowfat`, the geometry from `minfo`.
fn fat_ranges(img: &Path, start: u64, path: &str) -> Vec<(u64, u64)> {
    let dev = format!("{}@@{start}", img.display());
    let info = sh_out(&format!("minfo -i '{dev}' ::"));
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in minfo: {info}"))
    };
    let sector = field("sector size:");
    let per_cluster = field("cluster size:");
    let first_data = field("reserved (boot) sectors:")
        + field("fats:") * field("sectors per fat:")
        + (field("max available root directory slots:") * 32).div_ceil(sector);
    let chain = sh_out(&format!("mshowfat -i '{dev}' '::{path}'"));
    // `::/EFI/BOOT/BOOTX64.EFI <5>`, or `<5-8> <12>` for a fragmented chain
    let mut clusters = Vec::new();
    for run in chain.split('<').skip(1) {
        let run = run.split('>').next().unwrap();
        let (a, b) = run.split_once('-').unwrap_or((run, run));
        let (a, b): (u64, u64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        clusters.extend(a..=b);
    }
    let base = start + first_data * sector;
    let size = per_cluster * sector;
    ranges(base, size, clusters.into_iter().map(|c| c - 2))
}

/// The disk byte ranges of the clusters of `path`'s unnamed data stream on the NTFS volume at
/// byte `start` of `img`: the runlist and cluster size from `ntfsinfo`, which reads a volume
/// only from the start of a file, so the volume is copied out first.
fn ntfs_ranges(img: &Path, start: u64, path: &str) -> Vec<(u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("volume.ntfs");
    let t: Value =
        serde_json::from_str(&sh_out(&format!("sfdisk -J '{}'", img.display()))).unwrap();
    let size = t["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["start"].as_u64().unwrap() * 512 == start)
        .and_then(|p| p["size"].as_u64())
        .expect("a partition at start")
        * 512;
    sh(&format!(
        "dd if='{}' of='{}' bs=64K iflag=skip_bytes,count_bytes skip={start} count={size} \
         status=none",
        img.display(),
        vol.display()
    ));
    let info = sh_out(&format!("ntfsinfo -m '{}'", vol.display()));
    let cluster: u64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Cluster Size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cluster size in ntfsinfo -m: {info}"));
    let file = sh_out(&format!("ntfsinfo -v -F '{path}' '{}'", vol.display()));
    let data = file
        .split("Dumping attribute $DATA")
        .nth(1)
        .unwrap_or_else(|| panic!("{path}: no $DATA attribute: {file}"));
    // Run lines after the `Runlist:` header: `0x0  0xa00  0x8` (VCN, LCN, length).
    let hex = |v: &str| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok();
    let mut clusters = Vec::new();
    for l in data.lines().skip_while(|l| !l.contains("Runlist:")).skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let [_, lcn, len] = w[..] else { break };
        let (Some(lcn), Some(len)) = (hex(lcn), hex(len)) else {
            break;
        };
        clusters.extend(lcn..lcn + len);
    }
    assert!(!clusters.is_empty(), "{path}: no runs (resident?): {file}");
    ranges(start, cluster, clusters)
}

/// True when `cut` says what `full` says, or less: the same value, or unknown (`null`, an
/// empty list), at every level.
fn same_or_unknown(cut: &Value, full: &Value) -> bool {
    match (cut, full) {
        _ if cut == full => true,
        (Value::Null, _) => true,
        (Value::Array(c), Value::Array(f)) => {
            c.is_empty()
                || (c.len() == f.len() && c.iter().zip(f).all(|(c, f)| same_or_unknown(c, f)))
        }
        (Value::Object(c), Value::Object(f)) => c
            .iter()
            .all(|(k, v)| f.get(k).is_some_and(|w| same_or_unknown(v, w))),
        _ => false,
    }
}

/// One injected failure and what it must do.
struct Case {
    what: &'static str,
    bad: Vec<(u64, u64)>,
    /// Fail only the reads that start in `bad`: the probe's first 64 KiB of a volume, which
    /// spans the first clusters of a small FAT, must still work for the file's own read to
    /// be the one that fails.
    starts_only: bool,
    /// Facts (`drivers.virtio` for nested ones) that must become unknown.
    unknown: &'static [&'static str],
    /// Findings that would read the failure as absence.
    never: &'static [&'static str],
}

fn fact<'a>(g: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(g, |v, k| &v[k])
}

#[test]
fn a_read_error_leaves_facts_unknown_never_not_found() {
    let img = image("guest/debian-gpt.raw");
    let esp = partition_start(&img, 1);
    let root = partition_start(&img, 2);
    let kernel = std::fs::read_dir(testdata().join("guest/tree/usr/lib/modules"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a kernel in the tree");
    let moddir = format!("/usr/lib/modules/{kernel}");
    let drivers: &[&str] = &[
        "drivers.virtio",
        "drivers.virtio_in_initramfs",
        "drivers.nvme",
        "drivers.nvme_in_initramfs",
    ];
    let no_virtio: &[&str] = &["guest.no_virtio_driver", "guest.no_virtio_in_initramfs"];
    let cases = [
        Case {
            what: "/usr/lib/os-release (what /etc/os-release links to)",
            bad: ext4_ranges(&img, root, "/usr/lib/os-release"),
            starts_only: false,
            unknown: &["distro", "version", "product_name", "platform"],
            never: &["guest.distro_unknown"],
        },
        Case {
            what: "/etc/hostname",
            bad: ext4_ranges(&img, root, "/etc/hostname"),
            starts_only: false,
            unknown: &["hostname"],
            never: &[],
        },
        Case {
            what: "the /etc/cloud directory",
            bad: ext4_ranges(&img, root, "/etc/cloud"),
            starts_only: false,
            unknown: &["cloud_init"],
            never: &["guest.no_cloud_init", "guest.cloud_init_disabled"],
        },
        Case {
            what: "the cloud-init.target.wants directory",
            bad: ext4_ranges(&img, root, "/etc/systemd/system/cloud-init.target.wants"),
            starts_only: false,
            unknown: &["cloud_init"],
            never: &["guest.no_cloud_init", "guest.cloud_init_disabled"],
        },
        Case {
            what: "the ESP's EFI/BOOT/BOOTX64.EFI",
            bad: fat_ranges(&img, esp, "/EFI/BOOT/BOOTX64.EFI"),
            starts_only: true,
            unknown: &["boot_mode"],
            never: &["guest.no_boot_path"],
        },
        Case {
            what: "the virtio modules' directory",
            bad: ext4_ranges(&img, root, &format!("{moddir}/kernel/drivers/virtio")),
            starts_only: false,
            unknown: drivers,
            never: no_virtio,
        },
        Case {
            what: "modules.dep",
            bad: ext4_ranges(&img, root, &format!("{moddir}/modules.dep")),
            starts_only: false,
            unknown: drivers,
            never: no_virtio,
        },
        Case {
            what: "the initramfs",
            bad: ext4_ranges(&img, root, &format!("/boot/initrd.img-{kernel}")),
            starts_only: false,
            unknown: drivers,
            never: no_virtio,
        },
    ];
    check_cases(&img, cases);
}

/// The Windows recipe's hives: a failed SOFTWARE read leaves the version, product and
/// Platform unknown (never a wrong or fallback Platform, nor `windows.version_unknown`); a
/// failed SYSTEM read leaves the boot drivers, host name and cloudbase-init unknown (never
/// `windows.no_virtio`). The other hive's facts and the architecture stay known; a failed
/// read of cmd.exe leaves the architecture to the registry.
#[test]
fn a_windows_read_error_leaves_facts_unknown_never_not_found() {
    let img = image("guestwin/win2022-gpt.raw");
    let sys = partition_start(&img, 2);
    let config = "/Windows/System32/config";
    let cases = [
        Case {
            what: "the SOFTWARE hive",
            bad: ntfs_ranges(&img, sys, &format!("{config}/SOFTWARE")),
            starts_only: false,
            unknown: &["version", "product_name", "platform"],
            never: &["guest.no_os", "windows.version_unknown"],
        },
        Case {
            what: "the SYSTEM hive",
            bad: ntfs_ranges(&img, sys, &format!("{config}/SYSTEM")),
            starts_only: false,
            unknown: &[
                "drivers.virtio",
                "drivers.virtio_in_initramfs",
                "drivers.nvme",
                "drivers.nvme_in_initramfs",
                "hostname",
                "cloud_init",
            ],
            never: &["guest.no_os", "windows.no_virtio", "windows.no_nvme"],
        },
        Case {
            what: "cmd.exe",
            bad: ntfs_ranges(&img, sys, "/Windows/System32/cmd.exe"),
            starts_only: false,
            // The architecture still comes from the registry.
            unknown: &[],
            never: &["windows.arch_unknown", "windows.cmd_not_pe"],
        },
    ];
    let cuts = check_cases(&img, cases);
    // The finding names the file; the failures are not all-or-nothing: the other hive's
    // facts and the architecture (cmd.exe's PE header, or the registry) stay known.
    let kept: [(&str, &[&str]); 3] = [
        (
            "config/SOFTWARE",
            &["drivers.virtio", "hostname", "cloud_init", "architecture"],
        ),
        (
            "config/SYSTEM",
            &["platform", "product_name", "version", "architecture"],
        ),
        ("cmd.exe", &["architecture", "platform", "drivers.virtio"]),
    ];
    for (cut, (file, kept)) in cuts.iter().zip(kept) {
        let path = format!("/Windows/System32/{file}");
        let names = cut["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == "guest.read_failed"
                && f["message"].as_str().is_some_and(|m| m.contains(&path))
        });
        assert!(names, "no finding names {path}: {cut}");
        for k in kept {
            assert!(!fact(cut, k).is_null(), "{k} lost: {cut}");
        }
    }
}

/// Inspects `img` whole, then once per case with that case's reads failing, and checks each
/// outcome (see the module comment); returns each case's facts.
fn check_cases(img: &Path, cases: impl IntoIterator<Item = Case>) -> Vec<Value> {
    let cases: Vec<Case> = cases.into_iter().collect();
    let mut cuts = Vec::new();
    let (full, failed) = inspect_failing(img, Vec::new(), false);
    assert_eq!(failed, 0);
    for c in &cases {
        assert!(
            full["findings"].as_array().unwrap().is_empty(),
            "the full inspection has findings: {full}"
        );
        for k in c.unknown {
            assert!(
                !fact(&full, k).is_null(),
                "{k} is unknown without a failure"
            );
        }
    }
    for c in cases {
        let (cut, failed) = inspect_failing(img, c.bad.clone(), c.starts_only);
        let what = c.what;
        assert!(failed > 0, "{what}: no read touched {:?}", c.bad);
        let codes = codes(&cut);
        for (k, v) in cut.as_object().unwrap() {
            if k != "findings" && k != "bytes_read" {
                assert!(
                    same_or_unknown(v, &full[k]),
                    "{what}: {k} is {v}, not {} nor unknown; findings {codes:?}",
                    full[k]
                );
            }
        }
        for k in c.unknown {
            assert!(
                fact(&cut, k).is_null(),
                "{what}: {k} is {} though its read failed; findings {codes:?}",
                fact(&cut, k)
            );
        }
        for code in c.never {
            assert!(!codes.iter().any(|c| c == code), "{what}: {code}: {cut}");
        }
        // Only the finding that says what could not be read is new.
        for code in &codes {
            assert_eq!(code, "guest.read_failed", "{what}: {cut}");
        }
        let named = cut["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == "guest.read_failed"
                && f["message"].as_str().is_some_and(|m| m.contains(INJECTED))
        });
        assert!(named, "{what}: no finding names the read error: {cut}");
        cuts.push(cut);
    }
    cuts
}

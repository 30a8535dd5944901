//! Windows facts for each generated system volume (scripts/testdata/windows.sh and .py).
//!
//! Kept whole: the edition table and the per-volume cases share the generated volumes and the
//! hive builder.

use std::sync::Arc;

use super::hives::{read_software, read_system, with_hive};
use super::*;
use crate::fs::fat::tests::test_image;
use crate::fs::{fat, ntfs};
use crate::registry::Hive;

fn inspect_img(name: &str) -> WindowsFacts {
    let fs = ntfs::open(Arc::new(test_image(name))).unwrap();
    inspect(&fs, &ReadLog::default())
        .unwrap()
        .expect("a Windows system volume")
}

fn codes(w: &WindowsFacts) -> Vec<&str> {
    w.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn server_2022_with_virtio_and_cloudbase() {
    let w = inspect_img("ntfs-win2022.img");
    assert_eq!(w.systemroot, "/Windows");
    assert_eq!(
        w.product_name.as_deref(),
        Some("Windows Server 2022 Datacenter")
    );
    assert_eq!(w.product.as_deref(), Some("Windows Server 2022"));
    assert_eq!(w.platform.as_deref(), Some("Windows Server 2022"));
    assert_eq!(w.edition_id.as_deref(), Some("ServerDatacenter"));
    assert_eq!(w.installation_type.as_deref(), Some("Server"));
    assert!(w.server);
    assert_eq!(w.version.as_deref(), Some("10.0.20348"));
    assert_eq!((w.build, w.ubr), (Some(20348), Some(2227)));
    assert_eq!(w.display_version.as_deref(), Some("21H2"));
    assert_eq!(w.architecture.as_deref(), Some("x86_64"));
    assert_eq!(w.current_control_set.as_deref(), Some("ControlSet001"));
    assert_eq!(w.hostname.as_deref(), Some("WIN-TEST"));
    assert_eq!(w.drivers.virtio, Some(true));
    assert_eq!(w.drivers.virtio_in_initramfs, Some(true));
    assert_eq!(w.drivers.nvme, Some(true));
    assert_eq!(w.drivers.nvme_in_initramfs, Some(true));
    assert!(
        w.drivers
            .evidence
            .contains(&"SYSTEM\\ControlSet001\\Services\\viostor Start=0".to_string()),
        "{:?}",
        w.drivers.evidence
    );
    assert_eq!(w.cloud_init, Some(true));
    assert!(w.findings.is_empty(), "{:?}", w.findings);
    let mut g = GuestFacts::default();
    w.apply_to(&mut g);
    assert_eq!(g.os_type.as_deref(), Some("windows"));
    assert_eq!(g.platform.as_deref(), Some("Windows Server 2022"));
    assert_eq!(g.architecture.as_deref(), Some("x86_64"));
    assert_eq!(g.version.as_deref(), Some("10.0.20348"));
}

#[test]
fn server_2019_current_control_set_dirty_hive_compressed_cmd() {
    let w = inspect_img("ntfs-win2019.img");
    assert_eq!(w.product.as_deref(), Some("Windows Server 2019"));
    assert_eq!(w.platform.as_deref(), Some("Windows Server 2019"));
    assert_eq!(w.version.as_deref(), Some("10.0.17763"));
    // Select\Current = 2: the stale ControlSet001 (with viostor) is not read.
    assert_eq!(w.current_control_set.as_deref(), Some("ControlSet002"));
    assert_eq!(w.drivers.virtio, Some(false));
    assert_eq!(w.drivers.virtio_in_initramfs, Some(false));
    assert_eq!(w.drivers.nvme, Some(true));
    assert_eq!(w.drivers.nvme_in_initramfs, Some(false));
    assert_eq!(w.cloud_init, Some(false));
    // cmd.exe is compressed: the architecture comes from PROCESSOR_ARCHITECTURE.
    assert_eq!(w.architecture.as_deref(), Some("x86_64"));
    let c = codes(&w);
    assert!(c.contains(&"windows.dirty_hive"), "{c:?}");
    assert!(c.contains(&"windows.no_virtio"), "{c:?}");
    assert!(c.contains(&"windows.cmd_unreadable"), "{c:?}");
    let dirty = w
        .findings
        .iter()
        .find(|f| f.code == "windows.dirty_hive")
        .unwrap();
    assert!(dirty.message.contains("SYSTEM") && dirty.message.contains("9 and 8"));
    let unreadable = w
        .findings
        .iter()
        .find(|f| f.code == "windows.cmd_unreadable")
        .unwrap();
    assert!(
        unreadable.message.contains("cmd.exe"),
        "{}",
        unreadable.message
    );
}

#[test]
fn server_2012_r2_from_current_version_string() {
    let w = inspect_img("ntfs-win2012r2.img");
    assert_eq!((w.major_version, w.minor_version), (Some(6), Some(3)));
    assert_eq!(w.version.as_deref(), Some("6.3.9600"));
    assert_eq!(w.product.as_deref(), Some("Windows Server 2012 R2"));
    assert_eq!(w.platform.as_deref(), Some("Windows Server 2012"));
    // viostor is installed but demand-start (3).
    assert_eq!(w.drivers.virtio, Some(true));
    assert_eq!(w.drivers.virtio_in_initramfs, Some(false));
    assert_eq!(codes(&w), ["windows.virtio_not_boot_start"]);
    // No service, but the program directory.
    assert_eq!(w.cloud_init, Some(true));
    assert!(
        w.drivers
            .evidence
            .iter()
            .any(|e| e.contains("Cloudbase-Init exists"))
    );
}

#[test]
fn windows_11_client_on_arm64() {
    let w = inspect_img("ntfs-win11.img");
    assert_eq!(w.product_name.as_deref(), Some("Windows 10 Pro"));
    assert_eq!(w.product.as_deref(), Some("Windows 11"));
    assert!(!w.server);
    assert_eq!(w.platform.as_deref(), Some(OTHER_WINDOWS));
    assert_eq!(w.architecture.as_deref(), Some("arm64"));
    let c = codes(&w);
    assert!(c.contains(&"windows.client_edition"), "{c:?}");
    assert!(c.contains(&"windows.no_virtio"), "{c:?}");
    let f = w
        .findings
        .iter()
        .find(|f| f.code == "windows.client_edition")
        .unwrap();
    assert!(f.message.contains("Windows Server"), "{}", f.message);
}

#[test]
fn server_2025_is_other_windows_and_is_hibernated() {
    let w = inspect_img("ntfs-win2025.img");
    assert_eq!(w.product.as_deref(), Some("Windows Server 2025"));
    assert_eq!(w.platform.as_deref(), Some(OTHER_WINDOWS));
    let c = codes(&w);
    assert!(c.contains(&"windows.platform_unlisted"), "{c:?}");
    assert!(c.contains(&"windows.hibernated"), "{c:?}");
}

#[test]
fn server_2008_i386() {
    let w = inspect_img("ntfs-win2008.img");
    assert_eq!(w.version.as_deref(), Some("6.0.6002"));
    assert_eq!(w.product.as_deref(), Some("Windows Server 2008"));
    assert_eq!(w.platform.as_deref(), Some("Windows Server 2008"));
    assert_eq!(w.architecture.as_deref(), Some("i386"));
    assert_eq!(w.drivers.virtio_in_initramfs, Some(true));
    assert_eq!(codes(&w), ["windows.no_nvme"]);
}

#[test]
fn a_truncated_hive_is_a_finding_and_the_rest_is_still_read() {
    let w = inspect_img("ntfs-badhive.img");
    let c = codes(&w);
    assert!(c.contains(&"windows.hive_corrupt"), "{c:?}");
    assert!(c.contains(&"windows.version_unknown"), "{c:?}");
    let f = w
        .findings
        .iter()
        .find(|f| f.code == "windows.hive_corrupt")
        .unwrap();
    assert!(
        f.message.contains("SOFTWARE") && f.message.contains("0x28"),
        "{}",
        f.message
    );
    assert_eq!(w.product_name, None);
    assert_eq!(w.platform, None);
    // SYSTEM and cmd.exe are fine.
    assert_eq!(w.architecture.as_deref(), Some("x86_64"));
    assert_eq!(w.drivers.virtio_in_initramfs, Some(true));
}

#[test]
fn a_volume_without_systemroot_is_not_windows() {
    let fs = fat::open(Arc::new(test_image("esp32.img"))).unwrap();
    assert!(inspect(&fs, &ReadLog::default()).unwrap().is_none());
}

#[test]
fn facts_serialize() {
    let w = inspect_img("ntfs-win2019.img");
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(json["platform"], "Windows Server 2019");
    assert_eq!(json["findings"][0]["severity"], "warning");
}

/// Every string and number value our reader finds under `key` equals what hivexget (libhivex,
/// an independent implementation) prints for it.
fn agrees_with_hivexget(hive_file: &str, key: &str) -> usize {
    let bytes = test_image(hive_file);
    let hive = Hive::parse(&bytes).unwrap();
    let k = hive.key(key).unwrap().unwrap();
    let path = crate::fs::fat::tests::test_image_path(hive_file);
    let mut checked = 0;
    for v in k.values().unwrap() {
        let ours = match v.data().unwrap() {
            crate::registry::ValueData::String(s) | crate::registry::ValueData::ExpandString(s) => {
                s
            }
            crate::registry::ValueData::Dword(d) => d.to_string(),
            crate::registry::ValueData::Qword(q) => q.to_string(),
            _ => continue,
        };
        let out = std::process::Command::new("hivexget")
            .arg(&path)
            .arg(key)
            .arg(v.name())
            .output()
            .expect("hivexget (libhivex-bin) is installed by scripts/install-deps.sh");
        assert!(out.status.success(), "hivexget {key} {}", v.name());
        let theirs = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            ours,
            theirs.trim_end_matches('\n'),
            "{hive_file} {key} {}",
            v.name()
        );
        checked += 1;
    }
    checked
}

#[test]
fn registry_reads_match_hivexget() {
    let mut checked = 0;
    for set in [
        "win2022",
        "win2019",
        "win2012r2",
        "win11",
        "win2025",
        "win2008",
    ] {
        checked += agrees_with_hivexget(
            &format!("hives/{set}/SOFTWARE"),
            "Microsoft\\Windows NT\\CurrentVersion",
        );
        checked += agrees_with_hivexget(&format!("hives/{set}/SYSTEM"), "Select");
        checked += agrees_with_hivexget(
            &format!("hives/{set}/SYSTEM"),
            "ControlSet001\\Control\\Session Manager\\Environment",
        );
    }
    checked += agrees_with_hivexget("hives/win2022/SYSTEM", "ControlSet001\\Services\\viostor");
    assert!(checked > 60, "{checked} values compared");
}

#[test]
fn hostile_hives_become_findings_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0x4849_5645);
    for file in ["hives/win2022/SOFTWARE", "hives/win2019/SYSTEM"] {
        let good = test_image(file);
        for _ in 0..300 {
            let mut bytes = good.clone();
            for _ in 0..rng.usize(1..10) {
                let i = rng.usize(4096..bytes.len());
                bytes[i] = rng.u8(..);
            }
            let mut w = WindowsFacts::default();
            let ok = with_hive(&bytes, "SOFTWARE", &mut w, read_software);
            let ok2 = with_hive(&bytes, "SYSTEM", &mut w, |h, w| read_system(h, w).map(drop));
            // A failure is always reported as a finding.
            assert!(ok && ok2 || w.findings.iter().any(|f| f.code == "windows.hive_corrupt"));
            classify(&mut w, false);
        }
    }
}

#[test]
fn architecture_cross_check_rules() {
    // The ESP's BOOTX64.EFI is an x86_64 PE file; lower.txt is not a PE file.
    let fs = fat::open(Arc::new(test_image("esp32.img"))).unwrap();
    let run = |path: &str, reg: Option<&str>| {
        let mut w = WindowsFacts::default();
        let log = ReadLog::default();
        architecture(
            &fs,
            path,
            reg.map(str::to_string),
            &Failed { log: &log },
            &mut w,
        );
        assert_eq!(log.count(), 0);
        (w.architecture.clone(), codes(&w).join(","))
    };
    let pe = "/EFI/BOOT/BOOTX64.EFI";
    assert_eq!(
        run(pe, Some("AMD64")),
        (Some("x86_64".into()), String::new())
    );
    assert_eq!(
        run(pe, Some("x86")),
        (Some("x86_64".into()), "windows.arch_mismatch".into())
    );
    assert_eq!(
        run(pe, Some("IA64")),
        (Some("x86_64".into()), "windows.arch_unsupported".into())
    );
    assert_eq!(
        run("/lower.txt", Some("ARM64")),
        (Some("arm64".into()), "windows.cmd_not_pe".into())
    );
    assert_eq!(
        run("/lower.txt", None),
        (None, "windows.cmd_not_pe,windows.arch_unknown".into())
    );
}

/// Issue 20 item 2: `\WINNT` (NT 4.0, 2000, 2003 upgraded from 2000) and any case of the
/// path mark a system volume; a `Windows` folder without `System32\config` does not.
#[test]
fn system_config_in_winnt_and_any_case() {
    use crate::fs::memfs::MemFs;
    for (dir, want) in [
        ("/Windows/System32/config", true),
        ("/WINDOWS/system32/config", true),
        ("/WINNT/system32/config", true),
        ("/winnt/SYSTEM32/CONFIG", true),
        ("/Win32/System32/config", true),
        ("/Windows/System32", false),
        ("/Data/Windows/System32/config", false),
    ] {
        let mut fs = MemFs::default();
        fs.dir(dir);
        assert_eq!(has_system_config(&fs).unwrap(), want, "{dir}");
    }
    // and the SystemRoot is found there
    let mut fs = MemFs::default();
    fs.dir("/WINNT/system32/config")
        .file("/WINNT/system32/cmd.exe", b"MZ");
    let w = inspect(&fs, &ReadLog::default())
        .unwrap()
        .expect("a system volume");
    assert_eq!(w.systemroot, "/WINNT");
}

/// Issue 20 item 3: the values of `CurrentVersion` (ProductName, EditionID,
/// InstallationType, the version and CurrentBuild) and SYSTEM's ProductType → our product
/// name and the ImportImage `Platform` (docs/CLOUD-API.md §ImportImage names Windows Server
/// 2003 to 2022; Server 2025, Windows 2000 Server, build-only servers and client editions are
/// `Other Windows`), with the finding that says why the Platform is not a named one.
#[test]
fn editions_map_to_documented_platforms() {
    /// ProductName, EditionID, InstallationType, ProductType, major.minor.build; then our
    /// product name, the Platform, and the finding (if any).
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        (u32, u32, u32),
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );
    const UNLISTED: Option<&str> = Some("windows.platform_unlisted");
    const CLIENT: Option<&str> = Some("windows.client_edition");
    let s = Some;
    let cases: &[Case] = &[
        (
            "Windows Server 2025 Datacenter",
            s("ServerDatacenter"),
            s("Server"),
            s("ServerNT"),
            (10, 0, 26100),
            "Windows Server 2025",
            s(OTHER_WINDOWS),
            UNLISTED,
        ),
        (
            "Windows Server 2022 Standard",
            s("ServerStandard"),
            s("Server Core"),
            None,
            (10, 0, 20348),
            "Windows Server 2022",
            s("Windows Server 2022"),
            None,
        ),
        (
            "Windows Server 2022 Datacenter: Azure Edition",
            s("ServerTurbine"),
            s("Server"),
            None,
            (10, 0, 20348),
            "Windows Server 2022",
            s("Windows Server 2022"),
            None,
        ),
        (
            "Windows Server 2019 Datacenter",
            s("ServerDatacenter"),
            s("Server"),
            s("LanmanNT"),
            (10, 0, 17763),
            "Windows Server 2019",
            s("Windows Server 2019"),
            None,
        ),
        (
            "Windows Server 2016 Datacenter",
            s("ServerDatacenterNano"),
            s("Nano Server"),
            None,
            (10, 0, 14393),
            "Windows Server 2016",
            s("Windows Server 2016"),
            None,
        ),
        (
            "Windows Server 2016 Standard Evaluation",
            s("ServerStandardEval"),
            None,
            None,
            (10, 0, 14393),
            "Windows Server 2016",
            s("Windows Server 2016"),
            None,
        ),
        (
            "Windows Server Datacenter",
            s("ServerDatacenterACor"),
            s("Server Core"),
            None,
            (10, 0, 19042),
            "Windows Server (build 19042)",
            s(OTHER_WINDOWS),
            UNLISTED,
        ),
        (
            "Windows Server 2012 R2 Datacenter",
            s("ServerDatacenter"),
            s("Server"),
            None,
            (6, 3, 9600),
            "Windows Server 2012 R2",
            s("Windows Server 2012"),
            None,
        ),
        (
            "Windows Server 2012 Standard",
            s("ServerStandard"),
            s("Server"),
            None,
            (6, 2, 9200),
            "Windows Server 2012",
            s("Windows Server 2012"),
            None,
        ),
        (
            "Windows Server 2008 R2 Enterprise",
            s("ServerEnterprise"),
            s("Server"),
            None,
            (6, 1, 7601),
            "Windows Server 2008 R2",
            s("Windows Server 2008"),
            None,
        ),
        (
            "Windows Server (R) 2008 Standard",
            s("ServerStandard"),
            None,
            None,
            (6, 0, 6002),
            "Windows Server 2008",
            s("Windows Server 2008"),
            None,
        ),
        (
            "Microsoft Windows Server 2003 R2",
            None,
            None,
            None,
            (5, 2, 3790),
            "Windows Server 2003 R2",
            s("Windows Server 2003"),
            None,
        ),
        (
            "Microsoft Windows Server 2003",
            None,
            None,
            s("ServerNT"),
            (5, 2, 3790),
            "Windows Server 2003",
            s("Windows Server 2003"),
            None,
        ),
        // Windows 2000 Server says "Server" nowhere but in ProductType.
        (
            "Microsoft Windows 2000",
            None,
            None,
            s("LanmanNT"),
            (5, 0, 2195),
            "Windows 2000 Server",
            s(OTHER_WINDOWS),
            UNLISTED,
        ),
        (
            "Microsoft Windows 2000",
            None,
            None,
            s("WinNT"),
            (5, 0, 2195),
            "Windows 2000",
            s(OTHER_WINDOWS),
            CLIENT,
        ),
        (
            "Microsoft Windows XP",
            None,
            None,
            s("WinNT"),
            (5, 2, 3790),
            "Windows XP",
            s(OTHER_WINDOWS),
            CLIENT,
        ),
        // Multi-session Windows 10 has a server EditionID; InstallationType decides.
        (
            "Windows 10 Enterprise multi-session",
            s("ServerRdsh"),
            s("Client"),
            s("WinNT"),
            (10, 0, 19045),
            "Windows 10",
            s(OTHER_WINDOWS),
            CLIENT,
        ),
        (
            "Windows 10 Pro",
            s("Professional"),
            s("Client"),
            None,
            (10, 0, 26100),
            "Windows 11",
            s(OTHER_WINDOWS),
            CLIENT,
        ),
        (
            "Windows 7 Professional",
            s("Professional"),
            s("Client"),
            None,
            (6, 1, 7601),
            "Windows 7",
            s(OTHER_WINDOWS),
            CLIENT,
        ),
    ];
    for &(name, edition, installation, product_type, (ma, mi, b), product, platform, finding) in
        cases
    {
        let mut w = WindowsFacts {
            product_name: Some(name.into()),
            edition_id: edition.map(str::to_string),
            installation_type: installation.map(str::to_string),
            product_type: product_type.map(str::to_string),
            major_version: Some(ma),
            minor_version: Some(mi),
            build: Some(b),
            ..Default::default()
        };
        classify(&mut w, false);
        let what = format!("{name} ({edition:?}, {installation:?}, {ma}.{mi}.{b})");
        assert_eq!(w.product.as_deref(), Some(product), "{what}");
        assert_eq!(w.platform.as_deref(), platform, "{what}");
        assert_eq!(codes(&w), finding.into_iter().collect::<Vec<_>>(), "{what}");
        assert_eq!(w.version, Some(format!("{ma}.{mi}.{b}")), "{what}");
    }
}

/// ProductType is read from the current control set's `Control\ProductOptions` (a SYSTEM
/// hive made by the registry tests' builder): Windows 2000 Server says "Server" nowhere else.
#[test]
fn product_type_from_the_current_control_set() {
    use crate::registry::tests::{Builder, utf16z};
    const REG_SZ: u32 = 1;
    const REG_DWORD: u32 = 4;
    let mut b = Builder::new();
    let current = b.vk("Current", REG_DWORD, &2u32.to_le_bytes());
    let select = b.nk("Select", &[], &[current]);
    // ControlSet001 says workstation, ControlSet002 (the current one) server.
    let control_set = |b: &mut Builder, name: &str, product_type: &str| {
        let t = b.vk("ProductType", REG_SZ, &utf16z(product_type));
        let options = b.nk("ProductOptions", &[], &[t]);
        let control = b.nk("Control", &[options], &[]);
        b.nk(name, &[control], &[])
    };
    let cs1 = control_set(&mut b, "ControlSet001", "WinNT");
    let cs2 = control_set(&mut b, "ControlSet002", "LanmanNT");
    let root = b.nk("SYSTEM", &[select, cs1, cs2], &[]);
    let hive = b.finish(root);
    let mut w = WindowsFacts {
        product_name: Some("Microsoft Windows 2000".into()),
        major_version: Some(5),
        minor_version: Some(0),
        build: Some(2195),
        ..Default::default()
    };
    assert!(with_hive(&hive, "SYSTEM", &mut w, |h, w| read_system(h, w).map(drop)));
    assert_eq!(w.product_type.as_deref(), Some("LanmanNT"));
    classify(&mut w, false);
    assert!(w.server);
    assert_eq!(w.product.as_deref(), Some("Windows 2000 Server"));
}

//! Tests of the Linux recipes on in-memory guest trees.
//!
//! Kept whole: the release-file and os-release tables and the driver/boot cases share one
//! in-memory tree builder; each table is read against docs/CLOUD-API.md.

use std::sync::Arc;

use super::super::fs::memfs::MemFs;
use super::*;

fn guest(files: &[(&str, &str)]) -> Guest {
    let mut fs = MemFs::default();
    fs.dir("/etc").dir("/bin").file("/etc/hosts", b"");
    for (p, c) in files {
        fs.file(p, c.as_bytes());
    }
    Guest::new(Arc::new(fs))
}

fn os_release(id: &str, name: &str, extra: &str) -> String {
    format!("NAME=\"{name}\"\nID={id}\nVERSION_ID=\"1.2\"\nPRETTY_NAME=\"{name} 1.2\"\n{extra}")
}

/// Every Linux `Platform` value reachable from an os-release id (docs/CLOUD-API.md
/// §ImportImage).
#[test]
fn os_release_ids_map_to_every_linux_platform() {
    let cases = [
        ("alinux", "Alibaba Cloud Linux", "", "Aliyun"),
        ("anolis", "Anolis OS", "", "Anolis"),
        ("centos", "CentOS Linux", "", "CentOS"),
        ("centos", "CentOS Stream", "", "CentOS Stream"),
        ("ubuntu", "Ubuntu", "", "Ubuntu"),
        ("coreos", "Container Linux by CoreOS", "", "CoreOS"),
        ("sles", "SLES", "", "SUSE"),
        ("debian", "Debian GNU/Linux", "", "Debian"),
        ("opensuse-leap", "openSUSE Leap", "", "OpenSUSE"),
        ("freebsd", "FreeBSD", "", "FreeBSD"),
        ("rhel", "Red Hat Enterprise Linux", "", "RedHat"),
        ("kylin", "Kylin Linux Advanced Server", "", "Kylin"),
        ("uos", "UOS Server", "", "UOS"),
        ("fedora", "Fedora Linux", "", "Fedora"),
        (
            "fedora",
            "Fedora CoreOS",
            "VARIANT_ID=coreos\n",
            "Fedora CoreOS",
        ),
        ("almalinux", "AlmaLinux", "", "AlmaLinux"),
        ("rocky", "Rocky Linux", "", "Rocky Linux"),
        ("gentoo", "Gentoo", "", "Gentoo"),
        ("amzn", "Amazon Linux", "", OTHERS_LINUX),
        ("arch", "Arch Linux", "", OTHERS_LINUX),
    ];
    for (id, name, extra, platform) in cases {
        let g = guest(&[("/etc/os-release", &os_release(id, name, extra))]);
        let os = detect(&g).unwrap();
        assert_eq!(os.platform, platform, "{id} {name}");
        assert_eq!(os.distro, id);
        assert_eq!(os.version.as_deref(), Some("1.2"));
        assert_eq!(os.product_name.unwrap(), format!("{name} 1.2"));
    }
}

/// What, its files (path, text), and the Platform, id and version they give.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// os-release files as the distributions ship them (issue 20 item 4); a release file beside
/// one refines the version where the distribution keeps the minor only there.
const OS_RELEASE_CASES: &[Case] = &[
    (
        "Alibaba Cloud Linux 3",
        &[
            (
                "/etc/os-release",
                "NAME=\"Alibaba Cloud Linux\"\nVERSION=\"3 (Soaring Falcon)\"\nID=\"alinux\"\nID_LIKE=\"rhel fedora centos anolis\"\nVERSION_ID=\"3\"\nPLATFORM_ID=\"platform:al8\"\nPRETTY_NAME=\"Alibaba Cloud Linux 3 (Soaring Falcon)\"\nANSI_COLOR=\"0;31\"\nHOME_URL=\"https://www.aliyun.com/\"\n",
            ),
            (
                "/etc/alinux-release",
                "Alibaba Cloud Linux release 3.2104 U8 (OpenAnolis Edition)\n",
            ),
        ],
        "Aliyun",
        "alinux",
        Some("3.2104"),
    ),
    (
        "Anolis OS 8",
        &[(
            "/etc/os-release",
            "NAME=\"Anolis OS\"\nVERSION=\"8.8\"\nID=\"anolis\"\nID_LIKE=\"rhel fedora centos\"\nVERSION_ID=\"8.8\"\nPLATFORM_ID=\"platform:an8\"\nPRETTY_NAME=\"Anolis OS 8.8\"\nANSI_COLOR=\"0;31\"\n",
        )],
        "Anolis",
        "anolis",
        Some("8.8"),
    ),
    (
        "CentOS 7",
        &[
            (
                "/etc/os-release",
                "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\nANSI_COLOR=\"0;31\"\nCPE_NAME=\"cpe:/o:centos:centos:7\"\n",
            ),
            (
                "/etc/centos-release",
                "CentOS Linux release 7.9.2009 (Core)\n",
            ),
        ],
        "CentOS",
        "centos",
        Some("7.9"),
    ),
    (
        "CentOS Stream 9",
        &[(
            "/etc/os-release",
            "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"CentOS Stream 9\"\nANSI_COLOR=\"0;31\"\n",
        )],
        "CentOS Stream",
        "centos",
        Some("9"),
    ),
    (
        "Rocky Linux 9",
        &[(
            "/etc/os-release",
            "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n",
        )],
        "Rocky Linux",
        "rocky",
        Some("9.3"),
    ),
    (
        "AlmaLinux 9",
        &[(
            "/etc/os-release",
            "NAME=\"AlmaLinux\"\nVERSION=\"9.3 (Shamrock Pampas Cat)\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pampas Cat)\"\n",
        )],
        "AlmaLinux",
        "almalinux",
        Some("9.3"),
    ),
    (
        "RHEL 9",
        &[(
            "/etc/os-release",
            "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.2 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.2\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.2 (Plow)\"\n",
        )],
        "RedHat",
        "rhel",
        Some("9.2"),
    ),
    (
        "Fedora 39 Cloud",
        &[(
            "/etc/os-release",
            "NAME=\"Fedora Linux\"\nVERSION=\"39 (Cloud Edition)\"\nID=fedora\nVERSION_ID=39\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f39\"\nPRETTY_NAME=\"Fedora Linux 39 (Cloud Edition)\"\nVARIANT=\"Cloud Edition\"\nVARIANT_ID=cloud\n",
        )],
        "Fedora",
        "fedora",
        Some("39"),
    ),
    (
        "Fedora CoreOS 39",
        &[(
            "/usr/lib/os-release",
            "NAME=\"Fedora Linux\"\nVERSION=\"39.20231204.3.3 (CoreOS)\"\nID=fedora\nVERSION_ID=39\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f39\"\nPRETTY_NAME=\"Fedora CoreOS 39.20231204.3.3\"\nVARIANT=\"CoreOS\"\nVARIANT_ID=coreos\nOSTREE_VERSION='39.20231204.3.3'\n",
        )],
        "Fedora CoreOS",
        "fedora",
        Some("39"),
    ),
    (
        "Container Linux by CoreOS",
        &[(
            "/usr/lib/os-release",
            "NAME=\"Container Linux by CoreOS\"\nID=coreos\nVERSION=2512.3.0\nVERSION_ID=2512.3.0\nBUILD_ID=2020-06-20-0339\nPRETTY_NAME=\"Container Linux by CoreOS 2512.3.0 (Oklo)\"\nANSI_COLOR=\"38;5;75\"\n",
        )],
        "CoreOS",
        "coreos",
        Some("2512.3.0"),
    ),
    (
        "Ubuntu 22.04",
        &[(
            "/etc/os-release",
            "PRETTY_NAME=\"Ubuntu 22.04.3 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n",
        )],
        "Ubuntu",
        "ubuntu",
        Some("22.04"),
    ),
    (
        "Debian 12",
        &[
            (
                "/etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
            ),
            ("/etc/debian_version", "12.15\n"),
        ],
        "Debian",
        "debian",
        Some("12.15"),
    ),
    (
        "SLES 15 SP5",
        &[(
            "/etc/os-release",
            "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp5\"\n",
        )],
        "SUSE",
        "sles",
        Some("15.5"),
    ),
    (
        "openSUSE Leap 15.5",
        &[(
            "/usr/lib/os-release",
            "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"openSUSE Leap 15.5\"\n",
        )],
        "OpenSUSE",
        "opensuse-leap",
        Some("15.5"),
    ),
    (
        "openSUSE Tumbleweed",
        &[(
            "/usr/lib/os-release",
            "NAME=\"openSUSE Tumbleweed\"\n# VERSION=\"20231204\"\nID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\nVERSION_ID=\"20231204\"\nPRETTY_NAME=\"openSUSE Tumbleweed\"\n",
        )],
        "OpenSUSE",
        "opensuse-tumbleweed",
        Some("20231204"),
    ),
    (
        "FreeBSD 14",
        &[(
            "/etc/os-release",
            "NAME=FreeBSD\nVERSION=\"14.0-RELEASE\"\nVERSION_ID=\"14.0\"\nID=freebsd\nANSI_COLOR=\"0;31\"\nPRETTY_NAME=\"FreeBSD 14.0-RELEASE\"\n",
        )],
        "FreeBSD",
        "freebsd",
        Some("14.0"),
    ),
    (
        "Kylin V10",
        &[(
            "/etc/os-release",
            "NAME=\"Kylin Linux Advanced Server\"\nVERSION=\"V10 (Sword)\"\nID=\"kylin\"\nVERSION_ID=\"V10\"\nPRETTY_NAME=\"Kylin Linux Advanced Server V10 (Sword)\"\nANSI_COLOR=\"0;31\"\n",
        )],
        "Kylin",
        "kylin",
        Some("V10"),
    ),
    (
        "UOS Server 20",
        &[(
            "/etc/os-release",
            "PRETTY_NAME=\"UnionTech OS Server 20\"\nNAME=\"UnionTech OS Server 20\"\nVERSION_ID=\"20\"\nVERSION=\"20\"\nID=uos\nHOME_URL=\"https://www.chinauos.com/\"\n",
        )],
        "UOS",
        "uos",
        Some("20"),
    ),
    (
        "Gentoo",
        &[(
            "/etc/os-release",
            "NAME=Gentoo\nID=gentoo\nPRETTY_NAME=\"Gentoo Linux\"\nANSI_COLOR=\"1;32\"\nVERSION_ID=\"2.14\"\n",
        )],
        "Gentoo",
        "gentoo",
        Some("2.14"),
    ),
    // No Platform value of their own in the ImportImage list: Others Linux.
    (
        "openEuler 22.03",
        &[(
            "/etc/os-release",
            "NAME=\"openEuler\"\nVERSION=\"22.03 (LTS-SP2)\"\nID=\"openEuler\"\nVERSION_ID=\"22.03\"\nPRETTY_NAME=\"openEuler 22.03 (LTS-SP2)\"\nANSI_COLOR=\"0;31\"\n",
        )],
        OTHERS_LINUX,
        "openeuler",
        Some("22.03"),
    ),
    (
        "Oracle Linux 8",
        &[(
            "/etc/os-release",
            "NAME=\"Oracle Linux Server\"\nVERSION=\"8.9\"\nID=\"ol\"\nID_LIKE=\"fedora\"\nVARIANT=\"Server\"\nVARIANT_ID=\"server\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Oracle Linux Server 8.9\"\n",
        )],
        OTHERS_LINUX,
        "ol",
        Some("8.9"),
    ),
    (
        "Amazon Linux 2023",
        &[(
            "/etc/os-release",
            "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPLATFORM_ID=\"platform:al2023\"\nPRETTY_NAME=\"Amazon Linux 2023\"\n",
        )],
        OTHERS_LINUX,
        "amzn",
        Some("2023"),
    ),
];

/// Release files of distributions older than os-release (or images without it), one per
/// file the recipe knows (docs/INSPECTION.md §Linux steps 2 and 3).
const RELEASE_FILE_CASES: &[Case] = &[
    (
        "RHEL 6",
        &[(
            "/etc/redhat-release",
            "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n",
        )],
        "RedHat",
        "rhel",
        Some("6.10"),
    ),
    (
        "CentOS 6",
        &[("/etc/centos-release", "CentOS release 6.10 (Final)\n")],
        "CentOS",
        "centos",
        Some("6.10"),
    ),
    (
        "CentOS 5 (redhat-release only)",
        &[("/etc/redhat-release", "CentOS release 5.11 (Final)\n")],
        "CentOS",
        "centos",
        Some("5.11"),
    ),
    (
        "CentOS Stream 8",
        &[("/etc/centos-release", "CentOS Stream release 8\n")],
        "CentOS Stream",
        "centos",
        Some("8"),
    ),
    (
        "CentOS Stream 8 (redhat-release only)",
        &[("/etc/redhat-release", "CentOS Stream release 8\n")],
        "CentOS Stream",
        "centos",
        Some("8"),
    ),
    (
        "Fedora 30",
        &[("/etc/redhat-release", "Fedora release 30 (Thirty)\n")],
        "Fedora",
        "fedora",
        Some("30"),
    ),
    (
        "Alibaba Cloud Linux 2",
        &[(
            "/etc/alinux-release",
            "Alibaba Cloud Linux (Aliyun Linux) release 2.1903 LTS (Hunting Beagle)\n",
        )],
        "Aliyun",
        "alinux",
        Some("2.1903"),
    ),
    (
        "Aliyun Linux 17",
        &[("/etc/redhat-release", "Aliyun Linux release 17.1 (Final)\n")],
        "Aliyun",
        "alinux",
        Some("17.1"),
    ),
    (
        "Anolis OS 8",
        &[("/etc/anolis-release", "Anolis OS release 8.8\n")],
        "Anolis",
        "anolis",
        Some("8.8"),
    ),
    (
        "AlmaLinux 8",
        &[(
            "/etc/almalinux-release",
            "AlmaLinux release 8.9 (Midnight Oncilla)\n",
        )],
        "AlmaLinux",
        "almalinux",
        Some("8.9"),
    ),
    (
        "Rocky Linux 8",
        &[(
            "/etc/rocky-release",
            "Rocky Linux release 8.8 (Green Obsidian)\n",
        )],
        "Rocky Linux",
        "rocky",
        Some("8.8"),
    ),
    (
        "Kylin V10",
        &[(
            "/etc/kylin-release",
            "Kylin Linux Advanced Server release V10 (Sword)\n",
        )],
        "Kylin",
        "kylin",
        Some("10"),
    ),
    (
        "Oracle Linux 7",
        &[("/etc/oracle-release", "Oracle Linux Server release 7.9\n")],
        OTHERS_LINUX,
        "ol",
        Some("7.9"),
    ),
    (
        "Debian 8",
        &[("/etc/debian_version", "8.11\n")],
        "Debian",
        "debian",
        Some("8.11"),
    ),
    (
        "Ubuntu 14.04",
        &[(
            "/etc/lsb-release",
            "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\nDISTRIB_DESCRIPTION=\"Ubuntu 14.04.6 LTS\"\n",
        )],
        "Ubuntu",
        "ubuntu",
        Some("14.04"),
    ),
    (
        "Container Linux by CoreOS",
        &[(
            "/etc/lsb-release",
            "DISTRIB_ID=CoreOS\nDISTRIB_RELEASE=1688.5.3\nDISTRIB_CODENAME=\"Rhyolite\"\nDISTRIB_DESCRIPTION=\"CoreOS 1688.5.3 (Rhyolite)\"\n",
        )],
        "CoreOS",
        "coreos",
        Some("1688.5.3"),
    ),
    (
        "SLES 11 SP4",
        &[(
            "/etc/SuSE-release",
            "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n",
        )],
        "SUSE",
        "sles",
        Some("11.4"),
    ),
    (
        "openSUSE 13.2",
        &[(
            "/etc/SuSE-release",
            "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n",
        )],
        "OpenSUSE",
        "opensuse",
        Some("13.2"),
    ),
    (
        "Gentoo",
        &[("/etc/gentoo-release", "Gentoo Base System release 2.14\n")],
        "Gentoo",
        "gentoo",
        Some("2.14"),
    ),
];

fn check_cases(cases: &[Case]) {
    for (what, files, platform, distro, version) in cases {
        let os = detect(&guest(files)).unwrap_or_else(|| panic!("{what}: not detected"));
        assert_eq!(
            (os.platform, os.distro.as_str(), os.version.as_deref()),
            (*platform, *distro, *version),
            "{what}"
        );
        assert!(os.product_name.is_some() || *distro == "debian", "{what}");
    }
}

/// Each os-release text to its ImportImage `Platform` (docs/CLOUD-API.md §ImportImage),
/// distribution id and version.
#[test]
fn real_os_release_texts_map_to_their_platform() {
    check_cases(OS_RELEASE_CASES);
}

/// Each older release file, alone in the tree, to its `Platform`, id and version.
#[test]
fn release_files_map_to_their_platform() {
    check_cases(RELEASE_FILE_CASES);
}

/// The Linux `Platform` values docs/CLOUD-API.md §ImportImage lists: the backquoted words of
/// its `Platform` item that do not name Windows.
fn documented_linux_platforms() -> Vec<String> {
    let doc = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../",
        "docs/CLOUD-API.md"
    ));
    let start = doc
        .find("- `Platform`:")
        .expect("docs/CLOUD-API.md lists Platform");
    let item = &doc[start + 2..];
    // The list is the item's first sentence; the notes after it quote other words.
    let end = item
        .find(". ")
        .into_iter()
        .chain(item.find("\n- "))
        .min()
        .unwrap_or(item.len());
    let values: Vec<String> = item[..end]
        .split('`')
        .skip(3) // "Platform" and the text before the first value
        .step_by(2)
        .map(str::to_string)
        // not the Windows values, nor the bare years of Windows Server
        .filter(|v| v.starts_with(|c: char| c.is_ascii_alphabetic()) && !v.contains("Windows"))
        .collect();
    assert!(values.len() >= 18, "{values:?}");
    values
}

/// Issue 20 item 4: every Linux `Platform` value of the ImportImage documentation is what
/// some real os-release text maps to, and no text maps to a value the documentation lacks.
/// `Customized Linux` is the one a user chooses for a distribution of their own: no release
/// file names it.
#[test]
fn every_documented_linux_platform_is_mapped() {
    let documented = documented_linux_platforms();
    for want in &documented {
        if want == "Customized Linux" {
            continue;
        }
        assert!(
            OS_RELEASE_CASES.iter().any(|c| c.2 == want),
            "no os-release case maps to the documented Platform {want:?}"
        );
    }
    for (what, _, platform, ..) in OS_RELEASE_CASES.iter().chain(RELEASE_FILE_CASES) {
        assert!(
            documented.iter().any(|d| d == platform),
            "{what}: {platform:?} is not a documented Platform value"
        );
    }
}

#[test]
fn minor_versions_from_release_files() {
    let g = guest(&[
        (
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        ),
        ("/etc/debian_version", "12.5\n"),
    ]);
    assert_eq!(detect(&g).unwrap().version.as_deref(), Some("12.5"));
    let g = guest(&[
        (
            "/etc/os-release",
            "ID=\"centos\"\nVERSION_ID=\"7\"\nNAME=\"CentOS Linux\"\n",
        ),
        (
            "/etc/centos-release",
            "CentOS Linux release 7.9.2009 (Core)\n",
        ),
    ]);
    let os = detect(&g).unwrap();
    assert_eq!(
        (os.version.as_deref(), os.platform),
        (Some("7.9"), "CentOS")
    );
    // a release file of another major is not taken
    let g = guest(&[
        ("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
        ("/etc/debian_version", "trixie/sid\n"),
    ]);
    assert_eq!(detect(&g).unwrap().version.as_deref(), Some("12"));
}

#[test]
fn no_release_file_is_no_distribution() {
    assert!(detect(&guest(&[])).is_none());
    // an unknown release file text is not guessed
    assert!(detect(&guest(&[("/etc/redhat-release", "Something else 1.0")])).is_none());
    // lsb-release is trusted only for the ids libguestfs trusts it for
    let lsb = "DISTRIB_ID=Debian\nDISTRIB_RELEASE=12\n";
    assert!(detect(&guest(&[("/etc/lsb-release", lsb)])).is_none());
}

#[test]
fn cloud_init_installed_and_enabled() {
    // (files present, whether systemd wants the service, installed, enabled)
    let cases: [(&[&str], bool, bool, bool); 3] = [
        (&["/usr/bin/cloud-init"], true, true, true),
        (
            &["/usr/bin/cloud-init", "/etc/cloud/cloud-init.disabled"],
            true,
            true,
            false,
        ),
        (&[], false, false, false),
    ];
    for (files, wanted, installed, enabled) in cases {
        let mut fs = MemFs::default();
        for f in files {
            fs.file(f, b"");
        }
        if wanted {
            fs.link(
                "/etc/systemd/system/cloud-init.target.wants/cloud-init.service",
                "/lib/systemd/system/cloud-init.service",
            );
        }
        let g = Guest::new(Arc::new(fs));
        assert_eq!(
            cloud_init(&g),
            CloudInit { installed, enabled },
            "{files:?}, wanted {wanted}"
        );
    }
}

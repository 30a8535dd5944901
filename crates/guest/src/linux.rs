//! Linux facts read from a guest tree: distribution, version and product name from the
//! os-release chain and the older release files (docs/INSPECTION.md §Linux), mapped to
//! ImportImage's `Platform` (docs/CLOUD-API.md §ImportImage); hostname; cloud-init and
//! qemu-guest-agent.
//!
//! Owns the OS recipes only; the tree is given as a [`Guest`] (symlinks already resolved
//! inside the guest). Must not read disks or partitions.

use super::fs::{Guest, NodeKind};

/// What the release files say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxOs {
    /// Distribution id, lower case (`debian`, `centos`, `alinux`, `rhel` …).
    pub distro: String,
    /// `major.minor` when known, else `major`; `None` when no file gives one.
    pub version: Option<String>,
    pub product_name: Option<String>,
    /// ImportImage `Platform`; `Others Linux` when the distribution has no value of its own.
    pub platform: &'static str,
}

/// The `Platform` value for an unknown or unlisted Linux (docs/CLOUD-API.md §ImportImage: the
/// default).
pub const OTHERS_LINUX: &str = "Others Linux";

/// Parses `KEY=value` lines (os-release, lsb-release), unquoting values.
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

fn get<'a>(kv: &'a [(String, String)], key: &str) -> Option<&'a str> {
    kv.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The first `N` or `N.M…` number in `text` after the word `release` (or anywhere when the
/// word is absent), cut to `major.minor`.
pub fn release_version(text: &str) -> Option<String> {
    let line = text.lines().next().unwrap_or("");
    let tail = line.find("release").map(|i| &line[i + 7..]).unwrap_or(line);
    let start = tail.find(|c: char| c.is_ascii_digit())?;
    let num: String = tail[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = num.split('.').filter(|p| !p.is_empty());
    let major = parts.next()?;
    Some(match parts.next() {
        Some(minor) => format!("{major}.{minor}"),
        None => major.to_string(),
    })
}

/// The `Platform` for an os-release `ID` (plus `NAME` and `VARIANT_ID`, which tell CentOS
/// Stream and Fedora CoreOS apart). Unknown ids are `Others Linux`, never a guess.
pub fn platform_for(id: &str, name: &str, variant: &str) -> &'static str {
    match id {
        "alinux" | "aliyun" => "Aliyun",
        "anolis" => "Anolis",
        "centos" if name.contains("Stream") => "CentOS Stream",
        "centos" => "CentOS",
        "ubuntu" => "Ubuntu",
        "coreos" => "CoreOS",
        "sles" | "sled" | "sles_sap" => "SUSE",
        "debian" => "Debian",
        "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" | "opensuse-microos" => "OpenSUSE",
        "freebsd" => "FreeBSD",
        "rhel" => "RedHat",
        "kylin" | "neokylin" => "Kylin",
        "uos" | "uniontech" => "UOS",
        "fedora" if variant == "coreos" => "Fedora CoreOS",
        "fedora" => "Fedora",
        "almalinux" => "AlmaLinux",
        "rocky" => "Rocky Linux",
        "gentoo" => "Gentoo",
        _ => OTHERS_LINUX,
    }
}

/// Distributions whose os-release gives only the major version, while a release file
/// carries the minor (docs/INSPECTION.md §Linux).
fn minor_from(distro: &str) -> &'static [&'static str] {
    match distro {
        "debian" => &["/etc/debian_version"],
        "centos" => &["/etc/centos-release", "/etc/redhat-release"],
        "rocky" => &["/etc/rocky-release", "/etc/redhat-release"],
        "almalinux" => &["/etc/almalinux-release", "/etc/redhat-release"],
        "rhel" => &["/etc/redhat-release"],
        "alinux" => &["/etc/alinux-release"],
        _ => &[],
    }
}

/// A more precise version from `file` when it extends `major` (`12` + `12.5` → `12.5`).
fn refine(guest: &Guest, distro: &str, major: &str) -> Option<String> {
    for f in minor_from(distro) {
        let text = guest.read_text(f)?;
        let v = if *f == "/etc/debian_version" {
            let t = text.trim();
            t.chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| t.to_string())
        } else {
            release_version(&text)
        };
        if let Some(v) = v
            && v.starts_with(&format!("{major}."))
        {
            return Some(v);
        }
    }
    None
}

fn from_os_release(guest: &Guest) -> Option<LinuxOs> {
    let text = guest
        .read_text("/etc/os-release")
        .or_else(|| guest.read_text("/usr/lib/os-release"))?;
    let kv = parse_kv(&text);
    let id = get(&kv, "ID")?.to_ascii_lowercase();
    let name = get(&kv, "NAME").unwrap_or("");
    let variant = get(&kv, "VARIANT_ID").unwrap_or("");
    let mut version = get(&kv, "VERSION_ID").map(str::to_string);
    if let Some(v) = &version
        && !v.contains('.')
        && let Some(better) = refine(guest, &id, v)
    {
        version = Some(better);
    }
    Some(LinuxOs {
        platform: platform_for(&id, name, variant),
        product_name: get(&kv, "PRETTY_NAME")
            .or(get(&kv, "NAME"))
            .map(str::to_string),
        distro: id,
        version,
    })
}

/// Release files tried when there is no os-release, in libguestfs's order (docs/INSPECTION.md
/// §Linux), with the ids of the distributions they name.
const RELEASE_FILES: &[(&str, &[(&str, &str)])] = &[
    (
        "/etc/alinux-release",
        &[
            ("Alibaba Cloud Linux", "alinux"),
            ("Aliyun Linux", "alinux"),
        ],
    ),
    ("/etc/anolis-release", &[("Anolis", "anolis")]),
    ("/etc/oracle-release", &[("Oracle", "ol")]),
    ("/etc/almalinux-release", &[("AlmaLinux", "almalinux")]),
    ("/etc/rocky-release", &[("Rocky", "rocky")]),
    (
        "/etc/centos-release",
        &[("CentOS Stream", "centos"), ("CentOS", "centos")],
    ),
    (
        "/etc/redhat-release",
        &[
            ("Fedora", "fedora"),
            ("Red Hat", "rhel"),
            // CentOS Stream 8 and 9 say so here too; before "CentOS", which it contains
            ("CentOS Stream", "centos"),
            ("CentOS", "centos"),
            ("Rocky", "rocky"),
            ("AlmaLinux", "almalinux"),
            ("Alibaba Cloud Linux", "alinux"),
            ("Aliyun Linux", "alinux"),
            ("Anolis", "anolis"),
        ],
    ),
    ("/etc/kylin-release", &[("Kylin", "kylin")]),
    ("/etc/gentoo-release", &[("Gentoo", "gentoo")]),
];

fn from_release_files(guest: &Guest) -> Option<LinuxOs> {
    // lsb-release first (docs/INSPECTION.md §Linux step 2): only the ids libguestfs trusts it for.
    if let Some(text) = guest.read_text("/etc/lsb-release") {
        let kv = parse_kv(&text);
        if let Some(id) = get(&kv, "DISTRIB_ID")
            && matches!(id, "Ubuntu" | "CoreOS" | "LinuxMint" | "Mageia")
        {
            let distro = id.to_ascii_lowercase();
            return Some(LinuxOs {
                platform: platform_for(&distro, "", ""),
                distro,
                version: get(&kv, "DISTRIB_RELEASE").map(str::to_string),
                product_name: get(&kv, "DISTRIB_DESCRIPTION").map(str::to_string),
            });
        }
    }
    for (file, names) in RELEASE_FILES {
        let Some(text) = guest.read_text(file) else {
            continue;
        };
        let first = text.lines().next().unwrap_or("").trim();
        let Some((word, id)) = names.iter().find(|(w, _)| first.contains(w)) else {
            continue;
        };
        let name = if *word == "CentOS Stream" {
            "CentOS Stream"
        } else {
            ""
        };
        return Some(LinuxOs {
            distro: id.to_string(),
            version: release_version(first),
            product_name: Some(first.to_string()),
            platform: platform_for(id, name, ""),
        });
    }
    if let Some(text) = guest.read_text("/etc/debian_version") {
        let v = text.trim();
        return Some(LinuxOs {
            distro: "debian".into(),
            version: v
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                .then(|| v.to_string()),
            product_name: None,
            platform: "Debian",
        });
    }
    if let Some(text) = guest.read_text("/etc/SuSE-release") {
        let first = text.lines().next().unwrap_or("").trim().to_string();
        let kv = parse_kv(&text);
        let (distro, platform) = if first.starts_with("openSUSE") {
            ("opensuse", "OpenSUSE")
        } else {
            ("sles", "SUSE")
        };
        let version = match (get(&kv, "VERSION"), get(&kv, "PATCHLEVEL")) {
            (Some(v), Some(p)) => Some(format!("{v}.{p}")),
            (Some(v), None) => Some(v.to_string()),
            _ => release_version(&first),
        };
        return Some(LinuxOs {
            distro: distro.into(),
            version,
            product_name: Some(first),
            platform,
        });
    }
    None
}

/// The distribution of the Linux tree `guest`; `None` when no release file identifies it.
pub fn detect(guest: &Guest) -> Option<LinuxOs> {
    from_os_release(guest).or_else(|| from_release_files(guest))
}

/// True when `guest` looks like a Linux root (docs/INSPECTION.md §Roles): `/etc` is a directory,
/// `/bin` a directory (or the merged-`/usr` symlink), and `/etc/fstab` or `/etc/hosts` exists.
/// `/bin` is taken as a symlink without following it: with `/usr` on a partition of its own,
/// `usr/bin` exists only once fstab's mounts are in place.
pub fn is_root(guest: &Guest) -> bool {
    guest.is("/etc", NodeKind::Dir)
        && (guest.is("/bin", NodeKind::Dir)
            || matches!(guest.lstat(b"/bin"), Ok(Some(i)) if i.kind == NodeKind::Symlink))
        && (guest.exists("/etc/fstab")
            || guest.exists("/etc/hosts")
            || guest.exists("/etc/os-release"))
}

/// The first line of `/etc/hostname` (or `HOSTNAME=` of the old Red Hat network file).
pub fn hostname(guest: &Guest) -> Option<String> {
    if let Some(t) = guest.read_text("/etc/hostname") {
        let h = t.lines().next().unwrap_or("").trim();
        if !h.is_empty() {
            return Some(h.to_string());
        }
    }
    let t = guest.read_text("/etc/sysconfig/network")?;
    get(&parse_kv(&t), "HOSTNAME").map(str::to_string)
}

/// cloud-init: installed, and whether it runs at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudInit {
    pub installed: bool,
    pub enabled: bool,
}

/// cloud-init facts (docs/INSPECTION.md §Cloud-init): installed when its program or
/// `/etc/cloud/cloud.cfg` exists; enabled unless `/etc/cloud/cloud-init.disabled` exists, and, on
/// systemd, only when a `cloud-init*` unit is wanted by a target (or the unit is masked off).
pub fn cloud_init(guest: &Guest) -> CloudInit {
    let installed = guest.exists("/usr/bin/cloud-init") || guest.exists("/etc/cloud/cloud.cfg");
    if !installed || guest.exists("/etc/cloud/cloud-init.disabled") {
        return CloudInit {
            installed,
            enabled: false,
        };
    }
    let masked = matches!(
        guest.read_link(b"/etc/systemd/system/cloud-init.service"),
        Ok(Some(t)) if t == b"/dev/null"
    );
    let wants = [
        "/etc/systemd/system/cloud-init.target.wants",
        "/etc/systemd/system/multi-user.target.wants",
    ];
    let wanted = wants.iter().any(|dir| {
        matches!(guest.read_dir(dir.as_bytes()), Ok(Some(entries))
            if entries.iter().any(|e| e.name.starts_with(b"cloud-init")))
    });
    // Without systemd (SysV init) the init scripts are the evidence.
    let sysv = !guest.exists("/etc/systemd") && guest.exists("/etc/init.d/cloud-init");
    CloudInit {
        installed,
        enabled: !masked && (wanted || sysv),
    }
}

/// True when the QEMU guest agent's program is installed.
pub fn qemu_guest_agent(guest: &Guest) -> bool {
    [
        "/usr/bin/qemu-ga",
        "/usr/sbin/qemu-ga",
        "/usr/libexec/qemu-ga",
    ]
    .iter()
    .any(|p| guest.exists(p))
}

#[cfg(test)]
mod tests;

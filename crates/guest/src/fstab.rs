//! `/etc/fstab`: which device the guest mounts where (docs/INSPECTION.md §Fstab), used to mount
//! separate `/boot`, `/usr` … volumes under the root and to flag device names that change on the
//! cloud.

/// How an fstab line names its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Uuid(String),
    Label(String),
    PartUuid(String),
    PartLabel(String),
    /// A kernel device name such as `/dev/sda1`, `/dev/vdb`, `/dev/xvda2`, `/dev/nvme0n1p1`.
    Kernel(String),
    /// Any other path (`/dev/mapper/…`, `/dev/<vg>/<lv>`, `/dev/disk/by-…`).
    Path(String),
    /// Pseudo file systems (`proc`, `tmpfs`, `none` …).
    Other(String),
}

impl DeviceSpec {
    /// True for `/dev/sdX`, `/dev/vdX`, `/dev/xvdX` and `/dev/hdX` names, which are renamed
    /// when the disk moves to another controller (e.g. to `nvme0n1p1`).
    pub fn is_unstable_kernel_name(&self) -> bool {
        match self {
            DeviceSpec::Kernel(d) => ["/dev/sd", "/dev/vd", "/dev/xvd", "/dev/hd"]
                .iter()
                .any(|p| d.starts_with(p)),
            _ => false,
        }
    }
}

/// One mount line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    pub device: DeviceSpec,
    pub mountpoint: String,
    pub fstype: String,
    pub options: String,
}

/// Most lines parsed (fstab files are small; a bound against hostile ones).
const MAX_LINES: usize = 10_000;

fn unescape(s: &str) -> String {
    // fstab escapes spaces and tabs as \040 and \011 (fstab(5)).
    s.replace("\\040", " ").replace("\\011", "\t")
}

fn spec(raw: &str) -> DeviceSpec {
    let val = |p: &str| unescape(raw[p.len()..].trim_matches('"'));
    if raw.starts_with("UUID=") {
        DeviceSpec::Uuid(val("UUID=").to_ascii_lowercase())
    } else if raw.starts_with("LABEL=") {
        DeviceSpec::Label(val("LABEL="))
    } else if raw.starts_with("PARTUUID=") {
        DeviceSpec::PartUuid(val("PARTUUID=").to_ascii_lowercase())
    } else if raw.starts_with("PARTLABEL=") {
        DeviceSpec::PartLabel(val("PARTLABEL="))
    } else if let Some(u) = raw.strip_prefix("/dev/disk/by-uuid/") {
        DeviceSpec::Uuid(unescape(u).to_ascii_lowercase())
    } else if let Some(l) = raw.strip_prefix("/dev/disk/by-label/") {
        DeviceSpec::Label(unescape(l))
    } else if let Some(u) = raw.strip_prefix("/dev/disk/by-partuuid/") {
        DeviceSpec::PartUuid(unescape(u).to_ascii_lowercase())
    } else if let Some(name) = raw.strip_prefix("/dev/")
        && !name.contains('/')
    {
        DeviceSpec::Kernel(raw.to_string())
    } else if raw.starts_with('/') {
        DeviceSpec::Path(unescape(raw))
    } else {
        DeviceSpec::Other(raw.to_string())
    }
}

/// Parses fstab text; comments, blank and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut f = line.split_whitespace();
            let device = spec(f.next()?);
            let mountpoint = unescape(f.next()?);
            let fstype = f.next().unwrap_or("auto").to_string();
            let options = f.next().unwrap_or("defaults").to_string();
            Some(FstabEntry {
                device,
                mountpoint,
                fstype,
                options,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_device_form() {
        let text = "# comment\n\
            UUID=ABCD-1234 /boot/efi vfat umask=0077 0 1\n\
            LABEL=root / ext4 defaults 0 1\n\
            PARTUUID=0d15ea5e-01 /data xfs defaults\n\
            /dev/sda2 /boot ext4 defaults 1 2\n\
            /dev/vdb1 /srv ext4 defaults\n\
            /dev/mapper/centos-root /usr xfs defaults\n\
            /dev/disk/by-uuid/1111 /opt ext4\n\
            tmpfs /tmp tmpfs defaults\n\
            /dev/nvme0n1p3 /home ext4\n\
            LABEL=my\\040disk /mnt/x\\040y ext4\n\
            broken\n";
        let e = parse(text);
        assert_eq!(e.len(), 10);
        assert_eq!(e[0].device, DeviceSpec::Uuid("abcd-1234".into()));
        assert_eq!(e[1].device, DeviceSpec::Label("root".into()));
        assert_eq!(e[2].device, DeviceSpec::PartUuid("0d15ea5e-01".into()));
        assert!(e[3].device.is_unstable_kernel_name());
        assert!(e[4].device.is_unstable_kernel_name());
        assert_eq!(
            e[5].device,
            DeviceSpec::Path("/dev/mapper/centos-root".into())
        );
        assert!(!e[5].device.is_unstable_kernel_name());
        assert_eq!(e[6].device, DeviceSpec::Uuid("1111".into()));
        assert_eq!(e[7].device, DeviceSpec::Other("tmpfs".into()));
        assert!(!e[8].device.is_unstable_kernel_name());
        assert_eq!(e[9].device, DeviceSpec::Label("my disk".into()));
        assert_eq!(e[9].mountpoint, "/mnt/x y");
        assert_eq!(e[0].fstype, "vfat");
    }
}

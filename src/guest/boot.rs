//! Boot mode from the partition table, the ESP and the root tree (reference §5.2.6, §2.7):
//! `UEFI` when only UEFI boot paths exist, `BIOS` when only BIOS paths do, `UEFI-Preferred`
//! when both do (ImportImage then gets `UEFI`; ModifyImageAttribute sets the preference).
//! arm64 boots by UEFI only.

use super::fs::Guest;
use super::partition::{PartitionTable, TableKind};

/// The evidence one disk offers.
#[derive(Debug, Clone, Default)]
pub struct BootEvidence {
    /// An ESP partition (GPT ESP GUID or MBR type 0xEF) exists.
    pub esp_partition: bool,
    /// Loader files found in the ESP's `\EFI\BOOT` (upper-case names, e.g. `BOOTX64.EFI`) and
    /// vendor loaders (`\EFI\<vendor>\*.EFI`); `None` when the ESP could not be read.
    pub esp_loaders: Option<Vec<String>>,
    /// A GPT BIOS boot partition (GRUB's core.img lives there).
    pub bios_boot_partition: bool,
    /// Sector 0 carries boot code (the first 440 bytes are not all zero).
    pub mbr_boot_code: bool,
    /// An MBR partition is marked active.
    pub active_partition: bool,
    /// The root tree has BIOS GRUB modules (`/boot/grub/i386-pc`, `/boot/grub2/i386-pc`).
    pub grub_bios_modules: bool,
    pub table: Option<TableKind>,
}

/// The loader architectures named by the removable-media boot file names (UEFI 2.10 §3.5.1.1).
pub fn loader_arch(name: &str) -> Option<&'static str> {
    match name.to_ascii_uppercase().as_str() {
        "BOOTX64.EFI" => Some("x86_64"),
        "BOOTAA64.EFI" => Some("arm64"),
        "BOOTIA32.EFI" => Some("i386"),
        _ => None,
    }
}

/// Fills the tree part of the evidence from the root file system.
pub fn root_evidence(root: &Guest, ev: &mut BootEvidence) {
    ev.grub_bios_modules = root.exists("/boot/grub/i386-pc") || root.exists("/boot/grub2/i386-pc");
}

/// The EFI loaders on an ESP (`/EFI/BOOT/BOOT*.EFI` and `/EFI/<vendor>/*.efi`), upper-cased.
pub fn esp_loaders(esp: &Guest) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Some(vendors)) = esp.read_dir(b"/EFI") else {
        return out;
    };
    for v in vendors.iter().take(64) {
        let dir = [b"/EFI/".as_slice(), &v.name].concat();
        if let Ok(Some(files)) = esp.read_dir(&dir) {
            for f in files.iter().take(256) {
                let name = String::from_utf8_lossy(&f.name).to_ascii_uppercase();
                if name.ends_with(".EFI") {
                    let vendor = String::from_utf8_lossy(&v.name).to_ascii_uppercase();
                    out.push(format!("{vendor}/{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// The boot mode the evidence supports, or `None` when no boot path was found.
pub fn decide(ev: &BootEvidence, arch: Option<&str>) -> Option<&'static str> {
    let uefi = match &ev.esp_loaders {
        Some(loaders) => ev.esp_partition && !loaders.is_empty(),
        None => ev.esp_partition,
    };
    let bios = match ev.table {
        Some(TableKind::Gpt) => ev.bios_boot_partition,
        Some(TableKind::Hybrid) => ev.bios_boot_partition || ev.mbr_boot_code,
        Some(TableKind::Mbr) => ev.mbr_boot_code || ev.active_partition,
        _ => false,
    };
    if arch == Some("arm64") {
        return uefi.then_some("UEFI");
    }
    match (uefi, bios) {
        (true, true) => Some("UEFI-Preferred"),
        (true, false) => Some("UEFI"),
        (false, true) => Some("BIOS"),
        (false, false) => None,
    }
}

/// Evidence from the partition table alone.
pub fn table_evidence(table: &PartitionTable) -> BootEvidence {
    BootEvidence {
        esp_partition: table.partitions.iter().any(|p| p.part_type.is_esp()),
        bios_boot_partition: table.partitions.iter().any(|p| p.part_type.is_bios_boot()),
        mbr_boot_code: table.mbr_boot_code,
        active_partition: table.partitions.iter().any(|p| p.bootable),
        table: Some(table.kind),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fs::memfs::MemFs;
    use super::*;

    #[test]
    fn modes() {
        let gpt = |esp, bios| BootEvidence {
            esp_partition: esp,
            bios_boot_partition: bios,
            table: Some(TableKind::Gpt),
            ..Default::default()
        };
        assert_eq!(decide(&gpt(true, false), None), Some("UEFI"));
        assert_eq!(decide(&gpt(true, true), None), Some("UEFI-Preferred"));
        assert_eq!(decide(&gpt(false, true), None), Some("BIOS"));
        assert_eq!(decide(&gpt(false, false), None), None);
        assert_eq!(decide(&gpt(true, true), Some("arm64")), Some("UEFI"));
        assert_eq!(decide(&gpt(false, true), Some("arm64")), None);
        let mbr = BootEvidence {
            mbr_boot_code: true,
            table: Some(TableKind::Mbr),
            ..Default::default()
        };
        assert_eq!(decide(&mbr, None), Some("BIOS"));
        let mbr_esp = BootEvidence {
            esp_partition: true,
            esp_loaders: Some(vec!["BOOT/BOOTX64.EFI".into()]),
            ..mbr.clone()
        };
        assert_eq!(decide(&mbr_esp, None), Some("UEFI-Preferred"));
        // an ESP that was read and holds no loader is no UEFI path
        let empty_esp = BootEvidence {
            esp_partition: true,
            esp_loaders: Some(vec![]),
            ..mbr
        };
        assert_eq!(decide(&empty_esp, None), Some("BIOS"));
    }

    #[test]
    fn loaders_on_an_esp() {
        let mut fs = MemFs::default();
        fs.file("/EFI/BOOT/BOOTX64.EFI", b"MZ")
            .file("/EFI/debian/grubx64.efi", b"MZ")
            .file("/EFI/debian/grub.cfg", b"");
        let esp = Guest::new(Arc::new(fs));
        let l = esp_loaders(&esp);
        assert_eq!(l, vec!["BOOT/BOOTX64.EFI", "DEBIAN/GRUBX64.EFI"]);
        assert_eq!(loader_arch("bootaa64.efi"), Some("arm64"));
    }
}

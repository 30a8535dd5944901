//! Boot mode from the partition table, the ESP and the root tree (docs/INSPECTION.md §Boot):
//! `UEFI` when only UEFI boot paths exist, `BIOS` when only BIOS paths do, `UEFI-Preferred`
//! when both do (ImportImage then gets `UEFI`; ModifyImageAttribute sets the preference).
//! arm64 boots by UEFI only.

use super::arch::{Arch, pe_machine};
use super::fs::{Guest, NodeKind};
use super::partition::{PartitionTable, TableKind};

/// The evidence one disk offers.
#[derive(Debug, Clone, Default)]
pub struct BootEvidence {
    /// An ESP partition (GPT ESP GUID or MBR type 0xEF) exists.
    pub esp_partition: bool,
    /// Loader files found on the ESP ([`esp_loaders`]); `None` when the ESP could not be read.
    pub esp_loaders: Option<Vec<EspLoader>>,
    /// The disk holds a Windows system volume: Windows boots a GPT disk only by UEFI
    /// (docs/INSPECTION.md §Boot).
    pub windows: bool,
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

/// Bytes of a loader read for its PE header.
const PE_HEADER_BYTES: usize = 4096;
/// Most vendor directories under `\EFI`, and files per directory, looked at.
const MAX_VENDORS: usize = 64;
const MAX_FILES: usize = 256;

/// The loader architecture a file name tells: the removable-media names (UEFI 2.10 §3.5.1.1)
/// and the distributions' `shim<arch>.efi` / `grub<arch>.efi`, which use the same suffixes.
pub fn loader_arch(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_uppercase();
    let stem = n.strip_suffix(".EFI")?;
    if stem.ends_with("X64") {
        Some("x86_64")
    } else if stem.ends_with("AA64") {
        Some("arm64")
    } else if stem.ends_with("IA32") {
        Some("i386")
    } else {
        None
    }
}

/// Fills the tree part of the evidence from the root file system.
pub fn root_evidence(root: &Guest, ev: &mut BootEvidence) {
    ev.grub_bios_modules = root.exists("/boot/grub/i386-pc") || root.exists("/boot/grub2/i386-pc");
}

/// One EFI loader found on an ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspLoader {
    /// Path below `\EFI`, upper-cased, `/`-separated: `BOOT/BOOTX64.EFI`,
    /// `MICROSOFT/BOOT/BOOTMGFW.EFI`, `DEBIAN/SHIMX64.EFI`.
    pub path: String,
    /// Its architecture: the PE header's machine, else what the file name says.
    pub arch: Option<&'static str>,
}

/// The EFI loaders on an ESP: `\EFI\<vendor>\*.efi` and one level deeper
/// (`\EFI\Microsoft\Boot\bootmgfw.efi`), sorted by path.
pub fn esp_loaders(esp: &Guest) -> Vec<EspLoader> {
    let mut out = Vec::new();
    let Ok(Some(vendors)) = esp.read_dir(b"/EFI") else {
        return out;
    };
    for v in vendors
        .iter()
        .filter(|v| v.kind == NodeKind::Dir)
        .take(MAX_VENDORS)
    {
        let dir = [b"/EFI/".as_slice(), &v.name].concat();
        let Ok(Some(files)) = esp.read_dir(&dir) else {
            continue;
        };
        for f in files.iter().take(MAX_FILES) {
            let path = [dir.as_slice(), b"/", &f.name].concat();
            match f.kind {
                NodeKind::File => loader(esp, &path, &mut out),
                NodeKind::Dir => {
                    if let Ok(Some(inner)) = esp.read_dir(&path) {
                        for g in inner
                            .iter()
                            .filter(|g| g.kind == NodeKind::File)
                            .take(MAX_FILES)
                        {
                            loader(esp, &[path.as_slice(), b"/", &g.name].concat(), &mut out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn loader(esp: &Guest, path: &[u8], out: &mut Vec<EspLoader>) {
    let text = String::from_utf8_lossy(path).to_ascii_uppercase();
    if !text.ends_with(".EFI") {
        return;
    }
    let name = text.rsplit('/').next().unwrap_or_default();
    let pe = esp
        .read_prefix(path, PE_HEADER_BYTES)
        .ok()
        .flatten()
        .and_then(|head| pe_machine(&head))
        .map(Arch::as_str);
    out.push(EspLoader {
        arch: pe.or_else(|| loader_arch(name)),
        path: text.strip_prefix("/EFI/").unwrap_or(&text).to_string(),
    });
}

/// The boot mode the evidence supports, or `None` when no boot path was found.
pub fn decide(ev: &BootEvidence, arch: Option<&str>) -> Option<&'static str> {
    let uefi = match &ev.esp_loaders {
        Some(loaders) => ev.esp_partition && !loaders.is_empty(),
        None => ev.esp_partition,
    };
    if ev.windows && matches!(ev.table, Some(TableKind::Gpt)) {
        return Some("UEFI");
    }
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
            esp_loaders: Some(vec![EspLoader {
                path: "BOOT/BOOTX64.EFI".into(),
                arch: Some("x86_64"),
            }]),
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
        // Windows on GPT boots by UEFI only, even with a BIOS boot partition
        let win = BootEvidence {
            windows: true,
            ..gpt(false, true)
        };
        assert_eq!(decide(&win, None), Some("UEFI"));
    }

    #[test]
    fn loaders_on_an_esp() {
        // a PE header for arm64 (machine 0xAA64) under a name that tells no architecture
        let mut pe = vec![0u8; 0x48];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x44..0x46].copy_from_slice(&0xaa64u16.to_le_bytes());
        let mut fs = MemFs::default();
        fs.file("/EFI/BOOT/BOOTX64.EFI", b"MZ")
            .file("/EFI/debian/grubx64.efi", b"MZ")
            .file("/EFI/debian/grub.cfg", b"")
            .file("/EFI/Microsoft/Boot/bootmgfw.efi", &pe);
        let esp = Guest::new(Arc::new(fs));
        let l: Vec<(String, Option<&str>)> = esp_loaders(&esp)
            .into_iter()
            .map(|l| (l.path, l.arch))
            .collect();
        assert_eq!(
            l,
            [
                ("BOOT/BOOTX64.EFI".to_string(), Some("x86_64")),
                ("DEBIAN/GRUBX64.EFI".to_string(), Some("x86_64")),
                ("MICROSOFT/BOOT/BOOTMGFW.EFI".to_string(), Some("arm64")),
            ]
        );
        assert_eq!(loader_arch("bootaa64.efi"), Some("arm64"));
        assert_eq!(loader_arch("shimia32.efi"), Some("i386"));
        assert_eq!(loader_arch("mmx64.efi"), Some("x86_64"));
        assert_eq!(loader_arch("bootmgfw.efi"), None);
    }
}

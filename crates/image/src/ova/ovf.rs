//! The OVF descriptor: its References (files), DiskSection (disks, capacities) and the hints
//! of its VirtualSystem (operating system, firmware, disk controllers), read with `roxmltree`
//! from text the caller has bounded. Elements and attributes are matched by local name, so
//! OVF 1.x and 2.x envelopes and the `vmw:`/`vbox:` extensions read alike.

use roxmltree::{Document, Node, ParsingOptions};
use serde::Serialize;

/// Most XML nodes a descriptor may hold (a real one has a few hundred).
const MAX_NODES: u32 = 100_000;

/// One `References/File`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub id: String,
    pub href: String,
    pub size: Option<u64>,
    pub compression: Option<String>,
}

/// One `DiskSection/Disk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDef {
    pub disk_id: String,
    pub file_ref: Option<String>,
    /// Capacity in bytes (`ovf:capacity` × `ovf:capacityAllocationUnits`).
    pub capacity: Option<u64>,
    /// The attributes it came from, for messages, e.g. `16 × byte * 2^30`.
    pub capacity_text: String,
}

/// What the descriptor says about the machine: evidence the plan shows beside what inspection
/// of the disks found (inspection wins when they disagree).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OvfHints {
    /// The ECS platform name the OS hint points to (e.g. `Ubuntu`), when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `linux` or `windows`, when the OS hint says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// Where the OS hint came from, e.g. `vmw:osType="ubuntu64Guest"` or `ovf:id=94`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_from: Option<String>,
    /// `BIOS` or `UEFI`, when the descriptor says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_from: Option<String>,
    /// The controller of each disk (by disk id), e.g. `NVMe`, `SCSI (lsilogic)`, `SATA`.
    pub controllers: Vec<(String, String)>,
}

/// A descriptor read.
#[derive(Debug, Clone, Default)]
pub struct Descriptor {
    pub files: Vec<FileRef>,
    pub disks: Vec<DiskDef>,
    pub hints: OvfHints,
}

fn attr<'a>(n: Node<'a, '_>, local: &str) -> Option<&'a str> {
    n.attributes()
        .find(|a| a.name() == local)
        .map(|a| a.value())
}

fn child<'a, 'i>(n: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == local)
}

fn elements<'a, 'i: 'a>(n: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.descendants()
        .filter(move |c| c.is_element() && c.tag_name().name() == local)
}

fn text_of(n: Node<'_, '_>, local: &str) -> Option<String> {
    child(n, local)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
}

/// Bytes per unit of `ovf:capacityAllocationUnits`: `byte`, `byte * 2^30`, `byte * 1024`,
/// and the older `KiloBytes`/`MegaBytes`/`GigaBytes`.
pub fn allocation_units(units: &str) -> Option<u64> {
    let u: String = units.chars().filter(|c| !c.is_whitespace()).collect();
    match u.to_ascii_lowercase().as_str() {
        "" | "byte" | "bytes" => return Some(1),
        "kilobytes" => return Some(1 << 10),
        "megabytes" => return Some(1 << 20),
        "gigabytes" => return Some(1 << 30),
        "terabytes" => return Some(1 << 40),
        _ => {}
    }
    let factor = u.strip_prefix("byte*")?;
    match factor.split_once('^') {
        Some((base, exp)) => {
            let base: u64 = base.parse().ok()?;
            let exp: u32 = exp.parse().ok()?;
            base.checked_pow(exp)
        }
        None => factor.parse().ok(),
    }
}

/// The ECS platform and OS type a VMware `osType`, VirtualBox `OSType` or CIM OS id names.
fn platform_of(os_type: &str) -> Option<(&'static str, &'static str)> {
    let t = os_type.to_ascii_lowercase();
    let table: [(&str, &str, &str); 19] = [
        ("windows2022", "Windows Server 2022", "windows"),
        ("windows2019srvnext", "Windows Server 2022", "windows"),
        ("windows2019", "Windows Server 2019", "windows"),
        ("windows9server", "Windows Server 2016", "windows"),
        ("windows2016", "Windows Server 2016", "windows"),
        ("windows8server", "Windows Server 2012", "windows"),
        ("windows2012", "Windows Server 2012", "windows"),
        ("ubuntu", "Ubuntu", "linux"),
        ("debian", "Debian", "linux"),
        ("centos", "CentOS", "linux"),
        ("rhel", "RedHat", "linux"),
        ("redhat", "RedHat", "linux"),
        ("rocky", "Rocky Linux", "linux"),
        ("alma", "AlmaLinux", "linux"),
        ("fedora", "Fedora", "linux"),
        ("opensuse", "OpenSUSE", "linux"),
        ("sles", "SUSE", "linux"),
        ("freebsd", "FreeBSD", "linux"),
        ("linux", "Others Linux", "linux"),
    ];
    table
        .iter()
        .find(|(k, ..)| t.contains(k))
        .map(|&(_, p, o)| (p, o))
}

/// The platform a CIM `CIM_OperatingSystem.OsType` id (OVF `OperatingSystemSection ovf:id`)
/// names; only the ids that name one distribution.
fn platform_of_cim(id: u32) -> Option<(&'static str, &'static str)> {
    Some(match id {
        79 | 80 => ("RedHat", "linux"),
        82..=85 => ("SUSE", "linux"),
        93 | 94 => ("Ubuntu", "linux"),
        95 | 96 => ("Debian", "linux"),
        106 | 107 => ("CentOS", "linux"),
        42 | 78 => ("FreeBSD", "linux"),
        36 | 97..=101 => ("Others Linux", "linux"),
        _ => return None,
    })
}

/// The controller an `Item` describes, from its ResourceType and ResourceSubType.
fn controller_kind(resource_type: &str, subtype: &str) -> Option<String> {
    let sub = subtype.to_ascii_lowercase();
    match resource_type {
        "5" => Some("IDE".into()),
        "6" => Some(if sub.is_empty() {
            "SCSI".into()
        } else {
            format!("SCSI ({subtype})")
        }),
        "20" if sub.contains("nvme") => Some("NVMe".into()),
        "20" => Some("SATA".into()),
        _ => None,
    }
}

/// Reads `text` as an OVF descriptor; `Err` is the rule it breaks.
pub fn parse(text: &str) -> Result<Descriptor, String> {
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, opts)
        .map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Envelope" {
        return Err(format!(
            "the root element is <{}>, not an OVF <Envelope>",
            root.tag_name().name()
        ));
    }
    let mut d = Descriptor::default();
    if let Some(refs) = child(root, "References") {
        for f in refs.children().filter(|c| c.is_element()) {
            let id = attr(f, "id").ok_or("a References/File has no ovf:id")?;
            let href = attr(f, "href").ok_or_else(|| format!("File {id:?} has no ovf:href"))?;
            let size = match attr(f, "size") {
                Some(s) => Some(
                    s.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("File {id:?}: ovf:size {s:?} is not a number"))?,
                ),
                None => None,
            };
            d.files.push(FileRef {
                id: id.into(),
                href: href.into(),
                size,
                compression: attr(f, "compression").map(str::to_string),
            });
        }
    }
    for disk in elements(root, "Disk") {
        let id = attr(disk, "diskId").ok_or("a DiskSection/Disk has no ovf:diskId")?;
        let capacity = attr(disk, "capacity");
        let units = attr(disk, "capacityAllocationUnits").unwrap_or("byte");
        let capacity_text = format!("ovf:capacity={} × {units}", capacity.unwrap_or("?"));
        let bytes = match capacity {
            Some(c) => {
                let n: u64 = c
                    .trim()
                    .parse()
                    .map_err(|_| format!("Disk {id:?}: ovf:capacity {c:?} is not a number"))?;
                let unit = allocation_units(units).ok_or_else(|| {
                    format!("Disk {id:?}: ovf:capacityAllocationUnits {units:?} is not a unit imgport reads")
                })?;
                Some(
                    n.checked_mul(unit)
                        .ok_or_else(|| format!("Disk {id:?}: {capacity_text} overflows 64 bits"))?,
                )
            }
            None => None,
        };
        d.disks.push(DiskDef {
            disk_id: id.into(),
            file_ref: attr(disk, "fileRef").map(str::to_string),
            capacity: bytes,
            capacity_text,
        });
    }
    let systems: Vec<Node> = elements(root, "VirtualSystem").collect();
    if systems.len() > 1 {
        return Err(format!(
            "{} VirtualSystems; one import is one machine, so imgport reads OVFs of one VirtualSystem",
            systems.len()
        ));
    }
    if let Some(vs) = systems.first().copied() {
        d.hints = hints(vs);
    }
    Ok(d)
}

fn hints(vs: Node<'_, '_>) -> OvfHints {
    let mut h = OvfHints::default();
    if let Some(os) = elements(vs, "OperatingSystemSection").next() {
        let named = ["osType", "OSType"]
            .iter()
            .find_map(|k| attr(os, k).map(|v| (*k, v)));
        let by_name = named.and_then(|(k, v)| {
            let prefix = if k == "osType" { "vmw" } else { "vbox" };
            platform_of(v).map(|p| (p, format!("{prefix}:{k}=\"{v}\"")))
        });
        let by_id = attr(os, "id")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .and_then(|id| platform_of_cim(id).map(|p| (p, format!("ovf:id={id} (CIM OS type)"))));
        if let Some(((platform, os_type), from)) = by_name.or(by_id) {
            h.platform = Some(platform.into());
            h.os_type = Some(os_type.into());
            h.os_from = Some(from);
        }
    }
    let vmw_firmware = elements(vs, "Config")
        .find(|c| attr(*c, "key") == Some("firmware"))
        .and_then(|c| attr(c, "value"));
    let vbox_firmware = elements(vs, "Firmware").find_map(|c| attr(c, "type"));
    let firmware = vmw_firmware
        .map(|v| (v, format!("vmw:Config firmware=\"{v}\"")))
        .or(vbox_firmware.map(|v| (v, format!("VirtualBox <Firmware type=\"{v}\">"))));
    if let Some((v, from)) = firmware {
        let mode = match v.to_ascii_lowercase().as_str() {
            "efi" | "efi32" | "efi64" | "efidual" => Some("UEFI"),
            "bios" => Some("BIOS"),
            _ => None,
        };
        if let Some(mode) = mode {
            h.boot_mode = Some(mode.into());
            h.boot_from = Some(from);
        }
    }
    // Controllers by InstanceID, then each disk drive's controller through its Parent.
    let items: Vec<Node> = vs
        .descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "Item" | "StorageItem"))
        .collect();
    let field = |n: Node, k: &str| text_of(n, k).unwrap_or_default();
    let mut controllers = Vec::new();
    for item in &items {
        if let Some(kind) = controller_kind(
            &field(*item, "ResourceType"),
            &field(*item, "ResourceSubType"),
        ) {
            controllers.push((field(*item, "InstanceID"), kind));
        }
    }
    for item in &items {
        if field(*item, "ResourceType") != "17" {
            continue;
        }
        let host = field(*item, "HostResource");
        let Some(disk) = host.rsplit('/').next().filter(|_| host.contains("disk/")) else {
            continue;
        };
        let parent = field(*item, "Parent");
        if let Some((_, kind)) = controllers.iter().find(|(id, _)| *id == parent) {
            h.controllers.push((disk.to_string(), kind.clone()));
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMWARE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="vm-disk1.vmdk" ovf:id="file1" ovf:size="1024"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="16" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm">
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest"><Info>os</Info></OperatingSystemSection>
    <VirtualHardwareSection>
      <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>vmware.nvme.controller</rasd:ResourceSubType><rasd:ResourceType>20</rasd:ResourceType></Item>
      <Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>"#;

    #[test]
    fn vmware_descriptor_gives_disks_and_hints() {
        let d = parse(VMWARE).unwrap();
        assert_eq!(d.files[0].href, "vm-disk1.vmdk");
        assert_eq!(d.disks[0].capacity, Some(16 << 30));
        assert_eq!(d.disks[0].file_ref.as_deref(), Some("file1"));
        assert_eq!(d.hints.platform.as_deref(), Some("Ubuntu"));
        assert_eq!(d.hints.boot_mode.as_deref(), Some("UEFI"));
        assert_eq!(d.hints.controllers, [("vmdisk1".into(), "NVMe".into())]);
    }

    #[test]
    fn units_and_refusals() {
        assert_eq!(allocation_units("byte * 2^20"), Some(1 << 20));
        assert_eq!(allocation_units("byte*1024"), Some(1024));
        assert_eq!(allocation_units("MegaBytes"), Some(1 << 20));
        assert_eq!(allocation_units("byte * 2^99"), None);
        assert!(parse("<x/>").is_err());
        assert!(
            parse("<Envelope><DiskSection><Disk ovf:capacity=\"1\"/></DiskSection></Envelope>")
                .is_err()
        );
        let dtd = "<!DOCTYPE Envelope [<!ENTITY a \"aaaa\">]><Envelope>&a;</Envelope>";
        assert!(parse(dtd).is_err());
    }
}

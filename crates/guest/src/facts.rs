//! [`GuestFacts`]: everything the planner needs to know about the inside of one disk.

use serde::{Deserialize, Serialize};

use imgport_image::Finding;

/// Facts found inside one virtual disk. A plain value: the planner reads it, the report renders it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestFacts {
    /// `linux`, `windows`, or `None` when no operating system was found.
    pub os_type: Option<String>,
    /// Distribution id, e.g. `debian`, `centos`, `alinux`, `windows`.
    pub distro: Option<String>,
    /// Version, e.g. `12`, `7.9`, `10.0.20348`.
    pub version: Option<String>,
    /// Human product name, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub product_name: Option<String>,
    /// ImportImage `Platform` value, e.g. `Debian`, `Windows Server 2022`, `Others Linux`.
    pub platform: Option<String>,
    /// `i386`, `x86_64` or `arm64`.
    pub architecture: Option<String>,
    /// `BIOS`, `UEFI` or `UEFI-Preferred`.
    pub boot_mode: Option<String>,
    /// What the boot mode rests on, e.g. `ESP partition 1: EFI/BOOT/BOOTX64.EFI (x86_64)`.
    #[serde(default)]
    pub boot_evidence: Vec<String>,
    /// Partition table kind: `gpt`, `mbr`, `hybrid` or `none`.
    pub partition_table: Option<String>,
    pub partitions: Vec<PartitionFact>,
    pub filesystems: Vec<FilesystemFact>,
    pub drivers: DriverFacts,
    /// cloud-init (Linux) or cloudbase-init (Windows) installed and enabled.
    pub cloud_init: Option<bool>,
    pub qemu_guest_agent: Option<bool>,
    /// Host name the guest gives itself (`/etc/hostname`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Kernel version the driver facts are about: the boot loader's default, else the newest.
    #[serde(default)]
    pub kernel: Option<String>,
    /// Bytes of the virtual disk read to gather these facts.
    #[serde(default)]
    pub bytes_read: u64,
    /// Readiness findings, like Alibaba Cloud's image check.
    pub findings: Vec<Finding>,
}

/// One partition as the partition table describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PartitionFact {
    /// 1-based index in the table (logical MBR partitions start at 5).
    pub index: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// Type as text: MBR type byte as `0x83`, GPT type GUID, with a name when known.
    pub type_id: String,
    pub type_name: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// Detected file system or volume kind (`ext4`, `xfs`, `vfat`, `ntfs`, `lvm2`, `swap`, `luks` …).
    pub filesystem: Option<String>,
}

/// One file system found on the disk (on a partition, a logical volume, or the whole disk).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilesystemFact {
    /// Where it lives, e.g. `partition 2` or `lvm centos/root`.
    pub device: String,
    pub kind: String,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// Mount point from the guest's fstab, when known; `C:` for the Windows system volume.
    pub mountpoint: Option<String>,
    /// Role the inspector gave it: `root`, `boot`, `esp`, `windows`, `data`.
    pub role: Option<String>,
}

/// Drivers that decide whether the guest boots on the cloud's virtual hardware.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DriverFacts {
    /// virtio block/scsi/net drivers present (module, built in, or Windows service).
    pub virtio: Option<bool>,
    /// The virtio block driver is in the initramfs (Linux), or boot-start (Windows).
    pub virtio_in_initramfs: Option<bool>,
    /// NVMe driver present.
    pub nvme: Option<bool>,
    pub nvme_in_initramfs: Option<bool>,
    /// Where each conclusion came from, e.g. `initramfs /boot/initrd.img-6.1.0-18-amd64`.
    pub evidence: Vec<String>,
}

//! The emulator's own reading of an object's format and virtual size, written from the
//! public specifications (QEMU's "qcow2 format" document, Microsoft's "Virtual Hard Disk Image
//! Format Specification", VMware's "Virtual Disk Format 1.1", Microsoft's "[MS-VHDX]", ECMA-119
//! and the LUKS on-disk format) and never from imgport's readers: a wrong rule in the client's
//! inspector then shows as a disagreement, instead of both sides agreeing by construction.
//!
//! It reads only headers, as the service does when it takes a request; what lies past them
//! is the import's business (it may end in `CreateFailed`).

use std::os::unix::fs::FileExt;
use std::path::Path;

use imgport_base::bytes::{get_be32 as be32, get_be64 as be64};
use imgport_image::ImageFormat;

/// What the header of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sniffed {
    /// An image ImportImage may take, with the size of its virtual disk.
    Image {
        format: ImageFormat,
        virtual_size: u64,
    },
    /// Not an image ImportImage takes; why, for `InvalidImageFormat.Malformed`.
    Refused(String),
}

/// Bytes read from the start: the ISO 9660 volume descriptor at 32 KiB is the farthest.
const HEAD: u64 = 36 * 1024;
/// qcow2 incompatible-feature bits this emulator knows: dirty, corrupt, external data file,
/// compression type, extended L2 entries.
const QCOW2_KNOWN_INCOMPATIBLE: u64 = 0b1_1111;
const QCOW2_CORRUPT: u64 = 1 << 1;
const QCOW2_EXTERNAL_DATA: u64 = 1 << 2;

/// The format of the `size`-byte object at `path`; `vhd` is what its VHD footer says, when it
/// has one (the caller reads the footer for its own size rule).
pub(super) fn sniff(path: &Path, size: u64, vhd: Option<VhdKind>) -> std::io::Result<Sniffed> {
    let file = std::fs::File::open(path)?;
    let mut head = vec![0u8; HEAD.min(size) as usize];
    file.read_exact_at(&mut head, 0)?;
    let refused = |why: &str| Ok(Sniffed::Refused(why.to_string()));
    if head.starts_with(b"QFI\xfb") {
        return Ok(qcow2(&head));
    }
    if head.starts_with(b"vhdxfile") {
        return refused("VHDX images are not accepted by this emulator (ECS does not import VHDX)");
    }
    if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        return refused(
            "VMDK images are not accepted by this emulator (imgport converts VMDK before it uploads)",
        );
    }
    if head.starts_with(b"LUKS\xba\xbe") {
        return refused("the object is a LUKS-encrypted volume, not a disk image");
    }
    if head.get(32769..32774) == Some(b"CD001") {
        return refused("ISO images are not accepted");
    }
    match vhd {
        Some(VhdKind::Differencing) => {
            refused("a differencing VHD needs its parent, which an import cannot have")
        }
        Some(VhdKind::Disk { current_size }) => Ok(Sniffed::Image {
            format: ImageFormat::Vhd,
            virtual_size: current_size,
        }),
        None => Ok(Sniffed::Image {
            format: ImageFormat::Raw,
            virtual_size: size,
        }),
    }
}

/// What a VHD footer's Disk Type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VhdKind {
    /// Fixed or dynamic, of `current_size` bytes.
    Disk {
        current_size: u64,
    },
    Differencing,
}

/// The qcow2 header: magic, version at 4, backing file offset at 8, cluster bits at 20, size
/// at 24, encryption method at 32, and (version 3) incompatible features at 72.
fn qcow2(head: &[u8]) -> Sniffed {
    let refused = |why: String| Sniffed::Refused(why);
    let (Some(version), Some(backing), Some(cluster_bits), Some(size), Some(crypt)) = (
        be32(head, 4),
        be64(head, 8),
        be32(head, 20),
        be64(head, 24),
        be32(head, 32),
    ) else {
        return refused("the qcow2 header is cut short".into());
    };
    if version != 2 && version != 3 {
        return refused(format!("qcow2 version {version} (2 and 3 exist)"));
    }
    if !(9..=21).contains(&cluster_bits) {
        return refused(format!("qcow2 cluster_bits {cluster_bits} (9 to 21)"));
    }
    if backing != 0 {
        return refused("the qcow2 image has a backing file, which an import cannot have".into());
    }
    if crypt != 0 {
        return refused(format!("the qcow2 image is encrypted (method {crypt})"));
    }
    if version == 3 {
        let Some(incompatible) = be64(head, 72) else {
            return refused("the qcow2 header is cut short".into());
        };
        if incompatible & QCOW2_CORRUPT != 0 {
            return refused("the qcow2 image is marked corrupt".into());
        }
        if incompatible & QCOW2_EXTERNAL_DATA != 0 {
            return refused("the qcow2 image keeps its data in an external file".into());
        }
        if incompatible & !QCOW2_KNOWN_INCOMPATIBLE != 0 {
            return refused(format!(
                "unknown qcow2 incompatible features {:#x}",
                incompatible & !QCOW2_KNOWN_INCOMPATIBLE
            ));
        }
    }
    Sniffed::Image {
        format: ImageFormat::Qcow2,
        virtual_size: size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2_header(version: u32, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(3u64 << 30).to_be_bytes());
        edit(&mut h);
        h
    }

    fn why(s: Sniffed) -> String {
        match s {
            Sniffed::Refused(w) => w,
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn qcow2_headers_are_judged_by_the_spec() {
        assert_eq!(
            qcow2(&qcow2_header(3, |_| {})),
            Sniffed::Image {
                format: ImageFormat::Qcow2,
                virtual_size: 3 << 30
            }
        );
        assert!(why(qcow2(&qcow2_header(4, |_| {}))).contains("version 4"));
        let backing = qcow2_header(2, |h| h[8..16].copy_from_slice(&512u64.to_be_bytes()));
        assert!(why(qcow2(&backing)).contains("backing file"));
        let aes = qcow2_header(2, |h| h[32..36].copy_from_slice(&1u32.to_be_bytes()));
        assert!(why(qcow2(&aes)).contains("encrypted"));
        let external = qcow2_header(3, |h| h[72..80].copy_from_slice(&4u64.to_be_bytes()));
        assert!(why(qcow2(&external)).contains("external"));
        let unknown = qcow2_header(3, |h| h[72..80].copy_from_slice(&(1u64 << 9).to_be_bytes()));
        assert!(why(qcow2(&unknown)).contains("0x200"));
        let dirty = qcow2_header(3, |h| h[72..80].copy_from_slice(&1u64.to_be_bytes()));
        assert!(matches!(qcow2(&dirty), Sniffed::Image { .. }));
        assert!(why(qcow2(&qcow2_header(2, |_| {})[..30])).contains("cut short"));
    }

    #[test]
    fn real_images_made_by_qemu_img_are_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        for (fmt, opts) in [("qcow2", "compat=0.10"), ("qcow2", "compat=1.1")] {
            let p = dir.path().join(format!("d-{opts}.{fmt}"));
            let out = std::process::Command::new("qemu-img")
                .args(["create", "-q", "-f", fmt, "-o", opts])
                .arg(&p)
                .arg("5G")
                .output()
                .expect("run qemu-img create");
            assert!(out.status.success());
            let size = std::fs::metadata(&p).unwrap().len();
            assert_eq!(
                sniff(&p, size, None).unwrap(),
                Sniffed::Image {
                    format: ImageFormat::Qcow2,
                    virtual_size: 5 << 30
                },
                "{opts}"
            );
        }
        let raw = dir.path().join("d.raw");
        std::fs::write(&raw, vec![0u8; 4096]).unwrap();
        assert_eq!(
            sniff(&raw, 4096, None).unwrap(),
            Sniffed::Image {
                format: ImageFormat::Raw,
                virtual_size: 4096
            }
        );
        let mut iso = vec![0u8; 40 * 1024];
        iso[32769..32774].copy_from_slice(b"CD001");
        let iso_path = dir.path().join("cd.iso");
        std::fs::write(&iso_path, &iso).unwrap();
        assert!(why(sniff(&iso_path, iso.len() as u64, None).unwrap()).contains("ISO"));
    }
}

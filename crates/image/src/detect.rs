//! The one place that decides what a file is: every known signature is probed, more than one
//! match is refused as format confusion, the declared format must equal the detected one, and
//! only then does the chosen format's reader parse and judge the metadata.
//!
//! Never asks qemu; never follows a name found inside the file.
//!
//! Kept whole: the signature table and its judge are the one place that decides what a file is.

use imgport_base::bytes::{get_be32 as be32, get_le32 as le32};
use std::path::Path;
use std::sync::Arc;

use super::qcow2::Qcow2Image;
use super::raw::RawImage;
use super::vhd::VhdImage;
use super::vhdx::VhdxImage;
use super::vmdk::VmdkImage;
use super::{
    ContainerReport, DiskImage, Finding, FormatDetails, ImageError, ImageFile, ImageFormat,
    Severity,
};

/// Caller's expectations when opening an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The format the user says the file has; a mismatch with the detected format is refused.
    pub declared: Option<ImageFormat>,
    /// Accept guest data that starts (at the disk's or a partition's first byte) with another
    /// image format's header, importing that image as-is: the nested findings become warnings.
    pub allow_nested: bool,
}

/// A safe, opened image and its inspection report.
pub struct Opened {
    pub image: Arc<dyn DiskImage>,
    pub report: ContainerReport,
    pub file: Arc<ImageFile>,
    /// The OVA/OVF package the disk came from, with the descriptor's hints.
    pub package: Option<crate::ova::disk::PackageDisk>,
}

/// What a signature says the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One of the formats imgport reads.
    Supported(ImageFormat),
    /// A disk in raw form whose sector 0 holds an MBR or GPT (a hint, not a container).
    PartitionedRaw,
    /// Recognised and always refused.
    Refused,
}

/// One matched signature.
#[derive(Debug, Clone)]
struct Signature {
    name: &'static str,
    kind: Kind,
    offset: u64,
    hint: &'static str,
}

/// Bytes read from the start of the file for probing: enough for every header signature,
/// the ISO volume descriptors at 32 KiB and the tar header.
const HEAD_LEN: usize = 64 * 1024;
/// Bytes read from the end: the VHD footer (512, legacy 511) and the DMG `koly` trailer.
const TAIL_LEN: usize = 1024;

const QCOW_MAGIC: &[u8; 4] = b"QFI\xfb";
const VHD_COOKIE: &[u8; 8] = b"conectix";

fn at(buf: &[u8], offset: usize, magic: &[u8]) -> bool {
    buf.get(offset..offset + magic.len()) == Some(magic)
}

/// Offset 0 when `magic` starts `head`.
fn at0(head: &[u8], magic: &[u8]) -> Option<u64> {
    at(head, 0, magic).then_some(0)
}

/// The magic of a hosted sparse VMDK extent.
const VMDK_MAGIC: &[u8; 4] = b"KDMV";

/// How `head` holds a format detection always refuses: its name, where its signature lies
/// (`None`: not this format) and what to do instead. Probed in this order, so a file that
/// matches more than one names them in it.
type RefusedFormat = (&'static str, fn(&[u8]) -> Option<u64>, &'static str);

/// Every always-refused format found from the first bytes alone.
const REFUSED_FORMATS: [RefusedFormat; 15] = [
    (
        "qed",
        |h| at0(h, b"QED\0"),
        "QED is not accepted by ECS; convert it to qcow2 or raw",
    ),
    (
        "vmdk",
        |h| at0(h, b"COWD"),
        "an ESX vmfsSparse (COWD) VMDK extent is a datastore snapshot file; export the disk from ESXi first",
    ),
    (
        "vdi",
        |h| {
            (le32(h, 0x40) == Some(0xBEDA_107F)
                || at(h, 0, b"<<< Oracle VM VirtualBox Disk Image >>>"))
            .then_some(0)
        },
        "VDI is not accepted by ECS; convert it to qcow2 or raw",
    ),
    (
        "luks",
        |h| at0(h, b"LUKS\xba\xbe").or(at0(h, b"SKUL\xba\xbe")),
        "a LUKS-encrypted container cannot be inspected; import the decrypted disk",
    ),
    (
        "parallels",
        |h| at0(h, b"WithoutFreeSpace").or(at0(h, b"WithouFreSpacExt")),
        "Parallels images are not accepted by ECS; convert to qcow2 or raw",
    ),
    (
        "bochs",
        |h| at0(h, b"Bochs Virtual HD Image\0"),
        "Bochs images are not accepted by ECS; convert it to qcow2 or raw",
    ),
    (
        "cloop",
        |h| at0(h, b"#!/bin/sh\n#V2.0 Format\n").or(at0(h, b"#!/bin/sh\n#V4.0 Format\n")),
        "a cloop compressed image; extract the disk image first",
    ),
    (
        "iso",
        // ISO 9660 / UDF volume descriptors at 32, 34 and 36 KiB: one match is enough.
        |h| {
            [0x8001usize, 0x8801, 0x9001]
                .into_iter()
                .find(|&off| {
                    [b"CD001", b"BEA01", b"NSR02", b"NSR03"]
                        .iter()
                        .any(|magic| at(h, off, *magic))
                })
                .map(|off| off as u64)
        },
        "an ISO or UDF image is an installer or data disc, not a disk image; install it into a disk first",
    ),
    (
        "gzip",
        |h| at0(h, &[0x1f, 0x8b]),
        "a gzip archive; decompress it first (`gunzip`)",
    ),
    (
        "xz",
        |h| at0(h, &[0xfd, b'7', b'z', b'X', b'Z', 0]),
        "an xz archive; decompress it first (`unxz`)",
    ),
    (
        "zstd",
        |h| at0(h, &[0x28, 0xb5, 0x2f, 0xfd]),
        "a zstd archive; decompress it first (`unzstd`)",
    ),
    (
        "bzip2",
        |h| (at(h, 0, b"BZh") && h.get(3).is_some_and(|c| (b'1'..=b'9').contains(c))).then_some(0),
        "a bzip2 archive; decompress it first (`bunzip2`)",
    ),
    (
        "zip",
        |h| at0(h, b"PK\x03\x04"),
        "a zip archive; extract the disk image first",
    ),
    (
        "7z",
        |h| at0(h, b"7z\xbc\xaf\x27\x1c"),
        "a 7z archive; extract the disk image first",
    ),
    (
        "tar",
        |h| at(h, 257, b"ustar").then_some(257),
        "a tar archive; an OVA is read when its name ends in .ova, other archives must be extracted first",
    ),
];

pub use super::raw::is_volume_boot_record;

/// Every signature found in `head` (the first bytes) and `tail` (the last bytes) of a file of
/// `size` bytes.
fn probe(head: &[u8], tail: &[u8], size: u64) -> Vec<Signature> {
    let mut found = Vec::new();
    let mut sig = |name, kind, offset, hint| {
        found.push(Signature {
            name,
            kind,
            offset,
            hint,
        })
    };
    let refused = Kind::Refused;
    if at(head, 0, QCOW_MAGIC) {
        match be32(head, 4) {
            Some(1) => sig(
                "qcow",
                refused,
                0,
                "QCOW version 1 is obsolete; convert it with `qemu-img convert -O qcow2` on a trusted machine",
            ),
            // Versions other than 2 and 3 are judged (and refused) by the qcow2 reader.
            _ => sig("qcow2", Kind::Supported(ImageFormat::Qcow2), 0, ""),
        }
    }
    if at(head, 0, VHD_COOKIE) {
        sig("vhd", Kind::Supported(ImageFormat::Vhd), 0, "");
    } else {
        let footer_512 = tail.len() >= 512 && at(tail, tail.len() - 512, VHD_COOKIE);
        let footer_511 = tail.len() >= 511 && at(tail, tail.len() - 511, VHD_COOKIE);
        if footer_512 {
            sig("vhd", Kind::Supported(ImageFormat::Vhd), size - 512, "");
        } else if footer_511 {
            sig("vhd", Kind::Supported(ImageFormat::Vhd), size - 511, "");
        }
    }
    if at(head, 0, VMDK_MAGIC) || (!at(head, 0, b"COWD") && is_vmdk_descriptor(head)) {
        sig("vmdk", Kind::Supported(ImageFormat::Vmdk), 0, "");
    }
    if at(head, 0, b"vhdxfile") {
        sig("vhdx", Kind::Supported(ImageFormat::Vhdx), 0, "");
    }
    for (name, find, hint) in REFUSED_FORMATS {
        if let Some(offset) = find(head) {
            sig(name, refused, offset, hint);
        }
    }
    if tail.len() >= 512 && at(tail, tail.len() - 512, b"koly") {
        sig(
            "dmg",
            refused,
            size - 512,
            "an Apple disk image; convert it to raw first",
        );
    }
    if at(head, 510, &[0x55, 0xaa]) && !is_volume_boot_record(head) {
        sig("mbr", Kind::PartitionedRaw, 510, "");
    }
    found
}

/// Formats whose header inside guest data (at the disk's or a partition's first byte) is
/// an image nested in the image: whatever probes that disk or partition later (a cloud's
/// import, qemu, a hypervisor) may open it as that format and follow its references.
const NESTABLE: [&str; 11] = [
    "qcow",
    "qcow2",
    "vhd",
    "qed",
    "vhdx",
    "vmdk",
    "vdi",
    "luks",
    "parallels",
    "bochs",
    "cloop",
];
/// Bytes of guest data probed at each start: every nestable signature lies in them.
const NESTED_PROBE_LEN: u64 = 4096;
/// Most GPT entries looked at for partition starts (the usual array holds 128).
const MAX_GPT_ENTRIES: u64 = 128;

/// Where the guest data holds another image format's header: at the disk's first byte (for
/// formats other than RAW, whose first byte detection has already judged) and at the first
/// byte of each primary MBR or GPT partition. Reads a few KiB per start, never more.
fn nested_findings(
    image: &dyn DiskImage,
    allow: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), ImageError> {
    let size = image.virtual_size();
    let read = |offset: u64, len: u64| -> Result<Vec<u8>, ImageError> {
        let n = len.min(size.saturating_sub(offset));
        let mut buf = vec![0u8; n as usize];
        image.read_at(&mut buf, offset)?;
        Ok(buf)
    };
    let head = read(0, NESTED_PROBE_LEN.max(1024))?;
    let mut starts: Vec<(u64, String)> = Vec::new();
    if image.format() != ImageFormat::Raw {
        starts.push((0, "the disk".into()));
    }
    starts.extend(partition_starts(&head, size, &read)?);
    for (start, what) in starts {
        let window = if start == 0 {
            head.get(..NESTED_PROBE_LEN as usize)
                .unwrap_or(&head)
                .to_vec()
        } else {
            read(start, NESTED_PROBE_LEN)?
        };
        for sig in probe(&window, &[], window.len() as u64) {
            if !NESTABLE.contains(&sig.name) {
                continue;
            }
            let at = start + sig.offset;
            // An encrypted volume is a normal partition; only a LUKS header at the disk's
            // first byte makes the whole disk probe as LUKS.
            let severity = if allow || (sig.name == "luks" && start != 0) {
                Severity::Warning
            } else {
                Severity::Refuse
            };
            findings.push(Finding::at(
                severity,
                &format!("nested.{}", sig.name),
                "guest data",
                at,
                format!(
                    "guest data at disk offset {at} (first byte of {what}) is a {} header: an image nested in the image, which anything probing the disk later may open as {} and follow; {}",
                    sig.name.to_uppercase(),
                    sig.name.to_uppercase(),
                    if severity == Severity::Refuse {
                        "refused unless asked to import it as-is (--allow-nested)"
                    } else {
                        "accepted as asked"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// First bytes of the primary MBR partitions and the GPT partitions described in `head`
/// (the disk's first bytes), with a name for messages; starts past the disk are ignored.
fn partition_starts(
    head: &[u8],
    size: u64,
    read: &dyn Fn(u64, u64) -> Result<Vec<u8>, ImageError>,
) -> Result<Vec<(u64, String)>, ImageError> {
    let mut starts = Vec::new();
    if !at(head, 510, &[0x55, 0xaa]) || is_volume_boot_record(head) {
        return Ok(starts);
    }
    let mut gpt = false;
    for i in 0..4 {
        let e = 446 + i * 16;
        let kind = head.get(e + 4).copied().unwrap_or(0);
        let lba = u64::from(le32(head, e + 8).unwrap_or(0));
        gpt |= kind == 0xee;
        if kind != 0 && kind != 0xee && lba != 0 {
            starts.push((lba.saturating_mul(512), format!("MBR partition {}", i + 1)));
        }
    }
    if gpt && at(head, 512, b"EFI PART") {
        let le64 = |o: usize| {
            head.get(o..o + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let entries = le64(512 + 72).unwrap_or(0);
        let count = u64::from(le32(head, 512 + 80).unwrap_or(0)).min(MAX_GPT_ENTRIES);
        let entry_size = u64::from(le32(head, 512 + 84).unwrap_or(0));
        if (128..=4096).contains(&entry_size) && entries.checked_mul(512).is_some_and(|o| o < size)
        {
            let table = read(entries * 512, count * entry_size)?;
            for n in 0..count {
                let e = (n * entry_size) as usize;
                let Some(entry) = table.get(e..e + 48) else {
                    break;
                };
                if entry[..16].iter().all(|&b| b == 0) {
                    continue;
                }
                let lba = imgport_base::bytes::le64(entry, 32);
                starts.push((lba.saturating_mul(512), format!("GPT partition {}", n + 1)));
            }
        }
    }
    starts.retain(|(s, _)| *s > 0 && *s < size);
    starts.sort();
    starts.dedup_by_key(|(s, _)| *s);
    Ok(starts)
}

/// A text VMDK descriptor: printable ASCII at the start containing `createType=`.
fn is_vmdk_descriptor(head: &[u8]) -> bool {
    let window = &head[..head.len().min(4096)];
    let text_len = window.iter().position(|&b| b == 0).unwrap_or(window.len());
    let text = &window[..text_len];
    text.len() >= 16
        && text
            .iter()
            .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
        && (text.windows(10).any(|w| w == b"createType")
            || text.starts_with(b"# Disk DescriptorFile"))
}

/// Inspects `path` and reports its format, sizes and safety verdict. Only I/O errors are
/// errors; a refused file is a report with `safe == false`.
pub fn inspect(path: &Path, opts: &OpenOptions) -> Result<ContainerReport, ImageError> {
    match open(path, opts) {
        Ok(opened) => Ok(opened.report),
        Err(ImageError::Refused { report }) => Ok(*report),
        Err(e) => Err(e),
    }
}

/// Opens the image file `path` when it is safe; a refused file is [`ImageError::Refused`]
/// with its report. (`crate::open` also takes OVA/OVF packages and their members.)
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Opened, ImageError> {
    open_file(Arc::new(ImageFile::open(path)?), opts)
}

/// Detects and opens an image file already opened (a file, or a window of an archive).
pub(crate) fn open_file(file: Arc<ImageFile>, opts: &OpenOptions) -> Result<Opened, ImageError> {
    let path = file.path().to_path_buf();
    let path = path.as_path();
    let size = file.size();
    let head = file.read_upto(0, HEAD_LEN)?;
    let tail_start = size.saturating_sub(TAIL_LEN as u64);
    let tail = file.read_upto(tail_start, TAIL_LEN)?;
    let signatures = probe(&head, &tail, size);

    let mut report = ContainerReport {
        path: path.to_path_buf(),
        format: None,
        subformat: None,
        recognised_as: None,
        virtual_size: None,
        allocated_size: None,
        file_size: size,
        bytes_read: 0,
        safe: false,
        findings: Vec::new(),
        details: None,
    };

    let refuse = |mut report: ContainerReport, finding: Finding| {
        report.findings.push(finding);
        report.bytes_read = file.bytes_read();
        report.safe = false;
        Err(ImageError::Refused {
            report: Box::new(report),
        })
    };

    let containers: Vec<&Signature> = signatures
        .iter()
        .filter(|s| s.kind != Kind::PartitionedRaw)
        .collect();
    let partitioned = signatures.iter().find(|s| s.kind == Kind::PartitionedRaw);

    // A header format at offset 0 over a partition table is a guest-written header
    // (CVE-2026-24708 class); a footer-only VHD over partitioned data is a normal fixed VHD.
    let header_over_mbr = partitioned.is_some() && containers.iter().any(|s| s.offset == 0);
    if containers.len() > 1 || header_over_mbr {
        let names: Vec<String> = signatures
            .iter()
            .map(|s| format!("{} at offset {}", s.name, s.offset))
            .collect();
        report.recognised_as = Some(
            signatures
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join("+"),
        );
        let first = containers.first().map_or(0, |s| s.offset);
        return refuse(
            report,
            Finding::at(
                Severity::Refuse,
                "format.confusion",
                "signature",
                first,
                format!(
                    "format confusion: more than one format matches ({}); one header may be hiding inside another",
                    names.join(", ")
                ),
            ),
        );
    }

    let detected = match containers.first() {
        Some(sig) => match sig.kind {
            Kind::Supported(format) => format,
            _ => {
                report.recognised_as = Some(sig.name.to_string());
                return refuse(
                    report,
                    Finding::at(
                        Severity::Refuse,
                        &format!("format.unsupported.{}", sig.name),
                        "signature",
                        sig.offset,
                        format!(
                            "recognised as {} (signature at offset {}): {}",
                            sig.name.to_uppercase(),
                            sig.offset,
                            sig.hint
                        ),
                    ),
                );
            }
        },
        None => ImageFormat::Raw,
    };

    if let Some(declared) = opts.declared
        && declared != detected
    {
        let offset = containers.first().map_or(0, |s| s.offset);
        report.recognised_as = Some(detected.name().to_string());
        return refuse(
            report,
            Finding::at(
                Severity::Refuse,
                "format.declared_mismatch",
                "signature",
                offset,
                format!(
                    "declared format {declared} but the file is {detected} (signature at offset {offset}); \
                         a {detected} header in a file declared {declared} is refused because it may have been written by a guest"
                ),
            ),
        );
    }

    report.format = Some(detected);
    let mut findings = Vec::new();
    let image: Option<Arc<dyn DiskImage>> = match detected {
        ImageFormat::Raw => {
            let img = RawImage::open(file.clone(), &mut findings)?;
            report.subformat = Some(img.subformat().to_string());
            report.details = Some(FormatDetails::Raw(img.details()));
            Some(Arc::new(img))
        }
        ImageFormat::Vhd => {
            let img = VhdImage::open(file.clone(), &mut findings)?;
            img.map(|img| {
                report.subformat = Some(img.subformat().to_string());
                report.details = Some(FormatDetails::Vhd(img.details()));
                Arc::new(img) as Arc<dyn DiskImage>
            })
        }
        ImageFormat::Qcow2 => {
            let img = Qcow2Image::open(file.clone(), &mut findings)?;
            img.map(|img| {
                report.subformat = Some(img.subformat().to_string());
                report.details = Some(FormatDetails::Qcow2(img.details()));
                Arc::new(img) as Arc<dyn DiskImage>
            })
        }
        ImageFormat::Vmdk => {
            let img = VmdkImage::open(file.clone(), &mut findings)?;
            img.map(|img| {
                report.subformat = Some(img.subformat().to_string());
                report.details = Some(FormatDetails::Vmdk(img.details()));
                Arc::new(img) as Arc<dyn DiskImage>
            })
        }
        ImageFormat::Vhdx => {
            let img = VhdxImage::open(file.clone(), &mut findings)?;
            img.map(|img| {
                report.subformat = Some(img.subformat().to_string());
                report.details = Some(FormatDetails::Vhdx(img.details()));
                Arc::new(img) as Arc<dyn DiskImage>
            })
        }
    };
    if let Some(image) = &image
        && !findings.iter().any(Finding::refuses)
    {
        nested_findings(image.as_ref(), opts.allow_nested, &mut findings)?;
    }
    report.findings.extend(findings);
    let refused = report.findings.iter().any(Finding::refuses);
    match image {
        Some(image) if !refused => {
            report.virtual_size = Some(image.virtual_size());
            report.allocated_size = Some(image.allocated_size()?);
            report.bytes_read = file.bytes_read();
            report.safe = true;
            Ok(Opened {
                image,
                report,
                file,
                package: None,
            })
        }
        _ => {
            report.safe = false;
            report.bytes_read = file.bytes_read();
            Err(ImageError::Refused {
                report: Box::new(report),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(head: &[u8], tail: &[u8], size: u64) -> Vec<&'static str> {
        probe(head, tail, size).iter().map(|s| s.name).collect()
    }

    #[test]
    fn probe_finds_each_refused_signature() {
        let mut head = vec![0u8; HEAD_LEN];
        head[..4].copy_from_slice(b"QED\0");
        assert_eq!(names(&head, &[], 1 << 20), ["qed"]);
        let mut head = vec![0u8; HEAD_LEN];
        head[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(names(&head, &[], 1 << 20), ["iso"]);
        let mut head = vec![0u8; HEAD_LEN];
        head[257..262].copy_from_slice(b"ustar");
        assert_eq!(names(&head, &[], 1 << 20), ["tar"]);
        let head = [0x1f, 0x8b, 8, 0];
        assert_eq!(names(&head, &[], 4), ["gzip"]);
    }

    #[test]
    fn qcow_version_one_is_qcow_not_qcow2() {
        let mut head = vec![0u8; 512];
        head[..4].copy_from_slice(QCOW_MAGIC);
        head[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(names(&head, &[], 512), ["qcow"]);
    }

    #[test]
    fn fat_boot_sector_is_not_an_mbr() {
        let mut head = vec![0u8; 512];
        head[510] = 0x55;
        head[511] = 0xaa;
        assert_eq!(names(&head, &[], 512), ["mbr"]);
        head[0x52..0x5a].copy_from_slice(b"FAT32   ");
        assert!(names(&head, &[], 512).is_empty());
    }

    #[test]
    fn vhd_footer_at_end_and_legacy_511() {
        let mut tail = vec![0u8; TAIL_LEN];
        tail[TAIL_LEN - 512..TAIL_LEN - 504].copy_from_slice(VHD_COOKIE);
        let sigs = probe(&[0u8; 512], &tail, 10_000);
        assert_eq!(sigs[0].name, "vhd");
        assert_eq!(sigs[0].offset, 10_000 - 512);
        let mut tail = vec![0u8; TAIL_LEN];
        tail[TAIL_LEN - 511..TAIL_LEN - 503].copy_from_slice(VHD_COOKIE);
        assert_eq!(probe(&[0u8; 512], &tail, 10_000)[0].offset, 10_000 - 511);
    }

    #[test]
    fn vmdk_text_descriptor() {
        let text = b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n";
        assert_eq!(names(text, &[], text.len() as u64), ["vmdk"]);
        assert!(names(b"hello world, just some plain text", &[], 33).is_empty());
    }
}

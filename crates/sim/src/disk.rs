//! What the emulated ImportImage checks about each OSS object before it accepts it, in one
//! place: the object exists and is not empty, a dynamic VHD's size equals MaxTableEntries ×
//! BlockSize (`InvalidVHDImage.IncorrectSize`), its header is one ImportImage takes and its
//! format matches the declared `Format` (`InvalidImageFormat.Malformed`, judged by the
//! emulator's own header reading in `disk/sniff.rs`), and `DiskImageSize` covers the virtual
//! size (`InvalidImageSize`/`InvalidDataDiskSize`).
//!
//! Objects are plain files at `<s3 root>/<bucket>/<key>`.

use imgport_base::bytes::{get_be32 as be32, get_be64 as be64};
use std::path::{Component, Path, PathBuf};

use super::fault::ApiFault;
use imgport_image::ImageFormat;
use sniff::{Sniffed, VhdKind};

mod sniff;

const GIB: u64 = 1 << 30;
/// VHD footer length (VHD spec §"Hard Disk Footer Format").
const VHD_FOOTER: u64 = 512;
/// VHD dynamic disk type (footer "Disk Type" = 3); 2 is fixed, 4 differencing.
const VHD_DYNAMIC: u32 = 3;
const VHD_DIFFERENCING: u32 = 4;

/// What the check learned about an accepted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    pub format: ImageFormat,
    /// Bytes of the virtual disk.
    pub virtual_size: u64,
    /// Bytes of the object.
    pub object_size: u64,
    /// Virtual size rounded up to whole GiB (at least 1).
    pub size_gib: u64,
}

impl ObjectFacts {
    /// The `DiskDeviceMapping.N.Format` the cloud records when a request names none.
    pub fn disk_format(&self) -> &'static str {
        match self.format {
            ImageFormat::Raw => "RAW",
            ImageFormat::Vhd => "VHD",
            ImageFormat::Qcow2 => "QCOW2",
            ImageFormat::Vmdk => "VMDK",
            ImageFormat::Vhdx => "VHDX",
        }
    }
}

/// The file of `bucket`/`key` under `root`; `None` when the key would leave the bucket.
pub fn object_path(root: &Path, bucket: &str, key: &str) -> Option<PathBuf> {
    let rel = Path::new(key);
    if bucket.is_empty()
        || bucket.contains('/')
        || rel.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(bucket).join(rel))
}

/// The facts a VHD footer (and dynamic header) gives, read without the VHD reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VhdFacts {
    current_size: u64,
    /// Footer Disk Type: 2 fixed, 3 dynamic, 4 differencing.
    disk_type: u32,
    /// `(MaxTableEntries, BlockSize)` of a dynamic VHD.
    dynamic: Option<(u32, u32)>,
}

/// Reads the VHD footer at the end of `path` (cookie `conectix`; Current Size at 48, Disk
/// Type at 60, Data Offset at 16) and, for a dynamic disk, the header at Data Offset
/// (cookie `cxsparse`; Max Table Entries at 28, Block Size at 32). `None` if not a VHD.
fn read_vhd(path: &Path, size: u64) -> std::io::Result<Option<VhdFacts>> {
    use std::os::unix::fs::FileExt;
    if size < VHD_FOOTER {
        return Ok(None);
    }
    let file = std::fs::File::open(path)?;
    let mut footer = [0u8; VHD_FOOTER as usize];
    file.read_exact_at(&mut footer, size - VHD_FOOTER)?;
    if &footer[..8] != b"conectix" {
        return Ok(None);
    }
    let (Some(current_size), Some(disk_type), Some(data_offset)) =
        (be64(&footer, 48), be32(&footer, 60), be64(&footer, 16))
    else {
        return Ok(None);
    };
    let mut dynamic = None;
    if disk_type == VHD_DYNAMIC && data_offset.checked_add(1024).is_some_and(|e| e <= size) {
        let mut header = [0u8; 64];
        file.read_exact_at(&mut header, data_offset)?;
        if &header[..8] == b"cxsparse" {
            dynamic = be32(&header, 28).zip(be32(&header, 32));
        }
    }
    Ok(Some(VhdFacts {
        current_size,
        disk_type,
        dynamic,
    }))
}

fn malformed(n: usize, why: String) -> ApiFault {
    ApiFault::new(
        400,
        "InvalidImageFormat.Malformed",
        format!("The specified image format of DiskDeviceMapping.{n} is wrongly formed: {why}"),
    )
}

/// Checks disk `n` (1-based) read from `bucket`/`key` under `root`, as ImportImage would;
/// `declared` is its `Format` as listed (`RAW`, `VHD`, `QCOW2`, `VMDK`), if given.
/// Blocking: call from a blocking thread.
pub fn check_object(
    root: &Path,
    n: usize,
    bucket: &str,
    key: &str,
    declared: Option<&str>,
    disk_image_size_gib: Option<u64>,
) -> Result<ObjectFacts, ApiFault> {
    let not_found = || {
        ApiFault::new(
            400,
            "InvalidOSSObject.NotFound",
            format!("The specified OSS object {key:?} in DiskDeviceMapping.{n} does not exist."),
        )
    };
    if !root.join(bucket).is_dir() {
        return Err(ApiFault::new(
            400,
            "InvalidOSSBucket.NotFound",
            format!("The specified OSS bucket {bucket:?} does not exist."),
        ));
    }
    let path = object_path(root, bucket, key).ok_or_else(not_found)?;
    let meta = std::fs::metadata(&path).map_err(|_| not_found())?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let object_size = meta.len();
    if object_size == 0 {
        return Err(ApiFault::new(
            400,
            "InvalidOSSObject.Size",
            format!("The specified OSS object {key:?} is empty."),
        ));
    }
    let internal = |e: std::io::Error| {
        ApiFault::new(
            500,
            "InternalError",
            format!("reading the object failed: {e}"),
        )
    };
    let vhd = read_vhd(&path, object_size).map_err(internal)?;
    if let Some(VhdFacts {
        current_size,
        dynamic: Some((entries, block)),
        ..
    }) = vhd
    {
        let covered = u64::from(entries).saturating_mul(u64::from(block));
        if covered != current_size {
            return Err(ApiFault::new(
                403,
                "InvalidVHDImage.IncorrectSize",
                format!(
                    "The VHD size {current_size} does not match MaxTableEntries x BlockSize = {entries} x {block} = {covered}."
                ),
            ));
        }
    }
    let declared_format = match declared {
        None => None,
        Some("RAW") => Some(ImageFormat::Raw),
        Some("VHD") => Some(ImageFormat::Vhd),
        Some("QCOW2") => Some(ImageFormat::Qcow2),
        Some(other) => {
            return Err(malformed(
                n,
                format!("{other} images are not accepted by this emulator"),
            ));
        }
    };
    // The cloud judges the object's own format, not what its guest data holds: a RAW object
    // whose first bytes are another image's header is that image, and then differs from RAW.
    let vhd_kind = vhd.map(|v| match v.disk_type {
        VHD_DIFFERENCING => VhdKind::Differencing,
        _ => VhdKind::Disk {
            current_size: v.current_size,
        },
    });
    let (format, virtual_size) = match sniff::sniff(&path, object_size, vhd_kind) {
        Ok(Sniffed::Image {
            format,
            virtual_size,
        }) => (format, virtual_size),
        Ok(Sniffed::Refused(why)) => return Err(malformed(n, why)),
        Err(e) => return Err(internal(e)),
    };
    if declared_format.is_some_and(|d| d != format) {
        return Err(malformed(
            n,
            format!("the object is a {} image", format.name().to_uppercase()),
        ));
    }
    let size_gib = virtual_size.div_ceil(GIB).max(1);
    if let Some(gib) = disk_image_size_gib
        && gib < size_gib
    {
        let code = if n == 1 {
            "InvalidImageSize"
        } else {
            "InvalidDataDiskSize"
        };
        return Err(ApiFault::new(
            400,
            code,
            format!(
                "The specified \"DiskDeviceMapping.{n}.DiskImageSize\" ({gib} GiB) should be not less than the image's virtual size ({size_gib} GiB)."
            ),
        ));
    }
    Ok(ObjectFacts {
        format,
        virtual_size,
        object_size,
        size_gib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_stay_in_the_bucket() {
        let root = Path::new("/s3");
        assert_eq!(
            object_path(root, "b", "dir/disk.raw"),
            Some(PathBuf::from("/s3/b/dir/disk.raw"))
        );
        assert_eq!(object_path(root, "b", "../x"), None);
        assert_eq!(object_path(root, "b", "/etc/passwd"), None);
        assert_eq!(
            object_path(root, "b", "a/./b"),
            Some(PathBuf::from("/s3/b/a/b"))
        );
        assert_eq!(object_path(root, "b/c", "x"), None);
    }

    fn vhd_bytes(current: u64, entries: u32, block: u32) -> Vec<u8> {
        // Layout: footer copy at 0, dynamic header at 512, footer at the end.
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        footer[16..24].copy_from_slice(&512u64.to_be_bytes()); // Data Offset
        footer[48..56].copy_from_slice(&current.to_be_bytes()); // Current Size
        footer[60..64].copy_from_slice(&3u32.to_be_bytes()); // Disk Type: dynamic
        let mut header = vec![0u8; 1024];
        header[..8].copy_from_slice(b"cxsparse");
        header[28..32].copy_from_slice(&entries.to_be_bytes()); // Max Table Entries
        header[32..36].copy_from_slice(&block.to_be_bytes()); // Block Size
        let mut out = footer.clone();
        out.extend_from_slice(&header);
        out.extend_from_slice(&footer);
        out
    }

    #[test]
    fn dynamic_vhd_size_must_match_the_table() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/bad.vhd"), vhd_bytes(3 << 20, 2, 2 << 20)).unwrap();
        let e = check_object(dir.path(), 1, "b", "bad.vhd", None, None).unwrap_err();
        assert_eq!(e.code, "InvalidVHDImage.IncorrectSize");
        std::fs::write(dir.path().join("b/empty.raw"), b"").unwrap();
        let e = check_object(dir.path(), 1, "b", "empty.raw", None, None).unwrap_err();
        assert_eq!(e.code, "InvalidOSSObject.Size");
        let e = check_object(dir.path(), 1, "b", "missing.raw", None, None).unwrap_err();
        assert_eq!(e.code, "InvalidOSSObject.NotFound");
        let e = check_object(dir.path(), 1, "nobucket", "x", None, None).unwrap_err();
        assert_eq!(e.code, "InvalidOSSBucket.NotFound");
    }

    #[test]
    fn a_vhdx_object_is_refused_as_ecs_does_not_import_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let out = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "vhdx"])
            .arg(dir.path().join("b/d.vhdx"))
            .arg("8M")
            .output()
            .expect("run qemu-img create");
        assert!(out.status.success());
        let e = check_object(dir.path(), 1, "b", "d.vhdx", None, None).unwrap_err();
        assert_eq!(e.code, "InvalidImageFormat.Malformed");
        assert!(e.message.contains("VHDX"), "{}", e.message);
    }

    #[test]
    fn raw_size_and_declared_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let f = std::fs::File::create(dir.path().join("b/d.raw")).unwrap();
        f.set_len(GIB + 512).unwrap();
        let facts = check_object(dir.path(), 1, "b", "d.raw", Some("RAW"), Some(2)).unwrap();
        assert_eq!((facts.format, facts.size_gib), (ImageFormat::Raw, 2));
        let e = check_object(dir.path(), 1, "b", "d.raw", None, Some(1)).unwrap_err();
        assert_eq!(e.code, "InvalidImageSize");
        let e = check_object(dir.path(), 2, "b", "d.raw", None, Some(1)).unwrap_err();
        assert_eq!(e.code, "InvalidDataDiskSize");
        let e = check_object(dir.path(), 1, "b", "d.raw", Some("QCOW2"), None).unwrap_err();
        assert_eq!(e.code, "InvalidImageFormat.Malformed");
    }
}

//! The parameter rules of the emulated ECS image APIs, as the service meets a request: every
//! parameter is a string under its wire name in the query or the form. Each action has a table
//! of its scalar parameters ([`IMPORT_IMAGE`], [`CREATE_IMAGE`], [`MODIFY_IMAGE_ATTRIBUTE`]):
//! the name, the shape the value must have, and the error code a misfit answers with. The
//! numbered groups (`DiskDeviceMapping.N.*`, `Tag.N.*`) are read by `import_disks` and
//! `tags`.
//!
//! Written from the vendor pages (ImportImage, CreateImage, ModifyImageAttribute) as summed up
//! in docs/CLOUD-API.md §ImportImage, §CreateImage and §ModifyImageAttribute, apart from the
//! client's own checks: the table in `tests/data/ecs-rules.toml` holds both to the documents.
//!
//! Kept whole: one table per action and the readers of the numbered groups share the value
//! shapes; apart, each table would repeat them.

use super::fault::ApiFault;

/// `Architecture` values (docs/CLOUD-API.md §ImportImage).
pub const ARCHITECTURES: &[&str] = &["i386", "x86_64", "arm64"];
/// `OSType` values.
pub const OS_TYPES: &[&str] = &["linux", "windows"];
/// `Platform` values of ImportImage: CreateImage's and `Other Windows`, any Windows the list
/// does not name (docs/CLOUD-API.md §ImportImage).
pub const IMPORT_PLATFORMS: &[&str] = &[
    "Aliyun",
    "Anolis",
    "CentOS",
    "Ubuntu",
    "CoreOS",
    "SUSE",
    "Debian",
    "OpenSUSE",
    "FreeBSD",
    "RedHat",
    "Kylin",
    "UOS",
    "Fedora",
    "Fedora CoreOS",
    "CentOS Stream",
    "AlmaLinux",
    "Rocky Linux",
    "Gentoo",
    "Customized Linux",
    "Others Linux",
    "Windows Server 2022",
    "Windows Server 2019",
    "Windows Server 2016",
    "Windows Server 2012",
    "Windows Server 2008",
    "Windows Server 2003",
    "Other Windows",
];
/// `Platform` values of CreateImage: ImportImage's without `Other Windows`, its last.
pub const PLATFORMS: &[&str] = IMPORT_PLATFORMS.split_at(IMPORT_PLATFORMS.len() - 1).0;
/// `BootMode` of ImportImage: `UEFI-Preferred` is not among them.
pub const IMPORT_BOOT_MODES: &[&str] = &["BIOS", "UEFI"];
/// `BootMode` of CreateImage and ModifyImageAttribute.
pub const BOOT_MODES: &[&str] = &["BIOS", "UEFI", "UEFI-Preferred"];
/// `LicenseType` of ImportImage.
pub const LICENSE_TYPES: &[&str] = &["Auto", "Aliyun", "BYOL"];
/// `DiskDeviceMapping.N.Format` of ImportImage (empty: the service detects it).
pub const DISK_FORMATS: &[&str] = &["RAW", "VHD", "QCOW2", "VMDK"];
/// `Features.NvmeSupport`.
pub const NVME_SUPPORT: &[&str] = &["supported", "unsupported"];
/// `Features.ImdsSupport` of ImportImage.
pub const IMDS_SUPPORT: &[&str] = &["v1", "v2"];
/// `DetectionStrategy`.
pub const DETECTION_STRATEGIES: &[&str] = &["Standard"];

/// Highest N of `DiskDeviceMapping.N`: one system disk and 16 data disks; a higher N is
/// ignored by ImportImage.
pub const DISK_SLOTS: usize = 17;
/// Highest N of `Tag.N`.
pub const TAG_SLOTS: usize = 20;
/// ImportImage `DiskImageSize`, GiB, for every N.
pub const IMPORT_DISK_GIB: (u64, u64) = (1, 2048);
/// CreateImage `DiskDeviceMapping.N.Size`, GiB.
pub const CREATE_DISK_GIB: (u64, u64) = (5, 20_000);

/// What a parameter's value must look like.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One of these spellings, ASCII case ignored.
    OneOf(&'static [&'static str]),
    /// An image or family name: 2–128 characters; the first an English letter, a CJK
    /// ideograph, hiragana or katakana; the rest those or ASCII digits or `. : _ -`; not
    /// beginning `acs:` or `aliyun`; no `http://` or `https://` anywhere.
    Name,
    /// Free text of `min..=max` characters not beginning `http://` or `https://`.
    Text { min: usize, max: usize },
    /// 1..=`max` ASCII characters, none a control character or a space.
    Ascii { max: usize },
    /// 1..=`max` ASCII letters and digits.
    LettersDigits { max: usize },
}

/// One scalar parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub shape: Shape,
    /// The error code of a value that does not fit (HTTP 400).
    pub code: &'static str,
}

const fn param(name: &'static str, shape: Shape, code: &'static str) -> Param {
    Param { name, shape, code }
}

/// ImportImage's scalar parameters (docs/CLOUD-API.md §ImportImage).
pub const IMPORT_IMAGE: &[Param] = &[
    param("ImageName", Shape::Name, "InvalidImageName.Malformed"),
    param(
        "Description",
        Shape::Text { min: 2, max: 256 },
        "InvalidDescription.Malformed",
    ),
    param(
        "Architecture",
        Shape::OneOf(ARCHITECTURES),
        "InvalidArchitecture.Malformed",
    ),
    param("OSType", Shape::OneOf(OS_TYPES), "InvalidOSType.Malformed"),
    param(
        "Platform",
        Shape::OneOf(IMPORT_PLATFORMS),
        "InvalidPlatform.Malformed",
    ),
    param(
        "BootMode",
        Shape::OneOf(IMPORT_BOOT_MODES),
        "InvalidBootMode.Malformed",
    ),
    param(
        "LicenseType",
        Shape::OneOf(LICENSE_TYPES),
        "InvalidLicenseType.NotSupported",
    ),
    param(
        "DetectionStrategy",
        Shape::OneOf(DETECTION_STRATEGIES),
        "InvalidParameter.DetectionStrategy",
    ),
    param(
        "Features.NvmeSupport",
        Shape::OneOf(NVME_SUPPORT),
        "InvalidParameter.FeaturesNvmeSupport",
    ),
    param(
        "Features.ImdsSupport",
        Shape::OneOf(IMDS_SUPPORT),
        "InvalidParameter.FeaturesImdsSupport",
    ),
    param(
        "ClientToken",
        Shape::Ascii { max: 64 },
        "InvalidClientToken.Malformed",
    ),
];

/// CreateImage's scalar parameters (docs/CLOUD-API.md §CreateImage).
pub const CREATE_IMAGE: &[Param] = &[
    param("ImageName", Shape::Name, "InvalidImageName.Malformed"),
    param(
        "ImageVersion",
        Shape::LettersDigits { max: 40 },
        "InvalidImageVersion.Malformed",
    ),
    param(
        "Description",
        Shape::Text { min: 0, max: 256 },
        "InvalidDescription.Malformed",
    ),
    param("ImageFamily", Shape::Name, "InvalidImageFamily.Malformed"),
    param(
        "ClientToken",
        Shape::Ascii { max: 64 },
        "InvalidClientToken.Malformed",
    ),
    param(
        "Platform",
        Shape::OneOf(PLATFORMS),
        "InvalidPlatform.Malformed",
    ),
    param(
        "Architecture",
        Shape::OneOf(ARCHITECTURES),
        "InvalidArchitecture.Malformed",
    ),
    param(
        "BootMode",
        Shape::OneOf(BOOT_MODES),
        "InvalidBootMode.NotSupport",
    ),
    param(
        "DetectionStrategy",
        Shape::OneOf(DETECTION_STRATEGIES),
        "InvalidParameter.DetectionStrategy",
    ),
    param(
        "Features.NvmeSupport",
        Shape::OneOf(NVME_SUPPORT),
        "InvalidParameter.FeaturesNvmeSupport",
    ),
];

/// ModifyImageAttribute's scalar parameters (docs/CLOUD-API.md §ModifyImageAttribute).
pub const MODIFY_IMAGE_ATTRIBUTE: &[Param] = &[
    param("ImageName", Shape::Name, "InvalidImageName.Malformed"),
    param(
        "Description",
        Shape::Text { min: 2, max: 256 },
        "InvalidDescription.Malformed",
    ),
    param("ImageFamily", Shape::Name, "InvalidImageFamily.Malformed"),
    param(
        "BootMode",
        Shape::OneOf(BOOT_MODES),
        "InvalidBootMode.NotSupport",
    ),
    param(
        "LicenseType",
        Shape::OneOf(&["BYOL"]),
        "InvalidLicenseType.NotSupported",
    ),
    param(
        "Status",
        Shape::OneOf(&["Deprecated", "Available"]),
        "InvalidParameter.Status",
    ),
    param(
        "Features.NvmeSupport",
        Shape::OneOf(NVME_SUPPORT),
        "InvalidParameter.FeaturesNvmeSupport",
    ),
    // Only v2 can be asked for; going back to v1 is its own 403 (checked against the image).
    param(
        "Features.ImdsSupport",
        Shape::OneOf(IMDS_SUPPORT),
        "InvalidParameter.FeaturesImdsSupport",
    ),
];

/// The operation parameters of one call, as they came: wire names and string values.
pub(crate) struct P<'a>(pub(crate) &'a [(String, String)]);

impl<'a> P<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&'a str, ApiFault> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(missing(name)),
        }
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `DryRun=true` ends a request whose checks passed here, with `DryRunOperation`.
    pub(crate) fn dry_run(&self) -> Result<(), ApiFault> {
        if self.flag("DryRun") {
            return Err(ApiFault::new(
                400,
                "DryRunOperation",
                "Request validation has been passed with DryRun flag set.",
            ));
        }
        Ok(())
    }

    /// Judges the scalar parameters of `table` ([`check`]).
    pub(crate) fn check(&self, table: &[Param]) -> Result<(), ApiFault> {
        check(self, table)
    }

    /// The listed spelling of the enumerated parameter `name` of `table`, or `default`.
    pub(crate) fn choice_or(&self, table: &[Param], name: &str, default: &str) -> String {
        choice(self, table, name).unwrap_or(default).to_string()
    }
}

/// A 400 answer naming `name` and what is wrong with `value`.
pub fn malformed(code: &str, name: &str, why: &str) -> ApiFault {
    ApiFault::new(
        400,
        code,
        format!("The specified parameter \"{name}\" is not valid: {why}."),
    )
}

/// The answer for a required parameter that is absent or empty.
pub fn missing(name: &str) -> ApiFault {
    ApiFault::new(
        400,
        "MissingParameter",
        format!(
            "An input parameter \"{name}\" that is mandatory for processing the request is not supplied."
        ),
    )
}

/// Whether `c` may begin a name: an English letter, a CJK unified ideograph (with extension
/// A), hiragana or katakana.
fn name_initial(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}')
        || matches!(c, '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}')
}

/// Why `value` does not have `shape`; `None` when it does.
pub fn misfit(shape: Shape, value: &str) -> Option<String> {
    let chars = value.chars().count();
    match shape {
        Shape::OneOf(list) => (!list.iter().any(|v| v.eq_ignore_ascii_case(value)))
            .then(|| format!("{value:?} is not one of {}", list.join(", "))),
        Shape::Name => {
            if !(2..=128).contains(&chars) {
                Some(format!("{chars} characters, not 2 to 128"))
            } else if !value.chars().next().is_some_and(name_initial) {
                Some("the first character is not a letter".into())
            } else if value.starts_with("acs:") || value.starts_with("aliyun") {
                Some("begins with acs: or aliyun".into())
            } else if value.contains("http://") || value.contains("https://") {
                Some("holds http:// or https://".into())
            } else {
                value
                    .chars()
                    .find(|&c| {
                        !(name_initial(c)
                            || c.is_ascii_digit()
                            || matches!(c, '.' | ':' | '_' | '-'))
                    })
                    .map(|c| format!("holds {c:?}"))
            }
        }
        Shape::Text { min, max } => {
            if !(min..=max).contains(&chars) {
                Some(format!("{chars} characters, not {min} to {max}"))
            } else if value.starts_with("http://") || value.starts_with("https://") {
                Some("begins with http:// or https://".into())
            } else {
                None
            }
        }
        Shape::Ascii { max } => {
            let fits =
                (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
            (!fits).then(|| format!("not 1 to {max} visible ASCII characters"))
        }
        Shape::LettersDigits { max } => {
            let fits = (1..=max).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_alphanumeric());
            (!fits).then(|| format!("not 1 to {max} ASCII letters and digits"))
        }
    }
}

/// Judges every parameter of `table` that `p` carries with a non-empty value; the first that
/// does not fit is the answer.
pub(crate) fn check(p: &P<'_>, table: &[Param]) -> Result<(), ApiFault> {
    for param in table {
        if let Some(value) = p.get(param.name).filter(|v| !v.is_empty())
            && let Some(why) = misfit(param.shape, value)
        {
            return Err(malformed(param.code, param.name, &why));
        }
    }
    Ok(())
}

/// The listed spelling of an enumerated parameter `name` of `table`, if `p` carries one (call
/// after [`check`]).
pub(crate) fn choice(p: &P<'_>, table: &[Param], name: &str) -> Option<&'static str> {
    let value = p.get(name).filter(|v| !v.is_empty())?;
    let list = table.iter().find_map(|t| match t.shape {
        Shape::OneOf(list) if t.name == name => Some(list),
        _ => None,
    })?;
    list.iter().copied().find(|v| v.eq_ignore_ascii_case(value))
}

/// One disk of an ImportImage request.
#[derive(Debug, Clone)]
pub struct ImportDisk {
    /// N of `DiskDeviceMapping.N`, 1 = the system disk.
    pub n: usize,
    pub bucket: String,
    pub object: String,
    /// The listed spelling of `Format`, if given.
    pub format: Option<&'static str>,
    /// `DiskImageSize` (or its old name `DiskImSize`), GiB, if given.
    pub size_gib: Option<u64>,
}

/// Whether `b` is an OSS bucket name: 3–63 lower-case letters, digits and `-`, a letter or
/// digit at both ends.
fn bucket_name(b: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && edge(b.chars().next())
        && edge(b.chars().last())
}

/// The disks of ImportImage: `DiskDeviceMapping.1` … `.17` (a higher N is ignored). Mapping 1
/// needs its bucket and object; any mapping that names one needs both.
pub(crate) fn import_disks(p: &P<'_>) -> Result<Vec<ImportDisk>, ApiFault> {
    let mut disks = Vec::new();
    for n in 1..=DISK_SLOTS {
        let name = |f: &str| format!("DiskDeviceMapping.{n}.{f}");
        let get = |f: &str| p.get(&name(f)).filter(|v| !v.is_empty());
        let (bucket, object) = (get("OSSBucket"), get("OSSObject"));
        if n > 1 && p.get(&name("OSSBucket")).is_none() && p.get(&name("OSSObject")).is_none() {
            continue;
        }
        let bucket = bucket.ok_or_else(|| missing(&name("OSSBucket")))?;
        let object = object.ok_or_else(|| missing(&name("OSSObject")))?;
        if !bucket_name(bucket) {
            return Err(malformed(
                "InvalidOSSBucket.Malformed",
                &name("OSSBucket"),
                "a bucket name is 3 to 63 lower-case letters, digits and -, a letter or digit at both ends",
            ));
        }
        if object.len() > 1023 || object.starts_with(['/', '\\']) {
            return Err(malformed(
                "InvalidOSSObject.Malformed",
                &name("OSSObject"),
                "an object key is 1 to 1023 bytes and does not begin with / or \\",
            ));
        }
        let format = match get("Format") {
            None => None,
            Some(f) => Some(
                DISK_FORMATS
                    .iter()
                    .copied()
                    .find(|v| v.eq_ignore_ascii_case(f))
                    .ok_or_else(|| {
                        malformed(
                            "InvalidImageFormat.Malformed",
                            &name("Format"),
                            "the format is RAW, VHD, QCOW2 or VMDK",
                        )
                    })?,
            ),
        };
        let size_gib = match get("DiskImageSize").or_else(|| get("DiskImSize")) {
            None => None,
            Some(s) => {
                let (lo, hi) = IMPORT_DISK_GIB;
                match s.parse::<u64>() {
                    Ok(g) if (lo..=hi).contains(&g) => Some(g),
                    _ => {
                        let code = if n == 1 {
                            "InvalidImageSize"
                        } else {
                            "InvalidDataDiskSize"
                        };
                        return Err(malformed(
                            code,
                            &name("DiskImageSize"),
                            &format!("{s:?} is not a whole number of GiB from {lo} to {hi}"),
                        ));
                    }
                }
            }
        };
        disks.push(ImportDisk {
            n,
            bucket: bucket.to_string(),
            object: object.to_string(),
            format,
            size_gib,
        });
    }
    Ok(disks)
}

/// The tags of a request, `Tag.1` … `Tag.20`: a key of 1–128 characters not beginning
/// `acs:` or `aliyun` and without `http://`/`https://`; a value of at most 128 characters
/// (empty allowed) not beginning `acs:`; no key twice (403 `TagKey.Duplication`); a `Tag.21`
/// is one tag too many.
pub(crate) fn tags(p: &P<'_>) -> Result<Vec<(String, String)>, ApiFault> {
    let mut list: Vec<(String, String)> = Vec::new();
    for n in 1..=TAG_SLOTS + 1 {
        let key_name = format!("Tag.{n}.Key");
        let value_name = format!("Tag.{n}.Value");
        let (key, value) = (p.get(&key_name), p.get(&value_name));
        if key.is_none() && value.is_none() {
            continue;
        }
        if n > TAG_SLOTS {
            return Err(malformed(
                "InvalidTags.Malformed",
                &format!("Tag.{n}"),
                &format!("at most {TAG_SLOTS} tags"),
            ));
        }
        let key = key.unwrap_or_default();
        let value = value.unwrap_or_default();
        let kchars = key.chars().count();
        if kchars == 0 || kchars > 128 {
            return Err(malformed(
                "InvalidTagKey.Malformed",
                &key_name,
                "a tag key is 1 to 128 characters",
            ));
        }
        if key.starts_with("acs:")
            || key.starts_with("aliyun")
            || key.contains("http://")
            || key.contains("https://")
        {
            return Err(malformed(
                "InvalidTagKey.Malformed",
                &key_name,
                "a tag key does not begin acs: or aliyun nor hold http:// or https://",
            ));
        }
        if value.chars().count() > 128 || value.starts_with("acs:") {
            return Err(malformed(
                "InvalidTagValue.Malformed",
                &value_name,
                "a tag value is at most 128 characters and does not begin acs:",
            ));
        }
        if list.iter().any(|(k, _)| k == key) {
            return Err(ApiFault::new(
                403,
                "TagKey.Duplication",
                format!("The tag key {key:?} is given more than once."),
            ));
        }
        list.push((key.to_string(), value.to_string()));
    }
    Ok(list)
}

/// The device CreateImage's mapping N must name: `/dev/xvda` for the system disk, then
/// `/dev/xvdb`, `/dev/xvdc` … in order.
pub fn create_device(n: usize) -> Option<String> {
    let offset = u8::try_from(n.checked_sub(1)?).ok()?;
    (n <= DISK_SLOTS).then(|| format!("/dev/xvd{}", char::from(b'a' + offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn create_image_takes_every_import_platform_but_other_windows() {
        assert_eq!(PLATFORMS.len(), 26);
        assert!(!PLATFORMS.contains(&"Other Windows"));
        assert!(PLATFORMS.iter().all(|p| IMPORT_PLATFORMS.contains(p)));
    }

    #[test]
    fn names_follow_the_documented_shape() {
        for ok in ["ab", "Ubuntu-22.04:v1_x", "镜像1", "かな", "カナ"] {
            assert_eq!(misfit(Shape::Name, ok), None, "{ok}");
        }
        for bad in [
            "a",
            "1abc",
            "_abc",
            "acs:x",
            "aliyunx",
            "ahttp://x",
            "a b",
            "Ωmega",
            "a/b",
        ] {
            assert!(misfit(Shape::Name, bad).is_some(), "{bad}");
        }
        assert!(misfit(Shape::Name, &"a".repeat(129)).is_some());
        assert_eq!(misfit(Shape::Name, &"a".repeat(128)), None);
    }

    #[test]
    fn enumerations_ignore_case_and_report_the_listed_spelling() {
        let f = form(&[("Platform", "others linux"), ("OSType", "Linux")]);
        let p = P(&f);
        check(&p, IMPORT_IMAGE).unwrap();
        assert_eq!(choice(&p, IMPORT_IMAGE, "Platform"), Some("Others Linux"));
        assert_eq!(choice(&p, IMPORT_IMAGE, "OSType"), Some("linux"));
        let f = form(&[("BootMode", "UEFI-Preferred")]);
        let e = check(&P(&f), IMPORT_IMAGE).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "InvalidBootMode.Malformed")
        );
    }

    #[test]
    fn disk_mappings_and_sizes() {
        let f = form(&[
            ("DiskDeviceMapping.1.OSSBucket", "bkt"),
            ("DiskDeviceMapping.1.OSSObject", "a.raw"),
            ("DiskDeviceMapping.2.OSSBucket", "bkt"),
            ("DiskDeviceMapping.2.OSSObject", "b.raw"),
            ("DiskDeviceMapping.2.DiskImageSize", "2049"),
        ]);
        assert_eq!(
            import_disks(&P(&f)).unwrap_err().code,
            "InvalidDataDiskSize"
        );
        let f = form(&[("DiskDeviceMapping.1.OSSObject", "a.raw")]);
        assert_eq!(import_disks(&P(&f)).unwrap_err().code, "MissingParameter");
        let f = form(&[
            ("DiskDeviceMapping.1.OSSBucket", "bkt"),
            ("DiskDeviceMapping.1.OSSObject", "a.raw"),
            ("DiskDeviceMapping.18.OSSBucket", "bkt"),
            ("DiskDeviceMapping.18.OSSObject", "r.raw"),
        ]);
        assert_eq!(import_disks(&P(&f)).unwrap().len(), 1);
    }

    #[test]
    fn tags_limits() {
        let f = form(&[("Tag.1.Key", "k"), ("Tag.2.Key", "k")]);
        let e = tags(&P(&f)).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "TagKey.Duplication"));
        let f = form(&[("Tag.21.Key", "k")]);
        assert_eq!(tags(&P(&f)).unwrap_err().code, "InvalidTags.Malformed");
        let f = form(&[("Tag.1.Key", "k"), ("Tag.1.Value", "acs:v")]);
        assert_eq!(tags(&P(&f)).unwrap_err().code, "InvalidTagValue.Malformed");
    }

    #[test]
    fn create_devices_run_from_xvda_to_xvdq() {
        assert_eq!(create_device(1).as_deref(), Some("/dev/xvda"));
        assert_eq!(create_device(17).as_deref(), Some("/dev/xvdq"));
        assert_eq!(create_device(0), None);
        assert_eq!(create_device(18), None);
    }
}

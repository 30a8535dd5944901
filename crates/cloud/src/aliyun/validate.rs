//! The documented parameter rules of the ECS image APIs, as pure functions the client checks
//! before any call. The emulator has its own (imgport-sim `params.rs`); both are held to the
//! cases of `tests/data/ecs-rules.toml`.
//!
//! Source: docs/CLOUD-API.md §ImportImage, §ModifyImageAttribute and §CreateImage. Each failure
//! carries the ECS error code the service returns.
//!
//! Kept whole: every client-side rule of the image APIs is here and nowhere else; the tests at
//! the end pin one documented limit each.

/// A parameter that breaks a documented rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {field} is invalid ({code}): {rule}")]
pub struct Invalid {
    /// Wire name of the parameter, e.g. `DiskDeviceMapping.2.DiskImageSize`.
    pub field: String,
    /// The ECS error code the service answers with, e.g. `InvalidImageName.Malformed`.
    pub code: &'static str,
    /// The rule that was broken, for people.
    pub rule: String,
}

impl Invalid {
    /// A failure of `field` with `code` and a sentence naming the rule.
    pub fn new(field: impl Into<String>, code: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            rule: rule.into(),
        }
    }
}

/// Most disks one ImportImage takes: N = 1 (system) ..= 17 (docs/CLOUD-API.md §ImportImage).
pub const MAX_DISKS: usize = 17;
/// Most tags per request (`Tag.N`, N = 1..20).
pub const MAX_TAGS: usize = 20;
/// DiskImageSize range in GiB (docs/CLOUD-API.md §ImportImage: 1–2048 for every N).
pub const DISK_IMAGE_SIZE_GIB: std::ops::RangeInclusive<u64> = 1..=2048;
/// Longest ClientToken, in ASCII characters (docs/CLOUD-API.md §CreateImage).
pub const MAX_CLIENT_TOKEN: usize = 64;

fn has_url(s: &str) -> bool {
    s.contains("http://") || s.contains("https://")
}

fn starts_reserved(s: &str) -> bool {
    s.starts_with("acs:") || s.starts_with("aliyun")
}

/// What the ImportImage page lets a name start with: an English letter, or a Chinese
/// character, hiragana or katakana (CJK unified ideographs with extension A, the kana blocks).
fn name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}')
        || matches!(c, '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}')
}

/// A name of 2–128 characters that starts with an English letter or a CJK/kana character
/// (docs/CLOUD-API.md §ImportImage), does not start with `acs:`/`aliyun`, holds no
/// `http(s)://`, and uses only letters, digits and `. : _ -`. Shared by ImageName and
/// ImageFamily.
fn name_rule(field: &str, value: &str, code: &'static str) -> Result<(), Invalid> {
    let fail = |rule: &str| Err(Invalid::new(field, code, format!("{rule} (got {value:?})")));
    let len = value.chars().count();
    if !(2..=128).contains(&len) {
        return fail("must be 2 to 128 characters long");
    }
    if !value.chars().next().is_some_and(name_start) {
        return fail("must start with an English letter, a Chinese character or kana");
    }
    if starts_reserved(value) {
        return fail("must not start with `acs:` or `aliyun`");
    }
    if has_url(value) {
        return fail("must not contain `http://` or `https://`");
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '.' | ':' | '_' | '-')))
    {
        return fail(&format!(
            "may hold only letters, digits and `. : _ -`, not {c:?}"
        ));
    }
    Ok(())
}

/// ImageName: see `name_rule`; code `InvalidImageName.Malformed`.
pub fn image_name(value: &str) -> Result<(), Invalid> {
    name_rule("ImageName", value, "InvalidImageName.Malformed")
}

/// ImageFamily (ModifyImageAttribute, docs/CLOUD-API.md §ModifyImageAttribute): same shape as
/// ImageName.
pub fn image_family(value: &str) -> Result<(), Invalid> {
    name_rule("ImageFamily", value, "InvalidImageFamily.Malformed")
}

/// Description: 2–256 characters, not starting with `http://` or `https://`.
pub fn description(value: &str) -> Result<(), Invalid> {
    let fail = |rule: &str| {
        Err(Invalid::new(
            "Description",
            "InvalidDescription.Malformed",
            rule.to_string(),
        ))
    };
    let len = value.chars().count();
    if !(2..=256).contains(&len) {
        return fail(&format!("must be 2 to 256 characters long (got {len})"));
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        return fail("must not start with `http://` or `https://`");
    }
    Ok(())
}

/// ClientToken: 1–64 printable ASCII characters (docs/CLOUD-API.md §CreateImage).
pub fn client_token(value: &str) -> Result<(), Invalid> {
    if value.is_empty()
        || value.len() > MAX_CLIENT_TOKEN
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Invalid::new(
            "ClientToken",
            "InvalidClientToken.Malformed",
            format!("must be 1 to {MAX_CLIENT_TOKEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// `Tag.N.Key`/`Tag.N.Value` (1-based `n`): key 1–128 characters, not `acs:`/`aliyun`, no
/// `http(s)://`; value at most 128 characters, not starting with `acs:`.
pub fn tag(n: usize, key: &str, value: &str) -> Result<(), Invalid> {
    let kf = format!("Tag.{n}.Key");
    let klen = key.chars().count();
    if klen == 0 || klen > 128 {
        return Err(Invalid::new(
            kf,
            "InvalidTagKey.Malformed",
            "must be 1 to 128 characters long",
        ));
    }
    if starts_reserved(key) || has_url(key) {
        return Err(Invalid::new(
            kf,
            "InvalidTagKey.Malformed",
            "must not start with `acs:`/`aliyun` nor contain `http(s)://`",
        ));
    }
    let vf = format!("Tag.{n}.Value");
    if value.chars().count() > 128 {
        return Err(Invalid::new(
            vf,
            "InvalidTagValue.Malformed",
            "must be at most 128 characters long",
        ));
    }
    if value.starts_with("acs:") {
        return Err(Invalid::new(
            vf,
            "InvalidTagValue.Malformed",
            "must not start with `acs:`",
        ));
    }
    Ok(())
}

/// All tags: at most [`MAX_TAGS`], each valid, no key twice (`TagKey.Duplication`).
pub fn tags<'a>(list: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), Invalid> {
    let mut seen = std::collections::HashSet::new();
    for (i, (k, v)) in list.into_iter().enumerate() {
        let n = i + 1;
        if n > MAX_TAGS {
            return Err(Invalid::new(
                format!("Tag.{n}"),
                "InvalidTags.Malformed",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        tag(n, k, v)?;
        if !seen.insert(k) {
            return Err(Invalid::new(
                format!("Tag.{n}.Key"),
                "TagKey.Duplication",
                format!("tag key {k:?} is given twice"),
            ));
        }
    }
    Ok(())
}

/// `DiskDeviceMapping.N.DiskImageSize` in GiB: 1–2048; N = 1 fails with `InvalidImageSize`,
/// data disks with `InvalidDataDiskSize`.
pub fn disk_image_size(n: usize, gib: u64) -> Result<(), Invalid> {
    if DISK_IMAGE_SIZE_GIB.contains(&gib) {
        return Ok(());
    }
    Err(Invalid::new(
        format!("DiskDeviceMapping.{n}.DiskImageSize"),
        if n == 1 {
            "InvalidImageSize"
        } else {
            "InvalidDataDiskSize"
        },
        format!("must be 1 to 2048 GiB (got {gib})"),
    ))
}

/// `DiskDeviceMapping.N.OSSBucket`: OSS bucket naming — 3–63 characters of lower-case
/// letters, digits and `-`, starting and ending with a letter or digit.
pub fn oss_bucket(n: usize, bucket: &str) -> Result<(), Invalid> {
    let field = format!("DiskDeviceMapping.{n}.OSSBucket");
    if bucket.is_empty() {
        return Err(missing(&field));
    }
    let b = bucket.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&b.len()) || !b.iter().all(ok_char) || !edge(b.first()) || !edge(b.last())
    {
        return Err(Invalid::new(
            field,
            "InvalidOSSBucket.Malformed",
            format!(
                "bucket names are 3-63 lower-case letters, digits and `-`, starting and ending with a letter or digit (got {bucket:?})"
            ),
        ));
    }
    Ok(())
}

/// `DiskDeviceMapping.N.OSSObject`: an OSS key of 1–1023 bytes not starting with `/` or `\`.
pub fn oss_object(n: usize, key: &str) -> Result<(), Invalid> {
    let field = format!("DiskDeviceMapping.{n}.OSSObject");
    if key.is_empty() {
        return Err(missing(&field));
    }
    if key.len() > 1023 || key.starts_with('/') || key.starts_with('\\') {
        return Err(Invalid::new(
            field,
            "InvalidOSSObject.Malformed",
            "object keys are 1-1023 bytes and must not start with `/` or `\\`",
        ));
    }
    Ok(())
}

/// A required parameter that is absent (`MissingParameter`).
pub fn missing(field: &str) -> Invalid {
    Invalid::new(
        field,
        "MissingParameter",
        format!(
            "An input parameter \"{field}\" that is mandatory for processing the request is not supplied."
        ),
    )
}

/// RegionId: required, non-empty.
pub fn region_id(value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(missing("RegionId"));
    }
    Ok(())
}

/// How a region id looks, checked before any call so that a typo is a usage error rather
/// than a failed request: groups of lower-case letters and digits joined by `-`, the first
/// of letters only, at least two groups, at most 64 characters (`cn-hangzhou`, `us-east-1`,
/// `ap-southeast-1`, `cn-shanghai-finance-1`).
pub fn region_name(value: &str) -> Result<(), Invalid> {
    region_id(value)?;
    let mut groups = value.split('-');
    let first_ok = groups
        .next()
        .is_some_and(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_lowercase()));
    let rest: Vec<&str> = groups.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|g| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if value.len() <= 64 && first_ok && rest_ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "RegionId",
            "InvalidRegionId.Malformed",
            format!(
                "{value:?} is not a region id: one looks like cn-hangzhou, us-east-1 or \
                 ap-southeast-1 (lower-case letters and digits in groups joined by `-`)"
            ),
        ))
    }
}

/// The number of disks: 1 ..= [`MAX_DISKS`].
pub fn disk_count(n: usize) -> Result<(), Invalid> {
    if n == 0 {
        return Err(missing("DiskDeviceMapping.1.OSSBucket"));
    }
    if n > MAX_DISKS {
        return Err(Invalid::new(
            format!("DiskDeviceMapping.{n}"),
            "InvalidParameter.DiskDeviceMapping",
            format!("at most {MAX_DISKS} disks (1 system disk and 16 data disks)"),
        ));
    }
    Ok(())
}

/// CreateImage `DiskDeviceMapping.N.Size` range in GiB (docs/CLOUD-API.md §CreateImage: [5,
/// 20000]).
pub const CREATE_DISK_SIZE_GIB: std::ops::RangeInclusive<u64> = 5..=20000;
/// Longest CreateImage ImageVersion (docs/CLOUD-API.md §CreateImage: [1, 40]).
pub const MAX_IMAGE_VERSION: usize = 40;

/// CreateImage Description (docs/CLOUD-API.md §CreateImage): 0–256 characters, not starting with
/// `http://` or `https://` (ImportImage and ModifyImageAttribute ask for at least 2, see
/// [`description`]).
pub fn create_description(value: &str) -> Result<(), Invalid> {
    let fail = |rule: String| {
        Err(Invalid::new(
            "Description",
            "InvalidDescription.Malformed",
            rule,
        ))
    };
    let len = value.chars().count();
    if len > 256 {
        return fail(format!("must be at most 256 characters long (got {len})"));
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        return fail("must not start with `http://` or `https://`".into());
    }
    Ok(())
}

/// CreateImage ImageVersion (docs/CLOUD-API.md §CreateImage): 1–40 ASCII letters and digits.
pub fn image_version(value: &str) -> Result<(), Invalid> {
    let len = value.chars().count();
    if !(1..=MAX_IMAGE_VERSION).contains(&len) || !value.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(Invalid::new(
            "ImageVersion",
            "InvalidImageVersion.Malformed",
            format!("must be 1 to {MAX_IMAGE_VERSION} letters and digits (got {value:?})"),
        ));
    }
    Ok(())
}

/// CreateImage `DiskDeviceMapping.N.Size` in GiB: 5–20000 (docs/CLOUD-API.md §CreateImage).
pub fn create_disk_size(n: usize, gib: u64) -> Result<(), Invalid> {
    if CREATE_DISK_SIZE_GIB.contains(&gib) {
        return Ok(());
    }
    Err(Invalid::new(
        format!("DiskDeviceMapping.{n}.Size"),
        "InvalidSize.ValueNotSupported",
        format!("must be 5 to 20000 GiB (got {gib})"),
    ))
}

/// The device name CreateImage's mapping N must carry (docs/CLOUD-API.md §CreateImage): N = 1 is
/// the one system disk `/dev/xvda`; data disks follow in order, `/dev/xvdb` … `/dev/xvdq` (N ≤ 17),
/// no gaps and no duplicates. `None` when N is outside 1..=17.
pub fn create_device_for(n: usize) -> Option<String> {
    if !(1..=MAX_DISKS).contains(&n) {
        return None;
    }
    let letter = char::from(b'a' + u8::try_from(n - 1).ok()?);
    Some(format!("/dev/xvd{letter}"))
}

/// CreateImage `DiskDeviceMapping.N.Device`: must be [`create_device_for`]`(n)`; a repeated or
/// out-of-order name breaks the rule "one system disk `/dev/xvda`, data disks `/dev/xvdb` to
/// `/dev/xvdz` in order without duplicates" (docs/CLOUD-API.md §CreateImage).
pub fn create_device(n: usize, device: &str) -> Result<(), Invalid> {
    let field = format!("DiskDeviceMapping.{n}.Device");
    match create_device_for(n) {
        Some(want) if want == device => Ok(()),
        Some(want) => Err(Invalid::new(
            field,
            "InvalidParameter.Malformed",
            if n == 1 {
                format!("the system disk must be /dev/xvda (got {device:?})")
            } else {
                format!(
                    "data disks are /dev/xvdb, /dev/xvdc … in order without duplicates: mapping {n} must be {want} (got {device:?})"
                )
            },
        )),
        None => Err(Invalid::new(
            field,
            "InvalidParameter.DiskDeviceMapping",
            format!("at most {MAX_DISKS} disks (1 system disk and 16 data disks)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: Result<T, Invalid>) -> &'static str {
        r.err().map(|e| e.code).unwrap_or("ok")
    }

    #[test]
    fn image_name_rules() {
        for good in [
            "ab",
            "Debian-12.5:golden_v1",
            "イメージ1",
            "镜像-a",
            &"a".repeat(128),
        ] {
            assert_eq!(code(image_name(good)), "ok", "{good}");
        }
        for bad in [
            "a",              // too short
            &"a".repeat(129), // too long
            "1abc",           // starts with a digit
            "_abc",           // starts with a symbol
            "acs:image",      // reserved prefix
            "aliyun-image",   // reserved prefix
            "ahttp://x",      // URL
            "ahttps://x",     // URL
            "has space",      // space not allowed
            "slash/name",     // slash not allowed
            "Ωmega",          // a letter, but neither English nor CJK/kana
        ] {
            assert_eq!(code(image_name(bad)), "InvalidImageName.Malformed", "{bad}");
        }
    }

    #[test]
    fn image_family_rules() {
        assert_eq!(code(image_family("hangzhou-daily-update")), "ok");
        assert_eq!(code(image_family("9x")), "InvalidImageFamily.Malformed");
    }

    #[test]
    fn description_rules() {
        assert_eq!(code(description("ok")), "ok");
        assert_eq!(code(description(&"d".repeat(256))), "ok");
        assert_eq!(code(description("x")), "InvalidDescription.Malformed");
        assert_eq!(
            code(description(&"d".repeat(257))),
            "InvalidDescription.Malformed"
        );
        assert_eq!(
            code(description("https://example.com")),
            "InvalidDescription.Malformed"
        );
        assert_eq!(code(description("see https://example.com")), "ok");
    }

    #[test]
    fn client_token_rules() {
        assert_eq!(code(client_token("abc-123")), "ok");
        assert_eq!(code(client_token(&"t".repeat(64))), "ok");
        for bad in ["", &"t".repeat(65), "tök", "with space"] {
            assert_eq!(code(client_token(bad)), "InvalidClientToken.Malformed");
        }
    }

    #[test]
    fn tag_rules() {
        assert_eq!(code(tags([("env", "prod"), ("team", "")])), "ok");
        assert_eq!(code(tags([("", "v")])), "InvalidTagKey.Malformed");
        assert_eq!(code(tags([("acs:x", "v")])), "InvalidTagKey.Malformed");
        assert_eq!(code(tags([("aliyunx", "v")])), "InvalidTagKey.Malformed");
        assert_eq!(code(tags([("k http://x", "v")])), "InvalidTagKey.Malformed");
        let long = "k".repeat(129);
        assert_eq!(
            code(tags([(long.as_str(), "v")])),
            "InvalidTagKey.Malformed"
        );
        assert_eq!(
            code(tags([("k", long.as_str())])),
            "InvalidTagValue.Malformed"
        );
        assert_eq!(code(tags([("k", "acs:v")])), "InvalidTagValue.Malformed");
        assert_eq!(code(tags([("k", "a"), ("k", "b")])), "TagKey.Duplication");
        let keys: Vec<String> = (0..21).map(|i| format!("k{i}")).collect();
        assert_eq!(
            code(tags(keys.iter().map(|k| (k.as_str(), "")))),
            "InvalidTags.Malformed"
        );
        assert_eq!(
            code(tags(keys[..20].iter().map(|k| (k.as_str(), ""))),),
            "ok"
        );
    }

    #[test]
    fn disk_image_size_rules() {
        assert_eq!(code(disk_image_size(1, 1)), "ok");
        assert_eq!(code(disk_image_size(17, 2048)), "ok");
        assert_eq!(code(disk_image_size(1, 0)), "InvalidImageSize");
        assert_eq!(code(disk_image_size(1, 2049)), "InvalidImageSize");
        assert_eq!(code(disk_image_size(2, 2049)), "InvalidDataDiskSize");
    }

    #[test]
    fn disk_count_rules() {
        assert_eq!(code(disk_count(1)), "ok");
        assert_eq!(code(disk_count(17)), "ok");
        assert_eq!(code(disk_count(0)), "MissingParameter");
        assert_eq!(code(disk_count(18)), "InvalidParameter.DiskDeviceMapping");
    }

    #[test]
    fn oss_rules() {
        assert_eq!(code(oss_bucket(1, "my-bucket-1")), "ok");
        assert_eq!(code(oss_bucket(1, "")), "MissingParameter");
        for bad in ["ab", "My-Bucket", "-bucket", "bucket-", "buck_et"] {
            assert_eq!(
                code(oss_bucket(1, bad)),
                "InvalidOSSBucket.Malformed",
                "{bad}"
            );
        }
        assert_eq!(code(oss_object(1, "images/disk.raw")), "ok");
        assert_eq!(code(oss_object(1, "")), "MissingParameter");
        assert_eq!(code(oss_object(1, "/abs")), "InvalidOSSObject.Malformed");
        assert_eq!(
            code(oss_object(1, &"k".repeat(1024))),
            "InvalidOSSObject.Malformed"
        );
        assert_eq!(code(region_id("")), "MissingParameter");
        assert_eq!(code(region_id("cn-hangzhou")), "ok");
        for good in [
            "cn-hangzhou",
            "us-east-1",
            "ap-southeast-1",
            "cn-shanghai-finance-1",
        ] {
            assert_eq!(code(region_name(good)), "ok", "{good}");
        }
        for bad in [
            "",
            "hangzhou",
            "cn-",
            "-cn",
            "cn--x",
            "Cn-Hangzhou",
            "cn_hangzhou",
            "1-a",
        ] {
            assert_ne!(code(region_name(bad)), "ok", "{bad}");
        }
    }

    #[test]
    fn create_image_rules() {
        assert_eq!(code(create_description("")), "ok");
        assert_eq!(code(create_description("x")), "ok");
        assert_eq!(
            code(create_description(&"d".repeat(257))),
            "InvalidDescription.Malformed"
        );
        assert_eq!(
            code(create_description("http://x")),
            "InvalidDescription.Malformed"
        );
        assert_eq!(code(image_version("v1")), "ok");
        assert_eq!(code(image_version(&"1".repeat(40))), "ok");
        for bad in ["", "1.0", &"1".repeat(41), "v 1"] {
            assert_eq!(
                code(image_version(bad)),
                "InvalidImageVersion.Malformed",
                "{bad}"
            );
        }
        assert_eq!(code(create_disk_size(1, 5)), "ok");
        assert_eq!(code(create_disk_size(2, 20000)), "ok");
        assert_eq!(
            code(create_disk_size(1, 4)),
            "InvalidSize.ValueNotSupported"
        );
        assert_eq!(
            code(create_disk_size(3, 20001)),
            "InvalidSize.ValueNotSupported"
        );
        assert_eq!(create_device_for(1).as_deref(), Some("/dev/xvda"));
        assert_eq!(create_device_for(17).as_deref(), Some("/dev/xvdq"));
        assert_eq!(create_device_for(0), None);
        assert_eq!(create_device_for(18), None);
        assert_eq!(code(create_device(1, "/dev/xvda")), "ok");
        assert_eq!(code(create_device(2, "/dev/xvdb")), "ok");
        assert_eq!(
            code(create_device(1, "/dev/xvdb")),
            "InvalidParameter.Malformed"
        );
        assert_eq!(
            code(create_device(3, "/dev/xvdb")),
            "InvalidParameter.Malformed"
        );
        assert_eq!(
            code(create_device(18, "/dev/xvdr")),
            "InvalidParameter.DiskDeviceMapping"
        );
    }
}

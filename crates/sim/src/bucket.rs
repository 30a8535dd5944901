//! The emulator's buckets as OSS has them: each in one region and of one storage class
//! (docs/CLOUD-API.md §OSS). `imgport sim --bucket NAME[:REGION[:CLASS]]` and the sandbox
//! declare them; the S3 server answers GetBucketLocation and HeadObject's storage class from
//! here, CreateBucket records one, and ImportImage refuses a bucket of another region and an
//! object of an archive class. Kept beside the objects, in `<root>/.imgport-s3/buckets/`, so
//! the S3 server and the ECS emulator read the same facts.

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Region of a bucket declared without one (and of a bucket directory made by hand).
pub const DEFAULT_REGION: &str = "cn-hangzhou";

/// OSS storage classes ("Storage classes" of the OSS docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageClass {
    #[default]
    Standard,
    /// Infrequent Access.
    Ia,
    Archive,
    ColdArchive,
    DeepColdArchive,
}

impl StorageClass {
    /// OSS's own spelling (`x-oss-storage-class`, GetBucketInfo).
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::Ia => "IA",
            StorageClass::Archive => "Archive",
            StorageClass::ColdArchive => "ColdArchive",
            StorageClass::DeepColdArchive => "DeepColdArchive",
        }
    }

    /// Objects of this class must be restored before anything reads them; ImportImage
    /// answers `InvalidOSSObject.NeedRestore` (docs/CLOUD-API.md §ImportImage).
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            StorageClass::Archive | StorageClass::ColdArchive | StorageClass::DeepColdArchive
        )
    }
}

impl FromStr for StorageClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "standard" => StorageClass::Standard,
            "ia" => StorageClass::Ia,
            "archive" => StorageClass::Archive,
            "coldarchive" => StorageClass::ColdArchive,
            "deepcoldarchive" => StorageClass::DeepColdArchive,
            _ => {
                return Err(format!(
                    "storage class {s:?}: one of Standard, IA, Archive, ColdArchive, \
                     DeepColdArchive"
                ));
            }
        })
    }
}

/// One declared bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub name: String,
    pub region: String,
    pub class: StorageClass,
}

impl BucketSpec {
    /// A Standard bucket in `region`.
    pub fn new(name: &str, region: &str) -> Self {
        Self {
            name: name.to_string(),
            region: region.to_string(),
            class: StorageClass::Standard,
        }
    }
}

impl FromStr for BucketSpec {
    type Err = String;
    /// `NAME[:REGION[:CLASS]]`; the region defaults to [`DEFAULT_REGION`], the class to
    /// Standard.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let name = it.next().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("bucket {s:?}: expected NAME[:REGION[:CLASS]]"));
        }
        let region = it
            .next()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REGION);
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "bucket {s:?}: region {region:?} is not a region id"
            ));
        }
        let class = match it.next() {
            Some(c) => c.parse()?,
            None => StorageClass::Standard,
        };
        if it.next().is_some() {
            return Err(format!("bucket {s:?}: expected NAME[:REGION[:CLASS]]"));
        }
        Ok(Self {
            name: name.to_string(),
            region: region.to_string(),
            class,
        })
    }
}

/// Where the facts of `bucket` are kept under the object root.
fn facts_path(root: &Path, bucket: &str) -> PathBuf {
    root.join(crate::s3::INTERNAL_DIR)
        .join("buckets")
        .join(bucket)
}

/// Records the region and class of `spec` (the bucket's directory is made by the caller).
pub fn record(root: &Path, spec: &BucketSpec) -> std::io::Result<()> {
    let path = facts_path(root, &spec.name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{}\n{}\n", spec.region, spec.class.as_str()))
}

/// The region and class of an existing bucket: as recorded, else [`DEFAULT_REGION`] and
/// Standard (a directory made by hand).
pub fn facts(root: &Path, bucket: &str) -> (String, StorageClass) {
    let text = std::fs::read_to_string(facts_path(root, bucket)).unwrap_or_default();
    let mut lines = text.lines();
    let region = lines
        .next()
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_REGION)
        .to_string();
    let class = lines
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    (region, class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults() {
        let b: BucketSpec = "img".parse().unwrap();
        assert_eq!(b, BucketSpec::new("img", DEFAULT_REGION));
        let b: BucketSpec = "img:cn-beijing:ColdArchive".parse().unwrap();
        assert_eq!(b.region, "cn-beijing");
        assert_eq!(b.class, StorageClass::ColdArchive);
        assert!(b.class.is_archive() && !StorageClass::Ia.is_archive());
        for bad in [
            "",
            ":cn-beijing",
            "b:CN",
            "b:cn-beijing:Glacier",
            "b:r-1:IA:x",
        ] {
            assert!(bad.parse::<BucketSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn facts_round_trip_and_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            facts(dir.path(), "b"),
            (DEFAULT_REGION.into(), StorageClass::Standard)
        );
        let spec: BucketSpec = "b:ap-southeast-1:Archive".parse().unwrap();
        record(dir.path(), &spec).unwrap();
        assert_eq!(
            facts(dir.path(), "b"),
            ("ap-southeast-1".into(), StorageClass::Archive)
        );
    }
}

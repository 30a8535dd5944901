//! The bucket checks an import makes before its first byte is sent (docs/CLOUD-API.md §OSS):
//! where the bucket is (GetBucketLocation: a missing bucket answers `NoSuchBucket`), making it
//! in the import's region when asked (CreateBucket with a LocationConstraint), and the storage
//! class of an uploaded object (HeadObject `x-amz-storage-class`): OSS's S3-compatible API
//! does not expose a bucket's class (only OSS's own GetBucketInfo does), and ImportImage
//! cannot read an archived object.

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use super::client::{S3Store, sdk_err};
use super::{ObjectTarget, StoreError};

/// The region id in a LocationConstraint: OSS answers `oss-<region>`; S3 the bare id, and
/// nothing for `us-east-1`.
pub fn region_of_location(location: Option<&str>) -> String {
    match location.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => l.strip_prefix("oss-").unwrap_or(l).to_string(),
        None => "us-east-1".to_string(),
    }
}

/// Storage classes whose objects must be restored before they can be read: OSS's Archive,
/// ColdArchive and DeepColdArchive, in OSS's spelling or S3's (`GLACIER`, `DEEP_ARCHIVE`,
/// `GLACIER_IR` is readable and not among them).
pub fn is_archive_class(class: &str) -> bool {
    let c = class.to_ascii_lowercase().replace(['_', '-'], "");
    c.contains("archive") || c == "glacier"
}

fn whole_bucket(bucket: &str) -> ObjectTarget {
    ObjectTarget {
        bucket: bucket.to_string(),
        key: String::new(),
    }
}

impl S3Store {
    /// GetBucketLocation of `bucket`: its region id, `Ok(None)` when there is no such bucket.
    pub(crate) async fn get_bucket_region(
        &self,
        bucket: &str,
    ) -> Result<Option<String>, StoreError> {
        let target = whole_bucket(bucket);
        match self
            .client
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => Ok(Some(region_of_location(
                out.location_constraint()
                    .map(BucketLocationConstraint::as_str),
            ))),
            Err(e) => match sdk_err("GetBucketLocation", &target, e) {
                StoreError::Service { code, .. } if code == "NoSuchBucket" => Ok(None),
                StoreError::Service { status: 404, .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// CreateBucket `bucket` in `region` (LocationConstraint `oss-<region>`, the form
    /// GetBucketLocation answers on OSS).
    pub(crate) async fn make_bucket(&self, bucket: &str, region: &str) -> Result<(), StoreError> {
        let config = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(
                format!("oss-{region}").as_str(),
            ))
            .build();
        self.client
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(config)
            .send()
            .await
            .map_err(|e| sdk_err("CreateBucket", &whole_bucket(bucket), e))?;
        Ok(())
    }

    /// HeadObject's `x-amz-storage-class` of `target`; `Ok(None)` when the header is absent
    /// (S3 omits it for STANDARD) or there is no such object.
    pub(crate) async fn object_class(
        &self,
        target: &ObjectTarget,
    ) -> Result<Option<String>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .send()
            .await
        {
            Ok(out) => Ok(out.storage_class().map(|c| c.as_str().to_string())),
            Err(e) => match sdk_err("HeadObject", target, e) {
                StoreError::Service { status: 404, .. } => Ok(None),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_classes() {
        assert_eq!(region_of_location(Some("oss-cn-hangzhou")), "cn-hangzhou");
        assert_eq!(region_of_location(Some("eu-west-1")), "eu-west-1");
        assert_eq!(region_of_location(None), "us-east-1");
        assert_eq!(region_of_location(Some(" ")), "us-east-1");
        for archived in [
            "Archive",
            "ColdArchive",
            "DeepColdArchive",
            "GLACIER",
            "DEEP_ARCHIVE",
        ] {
            assert!(is_archive_class(archived), "{archived}");
        }
        for readable in ["Standard", "STANDARD", "IA", "STANDARD_IA", "GLACIER_IR"] {
            assert!(!is_archive_class(readable), "{readable}");
        }
    }
}

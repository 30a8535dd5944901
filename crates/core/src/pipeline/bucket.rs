//! The OSS checks of an import (and, through [`check_bucket`], of `imgport upload`), run from
//! its plan: before the first byte is sent, every bucket of the plan exists (or is created, when the plan says so) and is in the import's
//! region; once the objects are uploaded and before ImportImage, none is of an archive class
//! (docs/CLOUD-API.md §OSS, §ImportImage: ImportImage reads only a bucket of its own region,
//! and an archived object must be restored first).

use std::collections::BTreeSet;

use crate::plan::ImportPlan;
use imgport_store::{ObjectStore, ObjectTarget, StoreError, bucket::is_archive_class};

/// Why a bucket of the plan cannot take the import.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(
        "bucket {bucket} does not exist (GetBucketLocation: NoSuchBucket): create it in region \
         {region}, or add --create-bucket to have imgport create it there"
    )]
    Missing { bucket: String, region: String },
    #[error(
        "bucket {bucket} is in region {found}, not {wanted}: {why}; give a bucket of {wanted} \
         (--create-bucket makes a new one there), or use --region {found}"
    )]
    WrongRegion {
        bucket: String,
        found: String,
        wanted: String,
        /// Why the region must match, for this command.
        why: &'static str,
    },
    #[error(
        "oss://{bucket}/{key} has storage class {class}: ImportImage cannot read an archived \
         object (InvalidOSSObject.NeedRestore); use a bucket of class Standard or IA (the \
         object is kept; restore it or delete it)"
    )]
    Archived {
        bucket: String,
        key: String,
        class: String,
    },
    #[error("checking bucket {bucket}")]
    Check {
        bucket: String,
        #[source]
        source: StoreError,
    },
}

impl BucketError {
    /// Exit code per README "Exit codes": 2 for a bucket to correct, the store's otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            BucketError::Check { source, .. } => source.exit_code(),
            _ => 2,
        }
    }
}

/// The buckets of `plan`, each once, in order.
pub fn buckets(plan: &ImportPlan) -> Vec<String> {
    let set: BTreeSet<&str> = plan.disks.iter().map(|d| d.bucket.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Why an import's buckets must be in its region.
pub const IMPORT_REGION_RULE: &str = "ImportImage reads only buckets of its own region";

/// Every bucket of `plan` exists in the plan's region; a missing one is created there when
/// the plan says `create_bucket`. Sends nothing else.
pub async fn check_buckets<S: ObjectStore>(
    store: &S,
    plan: &ImportPlan,
) -> Result<(), BucketError> {
    for bucket in buckets(plan) {
        let region = Some((plan.region.as_str(), IMPORT_REGION_RULE));
        check_bucket(store, &bucket, &plan.region, region, plan.create_bucket).await?;
    }
    Ok(())
}

/// The check of one bucket, for imports and uploads alike (GetBucketLocation, then
/// CreateBucket in `create_in` when it is missing and `create`): `bucket` exists, and when
/// `region` is given (the region and why it must match), is in that region.
pub async fn check_bucket<S: ObjectStore>(
    store: &S,
    bucket: &str,
    create_in: &str,
    region: Option<(&str, &'static str)>,
    create: bool,
) -> Result<(), BucketError> {
    let check = |source| BucketError::Check {
        bucket: bucket.to_string(),
        source,
    };
    let found = match store.bucket_region(bucket).await.map_err(check)? {
        Some(found) => found,
        None if create => {
            tracing::info!("creating bucket {bucket} in {create_in}");
            return store.create_bucket(bucket, create_in).await.map_err(check);
        }
        None => {
            return Err(BucketError::Missing {
                bucket: bucket.to_string(),
                region: create_in.to_string(),
            });
        }
    };
    if let Some((wanted, why)) = region
        && found != wanted
    {
        return Err(BucketError::WrongRegion {
            bucket: bucket.to_string(),
            found,
            wanted: wanted.to_string(),
            why,
        });
    }
    tracing::debug!("bucket {bucket} is in {found}");
    Ok(())
}

/// No uploaded object of `targets` has an archive storage class.
pub async fn check_classes<S: ObjectStore>(
    store: &S,
    targets: &[ObjectTarget],
) -> Result<(), BucketError> {
    for t in targets {
        let class = store
            .storage_class(t)
            .await
            .map_err(|source| BucketError::Check {
                bucket: t.bucket.clone(),
                source,
            })?;
        if let Some(class) = class.filter(|c| is_archive_class(c)) {
            return Err(BucketError::Archived {
                bucket: t.bucket.clone(),
                key: t.key.clone(),
                class,
            });
        }
    }
    Ok(())
}

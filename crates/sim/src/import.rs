//! The emulated ImportImage: every documented parameter rule with its error code
//! ([`super::params`]), ClientToken
//! idempotency, name and busy-object conflicts, the object checks of [`super::disk`] run off
//! the async threads, then a new image in Creating and its task.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::bucket;
use super::disk::{self, ObjectFacts};
use super::ecs::{
    ApiFault, DiskRec, Ecs, ImageRec, State, TaskRec, Tokened, check_region, duplicated_name,
};
use super::params::{self, IMPORT_IMAGE, ImportDisk, P};

impl Ecs {
    pub(super) async fn import_image(&self, p: &P<'_>, now_ms: u64) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        check_region(region)?;
        let disks = params::import_disks(p)?;
        p.check(IMPORT_IMAGE)?;
        let name = p.get("ImageName").filter(|s| !s.is_empty());
        let description = p.get("Description").unwrap_or_default();
        let arch = p.choice_or(IMPORT_IMAGE, "Architecture", "x86_64");
        let os_type = p.choice_or(IMPORT_IMAGE, "OSType", "linux");
        let platform = p.choice_or(IMPORT_IMAGE, "Platform", "Others Linux");
        let boot_mode = params::choice(p, IMPORT_IMAGE, "BootMode");
        let license = p.choice_or(IMPORT_IMAGE, "LicenseType", "Auto");
        let detection = params::choice(p, IMPORT_IMAGE, "DetectionStrategy");
        let nvme = params::choice(p, IMPORT_IMAGE, "Features.NvmeSupport");
        let imds = p.choice_or(IMPORT_IMAGE, "Features.ImdsSupport", "v1");
        let tags = params::tags(p)?;
        let windows = os_type == "windows" || platform.contains("Windows");
        if arch == "arm64" && windows {
            return Err(ApiFault::new(
                403,
                "InvalidArchitecture.PlatformUnsupported",
                "The specified architecture arm64 does not support this platform.",
            ));
        }
        if arch == "arm64" && boot_mode == Some("BIOS") {
            return Err(ApiFault::new(
                400,
                "InvalidBootMode.NotSupport",
                "arm64 images boot with UEFI only.",
            ));
        }
        if windows && detection.is_some() {
            return Err(ApiFault::new(
                403,
                "ImageCheckUnsupported.WindowsImage",
                "Image check is not supported for Windows images.",
            ));
        }
        p.dry_run()?;
        let token = Tokened::new("ImportImage", p);
        if let Some(replayed) = token.replay(&self.lock()) {
            return replayed;
        }
        // ECS reads the objects as the import role (docs/CLOUD-API.md §RAM).
        if let Some(ram) = &self.ram {
            ram.import_ready(p.get("RoleName"))?;
        }
        {
            let st = self.lock();
            conflicts(&st, region, name, &disks)?;
        }
        // Read the objects off the async threads.
        let root = self.config.s3_root.clone();
        let plan = disks.clone();
        let import_region = region.to_string();
        let checked = tokio::task::spawn_blocking(move || {
            plan.iter()
                .map(|d| {
                    bucket_fits(&root, &import_region, d.n, &d.bucket, &d.object)?;
                    let facts =
                        disk::check_object(&root, d.n, &d.bucket, &d.object, d.format, d.size_gib)?;
                    let path = disk::object_path(&root, &d.bucket, &d.object).unwrap_or_default();
                    Ok((path, facts))
                })
                .collect::<Result<Vec<(PathBuf, ObjectFacts)>, ApiFault>>()
        })
        .await
        .map_err(|e| ApiFault::new(500, "InternalError", format!("object check failed: {e}")))??;
        let (paths, facts): (Vec<PathBuf>, Vec<ObjectFacts>) = checked.into_iter().unzip();
        let mut failure = self
            .config
            .import_hook
            .as_ref()
            .and_then(|hook| hook(&paths, &facts));
        if let Some(text) = &self.config.fail_objects_containing
            && disks
                .first()
                .is_some_and(|d| d.object.contains(text.as_str()))
        {
            failure = Some((
                "ImportImageFailed".to_string(),
                "no operating system found".to_string(),
            ));
        }
        // An image that imports but cannot be used (docs/CLOUD-API.md §Polling: UnAvailable).
        let ends_unavailable = self
            .config
            .unavailable_objects_containing
            .as_ref()
            .is_some_and(|text| {
                disks
                    .first()
                    .is_some_and(|d| d.object.contains(text.as_str()))
            });
        let mut st = self.lock();
        conflicts(&st, region, name, &disks)?;
        let image_id = st.next("m");
        let task_id = st.next("t");
        let rec = ImageRec {
            architecture: arch,
            os_type,
            platform,
            boot_mode: boot_mode.unwrap_or("BIOS").to_string(),
            license_type: license,
            nvme_support: nvme.map(str::to_string),
            imds_support: imds,
            resource_group_id: p.get("ResourceGroupId").unwrap_or_default().to_string(),
            detection_strategy: detection.map(str::to_string),
            tags,
            disks: disks
                .iter()
                .zip(&facts)
                .map(|(d, fact)| DiskRec {
                    bucket: d.bucket.clone(),
                    object: d.object.clone(),
                    format: d.format.unwrap_or(fact.disk_format()).to_string(),
                    size_gib: d.size_gib.unwrap_or(fact.size_gib),
                })
                .collect(),
            task_id: task_id.clone(),
            failure,
            queue_ms: self.config.queue_duration.as_millis() as u64,
            ends_unavailable,
            ..ImageRec::creating(
                &image_id,
                region,
                name.map_or_else(|| format!("import-{image_id}"), str::to_string),
                description,
                now_ms,
                self.config.import_duration.as_millis() as u64,
            )
        };
        st.tasks.insert(
            task_id.clone(),
            TaskRec {
                task_id: task_id.clone(),
                region_id: region.to_string(),
                image_id: image_id.clone(),
                status: "Processing".into(),
                created_ms: now_ms,
                finished_ms: None,
            },
        );
        let answer = json!({"ImageId": image_id, "TaskId": task_id, "RegionId": region});
        self.add_image(&mut st, rec, token, answer, now_ms)
    }
}

/// The bucket of disk `n` is in the import's region and its object is not archived
/// (docs/CLOUD-API.md §ImportImage: the bucket must be in the image's region; an archived
/// object must be restored first). The service's table has no code named for the region;
/// `InvalidOSSBucket.NotMatched` is the one that names a bucket not matching the request.
fn bucket_fits(
    root: &Path,
    region: &str,
    n: usize,
    bucket: &str,
    key: &str,
) -> Result<(), ApiFault> {
    if !root.join(bucket).is_dir() {
        return Ok(()); // InvalidOSSBucket.NotFound comes from the object check
    }
    let (found, class) = bucket::facts(root, bucket);
    if found != region {
        return Err(ApiFault::new(
            400,
            "InvalidOSSBucket.NotMatched",
            format!(
                "The OSS bucket {bucket:?} of DiskDeviceMapping.{n} is in region {found}, \
                 not in {region}."
            ),
        ));
    }
    if class.is_archive() {
        return Err(ApiFault::new(
            400,
            "InvalidOSSObject.NeedRestore",
            format!(
                "The OSS object {key:?} of DiskDeviceMapping.{n} is of storage class {} and \
                 must be restored first.",
                class.as_str()
            ),
        ));
    }
    Ok(())
}

/// Name already used, or one of the objects already being imported.
fn conflicts(
    st: &State,
    region: &str,
    name: Option<&str>,
    disks: &[ImportDisk],
) -> Result<(), ApiFault> {
    for img in st.images.values().filter(|i| i.region_id == region) {
        if name.is_some_and(|n| n == img.name) {
            return Err(duplicated_name());
        }
        if img.status.in_progress()
            && img.disks.iter().any(|d| {
                disks
                    .iter()
                    .any(|r| r.bucket == d.bucket && r.object == d.object)
            })
        {
            return Err(ApiFault::new(
                403,
                "ImageIsImporting",
                "The specified Image is importing.",
            ));
        }
    }
    Ok(())
}

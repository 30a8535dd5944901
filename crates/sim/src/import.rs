//! The emulated ImportImage: every documented parameter rule with its error code, ClientToken
//! idempotency, name and busy-object conflicts, the object checks of [`super::disk`] run off
//! the async threads, then a new image in Creating and its task.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::disk::{self, ObjectFacts};
use super::ecs::{
    ApiFault, DiskRec, Ecs, ImageRec, P, State, TaskRec, Tokened, check_region, duplicated_name,
};
use imgport_cloud::aliyun::types::{
    Architecture, BootMode, DetectionStrategy, DiskFormat, ImageStatus, ImdsSupport, LicenseType,
    OsType,
};
use imgport_cloud::aliyun::validate;

/// A disk as ImportImage asked for it: N, bucket, key, declared format, DiskImageSize.
type RequestedDisk = (usize, String, String, Option<DiskFormat>, Option<u64>);

impl Ecs {
    pub(super) async fn import_image(&self, p: &P<'_>, now_ms: u64) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        check_region(region)?;
        // Disks 1..=17 (N > 17 is ignored, docs/CLOUD-API.md §ImportImage).
        let mut disks: Vec<RequestedDisk> = Vec::new();
        for n in 1..=validate::MAX_DISKS {
            let key = |f: &str| format!("DiskDeviceMapping.{n}.{f}");
            let bucket = p.get(&key("OSSBucket"));
            let object = p.get(&key("OSSObject"));
            if bucket.is_none() && object.is_none() {
                if n == 1 {
                    return Err(validate::missing("DiskDeviceMapping.1.OSSBucket").into());
                }
                continue;
            }
            let bucket = p.required(&key("OSSBucket"))?;
            let object = p.required(&key("OSSObject"))?;
            validate::oss_bucket(n, bucket)?;
            validate::oss_object(n, object)?;
            let format = p.parse(
                &key("Format"),
                DiskFormat::parse,
                "InvalidImageFormat.Malformed",
            )?;
            let size = p
                .get(&key("DiskImageSize"))
                .or_else(|| p.get(&key("DiskImSize")))
                .filter(|s| !s.is_empty());
            let size = match size {
                None => None,
                Some(s) => {
                    // A value that is not a whole number is out of range like 0 is.
                    let gib: u64 = s.parse().unwrap_or(0);
                    validate::disk_image_size(n, gib)?;
                    Some(gib)
                }
            };
            disks.push((n, bucket.to_string(), object.to_string(), format, size));
        }
        let name = p.get("ImageName").filter(|s| !s.is_empty());
        if let Some(n) = name {
            validate::image_name(n)?;
        }
        let description = p.get("Description").unwrap_or_default();
        if !description.is_empty() {
            validate::description(description)?;
        }
        let arch = p.architecture()?;
        let os_type = p
            .parse("OSType", OsType::parse, "InvalidOSType.Malformed")?
            .unwrap_or(OsType::Linux);
        let platform = p.platform()?;
        let boot_mode = p.parse(
            "BootMode",
            |s| BootMode::parse(s).filter(|b| *b != BootMode::UefiPreferred),
            "InvalidBootMode.Malformed",
        )?;
        let license = p
            .parse(
                "LicenseType",
                LicenseType::parse,
                "InvalidLicenseType.NotSupported",
            )?
            .unwrap_or(LicenseType::Auto);
        let detection = p.parse(
            "DetectionStrategy",
            DetectionStrategy::parse,
            "InvalidParameter.DetectionStrategy",
        )?;
        let nvme = p.nvme_support()?;
        let imds = p.imds_support()?.unwrap_or(ImdsSupport::V1);
        let tags = collect_tags(p)?;
        p.check_client_token()?;
        let windows = os_type == OsType::Windows || platform.as_str().starts_with("Windows");
        if arch == Architecture::Arm64 && windows {
            return Err(ApiFault::new(
                403,
                "InvalidArchitecture.PlatformUnsupported",
                "The specified architecture arm64 does not support this platform.",
            ));
        }
        if arch == Architecture::Arm64 && boot_mode == Some(BootMode::Bios) {
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
        {
            let st = self.lock();
            conflicts(&st, region, name, &disks)?;
        }
        // Read the objects off the async threads.
        let root = self.config.s3_root.clone();
        let plan = disks.clone();
        let checked = tokio::task::spawn_blocking(move || {
            plan.iter()
                .map(|(n, b, o, f, s)| {
                    let facts = disk::check_object(&root, *n, b, o, *f, *s)?;
                    let path = disk::object_path(&root, b, o).unwrap_or_default();
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
            && disks.first().is_some_and(|d| d.2.contains(text.as_str()))
        {
            failure = Some((
                "ImportImageFailed".to_string(),
                "no operating system found".to_string(),
            ));
        }
        let mut st = self.lock();
        conflicts(&st, region, name, &disks)?;
        let image_id = st.next("m");
        let task_id = st.next("t");
        let rec = ImageRec {
            architecture: arch,
            os_type,
            platform,
            boot_mode: boot_mode.unwrap_or(BootMode::Bios),
            license_type: license,
            nvme_support: nvme,
            imds_support: imds,
            resource_group_id: p.get("ResourceGroupId").unwrap_or_default().to_string(),
            detection_strategy: detection,
            tags,
            disks: disks
                .iter()
                .zip(&facts)
                .map(|((_, b, o, f, s), fact)| DiskRec {
                    bucket: b.clone(),
                    object: o.clone(),
                    format: f.unwrap_or(fact.disk_format()),
                    size_gib: s.unwrap_or(fact.size_gib),
                })
                .collect(),
            task_id: task_id.clone(),
            failure,
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

/// Name already used, or one of the objects already being imported.
fn conflicts(
    st: &State,
    region: &str,
    name: Option<&str>,
    disks: &[RequestedDisk],
) -> Result<(), ApiFault> {
    for img in st.images.values().filter(|i| i.region_id == region) {
        if name.is_some_and(|n| n == img.name) {
            return Err(duplicated_name());
        }
        if img.status == ImageStatus::Creating
            && img.disks.iter().any(|d| {
                disks
                    .iter()
                    .any(|(_, b, o, _, _)| *b == d.bucket && *o == d.object)
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

fn collect_tags(p: &P<'_>) -> Result<Vec<(String, String)>, ApiFault> {
    let mut tags = Vec::new();
    for n in 1..=validate::MAX_TAGS + 1 {
        let key = p.get(&format!("Tag.{n}.Key"));
        let value = p.get(&format!("Tag.{n}.Value"));
        match (key, value) {
            (None, None) => continue,
            (k, v) => tags.push((
                k.unwrap_or_default().to_string(),
                v.unwrap_or_default().to_string(),
            )),
        }
    }
    validate::tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(tags)
}

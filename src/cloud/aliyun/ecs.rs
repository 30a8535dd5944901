//! Typed ECS (API 2014-05-26) requests and responses for importing and finishing images:
//! ImportImage, DescribeImages, DescribeTaskAttribute, DescribeTasks, CancelTask,
//! ModifyImageAttribute, DeleteImage.
//!
//! Requests are built with builders whose `build()` checks every documented rule
//! ([`super::validate`]) before anything is sent. The only place that turns a request into
//! wire parameters (`DiskDeviceMapping.1.OSSBucket`, `Tag.1.Key`, `Features.NvmeSupport`) is
//! [`Params`], used by each request's [`Action::params`]. No HTTP in here.

use serde::Deserialize;

use super::types::{
    Architecture, BootMode, DetectionStrategy, DiskFormat, ImageOwnerAlias, ImageStatus,
    ImdsSupport, LicenseType, ModifiableStatus, NvmeSupport, OsType, Platform,
};
use super::validate::{self, Invalid};

/// The ECS API version all these actions belong to.
pub const ECS_VERSION: &str = "2014-05-26";

/// Wire parameters of one call, in the order they were added; the one place that flattens
/// lists (`Prefix.N.Field`, 1-based) and structs (`Prefix.Field`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Adds `name=value`.
    pub fn put(&mut self, name: &str, value: impl ToString) {
        self.0.push((name.to_string(), value.to_string()));
    }

    /// Adds `name=value` when there is a value.
    pub fn put_opt<T: ToString>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value {
            self.put(name, v);
        }
    }

    /// Adds `Prefix.N.Field=value` for a 1-based list index `n`.
    pub fn put_indexed<T: ToString>(&mut self, prefix: &str, n: usize, field: &str, value: T) {
        self.put(&format!("{prefix}.{n}.{field}"), value);
    }

    /// Adds `Prefix.Field=value` for a struct member, when there is a value.
    pub fn put_member<T: ToString>(&mut self, prefix: &str, field: &str, value: Option<T>) {
        if let Some(v) = value {
            self.put(&format!("{prefix}.{field}"), v);
        }
    }

    /// Adds `Prefix.N=value` for each value of a plain list (1-based).
    pub fn put_list(&mut self, prefix: &str, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            self.put(&format!("{prefix}.{}", i + 1), v);
        }
    }

    /// The flattened pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// The value of `name`, for tests and the client (ClientToken).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One ECS RPC action: its name, its wire parameters and its response type.
pub trait Action {
    /// The JSON body of a success.
    type Response: serde::de::DeserializeOwned;
    /// `Action=` value.
    const NAME: &'static str;
    /// Flattened parameters (RegionId included).
    fn params(&self) -> Params;
}

/// A tag on the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One imported disk: an OSS object and how to read it. The first is the system disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDeviceMapping {
    pub oss_bucket: String,
    pub oss_object: String,
    /// `None` lets ECS detect the format.
    pub format: Option<DiskFormat>,
    /// Size of the resulting disk in GiB; `None` lets ECS use the image's size.
    pub disk_image_size_gib: Option<u64>,
}

impl DiskDeviceMapping {
    /// A disk read from `bucket`/`object`.
    pub fn new(bucket: impl Into<String>, object: impl Into<String>) -> Self {
        Self {
            oss_bucket: bucket.into(),
            oss_object: object.into(),
            format: None,
            disk_image_size_gib: None,
        }
    }

    /// Sets the format.
    pub fn format(mut self, f: DiskFormat) -> Self {
        self.format = Some(f);
        self
    }

    /// Sets the disk size in GiB.
    pub fn size_gib(mut self, gib: u64) -> Self {
        self.disk_image_size_gib = Some(gib);
        self
    }
}

/// ImportImage: register OSS objects as a custom image (seed 003, cloud-api.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportImageRequest {
    pub region_id: String,
    pub image_name: Option<String>,
    pub description: Option<String>,
    pub architecture: Option<Architecture>,
    pub os_type: Option<OsType>,
    pub platform: Option<Platform>,
    pub boot_mode: Option<BootMode>,
    pub license_type: Option<LicenseType>,
    pub role_name: Option<String>,
    pub resource_group_id: Option<String>,
    pub detection_strategy: Option<DetectionStrategy>,
    pub dry_run: bool,
    /// Idempotency token; the client fills one in when absent and reuses it on retries.
    pub client_token: Option<String>,
    pub storage_location_arn: Option<String>,
    pub nvme_support: Option<NvmeSupport>,
    pub imds_support: Option<ImdsSupport>,
    pub tags: Vec<Tag>,
    /// Disk 1 is the system disk, 2..=17 data disks.
    pub disks: Vec<DiskDeviceMapping>,
}

impl ImportImageRequest {
    /// A builder for `region_id`.
    pub fn builder(region_id: impl Into<String>) -> ImportImageBuilder {
        ImportImageBuilder(ImportImageRequest {
            region_id: region_id.into(),
            image_name: None,
            description: None,
            architecture: None,
            os_type: None,
            platform: None,
            boot_mode: None,
            license_type: None,
            role_name: None,
            resource_group_id: None,
            detection_strategy: None,
            dry_run: false,
            client_token: None,
            storage_location_arn: None,
            nvme_support: None,
            imds_support: None,
            tags: Vec::new(),
            disks: Vec::new(),
        })
    }

    /// Checks every documented rule; the first broken one is the error.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::region_id(&self.region_id)?;
        if let Some(n) = &self.image_name {
            validate::image_name(n)?;
        }
        if let Some(d) = &self.description {
            validate::description(d)?;
        }
        if let Some(t) = &self.client_token {
            validate::client_token(t)?;
        }
        validate::tags(self.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())))?;
        validate::disk_count(self.disks.len())?;
        for (i, d) in self.disks.iter().enumerate() {
            let n = i + 1;
            validate::oss_bucket(n, &d.oss_bucket)?;
            validate::oss_object(n, &d.oss_object)?;
            if let Some(gib) = d.disk_image_size_gib {
                validate::disk_image_size(n, gib)?;
            }
        }
        if self.boot_mode == Some(BootMode::UefiPreferred) {
            return Err(Invalid::new(
                "BootMode",
                "InvalidBootMode.Malformed",
                "ImportImage takes only BIOS or UEFI",
            ));
        }
        Ok(())
    }
}

/// Builder of [`ImportImageRequest`].
#[derive(Debug, Clone)]
pub struct ImportImageBuilder(ImportImageRequest);

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, v: impl Into<$ty>) -> Self {
            self.0.$name = Some(v.into());
            self
        }
    };
}

impl ImportImageBuilder {
    setter!(/// Image name (2–128 chars, starts with a letter).
        image_name: String);
    setter!(/// Description (2–256 chars).
        description: String);
    setter!(/// CPU architecture.
        architecture: Architecture);
    setter!(/// OS type.
        os_type: OsType);
    setter!(/// Distribution.
        platform: Platform);
    setter!(/// Boot mode (BIOS or UEFI).
        boot_mode: BootMode);
    setter!(/// License type.
        license_type: LicenseType);
    setter!(/// RAM role used to read OSS.
        role_name: String);
    setter!(/// Resource group.
        resource_group_id: String);
    setter!(/// Image check strategy.
        detection_strategy: DetectionStrategy);
    setter!(/// Idempotency token (ASCII, ≤ 64).
        client_token: String);
    setter!(/// CloudBox storage location ARN.
        storage_location_arn: String);
    setter!(/// `Features.NvmeSupport`.
        nvme_support: NvmeSupport);
    setter!(/// `Features.ImdsSupport`.
        imds_support: ImdsSupport);

    /// Only checks the request on the service (`DryRunOperation`).
    pub fn dry_run(mut self, v: bool) -> Self {
        self.0.dry_run = v;
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.tags.push(Tag {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds the next disk (the first added is the system disk).
    pub fn disk(mut self, d: DiskDeviceMapping) -> Self {
        self.0.disks.push(d);
        self
    }

    /// Checks the documented rules and returns the request.
    pub fn build(self) -> Result<ImportImageRequest, Invalid> {
        self.0.validate()?;
        Ok(self.0)
    }
}

impl Action for ImportImageRequest {
    type Response = ImportImageResponse;
    const NAME: &'static str = "ImportImage";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put_opt("ImageName", self.image_name.as_ref());
        p.put_opt("Description", self.description.as_ref());
        p.put_opt("Architecture", self.architecture);
        p.put_opt("OSType", self.os_type);
        p.put_opt("Platform", self.platform);
        p.put_opt("BootMode", self.boot_mode);
        p.put_opt("LicenseType", self.license_type);
        p.put_opt("RoleName", self.role_name.as_ref());
        p.put_opt("ResourceGroupId", self.resource_group_id.as_ref());
        p.put_opt("DetectionStrategy", self.detection_strategy);
        if self.dry_run {
            p.put("DryRun", "true");
        }
        p.put_opt("ClientToken", self.client_token.as_ref());
        p.put_opt("StorageLocationArn", self.storage_location_arn.as_ref());
        p.put_member("Features", "NvmeSupport", self.nvme_support);
        p.put_member("Features", "ImdsSupport", self.imds_support);
        for (i, t) in self.tags.iter().enumerate() {
            p.put_indexed("Tag", i + 1, "Key", &t.key);
            p.put_indexed("Tag", i + 1, "Value", &t.value);
        }
        for (i, d) in self.disks.iter().enumerate() {
            let n = i + 1;
            p.put_indexed("DiskDeviceMapping", n, "OSSBucket", &d.oss_bucket);
            p.put_indexed("DiskDeviceMapping", n, "OSSObject", &d.oss_object);
            if let Some(f) = d.format {
                p.put_indexed("DiskDeviceMapping", n, "Format", f);
            }
            if let Some(s) = d.disk_image_size_gib {
                p.put_indexed("DiskDeviceMapping", n, "DiskImageSize", s);
            }
        }
        p
    }
}

/// ImportImage's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportImageResponse {
    pub request_id: String,
    pub image_id: String,
    /// The import task; older docs call it `ImportTaskId`.
    #[serde(alias = "ImportTaskId", default)]
    pub task_id: String,
    #[serde(default)]
    pub region_id: String,
}

/// DescribeImages: find images by id or name; always sends a Status list, because the
/// service's default is `Available` only and an importing image would be invisible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeImagesRequest {
    pub region_id: String,
    pub image_id: Option<String>,
    pub image_name: Option<String>,
    /// Never empty; defaults to [`ImageStatus::POLLING`].
    pub status: Vec<ImageStatus>,
    pub image_owner_alias: Option<ImageOwnerAlias>,
    pub page_size: Option<u32>,
    pub page_number: Option<u32>,
}

impl DescribeImagesRequest {
    /// All images of the region in every state.
    pub fn new(region_id: impl Into<String>) -> Self {
        Self {
            region_id: region_id.into(),
            image_id: None,
            image_name: None,
            status: ImageStatus::POLLING.to_vec(),
            image_owner_alias: None,
            page_size: None,
            page_number: None,
        }
    }

    /// Only the image `id`.
    pub fn image_id(mut self, id: impl Into<String>) -> Self {
        self.image_id = Some(id.into());
        self
    }

    /// Only images named `name`.
    pub fn image_name(mut self, name: impl Into<String>) -> Self {
        self.image_name = Some(name.into());
        self
    }

    /// Only these states; an empty list keeps the default (all states).
    pub fn status(mut self, status: &[ImageStatus]) -> Self {
        if !status.is_empty() {
            self.status = status.to_vec();
        }
        self
    }

    /// Only images of this owner.
    pub fn owner(mut self, alias: ImageOwnerAlias) -> Self {
        self.image_owner_alias = Some(alias);
        self
    }

    /// Page size (1–100) and 1-based page number.
    pub fn page(mut self, size: u32, number: u32) -> Self {
        self.page_size = Some(size.clamp(1, 100));
        self.page_number = Some(number.max(1));
        self
    }
}

impl Action for DescribeImagesRequest {
    type Response = DescribeImagesResponse;
    const NAME: &'static str = "DescribeImages";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put_opt("ImageId", self.image_id.as_ref());
        p.put_opt("ImageName", self.image_name.as_ref());
        let status: Vec<&str> = self.status.iter().map(|s| s.as_str()).collect();
        p.put("Status", status.join(","));
        p.put_opt("ImageOwnerAlias", self.image_owner_alias);
        p.put_opt("PageSize", self.page_size);
        p.put_opt("PageNumber", self.page_number);
        p
    }
}

/// DescribeImages' answer.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeImagesResponse {
    pub request_id: String,
    pub region_id: String,
    pub total_count: u64,
    pub page_number: u64,
    pub page_size: u64,
    pub images: Images,
}

/// `Images.Image[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Images {
    pub image: Vec<Image>,
}

/// One image as DescribeImages shows it.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Image {
    pub image_id: String,
    pub image_name: String,
    pub description: String,
    /// Wire status; see [`Image::status`].
    pub status: String,
    /// e.g. `"40%"`.
    pub progress: String,
    /// GiB.
    pub size: u64,
    pub architecture: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub platform: String,
    pub boot_mode: String,
    pub image_family: String,
    pub creation_time: String,
    pub image_owner_alias: String,
    pub disk_device_mappings: DiskDeviceMappings,
}

impl Image {
    /// The status as a closed value, `None` for one this client does not know.
    pub fn status(&self) -> Option<ImageStatus> {
        ImageStatus::parse(&self.status)
    }
}

/// `DiskDeviceMappings.DiskDeviceMapping[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DiskDeviceMappings {
    pub disk_device_mapping: Vec<ImageDisk>,
}

/// One disk of an image.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDisk {
    pub device: String,
    /// GiB, as a string on the wire.
    pub size: String,
    pub format: String,
    #[serde(rename = "ImportOSSBucket")]
    pub import_oss_bucket: String,
    #[serde(rename = "ImportOSSObject")]
    pub import_oss_object: String,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// DescribeTaskAttribute: one task's state and, on failure, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTaskAttributeRequest {
    pub region_id: String,
    pub task_id: String,
}

impl Action for DescribeTaskAttributeRequest {
    type Response = TaskAttribute;
    const NAME: &'static str = "DescribeTaskAttribute";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("TaskId", &self.task_id);
        p
    }
}

/// DescribeTaskAttribute's answer.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskAttribute {
    pub request_id: String,
    pub region_id: String,
    pub task_id: String,
    pub task_action: String,
    pub task_status: String,
    /// e.g. `"100%"`.
    pub task_process: String,
    /// `"true"` or `"false"` (a string on the wire).
    pub support_cancel: String,
    pub creation_time: String,
    pub finished_time: String,
    pub success_count: u64,
    pub failed_count: u64,
    pub total_count: u64,
    pub operation_progress_set: OperationProgressSet,
}

impl TaskAttribute {
    /// The first error code and message of the task's operations, if any.
    pub fn failure(&self) -> Option<(String, String)> {
        self.operation_progress_set
            .operation_progress
            .iter()
            .find(|o| !o.error_code.is_empty() || !o.error_msg.is_empty())
            .map(|o| (o.error_code.clone(), o.error_msg.clone()))
    }

    /// Whether CancelTask is allowed.
    pub fn cancellable(&self) -> bool {
        self.support_cancel.eq_ignore_ascii_case("true")
    }
}

/// `OperationProgressSet.OperationProgress[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OperationProgressSet {
    pub operation_progress: Vec<OperationProgress>,
}

/// One operation of a task.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OperationProgress {
    pub operation_status: String,
    pub error_code: String,
    pub error_msg: String,
    pub related_item_set: RelatedItemSet,
}

/// `RelatedItemSet.RelatedItem[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RelatedItemSet {
    pub related_item: Vec<RelatedItem>,
}

/// A name/value fact about an operation (OSSBucket, OSSObject, ImageFormat …).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RelatedItem {
    pub name: String,
    pub value: String,
}

/// DescribeTasks: list tasks by id, action or status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTasksRequest {
    pub region_id: String,
    /// At most 100.
    pub task_ids: Vec<String>,
    pub task_action: Option<String>,
    /// `Finished`, `Processing` or `Failed`.
    pub task_status: Option<String>,
    pub resource_ids: Vec<String>,
    pub page_size: Option<u32>,
    pub page_number: Option<u32>,
}

impl DescribeTasksRequest {
    /// Tasks of the region.
    pub fn new(region_id: impl Into<String>) -> Self {
        Self {
            region_id: region_id.into(),
            task_ids: Vec::new(),
            task_action: None,
            task_status: None,
            resource_ids: Vec::new(),
            page_size: None,
            page_number: None,
        }
    }

    /// Checks the list limits (at most 100 task ids).
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::region_id(&self.region_id)?;
        if self.task_ids.len() > 100 {
            return Err(Invalid::new(
                "TaskIds",
                "InvalidParameter",
                "at most 100 task ids",
            ));
        }
        Ok(())
    }
}

impl Action for DescribeTasksRequest {
    type Response = DescribeTasksResponse;
    const NAME: &'static str = "DescribeTasks";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        if !self.task_ids.is_empty() {
            p.put("TaskIds", self.task_ids.join(","));
        }
        p.put_opt("TaskAction", self.task_action.as_ref());
        p.put_opt("TaskStatus", self.task_status.as_ref());
        p.put_list("ResourceIds", &self.resource_ids);
        p.put_opt("PageSize", self.page_size);
        p.put_opt("PageNumber", self.page_number);
        p
    }
}

/// DescribeTasks' answer.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTasksResponse {
    pub request_id: String,
    pub region_id: String,
    pub total_count: u64,
    pub page_number: u64,
    pub page_size: u64,
    pub task_set: TaskSet,
}

/// `TaskSet.Task[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSet {
    pub task: Vec<TaskSummary>,
}

/// One task in a listing.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSummary {
    pub task_id: String,
    pub task_action: String,
    pub task_status: String,
    pub resource_id: String,
    pub support_cancel: String,
    pub creation_time: String,
    pub finished_time: String,
}

/// CancelTask: stop a running import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTaskRequest {
    pub region_id: String,
    pub task_id: String,
}

impl Action for CancelTaskRequest {
    type Response = Acknowledged;
    const NAME: &'static str = "CancelTask";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("TaskId", &self.task_id);
        p
    }
}

/// An answer that only carries the request id.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Acknowledged {
    pub request_id: String,
}

/// ModifyImageAttribute: finish an image (seed 000, cloud-api.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyImageAttributeRequest {
    pub region_id: String,
    pub image_id: String,
    pub image_name: Option<String>,
    pub description: Option<String>,
    pub image_family: Option<String>,
    pub boot_mode: Option<BootMode>,
    /// The doc says "set the value to BYOL".
    pub license_type: Option<LicenseType>,
    pub status: Option<ModifiableStatus>,
    pub nvme_support: Option<NvmeSupport>,
    /// v1 → v2 only.
    pub imds_support: Option<ImdsSupport>,
    pub dry_run: bool,
}

impl ModifyImageAttributeRequest {
    /// A builder for image `image_id` in `region_id`.
    pub fn builder(
        region_id: impl Into<String>,
        image_id: impl Into<String>,
    ) -> ModifyImageAttributeBuilder {
        ModifyImageAttributeBuilder(ModifyImageAttributeRequest {
            region_id: region_id.into(),
            image_id: image_id.into(),
            image_name: None,
            description: None,
            image_family: None,
            boot_mode: None,
            license_type: None,
            status: None,
            nvme_support: None,
            imds_support: None,
            dry_run: false,
        })
    }

    /// Checks every documented rule.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::region_id(&self.region_id)?;
        if self.image_id.is_empty() {
            return Err(validate::missing("ImageId"));
        }
        if let Some(n) = &self.image_name {
            validate::image_name(n)?;
        }
        if let Some(d) = &self.description {
            validate::description(d)?;
        }
        if let Some(f) = &self.image_family {
            validate::image_family(f)?;
        }
        if self.imds_support == Some(ImdsSupport::V1) {
            return Err(Invalid::new(
                "Features.ImdsSupport",
                "InvalidParameter.FeaturesImdsSupport",
                "only v2 can be set",
            ));
        }
        if matches!(
            self.license_type,
            Some(LicenseType::Auto | LicenseType::Aliyun)
        ) {
            return Err(Invalid::new(
                "LicenseType",
                "InvalidLicenseType.NotSupported",
                "only BYOL can be set",
            ));
        }
        Ok(())
    }
}

/// Builder of [`ModifyImageAttributeRequest`].
#[derive(Debug, Clone)]
pub struct ModifyImageAttributeBuilder(ModifyImageAttributeRequest);

impl ModifyImageAttributeBuilder {
    setter!(/// New name.
        image_name: String);
    setter!(/// New description.
        description: String);
    setter!(/// Image family.
        image_family: String);
    setter!(/// Boot mode.
        boot_mode: BootMode);
    setter!(/// License type (BYOL).
        license_type: LicenseType);
    setter!(/// Deprecate or re-enable.
        status: ModifiableStatus);
    setter!(/// `Features.NvmeSupport`.
        nvme_support: NvmeSupport);
    setter!(/// `Features.ImdsSupport` (v2).
        imds_support: ImdsSupport);

    /// Only checks the request on the service.
    pub fn dry_run(mut self, v: bool) -> Self {
        self.0.dry_run = v;
        self
    }

    /// Checks the documented rules and returns the request.
    pub fn build(self) -> Result<ModifyImageAttributeRequest, Invalid> {
        self.0.validate()?;
        Ok(self.0)
    }
}

impl Action for ModifyImageAttributeRequest {
    type Response = Acknowledged;
    const NAME: &'static str = "ModifyImageAttribute";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("ImageId", &self.image_id);
        p.put_opt("ImageName", self.image_name.as_ref());
        p.put_opt("Description", self.description.as_ref());
        p.put_opt("ImageFamily", self.image_family.as_ref());
        p.put_opt("BootMode", self.boot_mode);
        p.put_opt("LicenseType", self.license_type);
        p.put_opt("Status", self.status);
        p.put_member("Features", "NvmeSupport", self.nvme_support);
        p.put_member("Features", "ImdsSupport", self.imds_support);
        if self.dry_run {
            p.put("DryRun", "true");
        }
        p
    }
}

/// DeleteImage: remove a custom image (an importing one must be cancelled first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteImageRequest {
    pub region_id: String,
    pub image_id: String,
    /// Delete even when instances use it.
    pub force: bool,
    pub dry_run: bool,
}

impl Action for DeleteImageRequest {
    type Response = Acknowledged;
    const NAME: &'static str = "DeleteImage";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("ImageId", &self.image_id);
        if self.force {
            p.put("Force", "true");
        }
        if self.dry_run {
            p.put("DryRun", "true");
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_request() -> ImportImageRequest {
        ImportImageRequest::builder("cn-hangzhou")
            .image_name("debian-12")
            .description("golden image")
            .architecture(Architecture::Arm64)
            .os_type(OsType::Linux)
            .platform(Platform::OthersLinux)
            .boot_mode(BootMode::Uefi)
            .license_type(LicenseType::Byol)
            .role_name("AliyunECSImageImportDefaultRole")
            .resource_group_id("rg-1")
            .detection_strategy(DetectionStrategy::Standard)
            .client_token("tok-1")
            .storage_location_arn("arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1")
            .nvme_support(NvmeSupport::Supported)
            .imds_support(ImdsSupport::V2)
            .tag("env", "prod")
            .disk(
                DiskDeviceMapping::new("bucket-a", "disk.qcow2")
                    .format(DiskFormat::Qcow2)
                    .size_gib(20),
            )
            .disk(DiskDeviceMapping::new("bucket-a", "data.raw"))
            .dry_run(true)
            .build()
            .unwrap()
    }

    #[test]
    fn import_image_flattens_every_parameter() {
        let p = full_request().params();
        let expect = [
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "debian-12"),
            ("Description", "golden image"),
            ("Architecture", "arm64"),
            ("OSType", "linux"),
            ("Platform", "Others Linux"),
            ("BootMode", "UEFI"),
            ("LicenseType", "BYOL"),
            ("RoleName", "AliyunECSImageImportDefaultRole"),
            ("ResourceGroupId", "rg-1"),
            ("DetectionStrategy", "Standard"),
            ("DryRun", "true"),
            ("ClientToken", "tok-1"),
            (
                "StorageLocationArn",
                "arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1",
            ),
            ("Features.NvmeSupport", "supported"),
            ("Features.ImdsSupport", "v2"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
            ("DiskDeviceMapping.1.OSSBucket", "bucket-a"),
            ("DiskDeviceMapping.1.OSSObject", "disk.qcow2"),
            ("DiskDeviceMapping.1.Format", "QCOW2"),
            ("DiskDeviceMapping.1.DiskImageSize", "20"),
            ("DiskDeviceMapping.2.OSSBucket", "bucket-a"),
            ("DiskDeviceMapping.2.OSSObject", "data.raw"),
        ];
        let pairs = p.into_pairs();
        let want: Vec<(String, String)> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn import_image_checks_rules_before_sending() {
        let base = || {
            ImportImageRequest::builder("cn-hangzhou")
                .disk(DiskDeviceMapping::new("bucket-a", "disk.raw"))
        };
        assert!(base().build().is_ok());
        let code = |b: ImportImageBuilder| b.build().unwrap_err().code;
        assert_eq!(
            code(base().image_name("1bad")),
            "InvalidImageName.Malformed"
        );
        assert_eq!(
            code(base().description("x")),
            "InvalidDescription.Malformed"
        );
        assert_eq!(
            code(base().client_token("t".repeat(65))),
            "InvalidClientToken.Malformed"
        );
        assert_eq!(
            code(base().tag("k", "a").tag("k", "b")),
            "TagKey.Duplication"
        );
        assert_eq!(
            code(base().boot_mode(BootMode::UefiPreferred)),
            "InvalidBootMode.Malformed"
        );
        assert_eq!(
            code(ImportImageRequest::builder("").disk(DiskDeviceMapping::new("bucket-a", "k"))),
            "MissingParameter"
        );
        assert_eq!(
            code(ImportImageRequest::builder("cn-hangzhou")),
            "MissingParameter"
        );
        let mut many = ImportImageRequest::builder("cn-hangzhou");
        for i in 0..18 {
            many = many.disk(DiskDeviceMapping::new("bucket-a", format!("d{i}")));
        }
        assert_eq!(code(many), "InvalidParameter.DiskDeviceMapping");
        assert_eq!(
            code(base().disk(DiskDeviceMapping::new("bucket-a", "d").size_gib(0))),
            "InvalidDataDiskSize"
        );
        assert_eq!(
            code(
                ImportImageRequest::builder("cn-hangzhou")
                    .disk(DiskDeviceMapping::new("bucket-a", "d").size_gib(4096))
            ),
            "InvalidImageSize"
        );
    }

    #[test]
    fn describe_images_always_sends_status() {
        let p = DescribeImagesRequest::new("cn-hangzhou")
            .image_id("m-1")
            .params();
        assert_eq!(
            p.get("Status"),
            Some("Creating,Waiting,Available,UnAvailable,CreateFailed,Deprecated")
        );
        let p = DescribeImagesRequest::new("r").status(&[]).params();
        assert!(p.get("Status").is_some());
        let p = DescribeImagesRequest::new("r")
            .status(&[ImageStatus::Available])
            .params();
        assert_eq!(p.get("Status"), Some("Available"));
    }

    #[test]
    fn modify_image_attribute_rules_and_params() {
        let r = ModifyImageAttributeRequest::builder("cn-hangzhou", "m-1")
            .image_name("golden")
            .image_family("daily")
            .boot_mode(BootMode::UefiPreferred)
            .license_type(LicenseType::Byol)
            .status(ModifiableStatus::Deprecated)
            .nvme_support(NvmeSupport::Supported)
            .imds_support(ImdsSupport::V2)
            .description("finished image")
            .dry_run(true)
            .build()
            .unwrap();
        let p = r.params();
        assert_eq!(p.get("Features.ImdsSupport"), Some("v2"));
        assert_eq!(p.get("BootMode"), Some("UEFI-Preferred"));
        assert_eq!(p.get("Status"), Some("Deprecated"));
        let code = |b: ModifyImageAttributeBuilder| b.build().unwrap_err().code;
        let b = || ModifyImageAttributeRequest::builder("cn-hangzhou", "m-1");
        assert_eq!(
            code(b().imds_support(ImdsSupport::V1)),
            "InvalidParameter.FeaturesImdsSupport"
        );
        assert_eq!(
            code(b().license_type(LicenseType::Auto)),
            "InvalidLicenseType.NotSupported"
        );
        assert_eq!(code(b().image_family("-x")), "InvalidImageFamily.Malformed");
        assert_eq!(
            code(ModifyImageAttributeRequest::builder("cn-hangzhou", "")),
            "MissingParameter"
        );
    }

    #[test]
    fn responses_parse() {
        let r: ImportImageResponse = serde_json::from_str(
            r#"{"RequestId":"R","ImageId":"m-1","TaskId":"t-1","RegionId":"cn-hangzhou"}"#,
        )
        .unwrap();
        assert_eq!(r.task_id, "t-1");
        let old: ImportImageResponse =
            serde_json::from_str(r#"{"RequestId":"R","ImageId":"m-1","ImportTaskId":"t-2"}"#)
                .unwrap();
        assert_eq!(old.task_id, "t-2");
        let t: TaskAttribute = serde_json::from_str(
            r#"{"TaskId":"t-1","SupportCancel":"true","OperationProgressSet":{"OperationProgress":[{"OperationStatus":"Failed","ErrorCode":"ImportImageFailed","ErrorMsg":"no operating system found"}]}}"#,
        )
        .unwrap();
        assert!(t.cancellable());
        assert_eq!(
            t.failure(),
            Some((
                "ImportImageFailed".into(),
                "no operating system found".into()
            ))
        );
    }
}

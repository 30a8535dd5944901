//! ImportImage: register OSS objects as a custom image (docs/CLOUD-API.md §ImportImage).

use serde::Deserialize;

use super::setter;
use super::{Action, Params};
use crate::aliyun::types::{
    Architecture, BootMode, DetectionStrategy, DiskFormat, ImdsSupport, LicenseType, NvmeSupport,
    OsType, Platform,
};
use crate::aliyun::validate::{self, Invalid};

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

/// ImportImage: register OSS objects as a custom image (docs/CLOUD-API.md §ImportImage).
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
#[serde(rename_all = "PascalCase", from = "ImportImageWire")]
pub struct ImportImageResponse {
    pub request_id: String,
    pub image_id: String,
    /// The import task: `TaskId`, or `ImportTaskId` as older answers name it.
    pub task_id: String,
    pub region_id: String,
}

/// ImportImage's answer as sent: a service may send `TaskId`, `ImportTaskId` or both.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportImageWire {
    request_id: String,
    image_id: String,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    import_task_id: Option<String>,
    #[serde(default)]
    region_id: String,
}

impl From<ImportImageWire> for ImportImageResponse {
    fn from(w: ImportImageWire) -> Self {
        let task_id = w
            .task_id
            .filter(|t| !t.is_empty())
            .or(w.import_task_id)
            .unwrap_or_default();
        Self {
            request_id: w.request_id,
            image_id: w.image_id,
            task_id,
            region_id: w.region_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::types::*;

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
    fn import_response_parses() {
        let r: ImportImageResponse = serde_json::from_str(
            r#"{"RequestId":"R","ImageId":"m-1","TaskId":"t-1","RegionId":"cn-hangzhou"}"#,
        )
        .unwrap();
        assert_eq!(r.task_id, "t-1");
        let old: ImportImageResponse =
            serde_json::from_str(r#"{"RequestId":"R","ImageId":"m-1","ImportTaskId":"t-2"}"#)
                .unwrap();
        assert_eq!(old.task_id, "t-2");
        let both: ImportImageResponse = serde_json::from_str(
            r#"{"RequestId":"R","ImageId":"m-1","TaskId":"t-3","ImportTaskId":"t-3"}"#,
        )
        .unwrap();
        assert_eq!(both.task_id, "t-3");
    }
}

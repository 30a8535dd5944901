//! Finding and finishing images: DescribeImages, ModifyImageAttribute, DeleteImage.

use serde::Deserialize;

use super::{Acknowledged, setter};
use super::{Action, Params};
use crate::aliyun::types::{
    BootMode, ImageOwnerAlias, ImageStatus, ImdsSupport, LicenseType, ModifiableStatus, NvmeSupport,
};
use crate::aliyun::validate::{self, Invalid};

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
    pub image_family: Option<String>,
    /// `Tag.N.Key` = `Tag.N.Value` filters: only images carrying every pair.
    pub tags: Vec<(String, String)>,
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
            image_family: None,
            tags: Vec::new(),
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

    /// Only images of the family `family`.
    pub fn family(mut self, family: impl Into<String>) -> Self {
        self.image_family = Some(family.into());
        self
    }

    /// Only images tagged `key` = `value` (repeatable: every pair must match).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
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
        p.put_opt("ImageFamily", self.image_family.as_ref());
        for (n, (k, v)) in self.tags.iter().enumerate() {
            p.put_indexed("Tag", n + 1, "Key", k);
            p.put_indexed("Tag", n + 1, "Value", v);
        }
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

/// ModifyImageAttribute: finish an image (docs/CLOUD-API.md §ModifyImageAttribute).
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
    use crate::aliyun::types::*;

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
}

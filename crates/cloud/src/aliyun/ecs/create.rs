//! CreateImage: a custom image from a snapshot, from an instance, or from several snapshots
//! joined by `DiskDeviceMapping` (docs/CLOUD-API.md §CreateImage).

use serde::Deserialize;

use super::setter;
use super::{Action, Params};
use crate::aliyun::types::{Architecture, BootMode, Platform};
use crate::aliyun::validate::{self, Invalid};

/// One disk of a CreateImage `DiskDeviceMapping`: mapping 1 is the system disk, 2..=17 data
/// disks (docs/CLOUD-API.md §CreateImage).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotDisk {
    /// Snapshot to copy; `None` makes an empty disk (5 GiB unless `size_gib` says more).
    pub snapshot_id: Option<String>,
    /// Size in GiB, 5–20000, not below the snapshot's size; default the snapshot's size.
    pub size_gib: Option<u64>,
    /// Device name; `None` takes the one the position requires (`/dev/xvda`, `/dev/xvdb` …).
    pub device: Option<String>,
}

/// What the image is made from: exactly one of the three approaches of docs/CLOUD-API.md
/// §CreateImage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Approach 1: one system-disk snapshot (`SnapshotId`).
    Snapshot(String),
    /// Approach 2: a whole Running or Stopped instance (`InstanceId`).
    Instance(String),
    /// Approach 3: several snapshots (`DiskDeviceMapping.N`).
    Disks(Vec<SnapshotDisk>),
}

/// CreateImage (ECS 2014-05-26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateImageRequest {
    pub region_id: String,
    pub source: ImageSource,
    pub image_name: Option<String>,
    pub image_version: Option<String>,
    pub description: Option<String>,
    pub image_family: Option<String>,
    pub platform: Option<Platform>,
    pub architecture: Option<Architecture>,
    pub boot_mode: Option<BootMode>,
    /// Idempotency token; the client fills one in when absent and reuses it on retries.
    pub client_token: Option<String>,
}

impl CreateImageRequest {
    /// A builder for an image made from `source` in `region_id`.
    pub fn builder(region_id: impl Into<String>, source: ImageSource) -> CreateImageBuilder {
        CreateImageBuilder(CreateImageRequest {
            region_id: region_id.into(),
            source,
            image_name: None,
            image_version: None,
            description: None,
            image_family: None,
            platform: None,
            architecture: None,
            boot_mode: None,
            client_token: None,
        })
    }

    /// Checks every documented rule; the first broken one is the error.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::region_id(&self.region_id)?;
        match &self.source {
            ImageSource::Snapshot(id) if id.is_empty() => {
                return Err(validate::missing("SnapshotId"));
            }
            ImageSource::Instance(id) if id.is_empty() => {
                return Err(validate::missing("InstanceId"));
            }
            ImageSource::Disks(disks) => {
                if disks.is_empty() {
                    return Err(validate::missing("DiskDeviceMapping"));
                }
                for (i, d) in disks.iter().enumerate() {
                    let n = i + 1;
                    if n > validate::MAX_DISKS {
                        return Err(Invalid::new(
                            format!("DiskDeviceMapping.{n}"),
                            "InvalidParameter.DiskDeviceMapping",
                            format!(
                                "at most {} disks (1 system disk and 16 data disks)",
                                validate::MAX_DISKS
                            ),
                        ));
                    }
                    if let Some(dev) = &d.device {
                        validate::create_device(n, dev)?;
                    }
                    if let Some(gib) = d.size_gib {
                        validate::create_disk_size(n, gib)?;
                    }
                    if d.snapshot_id.as_deref() == Some("") {
                        return Err(Invalid::new(
                            format!("DiskDeviceMapping.{n}.SnapshotId"),
                            "InvalidSnapshotId.NotFound",
                            "an empty snapshot id; leave it out for an empty disk",
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(n) = &self.image_name {
            validate::image_name(n)?;
        }
        if let Some(v) = &self.image_version {
            validate::image_version(v)?;
        }
        if let Some(d) = &self.description {
            validate::create_description(d)?;
        }
        if let Some(f) = &self.image_family {
            validate::image_family(f)?;
        }
        if let Some(t) = &self.client_token {
            validate::client_token(t)?;
        }
        Ok(())
    }
}

/// Builder of [`CreateImageRequest`].
#[derive(Debug, Clone)]
pub struct CreateImageBuilder(CreateImageRequest);

impl CreateImageBuilder {
    setter!(/// Image name (2–128 chars, starts with a letter).
        image_name: String);
    setter!(/// Image version (1–40 letters and digits).
        image_version: String);
    setter!(/// Description (0–256 chars).
        description: String);
    setter!(/// Image family.
        image_family: String);
    setter!(/// Distribution.
        platform: Platform);
    setter!(/// CPU architecture.
        architecture: Architecture);
    setter!(/// Boot mode (BIOS, UEFI or UEFI-Preferred).
        boot_mode: BootMode);
    setter!(/// Idempotency token (ASCII, ≤ 64).
        client_token: String);

    /// Checks the documented rules and returns the request.
    pub fn build(self) -> Result<CreateImageRequest, Invalid> {
        self.0.validate()?;
        Ok(self.0)
    }
}

impl Action for CreateImageRequest {
    type Response = CreateImageResponse;
    const NAME: &'static str = "CreateImage";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        match &self.source {
            ImageSource::Snapshot(id) => p.put("SnapshotId", id),
            ImageSource::Instance(id) => p.put("InstanceId", id),
            ImageSource::Disks(disks) => {
                for (i, d) in disks.iter().enumerate() {
                    let n = i + 1;
                    if let Some(s) = &d.snapshot_id {
                        p.put_indexed("DiskDeviceMapping", n, "SnapshotId", s);
                    }
                    if let Some(gib) = d.size_gib {
                        p.put_indexed("DiskDeviceMapping", n, "Size", gib);
                    }
                    let device = d
                        .device
                        .clone()
                        .or_else(|| validate::create_device_for(n))
                        .unwrap_or_default();
                    p.put_indexed("DiskDeviceMapping", n, "Device", device);
                    let kind = if n == 1 { "system" } else { "data" };
                    p.put_indexed("DiskDeviceMapping", n, "DiskType", kind);
                }
            }
        }
        p.put_opt("ImageName", self.image_name.as_ref());
        p.put_opt("ImageVersion", self.image_version.as_ref());
        p.put_opt("Description", self.description.as_ref());
        p.put_opt("ImageFamily", self.image_family.as_ref());
        p.put_opt("Platform", self.platform);
        p.put_opt("Architecture", self.architecture);
        p.put_opt("BootMode", self.boot_mode);
        p.put_opt("ClientToken", self.client_token.as_ref());
        p
    }
}

/// CreateImage's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateImageResponse {
    #[serde(default)]
    pub request_id: String,
    pub image_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disks(list: &[(Option<&str>, Option<u64>, Option<&str>)]) -> ImageSource {
        ImageSource::Disks(
            list.iter()
                .map(|(s, g, d)| SnapshotDisk {
                    snapshot_id: s.map(str::to_string),
                    size_gib: *g,
                    device: d.map(str::to_string),
                })
                .collect(),
        )
    }

    fn code(source: ImageSource) -> &'static str {
        CreateImageRequest::builder("cn-hangzhou", source)
            .build()
            .err()
            .map_or("ok", |e| e.code)
    }

    #[test]
    fn params_of_each_source() {
        let r = CreateImageRequest::builder(
            "cn-hangzhou",
            disks(&[(Some("s-1"), Some(40), None), (None, Some(100), None)]),
        )
        .image_name("golden")
        .image_version("v2")
        .boot_mode(BootMode::UefiPreferred)
        .build()
        .unwrap();
        let p = r.params();
        assert_eq!(p.get("DiskDeviceMapping.1.SnapshotId"), Some("s-1"));
        assert_eq!(p.get("DiskDeviceMapping.1.Device"), Some("/dev/xvda"));
        assert_eq!(p.get("DiskDeviceMapping.1.DiskType"), Some("system"));
        assert_eq!(p.get("DiskDeviceMapping.2.Device"), Some("/dev/xvdb"));
        assert_eq!(p.get("DiskDeviceMapping.2.Size"), Some("100"));
        assert_eq!(p.get("DiskDeviceMapping.2.SnapshotId"), None);
        assert_eq!(p.get("BootMode"), Some("UEFI-Preferred"));
        let p = CreateImageRequest::builder("r-1", ImageSource::Instance("i-1".into()))
            .build()
            .unwrap()
            .params();
        assert_eq!(
            (p.get("InstanceId"), p.get("SnapshotId")),
            (Some("i-1"), None)
        );
    }

    #[test]
    fn a_negative_case_per_rule() {
        assert_eq!(code(ImageSource::Snapshot("s-1".into())), "ok");
        assert_eq!(
            code(ImageSource::Snapshot(String::new())),
            "MissingParameter"
        );
        assert_eq!(
            code(ImageSource::Instance(String::new())),
            "MissingParameter"
        );
        assert_eq!(code(disks(&[])), "MissingParameter");
        assert_eq!(
            code(disks(&[(Some("s-1"), None, Some("/dev/xvdb"))])),
            "InvalidParameter.Malformed"
        );
        assert_eq!(
            code(disks(&[
                (Some("s-1"), None, Some("/dev/xvda")),
                (Some("s-2"), None, Some("/dev/xvda"))
            ])),
            "InvalidParameter.Malformed"
        );
        assert_eq!(
            code(disks(&[
                (Some("s-1"), None, None),
                (None, None, Some("/dev/xvdc"))
            ])),
            "InvalidParameter.Malformed"
        );
        assert_eq!(
            code(disks(&[(Some("s-1"), Some(4), None)])),
            "InvalidSize.ValueNotSupported"
        );
        assert_eq!(
            code(disks(&[(Some("s-1"), Some(20001), None)])),
            "InvalidSize.ValueNotSupported"
        );
        assert_eq!(
            code(disks(&[(Some(""), None, None)])),
            "InvalidSnapshotId.NotFound"
        );
        let many: Vec<_> = (0..18).map(|_| (None, None, None)).collect();
        assert_eq!(code(disks(&many)), "InvalidParameter.DiskDeviceMapping");
        let b = || CreateImageRequest::builder("cn-hangzhou", ImageSource::Snapshot("s".into()));
        let c = |b: CreateImageBuilder| b.build().err().map_or("ok", |e| e.code);
        assert_eq!(c(b().image_name("1x")), "InvalidImageName.Malformed");
        assert_eq!(c(b().image_version("1.0")), "InvalidImageVersion.Malformed");
        assert_eq!(
            c(b().description("https://x")),
            "InvalidDescription.Malformed"
        );
        assert_eq!(c(b().image_family("-f")), "InvalidImageFamily.Malformed");
        assert_eq!(
            c(b().client_token("t".repeat(65))),
            "InvalidClientToken.Malformed"
        );
        assert_eq!(
            CreateImageRequest::builder("", ImageSource::Snapshot("s".into()))
                .build()
                .unwrap_err()
                .code,
            "MissingParameter"
        );
    }
}

//! From inspected disks and user options to an [`ImportPlan`]: which disk is the system disk,
//! the output format and object key of each, the `DiskDeviceMapping`, and every ImportImage
//! field with where its value came from. Pure: no I/O, so every rule is a unit test.
//!
//! The dry-run report renders this value and the real run executes it, so "what would happen"
//! and "what happens" cannot drift apart.
//!
//! Kept whole: every decision of the plan with its unit tests; pure, so it reads top to bottom.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use serde::Serialize;

use imgport_cloud::aliyun::ecs::{
    DiskDeviceMapping, ImportImageRequest, ModifyImageAttributeRequest,
};
use imgport_cloud::aliyun::types::{
    Architecture, BootMode, DetectionStrategy, DiskFormat, ImdsSupport, LicenseType, NvmeSupport,
    OsType, Platform,
};
use imgport_cloud::aliyun::validate::{self, Invalid};
use imgport_guest::facts::GuestFacts;
use imgport_image::{ContainerReport, Finding, ImageFormat, Severity};
use imgport_transfer::layout::LayoutError;
pub use imgport_transfer::layout::OutputFormat;

mod endpoint;
mod ovf;
pub use endpoint::{InternalChoice, OssEndpoint};
pub use ovf::{Hint, OvfEvidence};

/// One GiB, the unit of `DiskImageSize`.
pub const GIB: u64 = 1 << 30;
/// ImportImage: `DiskDeviceMapping.N` with N = 1 (system) ..= 17.
pub const MAX_DISKS: usize = 17;
/// ImportImage: `DiskImageSize` is 1–2048 GiB for every disk.
pub const MAX_DISK_IMAGE_SIZE_GIB: u64 = 2048;

/// Tag carrying the content digest of an imported image's disks: how a later run finds that
/// this content was imported already (with [`ImportPlan::dedupe`]).
pub const CONTENT_TAG: &str = "imgport:content-digest";
/// Smallest part OSS accepts but the last (UploadPart: 100 KB to 5 GB).
pub const MIN_PART_SIZE: u64 = imgport_store::oss::MIN_PART_SIZE;
/// Largest part OSS accepts.
pub const MAX_PART_SIZE: u64 = imgport_store::oss::MAX_PART_SIZE;
/// Most parts of one multipart upload.
pub const MAX_PARTS: u64 = imgport_transfer::stream::MAX_PARTS;
/// Part size of an import's upload when none is given (larger, in whole MiB, when the object
/// needs it): ImportImage reads from OSS, which takes parts from 100 KB, and with parts this
/// small a far link's round trip is covered by few bytes in flight (docs/PERFORMANCE.md §WAN;
/// `imgport upload`, which may face plain S3, keeps S3's 5 MiB).
pub const DEFAULT_PART_SIZE: u64 = 2 << 20;
/// Memory the part buffers of one upload may take when the user does not say
/// (`--part-memory`): with the rest of the process, the import's peak RSS stays under 96 MiB.
pub const DEFAULT_PART_MEMORY: u64 = 64 << 20;

/// Most parts of one upload in flight at once when the user does not say (`--concurrency`):
/// enough to cover the bandwidth-delay product of a far region (scripts/bench-wan.sh). A part
/// waiting for its answer holds no buffer, so [`DEFAULT_PART_MEMORY`] does not lower it; each
/// is one HTTP connection, and the upload uses fewer when the measured rate does not grow
/// with more.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 64;
/// Most parts in flight the user may ask for.
pub const MAX_PARTS_IN_FLIGHT: usize = 256;

/// A part size within OSS's bounds ([`MIN_PART_SIZE`] to [`MAX_PART_SIZE`]), as the user
/// gives it; made only by [`PartSize::new`]. Whether it suits an object is [`Parts`]' rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PartSize(NonZeroU64);

impl PartSize {
    /// `bytes` when OSS accepts parts of that size.
    pub fn new(bytes: u64) -> Result<PartSize, PartSizeError> {
        NonZeroU64::new(bytes)
            .filter(|_| (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&bytes))
            .map(PartSize)
            .ok_or(PartSizeError::OutOfBounds { bytes })
    }

    /// The size in bytes.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The size as the stream takes it.
    pub fn non_zero(self) -> NonZeroU64 {
        self.0
    }
}

/// How one object is cut for its multipart upload: the part size and the part count, checked
/// against OSS's limits for the object's size. Made only by [`Parts::for_object`], once, where
/// the plan is made; the upload uses it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Parts {
    /// Size of every part but the last.
    pub part_size: PartSize,
    /// Number of parts (at least 1).
    pub count: u32,
}

impl Parts {
    /// The parts of an object of `object_size` bytes: `given` when it cuts the object into
    /// at most [`MAX_PARTS`] parts; none given, [`DEFAULT_PART_SIZE`] or the smallest whole
    /// MiB above it that does. An object larger than [`MAX_PARTS`] × [`MAX_PART_SIZE`] has no
    /// parts OSS takes.
    pub fn for_object(given: Option<PartSize>, object_size: u64) -> Result<Parts, PartSizeError> {
        Self::for_object_from(DEFAULT_PART_SIZE, given, object_size)
    }

    /// [`Parts::for_object`] with `default` instead of [`DEFAULT_PART_SIZE`] when none is
    /// given (`imgport upload` keeps S3's 5 MiB: it may face a plain S3 server).
    pub fn for_object_from(
        default: u64,
        given: Option<PartSize>,
        object_size: u64,
    ) -> Result<Parts, PartSizeError> {
        const MIB: u64 = 1 << 20;
        let part_size = match given {
            Some(p) => p,
            None => {
                let least = object_size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
                let bytes = default.max(least);
                if bytes > MAX_PART_SIZE {
                    return Err(PartSizeError::ObjectTooLarge { object_size });
                }
                PartSize::new(bytes)?
            }
        };
        let count = object_size.div_ceil(part_size.get()).max(1);
        if count > MAX_PARTS {
            return Err(PartSizeError::TooManyParts {
                part_size: part_size.get(),
                object_size,
                count,
            });
        }
        Ok(Parts {
            part_size,
            count: count as u32,
        })
    }
}

/// Why a part size does not suit OSS or an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartSizeError {
    #[error("part size {bytes}: OSS accepts parts of {MIN_PART_SIZE} bytes (100 KiB) to 5 GiB")]
    OutOfBounds { bytes: u64 },
    #[error(
        "part size {part_size} cuts the {object_size}-byte object into {count} parts; OSS takes at most {MAX_PARTS}: give a larger --part-size"
    )]
    TooManyParts {
        part_size: u64,
        object_size: u64,
        count: u64,
    },
    #[error("the object is {object_size} bytes; OSS takes at most {MAX_PARTS} parts of 5 GiB")]
    ObjectTooLarge { object_size: u64 },
}

/// Where a planned value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// Given on the command line or in a manifest row.
    User,
    /// Inferred from what the inspector found, e.g. `/etc/os-release ID=debian`.
    Inferred { from: String },
    /// Nothing said otherwise: the documented default.
    Default { why: String },
}

/// A planned value and its [`Source`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    fn user(value: T) -> Self {
        Self {
            value,
            source: Source::User,
        }
    }

    fn inferred(value: T, from: impl Into<String>) -> Self {
        Self {
            value,
            source: Source::Inferred { from: from.into() },
        }
    }

    fn default(value: T, why: impl Into<String>) -> Self {
        Self {
            value,
            source: Source::Default { why: why.into() },
        }
    }
}

/// Role of a disk in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskRole {
    System,
    Data,
}

/// Image-level values the user may set; each one overrides what inspection inferred.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub name: Option<String>,
    pub description: Option<String>,
    pub os_type: Option<OsType>,
    pub platform: Option<Platform>,
    pub architecture: Option<Architecture>,
    pub boot_mode: Option<BootMode>,
    pub license_type: Option<LicenseType>,
    pub nvme_support: Option<NvmeSupport>,
    pub imds_support: Option<ImdsSupport>,
    pub family: Option<String>,
    pub resource_group_id: Option<String>,
    pub role_name: Option<String>,
    pub detection_strategy: Option<DetectionStrategy>,
    pub tags: Vec<(String, String)>,
}

/// Everything the user said about an import.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub region: String,
    pub bucket: String,
    /// Prefix of every object key, e.g. `imgport/`.
    pub key_prefix: String,
    /// Output format for every disk; `None` keeps qcow2 and vhd sources as they are and
    /// turns raw sources into qcow2 (the smallest upload).
    pub output: Option<OutputFormat>,
    /// Index (0-based, in the order given) of the system disk, when inspection cannot tell.
    pub system_disk: Option<usize>,
    pub image: ImageOptions,
    /// Import a system disk on which inspection found no operating system (`guest.no_os`);
    /// without it such a disk is refused unless the OS facts are given (`platform` or
    /// `os_type`).
    pub allow_no_os: bool,
    /// Skip the content-digest lookup: always upload and import, even when an image with
    /// the same disks' content exists already.
    pub no_dedupe: bool,
    /// Once the new image is `Available`, deprecate the other images of its family.
    pub replace: bool,
    /// Register the image with E-HPC Instant under this name as the last stage (AddImage).
    pub ehpc_name: Option<String>,
    /// Once the image is `Available` and finished, delete the uploaded objects.
    pub delete_objects: bool,
    /// Create the import role (and attach its policy) when the check finds it missing.
    pub create_role: bool,
    /// Create a missing bucket in the import's region before the upload.
    pub create_bucket: bool,
    /// Part size of every upload; `None` picks one per object ([`Parts::for_object`]).
    pub part_size: Option<PartSize>,
    /// Most parts of one upload in flight; `None` is [`DEFAULT_PARTS_IN_FLIGHT`].
    pub parts_in_flight: Option<usize>,
    /// Memory the part buffers of one upload may take; `None` is [`DEFAULT_PART_MEMORY`].
    pub part_memory: Option<u64>,
    /// `DiskImageSize` in GiB for some disks, by position (0-based, in the order given);
    /// the others take their virtual size rounded up to whole GiB.
    pub disk_image_size_gib: Vec<(usize, u64)>,
    /// What decides whether the upload uses OSS's internal endpoint ([`InternalChoice`]).
    pub internal: InternalChoice,
}

/// One inspected input disk.
#[derive(Debug, Clone, Copy)]
pub struct DiskInput<'a> {
    pub path: &'a Path,
    pub container: &'a ContainerReport,
    pub guest: Option<&'a GuestFacts>,
    /// The OVA/OVF package the disk came from (its descriptor's hints), if any.
    pub package: Option<&'a imgport_image::ova::PackageDisk>,
}

/// The size in bytes of the object a disk becomes in an output format: `(index of the disk
/// in the order given, format)`. Given to [`infer`] by the caller that can read the image's
/// extents, so the planner itself stays free of I/O.
pub type ObjectSizer<'a> = &'a dyn Fn(usize, OutputFormat) -> Result<u64, LayoutError>;

/// One disk of the plan: what is uploaded where and how ImportImage will see it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDisk {
    /// N of `DiskDeviceMapping.N`: 1 for the system disk, 2..=17 for data disks.
    pub device_index: usize,
    /// Position (0-based) of the disk in the order given: which input this disk is.
    #[serde(skip)]
    pub input: usize,
    pub role: Sourced<DiskRole>,
    pub source: PathBuf,
    pub source_format: ImageFormat,
    pub source_virtual_size: u64,
    pub output: Sourced<OutputFormat>,
    /// Virtual size of the uploaded disk (a dynamic VHD is rounded up to whole blocks).
    pub output_virtual_size: u64,
    pub bucket: String,
    pub object_key: String,
    /// Size in bytes of the uploaded object (the output format's bytes).
    pub object_size: u64,
    /// How the object is cut for its multipart upload.
    pub parts: Sourced<Parts>,
    /// Most parts of this upload in flight: the plan's `parts_in_flight_max` (a part waiting
    /// for its answer holds no buffer: a retry reads it again). The upload chooses the number
    /// within it from the measured rate.
    pub parts_in_flight: Sourced<usize>,
    /// Most bytes this upload's part buffers take: those being filled ahead and written
    /// (within `part_memory`) and the one a retry reads a part again in, whatever the disk's
    /// size.
    pub buffer_memory: u64,
    pub disk_image_size_gib: Sourced<u64>,
}

/// The image-level fields of the ImportImage request, each with its source.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedImage {
    pub name: Sourced<String>,
    pub description: Option<Sourced<String>>,
    pub os_type: Sourced<OsType>,
    pub platform: Sourced<Platform>,
    pub architecture: Sourced<Architecture>,
    pub boot_mode: Sourced<BootMode>,
    pub license_type: Option<Sourced<LicenseType>>,
    pub nvme_support: Option<Sourced<NvmeSupport>>,
    pub imds_support: Option<Sourced<ImdsSupport>>,
    pub resource_group_id: Option<String>,
    pub role_name: Option<String>,
    pub detection_strategy: Option<DetectionStrategy>,
    pub tags: Vec<(String, String)>,
}

/// What ModifyImageAttribute sets once the image is `Available`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Finishing {
    pub family: Option<String>,
    /// `UEFI-Preferred` cannot be given to ImportImage; it is set afterwards.
    pub boot_mode: Option<BootMode>,
}

/// Registration of the imported image with E-HPC Instant (AddImage), the last stage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EhpcRegistration {
    /// The name the image is registered under.
    pub name: String,
}

/// The check of the RAM role ECS reads the bucket as, before anything is uploaded
/// (docs/CLOUD-API.md §RAM): GetRole and ListPoliciesForRole; with `create`, CreateRole and
/// AttachPolicyToRole for what is missing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleCheck {
    /// `--role-name`, else ImportImage's default role.
    pub role_name: String,
    /// Create the role, or attach its policy, when missing (`--create-role`).
    pub create: bool,
}

/// The complete, serialisable list of what an import will do.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPlan {
    pub region: String,
    /// The import role is checked (and created when asked) before the upload.
    pub import_role: RoleCheck,
    pub image: PlannedImage,
    pub disks: Vec<PlannedDisk>,
    /// Compute the disks' content digest, look for an `Available` image that has it (and
    /// import nothing when one exists), and tag the new image with it.
    pub dedupe: bool,
    pub finishing: Finishing,
    /// Once the image is `Available`, deprecate the other `Available` images of
    /// `finishing.family` (nothing without a family).
    pub replace: bool,
    /// Register the image with E-HPC Instant as the last stage.
    pub ehpc: Option<EhpcRegistration>,
    /// Delete the uploaded objects once the image is `Available` and every stage before this
    /// one is done. Kept otherwise (the default): a later import of the same disks finds
    /// them verified and uploads nothing, and a failed import can be retried from them.
    pub delete_objects: bool,
    /// Most parts of each upload in flight at once (`--concurrency`, `disks[].parts_in_flight`).
    /// Within it each upload picks the number from its measured rate and round-trip time,
    /// reported in its outcome (`in_flight`).
    pub parts_in_flight_max: Sourced<usize>,
    /// Memory the part buffers of one upload may take (uploads run one after the other):
    /// the buffers being filled and written, not the parts waiting for their answers.
    pub part_memory: Sourced<u64>,
    /// Before the first byte is sent, every bucket is checked to be in `region` (OSS
    /// GetBucketLocation); a missing one is created there when this is set (CreateBucket),
    /// refused otherwise. After the upload, HeadObject checks no object is archived.
    pub create_bucket: bool,
    /// Whether the upload goes through OSS's internal (VPC) endpoint, and why; the run
    /// connects to exactly this.
    pub oss_endpoint: OssEndpoint,
    /// Notes for the user (rounded sizes, guessed defaults, readiness findings of the guest).
    pub notes: Vec<Finding>,
    /// The OVF descriptor's hints beside what inspection found, when the system disk came
    /// from an OVA/OVF package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovf: Option<OvfEvidence>,
}

/// Why no plan could be made.
/// The finding code of a disk on which inspection found no operating system.
pub const NO_OS_FINDING: &str = "guest.no_os";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no disk given")]
    NoDisks,
    #[error("{count} disks given; ImportImage takes at most {MAX_DISKS} (1 system + 16 data)")]
    TooManyDisks { count: usize },
    #[error("{path}: refused by inspection; it cannot be imported")]
    Refused { path: PathBuf },
    #[error(
        "no disk holds a bootable operating system; say which one is the system disk with --system-disk"
    )]
    NoSystemDisk,
    #[error(
        "both {first} and {second} hold an operating system; say which one is the system disk with --system-disk"
    )]
    TwoSystemDisks { first: PathBuf, second: PathBuf },
    #[error(
        "{path}: inspection found no operating system on the system disk ({NO_OS_FINDING}); \
         a disk without one does not boot as an image: give its OS (--platform, --os-type) \
         or import it anyway with --allow-no-os"
    )]
    NoOs { path: PathBuf },
    #[error("--system-disk {index} is out of range: {count} disks were given (counting from 1)")]
    SystemDiskOutOfRange { index: usize, count: usize },
    #[error(
        "{path}: virtual size {gib} GiB exceeds ImportImage's DiskImageSize limit of {MAX_DISK_IMAGE_SIZE_GIB} GiB"
    )]
    DiskTooLarge { path: PathBuf, gib: u64 },
    #[error(
        "--disk-image-size {index}={given}: DiskImageSize must be {least}–{MAX_DISK_IMAGE_SIZE_GIB} GiB for {path} (at least its virtual size, rounded up to whole GiB)"
    )]
    DiskImageSize {
        index: usize,
        given: u64,
        least: u64,
        path: PathBuf,
    },
    #[error(
        "--disk-image-size {index}=…: there is no disk {index}; {count} were given (counting from 1)"
    )]
    DiskImageSizeOutOfRange { index: usize, count: usize },
    #[error("{}: {} ({})", .0.field, .0.rule, .0.code)]
    Invalid(Invalid),
    /// No OSS endpoint can be chosen for the bucket's region.
    #[error("OSS endpoint: {0}")]
    OssEndpoint(String),
    #[error("{path}: laying out the {format} object")]
    Layout {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: LayoutError,
    },
    #[error("{path}: uploading as {format}")]
    PartSize {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: PartSizeError,
    },
}

/// Builds the plan for importing `disks` (in the order given) with `opts`; `object_size`
/// gives the size of each disk's object in its planned format.
pub fn infer(
    disks: &[DiskInput<'_>],
    opts: &PlanOptions,
    object_size: ObjectSizer<'_>,
) -> Result<ImportPlan, PlanError> {
    if disks.is_empty() {
        return Err(PlanError::NoDisks);
    }
    if disks.len() > MAX_DISKS {
        return Err(PlanError::TooManyDisks { count: disks.len() });
    }
    if let Some(refused) = disks.iter().find(|d| !d.container.safe) {
        return Err(PlanError::Refused {
            path: refused.path.to_path_buf(),
        });
    }
    if let Some(&(i, _)) = opts
        .disk_image_size_gib
        .iter()
        .find(|(i, _)| *i >= disks.len())
    {
        return Err(PlanError::DiskImageSizeOutOfRange {
            index: i + 1,
            count: disks.len(),
        });
    }
    let (system, system_source) = choose_system_disk(disks, opts.system_disk)?;
    let os_given = opts.image.platform.is_some() || opts.image.os_type.is_some();
    if !has_os(&disks[system]) && !os_given && !opts.allow_no_os {
        return Err(PlanError::NoOs {
            path: disks[system].path.to_path_buf(),
        });
    }
    let mut notes = Vec::new();
    let order = std::iter::once(system).chain((0..disks.len()).filter(|&i| i != system));
    let mut planned = Vec::with_capacity(disks.len());
    for (n, i) in order.enumerate() {
        let role = if i == system {
            system_source.clone()
        } else {
            Sourced::default(
                DiskRole::Data,
                "every disk after the system disk is a data disk",
            )
        };
        planned.push(plan_disk(
            &disks[i],
            (i, n + 1),
            role,
            opts,
            object_size,
            &mut notes,
        )?);
    }
    let system_guest = disks[system].guest;
    if let Some(g) = system_guest {
        notes.extend(g.findings.iter().cloned());
    }
    let mut image = plan_image(&disks[system], system_guest, opts, &mut notes);
    let ovf = disks[system].package.map(|p| {
        let was = |s: &Source| match s {
            Source::User => ovf::Was::Given,
            Source::Inferred { .. } => ovf::Was::Found,
            Source::Default { .. } => ovf::Was::Default,
        };
        let now = ovf::Current {
            platform: was(&image.platform.source),
            os_type: was(&image.os_type.source),
            boot_mode: was(&image.boot_mode.source),
            nvme: image
                .nvme_support
                .as_ref()
                .map_or(ovf::Was::Default, |s| was(&s.source)),
        };
        let w = ovf::weigh(p, system_guest, now);
        if let Some((v, why)) = w.platform {
            image.platform = Sourced::inferred(v, why);
        }
        if let Some((v, why)) = w.os_type {
            image.os_type = Sourced::inferred(v, why);
        }
        if let Some((v, why)) = w.boot_mode {
            image.boot_mode = Sourced::inferred(v, why);
        }
        if let Some((v, why)) = w.nvme {
            image.nvme_support = Some(Sourced::inferred(v, why));
        }
        notes.extend(w.notes);
        OvfEvidence {
            package: p.package.clone(),
            hints: w.hints,
        }
    });
    let finishing = Finishing {
        family: opts.image.family.clone(),
        boot_mode: (image.boot_mode.value == BootMode::Uefi
            && system_guest.and_then(|g| g.boot_mode.as_deref()) == Some("UEFI-Preferred")
            && opts.image.boot_mode.is_none())
        .then_some(BootMode::UefiPreferred),
    };
    let ehpc = opts
        .ehpc_name
        .as_ref()
        .map(|name| EhpcRegistration { name: name.clone() });
    let plan = ImportPlan {
        region: opts.region.clone(),
        import_role: RoleCheck {
            role_name: opts
                .image
                .role_name
                .clone()
                .unwrap_or_else(|| imgport_cloud::aliyun::ram::IMPORT_ROLE.to_string()),
            create: opts.create_role,
        },
        image,
        disks: planned,
        dedupe: !opts.no_dedupe,
        finishing,
        replace: opts.replace,
        ehpc,
        delete_objects: opts.delete_objects,
        parts_in_flight_max: match opts.parts_in_flight {
            Some(n) => Sourced::user(n.clamp(1, MAX_PARTS_IN_FLIGHT)),
            None => Sourced::default(
                DEFAULT_PARTS_IN_FLIGHT,
                "enough for a far region; fewer are used when more do not raise the rate",
            ),
        },
        part_memory: match opts.part_memory {
            Some(n) => Sourced::user(n),
            None => Sourced::default(DEFAULT_PART_MEMORY, "an import's peak RSS within 96 MiB"),
        },
        create_bucket: opts.create_bucket,
        oss_endpoint: opts
            .internal
            .decide(&opts.region)
            .map_err(|e| PlanError::OssEndpoint(e.to_string()))?,
        notes,
        ovf,
    };
    // Every request is checked here, before the first byte leaves the machine; those sent
    // after the import differ from these checks only by the image id ImportImage returns.
    plan.import_request().map_err(PlanError::Invalid)?;
    if plan.dedupe {
        // The run adds the content tag to ImportImage: it counts against the tag limit now,
        // not after the upload.
        let tags = plan
            .image
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        validate::tags(tags.chain([(CONTENT_TAG, "0")])).map_err(|mut e| {
            e.rule = format!(
                "{}, and imgport adds its own {CONTENT_TAG} tag to find this image again \
                 (--no-dedupe imports without it)",
                e.rule
            );
            PlanError::Invalid(e)
        })?;
    }
    if let Some(family) = &plan.finishing.family {
        validate::image_family(family).map_err(PlanError::Invalid)?;
    }
    if let Some(e) = &plan.ehpc
        && e.name.trim().is_empty()
    {
        return Err(PlanError::Invalid(Invalid::new(
            "Name",
            "MissingParameter",
            "the E-HPC image name is required",
        )));
    }
    Ok(plan)
}

impl ImportPlan {
    /// The ImportImage request this plan sends, checked by every documented rule.
    pub fn import_request(&self) -> Result<ImportImageRequest, Invalid> {
        let i = &self.image;
        let mut b = ImportImageRequest::builder(self.region.clone())
            .image_name(i.name.value.clone())
            .os_type(i.os_type.value)
            .platform(i.platform.value)
            .architecture(i.architecture.value)
            .boot_mode(i.boot_mode.value);
        if let Some(d) = &i.description {
            b = b.description(d.value.clone());
        }
        if let Some(l) = &i.license_type {
            b = b.license_type(l.value);
        }
        if let Some(n) = &i.nvme_support {
            b = b.nvme_support(n.value);
        }
        if let Some(m) = &i.imds_support {
            b = b.imds_support(m.value);
        }
        if let Some(r) = &i.resource_group_id {
            b = b.resource_group_id(r.clone());
        }
        if let Some(r) = &i.role_name {
            b = b.role_name(r.clone());
        }
        if let Some(d) = i.detection_strategy {
            b = b.detection_strategy(d);
        }
        for (k, v) in &i.tags {
            b = b.tag(k.clone(), v.clone());
        }
        for d in &self.disks {
            b = b.disk(
                DiskDeviceMapping::new(d.bucket.clone(), d.object_key.clone())
                    .format(ecs_disk_format(d.output.value))
                    .size_gib(d.disk_image_size_gib.value),
            );
        }
        b.build()
    }

    /// The ModifyImageAttribute request that finishes `image_id`, when there is anything
    /// to finish.
    pub fn finishing_request(
        &self,
        image_id: &str,
    ) -> Option<Result<ModifyImageAttributeRequest, Invalid>> {
        let f = &self.finishing;
        if f.family.is_none() && f.boot_mode.is_none() {
            return None;
        }
        let mut b = ModifyImageAttributeRequest::builder(self.region.clone(), image_id);
        if let Some(family) = &f.family {
            b = b.image_family(family.clone());
        }
        if let Some(mode) = f.boot_mode {
            b = b.boot_mode(mode);
        }
        Some(b.build())
    }
}

fn has_os(d: &DiskInput<'_>) -> bool {
    d.guest.is_some_and(|g| g.os_type.is_some())
}

fn choose_system_disk(
    disks: &[DiskInput<'_>],
    given: Option<usize>,
) -> Result<(usize, Sourced<DiskRole>), PlanError> {
    if let Some(index) = given {
        if index >= disks.len() {
            return Err(PlanError::SystemDiskOutOfRange {
                index: index + 1,
                count: disks.len(),
            });
        }
        return Ok((index, Sourced::user(DiskRole::System)));
    }
    let bootable: Vec<usize> = (0..disks.len()).filter(|&i| has_os(&disks[i])).collect();
    match bootable.as_slice() {
        [only] => {
            let g = disks[*only].guest.and_then(|g| g.product_name.clone());
            let from = match g {
                Some(name) => format!("the only disk with an operating system ({name})"),
                None => "the only disk with an operating system".to_string(),
            };
            Ok((*only, Sourced::inferred(DiskRole::System, from)))
        }
        [] if disks.len() == 1 => Ok((
            0,
            Sourced::default(
                DiskRole::System,
                "a single disk is the system disk even though no operating system was found",
            ),
        )),
        // One OVA/OVF package: its descriptor orders the disks, the system disk first.
        [] if disks[0].package.is_some()
            && disks
                .iter()
                .all(|d| d.package.map(|p| &p.package) == disks[0].package.map(|p| &p.package)) =>
        {
            Ok((
                0,
                Sourced::default(
                    DiskRole::System,
                    "the first disk of the OVF descriptor's DiskSection; no disk holds an operating system",
                ),
            ))
        }
        [] => Err(PlanError::NoSystemDisk),
        [first, second, ..] => Err(PlanError::TwoSystemDisks {
            first: disks[*first].path.to_path_buf(),
            second: disks[*second].path.to_path_buf(),
        }),
    }
}

fn plan_disk(
    d: &DiskInput<'_>,
    (input, device_index): (usize, usize),
    role: Sourced<DiskRole>,
    opts: &PlanOptions,
    object_size: ObjectSizer<'_>,
    notes: &mut Vec<Finding>,
) -> Result<PlannedDisk, PlanError> {
    let source_format = d.container.format.unwrap_or(ImageFormat::Raw);
    let source_virtual_size = d.container.virtual_size.unwrap_or(0);
    let output = match opts.output {
        Some(o) => Sourced::user(o),
        None => match source_format {
            ImageFormat::Qcow2 => Sourced::default(
                OutputFormat::Qcow2,
                "a qcow2 source is uploaded as qcow2, which ECS accepts",
            ),
            ImageFormat::Vhd if d.container.subformat.as_deref() == Some("fixed") => {
                Sourced::default(
                    OutputFormat::VhdFixed,
                    "a fixed VHD source stays a fixed VHD",
                )
            }
            ImageFormat::Vhd => Sourced::default(
                OutputFormat::Vhd,
                "a dynamic VHD source is rewritten as a dynamic VHD ECS accepts",
            ),
            ImageFormat::Raw => Sourced::default(
                OutputFormat::Qcow2,
                "raw sources are uploaded as qcow2: only allocated data travels",
            ),
            ImageFormat::Vmdk | ImageFormat::Vhdx => Sourced::default(
                OutputFormat::Qcow2,
                "a VMDK or VHDX source is converted to qcow2 (imgport uploads only formats it writes): only allocated data travels",
            ),
        },
    };
    let output_virtual_size = output
        .value
        .output_virtual_size(source_virtual_size)
        .unwrap_or(u64::MAX);
    if output_virtual_size != source_virtual_size {
        notes.push(Finding::new(
            Severity::Info,
            "plan.size_rounded",
            format!(
                "{}: the {} disk grows from {source_virtual_size} to {output_virtual_size} bytes, a multiple of {} bytes as the format requires",
                d.path.display(),
                output.value.name(),
                output.value.size_alignment()
            ),
        ));
    }
    let gib = output_virtual_size.div_ceil(GIB).max(1);
    if gib > MAX_DISK_IMAGE_SIZE_GIB {
        return Err(PlanError::DiskTooLarge {
            path: d.path.to_path_buf(),
            gib,
        });
    }
    let given = opts
        .disk_image_size_gib
        .iter()
        .rev()
        .find(|(i, _)| *i == input);
    let disk_image_size_gib = match given {
        Some(&(_, g)) if (gib..=MAX_DISK_IMAGE_SIZE_GIB).contains(&g) => Sourced::user(g),
        Some(&(_, g)) => {
            return Err(PlanError::DiskImageSize {
                index: input + 1,
                given: g,
                least: gib,
                path: d.path.to_path_buf(),
            });
        }
        None => Sourced::inferred(
            gib,
            format!("virtual size {output_virtual_size} bytes rounded up to whole GiB"),
        ),
    };
    let object_key = object_key(&opts.key_prefix, d.path, device_index, output.value);
    let format = output.value.name();
    let size = object_size(input, output.value).map_err(|source| PlanError::Layout {
        path: d.path.to_path_buf(),
        format,
        source,
    })?;
    let cut = Parts::for_object(opts.part_size, size).map_err(|source| PlanError::PartSize {
        path: d.path.to_path_buf(),
        format,
        source,
    })?;
    let parts = match opts.part_size {
        Some(_) => Sourced::user(cut),
        None => Sourced::default(
            cut,
            format!(
                "{DEFAULT_PART_SIZE}-byte parts, or larger to cut {size} bytes into at most {MAX_PARTS}"
            ),
        ),
    };
    let (parts_in_flight, buffer_memory) = in_flight_within_memory(opts, d.path, &cut, notes);
    Ok(PlannedDisk {
        device_index,
        input,
        role,
        source: d.path.to_path_buf(),
        source_format,
        source_virtual_size,
        output,
        output_virtual_size,
        bucket: opts.bucket.clone(),
        object_key,
        object_size: size,
        parts,
        parts_in_flight,
        buffer_memory,
        disk_image_size_gib,
    })
}

/// The most parts in flight of one disk's upload cut in `cut` (the user's or default cap:
/// a part in flight holds no buffer while it waits for its answer, since a retry reads it
/// again from the source), and the memory its part buffers take at most: one per part being
/// written, lowered to what the part-memory budget holds, with those filled ahead and the
/// one retries read parts again in. Parts too large for even one buffer being written within
/// the budget (a huge object needs large parts to stay within 10,000) get one, with a note
/// that the budget is exceeded.
fn in_flight_within_memory(
    opts: &PlanOptions,
    path: &Path,
    cut: &Parts,
    notes: &mut Vec<Finding>,
) -> (Sourced<usize>, u64) {
    use imgport_transfer::stream::{upload_buffers, writing_within};
    let cap = opts
        .parts_in_flight
        .map_or(DEFAULT_PARTS_IN_FLIGHT, |n| n.clamp(1, MAX_PARTS_IN_FLIGHT));
    let budget = opts.part_memory.unwrap_or(DEFAULT_PART_MEMORY);
    let part = cut.part_size.get();
    // An import signs every part with its SHA-256, so its stream batches no part MD5s.
    let fit = writing_within(budget, part, false);
    let writing = upload_writing(budget, part, cap);
    let memory = upload_buffers(writing, part, false) as u64 * part;
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let sourced = match opts.parts_in_flight {
        Some(_) => Sourced::user(cap),
        None => Sourced::default(
            cap,
            format!(
                "{DEFAULT_PARTS_IN_FLIGHT}; a part waiting for its answer holds no buffer, \
                 and {:.1} MiB of part memory hold {writing} parts of {:.1} MiB being written \
                 and {} filled ahead",
                mib(budget),
                mib(part),
                imgport_transfer::stream::UPLOAD_FILLED_AHEAD
            ),
        ),
    };
    if fit.is_none() {
        notes.push(Finding::new(
            Severity::Warning,
            "plan.part_memory_exceeded",
            format!(
                "{}: parts of {part} bytes take {memory} bytes of buffers with one being \
                 written, more than the part memory of {budget} bytes (--part-memory); one \
                 part is written at a time",
                path.display()
            ),
        ));
    }
    (sourced, memory)
}

/// Parts of `part_size` bytes an upload with `cap` parts in flight may be writing at once
/// within `budget` bytes of part memory: one buffer each (more than the cap would never be
/// used), at least one.
fn upload_writing(budget: u64, part_size: u64, cap: usize) -> usize {
    imgport_transfer::stream::writing_within(budget, part_size, false)
        .unwrap_or(1)
        .min(cap.max(1))
}

/// ImportImage's `DiskDeviceMapping.N.Format` value for an output format.
pub fn ecs_disk_format(output: OutputFormat) -> DiskFormat {
    match output {
        OutputFormat::Raw => DiskFormat::Raw,
        OutputFormat::Vhd | OutputFormat::VhdFixed => DiskFormat::Vhd,
        OutputFormat::Qcow2 => DiskFormat::Qcow2,
    }
}

/// `<prefix><stem>-disk<N>.<suffix>`: stable across re-runs so a finished upload is found
/// again, with the suffix ECS expects for the format.
pub fn object_key(prefix: &str, path: &Path, device_index: usize, output: OutputFormat) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk".to_string());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}{clean}-disk{device_index}.{}", output.suffix())
}

/// An ImageName that passes ECS's rules, derived from a file name: starts with a letter,
/// only letters, digits, `.`, `:`, `_`, `-`, 2–128 characters.
pub fn default_image_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "img-");
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aliyun") || lower.starts_with("acs:") {
        name.insert_str(0, "img-");
    }
    if name.len() < 2 {
        name.push_str("-image");
    }
    name.truncate(128);
    name
}

/// `user` if given, else the guest's value parsed into the wire enum, else `default`.
fn pick<T: Copy>(
    user: Option<T>,
    found: Option<&str>,
    parse: fn(&str) -> Option<T>,
    from: &str,
    default: T,
    why: &str,
) -> Sourced<T> {
    match (user, found.and_then(parse)) {
        (Some(v), _) => Sourced::user(v),
        (None, Some(v)) => Sourced::inferred(v, from),
        (None, None) => Sourced::default(default, why),
    }
}

fn plan_image(
    system: &DiskInput<'_>,
    guest: Option<&GuestFacts>,
    opts: &PlanOptions,
    notes: &mut Vec<Finding>,
) -> PlannedImage {
    let o = &opts.image;
    let fact = |f: fn(&GuestFacts) -> &Option<String>| guest.and_then(|g| f(g).as_deref());
    let os_type = pick(
        o.os_type,
        fact(|g| &g.os_type),
        OsType::parse,
        "the operating system found on the system disk",
        OsType::Linux,
        "ImportImage's default; no operating system was recognised",
    );
    let (default_platform, platform_why) = match os_type.value {
        OsType::Windows => (
            Platform::OtherWindows,
            "ImportImage's value for a Windows it does not name; the Windows version was not read",
        ),
        OsType::Linux => (
            Platform::OthersLinux,
            "the distribution is not one ImportImage names",
        ),
    };
    let platform = pick(
        o.platform,
        fact(|g| &g.platform),
        Platform::parse,
        "the distribution found on the system disk",
        default_platform,
        platform_why,
    );
    let architecture = pick(
        o.architecture,
        fact(|g| &g.architecture),
        Architecture::parse,
        "the ELF/PE headers of system binaries",
        Architecture::X86_64,
        "ImportImage's default; the architecture could not be read",
    );
    // ImportImage takes BIOS or UEFI; UEFI-Preferred is set by ModifyImageAttribute afterwards.
    let import_boot = |b: &str| match BootMode::parse(b) {
        Some(BootMode::UefiPreferred) => Some(BootMode::Uefi),
        other => other,
    };
    let mut boot_mode = pick(
        o.boot_mode,
        fact(|g| &g.boot_mode),
        import_boot,
        "the partition table and boot loaders on the system disk",
        BootMode::Bios,
        "ImportImage's default; no boot loader was recognised",
    );
    if architecture.value == Architecture::Arm64 && boot_mode.value != BootMode::Uefi {
        if o.boot_mode.is_none() {
            boot_mode = Sourced::inferred(BootMode::Uefi, "arm64 images boot only by UEFI");
        } else {
            notes.push(Finding::new(
                Severity::Warning,
                "plan.arm64_bios",
                "arm64 images must boot by UEFI, but BIOS was asked for",
            ));
        }
    }
    let name = match &o.name {
        Some(n) => Sourced::user(n.clone()),
        // An OVA/OVF names the machine; its disks' names only number it.
        None => match system.package {
            Some(p) => Sourced::inferred(
                default_image_name(&p.package),
                "the OVA/OVF package's file name",
            ),
            None => Sourced::inferred(
                default_image_name(system.path),
                "the system disk's file name",
            ),
        },
    };
    let nvme_support = match (o.nvme_support, guest.and_then(|g| g.drivers.nvme)) {
        (Some(v), _) => Some(Sourced::user(v)),
        (None, Some(found)) => Some(Sourced::inferred(
            if found {
                NvmeSupport::Supported
            } else {
                NvmeSupport::Unsupported
            },
            "the NVMe driver lookup in the guest",
        )),
        (None, None) => None,
    };
    // ImportImage's documentation: OSType windows "must also set LicenseType" (docs/CLOUD-API.md
    // §ImportImage), so a Windows plan names the documented default instead of leaving it out.
    let license_type = match (o.license_type, os_type.value) {
        (Some(v), _) => Some(Sourced::user(v)),
        (None, OsType::Windows) => Some(Sourced::default(
            LicenseType::Aliyun,
            "ImportImage's default, which a Windows import must state: the instances' bill \
             includes the Windows Server licence (--license-type BYOL to bring your own)",
        )),
        (None, OsType::Linux) => None,
    };
    PlannedImage {
        name,
        description: o.description.clone().map(Sourced::user),
        os_type,
        platform,
        architecture,
        boot_mode,
        license_type,
        nvme_support,
        imds_support: o.imds_support.map(Sourced::user),
        resource_group_id: o.resource_group_id.clone(),
        role_name: o.role_name.clone(),
        detection_strategy: o.detection_strategy,
        tags: o.tags.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::infer`] with objects the size of each output's virtual disk.
    fn infer(disks: &[DiskInput<'_>], opts: &PlanOptions) -> Result<ImportPlan, PlanError> {
        super::infer(disks, opts, &|i, format| {
            let size = disks[i].container.virtual_size.unwrap_or(0);
            Ok(format.output_virtual_size(size).unwrap_or(u64::MAX))
        })
    }

    #[test]
    fn part_sizes_stay_within_oss_limits() {
        assert!(PartSize::new(MIN_PART_SIZE - 1).is_err());
        assert!(PartSize::new(MAX_PART_SIZE + 1).is_err());
        let min = PartSize::new(MIN_PART_SIZE).unwrap();
        assert_eq!(PartSize::new(MAX_PART_SIZE).unwrap().get(), MAX_PART_SIZE);
        // None given: the default, or whole MiB large enough for 10000 parts.
        let small = Parts::for_object(None, 1).unwrap();
        assert_eq!((small.part_size.get(), small.count), (DEFAULT_PART_SIZE, 1));
        assert_eq!(Parts::for_object(None, 0).unwrap().count, 1);
        let big = Parts::for_object(None, 100 * GIB).unwrap();
        assert_eq!(big.part_size.get() % (1 << 20), 0);
        assert!(u64::from(big.count) <= MAX_PARTS);
        assert!(big.part_size.get() > DEFAULT_PART_SIZE);
        // Given: kept, unless the object needs more parts than OSS takes.
        let given = Parts::for_object(Some(min), MIN_PART_SIZE * MAX_PARTS).unwrap();
        assert_eq!((given.part_size, u64::from(given.count)), (min, MAX_PARTS));
        assert!(matches!(
            Parts::for_object(Some(min), MIN_PART_SIZE * MAX_PARTS + 1),
            Err(PartSizeError::TooManyParts { count, .. }) if count == MAX_PARTS + 1
        ));
        assert!(matches!(
            Parts::for_object(None, MAX_PART_SIZE * MAX_PARTS + 1),
            Err(PartSizeError::ObjectTooLarge { .. })
        ));
    }

    #[test]
    fn the_content_tag_counts_against_the_tag_limit() {
        let r = report(ImageFormat::Qcow2, 3 * GIB);
        let g = linux();
        let one = [DiskInput {
            path: Path::new("/d/root.qcow2"),
            container: &r,
            guest: Some(&g),
            package: None,
        }];
        let mut o = opts();
        o.image.tags = (1..=20).map(|i| (format!("k{i}"), "v".into())).collect();
        match infer(&one, &o) {
            Err(PlanError::Invalid(e)) => {
                assert_eq!(
                    (e.field.as_str(), e.code),
                    ("Tag.21", "InvalidTags.Malformed")
                );
                assert!(e.rule.contains("--no-dedupe"), "{}", e.rule);
            }
            other => panic!("20 tags and the content tag: {other:?}"),
        }
        o.image.tags.pop();
        assert!(
            infer(&one, &o).is_ok(),
            "19 tags leave room for the content tag"
        );
        o.image.tags.push(("k20".into(), "v".into()));
        o.no_dedupe = true;
        assert!(
            infer(&one, &o).is_ok(),
            "without dedupe there is no content tag"
        );
    }

    #[test]
    fn run_decisions_are_part_of_the_plan() {
        let r = report(ImageFormat::Qcow2, 3 * GIB);
        let g = linux();
        let one = [DiskInput {
            path: Path::new("/d/root.qcow2"),
            container: &r,
            guest: Some(&g),
            package: None,
        }];
        let plan = infer(&one, &opts()).unwrap();
        assert!(plan.dedupe && !plan.replace && plan.ehpc.is_none());
        assert_eq!(plan.disks[0].object_size, 3 * GIB);
        assert!(matches!(plan.disks[0].parts.source, Source::Default { .. }));
        let mut o = opts();
        o.no_dedupe = true;
        o.replace = true;
        o.image.family = Some("golden".into());
        o.ehpc_name = Some("golden-hpc".into());
        o.part_size = Some(PartSize::new(64 << 20).unwrap());
        let plan = infer(&one, &o).unwrap();
        assert!(!plan.dedupe && plan.replace);
        assert_eq!(plan.ehpc.as_ref().unwrap().name, "golden-hpc");
        assert_eq!(plan.disks[0].parts.value.part_size.get(), 64 << 20);
        assert_eq!(plan.disks[0].parts.value.count, 48);
        assert_eq!(plan.disks[0].parts.source, Source::User);
        o.part_size = Some(PartSize::new(MIN_PART_SIZE).unwrap());
        assert!(matches!(infer(&one, &o), Err(PlanError::PartSize { .. })));
        o.part_size = None;
        o.ehpc_name = Some(" ".into());
        assert!(matches!(infer(&one, &o), Err(PlanError::Invalid(_))));
    }

    fn report(format: ImageFormat, size: u64) -> ContainerReport {
        ContainerReport {
            path: PathBuf::from("x"),
            format: Some(format),
            subformat: None,
            recognised_as: None,
            virtual_size: Some(size),
            allocated_size: Some(0),
            file_size: size,
            bytes_read: 0,
            safe: true,
            findings: vec![],
            details: None,
        }
    }

    fn linux() -> GuestFacts {
        GuestFacts {
            os_type: Some("linux".into()),
            distro: Some("debian".into()),
            product_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            platform: Some("Debian".into()),
            architecture: Some("x86_64".into()),
            boot_mode: Some("UEFI-Preferred".into()),
            ..Default::default()
        }
    }

    /// [`opts`] for disks without an OS (size and count rules).
    fn no_os_allowed() -> PlanOptions {
        PlanOptions {
            allow_no_os: true,
            ..opts()
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            region: "cn-hangzhou".into(),
            bucket: "images".into(),
            key_prefix: "imgport/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_system_disk_without_an_os_is_refused_unless_allowed_or_described() {
        let c = report(ImageFormat::Raw, GIB);
        let disks = [DiskInput {
            path: Path::new("/d/fake.qcow2"),
            container: &c,
            guest: Some(&GuestFacts::default()),
            package: None,
        }];
        let e = infer(&disks, &opts()).unwrap_err();
        assert!(matches!(e, PlanError::NoOs { .. }), "{e}");
        assert!(e.to_string().contains(NO_OS_FINDING), "{e}");
        let allowed = PlanOptions {
            allow_no_os: true,
            ..opts()
        };
        assert!(infer(&disks, &allowed).is_ok());
        let mut described = opts();
        described.image.os_type = Some(OsType::Linux);
        assert!(infer(&disks, &described).is_ok());
    }

    #[test]
    fn system_disk_is_the_bootable_one_and_data_disks_follow_in_order() {
        let data = report(ImageFormat::Raw, 10 * GIB);
        let sys = report(ImageFormat::Qcow2, 40 * GIB);
        let g = linux();
        let disks = [
            DiskInput {
                path: Path::new("/d/data1.raw"),
                container: &data,
                guest: None,
                package: None,
            },
            DiskInput {
                path: Path::new("/d/root.qcow2"),
                container: &sys,
                guest: Some(&g),
                package: None,
            },
            DiskInput {
                path: Path::new("/d/data2.raw"),
                container: &data,
                guest: None,
                package: None,
            },
        ];
        let plan = infer(&disks, &opts()).unwrap();
        let order: Vec<_> = plan.disks.iter().map(|d| d.source.clone()).collect();
        assert_eq!(
            order,
            [
                PathBuf::from("/d/root.qcow2"),
                "/d/data1.raw".into(),
                "/d/data2.raw".into()
            ]
        );
        assert_eq!(plan.disks[0].device_index, 1);
        assert_eq!(plan.disks[0].role.value, DiskRole::System);
        assert!(matches!(plan.disks[0].role.source, Source::Inferred { .. }));
        assert_eq!(plan.disks[2].device_index, 3);
        assert_eq!(plan.disks[0].disk_image_size_gib.value, 40);
        assert_eq!(plan.disks[0].object_key, "imgport/root-disk1.qcow2");
        assert_eq!(plan.image.platform.value, Platform::Debian);
        assert_eq!(plan.image.boot_mode.value, BootMode::Uefi);
        assert_eq!(plan.finishing.boot_mode, Some(BootMode::UefiPreferred));
        assert_eq!(plan.image.name.value, "root");
        let req = plan.import_request().unwrap();
        assert_eq!(req.disks.len(), 3);
        assert_eq!(req.disks[0].oss_object, "imgport/root-disk1.qcow2");
        assert_eq!(req.disks[0].format, Some(DiskFormat::Qcow2));
        assert_eq!(req.disks[1].format, Some(DiskFormat::Qcow2));
        let modify = plan.finishing_request("m-1").unwrap().unwrap();
        assert_eq!(modify.boot_mode, Some(BootMode::UefiPreferred));
    }

    #[test]
    fn none_or_two_bootable_disks_need_the_user() {
        let r = report(ImageFormat::Raw, GIB);
        let g = linux();
        let two = [
            DiskInput {
                path: Path::new("a"),
                container: &r,
                guest: Some(&g),
                package: None,
            },
            DiskInput {
                path: Path::new("b"),
                container: &r,
                guest: Some(&g),
                package: None,
            },
        ];
        assert!(matches!(
            infer(&two, &opts()),
            Err(PlanError::TwoSystemDisks { .. })
        ));
        let mut o = opts();
        o.system_disk = Some(1);
        let plan = infer(&two, &o).unwrap();
        assert_eq!(plan.disks[0].source, PathBuf::from("b"));
        assert_eq!(plan.disks[0].role.source, Source::User);
        let none = [
            DiskInput {
                path: Path::new("a"),
                container: &r,
                guest: None,
                package: None,
            },
            DiskInput {
                path: Path::new("b"),
                container: &r,
                guest: None,
                package: None,
            },
        ];
        assert!(matches!(
            infer(&none, &opts()),
            Err(PlanError::NoSystemDisk)
        ));
        o.system_disk = Some(5);
        assert!(matches!(
            infer(&none, &o),
            Err(PlanError::SystemDiskOutOfRange { .. })
        ));
    }

    #[test]
    fn more_than_17_disks_or_over_2048_gib_is_refused() {
        let r = report(ImageFormat::Raw, GIB);
        let many: Vec<_> = (0..18)
            .map(|_| DiskInput {
                path: Path::new("a"),
                container: &r,
                guest: None,
                package: None,
            })
            .collect();
        assert!(matches!(
            infer(&many, &no_os_allowed()),
            Err(PlanError::TooManyDisks { count: 18 })
        ));
        let huge = report(ImageFormat::Raw, 2049 * GIB);
        let one = [DiskInput {
            path: Path::new("a"),
            container: &huge,
            guest: None,
            package: None,
        }];
        assert!(matches!(
            infer(&one, &no_os_allowed()),
            Err(PlanError::DiskTooLarge { gib: 2049, .. })
        ));
        let edge = report(ImageFormat::Raw, 2048 * GIB);
        let one = [DiskInput {
            path: Path::new("a"),
            container: &edge,
            guest: None,
            package: None,
        }];
        assert_eq!(
            infer(&one, &no_os_allowed()).unwrap().disks[0]
                .disk_image_size_gib
                .value,
            2048
        );
    }

    #[test]
    fn vhd_output_rounds_to_blocks_and_small_disks_are_one_gib() {
        let r = report(ImageFormat::Raw, 7 * 1024 * 1024 + 512);
        let one = [DiskInput {
            path: Path::new("a.raw"),
            container: &r,
            guest: None,
            package: None,
        }];
        let mut o = no_os_allowed();
        o.output = Some(OutputFormat::Vhd);
        let plan = infer(&one, &o).unwrap();
        assert_eq!(plan.disks[0].output_virtual_size, 8 * 1024 * 1024);
        assert_eq!(plan.disks[0].disk_image_size_gib.value, 1);
        assert!(plan.notes.iter().any(|n| n.code == "plan.size_rounded"));
        assert_eq!(plan.disks[0].object_key, "imgport/a-disk1.vhd");
    }

    #[test]
    fn user_values_override_inferred_ones_and_arm64_forces_uefi() {
        let r = report(ImageFormat::Qcow2, GIB);
        let mut g = linux();
        g.architecture = Some("arm64".into());
        g.boot_mode = Some("BIOS".into());
        let one = [DiskInput {
            path: Path::new("a"),
            container: &r,
            guest: Some(&g),
            package: None,
        }];
        let plan = infer(&one, &opts()).unwrap();
        assert_eq!(plan.image.boot_mode.value, BootMode::Uefi);
        assert!(plan.finishing_request("m-1").is_none());
        let mut o = opts();
        o.image.platform = Some(Platform::CentOs);
        o.image.name = Some("golden-1".into());
        let plan = infer(&one, &o).unwrap();
        assert_eq!(plan.image.platform, Sourced::user(Platform::CentOs));
        assert_eq!(plan.image.name.value, "golden-1");
        o.image.name = Some("http://bad".into());
        assert!(matches!(infer(&one, &o), Err(PlanError::Invalid(_))));
    }

    #[test]
    fn a_windows_plan_states_its_license_type() {
        let r = report(ImageFormat::Qcow2, GIB);
        let windows = GuestFacts {
            os_type: Some("windows".into()),
            architecture: Some("x86_64".into()),
            ..Default::default()
        };
        let disks = |g| {
            [DiskInput {
                path: Path::new("w"),
                container: &r,
                guest: Some(g),
                package: None,
            }]
        };
        let plan = infer(&disks(&windows), &opts()).unwrap();
        let license = plan.image.license_type.as_ref().unwrap();
        assert_eq!(license.value, LicenseType::Aliyun);
        assert!(matches!(license.source, Source::Default { .. }));
        assert_eq!(
            plan.import_request().unwrap().license_type,
            Some(LicenseType::Aliyun)
        );
        let mut o = opts();
        o.image.license_type = Some(LicenseType::Byol);
        let plan = infer(&disks(&windows), &o).unwrap();
        assert_eq!(
            plan.image.license_type,
            Some(Sourced::user(LicenseType::Byol))
        );
        // Linux: left to the service, as before.
        let plan = infer(&disks(&linux()), &opts()).unwrap();
        assert_eq!(plan.image.license_type, None);
    }

    #[test]
    fn refused_disks_are_not_planned() {
        let mut r = report(ImageFormat::Qcow2, GIB);
        r.safe = false;
        let one = [DiskInput {
            path: Path::new("bad"),
            container: &r,
            guest: None,
            package: None,
        }];
        assert!(matches!(
            infer(&one, &opts()),
            Err(PlanError::Refused { .. })
        ));
    }

    #[test]
    fn default_names_follow_ecs_rules() {
        assert_eq!(
            default_image_name(Path::new("/x/centos 7.9.qcow2")),
            "centos-7.9"
        );
        assert_eq!(default_image_name(Path::new("/x/7disk.raw")), "img-7disk");
        assert_eq!(
            default_image_name(Path::new("/x/aliyun-base.raw")),
            "img-aliyun-base"
        );
        assert_eq!(default_image_name(Path::new("/x/a.raw")), "a-image");
        assert!(default_image_name(Path::new(&"x".repeat(300))).len() <= 128);
    }
}

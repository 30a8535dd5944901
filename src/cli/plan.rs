//! `imgport plan FILE...` (also `imgport import --dry-run`): inspect, plan, and render what an
//! import would do — JSON, Markdown, or one self-contained HTML page — without any upload or
//! cloud call. The flags that shape a plan live here too and are shared with `import`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::output::{exit, print_json};
use super::values::FormatArg;
use super::vocab;
use imgport_cloud::aliyun::types::{
    Architecture, BootMode, DetectionStrategy, ImdsSupport, LicenseType, NvmeSupport, OsType,
    Platform,
};
use imgport_core::pipeline::prepare::{dry_run_report, prepare};
use imgport_core::pipeline::refused::{render_refused_html, render_refused_markdown};
use imgport_core::pipeline::report::{DryRunReport, render_html, render_markdown};
use imgport_core::plan::{ImageOptions, InternalChoice, OutputFormat, PartSize, PlanOptions};
use imgport_image::OpenOptions;

/// Output formats of disks as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Raw,
    Vhd,
    VhdFixed,
    Qcow2,
}

impl From<OutputArg> for OutputFormat {
    fn from(o: OutputArg) -> Self {
        match o {
            OutputArg::Raw => OutputFormat::Raw,
            OutputArg::Vhd => OutputFormat::Vhd,
            OutputArg::VhdFixed => OutputFormat::VhdFixed,
            OutputArg::Qcow2 => OutputFormat::Qcow2,
        }
    }
}

/// Parses a wire enum value (e.g. `Platform`) from the command line.
fn wire<T>(parse: fn(&str) -> Option<T>, all: &[T], what: &str, s: &str) -> Result<T, String>
where
    T: std::fmt::Display,
{
    parse(s).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(|v| format!("`{v}`")).collect();
        format!("unknown {what} `{s}`; one of {}", names.join(", "))
    })
}

pub(crate) fn platform(s: &str) -> Result<Platform, String> {
    wire(Platform::parse, Platform::ALL, "platform", s)
}
pub(crate) fn os_type(s: &str) -> Result<OsType, String> {
    wire(OsType::parse, OsType::ALL, "OS type", s)
}
pub(crate) fn architecture(s: &str) -> Result<Architecture, String> {
    wire(Architecture::parse, Architecture::ALL, "architecture", s)
}
pub(crate) fn boot_mode(s: &str) -> Result<BootMode, String> {
    wire(BootMode::parse, BootMode::ALL, "boot mode", s)
}
pub(crate) fn license_type(s: &str) -> Result<LicenseType, String> {
    wire(LicenseType::parse, LicenseType::ALL, "license type", s)
}
pub(crate) fn nvme(s: &str) -> Result<NvmeSupport, String> {
    wire(NvmeSupport::parse, NvmeSupport::ALL, "NVMe support", s)
}
pub(crate) fn imds(s: &str) -> Result<ImdsSupport, String> {
    wire(ImdsSupport::parse, ImdsSupport::ALL, "IMDS support", s)
}
pub(crate) fn detection(s: &str) -> Result<DetectionStrategy, String> {
    wire(
        DetectionStrategy::parse,
        DetectionStrategy::ALL,
        "detection strategy",
        s,
    )
}
/// `DISK=GIB` (DISK counting from 1 in the order given), or `GIB` for disk 1.
fn disk_image_size(s: &str) -> Result<(usize, u64), String> {
    let (disk, gib) = s.split_once('=').unwrap_or(("1", s));
    let bad = || format!("`{s}` is not DISK=GIB (DISK counts from 1; GIB is whole GiB)");
    let disk: usize = disk.trim().parse().map_err(|_| bad())?;
    let gib: u64 = gib.trim().parse().map_err(|_| bad())?;
    if disk == 0 || gib == 0 {
        return Err(bad());
    }
    Ok((disk, gib))
}

fn tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("tag `{s}` is not KEY=VALUE"))
}

/// Flags that shape an import plan; every inferred value can be overridden here.
#[derive(Debug, Clone, Args)]
pub struct PlanFlags {
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID", help = vocab::REGION, value_parser = vocab::region)]
    pub region: String,
    #[arg(long, help = vocab::BUCKET, value_parser = vocab::bucket)]
    pub bucket: String,
    /// Prefix of every object key.
    #[arg(long, default_value = "imgport/")]
    pub key_prefix: String,
    /// Upload every disk in this format (default: qcow2 stays qcow2, VHD becomes an
    /// ECS-sized dynamic VHD, raw becomes qcow2).
    #[arg(long = "to", value_parser = super::values::OutputParser::<OutputArg>::new())]
    pub output: Option<OutputArg>,
    /// Which disk (counting from 1, in the order given) is the system disk, when inspection
    /// finds none or several.
    #[arg(long)]
    pub system_disk: Option<usize>,
    /// Import a system disk on which inspection finds no operating system (finding
    /// guest.no_os); without it such a disk is refused (exit 3) unless --platform or
    /// --os-type states its OS.
    #[arg(long)]
    pub allow_no_os: bool,
    /// Import a disk whose guest data starts with another image format's header (finding
    /// nested.*) as it is; without it such a disk is refused (exit 3).
    #[arg(long)]
    pub allow_nested: bool,
    /// The format the files must have; a different detected format is refused.
    #[arg(long, value_enum)]
    pub declared_format: Option<FormatArg>,
    /// ImageName (2–128 chars, starts with a letter); default from the file name.
    #[arg(long)]
    pub name: Option<String>,
    /// Description (2–256 chars).
    #[arg(long)]
    pub description: Option<String>,
    /// OSType override: linux or windows.
    #[arg(long, value_parser = os_type)]
    pub os_type: Option<OsType>,
    /// Platform override, e.g. "CentOS", "Windows Server 2022".
    #[arg(long, value_parser = platform)]
    pub platform: Option<Platform>,
    /// Architecture override: i386, x86_64, arm64.
    #[arg(long, value_parser = architecture)]
    pub architecture: Option<Architecture>,
    /// BootMode override: BIOS, UEFI (UEFI-Preferred is set after the import).
    #[arg(long, value_parser = boot_mode)]
    pub boot_mode: Option<BootMode>,
    /// LicenseType: Auto, Aliyun, BYOL.
    #[arg(long, value_parser = license_type)]
    pub license_type: Option<LicenseType>,
    /// Features.NvmeSupport override: supported or unsupported.
    #[arg(long, value_parser = nvme)]
    pub nvme_support: Option<NvmeSupport>,
    /// Features.ImdsSupport: v1 or v2.
    #[arg(long, value_parser = imds)]
    pub imds_support: Option<ImdsSupport>,
    /// Image family, set by ModifyImageAttribute once the image is Available.
    #[arg(long)]
    pub family: Option<String>,
    /// Resource group of the image.
    #[arg(long)]
    pub resource_group_id: Option<String>,
    /// RAM role ECS uses to read the bucket.
    #[arg(long)]
    pub role_name: Option<String>,
    /// Run ECS's image check (only "Standard" exists).
    #[arg(long, value_parser = detection)]
    pub detection_strategy: Option<DetectionStrategy>,
    /// Tag the image: KEY=VALUE, repeatable.
    #[arg(long = "tag", value_parser = tag)]
    pub tags: Vec<(String, String)>,
    /// DiskImageSize of one disk in GiB, as DISK=GIB (DISK counts from 1 in the order
    /// given; a bare GIB is disk 1), repeatable; at least the disk's virtual size, at most
    /// 2048. Default: the virtual size rounded up to whole GiB.
    #[arg(long = "disk-image-size", value_name = "DISK=GIB", value_parser = disk_image_size)]
    pub disk_image_sizes: Vec<(usize, u64)>,
}

impl PlanFlags {
    /// How the disks are opened: the declared format and whether nested images pass.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            declared: self.declared_format.map(Into::into),
            allow_nested: self.allow_nested,
        }
    }

    /// The library's plan options.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            key_prefix: self.key_prefix.clone(),
            output: self.output.map(Into::into),
            system_disk: self.system_disk.map(|n| n.saturating_sub(1)),
            image: ImageOptions {
                name: self.name.clone(),
                description: self.description.clone(),
                os_type: self.os_type,
                platform: self.platform,
                architecture: self.architecture,
                boot_mode: self.boot_mode,
                license_type: self.license_type,
                nvme_support: self.nvme_support,
                imds_support: self.imds_support,
                family: self.family.clone(),
                resource_group_id: self.resource_group_id.clone(),
                role_name: self.role_name.clone(),
                detection_strategy: self.detection_strategy,
                tags: self.tags.clone(),
            },
            allow_no_os: self.allow_no_os,
            disk_image_size_gib: self
                .disk_image_sizes
                .iter()
                .map(|&(disk, gib)| (disk - 1, gib))
                .collect(),
            // Set by `RunFlags::apply`.
            ..PlanOptions::default()
        }
    }
}

/// Flags that decide what an import does beyond its image (dedupe, replace, E-HPC, part
/// size): part of the plan, so `plan` takes them as `import`, `batch` and `packer` do.
#[derive(Debug, Clone, Default, Args)]
pub struct RunFlags {
    /// Import even when an image with the same disks' content (tag imgport:content-digest)
    /// exists already; skips the content-digest pass.
    #[arg(long)]
    pub no_dedupe: bool,
    /// Once the new image is Available, deprecate the other images of its --family.
    #[arg(long)]
    pub replace: bool,
    /// Register the imported image with E-HPC Instant under this name (AddImage).
    #[arg(long)]
    pub ehpc_name: Option<String>,
    /// Once the image is Available and finished, delete the uploaded objects (kept by
    /// default: a re-import of the same disks then uploads nothing).
    #[arg(long)]
    pub delete_objects: bool,
    /// Create a missing bucket in the import's region (OSS CreateBucket) before the upload;
    /// without it a missing bucket is refused before any byte is sent.
    #[arg(long)]
    pub create_bucket: bool,
    #[arg(long, help = vocab::PART_SIZE, value_parser = super::values::part_size)]
    pub part_size: Option<PartSize>,
    /// Before the upload, create the RAM role ECS reads the bucket as (--role-name, default
    /// AliyunECSImageImportDefaultRole) trusting ecs.aliyuncs.com, or attach its policy
    /// AliyunECSImageImportRolePolicy, when the check finds it missing.
    #[arg(long)]
    pub create_role: bool,
    #[arg(long, help = vocab::CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,
    /// Upload through OSS's internal (VPC) endpoint of the bucket's region. Default: chosen
    /// by asking the ECS instance metadata service (once, within 300 ms) whether this
    /// machine is an ECS instance in the bucket's region.
    #[arg(long)]
    pub internal: bool,
    /// Upload through OSS's public endpoint, without asking the instance metadata service.
    #[arg(long, conflicts_with = "internal")]
    pub no_internal: bool,
    #[arg(long, help = vocab::PART_MEMORY, value_parser = super::values::part_memory)]
    pub part_memory: Option<u64>,
}

impl RunFlags {
    /// Sets these decisions in `opts`.
    pub fn apply(&self, opts: &mut PlanOptions) {
        opts.no_dedupe = self.no_dedupe;
        opts.replace = self.replace;
        opts.ehpc_name = self.ehpc_name.clone();
        opts.delete_objects = self.delete_objects;
        opts.create_bucket = self.create_bucket;
        opts.part_size = self.part_size;
        opts.create_role = self.create_role;
        opts.parts_in_flight = self.concurrency.map(usize::from);
        opts.part_memory = self.part_memory;
    }

    /// What decides the OSS endpoint's kind for these flags ([`internal_choice`]).
    pub fn internal_choice(&self, given: Option<&str>) -> InternalChoice {
        internal_choice(given, self.internal, self.no_internal)
    }
}

/// What decides the OSS endpoint's kind: `given` (an explicit endpoint, named), else
/// `forced` (`--internal`) / `refused` (`--no-internal`), else the instance metadata
/// service's answer, asked here once within 300 ms unless
/// `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`. Call it outside an async runtime.
pub fn internal_choice(given: Option<&str>, forced: bool, refused: bool) -> InternalChoice {
    if let Some(what) = given {
        return InternalChoice::Given {
            what: what.to_string(),
        };
    }
    if forced {
        return InternalChoice::Forced;
    }
    if refused {
        return InternalChoice::Refused;
    }
    if std::env::var("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() == Ok("true") {
        return InternalChoice::NotOnEcs {
            why: "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true".into(),
        };
    }
    let base = imgport_credentials::metadata_endpoint();
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(imgport_credentials::instance_region(
                &base,
                imgport_credentials::PROBE_TIMEOUT,
            ))
            .map_err(|e| {
                let chain = super::output::error_chain(&e);
                let step = chain
                    .strip_prefix("ECS instance metadata: ")
                    .unwrap_or(&chain);
                if step.starts_with(&base) {
                    step.to_string()
                } else {
                    format!("{base}: {step}")
                }
            })
        });
    match asked {
        Ok(region) => InternalChoice::Instance { region },
        Err(why) => InternalChoice::NotOnEcs { why },
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Disk image files: the system disk and data disks, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub run: RunFlags,
    #[arg(long, help = vocab::JSON)]
    pub json: bool,
    #[arg(long, help = vocab::HTML)]
    pub html: Option<PathBuf>,
    #[arg(long, help = vocab::MARKDOWN)]
    pub markdown: Option<PathBuf>,
    /// The endpoint `import --dry-run` was given (`--oss-endpoint`, the sandbox): no probe.
    #[arg(skip)]
    pub endpoint_given: Option<String>,
}

/// Inspects, plans and renders; exit 0, 3 when a disk is refused, 2 when the plan needs the
/// user (e.g. two bootable disks), 1 on I/O errors.
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let internal = args.run.internal_choice(args.endpoint_given.as_deref());
    let report = match reports(
        &args.files,
        &args.plan,
        &args.run,
        &internal,
        args.html.as_deref(),
        args.markdown.as_deref(),
        args.json,
    )? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print!("{}", render_markdown(&report));
    }
    Ok(ExitCode::from(exit::OK))
}

/// Inspects and plans `files`, writes the `html` and `markdown` reports asked for, and returns
/// the report; or the exit code after printing why inspection or planning stopped. A refused
/// image still gets its reports: why it was refused and its findings, also on stdout as JSON
/// when `refused_json`.
pub fn reports(
    files: &[PathBuf],
    plan: &PlanFlags,
    run: &RunFlags,
    internal: &InternalChoice,
    html: Option<&std::path::Path>,
    markdown: Option<&std::path::Path>,
    refused_json: bool,
) -> anyhow::Result<Result<DryRunReport, ExitCode>> {
    let mut opts = plan.options();
    run.apply(&mut opts);
    opts.internal = internal.clone();
    let prepared = match prepare(files, &plan.open_options(), &opts) {
        Ok(p) => p,
        Err(e) => {
            if let Some(refused) = e.refused_report() {
                if let Some(path) = html {
                    write_atomic(path, render_refused_html(&refused).as_bytes())?;
                }
                if let Some(path) = markdown {
                    write_atomic(path, render_refused_markdown(&refused).as_bytes())?;
                }
                if refused_json {
                    print_json(&refused)?;
                }
            }
            return Ok(Err(fail(&e, e.exit_code())));
        }
    };
    let report = dry_run_report(&prepared);
    if let Some(path) = html {
        write_atomic(path, render_html(&report).as_bytes())?;
    }
    if let Some(path) = markdown {
        write_atomic(path, render_markdown(&report).as_bytes())?;
    }
    Ok(Ok(report))
}

fn fail(e: &dyn std::error::Error, code: u8) -> ExitCode {
    eprintln!("error: {}", super::output::error_chain(e));
    ExitCode::from(code)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a report.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

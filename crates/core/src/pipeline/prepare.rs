//! The stages before anything leaves the machine: inspect every disk (container and guest),
//! plan the import, and render what would happen. `imgport plan` stops here; `imgport import`
//! goes on with the same values.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use crate::pipeline::refused::{RefusedDisk, RefusedReport};
use crate::pipeline::report::{
    DiskView, DryRunReport, MAP_BUCKETS, RenderedRequest, allocation_map,
};
use crate::plan::{self, DiskInput, ImportPlan, PlanError, PlanOptions, PlannedDisk};
use imgport_guest::facts::GuestFacts;
use imgport_image::{self as image, Finding, ImageError, OpenOptions, Opened, Severity};
use imgport_transfer::layout::{Layout, LayoutError, OutputFormat};

/// Why inspection or planning stopped.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The image error names the file already (but for a read past the disk's end).
    #[error("{}", inspecting(path, source))]
    Inspect {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    /// Planning stopped; `inspected` holds every disk inspected before it, for the report.
    #[error("planning the import")]
    Plan {
        #[source]
        source: Box<PlanError>,
        inspected: Vec<RefusedDisk>,
    },
}

impl From<PlanError> for PrepareError {
    fn from(source: PlanError) -> Self {
        PrepareError::Plan {
            source: Box::new(source),
            inspected: Vec::new(),
        }
    }
}

/// "inspecting", with the path only when `source` does not name it, so a message names the
/// file once.
fn inspecting(path: &std::path::Path, source: &ImageError) -> String {
    match source {
        ImageError::OutOfRange { .. } => format!("inspecting {}", path.display()),
        _ => "inspecting".to_string(),
    }
}

impl PrepareError {
    /// The report of a refusal (exit 3) or of a plan the user must correct (exit 2): why, and
    /// the findings of the disk inspection refused or of every disk inspected before planning
    /// stopped; `None` for I/O errors, which leave nothing to report.
    pub fn refused_report(&self) -> Option<RefusedReport> {
        let disks = match self {
            PrepareError::Inspect {
                source: ImageError::Refused { report },
                ..
            } => vec![RefusedDisk {
                container: (**report).clone(),
                guest: None,
            }],
            PrepareError::Plan { inspected, .. } => inspected.clone(),
            PrepareError::Inspect { .. } => return None,
        };
        Some(RefusedReport {
            reason: imgport_base::report::error_chain(self),
            disks,
        })
    }

    /// Exit code: 3 when an image was refused by inspection (unsafe, or a system disk with
    /// no operating system), 2 for a plan the user must correct (e.g. two bootable disks, a
    /// malformed name), 1 for I/O errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            PrepareError::Plan { source, .. } if matches!(**source, PlanError::NoOs { .. }) => 3,
            PrepareError::Inspect {
                source: ImageError::Refused { .. },
                ..
            } => 3,
            PrepareError::Inspect { .. } => 1,
            PrepareError::Plan { .. } => 2,
        }
    }
}

/// One inspected input disk: the opened image, its container report and what is inside.
pub struct InspectedDisk {
    pub path: PathBuf,
    pub opened: Opened,
    pub guest: Option<GuestFacts>,
}

/// Opens and inspects every disk with `open`; the first refused one stops the import.
pub fn inspect_disks(
    paths: &[PathBuf],
    open: &OpenOptions,
) -> Result<Vec<InspectedDisk>, PrepareError> {
    let mut disks = Vec::new();
    for path in paths {
        // An OVA/OVF package gives every disk of its descriptor, in its order.
        let opened = image::open_all(path, open).map_err(|source| PrepareError::Inspect {
            path: path.clone(),
            source,
        })?;
        for opened in opened {
            let guest = Some(imgport_guest::inspect(Arc::new(image::ImageSource(
                opened.image.clone(),
            ))));
            disks.push(InspectedDisk {
                path: opened.report.path.clone(),
                opened,
                guest,
            });
        }
    }
    Ok(disks)
}

/// One disk of a prepared import: what the plan says of it, the opened image it comes from,
/// and the layout of its object that the plan was sized by (the upload streams exactly it).
pub struct PreparedDisk {
    pub planned: PlannedDisk,
    pub inspected: InspectedDisk,
    pub layout: Layout,
}

/// An import ready to run: its plan, and every planned disk in device order.
pub struct Prepared {
    pub plan: ImportPlan,
    pub disks: Vec<PreparedDisk>,
}

/// Inspects `paths` (opened with `open`) and plans their import under `opts`: everything a
/// dry run shows and a real run executes.
pub fn prepare(
    paths: &[PathBuf],
    open: &OpenOptions,
    opts: &PlanOptions,
) -> Result<Prepared, PrepareError> {
    let disks = inspect_disks(paths, open)?;
    let seen: Vec<RefusedDisk> = disks
        .iter()
        .map(|d| RefusedDisk {
            container: d.opened.report.clone(),
            guest: d.guest.clone(),
        })
        .collect();
    plan_import(disks, opts).map_err(|e| match e {
        PrepareError::Plan { source, .. } => PrepareError::Plan {
            source,
            inspected: seen,
        },
        other => other,
    })
}

/// The plan for `disks` (in the order given) under `opts`, each disk beside its planned part.
pub fn plan_import(
    disks: Vec<InspectedDisk>,
    opts: &PlanOptions,
) -> Result<Prepared, PrepareError> {
    let layouts: RefCell<Vec<Option<Layout>>> = RefCell::new(disks.iter().map(|_| None).collect());
    let size_of = |i: usize, format: OutputFormat| -> Result<u64, LayoutError> {
        let layout = Layout::plan(disks[i].opened.image.as_ref(), format)?;
        let size = layout.size;
        if let Some(slot) = layouts.borrow_mut().get_mut(i) {
            *slot = Some(layout);
        }
        Ok(size)
    };
    let inputs: Vec<DiskInput<'_>> = disks
        .iter()
        .map(|d| DiskInput {
            path: &d.path,
            container: &d.opened.report,
            guest: d.guest.as_ref(),
            package: d.opened.package.as_ref(),
        })
        .collect();
    let plan = plan::infer(&inputs, opts, &size_of)?;
    drop(inputs);
    // Device order: the plan's position of each input disk.
    let mut rank = vec![usize::MAX; disks.len()];
    for (position, planned) in plan.disks.iter().enumerate() {
        if let Some(r) = rank.get_mut(planned.input) {
            *r = position;
        }
    }
    let mut inputs: Vec<(usize, InspectedDisk, Option<Layout>)> = disks
        .into_iter()
        .zip(layouts.into_inner())
        .enumerate()
        .map(|(i, (d, l))| (rank[i], d, l))
        .collect();
    inputs.sort_by_key(|(rank, ..)| *rank);
    let records = plan
        .disks
        .iter()
        .zip(inputs)
        .map(|(planned, (_, inspected, layout))| {
            let layout = match layout {
                Some(l) => l,
                None => Layout::plan(inspected.opened.image.as_ref(), planned.output.value)
                    .map_err(|source| PlanError::Layout {
                        path: inspected.path.clone(),
                        format: planned.output.value.name(),
                        source,
                    })?,
            };
            Ok(PreparedDisk {
                planned: planned.clone(),
                inspected,
                layout,
            })
        })
        .collect::<Result<Vec<_>, PrepareError>>()?;
    Ok(Prepared {
        plan,
        disks: records,
    })
}

/// What a dry run shows: the plan, the disks behind it, and the requests it would send.
pub fn dry_run_report(prepared: &Prepared) -> DryRunReport {
    let plan = &prepared.plan;
    // The disks as given, in that order.
    let mut given: Vec<&PreparedDisk> = prepared.disks.iter().collect();
    given.sort_by_key(|d| d.planned.input);
    let views = given
        .into_iter()
        .map(|d| {
            let planned = &d.planned;
            let d = &d.inspected;
            let size = d.opened.image.virtual_size();
            let allocation = d
                .opened
                .image
                .extents()
                .map(|e| allocation_map(&e, size, MAP_BUCKETS))
                .unwrap_or_default();
            let mut container = d.opened.report.clone();
            for f in &mut container.findings {
                settled_by_plan(f, planned);
            }
            DiskView {
                container,
                guest: d.guest.clone(),
                allocation,
            }
        })
        .collect();
    DryRunReport {
        plan: plan.clone(),
        disks: views,
        requests: planned_requests(plan),
    }
}

/// Rewords a finding whose advice the plan already follows, so the report does not ask for
/// what it does: inspection alone warns that ECS refuses a dynamic VHD whose block table does
/// not match its size and advises converting it; a plan never uploads the file as is but
/// the output imgport writes, sized as its format and ECS ask.
fn settled_by_plan(f: &mut Finding, planned: &PlannedDisk) {
    if f.code != "vhd.ecs_incorrect_size" {
        return;
    }
    let at = f
        .offset
        .map(|o| format!(" at offset {o}"))
        .unwrap_or_default();
    f.severity = Severity::Info;
    f.message = format!(
        "the block table{at} does not cover exactly the disk's {} bytes, which ECS refuses \
         in a VHD uploaded as is (InvalidVHDImage.IncorrectSize); this plan converts it: it \
         uploads a {} written by imgport, {} bytes, which ECS accepts",
        planned.source_virtual_size,
        planned.output.value.name(),
        planned.output_virtual_size
    );
}

/// Every request the plan makes, in order; a value only the run can know (the image id, the
/// content digest) is shown as `<...>`.
fn planned_requests(plan: &ImportPlan) -> Vec<RenderedRequest> {
    use imgport_cloud::aliyun::ecs::Action;
    let rendered = |service: &str, action: &str, params: Vec<(String, String)>| RenderedRequest {
        service: service.into(),
        action: action.into(),
        params,
    };
    let pairs = |p: &[(&str, String)]| -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    let mut requests = Vec::new();
    let role = &plan.import_role.role_name;
    for action in ["GetRole", "ListPoliciesForRole"] {
        requests.push(rendered(
            "ram",
            action,
            pairs(&[("RoleName", role.clone())]),
        ));
    }
    if plan.import_role.create {
        use imgport_cloud::aliyun::ram::{IMPORT_POLICY, import_trust_policy};
        requests.push(rendered(
            "ram",
            "CreateRole",
            pairs(&[
                ("RoleName", format!("{role} <when missing>")),
                ("AssumeRolePolicyDocument", import_trust_policy()),
            ]),
        ));
        requests.push(rendered(
            "ram",
            "AttachPolicyToRole",
            pairs(&[
                ("PolicyType", "System".into()),
                ("PolicyName", format!("{IMPORT_POLICY} <when missing>")),
                ("RoleName", role.clone()),
            ]),
        ));
    }
    if plan.dedupe {
        requests.push(rendered(
            "ecs",
            "DescribeImages",
            pairs(&[
                ("RegionId", plan.region.clone()),
                ("Status", "Available".into()),
                ("Tag.1.Key", plan::CONTENT_TAG.into()),
                ("Tag.1.Value", "<content digest of the disks>".into()),
            ]),
        ));
    }
    for bucket in super::bucket::buckets(plan) {
        requests.push(rendered(
            "oss",
            "GetBucketLocation",
            pairs(&[("Bucket", bucket.clone()), ("Expect", plan.region.clone())]),
        ));
        if plan.create_bucket {
            requests.push(rendered(
                "oss",
                "CreateBucket",
                pairs(&[
                    ("Bucket", bucket),
                    ("LocationConstraint", format!("oss-{}", plan.region)),
                    ("When", "the bucket does not exist".into()),
                ]),
            ));
        }
    }
    for d in &plan.disks {
        let parts = d.parts.value;
        requests.push(rendered(
            "oss",
            "MultipartUpload",
            pairs(&[
                ("Bucket", d.bucket.clone()),
                ("Key", d.object_key.clone()),
                ("Format", d.output.value.name().into()),
                ("VirtualSize", d.output_virtual_size.to_string()),
                ("Size", d.object_size.to_string()),
                ("PartSize", parts.part_size.get().to_string()),
                ("Parts", parts.count.to_string()),
                ("PartsInFlightMax", d.parts_in_flight.value.to_string()),
                ("PartMemory", plan.part_memory.value.to_string()),
                ("BufferMemoryMax", d.buffer_memory.to_string()),
            ]),
        ));
    }
    for d in &plan.disks {
        requests.push(rendered(
            "oss",
            "HeadObject",
            pairs(&[
                ("Bucket", d.bucket.clone()),
                ("Key", d.object_key.clone()),
                ("Expect", "a storage class that is not archived".into()),
            ]),
        ));
    }
    if let Ok(req) = plan.import_request() {
        let mut params = req.params().into_pairs();
        params.push((
            "ClientToken".into(),
            "<digest of the plan and the uploaded bytes>".into(),
        ));
        if plan.dedupe {
            let n = req.tags.len() + 1;
            params.push((format!("Tag.{n}.Key"), plan::CONTENT_TAG.into()));
            params.push((
                format!("Tag.{n}.Value"),
                "<content digest of the disks>".into(),
            ));
        }
        requests.push(rendered("ecs", "ImportImage", params));
    }
    if let Some(Ok(req)) = plan.finishing_request("<image id>") {
        requests.push(rendered(
            "ecs",
            "ModifyImageAttribute",
            req.params().into_pairs(),
        ));
    }
    if let (true, Some(family)) = (plan.replace, &plan.finishing.family) {
        requests.push(rendered(
            "ecs",
            "ModifyImageAttribute",
            pairs(&[
                ("RegionId", plan.region.clone()),
                (
                    "ImageId",
                    format!("<each other Available image of the family {family}>"),
                ),
                ("Status", "Deprecated".into()),
            ]),
        ));
    }
    if let Some(e) = &plan.ehpc {
        let req = imgport_cloud::aliyun::ehpc::AddImageRequest::vm(e.name.clone(), "<image id>");
        requests.push(rendered("ehpc", "AddImage", req.params().into_pairs()));
    }
    if plan.delete_objects {
        for d in &plan.disks {
            requests.push(rendered(
                "oss",
                "DeleteObject",
                pairs(&[("Bucket", d.bucket.clone()), ("Key", d.object_key.clone())]),
            ));
        }
    }
    requests
}

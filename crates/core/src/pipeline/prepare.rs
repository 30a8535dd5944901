//! The stages before anything leaves the machine: inspect every disk (container and guest),
//! plan the import, and render what would happen. `imgport plan` stops here; `imgport import`
//! goes on with the same values.

use std::path::PathBuf;
use std::sync::Arc;

use crate::pipeline::report::{
    DiskView, DryRunReport, MAP_BUCKETS, RenderedRequest, allocation_map,
};
use crate::plan::{self, DiskInput, ImportPlan, PlanError, PlanOptions};
use imgport_guest::facts::GuestFacts;
use imgport_image::{self as image, ImageError, OpenOptions, Opened};

/// Why inspection or planning stopped.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("inspecting {path}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("planning the import")]
    Plan(#[from] PlanError),
}

impl PrepareError {
    /// Exit code: 3 when an image was refused by inspection (unsafe, or a system disk with
    /// no operating system), 2 for a plan the user must correct (e.g. two bootable disks, a
    /// malformed name), 1 for I/O errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            PrepareError::Plan(crate::plan::PlanError::NoOs { .. }) => 3,
            PrepareError::Inspect {
                source: ImageError::Refused { .. },
                ..
            } => 3,
            PrepareError::Inspect { .. } => 1,
            PrepareError::Plan(_) => 2,
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
    paths
        .iter()
        .map(|path| {
            let opened = image::open(path, open).map_err(|source| PrepareError::Inspect {
                path: path.clone(),
                source,
            })?;
            let guest = Some(imgport_guest::inspect(Arc::new(image::ImageSource(
                opened.image.clone(),
            ))));
            Ok(InspectedDisk {
                path: path.clone(),
                opened,
                guest,
            })
        })
        .collect()
}

/// The plan for `disks` (in the order given) under `opts`.
pub fn plan_import(
    disks: &[InspectedDisk],
    opts: &PlanOptions,
) -> Result<ImportPlan, PrepareError> {
    let inputs: Vec<DiskInput<'_>> = disks
        .iter()
        .map(|d| DiskInput {
            path: &d.path,
            container: &d.opened.report,
            guest: d.guest.as_ref(),
        })
        .collect();
    Ok(plan::infer(&inputs, opts)?)
}

/// What a dry run shows: the plan, the disks behind it, and the requests it would send.
pub fn dry_run_report(disks: &[InspectedDisk], plan: &ImportPlan) -> DryRunReport {
    let views = disks
        .iter()
        .map(|d| {
            let size = d.opened.image.virtual_size();
            let allocation = d
                .opened
                .image
                .extents()
                .map(|e| allocation_map(&e, size, MAP_BUCKETS))
                .unwrap_or_default();
            DiskView {
                container: d.opened.report.clone(),
                guest: d.guest.clone(),
                allocation,
            }
        })
        .collect();
    let mut requests = Vec::new();
    for d in &plan.disks {
        requests.push(RenderedRequest {
            service: "oss".into(),
            action: "MultipartUpload".into(),
            params: vec![
                ("Bucket".into(), d.bucket.clone()),
                ("Key".into(), d.object_key.clone()),
                ("Format".into(), d.output.value.name().into()),
                ("VirtualSize".into(), d.output_virtual_size.to_string()),
            ],
        });
    }
    if let Ok(req) = plan.import_request() {
        use imgport_cloud::aliyun::ecs::Action;
        requests.push(RenderedRequest {
            service: "ecs".into(),
            action: "ImportImage".into(),
            params: req.params().into_pairs(),
        });
    }
    if let Some(Ok(req)) = plan.finishing_request("<image id>") {
        use imgport_cloud::aliyun::ecs::Action;
        requests.push(RenderedRequest {
            service: "ecs".into(),
            action: "ModifyImageAttribute".into(),
            params: req.params().into_pairs(),
        });
    }
    DryRunReport {
        plan: plan.clone(),
        disks: views,
        requests,
    }
}

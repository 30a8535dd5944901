//! One import end to end, in the order of the data flow: inspect and plan (`prepare`), stream
//! every disk converted and hashed into its object (`store`) while the content digest is
//! computed and looked up, ImportImage, wait until `Available`, then finish the image
//! (ModifyImageAttribute). The stages hand plain values on; this file is the only one that
//! knows their order.
//!
//! Re-runs are safe: uploads resume from their journal (and are skipped when the object is
//! already there with our digests), and the ImportImage ClientToken is derived from the plan
//! and the uploaded bytes, so a retried or repeated call returns the same image.
//!
//! Kept whole: one import in the order it runs (inspect, plan, upload, import, wait, finish), each
//! step its own function.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::events::{self, Logged};
use super::prepare::{PrepareError, Prepared, PreparedDisk};
use crate::plan::{ImportPlan, PlanOptions};
use imgport_base::report::{Reporter, Silent, Stage};
use imgport_cloud::aliyun::client::EcsClient;
use imgport_cloud::aliyun::ehpc::EhpcClient;
use imgport_cloud::aliyun::poll::{WaitError, WaitOptions};
use imgport_cloud::aliyun::ram::{RamClient, RoleStatus, check_import_role};
use imgport_cloud::aliyun::rpc::RpcError;
use imgport_cloud::aliyun::validate::Invalid;
use imgport_image::DiskImage;
use imgport_image::OpenOptions;
use imgport_store::{
    CompleteGate, GateKeeper, ObjectStore, ObjectTarget, StoreError, UploadOptions, UploadOutcome,
};
use imgport_transfer::stream::{LayoutStream, StreamOptions};
use imgport_transfer::{PartSource, TransferError};

/// How one import runs: what the plan is made from (`open`, `plan`), and the knobs that
/// decide nothing about the result (buffers, concurrency, polling, cancellation). Every
/// decision is made once into the [`ImportPlan`]; [`execute`] reads only the plan for them.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// How every disk is opened: the format the files must have (`--declared-format`), and
    /// whether a nested image is imported as-is (`--allow-nested`).
    pub open: OpenOptions,
    pub plan: PlanOptions,
    /// Stream options; its `part_size` and `buffers` are replaced by the plan's part size
    /// and parts in flight, its `cancel` by [`ImportSettings::cancel`], and its parts are
    /// always signed ([`StreamOptions::upload`]).
    pub stream: StreamOptions,
    /// Retries, journal directory; `concurrency` is the plan's `parts_in_flight_max`,
    /// `source_id` and `cancel` are set per disk.
    pub upload: UploadOptions,
    pub wait: WaitOptions,
    /// Set (e.g. on Ctrl-C) to stop: uploads stop after the parts in flight and stay
    /// resumable; a running import task is cancelled when the service allows it.
    pub cancel: Option<Arc<AtomicBool>>,
}

pub use crate::plan::CONTENT_TAG;

/// One uploaded disk of an import.
#[derive(Debug, Clone, Serialize)]
pub struct UploadedDisk {
    /// N of `DiskDeviceMapping.N`.
    pub device_index: usize,
    pub source: PathBuf,
    /// Format of the object (`raw`, `vhd`, `vhd-fixed`, `qcow2`).
    pub format: &'static str,
    #[serde(flatten)]
    pub upload: UploadOutcome,
}

/// Wall time of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageTiming {
    pub stage: String,
    pub seconds: f64,
}

/// What an import did: the JSON result of `imgport import --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ImportOutcome {
    pub image_id: String,
    pub status: String,
    pub region: String,
    pub image_name: String,
    pub task_id: String,
    pub client_token: String,
    pub disks: Vec<UploadedDisk>,
    /// ModifyImageAttribute was sent after the image became `Available`.
    pub finished: bool,
    /// The disks' content digest (the [`CONTENT_TAG`] value); empty with `no_dedupe`.
    pub content_digest: String,
    /// An image with this content existed already: nothing was uploaded or imported.
    pub already_imported: bool,
    /// Images of the family deprecated by `replace`.
    pub deprecated: Vec<String>,
    /// The name the image was registered under in E-HPC (`ehpc_name`).
    pub ehpc_image: Option<String>,
    /// What the check of the import role found (`unknown` when it could not be verified).
    pub import_role: RoleStatus,
    /// The plan's `delete_objects` was carried out: every uploaded object is gone. `false`
    /// when the plan keeps them, or a deletion failed (a warning names the object).
    pub objects_deleted: bool,
    pub timings: Vec<StageTiming>,
    /// The plan this import executed: equal to what `imgport plan` shows for the same inputs.
    pub plan: ImportPlan,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A disk of an OVA/OVF package whose bytes do not have its manifest digest: found
    /// after its upload, before ImportImage, which is then never sent.
    #[error("checking the package manifest; ImportImage was not sent")]
    Manifest(#[source] imgport_image::ImageError),
    #[error("{path}: streaming the disk")]
    Stream {
        path: PathBuf,
        #[source]
        source: TransferError,
    },
    #[error("uploading {target}")]
    Upload {
        target: ObjectTarget,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{}: {} ({})", .0.field, .0.rule, .0.code)]
    Invalid(Invalid),
    #[error("ImportImage{}", role_hint(.0))]
    Import(#[source] RpcError),
    /// The import role is known to be unusable; nothing was uploaded.
    #[error("{}", .0.message())]
    Role(RoleStatus),
    #[error("setting up the RAM role {role} (--create-role)")]
    RoleSetup {
        role: String,
        #[source]
        source: RpcError,
    },
    #[error("waiting for the image")]
    Wait(#[from] WaitError),
    #[error("looking for an image with the same content")]
    Lookup(#[source] RpcError),
    #[error("computing the content digest of {path}")]
    Digest {
        path: PathBuf,
        #[source]
        source: TransferError,
    },
    #[error("deprecating image {image_id} of the family")]
    Deprecate {
        image_id: String,
        #[source]
        source: RpcError,
    },
    #[error("registering image {image_id} with E-HPC")]
    Ehpc {
        image_id: String,
        #[source]
        source: RpcError,
    },
    #[error("E-HPC registration needs an E-HPC client")]
    NoEhpcClient,
    #[error("finishing image {image_id} (ModifyImageAttribute)")]
    Finish {
        image_id: String,
        #[source]
        source: RpcError,
    },
    #[error(transparent)]
    Bucket(#[from] super::bucket::BucketError),
    #[error("interrupted")]
    Interrupted,
    #[error(
        "{path}: the stream is {actual} bytes in parts of {actual_part}, the plan said {planned} in parts of {planned_part}"
    )]
    Drift {
        path: PathBuf,
        planned: u64,
        actual: u64,
        planned_part: u64,
        actual_part: u64,
    },
}

impl ImportError {
    /// Exit code per README "Exit codes": 3 refused, 2 a plan to correct, 4 cloud or storage
    /// service, 5 CreateFailed, 130 interrupted, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Prepare(e) => e.exit_code(),
            ImportError::Invalid(_) => 2,
            ImportError::Bucket(e) => e.exit_code(),
            ImportError::Interrupted
            | ImportError::Stream {
                source: TransferError::Interrupted,
                ..
            } => 130,
            ImportError::Upload { source, .. } => source.exit_code(),
            ImportError::Import(_)
            | ImportError::Role(_)
            | ImportError::RoleSetup { .. }
            | ImportError::Finish { .. }
            | ImportError::Lookup(_)
            | ImportError::Ehpc { .. }
            | ImportError::Deprecate { .. } => 4,
            ImportError::NoEhpcClient => 2,
            ImportError::Digest {
                source: TransferError::Interrupted,
                ..
            } => 130,
            ImportError::Digest { .. } => 1,
            ImportError::Wait(e) => e.exit_code(),
            ImportError::Stream { .. } | ImportError::Drift { .. } | ImportError::Manifest(_) => 1,
        }
    }
}

/// Where the bytes and the calls go.
pub struct Targets<'a, S: ObjectStore> {
    pub store: &'a S,
    pub ecs: &'a EcsClient,
    /// Needed only when the plan registers the image with E-HPC.
    pub ehpc: Option<&'a EhpcClient>,
}

/// Inspects and plans `paths`; the first half of [`run`], also what a dry run shows.
pub fn prepare(paths: &[PathBuf], settings: &ImportSettings) -> Result<Prepared, ImportError> {
    Ok(super::prepare::prepare(
        paths,
        &settings.open,
        &settings.plan,
    )?)
}

/// Runs the whole import of `paths`: [`prepare`], then [`execute`].
pub async fn run<S: ObjectStore>(
    paths: &[PathBuf],
    settings: &ImportSettings,
    targets: Targets<'_, S>,
    reporter: &dyn Reporter,
) -> Result<ImportOutcome, ImportError> {
    let started = Instant::now();
    let prepared = prepare(paths, settings)?;
    events::planned(&prepared);
    let inspect = timing("inspect and plan", started);
    let mut outcome = execute(prepared, settings, targets, reporter).await?;
    outcome.timings.insert(0, inspect);
    if let Some(total) = outcome.timings.iter_mut().find(|t| t.stage == "total") {
        total.seconds = started.elapsed().as_secs_f64();
    }
    Ok(outcome)
}

/// Executes a prepared import: every decision (formats, objects and their parts, the most
/// parts in flight, dedupe, family, replace, E-HPC registration) comes from `prepared.plan`;
/// `settings` gives only retries, polling and cancellation.
pub async fn execute<S: ObjectStore>(
    prepared: Prepared,
    settings: &ImportSettings,
    targets: Targets<'_, S>,
    reporter: &dyn Reporter,
) -> Result<ImportOutcome, ImportError> {
    let mut timings = Vec::new();
    let run_started = Instant::now();
    let Prepared { plan, disks } = prepared;
    // The plan checked every request (infer); only the image id is added later.
    let request = plan.import_request().map_err(ImportError::Invalid)?;
    if plan.ehpc.is_some() && targets.ehpc.is_none() {
        return Err(ImportError::NoEhpcClient);
    }
    let import_role = check_role(&plan, targets.ecs).await?;
    // Before the first byte leaves: every bucket exists in the import's region.
    let started = Instant::now();
    super::bucket::check_buckets(targets.store, &plan).await?;
    timings.push(timing("bucket checks", started));

    // The parts go up while the content digest is computed and looked up; an image with the
    // same content found meanwhile withdraws the uploads before their Complete.
    let stop = Arc::new(AtomicBool::new(false));
    let (keeper, gate) = match plan.dedupe {
        false => (None, None),
        true => {
            let (keeper, gate) = imgport_store::complete_gate();
            (Some(keeper), Some(gate))
        }
    };
    let lookup = find_imported(&disks, targets.ecs, keeper, &stop, reporter);
    let in_flight_max = plan.parts_in_flight_max.value;
    let uploads = upload_disks(
        &disks,
        in_flight_max,
        settings,
        targets.store,
        gate,
        &stop,
        reporter,
    );
    let (uploads, lookup) = tokio::select! {
        both = async { tokio::join!(uploads, lookup) } => both,
        never = mirror_cancel(settings.cancel.clone(), stop.clone()) => match never {},
    };
    if let Ok(Lookup {
        digest,
        found: Some(image),
        timings: lookup_timings,
    }) = lookup
    {
        timings.extend(lookup_timings);
        // Content read from a package is that content only if its manifest agrees.
        for d in &disks {
            d.inspected
                .opened
                .file
                .verify_digest()
                .map_err(ImportError::Manifest)?;
        }
        tracing::info!(
            "image {} ({}) has this content already: nothing is imported",
            image.image_id,
            image.status
        );
        let ehpc_image = register_ehpc(&plan, &targets, &image.image_id).await?;
        timings.push(timing("total", run_started));
        return Ok(ImportOutcome {
            image_id: image.image_id,
            status: image.status,
            region: plan.region.clone(),
            image_name: image.image_name,
            task_id: String::new(),
            client_token: String::new(),
            disks: Vec::new(),
            finished: false,
            content_digest: digest,
            already_imported: true,
            deprecated: Vec::new(),
            ehpc_image,
            import_role,
            objects_deleted: false,
            timings,
            plan,
        });
    }
    // A failed look-up stopped the uploads: its error is the one to report.
    if let (Err(u), Err(_)) = (&uploads, &lookup)
        && u.exit_code() == 130
    {
        return Err(lookup.err().expect("matched an error"));
    }
    let (uploaded, upload_timings) = uploads?;
    let Lookup {
        digest: content_digest,
        timings: lookup_timings,
        ..
    } = lookup?;
    timings.extend(lookup_timings);
    timings.extend(upload_timings);
    check_cancel(settings)?;
    reporter.transfers_done();

    // An archived object is refused here rather than by ImportImage.
    let objects: Vec<ObjectTarget> = uploaded
        .iter()
        .map(|d| ObjectTarget {
            bucket: d.upload.bucket.clone(),
            key: d.upload.key.clone(),
        })
        .collect();
    super::bucket::check_classes(targets.store, &objects).await?;

    let client_token = client_token(&plan, &uploaded, &content_digest);
    let mut request = request;
    request.client_token = Some(client_token.clone());
    if !content_digest.is_empty() {
        request = request_with_tag(request, &content_digest);
    }
    let started = Instant::now();
    tracing::info!(
        "ImportImage: {} disk(s) as {} in {}",
        plan.disks.len(),
        plan.image.name.value,
        plan.region
    );
    let imported = targets
        .ecs
        .import_image(request)
        .await
        .map_err(ImportError::Import)?;
    tracing::info!(
        "ImportImage: image {}, task {}; waiting until it is Available",
        imported.image_id,
        imported.task_id
    );
    timings.push(timing("ImportImage", started));

    let started = Instant::now();
    targets
        .ecs
        .wait_available(
            &imported.image_id,
            &imported.task_id,
            settings.wait,
            &Logged::new(reporter, "import".to_string(), 0),
            cancelled(settings.cancel.clone()),
        )
        .await?;
    timings.push(timing("wait until Available", started));

    let mut finished = false;
    if let Some(req) = plan.finishing_request(&imported.image_id) {
        let req = req.map_err(ImportError::Invalid)?;
        let started = Instant::now();
        targets
            .ecs
            .modify_image_attribute(&req)
            .await
            .map_err(|source| ImportError::Finish {
                image_id: imported.image_id.clone(),
                source,
            })?;
        finished = true;
        tracing::info!(
            "image {}: attributes set (ModifyImageAttribute)",
            imported.image_id
        );
        timings.push(timing("ModifyImageAttribute", started));
    }
    let mut deprecated = Vec::new();
    if plan.replace
        && let Some(family) = plan.finishing.family.as_deref()
    {
        let started = Instant::now();
        deprecated = deprecate_family(targets.ecs, family, &imported.image_id).await?;
        tracing::info!(
            "family {family}: {} older image(s) deprecated",
            deprecated.len()
        );
        timings.push(timing("deprecate old images", started));
    }
    let started = Instant::now();
    let ehpc_image = register_ehpc(&plan, &targets, &imported.image_id).await?;
    if ehpc_image.is_some() {
        timings.push(timing("E-HPC AddImage", started));
    }
    let mut objects_deleted = false;
    if plan.delete_objects {
        let started = Instant::now();
        objects_deleted = delete_objects(targets.store, &uploaded).await;
        timings.push(timing("delete objects", started));
    }
    timings.push(timing("total", run_started));
    tracing::info!(
        "done: image {} is Available in {}",
        imported.image_id,
        plan.region
    );

    Ok(ImportOutcome {
        image_id: imported.image_id,
        status: "Available".to_string(),
        region: plan.region.clone(),
        image_name: plan.image.name.value.clone(),
        task_id: imported.task_id,
        client_token,
        disks: uploaded,
        finished,
        content_digest,
        already_imported: false,
        deprecated,
        ehpc_image,
        import_role,
        objects_deleted,
        timings,
        plan,
    })
}

/// The plan's check of the import role, before anything is uploaded: a role known to be
/// unusable stops the import here; one that could not be verified is logged and reported.
async fn check_role(plan: &ImportPlan, ecs: &EcsClient) -> Result<RoleStatus, ImportError> {
    let check = &plan.import_role;
    let status = check_import_role(&RamClient::beside(ecs), &check.role_name, check.create)
        .await
        .map_err(|source| ImportError::RoleSetup {
            role: check.role_name.clone(),
            source,
        })?;
    if status.is_refusal() {
        return Err(ImportError::Role(status));
    }
    match &status {
        RoleStatus::Unknown { .. } => tracing::warn!("{}", status.message()),
        _ => tracing::info!("{}", status.message()),
    }
    Ok(status)
}

/// What to do about an ImportImage error that says ECS may not read the bucket.
fn role_hint(e: &RpcError) -> String {
    match e.code() {
        Some("NoSetRoletoECSServiceAcount" | "NoSetRoletoECSServiceAccount") => format!(
            " (ECS has no RAM role to read OSS: run again with --create-role, or create the role \
             {} trusting ecs.aliyuncs.com with the policy {})",
            imgport_cloud::aliyun::ram::IMPORT_ROLE,
            imgport_cloud::aliyun::ram::IMPORT_POLICY
        ),
        Some("InvalidOSS.NotAuthorized") => format!(
            " (the import role may not read the bucket: run again with --create-role to attach \
             {}, or grant oss:GetObject, oss:GetBucketLocation and oss:GetBucketInfo)",
            imgport_cloud::aliyun::ram::IMPORT_POLICY
        ),
        _ => String::new(),
    }
}

/// Deletes the objects of `uploaded` once the image no longer needs them; `false`, with a
/// warning naming each object left, when a deletion failed (the image stays `Available`).
async fn delete_objects<S: ObjectStore>(store: &S, uploaded: &[UploadedDisk]) -> bool {
    let mut all = true;
    for disk in uploaded {
        let target = ObjectTarget {
            bucket: disk.upload.bucket.clone(),
            key: disk.upload.key.clone(),
        };
        match store.delete(&target).await {
            Ok(()) => tracing::info!("deleted oss://{target}"),
            Err(e) => {
                all = false;
                tracing::warn!(
                    "oss://{target} is kept: deleting it failed: {}",
                    imgport_base::report::error_chain(&e)
                );
            }
        }
    }
    all
}

/// Uploads every disk in device order (at most `in_flight_max` parts in flight), with their
/// stage timings. A failure sets `stop`, so
/// the content digest under way ends too.
async fn upload_disks<S: ObjectStore>(
    disks: &[PreparedDisk],
    in_flight_max: usize,
    settings: &ImportSettings,
    store: &S,
    gate: Option<CompleteGate>,
    stop: &Arc<AtomicBool>,
    reporter: &dyn Reporter,
) -> Result<(Vec<UploadedDisk>, Vec<StageTiming>), ImportError> {
    let mut uploaded = Vec::with_capacity(disks.len());
    let mut timings = Vec::new();
    for disk in disks {
        let planned = &disk.planned;
        let started = Instant::now();
        let upload = upload_disk(
            disk,
            in_flight_max,
            settings,
            store,
            gate.clone(),
            stop,
            reporter,
        )
        .await
        .inspect_err(|_| stop.store(true, Ordering::SeqCst))?;
        timings.push(timing(
            &format!("upload disk {}", planned.device_index),
            started,
        ));
        uploaded.push(UploadedDisk {
            device_index: planned.device_index,
            source: planned.source.clone(),
            format: planned.output.value.name(),
            upload,
        });
    }
    Ok((uploaded, timings))
}

/// What the look-up by content found (nothing, with `--no-dedupe`).
#[derive(Default)]
struct Lookup {
    digest: String,
    found: Option<imgport_cloud::aliyun::ecs::Image>,
    timings: Vec<StageTiming>,
}

/// Computes the content digest and looks for an image that has it, then decides the
/// uploads' gate: they complete when none is found; they are withdrawn (and `stop` set)
/// when one is; they stop resumable when the digest or the look-up failed.
async fn find_imported(
    disks: &[PreparedDisk],
    ecs: &EcsClient,
    keeper: Option<GateKeeper>,
    stop: &Arc<AtomicBool>,
    reporter: &dyn Reporter,
) -> Result<Lookup, ImportError> {
    let Some(keeper) = keeper else {
        return Ok(Lookup::default());
    };
    let lookup = async {
        let started = Instant::now();
        let digest = content_digest(disks, stop.clone()).await?;
        let mut timings = vec![timing("content digest", started)];
        let started = Instant::now();
        let found = find_by_content(ecs, &digest).await?;
        timings.push(timing("lookup", started));
        Ok(Lookup {
            digest,
            found,
            timings,
        })
    }
    .await;
    match &lookup {
        Ok(Lookup { found: None, .. }) => keeper.proceed(),
        Ok(Lookup {
            found: Some(image), ..
        }) => {
            reporter.message(&format!(
                "image {} has this content already; the upload is withdrawn",
                image.image_id
            ));
            stop.store(true, Ordering::SeqCst);
            keeper.withdraw();
        }
        Err(_) => stop.store(true, Ordering::SeqCst),
    }
    lookup
}

/// Copies a Ctrl-C from `user` into `stop` (which a found image sets too); never returns.
async fn mirror_cancel(user: Option<Arc<AtomicBool>>, stop: Arc<AtomicBool>) -> Infallible {
    cancelled(user).await;
    stop.store(true, Ordering::SeqCst);
    std::future::pending().await
}

/// Streams one disk in its planned layout and parts into its object: converted and hashed in
/// one pass, no temporary file.
#[allow(clippy::too_many_arguments)]
async fn upload_disk<S: ObjectStore>(
    disk: &PreparedDisk,
    in_flight_max: usize,
    settings: &ImportSettings,
    store: &S,
    gate: Option<CompleteGate>,
    stop: &Arc<AtomicBool>,
    reporter: &dyn Reporter,
) -> Result<UploadOutcome, ImportError> {
    let planned = &disk.planned;
    let path = &disk.inspected.path;
    // A package disk's manifest digest is hashed from the bytes this stream reads.
    disk.inspected.opened.file.track_digest();
    let mut stream_opts = settings.stream.clone();
    stream_opts.cancel = Some(stop.clone());
    // The part memory bounds the buffers: those being written (at most one per part in
    // flight) and those filled ahead; a part waiting for its answer holds none (a retry reads
    // it again). The plan counts no MD5 batch: every part is signed with its SHA-256, the one
    // check per part the store makes.
    stream_opts.part_sha256 = true;
    stream_opts.skip_part_md5 = true;
    let in_flight_max = planned.parts_in_flight.value.min(in_flight_max).max(1);
    // The plan's `buffer_memory` holds `upload_buffers(writing)` buffers of a part each.
    let part = planned.parts.value.part_size.get();
    let buffers = usize::try_from(planned.buffer_memory / part.max(1)).unwrap_or(usize::MAX);
    let fixed = imgport_transfer::stream::upload_buffers(0, part, false);
    let writing = buffers.saturating_sub(fixed).clamp(1, in_flight_max);
    stream_opts.buffers = writing + imgport_transfer::stream::UPLOAD_FILLED_AHEAD;
    stream_opts.part_size = Some(planned.parts.value.part_size.non_zero());
    let stream = LayoutStream::new(
        disk.layout.clone(),
        disk.inspected.opened.image.clone(),
        &stream_opts,
    )
    .map_err(|source| ImportError::Stream {
        path: path.clone(),
        source,
    })?;
    // The plan sized this layout; a stream of other bytes or parts would upload an object
    // the plan did not describe.
    if (stream.total_size(), stream.part_size())
        != (planned.object_size, planned.parts.value.part_size.get())
    {
        return Err(ImportError::Drift {
            path: path.clone(),
            planned: planned.object_size,
            actual: stream.total_size(),
            planned_part: planned.parts.value.part_size.get(),
            actual_part: stream.part_size(),
        });
    }
    let target = ObjectTarget {
        bucket: planned.bucket.clone(),
        key: planned.object_key.clone(),
    };
    let mut upload_opts = settings.upload.clone();
    upload_opts.concurrency = in_flight_max;
    upload_opts.cancel = Some(stop.clone());
    upload_opts.gate = gate;
    upload_opts.source_id = source_id(path, planned, stream.part_size());
    let label = format!("disk {}", planned.device_index);
    tracing::info!(
        "{label}: uploading {} to {target} ({} bytes, {} parts)",
        path.display(),
        planned.object_size,
        planned.parts.value.count
    );
    reporter.start(Stage::Read, &label, Some(stream.layout().size));
    let logged = Logged::new(reporter, label, planned.parts.value.count);
    let outcome = imgport_store::upload(store, Box::new(stream), &target, &upload_opts, &logged)
        .await
        .map_err(|source| ImportError::Upload {
            target: target.clone(),
            source: Box::new(source),
        });
    reporter.finish();
    if let Ok(o) = &outcome {
        events::uploaded(planned, o);
        if let Some(digest) = disk
            .inspected
            .opened
            .file
            .verify_digest()
            .map_err(ImportError::Manifest)?
        {
            tracing::info!(
                "disk {}: the package manifest's digest matches ({digest})",
                planned.device_index
            );
        }
    }
    outcome
}

/// Identity of the bytes an upload sends: a resume journal is reused only for the same file
/// (path, size, modification and change times, inode), output format and part size.
fn source_id(path: &std::path::Path, planned: &crate::plan::PlannedDisk, part_size: u64) -> String {
    format!(
        "{};to={};part_size={part_size}",
        imgport_store::journal::file_identity(path),
        planned.output.value.name()
    )
}

/// The ImportImage ClientToken: the same image name, content tag, objects and bytes give the
/// same token, so a repeated run (or a retry after a lost answer) cannot create a second
/// image. At most 64 ASCII characters (validate.rs).
fn client_token(plan: &ImportPlan, uploaded: &[UploadedDisk], content_digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(plan.region.as_bytes());
    h.update([0]);
    h.update(plan.image.name.value.as_bytes());
    h.update([0]);
    h.update(content_digest.as_bytes());
    for d in uploaded {
        for part in [&d.upload.bucket, &d.upload.key, &d.upload.sha256] {
            h.update([0]);
            h.update(part.as_bytes());
        }
    }
    let digest = hex::encode(h.finalize());
    format!("imgport-{}", &digest[..48])
}

fn check_cancel(settings: &ImportSettings) -> Result<(), ImportError> {
    match &settings.cancel {
        Some(flag) if flag.load(Ordering::SeqCst) => Err(ImportError::Interrupted),
        _ => Ok(()),
    }
}

/// Completes when `flag` is set; never when there is none.
async fn cancelled(flag: Option<Arc<AtomicBool>>) {
    loop {
        if flag.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn timing(stage: &str, started: Instant) -> StageTiming {
    StageTiming {
        stage: stage.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The content digest of the whole image: SHA-256 over the device index and content digest
/// of every disk, in device order. Format-independent, so the same disks give the same value
/// whatever container they come in or are uploaded as. Computed on a thread of its own, so
/// the uploads go on meanwhile; `stop` ends it early.
async fn content_digest(
    disks: &[PreparedDisk],
    stop: Arc<AtomicBool>,
) -> Result<String, ImportError> {
    let jobs: Vec<(usize, PathBuf, Arc<dyn DiskImage>)> = disks
        .iter()
        .map(|d| {
            (
                d.planned.device_index,
                d.inspected.path.clone(),
                d.inspected.opened.image.clone(),
            )
        })
        .collect();
    let first = jobs.first().map(|j| j.1.clone()).unwrap_or_default();
    let lost = |source| ImportError::Digest {
        path: first.clone(),
        source,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("imgport-content".into())
        .spawn(move || {
            let mut h = Sha256::new();
            for (index, path, image) in jobs {
                let d = match imgport_transfer::content::content_digest(
                    image.as_ref(),
                    &Silent,
                    Some(&stop),
                ) {
                    Ok(d) => d,
                    Err(source) => {
                        let _ = tx.send(Err(ImportError::Digest { path, source }));
                        return;
                    }
                };
                h.update((index as u64).to_le_bytes());
                h.update(d.digest.as_bytes());
            }
            let _ = tx.send(Ok(hex::encode(h.finalize())));
        })
        .map_err(|e| lost(TransferError::Thread(e)))?;
    rx.await.map_err(|_| lost(TransferError::WorkerLost))?
}

/// An `Available` image tagged with `digest`, when there is one.
async fn find_by_content(
    ecs: &EcsClient,
    digest: &str,
) -> Result<Option<imgport_cloud::aliyun::ecs::Image>, ImportError> {
    use imgport_cloud::aliyun::ecs::DescribeImagesRequest;
    use imgport_cloud::aliyun::types::ImageStatus;
    let req = DescribeImagesRequest::new(ecs.region())
        .status(&[ImageStatus::Available])
        .tag(CONTENT_TAG, digest);
    let resp = ecs
        .describe_images(&req)
        .await
        .map_err(ImportError::Lookup)?;
    Ok(resp.images.image.into_iter().next())
}

fn request_with_tag(
    request: imgport_cloud::aliyun::ecs::ImportImageRequest,
    digest: &str,
) -> imgport_cloud::aliyun::ecs::ImportImageRequest {
    let mut request = request;
    request.tags.retain(|t| t.key != CONTENT_TAG);
    request.tags.push(imgport_cloud::aliyun::ecs::Tag {
        key: CONTENT_TAG.to_string(),
        value: digest.to_string(),
    });
    request
}

/// Deprecates every `Available` image of `family` but `keep`; returns their ids.
async fn deprecate_family(
    ecs: &EcsClient,
    family: &str,
    keep: &str,
) -> Result<Vec<String>, ImportError> {
    use imgport_cloud::aliyun::ecs::{DescribeImagesRequest, ModifyImageAttributeRequest};
    use imgport_cloud::aliyun::types::{ImageStatus, ModifiableStatus};
    let req = DescribeImagesRequest::new(ecs.region())
        .status(&[ImageStatus::Available])
        .family(family)
        .page(100, 1);
    let resp = ecs
        .describe_images(&req)
        .await
        .map_err(ImportError::Lookup)?;
    let mut done = Vec::new();
    for image in resp.images.image.into_iter().filter(|i| i.image_id != keep) {
        let modify = ModifyImageAttributeRequest::builder(ecs.region(), &image.image_id)
            .status(ModifiableStatus::Deprecated)
            .build()
            .map_err(ImportError::Invalid)?;
        ecs.modify_image_attribute(&modify)
            .await
            .map_err(|source| ImportError::Deprecate {
                image_id: image.image_id.clone(),
                source,
            })?;
        done.push(image.image_id);
    }
    Ok(done)
}

/// The last stage: registers `image_id` with E-HPC when asked (already registered counts).
async fn register_ehpc<S: ObjectStore>(
    plan: &ImportPlan,
    targets: &Targets<'_, S>,
    image_id: &str,
) -> Result<Option<String>, ImportError> {
    let Some(registration) = &plan.ehpc else {
        return Ok(None);
    };
    let name = &registration.name;
    let ehpc = targets.ehpc.ok_or(ImportError::NoEhpcClient)?;
    ehpc.register_vm_image(name, image_id, None)
        .await
        .map_err(|source| ImportError::Ehpc {
            image_id: image_id.to_string(),
            source,
        })?;
    Ok(Some(name.clone()))
}

//! The emulated ECS image API (2014-05-26): ImportImage, DescribeImages,
//! DescribeTaskAttribute, DescribeTasks, CancelTask, ModifyImageAttribute, DeleteImage.
//!
//! Parameters are judged by the documented rules (docs/CLOUD-API.md §ImportImage,
//! §ModifyImageAttribute, §CreateImage, §Polling) with the documented error codes and HTTP
//! statuses; the rules are the emulator's own ([`super::params`]). An import moves Waiting (when
//! a queue time is configured) → Creating → Available, or CreateFailed, or UnAvailable, over a
//! configured time, computed from the clock on each read, so state survives restarts. State is one JSON file in the state directory,
//! replaced atomically after each change.
//!
//! Kept whole: the emulated image API is one state machine over one state file; CreateImage and
//! ImportImage already live in `create.rs` and `import.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Call;
use super::disk::ObjectFacts;
use super::params::{self, P};
use super::state_file::StateFile;
use super::wire::iso_utc;

pub use super::fault::ApiFault;

/// Decides whether an accepted import fails later and why: `(ErrorCode, ErrorMsg)`. The lead
/// connects guest inspection here ("no operating system found").
pub type ImportHook =
    Arc<dyn Fn(&[PathBuf], &[ObjectFacts]) -> Option<(String, String)> + Send + Sync>;

/// The `Status` of an image in DescribeImages (docs/CLOUD-API.md §Polling), spelled as the
/// service spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageStatus {
    /// Queued: the import has not started yet.
    Waiting,
    Creating,
    Available,
    /// The image exists but cannot be used.
    UnAvailable,
    CreateFailed,
    Deprecated,
}

impl ImageStatus {
    const ALL: [ImageStatus; 6] = [
        Self::Waiting,
        Self::Creating,
        Self::Available,
        Self::UnAvailable,
        Self::CreateFailed,
        Self::Deprecated,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "Waiting",
            Self::Creating => "Creating",
            Self::Available => "Available",
            Self::UnAvailable => "UnAvailable",
            Self::CreateFailed => "CreateFailed",
            Self::Deprecated => "Deprecated",
        }
    }

    /// Reads a wire spelling, ASCII case ignored.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// Still on its way: Waiting or Creating.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Waiting | Self::Creating)
    }
}

/// How the emulated ECS behaves.
#[derive(Clone)]
pub struct EcsConfig {
    /// Root of the object store: objects are `<root>/<bucket>/<key>`.
    pub s3_root: PathBuf,
    /// Time an import takes from Creating to Available.
    pub import_duration: Duration,
    /// Imports whose system-disk object key contains this text end in CreateFailed with
    /// "no operating system found" (a test fault).
    pub fail_objects_containing: Option<String>,
    /// Extra failure decision, see [`ImportHook`].
    pub import_hook: Option<ImportHook>,
    /// Time a new image stays `Waiting` (queued) before it turns `Creating`; zero skips the
    /// state. A test fault: the real queue time is not documented.
    pub queue_duration: Duration,
    /// Imports whose system-disk object key contains this text finish as `UnAvailable`: the
    /// image exists but cannot be used (a test fault).
    pub unavailable_objects_containing: Option<String>,
}

/// One image of the emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ImageRec {
    pub(super) image_id: String,
    pub(super) region_id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) status: ImageStatus,
    pub(super) progress: u64,
    pub(super) created_ms: u64,
    pub(super) duration_ms: u64,
    /// Wire spellings from here on (`x86_64`, `linux`, `Others Linux`, `BIOS` …).
    pub(super) architecture: String,
    pub(super) os_type: String,
    pub(super) platform: String,
    pub(super) boot_mode: String,
    pub(super) license_type: String,
    pub(super) image_family: String,
    pub(super) nvme_support: Option<String>,
    pub(super) imds_support: String,
    pub(super) resource_group_id: String,
    pub(super) detection_strategy: Option<String>,
    pub(super) tags: Vec<(String, String)>,
    pub(super) disks: Vec<DiskRec>,
    pub(super) task_id: String,
    /// `(ErrorCode, ErrorMsg)` the import will fail with.
    pub(super) failure: Option<(String, String)>,
    /// Time it stays `Waiting` before `Creating` (absent in state kept by older emulators).
    #[serde(default)]
    pub(super) queue_ms: u64,
    /// The import ends `UnAvailable` instead of `Available`.
    #[serde(default)]
    pub(super) ends_unavailable: bool,
}

impl ImageRec {
    /// A new image named `name`, `Creating` from `now_ms` for `duration_ms`, with ECS's
    /// defaults for the rest; CreateImage and ImportImage set what their request says.
    pub(super) fn creating(
        image_id: &str,
        region: &str,
        name: String,
        description: &str,
        now_ms: u64,
        duration_ms: u64,
    ) -> Self {
        Self {
            image_id: image_id.to_string(),
            region_id: region.to_string(),
            name,
            description: description.to_string(),
            status: ImageStatus::Creating,
            progress: 0,
            created_ms: now_ms,
            duration_ms,
            architecture: "x86_64".into(),
            os_type: "linux".into(),
            platform: "Others Linux".into(),
            boot_mode: "BIOS".into(),
            license_type: "Auto".into(),
            image_family: String::new(),
            nvme_support: None,
            imds_support: "v1".into(),
            resource_group_id: String::new(),
            detection_strategy: None,
            tags: Vec::new(),
            disks: Vec::new(),
            task_id: String::new(),
            failure: None,
            queue_ms: 0,
            ends_unavailable: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DiskRec {
    pub(super) bucket: String,
    pub(super) object: String,
    /// `RAW`, `VHD`, `QCOW2` or `VMDK`.
    pub(super) format: String,
    pub(super) size_gib: u64,
}

/// One task of the emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TaskRec {
    pub(super) task_id: String,
    pub(super) region_id: String,
    pub(super) image_id: String,
    /// Processing, Finished, Failed or Cancelled.
    pub(super) status: String,
    pub(super) created_ms: u64,
    pub(super) finished_ms: Option<u64>,
}

/// A ClientToken seen before: the parameters it came with and the answer given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenRec {
    pub(super) params: Vec<(String, String)>,
    pub(super) answer: Value,
}

/// A request that may carry a ClientToken: the token's key in [`State::tokens`] and the
/// sorted parameters it came with, for idempotent replays.
pub(super) struct Tokened {
    key: Option<String>,
    params: Vec<(String, String)>,
}

impl Tokened {
    /// The ClientToken of `action`'s request `p`, if it has one.
    pub(super) fn new(action: &str, p: &P<'_>) -> Self {
        let mut params = p.0.to_vec();
        params.sort();
        Self {
            key: p.get("ClientToken").map(|t| format!("{action}/{t}")),
            params,
        }
    }

    /// The answer given before to the same token with the same parameters; the documented
    /// conflict for the same token with other parameters; `None` for a new or absent token.
    pub(super) fn replay(&self, st: &State) -> Option<Result<Value, ApiFault>> {
        let prev = st.tokens.get(self.key.as_ref()?)?;
        Some(if prev.params == self.params {
            Ok(prev.answer.clone())
        } else {
            Err(ApiFault::new(
                403,
                "InvalidParamter.Conflict",
                "The specified same token is trying to make requests with different parameters.",
            ))
        })
    }

    /// Records `answer` for the token, when there is one.
    pub(super) fn record(self, st: &mut State, answer: &Value) {
        if let Some(key) = self.key {
            st.tokens.insert(
                key,
                TokenRec {
                    params: self.params,
                    answer: answer.clone(),
                },
            );
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) next_id: u64,
    pub(super) images: BTreeMap<String, ImageRec>,
    pub(super) tasks: BTreeMap<String, TaskRec>,
    pub(super) tokens: BTreeMap<String, TokenRec>,
}

impl State {
    /// A new id. A fresh emulator starts its counter at a random point, so two runs (two
    /// sandboxes) never hand out the same image id; kept state goes on counting.
    pub(super) fn next(&mut self, prefix: &str) -> String {
        if self.next_id == 0 {
            self.next_id = fastrand::u64(1..1 << 48);
        }
        self.next_id += 1;
        format!("{prefix}-sim{:016x}", self.next_id ^ 0x5eed_0000)
    }

    /// Moves imports forward to `now_ms`; true when something changed.
    pub(super) fn refresh(&mut self, now_ms: u64) -> bool {
        let mut changed = false;
        for img in self.images.values_mut() {
            if !img.status.in_progress() {
                continue;
            }
            let (status, progress) = img.stage_at(now_ms);
            if status != img.status || progress != img.progress {
                changed = true;
                img.status = status;
                img.progress = progress;
            }
            if !status.in_progress()
                && let Some(task) = self.tasks.get_mut(&img.task_id)
            {
                task.status = if status == ImageStatus::Available {
                    "Finished".into()
                } else {
                    "Failed".into()
                };
                let ran = now_ms.saturating_sub(img.created_ms + img.queue_ms);
                task.finished_ms = Some(img.created_ms + img.queue_ms + ran.min(img.duration_ms));
            }
        }
        changed
    }
}

impl ImageRec {
    /// `(Status, Progress)` at `now_ms`: `Waiting` for the queue time, then `Creating` with
    /// progress over the duration, then `Available`; a failing import stops half-way in
    /// `CreateFailed`, an unusable one ends `UnAvailable` (docs/CLOUD-API.md §Polling).
    fn stage_at(&self, now_ms: u64) -> (ImageStatus, u64) {
        let since = now_ms.saturating_sub(self.created_ms);
        if since < self.queue_ms {
            return (ImageStatus::Waiting, 0);
        }
        let elapsed = since - self.queue_ms;
        // A zero duration (`--import-seconds 0`) is done at once, not after a millisecond.
        let duration = self.duration_ms;
        if self.failure.is_some() && elapsed >= duration / 2 {
            (ImageStatus::CreateFailed, 50)
        } else if elapsed >= duration && self.ends_unavailable {
            (ImageStatus::UnAvailable, 100)
        } else if elapsed >= duration {
            (ImageStatus::Available, 100)
        } else {
            (
                ImageStatus::Creating,
                (elapsed.saturating_mul(100) / duration).min(99),
            )
        }
    }
}

/// A request id in the service's shape (upper-case UUID).
pub fn new_request_id() -> String {
    let a = fastrand::u128(..);
    let h = format!("{a:032X}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(super) fn minutes_time(ms: u64) -> String {
    let full = iso_utc((ms / 1000) as i64);
    format!("{}Z", &full[..16])
}

pub(super) fn check_region(region: &str) -> Result<(), ApiFault> {
    let ok = region.len() <= 64
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiFault::new(
            404,
            "InvalidRegionId.NotFound",
            format!("The specified RegionId {region:?} does not exist."),
        ))
    }
}

pub(super) fn image_not_found(id: &str) -> ApiFault {
    ApiFault::new(
        404,
        "InvalidImageId.NotFound",
        format!("The specified ImageId {id:?} does not exist."),
    )
}

/// The emulated ECS service.
pub struct Ecs {
    pub(super) config: EcsConfig,
    state: Mutex<State>,
    state_file: StateFile,
    /// The account's RAM, which ImportImage asks for the import role (none: no check).
    pub(super) ram: Option<Arc<super::ram::Ram>>,
}

impl Ecs {
    /// Loads the state of `state_dir` (empty when absent) or keeps it in memory only.
    pub fn open(config: EcsConfig, state_dir: Option<&Path>) -> std::io::Result<Self> {
        let state_file = StateFile::new(state_dir, "ecs-state.json")?;
        let state = state_file.load()?.unwrap_or_default();
        Ok(Self {
            config,
            state: Mutex::new(state),
            state_file,
            ram: None,
        })
    }

    /// This ECS with `ram` deciding whether ImportImage may read OSS.
    pub fn with_ram(mut self, ram: Arc<super::ram::Ram>) -> Self {
        self.ram = Some(ram);
        self
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The end of CreateImage and ImportImage: keeps `rec`, records `answer` for the
    /// request's token, moves imports on to `now_ms` and saves the state.
    pub(super) fn add_image(
        &self,
        st: &mut State,
        rec: ImageRec,
        token: Tokened,
        answer: Value,
        now_ms: u64,
    ) -> Result<Value, ApiFault> {
        st.images.insert(rec.image_id.clone(), rec);
        token.record(st, &answer);
        st.refresh(now_ms);
        self.persist(st)?;
        Ok(answer)
    }

    /// Writes the state atomically (temporary file, then rename).
    pub(super) fn persist(&self, state: &State) -> Result<(), ApiFault> {
        self.state_file
            .save(state)
            .map_err(|e| ApiFault::new(500, "InternalError", format!("saving state: {e}")))
    }

    /// Handles one authenticated ECS call at `now_ms` (Unix milliseconds); the answer body
    /// without RequestId.
    pub async fn handle(&self, call: &Call, now_ms: u64) -> Result<Value, ApiFault> {
        {
            let mut st = self.lock();
            if st.refresh(now_ms) {
                self.persist(&st)?;
            }
        }
        let p = P(&call.params);
        match call.action.as_str() {
            "ImportImage" => self.import_image(&p, now_ms).await,
            "CreateImage" => self.create_image(&p, now_ms),
            "DescribeImages" => self.describe_images(&p),
            "DescribeTaskAttribute" => self.describe_task_attribute(&p),
            "DescribeTasks" => self.describe_tasks(&p),
            "CancelTask" => self.cancel_task(&p, now_ms),
            "ModifyImageAttribute" => self.modify_image_attribute(&p),
            "DeleteImage" => self.delete_image(&p),
            other => Err(ApiFault::new(
                404,
                "InvalidAction.NotFound",
                format!("Specified api {other:?} is not found, please check your url and method."),
            )),
        }
    }

    fn describe_images(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        check_region(region)?;
        // The default is Available only (docs/CLOUD-API.md §Polling): an importing image is
        // invisible unless the caller asks for its state.
        let wanted: Vec<ImageStatus> = match p.get("Status").filter(|s| !s.is_empty()) {
            None => vec![ImageStatus::Available],
            Some(list) => list
                .split(',')
                .map(|s| {
                    ImageStatus::parse(s.trim()).ok_or_else(|| {
                        ApiFault::new(
                            400,
                            "InvalidStatus.ValueNotSupported",
                            format!("The specified Status {s:?} is not valid."),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let ids: Option<Vec<&str>> = p
            .get("ImageId")
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::trim).collect());
        let name = p.get("ImageName").filter(|s| !s.is_empty());
        let alias = p.get("ImageOwnerAlias").filter(|s| !s.is_empty());
        let family = p.get("ImageFamily").filter(|s| !s.is_empty());
        // `Tag.N.Key` / `Tag.N.Value` (N = 1..20): an image matches when it has every pair;
        // a key without a value matches any value.
        let tag_filters: Vec<(&str, Option<&str>)> = (1..=20)
            .filter_map(|n| {
                let key = p.get(&format!("Tag.{n}.Key")).filter(|k| !k.is_empty())?;
                Some((key, p.get(&format!("Tag.{n}.Value"))))
            })
            .collect();
        let page_size: usize = p
            .get("PageSize")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10)
            .clamp(1, 100);
        let page: usize = p
            .get("PageNumber")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
            .max(1);
        let st = self.lock();
        let matching: Vec<&ImageRec> = st
            .images
            .values()
            .filter(|i| i.region_id == region)
            .filter(|i| wanted.contains(&i.status))
            .filter(|i| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&i.image_id.as_str()))
            })
            .filter(|i| name.is_none_or(|n| i.name == n))
            .filter(|i| family.is_none_or(|f| i.image_family == f))
            .filter(|i| {
                tag_filters.iter().all(|(k, v)| {
                    i.tags
                        .iter()
                        .any(|(tk, tv)| tk == k && v.is_none_or(|v| tv == v))
                })
            })
            .filter(|_| alias.is_none_or(|a| a == "self"))
            .collect();
        let images: Vec<Value> = matching
            .iter()
            .skip(page_size.saturating_mul(page - 1))
            .take(page_size)
            .map(|i| image_json(i))
            .collect();
        Ok(json!({
            "RegionId": region,
            "TotalCount": matching.len(),
            "PageNumber": page,
            "PageSize": page_size,
            "Images": {"Image": images},
        }))
    }

    fn describe_task_attribute(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        let task_id = p.required("TaskId")?;
        let st = self.lock();
        let task = st
            .tasks
            .get(task_id)
            .filter(|t| t.region_id == region)
            .ok_or_else(|| task_not_found(task_id))?;
        let image = st.images.get(&task.image_id);
        let progress = image.map_or(100, |i| i.progress);
        let unusable = image.is_some_and(|i| i.status == ImageStatus::UnAvailable);
        let (op_status, code, msg) =
            match (task.status.as_str(), image.and_then(|i| i.failure.clone())) {
                ("Failed", Some((c, m))) => ("Failed", c, m),
                // The emulator's wording: the pages give no reason for an UnAvailable image.
                ("Failed", None) if unusable => (
                    "Failed",
                    "ImportImageFailed".to_string(),
                    "The image was created but is not available for use.".to_string(),
                ),
                ("Failed", None) => ("Failed", "ImportImageFailed".to_string(), String::new()),
                ("Finished", _) => ("Success", String::new(), String::new()),
                ("Cancelled", _) => ("Cancelled", String::new(), String::new()),
                _ => ("Processing", String::new(), String::new()),
            };
        let mut items = Vec::new();
        if let Some(d) = image.and_then(|i| i.disks.first()) {
            items.push(json!({"Name": "OSSBucket", "Value": d.bucket}));
            items.push(json!({"Name": "OSSObject", "Value": d.object}));
            items.push(json!({"Name": "ImageFormat", "Value": d.format}));
        }
        Ok(json!({
            "RegionId": region,
            "TaskId": task.task_id,
            "TaskAction": "ImportImage",
            "TaskStatus": task.status,
            "TaskProcess": format!("{progress}%"),
            "SupportCancel": if task.status == "Processing" { "true" } else { "false" },
            "CreationTime": minutes_time(task.created_ms),
            "FinishedTime": task.finished_ms.map(minutes_time).unwrap_or_default(),
            "TotalCount": 1,
            "SuccessCount": u8::from(task.status == "Finished"),
            "FailedCount": u8::from(task.status == "Failed"),
            "OperationProgressSet": {"OperationProgress": [{
                "OperationStatus": op_status,
                "ErrorCode": code,
                "ErrorMsg": msg,
                "RelatedItemSet": {"RelatedItem": items},
            }]},
        }))
    }

    fn describe_tasks(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        check_region(region)?;
        let ids: Option<Vec<&str>> = p
            .get("TaskIds")
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::trim).collect());
        if ids.as_ref().is_some_and(|i| i.len() > 100) {
            return Err(ApiFault::new(
                400,
                "InvalidParameter",
                "at most 100 TaskIds",
            ));
        }
        let action = p.get("TaskAction").filter(|s| !s.is_empty());
        let status = p.get("TaskStatus").filter(|s| !s.is_empty());
        let resources: Vec<&str> = (1..=100)
            .map_while(|n| p.get(&format!("ResourceIds.{n}")))
            .collect();
        let st = self.lock();
        let tasks: Vec<Value> = st
            .tasks
            .values()
            .filter(|t| t.region_id == region)
            .filter(|t| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&t.task_id.as_str()))
            })
            .filter(|_| action.is_none_or(|a| a == "ImportImage"))
            .filter(|t| status.is_none_or(|s| s == t.status))
            .filter(|t| resources.is_empty() || resources.contains(&t.image_id.as_str()))
            .map(|t| {
                json!({
                    "TaskId": t.task_id,
                    "TaskAction": "ImportImage",
                    "TaskStatus": t.status,
                    "ResourceId": t.image_id,
                    "SupportCancel": if t.status == "Processing" { "true" } else { "false" },
                    "CreationTime": minutes_time(t.created_ms),
                    "FinishedTime": t.finished_ms.map(minutes_time).unwrap_or_default(),
                })
            })
            .collect();
        Ok(json!({
            "RegionId": region,
            "TotalCount": tasks.len(),
            "PageNumber": 1,
            "PageSize": tasks.len().max(10),
            "TaskSet": {"Task": tasks},
        }))
    }

    fn cancel_task(&self, p: &P<'_>, now_ms: u64) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        let task_id = p.required("TaskId")?;
        let mut st = self.lock();
        let task = st
            .tasks
            .get_mut(task_id)
            .filter(|t| t.region_id == region)
            .ok_or_else(|| task_not_found(task_id))?;
        if task.status != "Processing" {
            return Err(ApiFault::new(
                403,
                "IncorrectTaskStatus",
                format!("The task is {} and cannot be cancelled.", task.status),
            ));
        }
        task.status = "Cancelled".into();
        task.finished_ms = Some(now_ms);
        let image_id = task.image_id.clone();
        // A cancelled import leaves no image behind.
        st.images.remove(&image_id);
        self.persist(&st)?;
        Ok(json!({}))
    }

    fn modify_image_attribute(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        let image_id = p.required("ImageId")?;
        p.check(params::MODIFY_IMAGE_ATTRIBUTE)?;
        let table = params::MODIFY_IMAGE_ATTRIBUTE;
        let given = |name: &str| p.get(name).filter(|s| !s.is_empty());
        let name = given("ImageName");
        let description = given("Description");
        let family = given("ImageFamily");
        let boot = params::choice(p, table, "BootMode");
        let license = params::choice(p, table, "LicenseType");
        let status = params::choice(p, table, "Status").and_then(ImageStatus::parse);
        let nvme = params::choice(p, table, "Features.NvmeSupport");
        let imds = params::choice(p, table, "Features.ImdsSupport");
        let mut st = self.lock();
        let current = st
            .images
            .get(image_id)
            .filter(|i| i.region_id == region)
            .ok_or_else(|| image_not_found(image_id))?;
        if current.status.in_progress() {
            return Err(ApiFault::new(
                403,
                "InvalidStatus.ImageIsCreating",
                "The operation cannot be performed because the image is creating. Please wait until the creation is complete and try again.",
            ));
        }
        if imds == Some("v1") && current.imds_support == "v2" {
            return Err(ApiFault::new(
                403,
                "InvalidOperation.FeaturesImdsSupportNotMatch",
                "The specified parameter Features.ImdsSupport can not be set to v1 from v2.",
            ));
        }
        match status {
            Some(ImageStatus::Deprecated) if current.status != ImageStatus::Available => {
                return Err(ApiFault::new(
                    403,
                    "ImageStatus.NotAvailable",
                    "The specified image status is not available.",
                ));
            }
            Some(ImageStatus::Available) if current.status != ImageStatus::Deprecated => {
                return Err(ApiFault::new(
                    403,
                    "ImageStatus.NotDeprecated",
                    "The specified image status is not deprecated.",
                ));
            }
            _ => {}
        }
        if let Some(n) = name
            && st
                .images
                .values()
                .any(|i| i.region_id == region && i.name == n && i.image_id != image_id)
        {
            return Err(duplicated_name());
        }
        p.dry_run()?;
        let img = st
            .images
            .get_mut(image_id)
            .ok_or_else(|| image_not_found(image_id))?;
        if let Some(n) = name {
            img.name = n.to_string();
        }
        if let Some(d) = description {
            img.description = d.to_string();
        }
        if let Some(f) = family {
            img.image_family = f.to_string();
        }
        if let Some(b) = boot {
            img.boot_mode = b.to_string();
        }
        if let Some(l) = license {
            img.license_type = l.to_string();
        }
        if let Some(s) = status {
            img.status = s;
        }
        if let Some(n) = nvme {
            img.nvme_support = Some(n.to_string());
        }
        if let Some(i) = imds {
            img.imds_support = i.to_string();
        }
        self.persist(&st)?;
        Ok(json!({}))
    }

    fn delete_image(&self, p: &P<'_>) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        let image_id = p.required("ImageId")?;
        let mut st = self.lock();
        let img = st
            .images
            .get(image_id)
            .filter(|i| i.region_id == region)
            .ok_or_else(|| image_not_found(image_id))?;
        if img.status.in_progress() {
            // An importing image cannot be deleted; cancel its task (docs/CLOUD-API.md
            // §ImportImage).
            return Err(ApiFault::new(
                400,
                "IncorrectImageStatus",
                "The specified image is importing; cancel the import task first.",
            ));
        }
        p.dry_run()?;
        st.images.remove(image_id);
        self.persist(&st)?;
        Ok(json!({}))
    }
}

fn task_not_found(id: &str) -> ApiFault {
    ApiFault::new(
        404,
        "InvalidTaskId.NotFound",
        format!("The specified TaskId {id:?} does not exist."),
    )
}

pub(super) fn duplicated_name() -> ApiFault {
    ApiFault::new(
        400,
        "InvalidImageName.Duplicated",
        "The specified Image name has already been used.",
    )
}

fn image_json(i: &ImageRec) -> Value {
    let size = i.disks.first().map_or(0, |d| d.size_gib);
    let disks: Vec<Value> = i
        .disks
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let letter = char::from(b'a' + (n as u8).min(25));
            json!({
                "Device": format!("/dev/xvd{letter}"),
                "Size": d.size_gib.to_string(),
                "Format": d.format,
                "ImportOSSBucket": d.bucket,
                "ImportOSSObject": d.object,
                "Type": if n == 0 { "system" } else { "data" },
            })
        })
        .collect();
    let tags: Vec<Value> = i
        .tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    let mut features = json!({"ImdsSupport": i.imds_support});
    if let Some(n) = &i.nvme_support {
        features["NvmeSupport"] = json!(n);
    }
    json!({
        "ImageId": i.image_id,
        "ImageName": i.name,
        "Description": i.description,
        "Status": i.status.as_str(),
        "Progress": format!("{}%", i.progress),
        "Size": size,
        "Architecture": i.architecture,
        "OSType": i.os_type,
        "Platform": i.platform,
        "OSName": i.platform,
        "BootMode": i.boot_mode,
        "LicenseType": i.license_type,
        "ImageFamily": i.image_family,
        "ImageOwnerAlias": "self",
        "ResourceGroupId": i.resource_group_id,
        "CreationTime": iso_utc((i.created_ms / 1000) as i64),
        "DetectionOptions": {"Status": if i.detection_strategy.is_some() { "Finished" } else { "" }},
        "Features": features,
        "DiskDeviceMappings": {"DiskDeviceMapping": disks},
        "Tags": {"Tag": tags},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str, params: &[(&str, &str)]) -> Call {
        Call {
            action: action.into(),
            version: "2014-05-26".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            access_key_id: "test".into(),
        }
    }

    fn ecs(import_duration: Duration) -> Ecs {
        let config = EcsConfig {
            s3_root: PathBuf::from("/nonexistent"),
            import_duration,
            fail_objects_containing: None,
            import_hook: None,
            queue_duration: Duration::ZERO,
            unavailable_objects_containing: None,
        };
        Ecs::open(config, None).unwrap()
    }

    /// `(Status, Progress)` of the one image at `now_ms`.
    async fn status_at(ecs: &Ecs, now_ms: u64) -> (String, String) {
        let v = ecs
            .handle(
                &call(
                    "DescribeImages",
                    &[
                        ("RegionId", "cn-hangzhou"),
                        ("Status", "Creating,Available"),
                    ],
                ),
                now_ms,
            )
            .await
            .unwrap();
        let image = &v["Images"]["Image"][0];
        (
            image["Status"].as_str().unwrap().into(),
            image["Progress"].as_str().unwrap().into(),
        )
    }

    async fn create_at(ecs: &Ecs, now_ms: u64) {
        ecs.handle(
            &call(
                "CreateImage",
                &[("RegionId", "cn-hangzhou"), ("SnapshotId", "s-simsystem40")],
            ),
            now_ms,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_zero_duration_image_is_available_in_the_same_millisecond() {
        let ecs = ecs(Duration::ZERO);
        create_at(&ecs, 1_000).await;
        assert_eq!(
            status_at(&ecs, 1_000).await,
            ("Available".into(), "100%".into())
        );
    }

    #[tokio::test]
    async fn an_image_moves_through_progress_to_available() {
        let ecs = ecs(Duration::from_secs(30));
        create_at(&ecs, 1_000).await;
        assert_eq!(
            status_at(&ecs, 1_000).await,
            ("Creating".into(), "0%".into())
        );
        assert_eq!(
            status_at(&ecs, 16_000).await,
            ("Creating".into(), "50%".into())
        );
        assert_eq!(
            status_at(&ecs, 31_000).await,
            ("Available".into(), "100%".into())
        );
    }
}

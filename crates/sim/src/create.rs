//! The emulated CreateImage (docs/CLOUD-API.md §CreateImage): images from a snapshot, an instance,
//! or several snapshots (`DiskDeviceMapping`), judged by the emulator's own rules
//! ([`super::params`]) and answered with the documented error codes. The snapshots
//! and instances it knows are fixed fixtures ([`SNAPSHOTS`], [`INSTANCES`], printed by `imgport
//! sim`); a new image moves Creating → Available with Progress like an import.

use serde_json::{Value, json};

use super::ecs::{ApiFault, DiskRec, Ecs, ImageRec, Tokened, check_region, duplicated_name};
use super::params::{self, CREATE_DISK_GIB, CREATE_IMAGE, DISK_SLOTS, P};

/// A snapshot the emulator knows.
#[derive(Debug, Clone, Copy)]
pub struct SimSnapshot {
    pub id: &'static str,
    pub size_gib: u64,
    /// Taken of a system disk (else a data disk).
    pub system: bool,
    /// `yyyy-mm-dd`; before 2013-07-15 it cannot make an image.
    pub created: &'static str,
    /// Finished (`accomplished`); an unfinished one is `InvalidSnapshotId.NotReady`.
    pub ready: bool,
    /// An image made from it ends in CreateFailed (a test fault).
    pub fails: bool,
}

/// An instance the emulator knows.
#[derive(Debug, Clone, Copy)]
pub struct SimInstance {
    pub id: &'static str,
    /// `Running`, `Stopped`, `Starting` …; only Running and Stopped can make an image.
    pub status: &'static str,
    /// `OperationLocks` holds `LockReason: security`.
    pub locked_for_security: bool,
    /// Disk sizes in GiB, the system disk first.
    pub disks_gib: &'static [u64],
}

/// The snapshots of every region of the emulator.
pub const SNAPSHOTS: &[SimSnapshot] = &[
    SimSnapshot {
        id: "s-simsystem40",
        size_gib: 40,
        system: true,
        created: "2024-05-01",
        ready: true,
        fails: false,
    },
    SimSnapshot {
        id: "s-simdata100",
        size_gib: 100,
        system: false,
        created: "2024-05-01",
        ready: true,
        fails: false,
    },
    SimSnapshot {
        id: "s-simold2012",
        size_gib: 20,
        system: true,
        created: "2012-12-31",
        ready: true,
        fails: false,
    },
    SimSnapshot {
        id: "s-simprogressing",
        size_gib: 40,
        system: true,
        created: "2024-05-01",
        ready: false,
        fails: false,
    },
    SimSnapshot {
        id: "s-simbroken",
        size_gib: 40,
        system: true,
        created: "2024-05-01",
        ready: true,
        fails: true,
    },
];

/// The instances of every region of the emulator.
pub const INSTANCES: &[SimInstance] = &[
    SimInstance {
        id: "i-simrunning",
        status: "Running",
        locked_for_security: false,
        disks_gib: &[40, 100],
    },
    SimInstance {
        id: "i-simstopped",
        status: "Stopped",
        locked_for_security: false,
        disks_gib: &[20],
    },
    SimInstance {
        id: "i-simstarting",
        status: "Starting",
        locked_for_security: false,
        disks_gib: &[40],
    },
    SimInstance {
        id: "i-simlocked",
        status: "Stopped",
        locked_for_security: true,
        disks_gib: &[40],
    },
];

/// docs/CLOUD-API.md §CreateImage: snapshots taken before this day cannot make images.
const OLDEST_SNAPSHOT: &str = "2013-07-15";
/// Size of a disk made without a snapshot when no Size is given (docs/CLOUD-API.md §CreateImage).
const EMPTY_DISK_GIB: u64 = 5;

fn snapshot(id: &str, field: &str) -> Result<&'static SimSnapshot, ApiFault> {
    let s = SNAPSHOTS.iter().find(|s| s.id == id).ok_or_else(|| {
        ApiFault::new(
            404,
            "InvalidSnapshotId.NotFound",
            format!("The specified {field} {id:?} does not exist."),
        )
    })?;
    if s.created < OLDEST_SNAPSHOT {
        return Err(ApiFault::new(
            403,
            "InvalidSnapshot.TooOld",
            format!(
                "This operation is denied because the specified snapshot by {field} is created before 2013-07-15."
            ),
        ));
    }
    if !s.ready {
        return Err(ApiFault::new(
            403,
            "InvalidSnapshotId.NotReady",
            format!("The current status of the {field} does not support this operation."),
        ));
    }
    Ok(s)
}

fn denied(status: u16, message: &str) -> ApiFault {
    ApiFault::new(status, "OperationDenied", message)
}

impl Ecs {
    pub(super) fn create_image(&self, p: &P<'_>, now_ms: u64) -> Result<Value, ApiFault> {
        let region = p.required("RegionId")?;
        check_region(region)?;
        p.check(CREATE_IMAGE)?;
        let name = p.get("ImageName").filter(|s| !s.is_empty());
        let description = p.get("Description").unwrap_or_default();
        let family = p.get("ImageFamily").filter(|s| !s.is_empty());
        let platform = p.choice_or(CREATE_IMAGE, "Platform", "Others Linux");
        let arch = p.choice_or(CREATE_IMAGE, "Architecture", "x86_64");
        let boot_mode = p.choice_or(CREATE_IMAGE, "BootMode", "UEFI-Preferred");
        let snapshot_id = p.get("SnapshotId").filter(|s| !s.is_empty());
        let instance_id = p.get("InstanceId").filter(|s| !s.is_empty());
        let mapped = (1..=DISK_SLOTS + 1).any(|n| {
            ["SnapshotId", "Size", "Device", "DiskType"]
                .iter()
                .any(|f| p.get(&format!("DiskDeviceMapping.{n}.{f}")).is_some())
        });
        let given = [snapshot_id.is_some(), instance_id.is_some(), mapped];
        let mut fails = false;
        let sizes: Vec<u64> = match given.iter().filter(|g| **g).count() {
            0 => {
                return Err(ApiFault::new(
                    400,
                    "MissingParameter",
                    "The input parameter SnapshotId or InstanceId or DiskDeviceMapping that is mandatory for processing this request is not supplied.",
                ));
            }
            1 => {
                if let Some(id) = snapshot_id {
                    let s = snapshot(id, "SnapshotId")?;
                    if !s.system {
                        return Err(denied(
                            403,
                            "The specified snapshot is not from system disk.",
                        ));
                    }
                    fails = s.fails;
                    vec![s.size_gib]
                } else if let Some(id) = instance_id {
                    instance_disks(id)?
                } else {
                    mapped_disks(p)?
                }
            }
            _ => {
                return Err(ApiFault::new(
                    400,
                    "InvalidParameter",
                    "Give only one of SnapshotId, InstanceId and DiskDeviceMapping.",
                ));
            }
        };
        p.dry_run()?;
        let token = Tokened::new("CreateImage", p);
        let mut st = self.lock();
        if let Some(replayed) = token.replay(&st) {
            return replayed;
        }
        if let Some(n) = name
            && st
                .images
                .values()
                .any(|i| i.region_id == region && i.name == n)
        {
            return Err(duplicated_name());
        }
        let image_id = st.next("m");
        let rec = ImageRec {
            architecture: arch,
            os_type: if platform.starts_with("Windows") {
                "windows".into()
            } else {
                "linux".into()
            },
            platform,
            boot_mode,
            image_family: family.unwrap_or_default().to_string(),
            disks: sizes
                .iter()
                .map(|&size_gib| DiskRec {
                    bucket: String::new(),
                    object: String::new(),
                    format: "RAW".into(),
                    size_gib,
                })
                .collect(),
            failure: fails.then(|| {
                (
                    "CreateImageFailed".to_string(),
                    "the snapshot's data cannot be read".to_string(),
                )
            }),
            // CreateImage returns no task (no task_id); the image alone is polled.
            ..ImageRec::creating(
                &image_id,
                region,
                name.map_or_else(|| format!("create-{image_id}"), str::to_string),
                description,
                now_ms,
                self.config.import_duration.as_millis() as u64,
            )
        };
        let answer = json!({ "ImageId": image_id });
        self.add_image(&mut st, rec, token, answer, now_ms)
    }
}

/// Approach 2: the instance must exist, be Running or Stopped, and not be locked.
fn instance_disks(id: &str) -> Result<Vec<u64>, ApiFault> {
    let i = INSTANCES.iter().find(|i| i.id == id).ok_or_else(|| {
        ApiFault::new(
            400,
            "InvalidInstanceId.NotFound",
            "The specified InstanceId does not exist.",
        )
    })?;
    if i.locked_for_security {
        return Err(ApiFault::new(
            400,
            "InstanceLockedForSecurity",
            "The specified instance is locked for security reasons.",
        ));
    }
    if !matches!(i.status, "Running" | "Stopped") {
        return Err(ApiFault::new(
            400,
            "IncorrectInstanceStatus",
            "The current status of the instance does not support this operation.",
        ));
    }
    Ok(i.disks_gib.to_vec())
}

/// Approach 3: mappings 1..=17 in order, one system-disk snapshot first, data disks after,
/// devices `/dev/xvda`, `/dev/xvdb` …, sizes 5–20000 GiB and not below their snapshot.
fn mapped_disks(p: &P<'_>) -> Result<Vec<u64>, ApiFault> {
    let mut sizes = Vec::new();
    for n in 1..=DISK_SLOTS + 1 {
        let get = |f: &str| p.get(&format!("DiskDeviceMapping.{n}.{f}"));
        let fields = [
            get("SnapshotId"),
            get("Size"),
            get("Device"),
            get("DiskType"),
        ];
        if fields.iter().all(Option::is_none) {
            if n <= DISK_SLOTS
                && (n + 1..=DISK_SLOTS + 1).any(|m| {
                    p.0.iter()
                        .any(|(k, _)| k.starts_with(&format!("DiskDeviceMapping.{m}.")))
                })
            {
                return Err(params::malformed(
                    "InvalidParameter.Malformed",
                    &format!("DiskDeviceMapping.{n}"),
                    "mappings are numbered 1, 2, 3 … without gaps",
                ));
            }
            continue;
        }
        // One system disk /dev/xvda, then data disks /dev/xvdb, /dev/xvdc … in order, without
        // gaps or repeats (docs/CLOUD-API.md §CreateImage).
        let device = get("Device").filter(|d| !d.is_empty());
        match params::create_device(n) {
            None => {
                return Err(params::malformed(
                    "InvalidParameter.DiskDeviceMapping",
                    &format!("DiskDeviceMapping.{n}.Device"),
                    &format!("at most {DISK_SLOTS} disks"),
                ));
            }
            Some(want) if device.is_some_and(|d| d != want) => {
                return Err(params::malformed(
                    "InvalidParameter.Malformed",
                    &format!("DiskDeviceMapping.{n}.Device"),
                    &format!("mapping {n} is {want}"),
                ));
            }
            Some(_) => {}
        }
        let kind = get("DiskType").filter(|d| !d.is_empty());
        let snap = match get("SnapshotId").filter(|s| !s.is_empty()) {
            Some(id) => Some(snapshot(id, &format!("DiskDeviceMapping.{n}.SnapshotId"))?),
            None => None,
        };
        let system_snapshot = snap.map(|s| s.system);
        if n == 1 && (system_snapshot != Some(true) || kind == Some("data")) {
            return Err(denied(
                400,
                "The specified parameter DiskDeviceMapping.n.SnapshotId does not contain system disk snapshot.",
            ));
        }
        if n > 1 && (system_snapshot == Some(true) || kind == Some("system")) {
            return Err(denied(
                400,
                "The specified parameter DiskDeviceMapping.n.SnapshotId contains two or more system disk snapshots.",
            ));
        }
        let floor = snap.map_or(EMPTY_DISK_GIB, |s| s.size_gib);
        let size = match get("Size").filter(|s| !s.is_empty()) {
            None => floor,
            Some(s) => {
                let (lo, hi) = CREATE_DISK_GIB;
                let gib = s
                    .parse::<u64>()
                    .ok()
                    .filter(|g| (lo..=hi).contains(g))
                    .ok_or_else(|| {
                        params::malformed(
                            "InvalidSize.ValueNotSupported",
                            &format!("DiskDeviceMapping.{n}.Size"),
                            &format!("{s:?} is not a whole number of GiB from {lo} to {hi}"),
                        )
                    })?;
                if gib < floor {
                    return Err(ApiFault::new(
                        400,
                        "InvalidSize.ValueNotSupported",
                        format!(
                            "The specified parameter DiskDeviceMapping.{n}.Size ({gib} GiB) is below the snapshot's size ({floor} GiB)."
                        ),
                    ));
                }
                gib
            }
        };
        sizes.push(size);
    }
    Ok(sizes)
}

//! Per-image state kept in the bucket, so batch processes on one or many machines never
//! import the same image twice. Claims are taken with create-only writes (S3
//! `If-None-Match: *`, OSS `x-oss-forbid-overwrite`), which both services make atomic:
//!
//! - `imgport-state/<item>/claim-<generation>.json`: whoever creates generation g+1 owns the
//!   item. The record names its holder (machine id, boot id, process id and start) and the
//!   destination it works for.
//! - `imgport-state/<item>/lease-<generation>.json`: the holder's renewal of generation g,
//!   rewritten every [`LeaseRules::renew_every`].
//! - `imgport-state/<item>/done.json`: the image id and destination once the import finished.
//!
//! Who may take an item over ([`decide`]): nobody holds it; its claim failed; the holder is
//! this very process; the holder ran on this machine in an earlier boot, or its process is
//! gone (taken at once); the holder is on another machine and has not renewed its lease for
//! [`LeaseRules::lease`]. A holder that is alive but cut off may lose its lease and go on
//! working: the ImportImage ClientToken and the content digest make the second attempt end
//! in the same image.
//!
//! Kept whole: one protocol (take, renew, release, take over) whose rules must be read together; a
//! fifth of it is tests.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use imgport_base::destination::Destination;
use imgport_store::{ObjectStore, ObjectTarget, StoreError};

/// Prefix of every state object.
pub const STATE_PREFIX: &str = "imgport-state/";
/// Claims of one item listed at most (a generation is added per attempt).
const MAX_CLAIMS_LISTED: usize = 1000;
/// Largest state object read.
const MAX_STATE_BYTES: usize = 64 * 1024;
/// Environment variable that overrides this machine's id (tests pose as several machines).
pub const HOST_ID_ENV: &str = "IMGPORT_HOST_ID";

/// The machine and boot a process runs in: `/etc/machine-id` and
/// `/proc/sys/kernel/random/boot_id` (see machine-id(5) and random(4)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostId {
    pub machine: String,
    pub boot: String,
}

impl HostId {
    /// This machine: [`HOST_ID_ENV`] when set, else `/etc/machine-id` (or the D-Bus copy, or
    /// the host name); the boot id of the running kernel.
    pub fn current() -> HostId {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let machine = std::env::var(HOST_ID_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| read("/etc/machine-id"))
            .or_else(|| read("/var/lib/dbus/machine-id"))
            .or_else(|| read("/proc/sys/kernel/hostname"))
            .unwrap_or_else(|| "unknown-machine".into());
        let boot = read("/proc/sys/kernel/random/boot_id").unwrap_or_else(|| "unknown-boot".into());
        HostId { machine, boot }
    }
}

/// Who holds a claim: the machine, the process and when that process started (clock ticks
/// since boot, `/proc/PID/stat` field 22), so that a reused process id is not taken for the
/// holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: HostId,
    pub pid: u32,
    pub start_ticks: u64,
}

impl Holder {
    /// This process on this machine.
    pub fn current() -> Holder {
        let pid = std::process::id();
        Holder {
            host: HostId::current(),
            pid,
            start_ticks: process_start(pid).unwrap_or(0),
        }
    }

    /// A short label for messages: `machine/pid`.
    pub fn label(&self) -> String {
        let m: String = self.host.machine.chars().take(12).collect();
        format!("{m}/{}", self.pid)
    }

    /// Whether this holder's process runs now on this machine (same boot, same process).
    pub fn is_running_here(&self) -> bool {
        process_start(self.pid) == Some(self.start_ticks)
    }
}

/// The start time of a running (not zombie) process, in clock ticks since boot.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses; fields follow the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// How long a claim from another machine lives without renewal, and how often the holder
/// renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRules {
    /// A claim from another machine not renewed for this long may be taken over.
    pub lease: Duration,
    /// The holder rewrites its lease this often (well within `lease`).
    pub renew_every: Duration,
}

impl Default for LeaseRules {
    fn default() -> Self {
        LeaseRules {
            lease: Duration::from_secs(180),
            renew_every: Duration::from_secs(30),
        }
    }
}

/// What a claim object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// A label of the holder, for messages.
    pub owner: String,
    /// When the claim was written, Unix seconds.
    pub at_unix: u64,
    /// `claimed` while working; `failed` gives the item back.
    pub state: ClaimState,
    /// The holder; absent in claims of older versions (treated as another machine's).
    #[serde(default)]
    pub holder: Option<Holder>,
    /// The lease the holder keeps renewing, seconds; absent: the taker's own rule.
    #[serde(default)]
    pub lease_secs: Option<u64>,
    /// Where the holder imports to.
    #[serde(default)]
    pub destination: Option<Destination>,
}

/// What a lease object says: the holder's last renewal, and the multipart uploads it has
/// open, so that whoever finishes the item can abort them should the holder never return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    at_unix: u64,
    #[serde(default)]
    uploads: Vec<OpenUpload>,
}

/// A multipart upload a holder has open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

/// State of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    Claimed,
    Failed,
}

/// What `done.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    pub image_id: String,
    pub region: String,
    pub owner: String,
    pub at_unix: u64,
    /// Where the image was imported; a record without one, or for another destination, is
    /// not taken as done.
    #[serde(default)]
    pub destination: Option<Destination>,
}

/// The result of trying to claim an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process owns the item under this generation.
    Won { generation: u32 },
    /// The bucket records the item as imported to this destination (not yet checked at the
    /// cloud: the caller confirms the image).
    Done(DoneRecord),
    /// Another live process holds the claim.
    Busy(Busy),
}

/// Who holds an item another process works on, and why it is taken to be alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Busy {
    pub owner: String,
    /// When the holder last claimed or renewed, Unix seconds.
    pub since_unix: u64,
    /// `true` for a process running on this machine; `false` for a lease of another machine,
    /// which may be taken over after `expires_unix`.
    pub on_this_host: bool,
    pub expires_unix: Option<u64>,
}

/// The newest claim of an item, as read from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub generation: u32,
    pub record: ClaimRecord,
    /// The holder's last lease renewal, Unix seconds.
    pub renewed_unix: Option<u64>,
}

/// What to do given the newest claim of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Try to create this generation.
    Take(u32),
    Busy(Busy),
}

/// Pure rule: see the module's doc. `running_here` tells whether a holder on this machine
/// and boot still runs.
fn decide(
    newest: Option<&Newest>,
    me: &Holder,
    rules: &LeaseRules,
    now: u64,
    running_here: &dyn Fn(&Holder) -> bool,
) -> Decision {
    let Some(n) = newest else {
        return Decision::Take(1);
    };
    let next = Decision::Take(n.generation.saturating_add(1));
    let c = &n.record;
    if c.state == ClaimState::Failed {
        return next;
    }
    let last = n.renewed_unix.unwrap_or(0).max(c.at_unix);
    match &c.holder {
        Some(h) if h.host.machine == me.host.machine => {
            if h.host.boot != me.host.boot || h == me || !running_here(h) {
                next
            } else {
                Decision::Busy(Busy {
                    owner: c.owner.clone(),
                    since_unix: last,
                    on_this_host: true,
                    expires_unix: None,
                })
            }
        }
        _ => {
            let lease = c.lease_secs.unwrap_or(rules.lease.as_secs());
            if now.saturating_sub(last) > lease {
                next
            } else {
                Decision::Busy(Busy {
                    owner: c.owner.clone(),
                    since_unix: last,
                    on_this_host: false,
                    expires_unix: Some(last.saturating_add(lease)),
                })
            }
        }
    }
}

/// The folder of `item_id`'s state: a readable part plus a hash, so any id maps to a valid,
/// unique key.
pub fn item_prefix(item_id: &str) -> String {
    let readable = key_safe(item_id);
    let hash = hex::encode(Sha256::digest(item_id.as_bytes()));
    format!("{STATE_PREFIX}{readable}-{}/", &hash[..16])
}

/// `id` with every character an object key should not carry replaced by `_`.
pub(crate) fn key_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

fn target(bucket: &str, key: String) -> ObjectTarget {
    ObjectTarget {
        bucket: bucket.to_string(),
        key,
    }
}

fn claim_key(prefix: &str, generation: u32) -> String {
    format!("{prefix}claim-{generation:08}.json")
}

fn lease_key(prefix: &str, generation: u32) -> String {
    format!("{prefix}lease-{generation:08}.json")
}

fn generation_of(prefix: &str, key: &str) -> Option<u32> {
    key.strip_prefix(prefix)?
        .strip_prefix("claim-")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

async fn read_json<S: ObjectStore, T: for<'de> Deserialize<'de>>(
    store: &S,
    t: &ObjectTarget,
) -> Result<Option<T>, StoreError> {
    match store.get_small(t, MAX_STATE_BYTES).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Verify {
                target: t.to_string(),
                what: format!("state object is not imgport's JSON: {e}"),
            }),
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The item's done record when it names `dest`.
pub async fn read_done<S: ObjectStore>(
    store: &S,
    dest: &Destination,
    item_id: &str,
) -> Result<Option<DoneRecord>, StoreError> {
    let key = format!("{}done.json", item_prefix(item_id));
    let done = read_json::<S, DoneRecord>(store, &target(&dest.bucket, key)).await?;
    Ok(done.filter(|d| d.destination.as_ref() == Some(dest)))
}

/// The newest claim of `item_id` with its last renewal; `None` when nobody claimed it.
pub async fn read_newest<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
) -> Result<Option<Newest>, StoreError> {
    let prefix = item_prefix(item_id);
    let keys = store.list_keys(bucket, &prefix, MAX_CLAIMS_LISTED).await?;
    let Some(generation) = keys.iter().filter_map(|k| generation_of(&prefix, k)).max() else {
        return Ok(None);
    };
    let Some(record) =
        read_json::<S, ClaimRecord>(store, &target(bucket, claim_key(&prefix, generation))).await?
    else {
        return Ok(None);
    };
    let renewed_unix = if keys.contains(&lease_key(&prefix, generation)) {
        read_json::<S, LeaseRecord>(store, &target(bucket, lease_key(&prefix, generation)))
            .await?
            .map(|l| l.at_unix)
    } else {
        None
    };
    Ok(Some(Newest {
        generation,
        record,
        renewed_unix,
    }))
}

/// Whether the newest claim of an item is held by a live process, by the rule of [`decide`].
pub fn holder_state(
    newest: Option<&Newest>,
    me: &Holder,
    rules: &LeaseRules,
    now: u64,
) -> Option<Busy> {
    match decide(newest, me, rules, now, &Holder::is_running_here) {
        Decision::Busy(b) => Some(b),
        Decision::Take(_) => None,
    }
}

/// Tries to claim `item_id` at `dest` for `me` (the caller looks at the done record first:
/// see [`read_done`]); never answers [`Claim::Done`].
pub async fn claim<S: ObjectStore>(
    store: &S,
    dest: &Destination,
    item_id: &str,
    me: &Holder,
    rules: &LeaseRules,
    now_unix: u64,
) -> Result<Claim, StoreError> {
    let bucket = &dest.bucket;
    let prefix = item_prefix(item_id);
    let newest = read_newest(store, bucket, item_id).await?;
    match decide(
        newest.as_ref(),
        me,
        rules,
        now_unix,
        &Holder::is_running_here,
    ) {
        Decision::Busy(b) => Ok(Claim::Busy(b)),
        Decision::Take(generation) => {
            let record = ClaimRecord {
                owner: me.label(),
                at_unix: now_unix,
                state: ClaimState::Claimed,
                holder: Some(me.clone()),
                lease_secs: Some(rules.lease.as_secs()),
                destination: Some(dest.clone()),
            };
            let key = claim_key(&prefix, generation);
            if store
                .put_new(&target(bucket, key.clone()), to_json(&record))
                .await?
            {
                return Ok(Claim::Won { generation });
            }
            // Someone created that generation first: theirs is the live claim.
            let theirs = read_json::<S, ClaimRecord>(store, &target(bucket, key)).await?;
            Ok(Claim::Busy(Busy {
                owner: theirs
                    .as_ref()
                    .map_or_else(String::new, |c| c.owner.clone()),
                since_unix: theirs.as_ref().map_or(now_unix, |c| c.at_unix),
                on_this_host: theirs
                    .and_then(|c| c.holder)
                    .is_some_and(|h| h.host.machine == me.host.machine),
                expires_unix: None,
            }))
        }
    }
}

/// Renews the lease of `generation` (only its holder calls this), naming the uploads it has
/// open.
pub async fn renew<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
    generation: u32,
    now_unix: u64,
    uploads: Vec<OpenUpload>,
) -> Result<(), StoreError> {
    let key = lease_key(&item_prefix(item_id), generation);
    let record = LeaseRecord {
        at_unix: now_unix,
        uploads,
    };
    store
        .put_small(&target(bucket, key), to_json(&record))
        .await
}

/// The uploads every holder of `item_id` ever named in its lease.
pub async fn holders_uploads<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
) -> Result<Vec<OpenUpload>, StoreError> {
    let prefix = item_prefix(item_id);
    let mut out = Vec::new();
    for key in store.list_keys(bucket, &prefix, MAX_CLAIMS_LISTED).await? {
        if key[prefix.len().min(key.len())..].starts_with("lease-")
            && let Some(l) = read_json::<S, LeaseRecord>(store, &target(bucket, key)).await?
        {
            out.extend(l.uploads);
        }
    }
    Ok(out)
}

/// Records the finished import at its destination. Rewritten when present: two holders of
/// one item (a lapsed lease) end in the same image, and a record whose image was deleted is
/// replaced by the new one.
pub async fn mark_done<S: ObjectStore>(
    store: &S,
    item_id: &str,
    record: &DoneRecord,
) -> Result<(), StoreError> {
    let Some(dest) = &record.destination else {
        return Ok(());
    };
    let key = format!("{}done.json", item_prefix(item_id));
    store
        .put_small(&target(&dest.bucket, key), to_json(record))
        .await
}

/// Gives the item back after a failed attempt, so another process (or a re-run) may take it
/// at once.
pub async fn release_failed<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
    generation: u32,
    me: &Holder,
    now_unix: u64,
) -> Result<(), StoreError> {
    let prefix = item_prefix(item_id);
    let record = ClaimRecord {
        owner: me.label(),
        at_unix: now_unix,
        state: ClaimState::Failed,
        holder: Some(me.clone()),
        lease_secs: None,
        destination: None,
    };
    let key = claim_key(&prefix, generation.saturating_add(1));
    store
        .put_new(&target(bucket, key), to_json(&record))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(machine: &str, boot: &str, pid: u32) -> Holder {
        Holder {
            host: HostId {
                machine: machine.into(),
                boot: boot.into(),
            },
            pid,
            start_ticks: 7,
        }
    }

    fn newest(g: u32, h: Option<Holder>, at: u64, state: ClaimState) -> Newest {
        Newest {
            generation: g,
            record: ClaimRecord {
                owner: h.as_ref().map_or("old".into(), Holder::label),
                at_unix: at,
                state,
                holder: h,
                lease_secs: Some(100),
                destination: None,
            },
            renewed_unix: None,
        }
    }

    const RULES: LeaseRules = LeaseRules {
        lease: Duration::from_secs(100),
        renew_every: Duration::from_secs(10),
    };

    fn me() -> Holder {
        holder("m1", "b1", 10)
    }

    fn decide_with(n: Option<&Newest>, now: u64, alive: bool) -> Decision {
        decide(n, &me(), &RULES, now, &|_| alive)
    }

    fn is_busy(d: &Decision) -> bool {
        matches!(d, Decision::Busy(_))
    }

    #[test]
    fn no_claim_takes_the_first_generation() {
        assert_eq!(decide_with(None, 1000, true), Decision::Take(1));
    }

    #[test]
    fn a_live_process_on_this_host_keeps_its_claim_however_old() {
        let n = newest(3, Some(holder("m1", "b1", 11)), 10, ClaimState::Claimed);
        let d = decide_with(Some(&n), 100_000, true);
        assert!(
            matches!(&d, Decision::Busy(b) if b.on_this_host && b.expires_unix.is_none()),
            "{d:?}"
        );
    }

    #[test]
    fn a_dead_process_or_an_earlier_boot_on_this_host_is_taken_over_at_once() {
        let dead = newest(3, Some(holder("m1", "b1", 11)), 999, ClaimState::Claimed);
        assert_eq!(decide_with(Some(&dead), 1000, false), Decision::Take(4));
        let earlier_boot = newest(5, Some(holder("m1", "b0", 11)), 999, ClaimState::Claimed);
        assert_eq!(
            decide_with(Some(&earlier_boot), 1000, true),
            Decision::Take(6)
        );
        let own = newest(2, Some(me()), 999, ClaimState::Claimed);
        assert_eq!(decide_with(Some(&own), 1000, true), Decision::Take(3));
    }

    #[test]
    fn another_hosts_claim_is_a_lease_that_renewals_extend() {
        let mut n = newest(1, Some(holder("m2", "b9", 10)), 800, ClaimState::Claimed);
        // Within the lease: busy, whatever this host knows about its processes.
        assert!(is_busy(&decide_with(Some(&n), 850, false)));
        // Not renewed for longer than the lease: taken over.
        assert_eq!(decide_with(Some(&n), 901, true), Decision::Take(2));
        // Renewed: alive again.
        n.renewed_unix = Some(890);
        let d = decide_with(Some(&n), 901, true);
        assert!(
            matches!(&d, Decision::Busy(b) if !b.on_this_host && b.expires_unix == Some(990)),
            "{d:?}"
        );
    }

    #[test]
    fn failed_or_holderless_old_claims_follow_the_lease() {
        let failed = newest(5, Some(holder("m2", "b9", 1)), 999, ClaimState::Failed);
        assert_eq!(decide_with(Some(&failed), 1000, true), Decision::Take(6));
        let legacy = newest(1, None, 990, ClaimState::Claimed);
        assert!(is_busy(&decide_with(Some(&legacy), 1000, false)));
        assert_eq!(decide_with(Some(&legacy), 1091, true), Decision::Take(2));
    }

    #[test]
    fn this_process_is_running_here_and_a_made_up_one_is_not() {
        let me = Holder::current();
        assert!(me.is_running_here());
        let other = Holder {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!other.is_running_here(), "a reused pid is not the holder");
    }

    #[test]
    fn keys_are_valid_and_distinct_for_any_id() {
        let a = item_prefix("images/web 01 (prod)");
        let b = item_prefix("images/web 01 [prod]");
        assert_ne!(a, b);
        assert!(a.starts_with(STATE_PREFIX) && a.ends_with('/'));
        assert!(
            a[STATE_PREFIX.len()..a.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        let p = item_prefix("x");
        assert_eq!(generation_of(&p, &claim_key(&p, 42)), Some(42));
        assert_eq!(generation_of(&p, &lease_key(&p, 42)), None);
        assert_eq!(generation_of(&p, &format!("{p}done.json")), None);
    }
}

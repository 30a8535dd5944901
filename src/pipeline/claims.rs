//! Per-image state kept in the bucket, so batch shards on different machines never import the
//! same image twice. Only create-only writes are used (S3 `If-None-Match: *`, OSS
//! `x-oss-forbid-overwrite`), which both services make atomic:
//!
//! - `imgport-state/<item>/claim-<generation>.json`: whoever creates generation g+1 owns the
//!   item; a claim that is older than the TTL, or marked failed, may be superseded by g+1.
//! - `imgport-state/<item>/done.json`: the image id once the import finished; final.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{ObjectStore, ObjectTarget, StoreError};

/// Prefix of every state object.
pub const STATE_PREFIX: &str = "imgport-state/";
/// Claims of one item listed at most (a generation is added per attempt).
const MAX_CLAIMS_LISTED: usize = 1000;
/// Largest state object read.
const MAX_STATE_BYTES: usize = 64 * 1024;

/// What a claim object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// Who works on the item (host, process, start time).
    pub owner: String,
    /// When the claim was written, Unix seconds.
    pub at_unix: u64,
    /// `claimed` while working; `failed` gives the item back.
    pub state: ClaimState,
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
}

/// The result of trying to claim an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process owns the item under this generation.
    Won { generation: u32 },
    /// The item was imported already.
    Done(DoneRecord),
    /// Another process holds a live claim.
    Busy { owner: String, since_unix: u64 },
}

/// What to do given the newest claim of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Try to create this generation.
    Take(u32),
    Busy {
        owner: String,
        since_unix: u64,
    },
}

/// Pure rule: a newer generation may be created when there is no claim, the newest is
/// ours, it failed, or it is older than `ttl`.
fn decide(newest: Option<(u32, &ClaimRecord)>, owner: &str, ttl: Duration, now: u64) -> Decision {
    match newest {
        None => Decision::Take(1),
        Some((g, c))
            if c.owner == owner
                || c.state == ClaimState::Failed
                || now.saturating_sub(c.at_unix) > ttl.as_secs() =>
        {
            Decision::Take(g.saturating_add(1))
        }
        Some((_, c)) => Decision::Busy {
            owner: c.owner.clone(),
            since_unix: c.at_unix,
        },
    }
}

/// The folder of `item_id`'s state: a readable part plus a hash, so any id maps to a valid,
/// unique key.
pub fn item_prefix(item_id: &str) -> String {
    let readable = super::batch::key_safe(item_id);
    let hash = crate::transfer::digest::hex(&Sha256::digest(item_id.as_bytes()));
    format!("{STATE_PREFIX}{readable}-{}/", &hash[..16])
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

/// Tries to claim `item_id` in `bucket` for `owner`.
pub async fn claim<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
    owner: &str,
    ttl: Duration,
    now_unix: u64,
) -> Result<Claim, StoreError> {
    let prefix = item_prefix(item_id);
    if let Some(done) =
        read_json::<S, DoneRecord>(store, &target(bucket, format!("{prefix}done.json"))).await?
    {
        return Ok(Claim::Done(done));
    }
    let keys = store.list_keys(bucket, &prefix, MAX_CLAIMS_LISTED).await?;
    let newest_gen = keys.iter().filter_map(|k| generation_of(&prefix, k)).max();
    let newest = match newest_gen {
        Some(g) => read_json::<S, ClaimRecord>(store, &target(bucket, claim_key(&prefix, g)))
            .await?
            .map(|c| (g, c)),
        None => None,
    };
    match decide(newest.as_ref().map(|(g, c)| (*g, c)), owner, ttl, now_unix) {
        Decision::Busy { owner, since_unix } => Ok(Claim::Busy { owner, since_unix }),
        Decision::Take(generation) => {
            let record = ClaimRecord {
                owner: owner.to_string(),
                at_unix: now_unix,
                state: ClaimState::Claimed,
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
            Ok(Claim::Busy {
                owner: theirs
                    .as_ref()
                    .map_or_else(String::new, |c| c.owner.clone()),
                since_unix: theirs.map_or(now_unix, |c| c.at_unix),
            })
        }
    }
}

/// Records the finished import; a second record for the same item is left as it was.
pub async fn mark_done<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
    record: &DoneRecord,
) -> Result<(), StoreError> {
    let key = format!("{}done.json", item_prefix(item_id));
    store.put_new(&target(bucket, key), to_json(record)).await?;
    Ok(())
}

/// Gives the item back after a failed attempt, so another shard (or a re-run) may take it at
/// once instead of after the TTL.
pub async fn release_failed<S: ObjectStore>(
    store: &S,
    bucket: &str,
    item_id: &str,
    generation: u32,
    owner: &str,
    now_unix: u64,
) -> Result<(), StoreError> {
    let prefix = item_prefix(item_id);
    let record = ClaimRecord {
        owner: owner.to_string(),
        at_unix: now_unix,
        state: ClaimState::Failed,
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

    fn rec(owner: &str, at: u64, state: ClaimState) -> ClaimRecord {
        ClaimRecord {
            owner: owner.into(),
            at_unix: at,
            state,
        }
    }

    const TTL: Duration = Duration::from_secs(100);

    #[test]
    fn no_claim_takes_the_first_generation() {
        assert_eq!(decide(None, "me", TTL, 1000), Decision::Take(1));
    }

    #[test]
    fn a_live_claim_of_another_owner_is_busy() {
        let c = rec("other", 950, ClaimState::Claimed);
        assert_eq!(
            decide(Some((3, &c)), "me", TTL, 1000),
            Decision::Busy {
                owner: "other".into(),
                since_unix: 950
            }
        );
    }

    #[test]
    fn own_failed_or_stale_claims_are_superseded() {
        let own = rec("me", 990, ClaimState::Claimed);
        assert_eq!(decide(Some((3, &own)), "me", TTL, 1000), Decision::Take(4));
        let failed = rec("other", 999, ClaimState::Failed);
        assert_eq!(
            decide(Some((5, &failed)), "me", TTL, 1000),
            Decision::Take(6)
        );
        let stale = rec("other", 800, ClaimState::Claimed);
        assert_eq!(
            decide(Some((1, &stale)), "me", TTL, 1000),
            Decision::Take(2)
        );
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
        assert_eq!(generation_of(&p, &format!("{p}done.json")), None);
    }
}

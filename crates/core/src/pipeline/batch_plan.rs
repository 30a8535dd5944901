//! The dry run of a batch: every row of this shard inspected and planned exactly as
//! [`super::batch::run`] plans it (the same row settings, the same `prepare`), with nothing
//! uploaded, no claim taken and no service called. What a row would execute is its plan.

use std::path::PathBuf;

use serde::Serialize;

use super::batch::{BatchSettings, row_settings};
use super::import;
use super::manifest::{BatchItem, Shard};
use crate::plan::ImportPlan;

/// One row of a batch's dry run: its plan, or why it has none.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRow {
    pub id: String,
    pub position: usize,
    pub files: Vec<PathBuf>,
    /// Exit code the row alone would have had: 0 when it has a plan.
    pub exit_code: u8,
    pub error: Option<String>,
    pub plan: Option<ImportPlan>,
}

/// The dry run of a batch: the rows of this shard, in manifest order.
#[derive(Debug, Clone, Serialize)]
pub struct BatchPlan {
    pub shard: Option<Shard>,
    pub rows: Vec<PlannedRow>,
}

impl BatchPlan {
    /// 0 when every row has a plan; else the failed rows' code when they share one, else 1
    /// (the rule of [`super::batch::BatchReport::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        let mut codes = self.rows.iter().map(|r| r.exit_code).filter(|&c| c != 0);
        match codes.next() {
            None => 0,
            Some(first) if codes.all(|c| c == first) => first,
            Some(_) => 1,
        }
    }
}

/// Plans every row of `items` this shard owns with `settings`, reading only the local disks.
pub fn plan(items: &[BatchItem], settings: &BatchSettings) -> BatchPlan {
    let rows = items
        .iter()
        .filter(|item| settings.shard.is_none_or(|s| s.owns(item)))
        .map(|item| {
            let planned = row_settings(item, &settings.base, &settings.flags)
                .map_err(|e| (2, e))
                .and_then(|s| {
                    import::prepare(&item.files, &s)
                        .map_err(|e| (e.exit_code(), imgport_base::report::error_chain(&e)))
                });
            let (exit_code, error, plan) = match planned {
                Ok(prepared) => (0, None, Some(prepared.plan)),
                Err((code, e)) => (code, Some(e), None),
            };
            PlannedRow {
                id: item.id.clone(),
                position: item.position,
                files: item.files.clone(),
                exit_code,
                error,
                plan,
            }
        })
        .collect();
    BatchPlan {
        shard: settings.shard,
        rows,
    }
}

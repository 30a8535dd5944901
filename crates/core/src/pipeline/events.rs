//! What `-v` shows: one `tracing` info event per stage of an import (inspect, plan, upload
//! start and resume, part milestones, Complete, ImportImage, each status change while
//! waiting, finish). The library never prints; the binary decides whether these are shown.

use std::sync::Mutex;

use imgport_base::report::{Reporter, Stage};

use super::prepare::Prepared;
use crate::plan::PlannedDisk;
use imgport_store::UploadOutcome;

/// Milestones per upload: an event each time another tenth of the parts is done.
const MILESTONES: u32 = 10;

/// One event per inspected disk and one per planned disk.
pub(super) fn planned(prepared: &Prepared) {
    for d in &prepared.disks {
        let r = &d.inspected.opened.report;
        let format = r.format.map_or("unknown".to_string(), |f| format!("{f:?}"));
        tracing::info!(
            "inspected {}: {format}, virtual size {} bytes, {} findings",
            d.inspected.path.display(),
            r.virtual_size.unwrap_or(0),
            r.findings.len()
        );
    }
    let plan = &prepared.plan;
    tracing::info!(
        "plan: image {} in {}, {} disk(s)",
        plan.image.name.value,
        plan.region,
        plan.disks.len()
    );
    for d in &plan.disks {
        tracing::info!(
            "plan: disk {} {} as {} to oss://{}/{}: {} bytes in {} parts of {} bytes",
            d.device_index,
            d.source.display(),
            d.output.value.name(),
            d.bucket,
            d.object_key,
            d.object_size,
            d.parts.value.count,
            d.parts.value.part_size.get()
        );
    }
}

/// The end of one disk's upload: the object is complete (or was there already).
pub(super) fn uploaded(planned: &PlannedDisk, o: &UploadOutcome) {
    if o.already_present {
        tracing::info!(
            "disk {}: oss://{}/{} is there already with these bytes; nothing sent",
            planned.device_index,
            o.bucket,
            o.key
        );
    } else {
        tracing::info!(
            "disk {}: upload complete: oss://{}/{}, {} parts ({} sent, {} there already), {} retries",
            planned.device_index,
            o.bucket,
            o.key,
            o.parts,
            o.parts_sent,
            o.parts_reused,
            o.retries
        );
        let f = &o.in_flight;
        let steps: Vec<String> = f.changes.iter().map(|c| c.to.to_string()).collect();
        tracing::info!(
            "disk {}: parts in flight: {} chosen from the measured rate (start {}, cap {}{}), \
             median part {:.3} s",
            planned.device_index,
            f.chosen,
            f.start,
            f.max,
            if steps.is_empty() {
                String::new()
            } else {
                format!(", went to {}", steps.join(", "))
            },
            f.part_seconds_median
        );
    }
}

/// A [`Reporter`] that passes everything on to `inner` and turns the stages it hears about
/// into events: a stage's start, every message (resume decisions, retries, the cloud's
/// status changes), and a milestone each tenth of an upload's parts.
pub(super) struct Logged<'a> {
    inner: &'a dyn Reporter,
    label: String,
    parts: u32,
    state: Mutex<Count>,
}

#[derive(Default)]
struct Count {
    /// The stage under way is the store's part upload.
    uploading: bool,
    /// The last call was `sent`: the `advance` that follows is the same part.
    just_sent: bool,
    sent: u32,
    reused: u32,
    milestone: u32,
}

impl<'a> Logged<'a> {
    /// Events labelled `label` (e.g. "disk 1"); `parts` is the upload's part count, 0 when
    /// the stages are not an upload.
    pub(super) fn new(inner: &'a dyn Reporter, label: String, parts: u32) -> Self {
        Self {
            inner,
            label,
            parts,
            state: Mutex::new(Count::default()),
        }
    }

    fn count(&self) -> std::sync::MutexGuard<'_, Count> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Reporter for Logged<'_> {
    fn start(&self, stage: Stage, what: &str, total: Option<u64>) {
        {
            let mut c = self.count();
            *c = Count {
                uploading: stage == Stage::Upload,
                ..Count::default()
            };
        }
        match total {
            Some(t) if stage != Stage::CloudImport => {
                tracing::info!("{}: {what} ({t} bytes)", self.label)
            }
            _ => tracing::info!("{}: {what}", self.label),
        }
        self.inner.start(stage, what, total);
    }

    fn advance(&self, done: u64) {
        let milestone = {
            let mut c = self.count();
            if c.uploading && self.parts > 0 {
                if std::mem::take(&mut c.just_sent) {
                    // Counted by `sent`.
                } else {
                    c.reused += 1;
                }
                let tenth = (c.sent + c.reused) * MILESTONES / self.parts;
                (tenth > c.milestone).then(|| {
                    c.milestone = tenth;
                    (c.sent, c.reused)
                })
            } else {
                None
            }
        };
        if let Some((sent, reused)) = milestone {
            tracing::info!(
                "{}: {} of {} parts done ({sent} sent, {reused} there already)",
                self.label,
                sent + reused,
                self.parts
            );
        }
        self.inner.advance(done);
    }

    fn message(&self, text: &str) {
        tracing::info!("{}: {text}", self.label);
        self.inner.message(text);
    }

    fn sent(&self, bytes: u64) {
        {
            let mut c = self.count();
            c.sent += 1;
            c.just_sent = true;
        }
        self.inner.sent(bytes);
    }

    fn finish(&self) {
        self.inner.finish();
    }

    fn transfers_done(&self) {
        self.inner.transfers_done();
    }
}

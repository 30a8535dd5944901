//! Running imports end to end: the only module that knows the order of the stages (inspect,
//! plan, stream-convert-hash-upload, import, poll, finish), plus batches and reports.
//!
//! Must not parse formats, sign requests or talk HTTP itself: it calls the layers that do.

pub mod batch;
pub mod batch_plan;
pub mod bucket;
pub mod claims;
mod events;
pub mod import;
pub mod manifest;
pub mod packer;
pub mod prepare;
pub mod refused;
pub mod report;
pub mod tuner;

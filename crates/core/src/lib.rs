//! The plan and the run: [`plan::ImportPlan`] holds every decision of an import, and
//! [`pipeline`] executes plans end to end (single imports, batches, Packer manifests),
//! talking to the store and the cloud through their clients.

pub mod pipeline;
pub mod plan;

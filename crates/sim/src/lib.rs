//! Local emulator of the cloud APIs imgport calls (`imgport sim`), so every cloud path can be
//! tested over real sockets on 127.0.0.1 without an account.
//!
//! Owns: the HTTP server (`server.rs`), request authentication exactly as the services do
//! it (`auth.rs`), the ECS image API state machine (`ecs.rs`; ImportImage in `import.rs`),
//! and the check of imported objects (`disk.rs`); CreateImage and its snapshot/instance
//! fixtures (`create.rs`), E-HPC AddImage (`ehpc.rs`, routed by API version) and Kingsoft
//! KEC ModifyInstanceImage (`kec.rs`, routed by its SigV4 signature, verified by `sigv4.rs`);
//! RAM's import role (`ram.rs`, routed by API version, consulted by ImportImage); STS
//! (`sts.rs`: AssumeRole, AssumeRoleWithOIDC, credentials that expire); the ECS instance
//! metadata service of an emulated instance (`metadata.rs`: region, RAM role credentials);
//! the parameter rules (`params.rs`) and the signature primitives (`wire.rs`).
//! Shares no code with the client (`imgport-cloud` is a dev-dependency only, for tests that
//! drive it against the emulator): its rules and signature checks are written from the
//! documents (docs/CLOUD-API.md), so a wrong rule on either side fails a test.

pub mod auth;
pub mod bucket;
pub mod create;
pub mod disk;
pub mod ecs;
pub mod ehpc;
pub mod fault;
pub mod form;
pub mod import;
pub mod kec;
pub mod metadata;
pub mod params;
pub mod ram;
pub mod s3;
pub mod sandbox;
pub mod server;
pub mod sigv4;
pub mod state_file;
pub mod sts;
pub mod wan;
pub mod wire;

/// The fixed test fixtures `imgport sim` prints after its endpoint and credentials, one
/// `name: value` line each: KEC's test AccessKey, instances, images and key pair, and the
/// ECS snapshots and instances CreateImage knows.
pub fn fixtures_text() -> String {
    let mut lines = vec![
        ("ksyun_access_key_id", kec::TEST_ACCESS_KEY_ID.to_string()),
        ("ksyun_secret_key", kec::TEST_SECRET_KEY.to_string()),
        ("kec_instance_stopped", kec::INSTANCE_STOPPED.to_string()),
        (
            "kec_instance_stopped_2",
            kec::INSTANCE_STOPPED_2.to_string(),
        ),
        ("kec_instance_running", kec::INSTANCE_RUNNING.to_string()),
        ("kec_instance_spot", kec::INSTANCE_SPOT.to_string()),
        ("kec_image_public", kec::IMAGE_PUBLIC.to_string()),
        ("kec_image_custom", kec::IMAGE_CUSTOM.to_string()),
        ("kec_image_assembled", kec::IMAGE_ASSEMBLED.to_string()),
        (
            "kec_image_no_key_login",
            kec::IMAGE_NO_KEY_LOGIN.to_string(),
        ),
        ("kec_key_id", kec::KEY_ID.to_string()),
    ];
    for s in create::SNAPSHOTS {
        let kind = if s.system { "system" } else { "data" };
        lines.push((
            "ecs_snapshot",
            format!(
                "{} {kind} {} GiB created {}{}{}",
                s.id,
                s.size_gib,
                s.created,
                if s.ready { "" } else { " (not ready)" },
                if s.fails { " (images fail)" } else { "" }
            ),
        ));
    }
    for i in create::INSTANCES {
        let lock = if i.locked_for_security { " locked" } else { "" };
        lines.push(("ecs_instance", format!("{} {}{lock}", i.id, i.status)));
    }
    lines
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect()
}

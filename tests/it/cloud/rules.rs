//! Both sides held to the documents: every case of `tests/data/ecs-rules.toml` goes through
//! the client's local checks (its typed requests and their `validate`) and, as a raw signed
//! request that skips those checks, through the emulator; each must give the documented
//! outcome. The client and the emulator share no rule code, so a rule written wrong on either
//! side fails here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{REGION, SimProcess, assert_all_passed, runtime};
use imgport::cloud::aliyun::ecs::{
    CreateImageRequest, DiskDeviceMapping, ECS_VERSION, ImageSource, ImportImageRequest,
    ModifyImageAttributeRequest, SnapshotDisk,
};
use imgport::cloud::aliyun::rpc::{RpcClient, SignatureVersion};
use imgport::cloud::aliyun::types::{
    Architecture, BootMode, DetectionStrategy, DiskFormat, ImdsSupport, LicenseType,
    ModifiableStatus, NvmeSupport, OsType, Platform,
};

/// The file, relative to the workspace root.
const TABLE: &str = "tests/data/ecs-rules.toml";

#[derive(Debug, Deserialize)]
struct Table {
    /// Per action, the parameters every case starts from.
    base: BTreeMap<String, BTreeMap<String, String>>,
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    action: String,
    params: BTreeMap<String, String>,
    /// A documented error code, or `ok`.
    code: String,
    status: u16,
}

fn table() -> Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{TABLE}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{TABLE}: {e}"))
}

/// The wire parameters of one case: its action's base, overridden by its own.
struct Wire(BTreeMap<String, String>);

/// What the client does with a request before sending it.
#[derive(Debug, PartialEq, Eq)]
enum Local {
    /// It would send it.
    Sends,
    /// Its `validate` refuses it with this code.
    Refuses(String),
    /// Its typed request cannot hold this parameter's value (an enumeration's unknown value,
    /// a size that is not a number): refused before any request exists.
    CannotHold(String),
}

impl Wire {
    fn of(table: &Table, case: &Case) -> Self {
        let mut all = table.base.get(&case.action).cloned().unwrap_or_default();
        all.extend(case.params.clone());
        Self(all)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `name`'s value read by the client's own parser, `None` when absent.
    fn typed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Local> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .ok_or_else(|| Local::CannotHold(name.to_string())),
        }
    }

    fn gib(&self, name: &str) -> Result<Option<u64>, Local> {
        self.typed(name, |s| s.parse::<u64>().ok())
    }

    /// The numbered groups `prefix.N.*` that carry any parameter, N ascending.
    fn numbered(&self, prefix: &str) -> Vec<usize> {
        let mut ns: Vec<usize> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.strip_prefix('.'))
            .filter_map(|rest| rest.split_once('.')?.0.parse().ok())
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn verdict<T>(built: Result<T, imgport::cloud::aliyun::validate::Invalid>) -> Local {
    match built {
        Ok(_) => Local::Sends,
        Err(e) => Local::Refuses(e.code.to_string()),
    }
}

/// ImportImage through the client's builder.
fn local_import(w: &Wire) -> Result<Local, Local> {
    let mut b = ImportImageRequest::builder(w.get("RegionId").unwrap_or_default());
    if let Some(v) = w.get("ImageName") {
        b = b.image_name(v);
    }
    if let Some(v) = w.get("Description") {
        b = b.description(v);
    }
    if let Some(v) = w.typed("Architecture", Architecture::parse)? {
        b = b.architecture(v);
    }
    if let Some(v) = w.typed("OSType", OsType::parse)? {
        b = b.os_type(v);
    }
    if let Some(v) = w.typed("Platform", Platform::parse)? {
        b = b.platform(v);
    }
    if let Some(v) = w.typed("BootMode", BootMode::parse)? {
        b = b.boot_mode(v);
    }
    if let Some(v) = w.typed("LicenseType", LicenseType::parse)? {
        b = b.license_type(v);
    }
    if let Some(v) = w.typed("DetectionStrategy", DetectionStrategy::parse)? {
        b = b.detection_strategy(v);
    }
    if let Some(v) = w.typed("Features.NvmeSupport", NvmeSupport::parse)? {
        b = b.nvme_support(v);
    }
    if let Some(v) = w.typed("Features.ImdsSupport", ImdsSupport::parse)? {
        b = b.imds_support(v);
    }
    if let Some(v) = w.get("ClientToken") {
        b = b.client_token(v);
    }
    for n in w.numbered("Tag") {
        let get = |f: &str| w.get(&format!("Tag.{n}.{f}")).unwrap_or_default();
        b = b.tag(get("Key"), get("Value"));
    }
    for n in w.numbered("DiskDeviceMapping") {
        let field = |f: &str| format!("DiskDeviceMapping.{n}.{f}");
        let mut d = DiskDeviceMapping::new(
            w.get(&field("OSSBucket")).unwrap_or_default(),
            w.get(&field("OSSObject")).unwrap_or_default(),
        );
        if let Some(f) = w.typed(&field("Format"), DiskFormat::parse)? {
            d = d.format(f);
        }
        if let Some(g) = w.gib(&field("DiskImageSize"))? {
            d = d.size_gib(g);
        }
        b = b.disk(d);
    }
    Ok(verdict(b.build()))
}

/// CreateImage through the client's builder; the mappings win over `SnapshotId`.
fn local_create(w: &Wire) -> Result<Local, Local> {
    let mappings = w.numbered("DiskDeviceMapping");
    let source = if mappings.is_empty() {
        ImageSource::Snapshot(w.get("SnapshotId").unwrap_or_default().to_string())
    } else {
        let mut disks = Vec::new();
        for n in mappings {
            let field = |f: &str| format!("DiskDeviceMapping.{n}.{f}");
            disks.push(SnapshotDisk {
                snapshot_id: w.get(&field("SnapshotId")).map(str::to_string),
                size_gib: w.gib(&field("Size"))?,
                device: w.get(&field("Device")).map(str::to_string),
            });
        }
        ImageSource::Disks(disks)
    };
    let mut b = CreateImageRequest::builder(w.get("RegionId").unwrap_or_default(), source);
    if let Some(v) = w.get("ImageName") {
        b = b.image_name(v);
    }
    if let Some(v) = w.get("ImageVersion") {
        b = b.image_version(v);
    }
    if let Some(v) = w.get("Description") {
        b = b.description(v);
    }
    if let Some(v) = w.get("ImageFamily") {
        b = b.image_family(v);
    }
    if let Some(v) = w.typed("Platform", Platform::parse)? {
        b = b.platform(v);
    }
    if let Some(v) = w.typed("Architecture", Architecture::parse)? {
        b = b.architecture(v);
    }
    if let Some(v) = w.typed("BootMode", BootMode::parse)? {
        b = b.boot_mode(v);
    }
    if let Some(v) = w.get("ClientToken") {
        b = b.client_token(v);
    }
    Ok(verdict(b.build()))
}

/// ModifyImageAttribute through the client's builder.
fn local_modify(w: &Wire) -> Result<Local, Local> {
    let mut b = ModifyImageAttributeRequest::builder(
        w.get("RegionId").unwrap_or_default(),
        w.get("ImageId").unwrap_or_default(),
    );
    if let Some(v) = w.get("ImageName") {
        b = b.image_name(v);
    }
    if let Some(v) = w.get("Description") {
        b = b.description(v);
    }
    if let Some(v) = w.get("ImageFamily") {
        b = b.image_family(v);
    }
    if let Some(v) = w.typed("BootMode", BootMode::parse)? {
        b = b.boot_mode(v);
    }
    if let Some(v) = w.typed("LicenseType", LicenseType::parse)? {
        b = b.license_type(v);
    }
    if let Some(v) = w.typed("Status", ModifiableStatus::parse)? {
        b = b.status(v);
    }
    if let Some(v) = w.typed("Features.NvmeSupport", NvmeSupport::parse)? {
        b = b.nvme_support(v);
    }
    if let Some(v) = w.typed("Features.ImdsSupport", ImdsSupport::parse)? {
        b = b.imds_support(v);
    }
    Ok(verdict(b.build()))
}

fn local(action: &str, w: &Wire) -> Local {
    let run = match action {
        "ImportImage" => local_import,
        "CreateImage" => local_create,
        "ModifyImageAttribute" => local_modify,
        other => panic!("{TABLE}: no client adapter for {other}"),
    };
    run(w).unwrap_or_else(|refused| refused)
}

/// Whether the client's verdict is the documented one.
fn local_agrees(case: &Case, got: &Local) -> bool {
    match got {
        Local::Sends => case.code == "ok",
        Local::Refuses(code) => *code == case.code,
        Local::CannotHold(name) => case.code != "ok" && case.params.contains_key(name),
    }
}

/// The emulator's answer to the raw request with `DryRun=true`: (code, status), where a
/// request that passes every rule answers `DryRunOperation` and counts as `("ok", 200)`.
async fn remote(rpc: &RpcClient, action: &str, w: &Wire) -> (String, u16) {
    let action: &'static str = match action {
        "ImportImage" => "ImportImage",
        "CreateImage" => "CreateImage",
        "ModifyImageAttribute" => "ModifyImageAttribute",
        other => panic!("{TABLE}: unknown action {other}"),
    };
    let mut params = w.pairs();
    params.push(("DryRun".into(), "true".into()));
    match rpc.call_raw(action, ECS_VERSION, &params).await {
        Ok(body) => (
            format!(
                "answered without DryRunOperation: {}",
                String::from_utf8_lossy(&body)
            ),
            200,
        ),
        Err(err) => {
            let api = err
                .api()
                .unwrap_or_else(|| panic!("{action}: not an API error: {err:?}"));
            if api.code == "DryRunOperation" {
                ("ok".into(), 200)
            } else {
                (api.code.clone(), api.http_status)
            }
        }
    }
}

#[test]
fn client_and_emulator_both_follow_the_documented_rules() {
    let table = table();
    assert!(table.case.len() >= 60, "{TABLE} lost cases");
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    // ModifyImageAttribute needs an image: an Available one made from the fixture snapshot.
    let image_id = rt
        .block_on(
            client.create_image(
                CreateImageRequest::builder(REGION, ImageSource::Snapshot("s-simsystem40".into()))
                    .image_name("rules-target")
                    .build()
                    .unwrap(),
            ),
        )
        .expect("CreateImage")
        .image_id;
    let mut failed = Vec::new();
    for case in &table.case {
        let mut wire = Wire::of(&table, case);
        if case.action == "ModifyImageAttribute" && !case.params.contains_key("ImageId") {
            wire.0.insert("ImageId".into(), image_id.clone());
        }
        let got = local(&case.action, &wire);
        if !local_agrees(case, &got) {
            failed.push(format!(
                "client, {}: {got:?}, documented {} ({})",
                case.name, case.code, case.status
            ));
        }
        let (code, status) = rt.block_on(remote(client.rpc(), &case.action, &wire));
        if (code.as_str(), status) != (case.code.as_str(), case.status) {
            failed.push(format!(
                "emulator, {}: {code} ({status}), documented {} ({})",
                case.name, case.code, case.status
            ));
        }
    }
    assert_all_passed(&failed, 2 * table.case.len());
}

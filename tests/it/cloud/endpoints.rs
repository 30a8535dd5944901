//! Endpoints: for every region the official SDKs' endpoint map names and every public region,
//! imgport's ECS and E-HPC hosts equal what the official Python SDKs resolve themselves
//! (`alibabacloud_ecs20140526`, `alibabacloud_ehpcinstant20230701`, in the SDK venv); and
//! for every OSS region, imgport's public and internal hosts are the documented ones: the
//! official OSS SDK's rule (`alibabacloud_oss_v2`) or the documentation's exceptions.

use std::collections::BTreeMap;
use std::process::Command;

use imgport_cloud::aliyun::ehpc::ehpc_endpoint;
use imgport_cloud::aliyun::rpc::{ECS_ENDPOINTS, ecs_endpoint};

/// Public regions of ECS (docs/CLOUD-API.md), which the map does not name.
const PUBLIC: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "us-east-1",
    "us-west-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
    "na-south-1",
];

/// Asks the official SDKs: `(their ECS endpoint map's regions, region → [ECS host, E-HPC host])`.
const RESOLVE: &str = r#"
import json, sys
from alibabacloud_tea_openapi.models import Config
from alibabacloud_ecs20140526.client import Client as Ecs
from alibabacloud_ehpcinstant20230701.client import Client as Ehpc
config = lambda r: Config(access_key_id="id", access_key_secret="secret", region_id=r)
mapped = sorted(Ecs(config("cn-hangzhou"))._endpoint_map)
regions = sorted(set(json.loads(sys.argv[1])) | set(mapped))
hosts = {r: [Ecs(config(r))._endpoint, Ehpc(config(r))._endpoint] for r in regions}
print(json.dumps([mapped, hosts]))
"#;

#[test]
fn ecs_and_ehpc_endpoints_are_the_official_sdks_for_every_region() {
    let Some(py) = super::ehpc::venv_with(
        "alibabacloud_ehpcinstant20230701",
        "alibabacloud_ehpcinstant20230701",
    ) else {
        panic!("python3 not found: scripts/install-deps.sh installs it");
    };
    let ours: Vec<&str> = ECS_ENDPOINTS.iter().map(|(r, _)| *r).collect();
    let asked: Vec<&str> = PUBLIC.iter().chain(&ours).copied().collect();
    let (mapped, hosts): (Vec<String>, BTreeMap<String, [String; 2]>) =
        sdk_answer(&py, RESOLVE, &asked);
    // The same regions have exceptions on both sides.
    assert_eq!(mapped, ours, "regions of the SDK's endpoint map");
    let mut wrong = Vec::new();
    for (region, [ecs, ehpc]) in &hosts {
        if ecs_endpoint(region) != *ecs {
            wrong.push(format!(
                "ECS {region}: {} vs the SDK's {ecs}",
                ecs_endpoint(region)
            ));
        }
        if ehpc_endpoint(region) != *ehpc {
            wrong.push(format!(
                "E-HPC {region}: {} vs the SDK's {ehpc}",
                ehpc_endpoint(region)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(hosts.len() >= PUBLIC.len() + ECS_ENDPOINTS.len() - 1);
}

/// Where OSS's documentation ("Regions and endpoints") names other hosts than the official
/// OSS SDK's rule: region, public host, internal host (docs/CLOUD-API.md §Endpoints).
const OSS_EXCEPTIONS: &[(&str, &str, Option<&str>)] = &[
    (
        "rg-china-mainland",
        "oss-rg-china-mainland.aliyuncs.com",
        None,
    ),
    (
        "cn-hangzhou-finance",
        "oss-cn-hzfinance.aliyuncs.com",
        Some("oss-cn-hzfinance-internal.aliyuncs.com"),
    ),
    (
        "cn-shanghai-finance-1",
        "oss-cn-shanghai-finance-1-pub.aliyuncs.com",
        Some("oss-cn-shanghai-finance-1-pub-internal.aliyuncs.com"),
    ),
    (
        "cn-shenzhen-finance-1",
        "oss-cn-szfinance.aliyuncs.com",
        Some("oss-cn-szfinance-internal.aliyuncs.com"),
    ),
    (
        "cn-beijing-finance-1",
        "oss-cn-beijing-finance-1-pub.aliyuncs.com",
        Some("oss-cn-beijing-finance-1-pub-internal.aliyuncs.com"),
    ),
];

/// Asks the official OSS SDK (`alibabacloud_oss_v2`): region → [public URL, internal URL].
const OSS_RESOLVE: &str = r#"
import json, sys
from alibabacloud_oss_v2 import endpoints
regions = json.loads(sys.argv[1])
print(json.dumps({r: [endpoints.from_region(r, False, t) for t in ("", "internal")] for r in regions}))
"#;

#[test]
fn oss_endpoints_are_the_documented_hosts_for_every_region() {
    use imgport_store::StoreConfig;
    use imgport_store::oss::OSS_REGIONS;
    let Some(py) = super::ehpc::venv_with("alibabacloud-oss-v2", "alibabacloud_oss_v2") else {
        panic!("python3 not found: scripts/install-deps.sh installs it");
    };
    let regions: Vec<&str> = OSS_REGIONS.iter().map(|r| r.region).collect();
    let sdk: BTreeMap<String, [String; 2]> = sdk_answer(&py, OSS_RESOLVE, &regions);
    let mut wrong = Vec::new();
    for region in &regions {
        let (public, internal) = match OSS_EXCEPTIONS.iter().find(|e| e.0 == *region) {
            Some((_, p, i)) => (format!("https://{p}"), i.map(|i| format!("https://{i}"))),
            // Everywhere else the SDK's rule is the documented host.
            None => {
                let [p, i] = &sdk[*region];
                (p.clone(), Some(i.clone()))
            }
        };
        let ours = StoreConfig::oss(region, false).map(|c| c.endpoint);
        if ours.as_ref().ok() != Some(&public) {
            wrong.push(format!("OSS {region}: {ours:?}, documented {public}"));
        }
        let ours = StoreConfig::oss(region, true).ok().map(|c| c.endpoint);
        if ours != internal {
            wrong.push(format!(
                "OSS {region} internal: {ours:?}, documented {internal:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Every exception is a region of the table, and differs from the SDK's rule.
    for (region, public, internal) in OSS_EXCEPTIONS {
        let documented = [
            Some(format!("https://{public}")),
            internal.map(|i| format!("https://{i}")),
        ];
        let [p, i] = sdk[*region].clone();
        assert_ne!(documented, [Some(p), Some(i)], "{region} is no exception");
    }
    // A region OSS does not document is refused with what to do.
    let e = StoreConfig::oss("me-central-1", false).unwrap_err();
    assert!(e.to_string().contains("--oss-endpoint"), "{e}");
}

/// What the official SDK's `script` (run by `py`) prints as JSON for the regions `asked`.
fn sdk_answer<T: serde::de::DeserializeOwned>(
    py: &std::path::Path,
    script: &str,
    asked: &[&str],
) -> T {
    let out = Command::new(py)
        .args(["-c", script, &serde_json::to_string(asked).unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

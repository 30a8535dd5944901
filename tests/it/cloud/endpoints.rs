//! Endpoints: for every region the official SDKs' endpoint map names and every public region,
//! imgport's ECS and E-HPC hosts equal what the official Python SDKs resolve themselves
//! (`alibabacloud_ecs20140526`, `alibabacloud_ehpcinstant20230701`, in the SDK venv).

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
    let out = Command::new(py)
        .args(["-c", RESOLVE, &serde_json::to_string(&asked).unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mapped, hosts): (Vec<String>, BTreeMap<String, [String; 2]>) =
        serde_json::from_slice(&out.stdout).unwrap();
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

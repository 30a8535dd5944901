//! The automatic choice of OSS's internal endpoint: the binary asks the ECS instance metadata
//! service (`imgport sim --instance-region`, pointed at by IMGPORT_ECS_METADATA_ENDPOINT)
//! for the instance's region, and the plan says internal only for a bucket in that region;
//! `--internal` / `--no-internal` override it, an explicit endpoint is not probed. The
//! internal hosts cannot be reached from a test, so the plan (`plan --json`,
//! `import --dry-run`) is what is checked: the run connects to what the plan names. The same
//! emulated service hands the instance's RAM role to the credential chain.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use crate::util::*;

/// `imgport sim` serving the metadata of an instance in one region.
struct Instance {
    child: Child,
    metadata: String,
    /// The emulator's S3 server (bucket `images` in cn-hangzhou).
    s3: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn start(region: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .args(["sim", "--instance-region", region])
            .args(["--instance-role", "imgport-test-role", "--bucket", "images"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start imgport sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let mut field = |name: &str| {
            let prefix = format!("{name}: ");
            lines
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
                .unwrap_or_else(|| panic!("imgport sim printed no {name}"))
        };
        let s3 = field("s3_endpoint");
        let metadata = field("metadata_endpoint");
        Self {
            child,
            metadata,
            s3,
        }
    }
}

/// A metadata address where nothing listens: a port bound, then closed.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// `imgport ARGS… FILE` with the metadata service at `metadata`.
fn run(metadata: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args(args)
        .args(["--bucket", "images", "--allow-no-os"])
        .arg(image("content.raw"))
        .env("IMGPORT_ECS_METADATA_ENDPOINT", metadata)
        .env_remove("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
        .env_remove("IMGPORT_OSS_ENDPOINT")
        .current_dir(dir.path())
        .output()
        .expect("run imgport")
}

/// The plan's `oss_endpoint` of `plan --json --region REGION EXTRA…`.
fn endpoint(metadata: &str, region: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--json", "--region", region];
    args.extend(extra);
    ok_json(&run(metadata, &args))["plan"]["oss_endpoint"].clone()
}

#[test]
fn an_instance_in_the_buckets_region_plans_the_internal_endpoint() {
    let ecs = Instance::start("cn-hangzhou");
    let e = endpoint(&ecs.metadata, "cn-hangzhou", &[]);
    assert_eq!(e["internal"], true, "{e}");
    assert_eq!(e["why"], "instance in cn-hangzhou", "{e}");
    assert_eq!(
        e["url"], "https://oss-cn-hangzhou-internal.aliyuncs.com",
        "{e}"
    );
    // The dry run says so in words.
    let out = run(
        &ecs.metadata,
        &["import", "--dry-run", "--region", "cn-hangzhou"],
    );
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Internal endpoint: yes (instance in cn-hangzhou)"),
        "{text}"
    );
    // --no-internal wins over the instance's region.
    let e = endpoint(&ecs.metadata, "cn-hangzhou", &["--no-internal"]);
    assert_eq!(e["internal"], false, "{e}");
    assert_eq!(e["why"], "--no-internal", "{e}");
    assert_eq!(e["url"], "https://oss-cn-hangzhou.aliyuncs.com", "{e}");
}

#[test]
fn an_instance_in_another_region_plans_the_public_endpoint() {
    let ecs = Instance::start("cn-beijing");
    let e = endpoint(&ecs.metadata, "cn-hangzhou", &[]);
    assert_eq!(e["internal"], false, "{e}");
    assert_eq!(
        e["why"], "instance in cn-beijing, bucket in cn-hangzhou",
        "{e}"
    );
    assert_eq!(e["url"], "https://oss-cn-hangzhou.aliyuncs.com", "{e}");
    // The finance cloud's documented hosts, not the rule's.
    let e = endpoint(&ecs.metadata, "cn-shenzhen-finance-1", &["--internal"]);
    assert_eq!(
        e["url"], "https://oss-cn-szfinance-internal.aliyuncs.com",
        "{e}"
    );
}

#[test]
fn no_metadata_service_plans_the_public_endpoint_unless_forced() {
    let nothing = closed_port();
    let e = endpoint(&nothing, "cn-hangzhou", &[]);
    assert_eq!(e["internal"], false, "{e}");
    let why = e["why"].as_str().unwrap();
    assert!(why.starts_with("not on ECS: "), "{e}");
    // Refused at once, not waited for.
    assert!(!why.contains("within"), "{e}");
    let e = endpoint(&nothing, "cn-hangzhou", &["--internal"]);
    assert_eq!(e["internal"], true, "{e}");
    assert_eq!(e["why"], "forced by --internal", "{e}");
    // Told not to ask: the SDKs' variable.
    let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args(["plan", "--json", "--region", "cn-hangzhou"])
        .args(["--bucket", "images", "--allow-no-os"])
        .arg(image("content.raw"))
        .env("IMGPORT_ECS_METADATA_ENDPOINT", &nothing)
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let e = ok_json(&out)["plan"]["oss_endpoint"].clone();
    assert_eq!(
        e["why"], "not on ECS: ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
        "{e}"
    );
    // --internal and --no-internal together are a usage error.
    let out = run(
        &nothing,
        &[
            "plan",
            "--region",
            "cn-hangzhou",
            "--internal",
            "--no-internal",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_explicit_endpoint_is_not_probed_and_unknown_regions_are_refused() {
    let ecs = Instance::start("cn-hangzhou");
    for (flag, what) in [
        (&["--sandbox"][..], "sandbox"),
        (
            &["--oss-endpoint", "http://127.0.0.1:9"][..],
            "--oss-endpoint",
        ),
    ] {
        let mut args = vec!["import", "--dry-run", "--json", "--region", "cn-hangzhou"];
        args.extend(flag);
        let e = ok_json(&run(&ecs.metadata, &args))["plan"]["oss_endpoint"].clone();
        assert_eq!(e["internal"], false, "{e}");
        assert_eq!(e["why"], format!("the endpoint is given ({what})"), "{e}");
        assert!(e.get("url").is_none(), "{e}");
    }
    // A region OSS documents no host for: refused at plan time with what to do.
    let out = run(
        &ecs.metadata,
        &["plan", "--region", "me-central-1", "--no-internal"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("me-central-1") && err.contains("--oss-endpoint"),
        "{err}"
    );
}

#[test]
fn the_emulated_instance_serves_its_ram_role_to_the_credential_chain() {
    let ecs = Instance::start("cn-hangzhou");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("small.bin");
    std::fs::write(&src, vec![7u8; 300 << 10]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .arg("upload")
        .arg(&src)
        .args(["--bucket", "images", "--key", "role/small.bin", "--json"])
        .args(["--region", "cn-hangzhou", "--path-style", "--oss-endpoint"])
        .arg(&ecs.s3)
        .arg("--journal")
        .arg(dir.path().join("journal"))
        .env_clear()
        .env("HOME", dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("IMGPORT_ECS_METADATA_ENDPOINT", &ecs.metadata)
        .env("ALIBABA_CLOUD_ECS_METADATA", "imgport-test-role")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let v = ok_json(&out);
    assert_eq!(v["credentials"]["kind"], "ecs_ram_role", "{v}");
    assert_eq!(v["credentials"]["name"], "imgport-test-role", "{v}");
    assert_eq!(v["size"], 300 << 10, "{v}");
}

#[test]
fn each_batch_row_decides_with_its_own_region() {
    let ecs = Instance::start("cn-hangzhou");
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.raw");
    let manifest = dir.path().join("b.toml");
    let row = |name: &str, region: &str| {
        format!(
            "[[image]]\nname = \"{name}\"\nregion = \"{region}\"\nfiles = [\"{}\"]\n\n",
            src.display()
        )
    };
    let text = format!(
        "[defaults]\nbucket = \"images\"\nallow_no_os = true\n\n{}{}",
        row("hz", "cn-hangzhou"),
        row("bj", "cn-beijing")
    );
    std::fs::write(&manifest, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .arg("batch")
        .arg(&manifest)
        .args(["--dry-run", "--json"])
        .env("IMGPORT_ECS_METADATA_ENDPOINT", &ecs.metadata)
        .env_remove("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
        .env_remove("IMGPORT_OSS_ENDPOINT")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let v = ok_json(&out);
    let endpoint = |i: usize| v["rows"][i]["plan"]["oss_endpoint"].clone();
    assert_eq!(endpoint(0)["internal"], true, "{v}");
    assert_eq!(endpoint(0)["why"], "instance in cn-hangzhou", "{v}");
    assert_eq!(endpoint(1)["internal"], false, "{v}");
    assert_eq!(
        endpoint(1)["url"],
        "https://oss-cn-beijing.aliyuncs.com",
        "{v}"
    );
}

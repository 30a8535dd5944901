//! `imgport ehpc add-image` (E-HPC Instant 2023-07-01 AddImage, docs/CLOUD-API.md §EHPC) against
//! the emulator: VM and container images, the pipeline's `register_vm_image`, the password kept out
//! of every output, every local rule refused before sending, and documented error codes.

use super::*;
use imgport::cloud::aliyun::ecs::{CreateImageRequest, ImageSource};
use imgport::cloud::aliyun::ehpc::{AddImageRequest, EHPC_VERSION, EhpcClient};

const PASSWORD: &str = "Registry-Pa55word";

fn ehpc_client(sim: &SimProcess, version: SignatureVersion) -> EhpcClient {
    EhpcClient::new(sim.config(version), sim.credentials()).unwrap()
}

/// A CreateImage image; Available at once with `--import-seconds 0`.
fn ecs_image(sim: &SimProcess, rt: &tokio::runtime::Runtime, name: &str) -> String {
    let client = sim.client(SignatureVersion::V3);
    rt.block_on(
        client.create_image(
            CreateImageRequest::builder(REGION, ImageSource::Snapshot("s-simsystem40".into()))
                .image_name(name)
                .build()
                .unwrap(),
        ),
    )
    .unwrap()
    .image_id
}

/// Runs `imgport ehpc add-image --endpoint EP --json ARGS`.
fn add_image(ep: &str, args: &[&str]) -> crate::util::Run {
    cli(&[&["ehpc", "add-image", "--endpoint", ep, "--json"][..], args].concat())
}

#[test]
fn add_vm_and_container_images() {
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let rt = runtime();
    let ep = sim.endpoint.as_str();
    let vm = ecs_image(&sim, &rt, "hpc-base");
    let run = add_image(
        ep,
        &[
            "--name",
            "app-image",
            "--image-version",
            "V1.0",
            "--description",
            "Test image",
            "--vm-image-id",
            &vm,
        ],
    );
    run.expect_code(0);
    let v = run.json();
    assert_eq!(
        (v["success"].as_bool(), v["image_id"].as_str()),
        (Some(true), Some(vm.as_str())),
        "{v}"
    );
    assert_eq!(v["image_type"], "VM");
    // The pipeline's hook: a second registration of the same image counts as done.
    let client = ehpc_client(&sim, SignatureVersion::V2);
    let again = rt
        .block_on(client.register_vm_image("app-image-2", &vm, Some("re-run")))
        .unwrap();
    assert_eq!(
        (again.success, again.image_id.as_str()),
        (true, vm.as_str())
    );
    let other = ecs_image(&sim, &rt, "hpc-other");
    let fresh = rt
        .block_on(client.register_vm_image("other", &other, None))
        .unwrap();
    assert!(fresh.success && !fresh.request_id.is_empty());
    // A container image with ACR Enterprise and private-registry credentials.
    let run = add_image(
        ep,
        &[
            "--name",
            "nginx",
            "--registry-url",
            "registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest",
            "--acr",
            "--acr-enterprise",
            "--cri-id",
            "cri-xyz795ygf8k9",
            "--registry-server",
            "registry-vpc.cn-hangzhou.aliyuncs.com",
            "--registry-user",
            "username",
            "--registry-password",
            PASSWORD,
        ],
    );
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["image_type"], "Container");
    assert!(v["image_id"].as_str().unwrap().starts_with("m-"));
    assert_eq!(v["spec"]["credential"]["password"], "***");
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
    // The same registry URL again is refused; the error output has no password either.
    let run = add_image(
        ep,
        &[
            "--name",
            "nginx-2",
            "--registry-url",
            "registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest",
            "--registry-server",
            "r",
            "--registry-user",
            "u",
            "--registry-password",
            PASSWORD,
        ],
    );
    run.expect_code(4);
    assert_eq!(json_code(&run), "ImageAlreadyExists");
    assert!(!run.stdout().contains(PASSWORD) && !run.stderr().contains(PASSWORD));
}

#[test]
fn add_image_refuses_every_local_rule_before_sending() {
    let url = "registry.example.com/app:1";
    let n = ["--name", "n"];
    let cases: Vec<Local<'_>> = vec![
        ("no image", vec!["--name", "n"], "required"),
        ("no name", vec!["--vm-image-id", "m-1"], "--name"),
        (
            "VM and container",
            join(&n, &["--vm-image-id", "m-1", "--registry-url", url]),
            "cannot be used with",
        ),
        (
            "blank name",
            vec!["--name", " ", "--vm-image-id", "m-1"],
            "Name",
        ),
        (
            "empty VM image id",
            join(&n, &["--vm-image-id", ""]),
            "VMImageSpec.ImageId",
        ),
        (
            "empty registry URL",
            join(&n, &["--registry-url", ""]),
            "ContainerImageSpec.RegistryUrl",
        ),
        (
            "ACR Enterprise without ACR",
            join(&n, &["--registry-url", url, "--acr-enterprise"]),
            "ContainerImageSpec.IsACREnterprise",
        ),
        (
            "CRI id without ACR Enterprise",
            join(&n, &["--registry-url", url, "--acr", "--cri-id", "cri-1"]),
            "ContainerImageSpec.RegistryCriId",
        ),
        (
            "registry server alone",
            join(&n, &["--registry-url", url, "--registry-server", "r"]),
            "required",
        ),
        (
            "empty registry password",
            join(
                &n,
                &[
                    "--registry-url",
                    url,
                    "--registry-server",
                    "r",
                    "--registry-user",
                    "u",
                    "--registry-password",
                    "",
                ],
            ),
            "RegistryCredential.Password",
        ),
        (
            "ACR with a VM image",
            join(&n, &["--vm-image-id", "m-1", "--acr"]),
            "cannot be used with",
        ),
    ];
    check_local_refusals(&["ehpc", "add-image"], &cases, &[]);
}

#[test]
fn emulator_answers_add_image_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let rt = runtime();
    let vm = ecs_image(&sim, &rt, "base");
    let client = ehpc_client(&sim, SignatureVersion::V3);
    let ecs = sim.client(SignatureVersion::V3);
    let spec = format!(r#"{{"ImageId":"{vm}"}}"#);
    let n = ("Name", "n");
    let vm_spec = ("VMImageSpec", spec.as_str());
    let cases: Vec<Answer<'_>> = vec![
        (
            "no name",
            vec![("ImageType", "VM"), vm_spec],
            "InvalidParams",
            400,
        ),
        (
            "image type ISO",
            vec![n, ("ImageType", "ISO"), vm_spec],
            "InvalidParams",
            400,
        ),
        (
            "spec not JSON",
            vec![n, ("VMImageSpec", "not json")],
            "InvalidParams",
            400,
        ),
        (
            "spec without image id",
            vec![n, ("VMImageSpec", "{}")],
            "InvalidParams",
            400,
        ),
        (
            "container spec without URL",
            vec![
                n,
                ("ImageType", "Container"),
                ("ContainerImageSpec", r#"{"IsACRRegistry":true}"#),
            ],
            "InvalidParams",
            400,
        ),
        (
            "unknown ECS image",
            vec![n, ("VMImageSpec", r#"{"ImageId":"m-nope"}"#)],
            "ImageNotFound",
            404,
        ),
    ];
    check_answers(&cases, |params| {
        rt.block_on(answer(ecs.rpc(), "AddImage", EHPC_VERSION, params))
    });
    assert_eq!(
        rt.block_on(answer(ecs.rpc(), "DeleteImage", EHPC_VERSION, &[n]))
            .0,
        "InvalidAction.NotFound"
    );
    rt.block_on(client.add_image(&AddImageRequest::vm("n", &vm)))
        .unwrap();
    let err = rt
        .block_on(client.add_image(&AddImageRequest::vm("n2", &vm)))
        .unwrap_err();
    assert_eq!(err.code(), Some("ImageAlreadyExists"));
    // An image that is still Creating is an ECS error.
    let slow = SimProcess::start(&["--import-seconds", "60"]);
    let creating = ecs_image(&slow, &rt, "creating");
    let run = add_image(&slow.endpoint, &["--name", "x", "--vm-image-id", &creating]);
    run.expect_code(4);
    assert_eq!(json_code(&run), "EcsError");
    assert_eq!(run.json()["error"]["http_status"], 406);
    // Signatures are checked as for ECS.
    let mut bad = slow.credentials();
    bad.access_key_secret = Secret::new("wrong");
    let c = EhpcClient::new(slow.config(SignatureVersion::V3), bad).unwrap();
    let err = rt
        .block_on(c.add_image(&AddImageRequest::vm("y", &creating)))
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
}

/// The SDK venv of [`super::sdk::sdk_python`] with `package` installed (importable as
/// `module`); `None` without python3.
pub(super) fn venv_with(package: &str, module: &str) -> Option<PathBuf> {
    let py = super::sdk::sdk_python()?;
    let present = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null()) // a missing module is the answer, not an error to show
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let ok = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", package])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "installing {package} into the SDK venv failed");
    }
    Some(py)
}

#[test]
fn official_python_ehpc_sdk_against_the_emulator() {
    let Some(py) = venv_with(
        "alibabacloud_ehpcinstant20230701",
        "alibabacloud_ehpcinstant20230701",
    ) else {
        eprintln!("python3 not found: skipping the official E-HPC SDK test");
        return;
    };
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let rt = runtime();
    let image = ecs_image(&sim, &rt, "sdk-base");
    let vm = format!("vm {image} success True");
    super::sdk::run_smoke(
        &py,
        "ehpc-sdk-smoke.py",
        &[
            ("SIM_ENDPOINT", sim.endpoint.trim_start_matches("http://")),
            ("SIM_ACCESS_KEY_ID", &sim.key_id),
            ("SIM_ACCESS_KEY_SECRET", &sim.secret),
            ("SIM_IMAGE_ID", &image),
        ],
        &[
            &vm,
            "again ImageAlreadyExists",
            "success True",
            "missing ImageNotFound",
            "bad secret SignatureDoesNotMatch",
        ],
    );
}

//! `imgport image modify` (ECS ModifyImageAttribute, docs/CLOUD-API.md §ModifyImageAttribute)
//! against the emulator: every attribute, deprecate and undo, DryRun, every local rule refused
//! before sending, and the emulator's documented error codes.

use super::*;
use imgport::cloud::aliyun::ecs::{CreateImageRequest, ImageSource};
use imgport::cloud::aliyun::types::{BootMode, ImdsSupport};

/// A new Available image made by CreateImage (the emulator runs with `--import-seconds 0`).
fn available_image(client: &EcsClient, rt: &tokio::runtime::Runtime, name: &str) -> String {
    rt.block_on(async {
        let req =
            CreateImageRequest::builder(REGION, ImageSource::Snapshot("s-simsystem40".into()))
                .image_name(name)
                .build()
                .unwrap();
        let id = client.create_image(req).await.unwrap().image_id;
        wait_quietly(client, &id, "", Duration::from_secs(10))
            .await
            .unwrap();
        id
    })
}

/// Runs `imgport image modify ID --endpoint EP ARGS`.
fn modify(id: &str, ep: &str, args: &[&str]) -> crate::util::Run {
    cli(&[&["image", "modify", id, "--endpoint", ep][..], args].concat())
}

#[test]
fn modify_sets_every_attribute_and_deprecates() {
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let id = available_image(&client, &rt, "plain");
    let ep = sim.endpoint.as_str();
    let run = modify(
        &id,
        ep,
        &[
            "--json",
            "--name",
            "golden:v1",
            "--description",
            "finished by imgport",
            "--family",
            "golden-family",
            "--boot-mode",
            "UEFI-Preferred",
            "--license-type",
            "BYOL",
            "--nvme-support",
            "supported",
            "--imds-support",
            "v2",
        ],
    );
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["changed"]["ImageName"], "golden:v1", "{v}");
    assert_eq!(v["changed"]["Features.ImdsSupport"], "v2");
    let img = &v["image"];
    assert_eq!(img["ImageName"], "golden:v1");
    assert_eq!(img["Description"], "finished by imgport");
    assert_eq!(img["ImageFamily"], "golden-family");
    assert_eq!(img["BootMode"], "UEFI-Preferred");
    // A DryRun checks and changes nothing.
    let run = modify(&id, ep, &["--json", "--dry-run", "--name", "renamed"]);
    run.expect_code(0);
    assert_eq!(run.json()["dry_run"], true);
    let img = rt.block_on(client.find_image(&id)).unwrap().unwrap();
    assert_eq!(img.image_name, "golden:v1");
    // Deprecate, then make it Available again (V2 signing this time).
    modify(&id, ep, &["--status", "Deprecated"]).expect_code(0);
    let img = rt.block_on(client.find_image(&id)).unwrap().unwrap();
    assert_eq!(img.status(), Some(ImageStatus::Deprecated));
    let run = modify(&id, ep, &["--signature", "v2", "--status", "Available"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("Status=Available"),
        "{}",
        run.stdout()
    );
    let img = rt.block_on(client.find_image(&id)).unwrap().unwrap();
    assert_eq!(img.status(), Some(ImageStatus::Available));
    // The planner's finishing request is this same typed request, accepted by the service.
    let finishing = ModifyImageAttributeRequest::builder(REGION, &id)
        .boot_mode(BootMode::Uefi)
        .imds_support(ImdsSupport::V2)
        .build()
        .unwrap();
    rt.block_on(client.modify_image_attribute(&finishing))
        .unwrap();
}

#[test]
fn modify_refuses_every_local_rule_before_sending() {
    let d257 = "d".repeat(257);
    let cases: Vec<Local<'_>> = vec![
        (
            "IMDS v1",
            vec!["--imds-support", "v1"],
            "InvalidParameter.FeaturesImdsSupport",
        ),
        (
            "licence Auto",
            vec!["--license-type", "Auto"],
            "InvalidLicenseType.NotSupported",
        ),
        (
            "licence Aliyun",
            vec!["--license-type", "Aliyun"],
            "InvalidLicenseType.NotSupported",
        ),
        (
            "one-letter name",
            vec!["--name", "x"],
            "InvalidImageName.Malformed",
        ),
        (
            "name starts with acs:",
            vec!["--name", "acs:golden"],
            "InvalidImageName.Malformed",
        ),
        (
            "one-letter description",
            vec!["--description", "x"],
            "InvalidDescription.Malformed",
        ),
        (
            "description of 257 characters",
            vec!["--description", &d257],
            "InvalidDescription.Malformed",
        ),
        (
            "description with a URL",
            vec!["--description", "http://x.y"],
            "InvalidDescription.Malformed",
        ),
        (
            "family starts with a digit",
            vec!["--family", "1family"],
            "InvalidImageFamily.Malformed",
        ),
        (
            "status Creating",
            vec!["--status", "Creating"],
            "unknown status",
        ),
        (
            "boot mode legacy",
            vec!["--boot-mode", "legacy"],
            "unknown boot mode",
        ),
        (
            "NVMe support maybe",
            vec!["--nvme-support", "maybe"],
            "unknown NVMe support",
        ),
    ];
    check_local_refusals(&["image", "modify", "m-1"], &cases, &[]);
}

#[test]
fn emulator_answers_modify_error_codes() {
    let sim = SimProcess::start(&["--import-seconds", "0"]);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    let id = available_image(&client, &rt, "first");
    let _other = available_image(&client, &rt, "second");
    let ep = sim.endpoint.as_str();
    // Through the CLI: exit 4 with the service's code and status under --json.
    let code_of = |args: &[&str]| {
        let mut all = vec!["image", "modify"];
        all.extend(args);
        all.extend(["--endpoint", ep, "--json"]);
        let run = cli(&all);
        let http = run.json()["error"]["http_status"].as_u64().unwrap_or(0);
        let code = json_code(&run);
        if run.code() == 4 {
            (code, u16::try_from(http).unwrap_or(0))
        } else {
            (format!("exit {} ({code})", run.code()), 0)
        }
    };
    let cli_cases: Vec<(&str, Vec<&str>, &str, u16)> = vec![
        (
            "unknown image",
            vec!["m-nope", "--name", "abc"],
            "InvalidImageId.NotFound",
            404,
        ),
        (
            "name of another image",
            vec![&id, "--name", "second"],
            "InvalidImageName.Duplicated",
            400,
        ),
        (
            "Available when not Deprecated",
            vec![&id, "--status", "Available"],
            "ImageStatus.NotDeprecated",
            403,
        ),
    ];
    let failed: Vec<String> = cli_cases
        .iter()
        .filter_map(|(name, args, code, status)| {
            let got = code_of(args);
            ((got.0.as_str(), got.1) != (*code, *status))
                .then(|| format!("{name}: got {got:?}, want ({code:?}, {status})"))
        })
        .collect();
    assert_all_passed(&failed, cli_cases.len());
    modify(&id, ep, &["--imds-support", "v2"]).expect_code(0);
    let r = ("RegionId", REGION);
    let i = ("ImageId", id.as_str());
    let cases: Vec<Answer<'_>> = vec![
        (
            "IMDS v1 after v2",
            vec![r, i, ("Features.ImdsSupport", "v1")],
            "InvalidOperation.FeaturesImdsSupportNotMatch",
            403,
        ),
        (
            "boot mode Legacy",
            vec![r, i, ("BootMode", "Legacy")],
            "InvalidBootMode.NotSupport",
            400,
        ),
        (
            "licence Auto",
            vec![r, i, ("LicenseType", "Auto")],
            "InvalidLicenseType.NotSupported",
            400,
        ),
        (
            "family starts with -",
            vec![r, i, ("ImageFamily", "-x")],
            "InvalidImageFamily.Malformed",
            400,
        ),
        (
            "one-letter description",
            vec![r, i, ("Description", "y")],
            "InvalidDescription.Malformed",
            400,
        ),
        ("no region", vec![i], "MissingParameter", 400),
    ];
    check_answers(&cases, |params| {
        rt.block_on(answer(
            client.rpc(),
            "ModifyImageAttribute",
            ECS_VERSION,
            params,
        ))
    });
    // An image still being created cannot be modified.
    let slow = SimProcess::start(&["--import-seconds", "60"]);
    let c = slow.client(SignatureVersion::V3);
    let creating = rt
        .block_on(
            c.create_image(
                CreateImageRequest::builder(REGION, ImageSource::Snapshot("s-simsystem40".into()))
                    .build()
                    .unwrap(),
            ),
        )
        .unwrap()
        .image_id;
    let run = modify(&creating, &slow.endpoint, &["--json", "--family", "fam"]);
    run.expect_code(4);
    assert_eq!(json_code(&run), "InvalidStatus.ImageIsCreating");
    // Deprecating a Deprecated image is refused too.
    modify(&id, ep, &["--status", "Deprecated"]).expect_code(0);
    assert_eq!(
        code_of(&[&id, "--status", "Deprecated"]),
        ("ImageStatus.NotAvailable".into(), 403)
    );
}

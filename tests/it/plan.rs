//! `imgport plan`: the dry run renders the plan that the real import would execute.

use crate::util::*;

/// The test disks hold no OS: said so with --allow-no-os.
const BASE: [&str; 5] = [
    "--region",
    "cn-hangzhou",
    "--bucket",
    "my-images",
    "--allow-no-os",
];

#[test]
fn plan_json_holds_the_exact_import_request() {
    let mut args = vec![
        "plan",
        "--json",
        "--family",
        "golden",
        "--tag",
        "team=infra",
    ];
    args.extend(BASE);
    let path = image("content.raw");
    args.push(path.to_str().unwrap());
    let run = imgport(&args);
    run.expect_code(0);
    let v = run.json();
    let disk = &v["plan"]["disks"][0];
    assert_eq!(disk["device_index"], 1);
    assert_eq!(disk["object_key"], "imgport/content-disk1.qcow2");
    assert_eq!(disk["disk_image_size_gib"]["value"], 1);
    assert_eq!(v["plan"]["image"]["name"]["source"]["kind"], "inferred");
    assert_params(
        &import_params(&v),
        &[
            ("DiskDeviceMapping.1.OSSBucket", "my-images"),
            ("DiskDeviceMapping.1.Format", "QCOW2"),
            ("Tag.1.Key", "team"),
            ("Platform", "Others Linux"),
        ],
    );
    let requests = v["requests"].as_array().unwrap();
    let modify = requests
        .iter()
        .find(|r| r["action"] == "ModifyImageAttribute")
        .unwrap();
    assert!(modify["params"].to_string().contains("golden"));
}

#[test]
fn plan_writes_a_self_contained_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let mut args: Vec<String> = vec!["plan".into(), "--html".into(), html.display().to_string()];
    args.extend(BASE.iter().map(|s| s.to_string()));
    args.push(image("gpt.raw").display().to_string());
    imgport(&args).expect_code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<svg"), "a drawn disk layout");
    assert!(page.contains("ImportImage"));
    assert!(!page.contains("<script"), "no scripts");
    assert!(
        !page.contains("src=\"http") && !page.contains("<link"),
        "nothing is fetched"
    );
}

#[test]
fn plan_errors_have_their_exit_codes() {
    let mut args = vec!["plan"];
    args.extend(BASE);
    let refused = image("vhd-badsum.vhd");
    let mut a = args.clone();
    a.push(refused.to_str().unwrap());
    imgport(&a).expect_code(3);
    let (x, y) = (image("content.raw"), image("gpt.raw"));
    let mut a = args.clone();
    a.extend([x.to_str().unwrap(), y.to_str().unwrap()]);
    let run = imgport(&a);
    run.expect_code(2);
    assert!(run.stderr().contains("--system-disk"), "{}", run.stderr());
    let mut a = args.clone();
    a.extend(["--name", "http://x", x.to_str().unwrap()]);
    let run = imgport(&a);
    run.expect_code(2);
    assert!(run.stderr().contains("InvalidImageName.Malformed"));
    let mut a = args.clone();
    a.extend(["--platform", "Plan9", x.to_str().unwrap()]);
    imgport(&a).expect_code(2);
    // A system disk with no OS, not allowed: refused with its finding code.
    let mut a = vec!["plan"];
    a.extend(&BASE[..4]);
    a.push(x.to_str().unwrap());
    let run = imgport(&a);
    run.expect_code(3);
    assert!(run.stderr().contains("guest.no_os"), "{}", run.stderr());
}

//! `imgport plan`: the dry run renders the plan that the real import would execute, and a
//! real import, batch row and Packer build record and execute exactly that plan.

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

/// `imgport import --dry-run --sandbox --json FILES FLAGS`, which is `imgport plan` for a run
/// in the sandbox (the plan names the endpoint it was given): the whole report.
fn dry_run(files: &[&std::path::Path], flags: &[&str]) -> serde_json::Value {
    let mut args: Vec<String> = ["import", "--dry-run", "--sandbox", "--json"]
        .map(String::from)
        .to_vec();
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(flags.iter().map(|s| s.to_string()));
    let run = imgport(&args);
    run.expect_code(0);
    run.json()
}

/// [`dry_run`]'s `plan`.
fn dry_plan(files: &[&std::path::Path], flags: &[&str]) -> serde_json::Value {
    dry_run(files, flags)["plan"].clone()
}

/// The plan a real run executed (an import's `plan`) is `planned`, value for value (the plan
/// holds no timings, so nothing may differ), and the run did what it says: the objects and
/// their parts, the content-digest lookup, the E-HPC registration.
fn assert_executed(outcome: &serde_json::Value, planned: &serde_json::Value) {
    let executed = &outcome["plan"];
    assert!(executed.is_object(), "no executed plan in {outcome}");
    assert!(
        executed == planned,
        "executed plan\n{executed:#}\ndiffers from imgport plan\n{planned:#}"
    );
    let disks = outcome["disks"].as_array().unwrap();
    let planned_disks = planned["disks"].as_array().unwrap();
    assert_eq!(disks.len(), planned_disks.len());
    for (d, p) in disks.iter().zip(planned_disks) {
        assert_eq!(d["device_index"], p["device_index"]);
        assert_eq!(d["bucket"], p["bucket"]);
        assert_eq!(d["key"], p["object_key"]);
        assert_eq!(d["format"], p["output"]["value"]);
        assert_eq!(d["size"], p["object_size"]);
        assert_eq!(d["part_size"], p["parts"]["value"]["part_size"]);
        assert_eq!(d["parts"], p["parts"]["value"]["count"]);
    }
    let looked_up = outcome["content_digest"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    assert_eq!(serde_json::Value::Bool(looked_up), planned["dedupe"]);
    assert_eq!(outcome["ehpc_image"], planned["ehpc"]["name"]);
    assert_eq!(outcome["image_name"], planned["image"]["name"]["value"]);
    // The role checked is the plan's, and the check's finding is reported.
    assert_eq!(
        outcome["import_role"]["role"],
        planned["import_role"]["role_name"]
    );
    assert!(outcome["import_role"]["status"].is_string(), "{outcome}");
}

/// The sandbox flags of a run under `dir`.
fn sandbox(dir: &std::path::Path) -> Vec<String> {
    vec![
        "--sandbox".into(),
        "--sandbox-dir".into(),
        dir.join("sandbox").display().to_string(),
        "--sandbox-import-seconds".into(),
        "0.5".into(),
        "--journal".into(),
        dir.join("journal").display().to_string(),
    ]
}

#[test]
fn a_single_import_executes_the_plan_that_plan_shows() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.raw");
    let decisions = [
        "--region",
        "cn-hangzhou",
        "--bucket",
        "sandbox",
        "--allow-no-os",
        "--family",
        "golden",
        "--replace",
        "--ehpc-name",
        "golden-hpc",
        "--part-size",
        "128K",
        "--tag",
        "team=infra",
    ];
    let report = dry_run(&[&src], &decisions);
    let actions: Vec<String> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["service"], r["action"]).replace('"', ""))
        .collect();
    assert_eq!(
        actions,
        [
            "ram GetRole",
            "ram ListPoliciesForRole",
            "ecs DescribeImages",
            "oss GetBucketLocation",
            "oss MultipartUpload",
            "oss HeadObject",
            "ecs ImportImage",
            "ecs ModifyImageAttribute",
            "ecs ModifyImageAttribute",
            "ehpc AddImage"
        ]
    );
    let planned = report["plan"].clone();
    assert_eq!(planned["ehpc"]["name"], "golden-hpc");
    assert_eq!(
        planned["disks"][0]["parts"]["value"]["part_size"],
        128 << 10
    );
    let mut args: Vec<String> = vec!["import".into(), src.display().to_string(), "--json".into()];
    args.extend(decisions.iter().map(|s| s.to_string()));
    args.extend(sandbox(dir.path()));
    let run = imgport_in(dir.path(), &args);
    run.expect_code(0);
    assert_executed(&run.json(), &planned);
}

/// Runs `command` (a batch or Packer run of one row) with `--json` in a sandbox under `dir`,
/// asserts that the row imported and executed the plan that the same command shows with
/// `--dry-run`, which is the plan `imgport plan` shows for `src` with `flags`, and returns it.
fn assert_row_executes_plan(
    dir: &std::path::Path,
    command: &[String],
    src: &std::path::Path,
    flags: &[&str],
) -> serde_json::Value {
    let mut args = command.to_vec();
    args.push("--json".into());
    args.extend(sandbox(dir));
    let dry = imgport_in(dir, [&args[..], &["--dry-run".to_string()]].concat());
    dry.expect_code(0);
    let shown = dry.json()["rows"][0]["plan"].clone();
    // The dry run changed nothing: no journal of finished rows, nothing in the sandbox.
    let journals = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".imgport-batch-")
        })
        .count();
    assert_eq!(journals, 0);
    assert!(!dir.join("sandbox").exists());
    let run = imgport_in(dir, &args);
    run.expect_code(0);
    let report = run.json();
    let row = &report["rows"][0];
    assert_eq!(row["status"], "imported", "{report}");
    assert_executed(&row["result"], &shown);
    assert_eq!(shown, dry_plan(&[src], flags));
    shown
}

#[test]
fn a_batch_row_executes_the_plan_that_plan_shows() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let manifest = dir.path().join("batch.toml");
    std::fs::write(
        &manifest,
        format!(
            "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nallow_no_os = true\n\n\
             [[image]]\nname = \"row-a\"\nfiles = [\"{}\"]\nfamily = \"web\"\noutput = \"vhd\"\n",
            src.display()
        ),
    )
    .unwrap();
    let decisions = ["--no-dedupe", "--part-size", "256K"];
    let mut command: Vec<String> = vec!["batch".into(), manifest.display().to_string()];
    command.extend(decisions.iter().map(|s| s.to_string()));
    // A batch row's objects go under a folder named by the row.
    let mut flags = vec![
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--allow-no-os",
        "--key-prefix",
        "imgport/row-a/",
        "--name",
        "row-a",
        "--family",
        "web",
        "--to",
        "vhd",
    ];
    flags.extend(decisions);
    let planned = assert_row_executes_plan(dir.path(), &command, &src, &flags);
    assert_eq!(planned["dedupe"], false);
}

#[test]
fn a_packer_build_executes_the_plan_that_plan_shows() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let manifest = dir.path().join("packer-manifest.json");
    let text = serde_json::json!({
        "builds": [
            {"name": "web", "builder_type": "qemu", "packer_run_uuid": "run-2",
             "files": [{"name": src.display().to_string(), "size": 1}]}
        ],
        "last_run_uuid": "run-2"
    });
    std::fs::write(&manifest, text.to_string()).unwrap();
    let common = [
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--allow-no-os",
        "--family",
        "web",
    ];
    let mut command: Vec<String> = vec![
        "packer".into(),
        "--manifest".into(),
        manifest.display().to_string(),
    ];
    command.extend(common.iter().map(|s| s.to_string()));
    // A Packer build is the row `NAME:RUN`, its objects under a folder of that name.
    let mut flags = vec!["--key-prefix", "imgport/web_run-2/", "--name", "web"];
    flags.extend(common);
    let planned = assert_row_executes_plan(dir.path(), &command, &src, &flags);
    assert_eq!(planned["dedupe"], true);
}

#[test]
fn part_sizes_are_checked_against_oss_limits_where_the_plan_is_made() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB of holes: in 100 KiB parts, 20972 of them; OSS takes at most 10000.
    let big = dir.path().join("big.raw");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let big = big.to_str().unwrap();
    let mut args = vec!["plan", "--json", "--to", "raw"];
    args.extend(BASE);
    let run = imgport([&args[..], &["--part-size", "100K", big]].concat());
    run.expect_code(2);
    assert!(
        run.stderr().contains("20972 parts") && run.stderr().contains("10000"),
        "{}",
        run.stderr()
    );
    // Below OSS's 100 KiB: refused as the flag is parsed.
    let run = imgport([&args[..], &["--part-size", "99K", big]].concat());
    run.expect_code(2);
    assert!(run.stderr().contains("100 KiB"), "{}", run.stderr());
    // Without one: 2 MiB parts (larger only when 10000 would not do).
    let run = imgport([&args[..], &[big]].concat());
    run.expect_code(0);
    let parts = &run.json()["plan"]["disks"][0]["parts"]["value"];
    assert_eq!(parts["part_size"], 2 << 20);
    assert_eq!(parts["count"], 1024);
}

#[test]
fn the_plan_sizes_its_part_buffers_to_its_part_memory_not_the_parts_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let disk = disk.to_str().unwrap();
    let mut args = vec!["plan", "--json", "--to", "raw"];
    args.extend(BASE);
    const MIB: u64 = 1 << 20;
    let plan = |extra: &[&str]| {
        let run = imgport([&args[..], extra, &[disk]].concat());
        run.expect_code(0);
        run.json()["plan"].clone()
    };
    let notes = |p: &serde_json::Value| p["notes"].to_string();
    // The defaults: 64 MiB hold 29 parts of 2 MiB being written, 2 filled ahead and the one
    // a retry reads a part again in (signed parts batch no MD5s): 32 buffers, the whole
    // budget. A part waiting for its answer holds none: the cap alone bounds those.
    let p = plan(&[]);
    assert_eq!(p["part_memory"]["value"], 64 * MIB);
    assert_eq!(p["part_memory"]["source"]["kind"], "default");
    assert_eq!(p["parts_in_flight_max"]["value"], 64);
    let d = &p["disks"][0];
    assert_eq!(d["parts_in_flight"]["value"], 64, "{d}");
    assert!(
        d["parts_in_flight"]["source"]["why"]
            .as_str()
            .unwrap()
            .contains("64.0 MiB of part memory hold 29 parts of 2.0 MiB being written"),
        "{d}"
    );
    assert_eq!(d["buffer_memory"], 64 * MIB);
    // More memory: no more buffers than parts in flight (--concurrency, default 64).
    let p = plan(&["--part-memory", "256M"]);
    assert_eq!(p["part_memory"]["value"], 256 * MIB);
    assert_eq!(p["part_memory"]["source"]["kind"], "user");
    assert_eq!(p["disks"][0]["parts_in_flight"]["value"], 64);
    assert_eq!(p["disks"][0]["buffer_memory"], (64 + 3) * 2 * MIB);
    let p = plan(&["--concurrency", "8"]);
    assert_eq!(p["disks"][0]["parts_in_flight"]["value"], 8);
    assert_eq!(p["disks"][0]["buffer_memory"], (8 + 3) * 2 * MIB);
    // 5 MiB parts: 12 buffers, 9 being written; the parts in flight stay at the cap.
    let p = plan(&["--part-size", "5M"]);
    assert_eq!(p["disks"][0]["parts_in_flight"]["value"], 64);
    assert_eq!(p["disks"][0]["buffer_memory"], 12 * 5 * MIB);
    // 8 MiB parts: 8 buffers, 5 being written.
    let p = plan(&["--part-size", "8M"]);
    assert_eq!(p["disks"][0]["parts_in_flight"]["value"], 64);
    assert_eq!(p["disks"][0]["buffer_memory"], 8 * 8 * MIB);
    // Four parts fit: one being written.
    let p = plan(&["--part-size", "5M", "--part-memory", "20M"]);
    assert_eq!(p["disks"][0]["parts_in_flight"]["value"], 64);
    assert_eq!(p["disks"][0]["buffer_memory"], 20 * MIB);
    assert!(
        !notes(&p).contains("plan.part_memory_exceeded"),
        "{}",
        notes(&p)
    );
    // Parts too large for the budget: one being written, and a warning that it is exceeded.
    let p = plan(&["--part-size", "5M", "--part-memory", "16M"]);
    assert_eq!(p["disks"][0]["buffer_memory"], 20 * MIB);
    assert!(
        notes(&p).contains("plan.part_memory_exceeded"),
        "{}",
        notes(&p)
    );
    // Below 1 MiB: refused as the flag is parsed.
    let run = imgport([&args[..], &["--part-memory", "512K", disk]].concat());
    run.expect_code(2);
    assert!(run.stderr().contains("at least 1 MiB"), "{}", run.stderr());
}

#[test]
fn disk_image_size_is_given_per_disk_and_checked_where_the_plan_is_made() {
    let dir = tempfile::tempdir().unwrap();
    // 2.5 GiB of holes: a DiskImageSize of at least 3 GiB.
    let disk = dir.path().join("disk.raw");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(5 << 29)
        .unwrap();
    let disk = disk.to_str().unwrap();
    let mut args = vec!["plan", "--json", "--to", "raw"];
    args.extend(BASE);
    let planned = |flags: &[&str]| imgport([&args[..], flags, &[disk]].concat());
    let size_of = |run: &Run| run.json()["plan"]["disks"][0]["disk_image_size_gib"].clone();
    let run = planned(&[]);
    run.expect_code(0);
    assert_eq!(size_of(&run)["value"], 3);
    for flag in ["1=40", "40"] {
        let run = planned(&["--disk-image-size", flag]);
        run.expect_code(0);
        let size = size_of(&run);
        assert_eq!(
            (&size["value"], &size["source"]["kind"]),
            (&40.into(), &"user".into())
        );
        let json = run.json();
        let import = json["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "ImportImage")
            .unwrap();
        assert_eq!(import["action"], "ImportImage");
        let params = import["params"].as_array().unwrap();
        assert!(
            params.contains(&serde_json::json!([
                "DiskDeviceMapping.1.DiskImageSize",
                "40"
            ])),
            "{import}"
        );
    }
    // Below the disk's own size, over ImportImage's 2048 GiB, or a disk not given: refused
    // before anything is uploaded, naming the flag.
    for (flag, says) in [
        ("1=2", "must be 3–2048 GiB"),
        ("1=2049", "must be 3–2048 GiB"),
        ("2=10", "there is no disk 2"),
        ("0=10", "DISK counts from 1"),
        ("1=big", "is not DISK=GIB"),
    ] {
        let run = planned(&["--disk-image-size", flag]);
        run.expect_code(2);
        assert!(run.stderr().contains(says), "{flag}: {}", run.stderr());
    }
}

//! OVA/OVF input (issue 24) against real tools: the packages of `scripts/testdata/ova.sh`
//! (qemu-img's streamOptimized VMDKs, a descriptor in ovftool's shape, a SHA-256 manifest,
//! `tar --format=ustar` in VMware's order) import in the sandbox as one multi-disk image,
//! each disk's content digest equals that of the same disk as raw, the plan shows the
//! descriptor's hints beside inspection, and a manifest mismatch stops before ImportImage.

use std::path::Path;

use crate::util::*;

const BUCKET: &str = "sandbox";

fn import_args(dir: &Path, files: &[&Path], extra: &[&str]) -> Vec<std::ffi::OsString> {
    sandbox_import_args(dir, BUCKET, files, extra)
}

/// The content digest `imgport checksum` (or `convert`) reports for `args`.
fn content_digest(dir: &Path, args: &[&std::ffi::OsStr]) -> String {
    let mut a: Vec<&std::ffi::OsStr> = args.to_vec();
    a.push("--json".as_ref());
    a.push("--no-sha256".as_ref());
    let run = imgport_in(dir, &a);
    run.expect_code(0);
    let v = run.json();
    v["content"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no content digest: {v}"))
        .to_string()
}

#[test]
fn vmware_layout_ova_imports_as_a_multi_disk_image() {
    let dir = tempfile::tempdir().unwrap();
    let ova = image("ova/small.ova");
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&ova], &["--allow-no-os"]),
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["status"], "Available", "{r}");
    let disks = r["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2, "{r}");
    // The descriptor's order: disk1 is DiskDeviceMapping.1, disk2 is .2; each object holds
    // the same disk as its raw original.
    for (n, raw) in [(1, "ova/small-1.raw"), (2, "ova/small-2.raw")] {
        let d = &disks[n - 1];
        assert_eq!(d["device_index"], n, "{r}");
        let obj = sandbox_object(dir.path(), BUCKET, d["key"].as_str().unwrap());
        sh(&format!(
            "qemu-img compare -q -f raw -F {} '{}' '{}'",
            d["format"].as_str().unwrap(),
            image(raw).display(),
            obj.display()
        ));
    }
    assert_eq!(r["plan"]["image"]["name"]["value"], "small", "{r}");
    // One image in the emulator, made of both objects.
    let images = sim_images(&dir.path().join("sandbox/ecs"));
    assert_eq!(images.len(), 1);
    let record = images.values().next().unwrap().to_string();
    for d in disks {
        assert!(record.contains(d["key"].as_str().unwrap()), "{record}");
    }
}

#[test]
fn each_disk_has_the_content_digest_of_the_same_disk_as_raw() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.qcow2");
    let cases = [
        ("ova/small.ova/small-disk1.vmdk", "ova/small-1.raw"),
        ("ova/small.ova/small-disk2.vmdk", "ova/small-2.raw"),
        ("ova/vmware.ova/vmware-disk2.vmdk", "ova/data.raw"),
    ];
    for (member, raw) in cases {
        let member = testdata().join(member);
        let converted = content_digest(
            dir.path(),
            &[
                "convert".as_ref(),
                "--to".as_ref(),
                "qcow2".as_ref(),
                member.as_ref(),
                out.as_ref(),
            ],
        );
        let raw = image(raw);
        assert_eq!(
            converted,
            content_digest(dir.path(), &["checksum".as_ref(), raw.as_ref()]),
            "{}",
            member.display()
        );
        sh(&format!(
            "qemu-img compare -q -f raw -F qcow2 '{}' '{}'",
            raw.display(),
            out.display()
        ));
    }
    // The bootable system disk, checked whole with its manifest digest, against its raw.
    let system = testdata().join("ova/vmware.ova/vmware-disk1.vmdk");
    let run = imgport_in(
        dir.path(),
        ["checksum", "--json", "--no-sha256"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([system.as_os_str()]),
    );
    run.expect_code(0);
    let v = run.json();
    assert!(
        v["notices"].to_string().contains("manifest's digest"),
        "{v}"
    );
    let raw = image("guest/debian-gpt.raw");
    assert_eq!(
        v["content"]["digest"].as_str().unwrap(),
        content_digest(dir.path(), &["checksum".as_ref(), raw.as_ref()])
    );
}

#[test]
fn plan_shows_the_descriptor_hints_beside_inspection() {
    let dir = tempfile::tempdir().unwrap();
    let ova = image("ova/vmware.ova");
    let html = dir.path().join("plan.html");
    let run = imgport_in(
        dir.path(),
        [
            "plan".as_ref(),
            ova.as_os_str(),
            "--region".as_ref(),
            "cn-hangzhou".as_ref(),
            "--bucket".as_ref(),
            "images".as_ref(),
            "--json".as_ref(),
            "--html".as_ref(),
            html.as_os_str(),
        ],
    );
    run.expect_code(0);
    let r = run.json();
    let plan = &r["plan"];
    let disks = plan["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    assert!(
        disks[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("vmware.ova/vmware-disk1.vmdk")
    );
    assert_eq!(disks[0]["role"]["value"], "system");
    assert_eq!(disks[1]["role"]["value"], "data");
    let hints = plan["ovf"]["hints"].as_array().unwrap();
    let by = |f: &str| hints.iter().find(|h| h["field"] == f).unwrap().clone();
    assert_eq!(by("platform")["ovf"], "Debian");
    assert_eq!(by("platform")["outcome"], "agrees", "{hints:?}");
    assert_eq!(by("boot_mode")["ovf"], "UEFI");
    assert_eq!(by("driver")["ovf"], "NVMe");
    assert_eq!(plan["image"]["platform"]["value"], "Debian");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        text.contains("OVF descriptor hints"),
        "no hints section in the HTML report"
    );
    assert!(text.contains("debian11_64Guest"));
    // Every disk's report says the manifest is checked only as the disks stream.
    let findings = r["disks"].to_string();
    assert!(findings.contains("ova.manifest.pending"), "{findings}");
}

#[test]
fn an_ovf_beside_its_files_plans_like_its_ova() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |p: &Path| {
        let run = imgport_in(
            dir.path(),
            [
                "plan".as_ref(),
                p.as_os_str(),
                "--region".as_ref(),
                "cn-hangzhou".as_ref(),
                "--bucket".as_ref(),
                "images".as_ref(),
                "--allow-no-os".as_ref(),
                "--json".as_ref(),
            ],
        );
        run.expect_code(0);
        run.json()["plan"].clone()
    };
    let ova = plan(&image("ova/small.ova"));
    let ovf = plan(&image("ova/small/small.ovf"));
    for p in [&ova, &ovf] {
        assert_eq!(p["disks"].as_array().unwrap().len(), 2, "{p}");
        assert_eq!(p["image"]["boot_mode"]["value"], "BIOS", "{p}");
    }
    assert_eq!(
        ova["disks"][0]["source_virtual_size"],
        ovf["disks"][0]["source_virtual_size"]
    );
}

#[test]
fn a_manifest_mismatch_stops_the_import_before_importimage() {
    let dir = tempfile::tempdir().unwrap();
    let loose = image("ova/small");
    // The same package with a wrong digest for disk 2 (its bytes are intact).
    sh_in(
        dir.path(),
        &format!(
            "cp '{d}'/small.ovf '{d}'/small-disk1.vmdk '{d}'/small-disk2.vmdk . && \
             sed 's/^SHA256(small-disk2.vmdk)= ./SHA256(small-disk2.vmdk)= 0/; t; s/^SHA256(small-disk2.vmdk)= 0/SHA256(small-disk2.vmdk)= 1/' '{d}'/small.mf > small.mf && \
             ! cmp -s small.mf '{d}'/small.mf && \
             tar --format=ustar -cf bad.ova small.ovf small.mf small-disk1.vmdk small-disk2.vmdk",
            d = loose.display()
        ),
    );
    let bad = dir.path().join("bad.ova");
    let run = imgport_in(
        dir.path(),
        import_args(dir.path(), &[&bad], &["--allow-no-os"]),
    );
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.contains("bad.ova/small-disk2.vmdk"), "{err}");
    assert!(
        err.contains("manifest") && err.contains("ImportImage was not sent"),
        "{err}"
    );
    let ecs = dir.path().join("sandbox/ecs");
    assert!(
        !ecs.join("ecs-state.json").exists() || sim_images(&ecs).is_empty(),
        "an image was imported"
    );
}

#[test]
fn a_batch_row_of_an_ova_imports_every_disk() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("batch.toml");
    std::fs::write(
        &m,
        format!(
            "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"{BUCKET}\"\n\n\
             [[image]]\nname = \"from-ova\"\nfiles = [\"{}\"]\n",
            image("ova/small.ova").display()
        ),
    )
    .unwrap();
    let sandbox = dir.path().join("sandbox");
    let journal = dir.path().join("uploads");
    let run = imgport_in(
        dir.path(),
        [
            "batch".as_ref(),
            m.as_os_str(),
            "--json".as_ref(),
            "--allow-no-os".as_ref(),
            "--sandbox".as_ref(),
            "--sandbox-import-seconds".as_ref(),
            "0.5".as_ref(),
            "--sandbox-dir".as_ref(),
            sandbox.as_os_str(),
            "--journal".as_ref(),
            journal.as_os_str(),
        ],
    );
    run.expect_code(0);
    let r = run.json();
    assert_eq!(r["rows"][0]["status"], "imported", "{r}");
    assert_eq!(
        r["rows"][0]["result"]["disks"].as_array().unwrap().len(),
        2,
        "{r}"
    );
}

//! The OVF hints weighed by the whole planner: inspection wins, hints fill the defaults.

use std::path::{Path, PathBuf};

use crate::plan::{DiskInput, GIB, PlanOptions, infer};
use imgport_cloud::aliyun::types::{BootMode, NvmeSupport, Platform};
use imgport_guest::facts::GuestFacts;
use imgport_image::ova::PackageDisk;
use imgport_image::ova::ovf::OvfHints;
use imgport_image::{ContainerReport, ImageFormat};

fn report() -> ContainerReport {
    ContainerReport {
        path: PathBuf::from("vm.ova/disk1.vmdk"),
        format: Some(ImageFormat::Qcow2),
        subformat: None,
        recognised_as: None,
        virtual_size: Some(GIB),
        allocated_size: Some(0),
        file_size: GIB,
        bytes_read: 0,
        safe: true,
        findings: vec![],
        details: None,
    }
}

fn package() -> PackageDisk {
    PackageDisk {
        package: PathBuf::from("vm.ova"),
        disk_id: "vmdisk1".into(),
        href: "disk1.vmdk".into(),
        capacity: Some(GIB),
        controller: Some("NVMe".into()),
        manifest: None,
        hints: OvfHints {
            platform: Some("Ubuntu".into()),
            os_type: Some("linux".into()),
            os_from: Some("vmw:osType=\"ubuntu64Guest\"".into()),
            boot_mode: Some("UEFI".into()),
            boot_from: Some("vmw:Config firmware=\"efi\"".into()),
            controllers: vec![("vmdisk1".into(), "NVMe".into())],
        },
    }
}

fn plan(guest: &GuestFacts) -> crate::plan::ImportPlan {
    let r = report();
    let p = package();
    let disks = [DiskInput {
        path: Path::new("vm.ova/disk1.vmdk"),
        container: &r,
        guest: Some(guest),
        package: Some(&p),
    }];
    let opts = PlanOptions {
        region: "cn-hangzhou".into(),
        bucket: "images".into(),
        allow_no_os: true,
        ..Default::default()
    };
    infer(&disks, &opts, &|_, _| Ok(GIB)).unwrap()
}

#[test]
fn inspection_wins_and_the_disagreement_is_a_finding() {
    let guest = GuestFacts {
        os_type: Some("linux".into()),
        platform: Some("Debian".into()),
        boot_mode: Some("BIOS".into()),
        ..Default::default()
    };
    let p = plan(&guest);
    assert_eq!(p.image.platform.value, Platform::Debian);
    assert_eq!(p.image.boot_mode.value, BootMode::Bios);
    let e = p.ovf.unwrap();
    assert_eq!(e.hints[0].outcome, "inspection wins");
    assert_eq!(e.hints[0].inspection.as_deref(), Some("Debian"));
    let disagreements = p
        .notes
        .iter()
        .filter(|n| n.code == "ovf.hint_disagrees")
        .count();
    assert_eq!(disagreements, 2, "{:?}", p.notes);
}

#[test]
fn hints_fill_what_inspection_did_not_find() {
    let p = plan(&GuestFacts::default());
    assert_eq!(p.image.platform.value, Platform::Ubuntu);
    assert_eq!(p.image.boot_mode.value, BootMode::Uefi);
    assert_eq!(
        p.image.nvme_support.as_ref().map(|s| s.value),
        Some(NvmeSupport::Supported)
    );
    let outcomes: Vec<&str> = p
        .ovf
        .as_ref()
        .unwrap()
        .hints
        .iter()
        .map(|h| h.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["used", "used", "used"]);
    assert!(!p.notes.iter().any(|n| n.code == "ovf.hint_disagrees"));
}

//! The HTML report as a browser draws it: headless Chromium (`tests/browser/render.mjs`)
//! opens the page `imgport plan --html` wrote for real guest disks and for a refused image,
//! and every disk's picture, every partition in it and every finding must be on screen, with
//! nothing sticking out past the window. The screenshots are kept under
//! `target/test-artifacts/report-render/` (`$CARGO_TARGET_DIR` when set).
//!
//! Chromium, Node.js and playwright-core come from `scripts/install-deps.sh`; without them
//! the test fails, it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Window widths a report is read at: a desktop window, and a narrow one (a side-by-side
/// window or a tablet) where a long path or object key must wrap instead of widening the page.
const WIDTHS: [u32; 2] = [1280, 600];

/// A directory the images are linked from, so the page shows paths as long as real ones often
/// are, with no hyphen or space at which a browser would break a line anyway.
const LONG_DIR: &str = "images_from_the_build_host/exported_2026_release_candidate/\
     x86_64_bios_and_uefi/imgport_report_render_test";

/// The longest the browser may take to render all cases at one width before the test gives
/// up on it (a browser left waiting on the network would otherwise hang the suite).
const RENDER_LIMIT: Duration = Duration::from_secs(300);

/// One report to render: the images given to `imgport plan`, the flags, and the exit code.
struct Case {
    name: &'static str,
    images: &'static [&'static str],
    flags: &'static [&'static str],
    code: i32,
}

const CASES: [Case; 3] = [
    // A bootable Debian disk: GPT with an ESP and an ext4 root.
    Case {
        name: "debian-gpt",
        images: &["guest/debian-gpt.qcow2"],
        flags: &[],
        code: 0,
    },
    // Two disks: a Rocky Linux system disk (GPT: a 1 MiB BIOS boot partition, /boot, an LVM
    // PV) and a data disk whose VHD size draws a warning.
    Case {
        name: "lvm-and-data",
        images: &["guest/lvm-ext4.raw", "content.vhd"],
        flags: &["--system-disk", "1"],
        code: 0,
    },
    // Refused by inspection (a VHD footer with a bad checksum): the refused page.
    Case {
        name: "refused",
        images: &["vhd-badsum.vhd"],
        flags: &[],
        code: 3,
    },
];

#[test]
fn the_html_report_shows_its_disks_and_findings_in_a_browser() {
    let browser = Browser::find();
    let artifacts = artifact_dir();
    let dir = tempfile::tempdir().unwrap();
    let reports: Vec<(PathBuf, Run, Expected)> = CASES
        .iter()
        .map(|case| {
            let html = dir.path().join(format!("{}.html", case.name));
            let (run, expected) = plan_report(dir.path(), case, &html);
            (html, run, expected)
        })
        .collect();
    for width in WIDTHS {
        let shots: Vec<PathBuf> = CASES
            .iter()
            .map(|case| artifacts.join(format!("{}-{width}.png", case.name)))
            .collect();
        let pages: Vec<(&Path, &Path)> = reports
            .iter()
            .zip(&shots)
            .map(|((html, _, _), png)| (html.as_path(), png.as_path()))
            .collect();
        let facts = browser.render(width, &pages);
        for (((case, (_, run, expected)), png), page) in
            CASES.iter().zip(&reports).zip(&shots).zip(&facts)
        {
            let context = format!(
                "case {} at {width} px ({}; screenshot {})\n--- facts\n{page:#}",
                case.name,
                run.cmd,
                png.display()
            );
            expected.check(page, &context);
            let shot = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
            assert!(shot > 0, "no screenshot: {context}");
            println!("report render: {}", png.display());
        }
    }
}

/// What a page must show, taken from `imgport plan --json` (or, for a refused image, from
/// `imgport inspect --json`, since a refused plan prints no JSON).
struct Expected {
    /// Per disk of the plan: a text its heading holds (the source path) and the indexes of
    /// the partitions inspection found on it.
    disks: Vec<(String, Vec<u64>)>,
    /// Every finding code of the report.
    codes: Vec<String>,
}

/// Runs `imgport plan --json --html HTML` for `case` in `dir` and returns the run and what
/// its page must show.
fn plan_report(dir: &Path, case: &Case, html: &Path) -> (Run, Expected) {
    let base = [
        "plan",
        "--json",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "my-images",
    ];
    let mut args: Vec<std::ffi::OsString> = base.iter().chain(case.flags).map(Into::into).collect();
    // Each image is given through a link in LONG_DIR: its long paths must wrap within the
    // window, not widen the page.
    let long = dir.join(LONG_DIR);
    std::fs::create_dir_all(&long).unwrap();
    let paths: Vec<PathBuf> = case
        .images
        .iter()
        .map(|i| {
            let link = long.join(Path::new(i).file_name().unwrap());
            if !link.exists() {
                std::os::unix::fs::symlink(image(i), &link).unwrap();
            }
            link
        })
        .collect();
    args.extend(paths.iter().map(Into::into));
    args.extend(["--html".into(), html.into()]);
    let run = imgport_in(dir, &args);
    run.expect_code(case.code);
    assert!(html.exists(), "{}: no page written", run.cmd);
    if case.code != 0 {
        let mut codes = Vec::new();
        for p in &paths {
            let (_, report) = inspect_one(p, &[]);
            codes.extend(finding_codes(&report));
        }
        assert!(
            !codes.is_empty(),
            "{}: a refused image has findings",
            run.cmd
        );
        return (
            run,
            Expected {
                disks: Vec::new(),
                codes,
            },
        );
    }
    let report = run.json();
    let mut disks = Vec::new();
    for disk in report["plan"]["disks"].as_array().expect("plan disks") {
        let source = disk["source"].as_str().expect("disk source").to_string();
        let view = report["disks"]
            .as_array()
            .expect("disk views")
            .iter()
            .find(|v| v["container"]["path"] == disk["source"])
            .unwrap_or_else(|| panic!("{}: no disk view for {source}", run.cmd));
        let partitions = view["guest"]["partitions"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["index"].as_u64()).collect())
            .unwrap_or_default();
        disks.push((source, partitions));
    }
    // The page lists the findings of every disk, then the plan's notes (report.rs).
    let mut codes: Vec<String> = report["disks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| finding_codes(&v["container"]))
        .collect();
    codes.extend(
        report["plan"]["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["code"].as_str().map(str::to_string)),
    );
    (run, Expected { disks, codes })
}

impl Expected {
    /// Asserts that `page` (the facts render.mjs measured) shows all of it.
    fn check(&self, page: &Value, context: &str) {
        assert_eq!(
            page["requests"],
            serde_json::json!([]),
            "the page fetched something: {context}"
        );
        let pictures = page["pictures"].as_array().expect("pictures");
        assert_eq!(
            pictures.len(),
            self.disks.len(),
            "one picture per disk: {context}"
        );
        for (source, partitions) in &self.disks {
            let picture = pictures
                .iter()
                .find(|p| p["disk"].as_str().is_some_and(|d| d.contains(source)))
                .unwrap_or_else(|| panic!("no picture for {source}: {context}"));
            assert!(
                picture["visible"] == true && has_area(&picture["box"]),
                "the picture of {source} is not shown: {context}"
            );
            for index in partitions {
                let shown = picture["partitions"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["index"] == *index
                            && p["visible"] == true
                            && p["inside"] == true
                            && has_area(&p["box"])
                    })
                });
                assert!(
                    shown,
                    "partition {index} of {source} is not drawn: {context}"
                );
            }
        }
        let findings = page["findings"].as_array().expect("findings");
        for code in &self.codes {
            let shown = findings.iter().any(|f| {
                f["visible"] == true
                    && has_area(&f["box"])
                    && f["text"]
                        .as_str()
                        .is_some_and(|t| t.contains(code.as_str()))
            });
            assert!(shown, "finding {code} is not shown: {context}");
        }
        assert_eq!(
            page["overflows"], false,
            "something sticks out past the window: {context}"
        );
    }
}

/// A box with a width and a height.
fn has_area(b: &Value) -> bool {
    b["width"].as_f64().is_some_and(|w| w > 0.0) && b["height"].as_f64().is_some_and(|h| h > 0.0)
}

/// Where screenshots are kept: `test-artifacts/report-render` in the target directory.
fn artifact_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| root.join(t))
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("test-artifacts/report-render");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Node.js with render.mjs and its playwright-core, and the Chromium it drives.
struct Browser {
    script: PathBuf,
}

const INSTALL: &str = "run scripts/install-deps.sh, which installs it";

impl Browser {
    /// Finds everything the render needs; fails (never skips) when something is missing.
    fn find() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let node = Command::new("node").arg("--version").output();
        assert!(
            node.is_ok_and(|o| o.status.success()),
            "node (Node.js) not found: {INSTALL}"
        );
        let module = dir.join("node_modules/playwright-core/package.json");
        assert!(
            module.exists(),
            "playwright-core missing in {}: {INSTALL}",
            dir.display()
        );
        let chromium = std::env::var_os("IMGPORT_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        assert!(
            chromium.exists(),
            "Chromium not found at {}: {INSTALL}",
            chromium.display()
        );
        Browser {
            script: dir.join("render.mjs"),
        }
    }

    /// Renders each `(page, screenshot)` at `width` px and returns the facts per page.
    fn render(&self, width: u32, pages: &[(&Path, &Path)]) -> Vec<Value> {
        let mut cmd = Command::new("node");
        cmd.arg(&self.script).arg("--width").arg(width.to_string());
        for (page, png) in pages {
            cmd.arg(page).arg(png);
        }
        let text = format!("{cmd:?}");
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{text}: {e}: {INSTALL}"));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > RENDER_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let (stdout, stderr) = (read(&out), read(&err));
        let show = format!("command: {text}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        let status = status.unwrap_or_else(|| panic!("the browser did not finish in time\n{show}"));
        assert!(status.success(), "the browser failed\n{show}");
        let facts: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("the browser's facts are not JSON ({e})\n{show}"));
        let facts = facts.as_array().cloned().unwrap_or_default();
        assert_eq!(
            facts.len(),
            pages.len(),
            "one page of facts per page\n{show}"
        );
        facts
    }
}

//! Progress on a terminal (run under `script`, which gives the binary a pseudo-terminal): the
//! cloud's import shows its status and percent, not bytes, and `--json` on stdout is untouched
//! by any bar. (Without a terminal stderr stays empty: see `cli_verbose`.)

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// `text` quoted for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `imgport ARGS > out.json` in `dir` on a pseudo-terminal; returns what the terminal
/// showed and the JSON written to stdout.
fn on_terminal(dir: &Path, args: &[&str]) -> (String, serde_json::Value) {
    let (json, screen) = (dir.join("out.json"), dir.join("screen"));
    let mut line = vec![quote(env!("CARGO_BIN_EXE_imgport"))];
    line.extend(args.iter().map(|a| quote(a)));
    let command = format!("{} > {}", line.join(" "), quote(json.to_str().unwrap()));
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&screen)
        .current_dir(dir)
        .output()
        .expect("script (util-linux) runs");
    let shown = std::fs::read_to_string(&screen).unwrap();
    assert!(out.status.success(), "{shown}");
    let text = std::fs::read_to_string(&json).unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not clean JSON ({e}):\n{text}"));
    (shown, value)
}

#[test]
fn the_import_wait_bar_shows_status_and_percent_and_json_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let sandbox = dir.path().join("sandbox");
    let (shown, r) = on_terminal(
        dir.path(),
        &[
            "import",
            src.to_str().unwrap(),
            "--region",
            "cn-hangzhou",
            "--bucket",
            "sandbox",
            "--allow-no-os",
            "--sandbox",
            "--sandbox-import-seconds",
            "2",
            "--json",
            "--sandbox-dir",
            sandbox.to_str().unwrap(),
        ],
    );
    // The screen as drawn: every redraw on its own line.
    let redraws: Vec<&str> = shown.split(['\r', '\n']).collect();
    let waiting: Vec<&&str> = redraws
        .iter()
        .filter(|l| l.contains("importing image m-"))
        .collect();
    assert!(!waiting.is_empty(), "no import bar:\n{shown}");
    assert!(
        waiting.iter().any(|l| l.contains("Creating")),
        "no status:\n{shown}"
    );
    assert!(
        waiting.iter().any(|l| l.contains(" 50%")),
        "no percent:\n{shown}"
    );
    assert!(
        waiting
            .iter()
            .all(|l| !l.contains(" B/") && !l.contains("B/s")),
        "bytes in the import bar:\n{shown}"
    );
    // The upload's bar counts bytes.
    assert!(shown.contains("MiB/3.81 MiB"), "{shown}");
    assert_eq!(r["status"], "Available");
}

#[test]
fn a_batch_shows_one_bar_of_images_and_prints_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("content.qcow2");
    let mut manifest = String::from(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nallow_no_os = true\n\n",
    );
    for k in 0..3 {
        manifest.push_str(&format!(
            "[[image]]\nname = \"row-{k}\"\nfiles = [\"{}\"]\n\n",
            src.display()
        ));
    }
    let m = dir.path().join("batch.toml");
    std::fs::write(&m, manifest).unwrap();
    let sandbox = dir.path().join("sandbox");
    let (shown, r) = on_terminal(
        dir.path(),
        &[
            "batch",
            m.to_str().unwrap(),
            "--json",
            "--sandbox",
            "--sandbox-import-seconds",
            "0.5",
            "--sandbox-dir",
            sandbox.to_str().unwrap(),
        ],
    );
    let bars: Vec<&str> = shown
        .split(['\r', '\n'])
        .filter(|l| l.contains("images ["))
        .collect();
    assert!(!bars.is_empty(), "no batch bar:\n{shown}");
    assert!(bars.iter().any(|l| l.contains("/3 ")), "{shown}");
    assert!(bars.iter().all(|l| l.contains("eta")), "{shown}");
    // No row is printed beside the bar: each is in the JSON, once.
    let beside: Vec<&str> = shown
        .split(['\r', '\n'])
        .filter(|l| l.contains("row-") && !l.contains("images ["))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    assert_eq!(r["imported"], 3, "{r}");
    assert_eq!(r["rows"].as_array().unwrap().len(), 3);
}

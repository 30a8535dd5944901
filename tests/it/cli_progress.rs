//! Progress on a terminal (run under `script`, which gives the binary a pseudo-terminal): the
//! cloud's import shows its status and percent, not bytes, and `--json` on stdout is untouched
//! by any bar. (Without a terminal stderr stays empty: see `cli_verbose`.)

use std::process::Command;

use crate::util::*;

/// `text` quoted for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn the_import_wait_bar_shows_status_and_percent_and_json_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (json, screen) = (dir.path().join("out.json"), dir.path().join("screen"));
    let bin = env!("CARGO_BIN_EXE_imgport");
    let src = image("content.qcow2");
    let sandbox = dir.path().join("sandbox");
    let args = [
        bin,
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
    ];
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let command = format!("{} > {}", line.join(" "), quote(json.to_str().unwrap()));
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&screen)
        .current_dir(dir.path())
        .output()
        .expect("script (util-linux) runs");
    let shown = std::fs::read_to_string(&screen).unwrap();
    assert!(out.status.success(), "{shown}");
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
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("clean JSON");
    assert_eq!(r["status"], "Available");
}

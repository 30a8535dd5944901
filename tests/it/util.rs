//! Shared helpers: run the binary, find the cached test images, ask qemu-img.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Directory of the cached test images; fails loudly when they were not built.
pub fn testdata() -> PathBuf {
    let dir = std::env::var_os("IMGPORT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cache"));
    assert!(
        dir.join("STAMP").exists(),
        "test images missing in {}: run scripts/make-testdata.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Path of one cached test image.
pub fn image(name: &str) -> PathBuf {
    let p = testdata().join(name);
    assert!(p.exists(), "test image {} missing", p.display());
    p
}

/// The result of running the binary, with a readable failure description.
pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    /// Asserts the exit code, showing the command and both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "command: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd,
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout).unwrap_or_else(|e| {
            panic!(
                "command: {}\nstdout is not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.cmd,
                self.stdout(),
                self.stderr()
            )
        })
    }
}

/// Runs `imgport ARGS` in a fresh temporary directory.
pub fn imgport<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    imgport_in(dir.path(), args)
}

/// Runs `imgport convert SRC DST --to FORMAT` in a fresh temporary directory.
pub fn imgport_convert(src: &Path, dst: &Path, to: &str) -> Run {
    imgport([
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--to".as_ref(),
        std::ffi::OsStr::new(to),
    ])
}

/// Runs `imgport ARGS` in `dir`.
pub fn imgport_in<I, S>(dir: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.args(&args).current_dir(dir);
    let text = format!(
        "imgport {}",
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().expect("run imgport");
    Run { cmd: text, out }
}

/// Asserts that a finished command succeeded, showing its stderr when not.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that a finished command succeeded (showing its stderr when not) and parses its
/// stdout as JSON.
pub fn ok_json(out: &Output) -> serde_json::Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `qemu-img info --output=json [-f FORMAT] PATH`, parsed.
pub fn qemu_info(path: &Path, format: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json"]);
    if let Some(f) = format {
        cmd.args(["-f", f]);
    }
    let out = cmd.arg(path).output().expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img info {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("qemu-img JSON")
}

/// Inspects one file with `--json` and returns its object.
pub fn inspect_one(path: &Path, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args: Vec<std::ffi::OsString> = vec!["inspect".into(), "--json".into()];
    args.extend(extra.iter().map(Into::into));
    args.push(path.into());
    let run = imgport(&args);
    let v = run.json();
    let obj = v
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_else(|| panic!("command: {}\nno report in {v}", run.cmd));
    (run, obj)
}

/// The codes of the findings of one report object.
pub fn finding_codes(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `script` with bash; panics with its stderr when it fails. Returns stdout.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The flags that plan one system disk without an OS into `bucket` of cn-hangzhou.
pub fn system_disk_flags(bucket: &str) -> [&str; 7] {
    [
        "--region",
        "cn-hangzhou",
        "--bucket",
        bucket,
        "--system-disk",
        "1",
        "--allow-no-os",
    ]
}

/// The file in which the emulator's S3 server, run with `--sandbox-dir DIR/sandbox`, keeps
/// object `key` of `bucket`.
pub fn sandbox_object(dir: &Path, bucket: &str, key: &str) -> PathBuf {
    dir.join("sandbox/s3").join(bucket).join(key)
}

/// Runs `script` with bash in the directory `dir`; see [`sh`].
pub fn sh_in(dir: &Path, script: &str) -> String {
    sh(&format!("cd '{}' && {script}", dir.display()))
}

/// The first whitespace-separated word of `s` (the digest of a `*sum` line).
pub fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or_default().to_string()
}

/// `sha256sum PATH`, the digest only.
pub fn sha256sum(path: &Path) -> String {
    first_word(&sh(&format!("sha256sum '{}'", path.display())))
}

/// `imgport sim` as a child process (ECS emulator and S3 server), killed on drop.
pub struct Sim {
    pub child: Child,
    pub ecs: String,
    pub s3: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `imgport sim` keeping its state in `state`, with `bucket` created and imports
/// taking half a second.
pub fn start_sim(state: &Path, bucket: &str) -> Sim {
    start_sim_with(state, bucket, &[])
}

/// [`start_sim`] with more `imgport sim` flags (faults).
pub fn start_sim_with(state: &Path, bucket: &str, extra: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args([
            "sim",
            "--import-seconds",
            "0.5",
            "--bucket",
            bucket,
            "--state",
        ])
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ecs, mut s3) = (String::new(), String::new());
    while ecs.is_empty() || s3.is_empty() {
        let line = lines.next().expect("sim output").unwrap();
        if let Some(v) = line.strip_prefix("endpoint: ") {
            ecs = v.to_string();
        } else if let Some(v) = line.strip_prefix("s3_endpoint: ") {
            s3 = v.to_string();
        }
    }
    // Keep reading so the sim never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Sim { child, ecs, s3 }
}

/// Sets the emulator's test AccessKey (which `imgport sim` accepts) in `cmd`'s environment.
pub fn with_sim_keys(cmd: &mut Command) -> &mut Command {
    cmd.env(
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        imgport::sim::server::TEST_ACCESS_KEY_ID,
    )
    .env(
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        imgport::sim::server::TEST_ACCESS_KEY_SECRET,
    )
}

/// Image id -> image record, from the state file the emulator keeps in `state`.
pub fn sim_images(state: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let path = state.join("ecs-state.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("emulator state {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("emulator state JSON");
    serde_json::from_value(v["images"].clone())
        .unwrap_or_else(|e| panic!("no image map in {}: {e}", path.display()))
}

/// The parameters of the `ImportImage` request that `imgport plan --json` printed.
pub fn import_params(plan: &serde_json::Value) -> Vec<(String, String)> {
    let import = plan["requests"]
        .as_array()
        .expect("plan JSON has requests")
        .iter()
        .find(|r| r["action"] == "ImportImage")
        .expect("the plan holds an ImportImage request");
    serde_json::from_value(import["params"].clone()).expect("params are key/value pairs")
}

/// The `ImportImage` parameters `imgport plan --json` plans for `path` (region cn-hangzhou,
/// bucket my-images); the plan must succeed.
pub fn planned_import_params(path: &Path) -> Vec<(String, String)> {
    let run = imgport([
        "plan".as_ref(),
        "--json".as_ref(),
        "--region".as_ref(),
        "cn-hangzhou".as_ref(),
        "--bucket".as_ref(),
        "my-images".as_ref(),
        path.as_os_str(),
    ]);
    run.expect_code(0);
    import_params(&run.json())
}

/// Asserts that every `(key, value)` of `want` is among `params`.
pub fn assert_params(params: &[(String, String)], want: &[(&str, &str)]) {
    for w in want {
        assert!(
            params.iter().any(|(k, v)| k == w.0 && v == w.1),
            "{w:?} missing in {params:?}"
        );
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Parts an upload journal under `dir` records as sent (its `{"part"…}` lines).
pub fn journaled_parts(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("{\"part\""))
                .count()
        })
        .sum()
}

/// `imgport import FILES --sandbox --json` into `bucket`, with the sandbox and journal under
/// `dir`, a 1 s cloud import, then `extra`.
pub fn sandbox_import_args(
    dir: &Path,
    bucket: &str,
    files: &[&Path],
    extra: &[&str],
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["import".into()];
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    for a in [
        "--region",
        "cn-hangzhou",
        "--bucket",
        bucket,
        "--sandbox",
        "--json",
    ] {
        args.push(a.into());
    }
    args.push("--sandbox-dir".into());
    args.push(dir.join("sandbox").into());
    args.push("--journal".into());
    args.push(dir.join("journal").into());
    args.push("--sandbox-import-seconds".into());
    args.push("1".into());
    args.extend(extra.iter().map(Into::into));
    args
}

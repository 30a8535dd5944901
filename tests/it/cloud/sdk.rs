//! Alibaba's official Python SDK, unchanged, against the emulator.

use super::*;

/// A venv with Alibaba's official ECS SDK, cached between runs; `None` without python3.
pub(super) fn sdk_python() -> Option<PathBuf> {
    let python = which("python3")?;
    let cache = std::env::var_os("IMGPORT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cache"));
    let venv = cache.join("sdk-venv");
    let py = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .ok()?
            .success()
            && Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "alibabacloud_ecs20140526",
                ])
                .status()
                .ok()?
                .success();
        assert!(
            ok,
            "installing alibabacloud_ecs20140526 into {} failed",
            venv.display()
        );
        std::fs::write(&ready, b"").unwrap();
    }
    Some(py)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn official_python_sdk_imports_against_the_emulator() {
    let Some(py) = sdk_python() else {
        eprintln!("python3 not found: skipping the official SDK smoke test");
        return;
    };
    let sim = SimProcess::start(&["--import-seconds", "1"]);
    sim.put_raw("sdk/disk.raw", 1 << 20);
    run_smoke(
        &py,
        "sdk-smoke.py",
        &[
            ("SIM_ENDPOINT", sim.endpoint.trim_start_matches("http://")),
            ("SIM_ACCESS_KEY_ID", &sim.key_id),
            ("SIM_ACCESS_KEY_SECRET", &sim.secret),
            ("SIM_BUCKET", BUCKET),
            ("SIM_OBJECT", "sdk/disk.raw"),
        ],
        &[
            "status Available",
            "error InvalidImageName.Malformed",
            "bad secret SignatureDoesNotMatch",
        ],
    );
}

/// Runs `scripts/SCRIPT` (which imports scripts/sim_sdk.py) with the venv's `py` and `env`; asserts that it succeeds and that
/// its stdout holds every one of `lines`, showing both streams when not.
pub(super) fn run_smoke(py: &Path, script: &str, env: &[(&str, &str)], lines: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    // scripts/sim_sdk.py is imported: no __pycache__ is left in the tree.
    let out = Command::new(py)
        .arg(&path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for line in lines {
        assert!(
            stdout.contains(line),
            "{script}: {line:?} missing in\n{stdout}"
        );
    }
}

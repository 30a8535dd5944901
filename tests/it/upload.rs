//! `imgport upload` against the embedded S3 server (`imgport::sim::s3`) started
//! in this test process on 127.0.0.1:0: objects equal the file or `imgport convert`'s output,
//! many parts, injected faults (5xx, SlowDown, dropped connections, delay) still complete with
//! every part stored exactly once, kill -9 then resume reuses the finished parts, a re-run
//! after success does nothing, `--abort`, verification catches a changed object, the
//! credential order, and no secret in any output or journal.
//!
//! Kept whole: one command's integration tests sharing one embedded S3 server harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use imgport::sim::s3::{FaultKind, PartFault, S3Faults, S3Server, S3Thread};
use imgport::sim::server::{TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET};

use crate::util::{image, ok_json, sh_in};

const BUCKET: &str = "images";
const MIB: usize = 1 << 20;

struct Env {
    dir: tempfile::TempDir,
    s3: S3Thread,
}

impl Env {
    /// Runs the upload `args` (with `extra` flags) while every attempt at `part` fails with
    /// SlowDown: an upload stopped part-way (exit 4), its journal kept, the faults cleared.
    fn stop_at_part(&self, args: &[&str], part: u32, extra: &[&str]) {
        self.s3.set_faults(S3Faults {
            parts: vec![PartFault {
                part,
                kind: FaultKind::SlowDown,
                times: 1000,
            }],
            ..S3Faults::default()
        });
        let out = self.run(&[args, extra].concat(), &keys());
        assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
        self.s3.set_faults(S3Faults::default());
    }

    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let s3 = S3Server::spawn(&dir.path().join("s3"), &[BUCKET]).expect("start S3 server");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Self { dir, s3 }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn object(&self, key: &str) -> PathBuf {
        self.s3.root.join(BUCKET).join(key)
    }

    fn journal_dir(&self) -> PathBuf {
        self.path("journal")
    }

    /// `imgport upload` with an environment of only what is given (no inherited keys).
    fn command(&self, extra: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
        cmd.arg("upload")
            .args(["--bucket", BUCKET, "--endpoint"])
            .arg(self.s3.endpoint())
            .args([
                "--path-style",
                "--region",
                "us-east-1",
                "--retry-base-ms",
                "5",
            ])
            .arg("--journal")
            .arg(self.journal_dir())
            .args(extra)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self
            .command(extra, env)
            .output()
            .expect("run imgport upload");
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !text.contains(TEST_ACCESS_KEY_SECRET) && !text.contains("wrong-secret-xyz"),
                "a secret leaked into the output:\n{text}"
            );
        }
        out
    }

    /// Starts an upload of `src` as `key` that sends one 5 MiB part at a time, to be
    /// interrupted; stdout is discarded.
    fn spawn_one_part_at_a_time(&self, src: &Path, key: &str, stderr: Stdio) -> Child {
        let args = [src.to_str().unwrap(), "--key", key];
        let slow = ["--part-size", "5M", "--concurrency", "1"];
        self.command(&[&args[..], &slow].concat(), &keys())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// Waits (at most 60 s) until the server has stored `parts` parts, calling `check`
    /// between polls.
    fn wait_for_parts(&self, parts: usize, mut check: impl FnMut()) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.s3.stats().parts_ok.len() < parts {
            assert!(Instant::now() < deadline, "no progress");
            check();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs with the test keys in the environment and expects success; returns the JSON.
    fn upload(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = extra.to_vec();
        args.push("--json");
        let out = self.run(&args, &keys());
        assert!(
            out.status.success(),
            "imgport upload {extra:?} failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    fn journal_text(&self) -> String {
        let mut all = String::new();
        if let Ok(rd) = std::fs::read_dir(self.journal_dir()) {
            for e in rd.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

/// The library's own S3 client for the emulator at `endpoint`, with the test keys.
fn test_store(endpoint: &str) -> imgport::store::S3Store {
    let config = imgport::store::StoreConfig::custom("us-east-1", endpoint, true).unwrap();
    let creds = imgport::credentials::Credentials {
        access_key_id: TEST_ACCESS_KEY_ID.into(),
        access_key_secret: imgport::secret::Secret::new(TEST_ACCESS_KEY_SECRET),
        security_token: None,
    };
    imgport::store::S3Store::new(&config, &creds)
}

fn keys() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET),
    ]
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn random_file(path: &Path, len: usize, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data = vec![0u8; len];
    rng.fill(&mut data);
    std::fs::write(path, data).unwrap();
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn file_as_is_then_rerun_does_nothing() {
    let env = Env::new();
    let src = env.path("disk.raw");
    random_file(&src, 23 * MIB + 12345, 1);
    let j = env.upload(&[
        src.to_str().unwrap(),
        "--key",
        "d/disk.raw",
        "--part-size",
        "5M",
    ]);
    assert_eq!(j["parts"], 5);
    assert_eq!(j["parts_sent"], 5);
    assert_eq!(j["already_present"], false);
    assert_eq!(j["credentials"]["kind"], "environment");
    let sha = sha256_file(&src);
    assert_eq!(j["sha256"], sha.as_str());
    assert_eq!(sha256_file(&env.object("d/disk.raw")), sha);
    assert_eq!(j["etag"], j["multipart_etag"]);
    assert_eq!(
        j["server_crc64"], j["crc64"],
        "HEAD's x-oss-hash-crc64ecma was compared"
    );
    assert!(env.object("d/disk.raw.imgport.json").exists());
    let before = env.s3.stats();
    // OSS framing (docs/CLOUD-API.md §OSS): the body's SHA-256 signed, no aws-chunked body, no
    // checksum trailer, and no Content-MD5: the signed SHA-256 is the part's check.
    let framing: Vec<&str> = before.part_framing.iter().map(String::as_str).collect();
    assert_eq!(
        framing,
        ["x-amz-content-sha256=hash"],
        "UploadPart headers: OSS wants the body's SHA-256 signed on PUT"
    );
    assert!(before.parts_ok.values().all(|&n| n == 1), "{before:?}");

    let again = env.upload(&[
        src.to_str().unwrap(),
        "--key",
        "d/disk.raw",
        "--part-size",
        "5M",
    ]);
    assert_eq!(again["already_present"], true);
    assert_eq!(again["parts_sent"], 0);
    assert_eq!(again["sha256"], sha.as_str());
    let after = env.s3.stats();
    assert_eq!(after.parts_ok, before.parts_ok, "nothing was sent again");
    assert_eq!(after.completes, before.completes);
    assert!(!env.journal_text().contains(TEST_ACCESS_KEY_SECRET));
}

#[test]
fn unsigned_payload_is_refused_like_oss() {
    let env = Env::new();
    let src = env.path("s.bin");
    random_file(&src, 6 * MIB, 8);
    let unsigned = || {
        let args = [src.to_str().unwrap(), "--key", "s.bin", "--part-size", "5M"];
        env.run(&[&args[..], &["--unsigned-payload"]].concat(), &keys())
    };
    let out = unsigned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    // OSS wants the SHA-256 of a PUT body (docs/CLOUD-API.md §OSS).
    assert!(
        err.contains("InvalidArgument") && err.contains("X-Amz-Content-SHA256"),
        "{err}"
    );
    let framing: Vec<String> = env.s3.stats().part_framing.into_iter().collect();
    assert_eq!(
        framing,
        ["content-md5", "x-amz-content-sha256=UNSIGNED-PAYLOAD"]
    );
    assert!(!env.object("s.bin").exists());

    // A plain S3 server takes the same upload, and its bytes arrive whole.
    env.s3.take_unsigned_payload(true);
    let out = unsigned();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read(env.object("s.bin")).unwrap(),
        std::fs::read(&src).unwrap()
    );
}

#[test]
fn converted_on_the_fly_equals_convert_output() {
    let env = Env::new();
    let src = image("content.raw");
    for to in ["vhd", "qcow2"] {
        let converted = env.path(&format!("c.{to}"));
        let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .args([
                "convert",
                src.to_str().unwrap(),
                converted.to_str().unwrap(),
                "--to",
                to,
            ])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        crate::util::assert_ok(&out);
        let key = format!("disk.{to}");
        let j = env.upload(&[
            src.to_str().unwrap(),
            "--key",
            &key,
            "--to",
            to,
            "--part-size",
            "5M",
        ]);
        let want = sha256_file(&converted);
        assert_eq!(sha256_file(&env.object(&key)), want, "{to}: object bytes");
        assert_eq!(j["sha256"], want.as_str(), "{to}");
        assert_eq!(
            j["size"].as_u64().unwrap(),
            std::fs::metadata(&converted).unwrap().len()
        );
    }
    // ImportImage's object lookup finds what the S3 server stored.
    let p = imgport::sim::disk::object_path(&env.s3.root, BUCKET, "disk.vhd").unwrap();
    assert!(p.is_file());
}

#[test]
fn a_vmdk_converted_on_the_fly_equals_convert_output() {
    let env = Env::new();
    let src = image("vmdk/streamOptimized.vmdk");
    let converted = env.path("c.qcow2");
    let out = Command::new(env!("CARGO_BIN_EXE_imgport"))
        .args([
            "convert",
            src.to_str().unwrap(),
            converted.to_str().unwrap(),
            "--to",
            "qcow2",
        ])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    crate::util::assert_ok(&out);
    let j = env.upload(&[src.to_str().unwrap(), "--key", "v.qcow2", "--to", "qcow2"]);
    let want = sha256_file(&converted);
    assert_eq!(sha256_file(&env.object("v.qcow2")), want, "object bytes");
    assert_eq!(j["sha256"], want.as_str());
}

#[test]
fn faults_are_retried_and_each_part_is_stored_once() {
    let env = Env::new();
    let src = env.path("f.bin");
    random_file(&src, 30 * MIB, 2);
    env.s3.set_faults(S3Faults {
        parts: vec![
            PartFault {
                part: 1,
                kind: FaultKind::Internal,
                times: 2,
            },
            PartFault {
                part: 2,
                kind: FaultKind::SlowDown,
                times: 2,
            },
            PartFault {
                part: 3,
                kind: FaultKind::Drop,
                times: 1,
            },
            PartFault {
                part: 4,
                kind: FaultKind::DelayMs(300),
                times: 1,
            },
        ],
        tamper_after_complete: false,
        rate: 0.0,
    });
    let j = env.upload(&[src.to_str().unwrap(), "--key", "f.bin", "--part-size", "5M"]);
    assert_eq!(j["parts"], 6);
    assert!(j["retries"].as_u64().unwrap() >= 5, "{j}");
    assert_eq!(sha256_file(&env.object("f.bin")), sha256_file(&src));
    let s = env.s3.stats();
    assert_eq!(s.parts_ok.len(), 6);
    assert!(s.parts_ok.values().all(|&n| n == 1), "exactly once: {s:?}");
    assert_eq!(s.part_requests[&1], 3);
    assert_eq!(s.part_requests[&2], 3);
    assert_eq!(s.part_requests[&3], 2);
}

/// A part's buffer is not kept for its retry: the retry reads the part again from the source
/// and checks it against the first read (CRC-64, SHA-256). Unchanged, the retried part is
/// stored once; changed between the two reads, it is refused by name and nothing is
/// completed (a kept buffer would have sent the old bytes and succeeded).
#[test]
fn a_retry_reads_its_part_again_and_refuses_a_changed_source() {
    let late_failure = |ms| S3Faults {
        parts: vec![PartFault {
            part: 2,
            kind: FaultKind::FailAfterMs(ms),
            times: 1,
        }],
        ..S3Faults::default()
    };
    let env = Env::new();
    let src = env.path("r.bin");
    random_file(&src, 30 * MIB, 3);
    env.s3.set_faults(late_failure(100));
    let j = env.upload(&[src.to_str().unwrap(), "--key", "r.bin", "--part-size", "5M"]);
    assert_eq!(j["retries"], 1, "{j}");
    assert_eq!(sha256_file(&env.object("r.bin")), sha256_file(&src));
    let s = env.s3.stats();
    assert_eq!(s.part_requests[&2], 2);
    assert!(s.parts_ok.values().all(|&n| n == 1), "exactly once: {s:?}");

    // Part 2's first attempt fails 3 s after it arrived; meanwhile its bytes change.
    let env = Env::new();
    random_file(&src, 30 * MIB, 3);
    env.s3.set_faults(late_failure(3000));
    let args = [src.to_str().unwrap(), "--key", "c.bin", "--part-size", "5M"];
    let child = env
        .command(&args, &keys())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.s3.stats().part_requests.contains_key(&2) {
        assert!(Instant::now() < deadline, "part 2 was never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
        f.write_all_at(&[0xAB; 4096], 5 * MIB as u64 + 4096)
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("part 2: read again from the source for a retry, it has CRC-64")
            && err.contains("the source changed during the upload"),
        "{err}"
    );
    assert!(!env.object("c.bin").exists());
    assert_eq!(env.s3.stats().completes, 0);
}

/// A part's buffer goes back to the pool once its request has written it, not when the
/// answer comes: through a link with a 1.5 s round trip, the one buffer of a pool is free
/// again while its UploadPart still waits for its answer (the SDK keeps no copy of the body
/// for a retry of its own). So the parts in flight are not bounded by the part memory.
#[test]
fn a_part_buffer_comes_back_before_its_answer() {
    use imgport::sim::wan::{WanLink, WanProxy};
    use imgport::store::{ObjectStore, ObjectTarget};
    use imgport::transfer::pool::{BufferPool, PartData};
    let env = Env::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let upstream = env.s3.addr;
        let link = WanLink {
            rtt: Duration::from_millis(1500),
            ..WanLink::default()
        };
        let proxy = WanProxy::bind("127.0.0.1:0".parse().unwrap(), upstream, link)
            .await
            .unwrap();
        let endpoint = format!("http://{}", proxy.addr());
        let proxy = tokio::spawn(proxy.serve());
        let store = test_store(&endpoint);
        let target = ObjectTarget {
            bucket: BUCKET.into(),
            key: "far.bin".into(),
        };
        let id = store.create_multipart(&target).await.unwrap();
        let pool = BufferPool::new(MIB, 1);
        let mut buf = pool.get(MIB);
        fastrand::Rng::with_seed(5).fill(&mut buf[..]);
        let (md5, sha256) = (
            imgport::transfer::digest::md5(&buf),
            imgport::transfer::digest::sha256(&buf),
        );
        let data = PartData::new(buf);
        let sending = tokio::spawn({
            let (store, target, id) = (store.clone(), target.clone(), id.clone());
            async move {
                store
                    .upload_part(&target, &id, 1, data, None, Some(sha256))
                    .await
            }
        });
        // Blocks until the part's buffer is back in the pool.
        let again = tokio::task::spawn_blocking(move || pool.get(MIB).len());
        assert_eq!(again.await.unwrap(), MIB);
        assert!(
            !sending.is_finished(),
            "the buffer came back only with the answer"
        );
        let receipt = sending.await.unwrap().unwrap();
        let md5: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(receipt.etag, md5);
        store.abort(&target, &id).await.unwrap();
        proxy.abort();
    });
}

#[test]
fn permanent_failure_gives_up_then_abort_removes_the_upload() {
    let env = Env::new();
    let src = env.path("f.bin");
    random_file(&src, 12 * MIB, 3);
    env.s3.set_faults(S3Faults {
        parts: vec![PartFault {
            part: 2,
            kind: FaultKind::SlowDown,
            times: 100,
        }],
        tamper_after_complete: false,
        rate: 0.0,
    });
    let out = env.run(
        &[
            src.to_str().unwrap(),
            "--key",
            "f.bin",
            "--part-size",
            "5M",
            "--attempts",
            "3",
        ],
        &keys(),
    );
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("part 2") && err.contains("SlowDown"), "{err}");
    assert_eq!(env.s3.stats().part_requests[&2], 3);
    // Each unfinished multipart upload is a directory of the server's `uploads/`.
    let uploads = || {
        std::fs::read_dir(
            env.s3
                .root
                .join(imgport::sim::s3::INTERNAL_DIR)
                .join("uploads"),
        )
        .unwrap()
        .flatten()
        .count()
    };
    assert_eq!(uploads(), 1, "the unfinished upload stays for a resume");
    let out = env.run(&["--key", "f.bin", "--abort", "--json"], &keys());
    let j = ok_json(&out);
    assert!(j["aborted"].is_string(), "{j}");
    assert_eq!(uploads(), 0, "the server forgot the upload");
    assert!(env.journal_text().is_empty(), "journal removed");
    let out = env.run(&["--key", "f.bin", "--abort", "--json"], &keys());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["aborted"].is_null());
}

#[test]
fn kill_mid_upload_then_resume_reuses_finished_parts() {
    let env = Env::new();
    let src = env.path("big.bin");
    random_file(&src, 50 * MIB, 4);
    env.s3.set_faults(S3Faults {
        parts: vec![PartFault {
            part: 0,
            kind: FaultKind::DelayMs(250),
            times: 100,
        }],
        tamper_after_complete: false,
        rate: 0.0,
    });
    let mut child = env.spawn_one_part_at_a_time(&src, "big.bin", Stdio::null());
    env.wait_for_parts(4, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        )
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let journaled: Vec<u32> = env
        .journal_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["part"].as_u64().map(|n| n as u32))
        .collect();
    assert!(journaled.len() >= 3, "journal: {}", env.journal_text());
    let sent_before = env.s3.stats().parts_ok;
    env.s3.set_faults(S3Faults::default());
    let j = env.upload(&[
        src.to_str().unwrap(),
        "--key",
        "big.bin",
        "--part-size",
        "5M",
    ]);
    assert_eq!(sha256_file(&env.object("big.bin")), sha256_file(&src));
    assert_eq!(j["parts"], 10);
    assert_eq!(
        j["parts_reused"].as_u64().unwrap() as usize,
        journaled.len()
    );
    assert_eq!(
        j["parts_sent"].as_u64().unwrap() + j["parts_reused"].as_u64().unwrap(),
        10
    );
    let after = env.s3.stats().parts_ok;
    for n in &journaled {
        assert_eq!(after[n], 1, "finished part {n} was sent again");
        assert_eq!(sent_before[n], 1);
    }
}

#[test]
fn verification_catches_a_changed_object_and_a_replaced_one_is_uploaded_again() {
    let env = Env::new();
    let src = env.path("f.bin");
    random_file(&src, 11 * MIB, 5);
    env.s3.set_faults(S3Faults {
        parts: Vec::new(),
        tamper_after_complete: true,
        rate: 0.0,
    });
    let out = env.run(
        &[src.to_str().unwrap(), "--key", "f.bin", "--part-size", "5M"],
        &keys(),
    );
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verification after Complete failed"), "{err}");
    assert!(
        !env.object("f.bin.imgport.json").exists(),
        "no digest record for a bad object"
    );

    env.s3.set_faults(S3Faults::default());
    let j = env.upload(&[src.to_str().unwrap(), "--key", "f.bin", "--part-size", "5M"]);
    assert_eq!(j["already_present"], false);
    // Replace the object behind our back: the re-run must not call it present.
    random_file(&env.object("f.bin"), 11 * MIB, 6);
    let j = env.upload(&[src.to_str().unwrap(), "--key", "f.bin", "--part-size", "5M"]);
    assert_eq!(j["already_present"], false);
    assert_eq!(j["parts_sent"], 3);
    assert_eq!(sha256_file(&env.object("f.bin")), sha256_file(&src));
}

#[test]
fn credentials_come_in_order_and_never_show() {
    let env = Env::new();
    let src = env.path("small.bin");
    random_file(&src, 300 * 1024, 7);
    let arg = |k: &str| {
        vec![
            src.to_str().unwrap().to_string(),
            "--key".into(),
            k.into(),
            "--json".into(),
        ]
    };
    let run = |extra: Vec<String>, env_vars: &[(&str, &str)]| {
        let args: Vec<&str> = extra.iter().map(String::as_str).collect();
        env.run(&args, env_vars)
    };
    let kind = |out: &Output| -> String {
        let j = ok_json(out);
        j["credentials"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // A CLI profile (StsToken mode works too: the server ignores the token).
    let cfg = env.path("home/.aliyun/config.json");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            r#"{{"current":"default","profiles":[
              {{"name":"default","mode":"AK","access_key_id":"{TEST_ACCESS_KEY_ID}","access_key_secret":"{TEST_ACCESS_KEY_SECRET}"}},
              {{"name":"sts","mode":"StsToken","access_key_id":"{TEST_ACCESS_KEY_ID}","access_key_secret":"{TEST_ACCESS_KEY_SECRET}","sts_token":"tok-secret-abc"}}]}}"#
        ),
    )
    .unwrap();
    assert_eq!(kind(&run(arg("a"), &[])), "profile");
    let mut sts = arg("a2");
    sts.extend(["--profile".into(), "sts".into()]);
    let out = run(sts, &[]);
    assert_eq!(kind(&out), "profile");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tok-secret-abc"));
    // The environment comes before the profile: a wrong secret there is used, and fails.
    let bad_env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-xyz"),
    ];
    let out = run(arg("b"), &bad_env);
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    // Flags come before the environment.
    let mut flags = arg("c");
    flags.extend([
        "--access-key-id".into(),
        TEST_ACCESS_KEY_ID.into(),
        "--access-key-secret".into(),
        TEST_ACCESS_KEY_SECRET.into(),
    ]);
    assert_eq!(kind(&run(flags, &bad_env)), "flags");
    // Without any Alibaba source, the AWS variables serve a plain S3 endpoint.
    std::fs::remove_file(&cfg).unwrap();
    let aws = [
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", TEST_ACCESS_KEY_SECRET),
    ];
    assert_eq!(kind(&run(arg("d"), &aws)), "aws_environment");
    let out = run(arg("e"), &[]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no credentials"));
    // Finished uploads leave no journal; whatever is left names no secret.
    let journal = env.journal_text();
    assert!(!journal.contains(TEST_ACCESS_KEY_SECRET) && !journal.contains("tok-secret-abc"));
}

#[test]
fn ctrl_c_stops_with_130_and_the_upload_resumes() {
    let env = Env::new();
    let src = env.path("i.bin");
    random_file(&src, 30 * MIB, 9);
    env.s3.set_faults(S3Faults {
        parts: vec![PartFault {
            part: 0,
            kind: FaultKind::DelayMs(200),
            times: 100,
        }],
        tamper_after_complete: false,
        rate: 0.0,
    });
    let child = env.spawn_one_part_at_a_time(&src, "i.bin", Stdio::piped());
    env.wait_for_parts(2, || {});
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 130, "{err}");
    // Issue 19 point 4: the message says how to resume and how to drop the upload.
    assert!(err.contains("resumable"), "{err}");
    assert!(
        err.contains("resume: imgport upload ") && err.contains("i.bin"),
        "{err}"
    );
    assert!(
        err.contains("drop:   imgport upload --abort --bucket images --key i.bin"),
        "{err}"
    );
    env.s3.set_faults(S3Faults::default());
    let j = env.upload(&[src.to_str().unwrap(), "--key", "i.bin", "--part-size", "5M"]);
    assert!(j["parts_reused"].as_u64().unwrap() >= 2, "{j}");
    assert_eq!(sha256_file(&env.object("i.bin")), sha256_file(&src));
    assert!(env.s3.stats().parts_ok.values().all(|&n| n == 1));
}

/// `imgport upload` at `env`'s server with the test keys and only `args` besides (no bucket,
/// no journal directory: the default one under `env`'s HOME).
fn bare_command(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    cmd.arg("upload")
        .arg("--endpoint")
        .arg(env.s3.endpoint())
        .arg("--path-style")
        .args(args)
        .env_clear()
        .env("HOME", env.path("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(keys())
        .current_dir(env.dir.path());
    cmd
}

/// The unfinished upload a journal in `env` names (its header's `upload_id`).
fn journaled_upload_id(env: &Env) -> String {
    let text = env.journal_text();
    let header: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or_default()).expect("journal header");
    header["upload_id"].as_str().expect("upload_id").to_string()
}

/// Open multipart uploads on the server (each is a directory of its `uploads/`).
fn open_uploads(env: &Env) -> usize {
    std::fs::read_dir(
        env.s3
            .root
            .join(imgport::sim::s3::INTERNAL_DIR)
            .join("uploads"),
    )
    .map_or(0, |rd| rd.flatten().count())
}

/// Leaves `src` as `key` the way a run killed right after its Complete leaves it: a first run
/// stores every part but the last (whose attempts all fail) and keeps its journal, then the
/// last part and the Complete are done here with the library's own S3 client, as the killed
/// run's requests would have been. Returns the consumed upload id.
fn complete_behind_the_journal(env: &Env, src: &Path, key: &str, parts: u32) -> String {
    let args = [src.to_str().unwrap(), "--key", key, "--part-size", "5M"];
    env.stop_at_part(&args, parts, &["--attempts", "2", "--concurrency", "1"]);
    let upload_id = journaled_upload_id(env);
    complete_with_last_part(env, src, key, &upload_id, parts);
    upload_id
}

/// Sends the last of `parts` 5 MiB parts of `src` to upload `upload_id` of `key` and
/// completes it with the parts the server lists, using the library's own S3 client (as a
/// killed run's last requests would have).
fn complete_with_last_part(env: &Env, src: &Path, key: &str, upload_id: &str, parts: u32) {
    use imgport::store::{ObjectStore, ObjectTarget};
    let data = std::fs::read(src).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = test_store(&env.s3.endpoint());
        let target = ObjectTarget {
            bucket: BUCKET.into(),
            key: key.into(),
        };
        let listed = store.list_parts(&target, upload_id).await.unwrap().unwrap();
        let mut etags: Vec<(u32, String)> = listed
            .iter()
            .map(|p| (p.number, p.etag.clone().unwrap()))
            .collect();
        assert_eq!(etags.len() as u32, parts - 1, "{listed:?}");
        let last = &data[(parts as usize - 1) * 5 * MIB..];
        let pool = imgport::transfer::pool::BufferPool::new(last.len(), 1);
        let mut buf = pool.get(last.len());
        buf.copy_from_slice(last);
        let md5 = imgport::transfer::digest::md5(last);
        let data = imgport::transfer::pool::PartData::new(buf);
        let receipt = store
            .upload_part(&target, upload_id, parts, data, Some(md5), None)
            .await
            .unwrap();
        etags.push((parts, receipt.etag));
        store.complete(&target, upload_id, &etags).await.unwrap();
    });
}

/// Issue 26 cases 9 and 10: a run killed after its Complete went through. The re-run checks
/// the object against the source before anything else: unchanged, nothing is sent again and
/// the object is verified; changed in place (same size, inode and mtime), the new bytes are
/// uploaded; a journal whose part MD5s disagree with the source is not trusted either.
#[test]
fn a_run_killed_after_its_complete_is_checked_against_the_object() {
    let env = Env::new();
    let src = env.path("k.bin");
    random_file(&src, 12 * MIB + 777, 11);
    let args = [src.to_str().unwrap(), "--key", "k.bin", "--part-size", "5M"];

    // Unchanged source: verified from the object, nothing sent or completed again.
    complete_behind_the_journal(&env, &src, "k.bin", 3);
    let before = env.s3.stats();
    let j = env.upload(&args);
    let after = env.s3.stats();
    assert_eq!(j["parts_sent"], 0, "{j}");
    assert_eq!(j["parts_reused"], 3, "{j}");
    assert_eq!(j["etag"], j["multipart_etag"], "{j}");
    assert_eq!(j["sha256"], sha256_file(&src).as_str());
    assert_eq!(after.parts_ok, before.parts_ok, "no part sent again");
    assert_eq!(after.completes, before.completes, "no second Complete");
    assert!(
        env.journal_text().is_empty(),
        "the finished journal is removed"
    );
    assert_eq!(open_uploads(&env), 0);
    let again = env.upload(&args);
    assert_eq!(again["already_present"], true, "{again}");

    // Case 9: one byte changed in place, size, inode and mtime kept.
    complete_behind_the_journal(&env, &src, "k9.bin", 3);
    let old = sha256_file(&env.object("k9.bin"));
    let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&src)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, 100).unwrap();
        f.write_all_at(&[b[0] ^ 0xff], 100).unwrap();
        f.set_modified(mtime).unwrap();
    }
    let new = sha256_file(&src);
    assert_ne!(old, new);
    let j = env.upload(&[
        src.to_str().unwrap(),
        "--key",
        "k9.bin",
        "--part-size",
        "5M",
    ]);
    assert_eq!(j["sha256"], new.as_str());
    assert_eq!(
        sha256_file(&env.object("k9.bin")),
        new,
        "the object holds the new bytes"
    );
    assert_eq!(j["etag"], j["multipart_etag"], "{j}");

    // A journal whose part digest disagrees with the source's (as after an edit that kept
    // every time stamp): the object is not taken for the source's, the bytes go up afresh.
    // A signed part is named by its SHA-256.
    complete_behind_the_journal(&env, &src, "k10.bin", 3);
    let wrong = "0123456789abcdef".repeat(4);
    let jdir = env.journal_dir();
    for e in std::fs::read_dir(&jdir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut part: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(part["sha256"].as_str().map(str::len), Some(64), "{part}");
        part["sha256"] = wrong.as_str().into();
        lines[1] = part.to_string();
        std::fs::write(e.path(), lines.join("\n") + "\n").unwrap();
    }
    let out = env.run(
        &[
            src.to_str().unwrap(),
            "--key",
            "k10.bin",
            "--part-size",
            "5M",
            "--json",
        ],
        &keys(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains(&wrong) && err.contains("SHA-256"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["parts_sent"], 3, "{j}");
    assert_eq!(sha256_file(&env.object("k10.bin")), new);
    assert_eq!(open_uploads(&env), 0);
    assert!(env.journal_text().is_empty());
}

/// Issue 26 case 10: a journal whose header is garbage cannot be resumed; the upload its
/// part lines still name is aborted instead of left open.
#[test]
fn a_journal_with_a_garbage_header_aborts_its_upload() {
    damaged_journal_aborts_its_upload("g.bin", 12 * MIB, 12, 3, &["--concurrency", "1"], |text| {
        let rest = text.split_once('\n').unwrap().1;
        format!("\u{1}garbage{{not a header\n{rest}")
    });
}

/// Issue 26 case 10, checked on moto: a run killed before its first part leaves a journal of
/// one line, the header; damaged, its upload id is still read from the header's text and the
/// upload aborted (before, the journal was said to name no upload and the upload stayed).
#[test]
fn a_damaged_header_without_part_lines_still_aborts_its_upload() {
    damaged_journal_aborts_its_upload("h.bin", 7 * MIB, 21, 0, &[], |text| {
        assert_eq!(text.lines().count(), 1, "only the header");
        text.replacen('{', "\u{1}", 1)
    });
}

/// Uploads `len` random bytes (from `seed`) as `key` in 5 MiB parts, stopped at part `stop`
/// with one attempt (and `extra`); rewrites each journal file with `damage`, then runs again:
/// exit 0, the old upload (named in stderr) aborted, the object equal to the source.
fn damaged_journal_aborts_its_upload(
    key: &str,
    len: usize,
    seed: u64,
    stop: u32,
    extra: &[&str],
    damage: fn(&str) -> String,
) {
    let env = Env::new();
    let src = env.path(key);
    random_file(&src, len, seed);
    let args = [src.to_str().unwrap(), "--key", key, "--part-size", "5M"];
    env.stop_at_part(&args, stop, &[&["--attempts", "1"], extra].concat());
    assert_eq!(open_uploads(&env), 1);
    let id = journaled_upload_id(&env);
    for e in std::fs::read_dir(env.journal_dir()).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        std::fs::write(e.path(), damage(&text)).unwrap();
    }
    let out = env.run(&[&args[..], &["--json"]].concat(), &keys());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains(&id), "the aborted upload is named: {err}");
    assert_eq!(open_uploads(&env), 0, "the old upload was aborted");
    assert_eq!(sha256_file(&env.object(key)), sha256_file(&src));
}

/// Issue 26 case 10, seen on moto: a killed run's Complete that the server finishes only after
/// the re-run's ListParts (the upload still listed) consumes the upload id under the re-run,
/// whose next part or Complete then fails. The re-run checks the object against the source
/// and exits 0 instead of failing with a "resumable" upload that no longer exists.
#[test]
fn an_upload_completed_under_a_resuming_run_is_checked_not_failed() {
    let env = Env::new();
    let src = env.path("late.bin");
    random_file(&src, 12 * MIB + 5, 22);
    let args = [
        src.to_str().unwrap(),
        "--key",
        "late.bin",
        "--part-size",
        "5M",
    ];
    // A first run stores parts 1 and 2; part 3 fails.
    env.s3.set_faults(S3Faults {
        parts: vec![PartFault {
            part: 3,
            kind: FaultKind::SlowDown,
            times: 2,
        }],
        ..S3Faults::default()
    });
    let out = env.run(
        &[&args[..], &["--attempts", "2", "--concurrency", "1"]].concat(),
        &keys(),
    );
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    let upload_id = journaled_upload_id(&env);
    // The re-run's part 3 is held by the server until the upload has been completed here,
    // as the killed run's Complete would have been.
    env.s3.set_faults(S3Faults {
        parts: vec![PartFault {
            part: 3,
            kind: FaultKind::DelayMs(15_000),
            times: 1000,
        }],
        ..S3Faults::default()
    });
    let seen = env.s3.stats().part_requests[&3];
    let child = env
        .command(
            &[&args[..], &["--json", "--concurrency", "1"]].concat(),
            &keys(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.s3.stats().part_requests[&3] == seen {
        assert!(Instant::now() < deadline, "the re-run never sent part 3");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.s3.set_faults(S3Faults::default());
    complete_with_last_part(&env, &src, "late.bin", &upload_id, 3);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("went away"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["etag"], j["multipart_etag"], "{j}");
    assert_eq!(j["sha256"], sha256_file(&src).as_str());
    assert_eq!(sha256_file(&env.object("late.bin")), sha256_file(&src));
    assert_eq!(open_uploads(&env), 0);
    assert!(env.journal_text().is_empty(), "the journal is removed");
}

/// Issue 19 point 7: a terminal failure of Complete aborts the upload without a journal;
/// with one, the upload stays and stderr says how to resume it and how to drop it.
#[test]
fn a_failed_complete_aborts_without_a_journal_and_stays_resumable_with_one() {
    for journal in [false, true] {
        let env = Env::new();
        let src = env.path("c.bin");
        random_file(&src, 7 * MIB, 13);
        // Requests: HEAD (is it there already?), Create, 2 parts, Complete: the fifth fails
        // (a 503 SlowDown), and with --attempts 1 that failure is final.
        env.s3.set_faults(S3Faults {
            rate: 0.2,
            ..S3Faults::default()
        });
        let mut args = vec![
            src.to_str().unwrap(),
            "--key",
            "c.bin",
            "--part-size",
            "5M",
            "--attempts",
            "1",
        ];
        if !journal {
            args.push("--no-journal");
        }
        let out = if journal {
            env.command(&args, &keys()).output().unwrap()
        } else {
            // --no-journal conflicts with the --journal that `command` passes.
            bare_command(
                &env,
                &[&["--bucket", BUCKET, "--region", "us-east-1"][..], &args].concat(),
            )
            .output()
            .unwrap()
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 4, "{err}");
        assert!(err.contains("CompleteMultipartUpload"), "{err}");
        env.s3.set_faults(S3Faults::default());
        if !journal {
            assert_eq!(open_uploads(&env), 0, "aborted: {err}");
            assert!(err.contains("aborted"), "{err}");
            continue;
        }
        assert_eq!(open_uploads(&env), 1, "kept for a resume");
        assert!(err.contains("resumable"), "{err}");
        assert!(
            err.contains("resume: imgport upload") && err.contains("--key c.bin"),
            "{err}"
        );
        assert!(
            err.contains("drop:   imgport upload --abort --bucket images --key c.bin"),
            "{err}"
        );
        let j = env.upload(&args);
        assert_eq!(j["parts_sent"], 0, "{j}");
        assert_eq!(j["parts_reused"], 2, "{j}");
        assert_eq!(sha256_file(&env.object("c.bin")), sha256_file(&src));
    }
}

/// Issue 19 point 1: a journal names its destination (account as a hash of the AccessKey ID,
/// region, endpoint, bucket, key) and never resumes another: the same endpoint, bucket and key
/// in another region starts its own upload.
#[test]
fn a_journal_names_its_destination_and_resumes_no_other() {
    let env = Env::new();
    let src = env.path("d.bin");
    random_file(&src, 12 * MIB, 14);
    let args = [src.to_str().unwrap(), "--key", "d.bin", "--part-size", "5M"];
    env.stop_at_part(&args, 3, &["--attempts", "1", "--concurrency", "1"]);
    let text = env.journal_text();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let d = &header["destination"];
    assert_eq!(d["region"], "us-east-1", "{header}");
    assert_eq!(d["endpoint"], env.s3.endpoint().as_str(), "{header}");
    assert_eq!(d["bucket"], BUCKET, "{header}");
    assert_eq!(header["key"], "d.bin", "{header}");
    let account = d["account"].as_str().unwrap();
    assert!(account.starts_with("ak-"), "{header}");
    assert!(!text.contains(TEST_ACCESS_KEY_ID) && !text.contains(TEST_ACCESS_KEY_SECRET));
    // The same endpoint, bucket and key in another region: a journal of its own.
    let jdir = env.journal_dir();
    let out = bare_command(
        &env,
        &[
            &[
                "--bucket",
                BUCKET,
                "--region",
                "eu-central-1",
                "--json",
                "--journal",
            ][..],
            &[jdir.to_str().unwrap()],
            &args,
        ]
        .concat(),
    )
    .output()
    .unwrap();
    let j = ok_json(&out);
    assert_eq!(j["parts_reused"], 0, "{j}");
    assert_eq!(j["parts_sent"], 3, "{j}");
    // The first destination's journal is untouched and still resumes.
    assert!(!env.journal_text().is_empty());
    let j = env.upload(&args);
    assert_eq!(j["parts_reused"], 2, "{j}");
    assert!(env.journal_text().is_empty());
}

/// Issue 19 point 6: a service error shows its code and its message, or says the body was
/// empty; never a bare colon.
#[test]
fn a_service_error_shows_its_code_and_message() {
    let env = Env::new();
    let src = env.path("e.bin");
    random_file(&src, MIB, 15);
    let out = bare_command(
        &env,
        &[
            src.to_str().unwrap(),
            "--key",
            "e.bin",
            "--bucket",
            "no-such-bucket",
            "--region",
            "us-east-1",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("NoSuchBucket"))
        .unwrap_or_else(|| panic!("{err}"));
    let after = line
        .split_once("(HTTP 404):")
        .map(|x| x.1.trim())
        .unwrap_or("");
    assert!(!after.is_empty(), "no message after the code: {line}");
}

/// Issue 19 point 4: `--clean-stale` aborts the uploads of journals older than
/// `--older-than` and removes them; younger ones stay.
#[test]
fn clean_stale_aborts_old_uploads_and_removes_their_journals() {
    let env = Env::new();
    let src = env.path("s.bin");
    random_file(&src, 12 * MIB, 16);
    let args = [src.to_str().unwrap(), "--key", "s.bin", "--part-size", "5M"];
    env.stop_at_part(&args, 3, &["--attempts", "1", "--concurrency", "1"]);
    assert_eq!(open_uploads(&env), 1);
    let id = journaled_upload_id(&env);
    // Younger than the default 7 days: kept.
    let out = env.run(&["--clean-stale", "--json"], &keys());
    let j = ok_json(&out);
    assert_eq!(j["cleaned"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(open_uploads(&env), 1);
    let out = env.run(&["--clean-stale", "--older-than", "0s", "--json"], &keys());
    let j = ok_json(&out);
    assert_eq!(j["cleaned"][0]["aborted"][0], id.as_str(), "{j}");
    assert_eq!(j["cleaned"][0]["removed"], true, "{j}");
    assert_eq!(open_uploads(&env), 0);
    assert!(env.journal_text().is_empty());
}

/// A disk of an OVA uploads in one pass whose bytes give its manifest digest; a package whose
/// manifest disagrees fails (exit 1) and leaves no object behind.
#[test]
fn an_ova_disk_uploads_only_when_its_manifest_digest_holds() {
    let env = Env::new();
    let loose = image("ova/small");
    sh_in(
        env.dir.path(),
        &format!(
            "cp '{d}'/small.ovf '{d}'/small.mf '{d}'/small-disk1.vmdk '{d}'/small-disk2.vmdk . && \
             tar --format=ustar -cf good.ova small.ovf small.mf small-disk1.vmdk small-disk2.vmdk && \
             sed '/^SHA256(small-disk2.vmdk)= /{{s/= 0/= 1/;t;s/= ./= 0/}}' small.mf > bad.mf && \
             ! cmp -s small.mf bad.mf && mv bad.mf small.mf && \
             tar --format=ustar -cf bad.ova small.ovf small.mf small-disk1.vmdk small-disk2.vmdk",
            d = loose.display()
        ),
    );
    let good = env.path("good.ova/small-disk2.vmdk");
    let v = env.upload(&[
        good.to_str().unwrap(),
        "--to",
        "qcow2",
        "--key",
        "good.qcow2",
    ]);
    assert!(v["sha256"].is_string(), "{v}");
    assert!(env.object("good.qcow2").exists());

    let bad = env.path("bad.ova/small-disk2.vmdk");
    let out = env.run(
        &[bad.to_str().unwrap(), "--to", "qcow2", "--key", "bad.qcow2"],
        &keys(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("manifest") && err.contains("was deleted"),
        "{err}"
    );
    assert!(
        !env.object("bad.qcow2").exists(),
        "the mismatching object was kept"
    );
}

//! The Alibaba Cloud client against the real `imgport sim` emulator over loopback HTTP:
//! import → poll → Available, the emulator's documented error codes, authentication
//! failures, retries on injected faults, poll timeout, CreateFailed, cancellation, state
//! persistence, and Alibaba's official Python SDK talking to the emulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imgport::cloud::aliyun::client::EcsClient;
use imgport::cloud::aliyun::ecs::{
    DescribeImagesRequest, DescribeTasksRequest, DiskDeviceMapping, ECS_VERSION,
    ImportImageRequest, ModifyImageAttributeRequest,
};
use imgport::cloud::aliyun::poll::{WaitError, WaitOptions};
use imgport::cloud::aliyun::rpc::{
    ClientConfig, HttpRequest, ReqwestTransport, RetryPolicy, RpcClient, RpcError,
    SignatureVersion, Transport, TransportErrorKind, new_nonce, unix_now,
};
use imgport::cloud::aliyun::types::{DiskFormat, ImageStatus, ModifiableStatus, Platform};
use imgport::credentials::Credentials;
use imgport::report::Reporter;
use imgport::secret::Secret;

const REGION: &str = "cn-hangzhou";
const BUCKET: &str = "images";

/// A running `imgport sim` child process, killed on drop.
struct SimProcess {
    child: Child,
    endpoint: String,
    key_id: String,
    secret: String,
    sts_key_id: String,
    token: String,
    /// The embedded S3 server (`s3_endpoint`).
    s3_endpoint: String,
    state: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimProcess {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let mut sim = Self::start_in(&state, extra);
        sim._dir = Some(dir);
        sim
    }

    fn start_in(state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgport"))
            .args(["sim", "--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start imgport sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut field = |name: &str| -> String {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("imgport sim ended before printing {name}"))
                .expect("read sim output");
            line.strip_prefix(&format!("{name}: "))
                .unwrap_or_else(|| panic!("expected {name}, got {line:?}"))
                .to_string()
        };
        let endpoint = field("endpoint");
        let key_id = field("access_key_id");
        let secret = field("access_key_secret");
        let sts_key_id = field("sts_access_key_id");
        let token = field("security_token");
        let _ = field("s3_root");
        let s3_endpoint = field("s3_endpoint");
        Self {
            child,
            endpoint,
            key_id,
            secret,
            sts_key_id,
            token,
            s3_endpoint,
            state: state.to_path_buf(),
            _dir: None,
        }
    }

    fn s3(&self) -> PathBuf {
        self.state.join("s3")
    }

    /// Places `src` as object `key` of [`BUCKET`] (a symlink: no copy).
    fn put_link(&self, key: &str, src: &Path) {
        let dst = self.s3().join(BUCKET).join(key);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(src, &dst).unwrap();
    }

    /// Places a sparse RAW object of `size` bytes.
    fn put_raw(&self, key: &str, size: u64) {
        let dst = self.s3().join(BUCKET).join(key);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let f = std::fs::File::create(&dst).unwrap();
        f.set_len(size).unwrap();
    }

    fn config(&self, version: SignatureVersion) -> ClientConfig {
        let mut c = ClientConfig::new(REGION);
        c.endpoint = Some(self.endpoint.clone());
        c.signature = version;
        c.timeout = Duration::from_secs(20);
        c.retry = RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        c
    }

    fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.key_id.clone(),
            access_key_secret: Secret::new(self.secret.clone()),
            security_token: None,
        }
    }

    fn client(&self, version: SignatureVersion) -> EcsClient {
        EcsClient::new(self.config(version), self.credentials()).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn import_request(key: &str) -> ImportImageRequest {
    ImportImageRequest::builder(REGION)
        .image_name(format!("img-{}", key.replace(['/', '.'], "-")))
        .platform(Platform::Debian)
        .disk(DiskDeviceMapping::new(BUCKET, key))
        .build()
        .unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One answer the emulator must give: the case's name, raw parameters (sent as they are,
/// past every local check), and the expected code and HTTP status (`("ok", 200)`: accepted).
type Answer<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, u16);

/// Calls `action` of API `version` with raw parameters and returns (code, HTTP status);
/// `("ok", 200)` when the call succeeds.
async fn answer(
    rpc: &RpcClient,
    action: &'static str,
    version: &str,
    params: &[(&str, &str)],
) -> (String, u16) {
    match rpc.call_raw(action, version, &pairs(params)).await {
        Ok(_) => ("ok".to_string(), 200),
        Err(err) => {
            let api = err
                .api()
                .unwrap_or_else(|| panic!("{action} {params:?}: not an API error: {err:?}"));
            (api.code.clone(), api.http_status)
        }
    }
}

/// Checks every case of a table with `call` (parameters → (code, status)); a failure lists
/// each case that answered otherwise, by name.
fn check_answers(cases: &[Answer<'_>], mut call: impl FnMut(&[(&str, &str)]) -> (String, u16)) {
    let mut failed = Vec::new();
    for (name, params, code, status) in cases {
        let got = call(params);
        if (got.0.as_str(), got.1) != (*code, *status) {
            failed.push(format!(
                "{name}: got {got:?}, want ({code:?}, {status}); params {params:?}"
            ));
        }
    }
    assert_all_passed(&failed, cases.len());
}

/// Fails with every failed case of a table of `total`, one line (or more) each.
fn assert_all_passed(failed: &[String], total: usize) {
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// `head` then `tail`: a case's arguments from shared ones.
fn join<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    [head, tail].concat()
}

/// One request the CLI must refuse before sending: the case's name, the arguments after
/// `COMMAND --endpoint DEAD_ENDPOINT`, and text that stderr must contain.
type Local<'a> = (&'a str, Vec<&'a str>, &'a str);

/// Runs `imgport COMMAND --endpoint DEAD_ENDPOINT ARGS` for each case: exit 2 (a sent request
/// would be exit 4) with the case's text in stderr, and none of `secrets` in either stream.
/// A failure lists each failing case by name, with its command and stderr.
fn check_local_refusals(command: &[&str], cases: &[Local<'_>], secrets: &[&str]) {
    let mut failed = Vec::new();
    for (name, extra, needle) in cases {
        let mut args = command.to_vec();
        args.extend(["--endpoint", DEAD_ENDPOINT]);
        args.extend(extra);
        let run = cli(&args);
        let (out, err) = (run.stdout(), run.stderr());
        let leaked: Vec<&&str> = secrets
            .iter()
            .filter(|s| out.contains(**s) || err.contains(**s))
            .collect();
        if run.code() != 2 || !err.contains(needle) || !leaked.is_empty() {
            failed.push(format!(
                "{name}: `{}` exited {} (want 2 with {needle:?}; leaked {leaked:?})\n{err}",
                run.cmd,
                run.code()
            ));
        }
    }
    assert_all_passed(&failed, cases.len());
}

/// Collects progress messages.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn message(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

fn fast_wait(timeout: Duration) -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(100),
        timeout,
        not_found_polls: 3,
    }
}

/// Polls image `image` (of import task `task`, or "") until it is Available, quietly, for up
/// to `timeout`, never cancelled.
async fn wait_quietly(
    client: &EcsClient,
    image: &str,
    task: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    client
        .wait_available(
            image,
            task,
            fast_wait(timeout),
            &imgport::report::Silent,
            std::future::pending(),
        )
        .await
}

mod create;
mod ehpc;
mod endpoints;
mod errors;
mod flow;
mod ksyun;
mod local;
mod modify;
mod rules;
mod sdk;
mod statuses;
mod sts;

/// An endpoint where nothing listens: a command that sent its request would fail with a
/// transport error (exit 4), so exit 2 proves it refused the request locally.
const DEAD_ENDPOINT: &str = "http://127.0.0.1:1";

/// Runs `imgport ARGS` with the emulator's Alibaba and ksyun test credentials in the
/// environment (region cn-hangzhou / cn-beijing-6), in a fresh directory.
fn cli(args: &[&str]) -> crate::util::Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgport"));
    crate::util::with_sim_keys(&mut cmd)
        .args(args)
        .current_dir(dir.path())
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env("ALIBABA_CLOUD_REGION_ID", REGION)
        .env("KSYUN_ACCESS_KEY", imgport::sim::kec::TEST_ACCESS_KEY_ID)
        .env("KSYUN_SECRET_KEY", imgport::sim::kec::TEST_SECRET_KEY)
        .env("KSYUN_REGION", "cn-beijing-6")
        .env_remove("IMGPORT_REGISTRY_PASSWORD");
    let out = cmd.output().expect("run imgport");
    crate::util::Run {
        cmd: format!("imgport {}", args.join(" ")),
        out,
    }
}

/// The `error.code` of a `--json` failure.
fn json_code(run: &crate::util::Run) -> String {
    run.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

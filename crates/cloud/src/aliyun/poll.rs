//! Waiting for an imported image to become `Available` (docs/CLOUD-API.md §Polling): poll
//! DescribeImages with the full Status list at a fixed interval under an overall timeout, report
//! `Progress` (or the task's `TaskProcess`) through [`Reporter`], tolerate "not found" for a
//! bounded number of polls, fetch the failure reason from DescribeTaskAttribute on `CreateFailed` /
//! `UnAvailable`, and cancel the task when the caller's cancellation future fires.

use std::future::Future;
use std::time::{Duration, Instant};

use super::client::EcsClient;
use super::rpc::RpcError;
use super::types::ImageStatus;
use imgport_base::report::{Reporter, Stage};

/// How to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Pause between two polls.
    pub interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Polls in a row that may not find the image before giving up (the service may take a
    /// moment to list a new import).
    pub not_found_polls: u32,
}

impl Default for WaitOptions {
    /// 15 s between polls, 2 h overall, 20 not-found polls (terraform's SDK default).
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(2 * 3600),
            not_found_polls: 20,
        }
    }
}

/// Why waiting ended without an `Available` image.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// A poll call failed (after the client's own retries).
    #[error("polling image {image_id}")]
    Poll {
        image_id: String,
        #[source]
        source: RpcError,
    },
    /// The import ended in `CreateFailed` or `UnAvailable` (exit code 5).
    #[error(
        "import of image {image_id} ended in {status}: {}",
        failure_text(*.status, .code, .message)
    )]
    ImportFailed {
        image_id: String,
        status: ImageStatus,
        /// `ErrorCode` of the task, empty when the task gave none.
        code: String,
        /// `ErrorMsg` of the task.
        message: String,
    },
    /// Still not `Available` when the timeout passed.
    #[error("image {image_id} still {last_status} ({progress}) after {waited:?}")]
    Timeout {
        image_id: String,
        waited: Duration,
        last_status: String,
        progress: String,
    },
    /// The service never listed the image.
    #[error("image {image_id} not found after {polls} polls")]
    NotFound { image_id: String, polls: u32 },
    /// The caller stopped waiting (Ctrl-C, exit code 130). The import goes on in the cloud:
    /// waiting again (the same ImportImage ClientToken names the same image) picks it up, and
    /// CancelTask of `task_id` stops it.
    #[error(
        "waiting for image {image_id} was interrupted; its import goes on in the cloud: the \
         same command waits for it again{}",
        stop_hint(task_id)
    )]
    Interrupted { image_id: String, task_id: String },
}

impl WaitError {
    /// The process exit code for this outcome (README "Exit codes"): 5 for an import that ended in
    /// CreateFailed/UnAvailable, 130 when interrupted, 4 for other cloud errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            WaitError::ImportFailed { .. } => 5,
            WaitError::Interrupted { .. } => 130,
            _ => 4,
        }
    }
}

/// The reason of a failed import for people: the task's code and message, or what the status
/// itself says when the task gave none (`UnAvailable`: the image exists but cannot be used,
/// docs/CLOUD-API.md §Polling).
fn failure_text(status: ImageStatus, code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.to_string(),
        (true, false) => message.to_string(),
        (true, true) if status == ImageStatus::UnAvailable => {
            "the image exists but cannot be used; the service gave no reason".to_string()
        }
        (true, true) => "the service gave no reason".to_string(),
    }
}

/// How to stop an import left running, for [`WaitError::Interrupted`].
fn stop_hint(task_id: &str) -> String {
    if task_id.is_empty() {
        String::new()
    } else {
        format!(" (stop it with `imgport image cancel-import {task_id}` and the same region)")
    }
}

/// Parses `"40%"` to 40.
fn percent(s: &str) -> Option<u64> {
    s.trim().trim_end_matches('%').trim().parse().ok()
}

impl EcsClient {
    /// Waits until image `image_id` (imported by task `task_id`, may be empty) is
    /// `Available`. `cancel` is polled alongside: when it completes, waiting stops with
    /// [`WaitError::Interrupted`] and the import is left running, so that the same command
    /// run again waits for it ([`EcsClient::cancel_import`] stops it). The CLI passes Ctrl-C:
    /// `async { let _ = tokio::signal::ctrl_c().await; }`, and maps the error with
    /// [`WaitError::exit_code`].
    pub async fn wait_available(
        &self,
        image_id: &str,
        task_id: &str,
        options: WaitOptions,
        reporter: &dyn Reporter,
        cancel: impl Future<Output = ()>,
    ) -> Result<(), WaitError> {
        let mut cancel = std::pin::pin!(cancel);
        tokio::select! {
            biased;
            () = &mut cancel => {
                reporter.finish();
                Err(WaitError::Interrupted {
                    image_id: image_id.to_string(),
                    task_id: task_id.to_string(),
                })
            }
            r = self.poll_until_available(image_id, task_id, options, reporter) => {
                reporter.finish();
                r
            }
        }
    }

    /// Stops a running import: CancelTask when DescribeTaskAttribute says the task supports
    /// it (`SupportCancel` = "true"); `Ok(false)` when it does not.
    pub async fn cancel_import(&self, task_id: &str) -> Result<bool, RpcError> {
        if !self.describe_task_attribute(task_id).await?.cancellable() {
            return Ok(false);
        }
        self.cancel_task(task_id).await?;
        Ok(true)
    }

    async fn poll_until_available(
        &self,
        image_id: &str,
        task_id: &str,
        options: WaitOptions,
        reporter: &dyn Reporter,
    ) -> Result<(), WaitError> {
        let started = Instant::now();
        reporter.start(
            Stage::CloudImport,
            &format!("importing image {image_id}"),
            Some(100),
        );
        let mut reported = 0u64;
        let mut not_found = 0u32;
        let mut last_status = String::from("unknown");
        let mut last_progress = String::new();
        loop {
            let poll = |source| WaitError::Poll {
                image_id: image_id.to_string(),
                source,
            };
            match self.find_image(image_id).await.map_err(poll)? {
                None => {
                    not_found += 1;
                    if not_found > options.not_found_polls {
                        return Err(WaitError::NotFound {
                            image_id: image_id.to_string(),
                            polls: not_found,
                        });
                    }
                }
                Some(image) => {
                    not_found = 0;
                    let status = image.status();
                    let mut progress = image.progress.clone();
                    if progress.is_empty()
                        && !task_id.is_empty()
                        && let Ok(t) = self.describe_task_attribute(task_id).await
                    {
                        progress = t.task_process;
                    }
                    if image.status != last_status || progress != last_progress {
                        reporter.message(&format!("image {image_id}: {} {progress}", image.status));
                    }
                    if let Some(p) = percent(&progress).map(|p| p.min(100))
                        && p > reported
                    {
                        reporter.advance(p - reported);
                        reported = p;
                    }
                    last_status = image.status.clone();
                    last_progress = progress;
                    match status {
                        Some(ImageStatus::Available) => {
                            if reported < 100 {
                                reporter.advance(100 - reported);
                            }
                            return Ok(());
                        }
                        Some(s @ (ImageStatus::CreateFailed | ImageStatus::UnAvailable)) => {
                            let (code, message) = self.failure_reason(task_id).await;
                            return Err(WaitError::ImportFailed {
                                image_id: image_id.to_string(),
                                status: s,
                                code,
                                message,
                            });
                        }
                        _ => {}
                    }
                }
            }
            let waited = started.elapsed();
            if waited >= options.timeout {
                return Err(WaitError::Timeout {
                    image_id: image_id.to_string(),
                    waited,
                    last_status,
                    progress: last_progress,
                });
            }
            let left = options.timeout.saturating_sub(waited);
            tokio::time::sleep(options.interval.min(left)).await;
        }
    }

    /// ErrorCode and ErrorMsg of the task's failed operation; empty when unavailable.
    async fn failure_reason(&self, task_id: &str) -> (String, String) {
        if task_id.is_empty() {
            return (String::new(), String::new());
        }
        match self.describe_task_attribute(task_id).await {
            Ok(t) => t.failure().unwrap_or_default(),
            Err(e) => (String::new(), format!("DescribeTaskAttribute failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ImageStatus, WaitError, percent};

    #[test]
    fn a_failure_without_a_reason_still_says_what_happened() {
        let e = |status, code: &str, message: &str| {
            WaitError::ImportFailed {
                image_id: "m-1".into(),
                status,
                code: code.into(),
                message: message.into(),
            }
            .to_string()
        };
        assert_eq!(
            e(ImageStatus::UnAvailable, "", ""),
            "import of image m-1 ended in UnAvailable: the image exists but cannot be used; the service gave no reason"
        );
        assert_eq!(
            e(ImageStatus::CreateFailed, "ImportImageFailed", "no OS"),
            "import of image m-1 ended in CreateFailed: ImportImageFailed: no OS"
        );
        assert_eq!(
            e(ImageStatus::CreateFailed, "X", ""),
            "import of image m-1 ended in CreateFailed: X"
        );
    }

    #[test]
    fn parses_progress() {
        assert_eq!(percent("40%"), Some(40));
        assert_eq!(percent(" 100 % "), Some(100));
        assert_eq!(percent(""), None);
        assert_eq!(percent("n/a"), None);
    }
}

//! The store layer's use of the workspace retry policy ([`imgport_base::retry`]): only
//! [`StoreError::is_temporary`] failures are retried, with exponential backoff and full
//! jitter, at most `max_attempts` times.

use std::future::Future;
use std::time::Duration;

use imgport_base::retry::{Backoff, Verdict};

use super::StoreError;
use super::multipart::UploadOptions;

/// The retry policy `opts` sets.
fn policy(opts: &UploadOptions) -> Backoff {
    Backoff {
        max_attempts: opts.max_attempts,
        base: opts.retry_base,
        max: opts.retry_max,
    }
}

/// Backoff before retry `attempt` (1-based): uniform in `[0, min(max, base·2^(attempt-1))]`.
pub fn backoff(opts: &UploadOptions, attempt: u32) -> Duration {
    policy(opts).delay(attempt, None)
}

/// Runs `call` until it succeeds, fails with a permanent error, or `max_attempts` are used.
/// Returns the value and the number of retries; `note` hears each retried failure.
pub async fn retry<T, F, Fut>(
    opts: &UploadOptions,
    mut note: impl FnMut(u32, &StoreError),
    call: F,
) -> Result<(T, u32), StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let classify = |e: &StoreError| {
        if e.is_temporary() {
            Verdict::Temporary { at_least: None }
        } else {
            Verdict::Permanent
        }
    };
    imgport_base::retry::retry(&policy(opts), classify, |n, e, _| note(n, e), call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let opts = UploadOptions {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..UploadOptions::default()
        };
        let mut seen = std::collections::HashSet::new();
        for attempt in 1..40 {
            let d = backoff(&opts, attempt);
            let ceiling = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_secs(1));
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            seen.insert(d.as_micros());
        }
        assert!(seen.len() > 30, "jitter spreads the waits");
    }

    #[test]
    fn retry_stops_on_permanent_errors_and_after_max_attempts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = UploadOptions {
            max_attempts: 3,
            retry_base: Duration::from_millis(1),
            ..UploadOptions::default()
        };
        let err = |status: u16, code: &str| StoreError::Service {
            op: "UploadPart",
            target: "b/k".into(),
            status,
            code: code.into(),
            message: String::new(),
        };
        // Runs `retry` over `answers` (the n-th call gets the n-th, the last repeats; an error
        // is a status and code) and returns its result and how many calls it made.
        let run = |answers: &[Result<u32, (u16, &str)>]| {
            let mut calls = 0usize;
            let r = rt.block_on(retry(
                &opts,
                |_, _| {},
                || {
                    let answer = answers[calls.min(answers.len() - 1)];
                    calls += 1;
                    std::future::ready(answer.map_err(|(status, code)| err(status, code)))
                },
            ));
            (r, calls)
        };
        let (r, calls) = run(&[Err((503, "SlowDown"))]);
        assert!(r.is_err());
        assert_eq!(calls, 3);
        let (r, calls) = run(&[Err((403, "AccessDenied"))]);
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let (r, _) = run(&[
            Err((500, "InternalError")),
            Err((500, "InternalError")),
            Ok(7),
        ]);
        assert_eq!(r.unwrap(), (7, 2));
    }
}

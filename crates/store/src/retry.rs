//! The one retry rule of the store layer: only [`StoreError::is_temporary`] failures are
//! retried, with exponential backoff and full jitter (AWS Architecture Blog "Exponential
//! Backoff And Jitter"), at most `max_attempts` times.

use std::future::Future;
use std::time::Duration;

use super::StoreError;
use super::multipart::UploadOptions;

/// Backoff before retry `attempt` (1-based): uniform in `[0, min(max, base·2^(attempt-1))]`.
pub fn backoff(opts: &UploadOptions, attempt: u32) -> Duration {
    let exp = opts
        .retry_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(opts.retry_max);
    ceiling.mul_f64(fastrand::f64())
}

/// Runs `call` until it succeeds, fails with a permanent error, or `max_attempts` are used.
/// Returns the value and the number of retries; `note` hears each retried failure.
pub async fn retry<T, F, Fut>(
    opts: &UploadOptions,
    mut note: impl FnMut(u32, &StoreError),
    mut call: F,
) -> Result<(T, u32), StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let max = opts.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok((v, attempt - 1)),
            Err(e) if e.is_temporary() && attempt < max => {
                note(attempt, &e);
                tokio::time::sleep(backoff(opts, attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
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

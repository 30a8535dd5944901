//! The one retry policy of the workspace, shared by the store (S3 multipart) and the cloud
//! (signed RPC) clients: the caller's predicate decides which failures are temporary; those
//! are retried after exponential backoff with full jitter (AWS Architecture Blog "Exponential
//! Backoff And Jitter"), at most `max_attempts` attempts in all. A wait the server asks for
//! (a retry-after hint) is honoured up to the cap.
//!
//! Written here rather than taken from `backon`: backon's jitter adds up to one more delay on
//! top of the exponential one instead of drawing the whole wait (full jitter), and the store
//! needs the retry count back for its summaries (docs/DEPENDENCIES.md).

use std::future::Future;
use std::time::Duration;

/// How often and how long to retry temporary failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in total, the first included (1 = no retry; 0 counts as 1).
    pub max_attempts: u32,
    /// Ceiling of the wait before the first retry; doubles for each retry after it.
    pub base: Duration,
    /// Upper bound of one wait, a retry-after hint included.
    pub max: Duration,
}

/// What the caller's predicate says about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Retrying cannot help: the error is returned.
    Permanent,
    /// A retry may succeed; `at_least` is a wait the server asked for, if any.
    Temporary { at_least: Option<Duration> },
}

impl Backoff {
    /// The wait before retry `retry` (1-based): uniform in `[0, min(max, base·2^(retry-1))]`,
    /// raised to `at_least` when given, never above `max`.
    pub fn delay(&self, retry: u32, at_least: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let jittered = exp.min(self.max).mul_f64(fastrand::f64());
        at_least.map_or(jittered, |h| h.max(jittered)).min(self.max)
    }

    /// The wait before the next attempt once attempt `attempt` (1-based) failed with
    /// `verdict`; `None` when the failure is permanent or the attempts are used up.
    pub fn next(&self, attempt: u32, verdict: Verdict) -> Option<Duration> {
        match verdict {
            Verdict::Temporary { at_least } if attempt < self.max_attempts.max(1) => {
                Some(self.delay(attempt, at_least))
            }
            _ => None,
        }
    }
}

/// Runs `call` until it succeeds, `classify` calls a failure permanent, or the attempts are
/// used up; returns the value and the number of retries it took. `note` hears each failure
/// that will be retried: its attempt (1-based), the error and the wait before the next one.
pub async fn retry<T, E, F, Fut>(
    policy: &Backoff,
    classify: impl Fn(&E) -> Verdict,
    mut note: impl FnMut(u32, &E, Duration),
    mut call: F,
) -> Result<(T, u32), E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok((v, attempt - 1)),
            Err(e) => match policy.next(attempt, classify(&e)) {
                Some(wait) => {
                    note(attempt, &e, wait);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        max_attempts: 4,
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    const TEMPORARY: Verdict = Verdict::Temporary { at_least: None };

    #[test]
    fn waits_are_bounded_and_fully_jittered() {
        let mut seen = std::collections::HashSet::new();
        let mut below_half = 0;
        for retry in 1..200 {
            let d = POLICY.delay(retry, None);
            let ceiling = Duration::from_millis(100 * (1u64 << (retry - 1).min(20)))
                .min(Duration::from_secs(1));
            assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            below_half += usize::from(d < ceiling / 2);
            seen.insert(d.as_micros());
        }
        assert!(seen.len() > 150, "jitter spreads the waits");
        // Full jitter draws the whole wait, so about half fall below half the ceiling.
        assert!(
            below_half > 50,
            "{below_half} of 199 below half the ceiling"
        );
    }

    #[test]
    fn a_hint_raises_the_wait_up_to_the_cap() {
        let hint = Some(Duration::from_millis(700));
        assert!(POLICY.delay(1, hint) >= Duration::from_millis(700));
        assert_eq!(POLICY.delay(1, Some(Duration::from_secs(9))), POLICY.max);
    }

    #[test]
    fn permanent_failures_and_the_attempt_cap_stop_retries() {
        assert!(POLICY.next(1, TEMPORARY).is_some());
        assert!(POLICY.next(3, TEMPORARY).is_some());
        assert!(POLICY.next(4, TEMPORARY).is_none());
        assert!(POLICY.next(1, Verdict::Permanent).is_none());
        let once = Backoff {
            max_attempts: 0,
            ..POLICY
        };
        assert!(once.next(1, TEMPORARY).is_none());
    }

    #[test]
    fn retry_counts_calls_and_returns_the_last_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let fast = Backoff {
            max_attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        // Error codes below 500 are permanent; the n-th call gets the n-th answer.
        let classify = |e: &u16| {
            if *e >= 500 {
                TEMPORARY
            } else {
                Verdict::Permanent
            }
        };
        let run = |answers: &[Result<u8, u16>]| {
            let (mut calls, mut notes) = (0usize, 0u32);
            let r = rt.block_on(retry(
                &fast,
                classify,
                |_, _, _| notes += 1,
                || {
                    let a = answers[calls.min(answers.len() - 1)];
                    calls += 1;
                    std::future::ready(a)
                },
            ));
            (r, calls, notes)
        };
        assert_eq!(run(&[Err(503)]), (Err(503), 3, 2));
        assert_eq!(run(&[Err(403)]), (Err(403), 1, 0));
        assert_eq!(run(&[Err(500), Err(502), Ok(7)]), (Ok((7, 2)), 3, 2));
    }
}

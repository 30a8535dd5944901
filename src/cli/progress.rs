//! Progress for people: an indicatif bar on stderr when it is a terminal, nothing otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use imgport_base::report::{Reporter, Silent};

/// Draws one bar per stage on stderr.
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for Bar {
    fn start(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(super::output::escape(what).into_owned());
        if let Some(old) = self
            .bar
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(bar)
        {
            old.finish_and_clear();
        }
    }
    fn advance(&self, done: u64) {
        if let Some(b) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            b.inc(done);
        }
    }
    fn message(&self, text: &str) {
        if let Some(b) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            b.println(super::output::escape(text));
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

/// A progress reporter: bars on a terminal, silence when stderr is redirected.
pub fn reporter() -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar {
            bar: Mutex::new(None),
        })
    } else {
        Box::new(Silent)
    }
}

/// Log lines on stderr every `every` for long work when stderr is not a terminal.
struct LogLines {
    every: Duration,
    state: Mutex<LogState>,
}

struct LogState {
    what: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
}

impl LogLines {
    fn line(s: &LogState) -> String {
        let secs = s.started.elapsed().as_secs_f64().max(1e-3);
        let rate = s.done as f64 / secs / (1024.0 * 1024.0);
        match s.total {
            Some(t) if t > 0 => format!(
                "{}: {} of {} MiB ({:.0}%), {rate:.1} MiB/s",
                s.what,
                s.done >> 20,
                t >> 20,
                s.done as f64 * 100.0 / t as f64
            ),
            _ => format!("{}: {} MiB, {rate:.1} MiB/s", s.what, s.done >> 20),
        }
    }
}

impl Reporter for LogLines {
    fn start(&self, what: &str, total: Option<u64>) {
        let now = Instant::now();
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = LogState {
            what: what.to_string(),
            total,
            done: 0,
            started: now,
            last: now,
        };
    }
    fn advance(&self, done: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.done = s.done.saturating_add(done);
        if s.last.elapsed() >= self.every {
            s.last = Instant::now();
            heprintln!("{}", Self::line(&s));
        }
    }
    fn message(&self, text: &str) {
        heprintln!("{text}");
    }
    fn finish(&self) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.started.elapsed() >= self.every {
            heprintln!("{}", Self::line(&s));
        }
    }
}

/// Bars on a terminal; otherwise a log line every `every` (and each message) on stderr.
pub fn reporter_or_log(every: Duration) -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        reporter()
    } else {
        let now = Instant::now();
        Box::new(LogLines {
            every,
            state: Mutex::new(LogState {
                what: String::new(),
                total: None,
                done: 0,
                started: now,
                last: now,
            }),
        })
    }
}

/// A bar counting finished images of a batch, with their combined rate and the time left, on
/// stderr when it is a terminal; `None` otherwise (and then nothing is drawn).
pub fn images(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "images [{bar:30}] {pos}/{len} {per_sec} eta {eta}  last: {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    Some(bar)
}

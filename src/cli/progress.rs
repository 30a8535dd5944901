//! Progress for people: an indicatif bar on stderr when it is a terminal, nothing otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use imgport_base::report::{Reporter, Silent, Stage};

/// Draws one bar per stage on stderr.
struct Bar {
    bar: Mutex<Option<(Stage, ProgressBar)>>,
}

impl Reporter for Bar {
    fn start(&self, stage: Stage, what: &str, total: Option<u64>) {
        let cloud = stage == Stage::CloudImport;
        let template = match total {
            // The cloud's import: its status (the poller's messages) and percent.
            Some(_) if cloud => "{prefix} [{bar:30}] {pos:>3}%  {msg}  {elapsed}",
            Some(_) => "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            None => "{prefix:>16} {spinner} {msg}",
        };
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        }
        .with_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(super::output::escape(what).into_owned());
        if cloud {
            bar.set_message("waiting for its status");
            bar.enable_steady_tick(Duration::from_millis(500));
        }
        if let Some((_, old)) = self
            .bar
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((stage, bar))
        {
            old.finish_and_clear();
        }
    }
    fn advance(&self, done: u64) {
        if let Some((_, b)) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            b.inc(done);
        }
    }
    fn message(&self, text: &str) {
        if let Some((stage, b)) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            let text = super::output::escape(text);
            match stage {
                // A status line of the cloud's import ("image ID: Creating 25%"): its status
                // word goes into the bar, whose position is the percent.
                Stage::CloudImport => {
                    let status = text.rsplit_once(": ").map_or(&*text, |(_, s)| s);
                    b.set_message(status.split(' ').next().unwrap_or(status).to_string());
                }
                _ => b.println(text),
            }
        }
    }
    fn finish(&self) {
        if let Some((_, b)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
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
    stage: Stage,
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
            _ if s.stage == Stage::CloudImport => format!("{}: {}%", s.what, s.done),
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
    fn start(&self, stage: Stage, what: &str, total: Option<u64>) {
        let now = Instant::now();
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = LogState {
            stage,
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
                stage: Stage::Read,
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

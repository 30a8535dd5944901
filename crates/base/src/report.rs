//! How long-running library work tells the outside world about progress without printing:
//! the CLI implements [`Reporter`] with indicatif bars, tests and batch runs with logs.

/// Receives progress of long operations. Every method has a no-op default.
pub trait Reporter: Send + Sync {
    /// A `stage` named `what` starts; `total` is expected, in the stage's unit, when known.
    fn start(&self, _stage: Stage, _what: &str, _total: Option<u64>) {}
    /// `done` more bytes (or percent, for [`Stage::CloudImport`]) of the current stage finished.
    fn advance(&self, _done: u64) {}
    /// A free-form status line, e.g. "Progress 40%" from a polled cloud task.
    fn message(&self, _text: &str) {}
    /// `bytes` more left this machine: one part the object store accepted (not the parts
    /// found uploaded already). Unlike `advance`, never counts reading or hashing.
    fn sent(&self, _bytes: u64) {}
    /// The current stage finished.
    fn finish(&self) {}
    /// Every disk is uploaded (or found imported already): what is left is the cloud's work.
    fn transfers_done(&self) {}
}

/// What kind of work a stage is, and so what its amounts count: a display shows a transfer
/// in bytes and rate, the cloud's import as a status and a percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A disk's bytes read, converted and hashed (bytes).
    Read,
    /// An object sent to the store (bytes; parts found there already count as `advance`).
    Upload,
    /// An uploaded object read back and checked (bytes).
    Verify,
    /// The cloud's own work on an image, polled (percent, 0–100).
    CloudImport,
}

/// A reporter that discards everything.
pub struct Silent;

impl Reporter for Silent {}

/// `text` made safe to print for people: control characters (ESC, newlines, DEL, C1 controls
/// …) and Unicode bidirectional overrides become visible escapes (`\x1b`, `\n`, `\u{202e}`),
/// so a file name or a string read from an image cannot move the cursor, clear the screen or
/// forge lines. Human-readable text (the CLI's lines, the Markdown report) goes through it;
/// JSON escapes by itself.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An error and its causes on one line, for `error: ...` messages and batch reports.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

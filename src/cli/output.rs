//! What every subcommand prints with: exit codes, JSON, sizes and error lines for people,
//! and the escaping that keeps image data from carrying terminal control.

/// Exit codes of the binary, as README "Exit codes" lists them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const REFUSED: u8 = 3;
    pub const CLOUD: u8 = 4;
    pub const IMPORT_FAILED: u8 = 5;
    pub const INTERRUPTED: u8 = 130;
}

/// Writes `value` as pretty JSON to stdout followed by a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    // Stdout is line-buffered: unbuffered, a conversion's per-part list of a large disk
    // would take one write per line (22,000 for an empty 100 GiB disk, docs/PERFORMANCE.md
    // §Sparse).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Formats a byte count for people, e.g. `40.0 GiB (42949672960 bytes)`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {} ({n} bytes)", UNITS[unit])
    }
}

/// An error and its causes on one line, escaped for a terminal (see [`escape`]).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    escape(&imgport_base::report::error_chain(e)).into_owned()
}

/// `text` made safe to print for people: control characters and Unicode bidirectional
/// overrides become visible escapes (see [`imgport_base::report::escape`]). The one helper every
/// human-readable line built from a path or from image data goes through; JSON output
/// escapes by itself.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    imgport_base::report::escape(text)
}

/// A path for a human-readable line: displayed lossily, then [`escape`]d.
pub fn show_path(path: &std::path::Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_and_bidi_overrides_are_made_visible() {
        assert_eq!(escape("plain/path.qcow2"), "plain/path.qcow2");
        assert!(matches!(escape("ok"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape("evil\x1b[2J\nname"), "evil\\x1b[2J\\nname");
        assert_eq!(escape("a\tb\rc\x7f\u{85}"), "a\\tb\\rc\\x7f\\x85");
        assert_eq!(escape("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(escape("naïve ünïcode"), "naïve ünïcode");
    }
}

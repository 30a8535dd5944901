//! Command lines imgport suggests to the user ("run it again to resume", "abort with"): quoted
//! so that they paste back into a shell as the same arguments, and without credentials.

/// Credential flags: never repeated in a suggested command (the secret must not show, and
/// the key id alone is refused without it).
const SECRET_FLAGS: [&str; 3] = ["--access-key-id", "--access-key-secret", "--security-token"];

/// Quotes `arg` for a POSIX shell when it needs it; text holding control characters is
/// written as `$'…'` with escapes (bash, zsh, ksh), so the quoted form is printable and
/// still names the same file when pasted.
pub fn shell_quote(arg: &str) -> String {
    let printable = |c: char| {
        let mut utf8 = [0; 4];
        matches!(
            super::output::escape(c.encode_utf8(&mut utf8)),
            std::borrow::Cow::Borrowed(_)
        )
    };
    if !arg.chars().all(printable) {
        let mut out = String::from("$'");
        for c in arg.chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                c if printable(c) => out.push(c),
                c if c.is_ascii() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push_str(&format!("\\u{:04x}", c as u32)),
            }
        }
        out.push('\'');
        return out;
    }
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command line of this run without credential flags, for "run it again to resume"
/// messages; when some were left out, a note says to give the same credentials again.
pub fn resume_command() -> String {
    let mut out = Vec::new();
    let mut skip_next = false;
    let mut dropped = false;
    for (i, arg) in std::env::args().enumerate() {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if SECRET_FLAGS.contains(&arg.as_str()) {
            (skip_next, dropped) = (true, true);
            continue;
        }
        if SECRET_FLAGS
            .iter()
            .any(|f| arg.strip_prefix(f).is_some_and(|r| r.starts_with('=')))
        {
            dropped = true;
            continue;
        }
        out.push(if i == 0 {
            "imgport".into()
        } else {
            shell_quote(&arg)
        });
    }
    let mut cmd = out.join(" ");
    if dropped {
        cmd.push_str("  (with the same credentials: the AccessKey flags are left out here)");
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn control_characters_are_quoted_printably_and_exactly() {
        assert_eq!(shell_quote("disk.qcow2"), "disk.qcow2");
        assert_eq!(shell_quote("a b"), "'a b'");
        let q = shell_quote("evil\x1b[2J\nname's \\.q");
        assert_eq!(q, r"$'evil\x1b[2J\x0aname\'s \\.q'");
        // bash reads it back as the same bytes.
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("printf %s {q}")])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"evil\x1b[2J\nname's \\.q");
    }
}

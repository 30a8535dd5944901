//! One vocabulary across commands: walks the real binary's `--help` of every command and
//! subcommand and holds the flags several commands share to one name, one meaning text and
//! one default; and checks the local checks that need no network (`--region`, `--bucket`).

use std::collections::BTreeMap;

use crate::util::imgport;

/// One flag as a command's help shows it.
#[derive(Debug, Clone, PartialEq)]
struct Flag {
    /// The help text without its `[default: …]`, `[env: …]` and value lists, one line.
    text: String,
    default: Option<String>,
}

/// A command's help: its flags, its subcommands and its usage line.
struct Help {
    usage: String,
    flags: BTreeMap<String, Flag>,
    subcommands: Vec<String>,
}

fn help_of(path: &[&str]) -> Help {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let run = imgport(&args);
    run.expect_code(0);
    parse_help(&run.stdout())
}

/// Parses clap's help (either layout: text beside the flag, or on the lines below it).
fn parse_help(text: &str) -> Help {
    let mut usage = String::new();
    let mut flags = BTreeMap::new();
    let mut subcommands = Vec::new();
    let mut section = "";
    let mut current: Option<(String, String)> = None;
    let mut finish = |current: &mut Option<(String, String)>| {
        if let Some((name, body)) = current.take() {
            flags.insert(name, flag_of(&body));
        }
    };
    for line in text.lines() {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = u.to_string();
            continue;
        }
        if !line.starts_with(' ') && line.ends_with(':') {
            finish(&mut current);
            section = if line == "Options:" {
                "options"
            } else if line == "Commands:" {
                "commands"
            } else {
                "other"
            };
            continue;
        }
        if !line.is_empty() && !line.starts_with(' ') {
            // Text after the lists (after_help).
            finish(&mut current);
            section = "";
            continue;
        }
        match section {
            "commands" => {
                if let Some(name) = line.split_whitespace().next()
                    && line.starts_with("  ")
                    && !line.starts_with("   ")
                    && name != "help"
                {
                    subcommands.push(name.to_string());
                }
            }
            "options" => {
                let t = line.trim_start();
                let flag_start =
                    t.starts_with("--") || (t.starts_with('-') && t.get(2..4) == Some(", "));
                let indent = line.len() - t.len();
                if flag_start && indent <= 6 {
                    finish(&mut current);
                    let t = t
                        .split_once(", ")
                        .filter(|_| !t.starts_with("--"))
                        .map_or(t, |(_, r)| r);
                    let name_end = t.find([' ', '.']).unwrap_or(t.len());
                    let name = t[2..name_end].to_string();
                    let mut rest = t[name_end..].trim_start();
                    if rest.starts_with('<') {
                        rest = rest.split_once('>').map_or("", |(_, r)| r);
                    }
                    let rest = rest.trim_start_matches("...").trim();
                    current = Some((name, rest.to_string()));
                } else if let Some((_, body)) = &mut current {
                    body.push(' ');
                    body.push_str(t);
                }
            }
            _ => {}
        }
    }
    finish(&mut current);
    Help {
        usage,
        flags,
        subcommands,
    }
}

fn flag_of(body: &str) -> Flag {
    let mut text = String::new();
    let mut default = None;
    let mut rest = body;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        text.push_str(&rest[..open]);
        if let Some(d) = inner.strip_prefix("default: ") {
            default = Some(d.to_string());
        } else if !inner.starts_with("env: ") && !inner.starts_with("possible values: ") {
            text.push_str(&rest[open..=close]);
        }
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    // The long layout lists possible values below the text.
    let text = text
        .split(" Possible values:")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Flag { text, default }
}

/// Every command and subcommand (as its path of words) and its help.
fn all_helps() -> Vec<(String, Help)> {
    let mut out = Vec::new();
    let mut queue: Vec<Vec<String>> = help_of(&[])
        .subcommands
        .into_iter()
        .map(|s| vec![s])
        .collect();
    while let Some(path) = queue.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = help_of(&words);
        for sub in &help.subcommands {
            let mut p = path.clone();
            p.push(sub.clone());
            queue.push(p);
        }
        if help.subcommands.is_empty() {
            out.push((path.join(" "), help));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Flags several commands share: each must read and default the same wherever it appears.
const SHARED: &[&str] = &[
    "region",
    "bucket",
    "request-timeout",
    "wait-timeout",
    "poll-interval",
    "json",
    "html",
    "markdown",
    "access-key-id",
    "access-key-secret",
    "security-token",
    "profile",
    "concurrency",
    "journal",
    "part-size",
    "oss-endpoint",
    "verbose",
];

/// (command, flag) whose text may differ, and why.
const OWN_TEXT: &[(&str, &str, &str)] = &[
    (
        "batch",
        "region",
        "a manifest key: the flag overrides each entry's own region",
    ),
    (
        "packer",
        "region",
        "a manifest key: the flag overrides each build's region",
    ),
    ("batch", "bucket", "a manifest key"),
    ("packer", "bucket", "a manifest key"),
    (
        "ksyun reinstall",
        "region",
        "another cloud's regions (KSYUN_REGION)",
    ),
    (
        "ksyun reinstall",
        "profile",
        "another cloud's profiles (the Kingsoft SDK's ~/.ks files)",
    ),
    (
        "sim",
        "bucket",
        "the emulator's buckets to create, not a destination",
    ),
    (
        "convert",
        "part-size",
        "parts of the digests: nothing is uploaded, its default differs",
    ),
    (
        "checksum",
        "part-size",
        "parts of the digests: nothing is uploaded, its default differs",
    ),
];

#[test]
fn shared_flags_mean_the_same_in_every_command() {
    let helps = all_helps();
    let names: Vec<&str> = helps.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "import",
        "plan",
        "upload",
        "batch",
        "packer",
        "image create",
        "completions",
        "man",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let mut problems = Vec::new();
    for flag in SHARED {
        let mut seen: Option<(&str, &Flag)> = None;
        for (cmd, help) in &helps {
            let Some(f) = help.flags.get(*flag) else {
                continue;
            };
            if f.text.is_empty() {
                problems.push(format!("{cmd} --{flag}: no help text"));
            }
            if OWN_TEXT.iter().any(|(c, n, _)| c == cmd && n == flag) {
                continue;
            }
            match seen {
                None => seen = Some((cmd, f)),
                Some((first, want)) if want != f => problems.push(format!(
                    "--{flag} differs:\n  {first}: {want:?}\n  {cmd}: {f:?}"
                )),
                Some(_) => {}
            }
        }
    }
    // One name per meaning: a per-request limit and the wait for an image are told apart.
    for (cmd, help) in &helps {
        if help.flags.contains_key("timeout") {
            problems.push(format!("{cmd}: --timeout is ambiguous (request or wait?)"));
        }
        if help.flags.contains_key("endpoint") && help.flags.contains_key("bucket") {
            problems.push(format!("{cmd}: an upload's endpoint is --oss-endpoint"));
        }
        // One help style: every text starts with a capital, a digit or a quote.
        for (name, f) in &help.flags {
            if f.text.starts_with(|c: char| c.is_lowercase()) {
                problems.push(format!(
                    "{cmd} --{name}: text starts in lower case: {:?}",
                    f.text
                ));
            }
        }
    }
    // One rule for the region: required wherever it is not a manifest key.
    for (cmd, help) in &helps {
        if help.flags.contains_key("region")
            && !["batch", "packer"].contains(&cmd.as_str())
            && !help.usage.contains("--region <REGION>")
        {
            problems.push(format!("{cmd}: --region is optional ({})", help.usage));
        }
    }
    // A report exists wherever a result does: --json on every command that produces one,
    // --html and --markdown wherever a plan report is made.
    for (cmd, help) in &helps {
        let makes_nothing = ["sim", "completions", "man"].contains(&cmd.as_str());
        if !makes_nothing && !help.flags.contains_key("json") {
            problems.push(format!("{cmd}: no --json"));
        }
        if help.flags.contains_key("html") != help.flags.contains_key("markdown") {
            problems.push(format!("{cmd}: --html without --markdown or the other way"));
        }
    }
    for cmd in ["plan", "import"] {
        let help = &helps.iter().find(|(n, _)| n == cmd).expect("command").1;
        for flag in ["html", "markdown", "json"] {
            if !help.flags.contains_key(flag) {
                problems.push(format!("{cmd}: no --{flag}"));
            }
        }
    }
    // The packer hook speaks of images and builds, not of a manifest's rows.
    let packer = &helps.iter().find(|(n, _)| n == "packer").expect("packer").1;
    for (name, f) in &packer.flags {
        if f.text.contains(" row") {
            problems.push(format!("packer --{name} talks of rows: {:?}", f.text));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_malformed_region_is_a_usage_error_before_any_call() {
    // Nothing listens on port 9: had a request been sent, the exit code would be 4.
    let run = imgport([
        "image",
        "create",
        "--region",
        "hangzhou",
        "--endpoint",
        "http://127.0.0.1:9",
        "--access-key-id",
        "id",
        "--access-key-secret",
        "secret",
        "--snapshot",
        "s-1",
    ]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("--region"), "{err}");
    assert!(err.contains("cn-hangzhou"), "{err}");
    let run = imgport([
        "upload",
        "x.bin",
        "--bucket",
        "b-1",
        "--key",
        "k",
        "--region",
        "Cn_Hangzhou",
    ]);
    run.expect_code(2);
    assert!(run.stderr().contains("--region"), "{}", run.stderr());
}

#[test]
fn a_malformed_bucket_is_a_usage_error_naming_the_flag() {
    let run = imgport([
        "plan",
        "disk.qcow2",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "My_Bucket",
    ]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("--bucket"), "{err}");
    assert!(err.contains("lower-case"), "{err}");
}

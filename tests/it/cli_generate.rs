//! `imgport completions SHELL` and `imgport man`: generated from the command definitions, so
//! they name every command the binary has.

use std::process::Command;

use crate::util::imgport;

/// The top-level commands, from the real binary's help.
fn commands() -> Vec<String> {
    let run = imgport(["--help"]);
    run.expect_code(0);
    run.stdout()
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn bash_completion_names_every_command_and_every_shell_works() {
    let commands = commands();
    assert!(commands.len() >= 12, "{commands:?}");
    let run = imgport(["completions", "bash"]);
    run.expect_code(0);
    let script = run.stdout();
    assert!(
        script.contains("complete -F"),
        "not a bash completion script"
    );
    for c in &commands {
        assert!(script.contains(&format!("imgport,{c})")), "no case for {c}");
    }
    // Flags of a subcommand are completed too.
    assert!(script.contains("--wait-timeout"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = imgport(["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout().contains("import"), "{shell}");
    }
    imgport(["completions", "tcsh"]).expect_code(2);
    // bash itself accepts the script, when bash is here.
    if let Ok(out) = Command::new("bash").args(["-n", "-c", &script]).output() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Checks a roff page by structure: the title macro first, then NAME, SYNOPSIS and
/// DESCRIPTION sections; and, when `groff` is here, that it renders without a warning
/// (`-k`: through preconv, as `man` reads UTF-8 pages).
fn check_roff(page: &str, name: &str) {
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el") && !l.starts_with(".\\\""));
    assert!(
        first.is_some_and(|l| l.starts_with(&format!(".TH {name} 1"))),
        "{name}: no .TH title: {first:?}"
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION"] {
        assert!(page.contains(section), "{name}: no {section}");
    }
    // Every macro line is a known one-or-two letter request.
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let req = line[1..].split_whitespace().next().unwrap_or_default();
        assert!(
            req.len() <= 2 || req == "\\\"" || req.starts_with('\\'),
            "{name}: odd request {line:?}"
        );
    }
    if let Ok(mut child) = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(page.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("groff");
        assert!(out.status.success(), "{name}: groff failed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.trim().is_empty(), "{name}: groff warns: {err}");
    }
}

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    let run = imgport(["man"]);
    run.expect_code(0);
    let page = run.stdout();
    check_roff(&page, "imgport");
    for c in commands() {
        assert!(page.contains(&c), "the page of imgport does not name {c}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    imgport(["man".as_ref(), "--out".as_ref(), out.as_os_str()]).expect_code(0);
    for c in commands() {
        let name = format!("imgport-{c}");
        let page = std::fs::read_to_string(out.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        check_roff(&page, &name);
    }
    // Subcommands of subcommands get their own page too.
    assert!(out.join("imgport-image-create.1").exists());
    assert!(out.join("imgport.1").exists());
}

//! `imgport completions SHELL` and `imgport man [--out DIR]`: shell completion scripts and
//! roff manual pages, both generated from the clap definitions, so they cannot drift from
//! the flags the binary really takes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

use super::output::exit;

/// `imgport completions`.
#[derive(Debug, Args)]
#[command(after_help = "Install, e.g.:\n  \
    imgport completions bash > ~/.local/share/bash-completion/completions/imgport\n  \
    imgport completions zsh > ~/.zfunc/_imgport   (with fpath+=~/.zfunc in ~/.zshrc)\n  \
    imgport completions fish > ~/.config/fish/completions/imgport.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `imgport man`.
#[derive(Debug, Args)]
#[command(after_help = "Install, e.g.:\n  \
    imgport man --out ~/.local/share/man/man1   (then `man imgport-import`)")]
pub struct ManArgs {
    /// Write one page per command and subcommand (imgport.1, imgport-import.1, …) into this
    /// directory, creating it, instead of printing the page of `imgport` to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Prints the completion script of `cmd` (the whole command line) for one shell on stdout.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "imgport", &mut out);
    out.flush()?;
    Ok(ExitCode::from(exit::OK))
}

/// Prints the top-level manual page of `cmd`, or writes every page into `--out`.
pub fn man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::from(exit::OK))
}

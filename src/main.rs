//! The `imgport` binary: parse arguments, run the library, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use imgport::cli::{self, Cli, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            eprintln!("error: {}", cli::output::escape(&err.to_string()));
            for cause in err.chain().skip(1) {
                eprintln!("caused by: {}", cli::output::escape(&cause.to_string()));
            }
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `-v` says what imgport does at each stage, `-vv` adds its debug detail; other crates
/// (the AWS SDK, hyper, rustls) speak only from `-vvv`. `RUST_LOG` overrides all of it.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "off,imgport=warn",
        1 => "off,imgport=info",
        2 => "off,imgport=debug",
        3 => "info,imgport=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

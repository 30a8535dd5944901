//! Command-line layer: clap definitions, one file per subcommand, turning flags into the
//! library's plain option structs and the library's values into text or JSON.
//! No business logic lives here.

/// `println!` for human output: the formatted line goes through [`escape`], so paths and
/// strings read from an image cannot carry terminal control into it.
macro_rules! hprintln {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::escape(&format!($($arg)*)))
    };
}

/// `eprintln!` for human output, escaped like [`hprintln!`].
macro_rules! heprintln {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::escape(&format!($($arg)*)))
    };
}

pub mod aliyun;
pub mod batch;
pub mod checksum;
pub mod connect;
pub mod convert;
pub mod credentials;
pub mod ehpc;
pub mod image;
pub mod import;
pub mod inspect;
pub mod ksyun;
pub mod plan;
pub mod progress;
pub mod sim;
pub mod upload;
pub mod values;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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

/// Turn local disk images into cloud images.
#[derive(Debug, Parser)]
#[command(name = "imgport", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr: -v each stage, -vv imgport's debug detail, -vvv other
    /// crates too; RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect images: format, sizes, safety verdict, and what is inside.
    Inspect(inspect::InspectArgs),
    /// Dry run: inspect, plan and show what an import would do, without uploading or calling
    /// any cloud API (JSON, Markdown, or a self-contained HTML report).
    Plan(plan::PlanArgs),
    /// Run the local cloud emulator (ECS, E-HPC and KEC APIs) on 127.0.0.1 for tests and dry runs.
    Sim(sim::SimArgs),
    /// Convert an image to raw, vhd, vhd-fixed or qcow2, with digests of the written bytes.
    Convert(convert::ConvertArgs),
    /// Digests of an image as it is (or as converted), plus the content digest of its disk.
    Checksum(checksum::ChecksumArgs),
    /// Upload a file as it is or converted on the fly to OSS/S3 by multipart: resumable,
    /// verified.
    Upload(upload::UploadArgs),
    /// Import disk images as an ECS image: inspect, plan, convert and upload in one pass,
    /// ImportImage, wait until Available, finish (`--sandbox` runs it all locally).
    Import(Box<import::ImportArgs>),
    /// Import every image of a batch manifest (TOML or CSV), several at once, resumable and
    /// shardable across machines.
    Batch(Box<batch::BatchArgs>),
    /// Import the artifacts of Packer's manifest post-processor (a build hook).
    Packer(Box<batch::PackerArgs>),
    /// ECS images: CreateImage (from snapshots or an instance) and ModifyImageAttribute.
    Image(image::ImageArgs),
    /// E-HPC Instant: register a VM or container image (AddImage).
    Ehpc(ehpc::EhpcArgs),
    /// Kingsoft Cloud KEC: reinstall an instance with an image (ModifyInstanceImage).
    Ksyun(ksyun::KsyunArgs),
}

/// Container formats as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Raw,
    Vhd,
    Qcow2,
}

impl From<FormatArg> for imgport_image::ImageFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Raw => imgport_image::ImageFormat::Raw,
            FormatArg::Vhd => imgport_image::ImageFormat::Vhd,
            FormatArg::Qcow2 => imgport_image::ImageFormat::Qcow2,
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Checksum(args) => checksum::run(args),
        Command::Upload(args) => upload::run(args),
        Command::Import(args) => import::run(*args),
        Command::Batch(args) => batch::run_batch(*args),
        Command::Packer(args) => batch::run_packer(*args),
        Command::Image(args) => image::run(args),
        Command::Ehpc(args) => ehpc::run(args),
        Command::Ksyun(args) => ksyun::run(args),
    }
}

/// Writes `value` as pretty JSON to stdout followed by a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
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

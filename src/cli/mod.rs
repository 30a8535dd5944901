//! Command-line layer: clap definitions, one file per subcommand, turning flags into the
//! library's plain option structs and the library's values into text or JSON.
//! No business logic lives here.

/// `println!` for human output: the formatted line goes through [`escape`], so paths and
/// strings read from an image cannot carry terminal control into it.
macro_rules! hprintln {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::output::escape(&format!($($arg)*)))
    };
}

/// `eprintln!` for human output, escaped like [`hprintln!`].
macro_rules! heprintln {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::output::escape(&format!($($arg)*)))
    };
}

pub mod aliyun;
pub mod batch;
pub mod checksum;
pub mod command_line;
pub mod connect;
pub mod convert;
pub mod credentials;
pub mod ehpc;
pub mod generate;
pub mod image;
pub mod import;
pub mod inspect;
pub mod ksyun;
pub mod output;
pub mod plan;
pub mod progress;
pub mod sim;
pub mod upload;
pub mod values;
pub mod vocab;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use output::exit;

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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(generate::CompletionsArgs),
    /// Print the manual page (roff) on stdout, or write one page per command with --out.
    Man(generate::ManArgs),
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
        Command::Completions(args) => generate::completions(args, Cli::command()),
        Command::Man(args) => generate::man(args, Cli::command()),
    }
}

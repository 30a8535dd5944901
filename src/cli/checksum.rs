//! `imgport checksum FILE [--to FORMAT]`: the digests of FILE as it is (or, with `--to`, of its
//! conversion, computed without writing anything), plus the content digest of its virtual disk.
//!
//! `--json` prints the same object as `convert --json` (see `cli::convert`), without `output`;
//! `format` is absent when the digests are those of the file as it is.
//! Exit codes: 0 done, 1 failed, 3 file refused, 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::convert::{DigestFlags, ToArg, cancel_on_signals, open_source_with};
use imgport_transfer::content::content_digest;
use imgport_transfer::convert::{checksum, checksum_file};

#[derive(Debug, Args)]
pub struct ChecksumArgs {
    /// Image file (RAW, VHD, QCOW2 or VMDK), an OVA/OVF of one disk, or `vm.ova/disk2.vmdk`;
    /// the package manifest's digest of the disk is checked.
    pub file: PathBuf,
    /// Checksum the file converted to this format instead of the file itself.
    #[arg(long, value_parser = super::values::OutputParser::<ToArg>::new())]
    pub to: Option<ToArg>,
    #[command(flatten)]
    pub digests: DigestFlags,
    /// Accept guest data that begins (at the disk's or a partition's first byte) with another
    /// image format's header, and import that nested image as-is; by default it is refused.
    #[arg(long)]
    pub allow_nested: bool,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
}

/// Runs `imgport checksum`.
pub fn run(args: ChecksumArgs) -> anyhow::Result<ExitCode> {
    let cancel = cancel_on_signals()?;
    let open = imgport_image::OpenOptions {
        allow_nested: args.allow_nested,
        ..imgport_image::OpenOptions::default()
    };
    let opened = match open_source_with(&args.file, &open) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let reporter = super::progress::reporter();
    let opts = args.digests.options(cancel.clone(), true);
    opened.file.track_digest();
    let result = match args.to {
        Some(to) => checksum(opened.image.clone(), to.into(), &opts, reporter.as_ref()),
        None => checksum_file(&args.file, &opts, reporter.as_ref()).and_then(|mut r| {
            r.content = Some(content_digest(
                opened.image.as_ref(),
                reporter.as_ref(),
                Some(&cancel),
            )?);
            Ok(r)
        }),
    };
    let result = super::convert::manifest_checked(result, &opened.file, None);
    super::convert::finish(result, &args.file, opened.image.format(), args.json)
}

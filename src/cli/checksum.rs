//! `imgport checksum FILE [--to FORMAT]`: the digests of FILE as it is (or, with `--to`, of its
//! conversion, computed without writing anything), plus the content digest of its virtual disk.
//!
//! `--json` prints the same object as `convert --json` (see `cli::convert`), without `output`;
//! `format` is absent when the digests are those of the file as it is.
//! Exit codes: 0 done, 1 failed, 3 file refused, 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::convert::{ToArg, cancel_on_signals, open_source_with};
use imgport_transfer::content::content_digest;
use imgport_transfer::convert::{ConvertOptions, SHA256_ZERO_LIMIT, checksum, checksum_file};
use imgport_transfer::stream::StreamOptions;

#[derive(Debug, Args)]
pub struct ChecksumArgs {
    /// Image file (RAW, VHD or QCOW2).
    pub file: PathBuf,
    /// Checksum the file converted to this format instead of the file itself.
    #[arg(long, value_enum)]
    pub to: Option<ToArg>,
    /// Part size of the per-part digests, e.g. 64M; giving it adds each part's MD5 and the
    /// multipart ETag an upload in these parts gets, so 100 KiB to 5 GiB as OSS takes
    /// (default: 32 MiB parts, or larger to stay within 10000, with CRC-64 only).
    #[arg(long, value_parser = super::values::part_size)]
    pub part_size: Option<imgport_core::plan::PartSize>,
    /// Skip the SHA-256 of the whole output (it is serial, one core, so it dominates for
    /// large sparse RAW or fixed VHD outputs); per-part digests are still computed.
    #[arg(long, conflicts_with = "sha256")]
    pub no_sha256: bool,
    /// Compute the SHA-256 even when the output holds more than 4 GiB of zeros (holes): it
    /// must hash every one of them, so by default it is then skipped with a notice.
    #[arg(long)]
    pub sha256: bool,
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
    let stream = StreamOptions {
        part_size: args.part_size.map(imgport_core::plan::PartSize::non_zero),
        buffers: 0,
        cancel: Some(cancel.clone()),
        skip_sha256: args.no_sha256,
        skip_part_md5: args.part_size.is_none(),
    };
    let reporter = super::progress::reporter();
    let opts = ConvertOptions {
        stream,
        content_digest: true,
        sha256_zero_limit: (!args.sha256).then_some(SHA256_ZERO_LIMIT),
    };
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
    super::convert::finish(result, &args.file, opened.image.format(), args.json)
}

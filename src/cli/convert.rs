//! `imgport convert SRC DST --to FORMAT`: write SRC (any supported, safe image) as DST in the
//! output format, atomically, with the digests of the written bytes computed in the same pass.
//!
//! `--json` prints one object (the `transfer::convert::StreamReport`
//! plus `source` and `source_format`):
//! `source`, `source_format`, `format` (`raw`|`vhd`|`vhd-fixed`|`qcow2`), `output`,
//! `source_virtual_size`, `virtual_size`, `size` (bytes written), `sha256` (hex), `crc64`
//! (CRC-64/XZ as OSS's unsigned decimal string), `crc64_hex`, `part_size`, `parts`
//! (`number`, `offset`, `size`, `md5` hex, `crc64` decimal, `crc64_hex`), `multipart_etag`
//! (`md5` and `multipart_etag` only with `--part-size`: only an upload needs them),
//! `content` (`algorithm`, `block_size`, `size`, `digest`: the format-independent content
//! digest of the virtual disk) and `notices` (e.g. the VHD size was rounded up).
//! Exit codes: 0 done, 1 failed (no file left behind), 2 usage (e.g. DST is SRC), 3 source
//! refused, 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::output::{exit, human_bytes, print_json};
use imgport_image::{self as image, ImageError, ImageFormat, OpenOptions};
use imgport_transfer::TransferError;
use imgport_transfer::convert::{ConvertOptions, StreamReport};
use imgport_transfer::layout::OutputFormat;
use imgport_transfer::stream::StreamOptions;

/// Output formats as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToArg {
    Raw,
    Vhd,
    VhdFixed,
    Qcow2,
}

impl From<ToArg> for OutputFormat {
    fn from(t: ToArg) -> Self {
        match t {
            ToArg::Raw => OutputFormat::Raw,
            ToArg::Vhd => OutputFormat::Vhd,
            ToArg::VhdFixed => OutputFormat::VhdFixed,
            ToArg::Qcow2 => OutputFormat::Qcow2,
        }
    }
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source image (RAW, VHD, QCOW2 or VMDK), an OVA/OVF of one disk, or one disk of a
    /// package as `vm.ova/disk2.vmdk`.
    pub src: PathBuf,
    /// Destination file; written under a temporary name and renamed when complete.
    pub dst: PathBuf,
    /// Output format (VMDK and VHDX are read, never written).
    #[arg(long, value_parser = super::values::OutputParser::<ToArg>::new())]
    pub to: ToArg,
    #[command(flatten)]
    pub digests: DigestFlags,
    /// Skip the content digest of the source disk (a second pass over its data).
    #[arg(long)]
    pub no_content_digest: bool,
    /// Accept guest data that begins (at the disk's or a partition's first byte) with another
    /// image format's header, and import that nested image as-is; by default it is refused.
    #[arg(long)]
    pub allow_nested: bool,
    #[arg(long, help = super::vocab::JSON)]
    pub json: bool,
}

/// The digest flags of `convert` and `checksum`.
#[derive(Debug, Args)]
pub struct DigestFlags {
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
}

impl DigestFlags {
    /// The stream options these flags ask for, stopped by `cancel`; `content_digest` adds
    /// the content digest of the source disk.
    pub fn options(&self, cancel: Arc<AtomicBool>, content_digest: bool) -> ConvertOptions {
        ConvertOptions {
            stream: StreamOptions {
                part_size: self.part_size.map(imgport_core::plan::PartSize::non_zero),
                buffers: 0,
                cancel: Some(cancel),
                skip_sha256: self.no_sha256,
                skip_part_md5: self.part_size.is_none(),
                part_sha256: false,
            },
            content_digest,
            sha256_zero_limit: (!self.sha256)
                .then_some(imgport_transfer::convert::SHA256_ZERO_LIMIT),
        }
    }
}

/// The JSON object `convert` and `checksum` print.
#[derive(Debug, Serialize)]
pub struct Output {
    /// The source file.
    pub source: PathBuf,
    /// Its detected container format.
    pub source_format: ImageFormat,
    #[serde(flatten)]
    pub report: StreamReport,
}

/// A cancellation flag set by SIGINT/SIGTERM; a second signal exits at once with 130.
pub fn cancel_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(exit::INTERRUPTED),
            flag.clone(),
        )
        .context("installing the signal handler")?;
        signal_hook::flag::register(sig, flag.clone()).context("installing the signal handler")?;
    }
    Ok(flag)
}

/// Opens the source with the full safety inspection; `Err(code)` when refused or unreadable.
pub fn open_source(path: &std::path::Path) -> Result<image::Opened, ExitCode> {
    open_source_with(path, &OpenOptions::default())
}

/// [`open_source`] with the caller's expectations (e.g. a nested image accepted as asked).
pub fn open_source_with(
    path: &std::path::Path,
    opts: &OpenOptions,
) -> Result<image::Opened, ExitCode> {
    match image::open(path, opts) {
        Ok(o) => Ok(o),
        Err(e @ ImageError::Refused { .. }) => {
            eprintln!("error: {}", super::output::error_chain(&e));
            Err(ExitCode::from(exit::REFUSED))
        }
        Err(e) => {
            eprintln!("error: {}", super::output::error_chain(&e));
            Err(ExitCode::from(exit::FAILED))
        }
    }
}

/// Maps a transfer failure to its exit code, printing it.
pub fn failed(e: &TransferError) -> ExitCode {
    eprintln!("error: {}", super::output::error_chain(e));
    ExitCode::from(match e {
        TransferError::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILED,
    })
}

/// Prints a stream report for people.
pub fn print_human(out: &Output) {
    let r = &out.report;
    if let Some(o) = &r.output {
        hprintln!("{}", o.display());
    }
    hprintln!(
        "  source:         {} ({})",
        out.source.display(),
        out.source_format
    );
    match r.format {
        Some(f) => hprintln!("  format:         {}", f.name()),
        None => hprintln!("  format:         the file as it is"),
    }
    hprintln!("  virtual size:   {}", human_bytes(r.virtual_size));
    hprintln!("  size:           {}", human_bytes(r.size));
    if let Some(sha) = &r.sha256 {
        hprintln!("  sha256:         {sha}");
    }
    hprintln!("  crc64:          {} (0x{})", r.crc64, r.crc64_hex);
    hprintln!(
        "  parts:          {} of {}",
        r.parts.len(),
        human_bytes(r.part_size)
    );
    if let Some(etag) = &r.multipart_etag {
        hprintln!("  multipart etag: {etag}");
    }
    if let Some(c) = &r.content {
        hprintln!("  content digest: {} ({})", c.digest, c.algorithm);
    }
    for n in &r.notices {
        hprintln!("  notice: {n}");
    }
}

/// True when `a` and `b` name the same existing file (same device and inode).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Runs `imgport convert`.
pub fn run(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    if same_file(&args.src, &args.dst) {
        eprintln!(
            "error: {} is the source itself; write the conversion to another file",
            super::output::show_path(&args.dst)
        );
        return Ok(ExitCode::from(exit::USAGE));
    }
    let cancel = cancel_on_signals()?;
    let open = OpenOptions {
        allow_nested: args.allow_nested,
        ..OpenOptions::default()
    };
    let opened = match open_source_with(&args.src, &open) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let opts = args.digests.options(cancel, !args.no_content_digest);
    let reporter = super::progress::reporter();
    opened.file.track_digest();
    let result = imgport_transfer::convert::convert(
        opened.image.clone(),
        &args.dst,
        args.to.into(),
        &opts,
        reporter.as_ref(),
    );
    let result = manifest_checked(result, &opened.file, Some(&args.dst));
    finish(result, &args.src, opened.image.format(), args.json)
}

/// `result`, once the manifest digest of an OVA/OVF disk (`file`) is checked: hashed from
/// the bytes the stream read (and any it skipped). A mismatch fails the run and removes
/// `written`, the output just made from those bytes.
pub fn manifest_checked(
    result: Result<StreamReport, TransferError>,
    file: &imgport_image::ImageFile,
    written: Option<&std::path::Path>,
) -> Result<StreamReport, TransferError> {
    let mut report = result?;
    match file.verify_digest() {
        Ok(Some(digest)) => report.notices.push(format!(
            "the package manifest's digest of {} matches ({digest})",
            file.path().display()
        )),
        Ok(None) => {}
        Err(e) => {
            if let Some(w) = written {
                let _ = std::fs::remove_file(w);
            }
            return Err(e.into());
        }
    }
    Ok(report)
}

/// Prints what a stream over `source` produced (JSON or text), or its error; the exit code.
pub fn finish(
    result: Result<StreamReport, TransferError>,
    source: &std::path::Path,
    source_format: ImageFormat,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = match result {
        Ok(r) => r,
        Err(e) => return Ok(failed(&e)),
    };
    let out = Output {
        source: source.to_path_buf(),
        source_format,
        report,
    };
    if json {
        print_json(&out)?;
    } else {
        print_human(&out);
    }
    Ok(ExitCode::from(exit::OK))
}

//! `imgport inspect FILE...`: the container verdict (and, later, the guest facts) per file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{FormatArg, exit, human_bytes, print_json};
use crate::image::{self, ContainerReport, OpenOptions, Severity};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image files to inspect.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array, one object per file.
    #[arg(long)]
    pub json: bool,
    /// The format the files are supposed to have; a different detected format is refused.
    #[arg(long, value_enum)]
    pub declared_format: Option<FormatArg>,
}

/// Inspects every file; exit 0 when all are safe, 3 when any is refused, 1 on I/O errors.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let opts = OpenOptions {
        declared: args.declared_format.map(Into::into),
    };
    let mut reports = Vec::new();
    let mut io_failed = false;
    for path in &args.files {
        match image::inspect(path, &opts) {
            Ok(report) => reports.push(report),
            Err(e) => {
                io_failed = true;
                eprintln!("error: {}", super::error_chain(&e));
            }
        }
    }
    if args.json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            print_human(r);
        }
    }
    let code = if io_failed {
        exit::FAILED
    } else if reports.iter().any(|r| !r.safe) {
        exit::REFUSED
    } else {
        exit::OK
    };
    Ok(ExitCode::from(code))
}

fn print_human(r: &ContainerReport) {
    let verdict = if r.safe { "safe" } else { "REFUSED" };
    println!("{}: {verdict}", r.path.display());
    let format = match (&r.format, &r.recognised_as) {
        (Some(f), _) => f.to_string(),
        (None, Some(what)) => what.clone(),
        (None, None) => "unknown".to_string(),
    };
    match &r.subformat {
        Some(sub) => println!("  format:         {format} ({sub})"),
        None => println!("  format:         {format}"),
    }
    if let Some(v) = r.virtual_size {
        println!("  virtual size:   {}", human_bytes(v));
    }
    if let Some(a) = r.allocated_size {
        println!("  allocated size: {}", human_bytes(a));
    }
    println!("  file size:      {}", human_bytes(r.file_size));
    for f in &r.findings {
        let tag = match f.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Refuse => "refused",
        };
        println!("  {tag}: [{}] {}", f.code, f.message);
    }
}

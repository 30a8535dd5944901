//! The report of a dry run that stopped before its plan: why, and what inspection found on
//! each disk. Most useful exactly then, so `plan --html/--markdown/--json` writes it too.

use std::fmt::Write as _;

use serde::Serialize;

use super::report::{html_escape, push_finding_li, severity_text};
use imgport_guest::facts::GuestFacts;
use imgport_image::{ContainerReport, Finding};

/// What a dry run reports when it stops before a plan (a refused disk): why, and the disks
/// that were inspected with their findings. Most useful exactly then, so it is written too.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedReport {
    /// Why no plan was made, one line (the error and its causes).
    pub reason: String,
    /// The refused disk when inspection refused it; every inspected disk when planning did.
    pub disks: Vec<RefusedDisk>,
}

/// One disk of a [`RefusedReport`]: the container verdict and, when inspection got that far,
/// what is inside.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedDisk {
    #[serde(flatten)]
    pub container: ContainerReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestFacts>,
}

impl RefusedDisk {
    /// The container's findings, then the guest's.
    fn findings(&self) -> impl Iterator<Item = &Finding> {
        let guest = self.guest.iter().flat_map(|g| g.findings.iter());
        self.container.findings.iter().chain(guest)
    }
}

fn refused_title(r: &RefusedReport) -> String {
    match r.disks.as_slice() {
        [d] => format!("imgport dry run: {} refused", d.container.path.display()),
        _ => "imgport dry run: refused".to_string(),
    }
}

/// A [`RefusedReport`] as Markdown.
pub fn render_refused_markdown(r: &RefusedReport) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {}
",
        refused_title(r)
    );
    let _ = writeln!(
        md,
        "Nothing would be uploaded and no cloud API would be called: {}
",
        r.reason
    );
    for d in &r.disks {
        let _ = writeln!(
            md,
            "## `{}`
",
            d.container.path.display()
        );
        let format = d
            .container
            .format
            .map_or("unknown".to_string(), |f| format!("{f:?}"));
        let _ = writeln!(md, "- format: {format}");
        let _ = writeln!(
            md,
            "- file size: {} bytes
",
            d.container.file_size
        );
        for f in d.findings() {
            let _ = writeln!(
                md,
                "- {} `{}`: {}",
                severity_text(f.severity),
                f.code,
                f.message
            );
        }
        md.push('\n');
    }
    md
}

/// A [`RefusedReport`] as one self-contained HTML page (inline CSS, no scripts, no fetches).
pub fn render_refused_html(r: &RefusedReport) -> String {
    let title = html_escape(&refused_title(r));
    let mut h = String::new();
    // Wrapping and padding as in render_html.
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#223;overflow-wrap:break-word}}\
         h1{{font-size:1.5rem}} code{{font:12px/1.4 ui-monospace,monospace}}\
         .refused{{color:#b00020;font-weight:600}} .warning{{color:#a15c00}} .info{{color:#335}}\
         </style></head><body><h1>{title}</h1><p class=\"refused\">Nothing would be uploaded \
         and no cloud API would be called: {}</p>",
        html_escape(&r.reason)
    );
    for d in &r.disks {
        let format = d
            .container
            .format
            .map_or("unknown".to_string(), |f| format!("{f:?}"));
        let _ = write!(
            h,
            "<h2><code>{}</code></h2><p>format {} · {} bytes</p><h3>Findings</h3><ul>",
            html_escape(&d.container.path.display().to_string()),
            html_escape(&format),
            d.container.file_size
        );
        for f in d.findings() {
            push_finding_li(&mut h, f);
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

//! The dry-run report: an [`ImportPlan`] with the inspected facts behind it, rendered as JSON
//! (the value itself), Markdown, and one self-contained HTML page with a drawn layout per disk.
//! Renders only what it is given; the requests shown are the ones the real run sends.

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::{ImportPlan, Source};
use imgport_guest::facts::GuestFacts;
use imgport_image::{ContainerReport, Extent, ExtentKind, Finding, Severity};

/// Columns of the drawn allocation map of a disk.
pub const MAP_BUCKETS: usize = 128;

/// One API request as it will be sent: action and parameters in wire order (no signature,
/// no credentials).
#[derive(Debug, Clone, Serialize)]
pub struct RenderedRequest {
    pub service: String,
    pub action: String,
    pub params: Vec<(String, String)>,
}

/// What the report shows about one input disk.
#[derive(Debug, Clone, Serialize)]
pub struct DiskView {
    pub container: ContainerReport,
    pub guest: Option<GuestFacts>,
    /// Fraction of each of [`MAP_BUCKETS`] equal slices of the disk that holds data.
    pub allocation: Vec<f32>,
}

/// Everything a dry run reports.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    pub plan: ImportPlan,
    pub disks: Vec<DiskView>,
    pub requests: Vec<RenderedRequest>,
}

/// Fraction of data in each of `buckets` equal slices of a disk of `size` bytes.
pub fn allocation_map(extents: &[Extent], size: u64, buckets: usize) -> Vec<f32> {
    let mut map = vec![0f64; buckets];
    if size == 0 || buckets == 0 {
        return vec![0.0; buckets];
    }
    let slice = size as f64 / buckets as f64;
    for e in extents.iter().filter(|e| e.kind == ExtentKind::Data) {
        let (start, end) = (e.offset as f64, e.end().min(size) as f64);
        let first = ((start / slice) as usize).min(buckets - 1);
        let last = (((end - 1.0).max(start) / slice) as usize).min(buckets - 1);
        for (b, cell) in map.iter_mut().enumerate().take(last + 1).skip(first) {
            let lo = (b as f64 * slice).max(start);
            let hi = ((b + 1) as f64 * slice).min(end);
            if hi > lo {
                *cell += (hi - lo) / slice;
            }
        }
    }
    map.into_iter().map(|f| f.min(1.0) as f32).collect()
}

fn source_text(s: &Source) -> String {
    match s {
        Source::User => "given by you".to_string(),
        Source::Inferred { from } => format!("inferred from {from}"),
        Source::Default { why } => format!("default: {why}"),
    }
}

pub(crate) fn severity_text(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Refuse => "refused",
    }
}

/// Rows of (field, value, source) for the image-level fields of the plan.
fn image_rows(plan: &ImportPlan) -> Vec<(String, String, String)> {
    let i = &plan.image;
    let mut rows = vec![
        (
            "ImageName".into(),
            i.name.value.clone(),
            source_text(&i.name.source),
        ),
        (
            "OSType".into(),
            i.os_type.value.to_string(),
            source_text(&i.os_type.source),
        ),
        (
            "Platform".into(),
            i.platform.value.to_string(),
            source_text(&i.platform.source),
        ),
        (
            "Architecture".into(),
            i.architecture.value.to_string(),
            source_text(&i.architecture.source),
        ),
        (
            "BootMode".into(),
            i.boot_mode.value.to_string(),
            source_text(&i.boot_mode.source),
        ),
    ];
    if let Some(d) = &i.description {
        rows.push((
            "Description".into(),
            d.value.clone(),
            source_text(&d.source),
        ));
    }
    if let Some(n) = &i.nvme_support {
        rows.push((
            "Features.NvmeSupport".into(),
            n.value.to_string(),
            source_text(&n.source),
        ));
    }
    if let Some(l) = &i.license_type {
        rows.push((
            "LicenseType".into(),
            l.value.to_string(),
            source_text(&l.source),
        ));
    }
    rows
}

/// Rows of (hint, the OVF says, from, inspection found, outcome) for an OVA/OVF import.
fn ovf_rows(plan: &ImportPlan) -> Vec<[String; 5]> {
    plan.ovf
        .iter()
        .flat_map(|e| e.hints.iter())
        .map(|h| {
            [
                h.field.clone(),
                h.ovf.clone(),
                h.from.clone(),
                h.inspection.clone().unwrap_or_else(|| "nothing".into()),
                h.outcome.clone(),
            ]
        })
        .collect()
}

const OVF_HEAD: [&str; 5] = [
    "hint",
    "the OVF says",
    "from",
    "inspection found",
    "outcome",
];

fn all_findings(report: &DryRunReport) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = report
        .disks
        .iter()
        .flat_map(|d| d.container.findings.iter())
        .collect();
    v.extend(report.plan.notes.iter());
    v
}

/// `yes (instance in cn-hangzhou)`, with the URL when imgport picked it.
fn endpoint_line(e: &crate::plan::OssEndpoint) -> String {
    match &e.url {
        Some(url) => format!("{}, OSS endpoint {url}", e.summary()),
        None => e.summary(),
    }
}

/// The report as Markdown.
pub fn render_markdown(report: &DryRunReport) -> String {
    let plan = &report.plan;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# imgport dry run: image `{}`\n",
        md_escape(&plan.image.name.value)
    );
    let _ = writeln!(
        md,
        "Region `{}`. Nothing was uploaded and no cloud API was called.\n",
        md_escape(&plan.region)
    );
    let _ = writeln!(
        md,
        "Internal endpoint: {}.\n",
        md_escape(&endpoint_line(&plan.oss_endpoint))
    );
    md.push_str("## Image\n\n| field | value | source |\n|---|---|---|\n");
    for (f, v, s) in image_rows(plan) {
        let _ = writeln!(md, "| {f} | `{}` | {} |", md_escape(&v), md_escape(&s));
    }
    let ovf = ovf_rows(plan);
    if !ovf.is_empty() {
        md.push_str("\n## OVF descriptor hints (inspection wins)\n\n| ");
        md.push_str(&OVF_HEAD.join(" | "));
        md.push_str(" |\n|---|---|---|---|---|\n");
        for row in ovf {
            let cells: Vec<String> = row.iter().map(|c| md_escape(c)).collect();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
    }
    md.push_str("\n## Disks\n\n| N | role | source | format | virtual size | upload as | object | DiskImageSize |\n|---|---|---|---|---|---|---|---|\n");
    for d in &plan.disks {
        let _ = writeln!(
            md,
            "| {} | {:?} | `{}` | {} | {} | {} | `oss://{}/{}` | {} GiB |",
            d.device_index,
            d.role.value,
            md_escape(&d.source.display().to_string()),
            d.source_format,
            d.source_virtual_size,
            crate::plan::ecs_disk_format(d.output.value),
            md_escape(&d.bucket),
            md_escape(&d.object_key),
            d.disk_image_size_gib.value
        );
    }
    for view in &report.disks {
        let _ = writeln!(
            md,
            "\n### `{}`\n",
            md_escape(&view.container.path.display().to_string())
        );
        if let Some(g) = &view.guest {
            let facts = [
                ("OS", g.product_name.clone().or(g.distro.clone())),
                ("version", g.version.clone()),
                ("architecture", g.architecture.clone()),
                ("boot mode", g.boot_mode.clone()),
                ("partition table", g.partition_table.clone()),
                ("virtio", g.drivers.virtio.map(|b| b.to_string())),
                ("NVMe", g.drivers.nvme.map(|b| b.to_string())),
                ("cloud-init", g.cloud_init.map(|b| b.to_string())),
            ];
            for (k, v) in facts {
                let _ = writeln!(
                    md,
                    "- {k}: {}",
                    md_escape(&v.unwrap_or_else(|| "unknown".into()))
                );
            }
            if !g.partitions.is_empty() {
                md.push_str("\n| # | start | size | type | file system |\n|---|---|---|---|---|\n");
                for p in &g.partitions {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} | {} |",
                        p.index,
                        p.start,
                        p.size,
                        md_escape(p.type_name.as_deref().unwrap_or(&p.type_id)),
                        md_escape(p.filesystem.as_deref().unwrap_or(""))
                    );
                }
            }
        } else {
            md.push_str("- nothing known about the inside of this disk\n");
        }
    }
    let findings = all_findings(report);
    if !findings.is_empty() {
        md.push_str("\n## Findings\n\n");
        for f in findings {
            let _ = writeln!(
                md,
                "- **{}** `{}`: {}",
                severity_text(f.severity),
                f.code,
                md_escape(&f.message)
            );
        }
    }
    md.push_str("\n## Requests that would be sent\n");
    for r in &report.requests {
        let _ = writeln!(md, "\n`{} {}`\n\n```", r.service, r.action);
        for (k, v) in &r.params {
            let _ = writeln!(md, "{k}={}", imgport_base::report::escape(v));
        }
        md.push_str("```\n");
    }
    md
}

/// `s` for one Markdown table cell or line: control characters made visible (a file name or
/// a string from the image cannot drive the terminal the report is printed to), pipes and
/// backquotes kept from breaking the table.
fn md_escape(s: &str) -> String {
    imgport_base::report::escape(s)
        .replace('|', "\\|")
        .replace('`', "'")
}

/// One finding as an HTML list item, classed by its severity.
pub(crate) fn push_finding_li(h: &mut String, f: &Finding) {
    let class = severity_text(f.severity);
    let _ = write!(
        h,
        "<li class=\"{class}\">{class} <code>{}</code>: {}</li>",
        html_escape(&f.code),
        html_escape(&f.message)
    );
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Colours of partitions in the drawn layout, by file system.
fn fs_colour(fs: Option<&str>) -> &'static str {
    match fs {
        Some("vfat") | Some("fat") | Some("fat32") | Some("fat16") => "#f2b134",
        Some("ext4") | Some("ext3") | Some("ext2") => "#4f93ce",
        Some("xfs") => "#6c5ce7",
        Some("ntfs") => "#00a8a8",
        Some("lvm2") => "#9b59b6",
        Some("swap") => "#95a5a6",
        _ => "#bdc3c7",
    }
}

/// An SVG drawing of one disk: partitions as coloured spans over an allocation strip. Each
/// span carries its partition's index in `data-partition`, by which tools and tests find it.
fn disk_svg(view: &DiskView) -> String {
    const W: f64 = 800.0;
    let size = view.container.virtual_size.unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} 64\" width=\"100%\" role=\"img\" aria-label=\"disk layout\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"36\" fill=\"#eef1f4\" stroke=\"#889\"/>"
    );
    if let Some(g) = &view.guest {
        for p in &g.partitions {
            let x = p.start as f64 / size * W;
            let w = (p.size as f64 / size * W).max(1.0);
            let label = format!(
                "{} {}",
                p.index,
                p.filesystem
                    .as_deref()
                    .or(p.type_name.as_deref())
                    .unwrap_or("")
            );
            let _ = write!(
                svg,
                "<rect data-partition=\"{}\" x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"36\" fill=\"{}\" stroke=\"#334\"><title>{}</title></rect>",
                p.index,
                fs_colour(p.filesystem.as_deref()),
                html_escape(&format!(
                    "partition {label}: {} bytes at {}",
                    p.size, p.start
                ))
            );
            if w > 40.0 {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"22\" font-size=\"12\" fill=\"#fff\">{}</text>",
                    x + 4.0,
                    html_escape(&label)
                );
            }
        }
    }
    let n = view.allocation.len().max(1) as f64;
    for (i, f) in view.allocation.iter().enumerate() {
        let x = i as f64 / n * W;
        let w = W / n;
        let shade = if *f <= 0.0 { "#ffffff" } else { "#2d3436" };
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"42\" width=\"{w:.2}\" height=\"16\" fill=\"{shade}\" fill-opacity=\"{:.2}\"/>",
            if *f <= 0.0 { 1.0 } else { 0.25 + 0.75 * f }
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page (inline CSS and SVG, no scripts, no fetches).
pub fn render_html(report: &DryRunReport) -> String {
    let plan = &report.plan;
    let mut h = String::new();
    let title = format!("imgport dry run: {}", plan.image.name.value);
    // A file path, an object key or an image name may have no place to break a line, and
    // would widen the page past the window. `overflow-wrap` breaks it where it would run out
    // of its box: `break-word` in text, `anywhere` in a disk's values (so a key shrinks its
    // column, not the table), and the image table has fixed columns, in which `break-word`
    // does it. The padding keeps text off the window's edges once the window is narrower
    // than the page. tests/it/report_render.rs renders it narrow and wide.
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#223;overflow-wrap:break-word}}\
         h1{{font-size:1.5rem}} table{{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}}\
         td,th{{border:1px solid #ccd;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
         th{{background:#f3f5f8}} code,pre{{font:12px/1.4 ui-monospace,monospace}}\
         pre{{background:#f6f8fa;padding:.6rem;overflow:auto}} .src{{color:#667;font-size:12px}}\
         .refused{{color:#b00020;font-weight:600}} .warning{{color:#a15c00}} .info{{color:#335}}\
         .disk{{border:1px solid #dde;border-radius:6px;padding:.8rem;margin:1rem 0}}\
         .legend span{{display:inline-block;margin-right:1rem}} .disk td{{overflow-wrap:anywhere}}\
         .fields{{table-layout:fixed}} .fields col:first-child{{width:13rem}} .fields col:nth-child(2){{width:30%}}\
         </style></head><body>",
        html_escape(&title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>Region <code>{}</code>. This is a dry run: nothing was uploaded and no cloud API was called.</p>",
        html_escape(&title),
        html_escape(&plan.region)
    );
    let _ = write!(
        h,
        "<p>Internal endpoint: {}.</p>",
        html_escape(&endpoint_line(&plan.oss_endpoint))
    );
    h.push_str("<h2>Image</h2><table class=\"fields\"><col><col><col><tr><th>field</th><th>value</th><th>source</th></tr>");
    for (f, v, s) in image_rows(plan) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"src\">{}</td></tr>",
            html_escape(&f),
            html_escape(&v),
            html_escape(&s)
        );
    }
    h.push_str("</table>");
    let ovf = ovf_rows(plan);
    if !ovf.is_empty() {
        h.push_str(
            "<h2>OVF descriptor hints (inspection wins)</h2><table class=\"fields ovf\"><tr>",
        );
        for c in OVF_HEAD {
            let _ = write!(h, "<th>{c}</th>");
        }
        h.push_str("</tr>");
        for row in ovf {
            h.push_str("<tr>");
            for c in row {
                let _ = write!(h, "<td>{}</td>", html_escape(&c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Disks</h2>");
    for (d, view) in plan.disks.iter().zip(plan_order_views(report)) {
        let _ = write!(
            h,
            "<div class=\"disk\"><h3>DiskDeviceMapping.{} — {:?} disk: <code>{}</code></h3>",
            d.device_index,
            d.role.value,
            html_escape(&d.source.display().to_string())
        );
        if let Some(view) = view {
            h.push_str(&disk_svg(view));
            h.push_str("<p class=\"legend src\"><span>top: partitions by file system</span><span>bottom: dark = allocated data, white = empty</span></p>");
        }
        let _ = write!(
            h,
            "<table><tr><th>source</th><td>{} · {} bytes virtual</td></tr>\
             <tr><th>upload as</th><td>{} <span class=\"src\">({})</span></td></tr>\
             <tr><th>object</th><td><code>oss://{}/{}</code></td></tr>\
             <tr><th>DiskImageSize</th><td>{} GiB <span class=\"src\">({})</span></td></tr>",
            d.source_format,
            d.source_virtual_size,
            crate::plan::ecs_disk_format(d.output.value),
            html_escape(&source_text(&d.output.source)),
            html_escape(&d.bucket),
            html_escape(&d.object_key),
            d.disk_image_size_gib.value,
            html_escape(&source_text(&d.disk_image_size_gib.source))
        );
        if let Some(g) = view.and_then(|v| v.guest.as_ref()) {
            let facts = [
                (
                    "operating system",
                    g.product_name.clone().or(g.distro.clone()),
                ),
                ("version", g.version.clone()),
                ("architecture", g.architecture.clone()),
                ("boot mode", g.boot_mode.clone()),
                ("virtio drivers", g.drivers.virtio.map(|b| b.to_string())),
                ("NVMe driver", g.drivers.nvme.map(|b| b.to_string())),
                ("cloud-init", g.cloud_init.map(|b| b.to_string())),
            ];
            for (k, v) in facts {
                let _ = write!(
                    h,
                    "<tr><th>{k}</th><td>{}</td></tr>",
                    html_escape(&v.unwrap_or_else(|| "unknown".into()))
                );
            }
        }
        h.push_str("</table></div>");
    }
    let findings = all_findings(report);
    if !findings.is_empty() {
        h.push_str("<h2>Findings</h2><ul>");
        for f in findings {
            push_finding_li(&mut h, f);
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>Requests that would be sent</h2>");
    for r in &report.requests {
        let _ = write!(
            h,
            "<h3><code>{} {}</code></h3><pre>",
            html_escape(&r.service),
            html_escape(&r.action)
        );
        for (k, v) in &r.params {
            let _ = writeln!(h, "{}={}", html_escape(k), html_escape(v));
        }
        h.push_str("</pre>");
    }
    h.push_str("</body></html>\n");
    h
}

/// The disk views in the plan's order (system disk first).
fn plan_order_views(report: &DryRunReport) -> Vec<Option<&DiskView>> {
    report
        .plan
        .disks
        .iter()
        .map(|d| report.disks.iter().find(|v| v.container.path == d.source))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(offset: u64, length: u64, kind: ExtentKind) -> Extent {
        Extent {
            offset,
            length,
            kind,
        }
    }

    #[test]
    fn allocation_map_counts_only_data() {
        let e = [
            ext(0, 50, ExtentKind::Data),
            ext(50, 25, ExtentKind::Zero),
            ext(75, 25, ExtentKind::Data),
        ];
        let m = allocation_map(&e, 100, 4);
        assert_eq!(m, [1.0, 1.0, 0.0, 1.0]);
        let m = allocation_map(&[ext(10, 10, ExtentKind::Data)], 100, 4);
        assert!((m[0] - 0.4).abs() < 1e-6 && m[1] == 0.0);
        assert_eq!(allocation_map(&[], 0, 3), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn html_escapes_hostile_names() {
        assert_eq!(
            html_escape("<script>&\"'"),
            "&lt;script&gt;&amp;&quot;&#39;"
        );
        assert_eq!(md_escape("a|b`c"), "a\\|b'c");
    }
}

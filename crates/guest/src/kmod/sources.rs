//! Parsers of the kernel's own files, each a pure function over text or bytes: the kernel
//! config, `modules.builtin`, `modules.builtin.modinfo`, `modules.dep`, `modules.order`,
//! module file names and `modprobe.d` rules. The decisions built on them live in the parent.

use std::collections::BTreeSet;

use serde::Serialize;

/// Cap on lines looked at in any one text (configs are ~10k lines, modules.dep ~6k).
const MAX_LINES: usize = 1_000_000;

/// A kernel config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tristate {
    /// `=y`: built into the kernel.
    Yes,
    /// `=m`: built as a module.
    Module,
    /// `# CONFIG_X is not set`, `=n`, or absent from a complete config.
    No,
}

/// The value of `symbol` (e.g. `CONFIG_VIRTIO_BLK`) in a kernel config text.
pub fn config_value(config: &str, symbol: &str) -> Tristate {
    let mut value = Tristate::No;
    for line in config.lines().take(MAX_LINES) {
        let line = line.trim();
        if let Some(v) = line.strip_prefix(symbol).and_then(|r| r.strip_prefix('=')) {
            value = match v.trim().trim_matches('"') {
                "y" => Tristate::Yes,
                "m" => Tristate::Module,
                _ => Tristate::No,
            };
        }
    }
    value
}

/// Module name of a path or file name: `kernel/drivers/block/virtio_blk.ko.xz` → `virtio_blk`
/// (`-` read as `_`, as modprobe does). `None` for anything that is not a `.ko[.gz|.xz|.zst]`.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| file.strip_suffix(s))?;
    (!stem.is_empty()).then(|| stem.replace('-', "_"))
}

/// Module names listed in `modules.builtin` (one path per line) or `modules.order`.
pub fn listed_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(|l| module_name(l.trim()))
        .collect()
}

/// Module names in `modules.dep` (`path: deps…`): the modules themselves, not their deps.
pub fn dep_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(|l| l.split(':').next())
        .filter_map(|p| module_name(p.trim()))
        .collect()
}

/// Module names in `modules.builtin.modinfo`: NUL-separated `module.key=value` records.
pub fn modinfo_modules(bytes: &[u8]) -> BTreeSet<String> {
    bytes
        .split(|&b| b == 0)
        .take(MAX_LINES)
        .filter_map(|rec| {
            let dot = rec.iter().position(|&b| b == b'.')?;
            let name = std::str::from_utf8(&rec[..dot]).ok()?;
            (!name.is_empty()).then(|| name.replace('-', "_"))
        })
        .collect()
}

/// Modules a `modprobe.d` text disables: `blacklist <m>` (no alias autoload) and
/// `install <m> /bin/false|/bin/true` (never loads).
pub fn modprobe_disabled(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().take(MAX_LINES) {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("blacklist"), Some(m), _) => {
                out.insert(m.replace('-', "_"));
            }
            (
                Some("install"),
                Some(m),
                Some("/bin/false" | "/bin/true" | "/usr/bin/false" | "/usr/bin/true"),
            ) => {
                out.insert(m.replace('-', "_"));
            }
            _ => {}
        }
    }
    out
}

/// Whether the initramfs reader should keep a member's contents for [`super::kernel_drivers`]:
/// `modules.builtin*`, `modules.order`, and `modprobe.d` files.
pub fn initramfs_wanted(path: &str) -> bool {
    let p = path.strip_prefix("usr/").unwrap_or(path);
    if let Some(rest) = p.strip_prefix("lib/modules/") {
        let file = rest.split_once('/').map(|(_, f)| f).unwrap_or("");
        return matches!(
            file,
            "modules.builtin" | "modules.builtin.modinfo" | "modules.order"
        );
    }
    ["etc/modprobe.d/", "lib/modprobe.d/"].iter().any(|d| {
        p.strip_prefix(d)
            .is_some_and(|f| !f.is_empty() && !f.contains('/'))
    })
}

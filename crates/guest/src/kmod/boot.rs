//! Which kernels are installed in `/boot` and which one boots by default: from the file names,
//! GRUB 2's `grub.cfg` and `grubenv`, and Boot Loader Specification entries
//! (`/boot/loader/entries/*.conf`, used by RHEL 8+ and Fedora through GRUB's `blscfg`). Pure
//! functions over names and texts the caller read; no file system access.
//!
//! GRUB semantics followed (GRUB manual, "default" and "Menu entry ids"): `default` is a
//! number, a title, an id, or a `>`-separated path into submenus; `grub-mkconfig` writes
//! `set default="${saved_entry}"` for `GRUB_DEFAULT=saved`, with `saved_entry` in `grubenv`.

use std::cmp::Ordering;

use super::version::compare_versions;

/// Caps for hostile configs: lines looked at and menu entries kept.
const MAX_LINES: usize = 100_000;
const MAX_MENU_ENTRIES: usize = 10_000;
const MAX_DEPTH: usize = 16;

/// A kernel found in `/boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledKernel {
    /// Version as in `/lib/modules/<version>`, e.g. `6.1.0-18-amd64`.
    pub version: String,
    /// File name of the kernel image, e.g. `vmlinuz-6.1.0-18-amd64`.
    pub image: String,
    /// File name of its initramfs, when one is there (`initrd.img-<v>`, `initramfs-<v>.img`,
    /// `initrd-<v>`; never a kdump initramfs).
    pub initrd: Option<String>,
    /// A RHEL rescue kernel (`vmlinuz-0-rescue-<machine-id>`): never the default by age.
    pub rescue: bool,
}

/// Kernel image prefixes: x86 and most distributions, uncompressed (ppc), arm64 SUSE.
const IMAGE_PREFIXES: [&str; 3] = ["vmlinuz-", "vmlinux-", "Image-"];

/// Kernels from the file names in `/boot`, newest first (rescue kernels last).
pub fn installed_kernels(boot_names: &[&str]) -> Vec<InstalledKernel> {
    let mut out: Vec<InstalledKernel> = Vec::new();
    for name in boot_names {
        let Some(version) = IMAGE_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) else {
            continue;
        };
        if version.is_empty()
            || [".hmac", ".sig", ".old", ".bak", ".efi.signed"]
                .iter()
                .any(|s| version.ends_with(s))
            || out.iter().any(|k| k.version == version)
        {
            continue;
        }
        let initrd = initrd_names(version)
            .into_iter()
            .find(|c| boot_names.contains(&c.as_str()));
        out.push(InstalledKernel {
            version: version.to_string(),
            image: (*name).to_string(),
            initrd,
            rescue: version.starts_with("0-rescue"),
        });
    }
    out.sort_by(|a, b| {
        a.rescue
            .cmp(&b.rescue)
            .then_with(|| compare_versions(&b.version, &a.version))
    });
    out
}

/// Candidate initramfs names for a version, in the order distributions use them: Debian
/// family, RHEL family, SUSE.
fn initrd_names(version: &str) -> [String; 5] {
    [
        format!("initrd.img-{version}"),
        format!("initramfs-{version}.img"),
        format!("initrd-{version}"),
        format!("initrd-{version}.img"),
        format!("initramfs-{version}"),
    ]
}

/// Boot loader configuration texts, as read from the guest (any may be missing).
#[derive(Debug, Clone, Copy, Default)]
pub struct BootConfig<'a> {
    /// `/boot/grub/grub.cfg` or `/boot/grub2/grub.cfg` (or the ESP's copy).
    pub grub_cfg: Option<&'a str>,
    /// `/boot/grub/grubenv` or `/boot/grub2/grubenv`.
    pub grubenv: Option<&'a str>,
    /// BLS entries: (file name such as `abc-5.14.0-362.el9.x86_64.conf`, text).
    pub bls_entries: &'a [(&'a str, &'a str)],
}

/// The kernel that boots by default, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultKernel {
    /// Its version, as in [`InstalledKernel::version`].
    pub version: String,
    /// Evidence, e.g. `grub.cfg default "0" -> menuentry 'Debian GNU/Linux' -> /boot/vmlinuz-6.1.0-18-amd64`.
    pub reason: String,
}

/// Picks the default kernel among `kernels`: the boot loader's default when it can be
/// resolved to an installed kernel, else the newest non-rescue kernel.
pub fn default_kernel(kernels: &[InstalledKernel], cfg: &BootConfig<'_>) -> Option<DefaultKernel> {
    let mut notes = Vec::new();
    if let Some(found) = from_boot_loader(kernels, cfg, &mut notes) {
        return Some(found);
    }
    let newest = kernels.iter().find(|k| !k.rescue).or(kernels.first())?;
    let mut reason = format!("newest installed kernel {}", newest.image);
    if !notes.is_empty() {
        reason.push_str(" (");
        reason.push_str(&notes.join("; "));
        reason.push(')');
    }
    Some(DefaultKernel {
        version: newest.version.clone(),
        reason,
    })
}

/// One node of the boot menu.
#[derive(Debug, Clone)]
enum Node {
    Entry {
        title: String,
        id: Option<String>,
        linux: Option<String>,
    },
    Submenu {
        title: String,
        id: Option<String>,
        children: Vec<Node>,
    },
}

impl Node {
    fn matches(&self, key: &str) -> bool {
        let (title, id) = match self {
            Node::Entry { title, id, .. } | Node::Submenu { title, id, .. } => (title, id),
        };
        title == key || id.as_deref() == Some(key)
    }
}

fn from_boot_loader(
    kernels: &[InstalledKernel],
    cfg: &BootConfig<'_>,
    notes: &mut Vec<String>,
) -> Option<DefaultKernel> {
    let saved = cfg.grubenv.and_then(|env| env_value(env, "saved_entry"));
    let bls = bls_menu(cfg.bls_entries);
    let (menu, default, source) = match cfg.grub_cfg {
        Some(text) => {
            let parsed = parse_grub(text, &bls);
            let spec = match parsed.default {
                Some(d) if d.contains("saved_entry") => saved.clone().unwrap_or_default(),
                Some(d) => d,
                None => String::new(),
            };
            (parsed.menu, spec, "grub.cfg")
        }
        None if !bls.is_empty() => (bls, saved.clone().unwrap_or_default(), "BLS entries"),
        None => return None,
    };
    let spec = if default.is_empty() {
        "0".to_string()
    } else {
        default
    };
    let Some(node) = resolve(&menu, &spec) else {
        notes.push(format!("{source} default \"{spec}\" matches no menu entry"));
        return None;
    };
    let Node::Entry { title, linux, .. } = node else {
        return None;
    };
    let Some(linux) = linux else {
        notes.push(format!(
            "{source} default entry '{title}' loads no Linux kernel"
        ));
        return None;
    };
    let file = linux.rsplit('/').next().unwrap_or(linux);
    let Some(k) = kernels.iter().find(|k| k.image == file) else {
        notes.push(format!(
            "{source} default entry '{title}' boots {linux}, which is not installed"
        ));
        return None;
    };
    Some(DefaultKernel {
        version: k.version.clone(),
        reason: format!("{source} default \"{spec}\" -> '{title}' -> {linux}"),
    })
}

/// Resolves a GRUB `default` value: an index, a title or id, or a `>` path through submenus.
fn resolve<'m>(menu: &'m [Node], spec: &str) -> Option<&'m Node> {
    let mut level = menu;
    let mut found: Option<&Node> = None;
    for part in spec.split('>') {
        let node = match part.parse::<usize>() {
            Ok(i) => level.get(i),
            Err(_) => level.iter().find(|n| n.matches(part)),
        };
        let node = match node {
            Some(n) => n,
            // Not a path: look for the title or id anywhere (older GRUB accepted that).
            None if found.is_none() => return find_anywhere(menu, spec).map(first_entry),
            None => return None,
        };
        found = Some(node);
        level = match node {
            Node::Submenu { children, .. } => children,
            Node::Entry { .. } => &[],
        };
    }
    found.map(first_entry)
}

fn find_anywhere<'m>(menu: &'m [Node], key: &str) -> Option<&'m Node> {
    for n in menu {
        if n.matches(key) {
            return Some(n);
        }
        if let Node::Submenu { children, .. } = n
            && let Some(f) = find_anywhere(children, key)
        {
            return Some(f);
        }
    }
    None
}

/// A submenu chosen as default boots its first entry.
fn first_entry(node: &Node) -> &Node {
    let mut n = node;
    for _ in 0..MAX_DEPTH {
        match n {
            Node::Submenu { children, .. } if !children.is_empty() => n = &children[0],
            _ => break,
        }
    }
    n
}

/// The value of `key=value` in a grubenv block.
fn env_value(env: &str, key: &str) -> Option<String> {
    env.lines()
        .take(MAX_LINES)
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .last()
        .filter(|v| !v.is_empty())
}

/// BLS entries as menu entries, ordered as GRUB's `blscfg` shows them: by version, newest
/// first (ties by id).
fn bls_menu(entries: &[(&str, &str)]) -> Vec<Node> {
    let mut list: Vec<(String, String, Option<String>, String)> = Vec::new();
    for (name, text) in entries.iter().take(MAX_MENU_ENTRIES) {
        let id = name.strip_suffix(".conf").unwrap_or(name).to_string();
        let (mut title, mut version, mut linux) = (None, None, None);
        for line in text.lines().take(MAX_LINES) {
            let line = line.trim();
            let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let v = v.trim().to_string();
            match k {
                "title" => title = Some(v),
                "version" => version = Some(v),
                "linux" => linux = Some(v),
                _ => {}
            }
        }
        let version = version.unwrap_or_default();
        list.push((id.clone(), title.unwrap_or(id), linux, version));
    }
    list.sort_by(|a, b| match compare_versions(&b.3, &a.3) {
        Ordering::Equal => b.0.cmp(&a.0),
        o => o,
    });
    list.into_iter()
        .map(|(id, title, linux, _)| Node::Entry {
            title,
            id: Some(id),
            linux,
        })
        .collect()
}

struct GrubCfg {
    menu: Vec<Node>,
    /// The last `set default=` value outside menu entries, `${next_entry}` (one-shot) ignored.
    default: Option<String>,
}

/// What an open `{` belongs to: a menu node being filled, or any other block.
enum Frame {
    Menu(Node),
    Other,
}

fn parse_grub(text: &str, bls: &[Node]) -> GrubCfg {
    let mut stack: Vec<Frame> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    let mut default = None;
    let mut count = 0usize;
    for line in text.lines().take(MAX_LINES) {
        let words = split_words(line);
        let Some(first) = words.first().map(String::as_str) else {
            continue;
        };
        let opens = words.last().is_some_and(|w| w == "{");
        match first {
            "menuentry" | "submenu" if opens && stack.len() < MAX_DEPTH => {
                let title = words.get(1).cloned().unwrap_or_default();
                let id = words
                    .windows(2)
                    .find(|w| w[0] == "--id" || w[0] == "$menuentry_id_option")
                    .map(|w| w[1].clone());
                stack.push(Frame::Menu(if first == "menuentry" {
                    Node::Entry {
                        title,
                        id,
                        linux: None,
                    }
                } else {
                    Node::Submenu {
                        title,
                        id,
                        children: Vec::new(),
                    }
                }));
            }
            "}" => {
                let Some(Frame::Menu(node)) = stack.pop() else {
                    continue;
                };
                count += 1;
                if count > MAX_MENU_ENTRIES {
                    continue;
                }
                let parent = stack.iter_mut().rev().find_map(|f| match f {
                    Frame::Menu(n) => Some(n),
                    Frame::Other => None,
                });
                match parent {
                    Some(Node::Submenu { children, .. }) => children.push(node),
                    Some(Node::Entry { .. }) => {}
                    None => top.push(node),
                }
            }
            "linux" | "linux16" | "linuxefi" | "kernel" => {
                if let Some(Frame::Menu(Node::Entry { linux, .. })) = stack.last_mut()
                    && let Some(path) = words.get(1)
                {
                    *linux = Some(path.clone());
                }
            }
            "set"
                if !stack
                    .iter()
                    .any(|f| matches!(f, Frame::Menu(Node::Entry { .. }))) =>
            {
                if let Some(v) = words.get(1).and_then(|w| w.strip_prefix("default="))
                    && !v.contains("next_entry")
                {
                    default = Some(v.to_string());
                }
            }
            "blscfg" if stack.is_empty() => top.extend(bls.iter().cloned()),
            _ if opens && stack.len() < MAX_DEPTH => stack.push(Frame::Other),
            _ => {}
        }
    }
    GrubCfg { menu: top, default }
}

/// Splits a GRUB script line into words, honouring `'…'`, `"…"` and backslash escapes and
/// dropping `#` comments; `${var}` stays as written.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        q => cur.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
#[path = "boot_tests.rs"]
mod tests;

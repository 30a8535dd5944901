//! The text descriptor (VMware "Virtual Disk Format 5.0", "The Descriptor File"): header keys,
//! extent lines and the disk database, parsed strictly. Every line is a comment, a
//! `key = value` pair or an extent line; anything else is refused, as OpenStack's
//! format_inspector does. Names of extent files are judged here; opening them is `files.rs`.

/// Most extent lines accepted (a 64 TiB twoGbMaxExtent disk has 32768; 4096 covers 8 TiB).
pub const MAX_EXTENTS: usize = 4096;
/// Longest `createType` value accepted (format_inspector takes it only below 64 characters).
const MAX_CREATE_TYPE: usize = 63;

/// How an extent may be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Rw,
    Rdonly,
    Noaccess,
}

/// Where an extent's sectors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentType {
    /// Plain sectors at an offset of a file.
    Flat,
    /// A hosted sparse (`KDMV`) extent file.
    Sparse,
    /// Zeros, no file.
    Zero,
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: Access,
    /// Size in sectors.
    pub sectors: u64,
    pub kind: ExtentType,
    /// The file name as written (empty for ZERO).
    pub file: String,
    /// Offset in sectors into a FLAT file.
    pub offset: u64,
    /// 1-based line number, for messages.
    pub line: usize,
    /// Byte offset of the line in the descriptor.
    pub at: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default)]
pub struct Descriptor {
    pub version: Option<String>,
    pub cid: Option<String>,
    pub create_type: String,
    pub extents: Vec<ExtentLine>,
}

/// Why a descriptor is refused: a finding code, the line (0: the whole descriptor), its byte
/// offset in the descriptor, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescError {
    pub code: &'static str,
    pub line: usize,
    pub at: u64,
    pub rule: String,
}

fn err(code: &'static str, line: usize, at: u64, rule: impl Into<String>) -> DescError {
    DescError {
        code,
        line,
        at,
        rule: rule.into(),
    }
}

/// Parses `bytes` (the descriptor, ending at its first NUL or its end).
pub fn parse(bytes: &[u8]) -> Result<Descriptor, DescError> {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = std::str::from_utf8(&bytes[..len]).map_err(|e| {
        err(
            "vmdk.descriptor_text",
            0,
            e.valid_up_to() as u64,
            "the descriptor is not UTF-8 text",
        )
    })?;
    if let Some(p) = text
        .bytes()
        .position(|b| b < 0x20 && b != b'\n' && b != b'\r' && b != b'\t' || b == 0x7f)
    {
        return Err(err(
            "vmdk.descriptor_text",
            0,
            p as u64,
            "the descriptor holds a control character",
        ));
    }
    let mut d = Descriptor::default();
    let mut create_type = None;
    let mut at = 0u64;
    for (i, raw_line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line_at = at;
        at += raw_line.len() as u64 + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        let access = match first.to_ascii_uppercase().as_str() {
            "RW" => Some(Access::Rw),
            "RDONLY" => Some(Access::Rdonly),
            "NOACCESS" => Some(Access::Noaccess),
            _ => None,
        };
        if let Some(access) = access {
            if d.extents.len() >= MAX_EXTENTS {
                return Err(err(
                    "vmdk.too_many_extents",
                    line_no,
                    line_at,
                    format!("more than {MAX_EXTENTS} extent lines"),
                ));
            }
            d.extents
                .push(parse_extent(access, line, line_no, line_at)?);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(
                "vmdk.descriptor_line",
                line_no,
                line_at,
                "is neither a comment, a key = value pair nor an extent line",
            ));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(err(
                "vmdk.descriptor_line",
                line_no,
                line_at,
                format!("the key {key:?} is empty or holds white space"),
            ));
        }
        let value = unquote(value.trim());
        match key {
            "version" => d.version = Some(value.to_string()),
            "CID" => d.cid = Some(value.to_string()),
            "parentCID" if !value.eq_ignore_ascii_case("ffffffff") => {
                return Err(err(
                    "vmdk.differencing",
                    line_no,
                    line_at,
                    format!(
                        "parentCID={value}: a differencing (child) disk reads unallocated grains from a parent that is not imported; merge the chain into one disk first"
                    ),
                ));
            }
            "parentFileNameHint" => {
                return Err(err(
                    "vmdk.differencing",
                    line_no,
                    line_at,
                    "parentFileNameHint names a parent disk: a differencing (child) disk is refused; merge the chain into one disk first",
                ));
            }
            "createType" => {
                if value.len() > MAX_CREATE_TYPE {
                    return Err(err(
                        "vmdk.create_type",
                        line_no,
                        line_at,
                        format!("createType is longer than {MAX_CREATE_TYPE} characters"),
                    ));
                }
                create_type = Some(value.to_string());
            }
            _ => {}
        }
    }
    let Some(create_type) = create_type else {
        return Err(err(
            "vmdk.create_type",
            0,
            0,
            "the descriptor has no createType",
        ));
    };
    d.create_type = create_type;
    if d.extents.is_empty() {
        return Err(err(
            "vmdk.no_extents",
            0,
            0,
            "the descriptor lists no extents",
        ));
    }
    Ok(d)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
fn parse_extent(
    access: Access,
    line: &str,
    line_no: usize,
    at: u64,
) -> Result<ExtentLine, DescError> {
    let bad = |rule: String| err("vmdk.extent_line", line_no, at, rule);
    let mut parts = line.splitn(3, char::is_whitespace);
    parts.next();
    let sectors = parts.next().unwrap_or_default();
    let sectors: u64 = sectors
        .parse()
        .map_err(|_| bad(format!("the size {sectors:?} is not a sector count")))?;
    let rest = parts.next().unwrap_or_default().trim_start();
    let (kind_word, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let kind = match kind_word.to_ascii_uppercase().as_str() {
        "FLAT" => ExtentType::Flat,
        "SPARSE" => ExtentType::Sparse,
        "ZERO" => ExtentType::Zero,
        other @ ("VMFS" | "VMFSSPARSE" | "VMFSRDM" | "VMFSRAW" | "SESPARSE") => {
            return Err(err(
                "vmdk.extent_type",
                line_no,
                at,
                format!(
                    "{other} extents are ESXi datastore files (raw device maps, snapshots), not a portable disk; export the disk from ESXi first"
                ),
            ));
        }
        other => return Err(bad(format!("{other:?} is not FLAT, SPARSE or ZERO"))),
    };
    let rest = rest.trim();
    let mut e = ExtentLine {
        access,
        sectors,
        kind,
        file: String::new(),
        offset: 0,
        line: line_no,
        at,
    };
    if kind == ExtentType::Zero {
        if !rest.is_empty() {
            return Err(bad("a ZERO extent names no file".into()));
        }
        return Ok(e);
    }
    let Some(quoted) = rest.strip_prefix('"') else {
        return Err(bad("the file name is not in double quotes".into()));
    };
    let Some((name, tail)) = quoted.split_once('"') else {
        return Err(bad("the file name has no closing double quote".into()));
    };
    check_name(name).map_err(|rule| err("vmdk.extent_name", line_no, at, rule))?;
    e.file = name.to_string();
    let tail = tail.trim();
    if !tail.is_empty() {
        let offset: u64 = tail.parse().map_err(|_| {
            bad(format!(
                "{tail:?} after the file name is not a sector offset"
            ))
        })?;
        if kind == ExtentType::Sparse && offset != 0 {
            return Err(bad("a SPARSE extent starts at offset 0 of its file".into()));
        }
        e.offset = offset;
    }
    Ok(e)
}

/// The rule an extent file name must keep: a plain name of a file in the descriptor's own
/// directory, never a path, a parent, or a QEMU protocol or `json:` name.
pub fn check_name(name: &str) -> Result<(), String> {
    let rule = if name.is_empty() {
        "the extent file name is empty"
    } else if name.contains('/') || name.contains('\\') {
        "names a path (holds / or \\), not a file in the descriptor's directory"
    } else if name == "." || name == ".." {
        "names a directory, not a file in the descriptor's directory"
    } else if name.contains(':') {
        "holds ':', which QEMU reads as a protocol (json:, nbd:, file:)"
    } else {
        return Ok(());
    };
    Err(format!("extent file {name:?}: {rule}"))
}

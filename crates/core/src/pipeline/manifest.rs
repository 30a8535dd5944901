//! Batch manifests (TOML or CSV: one row per image or multi-disk set, with per-row options)
//! and sharding of a batch across machines (`--shard I/N`, Kubernetes Indexed Jobs, Slurm
//! job arrays).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a manifest or shard setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read the manifest")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid TOML manifest")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: row {row}: not a valid CSV manifest row")]
    Csv {
        path: PathBuf,
        row: usize,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: row {row}: {rule}")]
    Row {
        path: PathBuf,
        row: usize,
        rule: String,
    },
    #[error("shard {0}: {1}")]
    Shard(String, &'static str),
}

/// Options a manifest row (or its `[defaults]`, or the command line) may set. One precedence
/// for every key: the command-line flag, else the row's own value, else `[defaults]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowOptions {
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    /// `raw`, `vhd`, `vhd-fixed` or `qcow2`.
    pub output: Option<String>,
    pub description: Option<String>,
    pub platform: Option<String>,
    pub os_type: Option<String>,
    pub architecture: Option<String>,
    pub boot_mode: Option<String>,
    pub license_type: Option<String>,
    pub family: Option<String>,
    /// 1-based position of the system disk among `files`.
    pub system_disk: Option<usize>,
    /// Import a system disk on which inspection found no operating system (`guest.no_os`).
    pub allow_no_os: Option<bool>,
    /// Import disks whose guest data holds another image as they are (`nested.*` findings).
    pub allow_nested: Option<bool>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl RowOptions {
    /// `self` with every unset field taken from `defaults`.
    pub fn or(mut self, defaults: &RowOptions) -> RowOptions {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = defaults.$f.clone(); } )* };
        }
        fill!(
            region,
            bucket,
            key_prefix,
            output,
            description,
            platform,
            os_type,
            architecture,
            boot_mode,
            license_type,
            family,
            system_disk,
            allow_no_os,
            allow_nested
        );
        for (k, v) in &defaults.tags {
            self.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self
    }
}

/// One image to import: its disks and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItem {
    /// Stable identity of the row: the image name, else the first file.
    pub id: String,
    /// 0-based position in the manifest.
    pub position: usize,
    pub name: Option<String>,
    pub files: Vec<PathBuf>,
    /// The row's own options.
    pub options: RowOptions,
    /// The manifest's `[defaults]`, below the row's options and the command line.
    pub defaults: RowOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlManifest {
    #[serde(default)]
    defaults: RowOptions,
    #[serde(default, rename = "image")]
    images: Vec<TomlImage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlImage {
    name: Option<String>,
    files: Vec<PathBuf>,
    #[serde(flatten)]
    options: RowOptions,
}

/// Largest manifest imgport reads, so a wrong path cannot exhaust memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads a TOML (`.toml`) or CSV (anything else) manifest. Relative file paths are taken
/// relative to the manifest's directory.
pub fn load(path: &Path) -> Result<Vec<BatchItem>, ManifestError> {
    let read_err = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_MANIFEST_BYTES {
        return Err(ManifestError::Row {
            path: path.to_path_buf(),
            row: 0,
            rule: format!("the manifest is {len} bytes; at most {MAX_MANIFEST_BYTES} are read"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let (items, defaults) = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        parse_toml(&text, path)?
    } else {
        (parse_csv(&text, path)?, RowOptions::default())
    };
    let mut seen = BTreeMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (position, (name, files, options)) in items.into_iter().enumerate() {
        let row = position + 1;
        if files.is_empty() {
            return Err(ManifestError::Row {
                path: path.to_path_buf(),
                row,
                rule: "names no image file".into(),
            });
        }
        let files: Vec<PathBuf> = files.into_iter().map(|f| base.join(f)).collect();
        let id = name
            .clone()
            .unwrap_or_else(|| files[0].display().to_string());
        if let Some(first) = seen.insert(id.clone(), row) {
            return Err(ManifestError::Row {
                path: path.to_path_buf(),
                row,
                rule: format!(
                    "`{id}` was already listed in row {first}; every image must be listed once"
                ),
            });
        }
        out.push(BatchItem {
            id,
            position,
            name,
            files,
            options,
            defaults: defaults.clone(),
        });
    }
    Ok(out)
}

type RawRow = (Option<String>, Vec<PathBuf>, RowOptions);

/// A manifest's rows and its `[defaults]` (none in CSV).
type RawManifest = (Vec<RawRow>, RowOptions);

fn parse_toml(text: &str, path: &Path) -> Result<RawManifest, ManifestError> {
    let m: TomlManifest = toml::from_str(text).map_err(|source| ManifestError::Toml {
        path: path.to_path_buf(),
        source,
    })?;
    let rows = m
        .images
        .into_iter()
        .map(|i| (i.name, i.files, i.options))
        .collect();
    Ok((rows, m.defaults))
}

/// CSV columns: `name`, `files` (`;`-separated), then any [`RowOptions`] field; `tags` as
/// `key=value;key=value`.
fn parse_csv(text: &str, path: &Path) -> Result<Vec<RawRow>, ManifestError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|source| ManifestError::Csv {
            path: path.to_path_buf(),
            row: 0,
            source,
        })?
        .clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = record.map_err(|source| ManifestError::Csv {
            path: path.to_path_buf(),
            row,
            source,
        })?;
        let bad = |rule: String| ManifestError::Row {
            path: path.to_path_buf(),
            row,
            rule,
        };
        let mut name = None;
        let mut files = Vec::new();
        let mut o = RowOptions::default();
        for (h, v) in headers.iter().zip(record.iter()) {
            if v.is_empty() {
                continue;
            }
            let s = Some(v.to_string());
            match h {
                "name" => name = s,
                "files" | "file" => files = v.split(';').map(|f| PathBuf::from(f.trim())).collect(),
                "region" => o.region = s,
                "bucket" => o.bucket = s,
                "key_prefix" => o.key_prefix = s,
                "output" => o.output = s,
                "description" => o.description = s,
                "platform" => o.platform = s,
                "os_type" => o.os_type = s,
                "architecture" => o.architecture = s,
                "boot_mode" => o.boot_mode = s,
                "license_type" => o.license_type = s,
                "family" => o.family = s,
                "allow_no_os" => {
                    o.allow_no_os = Some(
                        v.parse()
                            .map_err(|_| bad(format!("allow_no_os `{v}` is not true or false")))?,
                    )
                }
                "allow_nested" => {
                    o.allow_nested = Some(
                        v.parse()
                            .map_err(|_| bad(format!("allow_nested `{v}` is not true or false")))?,
                    )
                }
                "system_disk" => {
                    o.system_disk = Some(
                        v.parse()
                            .map_err(|_| bad(format!("system_disk `{v}` is not a disk number")))?,
                    )
                }
                "tags" => {
                    for pair in v.split(';').filter(|p| !p.trim().is_empty()) {
                        let (k, val) = pair
                            .split_once('=')
                            .ok_or_else(|| bad(format!("tag `{pair}` is not key=value")))?;
                        o.tags.insert(k.trim().to_string(), val.trim().to_string());
                    }
                }
                other => return Err(bad(format!("unknown column `{other}`"))),
            }
        }
        rows.push((name, files, o));
    }
    Ok(rows)
}

/// This process's share of a batch: items whose position modulo `count` equals `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` (0-based index).
    pub fn parse(text: &str) -> Result<Shard, ManifestError> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| ManifestError::Shard(text.into(), "must be I/N, e.g. 0/3"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| ManifestError::Shard(text.into(), "I is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| ManifestError::Shard(text.into(), "N is not a number"))?;
        Shard::new(index, count).ok_or(ManifestError::Shard(
            text.into(),
            "needs N >= 1 and 0 <= I < N",
        ))
    }

    fn new(index: u32, count: u32) -> Option<Shard> {
        (count >= 1 && index < count).then_some(Shard { index, count })
    }

    /// The shard from the command line, else from the scheduler's environment: Kubernetes
    /// Indexed Jobs (`JOB_COMPLETION_INDEX`, with the count from `IMGPORT_SHARDS`) or Slurm
    /// job arrays (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT`).
    pub fn resolve(
        explicit: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, ManifestError> {
        if let Some(text) = explicit {
            return Shard::parse(text).map(Some);
        }
        let num =
            |name: &str| -> Result<Option<u32>, ManifestError> {
                match env(name) {
                    None => Ok(None),
                    Some(v) => v.trim().parse().map(Some).map_err(|_| {
                        ManifestError::Shard(format!("{name}={v}"), "is not a number")
                    }),
                }
            };
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("IMGPORT_SHARDS")?.ok_or(ManifestError::Shard(
                format!("JOB_COMPLETION_INDEX={index}"),
                "set IMGPORT_SHARDS (or --shard I/N) to the Job's completions",
            ))?;
            return Shard::new(index, count)
                .map(Some)
                .ok_or(ManifestError::Shard(
                    format!("{index}/{count}"),
                    "JOB_COMPLETION_INDEX must be below IMGPORT_SHARDS",
                ));
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or(ManifestError::Shard(
                format!("SLURM_ARRAY_TASK_ID={id}"),
                "SLURM_ARRAY_TASK_COUNT is not set",
            ))?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or(ManifestError::Shard(
                format!("{id}"),
                "SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN",
            ))?;
            return Shard::new(index, count)
                .map(Some)
                .ok_or(ManifestError::Shard(
                    format!("{index}/{count}"),
                    "the array task index must be below SLURM_ARRAY_TASK_COUNT",
                ));
        }
        Ok(None)
    }

    /// True when `item` belongs to this shard.
    pub fn owns(&self, item: &BatchItem) -> bool {
        item.position as u64 % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn toml_rows_inherit_defaults_and_resolve_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "m.toml",
            r#"
[defaults]
region = "cn-hangzhou"
bucket = "images"
tags = { team = "infra" }

[[image]]
name = "web"
files = ["web.qcow2", "/abs/data.raw"]
platform = "CentOS"
system_disk = 1

[[image]]
files = ["db.vhd"]
region = "cn-beijing"
"#,
        );
        let items = load(&p).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "web");
        assert_eq!(
            items[0].files,
            [dir.path().join("web.qcow2"), PathBuf::from("/abs/data.raw")]
        );
        // The row keeps its own options; `[defaults]` sit beside them, below.
        assert_eq!(items[0].options.region, None);
        assert_eq!(items[0].defaults.region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(items[0].options.platform.as_deref(), Some("CentOS"));
        assert_eq!(items[0].defaults.tags["team"], "infra");
        assert_eq!(items[1].options.region.as_deref(), Some("cn-beijing"));
        assert_eq!(items[1].defaults.bucket.as_deref(), Some("images"));
        assert_eq!(items[1].id, dir.path().join("db.vhd").display().to_string());
    }

    #[test]
    fn csv_rows_with_options_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "m.csv",
            "name,files,platform,tags,system_disk\n# a comment\nweb,a.qcow2;b.raw,CentOS,team=infra;env=prod,2\n,c.raw,,,\n",
        );
        let items = load(&p).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].files.len(), 2);
        assert_eq!(items[0].options.system_disk, Some(2));
        assert_eq!(items[0].options.tags["env"], "prod");
        assert_eq!(items[1].name, None);
    }

    #[test]
    fn bad_manifests_name_the_row_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, needle) in [
            (
                "a.csv",
                "name,files,colour\nx,a.raw,blue\n",
                "unknown column `colour`",
            ),
            ("b.csv", "name,files\nx,\n", "row 1: names no image file"),
            (
                "c.csv",
                "name,files\nx,a.raw\nx,b.raw\n",
                "already listed in row 1",
            ),
            ("d.csv", "name,files,tags\nx,a.raw,oops\n", "not key=value"),
            (
                "e.toml",
                "[[image]]\nfiles = [\"a\"]\nbogus = 1\n",
                "not a valid TOML",
            ),
        ] {
            let p = write(dir.path(), name, text);
            let e = load(&p).unwrap_err();
            let chain = format!("{e}");
            assert!(chain.contains(needle), "{name}: {chain}");
        }
    }

    #[test]
    fn shards_from_flags_kubernetes_and_slurm() {
        let none = |_: &str| None;
        assert_eq!(
            Shard::resolve(Some("1/3"), none).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        assert!(Shard::resolve(Some("3/3"), none).is_err());
        assert!(Shard::resolve(Some("x"), none).is_err());
        assert_eq!(Shard::resolve(None, none).unwrap(), None);
        let k8s = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            "IMGPORT_SHARDS" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::resolve(None, k8s).unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        let k8s_no_count = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "0".to_string());
        assert!(Shard::resolve(None, k8s_no_count).is_err());
        let slurm = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("11".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("10".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("3".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::resolve(None, slurm).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
    }

    #[test]
    fn shards_partition_the_batch() {
        let items: Vec<BatchItem> = (0..10)
            .map(|i| BatchItem {
                id: i.to_string(),
                position: i,
                name: None,
                files: vec![],
                options: RowOptions::default(),
                defaults: RowOptions::default(),
            })
            .collect();
        let mut owners = [0; 10];
        for index in 0..3 {
            let s = Shard { index, count: 3 };
            for it in items.iter().filter(|it| s.owns(it)) {
                owners[it.position] += 1;
            }
        }
        assert!(owners.iter().all(|&n| n == 1));
    }
}

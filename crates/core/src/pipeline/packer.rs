//! Packer's `manifest` post-processor output: each build's artifact files become one batch
//! item (one image; several files are a multi-disk image, the first the system disk unless
//! inspection says otherwise).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::manifest::{BatchItem, ManifestError, RowOptions};

#[derive(Debug, Deserialize)]
struct PackerManifest {
    #[serde(default)]
    builds: Vec<PackerBuild>,
    #[serde(default)]
    last_run_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PackerBuild {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    builder_type: Option<String>,
    #[serde(default)]
    files: Vec<PackerFile>,
    #[serde(default)]
    packer_run_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PackerFile {
    name: PathBuf,
}

/// Artifact file names that are never disk images (checksums, logs, descriptors).
fn is_disk_artifact(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    !matches!(
        ext.as_deref(),
        Some("json" | "ovf" | "mf" | "log" | "txt" | "sha256" | "sha512" | "md5" | "checksum")
    )
}

/// The builds of a Packer manifest as batch items; with `last_run_only`, only the builds of
/// the run named by `last_run_uuid`. Relative artifact paths are taken relative to the
/// manifest's directory (where Packer ran).
pub fn load(path: &Path, last_run_only: bool) -> Result<Vec<BatchItem>, ManifestError> {
    let read_err = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > super::manifest::MAX_MANIFEST_BYTES {
        return Err(ManifestError::Row {
            path: path.to_path_buf(),
            row: 0,
            rule: format!("the Packer manifest is {len} bytes; too large"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let m: PackerManifest = serde_json::from_str(&text).map_err(|e| ManifestError::Row {
        path: path.to_path_buf(),
        row: 0,
        rule: format!("not a Packer manifest: {e}"),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let wanted = if last_run_only {
        Some(m.last_run_uuid.clone().ok_or_else(|| ManifestError::Row {
            path: path.to_path_buf(),
            row: 0,
            rule: "--last-run-only needs `last_run_uuid`, which the manifest lacks".into(),
        })?)
    } else {
        None
    };
    let mut items = Vec::new();
    for (i, b) in m.builds.into_iter().enumerate() {
        if wanted.is_some() && b.packer_run_uuid != wanted {
            continue;
        }
        let files: Vec<PathBuf> = b
            .files
            .into_iter()
            .map(|f| base.join(f.name))
            .filter(|f| is_disk_artifact(f))
            .collect();
        if files.is_empty() {
            return Err(ManifestError::Row {
                path: path.to_path_buf(),
                row: i + 1,
                rule: format!(
                    "build `{}` ({}) lists no disk image file",
                    b.name.as_deref().unwrap_or("?"),
                    b.builder_type.as_deref().unwrap_or("?")
                ),
            });
        }
        let run = b.packer_run_uuid.as_deref().unwrap_or("run");
        let id = format!("{}:{}", b.name.as_deref().unwrap_or("build"), run);
        let position = items.len();
        items.push(BatchItem {
            id,
            position,
            name: b.name,
            files,
            options: RowOptions::default(),
            defaults: RowOptions::default(),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
  "builds": [
    {"name": "old", "builder_type": "qemu", "build_time": 1, "artifact_id": "VM",
     "files": [{"name": "output-old/packer-qemu", "size": 10}], "packer_run_uuid": "run-1"},
    {"name": "centos", "builder_type": "qemu", "build_time": 2, "artifact_id": "VM",
     "files": [{"name": "output/packer-centos", "size": 10}, {"name": "output/packer-centos-1", "size": 5},
               {"name": "output/SHA256SUMS.sha256", "size": 1}],
     "packer_run_uuid": "run-2", "custom_data": {"k": "v"}}
  ],
  "last_run_uuid": "run-2"
}"#;

    #[test]
    fn builds_become_items_and_last_run_filters() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("packer-manifest.json");
        std::fs::write(&p, MANIFEST).unwrap();
        let all = load(&p, false).unwrap();
        assert_eq!(all.len(), 2);
        let last = load(&p, true).unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].name.as_deref(), Some("centos"));
        assert_eq!(
            last[0].files,
            [
                dir.path().join("output/packer-centos"),
                dir.path().join("output/packer-centos-1")
            ]
        );
        assert_eq!(last[0].id, "centos:run-2");
    }

    #[test]
    fn broken_manifests_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, "{\"builds\": [{\"name\": \"x\", \"files\": []}]}").unwrap();
        assert!(
            load(&p, false)
                .unwrap_err()
                .to_string()
                .contains("lists no disk image")
        );
        assert!(
            load(&p, true)
                .unwrap_err()
                .to_string()
                .contains("last_run_uuid")
        );
        std::fs::write(&p, "not json").unwrap();
        assert!(
            load(&p, false)
                .unwrap_err()
                .to_string()
                .contains("not a Packer manifest")
        );
    }
}

//! Opening the extent files a descriptor names: only a plain name of a regular file in the
//! descriptor's own directory, opened without following a symbolic link, through the same
//! regular-file checks as every image file ([`ImageFile`]), each file at most once.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::descriptor::check_name;
use crate::{ImageError, ImageFile};

/// The files already opened, by device and inode (the descriptor first).
pub struct Opened {
    seen: Vec<(u64, u64)>,
}

impl Opened {
    /// Starts with the descriptor's own file, which no extent may name.
    pub fn new(descriptor: &ImageFile) -> Result<Self, ImageError> {
        let mut s = Self { seen: Vec::new() };
        s.seen.push(identity(descriptor)?);
        Ok(s)
    }

    /// Opens extent file `name` beside the descriptor at `descriptor`; the error is the rule
    /// broken, for a finding.
    pub fn open(&mut self, descriptor: &Path, name: &str) -> Result<Arc<ImageFile>, String> {
        check_name(name)?;
        let dir = match descriptor.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let path = dir.join(name);
        let file = ImageFile::open_no_follow(&path).map_err(|e| match e {
            ImageError::NotRegular { kind, .. } => {
                format!("extent file {name:?} is {kind}, not a regular file")
            }
            ImageError::Io { source, .. } => {
                format!("extent file {name:?} cannot be opened ({source})")
            }
            other => format!("extent file {name:?}: {other}"),
        })?;
        let id = identity(&file).map_err(|e| format!("extent file {name:?}: {e}"))?;
        if self.seen.first() == Some(&id) {
            return Err(format!("extent file {name:?} is the descriptor itself"));
        }
        if self.seen.contains(&id) {
            return Err(format!(
                "extent file {name:?} is already another extent's file: each extent has its own file"
            ));
        }
        self.seen.push(id);
        Ok(Arc::new(file))
    }
}

fn identity(f: &ImageFile) -> Result<(u64, u64), ImageError> {
    let m = f.file().metadata().map_err(|source| ImageError::Io {
        path: f.path().to_path_buf(),
        source,
    })?;
    Ok((m.dev(), m.ino()))
}

//! A service's state as one JSON file of the emulator's state directory, so that a restarted
//! `imgport sim` goes on where it stopped. Each save writes the whole file, then renames it
//! into place, so a crash leaves the old state or the new one, never half of either.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where one service keeps its state: a file of the state directory, or nowhere (memory only).
#[derive(Debug, Clone, Default)]
pub struct StateFile(Option<PathBuf>);

impl StateFile {
    /// `name` in `state_dir` (the directory is created when missing), or memory only.
    pub fn new(state_dir: Option<&Path>, name: &str) -> io::Result<Self> {
        let Some(dir) = state_dir else {
            return Ok(Self(None));
        };
        std::fs::create_dir_all(dir)?;
        Ok(Self(Some(dir.join(name))))
    }

    /// The saved state; `None` when there is no file (or no directory).
    pub fn load<T: DeserializeOwned>(&self) -> io::Result<Option<T>> {
        match &self.0 {
            Some(f) if f.exists() => {
                let value = serde_json::from_slice(&std::fs::read(f)?).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", f.display()))
                })?;
                Ok(Some(value))
            }
            _ => Ok(None),
        }
    }

    /// Saves `state` whole (temporary file, then rename); nothing to do when memory only.
    pub fn save<T: Serialize>(&self, state: &T) -> io::Result<()> {
        let Some(file) = &self.0 else {
            return Ok(());
        };
        let tmp = file.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn saved_state_loads_back_and_memory_only_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let file = StateFile::new(Some(&sub), "x-state.json").unwrap();
        assert_eq!(file.load::<BTreeMap<String, u32>>().unwrap(), None);
        let state = BTreeMap::from([("a".to_string(), 1u32)]);
        file.save(&state).unwrap();
        assert_eq!(file.load::<BTreeMap<String, u32>>().unwrap(), Some(state));
        assert!(!sub.join("x-state.json.tmp").exists());

        let memory = StateFile::new(None, "x-state.json").unwrap();
        memory.save(&1u32).unwrap();
        assert_eq!(memory.load::<u32>().unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x-state.json"), b"{not json").unwrap();
        let file = StateFile::new(Some(dir.path()), "x-state.json").unwrap();
        let err = file.load::<BTreeMap<String, u32>>().unwrap_err();
        assert!(err.to_string().contains("x-state.json"), "{err}");
    }
}

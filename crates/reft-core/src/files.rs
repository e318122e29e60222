//! In-memory files: a directory's contents as file name → bytes. Where there is no file system
//! (WebAssembly in a browser) models load from a [`FileMap`]
//! ([`crate::models::load_model_from_files`]) and adapters save to and load from one
//! ([`crate::ReftModel::to_files`], [`crate::ReftModel::from_files`]); the path-based loaders
//! read a directory into the same code paths.

use crate::error::{ReftError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name → contents, one flat directory (names hold no `/`), in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMap {
    files: BTreeMap<String, Vec<u8>>,
}

impl FileMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(name.into(), bytes);
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|v| v.as_slice())
    }

    /// The file, or `ERR_IO` (not found) naming it as `<memory>/name`.
    pub fn require(&self, name: &str) -> Result<&[u8]> {
        self.get(name).ok_or_else(|| ReftError::io(Self::path(name), std::io::ErrorKind::NotFound.into()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// File names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(|k| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Removes a file, returning its bytes.
    pub fn remove(&mut self, name: &str) -> Option<Vec<u8>> {
        self.files.remove(name)
    }

    /// The pseudo path that error messages show for an in-memory file.
    pub fn path(name: &str) -> PathBuf {
        Path::new("<memory>").join(name)
    }

    /// Reads the named files of `dir` (those that exist).
    pub fn read_dir_files(dir: &Path, names: &[&str]) -> Result<Self> {
        let mut out = Self::new();
        for name in names {
            let p = dir.join(name);
            if p.exists() {
                out.insert(*name, std::fs::read(&p).map_err(|e| ReftError::io(&p, e))?);
            }
        }
        Ok(out)
    }

    /// Writes every file into `dir` (created if missing).
    pub fn write_to_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ReftError::io(dir, e))?;
        for (name, bytes) in &self.files {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| ReftError::io(&p, e))?;
        }
        Ok(())
    }
}

impl FromIterator<(String, Vec<u8>)> for FileMap {
    fn from_iter<I: IntoIterator<Item = (String, Vec<u8>)>>(iter: I) -> Self {
        Self { files: iter.into_iter().collect() }
    }
}

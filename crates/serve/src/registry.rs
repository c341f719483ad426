//! The models a server holds, loaded once at start and shared by every request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use appraise::io::pricer::Pricer;
use appraise::{Error, Result};

/// The file name models are saved under (`runs/<name>/model.appraise`).
pub const MODEL_FILE: &str = appraise::io::artifact::FILE_NAME;

/// Models by name.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    models: BTreeMap<String, Arc<Pricer>>,
}

/// Whether `name` may name a model: letters, digits, `.`, `_`, `-`, not starting with a
/// dot, so it is one URL path segment and never a path out of a folder.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The name a model file is served under: its folder's name for `.../<name>/model.appraise`,
/// else the file's stem.
pub fn name_of(path: &Path) -> Option<String> {
    let is_default = path.file_name().is_some_and(|f| f == MODEL_FILE);
    let name = if is_default {
        path.parent()
            .and_then(|p| {
                let p = if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                };
                p.canonicalize().ok()
            })
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
    } else {
        path.file_stem().map(|s| s.to_string_lossy().into_owned())
    };
    name.filter(|n| valid_name(n))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a loaded model under `name`; a second model of the same name is an error.
    pub fn insert(&mut self, name: String, pricer: Pricer) -> Result<()> {
        if !valid_name(&name) {
            return Err(Error::Usage(format!(
                "{name:?} cannot name a model: use letters, digits, '.', '_' and '-' only"
            )));
        }
        if self.models.contains_key(&name) {
            return Err(Error::Usage(format!(
                "two models are named {name:?}; give each model its own folder name"
            )));
        }
        self.models.insert(name, Arc::new(pricer));
        Ok(())
    }

    /// Loads the model file at `path`, named by [`name_of`].
    pub fn add_file(&mut self, path: &Path) -> Result<String> {
        let name = name_of(path).ok_or_else(|| Error::Input {
            path: path.to_path_buf(),
            message: "cannot name a model after this path: its folder (or file) name must use \
                      letters, digits, '.', '_' and '-' only"
                .into(),
        })?;
        self.insert(name.clone(), Pricer::load(path)?)?;
        Ok(name)
    }

    /// Loads every `model.appraise` under `dir` (any depth), each named by its folder.
    /// Folders and links that resolve outside `dir` are refused, so no name can reach a
    /// file outside it.
    pub fn add_folder(&mut self, dir: &Path) -> Result<Vec<String>> {
        let root = dir.canonicalize().map_err(|e| {
            Error::reading(dir, e, "folder not found; `models` takes a folder of runs")
        })?;
        if !root.is_dir() {
            return Err(Error::Input {
                path: dir.to_path_buf(),
                message:
                    "is not a folder; `models` takes a folder of runs (`model` takes one file)"
                        .into(),
            });
        }
        let mut found = Vec::new();
        find_models(&root, &root, &mut found, 0)?;
        found.sort();
        if found.is_empty() {
            return Err(Error::Input {
                path: dir.to_path_buf(),
                message: format!(
                    "holds no {MODEL_FILE} (the run folder of `appraise train` holds one)"
                ),
            });
        }
        found.into_iter().map(|p| self.add_file(&p)).collect()
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Pricer>> {
        self.models.get(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    /// Every model, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Pricer>)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

fn find_models(root: &Path, dir: &Path, found: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > 8 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        // A link may point anywhere: follow it only if it stays inside the folder.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            return Err(Error::Input {
                path,
                message: format!(
                    "resolves to {}, outside the models folder {}; refusing to serve it",
                    real.display(),
                    root.display()
                ),
            });
        }
        if real.is_dir() {
            find_models(root, &real, found, depth + 1)?;
        } else if entry.file_name() == MODEL_FILE {
            found.push(real);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_path_segment() {
        assert!(valid_name("best-3"));
        assert!(valid_name("mlp_v1.2"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "a b", "%2e%2e", "a\0b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_link_out_of_the_models_folder_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        let e = Registry::new().add_folder(dir.path()).unwrap_err();
        assert!(e.to_string().contains("outside the models folder"), "{e}");
    }
}

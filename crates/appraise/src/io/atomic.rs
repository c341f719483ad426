//! Atomic file writes: a file is written under a temporary name in its own folder and renamed
//! into place, so a reader (or an interrupted run) never sees half a file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically, replacing any existing file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".appraise-").suffix(".tmp");
    // tempfile creates files readable by the owner only; a normal file respects the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    // No fsync: the rename is what protects readers and interrupted runs; syncing every file
    // would make writing a synthetic dataset of 400,000 photos take minutes.
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    // On error or interruption the temporary file is removed when `file` drops.
    file.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Checks, before any work is done, that `dir` can receive output: it is a folder that exists
/// and is writable, or does not exist yet and its nearest existing parent is such a folder.
/// `what` names the flag in the message.
pub fn check_output_dir(dir: &Path, what: &str) -> Result<()> {
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe = p,
            _ => {
                probe = Path::new(".");
                break;
            }
        }
    }
    if !probe.is_dir() {
        return Err(Error::Input {
            path: probe.to_path_buf(),
            message: format!("is not a folder, so {what} cannot be written there"),
        });
    }
    tempfile::Builder::new()
        .prefix(".appraise-probe-")
        .tempfile_in(probe)
        .map(drop)
        .map_err(|e| Error::Input {
            path: probe.to_path_buf(),
            message: format!("cannot write {what} here ({e}); choose another folder"),
        })
}

/// Like [`check_output_dir`] for a file: its folder must exist already and be writable.
pub fn check_output_file(path: &Path, what: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            message: format!(
                "folder does not exist, so {what} cannot be written there; create it first"
            ),
        });
    }
    if path.is_dir() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: format!("is a folder; {what} must name a file"),
        });
    }
    check_output_dir(dir, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        write(&path, b"first, longer content").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/a.csv");
        let e = write(&path, b"x").unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}

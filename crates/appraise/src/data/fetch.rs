//! Downloading the Houses dataset on first use, as `keras.datasets` and scikit-learn's
//! `fetch_*` do. The archive of the dataset's public repository goes to a temporary file in
//! the cache folder and is unpacked into a temporary folder beside it; its content is checked
//! against a pinned digest and only then renamed into place, so an interrupted or damaged
//! download never leaves a half-made dataset where appraise looks for one.
//!
//! The check is on the unpacked content ([`content_digest`]), not on the archive's bytes:
//! GitHub generates its archives on request and does not promise the same bytes twice, and a
//! mirror may pack the same files differently.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::data::dataset::INFO_FILE;
use crate::error::{Error, Result};
use crate::runtime::cancel::Cancel;
use crate::runtime::observer::Observer;

/// Where the Houses dataset is downloaded from: GitHub's archive of its repository.
pub const DEFAULT_URL: &str =
    "https://github.com/emanhamed/Houses-dataset/archive/refs/heads/master.tar.gz";
/// Environment variable naming another address of the archive (a mirror).
pub const URL_ENV: &str = "APPRAISE_DATA_URL";
/// Environment variable giving the [`content_digest`] a mirror's dataset must have.
pub const SHA256_ENV: &str = "APPRAISE_DATA_SHA256";
/// [`content_digest`] of the `Houses Dataset` folder of the dataset's repository (535 houses,
/// 2,140 photos).
pub const HOUSES_SHA256: &str = "448dbc0a7dff2b53cb47c61c67fcc092442c14547eca0abbf4b3e89c8e01abe3";
/// The dataset's folder, in the repository and in the cache.
pub const FOLDER: &str = "Houses Dataset";

/// Prefix of the temporary folders of a download; one left by a killed run is removed by the
/// next download.
const TEMP_PREFIX: &str = ".houses-partial-";
/// How to get the dataset when downloading fails, for error messages.
const BY_HAND: &str = "or get it by hand: git clone https://github.com/emanhamed/Houses-dataset";

/// Where to download the dataset from and the content it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Address of a `.tar.gz` archive holding a folder with `HousesInfo.txt`.
    pub url: String,
    /// The expected [`content_digest`], 64 lowercase hexadecimal digits.
    pub sha256: String,
}

impl Source {
    /// The dataset's repository on GitHub, with its pinned digest.
    pub fn houses() -> Self {
        Self {
            url: DEFAULT_URL.into(),
            sha256: HOUSES_SHA256.into(),
        }
    }

    /// [`Source::houses`], with the address from [`URL_ENV`] and the digest from
    /// [`SHA256_ENV`] where they are set. A mirror of the same files needs no digest.
    pub fn from_env() -> Result<Self> {
        let mut source = Self::houses();
        if let Some(url) = env_var(URL_ENV)? {
            source.url = url;
        }
        if let Some(digest) = env_var(SHA256_ENV)? {
            source.sha256 = parse_digest(&digest)?;
        }
        Ok(source)
    }
}

/// The value of variable `name`; `None` when unset or blank.
fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::Usage(format!("{name} is not valid UTF-8 text")))
        }
    }
}

/// A SHA-256 digest written in hexadecimal, lowercased.
fn parse_digest(text: &str) -> Result<String> {
    let digest = text.trim().to_ascii_lowercase();
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(digest)
    } else {
        Err(Error::Usage(format!(
            "{SHA256_ENV} must be a SHA-256 digest (64 hexadecimal digits), got '{text}'"
        )))
    }
}

/// Where the downloaded dataset lives under `cache_dir`.
pub fn dataset_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("datasets").join("houses").join(FOLDER)
}

/// The downloaded dataset under `cache_dir`, if it is there. A folder there is always
/// complete: it is renamed into place only once checked.
pub fn cached(cache_dir: &Path) -> Option<PathBuf> {
    let dir = dataset_dir(cache_dir);
    dir.join(INFO_FILE).is_file().then_some(dir)
}

/// Downloads the dataset from `source` into `cache_dir` unless it is there already (or
/// always, with `force`, replacing the old copy only once the new one is checked); returns
/// its folder ([`dataset_dir`]). `observer` hears what is happening and how many bytes have
/// arrived. On any error or when `cancel` is set, nothing new is left in `cache_dir` but an
/// empty folder or two and a lock file.
pub fn fetch(
    cache_dir: &Path,
    source: &Source,
    force: bool,
    cancel: &Cancel,
    observer: &mut dyn Observer,
) -> Result<PathBuf> {
    let root = cache_dir.join("datasets");
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let _lock = lock(&root, observer)?;
    let target = dataset_dir(cache_dir);
    // Another process may have finished the download while this one waited for the lock.
    if !force && target.join(INFO_FILE).is_file() {
        return Ok(target);
    }
    let work = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempdir_in(&root)
        .map_err(|e| Error::io(&root, e))?;
    let archive = work.path().join("archive.tar.gz");
    observer.note(&format!(
        "downloading the Houses dataset from {}",
        source.url
    ));
    download(&source.url, &archive, cancel, observer)?;
    observer.note("unpacking and checking the dataset");
    let unpacked = work.path().join("unpacked");
    unpack(&archive, &unpacked, cancel)?;
    // The archive is not needed any more; free its space before the rename.
    let _ = std::fs::remove_file(&archive);
    let found = find_dataset(&unpacked)?;
    let digest = content_digest(&found, cancel)?;
    if digest != source.sha256 {
        return Err(Error::Download(format!(
            "the dataset downloaded from {} is not the expected one: its content digest is {digest}, \
             expected {}; nothing was kept. The download may be damaged (try again) or the \
             archive holds other files (a mirror of other content needs its digest in {SHA256_ENV})",
            source.url, source.sha256
        )));
    }
    install(&found, &target, work.path())?;
    Ok(target)
}

/// Takes the download lock in `root`, waiting for another process's download to end.
/// Holding it, any temporary folder there is a leftover of a killed run: it is removed.
/// On a file system without locks the download goes on unlocked and leftovers stay.
fn lock(root: &Path, observer: &mut dyn Observer) -> Result<Option<File>> {
    let path = root.join(".houses.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            observer.note("another appraise is downloading the dataset; waiting for it");
            file.lock().map_err(|e| Error::io(&path, e))?;
        }
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            return Ok(None);
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    remove_leftovers(root);
    Ok(Some(file))
}

/// Removes the temporary folders of earlier, killed downloads (best effort).
fn remove_leftovers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Downloads `url` to the file `dest`, reporting the bytes received.
fn download(url: &str, dest: &Path, cancel: &Cancel, observer: &mut dyn Observer) -> Result<()> {
    let failed = |why: String| {
        Error::Download(format!(
            "could not download the Houses dataset from {url}: {why}; nothing was kept. Check \
             the internet connection and try again, set {URL_ENV} to a mirror, {BY_HAND}"
        ))
    };
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled connection fails instead of hanging.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build();
    let response = ureq::Agent::new_with_config(config)
        .get(url)
        .call()
        .map_err(|e| failed(e.to_string()))?;
    let total = response.body().content_length();
    let mut body = response.into_body().into_reader();
    let mut file = File::create(dest).map_err(|e| Error::io(dest, e))?;
    let progress = observer.download(total);
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        cancel.check()?;
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(format!("{e} after {received} bytes"))),
        };
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(dest, e))?;
        received += n as u64;
        progress(received);
    }
    match total {
        Some(total) if received < total => Err(failed(format!(
            "the connection closed after {received} of {total} bytes"
        ))),
        _ => Ok(()),
    }
}

/// An error about the archive itself (not a `.tar.gz`, cut short, unsafe paths).
fn bad_archive(why: impl std::fmt::Display) -> Error {
    Error::Download(format!(
        "the downloaded archive is unusable ({why}); nothing was kept. It may be damaged (try \
         again), or the address ({URL_ENV} if set) does not serve the dataset's .tar.gz"
    ))
}

/// Unpacks the `.tar.gz` `archive` into the new folder `dest`: only folders and regular
/// files, never a path outside `dest`; links and other entries are skipped (the dataset has
/// none, and the digest would miss them).
fn unpack(archive: &Path, dest: &Path, cancel: &Cancel) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut tar = tar::Archive::new(gz);
    std::fs::create_dir(dest).map_err(|e| Error::io(dest, e))?;
    for entry in tar.entries().map_err(bad_archive)? {
        cancel.check()?;
        let mut entry = entry.map_err(bad_archive)?;
        let path = entry.path().map_err(bad_archive)?.into_owned();
        let Some(relative) = contained(&path) else {
            return Err(bad_archive(format!(
                "it holds a path outside its folder, '{}'",
                path.display()
            )));
        };
        let out = dest.join(relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => write_entry(&mut entry, &out)?,
            _ => {}
        }
    }
    Ok(())
}

/// `path` if it stays inside the folder it is unpacked into (no `..`, not absolute), without
/// `.` parts; `None` otherwise.
fn contained(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Copies one archive entry to the file `out`, telling read errors (a damaged archive) from
/// write errors (a full disk).
fn write_entry(entry: &mut impl Read, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut file = File::create(out).map_err(|e| Error::io(out, e))?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = match entry.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad_archive(e)),
        };
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(out, e))?;
    }
}

/// The one folder of the unpacked archive `dir` that holds `HousesInfo.txt`: `dir` itself,
/// a folder in it, or one level deeper (GitHub's archives put the repository in a top
/// folder, `Houses-dataset-master/Houses Dataset`).
fn find_dataset(dir: &Path) -> Result<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..3 {
        let found: Vec<&PathBuf> = level
            .iter()
            .filter(|d| d.join(INFO_FILE).is_file())
            .collect();
        match found.as_slice() {
            [one] => return Ok(one.to_path_buf()),
            [] => {}
            _ => {
                return Err(bad_archive(format!(
                    "it holds {} folders with {INFO_FILE}",
                    found.len()
                )));
            }
        }
        level = subfolders(&level)?;
    }
    Err(bad_archive(format!(
        "it holds no {INFO_FILE} in its top folders"
    )))
}

/// The folders inside each of `dirs`, sorted.
fn subfolders(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if entry.file_type().map_err(|e| Error::io(dir, e))?.is_dir() {
                all.push(entry.path());
            }
        }
    }
    all.sort();
    Ok(all)
}

/// Puts the checked folder `found` at `target`; an old copy there is moved into `work` (and
/// removed with it) only after, and put back if the rename fails.
fn install(found: &Path, target: &Path, work: &Path) -> Result<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let old = work.join("old");
    let replacing = target.exists();
    if replacing {
        std::fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
    }
    std::fs::rename(found, target).map_err(|e| {
        if replacing {
            let _ = std::fs::rename(&old, target);
        }
        Error::io(target, e)
    })
}

/// The SHA-256 digest of a dataset folder's content: of the text that `sha256sum` prints for
/// its files (links left out), sorted by path, one line `<file's SHA-256>  <path relative to
/// dir>` each. File names and bytes count; times and permissions do not. For names without
/// backslashes or line breaks it equals the output of
/// `cd DIR && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`.
pub fn content_digest(dir: &Path, cancel: &Cancel) -> Result<String> {
    let mut files = Vec::new();
    list_files(dir, "", &mut files)?;
    // Byte order of the UTF-8 names, as `LC_ALL=C sort`.
    files.sort();
    let mut manifest = Sha256::new();
    for (relative, path) in &files {
        cancel.check()?;
        manifest.update(format!("{}  {relative}\n", file_digest(path)?));
    }
    Ok(format!("{:x}", manifest.finalize()))
}

/// Appends the regular files under `dir` to `files`, with their paths relative to the
/// top folder (`/`-separated, after `prefix`).
fn list_files(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let relative = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_dir() {
            list_files(&entry.path(), &format!("{relative}/"), files)?;
        } else if kind.is_file() {
            files.push((relative, entry.path()));
        }
    }
    Ok(())
}

/// The SHA-256 of a file's bytes, in hexadecimal.
fn file_digest(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::observer::Silent;

    /// A folder of two files, one in a subfolder, named so that path order differs from
    /// creation order.
    fn small_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), b"bee\n").unwrap();
        std::fs::write(dir.path().join("HousesInfo.txt"), b"1 1 1 1 1\n").unwrap();
        std::fs::write(dir.path().join("a b.jpg"), [0xff, 0xd8, 0x00]).unwrap();
        dir
    }

    #[test]
    fn content_digest_matches_the_documented_command() {
        let dir = small_folder();
        // From `find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`
        // in this folder.
        assert_eq!(
            content_digest(dir.path(), &Cancel::default()).unwrap(),
            "b1cd517d0e22904ad468928b797a851808a173d459a162babc11ea52b7885013"
        );
    }

    #[test]
    fn content_digest_sees_names_and_bytes_only() {
        let dir = small_folder();
        let digest = |d: &Path| content_digest(d, &Cancel::default()).unwrap();
        let before = digest(dir.path());
        // Rewriting the same bytes (a new time) changes nothing.
        std::fs::write(dir.path().join("sub/b.txt"), b"bee\n").unwrap();
        assert_eq!(digest(dir.path()), before);
        std::fs::write(dir.path().join("sub/b.txt"), b"bee!\n").unwrap();
        let changed = digest(dir.path());
        assert_ne!(changed, before);
        std::fs::rename(dir.path().join("sub/b.txt"), dir.path().join("sub/c.txt")).unwrap();
        assert_ne!(digest(dir.path()), changed);
        // An empty folder holds no file, so it does not count.
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::rename(dir.path().join("sub/c.txt"), dir.path().join("sub/b.txt")).unwrap();
        assert_eq!(digest(dir.path()), changed);
    }

    #[test]
    fn digests_are_checked_and_lowercased() {
        let upper = "448DBC0A7DFF2B53CB47C61C67FCC092442C14547ECA0ABBF4B3E89C8E01ABE3";
        assert_eq!(parse_digest(upper).unwrap(), HOUSES_SHA256);
        for bad in ["", "abc", &format!("{HOUSES_SHA256}0"), &"g".repeat(64)] {
            let e = parse_digest(bad).unwrap_err().to_string();
            assert!(
                e.contains(SHA256_ENV) && e.contains("64 hexadecimal"),
                "{e}"
            );
        }
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(
            contained(Path::new("./top/Houses Dataset/1_frontal.jpg")),
            Some(PathBuf::from("top/Houses Dataset/1_frontal.jpg"))
        );
        assert_eq!(contained(Path::new("top/../../etc/passwd")), None);
        assert_eq!(contained(Path::new("/etc/passwd")), None);
    }

    /// A .tar.gz of `entries` (path, bytes), after a pax global header as GitHub writes.
    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        let mut header = tar::Header::new_ustar();
        let comment = b"52 comment=0123456789012345678901234567890123456789\n";
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_size(comment.len() as u64);
        builder
            .append_data(&mut header, "pax_global_header", &comment[..])
            .unwrap();
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacks_files_and_finds_the_dataset_folder() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(
            &archive,
            tar_gz(&[
                ("top/README.md", b"hi"),
                ("top/Houses Dataset/HousesInfo.txt", b"1 1 1 1 1\n"),
                ("top/Houses Dataset/1_frontal.jpg", b"\xff\xd8"),
            ]),
        )
        .unwrap();
        let out = dir.path().join("out");
        unpack(&archive, &out, &Cancel::default()).unwrap();
        assert!(!out.join("pax_global_header").exists());
        let found = find_dataset(&out).unwrap();
        assert_eq!(found, out.join("top/Houses Dataset"));
        assert_eq!(
            std::fs::read(found.join("1_frontal.jpg")).unwrap(),
            b"\xff\xd8"
        );
    }

    #[test]
    fn archives_without_a_dataset_or_cut_short_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, tar_gz(&[("top/readme.txt", b"hi")])).unwrap();
        unpack(&archive, &dir.path().join("out"), &Cancel::default()).unwrap();
        let e = find_dataset(&dir.path().join("out")).unwrap_err();
        assert!(e.to_string().contains("no HousesInfo.txt"), "{e}");
        let whole = tar_gz(&[("HousesInfo.txt", &[b'1'; 5000])]);
        std::fs::write(&archive, &whole[..whole.len() / 2]).unwrap();
        let e = unpack(&archive, &dir.path().join("cut"), &Cancel::default()).unwrap_err();
        assert!(e.to_string().contains("archive is unusable"), "{e}");
    }

    #[test]
    fn a_failed_download_leaves_only_the_lock() {
        let cache = tempfile::tempdir().unwrap();
        // A leftover of a killed run goes too.
        let leftover = cache
            .path()
            .join("datasets")
            .join(format!("{TEMP_PREFIX}x"));
        std::fs::create_dir_all(leftover.join("unpacked")).unwrap();
        let source = Source {
            // Port 9 (discard) on loopback: nothing listens, the connection is refused.
            url: "http://127.0.0.1:9/houses.tar.gz".into(),
            sha256: HOUSES_SHA256.into(),
        };
        let e = fetch(
            cache.path(),
            &source,
            false,
            &Cancel::default(),
            &mut Silent,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("could not download") && e.contains(URL_ENV),
            "{e}"
        );
        let left: Vec<_> = std::fs::read_dir(cache.path().join("datasets"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [".houses.lock"]);
        assert!(cached(cache.path()).is_none());
    }
}

//! `appraise fetch` and the download of the Houses dataset on first use, end to end through
//! the binary, against a small archive in the layout of GitHub's, served over plain HTTP on
//! loopback by a thread of the test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{NO_DOWNLOADS, text, tiny_dataset};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Reply {
    /// The whole archive.
    Whole,
    /// Announces the whole archive's length, sends this many bytes and closes.
    CutAfter(usize),
    /// This many bytes and closes, with no length announced (the end looks normal).
    UnsizedCutAfter(usize),
    /// A few bytes at a time, slowly (to be interrupted).
    Trickle,
    /// This status and no archive.
    Status(u16),
}

/// A server of one archive on loopback: its address and how many requests it has had.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves `body` as `reply` says, from a thread, to every request.
fn serve(body: Vec<u8>, reply: Reply) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/archive/refs/heads/master.tar.gz",
        listener.local_addr().unwrap()
    );
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            // A client that went away is not the test's failure.
            let _ = answer(stream, &body, reply);
        }
    });
    Server { url, requests }
}

/// Reads one request's head and answers it.
fn answer(mut stream: TcpStream, body: &[u8], reply: Reply) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let head = |length: Option<usize>| {
        let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\n{length}Connection: close\r\n\r\n"
        )
    };
    match reply {
        Reply::Whole => {
            stream.write_all(head(Some(body.len())).as_bytes())?;
            stream.write_all(body)
        }
        Reply::CutAfter(n) => {
            stream.write_all(head(Some(body.len())).as_bytes())?;
            stream.write_all(&body[..n])
        }
        Reply::UnsizedCutAfter(n) => {
            stream.write_all(head(None).as_bytes())?;
            stream.write_all(&body[..n])
        }
        Reply::Trickle => {
            stream.write_all(head(Some(body.len())).as_bytes())?;
            for chunk in body.chunks(8) {
                stream.write_all(chunk)?;
                stream.flush()?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
        Reply::Status(code) => stream.write_all(
            format!("HTTP/1.1 {code} Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
    }
}

/// A small dataset in the Houses layout: 60 houses and two photos.
fn small_dataset(dir: &Path) -> PathBuf {
    let data = tiny_dataset(dir, 60);
    let mut photo = Vec::new();
    jpeg_encoder::Encoder::new(&mut photo, 80)
        .encode(&[120u8; 3 * 16 * 16], 16, 16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    std::fs::write(data.join("1_frontal.jpg"), &photo).unwrap();
    std::fs::write(data.join("1_kitchen.jpg"), &photo[..photo.len() - 1]).unwrap();
    data
}

/// A .tar.gz of `dataset` laid out as GitHub's archive of the repository: a pax global header,
/// then `Houses-dataset-master/` with a README and the `Houses Dataset` folder.
fn github_archive(dataset: &Path) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    let comment = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::XGlobalHeader);
    header.set_size(comment.len() as u64);
    builder
        .append_data(&mut header, "pax_global_header", &comment[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(8);
    header.set_mode(0o644);
    builder
        .append_data(
            &mut header,
            "Houses-dataset-master/README.md",
            &b"# Houses"[..],
        )
        .unwrap();
    builder
        .append_dir_all("Houses-dataset-master/Houses Dataset", dataset)
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// The content digest of `dir` by the command the library's documentation gives.
fn digest_by_coreutils(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum")
        .current_dir(dir)
        .output()
        .expect("sh, find, sort, xargs and sha256sum run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)[..64].to_string()
}

/// A temporary folder with the small dataset, its archive and its digest.
struct Fixture {
    dir: tempfile::TempDir,
    dataset: PathBuf,
    archive: Vec<u8>,
    digest: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dataset = small_dataset(&dir.path().join("source"));
        let archive = github_archive(&dataset);
        let digest = digest_by_coreutils(&dataset);
        // Runs happen in an empty folder of their own: no Houses-dataset/ to find there.
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self {
            dir,
            dataset,
            archive,
            digest,
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs `appraise args` in the work folder, downloading from `url` and expecting
    /// `digest`, with no `APPRAISE_DATASET` and no proxy.
    fn run(&self, args: &[&str], url: &str, digest: &str) -> Output {
        self.command(args, url, digest)
            .output()
            .expect("the appraise binary runs")
    }

    fn command(&self, args: &[&str], url: &str, digest: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_appraise"));
        command
            .args(args)
            .current_dir(self.work())
            .env_remove("APPRAISE_DATASET")
            .env("APPRAISE_DATA_URL", url)
            .env("APPRAISE_DATA_SHA256", digest);
        for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"] {
            command.env_remove(proxy);
        }
        command.env_remove("ALL_PROXY").env_remove("all_proxy");
        command
    }
}

/// The names in `cache/datasets`, sorted; empty when it does not exist.
fn datasets_folder(cache: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(cache.join("datasets")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `appraise train` in a few epochs, with `extra` flags.
fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--epochs",
        "3",
        "--min-zip-count",
        "5",
        "--range-folds",
        "0",
    ];
    args.extend(extra);
    args
}

#[test]
fn fetch_downloads_checks_and_train_uses_the_cached_copy() {
    let fx = Fixture::new();
    let server = serve(fx.archive.clone(), Reply::Whole);
    let cache = fx.cache();
    let cache_arg = cache.to_str().unwrap();
    // A leftover of a killed download goes on the next one.
    std::fs::create_dir_all(cache.join("datasets/.houses-partial-old/unpacked")).unwrap();

    let out = fx.run(
        &["fetch", "--cache-dir", cache_arg],
        &server.url,
        &fx.digest,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let landed = cache.join("datasets/houses/Houses Dataset");
    assert_eq!(text(&out.stdout).trim_end(), landed.to_str().unwrap());
    assert!(
        text(&out.stderr).contains(&format!(
            "downloading the Houses dataset from {}",
            server.url
        )),
        "{}",
        text(&out.stderr)
    );
    for file in ["HousesInfo.txt", "1_frontal.jpg", "1_kitchen.jpg"] {
        assert_eq!(
            std::fs::read(landed.join(file)).unwrap(),
            std::fs::read(fx.dataset.join(file)).unwrap(),
            "{file}"
        );
    }
    assert_eq!(std::fs::read_dir(&landed).unwrap().count(), 3);
    assert_eq!(datasets_folder(&cache), [".houses.lock", "houses"]);
    assert_eq!(server.requests(), 1);

    // Once there, it is not downloaded again.
    let again = fx.run(
        &["fetch", "--cache-dir", cache_arg],
        &server.url,
        &fx.digest,
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("in the cache already"));
    assert_eq!(text(&again.stdout), text(&out.stdout));
    assert_eq!(server.requests(), 1);

    // Train finds it with no --dataset, no APPRAISE_DATASET, offline and with downloads
    // pointed nowhere.
    let run = fx.work().join("run");
    let args = train_args(&[
        "--offline",
        "--cache-dir",
        cache_arg,
        "--out",
        run.to_str().unwrap(),
    ]);
    let trained = fx.run(&args, NO_DOWNLOADS, &fx.digest);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    assert!(text(&trained.stdout).contains("[INFO] mean: "));
    assert!(run.join("model.appraise").is_file());

    // --force downloads again and replaces the copy.
    let forced = fx.run(
        &["fetch", "--cache-dir", cache_arg, "--force"],
        &server.url,
        &fx.digest,
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_eq!(server.requests(), 2);
    assert_eq!(datasets_folder(&cache), [".houses.lock", "houses"]);
    assert!(landed.join("HousesInfo.txt").is_file());
}

#[test]
fn train_downloads_the_dataset_on_first_use_into_the_default_cache() {
    let fx = Fixture::new();
    let server = serve(fx.archive.clone(), Reply::Whole);
    let xdg = fx.dir.path().join("xdg");
    let run = fx.work().join("run");
    let args = train_args(&["--out", run.to_str().unwrap()]);
    let out = fx
        .command(&args, &server.url, &fx.digest)
        .env("XDG_CACHE_HOME", &xdg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(server.requests(), 1);
    assert!(
        xdg.join("appraise/datasets/houses/Houses Dataset/HousesInfo.txt")
            .is_file()
    );
    // The download speaks on standard error: standard output is the tutorial's.
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().next(),
        Some("[INFO] loading house attributes...")
    );
    assert!(text(&out.stderr).contains("downloading the Houses dataset"));
    assert!(run.join("model.appraise").is_file());

    // cv and ingest find the same copy.
    let cv = fx
        .command(
            &[
                "cv",
                "--epochs",
                "2",
                "--min-zip-count",
                "5",
                "--repeats",
                "1",
            ],
            NO_DOWNLOADS,
            &fx.digest,
        )
        .env("XDG_CACHE_HOME", &xdg)
        .output()
        .unwrap();
    assert!(cv.status.success(), "{}", text(&cv.stderr));
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_wrong_digest_is_refused_and_nothing_is_kept() {
    let fx = Fixture::new();
    let server = serve(fx.archive.clone(), Reply::Whole);
    let cache = fx.cache();
    let wrong = "0".repeat(64);
    let run = fx.work().join("run");
    let train = train_args(&[
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    for args in [
        &["fetch", "--cache-dir", cache.to_str().unwrap()][..],
        &train,
    ] {
        let out = fx.run(args, &server.url, &wrong);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("is not the expected one")
                && stderr.contains(&fx.digest)
                && stderr.contains("nothing was kept")
                && stderr.contains("APPRAISE_DATA_SHA256"),
            "{stderr}"
        );
        assert_eq!(datasets_folder(&cache), [".houses.lock"]);
        assert!(!run.exists());
    }
    assert_eq!(server.requests(), 2);
}

#[test]
fn a_download_cut_short_or_refused_leaves_nothing() {
    let fx = Fixture::new();
    let half = fx.archive.len() / 2;
    let cases = [
        (Reply::CutAfter(half), "could not download"),
        // Without a length the cut is seen in the archive itself.
        (Reply::UnsizedCutAfter(half), "archive is unusable"),
        (Reply::Status(404), "404"),
    ];
    for (reply, expect) in cases {
        let server = serve(fx.archive.clone(), reply);
        let cache = fx.cache();
        let out = fx.run(
            &["fetch", "--cache-dir", cache.to_str().unwrap()],
            &server.url,
            &fx.digest,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expect) && stderr.contains("nothing was kept"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(datasets_folder(&cache), [".houses.lock"]);
        assert!(text(&out.stdout).is_empty());
    }
}

#[test]
fn ctrl_c_during_a_download_leaves_nothing() {
    let fx = Fixture::new();
    let server = serve(fx.archive.clone(), Reply::Trickle);
    let cache = fx.cache();
    let child = fx
        .command(
            &["fetch", "--cache-dir", cache.to_str().unwrap()],
            &server.url,
            &fx.digest,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some of the archive has arrived in the temporary folder.
    let start = Instant::now();
    let arrived = || {
        datasets_folder(&cache)
            .iter()
            .filter(|n| n.starts_with(".houses-partial-"))
            .any(|n| {
                std::fs::metadata(cache.join("datasets").join(n).join("archive.tar.gz"))
                    .is_ok_and(|m| m.len() > 0)
            })
    };
    while !arrived() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no download began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(datasets_folder(&cache), [".houses.lock"]);
}

#[test]
fn offline_and_named_folders_never_download() {
    let fx = Fixture::new();
    let server = serve(fx.archive.clone(), Reply::Whole);
    let cache = fx.cache();
    let cache_arg = cache.to_str().unwrap();
    let offline = fx.run(
        &train_args(&["--offline", "--cache-dir", cache_arg]),
        &server.url,
        &fx.digest,
    );
    let stderr = text(&offline.stderr);
    assert_eq!(offline.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--offline forbids downloading")
            && stderr.contains("appraise fetch")
            && stderr.contains("--dataset"),
        "{stderr}"
    );
    // A folder the user named and that is missing is an error, not a reason to download.
    let named = fx.run(
        &train_args(&["--dataset", "nowhere", "--cache-dir", cache_arg]),
        &server.url,
        &fx.digest,
    );
    assert_eq!(named.status.code(), Some(2));
    assert!(text(&named.stderr).contains("does not exist"));
    let from_env = fx
        .command(
            &train_args(&["--cache-dir", cache_arg]),
            &server.url,
            &fx.digest,
        )
        .env("APPRAISE_DATASET", "nowhere")
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(2));
    assert!(text(&from_env.stderr).contains("(from APPRAISE_DATASET) does not exist"));
    // evaluate never downloads either (the dataset it was trained on is gone).
    let (_dir, data, run) = common::trained_model();
    std::fs::remove_dir_all(&data).unwrap();
    let model = run.join("model.appraise");
    let evaluate = fx.run(
        &[
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--cache-dir",
            cache_arg,
        ],
        &server.url,
        &fx.digest,
    );
    assert_eq!(evaluate.status.code(), Some(2));
    assert!(text(&evaluate.stderr).contains("appraise fetch"));
    // A malformed digest is refused before anything is fetched.
    let bad = fx.run(&["fetch", "--cache-dir", cache_arg], &server.url, "xyz");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("APPRAISE_DATA_SHA256 must be a SHA-256 digest"));
    assert_eq!(server.requests(), 0);
    assert!(!cache.exists());
}

#[test]
fn the_real_dataset_matches_the_pinned_digest() {
    let Some(dir) = std::env::var_os("APPRAISE_DATASET") else {
        eprintln!("APPRAISE_DATASET is not set: skipping the real dataset's digest");
        return;
    };
    let digest = appraise::data::fetch::content_digest(
        Path::new(&dir),
        &appraise::runtime::cancel::Cancel::default(),
    )
    .unwrap();
    assert_eq!(digest, appraise::data::fetch::HOUSES_SHA256);
}

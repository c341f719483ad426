//! A running `appraise serve` for the server's end-to-end tests, and the models it serves.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{appraise, text, trained_model};

/// A server process; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `appraise serve ARGS --addr 127.0.0.1:0` in `cwd` and waits until it listens.
    pub fn start(args: &[&str], cwd: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_appraise"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .current_dir(cwd)
            .env_remove("APPRAISE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the appraise binary runs");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(addr) = first.trim().strip_prefix("appraise serve: listening on ") else {
            let _ = child.kill();
            let err = stderr.join().unwrap();
            panic!("the server did not start: {first:?}\n{err}");
        };
        let base = addr.to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        Server {
            child,
            base,
            stderr: Some(stderr),
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The host:port it listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Stops it with SIGTERM; returns whether it exited with success, and its log.
    pub fn terminate(self) -> (bool, String) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait_exit()
    }

    /// Waits (up to 10 s) for it to exit; returns whether it exited with success, and its log.
    pub fn wait_exit(mut self) -> (bool, String) {
        let mut waited = 0;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if waited > 200 {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
            waited += 1;
        };
        let ok = status.is_some_and(|s| s.success());
        if status.is_none() {
            let _ = self.child.kill();
        }
        let log = self.stderr.take().unwrap().join().unwrap();
        (ok, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns 4xx and 5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The status and body of an answer.
pub fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut r = r.expect("the server answers");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (status, body)
}

/// GET `url`.
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    answer(agent.get(url).call())
}

/// POST `body` (JSON) to `url`.
pub fn post(agent: &ureq::Agent, url: &str, body: &str) -> (u16, String) {
    answer(
        agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body),
    )
}

/// Parses a JSON answer.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A small table of listings (numbers, a category, a missing cell), written to `dir`.
pub fn listings_csv(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from("id,beds,sqft,type,city,price\n");
    let types = ["house", "condo", "townhouse"];
    let cities = ["Alpha", "Beta", "Gamma", "Delta"];
    for i in 0..n {
        let beds = 1 + i % 5;
        let sqft = 600 + (i * 37) % 2400;
        let kind = types[i % 3];
        let city = cities[(i / 3) % 4];
        let factor = match city {
            "Alpha" => 1.0,
            "Beta" => 1.3,
            "Gamma" => 0.8,
            _ => 1.1,
        } * if kind == "condo" { 0.85 } else { 1.0 };
        let price = (40_000.0 + 180.0 * sqft as f64 + 9_000.0 * beds as f64) * factor;
        let sqft = if i % 17 == 5 {
            String::new()
        } else {
            sqft.to_string()
        };
        csv.push_str(&format!("{i},{beds},{sqft},{kind},{city},{price:.0}\n"));
    }
    let path = dir.join("listings.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// A folder `models/` in `dir` holding two trained models: `houses` (the tutorial MLP on a
/// small dataset in the Houses layout) and `listings` (the tutorial MLP on a table).
pub fn models_folder(dir: &Path) -> PathBuf {
    let (_tmp, _data, run) = trained_model();
    let models = dir.join("models");
    std::fs::create_dir_all(models.join("houses")).unwrap();
    std::fs::copy(
        run.join("model.appraise"),
        models.join("houses/model.appraise"),
    )
    .unwrap();
    let table = listings_csv(dir, 240);
    let out = models.join("listings");
    let result = appraise(
        &[
            "train",
            "--data",
            table.to_str().unwrap(),
            "--target",
            "price",
            "--epochs",
            "30",
            "--out",
            out.to_str().unwrap(),
        ],
        dir,
    );
    assert!(result.status.success(), "{}", text(&result.stderr));
    // Only the model files: the runs' plots and metrics stay behind.
    for run in ["listings"] {
        for entry in std::fs::read_dir(models.join(run)).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() != "model.appraise" {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).unwrap();
                } else {
                    std::fs::remove_file(&path).unwrap();
                }
            }
        }
    }
    models
}

/// Trains a photo model (`--model photos-pretrained`) on 40 synthetic houses with photos in
/// `dir/data`, saved as `dir/photos-only/model.appraise`; returns the price `appraise predict
/// --photos` gives house 1 (photos `dir/data/1_{room}.jpg`).
pub fn photo_model(dir: &Path) -> f64 {
    let made = appraise(
        &["synth", "--houses", "40", "--photos", "--out", "data"],
        dir,
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let trained = appraise(
        &[
            "train",
            "--dataset",
            "data",
            "--min-zip-count",
            "1",
            "--model",
            "photos-pretrained",
            "--cache-dir",
            "cache",
            "--out",
            "photos-only",
        ],
        dir,
    );
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let priced = appraise(
        &[
            "predict",
            "--model",
            "photos-only/model.appraise",
            "--input",
            "data/HousesInfo.txt",
            "--photos",
            "data",
        ],
        dir,
    );
    assert!(priced.status.success(), "{}", text(&priced.stderr));
    let csv = text(&priced.stdout);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "predicted_price").unwrap();
    csv.lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(at)
        .unwrap()
        .parse()
        .unwrap()
}

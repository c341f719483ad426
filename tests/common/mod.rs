//! Helpers shared by the end-to-end test binaries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where tests that might download the dataset send the request: nothing listens on port 9
/// of loopback, so no test reaches the internet or fills a real cache.
pub const NO_DOWNLOADS: &str = "http://127.0.0.1:9/no-downloads-in-tests.tar.gz";

/// Runs the `appraise` binary in `cwd` (without `APPRAISE_DATASET`, and with downloads sent to
/// [`NO_DOWNLOADS`]).
pub fn appraise(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args(args)
        .current_dir(cwd)
        .env_remove("APPRAISE_DATASET")
        .env("APPRAISE_DATA_URL", NO_DOWNLOADS)
        .output()
        .expect("the appraise binary runs")
}

/// `appraise predict --model MODEL --input INPUT` in `cwd`.
pub fn predict_run(model: &Path, input: &Path, cwd: &Path) -> Output {
    appraise(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
        cwd,
    )
}

/// Bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a small dataset in the Houses layout: `n` houses in three zip codes (one rare),
/// prices following a simple rule so training has something to learn.
pub fn tiny_dataset(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut lines = String::new();
    for i in 0..n {
        let zip = match i % 7 {
            0..=3 => 92276,
            4..=5 => 85255,
            _ if i < 14 => 11111, // rare: dropped by --min-zip-count 5
            _ => 92276,
        };
        let bedrooms = 2 + i % 4;
        let bathrooms = 1.0 + (i % 3) as f64 * 0.5;
        let area = 1000 + 97 * (i % 23);
        let price = 50_000.0 + 150.0 * area as f64 + if zip == 85255 { 100_000.0 } else { 0.0 };
        // Mixed separators and CRLF, as real files have.
        lines.push_str(&format!(
            "{bedrooms}  {bathrooms} {area}\t{zip} {price}\r\n"
        ));
    }
    std::fs::write(data.join("HousesInfo.txt"), lines).unwrap();
    data
}

/// Trains a small model on a generated dataset; returns (temp dir, dataset dir, run dir).
pub fn trained_model() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 60);
    let run = dir.path().join("run");
    let args = [
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--epochs",
        "20",
        "--min-zip-count",
        "5",
        "--out",
        run.to_str().unwrap(),
    ];
    let result = appraise(&args, dir.path());
    assert!(result.status.success(), "{}", text(&result.stderr));
    (dir, data, run)
}

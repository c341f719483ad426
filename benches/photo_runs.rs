//! Benchmark of the full Part 2 (CNN) and Part 3 (mixed) runs, process start to exit, as a
//! user runs them: `appraise train --model cnn|mixed` on the real dataset (200 epochs), with the
//! photo cache warm (a first, untimed ingest fills it).
//!
//! Run with `cargo bench --bench photo_runs [cnn|mixed]` and `APPRAISE_DATASET` set. Each run
//! takes minutes; reports wall time, the test MAPE and the peak resident memory of each run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_appraise"));
    let out = tempfile::tempdir().expect("temporary folder");
    let cache = out.path().join("cache");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let ingest = Command::new(&exe)
        .arg("ingest")
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .expect("run appraise");
    assert!(
        ingest.status.success(),
        "appraise ingest failed; set APPRAISE_DATASET to the Houses Dataset folder: {}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    for model in ["cnn", "mixed"] {
        if filter.as_deref().is_some_and(|f| f != model) {
            continue;
        }
        let start = Instant::now();
        let output = Command::new(&exe)
            .args(["train", "--quiet", "--model", model, "--cache-dir"])
            .arg(&cache)
            .arg("--out")
            .arg(out.path().join(model))
            .output()
            .expect("run appraise");
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!(
            "{model} full run (appraise train --model {model}, 200 epochs): {elapsed:.1} s, {}",
            stdout.lines().last().unwrap_or_default()
        );
    }
    println!(
        "  peak memory (max RSS of any run): {:.1} MiB",
        peak_rss_mib()
    );
}

//! Photo ingest on the real dataset: all 535 houses (2,140 photos) embedded by the pretrained
//! network into the photo cache, cold (no cache), filling the cache, and from the cache.
//! Run with `cargo bench --bench ingest` and `APPRAISE_DATASET` set.

use std::process::Command;
use std::time::Instant;

fn run(args: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args(args)
        .output()
        .expect("run appraise");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn main() {
    let cache = tempfile::tempdir().expect("temporary folder");
    let cache = cache.path().to_str().unwrap();
    let base = ["ingest", "--min-zip-count", "0"];
    let cold: Vec<f64> = (0..3)
        .map(|_| run(&[&base[..], &["--no-cache"]].concat()))
        .collect();
    let fill = run(&[&base[..], &["--cache-dir", cache]].concat());
    let cached: Vec<f64> = (0..5)
        .map(|_| run(&[&base[..], &["--cache-dir", cache]].concat()))
        .collect();
    println!("ingest (embedding) of 2,140 photos, whole process:");
    println!("  cold (--no-cache): {cold:.3?} s");
    println!("  cold, writing the cache: {fill:.3} s");
    println!("  from the cache: {cached:.3?} s");
}

//! Photo ingest on the real dataset: all 535 houses (2,140 photos) decoded into montages,
//! cold (no cache) and from the cache; then the recipe's photo input, the pretrained
//! network's manufactured-home score of all 535 frontal photos. Run with
//! `cargo bench --bench ingest` and `APPRAISE_DATASET` set.

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
    println!("ingest of 2,140 photos, whole process:");
    println!("  cold (--no-cache): {cold:.3?} s");
    println!("  cold, writing the cache: {fill:.3} s");
    println!("  from the cache: {cached:.3?} s");

    // The pretrained photo features: one EfficientNet-Lite0 pass per photo, in-process.
    let dir = std::path::PathBuf::from(
        std::env::var_os("APPRAISE_DATASET").expect("APPRAISE_DATASET names the dataset"),
    );
    let ids: Vec<usize> = (1..=535).collect();
    let backbone = appraise::photos::extractor::Backbone::default();
    appraise::photos::extractor::featurize(
        backbone,
        &dir,
        &ids[..1],
        &|_| {},
        &appraise::runtime::cancel::Cancel::default(),
    )
    .expect("featurize one house");
    let start = Instant::now();
    appraise::photos::extractor::featurize(
        backbone,
        &dir,
        &ids,
        &|_| {},
        &appraise::runtime::cancel::Cancel::default(),
    )
    .expect("featurize the photos");
    let cold = start.elapsed().as_secs_f64();
    let cache = tempfile::tempdir().expect("a temporary folder");
    appraise::photos::extractor::featurize_cached(
        backbone,
        &dir,
        &ids,
        Some(cache.path()),
        &|_| {},
        &|_| {},
        &appraise::runtime::cancel::Cancel::default(),
    )
    .expect("fill the feature cache");
    let cached: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            appraise::photos::extractor::featurize_cached(
                backbone,
                &dir,
                &ids,
                Some(cache.path()),
                &|_| {},
                &|_| {},
                &appraise::runtime::cancel::Cancel::default(),
            )
            .expect("read the feature cache");
            start.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "EfficientNet-Lite0 features of all 2,140 photos (decode + network), in-process: cold {cold:.2} s \
         ({:.1} ms per photo), from the cache {cached:.3?} s",
        cold / 2140.0 * 1000.0
    );
}

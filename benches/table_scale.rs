//! A user's table at scale: synthetic tables of 10k, 100k and 1M rows x 32 columns (20
//! numbers, 10 categories up to 500 levels, some cells missing; `appraise synth --table`),
//! then `appraise train --data T --epochs 1` (load, schema, encoding, one tutorial epoch at
//! batch 8, scoring), once with `--range-folds 0` and once with the default 5-fold pass
//! that calibrates the price ranges, and `appraise predict --input T` of every row, with
//! `--interval none` and with the default 80% ranges (and their out-of-distribution flags),
//! end to end, with the peak memory of each.
//!
//! Run with `cargo bench --bench table_scale`.

use std::process::Command;
use std::time::Instant;

fn run(exe: &str, args: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(exe).args(args).output().expect("run appraise");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn peak_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    let exe = env!("CARGO_BIN_EXE_appraise");
    let dir = tempfile::tempdir().expect("temporary folder");
    println!(
        "{:>10} {:>14} {:>14} {:>10} {:>14} {:>14} {:>10}",
        "rows",
        "train, no (s)",
        "train, ranges",
        "peak MiB",
        "predict, none",
        "predict, 80%",
        "peak MiB"
    );
    // Increasing sizes: getrusage reports the largest child so far, i.e. this size's.
    for n in [10_000usize, 100_000, 1_000_000] {
        let table = dir.path().join(format!("table{n}.csv"));
        let table = table.to_str().unwrap();
        run(
            exe,
            &[
                "synth",
                "--table",
                "--houses",
                &n.to_string(),
                "--out",
                table,
            ],
        );
        // One epoch without ranges, then with the default 5-fold calibration pass.
        let bare = dir.path().join(format!("bare{n}"));
        let train_bare = run(
            exe,
            &[
                "train",
                "--data",
                table,
                "--epochs",
                "1",
                "--range-folds",
                "0",
                "--quiet",
                "--out",
                bare.to_str().unwrap(),
            ],
        );
        let out = dir.path().join(format!("run{n}"));
        let out = out.to_str().unwrap();
        let train = run(
            exe,
            &[
                "train", "--data", table, "--epochs", "1", "--quiet", "--out", out,
            ],
        );
        let train_peak = peak_mib();
        let model = format!("{out}/model.appraise");
        let prices = dir.path().join(format!("prices{n}.csv"));
        let predict = |interval: &str| {
            run(
                exe,
                &[
                    "predict",
                    "--model",
                    &model,
                    "--input",
                    table,
                    "--interval",
                    interval,
                    "--output",
                    prices.to_str().unwrap(),
                ],
            )
        };
        let (plain, ranged) = (predict("none"), predict("0.8"));
        println!(
            "{n:>10} {train_bare:>14.2} {train:>14.2} {train_peak:>10.0} {plain:>14.2} {ranged:>14.2} {:>10.0}",
            peak_mib()
        );
    }
}

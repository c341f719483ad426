//! Scaling of the attribute model with the number of houses: synthetic datasets of 10k, 100k
//! and 1M houses (`appraise synth`), `appraise train --batch-size 256`, one and three epochs.
//! Time per epoch = (time for 3 epochs - time for 1) / 2; peak memory of the 3-epoch process.
//!
//! Run with `cargo bench --bench scaling`.

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
        "{:>10} {:>14} {:>14} {:>14} {:>12}",
        "houses", "1 epoch (s)", "3 epochs (s)", "per epoch (s)", "peak MiB"
    );
    // Increasing sizes: getrusage reports the largest child so far, i.e. this size's.
    for n in [10_000usize, 100_000, 1_000_000] {
        let data = dir.path().join(format!("synth{n}"));
        let data = data.to_str().unwrap();
        run(exe, &["synth", "--houses", &n.to_string(), "--out", data]);
        let train = |epochs: &str, out: &str| {
            let out = dir.path().join(out);
            run(
                exe,
                &[
                    "train",
                    "--dataset",
                    data,
                    "--min-zip-count",
                    "1",
                    "--batch-size",
                    "256",
                    "--epochs",
                    epochs,
                    "--quiet",
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
        };
        let one = train("1", &format!("one{n}"));
        let three = train("3", &format!("three{n}"));
        println!(
            "{n:>10} {one:>14.3} {three:>14.3} {:>14.3} {:>12.0}",
            (three - one) / 2.0,
            peak_mib()
        );
    }
}

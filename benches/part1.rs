//! Benchmark of the full Part 1 run, process start to exit, as a user runs it:
//! `appraise train` on the real dataset (load, 200 epochs, evaluation, outputs).
//!
//! Run with `cargo bench --bench part1` and `APPRAISE_DATASET` set (or the dataset under
//! `Houses-dataset/Houses Dataset`). Reports wall time per run and the peak resident memory
//! of any run (getrusage of the waited children).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 5;

fn main() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_appraise"));
    let out = tempfile::tempdir().expect("temporary folder");
    let mut times = Vec::new();
    for run in 0..RUNS {
        let start = Instant::now();
        let output = Command::new(&exe)
            .args(["train", "--out"])
            .arg(out.path().join(format!("run{run}")))
            .output()
            .expect("run appraise");
        let elapsed = start.elapsed().as_secs_f64();
        if !output.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
            panic!("appraise train failed; set APPRAISE_DATASET to the Houses Dataset folder");
        }
        times.push(elapsed);
    }
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("part1 full run (appraise train, 200 epochs), {RUNS} runs");
    println!(
        "  wall: min {:.3} s, median {:.3} s, mean {:.3} s, max {:.3} s",
        times[0],
        times[RUNS / 2],
        mean,
        times[RUNS - 1]
    );
    println!(
        "  peak memory (max RSS of any run): {:.1} MiB",
        usage.ru_maxrss as f64 / 1024.0
    );
}

//! Benchmark of prediction with a saved attribute model:
//! - one house through the CLI, process start to printed price;
//! - 1,000,000 houses in process (a table model, as `train` writes), counted from parsed input;
//! - the whole 1M-row CSV in to CSV out through the CLI.
//!
//! Run with `cargo bench --bench predict` and `APPRAISE_DATASET` set (the model is trained on
//! the real dataset first, 200 epochs).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use appraise::data::table::Frame;
use appraise::io::artifact::load;

const HOUSES: usize = 1_000_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dataset = std::env::var_os("APPRAISE_DATASET")
        .expect("set APPRAISE_DATASET to the Houses Dataset folder");
    let dir = tempfile::tempdir().expect("temporary folder");
    let exe = env!("CARGO_BIN_EXE_appraise");
    let run = dir.path().join("run");
    let status = Command::new(exe)
        .args(["train", "--quiet", "--dataset"])
        .arg(Path::new(&dataset))
        .arg("--out")
        .arg(&run)
        .status()
        .expect("run appraise train");
    assert!(status.success(), "training");
    let model_path = run.join("model.appraise");
    let model = load(&model_path).expect("load");

    // One house, 20 processes.
    let mut one = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let out = Command::new(exe)
            .args(["predict", "--model"])
            .arg(&model_path)
            .args([
                "--bedrooms",
                "4",
                "--bathrooms",
                "3",
                "--area",
                "3343",
                "--zipcode",
                "92276",
            ])
            .output()
            .expect("run appraise");
        one.push(start.elapsed().as_secs_f64());
        assert!(out.status.success());
    }
    println!(
        "predict one house (process start to printed price): median {:.1} ms",
        median(one) * 1e3
    );

    // A 1M-row CSV over the model's zip codes and ranges.
    let zips: Vec<String> = model
        .schema
        .columns
        .iter()
        .find(|c| c.name == "zipcode")
        .and_then(|c| c.levels.clone())
        .expect("the zip codes' levels");
    let mut csv = String::from("id,bedrooms,bathrooms,area,zipcode\n");
    for i in 0..HOUSES {
        csv += &format!(
            "{i},{},{},{},{}\n",
            1 + i % 6,
            1.0 + (i % 7) as f64 * 0.5,
            800 + (i * 37) % 5000,
            zips[i % zips.len()]
        );
    }
    let input = dir.path().join("houses.csv");
    std::fs::write(&input, &csv).expect("write input");

    let start = Instant::now();
    let frame = Frame::read(&input).expect("parse");
    let parse_s = start.elapsed().as_secs_f64();
    let rows: Vec<usize> = (0..frame.rows()).collect();
    let mut predict_s = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (prices, _) = model.predict(&frame, &rows).expect("predict");
        predict_s.push(start.elapsed().as_secs_f64());
        assert_eq!(prices.len(), HOUSES);
    }
    let predict_s = median(predict_s);
    println!(
        "in process, {HOUSES} houses: parse {parse_s:.3} s, predict {predict_s:.3} s ({:.2} M houses/s from parsed input)",
        HOUSES as f64 / predict_s / 1e6
    );

    let mut whole = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = Command::new(exe)
            .args(["predict", "--model"])
            .arg(&model_path)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(dir.path().join("prices.csv"))
            .output()
            .expect("run appraise");
        whole.push(start.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    println!(
        "CLI, {HOUSES}-row CSV in to CSV out: median {:.3} s; peak memory {:.0} MiB",
        median(whole),
        usage.ru_maxrss as f64 / 1024.0
    );
}

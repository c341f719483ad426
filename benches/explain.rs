//! Benchmark of `predict --explain` (issue 36's targets), in process:
//! - one house, the recipe with photos (photo features cached) and without: the price alone,
//!   and the price with its explanation (median of 20);
//! - 10,000 houses explained, the attribute recipe;
//! - one house through the server's pricer (`Pricer::explain`, what a request with
//!   `"explain": true` runs), attribute recipe (median of 50).
//!
//! Run with `cargo bench --bench explain` and `APPRAISE_DATASET` set (trains both recipes on
//! the real dataset first; the photo features go to the usual cache folder).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use appraise::explain::{DEFAULT_COMPS, explain};
use appraise::fit::tabular::TableModel;
use appraise::io::artifact::load;
use appraise::io::pricer::{Pricer, Value};

// The allocator of the `appraise` binary, whose work this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn train(dataset: &Path, out: &Path, flags: &[&str]) -> TableModel {
    let status = Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args(["train", "--quiet", "--recipe", "best", "--dataset"])
        .arg(dataset)
        .args(flags)
        .arg("--out")
        .arg(out)
        .status()
        .expect("run appraise train");
    assert!(status.success(), "training");
    load(&out.join("model.appraise")).expect("load")
}

/// Milliseconds of the price of one house, alone and explained (medians of 20).
fn one_house(model: &TableModel) -> (f64, f64) {
    let source = &model.info.source;
    let frame = source.read(Path::new(&model.info.data)).expect("dataset");
    let rows = [0];
    let (prices, _) = model.predict(&frame, &rows).expect("price");
    let mut alone = Vec::new();
    let mut explained = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let (p, _) = model.predict(&frame, &rows).expect("price");
        alone.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let (p2, _) = model.predict(&frame, &rows).expect("price");
        let e = explain(model, &frame, &rows, &p2, DEFAULT_COMPS).expect("explain");
        explained.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!((p, e.len()), (prices.clone(), 1));
    }
    (median(alone), median(explained))
}

fn main() {
    let dataset = std::env::var_os("APPRAISE_DATASET")
        .expect("set APPRAISE_DATASET to the Houses Dataset folder");
    let dataset = Path::new(&dataset);
    let dir = tempfile::tempdir().expect("temporary folder");
    let attributes = train(dataset, &dir.path().join("a"), &["--recipe-photos", "off"]);
    let photos = train(dataset, &dir.path().join("p"), &["--recipe-photos", "on"]);
    for (name, model) in [("attributes", &attributes), ("photos", &photos)] {
        let (alone, explained) = one_house(model);
        println!(
            "one house, recipe with {name}: price {alone:.1} ms, price + explanation {explained:.1} ms \
             ({:.1} ms on top)",
            explained - alone
        );
    }

    // 10,000 houses: the dataset's houses over and over.
    let frame = attributes
        .info
        .source
        .read(Path::new(&attributes.info.data))
        .expect("dataset");
    let rows: Vec<usize> = (0..10_000).map(|i| i % frame.rows()).collect();
    let (prices, _) = attributes.predict(&frame, &rows).expect("price");
    let start = Instant::now();
    let e = explain(&attributes, &frame, &rows, &prices, DEFAULT_COMPS).expect("explain");
    println!(
        "10,000 houses explained, attribute recipe: {:.2} s ({} exact)",
        start.elapsed().as_secs_f64(),
        e.iter().filter(|e| e.method == "exact").count()
    );

    // One request's work in the server.
    let pricer = Pricer::new(attributes);
    let house: Vec<Value> = pricer
        .fields()
        .iter()
        .map(|f| match f.name.as_str() {
            "zipcode" => Value::Text("92276".into()),
            "bedrooms" => Value::Number(4.0),
            "bathrooms" => Value::Number(3.0),
            "area" => Value::Number(3343.0),
            _ => Value::Missing,
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let q = pricer
            .explain(std::slice::from_ref(&house), 0.8, Some(DEFAULT_COMPS))
            .expect("explain");
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(q.quotes[0].explanation.is_some());
    }
    println!(
        "the server's pricer, one house explained, attribute recipe: p50 {:.1} ms",
        median(times)
    );
}

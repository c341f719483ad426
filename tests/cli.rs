//! End-to-end tests through the `appraise` binary: a tiny dataset the tests write themselves,
//! saved models, and (when `APPRAISE_DATASET` is set) the real Houses dataset.

mod common;

use std::path::{Path, PathBuf};

use common::{appraise, text, tiny_dataset, trained_model};

#[test]
fn trains_on_a_tiny_dataset_and_writes_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 60);
    let out = dir.path().join("run");
    let args = [
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--epochs",
        "3",
        "--min-zip-count",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    let result = appraise(&args, dir.path());
    let stdout = text(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        text(&result.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "[INFO] loading house attributes...");
    assert_eq!(lines[1], "[INFO] constructing training/testing split...");
    assert_eq!(lines[2], "[INFO] processing data...");
    assert_eq!(lines[3], "[INFO] training model...");
    // Keras's model.summary() comes before the first epoch.
    let first_epoch = lines.iter().position(|l| l.starts_with("Epoch ")).unwrap();
    let summary = lines[4..first_epoch].join("\n");
    assert!(summary.starts_with("Model: \"mlp\""), "{summary}");
    assert!(
        summary.contains("(None, 8)") && summary.contains("Total params: "),
        "{summary}"
    );
    let lines = &lines[first_epoch - 4..];
    for (k, line) in lines[4..7].iter().enumerate() {
        assert!(line.starts_with(&format!("Epoch {}/3 ", k + 1)), "{line}");
        assert!(
            line.contains(" loss: ") && line.contains(" - val_loss: "),
            "{line}"
        );
    }
    // The price ranges' calibration pass: one more network per fold.
    assert_eq!(
        lines[7],
        "[INFO] calibrating price ranges: 5-fold pass over the training houses (5 more networks)"
    );
    assert_eq!(lines[8], "[INFO] predicting house prices...");
    assert!(
        lines[9].starts_with("[INFO] median: ") && lines[9].contains(", R^2: "),
        "{}",
        lines[9]
    );
    for (line, level) in lines[10..12].iter().zip(["80", "90"]) {
        assert!(
            line.starts_with(&format!("[INFO] {level}% price range: covers ")),
            "{line}"
        );
    }
    assert!(
        lines[12].starts_with("[INFO] avg. house price: $"),
        "{}",
        lines[12]
    );
    assert!(lines[13].starts_with("[INFO] mean: ") && lines[13].ends_with('%'));
    assert_eq!(lines.len(), 14);
    // Piped output carries no terminal escape codes.
    assert!(!stdout.contains('\x1b') && !text(&result.stderr).contains('\x1b'));

    // 58 houses survive the filter (two of zip 11111 are dropped): 15 test, 43 train.
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let rows: Vec<&str> = predictions.lines().collect();
    assert_eq!(rows[0], "house,price,predicted,abs_pct_error");
    assert_eq!(rows.len(), 1 + 15);
    for row in &rows[1..] {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), 4);
        let house: usize = fields[0].parse().unwrap();
        assert!((1..=60).contains(&house));
        let price: f64 = fields[1].parse().unwrap();
        let predicted: f64 = fields[2].parse().unwrap();
        let ape: f64 = fields[3].parse().unwrap();
        assert!((ape - ((predicted - price) / price * 100.0).abs()).abs() < 0.01);
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows[0], "epoch,loss,val_loss,learning_rate");
    assert_eq!(rows.len(), 4);
    assert!(rows[3].starts_with("3,"));
    // Metrics, plots and the report.
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "mape",
        "ape_std",
        "median_ape",
        "max_ape",
        "mae",
        "rmse",
        "r2",
    ] {
        assert!(metrics[key].is_number(), "{key} in metrics.json");
    }
    for plot in [
        "learning_curves",
        "predicted_vs_actual",
        "error_distribution",
    ] {
        let png = std::fs::read(out.join(format!("{plot}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(out.join(format!("{plot}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"));
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("<svg")
            && report.contains("Test metrics")
            && report.contains("\"epochs\": 3")
    );
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    // Same command, same numbers.
    let out2 = dir.path().join("run2");
    let mut args2 = args;
    args2[8] = out2.to_str().unwrap();
    let again = appraise(&args2, dir.path());
    assert_eq!(text(&again.stdout), stdout);
    assert_eq!(
        std::fs::read_to_string(out2.join("predictions.csv")).unwrap(),
        predictions
    );
    assert_eq!(
        std::fs::read_to_string(out2.join("history.csv")).unwrap(),
        history
    );

    // --quiet prints only the final result; --verbose the epoch lines.
    let mut quiet = args.to_vec();
    quiet[8] = out2.to_str().unwrap();
    quiet.push("--quiet");
    let result = appraise(&quiet, dir.path());
    let lines: Vec<String> = text(&result.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1], stdout.lines().last().unwrap());
    let mut verbose = args.to_vec();
    verbose[8] = out2.to_str().unwrap();
    verbose.push("--verbose");
    assert_eq!(text(&appraise(&verbose, dir.path()).stdout), stdout);

    // Another seed, other numbers.
    let out3 = dir.path().join("run3");
    let mut args3 = args.to_vec();
    args3[8] = out3.to_str().unwrap();
    args3.extend(["--seed", "7"]);
    let other = appraise(&args3, dir.path());
    assert!(other.status.success());
    assert_ne!(text(&other.stdout), stdout);
}

/// The real dataset, when `APPRAISE_DATASET` names it. CI always sets it, so a missing folder
/// fails here rather than skipping.
fn real_dataset() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("APPRAISE_DATASET")?);
    assert!(
        dir.join("HousesInfo.txt").is_file(),
        "APPRAISE_DATASET is set to {} but there is no HousesInfo.txt there",
        dir.display()
    );
    Some(dir)
}

fn real_run(data: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let result = appraise(&args, out.parent().unwrap());
    let stdout = text(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        text(&result.stderr)
    );
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    (stdout, predictions)
}

#[test]
fn real_dataset_short_run_matches_the_tutorial_setup() {
    let Some(data) = real_dataset() else {
        eprintln!("APPRAISE_DATASET not set: skipping the real-data test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (stdout, predictions) = real_run(&data, &dir.path().join("run"), &["--epochs", "5"]);
    assert!(
        stdout.contains("[INFO] avg. house price: $533,388.27, std house price: $493,403.08"),
        "{stdout}"
    );
    // The test houses are scikit-learn's, in scikit-learn's order.
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/sklearn-split-cases.json")).unwrap();
    let expected: Vec<u64> = fixture["cases"][0]["test_house"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(fixture["cases"][0]["seed"], 42);
    let houses: Vec<u64> = predictions
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(houses, expected);
}

/// The Houses dataset written as a user's table (zip code, the three attributes, price and a
/// column of the four room photos, rare zip codes left out as `--min-zip-count 25` does)
/// trains the same networks as `--dataset`, bit for bit: Part 1, Part 2 and Part 3 give
/// identical test scores through either loader.
#[test]
fn the_houses_dataset_as_a_table_trains_the_same_networks() {
    let Some(data) = real_dataset() else {
        eprintln!("APPRAISE_DATASET not set: skipping the real-data test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let info = std::fs::read_to_string(data.join("HousesInfo.txt")).unwrap();
    let rows: Vec<Vec<&str>> = info
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 5)
        .collect();
    let mut count = std::collections::HashMap::new();
    for f in &rows {
        *count.entry(f[3]).or_insert(0) += 1;
    }
    let mut csv = String::from("zip,bedrooms,bathrooms,area,price,photos\n");
    for (i, f) in rows.iter().enumerate() {
        if count[f[3]] < 25 {
            continue;
        }
        let photos: Vec<String> = ["bathroom", "bedroom", "frontal", "kitchen"]
            .iter()
            .map(|room| {
                data.join(format!("{}_{room}.jpg", i + 1))
                    .display()
                    .to_string()
            })
            .collect();
        csv += &format!(
            "{},{},{},{},{},{}\n",
            f[3],
            f[0],
            f[1],
            f[2],
            f[4],
            photos.join(";")
        );
    }
    let table = dir.path().join("houses.csv");
    std::fs::write(&table, csv).unwrap();
    let metrics = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
    };
    for (model, epochs) in [("mlp", "200"), ("cnn", "2"), ("mixed", "2")] {
        let houses = dir.path().join(format!("houses-{model}"));
        real_run(&data, &houses, &["--model", model, "--epochs", epochs]);
        let rows = dir.path().join(format!("table-{model}"));
        let result = appraise(
            &[
                "train",
                "--data",
                table.to_str().unwrap(),
                "--categorical",
                "zip",
                "--model",
                model,
                "--epochs",
                epochs,
                "--out",
                rows.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert!(result.status.success(), "{}", text(&result.stderr));
        assert_eq!(metrics(&houses), metrics(&rows), "--model {model}");
    }
}

/// The tutorial MLP's price ranges hold what they promise on the real data: pooled over
/// the test houses of split seeds 0..9 (910 houses), the 80% range covers 77-83% of them and
/// the 90% range 87-93% (issue 16's targets).
#[test]
fn real_dataset_price_ranges_cover_their_level_over_ten_splits() {
    let Some(data) = real_dataset() else {
        eprintln!("APPRAISE_DATASET not set: skipping the real-data coverage test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = appraise(
        &["cv", "--dataset", data.to_str().unwrap(), "--repeats", "10"],
        dir.path(),
    );
    let stdout = text(&result.stdout);
    assert!(result.status.success(), "{}", text(&result.stderr));
    for (level, range) in [("80", 77.0..=83.0), ("90", 87.0..=93.0)] {
        let prefix = format!("{level}% range: covers ");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {level}% line in\n{stdout}"));
        assert!(line.contains("of 910 test houses"), "{line}");
        let covered: f64 = line[prefix.len()..]
            .split('%')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(range.contains(&covered), "{line}");
    }
}

/// Accuracy in the tutorial's range: split seed 42, initialization seeds 0..9, 200 epochs each.
/// Keras gives 21.0% to 32.9% (mean ~26%). A network this small occasionally loses all the
/// units of a ReLU layer and predicts a constant (about 1 seed in 40 here, seed 3 among
/// 0..9), so the check is on the typical run: median at most 27%, the mean of the runs that
/// trained at most 27%, and at most one of the ten above 40%.
#[test]
fn real_dataset_accuracy_over_ten_seeds_is_in_the_tutorial_range() {
    let Some(data) = real_dataset() else {
        eprintln!("APPRAISE_DATASET not set: skipping the real-data accuracy test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut mapes = Vec::new();
    for seed in 0..10 {
        let seed = seed.to_string();
        let (stdout, _) = real_run(
            &data,
            &dir.path().join(format!("seed{seed}")),
            &["--seed", &seed],
        );
        let last = stdout.lines().last().unwrap();
        let mape: f64 = last
            .strip_prefix("[INFO] mean: ")
            .and_then(|s| s.split('%').next())
            .unwrap()
            .parse()
            .unwrap();
        mapes.push(mape);
    }
    let mut sorted = mapes.clone();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[4] + sorted[5]) / 2.0;
    let trained: Vec<f64> = mapes.iter().copied().filter(|&m| m <= 40.0).collect();
    let mean_trained = trained.iter().sum::<f64>() / trained.len() as f64;
    eprintln!("test MAPE over seeds 0..9: {mapes:?}, median {median:.2}%");
    assert!(
        median <= 27.0,
        "median MAPE {median:.2}% over seeds 0..9: {mapes:?}"
    );
    assert!(trained.len() >= 9, "more than one run above 40%: {mapes:?}");
    assert!(
        mean_trained <= 27.0,
        "mean MAPE {mean_trained:.2}% of the trained runs: {mapes:?}"
    );
}

#[test]
fn predict_evaluate_and_summary_use_the_saved_model() {
    let (dir, data, run) = trained_model();
    let model = run.join("model.appraise");
    let model = model.to_str().unwrap();
    assert!(run.join("model.appraise").is_file());

    // The test houses, priced from the saved model, match the prices at the end of training.
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let info = std::fs::read_to_string(data.join("HousesInfo.txt")).unwrap();
    let info: Vec<&str> = info.lines().collect();
    let mut csv = String::from("house,bedrooms,bathrooms,area,zipcode\n");
    let mut expected = Vec::new();
    for row in predictions.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        let house: usize = fields[0].parse().unwrap();
        let f: Vec<&str> = info[house - 1].split_whitespace().collect();
        csv += &format!("{house},{},{},{},{}\n", f[0], f[1], f[2], f[3]);
        expected.push((fields[0].to_string(), fields[2].to_string()));
    }
    std::fs::write(dir.path().join("houses.csv"), &csv).unwrap();
    let out_csv = dir.path().join("prices.csv");
    let result = appraise(
        &[
            "predict",
            "--model",
            model,
            "--input",
            "houses.csv",
            "--output",
            "prices.csv",
        ],
        dir.path(),
    );
    assert!(result.status.success(), "{}", text(&result.stderr));
    let prices = std::fs::read_to_string(&out_csv).unwrap();
    let mut lines = prices.lines();
    assert_eq!(
        lines.next(),
        Some(
            "house,bedrooms,bathrooms,area,zipcode,predicted_price,low_80,high_80,outside_training"
        )
    );
    let got: Vec<(String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[5].to_string())
        })
        .collect();
    assert_eq!(got, expected);

    // One house from flags; JSON.
    let one = [
        "predict",
        "--model",
        model,
        "--bedrooms",
        "3",
        "--bathrooms",
        "2",
        "--area",
        "1500",
        "--zipcode",
        "92276",
    ];
    let result = appraise(&one, dir.path());
    assert!(result.status.success(), "{}", text(&result.stderr));
    let stdout = text(&result.stdout);
    assert!(
        stdout.starts_with(
            "bedrooms,bathrooms,area,zipcode,predicted_price,low_80,high_80,outside_training\n3,2,1500,92276,"
        ),
        "{stdout}"
    );
    let mut json = one.to_vec();
    json.extend(["--format", "json"]);
    let result = appraise(&json, dir.path());
    let parsed: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert!(parsed[0]["predicted_price"].as_f64().unwrap() > 0.0);

    // An unknown zip code is refused with the known ones listed, unless the user opts in.
    let mut unknown = one.to_vec();
    unknown[10] = "12345";
    let result = appraise(&unknown, dir.path());
    assert_eq!(result.status.code(), Some(2));
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("zipcode 12345 is unknown") && stderr.contains("85255, 92276"),
        "{stderr}"
    );
    unknown.extend(["--unknown-zip", "zero"]);
    let result = appraise(&unknown, dir.path());
    assert!(result.status.success());
    assert!(
        text(&result.stderr)
            .contains("warning: column zipcode: 1 row(s) have categories not seen in training")
    );
    // Its range is flagged: the calibration knows nothing of houses like it.
    assert!(
        text(&result.stdout).ends_with(",zipcode 12345 not seen in training\n"),
        "{}",
        text(&result.stdout)
    );
    // Extrapolation is announced.
    let mut far = one.to_vec();
    far[8] = "99999";
    let result = appraise(&far, dir.path());
    assert!(
        text(&result.stderr).contains("area 99999 above the training range"),
        "{}",
        text(&result.stderr)
    );
    assert!(
        text(&result.stdout).contains(",area 99999 above the training range "),
        "{}",
        text(&result.stdout)
    );
    // Inside the training houses: no flag.
    assert!(stdout.ends_with(",\n"), "{stdout}");

    // evaluate: the test houses by default, all with --all.
    let result = appraise(
        &[
            "evaluate",
            "--model",
            model,
            "--dataset",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = text(&result.stdout);
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert!(
        stdout.contains("Scored the 15 test houses of split seed 42"),
        "{stdout}"
    );
    assert!(
        stdout.contains("80% range:  covers ") && stdout.contains("90% range:  covers "),
        "{stdout}"
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert!(
        stdout.contains(&format!(
            "MAPE:       {:.2}%",
            metrics["mape"].as_f64().unwrap()
        )),
        "{stdout}"
    );
    let result = appraise(
        &[
            "evaluate",
            "--model",
            model,
            "--dataset",
            data.to_str().unwrap(),
            "--all",
            "--json",
        ],
        dir.path(),
    );
    let parsed: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(parsed["metrics"]["count"], 58);

    // summary: layers, parameters, preprocessing, metadata.
    let result = appraise(&["summary", "--model", model], dir.path());
    let stdout = text(&result.stdout);
    assert!(result.status.success());
    for needle in [
        "dense_2 (Dense)",
        "Total params: 89",
        "zipcode: one-hot of 2 levels (85255, 92276)",
        "trained for 20 epochs",
        "test MAPE",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}

#[test]
fn a_model_trained_on_synthetic_data_recovers_the_price_rule() {
    let dir = tempfile::tempdir().unwrap();
    let result = appraise(&["synth", "--houses", "2000", "--out", "synth"], dir.path());
    assert!(result.status.success(), "{}", text(&result.stderr));
    let args = [
        "train",
        "--dataset",
        "synth",
        "--min-zip-count",
        "1",
        "--epochs",
        "20",
        "--quiet",
        "--out",
        "run",
    ];
    let result = appraise(&args, dir.path());
    let stdout = text(&result.stdout);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/metrics.json")).unwrap(),
    )
    .unwrap();
    let mape = metrics["mape"].as_f64().unwrap();
    // The rule's multiplicative noise (sigma 0.1) alone costs about 8% MAPE.
    assert!(mape < 12.0, "MAPE {mape}% on synthetic data:\n{stdout}");
    assert!(metrics["r2"].as_f64().unwrap() > 0.9);

    // Photos: four JPEGs per house, named as in the Houses dataset.
    let result = appraise(
        &[
            "synth", "--houses", "3", "--photos", "--out", "photos", "--seed", "1",
        ],
        dir.path(),
    );
    assert!(result.status.success());
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("photos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 13);
    assert_eq!(names[0], "1_bathroom.jpg");
    assert_eq!(names[12], "HousesInfo.txt");
    let jpeg = std::fs::read(dir.path().join("photos/3_kitchen.jpg")).unwrap();
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
}

#[test]
fn cv_reports_the_model_and_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 60);
    let args = [
        "cv",
        "--dataset",
        "data",
        "--min-zip-count",
        "5",
        "--epochs",
        "3",
        "--repeats",
        "3",
        "--json",
        "cv.json",
    ];
    let result = appraise(&args, dir.path());
    let stdout = text(&result.stdout);
    assert!(result.status.success(), "{}", text(&result.stderr));
    for needle in [
        "split seed 0",
        "split seed 2",
        "global median price",
        "median price by zipcode",
        "median price per area unit by zipcode, x area",
        "Mean ± standard deviation over 3 splits",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    assert!(stdout.contains("the model (mean MAPE"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cv.json")).unwrap())
            .unwrap();
    assert_eq!(report["splits"].as_array().unwrap().len(), 3);
    assert_eq!(report["summaries"].as_array().unwrap().len(), 4);
    // The same command gives the same numbers, whatever order the parallel splits finish in.
    let again = appraise(&args, dir.path());
    assert_eq!(text(&again.stdout), stdout);
    // k-fold
    let folds = [
        "cv",
        "--dataset",
        "data",
        "--min-zip-count",
        "5",
        "--epochs",
        "2",
        "--folds",
        "4",
    ];
    let result = appraise(&folds, dir.path());
    let stdout = text(&result.stdout);
    assert!(
        result.status.success() && stdout.contains("fold 4/4"),
        "{stdout}"
    );
}

/// `evaluate` of `run/model.appraise` on the dataset `data` scores exactly the test MAPE that
/// training wrote to `run/metrics.json`.
fn evaluate_reproduces_training(dir: &std::path::Path, run: &str) {
    let model_file = format!("{run}/model.appraise");
    let evaluated = appraise(
        &[
            "evaluate",
            "--model",
            &model_file,
            "--dataset",
            "data",
            "--json",
            "--cache-dir",
            "cache",
        ],
        dir,
    );
    assert!(evaluated.status.success(), "{}", text(&evaluated.stderr));
    let evaluation: serde_json::Value = serde_json::from_slice(&evaluated.stdout).unwrap();
    let written = std::fs::read_to_string(dir.join(run).join("metrics.json")).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(evaluation["metrics"]["mape"], metrics["mape"]);
}

/// A temporary folder holding `data/`: `houses` synthetic houses with photos.
fn synthetic_photo_dataset(houses: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let houses = houses.to_string();
    let made = appraise(
        &["synth", "--houses", &houses, "--photos", "--out", "data"],
        dir.path(),
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    dir
}

/// Prices every house of `data/` (made by [`synthetic_photo_dataset`]) with `model_file`,
/// reading their photos; returns the CSV printed.
fn predict_synthetic_with_photos(dir: &Path, model_file: &str) -> String {
    let priced = appraise(
        &[
            "predict",
            "--model",
            model_file,
            "--input",
            "data/HousesInfo.txt",
            "--photos",
            "data",
        ],
        dir,
    );
    assert!(priced.status.success(), "{}", text(&priced.stderr));
    text(&priced.stdout)
}

/// Both photo models on a tiny synthetic dataset with photos: train, then summary, evaluate
/// and predict from the saved model.
#[test]
fn photo_models_train_save_evaluate_and_predict() {
    let dir = synthetic_photo_dataset(40);
    // The synthetic data has 8 zip codes, so 11 attribute inputs: the mixed model's first
    // layer has 8 more weights than the tutorial's (10 inputs, 89,881 parameters).
    for (model, params) in [("cnn", "89,721"), ("mixed", "89,889")] {
        let out = format!("run-{model}");
        let result = appraise(
            &[
                "train",
                "--dataset",
                "data",
                "--model",
                model,
                "--epochs",
                "2",
                "--min-zip-count",
                "1",
                "--cache-dir",
                "cache",
                "--out",
                &out,
            ],
            dir.path(),
        );
        let stdout = text(&result.stdout);
        assert!(
            result.status.success(),
            "{stdout}\n{}",
            text(&result.stderr)
        );
        assert!(
            stdout.contains("[INFO] loading house images..."),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("Model: \"{model}\"")), "{stdout}");
        assert!(
            stdout.contains(&format!("Total params: {params}")),
            "{stdout}"
        );
        assert!(stdout.contains("Epoch 2/2 - loss: "), "{stdout}");
        assert!(stdout.lines().last().unwrap().starts_with("[INFO] mean: "));
        let run = dir.path().join(&out);
        let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
        assert_eq!(predictions.lines().count(), 1 + 10, "{predictions}");
        let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
        assert_eq!(history.lines().count(), 3);

        let model_file = format!("{out}/model.appraise");
        let summary = appraise(&["summary", "--model", &model_file], dir.path());
        let summary = text(&summary.stdout);
        assert!(
            summary.contains("(Conv2D)") && summary.contains(params),
            "{summary}"
        );
        assert!(
            summary.contains("a 64x64 montage of each row's first four photos"),
            "{summary}"
        );

        // evaluate reproduces the test scores of training from the saved file and the photos.
        evaluate_reproduces_training(dir.path(), &out);

        // predict needs the photos, found by the input's house ids.
        let rows = predict_synthetic_with_photos(dir.path(), &model_file);
        assert_eq!(rows.lines().count(), 41, "{rows}");
        assert!(rows.starts_with("house,"), "{rows}");
        let one = appraise(
            &[
                "predict",
                "--model",
                &model_file,
                "--bedrooms",
                "3",
                "--bathrooms",
                "2",
                "--area",
                "2000",
                "--zipcode",
                "90001",
                "--photos",
                "data",
                "--house",
                "7",
            ],
            dir.path(),
        );
        assert!(one.status.success(), "{}", text(&one.stderr));
        assert!(text(&one.stdout).lines().nth(1).unwrap().starts_with("7,"));
        let without = appraise(
            &[
                "predict",
                "--model",
                &model_file,
                "--input",
                "data/HousesInfo.txt",
            ],
            dir.path(),
        );
        assert_eq!(without.status.code(), Some(2));
        assert!(
            text(&without.stderr).contains("photo folder (--photos DIR)"),
            "{}",
            text(&without.stderr)
        );
    }
}

/// A short real-data run of each photo model (two epochs), when the dataset is available.
#[test]
fn photo_models_run_on_the_real_dataset() {
    let Some(dataset) = std::env::var_os("APPRAISE_DATASET") else {
        eprintln!("APPRAISE_DATASET is not set; skipping the real-data photo run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for model in ["cnn", "mixed"] {
        let result = appraise(
            &[
                "train",
                "--dataset",
                dataset.to_str().unwrap(),
                "--model",
                model,
                "--epochs",
                "2",
                "--cache-dir",
                "cache",
                "--out",
                model,
            ],
            dir.path(),
        );
        let stdout = text(&result.stdout);
        assert!(
            result.status.success(),
            "{stdout}\n{}",
            text(&result.stderr)
        );
        let predictions =
            std::fs::read_to_string(dir.path().join(model).join("predictions.csv")).unwrap();
        assert_eq!(predictions.lines().count(), 1 + 91);
    }
}

/// `train --recipe best` on `data/` (made by [`synthetic_photo_dataset`]) with `extra`
/// arguments; returns what it printed.
fn train_synthetic_recipe(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--dataset",
        "data",
        "--recipe",
        "best",
        "--min-zip-count",
        "1",
    ];
    args.extend(extra);
    let result = appraise(&args, dir);
    let stdout = text(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        text(&result.stderr)
    );
    stdout
}

/// The recipe candidates `train` printed that are networks, ridge models or their blends.
fn network_and_ridge_candidates(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains("recipe candidate: ") && !l.contains("gradient-boosted trees"))
        .count()
}

/// `--recipe best` on synthetic data with photos: inner cross-validation over its candidates,
/// a saved blend that predicts like every other model, and `--recipe-photos on|off`.
#[test]
fn best_recipe_chooses_by_inner_cv_and_saves_an_ensemble() {
    let dir = synthetic_photo_dataset(60);
    let stdout = train_synthetic_recipe(dir.path(), &["--cache-dir", "cache", "--out", "best"]);
    // Two weight decays and seven ridge penalties, times no photo input, the frontal photo's
    // score, the ridge photo price, or both; and a blend of each group's peers; then trees
    // of two depths, and the chosen model blended with the better (when that errs less).
    let trees = stdout
        .matches("recipe candidate: gradient-boosted trees")
        .count();
    let with_trees = stdout.matches("candidate: blend of (").count()
        + stdout.matches("learning rate 0.05 alone: ").count();
    assert_eq!(trees, 2, "{stdout}");
    assert!(with_trees <= 1, "{stdout}");
    assert_eq!(
        stdout.matches("recipe candidate: ").count(),
        4 * 9 + 2 + trees + with_trees,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("candidate: blend of ").count() - with_trees,
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "photo price head: ridge on 4 x 1280 photo embedding values of frontal_photo, \
             bathroom_photo, bedroom_photo, kitchen_photo"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("recipe chose: "), "{stdout}");
    let summary =
        text(&appraise(&["summary", "--model", "best/model.appraise"], dir.path()).stdout);
    // Prices are calibrated on the out-of-fold predictions, overall and per zip code; such a
    // file is format 8, which a build that does not know per-level factors refuses (10 with
    // trees, which such a build refuses too).
    assert!(
        summary.contains("price factor: x")
            && summary.contains("price factors per level of zipcode: ")
            && stdout.contains("recipe price factors per level of zipcode"),
        "{summary}"
    );
    let bytes = std::fs::read(dir.path().join("best/model.appraise")).unwrap();
    let format = if with_trees == 1 { 10u32 } else { 8 };
    assert_eq!(&bytes[8..12], &format.to_le_bytes(), "{summary}");
    assert_eq!(
        summary.contains("gradient-boosted trees (forust-ml) on the columns: 5 boosters"),
        with_trees == 1,
        "{summary}"
    );
    let rows = predict_synthetic_with_photos(dir.path(), "best/model.appraise");
    assert_eq!(rows.lines().count(), 61);
    // Recipe models price with a range, calibrated on their out-of-fold errors.
    assert!(
        stdout.contains("[INFO] 80% price range: covers "),
        "{stdout}"
    );
    assert!(
        summary.contains("price ranges: split-conformal"),
        "{summary}"
    );
    let header = rows.lines().next().unwrap();
    assert!(
        header.ends_with(",predicted_price,low_80,high_80,outside_training"),
        "{header}"
    );
    for line in rows.lines().skip(1) {
        let f: Vec<f64> = line
            .rsplitn(5, ',')
            .skip(1)
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(f[1] < f[2] && f[2] < f[0], "low < price < high: {line}");
    }
    // The saved model reproduces the test scores of training.
    evaluate_reproduces_training(dir.path(), "best");

    // Forced on: every candidate reads photo inputs, read again from the photos to predict
    // and to evaluate, with the same prices.
    let stdout = train_synthetic_recipe(
        dir.path(),
        &[
            "--recipe-photos",
            "on",
            "--cache-dir",
            "cache",
            "--out",
            "best-on",
        ],
    );
    assert_eq!(network_and_ridge_candidates(&stdout), 3 * 9 + 1, "{stdout}");
    let priced = predict_synthetic_with_photos(dir.path(), "best-on/model.appraise");
    assert_eq!(priced.lines().count(), 61);
    evaluate_reproduces_training(dir.path(), "best-on");

    // Photos alone, through the pretrained network: no attribute is an input.
    let stdout = train_synthetic_recipe(
        dir.path(),
        &[
            "--model",
            "photos-pretrained",
            "--cache-dir",
            "cache",
            "--out",
            "photos-only",
        ],
    );
    assert_eq!(network_and_ridge_candidates(&stdout), 2 * 9 + 1, "{stdout}");
    let summary = text(
        &appraise(
            &["summary", "--model", "photos-only/model.appraise"],
            dir.path(),
        )
        .stdout,
    );
    assert!(
        summary.contains(
            "photos of frontal_photo, bathroom_photo, bedroom_photo, kitchen_photo: the price \
             of a ridge head"
        ) && !summary.contains("zipcode: one-hot"),
        "{summary}"
    );
    let photo_prices = predict_synthetic_with_photos(dir.path(), "photos-only/model.appraise");
    assert_eq!(photo_prices.lines().count(), 61);
    evaluate_reproduces_training(dir.path(), "photos-only");
    let refused = appraise(
        &[
            "train",
            "--dataset",
            "data",
            "--model",
            "photos-pretrained",
            "--recipe-photos",
            "off",
        ],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));

    let stdout = train_synthetic_recipe(
        dir.path(),
        &["--recipe-photos", "off", "--no-cache", "--out", "best-off"],
    );
    assert_eq!(network_and_ridge_candidates(&stdout), 9 + 1, "{stdout}");
    assert!(!stdout.contains("loading house images"), "{stdout}");
    let refused = appraise(
        &[
            "train",
            "--dataset",
            "data",
            "--recipe",
            "best",
            "--model",
            "cnn",
        ],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(2));
}

//! End-to-end tests of `predict --explain`: the shares add up to the price for every model
//! kind, inputs the model cannot see get none, identical houses get identical explanations,
//! comparables are training sales and never the house itself, and older files say what
//! they lack.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{appraise, text};

fn run_ok(args: &[&str], cwd: &Path) -> String {
    let result = appraise(args, cwd);
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    assert!(result.status.success(), "{args:?}\n{stdout}\n{stderr}");
    stdout
}

/// A table of `n` listings with `noise` extra numeric columns the price does not depend
/// on, a column to ignore and an identifier.
fn table(dir: &Path, n: usize, noise: usize) -> PathBuf {
    let mut csv = String::from("id,zip,sqft,type,lot,note");
    for j in 0..noise {
        let _ = write!(csv, ",x{j}");
    }
    csv.push_str(",price\n");
    for i in 0..n {
        let sqft = 800.0 + ((i * 37) % 2000) as f64;
        let kind = ["house", "condo", "townhouse"][i % 3];
        let lot = if i % 7 == 0 {
            "NA".to_string()
        } else {
            (2000 + (i * 53) % 5000).to_string()
        };
        let wobble = 1.0 + 0.05 * (((i * 7919) % 21) as f64 - 10.0) / 10.0;
        let price = sqft * 150.0 * [1.0, 0.8, 0.9][i % 3] * (1.0 + 0.1 * (i % 4) as f64) * wobble;
        let _ = write!(
            csv,
            "L{i:04},{},{sqft},{kind},{lot},n{}",
            95800 + i % 4,
            i % 5
        );
        for j in 0..noise {
            let _ = write!(csv, ",{}", (i * (j + 3) * 31) % 97);
        }
        let _ = writeln!(csv, ",{:.0}", price);
    }
    let path = dir.join("listings.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

const LIGHT: &str = r#"{"max_epochs": 40, "patience": 10, "weight_decays": [0.0001], "ridge_penalties": [0.01], "seeds_per_fold": 1}"#;

/// Trains on `data` with `extra` flags into `dir/name`; the model file.
fn train(dir: &Path, data: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--ignore",
        "note",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_ok(&args, dir);
    out.join("model.appraise")
}

/// `predict --explain --format json` of `input`: one object per row.
fn explain(dir: &Path, model: &Path, input: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--explain",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&run_ok(&args, dir)).unwrap()
}

/// The reference price times the factors is the price, the dollars add up to the price's
/// distance from it, and the confidence is 100 x (1 - fsd) (within 0 to 100).
fn check_adds_up(rows: &[serde_json::Value]) {
    for row in rows {
        let price = row["predicted_price"].as_f64().unwrap();
        let e = &row["explanation"];
        let reference = e["reference_price"].as_f64().unwrap();
        let contributions = e["contributions"].as_array().unwrap();
        let product: f64 = contributions
            .iter()
            .map(|c| c["factor"].as_f64().unwrap())
            .product();
        // The price is printed to the cent.
        assert!(
            (reference * product - price).abs() <= 0.006 + 1e-9 * price,
            "{reference} x {product} is not {price}"
        );
        let dollars: f64 = contributions
            .iter()
            .map(|c| c["dollars"].as_f64().unwrap())
            .sum();
        assert!((reference + dollars - price).abs() <= 0.01, "{e}");
        let (fsd, confidence) = (
            e["fsd"].as_f64().unwrap(),
            e["confidence"].as_f64().unwrap(),
        );
        let expected = (100.0 * (1.0 - fsd)).clamp(0.0, 100.0);
        assert!(fsd > 0.0 && (confidence - expected).abs() < 1e-9, "{e}");
    }
}

fn factor(row: &serde_json::Value, column: &str) -> f64 {
    row["explanation"]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == column)
        .unwrap_or_else(|| panic!("no {column} in {row}"))["factor"]
        .as_f64()
        .unwrap()
}

/// The ids of a run's test rows (its predictions.csv).
fn test_ids(model: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(model.parent().unwrap().join("predictions.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn explanations_add_up_and_name_training_sales_for_every_table_model_kind() {
    let dir = tempfile::tempdir().unwrap();
    let data = table(dir.path(), 160, 0);
    std::fs::write(dir.path().join("light.json"), LIGHT).unwrap();
    let per_area = LIGHT.replace('}', r#", "per_area": true, "trees": false}"#);
    std::fs::write(dir.path().join("per-area.json"), per_area).unwrap();
    let recipe = ["--recipe", "best", "--recipe-config", "light.json"];
    let kinds: [(&str, Vec<&str>); 3] = [
        ("tutorial", vec!["--epochs", "20"]),
        ("recipe", recipe.to_vec()),
        (
            "per-area",
            vec![
                "--recipe",
                "best",
                "--recipe-config",
                "per-area.json",
                "--area",
                "sqft",
            ],
        ),
    ];
    // Rows 0 and 1 are the same house; the last is a training sale.
    let all = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    for (name, flags) in kinds {
        let model = train(dir.path(), &data, name, &flags);
        let tests = test_ids(&model);
        // The report explains the best, median and worst priced test rows.
        let report = std::fs::read_to_string(model.with_file_name("report.html")).unwrap();
        for label in [
            "Why these prices",
            "best priced",
            "median priced",
            "worst priced",
        ] {
            assert!(report.contains(label), "{name}: no {label:?} in the report");
        }
        let training = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .find(|id| !tests.iter().any(|t| t == id))
            .unwrap();
        let test_line = lines.iter().find(|l| l.starts_with(&tests[0])).unwrap();
        let train_line = lines.iter().find(|l| l.starts_with(training)).unwrap();
        let input = dir.path().join(format!("{name}-input.csv"));
        std::fs::write(
            &input,
            format!("{}\n{test_line}\n{test_line}\n{train_line}\n", lines[0]),
        )
        .unwrap();
        let rows = explain(dir.path(), &model, &input, &["--comps", "4"]);
        assert_eq!(rows.len(), 3);
        check_adds_up(&rows);
        assert_eq!(rows[0]["explanation"], rows[1]["explanation"], "{name}");
        assert_eq!(rows[0]["explanation"]["method"], "exact");
        // An ignored column moves no price.
        assert_eq!(factor(&rows[0], "note"), 1.0, "{name}");
        for (row, own) in rows
            .iter()
            .zip([&tests[0], &tests[0], &training.to_string()])
        {
            let comps = row["explanation"]["comparables"].as_array().unwrap();
            assert_eq!(comps.len(), 4, "{name}");
            for c in comps {
                let id = c["id"].as_str().unwrap();
                assert!(!tests.iter().any(|t| t == id), "{name}: {id} is a test row");
                assert_ne!(id, own, "{name}: the house is its own comparable");
                let (sale, predicted, adjusted) = (
                    c["sale_price"].as_f64().unwrap(),
                    c["predicted_price"].as_f64().unwrap(),
                    c["adjusted_price"].as_f64().unwrap(),
                );
                let price = row["predicted_price"].as_f64().unwrap();
                assert!((adjusted - sale * price / predicted).abs() < 0.01 + 1e-8 * adjusted);
            }
            let d: Vec<f64> = comps
                .iter()
                .map(|c| c["distance"].as_f64().unwrap())
                .collect();
            assert!(d.windows(2).all(|w| w[0] <= w[1]), "{name}: {d:?}");
        }
        // The CSV carries the same shares as columns.
        let csv = run_ok(
            &[
                "predict",
                "--model",
                model.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--explain",
            ],
            dir.path(),
        );
        let header = csv.lines().next().unwrap();
        assert!(
            header.ends_with(",fsd,confidence,reference_price,factor_zip,dollars_zip,factor_sqft,dollars_sqft,factor_type,dollars_type,factor_lot,dollars_lot,factor_note,dollars_note,comparables_median"),
            "{header}"
        );
    }
}

#[test]
fn many_columns_are_sampled_and_still_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = table(dir.path(), 160, 8);
    std::fs::write(dir.path().join("light.json"), LIGHT).unwrap();
    let model = train(
        dir.path(),
        &data,
        "wide",
        &["--recipe", "best", "--recipe-config", "light.json"],
    );
    let rows = explain(dir.path(), &model, &data, &[]);
    assert_eq!(rows.len(), 160);
    check_adds_up(&rows);
    for row in &rows {
        let e = &row["explanation"];
        assert_eq!(e["method"], "sampled");
        assert_eq!(e["comparables"].as_array().unwrap().len(), 5);
        assert_eq!(factor(row, "note"), 1.0);
        let errors: Vec<f64> = e["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["error"].as_f64().unwrap())
            .collect();
        assert!(errors.iter().all(|&s| s >= 0.0) && errors.iter().any(|&s| s > 0.0));
    }
    // A house's explanation does not depend on the others priced with it.
    let one = dir.path().join("one.csv");
    let all = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    std::fs::write(&one, format!("{}\n{}\n", lines[0], lines[42])).unwrap();
    let alone = explain(dir.path(), &model, &one, &[]);
    assert_eq!(alone[0]["explanation"], rows[41]["explanation"]);
}

#[test]
fn photo_columns_get_their_own_share_and_a_photos_only_model_gives_attributes_none() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    run_ok(
        &[
            "synth",
            "--houses",
            "50",
            "--photos",
            "--out",
            synth.to_str().unwrap(),
        ],
        dir.path(),
    );
    let info = std::fs::read_to_string(synth.join("HousesInfo.txt")).unwrap();
    let mut csv = String::from("house,bedrooms,bathrooms,area,zip,price,front,kitchen\n");
    for (i, line) in info.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let id = i + 1;
        let _ = writeln!(
            csv,
            "{id},{},{},{},{},{},synth/{id}_frontal.jpg,synth/{id}_kitchen.jpg",
            f[0], f[1], f[2], f[3], f[4]
        );
    }
    let data = dir.path().join("houses.csv");
    std::fs::write(&data, csv).unwrap();
    std::fs::write(dir.path().join("light.json"), LIGHT).unwrap();
    let photos_only = LIGHT.replace('}', r#", "attributes": false}"#);
    std::fs::write(dir.path().join("photos-only.json"), photos_only).unwrap();
    let photo_flags = ["--photos", "front,kitchen", "--identifier", "house"];
    for (name, config) in [("both", "light.json"), ("photos-only", "photos-only.json")] {
        let mut flags = vec![
            "--recipe",
            "best",
            "--recipe-photos",
            "on",
            "--recipe-config",
        ];
        flags.push(config);
        flags.extend_from_slice(&photo_flags);
        let out = dir.path().join(name);
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(&flags);
        run_ok(&args, dir.path());
        let rows = explain(dir.path(), &out.join("model.appraise"), &data, &[]);
        check_adds_up(&rows);
        let row = &rows[0];
        assert!(
            factor(row, "front") != 1.0 || factor(row, "kitchen") != 1.0,
            "{name}: {row}"
        );
        let comps = row["explanation"]["comparables"].as_array().unwrap();
        assert!(
            comps[0]["photos"][0].as_str().unwrap().ends_with(".jpg"),
            "{row}"
        );
        if name == "photos-only" {
            for column in ["bedrooms", "bathrooms", "area", "zip"] {
                assert_eq!(factor(row, column), 1.0, "{column}: {row}");
            }
        }
    }
}

#[test]
fn a_model_file_without_kept_sales_explains_its_confidence_and_says_what_it_lacks() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
    let dir = tempfile::tempdir().unwrap();
    let result = appraise(
        &[
            "predict",
            "--model",
            fixtures
                .join("format10-table-recipe-trees.appraise")
                .to_str()
                .unwrap(),
            "--input",
            fixtures.join("houses.csv").to_str().unwrap(),
            "--explain",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert!(text(&result.stderr).contains("keeps no training sales"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text(&result.stdout)).unwrap();
    let e = &rows[0]["explanation"];
    assert_eq!(e["method"], "none");
    assert!(e["contributions"].as_array().unwrap().is_empty());
    assert!(e["comparables"].as_array().unwrap().is_empty());
    assert!(e["confidence"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_row_of_the_training_table_without_identifiers_is_not_its_own_comparable() {
    let dir = tempfile::tempdir().unwrap();
    let with_ids = std::fs::read_to_string(table(dir.path(), 120, 0)).unwrap();
    // The same table without its id column: sales are named by their line.
    let plain: String = with_ids
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    let data = dir.path().join("plain.csv");
    std::fs::write(&data, plain).unwrap();
    std::fs::write(dir.path().join("light.json"), LIGHT).unwrap();
    let model = train(
        dir.path(),
        &data,
        "plain",
        &["--recipe", "best", "--recipe-config", "light.json"],
    );
    let rows = explain(dir.path(), &model, &data, &[]);
    let mut named = 0;
    for (i, row) in rows.iter().enumerate() {
        let own = format!("line {}", i + 2);
        for c in row["explanation"]["comparables"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            assert!(id.starts_with("line "), "{id}");
            assert_ne!(id, own, "row {i} is its own comparable");
            named += 1;
        }
    }
    assert_eq!(named, 5 * rows.len());
}

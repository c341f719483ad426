//! End-to-end tests of a user's own table (`--data`): tables the tests write themselves, in
//! CSV and Parquet, and (when `APPRAISE_OTHER_DATASETS` is set) the real Sacramento table.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{appraise, predict_run, text};

/// A listing table: price = 150 $/sqft, x1.3 for a condo... with missing lot sizes, a text
/// category, a numeric zip code and an identifier. Deterministic.
/// One listing: id, zip, sqft, type, lot size, price.
type Listing = (String, u32, f64, &'static str, Option<f64>, f64);

fn listings(n: usize) -> Vec<Listing> {
    (0..n)
        .map(|i| {
            let sqft = 800.0 + ((i * 37) % 2000) as f64;
            let kind = ["house", "condo", "townhouse"][i % 3];
            let zip = 95800 + (i % 4) as u32;
            let lot = (i % 7 != 0).then(|| 2000.0 + ((i * 53) % 5000) as f64);
            let noise = 1.0 + 0.05 * (((i * 7919) % 21) as f64 - 10.0) / 10.0;
            let price =
                sqft * 150.0 * [1.0, 0.8, 0.9][i % 3] * (1.0 + 0.1 * (i % 4) as f64) * noise;
            (format!("L{i:04}"), zip, sqft, kind, lot, price.round())
        })
        .collect()
}

fn write_csv(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut csv = String::from("listing,zip,sqft,type,lot,price\n");
    for (id, zip, sqft, kind, lot, price) in listings(n) {
        let lot = lot.map_or("NA".to_string(), |l| l.to_string());
        let _ = writeln!(csv, "{id},{zip},{sqft},{kind},{lot},{price}");
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path
}

/// The same table as Parquet (snappy-compressed, nulls for the missing lot sizes), through
/// the parquet crate's own writer.
fn write_parquet(dir: &Path, n: usize) -> PathBuf {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let rows = listings(n);
    let schema = Arc::new(
        parse_message_type(
            "message listing { REQUIRED BYTE_ARRAY listing (UTF8); REQUIRED INT32 zip; \
             REQUIRED DOUBLE sqft; REQUIRED BYTE_ARRAY type (UTF8); OPTIONAL DOUBLE lot; \
             REQUIRED DOUBLE price; }",
        )
        .unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let path = dir.join("listings.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let texts = |f: &dyn Fn(&Listing) -> String| {
        rows.iter()
            .map(|r| ByteArray::from(f(r).as_str()))
            .collect::<Vec<_>>()
    };
    let mut column = 0;
    while let Some(mut w) = group.next_column().unwrap() {
        match column {
            0 | 3 => {
                let values = if column == 0 {
                    texts(&|r| r.0.clone())
                } else {
                    texts(&|r| r.3.to_string())
                };
                w.typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
                    .unwrap();
            }
            1 => {
                let values: Vec<i32> = rows.iter().map(|r| r.1 as i32).collect();
                w.typed::<Int32Type>()
                    .write_batch(&values, None, None)
                    .unwrap();
            }
            4 => {
                let values: Vec<f64> = rows.iter().filter_map(|r| r.4).collect();
                let levels: Vec<i16> = rows.iter().map(|r| i16::from(r.4.is_some())).collect();
                w.typed::<DoubleType>()
                    .write_batch(&values, Some(&levels), None)
                    .unwrap();
            }
            _ => {
                let values: Vec<f64> = rows
                    .iter()
                    .map(|r| if column == 2 { r.2 } else { r.5 })
                    .collect();
                w.typed::<DoubleType>()
                    .write_batch(&values, None, None)
                    .unwrap();
            }
        }
        w.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    path
}

fn run_ok(args: &[&str], cwd: &Path) -> (String, String) {
    let result = appraise(args, cwd);
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    assert!(result.status.success(), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// [`predict_run`], which must succeed: its standard output and error.
fn predict_ok(model: &Path, input: &Path, cwd: &Path) -> (String, String) {
    let result = predict_run(model, input, cwd);
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    assert!(result.status.success(), "predict\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn mape_of(metrics_json: &Path) -> f64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(metrics_json).unwrap()).unwrap();
    v["mape"].as_f64().unwrap()
}

#[test]
fn trains_predicts_evaluates_and_summarizes_a_csv_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_csv(dir.path(), "listings.csv", 240);
    let out = dir.path().join("run");
    let (stdout, _) = run_ok(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "30",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    // The schema table: roles inferred from names and values.
    for (column, role) in [
        ("listing", "identifier"),
        ("zip", "categorical"),
        ("sqft", "numeric"),
        ("type", "categorical"),
        ("lot", "numeric"),
        ("price", "target"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{column} ")))
            .unwrap_or_else(|| panic!("{column} in\n{stdout}"));
        assert!(line.contains(role), "{line}");
    }
    let lot = stdout.lines().find(|l| l.starts_with("lot ")).unwrap();
    assert!(lot.contains(" 35 "), "35 missing lot sizes: {lot}");
    // The same run folder as on the Houses dataset.
    for file in [
        "model.appraise",
        "predictions.csv",
        "metrics.json",
        "schema.json",
        "config.json",
        "history.csv",
        "learning_curves.png",
        "predicted_vs_actual.svg",
        "error_distribution.png",
        "report.html",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(
        history.lines().count(),
        31,
        "a header and 30 epochs:\n{history}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("test rows")
            && report.contains("MAPE %")
            && report.contains("<h2>Ratio study</h2>"),
        "{report}"
    );
    let model = out.join("model.appraise");
    let trained = mape_of(&out.join("metrics.json"));

    // evaluate re-splits the training table and reproduces the score exactly.
    let (json, _) = run_ok(
        &["evaluate", "--model", model.to_str().unwrap(), "--json"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mape"].as_f64().unwrap(), trained);
    // The ratio study of the same rows: its median APE is the scores'.
    let ratio = &v["ratio_study"];
    assert_eq!(ratio["median_ape"], v["median_ape"], "{json}");
    let ppe = |k: &str| ratio[k].as_f64().unwrap();
    assert!(
        ppe("ppe10") <= ppe("ppe20") && ppe("ppe20") <= 100.0,
        "{json}"
    );

    // predict: new rows, one with an unseen type and a missing lot, keep their columns.
    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "listing,zip,sqft,type,lot\nN1,95801,1500,house,3000\nN2,95802,1500,castle,\n",
    )
    .unwrap();
    let (csv, stderr) = predict_ok(&model, &new, dir.path());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "listing,zip,sqft,type,lot,predicted_price,low_80,high_80,outside_training"
    );
    assert!(lines[1].starts_with("N1,95801,1500,house,3000,"), "{csv}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    let price: f64 = fields[5].parse().unwrap();
    assert!(price > 50_000.0 && price < 1_000_000.0, "{price}");
    // The tutorial's method is calibrated by its K-fold pass: a range around the price.
    let (low, high): (f64, f64) = (fields[6].parse().unwrap(), fields[7].parse().unwrap());
    assert!(low < price && price < high, "{}", lines[1]);
    assert_eq!(fields[8], "", "a row like the training rows is not flagged");
    // The unseen type is flagged beside its range.
    assert!(
        lines[2].ends_with(",\"type \"\"castle\"\" not seen in training\""),
        "{}",
        lines[2]
    );
    assert!(
        stderr.contains("column type") && stderr.contains("castle"),
        "{stderr}"
    );

    // --range-folds 0 trains without ranges: asked for them, predict says so.
    let bare = dir.path().join("bare");
    run_ok(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--target",
            "price",
            "--epochs",
            "5",
            "--range-folds",
            "0",
            "--out",
            bare.to_str().unwrap(),
        ],
        dir.path(),
    );
    let result = appraise(
        &[
            "predict",
            "--model",
            bare.join("model.appraise").to_str().unwrap(),
            "--input",
            new.to_str().unwrap(),
            "--interval",
            "0.9",
        ],
        dir.path(),
    );
    assert!(result.status.success());
    assert!(
        text(&result.stderr).contains("no calibration"),
        "{}",
        text(&result.stderr)
    );
    assert!(
        text(&result.stdout)
            .lines()
            .next()
            .unwrap()
            .ends_with(",predicted_price")
    );

    // summary shows the schema and the encoding.
    let (summary, _) = run_ok(&["summary", "--model", model.to_str().unwrap()], dir.path());
    assert!(
        summary.contains("schema:") && summary.contains("lot: number"),
        "{summary}"
    );
    assert!(summary.contains("missing indicator"), "{summary}");
}

#[test]
fn parquet_and_csv_of_the_same_table_give_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), "listings.csv", 120);
    let parquet = write_parquet(dir.path(), 120);
    let mut scores = Vec::new();
    for (data, out) in [(&csv, "from-csv"), (&parquet, "from-parquet")] {
        let out = dir.path().join(out);
        run_ok(
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--epochs",
                "10",
                "--quiet",
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        );
        scores.push(std::fs::read_to_string(out.join("predictions.csv")).unwrap());
    }
    // The same rows in the same order (Parquet rows are numbered, CSV rows by line).
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect()
    };
    assert_eq!(strip(&scores[0]), strip(&scores[1]));
}

#[test]
fn bad_tables_get_errors_naming_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad_price = dir.path().join("bad-price.csv");
    std::fs::write(
        &bad_price,
        "sqft,price\n1000,200000\n1200,-5\n900,100000\n800,90000\n1100,120000\n",
    )
    .unwrap();
    let result = appraise(
        &[
            "train",
            "--data",
            bad_price.to_str().unwrap(),
            "--epochs",
            "1",
        ],
        dir.path(),
    );
    assert_eq!(result.status.code(), Some(2));
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("bad-price.csv:3: field price") && stderr.contains("--drop-bad-target"),
        "{stderr}"
    );
    let out = dir.path().join("dropped");
    let (_, stderr) = run_ok(
        &[
            "train",
            "--data",
            bad_price.to_str().unwrap(),
            "--epochs",
            "1",
            "--drop-bad-target",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(stderr.contains("dropped 1 rows"), "{stderr}");

    // A table without a recognizable price column, and a flag naming a missing column.
    let no_price = dir.path().join("no-price.csv");
    std::fs::write(&no_price, "a,b\n1,2\n").unwrap();
    let stderr =
        text(&appraise(&["train", "--data", no_price.to_str().unwrap()], dir.path()).stderr);
    assert!(stderr.contains("--target"), "{stderr}");
    let stderr = text(
        &appraise(
            &[
                "train",
                "--data",
                bad_price.to_str().unwrap(),
                "--ignore",
                "size",
            ],
            dir.path(),
        )
        .stderr,
    );
    assert!(
        stderr.contains("--ignore size") && stderr.contains("sqft"),
        "{stderr}"
    );

    // predict: a missing column, and text in a number column, name the column and line.
    let model = out.join("model.appraise");
    for (input, want) in [
        ("rooms\n3\n", "no column \"sqft\""),
        ("sqft\n1000\nhuge\n", "in.csv:3: field sqft"),
    ] {
        let path = dir.path().join("in.csv");
        std::fs::write(&path, input).unwrap();
        let result = appraise(
            &[
                "predict",
                "--model",
                model.to_str().unwrap(),
                "--input",
                path.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(result.status.code(), Some(2));
        let stderr = text(&result.stderr);
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    // A Houses-style query against a table model is refused with what to do.
    let stderr = text(
        &appraise(
            &[
                "predict",
                "--model",
                model.to_str().unwrap(),
                "--bedrooms",
                "3",
                "--bathrooms",
                "2",
                "--area",
                "1000",
                "--zipcode",
                "95801",
            ],
            dir.path(),
        )
        .stderr,
    );
    assert!(stderr.contains("--input FILE"), "{stderr}");
}

#[test]
fn the_recipe_prices_sacramento_within_its_target() {
    let Some(dir) = std::env::var_os("APPRAISE_OTHER_DATASETS") else {
        eprintln!("APPRAISE_OTHER_DATASETS not set; skipping the Sacramento test");
        return;
    };
    let data = PathBuf::from(dir).join("sacramento.csv");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let (stdout, _) = run_ok(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--recipe",
            "best",
            "--split-seed",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(stdout.contains("recipe chose: "), "{stdout}");
    let mape = mape_of(&out.join("metrics.json"));
    // scikit-learn on this table: ridge on one-hot 23.6%, HistGradientBoosting 25.1% (5 folds).
    assert!(mape < 25.0, "Sacramento test MAPE {mape}");
    // The saved recipe model (an ensemble, ridge, or both) reloads to the same prices.
    let (json, _) = run_ok(
        &[
            "evaluate",
            "--model",
            out.join("model.appraise").to_str().unwrap(),
            "--json",
        ],
        tmp.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mape"].as_f64().unwrap(), mape);
    // The blend's weights and the per-level price factors, and here the trees blended in:
    // format 10, listed by summary.
    let bytes = std::fs::read(out.join("model.appraise")).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 10);
    let (summary, _) = run_ok(
        &[
            "summary",
            "--model",
            out.join("model.appraise").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(summary.contains("price factors per level of "), "{summary}");
    assert!(
        summary.contains("gradient-boosted trees (forust-ml) on the columns: 5 boosters")
            && stdout.contains("and gradient-boosted trees, depth "),
        "{summary}"
    );
    assert!(
        stdout.contains("recipe price factors per level of "),
        "{stdout}"
    );
    // Price ranges: 80% by default, any level, or none; a bad level is refused.
    assert!(
        stdout.contains("[INFO] 80% price range: covers "),
        "{stdout}"
    );
    let model = out.join("model.appraise");
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        appraise(&args, tmp.path())
    };
    let csv = text(&predict(&[]).stdout);
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",predicted_price,low_80,high_80,outside_training"),
        "{header}"
    );
    let mut inside = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<f64> = line
            .rsplitn(5, ',')
            .skip(1)
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        let (high, low, predicted) = (f[0], f[1], f[2]);
        assert!(low < predicted && predicted < high, "{line}");
        let price: f64 = line.split(',').nth(6).unwrap().parse().unwrap();
        inside += usize::from(price >= low && price <= high);
    }
    // On all rows (three quarters of them trained on) the 80% range holds at least ~80%.
    assert!(inside * 100 >= 932 * 77, "{inside} of 932 inside");
    let wide = text(&predict(&["--interval", "0.9"]).stdout);
    assert!(
        wide.lines()
            .next()
            .unwrap()
            .ends_with(",low_90,high_90,outside_training")
    );
    let plain = text(&predict(&["--interval", "none"]).stdout);
    assert!(plain.lines().next().unwrap().ends_with(",predicted_price"));
    let bad = predict(&["--interval", "1.5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--interval"),
        "{}",
        text(&bad.stderr)
    );
    let (summary, _) = run_ok(&["summary", "--model", model.to_str().unwrap()], tmp.path());
    assert!(
        summary.contains("price ranges: split-conformal"),
        "{summary}"
    );
}

/// `houses.csv` in `dir`: `n` synthetic houses (`appraise synth --photos` into `dir/synth`)
/// whose photo cells, relative to the table's folder, name two photos each.
fn synth_photo_table(dir: &Path, n: usize) -> PathBuf {
    let synth = dir.join("synth");
    run_ok(
        &[
            "synth",
            "--houses",
            &n.to_string(),
            "--photos",
            "--out",
            synth.to_str().unwrap(),
        ],
        dir,
    );
    let info = std::fs::read_to_string(synth.join("HousesInfo.txt")).unwrap();
    let mut csv = String::from("house,bedrooms,bathrooms,area,zip,price,photo\n");
    for (i, line) in info.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let id = i + 1;
        let _ = writeln!(
            csv,
            "{id},{},{},{},{},{},synth/{id}_frontal.jpg;synth/{id}_kitchen.jpg",
            f[0], f[1], f[2], f[3], f[4]
        );
    }
    let table = dir.join("houses.csv");
    std::fs::write(&table, csv).unwrap();
    table
}

#[test]
fn the_tutorial_photo_networks_read_a_montage_of_each_rows_photos() {
    let dir = tempfile::tempdir().unwrap();
    let table = synth_photo_table(dir.path(), 48);
    let train = |model: &str, out: &Path| {
        run_ok(
            &[
                "train",
                "--data",
                table.to_str().unwrap(),
                "--model",
                model,
                "--epochs",
                "3",
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        )
    };
    for model in ["cnn", "mixed"] {
        let out = dir.path().join(model);
        let (stdout, _) = train(model, &out);
        assert!(stdout.contains("Conv2D"), "{stdout}");
        let file = out.join("model.appraise");
        // evaluate decodes the test rows' photos again: the same score.
        let (json, _) = run_ok(
            &["evaluate", "--model", file.to_str().unwrap(), "--json"],
            dir.path(),
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["mape"].as_f64().unwrap(),
            mape_of(&out.join("metrics.json"))
        );
        let (summary, _) = run_ok(&["summary", "--model", file.to_str().unwrap()], dir.path());
        assert!(summary.contains("64x64 montage"), "{summary}");
    }
    // The CNN reads the photos alone: rows that differ only in their other columns get the
    // same price; a row without photos is priced from black tiles; a missing photo is an
    // error naming it and the table's line.
    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "bedrooms,bathrooms,area,zip,photo\n3,2,1500,90003,synth/1_frontal.jpg\n\
         6,5,9000,90011,synth/1_frontal.jpg\n3,2,1500,90003,\n",
    )
    .unwrap();
    let model = dir.path().join("cnn").join("model.appraise");
    let (prices, _) = predict_ok(&model, &new, dir.path());
    let priced: Vec<&str> = prices
        .lines()
        .skip(1)
        .map(|l| l.rsplit_once(',').unwrap().1)
        .collect();
    assert!(priced.len() == 3 && priced[0] == priced[1], "{prices}");
    assert_ne!(priced[0], priced[2], "{prices}");
    std::fs::write(
        &new,
        "bedrooms,bathrooms,area,zip,photo\n3,2,1500,90003,synth/1_frontal.jpg\n\
         3,2,1500,90003,synth/none.jpg\n",
    )
    .unwrap();
    let result = predict_run(&model, &new, dir.path());
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("none.jpg") && stderr.contains("column photo") && stderr.contains("line 3"),
        "{stderr}"
    );
    // A table without a photo column says what is missing.
    let bare = dir.path().join("bare.csv");
    std::fs::write(&bare, "bedrooms,area,price\n3,1500,100000\n4,2000,150000\n").unwrap();
    let result = appraise(
        &["train", "--data", bare.to_str().unwrap(), "--model", "cnn"],
        dir.path(),
    );
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no column of photo paths"), "{stderr}");
}

#[test]
fn the_photo_precision_is_kept_in_the_model_and_prices_its_photos() {
    let dir = tempfile::tempdir().unwrap();
    let table = synth_photo_table(dir.path(), 40);
    let light = dir.path().join("light.json");
    std::fs::write(
        &light,
        r#"{"max_epochs": 20, "patience": 5, "weight_decays": [0.0001], "ridge_penalties": [0.01], "seeds_per_fold": 1, "trees": false}"#,
    )
    .unwrap();
    let train = |precision: &str| {
        let out = dir.path().join(precision);
        let args = [
            "train",
            "--data",
            table.to_str().unwrap(),
            "--recipe",
            "best",
            "--recipe-photos",
            "on",
            "--recipe-config",
            light.to_str().unwrap(),
            "--photo-precision",
            precision,
            "--out",
            out.to_str().unwrap(),
        ];
        run_ok(&args, dir.path());
        out
    };
    for precision in ["bf16", "int8"] {
        let run = train(precision);
        let model = run.join("model.appraise");
        let (summary, _) = run_ok(&["summary", "--model", model.to_str().unwrap()], dir.path());
        assert!(
            summary.contains(&format!("{precision} products")),
            "{summary}"
        );
        // evaluate embeds the test rows' photos again, in the model's precision: the same
        // score as training measured (float32 embeddings would move it).
        let (json, _) = run_ok(
            &["evaluate", "--model", model.to_str().unwrap(), "--json"],
            dir.path(),
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["mape"].as_f64().unwrap(),
            mape_of(&run.join("metrics.json"))
        );
    }
    // A float32 model names its precision too (files without one are from before the kernels).
    let f32 = train("f32");
    let (summary, _) = run_ok(
        &[
            "summary",
            "--model",
            f32.join("model.appraise").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(summary.contains("f32 products"), "{summary}");
    assert!(
        std::fs::read(f32.join("model.appraise")).unwrap()
            != std::fs::read(dir.path().join("int8/model.appraise")).unwrap()
    );
    // The tutorial's networks do not read the pretrained network.
    let result = appraise(
        &[
            "train",
            "--data",
            table.to_str().unwrap(),
            "--photo-precision",
            "bf16",
        ],
        dir.path(),
    );
    assert_eq!(result.status.code(), Some(2));
    assert!(
        text(&result.stderr).contains("--recipe best"),
        "{}",
        text(&result.stderr)
    );
}

#[test]
fn a_photo_column_feeds_the_recipe_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let table = synth_photo_table(dir.path(), 60);
    let light = dir.path().join("light.json");
    std::fs::write(
        &light,
        r#"{"max_epochs": 40, "patience": 10, "weight_decays": [0.0001], "ridge_penalties": [0.01], "seeds_per_fold": 1}"#,
    )
    .unwrap();
    let out = dir.path().join("run");
    let train = |extra: &[&str], out: &Path| {
        let mut args = vec![
            "train",
            "--data",
            table.to_str().unwrap(),
            "--recipe",
            "best",
            "--recipe-config",
            light.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args, dir.path())
    };
    let (stdout, _) = train(&["--recipe-photos", "on"], &out);
    let photo_line = stdout.lines().find(|l| l.starts_with("photo ")).unwrap();
    assert!(photo_line.contains("photos"), "{photo_line}");
    assert!(
        stdout.contains("photo price head: ridge on 1 x 1280"),
        "{stdout}"
    );
    assert!(
        stdout.contains("recipe chose: ") && stdout.contains("+ photo price"),
        "{stdout}"
    );
    let model = out.join("model.appraise");
    let (summary, _) = run_ok(&["summary", "--model", model.to_str().unwrap()], dir.path());
    assert!(summary.contains("photos of photo"), "{summary}");
    // evaluate embeds the test rows' photos again: the same score.
    let (json, _) = run_ok(
        &["evaluate", "--model", model.to_str().unwrap(), "--json"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["mape"].as_f64().unwrap(),
        mape_of(&out.join("metrics.json"))
    );
    // predict reads the new rows' photos; a missing one is an error naming it.
    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "bedrooms,bathrooms,area,zip,photo\n3,2,1500,90003,synth/1_frontal.jpg\n",
    )
    .unwrap();
    let (prices, _) = predict_ok(&model, &new, dir.path());
    assert!(
        prices
            .lines()
            .nth(1)
            .unwrap()
            .contains("synth/1_frontal.jpg,"),
        "{prices}"
    );
    std::fs::write(
        &new,
        "bedrooms,bathrooms,area,zip,photo\n3,2,1500,90003,synth/none.jpg\n",
    )
    .unwrap();
    let result = predict_run(&model, &new, dir.path());
    assert_eq!(result.status.code(), Some(2));
    assert!(
        text(&result.stderr).contains("none.jpg"),
        "{}",
        text(&result.stderr)
    );
    // With the photos off the model reads none.
    let off = dir.path().join("off");
    let (stdout, _) = train(&["--recipe-photos", "off"], &off);
    assert!(!stdout.contains("photo price"), "{stdout}");
    // `--model mixed-pretrained` is the recipe with its photo inputs on, as on the Houses
    // dataset: the same model file as `--recipe best --recipe-photos on`.
    let mixed = dir.path().join("mixed");
    run_ok(
        &[
            "train",
            "--data",
            table.to_str().unwrap(),
            "--model",
            "mixed-pretrained",
            "--recipe",
            "best",
            "--recipe-config",
            light.to_str().unwrap(),
            "--out",
            mixed.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        std::fs::read(mixed.join("model.appraise")).unwrap()
            == std::fs::read(out.join("model.appraise")).unwrap(),
        "--model mixed-pretrained trained another model than --recipe-photos on"
    );
    // `--model photos-pretrained`: the photos' price is the only input, so rows that differ
    // only in their other columns get the same price.
    let only = dir.path().join("only");
    let (stdout, _) = run_ok(
        &[
            "train",
            "--data",
            table.to_str().unwrap(),
            "--model",
            "photos-pretrained",
            "--recipe",
            "best",
            "--recipe-config",
            light.to_str().unwrap(),
            "--out",
            only.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(stdout.contains("on the photo price alone"), "{stdout}");
    std::fs::write(
        &new,
        "bedrooms,bathrooms,area,zip,photo\n3,2,1500,90003,synth/1_frontal.jpg\n\
         6,5,9000,90011,synth/1_frontal.jpg\n",
    )
    .unwrap();
    let (prices, _) = predict_ok(&only.join("model.appraise"), &new, dir.path());
    let priced: Vec<&str> = prices
        .lines()
        .skip(1)
        .map(|l| l.split_once("synth/1_frontal.jpg,").unwrap().1)
        .collect();
    assert!(priced.len() == 2 && priced[0] == priced[1], "{prices}");
    // Without a photo column it says what is missing.
    let bare = dir.path().join("bare.csv");
    let text_without_photos: String = std::fs::read_to_string(&table)
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(&bare, text_without_photos).unwrap();
    let result = appraise(
        &[
            "train",
            "--data",
            bare.to_str().unwrap(),
            "--model",
            "mixed-pretrained",
        ],
        dir.path(),
    );
    assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
    assert!(
        text(&result.stderr).contains("no column of photo paths"),
        "{}",
        text(&result.stderr)
    );
}

/// The coverage and median width `train` or `evaluate` reports for the range at `level`
/// ("80% price range: covers 81.3% of the test rows, median width 81.4% of the price").
fn reported_coverage(stdout: &str, level: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| {
            l.contains(&format!("{level}% price range: covers "))
                || l.starts_with(&format!("{level}% range:  covers "))
        })
        .unwrap_or_else(|| panic!("no {level}% coverage line in\n{stdout}"));
    let numbers: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    // level, covered, median width
    (numbers[1], numbers[numbers.len() - 1])
}

/// On synthetic data whose noise is known (ln price has Normal(0, 0.1) noise), the ranges
/// hold at least what they promise on 1,000 test rows, are no narrower than that noise
/// allows, and come back identical from the saved model.
#[test]
fn ranges_cover_their_level_on_data_with_known_noise() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("synthetic.csv");
    run_ok(
        &[
            "synth",
            "--table",
            "--houses",
            "4000",
            "--out",
            table.to_str().unwrap(),
        ],
        dir.path(),
    );
    let out = dir.path().join("run");
    let (stdout, _) = run_ok(
        &[
            "train",
            "--data",
            table.to_str().unwrap(),
            "--target",
            "price",
            "--epochs",
            "15",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let (covered_80, width_80) = reported_coverage(&stdout, "80");
    let (covered_90, width_90) = reported_coverage(&stdout, "90");
    // 1,000 test rows: the sampling error of a coverage is ~1.3 points, so 4 points below
    // nominal would be a range that promises more than it holds. Above, the K-fold ranges
    // are known to be conservative on synthetic data (~84% at 80%; BENCHMARKS.md), so up
    // to 7 points are allowed there.
    assert!(
        (76.0..=87.0).contains(&covered_80),
        "80%: {covered_80}\n{stdout}"
    );
    assert!(
        (86.0..=96.0).contains(&covered_90),
        "90%: {covered_90}\n{stdout}"
    );
    // Even a perfect model's 80% range spans exp(+-1.2816 x 0.1): 25.7% of the price.
    assert!(
        width_80 >= 25.7 && width_90 > width_80,
        "{width_80} {width_90}"
    );

    // The saved model gives the same ranges: evaluate on the same test rows reports the same.
    let (evaluated, _) = run_ok(
        &[
            "evaluate",
            "--model",
            out.join("model.appraise").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(reported_coverage(&evaluated, "80"), (covered_80, width_80));
    assert_eq!(reported_coverage(&evaluated, "90"), (covered_90, width_90));
}

#[test]
fn cv_of_a_table_runs_splits_side_by_side_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_csv(dir.path(), "listings.csv", 120);
    let cv = |jobs: &str| {
        run_ok(
            &[
                "cv",
                "--data",
                data.to_str().unwrap(),
                "--recipe",
                "best",
                "--recipe-config",
                "tiny.json",
                "--folds",
                "3",
                "--jobs",
                jobs,
            ],
            dir.path(),
        )
        .0
    };
    std::fs::write(
        dir.path().join("tiny.json"),
        r#"{"max_epochs": 30, "patience": 5, "seeds_per_fold": 1}"#,
    )
    .unwrap();
    let one = cv("1");
    assert!(one.contains("fold 3/3"), "{one}");
    assert!(one.contains("Mean ± standard deviation"), "{one}");
    assert_eq!(cv("3"), one);
}

/// With `per_area`, a table whose prices are a price per square foot times the area gets
/// candidates that predict ln(price per area unit); chosen, they make a model of format 9
/// that `evaluate` reproduces exactly and `summary` describes, and that prices a row
/// without an area at the training rows' median area.
#[test]
fn a_recipe_that_prices_per_area_unit_saves_evaluates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_csv(dir.path(), "listings.csv", 200);
    std::fs::write(
        dir.path().join("per-area.json"),
        r#"{"max_epochs": 60, "patience": 10, "seeds_per_fold": 1, "per_area": true}"#,
    )
    .unwrap();
    let out = dir.path().join("run");
    let (stdout, _) = run_ok(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--area",
            "sqft",
            "--recipe",
            "best",
            "--recipe-config",
            "per-area.json",
            "--out",
            out.to_str().unwrap(),
            "--verbose",
        ],
        dir.path(),
    );
    let chose = stdout
        .lines()
        .find(|l| l.contains("recipe chose:"))
        .unwrap_or_else(|| panic!("no choice in\n{stdout}"));
    assert!(chose.contains("per area unit"), "{chose}");
    let model = out.join("model.appraise");
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 9);
    let (json, _) = run_ok(
        &["evaluate", "--model", model.to_str().unwrap(), "--json"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["mape"].as_f64().unwrap(),
        mape_of(&out.join("metrics.json"))
    );
    let (summary, _) = run_ok(&["summary", "--model", model.to_str().unwrap()], dir.path());
    assert!(summary.contains("prices per unit of sqft"), "{summary}");
    // Twice the area, about twice the price; no area: the median's price.
    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "listing,zip,sqft,type,lot\nN1,95801,1000,house,3000\nN2,95801,2000,house,3000\nN3,95801,,house,3000\n",
    )
    .unwrap();
    let (prices, _) = predict_ok(&model, &new, dir.path());
    let price = |line: usize| -> f64 {
        let row = prices.lines().nth(line).unwrap();
        row.split(',').nth(5).unwrap().parse().unwrap()
    };
    assert!((1.6..2.4).contains(&(price(2) / price(1))), "{prices}");
    assert!(price(3) > 0.0, "{prices}");
}

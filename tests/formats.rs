//! Every earlier model format still loads and prices exactly as the release that wrote it.
//!
//! `tests/fixtures/formats/` holds one small model file of each format version (1 to 10; the
//! table models of format 6 in three kinds), written by `tools/make_format_fixtures.sh`, and
//! beside each the JSON `appraise predict` printed for the same houses with the release that
//! wrote it. Prices are printed to the cent, so a change of a network's float rounding shows.

mod common;

use std::path::{Path, PathBuf};

use common::{appraise, text};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

/// The model files, by name.
fn models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "appraise"))
        .collect();
    models.sort();
    models
}

/// The format version in a model file's header.
fn version(model: &Path) -> u32 {
    let bytes = std::fs::read(model).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

#[test]
fn there_is_a_fixture_of_every_format() {
    let mut versions: Vec<u32> = models().iter().map(|m| version(m)).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
}

#[test]
fn every_earlier_format_prices_as_the_release_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    for model in models() {
        let name = model.file_stem().unwrap().to_str().unwrap().to_string();
        let input = if ["format6-", "format8-", "format9-", "format10-"]
            .iter()
            .any(|f| name.starts_with(f))
        {
            vec!["--input", "table.csv"]
        } else {
            vec!["--input", "houses.csv", "--photos", "photos"]
        };
        let mut args = vec![
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend(input);
        // The photo feature cache goes to a temporary folder, not the user's.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_appraise"))
            .args(&args)
            .current_dir(&fixtures)
            .env("XDG_CACHE_HOME", dir.path())
            .env_remove("APPRAISE_DATASET")
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        // Each house's price and range, to the cent, and what lies outside the training data.
        let priced = |json: &str| -> Vec<Vec<serde_json::Value>> {
            let rows: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
            rows.iter()
                .map(|r| {
                    ["predicted_price", "low_80", "high_80", "outside_training"]
                        .map(|k| r[k].clone())
                        .to_vec()
                })
                .collect()
        };
        let expected = std::fs::read_to_string(fixtures.join(format!("{name}.json"))).unwrap();
        assert_eq!(
            priced(&text(&output.stdout)),
            priced(&expected),
            "{name}: prices changed"
        );
        let summary = appraise(&["summary", "--model", model.to_str().unwrap()], dir.path());
        assert!(
            summary.status.success(),
            "{name}: {}",
            text(&summary.stderr)
        );
    }
}

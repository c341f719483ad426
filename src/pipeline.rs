//! The tutorial's whole run: load the attributes, split, preprocess, train, predict, score,
//! and write the run folder. The CLI's `train` is a thin layer over [`run`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::dataset::{self, House};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, abs_pct_error};
use crate::model::{Mlp, MlpConfig};
use crate::preprocess::Preprocessor;
use crate::split::{Split, train_test_split};
use crate::train::{EpochRecord, Table, TrainConfig, predict, train_mlp};

/// Which houses to use and how to split them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// Drop houses whose zip code occurs fewer times than this.
    pub min_zip_count: usize,
    /// Fraction of houses held out for testing.
    pub test_size: f64,
    /// `random_state` of scikit-learn's `train_test_split`.
    pub split_seed: u32,
}

impl Default for DataConfig {
    /// The tutorial's settings.
    fn default() -> Self {
        Self {
            min_zip_count: 25,
            test_size: 0.25,
            split_seed: 42,
        }
    }
}

/// Everything that determines a run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunConfig {
    /// Data selection and split.
    pub data: DataConfig,
    /// Network shape.
    pub model: MlpConfig,
    /// Training settings.
    pub train: TrainConfig,
}

/// The steps of a run, announced as they start (the tutorial's `[INFO]` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading `HousesInfo.txt`.
    Loading,
    /// Splitting into training and test houses.
    Splitting,
    /// Fitting and applying the preprocessing.
    Processing,
    /// Training the network.
    Training,
    /// Predicting the test houses.
    Predicting,
}

impl Stage {
    /// The tutorial's wording.
    pub fn message(self) -> &'static str {
        match self {
            Stage::Loading => "loading house attributes...",
            Stage::Splitting => "constructing training/testing split...",
            Stage::Processing => "processing data...",
            Stage::Training => "training model...",
            Stage::Predicting => "predicting house prices...",
        }
    }
}

/// Receives progress from [`run`]; the CLI prints it, a library user may ignore it.
pub trait Observer {
    /// A step is starting.
    fn stage(&mut self, _stage: Stage) {}
    /// An epoch has finished.
    fn epoch(&mut self, _record: &EpochRecord, _epochs: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// The houses of a run, split and preprocessed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Houses kept by the zip filter, in file order.
    pub houses: Vec<House>,
    /// Positions into `houses`.
    pub split: Split,
    /// Preprocessing fitted on the training houses.
    pub preprocessor: Preprocessor,
    /// Training features and targets.
    pub train: Table,
    /// Test features and targets.
    pub test: Table,
}

impl Prepared {
    /// The test houses, in split order.
    pub fn test_houses(&self) -> Vec<House> {
        self.split.test.iter().map(|&i| self.houses[i]).collect()
    }
}

fn pick(houses: &[House], rows: &[usize]) -> Vec<House> {
    rows.iter().map(|&i| houses[i]).collect()
}

/// Keeps the houses whose zip code is common enough; refuses when fewer than 2 remain.
pub fn filter(all: &[House], config: &DataConfig) -> Result<Vec<House>> {
    let houses = dataset::filter_min_zip_count(all, config.min_zip_count);
    if houses.len() < 2 {
        return Err(Error::Usage(format!(
            "only {} of {} houses have a zip code that occurs at least {} times (--min-zip-count); \
             at least 2 are needed to train and test",
            houses.len(),
            all.len(),
            config.min_zip_count
        )));
    }
    Ok(houses)
}

/// Preprocesses `houses` (already filtered) for a given split.
pub fn prepare_split(houses: Vec<House>, split: Split) -> Prepared {
    let train_houses = pick(&houses, &split.train);
    let test_houses = pick(&houses, &split.test);
    let preprocessor = Preprocessor::fit(&houses, &train_houses);
    let table = |h: &[House]| Table {
        features: preprocessor.features(h),
        n_features: preprocessor.n_features(),
        targets: preprocessor.targets(h),
    };
    let (train, test) = (table(&train_houses), table(&test_houses));
    Prepared {
        houses,
        split,
        preprocessor,
        train,
        test,
    }
}

/// Filters, splits and preprocesses `all` houses as the tutorial does.
pub fn prepare(all: &[House], config: &DataConfig) -> Result<Prepared> {
    let houses = filter(all, config)?;
    let split = train_test_split(houses.len(), config.test_size, config.split_seed)?;
    Ok(prepare_split(houses, split))
}

/// One scored test house.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// 1-based line of `HousesInfo.txt`.
    pub house: usize,
    /// Actual price in dollars.
    pub price: f64,
    /// Predicted price in dollars.
    pub predicted: f64,
    /// `|predicted - price| / price * 100`.
    pub abs_pct_error: f64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The settings used.
    pub config: RunConfig,
    /// [`dataset::fingerprint`] of the `HousesInfo.txt` trained on.
    pub dataset_fingerprint: String,
    /// Houses in that file (before the zip filter).
    pub dataset_houses: usize,
    /// The data as split and preprocessed.
    pub prepared: Prepared,
    /// The trained network, its history and its test scores.
    pub fitted: Fitted,
    /// Mean price of the kept houses (the tutorial's "avg. house price").
    pub price_mean: f64,
    /// Sample standard deviation of their prices (the tutorial's "std house price").
    pub price_std: f64,
}

/// A network trained on a prepared split, and its scores on the test houses.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The trained network (evaluation mode).
    pub model: Mlp,
    /// Loss per epoch.
    pub history: Vec<EpochRecord>,
    /// One row per test house.
    pub predictions: Vec<Prediction>,
    /// Scores on the test houses.
    pub metrics: Metrics,
}

/// Trains on `prepared.train`, validates on `prepared.test` after every epoch, and scores the
/// test houses.
pub fn fit_and_score(
    prepared: &Prepared,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<Fitted> {
    observer.stage(Stage::Training);
    let epochs = config.train.epochs;
    let (model, history) = train_mlp(
        &config.model,
        &config.train,
        &prepared.train,
        &prepared.test,
        |record| observer.epoch(record, epochs),
    )?;
    observer.stage(Stage::Predicting);
    let scaled = predict(&model, &prepared.test.features, prepared.test.n_features);
    let predictions: Vec<Prediction> = prepared
        .test_houses()
        .iter()
        .zip(&scaled)
        .map(|(house, &s)| {
            let predicted = prepared.preprocessor.price(s);
            Prediction {
                house: house.id,
                price: house.price,
                predicted,
                abs_pct_error: abs_pct_error(house.price, predicted),
            }
        })
        .collect();
    let actual: Vec<f64> = predictions.iter().map(|p| p.price).collect();
    let predicted: Vec<f64> = predictions.iter().map(|p| p.predicted).collect();
    let metrics = Metrics::compute(&actual, &predicted);
    Ok(Fitted {
        model,
        history,
        predictions,
        metrics,
    })
}

/// Runs the tutorial pipeline on the dataset folder `dataset_dir`.
pub fn run(
    dataset_dir: &Path,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<RunResult> {
    config.train.validate()?;
    observer.stage(Stage::Loading);
    let dataset = dataset::load_houses(&dataset_dir.join(dataset::INFO_FILE))?;
    observer.stage(Stage::Splitting);
    observer.stage(Stage::Processing);
    let prepared = prepare(&dataset.houses, &config.data)?;
    let fitted = fit_and_score(&prepared, config, observer)?;
    let (price_mean, price_std) = dataset::price_mean_std(&prepared.houses);
    Ok(RunResult {
        config: config.clone(),
        dataset_fingerprint: dataset.fingerprint,
        dataset_houses: dataset.houses.len(),
        prepared,
        fitted,
        price_mean,
        price_std,
    })
}

/// `predictions.csv`: `house,price,predicted,abs_pct_error`.
pub fn predictions_csv(predictions: &[Prediction]) -> String {
    let mut out = String::from("house,price,predicted,abs_pct_error\n");
    for p in predictions {
        let _ = writeln!(
            out,
            "{},{},{:.2},{:.4}",
            p.house, p.price, p.predicted, p.abs_pct_error
        );
    }
    out
}

/// `history.csv`: `epoch,loss,val_loss,learning_rate`.
pub fn history_csv(history: &[EpochRecord]) -> String {
    let mut out = String::from("epoch,loss,val_loss,learning_rate\n");
    for r in history {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            r.epoch, r.loss, r.val_loss, r.learning_rate
        );
    }
    out
}

/// The first `runs/<model>-N` folder that does not exist yet.
pub fn default_out_dir(model: &str) -> PathBuf {
    (1..)
        .map(|n| PathBuf::from(format!("runs/{model}-{n}")))
        .find(|p| !p.exists())
        .expect("some run number is free")
}

/// Writes the run folder: `predictions.csv`, `history.csv`, `metrics.json`, `config.json`.
/// Each file is written atomically.
pub fn write_outputs(result: &RunResult, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    atomic::write(
        &out_dir.join("predictions.csv"),
        predictions_csv(&result.fitted.predictions).as_bytes(),
    )?;
    atomic::write(
        &out_dir.join("history.csv"),
        history_csv(&result.fitted.history).as_bytes(),
    )?;
    atomic::write(
        &out_dir.join("metrics.json"),
        to_json(&result.fitted.metrics).as_bytes(),
    )?;
    atomic::write(
        &out_dir.join("config.json"),
        to_json(&result.config).as_bytes(),
    )?;
    Ok(())
}

/// Pretty JSON of a plain-data value, newline-terminated.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain data serializes to JSON");
    text.push('\n');
    text
}

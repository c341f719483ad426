//! The tutorial's whole run: load the attributes, split, preprocess, train, predict, score,
//! and write the run folder. The CLI's `train` is a thin layer over [`run`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::dataset::{self, House};
use crate::error::{Error, Result};
use crate::extractor::{Backbone, PhotoFeatures};
use crate::interval::{Calibration, Coverage};
use crate::metrics::{Metrics, abs_pct_error};
use crate::model::{ModelSpec, Network};
use crate::photos::{self, MONTAGE_BYTES, Montages};
use crate::preprocess::Preprocessor;
use crate::split::{Split, train_test_split};
use crate::train::{EpochRecord, Table, TrainConfig, predict};

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
    /// Network kind and shape.
    #[serde(deserialize_with = "crate::model::spec_or_legacy")]
    pub model: ModelSpec,
    /// Training settings.
    pub train: TrainConfig,
    /// Opt-in: the `best` recipe instead of the tutorial's network (`None`: tutorial mode).
    pub recipe: Option<crate::recipe::RecipeConfig>,
    /// How the tutorial's network gets its price ranges (the recipe calibrates its own).
    pub ranges: crate::interval::RangeConfig,
}

impl RunConfig {
    /// Whether the run reads the houses' photos.
    pub fn needs_photos(&self) -> bool {
        match &self.recipe {
            Some(recipe) => recipe.photos != crate::recipe::PhotoUse::Off,
            None => self.model.uses_photos(),
        }
    }
}

/// What a run reads from the houses' photos, per house in the order of the kept houses.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PhotoInputs {
    /// Nothing (attributes only).
    #[default]
    None,
    /// The 64x64 montages the tutorial's photo networks read.
    Montages(Montages),
    /// The pretrained network's embeddings of every photo ([`crate::extractor`]), which the
    /// recipe and the pretrained photo model read.
    Features(PhotoFeatures),
}

/// The steps of a run, announced as they start (the tutorial's `[INFO]` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading `HousesInfo.txt`.
    Loading,
    /// Decoding the photos (photo models only).
    LoadingImages,
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
            Stage::LoadingImages => "loading house images...",
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
    /// Photo decoding of `total` houses is starting; the returned function hears how many are done.
    fn photos(&mut self, _total: usize) -> Box<dyn Fn(usize) + Sync> {
        Box::new(|_| {})
    }
    /// The network about to be trained, as Keras's `model.summary()` prints it.
    fn model_summary(&mut self, _summary: &str) {}
    /// A line of information (the recipe's candidates and choice).
    fn note(&mut self, _line: &str) {}
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
    /// The pretrained photo features of each house of `houses` (`None` when the run does not
    /// read them).
    pub photo_features: Option<PhotoFeatures>,
}

impl Prepared {
    /// The test houses, in split order.
    pub fn test_houses(&self) -> Vec<House> {
        pick(&self.houses, &self.split.test)
    }

    /// The training houses, in split order.
    pub fn train_houses(&self) -> Vec<House> {
        pick(&self.houses, &self.split.train)
    }

    /// The photo features of the training and the test houses, in split order (`None` when
    /// not read).
    pub fn split_photo_features(&self) -> Option<(PhotoFeatures, PhotoFeatures)> {
        let f = self.photo_features.as_ref()?;
        Some((f.pick(&self.split.train), f.pick(&self.split.test)))
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

/// Preprocesses `houses` (already filtered) for a given split. `photos` holds what was read
/// from the photos of every house of `houses`, in the same order: with montages, the tables
/// carry images.
pub fn prepare_split(houses: Vec<House>, split: Split, photos: &PhotoInputs) -> Prepared {
    let montages = match photos {
        PhotoInputs::Montages(m) => Some(m),
        _ => None,
    };
    let train_houses = pick(&houses, &split.train);
    let test_houses = pick(&houses, &split.test);
    let preprocessor = Preprocessor::fit(&houses, &train_houses);
    let table = |h: &[House], rows: &[usize]| {
        let mut images = Vec::new();
        if let Some(m) = montages {
            debug_assert_eq!(m.ids.len(), houses.len());
            images.reserve(rows.len() * MONTAGE_BYTES);
            for &row in rows {
                photos::push_network_input(m.get(row), &mut images);
            }
        }
        Table {
            features: preprocessor.features(h),
            n_features: preprocessor.n_features(),
            targets: preprocessor.targets(h),
            images,
        }
    };
    let (train, test) = (
        table(&train_houses, &split.train),
        table(&test_houses, &split.test),
    );
    Prepared {
        houses,
        split,
        preprocessor,
        train,
        test,
        photo_features: match photos {
            PhotoInputs::Features(f) => Some(f.clone()),
            _ => None,
        },
    }
}

/// Filters, splits and preprocesses `all` houses as the tutorial does (attributes only).
pub fn prepare(all: &[House], config: &DataConfig) -> Result<Prepared> {
    let houses = filter(all, config)?;
    let split = train_test_split(houses.len(), config.test_size, config.split_seed)?;
    Ok(prepare_split(houses, split, &PhotoInputs::None))
}

/// What `config` reads from the photos of `houses` in `dataset_dir` (through the cache in
/// `cache_dir` when given): montages for the tutorial's photo networks, the pretrained
/// network's features for the recipe, or nothing.
pub fn load_photos(
    dataset_dir: &Path,
    houses: &[House],
    config: &RunConfig,
    cache_dir: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<PhotoInputs> {
    if !config.needs_photos() {
        return Ok(PhotoInputs::None);
    }
    if config.recipe.is_some() {
        observer.stage(Stage::LoadingImages);
        let ids: Vec<usize> = houses.iter().map(|h| h.id).collect();
        let progress = observer.photos(ids.len());
        let features = crate::extractor::featurize_cached(
            Backbone::default(),
            dataset_dir,
            &ids,
            cache_dir,
            &*progress,
        )?;
        return Ok(PhotoInputs::Features(features));
    }
    Ok(PhotoInputs::Montages(load_montages(
        dataset_dir,
        houses,
        cache_dir,
        observer,
    )?))
}

/// The montages of `houses` from the photos in `dataset_dir`, through the cache in
/// `cache_dir` when given.
pub fn load_montages(
    dataset_dir: &Path,
    houses: &[House],
    cache_dir: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<Montages> {
    observer.stage(Stage::LoadingImages);
    let ids: Vec<usize> = houses.iter().map(|h| h.id).collect();
    let progress = observer.photos(ids.len());
    let (montages, _) = photos::ingest(dataset_dir, &ids, cache_dir, &*progress)?;
    Ok(montages)
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
    pub model: Network,
    /// Loss per epoch.
    pub history: Vec<EpochRecord>,
    /// One row per test house.
    pub predictions: Vec<Prediction>,
    /// Scores on the test houses.
    pub metrics: Metrics,
    /// For the `best` recipe: its inputs and choices (saved with the model).
    pub recipe: Option<crate::recipe::RecipeFit>,
    /// The out-of-fold errors the model's price ranges come from (`None`: no ranges).
    pub calibration: Option<Calibration>,
}

impl Fitted {
    /// How the model's price ranges held on the test houses, at 80% and 90% (empty when the
    /// model gives none).
    pub fn coverage(&self) -> Vec<crate::interval::Coverage> {
        let Some(c) = &self.calibration else {
            return Vec::new();
        };
        let actual: Vec<f64> = self.predictions.iter().map(|p| p.price).collect();
        let predicted: Vec<f64> = self.predictions.iter().map(|p| p.predicted).collect();
        Coverage::all_reported(c, &actual, &predicted)
    }
}

/// Trains on `prepared.train`, validates on `prepared.test` after every epoch, and scores the
/// test houses.
pub fn fit_and_score(
    prepared: &Prepared,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<Fitted> {
    observer.stage(Stage::Training);
    if let Some(recipe) = &config.recipe {
        let fitted = crate::recipe::fit(prepared, recipe, config.train.seed, observer)?;
        observer.stage(Stage::Predicting);
        return Ok(fitted);
    }
    config.ranges.validate()?;
    observer.model_summary(&config.model.summary(prepared.train.n_features));
    let epochs = config.train.epochs;
    let (model, history) = crate::train::train(
        &config.model,
        &config.train,
        &prepared.train,
        &prepared.test,
        |record| observer.epoch(record, epochs),
    )?;
    let calibration = calibrate(prepared, config, observer)?;
    observer.stage(Stage::Predicting);
    let test = &prepared.test;
    let scaled = predict(&model, &test.features, test.n_features, &test.images);
    let prices = scaled.into_iter().map(|s| prepared.preprocessor.price(s));
    let (predictions, metrics) = score(&prepared.test_houses(), prices);
    Ok(Fitted {
        model,
        history,
        predictions,
        metrics,
        recipe: None,
        calibration,
    })
}

/// The price ranges of a tutorial network: the K-fold pass of `config.ranges` over the
/// training houses (`None` when it has no folds). The folds reuse the preprocessing fitted on
/// all training houses (its min-max scaling and price scale), as the final network does.
fn calibrate(
    prepared: &Prepared,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<Option<Calibration>> {
    let folds = config
        .ranges
        .folds(config.model.uses_photos(), prepared.train.rows());
    if folds == 0 {
        return Ok(None);
    }
    observer.note(&format!(
        "calibrating price ranges: {folds}-fold pass over the training houses ({folds} more networks)"
    ));
    let train = &prepared.train;
    let splits = crate::split::kfold_seeded(train.rows(), folds, config.train.seed)?;
    let outputs = crate::train::out_of_fold(&config.model, &config.train, train, &splits)?;
    let actual: Vec<f64> = prepared.train_houses().iter().map(|h| h.price).collect();
    let predicted: Vec<f64> = outputs
        .into_iter()
        .map(|s| prepared.preprocessor.price(s))
        .collect();
    Ok(Some(Calibration::from_out_of_fold(&actual, &predicted)))
}

/// One [`Prediction`] per house from its predicted price, and the scores.
pub fn score(
    houses: &[House],
    predicted: impl IntoIterator<Item = f64>,
) -> (Vec<Prediction>, Metrics) {
    let predictions: Vec<Prediction> = houses
        .iter()
        .zip(predicted)
        .map(|(house, predicted)| Prediction {
            house: house.id,
            price: house.price,
            predicted,
            abs_pct_error: abs_pct_error(house.price, predicted),
        })
        .collect();
    let actual: Vec<f64> = predictions.iter().map(|p| p.price).collect();
    let prices: Vec<f64> = predictions.iter().map(|p| p.predicted).collect();
    let metrics = Metrics::compute(&actual, &prices);
    (predictions, metrics)
}

/// Runs the tutorial pipeline on the dataset folder `dataset_dir`, with the photo cache in
/// its default place ([`photos::default_cache_dir`]).
pub fn run(
    dataset_dir: &Path,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<RunResult> {
    run_with_cache(
        dataset_dir,
        config,
        Some(&photos::default_cache_dir()),
        observer,
    )
}

/// [`run`] with the photo cache in `cache_dir`, or no cache.
pub fn run_with_cache(
    dataset_dir: &Path,
    config: &RunConfig,
    cache_dir: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<RunResult> {
    config.train.validate()?;
    config.model.validate().map_err(Error::Usage)?;
    observer.stage(Stage::Loading);
    let dataset = dataset::load_houses(&dataset_dir.join(dataset::INFO_FILE))?;
    let houses = filter(&dataset.houses, &config.data)?;
    let photos = load_photos(dataset_dir, &houses, config, cache_dir, observer)?;
    observer.stage(Stage::Splitting);
    let split = train_test_split(houses.len(), config.data.test_size, config.data.split_seed)?;
    observer.stage(Stage::Processing);
    let prepared = prepare_split(houses, split, &photos);
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

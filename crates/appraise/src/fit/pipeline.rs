//! The tutorial's whole run: load the attributes, split, preprocess, train, predict, score,
//! and write the run folder. The CLI's `train` is a thin layer over [`run`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::dataset::{self, House};
use crate::data::split::train_test_split;
use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;
use crate::fit::interval::{Calibration, Coverage};
use crate::fit::train::{EpochRecord, TrainConfig, predict};
use crate::io::atomic;
use crate::models::{ModelSpec, Network};
use crate::photos::extractor::Backbone;
use crate::photos::montage::{self as photos, Montages};
use crate::runtime::cancel::Cancel;
use crate::runtime::context::Context;

pub use crate::evaluate::metrics::{Prediction, score};
pub use crate::features::prepared::{
    DataConfig, PhotoInputs, Prepared, filter, prepare, prepare_split,
};
pub use crate::runtime::observer::{Observer, Silent, Stage};

/// Everything that determines a run's result.
///
/// Stored (in `config.json` and model files) in the shape it had before [`Method`]: a
/// `model` beside an optional `recipe`, so files of every version read the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(from = "StoredRunConfig", into = "StoredRunConfig")]
pub struct RunConfig {
    /// Data selection and split.
    pub data: DataConfig,
    /// How the model is made: the tutorial's network or the best recipe.
    pub method: Method,
    /// Training settings: all of them for the tutorial's network; the recipe, which chooses
    /// its own networks and training, reads only the seed, the device and the stop flag.
    pub train: TrainConfig,
    /// How the tutorial's network gets its price ranges (the recipe calibrates its own).
    pub ranges: crate::fit::interval::RangeConfig,
}

/// How a run makes its model.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// The tutorial's network of this kind and shape, trained with the run's settings.
    Tutorial(ModelSpec),
    /// The best recipe (README, "Beyond the tutorial").
    Recipe(crate::fit::recipe::RecipeConfig),
}

impl Default for Method {
    /// The tutorial's Part 1.
    fn default() -> Self {
        Method::Tutorial(ModelSpec::default())
    }
}

impl RunConfig {
    /// Whether the run reads the houses' photos.
    pub fn needs_photos(&self) -> bool {
        match &self.method {
            Method::Recipe(recipe) => recipe.photos != crate::fit::recipe::PhotoUse::Off,
            Method::Tutorial(spec) => spec.uses_photos(),
        }
    }

    /// The recipe's settings, in recipe mode.
    pub fn recipe(&self) -> Option<&crate::fit::recipe::RecipeConfig> {
        match &self.method {
            Method::Recipe(recipe) => Some(recipe),
            Method::Tutorial(_) => None,
        }
    }
}

/// [`RunConfig`] as stored.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
struct StoredRunConfig {
    data: DataConfig,
    /// The tutorial network's kind and shape (Part 1's in recipe mode, where it is not read).
    #[serde(deserialize_with = "crate::models::spec_or_legacy")]
    model: ModelSpec,
    train: TrainConfig,
    /// The recipe's settings in recipe mode; `None` in tutorial mode.
    recipe: Option<crate::fit::recipe::RecipeConfig>,
    ranges: crate::fit::interval::RangeConfig,
}

impl From<StoredRunConfig> for RunConfig {
    fn from(s: StoredRunConfig) -> Self {
        RunConfig {
            data: s.data,
            method: match s.recipe {
                Some(recipe) => Method::Recipe(recipe),
                None => Method::Tutorial(s.model),
            },
            train: s.train,
            ranges: s.ranges,
        }
    }
}

impl From<RunConfig> for StoredRunConfig {
    fn from(c: RunConfig) -> Self {
        let (model, recipe) = match c.method {
            Method::Tutorial(spec) => (spec, None),
            Method::Recipe(recipe) => (ModelSpec::default(), Some(recipe)),
        };
        StoredRunConfig {
            data: c.data,
            model,
            train: c.train,
            recipe,
            ranges: c.ranges,
        }
    }
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
    if matches!(config.method, Method::Recipe(_)) {
        observer.stage(Stage::LoadingImages);
        let ids: Vec<usize> = houses.iter().map(|h| h.id).collect();
        let features = with_photo_reports(observer, ids.len(), |progress, warn| {
            crate::photos::extractor::featurize_cached(
                Backbone::default(),
                dataset_dir,
                &ids,
                cache_dir,
                progress,
                warn,
                &config.train.cancel,
            )
        })?;
        return Ok(PhotoInputs::Features(features));
    }
    Ok(PhotoInputs::Montages(load_montages(
        dataset_dir,
        houses,
        cache_dir,
        &config.train.cancel,
        observer,
    )?))
}

/// The montages of `houses` from the photos in `dataset_dir`, through the cache in
/// `cache_dir` when given.
pub fn load_montages(
    dataset_dir: &Path,
    houses: &[House],
    cache_dir: Option<&Path>,
    cancel: &Cancel,
    observer: &mut dyn Observer,
) -> Result<Montages> {
    observer.stage(Stage::LoadingImages);
    let ids: Vec<usize> = houses.iter().map(|h| h.id).collect();
    let (montages, _) = with_photo_reports(observer, ids.len(), |progress, warn| {
        photos::ingest(dataset_dir, &ids, cache_dir, progress, warn, cancel)
    })?;
    Ok(montages)
}

/// Runs a photo loader over `total` houses with `observer`'s progress report and a warning
/// sink, then hands the warnings to `observer`: the loaders work on every core, and the
/// observer is not shared between threads.
fn with_photo_reports<T>(
    observer: &mut dyn Observer,
    total: usize,
    load: impl FnOnce(&(dyn Fn(usize) + Sync), &(dyn Fn(&str) + Sync)) -> Result<T>,
) -> Result<T> {
    let progress = observer.photos(total);
    let warnings = std::sync::Mutex::new(Vec::new());
    let loaded = load(&*progress, &|line: &str| {
        warnings
            .lock()
            .expect("no panic holds it")
            .push(line.to_string())
    })?;
    drop(progress);
    for line in warnings.into_inner().expect("no panic holds it") {
        observer.warning(&line);
    }
    Ok(loaded)
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
    pub recipe: Option<crate::fit::recipe::RecipeFit>,
    /// The out-of-fold errors the model's price ranges come from (`None`: no ranges).
    pub calibration: Option<Calibration>,
}

impl Fitted {
    /// How the model's price ranges held on the test houses, at 80% and 90% (empty when the
    /// model gives none).
    pub fn coverage(&self) -> Vec<crate::fit::interval::Coverage> {
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
    let spec = match &config.method {
        Method::Tutorial(spec) => spec,
        Method::Recipe(recipe) => return fit_recipe(prepared, recipe, config, observer),
    };
    config.ranges.validate()?;
    observer.model_summary(&spec.summary(prepared.train.n_features));
    let epochs = config.train.epochs;
    let (model, history) = crate::fit::train::train(
        spec,
        &config.train,
        &prepared.train,
        &prepared.test,
        |record| observer.epoch(record, epochs),
    )?;
    let calibration = calibrate(prepared, spec, config, observer)?;
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

/// [`fit_and_score`] with the best recipe.
fn fit_recipe(
    prepared: &Prepared,
    recipe: &crate::fit::recipe::RecipeConfig,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<Fitted> {
    let outcome = crate::fit::recipe::fit(
        prepared,
        recipe,
        config.train.seed,
        &config.train.cancel,
        observer,
    )?;
    observer.stage(Stage::Predicting);
    Ok(Fitted {
        model: outcome.model,
        history: outcome.history,
        predictions: outcome.predictions,
        metrics: outcome.metrics,
        calibration: outcome.recipe.calibration.clone(),
        recipe: Some(outcome.recipe),
    })
}

/// The price ranges of a tutorial network: the K-fold pass of `config.ranges` over the
/// training houses (`None` when it has no folds). The folds reuse the preprocessing fitted on
/// all training houses (its min-max scaling and price scale), as the final network does.
fn calibrate(
    prepared: &Prepared,
    spec: &ModelSpec,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<Option<Calibration>> {
    let folds = config
        .ranges
        .folds(spec.uses_photos(), prepared.train.rows());
    if folds == 0 {
        return Ok(None);
    }
    observer.note(&format!(
        "calibrating price ranges: {folds}-fold pass over the training houses ({folds} more networks)"
    ));
    let train = &prepared.train;
    let splits = crate::data::split::kfold_seeded(train.rows(), folds, config.train.seed)?;
    let outputs = crate::fit::train::out_of_fold(spec, &config.train, train, &splits)?;
    let actual: Vec<f64> = prepared.train_houses().iter().map(|h| h.price).collect();
    let predicted: Vec<f64> = outputs
        .into_iter()
        .map(|s| prepared.preprocessor.price(s))
        .collect();
    Ok(Some(Calibration::from_out_of_fold(&actual, &predicted)))
}

/// `config` with `context`'s device and stop flag, which its training carries.
pub(crate) fn in_context(config: &RunConfig, context: &Context) -> RunConfig {
    RunConfig {
        train: context.train_config(&config.train),
        ..config.clone()
    }
}

/// Runs the tutorial pipeline (or the recipe) on the dataset folder `dataset_dir`, in
/// `context` (device, photo cache, stop flag, observer).
pub fn run(dataset_dir: &Path, config: &RunConfig, context: &mut Context) -> Result<RunResult> {
    let config = &in_context(config, context);
    let (cache_dir, observer) = (context.cache_dir.as_deref(), &mut *context.observer);
    config.train.validate()?;
    if let Method::Tutorial(spec) = &config.method {
        spec.validate().map_err(Error::Usage)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{CnnConfig, MlpConfig};

    #[test]
    fn the_method_is_stored_as_a_model_beside_an_optional_recipe() {
        // Tutorial mode: the network's spec, no recipe.
        let cnn = RunConfig {
            method: Method::Tutorial(ModelSpec::Cnn(CnnConfig::default())),
            ..RunConfig::default()
        };
        let json: serde_json::Value = serde_json::to_value(&cnn).unwrap();
        assert!(
            json["recipe"].is_null() && json["model"].is_object(),
            "{json}"
        );
        let back: RunConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cnn);
        // Recipe mode: the recipe, and Part 1's spec where the model was always written.
        let best = RunConfig {
            method: Method::Recipe(crate::fit::recipe::RecipeConfig::default()),
            ..RunConfig::default()
        };
        let json = serde_json::to_value(&best).unwrap();
        assert!(json["recipe"].is_object(), "{json}");
        assert_eq!(
            serde_json::from_value::<ModelSpec>(json["model"].clone()).unwrap(),
            ModelSpec::Mlp(MlpConfig::default())
        );
        assert_eq!(serde_json::from_value::<RunConfig>(json).unwrap(), best);
        // An older file's shape: a bare MLP config as the model, no recipe field at all.
        let old: RunConfig =
            serde_json::from_str(r#"{"model": {"hidden": [16, 4]}, "train": {"epochs": 3}}"#)
                .unwrap();
        assert_eq!(
            old.method,
            Method::Tutorial(ModelSpec::Mlp(MlpConfig {
                hidden: vec![16, 4]
            }))
        );
        assert_eq!(old.train.epochs, 3);
    }
}

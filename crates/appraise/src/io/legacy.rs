//! The reader of the Houses dataset's own model files (formats 1 to 5 and 7, written before
//! the Houses dataset became a loader of the one table pipeline): each header becomes the one
//! model type, a [`TableModel`], that prices every house exactly as the release that wrote
//! it did. What those releases computed differently lives in a few fields of the table
//! model's parts (`ln` of an encoding, the photo head's `score_column`, `room_mean` and
//! `price`, the level factors' `unlisted`, the price per area's `floored`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::data::dataset::{self, ATTRIBUTES, HOUSE, PRICE, ROOMS, ZIPCODE};
use crate::data::schema::{ColumnInfo, Role, Schema};
use crate::data::source::Source;
use crate::evaluate::metrics::Metrics;
use crate::features::encoder::{ColumnEncoding, Encoder, EncoderConfig};
use crate::fit::interval::{Calibration, RangeConfig};
use crate::fit::level_factors::LevelFactors;
use crate::fit::tabular::{
    Method, PerArea, Predictor, PriceScale, TableCandidate, TableConfig, TableInfo, TableModel,
    TableRecipe,
};
use crate::fit::train::TrainConfig;
use crate::models::{ModelSpec, Network};
use crate::photos::extractor::Backbone;
use crate::photos::table_photos::TablePhotoHead;

/// The JSON part of a file of formats 1 to 5 and 7 (what pricing and `summary` read).
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    /// The network's kind and shape.
    pub model: ModelSpec,
    preprocessor: Preprocessor,
    training: Training,
    #[serde(default)]
    recipe: Option<Recipe>,
    #[serde(default)]
    calibration: Option<Calibration>,
}

/// The tutorial's fitted preprocessing: zip codes one-hot, attributes min-max scaled, prices
/// divided by the highest training price.
#[derive(Debug, Deserialize)]
struct Preprocessor {
    zip_codes: Vec<u32>,
    min: [f64; 3],
    max: [f64; 3],
    price_scale: f64,
}

#[derive(Debug, Deserialize)]
struct Training {
    dataset_fingerprint: String,
    dataset_houses: usize,
    config: RunConfig,
    train_houses: usize,
    test_houses: usize,
    test_metrics: Metrics,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RunConfig {
    data: DataConfig,
    #[serde(deserialize_with = "crate::models::spec_or_legacy")]
    model: ModelSpec,
    train: TrainConfig,
    /// The recipe's settings, in the shape of a table's (two fields renamed since).
    recipe: Option<TableRecipe>,
    ranges: RangeConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct DataConfig {
    min_zip_count: usize,
    test_size: f64,
    split_seed: u32,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            min_zip_count: 25,
            test_size: 0.25,
            split_seed: 42,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Recipe {
    inputs: Inputs,
    report: Report,
    #[serde(default)]
    calibration: Option<Calibration>,
}

/// The Houses recipe's inputs: `[zip one-hot..., bedrooms, bathrooms, ln(max(area, 1)),
/// score?, photo price?]`, all but the one-hot standardized by `mean` and `std`.
#[derive(Debug, Deserialize)]
struct Inputs {
    zip_codes: Vec<u32>,
    mean: Vec<f64>,
    std: Vec<f64>,
    log_price_mean: f64,
    log_price_std: f64,
    /// Whether the frontal photo's manufactured-home score is an input.
    photos: bool,
    #[serde(default)]
    photo_price: Option<PhotoPriceHead>,
    #[serde(default = "yes")]
    attributes: bool,
    #[serde(default)]
    backbone: Backbone,
    #[serde(default)]
    target: Target,
    #[serde(default = "one")]
    factor: f64,
    #[serde(default)]
    zip_factors: Vec<f64>,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Target {
    #[default]
    LogPrice,
    LogPricePerSqft,
}

#[derive(Debug, Deserialize)]
struct PhotoPriceHead {
    reduction: Reduction,
    penalty: f64,
    weights: Vec<f32>,
    bias: f64,
    inner_mae: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Reduction {
    AllRooms,
    Frontal,
    RoomMean,
}

#[derive(Debug, Deserialize)]
struct Report {
    candidates: Vec<Candidate>,
    chosen: usize,
}

#[derive(Debug, Deserialize)]
struct Candidate {
    weight_decay: f64,
    photos: bool,
    #[serde(default)]
    photo_price: bool,
    inner_mape: f64,
    #[serde(default = "one")]
    factor: f64,
}

impl Header {
    /// Inputs of the network per house.
    pub fn n_inputs(&self) -> usize {
        match &self.recipe {
            Some(r) => r.inputs.zip_codes.len() + r.inputs.mean.len(),
            None => self.preprocessor.zip_codes.len() + ATTRIBUTES.len(),
        }
    }

    /// Why a file of format `version` cannot be priced any more, if it cannot.
    pub fn refused(&self, version: u32) -> Option<String> {
        (version < 4 && self.recipe.as_ref().is_some_and(|r| r.inputs.photos)).then(|| {
            format!(
                "is a recipe model with photo statistics, written by an older appraise (model \
                 format {version}); this appraise prices photos differently: retrain it with \
                 `appraise train --recipe best`"
            )
        })
    }

    /// The model as the one model type, with its `network`.
    pub fn into_model(self, network: Network) -> TableModel {
        let p = &self.preprocessor;
        let zips: Vec<String> = p.zip_codes.iter().map(u32::to_string).collect();
        let schema = schema(p, self.model.uses_photos() || self.recipe.is_some());
        let training = &self.training;
        let data = &training.config.data;
        let method = match &self.recipe {
            Some(r) => Method::Recipe(recipe_settings(&training.config, &r.inputs)),
            None => Method::Tutorial {
                model: self.model.clone(),
                train: training.config.train.clone(),
            },
        };
        let (candidates, chosen) = match &self.recipe {
            Some(r) => (
                r.report
                    .candidates
                    .iter()
                    .map(|c| c.entry(r.inputs.attributes))
                    .collect(),
                r.report.chosen,
            ),
            None => (Vec::new(), 0),
        };
        let info = TableInfo {
            data: "the Houses dataset".into(),
            fingerprint: training.dataset_fingerprint.clone(),
            rows: training.dataset_houses,
            kept_rows: training.train_houses + training.test_houses,
            config: TableConfig {
                method,
                test_size: data.test_size,
                split_seed: data.split_seed,
                drop_bad_target: false,
                ranges: training.config.ranges,
            },
            train_rows: training.train_houses,
            test_rows: training.test_houses,
            test_metrics: training.test_metrics.clone(),
            coverage: Vec::new(),
            source: Source::Houses {
                min_zip_count: data.min_zip_count,
            },
            candidates,
            chosen,
        };
        match self.recipe {
            None => TableModel {
                schema,
                encoder: tutorial_encoder(p, zips),
                scale: PriceScale::Ratio {
                    max_price: p.price_scale,
                },
                predictor: Predictor::Network(network),
                photo: None,
                calibration: self.calibration,
                level_factors: None,
                sales: None,
                info,
            },
            Some(r) => {
                let inputs = &r.inputs;
                TableModel {
                    schema,
                    encoder: recipe_encoder(p, inputs),
                    scale: PriceScale::Log {
                        mean: inputs.log_price_mean,
                        std: inputs.log_price_std,
                        // Folded into every zip code's factor, multiplied as it was.
                        factor: 1.0,
                        per_area: (inputs.target == Target::LogPricePerSqft).then(|| PerArea {
                            column: ATTRIBUTES[2].into(),
                            fallback: 1.0,
                            floored: true,
                        }),
                    },
                    predictor: Predictor::Network(network),
                    photo: photo_head(inputs),
                    calibration: r.calibration,
                    level_factors: Some(zip_factors(inputs)),
                    sales: None,
                    info,
                }
            }
        }
    }
}

impl Candidate {
    fn entry(&self, attributes: bool) -> TableCandidate {
        let mut parts = Vec::new();
        if attributes {
            parts.push("attributes");
        }
        if self.photos {
            parts.push("frontal photo's manufactured-home score");
        }
        if self.photo_price {
            parts.push("photo price");
        }
        TableCandidate {
            label: format!(
                "network, weight decay {}, {}",
                self.weight_decay,
                parts.join(" + ")
            ),
            inner_mape: self.inner_mape,
            factor: self.factor,
        }
    }
}

/// The Houses dataset's columns as [`dataset::load_table`] declares them.
fn schema(p: &Preprocessor, photos: bool) -> Schema {
    let column = |name: &str, role: Role| ColumnInfo {
        name: name.to_string(),
        role,
        declared: true,
        missing: 0,
        distinct: 0,
        range: None,
        levels: None,
    };
    let mut columns = vec![column(HOUSE, Role::Identifier)];
    for (k, name) in ATTRIBUTES.iter().enumerate() {
        columns.push(ColumnInfo {
            range: Some((p.min[k], p.max[k])),
            ..column(name, Role::Numeric)
        });
    }
    columns.push(ColumnInfo {
        distinct: p.zip_codes.len(),
        levels: Some(p.zip_codes.iter().map(u32::to_string).collect()),
        ..column(ZIPCODE, Role::Categorical)
    });
    columns.push(column(PRICE, Role::Target));
    if photos {
        columns.extend(ROOMS.map(|room| column(&dataset::photo_column(room), Role::Photos)));
    }
    Schema {
        columns,
        area: Some(ATTRIBUTES[2].into()),
        front_photo: photos.then(|| dataset::photo_column(dataset::FRONT_ROOM)),
        monotone: Vec::new(),
    }
}

/// The tutorial's preprocessing: the zip code one-hot over the vocabulary in numeric order
/// (an unknown one all zeros, as `LabelBinarizer`), then the attributes scaled as
/// scikit-learn's `MinMaxScaler` (a constant one by 1).
fn tutorial_encoder(p: &Preprocessor, zips: Vec<String>) -> Encoder {
    let mut columns = vec![one_hot(zips)];
    for (k, name) in ATTRIBUTES.iter().enumerate() {
        let range = p.max[k] - p.min[k];
        columns.push(number(
            p,
            k,
            name,
            p.min[k],
            if range == 0.0 { 1.0 } else { range },
        ));
    }
    encoder(columns)
}

/// The recipe's attributes: bedrooms and bathrooms, then ln(max(area, 1)), standardized.
fn recipe_encoder(p: &Preprocessor, inputs: &Inputs) -> Encoder {
    if !inputs.attributes {
        return encoder(Vec::new());
    }
    let zips = inputs.zip_codes.iter().map(u32::to_string).collect();
    let mut columns = vec![one_hot(zips)];
    for (k, name) in ATTRIBUTES.iter().enumerate() {
        let mut column = number(p, k, name, inputs.mean[k], inputs.std[k]);
        if k == 2
            && let ColumnEncoding::Number {
                log, log_floor, ln, ..
            } = &mut column
        {
            (*log, *log_floor, *ln) = (true, Some(1.0), true);
        }
        columns.push(column);
    }
    encoder(columns)
}

fn encoder(columns: Vec<ColumnEncoding>) -> Encoder {
    Encoder {
        config: EncoderConfig::default(),
        columns,
    }
}

fn one_hot(levels: Vec<String>) -> ColumnEncoding {
    ColumnEncoding::OneHot {
        column: ZIPCODE.to_string(),
        levels,
        other: false,
        pooled: Vec::new(),
    }
}

/// Attribute `k`, `(v - shift) / scale`, its training range the preprocessor's.
fn number(p: &Preprocessor, k: usize, name: &str, shift: f64, scale: f64) -> ColumnEncoding {
    ColumnEncoding::Number {
        column: name.to_string(),
        median: p.min[k],
        indicator: false,
        log: false,
        floor: p.min[k],
        log_floor: None,
        ln: false,
        ceiling: Some(p.max[k]),
        shift,
        scale,
    }
}

/// The photo inputs: the frontal photo's manufactured-home score, then the photo price head's
/// prediction, each standardized by the recipe's statistics.
fn photo_head(inputs: &Inputs) -> Option<TablePhotoHead> {
    if !inputs.photos && inputs.photo_price.is_none() {
        return None;
    }
    let first = if inputs.attributes {
        ATTRIBUTES.len()
    } else {
        0
    };
    let stats = |k: usize| (inputs.mean[k], inputs.std[k]);
    let score = inputs.photos.then(|| {
        let (m, s) = stats(first);
        [m, s]
    });
    let price_at = first + usize::from(inputs.photos);
    let rooms = || ROOMS.map(dataset::photo_column).to_vec();
    let frontal = || vec![dataset::photo_column(dataset::FRONT_ROOM)];
    let (columns, score_column) = match inputs.photo_price.as_ref().map(|h| h.reduction) {
        Some(Reduction::AllRooms | Reduction::RoomMean) => (rooms(), 2),
        Some(Reduction::Frontal) | None => (frontal(), 0),
    };
    let head = inputs.photo_price.as_ref();
    let (mean, std) = head.map_or((0.0, 1.0), |_| stats(price_at));
    Some(TablePhotoHead {
        backbone: inputs.backbone,
        precision: crate::photos::extractor::Precision::F32Reference,
        columns,
        penalty: head.map_or(0.0, |h| h.penalty),
        weights: head.map_or_else(Vec::new, |h| h.weights.clone()),
        bias: head.map_or(0.0, |h| h.bias),
        inner_mae: head.map_or(0.0, |h| h.inner_mae),
        mean,
        std,
        score,
        score_column,
        room_mean: head.is_some_and(|h| h.reduction == Reduction::RoomMean),
        price: head.is_some(),
    })
}

/// The overall factor times each zip code's own, the overall one for a zip code without its
/// own (multiplied as the recipe did: the output's price times this product).
fn zip_factors(inputs: &Inputs) -> LevelFactors {
    let factors: BTreeMap<String, f64> = inputs
        .zip_codes
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let own = inputs.zip_factors.get(i).copied().unwrap_or(1.0);
            (z.to_string(), inputs.factor * own)
        })
        .collect();
    LevelFactors {
        column: ZIPCODE.to_string(),
        factors,
        unlisted: inputs.factor * 1.0,
    }
}

/// The recipe's settings as a table recipe's (what `summary` shows; pricing reads only
/// `attributes`).
fn recipe_settings(config: &RunConfig, inputs: &Inputs) -> TableRecipe {
    let stored = config.recipe.clone().unwrap_or_default();
    TableRecipe {
        ridge_penalties: Vec::new(),
        trees: false,
        seed: config.train.seed,
        attributes: inputs.attributes,
        photo_score: inputs.photos,
        per_area: inputs.target == Target::LogPricePerSqft,
        ..stored
    }
}

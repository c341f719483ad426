//! The one-file model: weights, model config, fitted preprocessing and training metadata.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `APPRAISE` |
//! | 4 | format version (u32): 1 for Part 1 models, 2 for photo and recipe models, 3 for recipe models with a price factor, 4 for recipe models that read the frontal photo's score, 5 for recipe models with a photo price head or without attributes, 6 for models of a user's table, 7 for recipe models with a price factor per zip code, 8 for models of a user's table whose blend is not weighed half and half that have price factors per level, that read the first photo's manufactured-home score, or that log-scale a column as ln(v), 9 for models of a user's table whose prices are per area unit (an older appraise refuses a newer format rather than misread it) |
//! | 8 | length N of the JSON header (u64) |
//! | N | JSON header ([`Header`]): appraise version, model config, preprocessing, metadata |
//! | rest | the weights as a safetensors file: every tensor by its path in the network, f32 (the MLP's `layers.{i}.weight` of shape `[in, out]`, Keras's kernel layout, and `layers.{i}.bias`; convolutions `[out, in, 3, 3]`; BatchNorm `gamma`, `beta`, `running_mean`, `running_var`) |
//!
//! Python reads the weights with `safetensors.numpy.load(data[20 + N:])`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;
use crate::features::preprocess::Preprocessor;
use crate::fit::pipeline::RunConfig;
use crate::io::atomic;
pub use crate::models::ModelSpec;
use crate::models::{NamedTensor, Network};

/// First bytes of every model file.
pub const MAGIC: &[u8; 8] = b"APPRAISE";
/// The newest format version this build reads. Part 1 models are written as version 1, so
/// that appraise 0.1 still reads them; photo and recipe models as version 2; recipe models
/// whose prices carry a calibration factor as version 3 (a build that ignored the factor would
/// misprice every house); recipe models that read the frontal photo's manufactured-home score
/// as version 4 (before, recipe models with photos read 24 photo statistics instead).
/// Version 5: recipe models that read the photo price head, or no attributes.
/// Version 6: models of a user's own table (`--data`), whose header is a [`TableHeader`].
/// Version 7: recipe models with a price factor per zip code.
/// Version 8: models of a user's table that an appraise reading version 6 would misprice
/// (a blend not weighed half and half, price factors per level); their header is a
/// [`TableHeader`] too.
/// Version 9: models of a user's table whose prices are per area unit (the recipe's
/// candidates without photo inputs where an area column is declared).
pub const FORMAT_VERSION: u32 = 9;
/// The format version of table models (those that need nothing newer; see [`FORMAT_VERSION`]).
pub const TABLE_FORMAT: u32 = 6;
/// The format version of table models that need a newer reader than version 6.
pub const TABLE_FORMAT_8: u32 = 8;
/// The format version of table models whose prices are per area unit.
pub const TABLE_FORMAT_9: u32 = 9;
/// Conventional file name inside a run folder.
pub const FILE_NAME: &str = "model.appraise";
const PREFIX_LEN: usize = 8 + 4 + 8;

/// How and on what the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Fingerprint of the `HousesInfo.txt` trained on.
    pub dataset_fingerprint: String,
    /// Houses in that file, before the zip filter.
    pub dataset_houses: usize,
    /// Every setting of the run (zip filter, split, seeds, epochs, optimizer).
    pub config: RunConfig,
    /// Training houses.
    pub train_houses: usize,
    /// Test houses.
    pub test_houses: usize,
    /// Scores on the test houses at the end of training.
    pub test_metrics: Metrics,
    /// Training and validation loss after the last epoch.
    pub final_loss: f64,
    /// Validation loss after the last epoch.
    pub final_val_loss: f64,
}

/// The JSON part of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Version of appraise that wrote the file.
    pub appraise_version: String,
    /// Network kind and config.
    pub model: ModelSpec,
    /// Fitted preprocessing.
    pub preprocessor: Preprocessor,
    /// Training metadata.
    pub training: TrainingInfo,
    /// For a `best` recipe model: its inputs, settings and choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::fit::recipe::RecipeFit>,
    /// A tutorial network's price ranges: the out-of-fold errors of its K-fold pass (absent
    /// in recipe models, whose ranges live in `recipe`, and in models written before ranges).
    /// An older appraise ignores the field and reads the model, without ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::fit::interval::Calibration>,
}

impl Header {
    /// The out-of-fold errors the model's price ranges come from (`None`: no ranges).
    pub fn calibration(&self) -> Option<&crate::fit::interval::Calibration> {
        match &self.recipe {
            Some(r) => r.calibration.as_ref(),
            None => self.calibration.as_ref(),
        }
    }

    /// Inputs of the network per house.
    pub fn n_inputs(&self) -> usize {
        match &self.recipe {
            Some(r) => r.inputs.n_features(),
            None => self.preprocessor.n_features(),
        }
    }

    /// Whether pricing a house needs its photos.
    pub fn uses_photos(&self) -> bool {
        self.model.uses_photos() || self.recipe.as_ref().is_some_and(|r| r.inputs.uses_photos())
    }
}

/// A model ready to predict: its header and its network.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// Config, preprocessing and metadata.
    pub header: Header,
    /// The trained network (evaluation mode).
    pub network: Network,
}

impl SavedModel {
    /// The format version this model is written with.
    pub fn format_version(&self) -> u32 {
        match &self.header.recipe {
            Some(r) if !r.inputs.zip_factors.is_empty() => 7,
            Some(r) if r.inputs.photo_price.is_some() || !r.inputs.attributes => 5,
            Some(r) if r.inputs.photos => 4,
            Some(r) if r.inputs.factor != 1.0 => 3,
            Some(_) => 2,
            None if self.header.model.uses_photos() => 2,
            None => 1,
        }
    }

    /// The bytes of the model file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.header).expect("the header serializes");
        let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .network
            .tensors()
            .into_iter()
            .map(|(name, t)| (name, t.shape, f32_bytes(&t.values)))
            .collect();
        let views = buffers.iter().map(|(name, shape, bytes)| {
            let view =
                TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes match shapes");
            (name.clone(), view)
        });
        let tensors = safetensors::serialize(views, None::<HashMap<String, String>>)
            .expect("f32 tensors serialize");
        let mut out = Vec::with_capacity(PREFIX_LEN + json.len() + tensors.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.format_version().to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&tensors);
        out
    }

    /// Writes the model file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic::write(path, &self.to_bytes())
    }

    /// Reads a model from the bytes of a model file; `path` is named in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Input {
            path: path.to_path_buf(),
            message,
        };
        let damaged = |what: &str, detail: String| {
            bad(format!(
                "the model file is damaged ({what}: {}); train the model again or copy the file again",
                crate::error::quoted(detail)
            ))
        };
        if bytes.is_empty() {
            return Err(bad(
                "the model file is empty; train a model with `appraise train`".into(),
            ));
        }
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(
                "is not an appraise model file (it does not start with APPRAISE); \
                 pass the model.appraise that `appraise train` wrote"
                    .into(),
            ));
        }
        if bytes.len() < PREFIX_LEN {
            return Err(damaged(
                "file",
                format!("truncated after {} bytes", bytes.len()),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(bad(format!(
                "was written by a newer appraise (model format {version}; this appraise {} reads up to {FORMAT_VERSION}); \
                 upgrade appraise",
                env!("CARGO_PKG_VERSION")
            )));
        }
        if version == 0 {
            return Err(damaged("format version", "0".into()));
        }
        if is_table_format(version) {
            return Err(bad(
                "is a model of a user's table (trained with `data`), not of the Houses dataset; \
                 `appraise predict` prices rows of such a table"
                    .into(),
            ));
        }
        let json_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let rest = &bytes[PREFIX_LEN..];
        if json_len > rest.len() as u64 {
            return Err(damaged(
                "header",
                format!(
                    "says {json_len} bytes but only {} follow; the file is truncated",
                    rest.len()
                ),
            ));
        }
        let (json, tensor_bytes) = rest.split_at(json_len as usize);
        let header: Header =
            serde_json::from_slice(json).map_err(|e| damaged("header", e.to_string()))?;
        let tensors = SafeTensors::deserialize(tensor_bytes)
            .map_err(|e| damaged("weights", e.to_string()))?;
        header
            .model
            .validate()
            .map_err(|e| damaged("model config", e))?;
        if version < 4 && header.recipe.as_ref().is_some_and(|r| r.inputs.photos) {
            return Err(bad(format!(
                "is a recipe model with photo statistics, written by an older appraise (model format {version}); \
                 this appraise prices photos differently: retrain it with `appraise train --recipe best`"
            )));
        }
        let mut stored = BTreeMap::new();
        for (name, view) in tensors.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(damaged(
                    "weights",
                    format!("tensor {name} is {:?}, expected F32", view.dtype()),
                ));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            stored.insert(
                name,
                NamedTensor {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        let n_features = header.n_inputs();
        // The seed is irrelevant: every tensor is replaced by the file's.
        let fresh = header.model.init(
            n_features,
            &mut crate::runtime::rng::SeededRng::new(0, 0),
            &Device::flex(),
        );
        let network = fresh
            .with_tensors(&stored)
            .map_err(|e| damaged("weights", e))?
            .valid();
        Ok(Self { header, network })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(&read_model_file(path)?, path)
    }

    /// Keras's `model.summary()`, then the preprocessing and the training metadata.
    pub fn summary(&self) -> String {
        let h = &self.header;
        let p = &h.preprocessor;
        let t = &h.training;
        let n_inputs = h.n_inputs();
        let mut out = h.model.summary(n_inputs);
        let zips: Vec<String> = p.zip_codes.iter().map(u32::to_string).collect();
        out += "\n";
        if let Some(r) = &h.recipe {
            let mut parts = Vec::new();
            if r.inputs.attributes {
                parts.push(format!(
                    "{} one-hot zip codes + bedrooms, bathrooms, ln(area)",
                    r.inputs.zip_codes.len()
                ));
            }
            if r.inputs.photos {
                parts.push("the frontal photo's manufactured-home score".to_string());
            }
            if let Some(head) = &r.inputs.photo_price {
                parts.push(format!(
                    "the photo price (ridge on the {}, {} weights, penalty {}, inner mean absolute log error {:.4})",
                    head.reduction.label(),
                    head.weights.len(),
                    head.penalty,
                    head.inner_mae
                ));
            }
            if r.inputs.uses_photos() {
                out += &format!(
                    "Photo features: {} ({}), {} values per photo\n",
                    r.inputs.backbone.name(),
                    r.inputs.backbone.provenance(),
                    r.inputs.backbone.dim()
                );
            }
            out += &format!(
                "Recipe: best. Inputs: {n_inputs} = {} (standardized)\n\
                 Zip codes: {}\nTarget: {}, standardized (mean {:.4}, std {:.4}); the price is the geometric mean of the {} networks', times {:.4}\n",
                parts.join(" + "),
                zips.join(", "),
                match r.inputs.target {
                    crate::fit::recipe::Target::LogPrice => "ln(price)",
                    crate::fit::recipe::Target::LogPricePerSqft => "ln(price per square foot)",
                },
                r.inputs.log_price_mean,
                r.inputs.log_price_std,
                match &h.model {
                    ModelSpec::Ensemble(c) => c.members,
                    _ => r.config.folds,
                },
                r.inputs.factor,
            );
            if !r.inputs.zip_factors.is_empty() {
                out += &format!(
                    "Per-zip price factors (times the above): {}\n",
                    r.inputs.zip_factors_label()
                );
            }
            for (i, c) in r.report.candidates.iter().enumerate() {
                let mark = if r.report.blended.contains(&i) {
                    " (averaged)"
                } else if r.report.blended.is_empty() && i == r.report.chosen {
                    " (chosen)"
                } else {
                    ""
                };
                out += &format!(
                    "Candidate: {}: inner {}-fold CV MAPE {:.2}% (price factor {:.4}){mark}\n",
                    c.label(r.inputs.attributes),
                    r.config.folds,
                    c.inner_mape,
                    c.factor
                );
            }
        } else if h.model.uses_attributes() {
            out += &format!(
                "Inputs: {n_inputs} = {} one-hot zip codes + bedrooms, bathrooms, area (min-max scaled)\n\
                 Zip codes: {}\n\
                 bedrooms:  {} .. {}\nbathrooms: {} .. {}\narea:      {} .. {}\n",
                p.zip_codes.len(),
                zips.join(", "),
                p.min[0],
                p.max[0],
                p.min[1],
                p.max[1],
                p.min[2],
                p.max[2],
            );
        } else {
            out += &format!("Trained on houses in zip codes: {}\n", zips.join(", "));
        }
        if h.model.uses_photos() {
            out += &format!(
                "Photos: one {side}x{side} RGB montage per house of 32x32 tiles (bathroom top-left, bedroom top-right, \
                 frontal bottom-right, kitchen bottom-left), pixels / 255\n",
                side = crate::photos::montage::SIDE
            );
        }
        if h.recipe.is_none() {
            out += &format!("Target: price / {}\n", p.price_scale);
        }
        out += &match h.calibration() {
            Some(c) => format!("Price ranges: {}\n", c.describe()),
            None if h.recipe.is_some() => "Price ranges: none (written before appraise calibrated its recipe models; retrain for ranges)\n".to_string(),
            None => "Price ranges: none (no calibration pass: photo networks without `range_folds`, `range_folds` 0, or written before appraise calibrated the tutorial's networks; retrain for ranges)\n".to_string(),
        };
        let c = &t.config;
        let m = &t.test_metrics;
        // The recipe chooses its own epochs, batches and learning rate.
        let training = match &h.recipe {
            Some(r) => format!(
                "seed {}; each network at most {} epochs, early stopping after {} without \
                 improvement, batch size {}, learning rate {}, absolute error of the log target \
                 (the final losses below are the first network's)",
                c.train.seed,
                r.config.max_epochs,
                r.config.patience,
                r.config.batch_size,
                r.config.learning_rate,
            ),
            None => format!(
                "seed {}, {} epochs, batch size {}, learning rate {} (decay {})",
                c.train.seed,
                c.train.epochs,
                c.train.batch_size,
                c.train.optimizer.learning_rate,
                c.train.optimizer.decay,
            ),
        };
        out += &format!(
            "\nTrained by appraise {} on {} houses of {} ({} after `min_zip_count` {})\n\
             Split: test size {}, split seed {} -> {} train, {} test houses\n\
             Training: {training}\n\
             Final loss {:.4}, val_loss {:.4}\n\
             Test: MAPE {:.2}% (std {:.2}%), median {:.2}%, worst {:.2}%, MAE ${:.0}, RMSE ${:.0}, R^2 {:.3}\n",
            h.appraise_version,
            t.dataset_houses,
            t.dataset_fingerprint,
            t.train_houses + t.test_houses,
            c.data.min_zip_count,
            c.data.test_size,
            c.data.split_seed,
            t.train_houses,
            t.test_houses,
            t.final_loss,
            t.final_val_loss,
            m.mape,
            m.ape_std,
            m.median_ape,
            m.max_ape,
            m.mae,
            m.rmse,
            m.r2
        );
        out
    }
}

/// The JSON part of a table model's file (format version 6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableHeader {
    /// Version of appraise that wrote the file.
    pub appraise_version: String,
    /// The columns and their roles.
    pub schema: crate::data::schema::Schema,
    /// The fitted encoder.
    pub encoder: crate::features::encoder::Encoder,
    /// How outputs become prices.
    pub scale: crate::fit::tabular::PriceScale,
    /// The network's kind and shape, when the model has one (its weights follow the header).
    pub network: Option<ModelSpec>,
    /// The ridge part, when the model has one.
    pub linear: Option<crate::models::ridge::Linear>,
    /// With a network and a ridge part: the network's share of the output, when not a half
    /// (format 8; a format 6 file's blend weighs them equally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_share: Option<f64>,
    /// A price factor per level of one categorical column (format 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_factors: Option<crate::fit::level_factors::LevelFactors>,
    /// The photo price head, when the model reads photos (its prediction is the last input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<crate::photos::table_photos::TablePhotoHead>,
    /// The out-of-fold errors its price ranges come from, when it gives ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::fit::interval::Calibration>,
    /// How and on what it was trained.
    pub info: crate::fit::tabular::TableInfo,
}

/// A model file of either kind.
#[derive(Debug, Clone)]
pub enum AnyModel {
    /// A model of the Houses dataset.
    Houses(Box<SavedModel>),
    /// A model of a user's table.
    Table(Box<crate::fit::tabular::TableModel>),
}

/// The spec a table model's network is built from: the tutorial's, as configured (an MLP,
/// CNN or mixed model), or the recipe's ensemble or MLP, read off the network.
fn table_network_spec(model: &crate::fit::tabular::TableModel) -> Option<ModelSpec> {
    let network = model.predictor.network()?;
    Some(match &model.info.config.method {
        crate::fit::tabular::Method::Tutorial { model, .. } if network.uses_photos() => {
            model.clone()
        }
        _ => network_spec(network),
    })
}

fn network_spec(network: &Network) -> ModelSpec {
    match network {
        Network::Ensemble(e) => ModelSpec::Ensemble(crate::models::EnsembleConfig {
            member: crate::models::MlpConfig {
                hidden: e.members[0].hidden_widths(),
            },
            members: e.members.len(),
        }),
        Network::Mlp(m) => ModelSpec::Mlp(crate::models::MlpConfig {
            hidden: m.hidden_widths(),
        }),
        _ => unreachable!("photo networks are read off the run's config"),
    }
}

/// The bytes of a table model's file.
pub fn table_to_bytes(model: &crate::fit::tabular::TableModel) -> Vec<u8> {
    let network = model.predictor.network();
    let header = TableHeader {
        appraise_version: env!("CARGO_PKG_VERSION").to_string(),
        schema: model.schema.clone(),
        encoder: model.encoder.clone(),
        scale: model.scale.clone(),
        network: table_network_spec(model),
        linear: model.predictor.linear().cloned(),
        network_share: match &model.predictor {
            crate::fit::tabular::Predictor::Blend(_, _, share) if *share != 0.5 => Some(*share),
            _ => None,
        },
        level_factors: model.level_factors.clone(),
        photo: model.photo.clone(),
        calibration: model.calibration.clone(),
        info: model.info.clone(),
    };
    let json = serde_json::to_vec(&header).expect("the header serializes");
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = network
        .map(Network::tensors)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, t)| (name, t.shape, f32_bytes(&t.values)))
        .collect();
    let views = buffers.iter().map(|(name, shape, bytes)| {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes match shapes");
        (name.clone(), view)
    });
    let tensors = safetensors::serialize(views, None::<HashMap<String, String>>)
        .expect("f32 tensors serialize");
    let mut out = Vec::with_capacity(PREFIX_LEN + json.len() + tensors.len());
    out.extend_from_slice(MAGIC);
    // Format 6 unless it needs what an appraise before format 8 (or 9) would misread.
    let format = if header.scale.is_per_area() {
        TABLE_FORMAT_9
    } else if header.network_share.is_some()
        || header.level_factors.is_some()
        || header.photo.as_ref().is_some_and(|h| h.score.is_some())
        || header.encoder.columns.iter().any(|c| {
            matches!(
                c,
                crate::features::encoder::ColumnEncoding::Number {
                    log_floor: Some(_),
                    ..
                }
            )
        })
    {
        TABLE_FORMAT_8
    } else {
        TABLE_FORMAT
    };
    out.extend_from_slice(&format.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&tensors);
    out
}

/// Writes a table model's file atomically.
pub fn save_table(model: &crate::fit::tabular::TableModel, path: &Path) -> Result<()> {
    atomic::write(path, &table_to_bytes(model))
}

fn table_from_bytes(bytes: &[u8], path: &Path) -> Result<crate::fit::tabular::TableModel> {
    use crate::fit::tabular::Predictor;
    let damaged = |what: &str, detail: String| Error::Input {
        path: path.to_path_buf(),
        message: format!(
            "the model file is damaged ({what}: {}); train the model again or copy the file again",
            crate::error::quoted(detail)
        ),
    };
    let json_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let rest = &bytes[PREFIX_LEN..];
    if json_len > rest.len() as u64 {
        return Err(damaged("header", "the file is truncated".into()));
    }
    let (json, tensor_bytes) = rest.split_at(json_len as usize);
    let header: TableHeader =
        serde_json::from_slice(json).map_err(|e| damaged("header", e.to_string()))?;
    // The predictor's inputs: the encoded columns and the photo price, or for a photos-only
    // recipe the photo price alone.
    let inputs = crate::fit::tabular::input_width(
        &header.info.config,
        header.encoder.width(),
        header
            .photo
            .as_ref()
            .map_or(0, crate::photos::table_photos::TablePhotoHead::width),
    );
    let network = match &header.network {
        Some(spec) => {
            spec.validate().map_err(|e| damaged("model config", e))?;
            let tensors = SafeTensors::deserialize(tensor_bytes)
                .map_err(|e| damaged("weights", e.to_string()))?;
            let mut stored = BTreeMap::new();
            for (name, view) in tensors.tensors() {
                if view.dtype() != Dtype::F32 {
                    return Err(damaged("weights", format!("tensor {name} is not F32")));
                }
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect();
                stored.insert(
                    name,
                    NamedTensor {
                        shape: view.shape().to_vec(),
                        values,
                    },
                );
            }
            let fresh = spec.init(
                inputs,
                &mut crate::runtime::rng::SeededRng::new(0, 0),
                &Device::flex(),
            );
            Some(
                fresh
                    .with_tensors(&stored)
                    .map_err(|e| damaged("weights", e))?
                    .valid(),
            )
        }
        None => None,
    };
    if header
        .linear
        .as_ref()
        .is_some_and(|l| l.weights.len() != inputs)
    {
        return Err(damaged("ridge", "weights do not match the inputs".into()));
    }
    let predictor = match (network, header.linear) {
        (Some(n), Some(l)) => match header.network_share {
            Some(share) if (0.0..=1.0).contains(&share) => Predictor::Blend(n, l, share),
            Some(share) => {
                return Err(damaged(
                    "header",
                    format!("network share {share} is not 0 to 1"),
                ));
            }
            None => Predictor::Blend(n, l, 0.5),
        },
        (Some(n), None) => Predictor::Network(n),
        (None, Some(l)) => Predictor::Ridge(l),
        (None, None) => return Err(damaged("header", "no network and no ridge model".into())),
    };
    Ok(crate::fit::tabular::TableModel {
        schema: header.schema,
        encoder: header.encoder,
        scale: header.scale,
        predictor,
        photo: header.photo,
        calibration: header.calibration,
        level_factors: header.level_factors,
        info: header.info,
    })
}

/// The bytes of a model file, or an error that says what to pass instead.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: format!("is a folder; pass the {FILE_NAME} file inside it"),
        });
    }
    std::fs::read(path).map_err(|e| {
        Error::reading(
            path,
            e,
            "model file not found; the run folder of `appraise train` holds its model.appraise",
        )
    })
}

/// Whether a file of format `version` holds a table model.
fn is_table_format(version: u32) -> bool {
    version == TABLE_FORMAT || version == TABLE_FORMAT_8 || version == TABLE_FORMAT_9
}

/// Reads a model file of either kind.
pub fn load_any(path: &Path) -> Result<AnyModel> {
    let bytes = read_model_file(path)?;
    if bytes.len() >= PREFIX_LEN
        && &bytes[..MAGIC.len()] == MAGIC
        && is_table_format(u32::from_le_bytes(
            bytes[8..12].try_into().expect("4 bytes"),
        ))
    {
        return Ok(AnyModel::Table(Box::new(table_from_bytes(&bytes, path)?)));
    }
    Ok(AnyModel::Houses(Box::new(SavedModel::from_bytes(
        &bytes, path,
    )?)))
}

/// A table model's summary: its network or ridge model, its schema, encoder and training.
pub fn table_summary(model: &crate::fit::tabular::TableModel) -> String {
    use std::fmt::Write as _;
    let width = model.width();
    let mut out = String::new();
    if let Some(spec) = table_network_spec(model) {
        out += &spec.summary(width);
        out += "\n";
    }
    if let Some(l) = model.predictor.linear() {
        let _ = writeln!(
            out,
            "ridge regression on the {} inputs (bias {:.4})",
            l.weights.len(),
            l.bias
        );
    }
    let _ = writeln!(out, "schema:\n{}", model.schema.render());
    let _ = writeln!(out, "encoding ({width} inputs):");
    if !model.photos_only() {
        for c in &model.encoder.columns {
            let _ = writeln!(out, "  {}", c.describe());
        }
    }
    let montage = model.network_photo_columns();
    if !montage.is_empty() {
        let _ = writeln!(
            out,
            "  photos of {}: a 64x64 montage of each row's first four photos",
            montage.join(", ")
        );
    }
    if let Some(head) = &model.photo {
        let _ = writeln!(
            out,
            "  photos of {}: the price of a ridge head (penalty {}, inner mean absolute error {:.4}) on {} embeddings ({})",
            head.columns.join(", "),
            head.penalty,
            head.inner_mae,
            head.backbone.dim(),
            head.backbone.provenance()
        );
    }
    let i = &model.info;
    let method = match &i.config.method {
        crate::fit::tabular::Method::Tutorial { model, .. } => match model {
            ModelSpec::Cnn(_) => {
                "the tutorial's CNN (Part 2) on each row's photo montage".to_string()
            }
            ModelSpec::Mixed(_) => {
                "the tutorial's mixed model (Part 3) on the columns and each row's photo montage"
                    .to_string()
            }
            _ => "the tutorial's MLP".to_string(),
        },
        crate::fit::tabular::Method::Recipe(_) => format!(
            "the best recipe; chose {}",
            i.candidates.get(i.chosen).map_or("?", |c| c.label.as_str())
        ),
    };
    let _ = writeln!(
        out,
        "trained on {} ({} rows, {} with a price; {} training, {} test, split seed {}) by {method}",
        i.data, i.rows, i.kept_rows, i.train_rows, i.test_rows, i.config.split_seed
    );
    if let crate::fit::tabular::Method::Tutorial { train, .. } = &i.config.method {
        let _ = writeln!(
            out,
            "trained for {} epochs (batches of {}, Adam at learning rate {}, seed {})",
            train.epochs, train.batch_size, train.optimizer.learning_rate, train.seed
        );
    }
    if let crate::fit::tabular::PriceScale::Log {
        factor, per_area, ..
    } = &model.scale
    {
        let _ = writeln!(out, "price factor: x{factor:.4}");
        if let Some(a) = per_area {
            let _ = writeln!(
                out,
                "prices per unit of {} (a row without one: {})",
                a.column, a.fallback
            );
        }
    }
    if let Some(levels) = &model.level_factors {
        let _ = writeln!(out, "price factors per level of {}", levels.label());
    }
    if let crate::fit::tabular::Predictor::Blend(_, _, share) = &model.predictor {
        let _ = writeln!(
            out,
            "blend: the networks' mean weighs {share:.4}, the ridge model {:.4}",
            1.0 - share
        );
    }
    let _ = writeln!(
        out,
        "test MAPE {:.2}%, median APE {:.2}%, R2 {:.4}",
        i.test_metrics.mape, i.test_metrics.median_ape, i.test_metrics.r2
    );
    match &model.calibration {
        Some(c) => {
            let _ = writeln!(out, "price ranges: {}", c.describe());
            for cov in &i.coverage {
                let _ = writeln!(
                    out,
                    "  {:.0}% range on the test rows: covers {:.1}%, median width {:.1}% of the price",
                    cov.level * 100.0,
                    cov.covered,
                    cov.median_width
                );
            }
        }
        None => {
            out += "price ranges: none (trained with `range_folds` 0, or before appraise calibrated the tutorial's method; retrain for ranges)\n"
        }
    }
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model of format 1 (the tutorial's MLP), the test fixture an earlier release
    /// wrote (appraise no longer trains models of the Houses dataset's own stack).
    fn trained() -> SavedModel {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/format1-mlp.appraise");
        SavedModel::from_bytes(&std::fs::read(&path).unwrap(), &path).unwrap()
    }

    fn load(bytes: &[u8]) -> String {
        SavedModel::from_bytes(bytes, Path::new("m.appraise"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn round_trip_predicts_bit_for_bit() {
        let model = trained();
        let bytes = model.to_bytes();
        assert_eq!(&bytes[..8], MAGIC);
        let loaded = SavedModel::from_bytes(&bytes, Path::new("m.appraise")).unwrap();
        assert_eq!(loaded.header, model.header);
        assert_eq!(loaded.network.tensors(), model.network.tensors());
        let queries: Vec<crate::io::predict::Query> = (0..5)
            .map(|i| crate::io::predict::Query {
                id: None,
                continuous: [2.0 + f64::from(i), 2.0, 1200.0 + 300.0 * f64::from(i)],
                zipcode: 0,
            })
            .collect();
        let price = |m: &SavedModel| {
            crate::io::predict::predict_prices(
                m,
                &queries,
                &crate::io::predict::QueryPhotos::default(),
                crate::io::predict::UnknownZip::Zero,
            )
            .unwrap()
            .0
        };
        assert_eq!(price(&loaded), price(&model));
        // Saving again gives the same bytes.
        assert_eq!(loaded.to_bytes(), bytes);
    }

    #[test]
    fn damaged_foreign_and_newer_files_are_refused_clearly() {
        let model = trained();
        let bytes = model.to_bytes();
        assert!(load(&[]).contains("is empty"));
        assert!(load(b"PK\x03\x04 some zip file").contains("not an appraise model file"));
        assert!(load(&bytes[..10]).contains("truncated"));
        assert!(load(&bytes[..100]).contains("truncated"));
        assert!(load(&bytes[..bytes.len() - 3]).contains("damaged (weights"));
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(load(&newer).contains(&format!(
            "newer appraise (model format {}",
            FORMAT_VERSION + 1
        )));
        let mut noise = bytes.clone();
        for (i, b) in noise.iter_mut().enumerate().skip(20) {
            *b = (i * 7919 % 251) as u8;
        }
        assert!(load(&noise).contains("damaged"));
        // Weights whose shapes don't match the config: same tensors, a wider header.
        let json_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let mut header = model.header.clone();
        header.model = ModelSpec::Mlp(crate::models::MlpConfig {
            hidden: vec![16, 4],
        });
        let json = serde_json::to_vec(&header).unwrap();
        let mut wide = bytes[..12].to_vec();
        wide.extend_from_slice(&(json.len() as u64).to_le_bytes());
        wide.extend_from_slice(&json);
        wide.extend_from_slice(&bytes[20 + json_len..]);
        let e = load(&wide);
        assert!(e.contains("shape"), "{e}");
    }
}

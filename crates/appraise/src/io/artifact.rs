//! The one-file model: weights, model config, fitted encoder and training metadata. Every
//! format reads into the one model type, [`TableModel`]; appraise writes formats 6, 8 and 9
//! (a [`TableHeader`]), and reads the Houses dataset's own formats 1 to 5 and 7 through
//! [`crate::io::legacy`].
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `APPRAISE` |
//! | 4 | format version (u32): 1 for Part 1 models, 2 for photo and recipe models, 3 for recipe models with a price factor, 4 for recipe models that read the frontal photo's score, 5 for recipe models with a photo price head or without attributes, 6 for models of a user's table, 7 for recipe models with a price factor per zip code, 8 for models of a user's table whose blend is not weighed half and half that have price factors per level, that read the first photo's manufactured-home score, or that log-scale a column as ln(v), 9 for models of a user's table whose prices are per area unit, 10 for models with gradient-boosted trees (an older appraise refuses a newer format rather than misread it) |
//! | 8 | length N of the JSON header (u64) |
//! | N | JSON header ([`TableHeader`]; formats 1-5 and 7 another, read by [`crate::io::legacy`]): appraise version, model config, encoder, metadata |
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
use crate::fit::tabular::{Predictor, TableModel};
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
/// Version 10: models with gradient-boosted trees.
pub const FORMAT_VERSION: u32 = 10;
/// The format version of table models (those that need nothing newer; see [`FORMAT_VERSION`]).
pub const TABLE_FORMAT: u32 = 6;
/// The format version of table models that need a newer reader than version 6.
pub const TABLE_FORMAT_8: u32 = 8;
/// The format version of table models whose prices are per area unit.
pub const TABLE_FORMAT_9: u32 = 9;
/// The format version of table models with gradient-boosted trees.
pub const TABLE_FORMAT_10: u32 = 10;
/// Conventional file name inside a run folder.
pub const FILE_NAME: &str = "model.appraise";
const PREFIX_LEN: usize = 8 + 4 + 8;

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
    /// Gradient-boosted trees and their share of the output (format 10; without a network
    /// or ridge part, the trees alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<TreesPart>,
    /// The training sales its explanations read (from appraise 0.2; an older appraise
    /// ignores them, so the format stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales: Option<crate::explain::sales::Sales>,
    /// How and on what it was trained.
    pub info: crate::fit::tabular::TableInfo,
}

/// A model's trees and their share of its output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreesPart {
    /// The folds' boosters.
    pub trees: crate::fit::trees::Trees,
    /// Their share of the output.
    pub share: f64,
}

/// The spec a table model's network is built from: the tutorial's, as configured (an MLP,
/// CNN or mixed model), or the recipe's ensemble or MLP, read off the network.
fn table_network_spec(model: &TableModel) -> Option<ModelSpec> {
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
pub fn to_bytes(model: &TableModel) -> Vec<u8> {
    let network = model.predictor.network();
    let header = TableHeader {
        appraise_version: env!("CARGO_PKG_VERSION").to_string(),
        schema: model.schema.clone(),
        encoder: model.encoder.clone(),
        scale: model.scale.clone(),
        network: table_network_spec(model),
        linear: model.predictor.linear().cloned(),
        network_share: match (
            model.predictor.network().is_some() && model.predictor.linear().is_some(),
            model.predictor.network_share(),
        ) {
            (true, share) if share != 0.5 => Some(share),
            _ => None,
        },
        trees: model.predictor.trees().map(|(t, share)| TreesPart {
            trees: t.clone(),
            share,
        }),
        level_factors: model.level_factors.clone(),
        photo: model.photo.clone(),
        calibration: model.calibration.clone(),
        sales: model.sales.clone(),
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
    let format = if header.trees.is_some() {
        TABLE_FORMAT_10
    } else if header.scale.is_per_area() {
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
pub fn save(model: &TableModel, path: &Path) -> Result<()> {
    atomic::write(path, &to_bytes(model))
}

/// Reads a model from the bytes of a model file of any format; `path` is named in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<TableModel> {
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
    let weights = |spec: &ModelSpec, inputs: usize| -> Result<Network> {
        spec.validate().map_err(|e| damaged("model config", e))?;
        let stored = tensors(tensor_bytes).map_err(|e| damaged("weights", e))?;
        // The seed is irrelevant: every tensor is replaced by the file's.
        let fresh = spec.init(
            inputs,
            &mut crate::runtime::rng::SeededRng::new(0, 0),
            &Device::flex(),
        );
        Ok(fresh
            .with_tensors(&stored)
            .map_err(|e| damaged("weights", e))?
            .valid())
    };
    if !is_table_format(version) {
        let header: crate::io::legacy::Header =
            serde_json::from_slice(json).map_err(|e| damaged("header", e.to_string()))?;
        if let Some(why) = header.refused(version) {
            return Err(bad(why));
        }
        let network = weights(&header.model, header.n_inputs())?;
        let model = header.into_model(network);
        return Ok(model);
    }
    let mut header: TableHeader =
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
        Some(spec) => Some(weights(spec, inputs)?),
        None => None,
    };
    if header
        .linear
        .as_ref()
        .is_some_and(|l| l.weights.len() != inputs)
    {
        return Err(damaged("ridge", "weights do not match the inputs".into()));
    }
    if let Some(t) = &header.trees {
        let photo = header.photo.as_ref().map_or(0, |h| h.width());
        if t.trees.members.is_empty() || t.trees.photo_inputs != photo {
            return Err(damaged(
                "trees",
                format!(
                    "{} boosters reading {} photo inputs, for a model with {photo}",
                    t.trees.members.len(),
                    t.trees.photo_inputs
                ),
            ));
        }
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
        (None, None) => match header.trees.take() {
            Some(t) => Predictor::Trees(t.trees),
            None => return Err(damaged("header", "no network, ridge model or trees".into())),
        },
    };
    let predictor = match (predictor, header.trees) {
        (p, Some(t)) if (0.0..1.0).contains(&t.share) => {
            Predictor::Stack(Box::new(p), t.trees, t.share)
        }
        (_, Some(t)) => {
            return Err(damaged(
                "header",
                format!("trees share {} is not 0 to 1", t.share),
            ));
        }
        (p, None) => p,
    };
    let model = TableModel {
        schema: header.schema,
        encoder: header.encoder,
        scale: header.scale,
        predictor,
        photo: header.photo,
        calibration: header.calibration,
        level_factors: header.level_factors,
        sales: header.sales,
        info: header.info,
    };
    if let Some(sales) = &model.sales {
        sales
            .check(&model)
            .map_err(|m| damaged("header", format!("its kept training sales {m}")))?;
    }
    Ok(model)
}

/// The f32 tensors of a safetensors buffer, by name.
fn tensors(bytes: &[u8]) -> std::result::Result<BTreeMap<String, NamedTensor>, String> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut stored = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name} is {:?}, expected F32", view.dtype()));
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
    Ok(stored)
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
    matches!(
        version,
        TABLE_FORMAT | TABLE_FORMAT_8 | TABLE_FORMAT_9 | TABLE_FORMAT_10
    )
}

/// Reads a model file of any format.
pub fn load(path: &Path) -> Result<TableModel> {
    from_bytes(&read_model_file(path)?, path)
}

/// A table model's summary: its network or ridge model, its schema, encoder and training.
pub fn summary(model: &TableModel) -> String {
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
            "  photos of {}: the price of a ridge head (penalty {}, inner mean absolute error {:.4}) on {} embeddings ({}; {} products)",
            head.columns.join(", "),
            head.penalty,
            head.inner_mae,
            head.backbone.dim(),
            head.backbone.provenance(),
            head.precision.name()
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
    if let Some((trees, share)) = model.predictor.trees() {
        let _ = writeln!(
            out,
            "gradient-boosted trees (forust-ml) on the columns: {}; their share of the output {share:.1}",
            trees.describe()
        );
    }
    if let (Some(_), Some(_)) = (model.predictor.network(), model.predictor.linear()) {
        let share = model.predictor.network_share();
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

    /// A small model of format 6 (a table's MLP), a test fixture.
    fn fixture() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/format6-table-mlp.appraise");
        std::fs::read(path).unwrap()
    }

    fn load(bytes: &[u8]) -> String {
        from_bytes(bytes, Path::new("m.appraise"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn saving_again_gives_the_same_model() {
        let model = from_bytes(&fixture(), Path::new("m.appraise")).unwrap();
        let bytes = to_bytes(&model);
        assert_eq!(&bytes[..8], MAGIC);
        let loaded = from_bytes(&bytes, Path::new("m.appraise")).unwrap();
        assert_eq!(to_bytes(&loaded), bytes);
        let tensors = |m: &TableModel| m.predictor.network().unwrap().tensors();
        assert_eq!(tensors(&loaded), tensors(&model));
    }

    #[test]
    fn damaged_foreign_and_newer_files_are_refused_clearly() {
        let bytes = fixture();
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
        // Weights whose shapes don't match the config: same tensors, a wider network.
        let json_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let mut header: serde_json::Value =
            serde_json::from_slice(&bytes[20..20 + json_len]).unwrap();
        header["network"] = serde_json::json!({"kind": "mlp", "hidden": [16, 4]});
        let json = serde_json::to_vec(&header).unwrap();
        let mut wide = bytes[..12].to_vec();
        wide.extend_from_slice(&(json.len() as u64).to_le_bytes());
        wide.extend_from_slice(&json);
        wide.extend_from_slice(&bytes[20 + json_len..]);
        let e = load(&wide);
        assert!(e.contains("shape"), "{e}");
    }

    #[test]
    fn trees_that_do_not_fit_the_model_are_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/format10-table-recipe-trees.appraise");
        let bytes = std::fs::read(path).unwrap();
        assert!(from_bytes(&bytes, Path::new("m.appraise")).is_ok());
        let json_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + json_len]).unwrap();
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut h = header.clone();
            edit(&mut h);
            let json = serde_json::to_vec(&h).unwrap();
            let mut out = bytes[..12].to_vec();
            out.extend_from_slice(&(json.len() as u64).to_le_bytes());
            out.extend_from_slice(&json);
            out.extend_from_slice(&bytes[20 + json_len..]);
            load(&out)
        };
        let e = with(&|h| h["trees"]["trees"]["photo_inputs"] = 3.into());
        assert!(e.contains("damaged (trees"), "{e}");
        let e = with(&|h| h["trees"]["trees"]["members"] = serde_json::json!([]));
        assert!(e.contains("damaged (trees"), "{e}");
    }
}

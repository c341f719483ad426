//! A run's settings as the Houses dataset's own model files stored them ([`RunConfig`], read
//! by the reader of model formats 1 to 7), and the helpers of a run folder: its default
//! name, `history.csv` and pretty JSON. Every dataset now trains through
//! [`crate::fit::tabular`].

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fit::train::{EpochRecord, TrainConfig};
use crate::models::ModelSpec;

pub use crate::evaluate::metrics::{Prediction, score};
pub use crate::features::prepared::{DataConfig, filter};
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

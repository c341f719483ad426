//! The networks: Part 1's attribute MLP, Part 2's photo CNN and Part 3's mixed model, each
//! with Keras's initialization and a Keras-style summary.

pub(crate) mod block;
mod cnn;
mod layers;
pub mod matmul;
mod mixed;
mod mlp;
pub mod plain;
pub mod ridge;
pub mod summary;

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Deserializer, Serialize};

pub use cnn::{CHANNELS, Cnn, CnnConfig};
pub use layers::{Norm, batch_norm, conv3x3, dense, glorot_uniform};
pub use mixed::{Mixed, MixedConfig};
pub use mlp::{Mlp, MlpConfig};

use crate::runtime::rng::SeededRng;
use summary::{Layer, Names};

/// Which network, with its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Part 1: attributes only.
    Mlp(MlpConfig),
    /// Part 2: photos only.
    Cnn(CnnConfig),
    /// Part 3: attributes and photos.
    Mixed(MixedConfig),
    /// Attribute networks whose outputs are averaged (the `best` recipe's fold networks).
    Ensemble(EnsembleConfig),
}

/// The most members an ensemble may have (a bound on what a model file can ask to build).
pub const MAX_ENSEMBLE_MEMBERS: usize = 1000;

/// Shape of an ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsembleConfig {
    /// Each member's shape.
    pub member: MlpConfig,
    /// Number of members.
    pub members: usize,
}

/// Attribute networks whose outputs are averaged.
#[derive(Module, Debug)]
pub struct Ensemble {
    /// The members.
    pub members: Vec<Mlp>,
}

impl Ensemble {
    /// The mean of the members' outputs, `[batch, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut sum = self.members[0].forward(x.clone());
        for member in &self.members[1..] {
            sum = sum + member.forward(x.clone());
        }
        sum.div_scalar(self.members.len() as f64)
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec::Mlp(MlpConfig::default())
    }
}

impl ModelSpec {
    /// `mlp`, `cnn` or `mixed`, as `--model` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Mlp(_) => "mlp",
            ModelSpec::Cnn(_) => "cnn",
            ModelSpec::Mixed(_) => "mixed",
            ModelSpec::Ensemble(_) => "ensemble",
        }
    }

    /// Whether the network reads a house's photos.
    pub fn uses_photos(&self) -> bool {
        !matches!(self, ModelSpec::Mlp(_) | ModelSpec::Ensemble(_))
    }

    /// Rejects shapes that cannot be built (a config may come from a file).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelSpec::Mlp(c) if c.hidden.contains(&0) => {
                Err("every hidden layer needs at least one unit".into())
            }
            ModelSpec::Mlp(_) => Ok(()),
            ModelSpec::Cnn(c) => c.validate(),
            ModelSpec::Mixed(c) => c.validate(),
            ModelSpec::Ensemble(c) if c.members == 0 || c.members > MAX_ENSEMBLE_MEMBERS => {
                Err(format!(
                    "an ensemble needs 1 to {MAX_ENSEMBLE_MEMBERS} members, got {}",
                    c.members
                ))
            }
            ModelSpec::Ensemble(c) => ModelSpec::Mlp(c.member.clone()).validate(),
        }
    }

    /// A freshly initialized network for `n_features` attribute features.
    pub fn init(&self, n_features: usize, rng: &mut SeededRng, device: &Device) -> Network {
        match self {
            ModelSpec::Mlp(c) => Network::Mlp(c.init(n_features, true, rng, device)),
            ModelSpec::Cnn(c) => Network::Cnn(c.init(true, rng, device)),
            ModelSpec::Mixed(c) => Network::Mixed(c.init(n_features, rng, device)),
            ModelSpec::Ensemble(c) => Network::Ensemble(Ensemble {
                members: (0..c.members)
                    .map(|_| c.member.init(n_features, true, rng, device))
                    .collect(),
            }),
        }
    }

    /// The rows of Keras's `model.summary()`.
    pub fn layers(&self, n_features: usize) -> Vec<Layer> {
        let mut names = Names::default();
        match self {
            ModelSpec::Mlp(c) => c.layers(n_features, true, &mut names),
            ModelSpec::Cnn(c) => c.layers(true, &mut names),
            ModelSpec::Mixed(c) => c.layers(n_features, &mut names),
            ModelSpec::Ensemble(c) => {
                let mut layers = vec![Layer::new(
                    names.next("input"),
                    "InputLayer",
                    vec![n_features],
                    0,
                )];
                for _ in 0..c.members {
                    layers.extend(c.member.layers(n_features, true, &mut names));
                }
                layers.push(Layer::new(names.next("average"), "Average", vec![1], 0));
                layers
            }
        }
    }

    /// Parameters as Keras counts them (BatchNorm's moving statistics included).
    pub fn param_count(&self, n_features: usize) -> usize {
        summary::total(&self.layers(n_features))
    }

    /// Keras's `model.summary()` table.
    pub fn summary(&self, n_features: usize) -> String {
        summary::table(self.name(), &self.layers(n_features))
    }
}

/// Reads a [`ModelSpec`], also in the untagged MLP-only form of appraise 0.1's run configs.
pub fn spec_or_legacy<'de, D: Deserializer<'de>>(d: D) -> Result<ModelSpec, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Tagged(ModelSpec),
        Legacy(MlpConfig),
    }
    Ok(match Either::deserialize(d)? {
        Either::Tagged(spec) => spec,
        Either::Legacy(mlp) => ModelSpec::Mlp(mlp),
    })
}

/// A network of any kind.
// A run holds one network, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// Part 1.
    Mlp(Mlp),
    /// Part 2.
    Cnn(Cnn),
    /// Part 3.
    Mixed(Mixed),
    /// The recipe's averaged networks.
    Ensemble(Ensemble),
}

impl Network {
    /// How many networks it averages (1 unless an ensemble).
    pub fn members(&self) -> usize {
        match self {
            Network::Ensemble(e) => e.members.len(),
            _ => 1,
        }
    }

    /// Whether it reads a house's photos (Part 2 and Part 3).
    pub fn uses_photos(&self) -> bool {
        matches!(self, Network::Cnn(_) | Network::Mixed(_))
    }

    /// Scaled prices `[batch, 1]` from attributes `[batch, n_features]` and, for photo models,
    /// montages `[batch, 3, 64, 64]`. With `dropout` (training), dropout masks come from it.
    ///
    /// # Panics
    /// If a photo model gets no images (a caller's mistake, not a user's).
    pub fn forward(
        &self,
        features: Tensor<2>,
        images: Option<Tensor<4>>,
        dropout: Option<&mut SeededRng>,
    ) -> Tensor<2> {
        const NEED: &str = "photo models are always given images";
        match self {
            Network::Mlp(m) => m.forward(features),
            Network::Cnn(m) => m.forward(images.expect(NEED), dropout),
            Network::Mixed(m) => m.forward(features, images.expect(NEED), dropout),
            Network::Ensemble(m) => m.forward(features),
        }
    }

    /// Every weight and BatchNorm statistic, by path (`layers.0.weight`, `cnn.norms.1.running_mean`).
    pub fn tensors(&self) -> BTreeMap<String, NamedTensor> {
        let mut collector = Collector::default();
        match self {
            Network::Mlp(m) => m.visit(&mut collector),
            Network::Cnn(m) => m.visit(&mut collector),
            Network::Mixed(m) => m.visit(&mut collector),
            Network::Ensemble(m) => m.visit(&mut collector),
        }
        collector.tensors
    }

    /// This network with every tensor replaced by the one of the same path in `tensors`, which
    /// must hold exactly this network's paths and shapes.
    pub fn with_tensors(self, tensors: &BTreeMap<String, NamedTensor>) -> Result<Self, String> {
        let mut loader = Loader {
            tensors,
            path: Vec::new(),
            used: 0,
            errors: Vec::new(),
        };
        let network = match self {
            Network::Mlp(m) => Network::Mlp(m.map(&mut loader)),
            Network::Cnn(m) => Network::Cnn(m.map(&mut loader)),
            Network::Mixed(m) => Network::Mixed(m.map(&mut loader)),
            Network::Ensemble(m) => Network::Ensemble(m.map(&mut loader)),
        };
        if let Some(e) = loader.errors.first() {
            return Err(e.clone());
        }
        if loader.used != tensors.len() {
            let wanted: Vec<String> = network.tensors().into_keys().collect();
            let extra: Vec<&String> = tensors.keys().filter(|k| !wanted.contains(k)).collect();
            return Err(format!(
                "the file holds tensors the model's config does not use: {extra:?}"
            ));
        }
        Ok(network)
    }
}

/// A tensor's shape and values (f32, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f32>,
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    tensors: BTreeMap<String, NamedTensor>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .try_to_vec::<f32>()
            .expect("parameters are f32");
        self.tensors
            .insert(self.path.join("."), NamedTensor { shape, values });
    }
}

struct Loader<'a> {
    tensors: &'a BTreeMap<String, NamedTensor>,
    path: Vec<String>,
    used: usize,
    errors: Vec<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let (id, tensor, _) = param.consume();
        let expected = tensor.dims().to_vec();
        match self.tensors.get(&name) {
            None => self.errors.push(format!("tensor {name} is missing")),
            Some(t) if t.shape != expected => self.errors.push(format!(
                "tensor {name} has shape {:?} but the model's config expects {expected:?}",
                t.shape
            )),
            Some(t) => {
                self.used += 1;
                let data = TensorData::new(t.values.clone(), t.shape.clone());
                return Param::initialized(id, Tensor::from_data(data, &tensor.device()));
            }
        }
        Param::initialized(id, tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photos::montage::SIDE;

    #[test]
    fn tensors_round_trip_by_path_for_every_kind() {
        let device = Device::flex();
        for spec in [
            ModelSpec::default(),
            ModelSpec::Cnn(CnnConfig::default()),
            ModelSpec::Mixed(MixedConfig::default()),
        ] {
            let a = spec.init(10, &mut SeededRng::new(1, 1), &device);
            let b = spec.init(10, &mut SeededRng::new(2, 1), &device);
            let tensors = a.tensors();
            assert_ne!(tensors, b.tensors());
            let b = b.with_tensors(&tensors).unwrap();
            assert_eq!(b.tensors(), tensors);
            let stored: usize = tensors.values().map(|t| t.values.len()).sum();
            assert_eq!(stored, spec.param_count(10), "{}", spec.name());
        }
        let mlp = ModelSpec::default().init(10, &mut SeededRng::new(1, 1), &device);
        let names: Vec<String> = mlp.tensors().into_keys().collect();
        assert_eq!(names[0], "layers.0.bias");
        assert!(names.contains(&"layers.2.weight".to_string()));
        let cnn = ModelSpec::Cnn(CnnConfig::default()).init(10, &mut SeededRng::new(1, 1), &device);
        assert!(cnn.tensors().contains_key("norms.2.running_var"));
        let out = cnn.forward(
            Tensor::zeros([1, 10], &device),
            Some(Tensor::zeros([1, 3, SIDE, SIDE], &device)),
            None,
        );
        assert_eq!(out.dims(), [1, 1]);
    }

    #[test]
    fn wrong_tensors_are_refused_with_their_name() {
        let device = Device::flex();
        let spec = ModelSpec::default();
        let mut tensors = spec.init(10, &mut SeededRng::new(1, 1), &device).tensors();
        let fresh = || spec.init(10, &mut SeededRng::new(1, 1), &device);
        tensors.get_mut("layers.1.weight").unwrap().shape = vec![4, 8];
        assert!(
            fresh()
                .with_tensors(&tensors)
                .unwrap_err()
                .contains("layers.1.weight")
        );
        tensors.remove("layers.1.weight");
        assert!(
            fresh()
                .with_tensors(&tensors)
                .unwrap_err()
                .contains("missing")
        );
        let mut extra = fresh().tensors();
        extra.insert(
            "x".into(),
            NamedTensor {
                shape: vec![1],
                values: vec![0.0],
            },
        );
        assert!(fresh().with_tensors(&extra).unwrap_err().contains("\"x\""));
    }

    #[test]
    fn summaries_match_keras_counts() {
        assert!(
            ModelSpec::default()
                .summary(10)
                .contains("Total params: 129")
        );
        let cnn = ModelSpec::Cnn(CnnConfig::default()).summary(10);
        assert!(cnn.contains("Total params: 89,721"), "{cnn}");
        assert!(cnn.contains("Non-trainable params: 256"));
        assert!(cnn.contains("conv2d_2 (Conv2D)"));
        let mixed = ModelSpec::Mixed(MixedConfig::default()).summary(10);
        assert!(mixed.contains("Total params: 89,881"), "{mixed}");
    }

    #[test]
    fn legacy_run_configs_still_read() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "spec_or_legacy")]
            model: ModelSpec,
        }
        let old: Holder = serde_json::from_str(r#"{"model": {"hidden": [16, 4]}}"#).unwrap();
        assert_eq!(
            old.model,
            ModelSpec::Mlp(MlpConfig {
                hidden: vec![16, 4]
            })
        );
        let new: Holder = serde_json::from_str(r#"{"model": {"kind": "cnn"}}"#).unwrap();
        assert_eq!(new.model, ModelSpec::Cnn(CnnConfig::default()));
    }
}

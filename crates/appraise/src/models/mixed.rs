//! Part 3's mixed model: the attribute MLP and the photo CNN side by side, their outputs
//! concatenated, then Dense(4, relu) -> Dense(1).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::layers::dense;
use super::summary::{Layer, Names};
use super::{Cnn, CnnConfig, Mlp, MlpConfig};
use crate::runtime::rng::SeededRng;

/// Shape of the mixed model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MixedConfig {
    /// The attribute branch (its last hidden layer is the branch's output).
    pub mlp: MlpConfig,
    /// The photo branch (its `head` layer is the branch's output).
    pub cnn: CnnConfig,
    /// Width of the ReLU layer after the concatenation.
    pub head: usize,
}

impl Default for MixedConfig {
    /// The tutorial's Part 3 model.
    fn default() -> Self {
        Self {
            mlp: MlpConfig::default(),
            cnn: CnnConfig::default(),
            head: 4,
        }
    }
}

/// The mixed network.
#[derive(Module, Debug)]
pub struct Mixed {
    /// Attribute branch.
    pub mlp: Mlp,
    /// Photo branch.
    pub cnn: Cnn,
    /// Dense(head, relu) over the concatenated branch outputs.
    pub head: Linear,
    /// Dense(1, linear).
    pub output: Linear,
}

impl MixedConfig {
    /// Rejects shapes that cannot be built.
    pub fn validate(&self) -> Result<(), String> {
        if self.mlp.hidden.is_empty() || self.mlp.hidden.contains(&0) || self.head == 0 {
            return Err(
                "the mixed model's attribute branch and head need widths of at least 1".into(),
            );
        }
        self.cnn.validate()
    }

    /// A freshly initialized network for `n_inputs` attribute features.
    pub fn init(&self, n_inputs: usize, rng: &mut SeededRng, device: &Device) -> Mixed {
        let mlp = self.mlp.init(n_inputs, false, rng, device);
        let cnn = self.cnn.init(false, rng, device);
        let joined = self.mlp.output_width(n_inputs, false) + self.cnn.head;
        Mixed {
            mlp,
            cnn,
            head: dense(joined, self.head, rng, device),
            output: dense(self.head, 1, rng, device),
        }
    }

    /// The layers as Keras's `model.summary()` lists them: the attribute branch, the photo
    /// branch, then the joint head.
    pub fn layers(&self, n_inputs: usize, names: &mut Names) -> Vec<Layer> {
        let mut out = vec![Layer::new(
            names.next("input"),
            "InputLayer",
            vec![n_inputs],
            0,
        )];
        out.extend(self.mlp.layers(n_inputs, false, names));
        out.extend(self.cnn.layers(false, names));
        let joined = self.mlp.output_width(n_inputs, false) + self.cnn.head;
        out.push(Layer::new(
            names.next("concatenate"),
            "Concatenate",
            vec![joined],
            0,
        ));
        out.push(Layer::dense(names, joined, self.head));
        out.push(Layer::dense(names, self.head, 1));
        out
    }
}

impl Mixed {
    /// Attributes `[batch, n_inputs]` and montages `[batch, 3, 64, 64]` -> scaled prices
    /// `[batch, 1]`. `dropout` as in [`Cnn::forward`].
    pub fn forward(
        &self,
        features: Tensor<2>,
        images: Tensor<4>,
        dropout: Option<&mut SeededRng>,
    ) -> Tensor<2> {
        let joined = Tensor::cat(
            vec![
                self.mlp.forward(features),
                self.cnn.forward(images, dropout),
            ],
            1,
        );
        self.output.forward(relu(self.head.forward(joined)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::summary;
    use crate::photos::montage::SIDE;

    #[test]
    fn tutorial_mixed_model_has_keras_parameter_count() {
        let config = MixedConfig::default();
        assert_eq!(
            summary::total(&config.layers(10, &mut Names::default())),
            89_881
        );
        let device = Device::flex();
        let mixed = config.init(10, &mut SeededRng::new(2, 1), &device);
        let out = mixed.forward(
            Tensor::zeros([3, 10], &device),
            Tensor::zeros([3, 3, SIDE, SIDE], &device),
            None,
        );
        assert_eq!(out.dims(), [3, 1]);
    }
}

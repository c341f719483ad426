//! The networks. Part 1's multi-layer perceptron: Dense(8, relu) -> Dense(4, relu) -> Dense(1).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::rng::SeededRng;

/// Shape of the attribute network: the widths of its hidden ReLU layers (the output layer,
/// one linear unit, always follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpConfig {
    /// Hidden layer widths, in order.
    pub hidden: Vec<usize>,
}

impl Default for MlpConfig {
    /// The tutorial's `create_mlp`: Dense(8, relu) -> Dense(4, relu).
    fn default() -> Self {
        Self { hidden: vec![8, 4] }
    }
}

/// Keras's Glorot-uniform draw for a `fan_in x fan_out` kernel, row-major: uniform in
/// `[-limit, limit)` with `limit = sqrt(6 / (fan_in + fan_out))`.
pub fn glorot_uniform(fan_in: usize, fan_out: usize, rng: &mut SeededRng) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..fan_in * fan_out)
        .map(|_| rng.uniform(-limit, limit) as f32)
        .collect()
}

/// A dense layer from a row-major `fan_in x fan_out` kernel and a bias.
pub fn dense_from(kernel: Vec<f32>, bias: Vec<f32>, fan_in: usize, device: &Device) -> Linear {
    let fan_out = bias.len();
    let weight = TensorData::new(kernel, [fan_in, fan_out]);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(weight, device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [fan_out]),
            device,
        ))),
    }
}

/// A dense layer with Keras's initialization: Glorot-uniform kernel, zero bias.
pub fn dense(fan_in: usize, fan_out: usize, rng: &mut SeededRng, device: &Device) -> Linear {
    let kernel = glorot_uniform(fan_in, fan_out, rng);
    dense_from(kernel, vec![0.0; fan_out], fan_in, device)
}

/// The weights of one dense layer, as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseWeights {
    /// Row-major `fan_in x fan_out` kernel (Keras's layout).
    pub kernel: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
    /// Inputs of the layer.
    pub fan_in: usize,
}

impl DenseWeights {
    /// Outputs of the layer.
    pub fn fan_out(&self) -> usize {
        self.bias.len()
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .expect("parameters are f32")
}

/// Part 1's multi-layer perceptron.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers (ReLU), then the linear output layer.
    pub layers: Vec<Linear>,
}

impl MlpConfig {
    /// A freshly initialized network for `n_inputs` features.
    pub fn init(&self, n_inputs: usize, rng: &mut SeededRng, device: &Device) -> Mlp {
        let mut widths = vec![n_inputs];
        widths.extend(&self.hidden);
        widths.push(1);
        let layers = widths
            .windows(2)
            .map(|w| dense(w[0], w[1], rng, device))
            .collect();
        Mlp { layers }
    }

    /// Layer widths from the input to the output: `[n_inputs, hidden..., 1]`.
    pub fn widths(&self, n_inputs: usize) -> Vec<usize> {
        let mut widths = vec![n_inputs];
        widths.extend(&self.hidden);
        widths.push(1);
        widths
    }

    /// Number of trainable parameters (as Keras counts them).
    pub fn param_count(&self, n_inputs: usize) -> usize {
        self.widths(n_inputs)
            .windows(2)
            .map(|w| w[0] * w[1] + w[1])
            .sum()
    }

    /// Keras's `model.summary()` table for this network.
    pub fn summary(&self, n_inputs: usize) -> String {
        let rule = "_".repeat(65);
        let double = "=".repeat(65);
        let mut out = format!(
            "Model: \"mlp\"\n{rule}\n {:<28}{:<26}{}\n{double}\n",
            "Layer (type)", "Output Shape", "Param #"
        );
        for (i, w) in self.widths(n_inputs).windows(2).enumerate() {
            let name = if i == 0 {
                "dense".to_string()
            } else {
                format!("dense_{i}")
            };
            out += &format!(
                " {:<28}{:<26}{}\n",
                format!("{name} (Dense)"),
                format!("(None, {})", w[1]),
                w[0] * w[1] + w[1]
            );
        }
        let total = self.param_count(n_inputs);
        out += &format!(
            "{double}\nTotal params: {total}\nTrainable params: {total}\nNon-trainable params: 0\n{rule}\n"
        );
        out
    }

    /// Rebuilds a network from saved weights, checking them against this config.
    pub fn from_weights(
        &self,
        n_inputs: usize,
        layers: Vec<DenseWeights>,
        device: &Device,
    ) -> Result<Mlp, String> {
        let widths = self.widths(n_inputs);
        if layers.len() != widths.len() - 1 {
            return Err(format!(
                "the config has {} dense layers but the file holds weights for {}",
                widths.len() - 1,
                layers.len()
            ));
        }
        let mut built = Vec::with_capacity(layers.len());
        for (i, (layer, w)) in layers.into_iter().zip(widths.windows(2)).enumerate() {
            if layer.fan_in != w[0] || layer.fan_out() != w[1] || layer.kernel.len() != w[0] * w[1]
            {
                return Err(format!(
                    "layer {i} has weights of shape [{}, {}] but the config expects [{}, {}]",
                    layer.fan_in,
                    layer.fan_out(),
                    w[0],
                    w[1]
                ));
            }
            built.push(dense_from(layer.kernel, layer.bias, layer.fan_in, device));
        }
        Ok(Mlp { layers: built })
    }
}

impl Mlp {
    /// The weights of every layer, input side first.
    pub fn weights(&self) -> Vec<DenseWeights> {
        self.layers
            .iter()
            .map(|layer| {
                let [fan_in, _] = layer.weight.dims();
                DenseWeights {
                    kernel: values(layer.weight.val()),
                    bias: values(layer.bias.as_ref().expect("dense layers have a bias").val()),
                    fan_in,
                }
            })
            .collect()
    }

    /// Predicts scaled prices, `[batch, n_inputs] -> [batch, 1]`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_bounds_and_spread() {
        let mut rng = SeededRng::new(0, 0);
        let w = glorot_uniform(10, 8, &mut rng);
        let limit = (6.0f64 / 18.0).sqrt() as f32;
        assert_eq!(w.len(), 80);
        assert!(w.iter().all(|v| v.abs() <= limit));
        // Uses the whole range, not a narrower one.
        assert!(w.iter().any(|&v| v > 0.8 * limit) && w.iter().any(|&v| v < -0.8 * limit));
    }

    #[test]
    fn tutorial_mlp_shape_and_zero_bias() {
        let device = Device::flex();
        let config = MlpConfig::default();
        assert_eq!(config.param_count(10), 88 + 36 + 5);
        let mlp = config.init(10, &mut SeededRng::new(1, 1), &device);
        assert_eq!(mlp.layers.len(), 3);
        assert_eq!(mlp.layers[0].weight.dims(), [10, 8]);
        let weights = mlp.weights();
        assert!(weights.iter().all(|w| w.bias.iter().all(|&b| b == 0.0)));
        assert_eq!(weights[1].fan_in, 8);
        let rebuilt = config.from_weights(10, weights.clone(), &device).unwrap();
        assert_eq!(rebuilt.weights(), weights);
        let mut wrong = weights;
        wrong[2].bias.push(0.0);
        assert!(
            config
                .from_weights(10, wrong, &device)
                .unwrap_err()
                .contains("layer 2")
        );
        let summary = config.summary(10);
        assert!(summary.contains("dense_2 (Dense)") && summary.contains("Total params: 129"));
        let out = mlp.forward(Tensor::zeros([3, 10], &device));
        assert_eq!(out.dims(), [3, 1]);
    }
}

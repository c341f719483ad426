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

/// A dense layer with Keras's initialization: Glorot-uniform kernel, zero bias.
pub fn dense(fan_in: usize, fan_out: usize, rng: &mut SeededRng, device: &Device) -> Linear {
    let weight = TensorData::new(glorot_uniform(fan_in, fan_out, rng), [fan_in, fan_out]);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(weight, device)),
        bias: Some(Param::from_tensor(Tensor::zeros([fan_out], device))),
    }
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

    /// Number of trainable parameters (as Keras counts them).
    pub fn param_count(&self, n_inputs: usize) -> usize {
        let mut widths = vec![n_inputs];
        widths.extend(&self.hidden);
        widths.push(1);
        widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }
}

impl Mlp {
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
        let bias = mlp.layers[0].bias.as_ref().unwrap().val().into_data();
        assert!(bias.try_to_vec::<f32>().unwrap().iter().all(|&b| b == 0.0));
        let out = mlp.forward(Tensor::zeros([3, 10], &device));
        assert_eq!(out.dims(), [3, 1]);
    }
}

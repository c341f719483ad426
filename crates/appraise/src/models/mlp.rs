//! Part 1's multi-layer perceptron: Dense(8, relu) -> Dense(4, relu) -> Dense(1).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::layers::dense;
use super::summary::{Layer, Names};
use crate::runtime::rng::SeededRng;

/// Shape of the attribute network: the widths of its hidden ReLU layers (the output layer,
/// one linear unit, follows when the network predicts on its own).
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

/// The attribute network: Part 1's whole model, or Part 3's attribute branch (without the
/// output layer, ending in the last hidden ReLU).
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers (ReLU), then the linear output layer if there is one.
    pub layers: Vec<Linear>,
    /// Whether the last layer is the linear one-unit output (else every layer is ReLU).
    pub regress: bool,
}

impl MlpConfig {
    /// Layer widths from the input to the output: `[n_inputs, hidden..., 1]`, without the
    /// final 1 when `regress` is false.
    pub fn widths(&self, n_inputs: usize, regress: bool) -> Vec<usize> {
        let mut widths = vec![n_inputs];
        widths.extend(&self.hidden);
        if regress {
            widths.push(1);
        }
        widths
    }

    /// A freshly initialized network for `n_inputs` features (Keras's init: Glorot-uniform
    /// kernels, zero biases).
    pub fn init(
        &self,
        n_inputs: usize,
        regress: bool,
        rng: &mut SeededRng,
        device: &Device,
    ) -> Mlp {
        let layers = self
            .widths(n_inputs, regress)
            .windows(2)
            .map(|w| dense(w[0], w[1], rng, device))
            .collect();
        Mlp { layers, regress }
    }

    /// The layers as Keras's `model.summary()` lists them.
    pub fn layers(&self, n_inputs: usize, regress: bool, names: &mut Names) -> Vec<Layer> {
        self.widths(n_inputs, regress)
            .windows(2)
            .map(|w| Layer::dense(names, w[0], w[1]))
            .collect()
    }

    /// Width of the network's output.
    pub fn output_width(&self, n_inputs: usize, regress: bool) -> usize {
        *self
            .widths(n_inputs, regress)
            .last()
            .expect("at least the input")
    }
}

impl Mlp {
    /// The same network reading a wider input: its first layer gains zero weights for the
    /// inputs at positions `missing` (of the wider input, ascending), so its outputs on the
    /// inputs it read are unchanged. How a blend's members that read fewer inputs join it.
    pub fn with_zero_inputs(mut self, missing: &[usize]) -> Self {
        if missing.is_empty() {
            return self;
        }
        let first = &mut self.layers[0];
        let [fan_in, fan_out] = first.weight.dims();
        let device = first.weight.device();
        let old: Vec<f32> = first
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .expect("f32 weights");
        let mut rows = old.chunks_exact(fan_out);
        let mut widened = Vec::with_capacity((fan_in + missing.len()) * fan_out);
        for r in 0..fan_in + missing.len() {
            match missing.contains(&r) {
                true => widened.extend(std::iter::repeat_n(0.0f32, fan_out)),
                false => widened.extend_from_slice(rows.next().expect("a row per input")),
            }
        }
        first.weight = burn::module::Param::from_tensor(Tensor::from_data(
            burn::tensor::TensorData::new(widened, [fan_in + missing.len(), fan_out]),
            &device,
        ));
        self
    }

    /// The widths of its hidden layers (its [`MlpConfig::hidden`]).
    pub fn hidden_widths(&self) -> Vec<usize> {
        let hidden = if self.regress {
            &self.layers[..self.layers.len() - 1]
        } else {
            &self.layers[..]
        };
        hidden.iter().map(|l| l.weight.dims()[1]).collect()
    }

    /// `[batch, n_inputs] -> [batch, out]`: scaled prices, or the branch's features.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last || !self.regress {
                x = relu(x);
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::summary;

    #[test]
    fn tutorial_mlp_shape_and_zero_bias() {
        let device = Device::flex();
        let config = MlpConfig::default();
        let layers = config.layers(10, true, &mut Names::default());
        assert_eq!(summary::total(&layers), 88 + 36 + 5);
        let mlp = config.init(10, true, &mut SeededRng::new(1, 1), &device);
        assert_eq!(mlp.layers.len(), 3);
        assert_eq!(mlp.layers[0].weight.dims(), [10, 8]);
        let out = mlp.forward(Tensor::zeros([3, 10], &device));
        assert_eq!(out.dims(), [3, 1]);
        // As a branch it stops at the last hidden layer, ReLU'd.
        let branch = config.init(10, false, &mut SeededRng::new(1, 1), &device);
        let out = branch.forward(Tensor::ones([3, 10], &device).neg().mul_scalar(100.0));
        assert_eq!(out.dims(), [3, 4]);
        let values = out.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|&v| v >= 0.0));
    }
}

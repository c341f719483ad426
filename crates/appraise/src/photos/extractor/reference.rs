//! The photo network as it ran before its kernels (plain loops, a fresh plane per layer, the
//! stem through patches and a matrix product): the reference the kernels are tested against,
//! and the arithmetic of model files made before them ([`super::Precision::F32Reference`]),
//! which keep pricing exactly as they did.

use super::efficientnet::{Conv, EfficientNetLite0, INPUT, same_padding};
use crate::models::matmul::{Mat, matmul};

/// One image's activations, channels last: pixel by pixel, row by row, `channels` values
/// each. Channels last makes the depthwise layers' inner loop run over contiguous channels.
struct Planes {
    values: Vec<f32>,
    channels: usize,
    h: usize,
    w: usize,
}

impl Conv {
    /// `pixels` copies of the bias, where the output accumulates. (Collected from a
    /// flattened iterator, one value at a time, this took a fifth of the featurizing time.)
    fn bias_planes(&self, pixels: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(pixels * self.bias.len());
        for _ in 0..pixels {
            values.extend_from_slice(&self.bias);
        }
        values
    }

    /// The convolution plus bias, then ReLU6 when `relu6`.
    fn forward(&self, x: &Planes, relu6: bool) -> Planes {
        let mut y = if self.is_depthwise() {
            self.depthwise(x)
        } else {
            self.dense(x)
        };
        if relu6 {
            for v in &mut y.values {
                *v = v.clamp(0.0, 6.0);
            }
        }
        y
    }

    /// An ordinary convolution: a 1x1 one is the matrix product `[h * w, in] x [in, out]`; a
    /// larger kernel first gathers its patches (im2col), ordered (channel, ky, kx) as the
    /// weights are, padding read as zero.
    fn dense(&self, x: &Planes) -> Planes {
        let (k, s, c) = (self.kernel, self.stride, x.channels);
        let (oh, top) = same_padding(x.h, k, s);
        let (ow, left) = same_padding(x.w, k, s);
        let mut values = self.bias_planes(oh * ow);
        let depth = c * k * k;
        if k == 1 && s == 1 {
            // values [pixels][out] += inputs [pixels][depth] x weight [out][depth]^T
            matmul(
                &mut values,
                true,
                Mat::rows(&x.values, depth),
                Mat::transposed(&self.weight, depth),
                oh * ow,
                depth,
                self.out,
            );
        } else {
            let mut patches = vec![0.0f32; oh * ow * depth];
            for (pixel, patch) in patches.chunks_exact_mut(depth).enumerate() {
                let (oy, ox) = (pixel / ow, pixel % ow);
                for ky in 0..k {
                    let Some(iy) = (oy * s + ky).checked_sub(top).filter(|&i| i < x.h) else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ix) = (ox * s + kx).checked_sub(left).filter(|&i| i < x.w) else {
                            continue;
                        };
                        let input = &x.values[(iy * x.w + ix) * c..][..c];
                        for (channel, &v) in input.iter().enumerate() {
                            patch[(channel * k + ky) * k + kx] = v;
                        }
                    }
                }
            }
            // values [pixels][out] += inputs [pixels][depth] x weight [out][depth]^T
            matmul(
                &mut values,
                true,
                Mat::rows(&patches, depth),
                Mat::transposed(&self.weight, depth),
                oh * ow,
                depth,
                self.out,
            );
        }
        Planes {
            values,
            channels: self.out,
            h: oh,
            w: ow,
        }
    }

    /// Whether this is a depthwise convolution (its weights one `k` x `k` kernel per channel).
    fn is_depthwise(&self) -> bool {
        self.weight.len() == self.kernel * self.kernel * self.out && self.kernel > 1
    }

    /// A depthwise convolution: one `k` x `k` kernel per channel, each output pixel the sum
    /// of its taps, every channel at once.
    fn depthwise(&self, x: &Planes) -> Planes {
        let (k, s, c, (h, w)) = (self.kernel, self.stride, x.channels, (x.h, x.w));
        let (oh, top) = same_padding(h, k, s);
        let (ow, left) = same_padding(w, k, s);
        let mut values = self.bias_planes(oh * ow);
        for (pixel, out) in values.chunks_exact_mut(c).enumerate() {
            let (oy, ox) = (pixel / ow, pixel % ow);
            for ky in 0..k {
                let Some(iy) = (oy * s + ky).checked_sub(top).filter(|&i| i < h) else {
                    continue;
                };
                for kx in 0..k {
                    let Some(ix) = (ox * s + kx).checked_sub(left).filter(|&i| i < w) else {
                        continue;
                    };
                    let input = &x.values[(iy * w + ix) * c..][..c];
                    let taps = &self.weight[(ky * k + kx) * c..][..c];
                    for ((o, i), t) in out.iter_mut().zip(input).zip(taps) {
                        *o += t * i;
                    }
                }
            }
        }
        Planes {
            values,
            channels: c,
            h: oh,
            w: ow,
        }
    }
}

impl EfficientNetLite0 {
    /// [`EfficientNetLite0::embed`] as plain loops over fresh planes, one value at a time.
    pub(crate) fn embed_reference(&self, image: &[f32]) -> Vec<f32> {
        assert_eq!(image.len(), 3 * INPUT * INPUT, "one 224x224 RGB image");
        let pixels = INPUT * INPUT;
        // Channel-first to pixel-first, a pixel at a time.
        let (red, rest) = image.split_at(pixels);
        let (green, blue) = rest.split_at(pixels);
        let mut values = Vec::with_capacity(3 * pixels);
        for ((&r, &g), &b) in red.iter().zip(green).zip(blue) {
            values.extend_from_slice(&[r, g, b]);
        }
        let x = Planes {
            values,
            channels: 3,
            h: INPUT,
            w: INPUT,
        };
        let mut x = self.stem.forward(&x, true);
        for block in &self.blocks {
            let mut y = match &block.expand {
                Some(expand) => block.depthwise.forward(&expand.forward(&x, true), true),
                None => block.depthwise.forward(&x, true),
            };
            y = block.project.forward(&y, false);
            if block.residual {
                for (v, i) in y.values.iter_mut().zip(&x.values) {
                    *v += i;
                }
            }
            x = y;
        }
        let x = self.head.forward(&x, true);
        let mut sums = vec![0.0f32; x.channels];
        for pixel in x.values.chunks_exact(x.channels) {
            for (sum, v) in sums.iter_mut().zip(pixel) {
                *sum += v;
            }
        }
        let pixels = (x.h * x.w) as f32;
        sums.iter().map(|s| s / pixels).collect()
    }
}

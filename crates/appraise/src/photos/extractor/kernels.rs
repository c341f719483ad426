//! The photo network's layers as loops over channels-last planes, compiled for the CPU's
//! widest vectors ([`simd_dispatch!`]): the stem convolution, the depthwise convolutions and
//! the passes that follow a 1x1 convolution's matrix product, each with its bias and ReLU6
//! fused in, so each layer reads and writes its planes once.
//!
//! Each output adds its terms in the order the plain loops of the reference network did
//! (bias, then tap by tap), each term with one fused multiply-add (one rounding): the same
//! bits on every CPU, as the ones without FMA compute it exactly in software.

use crate::runtime::simd::simd_dispatch;

/// The shape of one convolution over a plane: input `h` x `w`, output `oh` x `ow`, a `k` x
/// `k` kernel moved by `stride`, `top` and `left` rows and columns of zero padding before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub top: usize,
    pub left: usize,
}

impl Window {
    /// The taps of output row `oy` (or column, with `w` and `left`) that fall inside the
    /// input, `lo..hi`, and the input row of tap `lo`.
    #[inline(always)]
    fn taps(oy: usize, stride: usize, k: usize, top: usize, h: usize) -> (usize, usize, usize) {
        let y0 = oy * stride;
        let lo = top.saturating_sub(y0);
        let hi = k.min(h + top - y0);
        (lo, hi, y0 + lo - top)
    }
}

/// The taps of one output pixel that fall inside the input: rows `ky_lo..ky_hi` from input
/// row `iy`, columns `kx_lo..kx_hi` from input column `ix`.
#[derive(Clone, Copy)]
struct Taps {
    ky: (usize, usize),
    kx: (usize, usize),
    iy: usize,
    ix: usize,
}

impl Window {
    fn pixel(&self, oy: usize, ox: usize) -> Taps {
        let (ky_lo, ky_hi, iy) = Window::taps(oy, self.stride, self.k, self.top, self.h);
        let (kx_lo, kx_hi, ix) = Window::taps(ox, self.stride, self.k, self.left, self.w);
        Taps {
            ky: (ky_lo, ky_hi),
            kx: (kx_lo, kx_hi),
            iy,
            ix,
        }
    }
}

/// ReLU6 as two compares the CPU does in one instruction each (`f32::max` adds NaN fixups).
#[inline(always)]
fn relu6(v: f32) -> f32 {
    let v = if v > 0.0 { v } else { 0.0 };
    if v < 6.0 { v } else { 6.0 }
}

/// Channels `c0..c0 + N` of one depthwise output pixel: `N` running sums, independent chains
/// the CPU overlaps, each tap's weights and inputs read as whole vectors.
#[inline(always)]
fn depthwise_chunk<const N: usize>(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    (c, c0, k, w): (usize, usize, usize, usize),
    taps: Taps,
    out: &mut [f32],
) {
    let mut acc: [f32; N] = bias[c0..c0 + N].try_into().unwrap();
    for ky in taps.ky.0..taps.ky.1 {
        let row = (taps.iy + ky - taps.ky.0) * w + taps.ix - taps.kx.0;
        for kx in taps.kx.0..taps.kx.1 {
            let i: &[f32; N] = input[(row + kx) * c + c0..][..N].try_into().unwrap();
            let t: &[f32; N] = weight[(ky * k + kx) * c + c0..][..N].try_into().unwrap();
            for j in 0..N {
                acc[j] = t[j].mul_add(i[j], acc[j]);
            }
        }
    }
    let o: &mut [f32; N] = (&mut out[c0..c0 + N]).try_into().unwrap();
    for j in 0..N {
        o[j] = relu6(acc[j]);
    }
}

simd_dispatch! {
    /// A depthwise convolution: `out [oh*ow][c] = relu6(bias + sum over taps of weight [tap]
    /// [c] * input [pixel][c])`, `weight` as `[k*k][c]`.
    pub(crate) fn depthwise(input: &[f32], weight: &[f32], bias: &[f32], c: usize, win: Window, out: &mut [f32]) {
        for oy in 0..win.oh {
            for ox in 0..win.ow {
                let taps = win.pixel(oy, ox);
                let o = &mut out[(oy * win.ow + ox) * c..][..c];
                let mut c0 = 0;
                while c0 + 64 <= c {
                    depthwise_chunk::<64>(input, weight, bias, (c, c0, win.k, win.w), taps, o);
                    c0 += 64;
                }
                while c0 + 16 <= c {
                    depthwise_chunk::<16>(input, weight, bias, (c, c0, win.k, win.w), taps, o);
                    c0 += 16;
                }
                while c0 < c {
                    depthwise_chunk::<1>(input, weight, bias, (c, c0, win.k, win.w), taps, o);
                    c0 += 1;
                }
            }
        }
    }
}

simd_dispatch! {
    /// The stem: an ordinary convolution of a 3-channel plane into 32, `out [oh*ow][32] =
    /// relu6(bias + sum over taps and input channels of input * weight)`, `weight` as
    /// `[k][k][3][32]`.
    pub(crate) fn stem(input: &[f32], weight: &[f32], bias: &[f32], win: Window, out: &mut [f32]) {
        const C: usize = 3;
        const N: usize = STEM_OUT;
        for oy in 0..win.oh {
            for ox in 0..win.ow {
                let taps = win.pixel(oy, ox);
                let mut acc: [f32; N] = bias.try_into().unwrap();
                for ky in taps.ky.0..taps.ky.1 {
                    let row = (taps.iy + ky - taps.ky.0) * win.w + taps.ix - taps.kx.0;
                    for kx in taps.kx.0..taps.kx.1 {
                        let i: &[f32; C] = input[(row + kx) * C..][..C].try_into().unwrap();
                        for (ci, &v) in i.iter().enumerate() {
                            let t: &[f32; N] =
                                weight[((ky * win.k + kx) * C + ci) * N..][..N].try_into().unwrap();
                            for j in 0..N {
                                acc[j] = v.mul_add(t[j], acc[j]);
                            }
                        }
                    }
                }
                let o: &mut [f32; N] = (&mut out[(oy * win.ow + ox) * N..][..N]).try_into().unwrap();
                for j in 0..N {
                    o[j] = relu6(acc[j]);
                }
            }
        }
    }
}

/// Output channels of the stem.
pub(crate) const STEM_OUT: usize = 32;

simd_dispatch! {
    /// After a 1x1 convolution's product: `values [pixel][c] = relu6(values + bias)`.
    pub(crate) fn bias_relu6(values: &mut [f32], bias: &[f32]) {
        for pixel in values.chunks_exact_mut(bias.len()) {
            for (v, &b) in pixel.iter_mut().zip(bias) {
                *v = relu6(b + *v);
            }
        }
    }
}

simd_dispatch! {
    /// After a block's projection: `values [pixel][c] += bias` and, given the block's input,
    /// `+= residual` too.
    pub(crate) fn bias_residual(values: &mut [f32], bias: &[f32], residual: Option<&[f32]>) {
        let c = bias.len();
        match residual {
            Some(residual) => {
                for (pixel, r) in values.chunks_exact_mut(c).zip(residual.chunks_exact(c)) {
                    for ((v, &b), &r) in pixel.iter_mut().zip(bias).zip(r) {
                        *v = (b + *v) + r;
                    }
                }
            }
            None => {
                for pixel in values.chunks_exact_mut(c) {
                    for (v, &b) in pixel.iter_mut().zip(bias) {
                        *v += b;
                    }
                }
            }
        }
    }
}

//! The photo network's 1x1 convolutions in 8-bit integers (`--photo-precision int8`): each
//! output channel's weights scaled to -127..127, each layer's inputs to 0..255 (with a zero
//! point where they can be negative: a block's output), the products summed exactly in 32-bit
//! integers (AVX-512 VNNI's `vpdpbusd`, four products a lane), then scaled back to floats.
//! Integer sums are exact, so every CPU gives the same bits: without VNNI the same sums are
//! taken one at a time.

use super::kernels::{Pointwise, Then};

/// A 1x1 convolution's weights in 8 bits: `[inputs / 4][outputs rounded up to 16][4]`, zero
/// past the last output; each output's scale and the sum of its integer weights.
pub(crate) struct Int8Weights {
    quads: Vec<i8>,
    /// The float weight of one integer step, per output (padded like `quads`).
    scales: Vec<f32>,
    /// The sum of each output's integer weights (padded), to take the inputs' zero point out.
    sums: Vec<i32>,
    padded: usize,
}

impl Int8Weights {
    /// From float weights `[inputs][outputs]` (`inputs` a multiple of 4).
    pub(crate) fn new(weight: &[f32], inputs: usize, outputs: usize) -> Self {
        let padded = outputs.div_ceil(16) * 16;
        let mut scales = vec![0.0f32; padded];
        for (o, scale) in scales.iter_mut().enumerate().take(outputs) {
            let max = (0..inputs)
                .map(|i| weight[i * outputs + o].abs())
                .fold(0.0, f32::max);
            *scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        }
        let mut quads = vec![0i8; inputs.div_ceil(4) * padded * 4];
        let mut sums = vec![0i32; padded];
        for i in 0..inputs {
            for o in 0..outputs {
                let q = (weight[i * outputs + o] / scales[o])
                    .round()
                    .clamp(-127.0, 127.0) as i8;
                quads[((i / 4) * padded + o) * 4 + i % 4] = q;
                sums[o] += i32::from(q);
            }
        }
        Int8Weights {
            quads,
            scales,
            sums,
            padded,
        }
    }
}

/// How a layer's float inputs became bytes: `v ~= scale * (byte - zero)`.
#[derive(Debug, Clone, Copy)]
struct Quantized {
    scale: f32,
    zero: i32,
}

/// `x` as bytes into `out`: inputs after ReLU6 (`relu6`, in 0..6) on a fixed scale, others
/// on their own range with a zero point.
fn quantize(x: &[f32], relu6: bool, out: &mut Vec<u8>, vector: bool) -> Quantized {
    let (lo, hi) = if relu6 { (0.0, 6.0) } else { range(x, vector) };
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
    out.clear();
    out.resize(x.len(), 0);
    to_bytes(x, 1.0 / scale, zero, out, vector);
    Quantized {
        scale,
        zero: zero as i32,
    }
}

/// The smallest and largest of `x` and zero (`vector`: with AVX-512).
fn range(x: &[f32], vector: bool) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if vector {
        // SAFETY: the CPU has AVX-512.
        return unsafe { x86::range(x) };
    }
    x.iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// `out = clamp(round_ties_even(x * inverse + zero), 0, 255)` (`vector`: with AVX-512).
fn to_bytes(x: &[f32], inverse: f32, zero: f32, out: &mut [u8], vector: bool) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if vector {
        // SAFETY: the CPU has AVX-512; the slices bound the vector part.
        done = unsafe { x86::to_bytes(x, inverse, zero, out) };
    }
    for (o, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *o = (v * inverse + zero).round_ties_even().clamp(0.0, 255.0) as u8;
    }
}

/// A 1x1 convolution in 8-bit integers: [`super::kernels::pointwise`]'s operands and
/// whether its inputs come out of a ReLU6 (a projection's).
pub(crate) struct Layer<'a> {
    pub inputs_relu6: bool,
    pub weight: &'a Int8Weights,
    pub bias: &'a [f32],
    pub shape: Pointwise,
    pub then: Then<'a>,
}

impl Layer<'_> {
    /// The layer on `x` into `out`; `scratch` holds the inputs as bytes.
    pub(crate) fn apply(&self, x: &[f32], scratch: &mut Vec<u8>, out: &mut [f32]) {
        self.run(x, scratch, out, vnni());
    }

    /// The layer on `x` into `out`, with AVX-512 VNNI when `vector` (which the CPU must have).
    fn run(&self, x: &[f32], scratch: &mut Vec<u8>, out: &mut [f32], vector: bool) {
        let Layer {
            inputs_relu6,
            weight,
            bias,
            shape,
            then,
        } = *self;
        let (pixels, k, o) = (shape.pixels, shape.inputs, shape.outputs);
        assert!(k.is_multiple_of(4) && x.len() >= pixels * k && out.len() >= pixels * o);
        assert!(weight.quads.len() == k / 4 * weight.padded * 4 && bias.len() == o);
        let residual = match then {
            Then::Residual(Some(r)) => {
                assert!(r.len() >= pixels * o);
                Some(r)
            }
            _ => None,
        };
        let q = quantize(&x[..pixels * k], inputs_relu6, scratch, vector);
        let epilogue = Epilogue {
            bias,
            scales: &weight.scales,
            sums: &weight.sums,
            scale: q.scale,
            zero: q.zero,
            relu6: matches!(then, Then::Relu6),
            residual,
            outputs: o,
        };
        #[cfg(target_arch = "x86_64")]
        if vector {
            // SAFETY: the asserts bound every index; the caller checked the CPU has VNNI.
            unsafe { x86::tiles(scratch, weight, shape, &epilogue, out) };
            return;
        }
        for pixel in 0..pixels {
            let row = &scratch[pixel * k..][..k];
            for n in 0..o {
                let sum: i32 = (0..k)
                    .map(|i| {
                        let w = weight.quads[((i / 4) * weight.padded + n) * 4 + i % 4];
                        i32::from(row[i]) * i32::from(w)
                    })
                    .sum();
                out[pixel * o + n] = epilogue.finish(pixel, n, sum);
            }
        }
    }
}

/// How an output's integer sum becomes its float value (the vector path does the same
/// operations in the same order).
struct Epilogue<'a> {
    bias: &'a [f32],
    scales: &'a [f32],
    sums: &'a [i32],
    scale: f32,
    zero: i32,
    relu6: bool,
    residual: Option<&'a [f32]>,
    outputs: usize,
}

impl Epilogue<'_> {
    fn finish(&self, pixel: usize, n: usize, sum: i32) -> f32 {
        let v = (sum - self.zero * self.sums[n]) as f32 * (self.scale * self.scales[n]);
        let v = self.bias[n] + v;
        if self.relu6 {
            super::kernels::relu6(v)
        } else if let Some(r) = self.residual {
            v + r[pixel * self.outputs + n]
        } else {
            v
        }
    }
}

/// Whether this CPU has AVX-512 VNNI.
fn vnni() -> bool {
    crate::runtime::simd::has(crate::runtime::simd::Extension::Vnni)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Tiles of 6 pixels by up to 64 outputs, their integer sums in registers, four input
    //! bytes broadcast at a time against 16 outputs' four weights each.

    use super::{Epilogue, Int8Weights};
    use crate::photos::extractor::kernels::Pointwise;
    use crate::photos::extractor::kernels::x86::store_outputs;
    use std::arch::x86_64::*;

    /// [`super::range`], 16 values at a time.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma")]
    pub(super) unsafe fn range(x: &[f32]) -> (f32, f32) {
        let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let chunks = x.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
        }
        let (lo, hi) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
        rest.iter()
            .fold((lo, hi), |(lo, hi), &v| (lo.min(v), hi.max(v)))
    }

    /// [`super::to_bytes`] of the first multiple of 16 values (the same operations: multiply,
    /// add, round half to even, clamp); how many it did.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma")]
    pub(super) unsafe fn to_bytes(x: &[f32], inverse: f32, zero: f32, out: &mut [u8]) -> usize {
        let (inverse, zero) = (_mm512_set1_ps(inverse), _mm512_set1_ps(zero));
        let n = x.len().min(out.len()) / 16 * 16;
        for (x, out) in x[..n].chunks_exact(16).zip(out[..n].chunks_exact_mut(16)) {
            unsafe {
                let v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x.as_ptr()), inverse), zero);
                // Rounds half to even (the default rounding mode), then saturates to 0..255.
                let q = _mm512_max_epi32(_mm512_cvtps_epi32(v), _mm512_setzero_si512());
                _mm_storeu_si128(out.as_mut_ptr().cast(), _mm512_cvtusepi32_epi8(q));
            }
        }
        n
    }

    /// Every tile of the layer.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma")]
    pub(super) unsafe fn tiles(
        x: &[u8],
        w: &Int8Weights,
        shape: Pointwise,
        e: &Epilogue,
        out: &mut [f32],
    ) {
        const P: usize = 6;
        let (pixels, outputs) = (shape.pixels, shape.outputs);
        let out = out.as_mut_ptr();
        let mut p0 = 0;
        while p0 < pixels {
            let rows = P.min(pixels - p0);
            let mut n0 = 0;
            while n0 < outputs {
                let nv = match (outputs - n0).div_ceil(16) {
                    v if v >= 4 => 4,
                    v if v >= 2 => 2,
                    _ => 1,
                };
                macro_rules! tile {
                    ($nv:literal) => {
                        match rows {
                            1 => tile::<1, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                            2 => tile::<2, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                            3 => tile::<3, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                            4 => tile::<4, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                            5 => tile::<5, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                            _ => tile::<P, $nv>(x, w, shape.inputs, (p0, n0), e, out),
                        }
                    };
                }
                unsafe {
                    match nv {
                        4 => tile!(4),
                        2 => tile!(2),
                        _ => tile!(1),
                    }
                }
                n0 += 16 * nv;
            }
            p0 += rows;
        }
    }

    /// Pixels `p0..p0 + P`, outputs `n0..n0 + 16 * NV` (those below the layer's count).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma")]
    unsafe fn tile<const P: usize, const NV: usize>(
        x: &[u8],
        w: &Int8Weights,
        k: usize,
        (p0, n0): (usize, usize),
        e: &Epilogue,
        out: *mut f32,
    ) {
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); NV]; P];
            let (x, quads) = (x.as_ptr(), w.quads.as_ptr());
            for kq in 0..k / 4 {
                let wq = quads.add((kq * w.padded + n0) * 4);
                let mut wv = [_mm512_setzero_si512(); NV];
                for (v, wv) in wv.iter_mut().enumerate() {
                    *wv = _mm512_loadu_si512(wq.add(v * 64).cast());
                }
                for (p, acc) in acc.iter_mut().enumerate() {
                    let quad = x.add((p0 + p) * k + 4 * kq).cast::<i32>().read_unaligned();
                    let xv = _mm512_set1_epi32(quad);
                    for v in 0..NV {
                        acc[v] = _mm512_dpbusd_epi32(acc[v], xv, wv[v]);
                    }
                }
            }
            let o = e.outputs;
            let (qzero, qscale) = (_mm512_set1_epi32(e.zero), _mm512_set1_ps(e.scale));
            for (p, acc) in acc.iter().enumerate() {
                for (v, &acc) in acc.iter().enumerate() {
                    let first = n0 + 16 * v;
                    if first >= o {
                        break;
                    }
                    // Padded outputs have sums and scales too (zeros): the loads stay in range.
                    let sums = _mm512_loadu_si512(e.sums.as_ptr().add(first).cast());
                    let scales = _mm512_loadu_ps(e.scales.as_ptr().add(first));
                    let exact = _mm512_sub_epi32(acc, _mm512_mullo_epi32(qzero, sums));
                    let r = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), _mm512_mul_ps(qscale, scales));
                    let at = (p0 + p) * o + first;
                    let residual = e.residual.map_or(std::ptr::null(), |r| r.as_ptr().add(at));
                    let bias = e.bias.as_ptr().add(first);
                    store_outputs(r, o - first, bias, e.relu6, residual, out.add(at));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64, low: f64, high: f64) -> Vec<f32> {
        let mut rng = crate::runtime::rng::SeededRng::new(seed, 0);
        (0..n).map(|_| rng.uniform(low, high) as f32).collect()
    }

    #[test]
    fn vector_and_plain_sums_agree_bit_for_bit_and_follow_the_floats() {
        // 13 pixels (two tiles and a short one), 24 inputs, 40 outputs (a masked vector).
        let shape = Pointwise {
            pixels: 13,
            inputs: 24,
            outputs: 40,
        };
        let weight = values(24 * 40, 1, -0.5, 0.5);
        let bias = values(40, 2, -1.0, 1.0);
        let int8 = Int8Weights::new(&weight, 24, 40);
        for (relu6_inputs, then) in [(false, Then::Relu6), (true, Then::Residual(None))] {
            let x = values(13 * 24, 3, if relu6_inputs { 0.0 } else { -3.0 }, 6.0);
            let mut float = vec![0.0f32; 13 * 40];
            super::super::kernels::pointwise(&x, &weight, &bias, shape, then, &mut float);
            let layer = Layer {
                inputs_relu6: relu6_inputs,
                weight: &int8,
                bias: &bias,
                shape,
                then,
            };
            let mut plain = vec![0.0f32; 13 * 40];
            layer.run(&x, &mut Vec::new(), &mut plain, false);
            let gap = plain
                .iter()
                .zip(&float)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let largest = float.iter().map(|v| v.abs()).fold(0.0, f32::max);
            assert!(gap < 0.02 * largest, "int8 vs float: {gap} of {largest}");
            if vnni() {
                let mut vector = vec![0.0f32; 13 * 40];
                layer.run(&x, &mut Vec::new(), &mut vector, true);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&vector), bits(&plain));
            }
        }
    }
}

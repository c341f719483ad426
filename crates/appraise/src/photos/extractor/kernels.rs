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
    pub(crate) fn taps(
        oy: usize,
        stride: usize,
        k: usize,
        top: usize,
        h: usize,
    ) -> (usize, usize, usize) {
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
pub(crate) fn relu6(v: f32) -> f32 {
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

/// Input bytes of a depthwise layer that stay in the core's cache (L2 is 1-2 MiB).
const PLANE_IN_CACHE_BYTES: usize = 1 << 20;

/// How many channels from `c0` on one depthwise pass sums at once: 64 (four independent
/// AVX-512 sums), else 32 or 16, else 1.
#[inline(always)]
fn chunk(c: usize, c0: usize) -> usize {
    [64, 32, 16, 1]
        .into_iter()
        .find(|&n| c0 + n <= c)
        .unwrap_or(1)
}

/// A depthwise convolution: `out [oh*ow][c] = relu6(bias + sum over taps of weight [tap]
/// [c] * input [pixel][c])`, `weight` as `[k*k][c]`.
pub(crate) fn depthwise(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    c: usize,
    win: Window,
    out: &mut [f32],
) {
    assert!(input.len() >= win.h * win.w * c && out.len() >= win.oh * win.ow * c);
    assert!(weight.len() == win.k * win.k * c && bias.len() == c);
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::simd::level() == crate::runtime::simd::Level::Avx512 && c.is_multiple_of(16)
    {
        // SAFETY: the asserts bound every index (pixels inside the planes, channels below
        // `c`); the CPU has AVX-512.
        match win.k {
            3 => return unsafe { x86::depthwise::<3>(input, weight, bias, c, win, out) },
            5 => return unsafe { x86::depthwise::<5>(input, weight, bias, c, win, out) },
            _ => {}
        }
    }
    depthwise_loops(input, weight, bias, c, win, out)
}

simd_dispatch! {
    /// [`depthwise`] as loops the compiler vectorizes. A plane that fits the core's cache
    /// goes a slice of channels at a time, so that the slice's weights stay in the nearest
    /// cache; a larger one a pixel at a time, so that it is read from memory once.
    fn depthwise_loops(input: &[f32], weight: &[f32], bias: &[f32], c: usize, win: Window, out: &mut [f32]) {
        let slices = 4 * win.h * win.w * c <= PLANE_IN_CACHE_BYTES;
        let mut s0 = 0;
        while s0 < c {
            let s1 = if slices { s0 + chunk(c, s0) } else { c };
            for oy in 0..win.oh {
                for ox in 0..win.ow {
                    let taps = win.pixel(oy, ox);
                    let o = &mut out[(oy * win.ow + ox) * c..][..c];
                    let mut c0 = s0;
                    while c0 < s1 {
                        let dims = (c, c0, win.k, win.w);
                        let n = chunk(c, c0);
                        match n {
                            64 => depthwise_chunk::<64>(input, weight, bias, dims, taps, o),
                            32 => depthwise_chunk::<32>(input, weight, bias, dims, taps, o),
                            16 => depthwise_chunk::<16>(input, weight, bias, dims, taps, o),
                            _ => depthwise_chunk::<1>(input, weight, bias, dims, taps, o),
                        }
                        c0 += n;
                    }
                }
            }
            s0 = s1;
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

/// What a 1x1 convolution does after its product: add the bias, then ReLU6 (an expansion,
/// the head) or add the block's input back (a projection with a residual), or neither.
#[derive(Clone, Copy)]
pub(crate) enum Then<'a> {
    Relu6,
    Residual(Option<&'a [f32]>),
}

/// The shape of one 1x1 convolution: `pixels` rows of `inputs` channels in, `outputs` out.
#[derive(Clone, Copy)]
pub(crate) struct Pointwise {
    pub pixels: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Weight bytes a pass over all pixels keeps in the core's cache: wider layers go in slices
/// of output channels, each read from the cache for every pixel.
const WEIGHT_SLICE_BYTES: usize = 128 * 1024;

/// A 1x1 convolution: `out [pixel][o] = then(bias [o] + sum over i of x [pixel][i] * weight
/// [i][o])`, `weight` as `[inputs][outputs]`, each sum one fused multiply-add at a time over
/// `i` in order (so every instruction set gives the same bits).
pub(crate) fn pointwise(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    shape: Pointwise,
    then: Then,
    out: &mut [f32],
) {
    assert!(x.len() >= shape.pixels * shape.inputs);
    assert!(out.len() >= shape.pixels * shape.outputs);
    assert!(weight.len() == shape.inputs * shape.outputs && bias.len() == shape.outputs);
    let residual = match then {
        Then::Residual(Some(r)) => {
            assert!(r.len() >= shape.pixels * shape.outputs);
            r.as_ptr()
        }
        _ => std::ptr::null(),
    };
    let args = Args {
        x: x.as_ptr(),
        weight: weight.as_ptr(),
        bias: bias.as_ptr(),
        residual,
        relu6: matches!(then, Then::Relu6),
        out: out.as_mut_ptr(),
        shape,
    };
    // SAFETY: the asserts above bound every pointer the tiles touch (pixels < shape.pixels,
    // outputs < shape.outputs, inputs < shape.inputs); `level` saw the CPU report the
    // instructions of the path it picks.
    unsafe {
        match crate::runtime::simd::level() {
            #[cfg(target_arch = "x86_64")]
            crate::runtime::simd::Level::Avx512 => x86::avx512(&args),
            #[cfg(target_arch = "x86_64")]
            crate::runtime::simd::Level::Avx2 => x86::avx2(&args),
            _ => scalar(&args),
        }
    }
}

/// A 1x1 convolution's weights in bfloat16, for [`pointwise_bf16`]: pairs of inputs side by
/// side for each output, `[inputs / 2][outputs rounded up to 16][2]`, zero past the last
/// output and input; and the same values as floats `[inputs][outputs]` for CPUs without
/// AVX-512 BF16.
pub(crate) struct Bf16Weights {
    pairs: Vec<u16>,
    rounded: Vec<f32>,
    padded_outputs: usize,
}

impl Bf16Weights {
    /// From float weights `[inputs][outputs]`, each rounded to the nearest bfloat16.
    pub(crate) fn new(weight: &[f32], inputs: usize, outputs: usize) -> Self {
        let padded_outputs = outputs.div_ceil(16) * 16;
        let pairs_in = inputs.div_ceil(2);
        let mut pairs = vec![0u16; pairs_in * padded_outputs * 2];
        for i in 0..inputs {
            for o in 0..outputs {
                let v = half::bf16::from_f32(weight[i * outputs + o]).to_bits();
                pairs[((i / 2) * padded_outputs + o) * 2 + i % 2] = v;
            }
        }
        let rounded = weight.iter().map(|&v| round_bf16(v)).collect();
        Bf16Weights {
            pairs,
            rounded,
            padded_outputs,
        }
    }
}

/// `v` rounded to the nearest bfloat16, as a float.
#[inline(always)]
fn round_bf16(v: f32) -> f32 {
    half::bf16::from_f32(v).to_f32()
}

/// [`pointwise`] with the products in bfloat16 (8 bits of mantissa; sums in float): the
/// inputs rounded to bfloat16 into `scratch`, then AVX-512 BF16's two-products-per-lane
/// multiply-add, twice the multiplies of float32 per instruction. On CPUs without it the same
/// rounded values multiplied as floats (close to, not the same bits as, the native path).
pub(crate) fn pointwise_bf16(
    x: &[f32],
    weight: &Bf16Weights,
    bias: &[f32],
    shape: Pointwise,
    then: Then,
    scratch: &mut Vec<u16>,
    out: &mut [f32],
) {
    let n = shape.pixels * shape.inputs;
    #[cfg(target_arch = "x86_64")]
    if bf16_native() && shape.inputs.is_multiple_of(2) {
        assert!(x.len() >= n && out.len() >= shape.pixels * shape.outputs);
        assert!(weight.pairs.len() == shape.inputs / 2 * weight.padded_outputs * 2);
        assert!(bias.len() == shape.outputs);
        if let Then::Residual(Some(r)) = then {
            assert!(r.len() >= shape.pixels * shape.outputs);
        }
        scratch.clear();
        scratch.resize(n, 0);
        // SAFETY: the asserts bound every index the kernel touches; the CPU has the
        // instructions (`bf16_native`).
        unsafe {
            x86::to_bf16(&x[..n], scratch);
            x86::pointwise_bf16(x86::Bf16Args {
                x: scratch.as_ptr(),
                pairs: weight.pairs.as_ptr(),
                padded: weight.padded_outputs,
                bias,
                residual: match then {
                    Then::Residual(Some(r)) => r.as_ptr(),
                    _ => std::ptr::null(),
                },
                relu6: matches!(then, Then::Relu6),
                out: out.as_mut_ptr(),
                shape,
            });
        }
        return;
    }
    let rounded: Vec<f32> = x[..n].iter().map(|&v| round_bf16(v)).collect();
    pointwise(&rounded, &weight.rounded, bias, shape, then, out);
}

/// Whether this CPU multiplies bfloat16 natively (AVX-512 BF16).
fn bf16_native() -> bool {
    crate::runtime::simd::has(crate::runtime::simd::Extension::Bf16)
}

/// [`pointwise`]'s operands as raw pointers, checked by it.
struct Args {
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    /// Null unless the block's input is added back.
    residual: *const f32,
    relu6: bool,
    out: *mut f32,
    shape: Pointwise,
}

impl Args {
    /// The slices of output channels that keep their weights in cache: `(start, end)`.
    fn slices(&self, multiple: usize) -> impl Iterator<Item = (usize, usize)> + use<> {
        let Pointwise {
            inputs, outputs, ..
        } = self.shape;
        let slice = (WEIGHT_SLICE_BYTES / 4 / inputs).max(multiple) / multiple * multiple;
        (0..outputs)
            .step_by(slice)
            .map(move |start| (start, outputs.min(start + slice)))
    }

    /// The finished value of output `o` of `pixel` whose sum is `sum`.
    #[inline(always)]
    unsafe fn finish(&self, pixel: usize, o: usize, sum: f32) -> f32 {
        unsafe {
            let v = *self.bias.add(o) + sum;
            if self.relu6 {
                relu6(v)
            } else if self.residual.is_null() {
                v
            } else {
                v + *self.residual.add(pixel * self.shape.outputs + o)
            }
        }
    }

    /// Outputs `n0..n1` of `pixel`, one at a time.
    #[inline(always)]
    unsafe fn one_by_one(&self, pixel: usize, n0: usize, n1: usize) {
        let Pointwise {
            inputs, outputs, ..
        } = self.shape;
        for o in n0..n1 {
            let mut sum = 0.0f32;
            for i in 0..inputs {
                unsafe {
                    let (x, w) = (
                        *self.x.add(pixel * inputs + i),
                        *self.weight.add(i * outputs + o),
                    );
                    sum = x.mul_add(w, sum);
                }
            }
            unsafe { *self.out.add(pixel * outputs + o) = self.finish(pixel, o, sum) };
        }
    }
}

/// [`pointwise`] one value at a time, for CPUs without AVX2.
unsafe fn scalar(a: &Args) {
    for pixel in 0..a.shape.pixels {
        unsafe { a.one_by_one(pixel, 0, a.shape.outputs) };
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    //! [`super::pointwise`] with vector registers: a tile of `P` pixels by `NV` vectors of
    //! outputs keeps its `P * NV` sums in registers while the inputs stream past, each input
    //! value broadcast once, each weight vector read once per tile. Written with intrinsics:
    //! plain loops over arrays of sums were vectorized with the sums kept in memory.

    use super::{Args, Window};
    use std::arch::x86_64::*;

    /// [`super::depthwise`] for a `K` x `K` kernel, 16 channels at a time with their `K * K`
    /// weight vectors held in registers for a whole output row, four output pixels summed
    /// side by side where all their taps fall inside the input (one load per multiply-add,
    /// four independent sums). The same sums in the same order as the plain loops.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn depthwise<const K: usize>(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        c: usize,
        win: Window,
        out: &mut [f32],
    ) {
        let (x, o) = (input.as_ptr(), out.as_mut_ptr());
        for oy in 0..win.oh {
            let rows = Window::taps(oy, win.stride, K, win.top, win.h);
            for c0 in (0..c).step_by(16) {
                unsafe {
                    let mut w = [[_mm512_setzero_ps(); K]; K];
                    for (ky, w) in w.iter_mut().enumerate() {
                        for (kx, w) in w.iter_mut().enumerate() {
                            *w = _mm512_loadu_ps(weight.as_ptr().add((ky * K + kx) * c + c0));
                        }
                    }
                    let b = _mm512_loadu_ps(bias.as_ptr().add(c0));
                    let at = |ox: usize| o.add((oy * win.ow + ox) * c + c0);
                    let mut ox = 0;
                    while ox < win.ow {
                        let cols = Window::taps(ox, win.stride, K, win.left, win.w);
                        let inside = cols.0 == 0
                            && ox + 4 <= win.ow
                            && Window::taps(ox + 3, win.stride, K, win.left, win.w).1 == K;
                        if inside {
                            pixels::<K, 4>(x, &w, b, (c, c0, win), rows, cols, at(ox));
                            ox += 4;
                        } else {
                            pixels::<K, 1>(x, &w, b, (c, c0, win), rows, cols, at(ox));
                            ox += 1;
                        }
                    }
                }
            }
        }
    }

    /// `Q` neighbouring output pixels (columns `stride` apart in the input), 16 channels from
    /// `c0`, whose taps are rows `rows` and columns `cols` (as [`Window::taps`] gives them).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn pixels<const K: usize, const Q: usize>(
        x: *const f32,
        w: &[[__m512; K]; K],
        b: __m512,
        (c, c0, win): (usize, usize, Window),
        rows: (usize, usize, usize),
        cols: (usize, usize, usize),
        out: *mut f32,
    ) {
        let mut acc = [b; Q];
        for (ky, w) in w.iter().enumerate() {
            if ky < rows.0 || ky >= rows.1 {
                continue;
            }
            let row = (rows.2 + ky - rows.0) * win.w;
            for (kx, &w) in w.iter().enumerate() {
                if kx < cols.0 || kx >= cols.1 {
                    continue;
                }
                for (q, acc) in acc.iter_mut().enumerate() {
                    let ix = cols.2 + q * win.stride + kx - cols.0;
                    unsafe {
                        let v = _mm512_loadu_ps(x.add((row + ix) * c + c0));
                        *acc = _mm512_fmadd_ps(w, v, *acc);
                    }
                }
            }
        }
        let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
        for (q, &acc) in acc.iter().enumerate() {
            unsafe {
                _mm512_storeu_ps(out.add(q * c), _mm512_min_ps(_mm512_max_ps(acc, zero), six))
            };
        }
    }

    macro_rules! isa {
        ($name:ident, $tile:ident, $feature:literal, $v:ty, $lanes:literal, $p:literal, $wide:literal,
         $load:ident, $store:ident, $set1:ident, $fmadd:ident, $add:ident, $max:ident,
         $min:ident, $zero:ident, $narrow:path) => {
            /// One tile: pixels `p0..p0 + P`, outputs `n0..n0 + NV * lanes`.
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn $tile<const P: usize, const NV: usize>(a: &Args, p0: usize, n0: usize) {
                let (k, o) = (a.shape.inputs, a.shape.outputs);
                unsafe {
                    let mut acc = [[$zero(); NV]; P];
                    let x = a.x.add(p0 * k);
                    for i in 0..k {
                        let w = a.weight.add(i * o + n0);
                        let mut wv = [$zero(); NV];
                        for (v, wv) in wv.iter_mut().enumerate() {
                            *wv = $load(w.add(v * $lanes));
                        }
                        for p in 0..P {
                            let xv = $set1(*x.add(p * k + i));
                            for v in 0..NV {
                                acc[p][v] = $fmadd(xv, wv[v], acc[p][v]);
                            }
                        }
                    }
                    let (zero, six) = ($zero(), $set1(6.0));
                    for p in 0..P {
                        let at = (p0 + p) * o + n0;
                        for v in 0..NV {
                            let mut r = $add($load(a.bias.add(n0 + v * $lanes)), acc[p][v]);
                            if a.relu6 {
                                r = $min($max(r, zero), six);
                            } else if !a.residual.is_null() {
                                r = $add(r, $load(a.residual.add(at + v * $lanes)));
                            }
                            $store(a.out.add(at + v * $lanes), r);
                        }
                    }
                }
            }

            /// Every tile of `a`: full tiles of `P` pixels, then single pixels; outputs in
            /// two vectors, then one, then narrower vectors, then one at a time.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(a: &Args) {
                const W: usize = $lanes;
                let pixels = a.shape.pixels;
                for (start, end) in a.slices($wide * W) {
                    let mut p0 = 0;
                    while p0 < pixels {
                        let rows = $p.min(pixels - p0);
                        // The last tile's pixels in a tile of their own height.
                        macro_rules! tiles {
                            ($nv:literal, $n0:ident) => {
                                match rows {
                                    1 => $tile::<1, $nv>(a, p0, $n0),
                                    2 => $tile::<2, $nv>(a, p0, $n0),
                                    3 => $tile::<3, $nv>(a, p0, $n0),
                                    4 => $tile::<4, $nv>(a, p0, $n0),
                                    5 => $tile::<5, $nv>(a, p0, $n0),
                                    _ => $tile::<$p, $nv>(a, p0, $n0),
                                }
                            };
                        }
                        let mut n0 = start;
                        unsafe {
                            while $wide == 4 && n0 + 4 * W <= end {
                                tiles!($wide, n0);
                                n0 += 4 * W;
                            }
                            while n0 + 2 * W <= end {
                                tiles!(2, n0);
                                n0 += 2 * W;
                            }
                            while n0 + W <= end {
                                tiles!(1, n0);
                                n0 += W;
                            }
                            n0 = $narrow(a, p0, rows, n0, end);
                            for p in p0..p0 + rows {
                                a.one_by_one(p, n0, end);
                            }
                        }
                        p0 += rows;
                    }
                }
            }
        };
    }

    isa!(
        avx512,
        avx512_tile,
        "avx512f,avx512vl,avx2,fma",
        __m512,
        16,
        6,
        4,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_max_ps,
        _mm512_min_ps,
        _mm512_setzero_ps,
        avx2_tail
    );
    isa!(
        avx2,
        avx2_tile,
        "avx2,fma",
        __m256,
        8,
        4,
        2,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_max_ps,
        _mm256_min_ps,
        _mm256_setzero_ps,
        no_tail
    );

    /// Outputs `n0..` of AVX-512's tile of `rows` pixels at `p0` in vectors of 8 while they
    /// fill one; where they stop.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_tail(a: &Args, p0: usize, rows: usize, mut n0: usize, end: usize) -> usize {
        while n0 + 8 <= end {
            unsafe {
                if rows == 6 {
                    avx2_tile::<6, 1>(a, p0, n0)
                } else {
                    for p in p0..p0 + rows {
                        avx2_tile::<1, 1>(a, p, n0)
                    }
                }
            };
            n0 += 8;
        }
        n0
    }

    /// No narrower vectors than AVX2's.
    #[inline(always)]
    unsafe fn no_tail(_: &Args, _: usize, _: usize, n0: usize, _: usize) -> usize {
        n0
    }

    /// The output pass of 16 outputs (fewer when `remaining` < 16: the rest masked off)
    /// whose products sum to `sum`: `bias + sum`, then ReLU6 (`relu6`) or plus the residual
    /// (unless null), stored at `out`. Every pointer points at the first of the 16.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(in crate::photos::extractor) unsafe fn store_outputs(
        sum: __m512,
        remaining: usize,
        bias: *const f32,
        relu6: bool,
        residual: *const f32,
        out: *mut f32,
    ) {
        let mask: __mmask16 = if remaining >= 16 {
            0xffff
        } else {
            (1 << remaining) - 1
        };
        unsafe {
            let mut r = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias), sum);
            if relu6 {
                r = _mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), _mm512_set1_ps(6.0));
            } else if !residual.is_null() {
                r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, residual));
            }
            _mm512_mask_storeu_ps(out, mask, r);
        }
    }

    /// [`super::pointwise_bf16`]'s operands, checked by it.
    pub(super) struct Bf16Args<'a> {
        pub x: *const u16,
        pub pairs: *const u16,
        pub padded: usize,
        pub bias: &'a [f32],
        pub residual: *const f32,
        pub relu6: bool,
        pub out: *mut f32,
        pub shape: super::Pointwise,
    }

    /// `x` rounded to the nearest bfloat16 (AVX-512 BF16's conversion, 16 at a time).
    #[target_feature(enable = "avx512f,avx512vl,avx512bf16,avx2,fma")]
    pub(super) unsafe fn to_bf16(x: &[f32], out: &mut [u16]) {
        let full = x.len() / 16 * 16;
        for (x, out) in x[..full].chunks_exact(16).zip(out.chunks_exact_mut(16)) {
            unsafe {
                let v: __m256i =
                    std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr())));
                _mm256_storeu_si256(out.as_mut_ptr().cast(), v);
            }
        }
        for (x, out) in x[full..].iter().zip(&mut out[full..]) {
            *out = half::bf16::from_f32(*x).to_bits();
        }
    }

    /// Every tile: `P` pixels by up to four vectors of 16 outputs, the last vector of a
    /// layer masked to its real outputs.
    #[target_feature(enable = "avx512f,avx512vl,avx512bf16,avx2,fma")]
    pub(super) unsafe fn pointwise_bf16(a: Bf16Args) {
        const P: usize = 6;
        let (pixels, outputs) = (a.shape.pixels, a.shape.outputs);
        let mut p0 = 0;
        while p0 < pixels {
            let rows = P.min(pixels - p0);
            let mut n0 = 0;
            while n0 < outputs {
                let vectors = (outputs - n0).div_ceil(16).min(4);
                macro_rules! tiles {
                    ($nv:literal) => {
                        match rows {
                            1 => bf16_tile::<1, $nv>(&a, p0, n0),
                            2 => bf16_tile::<2, $nv>(&a, p0, n0),
                            3 => bf16_tile::<3, $nv>(&a, p0, n0),
                            4 => bf16_tile::<4, $nv>(&a, p0, n0),
                            5 => bf16_tile::<5, $nv>(&a, p0, n0),
                            _ => bf16_tile::<P, $nv>(&a, p0, n0),
                        }
                    };
                }
                unsafe {
                    match vectors {
                        4 => tiles!(4),
                        3 | 2 => tiles!(2),
                        _ => tiles!(1),
                    }
                }
                n0 += if vectors >= 4 {
                    64
                } else if vectors >= 2 {
                    32
                } else {
                    16
                };
            }
            p0 += rows;
        }
    }

    /// Pixels `p0..p0 + P`, outputs `n0..n0 + 16 * NV` (those below the layer's count).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx512bf16,avx2,fma")]
    unsafe fn bf16_tile<const P: usize, const NV: usize>(a: &Bf16Args, p0: usize, n0: usize) {
        let (k, o) = (a.shape.inputs, a.shape.outputs);
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NV]; P];
            for kp in 0..k / 2 {
                let w = a.pairs.add((kp * a.padded + n0) * 2);
                let mut wv: [__m512bh; NV] =
                    [std::mem::transmute::<__m512, __m512bh>(_mm512_setzero_ps()); NV];
                for (v, wv) in wv.iter_mut().enumerate() {
                    *wv = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                        w.add(v * 32).cast(),
                    ));
                }
                for (p, acc) in acc.iter_mut().enumerate() {
                    let pair =
                        a.x.add((p0 + p) * k + 2 * kp)
                            .cast::<i32>()
                            .read_unaligned();
                    let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                    for v in 0..NV {
                        acc[v] = _mm512_dpbf16_ps(acc[v], xv, wv[v]);
                    }
                }
            }
            for (p, acc) in acc.iter().enumerate() {
                for (v, &acc) in acc.iter().enumerate() {
                    let first = n0 + 16 * v;
                    if first >= o {
                        break;
                    }
                    let at = (p0 + p) * o + first;
                    let residual = if a.residual.is_null() {
                        a.residual
                    } else {
                        a.residual.add(at)
                    };
                    let bias = a.bias.as_ptr().add(first);
                    store_outputs(acc, o - first, bias, a.relu6, residual, a.out.add(at));
                }
            }
        }
    }
}

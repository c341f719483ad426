//! The attribute networks' forward pass (one MLP, or the recipe's averaged ensemble) on plain
//! f32 values through a register-tiled kernel of appraise's own, for pricing the many mixed
//! rows of an explanation.
//!
//! Why: an explained house of the recipe with photos prices 25,000 mixed rows through 90
//! networks. burn runs each layer of each network over every row before the next layer,
//! streaming megabytes of activations through memory per layer (160 ms); `gemm` on blocks
//! that stay in the cache pays its set-up on every small call (590 ms). Here sixteen rows go
//! through a layer sixteen outputs at a time, every sum in registers.
//!
//! Each output is the bias plus its terms in input order, one fused multiply-add per term, so
//! a row's output does not depend on the rows beside it or on the CPU; it may differ from
//! burn's in the last bits (burn's products go through `gemm`), so prices a user sees still
//! come from [`crate::fit::train::predict`].

use burn::tensor::Tensor;

use super::{Mlp, Network};
use crate::runtime::simd::simd_dispatch;

/// Rows pushed through every layer at once.
const BLOCK: usize = 256;
/// Rows a tile of the kernel holds.
const ROWS: usize = 16;
/// Outputs a tile of the kernel holds (one AVX-512 register a row).
const LANES: usize = 16;

/// One dense layer.
struct Dense {
    fan_in: usize,
    fan_out: usize,
    /// Row-major `[fan_in][padded]`, `fan_out` rounded up to whole tiles with zeros.
    weight: Vec<f32>,
    /// `padded` values, zeros past `fan_out`.
    bias: Vec<f32>,
    relu: bool,
}

/// An attribute network, or an ensemble of them, as plain values.
pub struct PlainNetwork {
    members: Vec<Vec<Dense>>,
    /// Whether the output is the members' mean (an ensemble) rather than the one member's.
    mean: bool,
}

impl PlainNetwork {
    /// The plain form of `network` when it is an attribute network or an ensemble of them
    /// (photo networks: none).
    pub fn of(network: &Network) -> Option<Self> {
        let (members, mean) = match network {
            Network::Mlp(m) => (vec![dense_layers(m)?], false),
            Network::Ensemble(e) => (
                e.members.iter().map(dense_layers).collect::<Option<_>>()?,
                true,
            ),
            Network::Cnn(_) | Network::Mixed(_) => return None,
        };
        Some(PlainNetwork { members, mean })
    }

    /// The network's outputs (one a row) of the rows of `features` (`width` a row).
    pub fn predict(&self, features: &[f32], width: usize) -> Vec<f32> {
        let rows = features.len() / width.max(1);
        let mut out = Vec::with_capacity(rows);
        let mut sum = vec![0.0f32; BLOCK];
        let mut buffers = [Vec::new(), Vec::new()];
        for start in (0..rows).step_by(BLOCK) {
            let n = (rows - start).min(BLOCK);
            let x = &features[start * width..(start + n) * width];
            for (i, member) in self.members.iter().enumerate() {
                let y = forward(member, x, width, n, &mut buffers);
                for (s, v) in sum.iter_mut().zip(y) {
                    *s = if i == 0 { v } else { *s + v };
                }
            }
            if self.mean {
                let k = self.members.len() as f32;
                out.extend(sum[..n].iter().map(|&s| s / k));
            } else {
                out.extend_from_slice(&sum[..n]);
            }
        }
        out
    }
}

/// `mlp`'s layers, when it ends in one output (the recipe's and Part 1's networks).
fn dense_layers(mlp: &Mlp) -> Option<Vec<Dense>> {
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().ok();
    let last = mlp.layers.len().checked_sub(1)?;
    let layers: Vec<Dense> = mlp
        .layers
        .iter()
        .enumerate()
        .map(|(l, linear)| {
            let [fan_in, fan_out] = linear.weight.dims();
            let padded = fan_out.div_ceil(LANES) * LANES;
            let weight = values(linear.weight.val())?;
            let mut bias = match &linear.bias {
                Some(b) => b.val().into_data().try_to_vec::<f32>().ok()?,
                None => vec![0.0; fan_out],
            };
            bias.resize(padded, 0.0);
            Some(Dense {
                fan_in,
                fan_out,
                weight: weight
                    .chunks_exact(fan_out)
                    .flat_map(|w| {
                        w.iter()
                            .copied()
                            .chain(std::iter::repeat_n(0.0, padded - fan_out))
                    })
                    .collect(),
                bias,
                relu: l < last || !mlp.regress,
            })
        })
        .collect::<Option<_>>()?;
    (layers[last].fan_out == 1).then_some(layers)
}

/// The output (one a row) of `layers` for the `rows` rows of `x` (`width` a row), in one of
/// `buffers`.
fn forward<'b>(
    layers: &[Dense],
    x: &[f32],
    width: usize,
    rows: usize,
    buffers: &'b mut [Vec<f32>; 2],
) -> impl Iterator<Item = f32> + 'b {
    let [a, b] = buffers;
    let (mut input, mut output) = (a, b);
    let mut stride = width;
    for (l, layer) in layers.iter().enumerate() {
        let padded = layer.bias.len();
        // Whole tiles: the kernel writes every row of its last tile.
        output.resize(rows.div_ceil(ROWS) * ROWS * padded, 0.0);
        let lhs = if l == 0 { x } else { &input[..rows * stride] };
        dense_layer(
            lhs,
            stride,
            layer.fan_in,
            &layer.weight,
            &layer.bias,
            layer.relu,
            output,
        );
        stride = padded;
        std::mem::swap(&mut input, &mut output);
    }
    input[..rows * stride].iter().step_by(stride).copied()
}

/// [`dense`], through AVX-512 intrinsics where the CPU has them (the same operations in the
/// same order: the same bits).
fn dense_layer(
    x: &[f32],
    stride: usize,
    fan_in: usize,
    weight: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::simd::level() == crate::runtime::simd::Level::Avx512 {
        // SAFETY: the CPU has AVX-512 (checked above).
        return unsafe { x86::dense(x, stride, fan_in, weight, bias, relu, out) };
    }
    dense(x, stride, fan_in, weight, bias, relu, out)
}

/// Where each of the [`ROWS`] rows of the tile at row `r0` starts in `x` (rows `stride`
/// apart, `rows` of them); a short tile repeats its last row.
fn tile_rows(stride: usize, rows: usize, r0: usize) -> [usize; ROWS] {
    let last = rows - 1;
    std::array::from_fn(|r| (r0 + r).min(last) * stride)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, ROWS, tile_rows};
    use std::arch::x86_64::*;

    /// [`super::dense`] with the tile's sixteen outputs of sixteen rows in sixteen registers.
    #[target_feature(enable = "avx512f")]
    pub(super) fn dense(
        x: &[f32],
        stride: usize,
        fan_in: usize,
        weight: &[f32],
        bias: &[f32],
        relu: bool,
        out: &mut [f32],
    ) {
        let padded = bias.len();
        let rows = x.len().div_ceil(stride).min(out.len() / padded);
        assert!(rows > 0 && fan_in <= stride && x.len() >= (rows - 1) * stride + fan_in);
        assert!(
            weight.len() >= fan_in * padded && out.len() >= rows.div_ceil(ROWS) * ROWS * padded
        );
        for r0 in (0..rows).step_by(ROWS) {
            let at = tile_rows(stride, rows, r0);
            for o0 in (0..padded).step_by(LANES) {
                // SAFETY: every load and store is inside the slices (asserted above: each
                // tile row's `fan_in` inputs are in `x`, `weight` holds `fan_in` rows of
                // `padded`, `out` whole tiles).
                unsafe {
                    let b = _mm512_loadu_ps(bias.as_ptr().add(o0));
                    let mut acc = [b; ROWS];
                    let p = at.map(|a| x.as_ptr().add(a));
                    let w = weight.as_ptr().add(o0);
                    for i in 0..fan_in {
                        let wv = _mm512_loadu_ps(w.add(i * padded));
                        for (a, p) in acc.iter_mut().zip(&p) {
                            *a = _mm512_fmadd_ps(_mm512_set1_ps(*p.add(i)), wv, *a);
                        }
                    }
                    for (r, a) in acc.iter().enumerate() {
                        // ReLU keeping a NaN: kept where not (v <= 0), NaN included.
                        let v = if relu {
                            let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(*a, _mm512_setzero_ps());
                            _mm512_maskz_mov_ps(keep, *a)
                        } else {
                            *a
                        };
                        _mm512_storeu_ps(out.as_mut_ptr().add((r0 + r) * padded + o0), v);
                    }
                }
            }
        }
    }
}

/// [`dense`]'s loops as plain code (what a CPU without AVX2 runs), for the tests.
#[cfg(test)]
fn dense_loops(
    x: &[f32],
    stride: usize,
    fan_in: usize,
    weight: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    dense_body(x, stride, fan_in, weight, bias, relu, out)
}

simd_dispatch! {
    /// `out [r][o] = bias[o] + sum over i < fan_in of x[r][i] * weight[i][o]` (ReLU'd when
    /// `relu`, keeping a NaN as burn does), `x` rows `stride` apart, `out` rows and `weight`
    /// rows `bias.len()` (a multiple of [`LANES`]) wide, `out` in whole tiles of [`ROWS`]
    /// rows (a short last tile's extra rows are garbage) by [`LANES`] outputs, summed in
    /// registers.
    fn dense(x: &[f32], stride: usize, fan_in: usize, weight: &[f32], bias: &[f32], relu: bool, out: &mut [f32]) {
        dense_body(x, stride, fan_in, weight, bias, relu, out)
    }
}

/// [`dense`]'s loops, compiled into each of its instruction sets.
#[inline(always)]
fn dense_body(
    x: &[f32],
    stride: usize,
    fan_in: usize,
    weight: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let padded = bias.len();
    let rows = x.len().div_ceil(stride).min(out.len() / padded);
    for r0 in (0..rows).step_by(ROWS) {
        let at = tile_rows(stride, rows, r0);
        let xs: [&[f32]; ROWS] = at.map(|a| &x[a..a + fan_in]);
        for o0 in (0..padded).step_by(LANES) {
            let b: &[f32; LANES] = bias[o0..o0 + LANES].try_into().unwrap();
            let mut acc = [*b; ROWS];
            for i in 0..fan_in {
                let w: &[f32; LANES] = weight[i * padded + o0..][..LANES].try_into().unwrap();
                for (a, x) in acc.iter_mut().zip(&xs) {
                    let v = x[i];
                    for (a, &w) in a.iter_mut().zip(w) {
                        *a = v.mul_add(w, *a);
                    }
                }
            }
            if relu {
                for a in acc.iter_mut() {
                    for v in a.iter_mut() {
                        *v = if *v > 0.0 || v.is_nan() { *v } else { 0.0 };
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                out[(r0 + r) * padded + o0..][..LANES].copy_from_slice(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::train::predict;
    use crate::models::{Ensemble, MlpConfig};
    use crate::runtime::rng::SeededRng;
    use burn::tensor::Device;

    #[test]
    fn the_plain_forward_gives_burns_outputs_and_a_row_the_same_whatever_its_neighbours() {
        let device = Device::flex();
        let mut rng = SeededRng::new(9, 9);
        for (hidden, width) in [(vec![32, 16], 12), (vec![8, 4], 10), (vec![40, 3], 5)] {
            let config = MlpConfig { hidden };
            let members = (0..5)
                .map(|s| config.init(width, true, &mut SeededRng::new(s, 3), &device))
                .collect();
            for network in [
                Network::Ensemble(Ensemble { members }),
                Network::Mlp(config.init(width, true, &mut SeededRng::new(7, 1), &device)),
            ] {
                let plain = PlainNetwork::of(&network).unwrap();
                let rows = 1000;
                let features: Vec<f32> = (0..rows * width)
                    .map(|_| rng.uniform(-2.0, 2.0) as f32)
                    .collect();
                let burn = predict(&network, &features, width, &[]);
                let ours = plain.predict(&features, width);
                for (a, b) in burn.iter().zip(&ours) {
                    assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
                }
                for r in [0, 7, 8, 255, 256, 999] {
                    let alone = plain.predict(&features[r * width..(r + 1) * width], width);
                    assert_eq!(alone[0].to_bits(), ours[r].to_bits(), "row {r}");
                }
            }
        }
    }

    #[test]
    fn the_vector_kernel_and_the_plain_loops_give_the_same_bits() {
        let mut rng = SeededRng::new(4, 4);
        let (rows, stride, fan_in, padded) = (37, 13, 12, 2 * LANES);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect() };
        let x = values(rows * stride);
        let weight = values(fan_in * padded);
        let bias = values(padded);
        let size = rows.div_ceil(ROWS) * ROWS * padded;
        let mut plain = vec![0.0; size];
        // The loops the dispatcher falls back to, compiled without target features.
        dense_loops(&x, stride, fan_in, &weight, &bias, true, &mut plain);
        let mut picked = vec![0.0; size];
        dense_layer(&x, stride, fan_in, &weight, &bias, true, &mut picked);
        let bits = |v: &[f32]| {
            v[..rows * padded]
                .iter()
                .map(|f| f.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&plain), bits(&picked));
        let r = 20;
        let o = 5;
        let expected = (0..fan_in).fold(bias[o], |acc, i| {
            x[r * stride + i].mul_add(weight[i * padded + o], acc)
        });
        assert_eq!(plain[r * padded + o].to_bits(), expected.max(0.0).to_bits());
    }
}

//! The attribute network's training step (forward, loss, backward and Keras's Adam) as one
//! pass over plain f32 values on the CPU.
//!
//! Why: Part 1 trains a 129-parameter network for 6,800 steps, and the `cv` and recipe runs
//! train hundreds of such networks. Through burn's autodiff every op of a step (about 40 of
//! them) costs microseconds of graph bookkeeping and allocation while its arithmetic costs
//! nanoseconds: a step took ~50 us, ~2 us of it arithmetic.
//!
//! Every value goes through the same f32 operations in the same order as burn's ops on the
//! flex backend: the matrix products are the same `gemm` calls with the same operand strides
//! (`linear`'s forward `x W`, its backward `x^T g` and `g W^T`), bias gradients are summed row
//! by row from zero as flex's first-dimension sum does, the loss's backward goes op by op as
//! burn-autodiff's (`mul_scalar`, `mean`, `div` through the reciprocal, `abs` through the
//! sign, `sub`), and Adam is [`crate::fit::optim`]'s update. A network trained here equals one
//! trained through burn's ops bit for bit (tested in `train`'s tests), so every figure measured
//! before stays as it was.

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::Loss;
use crate::fit::optim::{AdamConfig, Step32};
use crate::models::Mlp;
use crate::models::matmul::{Mat, matmul};

/// One dense layer's parameters and Adam moments.
struct Layer {
    fan_in: usize,
    fan_out: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    weight_moments: [Vec<f32>; 2],
    bias_moments: [Vec<f32>; 2],
    ids: (ParamId, ParamId),
}

/// An attribute network (ReLU hidden layers, one linear output) being trained on the CPU.
pub struct FusedMlp {
    layers: Vec<Layer>,
    /// Updates taken so far.
    time: i32,
    /// Each layer's output for the current batch (after ReLU for hidden layers).
    outputs: Vec<Vec<f32>>,
    /// Gradient with respect to the current layer's output, and the next one down.
    grad: Vec<f32>,
    grad_below: Vec<f32>,
    weight_grad: Vec<f32>,
    bias_grad: Vec<f32>,
}

impl FusedMlp {
    /// The trainer of `mlp`, which must end in its one-unit linear output (Part 1's network,
    /// not Part 3's branch), starting from its current weights.
    pub fn new(mlp: &Mlp) -> Option<Self> {
        if !mlp.regress {
            return None;
        }
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().ok();
        let mut layers = Vec::with_capacity(mlp.layers.len());
        for linear in &mlp.layers {
            let [fan_in, fan_out] = linear.weight.dims();
            let bias = linear.bias.as_ref()?;
            let weight = values(linear.weight.val())?;
            let bias_values = bias.val().into_data().try_to_vec::<f32>().ok()?;
            layers.push(Layer {
                fan_in,
                fan_out,
                weight_moments: [vec![0.0; weight.len()], vec![0.0; weight.len()]],
                bias_moments: [vec![0.0; fan_out], vec![0.0; fan_out]],
                weight,
                bias: bias_values,
                ids: (linear.weight.id, bias.id),
            });
        }
        if layers.last().is_none_or(|l| l.fan_out != 1) {
            return None;
        }
        Some(FusedMlp {
            outputs: vec![Vec::new(); layers.len()],
            layers,
            time: 0,
            grad: Vec::new(),
            grad_below: Vec::new(),
            weight_grad: Vec::new(),
            bias_grad: Vec::new(),
        })
    }

    /// One optimizer step on a batch of `targets.len()` rows of `features` (row-major) at
    /// learning rate `rate`; returns the batch's loss as burn computes it.
    pub fn step(
        &mut self,
        features: &[f32],
        targets: &[f32],
        loss: Loss,
        adam: &AdamConfig,
        rate: f64,
    ) -> f32 {
        let rows = targets.len();
        self.forward(features, rows);
        let last = self.layers.len() - 1;
        let predicted = std::mem::take(&mut self.outputs[last]);
        let value = loss_gradient(&mut self.grad, &predicted, targets, loss);
        self.outputs[last] = predicted;
        self.time += 1;
        let step = Step32::new(&adam.build().scalars(rate, self.time));
        let first = self.time == 1;
        for l in (0..self.layers.len()).rev() {
            let input: &[f32] = if l == 0 {
                features
            } else {
                &self.outputs[l - 1]
            };
            let layer = &mut self.layers[l];
            let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
            // burn's `linear_bias_backward`: flex sums the first dimension row by row into zeros.
            self.bias_grad.clear();
            self.bias_grad.resize(fan_out, 0.0);
            for row in self.grad.chunks_exact(fan_out) {
                for (b, &g) in self.bias_grad.iter_mut().zip(row) {
                    *b += g;
                }
            }
            // `linear_weight_backward`: x^T (a transposed view) times the gradient.
            self.weight_grad.resize(fan_in * fan_out, 0.0);
            matmul(
                &mut self.weight_grad,
                false,
                Mat::transposed(input, fan_in),
                Mat::rows(&self.grad, fan_out),
                fan_in,
                rows,
                fan_out,
            );
            if l > 0 {
                // `linear_x_backward`: the gradient times W^T (a transposed view), then ReLU's
                // backward on the layer below's output.
                self.grad_below.resize(rows * fan_in, 0.0);
                matmul(
                    &mut self.grad_below,
                    false,
                    Mat::rows(&self.grad, fan_out),
                    Mat::transposed(&layer.weight, fan_out),
                    rows,
                    fan_out,
                    fan_in,
                );
                for (g, &out) in self.grad_below.iter_mut().zip(input) {
                    if !(out.is_nan() || out > 0.0) {
                        *g = 0.0;
                    }
                }
            }
            let [w1, w2] = &mut layer.weight_moments;
            step.apply(&mut layer.weight, &self.weight_grad, w1, w2, first);
            let [b1, b2] = &mut layer.bias_moments;
            step.apply(&mut layer.bias, &self.bias_grad, b1, b2, first);
            std::mem::swap(&mut self.grad, &mut self.grad_below);
        }
        value
    }

    /// Each layer's output for `rows` rows of `features`, as burn's `linear` and `relu`.
    fn forward(&mut self, features: &[f32], rows: usize) {
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = self.outputs.split_at_mut(l);
            let input: &[f32] = if l == 0 { features } else { &before[l - 1] };
            let out = &mut after[0];
            out.resize(rows * layer.fan_out, 0.0);
            matmul(
                out,
                false,
                Mat::rows(input, layer.fan_in),
                Mat::rows(&layer.weight, layer.fan_out),
                rows,
                layer.fan_in,
                layer.fan_out,
            );
            for row in out.chunks_exact_mut(layer.fan_out) {
                for (v, &b) in row.iter_mut().zip(&layer.bias) {
                    *v += b;
                }
            }
            if l < last {
                for v in out.iter_mut() {
                    if !(v.is_nan() || *v > 0.0) {
                        *v = 0.0;
                    }
                }
            }
        }
    }

    /// The network as it is now, on `device`, with the original parameter ids.
    pub fn to_mlp(&self, device: &Device) -> Mlp {
        let layers = self
            .layers
            .iter()
            .map(|l| Linear {
                weight: Param::initialized(
                    l.ids.0,
                    Tensor::from_data(
                        TensorData::new(l.weight.clone(), [l.fan_in, l.fan_out]),
                        device,
                    ),
                ),
                bias: Some(Param::initialized(
                    l.ids.1,
                    Tensor::from_data(TensorData::new(l.bias.clone(), [l.fan_out]), device),
                )),
            })
            .collect();
        Mlp {
            layers,
            regress: true,
        }
    }
}

/// The loss of `predicted` (one value per row) against `targets`, leaving its gradient with
/// respect to `predicted` in `grad`, op by op as burn-autodiff computes it.
pub(super) fn loss_gradient(
    grad: &mut Vec<f32>,
    predicted: &[f32],
    targets: &[f32],
    loss: Loss,
) -> f32 {
    let rows = targets.len();
    let n = rows as f32;
    // `mean`'s backward multiplies by `1 / n`, computed in f64 and rounded.
    let share = (1.0 / rows as f64) as f32;
    grad.clear();
    let mut terms = Vec::with_capacity(rows);
    // MAPE's final `mul_scalar(100)`.
    let scale = match loss {
        Loss::Mape => {
            // (|t - p| / max(|t|, 1e-7)).mean() * 100; backward: 100, times 1/n, times
            // 1/denominator, times sign(t - p), negated.
            let upstream = share * 100.0f32;
            for (&t, &p) in targets.iter().zip(predicted) {
                let a = t.abs();
                let denominator = if a.is_nan() || a > 1e-7f32 {
                    a
                } else {
                    1e-7f32
                };
                let diff = t - p;
                terms.push(diff.abs() / denominator);
                let g = upstream * (1.0 / denominator);
                grad.push(-(g * sign(diff)));
            }
            Some(100.0f32)
        }
        Loss::Mae => {
            for (&t, &p) in targets.iter().zip(predicted) {
                let diff = t - p;
                terms.push(diff.abs());
                grad.push(-(share * sign(diff)));
            }
            None
        }
    };
    // flex's own sum (its SIMD order depends on the CPU), then `mean` and `mul_scalar`.
    let sum: f32 = Tensor::<1>::from_data(TensorData::new(terms, [rows]), &Device::flex())
        .sum()
        .into_scalar();
    let mean = sum / n;
    scale.map_or(mean, |s| mean * s)
}

/// flex's `sign`: 0 for 0 and NaN, else +-1.
fn sign(x: f32) -> f32 {
    if x.is_nan() || x == 0.0 {
        0.0
    } else {
        1.0f32.copysign(x)
    }
}

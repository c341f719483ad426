//! The photo networks' training step (Part 2's CNN and Part 3's mixed model: forward, loss,
//! backward and Keras's Adam) on plain f32 values on the CPU, around the fused convolution
//! blocks of [`crate::models::block`].
//!
//! Why: with the blocks fused, a step at batch 8 spent ~4.2 ms in the blocks and another
//! ~1.2 ms around them in burn: the dense layers, BatchNorm and loss as ~60 autodiff ops,
//! layout copies between the blocks and the dense layer, gradient maps, and Adam copying every
//! parameter tensor. Here the blocks' own forward and backward passes are called directly and
//! everything else is a few loops over small buffers.
//!
//! Semantics are Keras's and the same as the burn path (`Network::forward` with autodiff):
//! batch statistics over the step's rows (biased variance), moving averages updated with
//! Keras's momentum, dropout masks drawn from the same generator in the same order, the loss
//! as burn computes it, and [`crate::fit::optim`]'s Adam. The numbers agree with burn's to float
//! rounding (tested), not bit for bit; with any number of threads they are the same bit for
//! bit, since the blocks' sums are taken in image order and the rest runs on one thread.

use std::collections::BTreeMap;

use burn::module::Module;

use super::fused_mlp::loss_gradient;
use super::{Batch, Loss};
use crate::fit::optim::{AdamConfig, Step32};
use crate::models::block::{self, BlockShape, Saved};
use crate::models::matmul::{Mat, matmul};
use crate::models::{Cnn, Mixed, NamedTensor, Network};
use crate::photos::montage::SIDE;
use crate::runtime::rng::SeededRng;

/// One tensor of the network: its values, and for a trainable one its gradient and Adam's
/// two moments.
struct Slot {
    path: String,
    shape: Vec<usize>,
    values: Vec<f32>,
    grad: Vec<f32>,
    moments: Option<[Vec<f32>; 2]>,
}

/// A dense layer: its weight `[fan_in, fan_out]` and bias slots.
#[derive(Clone, Copy)]
struct Dense {
    weight: usize,
    bias: usize,
    fan_in: usize,
    fan_out: usize,
}

/// A BatchNorm: its scale, offset and moving-statistics slots, and its settings.
#[derive(Clone, Copy)]
struct Norm {
    gamma: usize,
    beta: usize,
    mean: usize,
    var: usize,
    /// Keras's momentum: the weight of the old moving value.
    momentum: f64,
    epsilon: f64,
}

/// A CONV => RELU => BN => POOL block.
#[derive(Clone, Copy)]
struct Block {
    weight: usize,
    bias: usize,
    norm: Norm,
    /// Input side and channels, filters.
    side: usize,
    channels: usize,
    filters: usize,
}

/// The photo network's layers.
struct PhotoLayers {
    blocks: Vec<Block>,
    dense: Dense,
    dense_norm: Norm,
    dropout: f64,
    head: Dense,
    /// Part 2's Dense(1); `None` in Part 3's branch.
    output: Option<Dense>,
}

/// What sits around the photo layers.
enum Shape {
    /// Part 2: the photo network predicts on its own.
    Cnn(PhotoLayers),
    /// Part 3: the attribute branch's ReLU layers and the photo branch, joined, then
    /// Dense(ReLU) and Dense(1).
    Mixed {
        mlp: Vec<Dense>,
        cnn: PhotoLayers,
        head: Dense,
        output: Dense,
    },
}

/// A photo network being trained on the CPU.
pub struct FusedPhoto {
    /// The network's structure (evaluation mode), filled with [`Self::slots`] on request.
    template: Network,
    slots: Vec<Slot>,
    shape: Shape,
    /// Updates taken so far.
    time: i32,
}

/// The values one step keeps between its forward and backward passes.
#[derive(Default)]
struct PhotoTrace {
    saved: Vec<Saved>,
    /// The last block's output in the dense layer's (channel-first) order, `[rows, flat]`.
    flat: Vec<f32>,
    /// Dense -> ReLU, `[rows, dense]`.
    dense_out: Vec<f32>,
    /// BatchNorm's normalized values before scale and offset, and its inverse deviations.
    normalized: Vec<f32>,
    invstd: Vec<f32>,
    /// Dropout's mask (its scale or 0), empty without dropout.
    mask: Vec<f32>,
    /// After dropout, the head's input.
    dropped: Vec<f32>,
    /// Head -> ReLU.
    head_out: Vec<f32>,
}

impl FusedPhoto {
    /// The trainer of `network` (a CNN that predicts, or a mixed model), starting from its
    /// current weights; `None` for other networks.
    pub fn new(network: &Network) -> Option<Self> {
        let template = network.valid();
        let tensors = template.tensors();
        let mut slots: Vec<Slot> = Vec::with_capacity(tensors.len());
        let mut index = BTreeMap::new();
        for (path, NamedTensor { shape, values }) in tensors {
            let trainable = !(path.ends_with("running_mean") || path.ends_with("running_var"));
            index.insert(path.clone(), slots.len());
            slots.push(Slot {
                grad: vec![0.0; if trainable { values.len() } else { 0 }],
                moments: trainable.then(|| [vec![0.0; values.len()], vec![0.0; values.len()]]),
                path,
                shape,
                values,
            });
        }
        let dense = |prefix: &str| -> Option<Dense> {
            let weight = *index.get(&format!("{prefix}.weight"))?;
            let bias = *index.get(&format!("{prefix}.bias"))?;
            let [fan_in, fan_out] = slots[weight].shape[..] else {
                return None;
            };
            Some(Dense {
                weight,
                bias,
                fan_in,
                fan_out,
            })
        };
        let photo_layers = |prefix: &str, cnn: &Cnn| -> Option<PhotoLayers> {
            let norm = |path: String, norm: &crate::models::Norm| -> Option<Norm> {
                Some(Norm {
                    gamma: *index.get(&format!("{path}.gamma"))?,
                    beta: *index.get(&format!("{path}.beta"))?,
                    mean: *index.get(&format!("{path}.running_mean"))?,
                    var: *index.get(&format!("{path}.running_var"))?,
                    momentum: norm.momentum,
                    epsilon: norm.epsilon,
                })
            };
            let mut blocks = Vec::new();
            let mut side = SIDE;
            for (k, n) in cnn.norms.iter().enumerate() {
                let weight = *index.get(&format!("{prefix}convs.{k}.weight"))?;
                let [filters, channels, 3, 3] = slots[weight].shape[..] else {
                    return None;
                };
                blocks.push(Block {
                    weight,
                    bias: *index.get(&format!("{prefix}convs.{k}.bias"))?,
                    norm: norm(format!("{prefix}norms.{k}"), n)?,
                    side,
                    channels,
                    filters,
                });
                side /= 2;
            }
            Some(PhotoLayers {
                blocks,
                dense: dense(&format!("{prefix}dense"))?,
                dense_norm: norm(format!("{prefix}dense_norm"), &cnn.dense_norm)?,
                dropout: cnn.dropout,
                head: dense(&format!("{prefix}head"))?,
                output: match &cnn.output {
                    Some(_) => Some(dense(&format!("{prefix}output"))?),
                    None => None,
                },
            })
        };
        let shape = match &template {
            Network::Cnn(cnn) if cnn.output.is_some() => Shape::Cnn(photo_layers("", cnn)?),
            Network::Mixed(Mixed { mlp, cnn, .. }) if !mlp.regress && cnn.output.is_none() => {
                Shape::Mixed {
                    mlp: (0..mlp.layers.len())
                        .map(|l| dense(&format!("mlp.layers.{l}")))
                        .collect::<Option<_>>()?,
                    cnn: photo_layers("cnn.", cnn)?,
                    head: dense("head")?,
                    output: dense("output")?,
                }
            }
            _ => return None,
        };
        Some(FusedPhoto {
            template,
            slots,
            shape,
            time: 0,
        })
    }

    /// One optimizer step on `batch` (its attributes are read by the mixed model; its images
    /// are `[rows, 3, 64, 64]` montages) at learning rate `rate`, with dropout masks from
    /// `dropout`. Returns the batch's loss.
    pub fn step(
        &mut self,
        batch: &Batch,
        loss: Loss,
        adam: &AdamConfig,
        rate: f64,
        dropout: &mut SeededRng,
    ) -> f32 {
        let value = self.gradients(batch, loss, dropout);
        self.time += 1;
        let step = Step32::new(&adam.build().scalars(rate, self.time));
        let first = self.time == 1;
        for slot in &mut self.slots {
            if let Some([m1, m2]) = &mut slot.moments {
                step.apply(&mut slot.values, &slot.grad, m1, m2, first);
            }
        }
        value
    }

    /// The forward and backward passes of [`Self::step`]: returns the batch's loss and leaves
    /// each trainable tensor's gradient in its slot (and the moving statistics updated).
    fn gradients(&mut self, batch: &Batch, loss: Loss, dropout: &mut SeededRng) -> f32 {
        let Batch {
            features,
            n_features,
            images,
            targets,
        } = *batch;
        let rows = targets.len();
        let slots = &mut self.slots;
        let mut grad = Vec::new();
        match &self.shape {
            Shape::Cnn(cnn) => {
                let trace = photo_forward(slots, cnn, images, rows, dropout);
                let branch = &trace.head_out;
                let output = cnn.output.expect("Part 2's network predicts");
                let predicted = dense_forward(slots, output, branch, rows, false);
                let value = loss_gradient(&mut grad, &predicted, targets, loss);
                let d_branch = dense_backward(slots, output, branch, &grad, rows, true);
                photo_backward(slots, cnn, &trace, &d_branch, rows);
                value
            }
            Shape::Mixed {
                mlp,
                cnn,
                head,
                output,
            } => {
                // The attribute branch: every layer ReLU'd (it is a branch, not a regressor).
                let mut mlp_out = vec![features[..rows * n_features].to_vec()];
                for &layer in mlp {
                    let input = mlp_out.last().expect("the input");
                    let out = dense_forward(slots, layer, input, rows, true);
                    mlp_out.push(out);
                }
                let trace = photo_forward(slots, cnn, images, rows, dropout);
                let branch = &trace.head_out;
                let m = mlp.last().map_or(n_features, |l| l.fan_out);
                let c = branch.len() / rows.max(1);
                // Concatenated: the attribute branch's values first, as `Tensor::cat`.
                let mut joined = Vec::with_capacity(rows * (m + c));
                for r in 0..rows {
                    joined.extend_from_slice(&mlp_out[mlp_out.len() - 1][r * m..][..m]);
                    joined.extend_from_slice(&branch[r * c..][..c]);
                }
                let hidden = dense_forward(slots, *head, &joined, rows, true);
                let predicted = dense_forward(slots, *output, &hidden, rows, false);
                let value = loss_gradient(&mut grad, &predicted, targets, loss);
                let mut d_hidden = dense_backward(slots, *output, &hidden, &grad, rows, true);
                relu_backward(&mut d_hidden, &hidden);
                let d_joined = dense_backward(slots, *head, &joined, &d_hidden, rows, true);
                let (mut d_mlp, mut d_branch) = (Vec::new(), Vec::new());
                for row in d_joined.chunks_exact(m + c) {
                    d_mlp.extend_from_slice(&row[..m]);
                    d_branch.extend_from_slice(&row[m..]);
                }
                photo_backward(slots, cnn, &trace, &d_branch, rows);
                for (l, &layer) in mlp.iter().enumerate().rev() {
                    relu_backward(&mut d_mlp, &mlp_out[l + 1]);
                    d_mlp = dense_backward(slots, layer, &mlp_out[l], &d_mlp, rows, l > 0);
                }
                value
            }
        }
    }

    /// The network as it is now, in evaluation mode on the flex CPU backend.
    pub fn network(&self) -> Network {
        let tensors: BTreeMap<String, NamedTensor> = self
            .slots
            .iter()
            .map(|s| {
                (
                    s.path.clone(),
                    NamedTensor {
                        shape: s.shape.clone(),
                        values: s.values.clone(),
                    },
                )
            })
            .collect();
        self.template
            .clone()
            .with_tensors(&tensors)
            .expect("the trainer holds every tensor of its network")
    }
}

/// `input` `[rows, fan_in]` times the layer's weight plus its bias, ReLU'd when `relu`.
fn dense_forward(slots: &[Slot], layer: Dense, input: &[f32], rows: usize, relu: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * layer.fan_out];
    matmul(
        &mut out,
        false,
        Mat::rows(input, layer.fan_in),
        Mat::rows(&slots[layer.weight].values, layer.fan_out),
        rows,
        layer.fan_in,
        layer.fan_out,
    );
    let bias = &slots[layer.bias].values;
    for row in out.chunks_exact_mut(layer.fan_out) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
            if relu && !(v.is_nan() || *v > 0.0) {
                *v = 0.0;
            }
        }
    }
    out
}

/// The layer's weight and bias gradients from its `input` and its output's gradient `grad`
/// (stored in the slots); returns the input's gradient when `need_input`.
fn dense_backward(
    slots: &mut [Slot],
    layer: Dense,
    input: &[f32],
    grad: &[f32],
    rows: usize,
    need_input: bool,
) -> Vec<f32> {
    let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
    matmul(
        &mut slots[layer.weight].grad,
        false,
        Mat::transposed(input, fan_in),
        Mat::rows(grad, fan_out),
        fan_in,
        rows,
        fan_out,
    );
    let bias = &mut slots[layer.bias].grad;
    bias.fill(0.0);
    for row in grad.chunks_exact(fan_out) {
        for (b, g) in bias.iter_mut().zip(row) {
            *b += g;
        }
    }
    if !need_input {
        return Vec::new();
    }
    let mut below = vec![0.0f32; rows * fan_in];
    matmul(
        &mut below,
        false,
        Mat::rows(grad, fan_out),
        Mat::transposed(&slots[layer.weight].values, fan_out),
        rows,
        fan_out,
        fan_in,
    );
    below
}

/// Each image of `values`, a row-major `[rows, cols]` matrix, transposed to `[cols, rows]`:
/// channels-last `[pixels, channels]` to burn's channel-first order and back.
fn transpose_each(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; values.len()];
    for (image, dst) in values
        .chunks_exact(rows * cols)
        .zip(out.chunks_exact_mut(rows * cols))
    {
        for (r, row) in image.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                dst[c * rows + r] = v;
            }
        }
    }
    out
}

/// ReLU's backward: no gradient where the (ReLU'd) output is not positive.
fn relu_backward(grad: &mut [f32], out: &[f32]) {
    for (g, &o) in grad.iter_mut().zip(out) {
        if !(o.is_nan() || o > 0.0) {
            *g = 0.0;
        }
    }
}

/// Moves a BatchNorm's moving averages towards a batch's `mean` and `var`, as
/// [`crate::models::Norm::track`] does on flex (scalars rounded to f32).
fn track(slots: &mut [Slot], norm: Norm, mean: &[f32], var: &[f32]) {
    let keep = norm.momentum as f32;
    let take = (1.0 - norm.momentum) as f32;
    for (slot, batch) in [(norm.mean, mean), (norm.var, var)] {
        for (old, &new) in slots[slot].values.iter_mut().zip(batch) {
            *old = *old * keep + new * take;
        }
    }
}

/// The photo layers' training forward pass on `[rows, 3, 64, 64]` montages: what the
/// backward pass needs, and the branch's output `[rows, head]` in its `head_out`.
fn photo_forward(
    slots: &mut [Slot],
    cnn: &PhotoLayers,
    images: &[f32],
    rows: usize,
    dropout: &mut SeededRng,
) -> PhotoTrace {
    let mut trace = PhotoTrace::default();
    // Channel-first montages to the blocks' channels-last layout.
    let pixels = SIDE * SIDE;
    let mut x = transpose_each(images, crate::models::CHANNELS, pixels);
    for block in &cnn.blocks {
        let s = BlockShape {
            n: rows,
            h: block.side,
            w: block.side,
            c: block.channels,
            f: block.filters,
        };
        let forward = block::forward_train(
            s,
            &x,
            &slots[block.weight].values,
            &slots[block.bias].values,
            &slots[block.norm.gamma].values,
            &slots[block.norm.beta].values,
            block.norm.epsilon,
            true,
        );
        track(slots, block.norm, &forward.mean, &forward.var);
        trace
            .saved
            .push(forward.saved.expect("the forward pass was asked to save"));
        x = forward.out;
    }
    // Flattened channel-first, as burn's `flatten` of `[rows, filters, side, side]` (the
    // order the dense layer's weights were trained and saved in).
    let last = cnn.blocks.last().expect("at least one block");
    let (pooled, filters) = ((last.side / 2).pow(2), last.filters);
    trace.flat = transpose_each(&x, pooled, filters);
    trace.dense_out = dense_forward(slots, cnn.dense, &trace.flat, rows, true);
    // BatchNorm with the batch's statistics (f64 sums, biased variance).
    let (width, norm) = (cnn.dense.fan_out, cnn.dense_norm);
    let mut mean = vec![0.0f64; width];
    for row in trace.dense_out.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let mut var = vec![0.0f64; width];
    for row in trace.dense_out.chunks_exact(width) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    var.iter_mut().for_each(|v| *v /= rows as f64);
    trace.invstd = var
        .iter()
        .map(|v| (1.0 / (v + norm.epsilon).sqrt()) as f32)
        .collect();
    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let var32: Vec<f32> = var.iter().map(|&v| v as f32).collect();
    track(slots, norm, &mean32, &var32);
    let (gamma, beta) = (&slots[norm.gamma].values, &slots[norm.beta].values);
    trace.normalized = Vec::with_capacity(trace.dense_out.len());
    let mut y = Vec::with_capacity(trace.dense_out.len());
    for row in trace.dense_out.chunks_exact(width) {
        for ch in 0..width {
            let n = (row[ch] - mean32[ch]) * trace.invstd[ch];
            trace.normalized.push(n);
            y.push(n * gamma[ch] + beta[ch]);
        }
    }
    // Inverted dropout, the mask drawn value by value as the burn path draws it.
    if cnn.dropout > 0.0 {
        let keep = 1.0 - cnn.dropout;
        let scale = (1.0 / keep) as f32;
        trace.mask = (0..y.len())
            .map(|_| if dropout.unit() < keep { scale } else { 0.0 })
            .collect();
        for (v, m) in y.iter_mut().zip(&trace.mask) {
            *v *= m;
        }
    }
    trace.dropped = y;
    trace.head_out = dense_forward(slots, cnn.head, &trace.dropped, rows, true);
    trace
}

/// The photo layers' backward pass from the gradient of their output (`[rows, head]`, before
/// the head's ReLU), leaving every gradient in the slots.
fn photo_backward(
    slots: &mut [Slot],
    cnn: &PhotoLayers,
    trace: &PhotoTrace,
    d_out: &[f32],
    rows: usize,
) {
    let mut d_head = d_out.to_vec();
    relu_backward(&mut d_head, &trace.head_out);
    let mut d_y = dense_backward(slots, cnn.head, &trace.dropped, &d_head, rows, true);
    if !trace.mask.is_empty() {
        for (g, m) in d_y.iter_mut().zip(&trace.mask) {
            *g *= m;
        }
    }
    // BatchNorm's backward with batch statistics:
    // dx = gamma * invstd / n * (n * dy - sum(dy) - normalized * sum(dy * normalized)).
    let (width, norm) = (cnn.dense.fan_out, cnn.dense_norm);
    let (mut d_beta, mut d_gamma) = (vec![0.0f64; width], vec![0.0f64; width]);
    for (g, n) in d_y
        .chunks_exact(width)
        .zip(trace.normalized.chunks_exact(width))
    {
        for ch in 0..width {
            d_beta[ch] += f64::from(g[ch]);
            d_gamma[ch] += f64::from(g[ch]) * f64::from(n[ch]);
        }
    }
    let gamma = slots[norm.gamma].values.clone();
    let mut d_dense = Vec::with_capacity(d_y.len());
    for (g, n) in d_y
        .chunks_exact(width)
        .zip(trace.normalized.chunks_exact(width))
    {
        for ch in 0..width {
            let mean_dy = (d_beta[ch] / rows as f64) as f32;
            let mean_dyn = (d_gamma[ch] / rows as f64) as f32;
            d_dense.push(gamma[ch] * trace.invstd[ch] * (g[ch] - mean_dy - n[ch] * mean_dyn));
        }
    }
    slots[norm.beta].grad = d_beta.iter().map(|&v| v as f32).collect();
    slots[norm.gamma].grad = d_gamma.iter().map(|&v| v as f32).collect();
    relu_backward(&mut d_dense, &trace.dense_out);
    let d_flat = dense_backward(slots, cnn.dense, &trace.flat, &d_dense, rows, true);
    // Back to the last block's channels-last layout.
    let last = cnn.blocks.last().expect("at least one block");
    let (pooled, filters) = ((last.side / 2).pow(2), last.filters);
    let mut dy = transpose_each(&d_flat, filters, pooled);
    for (k, (block, saved)) in cnn.blocks.iter().zip(&trace.saved).enumerate().rev() {
        let grads = block::backward(saved, &dy, k > 0);
        slots[block.weight].grad = grads.weight;
        slots[block.bias].grad = grads.bias;
        slots[block.norm.gamma].grad = grads.gamma;
        slots[block.norm.beta].grad = grads.beta;
        if let Some(dx) = grads.x {
            dy = dx;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::fit::train::{IMAGE_LEN, mape_loss};
    use crate::models::{CnnConfig, MixedConfig, ModelSpec};

    /// Each parameter's gradient from burn's autodiff, by path.
    struct Collect<'a> {
        grads: &'a GradientsParams,
        path: Vec<String>,
        out: BTreeMap<String, Vec<f32>>,
    }

    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let values = g.into_data().try_to_vec::<f32>().unwrap();
                self.out.insert(self.path.join("."), values);
            }
        }
    }

    fn check(spec: &ModelSpec, rows: usize, seed: u64) {
        let device = Device::flex().autodiff();
        let mut rng = SeededRng::new(seed, 2);
        let n_features = 3;
        let images: Vec<f32> = (0..rows * IMAGE_LEN).map(|_| rng.unit() as f32).collect();
        let features: Vec<f32> = (0..rows * n_features)
            .map(|_| rng.uniform(-1.0, 1.0) as f32)
            .collect();
        let targets: Vec<f32> = (0..rows).map(|_| rng.uniform(0.5, 1.5) as f32).collect();
        let model = spec.init(n_features, &mut SeededRng::new(seed, 1), &device);
        let mut fused = FusedPhoto::new(&model).expect("a photo network");
        let batch = Batch {
            features: &features,
            n_features,
            images: &images,
            targets: &targets,
        };
        let ours = fused.gradients(&batch, Loss::Mape, &mut SeededRng::new(seed, 3));
        // The same step through burn's ops.
        let x = Tensor::<2>::from_data(TensorData::new(features, [rows, n_features]), &device);
        let im = Tensor::<4>::from_data(TensorData::new(images, [rows, 3, SIDE, SIDE]), &device);
        let y = Tensor::<2>::from_data(TensorData::new(targets, [rows, 1]), &device);
        let predicted = model.forward(x, Some(im), Some(&mut SeededRng::new(seed, 3)));
        let loss = mape_loss(predicted, y);
        let theirs = loss.clone().into_scalar::<f32>();
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs.abs(),
            "loss {ours} vs {theirs}"
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut collect = Collect {
            grads: &grads,
            path: Vec::new(),
            out: BTreeMap::new(),
        };
        match &model {
            Network::Cnn(m) => m.visit(&mut collect),
            Network::Mixed(m) => m.visit(&mut collect),
            _ => unreachable!("a photo network"),
        }
        let mut compared = 0;
        for slot in &fused.slots {
            if slot.moments.is_none() {
                continue;
            }
            let theirs = &collect.out[&slot.path];
            // Relative to the tensor's largest gradient: values near zero are rounding noise.
            // (The largest difference measured was 2.6e-6 of it; an error of 1% in
            // BatchNorm's backward moved the convolutions' gradients by ~2e-3.)
            let scale = theirs.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (a, b) in slot.grad.iter().zip(theirs) {
                assert!(
                    (a - b).abs() <= 5e-5 * scale,
                    "{}: {a} vs {b} (largest {scale})",
                    slot.path
                );
            }
            compared += 1;
        }
        assert_eq!(compared, collect.out.len(), "every parameter's gradient");
        // The moving statistics moved as burn's layers moved them.
        let after = model.valid().tensors();
        for slot in fused.slots.iter().filter(|s| s.moments.is_none()) {
            for (a, b) in slot.values.iter().zip(&after[&slot.path].values) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1e-2),
                    "{}: {a} vs {b}",
                    slot.path
                );
            }
        }
    }

    #[test]
    fn the_loss_every_gradient_and_the_moving_statistics_match_burns_layers() {
        check(&ModelSpec::Cnn(CnnConfig::default()), 8, 1);
        check(&ModelSpec::Mixed(MixedConfig::default()), 8, 2);
        // Another shape: two blocks, other widths, an odd batch, no dropout.
        let small = CnnConfig {
            filters: vec![5, 7],
            dense: 6,
            head: 3,
            dropout: 0.0,
            ..CnnConfig::default()
        };
        check(&ModelSpec::Cnn(small.clone()), 3, 3);
        check(
            &ModelSpec::Mixed(MixedConfig {
                cnn: small,
                ..MixedConfig::default()
            }),
            5,
            4,
        );
    }

    #[test]
    fn training_is_the_same_bit_for_bit_with_any_number_of_threads() {
        let device = Device::flex().autodiff();
        let spec = ModelSpec::Mixed(MixedConfig::default());
        let mut rng = SeededRng::new(6, 2);
        let rows = 8;
        let images: Vec<f32> = (0..rows * IMAGE_LEN).map(|_| rng.unit() as f32).collect();
        let features: Vec<f32> = (0..rows * 3).map(|_| rng.unit() as f32).collect();
        let targets: Vec<f32> = (0..rows).map(|_| rng.uniform(0.5, 1.5) as f32).collect();
        let model = spec.init(3, &mut SeededRng::new(6, 1), &device);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut fused = FusedPhoto::new(&model).unwrap();
                let mut dropout = SeededRng::new(6, 3);
                let batch = Batch {
                    features: &features,
                    n_features: 3,
                    images: &images,
                    targets: &targets,
                };
                for _ in 0..3 {
                    fused.step(
                        &batch,
                        Loss::Mape,
                        &AdamConfig::default(),
                        1e-3,
                        &mut dropout,
                    );
                }
                fused.network().tensors()
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }
}

//! The tutorial CNN's CONV => RELU => BN => POOL block as one fused CPU operation.
//!
//! Through burn's ops a block is a convolution (flex re-lays the weights, copies the input to
//! channels-last and allocates patch buffers on every call), a ReLU, BatchNorm's ~10 ops
//! forward and ~20 backward, and a pooling, each allocating its output and taking the autodiff
//! graph's lock: a training step at batch 8 took ~26-30 ms for ~0.5 GFLOP. Here a block is one
//! operation on channels-last values. Per image, on all cores: the 3x3 patches are laid out
//! once, one `gemm` product gives the convolution, and bias and ReLU are applied to its output;
//! BatchNorm's batch statistics are summed per image and combined in image order; normalizing
//! and 2x2 max pooling are one pass that keeps the pooled values and each window's winner.
//! The backward pass reuses the saved patches, activations and winners.
//!
//! Semantics are Keras's: batch statistics over all the step's images (biased variance for
//! normalizing; the caller updates the moving averages with it, as Keras 3 does), moving
//! statistics in evaluation. Each image's work runs on one thread and every sum over images is
//! taken in image order, so the numbers do not depend on the number of threads. The tests
//! below check the forward pass and every gradient against burn's own layers.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::models::matmul::{Mat, matmul};

/// The extension: one block on channels-last `[n, h, w, c]` values (even `h` and `w`), with a
/// convolution `weight` `[f, c, 3, 3]` (burn's order) and `bias`, and BatchNorm's `gamma`
/// and `beta` `[f]`.
#[backend_extension(Flex, Autodiff)]
pub trait ConvBlockBackend: Backend {
    /// Training: normalizes with the batch's statistics. Returns the pooled block output
    /// `[n, h / 2, w / 2, f]`, the batch mean and the batch (biased) variance `[f]` of the
    /// activations, for the caller's moving averages.
    fn conv_block_train(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Evaluation: normalizes with the moving `mean` and `var`; no gradient flows.
    #[allow(clippy::too_many_arguments)]
    fn conv_block_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// Sizes of one block: batch, input height and width, input channels, filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    /// Images.
    pub n: usize,
    /// Input height (even).
    pub h: usize,
    /// Input width (even).
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Filters (output channels).
    pub f: usize,
}

impl BlockShape {
    fn pixels(&self) -> usize {
        self.h * self.w
    }
    fn patch(&self) -> usize {
        9 * self.c
    }
    fn pooled(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }
}

/// What the forward pass keeps for the backward pass.
#[derive(Debug)]
pub(crate) struct Saved {
    shape: BlockShape,
    /// `[n, h * w, 9c]` patches, rows ordered (dy, dx, channel).
    cols: Vec<f32>,
    /// `[n, h * w, f]` activations after the ReLU.
    act: Vec<f32>,
    /// `[n, h/2 * w/2, f]` the winner (0..4, row-major in the window) of each pooling window.
    winner: Vec<u8>,
    /// `[9c, f]` the kernel as one matrix.
    kernel: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    gamma: Vec<f32>,
}

impl Drop for Saved {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.cols));
        recycle(std::mem::take(&mut self.act));
    }
}

/// Large buffers of earlier steps, kept for the next ones. A training step needs the same
/// dozen buffers (patches, activations, gradients; up to ~4.5 MB each) every few
/// milliseconds: zeroing fresh ones cost ~10% of a step in memset and page faults.
static SCRATCH: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// At most this many buffers are kept.
const SCRATCH_KEPT: usize = 24;

/// A buffer of `len` values, reused when one is kept: its contents are left from earlier
/// use, so only buffers that are overwritten whole come from here.
fn scratch(len: usize) -> Vec<f32> {
    let mut kept = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    // The smallest that holds `len` values; a training step asks for the same sizes every
    // time, so this is usually an exact fit.
    let best = (0..kept.len())
        .filter(|&i| kept[i].capacity() >= len)
        .min_by_key(|&i| kept[i].capacity());
    let mut buffer = best.map(|i| kept.swap_remove(i)).unwrap_or_default();
    drop(kept);
    buffer.truncate(len);
    buffer.resize(len, 0.0);
    buffer
}

/// Gives a buffer back for [`scratch`] to reuse.
fn recycle(buffer: Vec<f32>) {
    if buffer.is_empty() {
        return;
    }
    let mut kept = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < SCRATCH_KEPT {
        kept.push(buffer);
    }
}

/// A block's forward pass.
pub(crate) struct Forward {
    /// The pooled output, channels-last `[n, h/2 * w/2, f]`.
    pub(crate) out: Vec<f32>,
    /// The batch's mean and biased variance of the activations, `[f]` each.
    pub(crate) mean: Vec<f32>,
    pub(crate) var: Vec<f32>,
    /// What the backward pass needs, when asked for.
    pub(crate) saved: Option<Saved>,
}

/// A block's gradients: input (if asked), weight in burn's `[f, c, 3, 3]` order, bias, gamma,
/// beta.
pub(crate) struct Grads {
    pub(crate) x: Option<Vec<f32>>,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

/// burn's `[f, c, 3, 3]` kernel as the `[9c, f]` matrix the patches multiply.
fn kernel_matrix(weight: &[f32], c: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0; 9 * c * f];
    for o in 0..f {
        for i in 0..c {
            for k in 0..9 {
                out[(k * c + i) * f + o] = weight[(o * c + i) * 9 + k];
            }
        }
    }
    out
}

/// The `[9c, f]` matrix back in burn's `[f, c, 3, 3]` order.
fn burn_kernel(matrix: &[f32], c: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0; 9 * c * f];
    for o in 0..f {
        for i in 0..c {
            for k in 0..9 {
                out[(o * c + i) * 9 + k] = matrix[(k * c + i) * f + o];
            }
        }
    }
    out
}

/// One image's `[h, w, c]` values as `[h * w, 9c]` 3x3 "same" patches (zeros outside).
fn im2col(x: &[f32], h: usize, w: usize, c: usize, cols: &mut [f32]) {
    // The tutorial's channel counts (the montage's 3, then 16 and 32 filters): copies of a
    // known length, which compile to vector moves rather than thousands of calls to memcpy
    // per image.
    match c {
        3 => return im2col_fixed::<9>(x, h, w, cols),
        16 => return im2col_fixed::<48>(x, h, w, cols),
        32 => return im2col_fixed::<96>(x, h, w, cols),
        _ => {}
    }
    for y in 0..h {
        for x0 in 0..w {
            let row = &mut cols[(y * w + x0) * 9 * c..][..9 * c];
            for ky in 0..3 {
                let dst = &mut row[ky * 3 * c..][..3 * c];
                let sy = (y + ky).wrapping_sub(1);
                if sy >= h {
                    dst.fill(0.0);
                } else if x0 > 0 && x0 + 1 < w {
                    // The three taps of a row are three neighbouring pixels: one copy.
                    dst.copy_from_slice(&x[(sy * w + x0 - 1) * c..][..3 * c]);
                } else {
                    for kx in 0..3 {
                        let dst = &mut dst[kx * c..][..c];
                        let sx = (x0 + kx).wrapping_sub(1);
                        if sx < w {
                            dst.copy_from_slice(&x[(sy * w + sx) * c..][..c]);
                        } else {
                            dst.fill(0.0);
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for `SPAN / 3` channels, `SPAN` values to a row of taps.
fn im2col_fixed<const SPAN: usize>(x: &[f32], h: usize, w: usize, cols: &mut [f32]) {
    let c = SPAN / 3;
    for y in 0..h {
        for x0 in 0..w {
            let row = &mut cols[(y * w + x0) * 3 * SPAN..][..3 * SPAN];
            for ky in 0..3 {
                let dst: &mut [f32; SPAN] = (&mut row[ky * SPAN..][..SPAN])
                    .try_into()
                    .expect("a row of taps");
                let sy = (y + ky).wrapping_sub(1);
                if sy >= h {
                    *dst = [0.0; SPAN];
                } else if x0 > 0 && x0 + 1 < w {
                    *dst = x[(sy * w + x0 - 1) * c..][..SPAN]
                        .try_into()
                        .expect("a row of taps");
                } else {
                    for kx in 0..3 {
                        let sx = (x0 + kx).wrapping_sub(1);
                        for i in 0..c {
                            dst[kx * c + i] = if sx < w {
                                x[(sy * w + sx) * c + i]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patch gradients of pixels `first..` (`[rows, 9c]`, row-major) back onto one
/// image's `[h, w, c]` input gradient.
fn col2im_add(cols: &[f32], first: usize, h: usize, w: usize, c: usize, dx: &mut [f32]) {
    for (r, row) in cols.chunks_exact(9 * c).enumerate() {
        let (y, x0) = ((first + r) / w, (first + r) % w);
        for ky in 0..3 {
            for kx in 0..3 {
                let (sy, sx) = ((y + ky).wrapping_sub(1), (x0 + kx).wrapping_sub(1));
                if sy < h && sx < w {
                    let src = &row[(ky * 3 + kx) * c..][..c];
                    for (d, s) in dx[(sy * w + sx) * c..][..c].iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
    }
}

/// Pixels per tile of the input gradient's patch product: the tile's `[256, 9c]` patch
/// gradients (at most 288 KiB) stay in the core's L2 cache instead of an image-sized buffer,
/// and the product is tall enough for gemm's kernels (64-pixel tiles ran them at ~100
/// GFLOPS, 256-pixel tiles at ~140; the step 3-7% faster, `cnn_step` side by side).
const DX_TILE: usize = 256;

/// One image's convolution, bias and ReLU: `[h * w, f]` activations into `act`, its patches
/// into `cols`, and when asked (`moments`, `2f` long) each channel's sum over the image's
/// pixels and the sum of squares about the image's own mean (each in f32, pixel by pixel
/// from zero, while the activations are still in cache).
fn conv_relu_image(
    s: BlockShape,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    cols: &mut [f32],
    act: &mut [f32],
    moments: Option<&mut [f32]>,
) {
    let (hw, patch, f) = (s.pixels(), s.patch(), s.f);
    let bias = &bias[..f];
    im2col(x, s.h, s.w, s.c, cols);
    matmul(
        act,
        false,
        Mat::rows(cols, patch),
        Mat::rows(kernel, f),
        hw,
        patch,
        f,
    );
    // The bias is added to the product here rather than given to gemm as the product's
    // starting value: the same single rounding of `product + bias`, without a copy of the
    // bias into every pixel first.
    match moments {
        None => {
            for row in act.chunks_exact_mut(f) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + b).max(0.0);
                }
            }
        }
        Some(moments) => {
            let (sums, squares) = moments[..2 * f].split_at_mut(f);
            sums.fill(0.0);
            for row in act.chunks_exact_mut(f) {
                for ((v, t), b) in row.iter_mut().zip(sums.iter_mut()).zip(bias) {
                    *v = (*v + b).max(0.0);
                    *t += *v;
                }
            }
            // About the image's own mean, while the image is still in cache: the batch's
            // variance is then combined from these without another pass over the batch.
            let center: Vec<f32> = sums.iter().map(|&t| t / hw as f32).collect();
            squares.fill(0.0);
            for row in act.chunks_exact(f) {
                for ((q, v), m) in squares.iter_mut().zip(row).zip(&center) {
                    let d = v - m;
                    *q += d * d;
                }
            }
        }
    }
}

/// Convolution, bias and ReLU of every image, keeping the patches for the backward pass:
/// `[n, h * w, f]` activations, `[n, h * w, 9c]` patches, and the batch's per-channel mean and
/// biased variance.
///
/// Each image's sums and squares about its own mean are taken in f32 within the image; they
/// are combined over images in f64 and in image order (Chan's pairwise formula:
/// `sum over images of squares_i + pixels * ((mean_i - mean)^2 - (mean_i - center_i)^2)`,
/// where `center_i` is the f32 mean the squares were taken about), so the result does not
/// depend on how the images were shared among threads.
fn conv_relu(
    s: BlockShape,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>) {
    let (hw, patch, f) = (s.pixels(), s.patch(), s.f);
    // Both are overwritten whole: the activations by the product, the patches by im2col.
    let mut act = scratch(s.n * hw * f);
    let mut cols = scratch(s.n * hw * patch);
    let mut moments = vec![0.0f32; s.n * 2 * f];
    act.par_chunks_mut(hw * f)
        .zip(cols.par_chunks_mut(hw * patch))
        .zip(moments.par_chunks_mut(2 * f))
        .enumerate()
        .for_each(|(i, ((a, c), m))| {
            conv_relu_image(
                s,
                &x[i * hw * s.c..][..hw * s.c],
                kernel,
                bias,
                c,
                a,
                Some(m),
            )
        });
    let pixels = hw as f64;
    let count = (s.n * hw) as f64;
    let mut mean = vec![0.0f64; f];
    for image in moments.chunks_exact(2 * f) {
        for (t, &v) in mean.iter_mut().zip(&image[..f]) {
            *t += v as f64;
        }
    }
    for t in &mut mean {
        *t /= count;
    }
    let mut var = vec![0.0f64; f];
    for image in moments.chunks_exact(2 * f) {
        let (sums, squares) = image.split_at(f);
        for ch in 0..f {
            let own = sums[ch] as f64 / pixels;
            let center = (sums[ch] / hw as f32) as f64;
            var[ch] +=
                squares[ch] as f64 + pixels * ((own - mean[ch]).powi(2) - (own - center).powi(2));
        }
    }
    for v in &mut var {
        *v = (*v / count).max(0.0);
    }
    (act, cols, mean, var)
}

/// Normalizes (`v * scale + shift`) and max-pools one image's `[h * w, f]` activations into
/// `[h/2 * w/2, f]` values, and each window's winner (the first maximum on ties, as burn's
/// pooling) when asked.
fn normalize_pool_image(
    s: BlockShape,
    act: &[f32],
    scale: &[f32],
    shift: &[f32],
    out: &mut [f32],
    mut winner: Option<&mut [u8]>,
) {
    let (f, ow, w) = (s.f, s.w / 2, s.w);
    let (scale, shift) = (&scale[..f], &shift[..f]);
    for o in 0..s.pooled() {
        let (oy, ox) = (o / ow, o % ow);
        let top = 2 * oy * w + 2 * ox;
        let rows = [top, top + 1, top + w, top + w + 1].map(|p| &act[p * f..][..f]);
        let out = &mut out[o * f..][..f];
        for ch in 0..f {
            let mut best = rows[0][ch] * scale[ch] + shift[ch];
            let mut at = 0u8;
            for (k, row) in rows.iter().enumerate().skip(1) {
                let v = row[ch] * scale[ch] + shift[ch];
                if v > best {
                    best = v;
                    at = k as u8;
                }
            }
            out[ch] = best;
            if let Some(winner) = winner.as_deref_mut() {
                winner[o * f + ch] = at;
            }
        }
    }
}

/// [`normalize_pool_image`] for every image, with the winners.
fn normalize_pool(s: BlockShape, act: &[f32], scale: &[f32], shift: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let (hw, f, pooled) = (s.pixels(), s.f, s.pooled());
    let mut out = vec![0.0f32; s.n * pooled * f];
    let mut winner = vec![0u8; s.n * pooled * f];
    out.par_chunks_mut(pooled * f)
        .zip(winner.par_chunks_mut(pooled * f))
        .enumerate()
        .for_each(|(i, (out, winner))| {
            let a = &act[i * hw * f..][..hw * f];
            normalize_pool_image(s, a, scale, shift, out, Some(winner));
        });
    (out, winner)
}

/// The forward pass with the batch's statistics; `save` keeps what the backward pass needs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_train(
    s: BlockShape,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    save: bool,
) -> Forward {
    let kernel = kernel_matrix(weight, s.c, s.f);
    let (act, cols, mean, var) = conv_relu(s, x, &kernel, bias);
    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let invstd: Vec<f32> = var
        .iter()
        .map(|v| (1.0 / (v + epsilon).sqrt()) as f32)
        .collect();
    let scale: Vec<f32> = gamma.iter().zip(&invstd).map(|(g, i)| g * i).collect();
    let shift: Vec<f32> = (0..s.f)
        .map(|ch| beta[ch] - mean32[ch] * scale[ch])
        .collect();
    let (out, winner) = normalize_pool(s, &act, &scale, &shift);
    let var32 = var.iter().map(|&v| v as f32).collect();
    let saved = save.then(|| Saved {
        shape: s,
        cols,
        act,
        winner,
        kernel,
        mean: mean32.clone(),
        invstd,
        gamma: gamma.to_vec(),
    });
    Forward {
        out,
        mean: mean32,
        var: var32,
        saved,
    }
}

/// The forward pass with moving statistics.
#[allow(clippy::too_many_arguments)]
fn forward_eval(
    s: BlockShape,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> Vec<f32> {
    let kernel = kernel_matrix(weight, s.c, s.f);
    let scale: Vec<f32> = (0..s.f)
        .map(|ch| gamma[ch] / ((var[ch] as f64 + epsilon).sqrt() as f32))
        .collect();
    let shift: Vec<f32> = (0..s.f).map(|ch| beta[ch] - mean[ch] * scale[ch]).collect();
    // Image by image with one patch and one activation buffer per thread: nothing the size of
    // the whole batch but the output. (Not from the training buffers: the validation pass runs
    // beside a training step.)
    let (hw, f, pooled) = (s.pixels(), s.f, s.pooled());
    let mut out = vec![0.0f32; s.n * pooled * f];
    out.par_chunks_mut(pooled * f).enumerate().for_each_init(
        || (vec![0.0f32; hw * s.patch()], vec![0.0f32; hw * f]),
        |(cols, act), (i, out)| {
            let x = &x[i * hw * s.c..][..hw * s.c];
            conv_relu_image(s, x, &kernel, bias, cols, act, None);
            normalize_pool_image(s, act, &scale, &shift, out, None);
        },
    );
    out
}

/// The backward pass from the pooled output's gradient `dy` `[n, h/2 * w/2, f]`.
pub(crate) fn backward(saved: &Saved, dy: &[f32], need_dx: bool) -> Grads {
    let s = saved.shape;
    let (hw, f, pooled, patch) = (s.pixels(), s.f, s.pooled(), s.patch());
    let (ow, w) = (s.w / 2, s.w);
    let count = (s.n * hw) as f32;
    // The normalized output's gradient: each pooled gradient goes to its window's winner and
    // zero to the other three (every pixel is in one window), then per-channel sums of it and
    // of it times the centered activation, for BatchNorm's gradients.
    // Overwritten whole: every pixel is in exactly one pooling window.
    let mut dz = scratch(s.n * hw * f);
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dz
        .par_chunks_mut(hw * f)
        .enumerate()
        .map(|(i, dn)| {
            for o in 0..pooled {
                let (oy, ox) = (o / ow, o % ow);
                let top = 2 * oy * w + 2 * ox;
                let g = &dy[(i * pooled + o) * f..][..f];
                let won = &saved.winner[(i * pooled + o) * f..][..f];
                for (k, p) in [top, top + 1, top + w, top + w + 1].into_iter().enumerate() {
                    let row = &mut dn[p * f..][..f];
                    for ((d, &g), &won) in row.iter_mut().zip(g).zip(won) {
                        *d = if won as usize == k { g } else { 0.0 };
                    }
                }
            }
            let a = &saved.act[i * hw * f..][..hw * f];
            let (mut sum, mut dot) = (vec![0.0f32; f], vec![0.0f32; f]);
            for (row, arow) in dn.chunks_exact(f).zip(a.chunks_exact(f)) {
                for ((((s, t), &d), &a), &m) in sum[..f]
                    .iter_mut()
                    .zip(&mut dot[..f])
                    .zip(row)
                    .zip(arow)
                    .zip(&saved.mean[..f])
                {
                    *s += d;
                    *t += d * (a - m);
                }
            }
            (sum, dot)
        })
        .collect();
    let (mut dbeta, mut dgamma) = (vec![0.0f64; f], vec![0.0f64; f]);
    for (sum, dot) in partial {
        for ch in 0..f {
            dbeta[ch] += sum[ch] as f64;
            dgamma[ch] += dot[ch] as f64 * saved.invstd[ch] as f64;
        }
    }
    let mean_dbeta: Vec<f32> = dbeta.iter().map(|&v| v as f32 / count).collect();
    let mean_dgamma: Vec<f32> = dgamma.iter().map(|&v| v as f32 / count).collect();
    let gain: Vec<f32> = (0..f)
        .map(|ch| saved.gamma[ch] * saved.invstd[ch])
        .collect();
    // Through BatchNorm and the ReLU, then the convolution's gradients per image. Every
    // per-image result goes into a buffer allocated here and each thread's scratch stays on
    // that thread: memory freed on another thread than the one that allocated it was not
    // reused promptly by the allocator, and a training run's memory grew epoch after epoch.
    let dx_len = if need_dx { hw * s.c } else { 1 };
    let mut dxs = vec![0.0f32; s.n * dx_len];
    // Overwritten whole by each image's product.
    let mut dws = scratch(s.n * patch * f);
    let mut dbs = vec![0.0f32; s.n * f];
    dz.par_chunks_mut(hw * f)
        .zip(dws.par_chunks_mut(patch * f))
        .zip(dbs.par_chunks_mut(f))
        .zip(dxs.par_chunks_mut(dx_len))
        .enumerate()
        .for_each_init(
            || vec![0.0f32; DX_TILE * patch],
            |dcols, (i, (((dz, dw), db), dx))| {
                let a = &saved.act[i * hw * f..][..hw * f];
                let (mean, invstd, gain) = (&saved.mean[..f], &saved.invstd[..f], &gain[..f]);
                let (mean_dbeta, mean_dgamma, db) =
                    (&mean_dbeta[..f], &mean_dgamma[..f], &mut db[..f]);
                for (row, arow) in dz.chunks_exact_mut(f).zip(a.chunks_exact(f)) {
                    let per_channel = mean.iter().zip(invstd).zip(gain);
                    let per_channel = per_channel.zip(mean_dbeta).zip(mean_dgamma);
                    for (((d, &a), b), ((((&m, &is), &g), &mdb), &mdg)) in
                        row.iter_mut().zip(arow).zip(db.iter_mut()).zip(per_channel)
                    {
                        let v = g * (*d - mdb - (a - m) * is * mdg);
                        *d = if a > 0.0 { v } else { 0.0 };
                        *b += *d;
                    }
                }
                let cols = &saved.cols[i * hw * patch..][..hw * patch];
                matmul(
                    dw,
                    false,
                    Mat::transposed(cols, patch),
                    Mat::rows(dz, f),
                    patch,
                    hw,
                    f,
                );
                if need_dx {
                    for first in (0..hw).step_by(DX_TILE) {
                        let rows = DX_TILE.min(hw - first);
                        matmul(
                            dcols,
                            false,
                            Mat::rows(&dz[first * f..], f),
                            Mat::transposed(&saved.kernel, f),
                            rows,
                            f,
                            patch,
                        );
                        col2im_add(&dcols[..rows * patch], first, s.h, s.w, s.c, dx);
                    }
                }
            },
        );
    let mut dw = vec![0.0f32; patch * f];
    let mut db = vec![0.0f32; f];
    for (w_i, b_i) in dws.chunks_exact(patch * f).zip(dbs.chunks_exact(f)) {
        for (t, v) in dw.iter_mut().zip(w_i) {
            *t += v;
        }
        for (t, v) in db.iter_mut().zip(b_i) {
            *t += v;
        }
    }
    recycle(dz);
    recycle(dws);
    let dx = need_dx.then_some(dxs);
    Grads {
        x: dx,
        weight: burn_kernel(&dw, s.c, s.f),
        bias: db,
        gamma: dgamma.iter().map(|&v| v as f32).collect(),
        beta: dbeta.iter().map(|&v| v as f32).collect(),
    }
}

/// A flex tensor made contiguous (a no-op when it already is), to read as a slice.
fn contiguous(tensor: FloatTensor<Flex>) -> FloatTensor<Flex> {
    tensor.to_contiguous()
}

/// The f32 values of a contiguous flex tensor.
fn slice(tensor: &FloatTensor<Flex>) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("a contiguous f32 tensor has a slice view")
}

fn dims(tensor: &FloatTensor<Flex>) -> Vec<usize> {
    tensor.shape().iter().copied().collect()
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape.to_vec()))
}

/// The block's sizes from its input `[n, h, w, c]` and kernel `[f, c, 3, 3]` shapes.
fn block_shape(x: &[usize], weight: &[usize]) -> BlockShape {
    assert!(
        x.len() == 4 && weight.len() == 4,
        "a block takes [n, h, w, c] values"
    );
    assert_eq!(
        weight[1], x[3],
        "the kernel's input channels match the values'"
    );
    assert!(
        weight[2] == 3 && weight[3] == 3,
        "the block's kernel is 3x3"
    );
    assert!(
        x[1].is_multiple_of(2) && x[2].is_multiple_of(2),
        "2x2 pooling needs even sides"
    );
    BlockShape {
        n: x[0],
        h: x[1],
        w: x[2],
        c: x[3],
        f: weight[0],
    }
}

fn pooled_shape(s: BlockShape) -> [usize; 4] {
    [s.n, s.h / 2, s.w / 2, s.f]
}

/// Runs the training forward pass on flex tensors.
fn train_on_flex(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    beta: FloatTensor<Flex>,
    epsilon: f64,
    save: bool,
) -> (BlockShape, Forward) {
    let s = block_shape(&dims(&x), &dims(&weight));
    let [x, weight, bias, gamma, beta] = [x, weight, bias, gamma, beta].map(contiguous);
    let forward = forward_train(
        s,
        slice(&x),
        slice(&weight),
        slice(&bias),
        slice(&gamma),
        slice(&beta),
        epsilon,
        save,
    );
    (s, forward)
}

impl ConvBlockBackend for Flex {
    fn conv_block_train(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (s, fwd) = train_on_flex(x, weight, bias, gamma, beta, epsilon, false);
        (
            tensor(fwd.out, &pooled_shape(s)),
            tensor(fwd.mean, &[s.f]),
            tensor(fwd.var, &[s.f]),
        )
    }

    fn conv_block_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let s = block_shape(&dims(&x), &dims(&weight));
        let [x, weight, bias, gamma, beta, mean, var] =
            [x, weight, bias, gamma, beta, mean, var].map(contiguous);
        let out = forward_eval(
            s,
            slice(&x),
            slice(&weight),
            slice(&bias),
            slice(&gamma),
            slice(&beta),
            slice(&mean),
            slice(&var),
            epsilon,
        );
        tensor(out, &pooled_shape(s))
    }
}

#[derive(Debug)]
struct BlockStep;

impl Backward<Flex, 5> for BlockStep {
    type State = Arc<Saved>;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias, node_gamma, node_beta] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let saved = ops.state;
        let s = saved.shape;
        let g = backward(&saved, slice(&dy), node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, g.x) {
            grads.register::<Flex>(node.id, tensor(dx, &[s.n, s.h, s.w, s.c]));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, tensor(g.weight, &[s.f, s.c, 3, 3]));
        }
        for (node, values) in [
            (node_bias, g.bias),
            (node_gamma, g.gamma),
            (node_beta, g.beta),
        ] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor(values, &[s.f]));
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvBlockBackend for Autodiff<Flex, C> {
    fn conv_block_train(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [
            x.node(),
            weight.node(),
            bias.node(),
            gamma.node(),
            beta.node(),
        ];
        let (s, fwd) = train_on_flex(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            epsilon,
            true,
        );
        let out = tensor(fwd.out, &pooled_shape(s));
        let mean = FloatTensor::<Self>::new(tensor(fwd.mean, &[s.f]));
        let var = FloatTensor::<Self>::new(tensor(fwd.var, &[s.f]));
        let saved = Arc::new(fwd.saved.expect("the training pass saves its values"));
        let out = match BlockStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(saved, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (out, mean, var)
    }

    fn conv_block_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(Flex::conv_block_eval(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            mean.into_primitive(),
            var.into_primitive(),
            epsilon,
        ))
    }
}

/// A training block on channels-last `x` `[n, h, w, c]`: the pooled output `[n, h/2, w/2, f]`
/// with gradients for `x` and every parameter, and the batch's mean and (biased) variance.
pub fn conv_block_train(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (out, mean, var) = <Dispatch as ConvBlockBackend>::conv_block_train(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(out),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// An evaluation block on channels-last `x` `[n, h, w, c]` with the moving `mean` and `var`.
#[allow(clippy::too_many_arguments)]
pub fn conv_block_eval(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    epsilon: f64,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvBlockBackend>::conv_block_eval(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        mean.into_dispatch(),
        var.into_dispatch(),
        epsilon,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Norm, batch_norm, conv3x3};
    use crate::runtime::rng::SeededRng;
    use burn::module::Param;
    use burn::nn::conv::Conv2d;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Device;
    use burn::tensor::activation::relu;

    fn random<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
        let mut rng = SeededRng::new(seed, 9);
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    /// Within `tol` relative to the larger of the value and the reference's largest value.
    fn close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>, tol: f32, what: &str) {
        let (a, b) = (vec(ours), vec(theirs));
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= tol * scale,
                "{what}[{i}]: {x} vs {y} (scale {scale})"
            );
        }
    }

    /// A block's parameters with BatchNorm's scale and offset moved away from 1 and 0 (and
    /// one scale negative), so every term of the gradients matters.
    fn block(c: usize, f: usize, seed: u64, device: &Device) -> (Conv2d, Norm) {
        let mut conv = conv3x3(c, f, &mut SeededRng::new(seed, 1), device);
        conv.bias = Some(Param::from_tensor(
            random([f], seed + 1, device).mul_scalar(0.1),
        ));
        let mut norm = batch_norm(f, 0.9, 1e-3, device);
        norm.gamma = Param::from_tensor(random([f], seed + 2, device).add_scalar(1.2));
        norm.beta = Param::from_tensor(random([f], seed + 3, device));
        (conv, norm)
    }

    fn reference(x: Tensor<4>, conv: &Conv2d, norm: &Norm) -> Tensor<4> {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        pool.forward(norm.forward(relu(conv.forward(x))))
    }

    fn fused_train(x: Tensor<4>, conv: &Conv2d, norm: &Norm) -> Tensor<4> {
        let (y, mean, var) = conv_block_train(
            x.permute([0, 2, 3, 1]),
            conv.weight.val(),
            conv.bias.as_ref().unwrap().val(),
            norm.gamma.val(),
            norm.beta.val(),
            norm.epsilon,
        );
        norm.track(mean, var);
        y.permute([0, 3, 1, 2])
    }

    /// Outputs within 1e-5 and gradients within 1e-3 of the reference's largest value: burn
    /// sums BatchNorm's gradients over up to 32,768 values per channel in f32 (this block
    /// sums in f64), and the input gradient subtracts two such sums.
    fn check_training(shape: [usize; 4], f: usize, seed: u64) {
        let device = Device::flex().autodiff();
        let [n, c, h, w] = shape;
        let (conv, norm) = block(c, f, seed, &device);
        let (conv2, norm2) = (conv.clone(), norm.clone());
        let x = random(shape, seed + 4, &device).require_grad();
        let upstream = random([n, f, h / 2, w / 2], seed + 5, &device);
        let theirs = reference(x.clone(), &conv, &norm);
        let ours = fused_train(x.clone(), &conv2, &norm2);
        close(ours.clone(), theirs.clone(), 1e-5, "output");
        let g_theirs = (theirs * upstream.clone()).sum().backward();
        let g_ours = (ours * upstream).sum().backward();
        close(
            x.grad(&g_ours).unwrap(),
            x.grad(&g_theirs).unwrap(),
            1e-3,
            "x",
        );
        let w = |c: &Conv2d| c.weight.val();
        close(
            w(&conv2).grad(&g_ours).unwrap(),
            w(&conv).grad(&g_theirs).unwrap(),
            1e-3,
            "weight",
        );
        let b = |c: &Conv2d| c.bias.as_ref().unwrap().val();
        close(
            b(&conv2).grad(&g_ours).unwrap(),
            b(&conv).grad(&g_theirs).unwrap(),
            1e-3,
            "bias",
        );
        let (g, g2) = (norm.gamma.val(), norm2.gamma.val());
        close(
            g2.grad(&g_ours).unwrap(),
            g.grad(&g_theirs).unwrap(),
            1e-3,
            "gamma",
        );
        let (b, b2) = (norm.beta.val(), norm2.beta.val());
        close(
            b2.grad(&g_ours).unwrap(),
            b.grad(&g_theirs).unwrap(),
            1e-3,
            "beta",
        );
        let state = |n: &Norm| (n.running_mean.value_sync(), n.running_var.value_sync());
        let ((m1, v1), (m2, v2)) = (state(&norm2), state(&norm));
        close(m1, m2, 1e-5, "moving mean");
        close(v1, v2, 1e-5, "moving variance");
    }

    #[test]
    fn training_forward_every_gradient_and_moving_statistics_match_burns_layers() {
        check_training([2, 3, 6, 4], 5, 10);
        check_training([3, 4, 8, 8], 7, 20);
        check_training([1, 2, 2, 2], 3, 30);
        // The tutorial's blocks at batch 8.
        check_training([8, 3, 64, 64], 16, 40);
        check_training([8, 16, 32, 32], 32, 50);
        check_training([8, 32, 16, 16], 64, 60);
    }

    #[test]
    fn evaluation_matches_burns_layers_with_moving_statistics() {
        let device = Device::flex();
        for (shape, f, seed) in [([5, 3, 8, 6], 4, 70), ([9, 16, 32, 32], 32, 80)] {
            let (conv, mut norm) = block(shape[1], f, seed, &device);
            norm.running_mean = burn::module::RunningState::new(random([f], seed + 6, &device));
            norm.running_var = burn::module::RunningState::new(
                random([f], seed + 7, &device).abs().add_scalar(0.1),
            );
            let x = random(shape, seed + 8, &device);
            let theirs = reference(x.clone(), &conv, &norm);
            let ours = conv_block_eval(
                x.permute([0, 2, 3, 1]),
                conv.weight.val(),
                conv.bias.as_ref().unwrap().val(),
                norm.gamma.val(),
                norm.beta.val(),
                norm.running_mean.value(),
                norm.running_var.value(),
                norm.epsilon,
            )
            .permute([0, 3, 1, 2]);
            close(ours, theirs, 1e-5, "evaluation");
        }
    }

    #[test]
    fn results_are_the_same_bit_for_bit_with_any_number_of_threads() {
        let run = || {
            let device = Device::flex().autodiff();
            let (conv, norm) = block(4, 6, 90, &device);
            let x = random([5, 4, 8, 8], 91, &device).require_grad();
            let y = fused_train(x.clone(), &conv, &norm);
            let grads = (y.clone() * random([5, 6, 4, 4], 92, &device))
                .sum()
                .backward();
            let mut all = vec(y);
            all.extend(vec(x.grad(&grads).unwrap()));
            all.extend(vec(conv.weight.val().grad(&grads).unwrap()));
            all.extend(vec(norm.gamma.val().grad(&grads).unwrap()));
            all.extend(vec(norm.running_var.value_sync()));
            all.into_iter().map(f32::to_bits).collect::<Vec<_>>()
        };
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(run)
        };
        let one = with(1);
        assert_eq!(one, with(2));
        assert_eq!(one, with(5));
    }

    #[test]
    fn kernel_matrix_round_trips() {
        let weight: Vec<f32> = (0..2 * 3 * 9).map(|v| v as f32).collect();
        let matrix = kernel_matrix(&weight, 3, 2);
        // Filter 1, channel 2, (dy 0, dx 1) sits at row (1 * 3 + 2), column 1.
        assert_eq!(matrix[(3 + 2) * 2 + 1], weight[(3 + 2) * 9 + 1]);
        assert_eq!(burn_kernel(&matrix, 3, 2), weight);
    }
}

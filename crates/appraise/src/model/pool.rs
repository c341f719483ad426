//! 2x2, stride 2 max pooling as a burn backend extension with a plain-loop kernel.
//!
//! Profiling a CNN training step on the flex backend put ~40% of the CPU time in flex's
//! general max-pooling kernels (windows of any size, with index tensors and a scalar scatter
//! for the backward pass). The tutorial only pools 2x2 windows with stride 2 over even sides,
//! where the forward pass is four comparisons per output and the backward pass routes each
//! output's gradient to its window's maximum (the first one on ties, as burn does).

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Tensor, TensorData};

/// The extension: 2x2 max pooling with stride 2.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPool2x2Backend: Backend {
    /// `[n, c, h, w]` (even `h` and `w`) -> `[n, c, h / 2, w / 2]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of `x` given the gradient of `max_pool2x2(x)`.
    fn max_pool2x2_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        panic!("max_pool2x2_backward runs on a concrete backend, inside the backward pass")
    }
}

/// The contiguous f32 values of a flex tensor.
fn values(tensor: FloatTensor<Flex>) -> (Vec<usize>, Vec<f32>) {
    let shape: Vec<usize> = tensor.shape().iter().copied().collect();
    let contiguous = tensor.to_contiguous();
    let data = contiguous
        .as_slice::<f32>()
        .expect("a contiguous tensor has a slice view")
        .to_vec();
    (shape, data)
}

/// Offset of the maximum of the 2x2 window at output (`oy`, `ox`) of a `w`-wide plane.
#[inline]
fn argmax(plane: &[f32], w: usize, oy: usize, ox: usize) -> usize {
    let top = 2 * oy * w + 2 * ox;
    let mut best = top;
    for offset in [top + 1, top + w, top + w + 1] {
        if plane[offset] > plane[best] {
            best = offset;
        }
    }
    best
}

impl MaxPool2x2Backend for Flex {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (shape, data) = values(x);
        let (h, w) = (shape[2], shape[3]);
        let (oh, ow) = (h / 2, w / 2);
        let mut out = Vec::with_capacity(data.len() / 4);
        for plane in data.chunks_exact(h * w) {
            for oy in 0..oh {
                for ox in 0..ow {
                    out.push(plane[argmax(plane, w, oy, ox)]);
                }
            }
        }
        let out_shape = [shape[0], shape[1], oh, ow];
        FloatTensor::<Self>::from_data(TensorData::new(out, out_shape))
    }

    fn max_pool2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let (shape, data) = values(x);
        let (_, grad) = values(grad);
        let (h, w) = (shape[2], shape[3]);
        let (oh, ow) = (h / 2, w / 2);
        let mut out = vec![0.0f32; data.len()];
        for ((plane, grads), target) in data
            .chunks_exact(h * w)
            .zip(grad.chunks_exact(oh * ow))
            .zip(out.chunks_exact_mut(h * w))
        {
            for oy in 0..oh {
                for ox in 0..ow {
                    target[argmax(plane, w, oy, ox)] = grads[oy * ow + ox];
                }
            }
        }
        FloatTensor::<Self>::from_data(TensorData::new(out, shape))
    }
}

#[derive(Debug)]
struct MaxPoolStep;

impl<B: Backend + MaxPool2x2Backend> Backward<B, 1> for MaxPoolStep {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::max_pool2x2_backward(x, grad));
        }
    }
}

impl<B: Backend + MaxPool2x2Backend, C: CheckpointStrategy> MaxPool2x2Backend for Autodiff<B, C> {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPoolStep
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
        }
    }
}

/// 2x2 max pooling with stride 2 of `[n, c, h, w]` with even `h` and `w`.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as MaxPool2x2Backend>::max_pool2x2(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Device;

    #[test]
    fn matches_burns_max_pooling_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = SeededRng::new(6, 1);
        let values: Vec<f32> = (0..2 * 3 * 6 * 4).map(|_| rng.unit() as f32).collect();
        let x =
            Tensor::<4>::from_data(TensorData::new(values, [2, 3, 6, 4]), &device).require_grad();
        let upstream_values: Vec<f32> = (0..2 * 3 * 3 * 2).map(|_| rng.unit() as f32).collect();
        let upstream =
            Tensor::<4>::from_data(TensorData::new(upstream_values, [2, 3, 3, 2]), &device);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let theirs = pool.forward(x.clone());
        let ours = max_pool2x2(x.clone());
        let as_vec = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(as_vec(ours.clone()), as_vec(theirs.clone()));
        let g_theirs = (theirs * upstream.clone()).sum().backward();
        let g_ours = (ours * upstream).sum().backward();
        assert_eq!(
            as_vec(x.grad(&g_ours).unwrap()),
            as_vec(x.grad(&g_theirs).unwrap())
        );
    }
}

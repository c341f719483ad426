//! Keras's Adam, as a burn optimizer.
//!
//! burn's own Adam adds epsilon to the bias-corrected second moment (PyTorch's form); Keras adds
//! it to the raw one (`var -= lr_t * m / (sqrt(v) + eps)` with
//! `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`). The difference is tiny, but parity is the
//! point of tutorial mode, so appraise steps exactly as Keras does.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::optim::{AdaptiveMomentumState, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Adam's hyperparameters and Keras's legacy inverse-time learning-rate decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    /// Base learning rate.
    pub learning_rate: f64,
    /// Keras's `decay`: the rate at step t is `learning_rate / (1 + decay * t)`.
    pub decay: f64,
    /// Exponential decay of the first moment.
    pub beta_1: f64,
    /// Exponential decay of the second moment.
    pub beta_2: f64,
    /// Keras's epsilon (1e-7; burn's default is 1e-5, PyTorch's 1e-8).
    pub epsilon: f64,
    /// Decoupled weight decay (AdamW): each step also shrinks every weight by
    /// `rate * weight_decay` of itself. 0 in the tutorial.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// The tutorial's `Adam(lr=1e-3, decay=1e-3 / 200)` with Keras's other defaults.
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            decay: 1e-3 / 200.0,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// The learning rate for optimizer step `step` (counted from 0).
    pub fn rate_at(&self, step: usize) -> f64 {
        self.learning_rate / (1.0 + self.decay * step as f64)
    }

    /// The burn optimizer with these moments and epsilon.
    pub fn build(&self) -> KerasAdam {
        KerasAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
        }
    }
}

/// Adam stepping exactly as Keras does; see the module docs.
#[derive(Debug, Clone)]
pub struct KerasAdam {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    weight_decay: f64,
}

/// The scalars of one Adam update, as the burn ops of [`KerasAdam::step_ops`] see them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update {
    beta_1: f64,
    beta_2: f64,
    /// The bias-corrected step size.
    alpha: f64,
    epsilon: f64,
    /// `rate * weight_decay` (0: no decay).
    shrink: f64,
}

impl KerasAdam {
    /// The scalars of update number `time` (from 1) at learning rate `lr`.
    pub(crate) fn scalars(&self, lr: f64, time: i32) -> Update {
        let (b1, b2) = (self.beta_1, self.beta_2);
        Update {
            beta_1: b1,
            beta_2: b2,
            alpha: lr * (1.0 - b2.powi(time)).sqrt() / (1.0 - b1.powi(time)),
            epsilon: self.epsilon,
            shrink: if self.weight_decay > 0.0 {
                lr * self.weight_decay
            } else {
                0.0
            },
        }
    }

    /// One update through burn's tensor ops (any backend): ~11 ops per parameter tensor, each
    /// allocating its result.
    fn step_ops<const D: usize>(
        &self,
        u: Update,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdaptiveMomentumState<D>>,
    ) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
        let (b1, b2) = (u.beta_1, u.beta_2);
        let (moment_1, moment_2) = match state {
            Some(s) => (
                s.moment_1
                    .mul_scalar(b1)
                    .add(grad.clone().mul_scalar(1.0 - b1)),
                s.moment_2
                    .mul_scalar(b2)
                    .add(grad.square().mul_scalar(1.0 - b2)),
            ),
            None => (
                grad.clone().mul_scalar(1.0 - b1),
                grad.square().mul_scalar(1.0 - b2),
            ),
        };
        let delta = moment_1
            .clone()
            .div(moment_2.clone().sqrt().add_scalar(u.epsilon))
            .mul_scalar(u.alpha);
        let tensor = if u.shrink > 0.0 {
            let shrink = tensor.clone().mul_scalar(u.shrink);
            tensor.sub(shrink)
        } else {
            tensor
        };
        (tensor.sub(delta), moment_1, moment_2)
    }
}

/// An update's scalars rounded to f32, as flex rounds the scalars of its ops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step32 {
    b1: f32,
    b2: f32,
    keep_1: f32,
    keep_2: f32,
    alpha: f32,
    epsilon: f32,
    shrink: f32,
}

impl Step32 {
    pub(crate) fn new(u: &Update) -> Self {
        Step32 {
            b1: u.beta_1 as f32,
            b2: u.beta_2 as f32,
            keep_1: (1.0 - u.beta_1) as f32,
            keep_2: (1.0 - u.beta_2) as f32,
            alpha: u.alpha as f32,
            epsilon: u.epsilon as f32,
            shrink: u.shrink as f32,
        }
    }

    /// Updates `param` and its moments in place from `grad` (`first`: the first update, the
    /// moments' old values are not read), with the f32 operations of
    /// [`KerasAdam::step_ops`] in the same order.
    pub(crate) fn apply(
        &self,
        param: &mut [f32],
        grad: &[f32],
        moment_1: &mut [f32],
        moment_2: &mut [f32],
        first: bool,
    ) {
        let s = *self;
        for (((p, &g), m1), m2) in param.iter_mut().zip(grad).zip(moment_1).zip(moment_2) {
            if first {
                *m1 = g * s.keep_1;
                *m2 = (g * g) * s.keep_2;
            } else {
                *m1 = *m1 * s.b1 + g * s.keep_1;
                *m2 = *m2 * s.b2 + (g * g) * s.keep_2;
            }
            let delta = *m1 / (m2.sqrt() + s.epsilon) * s.alpha;
            let kept = if s.shrink > 0.0 {
                *p - *p * s.shrink
            } else {
                *p
            };
            *p = kept - delta;
        }
    }
}

/// The same update as one pass over the values on the flex CPU backend. Training the
/// tutorial's MLP is ~6,800 steps of a 129-parameter network, where each of burn's ops costs
/// far more than its arithmetic; this does every parameter tensor's update in one operation.
/// Each value goes through the same f32 operations in the same order as `KerasAdam::step_ops`
/// (scalars rounded to f32 as flex rounds them), so both give the same numbers bit for bit.
#[backend_extension(Flex)]
pub trait AdamBackend: Backend {
    /// `(param, moment_1, moment_2)` after one update; `moments` false: the first update
    /// (the moments given are ignored).
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        moments: bool,
        beta_1: f64,
        beta_2: f64,
        alpha: f64,
        epsilon: f64,
        shrink: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl AdamBackend for Flex {
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        moments: bool,
        beta_1: f64,
        beta_2: f64,
        alpha: f64,
        epsilon: f64,
        shrink: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape: Vec<usize> = param.shape().iter().copied().collect();
        let [param, grad, moment_1, moment_2] =
            [param, grad, moment_1, moment_2].map(|t| t.to_contiguous());
        fn slice(t: &FloatTensor<Flex>) -> &[f32] {
            t.as_slice::<f32>()
                .expect("a contiguous f32 tensor has a slice view")
        }
        let step = Step32::new(&Update {
            beta_1,
            beta_2,
            alpha,
            epsilon,
            shrink,
        });
        let mut p = slice(&param).to_vec();
        let (mut m1, mut m2) = if moments {
            (slice(&moment_1).to_vec(), slice(&moment_2).to_vec())
        } else {
            (vec![0.0; p.len()], vec![0.0; p.len()])
        };
        step.apply(&mut p, slice(&grad), &mut m1, &mut m2, !moments);
        let tensor =
            |v: Vec<f32>| FloatTensor::<Self>::from_data(TensorData::new(v, shape.clone()));
        (tensor(p), tensor(m1), tensor(m2))
    }
}

impl Optimizer for KerasAdam {
    // burn's own Adam state (step count and the two moments) holds exactly what Keras keeps.
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let time = state.as_ref().map_or(1, |s| s.time + 1);
        let u = self.scalars(lr, time as i32);
        let device = tensor.device();
        let (tensor, moment_1, moment_2) = if device == Device::flex() && !device.is_autodiff() {
            let moments = state.is_some();
            let (m1, m2) = match state {
                Some(s) => (s.moment_1, s.moment_2),
                // Not read on a first update.
                None => (grad.clone(), grad.clone()),
            };
            let (p, m1, m2) = <Dispatch as AdamBackend>::adam_update(
                tensor.into_dispatch(),
                grad.into_dispatch(),
                m1.into_dispatch(),
                m2.into_dispatch(),
                moments,
                u.beta_1,
                u.beta_2,
                u.alpha,
                u.epsilon,
                u.shrink,
            );
            (
                Tensor::from_dispatch(p),
                Tensor::from_dispatch(m1),
                Tensor::from_dispatch(m2),
            )
        } else {
            self.step_ops(u, tensor, grad, state)
        };
        let state = AdaptiveMomentumState {
            time,
            moment_1,
            moment_2,
            max_moment_2: None,
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.moment_1 = state.moment_1.to_device(device);
        state.moment_2 = state.moment_2.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn weight_decay_shrinks_weights_by_rate_times_decay() {
        let device = Device::flex();
        let config = AdamConfig {
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let w = Tensor::<1>::from_data(TensorData::from([1.0f32, -2.0]), &device);
        let zero = Tensor::<1>::zeros([2], &device);
        let (w1, _) = config.build().step(0.5, w, zero, None);
        assert_eq!(values(w1), vec![0.95, -1.9]);
    }

    #[test]
    fn the_fused_update_equals_burns_ops_bit_for_bit() {
        let device = Device::flex();
        let mut rng = crate::runtime::rng::SeededRng::new(4, 2);
        let mut random = |n: usize, scale: f64| {
            let v: Vec<f32> = (0..n).map(|_| rng.uniform(-scale, scale) as f32).collect();
            Tensor::<2>::from_data(TensorData::new(v, [n / 5, 5]), &device)
        };
        for weight_decay in [0.0, 0.01] {
            let adam = AdamConfig {
                weight_decay,
                ..AdamConfig::default()
            }
            .build();
            let (mut fused, mut ops) = (random(35, 1.0), None::<Tensor<2>>);
            let (mut fused_state, mut ops_state) = (None, None);
            for step in 0..4 {
                let grad = random(35, 10f64.powi(step - 2));
                let rate = AdamConfig::default().rate_at(step as usize);
                let old = ops.take().unwrap_or_else(|| fused.clone());
                let b1 = adam.beta_1;
                let u = Update {
                    beta_1: b1,
                    beta_2: adam.beta_2,
                    alpha: rate * (1.0 - adam.beta_2.powi(step + 1)).sqrt()
                        / (1.0 - b1.powi(step + 1)),
                    epsilon: adam.epsilon,
                    shrink: rate * weight_decay,
                };
                let (p, m1, m2) = adam.step_ops(u, old, grad.clone(), ops_state.take());
                ops = Some(p);
                ops_state = Some(AdaptiveMomentumState {
                    time: step as usize + 1,
                    moment_1: m1,
                    moment_2: m2,
                    max_moment_2: None,
                });
                let (p, s) = adam.step(rate, fused, grad, fused_state);
                fused = p;
                fused_state = s;
                let bits = |t: Tensor<2>| -> Vec<u32> {
                    let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
                    v.into_iter().map(f32::to_bits).collect()
                };
                assert_eq!(
                    bits(fused.clone()),
                    bits(ops.clone().unwrap()),
                    "step {step}"
                );
                let (a, b) = (fused_state.as_ref().unwrap(), ops_state.as_ref().unwrap());
                assert_eq!(bits(a.moment_2.clone()), bits(b.moment_2.clone()));
            }
        }
    }

    #[test]
    fn inverse_time_decay() {
        let c = AdamConfig::default();
        assert_eq!(c.rate_at(0), 1e-3);
        assert!((c.rate_at(200_000) - 1e-3 / 2.0).abs() < 1e-15);
    }

    /// Two steps checked against numbers worked out by hand from Keras's update rule.
    #[test]
    fn two_steps_match_hand_computed_keras_updates() {
        let device = Device::flex();
        let adam = AdamConfig::default().build();
        let w = Tensor::<1>::from_data(TensorData::from([1.0f32, -2.0]), &device);
        let g = Tensor::<1>::from_data(TensorData::from([0.5f32, -0.1]), &device);
        // Step 1: m = 0.1 g, v = 0.001 g^2, alpha = 1e-3 * sqrt(0.001) / 0.1,
        // delta = alpha * m / (sqrt(v) + 1e-7) = 1e-3 * g/|g| * |g| / (|g| + 1e-7 / sqrt(0.001)).
        let (w1, s1) = adam.step(1e-3, w, g.clone(), None);
        let e = 1e-7 / 0.001f64.sqrt();
        let expect1 = [1.0 - 1e-3 * 0.5 / (0.5 + e), -2.0 + 1e-3 * 0.1 / (0.1 + e)];
        let got1 = values(w1.clone());
        for (g, e) in got1.iter().zip(expect1) {
            assert!((f64::from(*g) - e).abs() < 1e-7, "{g} vs {e}");
        }
        // Step 2 with the same gradient: m = 0.19 g, v = 0.001999 g^2,
        // alpha = lr * sqrt(1 - 0.999^2) / (1 - 0.81).
        let lr2 = AdamConfig::default().rate_at(1);
        let (w2, s2) = adam.step(lr2, w1, g, s1);
        assert_eq!(s2.unwrap().time, 2);
        let alpha = lr2 * (1.0 - 0.999f64.powi(2)).sqrt() / (1.0 - 0.81);
        let step = |g: f64| alpha * 0.19 * g / ((0.001999 * g * g).sqrt() + 1e-7);
        let expect2 = [expect1[0] - step(0.5), expect1[1] - step(-0.1)];
        for (g, e) in values(w2).iter().zip(expect2) {
            assert!((f64::from(*g) - e).abs() < 1e-6, "{g} vs {e}");
        }
    }
}

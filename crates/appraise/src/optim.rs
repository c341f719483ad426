//! Keras's Adam, as a burn optimizer.
//!
//! burn's own Adam adds epsilon to the bias-corrected second moment (PyTorch's form); Keras adds
//! it to the raw one (`var -= lr_t * m / (sqrt(v) + eps)` with
//! `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`). The difference is tiny, but parity is the
//! point of tutorial mode, so appraise steps exactly as Keras does.

use burn::optim::{AdaptiveMomentumState, Optimizer};
use burn::tensor::{Device, Tensor};
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
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (moment_1, moment_2, time) = match state {
            Some(s) => (
                s.moment_1
                    .mul_scalar(b1)
                    .add(grad.clone().mul_scalar(1.0 - b1)),
                s.moment_2
                    .mul_scalar(b2)
                    .add(grad.square().mul_scalar(1.0 - b2)),
                s.time + 1,
            ),
            None => (
                grad.clone().mul_scalar(1.0 - b1),
                grad.square().mul_scalar(1.0 - b2),
                1,
            ),
        };
        let t = time as i32;
        let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        let delta = moment_1
            .clone()
            .div(moment_2.clone().sqrt().add_scalar(self.epsilon))
            .mul_scalar(alpha);
        let state = AdaptiveMomentumState {
            time,
            moment_1,
            moment_2,
            max_moment_2: None,
        };
        let tensor = if self.weight_decay > 0.0 {
            let shrink = tensor.clone().mul_scalar(lr * self.weight_decay);
            tensor.sub(shrink)
        } else {
            tensor
        };
        (tensor.sub(delta), Some(state))
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

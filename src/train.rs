//! Training: Keras's `model.fit` for appraise's networks, as a plain loop over burn.
//!
//! A plain loop rather than burn-train's `Learner`: the Learner adds ~40% per-step overhead on
//! this tiny network, pulls in a terminal UI stack at build time, and has no regression metrics.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::keras_mape;
use crate::model::{Mlp, MlpConfig};
use crate::optim::AdamConfig;
use crate::rng::{STREAM_INIT, STREAM_SHUFFLE, SeededRng};

/// How to train: everything Keras's `compile` and `fit` take in the tutorial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per optimizer step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seeds weight initialization and the per-epoch shuffle.
    pub seed: u64,
    /// Adam and its learning-rate decay.
    pub optimizer: AdamConfig,
}

impl Default for TrainConfig {
    /// The tutorial's `fit(epochs=200, batch_size=8)`.
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 8,
            seed: 42,
            optimizer: AdamConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Rejects settings that cannot train.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Usage("--epochs must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Usage("--batch-size must be at least 1".into()));
        }
        let lr = self.optimizer.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Usage(format!(
                "--learning-rate must be a positive number, got {lr}"
            )));
        }
        Ok(())
    }
}

/// A feature matrix with its targets, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `rows x n_features` values.
    pub features: Vec<f32>,
    /// Features per row.
    pub n_features: usize,
    /// One scaled target per row.
    pub targets: Vec<f32>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }
}

fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// One line of the training history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    /// Loss on the validation rows after the epoch.
    pub val_loss: f64,
    /// Learning rate of the epoch's last optimizer step.
    pub learning_rate: f64,
}

/// Keras's mean absolute percentage error as a differentiable loss.
pub fn mape_loss(predicted: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let denominator = target.clone().abs().clamp_min(1e-7);
    (target - predicted)
        .abs()
        .div(denominator)
        .mean()
        .mul_scalar(100.0)
}

/// Predicts the scaled targets of every row of `features` with an evaluation-mode model.
pub fn predict(model: &Mlp, features: &[f32], n_features: usize) -> Vec<f32> {
    let rows = features.len() / n_features;
    let device = Device::flex();
    let x = tensor2(features.to_vec(), rows, n_features, &device);
    model
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .expect("the model outputs f32")
}

/// Trains a fresh MLP on `train`, reporting the loss on `validation` after every epoch through
/// `on_epoch`. Returns the trained model (evaluation mode) and the history.
pub fn train_mlp(
    model_config: &MlpConfig,
    config: &TrainConfig,
    train: &Table,
    validation: &Table,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<(Mlp, Vec<EpochRecord>)> {
    config.validate()?;
    if train.rows() == 0 {
        return Err(Error::Usage("there are no training rows".into()));
    }
    let device = Device::flex().autodiff();
    let f = train.n_features;
    let mut model = model_config.init(f, &mut SeededRng::new(config.seed, STREAM_INIT), &device);
    let mut optim = ModuleOptimizer::from(config.optimizer.build());
    let mut shuffle = SeededRng::new(config.seed, STREAM_SHUFFLE);
    let mut order: Vec<usize> = (0..train.rows()).collect();
    let mut history = Vec::with_capacity(config.epochs);
    let mut step = 0usize;
    let mut batch_x = Vec::with_capacity(config.batch_size * f);
    let mut batch_y = Vec::with_capacity(config.batch_size);

    for epoch in 1..=config.epochs {
        shuffle.shuffle(&mut order);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        let mut rate = config.optimizer.rate_at(step);
        for chunk in order.chunks(config.batch_size) {
            if crate::interrupt::requested() {
                return Err(Error::Interrupted);
            }
            batch_x.clear();
            batch_y.clear();
            for &row in chunk {
                batch_x.extend_from_slice(&train.features[row * f..(row + 1) * f]);
                batch_y.push(train.targets[row]);
            }
            let x = tensor2(batch_x.clone(), chunk.len(), f, &device);
            let y = tensor2(batch_y.clone(), chunk.len(), 1, &device);
            let loss = mape_loss(model.forward(x), y);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(diverged(epoch, value));
            }
            loss_sum += value;
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            rate = config.optimizer.rate_at(step);
            model = optim.step(rate, model, grads);
            step += 1;
        }
        let val_loss = if validation.rows() == 0 {
            f64::NAN
        } else {
            let predicted = predict(&model.valid(), &validation.features, f);
            keras_mape(&validation.targets, &predicted)
        };
        if validation.rows() > 0 && !val_loss.is_finite() {
            return Err(diverged(epoch, val_loss));
        }
        let record = EpochRecord {
            epoch,
            loss: loss_sum / batches as f64,
            val_loss,
            learning_rate: rate,
        };
        on_epoch(&record);
        history.push(record);
    }
    Ok((model.valid(), history))
}

fn diverged(epoch: usize, value: f64) -> Error {
    Error::Training(format!(
        "training diverged: the loss became {value} in epoch {epoch}; no model was written. \
         Try a lower --learning-rate or a different --seed."
    ))
}

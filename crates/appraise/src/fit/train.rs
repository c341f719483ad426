//! Training: Keras's `model.fit` for appraise's networks, as a plain loop over burn.
//!
//! A plain loop rather than burn-train's `Learner`: the Learner adds ~40% per-step overhead on
//! this tiny network, pulls in a terminal UI stack at build time, and has no regression metrics.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::mpsc;

use crate::error::{Error, Result};
use crate::evaluate::metrics::keras_mape;
use crate::fit::optim::AdamConfig;
use crate::models::{ModelSpec, Network};
use crate::photos::montage::SIDE;
use crate::runtime::cancel::Cancel;
use crate::runtime::device::Compute;
use crate::runtime::rng::{STREAM_DROPOUT, STREAM_INIT, STREAM_SHUFFLE, SeededRng};

pub mod fused_mlp;
pub mod fused_photo;
use fused_mlp::FusedMlp;
use fused_photo::FusedPhoto;

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
    /// What training minimizes.
    pub loss: Loss,
    /// Stop when the validation loss has not improved for this many epochs, and keep the
    /// model of the best epoch (`None`, the tutorial: train every epoch, keep the last).
    pub patience: Option<usize>,
    /// Where the network trains: the run's [`crate::runtime::context::Context`]'s, not saved.
    #[serde(skip)]
    pub(crate) compute: Compute,
    /// The run's stop flag (its context's), checked before every optimizer step; not saved.
    #[serde(skip)]
    pub(crate) cancel: Cancel,
}

/// A training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Keras's mean absolute percentage error of the targets (the tutorial's).
    #[default]
    Mape,
    /// Mean absolute error of the targets (for log-price targets: close to relative error).
    Mae,
}

impl Loss {
    /// The loss of `predicted` against `target`, differentiable.
    pub fn tensor(self, predicted: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        match self {
            Loss::Mape => mape_loss(predicted, target),
            Loss::Mae => (target - predicted).abs().mean(),
        }
    }

    /// The same loss computed on plain numbers (for validation).
    pub fn value(self, target: &[f32], predicted: &[f32]) -> f64 {
        match self {
            Loss::Mape => keras_mape(target, predicted),
            Loss::Mae => {
                let sum: f64 = target
                    .iter()
                    .zip(predicted)
                    .map(|(t, p)| f64::from((t - p).abs()))
                    .sum();
                sum / target.len().max(1) as f64
            }
        }
    }
}

impl Default for TrainConfig {
    /// The tutorial's `fit(epochs=200, batch_size=8)`.
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 8,
            seed: 42,
            optimizer: AdamConfig::default(),
            loss: Loss::Mape,
            patience: None,
            compute: Compute::Cpu,
            cancel: Cancel::default(),
        }
    }
}

impl TrainConfig {
    /// Rejects settings that cannot train.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Usage("`epochs` must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Usage("`batch_size` must be at least 1".into()));
        }
        if self.patience == Some(0) {
            return Err(Error::Usage("patience must be at least 1 epoch".into()));
        }
        let lr = self.optimizer.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Usage(format!(
                "`learning_rate` must be a positive number, got {lr}"
            )));
        }
        Ok(())
    }
}

/// Values of one montage as the networks read it: 3 x 64 x 64, channels first, in [0, 1].
pub const IMAGE_LEN: usize = 3 * SIDE * SIDE;

/// A feature matrix with its targets, row-major, and the rows' montages for photo models.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `rows x n_features` values.
    pub features: Vec<f32>,
    /// Features per row.
    pub n_features: usize,
    /// One scaled target per row.
    pub targets: Vec<f32>,
    /// `rows x IMAGE_LEN` montage values, or empty when the model reads no photos.
    pub images: Vec<f32>,
}

/// One optimizer step's rows, borrowed from a [`Table`]'s layout.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `rows x n_features` values.
    pub features: &'a [f32],
    /// Features per row.
    pub n_features: usize,
    /// `rows x IMAGE_LEN` montage values, or empty for a model that reads no photos.
    pub images: &'a [f32],
    /// One scaled target per row.
    pub targets: &'a [f32],
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }

    /// The given rows, in that order (with their montages when the table has them).
    pub fn subset(&self, rows: &[usize]) -> Table {
        let f = self.n_features;
        let images = if self.images.is_empty() {
            Vec::new()
        } else {
            rows.iter()
                .flat_map(|&r| {
                    self.images[r * IMAGE_LEN..(r + 1) * IMAGE_LEN]
                        .iter()
                        .copied()
                })
                .collect()
        };
        Table {
            features: rows
                .iter()
                .flat_map(|&r| self.features[r * f..(r + 1) * f].iter().copied())
                .collect(),
            n_features: f,
            targets: rows.iter().map(|&r| self.targets[r]).collect(),
            images,
        }
    }
}

/// Each row's output from a network that did not see it: one network of kind `spec` per
/// fold of `folds` (positions into `table`), trained on the fold's training rows with
/// `config` (each from its own seed, derived from `config.seed`, in parallel; the result does
/// not depend on scheduling) and applied to its held-out rows. The price ranges of the
/// tutorial's networks are calibrated on these outputs.
pub fn out_of_fold(
    spec: &ModelSpec,
    config: &TrainConfig,
    table: &Table,
    folds: &[crate::data::split::Split],
) -> Result<Vec<f32>> {
    // No validation rows: nothing here stops early, and scoring each epoch would only cost.
    let none = Table {
        features: Vec::new(),
        n_features: table.n_features,
        targets: Vec::new(),
        images: Vec::new(),
    };
    // As many folds at a time as there are cores: more would not train faster.
    let at_once = std::thread::available_parallelism().map_or(1, usize::from);
    let mut outcomes: Vec<Result<(Network, Vec<EpochRecord>)>> = Vec::with_capacity(folds.len());
    for (chunk, start) in folds.chunks(at_once).zip((0..).step_by(at_once)) {
        let none = &none;
        outcomes.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, fold)| {
                    let member = TrainConfig {
                        seed: config
                            .seed
                            .wrapping_mul(7919)
                            .wrapping_add(1 + (start + i) as u64),
                        // As many optimizer steps as the final network takes on all rows.
                        // (Equal epochs made the fold networks weaker than the final one and the
                        // ranges wider: 86.7% against 84.4% at 80% on synthetic houses.)
                        epochs: (config.epochs * table.rows()).div_ceil(fold.train.len().max(1)),
                        ..config.clone()
                    };
                    scope.spawn(move || {
                        train_rows(spec, &member, table, Some(&fold.train), none, |_| {})
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no training thread panics"))
                .collect::<Vec<_>>()
        }));
    }
    let mut outputs = vec![f32::NAN; table.rows()];
    for (fold, outcome) in folds.iter().zip(outcomes) {
        let (network, _) = outcome?;
        let held_out = table.subset(&fold.test);
        let scaled = predict(
            &network,
            &held_out.features,
            held_out.n_features,
            &held_out.images,
        );
        for (&row, s) in fold.test.iter().zip(scaled) {
            outputs[row] = s;
        }
    }
    Ok(outputs)
}

fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// `rows` montages as a `[rows, 3, 64, 64]` tensor, or `None` when there are none.
fn images4(values: &[f32], rows: usize, device: &Device) -> Option<Tensor<4>> {
    (!values.is_empty()).then(|| {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [rows, 3, SIDE, SIDE]),
            device,
        )
    })
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

/// Rows per forward pass of an attribute network when predicting: bounds memory on large
/// inputs. Callers that split rows themselves split at this size, so that a row's price
/// does not depend on how its rows were split.
pub const MLP_PREDICT_CHUNK: usize = 65_536;

/// Rows per forward pass when predicting: bounds memory on large inputs.
fn predict_chunk(model: &Network) -> usize {
    match model {
        Network::Mlp(_) => MLP_PREDICT_CHUNK,
        // Activations of a 64x64 montage take ~0.3 MB.
        _ => 256,
    }
}

/// Predicts the scaled targets of every row with an evaluation-mode model. `images` holds
/// the rows' montages for photo models and is empty otherwise.
pub fn predict(model: &Network, features: &[f32], n_features: usize, images: &[f32]) -> Vec<f32> {
    crate::runtime::float_mode::flush_denormals();
    let rows = features
        .len()
        .checked_div(n_features)
        .unwrap_or(images.len() / IMAGE_LEN);
    // Where the network's weights are: the training device, or the CPU for a loaded file.
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex);
    let chunk = predict_chunk(model);
    let mut out = Vec::with_capacity(rows);
    for start in (0..rows).step_by(chunk) {
        let end = (start + chunk).min(rows);
        // A lone row goes through the network twice over: a one-row matrix product takes
        // another path in the backend, whose sums round differently, and a house's price
        // must not depend on which houses are priced with it.
        let copies = if end - start == 1 { 2 } else { 1 };
        let x = tensor2(
            features[start * n_features..end * n_features].repeat(copies),
            (end - start) * copies,
            n_features,
            &device,
        );
        let images = if images.is_empty() {
            None
        } else {
            images4(
                &images[start * IMAGE_LEN..end * IMAGE_LEN].repeat(copies),
                (end - start) * copies,
                &device,
            )
        };
        let predicted = model.forward(x, images, None);
        let predicted = predicted
            .into_data()
            .try_to_vec::<f32>()
            .expect("the model outputs f32");
        out.extend_from_slice(&predicted[..end - start]);
    }
    out
}

/// Trains a fresh network of kind `spec` on `train`, reporting the loss on `validation` after
/// every epoch through `on_epoch`. Returns the trained model (evaluation mode) and the history.
///
/// Photo models score the validation rows on a second thread, on a snapshot of the model taken
/// at the end of each epoch, while the next epoch trains: the flex backend keeps two cores only
/// ~65% busy on a batch of 8, so the evaluation (a tenth of an epoch's work) fits in the gaps.
/// The numbers are the same as evaluating in line; only `on_epoch` may hear of an epoch late.
pub fn train(
    spec: &ModelSpec,
    config: &TrainConfig,
    train: &Table,
    validation: &Table,
    on_epoch: impl FnMut(&EpochRecord),
) -> Result<(Network, Vec<EpochRecord>)> {
    train_rows(spec, config, train, None, validation, on_epoch)
}

/// [`train`] on the rows `rows` of `train` (all of them for `None`), read in place: the
/// same network, bit for bit, as training on `train.subset(rows)`, without that copy (a
/// fold of a million-row table is hundreds of megabytes).
pub fn train_rows(
    spec: &ModelSpec,
    config: &TrainConfig,
    train: &Table,
    rows: Option<&[usize]>,
    validation: &Table,
    on_epoch: impl FnMut(&EpochRecord),
) -> Result<(Network, Vec<EpochRecord>)> {
    train_with(spec, config, train, rows, validation, on_epoch, true)
}

/// [`train_rows`]; `fuse`: whether on the CPU the attribute network may train through
/// [`FusedMlp`] (the same numbers as burn's ops, ~20x faster) and the photo networks through
/// [`FusedPhoto`] (the same to float rounding, ~20% faster).
fn train_with(
    spec: &ModelSpec,
    config: &TrainConfig,
    train: &Table,
    rows: Option<&[usize]>,
    validation: &Table,
    mut on_epoch: impl FnMut(&EpochRecord),
    fuse: bool,
) -> Result<(Network, Vec<EpochRecord>)> {
    crate::runtime::float_mode::flush_denormals();
    config.validate()?;
    spec.validate().map_err(Error::Usage)?;
    // The shuffle permutes positions, whatever they hold, so these rows are visited in the
    // same order as the rows of a copy would be.
    let order: Vec<usize> = rows.map_or_else(|| (0..train.rows()).collect(), <[usize]>::to_vec);
    if order.is_empty() {
        return Err(Error::Usage("there are no training rows".into()));
    }
    let photos = spec.uses_photos();
    if photos
        && (train.images.len() != train.rows() * IMAGE_LEN
            || validation.images.len() != validation.rows() * IMAGE_LEN)
    {
        return Err(Error::Usage(format!(
            "the {} model needs every house's photos",
            spec.name()
        )));
    }
    let device = config.compute.device()?.autodiff();
    let model = spec.init(
        train.n_features,
        &mut SeededRng::new(config.seed, STREAM_INIT),
        &device,
    );
    let fused = match &model {
        Network::Mlp(mlp) if fuse && config.compute == Compute::Cpu => FusedMlp::new(mlp),
        _ => None,
    };
    let fused_photo = match &model {
        Network::Cnn(_) | Network::Mixed(_) if fuse && config.compute == Compute::Cpu => {
            FusedPhoto::new(&model)
        }
        _ => None,
    };
    let mut trainer = Trainer {
        config,
        table: train,
        model: Some(model),
        fused,
        fused_photo,
        optim: ModuleOptimizer::from(config.optimizer.build()),
        shuffle: SeededRng::new(config.seed, STREAM_SHUFFLE),
        dropout: SeededRng::new(config.seed, STREAM_DROPOUT),
        order,
        step: 0,
        device,
    };
    let score = |model: &Network| {
        if validation.rows() == 0 {
            return f64::NAN;
        }
        let predicted = predict(
            model,
            &validation.features,
            validation.n_features,
            &validation.images,
        );
        config.loss.value(&validation.targets, &predicted)
    };
    let mut history = Vec::with_capacity(config.epochs);
    // The best epoch's model, kept when stopping early.
    let mut best: Option<(f64, usize, Network)> = None;
    let mut finish = |epoch: usize,
                      (loss, learning_rate): (f64, f64),
                      val_loss: f64,
                      model: Network|
     -> Result<Flow> {
        if validation.rows() > 0 && !val_loss.is_finite() {
            return Err(diverged(epoch, val_loss));
        }
        let record = EpochRecord {
            epoch,
            loss,
            val_loss,
            learning_rate,
        };
        on_epoch(&record);
        history.push(record);
        let Some(patience) = config.patience else {
            return Ok(Flow::Continue);
        };
        if best.as_ref().is_none_or(|(b, _, _)| val_loss < *b) {
            best = Some((val_loss, epoch, model));
        }
        let best_epoch = best.as_ref().map_or(epoch, |(_, e, _)| *e);
        Ok(if epoch - best_epoch >= patience {
            Flow::Stop
        } else {
            Flow::Continue
        })
    };
    if !photos {
        for epoch in 1..=config.epochs {
            let losses = trainer.epoch(epoch)?;
            let model = trainer.snapshot();
            let val_loss = score(&model);
            if finish(epoch, losses, val_loss, model)? == Flow::Stop {
                break;
            }
        }
    } else {
        std::thread::scope(|scope| -> Result<()> {
            let (snapshots, inbox) = mpsc::channel::<(usize, (f64, f64), Network)>();
            let (scores, results) = mpsc::channel();
            scope.spawn(move || {
                for (epoch, losses, model) in inbox {
                    let val_loss = rayon::scope(|_| score(&model));
                    if scores.send((epoch, losses, val_loss, model)).is_err() {
                        break;
                    }
                }
            });
            let mut stopped = false;
            for epoch in 1..=config.epochs {
                // Inside rayon's pool, flex's parallel loops start on the calling worker
                // instead of being injected from outside and waited for: 10 epochs of
                // Part 2 took 14% less time measured this way.
                let losses = rayon::scope(|_| trainer.epoch(epoch))?;
                snapshots
                    .send((epoch, losses, trainer.snapshot()))
                    .expect("the evaluation thread runs until the snapshots end");
                while let Ok((epoch, losses, val_loss, model)) = results.try_recv() {
                    // Epochs after the stopping point are ignored, so that where training
                    // stops never depends on thread timing.
                    if !stopped {
                        stopped = finish(epoch, losses, val_loss, model)? == Flow::Stop;
                    }
                }
                if stopped {
                    break;
                }
            }
            drop(snapshots);
            for (epoch, losses, val_loss, model) in results {
                if !stopped {
                    stopped = finish(epoch, losses, val_loss, model)? == Flow::Stop;
                }
            }
            Ok(())
        })?;
    }
    // The history keeps the epochs after the best one: they show why training stopped.
    let model = match best {
        Some((_, _, model)) => model,
        None => trainer.snapshot(),
    };
    Ok((model, history))
}

/// Whether training goes on after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The state of a training run between epochs.
struct Trainer<'a> {
    config: &'a TrainConfig,
    table: &'a Table,
    /// Always `Some` between steps (the optimizer takes the model by value); its weights are
    /// stale while `fused` trains.
    model: Option<Network>,
    /// The attribute network's fused CPU step, which then holds the weights.
    fused: Option<FusedMlp>,
    /// The photo networks' fused CPU step, which then holds the weights.
    fused_photo: Option<FusedPhoto>,
    optim: ModuleOptimizer,
    shuffle: SeededRng,
    dropout: SeededRng,
    order: Vec<usize>,
    step: usize,
    device: Device,
}

impl Trainer<'_> {
    /// One pass over the shuffled training rows; returns the mean loss and the last step's
    /// learning rate.
    fn epoch(&mut self, epoch: usize) -> Result<(f64, f64)> {
        let (table, config) = (self.table, self.config);
        let f = table.n_features;
        let photos = !table.images.is_empty();
        self.shuffle.shuffle(&mut self.order);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        let mut rate = config.optimizer.rate_at(self.step);
        let mut batch_x = Vec::with_capacity(config.batch_size * f);
        let mut batch_y = Vec::with_capacity(config.batch_size);
        let mut batch_images = Vec::new();
        for chunk in self.order.chunks(config.batch_size) {
            config.cancel.check()?;
            batch_x.clear();
            batch_y.clear();
            batch_images.clear();
            for &row in chunk {
                batch_x.extend_from_slice(&table.features[row * f..(row + 1) * f]);
                batch_y.push(table.targets[row]);
                if photos {
                    batch_images
                        .extend_from_slice(&table.images[row * IMAGE_LEN..(row + 1) * IMAGE_LEN]);
                }
            }
            rate = config.optimizer.rate_at(self.step);
            let fused_loss = if let Some(fused) = &mut self.fused {
                Some(fused.step(&batch_x, &batch_y, config.loss, &config.optimizer, rate))
            } else {
                self.fused_photo.as_mut().map(|fused| {
                    let batch = Batch {
                        features: &batch_x,
                        n_features: f,
                        images: &batch_images,
                        targets: &batch_y,
                    };
                    fused.step(
                        &batch,
                        config.loss,
                        &config.optimizer,
                        rate,
                        &mut self.dropout,
                    )
                })
            };
            if let Some(value) = fused_loss {
                let value = f64::from(value);
                if !value.is_finite() {
                    return Err(diverged(epoch, value));
                }
                loss_sum += value;
                batches += 1;
                self.step += 1;
                continue;
            }
            let x = tensor2(batch_x.clone(), chunk.len(), f, &self.device);
            let y = tensor2(batch_y.clone(), chunk.len(), 1, &self.device);
            let images = images4(&batch_images, chunk.len(), &self.device);
            let model = self.model.take().expect("a model between steps");
            let loss = config
                .loss
                .tensor(model.forward(x, images, Some(&mut self.dropout)), y);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(diverged(epoch, value));
            }
            loss_sum += value;
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            self.model = Some(self.optim.step(rate, model, grads));
            self.step += 1;
        }
        Ok((loss_sum / batches as f64, rate))
    }

    /// The model as it is now, in evaluation mode.
    fn snapshot(&self) -> Network {
        if let Some(fused) = &self.fused {
            return Network::Mlp(fused.to_mlp(&Device::flex()));
        }
        if let Some(fused) = &self.fused_photo {
            return fused.network();
        }
        self.model.as_ref().expect("a model between steps").valid()
    }
}

fn diverged(epoch: usize, value: f64) -> Error {
    Error::Training(format!(
        "training diverged: the loss became {value} in epoch {epoch}; no model was written. \
         Try a lower --learning-rate or a different --seed."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MlpConfig;

    /// y = 2x on 40 rows; validation on 10 more.
    fn tables() -> (Table, Table) {
        let table = |xs: std::ops::Range<usize>| {
            let features: Vec<f32> = xs.clone().map(|i| i as f32 / 50.0).collect();
            Table {
                targets: features.iter().map(|x| 1.0 + 2.0 * x).collect(),
                features,
                n_features: 1,
                images: Vec::new(),
            }
        };
        (table(0..40), table(40..50))
    }

    #[test]
    fn a_rows_prediction_does_not_depend_on_the_rows_priced_with_it() {
        let mut rng = SeededRng::new(7, 0);
        let values = |n: usize, rng: &mut SeededRng| -> Vec<f32> {
            (0..n).map(|_| rng.uniform(0.0, 1.0) as f32).collect()
        };
        for spec in [
            ModelSpec::Mlp(MlpConfig::default()),
            ModelSpec::Cnn(Default::default()),
            ModelSpec::Mixed(Default::default()),
        ] {
            let network = spec
                .init(5, &mut SeededRng::new(1, STREAM_INIT), &Device::flex())
                .valid();
            let rows = 40;
            let features = values(rows * 5, &mut rng);
            let images = if spec.uses_photos() {
                values(rows * IMAGE_LEN, &mut rng)
            } else {
                Vec::new()
            };
            let together = predict(&network, &features, 5, &images);
            // Alone, and in a pair.
            let pair = predict(
                &network,
                &features[5..15],
                5,
                images.get(IMAGE_LEN..3 * IMAGE_LEN).unwrap_or(&[]),
            );
            assert_eq!(pair, together[1..3], "{}", spec.name());
            for r in 0..rows {
                let image = if images.is_empty() {
                    &[][..]
                } else {
                    &images[r * IMAGE_LEN..(r + 1) * IMAGE_LEN]
                };
                let alone = predict(&network, &features[r * 5..(r + 1) * 5], 5, image);
                assert_eq!(
                    alone[0].to_bits(),
                    together[r].to_bits(),
                    "{} row {r}",
                    spec.name()
                );
            }
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch_and_stops() {
        let (train_rows, validation) = tables();
        let spec = ModelSpec::Mlp(MlpConfig { hidden: vec![4] });
        let config = TrainConfig {
            epochs: 500,
            patience: Some(3),
            loss: Loss::Mae,
            ..TrainConfig::default()
        };
        let (model, history) = train(&spec, &config, &train_rows, &validation, |_| {}).unwrap();
        assert!(history.len() < 500, "never stopped");
        let best = history
            .iter()
            .map(|r| r.val_loss)
            .fold(f64::INFINITY, f64::min);
        // Stopped exactly `patience` epochs after the best one.
        let best_epoch = history.iter().position(|r| r.val_loss == best).unwrap() + 1;
        assert_eq!(history.len(), best_epoch + 3);
        // The returned model is the best epoch's.
        let predicted = predict(&model, &validation.features, 1, &[]);
        let val = Loss::Mae.value(&validation.targets, &predicted);
        assert!((val - best).abs() < 1e-6, "{val} vs {best}");
    }

    fn weights(network: &Network) -> Vec<Vec<f32>> {
        let Network::Mlp(mlp) = network else {
            panic!("an attribute network")
        };
        mlp.layers
            .iter()
            .flat_map(|l| {
                [
                    l.weight.val().flatten::<1>(0, 1),
                    l.bias.as_ref().unwrap().val(),
                ]
            })
            .map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn the_fused_step_trains_the_same_network_as_burns_ops_bit_for_bit() {
        // 45 rows: the last batch of 8 is short; features of mixed sign so some ReLUs die.
        let mut rng = SeededRng::new(9, 3);
        let rows = 45;
        let features: Vec<f32> = (0..rows * 3)
            .map(|_| rng.uniform(-1.0, 1.0) as f32)
            .collect();
        let targets: Vec<f32> = features
            .chunks(3)
            .map(|x| 1.0 + x[0] * 0.5 - x[1] * x[2] + 0.1 * x[2].abs())
            .collect();
        let table = Table {
            features,
            n_features: 3,
            targets,
            images: Vec::new(),
        };
        let validation = table.subset(&(0..10).collect::<Vec<_>>());
        for (hidden, loss, weight_decay, batch_size) in [
            (vec![8, 4], Loss::Mape, 0.0, 8),
            (vec![6], Loss::Mae, 0.01, 5),
            (vec![16, 8, 4], Loss::Mape, 0.0, 45),
        ] {
            let spec = ModelSpec::Mlp(MlpConfig { hidden });
            let config = TrainConfig {
                epochs: 12,
                batch_size,
                loss,
                seed: 3,
                optimizer: AdamConfig {
                    weight_decay,
                    learning_rate: 1e-2,
                    ..AdamConfig::default()
                },
                ..TrainConfig::default()
            };
            let run =
                |fuse| train_with(&spec, &config, &table, None, &validation, |_| {}, fuse).unwrap();
            let (fused, fused_history) = run(true);
            let (reference, reference_history) = run(false);
            assert_eq!(weights(&fused), weights(&reference), "{spec:?} {loss:?}");
            assert_eq!(fused_history, reference_history, "{batch_size}");
            // And training moved the weights: the comparison is not of two fresh networks.
            let fresh = spec.init(3, &mut SeededRng::new(3, STREAM_INIT), &Device::flex());
            assert_ne!(weights(&fused), weights(&fresh));
        }
    }

    #[test]
    fn a_cancelled_run_stops_before_its_first_step() {
        let (train_rows, validation) = tables();
        let spec = ModelSpec::Mlp(MlpConfig::default());
        let config = TrainConfig::default();
        config.cancel.cancel();
        for fuse in [true, false] {
            let outcome = train_with(&spec, &config, &train_rows, None, &validation, |_| {}, fuse);
            assert!(matches!(outcome, Err(Error::Interrupted)));
        }
        // A fresh configuration is not cancelled by that one.
        assert!(
            train(
                &spec,
                &TrainConfig {
                    epochs: 1,
                    ..TrainConfig::default()
                },
                &train_rows,
                &validation,
                |_| {}
            )
            .is_ok()
        );
    }

    #[test]
    fn losses_agree_between_tensors_and_numbers() {
        let device = Device::flex();
        let (p, t) = ([1.0f32, 3.0], [2.0f32, 2.0]);
        for loss in [Loss::Mape, Loss::Mae] {
            let tensor = loss.tensor(
                tensor2(p.to_vec(), 2, 1, &device),
                tensor2(t.to_vec(), 2, 1, &device),
            );
            let value = loss.value(&t, &p);
            assert!((f64::from(tensor.into_scalar::<f32>()) - value).abs() < 1e-4);
        }
        assert_eq!(Loss::Mae.value(&t, &p), 1.0);
    }
}

//! The recipe's pieces beside its fit ([`crate::fit::tabular`]): which photo inputs it may
//! read, the price factor that minimizes the MAPE, and the networks of the inner folds.

use serde::{Deserialize, Serialize};

use crate::data::split::Split;
use crate::error::Result;
use crate::fit::train::{EpochRecord, Table, TrainConfig, predict, train_rows};
use crate::models::{ModelSpec, Network};

/// Whether the recipe may use the photos (the photo price, and the front photo's manufactured-home score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoUse {
    /// Let the inner cross-validation decide (the photos are used only if they help).
    #[default]
    Auto,
    /// Attributes only; photos are not read.
    Off,
    /// Always use the photo score.
    On,
}

/// Which photo inputs a recipe candidate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhotoSet {
    /// The frontal photo's manufactured-home score.
    pub score: bool,
    /// The photo price head's prediction.
    pub price: bool,
}

impl PhotoSet {
    /// Whether it reads any photo input.
    pub(crate) fn any(self) -> bool {
        self.score || self.price
    }
}

/// The factor `c` that minimizes the MAPE of `c * predicted`: the median of
/// `actual / predicted` weighted by `predicted / actual`. (The MAPE is convex and piecewise
/// linear in `c`; its slope rises by `2 * predicted / actual` as `c` passes each house's ratio,
/// so it turns upward where half of the total weight is passed.)
pub(crate) fn mape_factor(actual: &[f64], predicted: &[f64]) -> f64 {
    let mut ratios: Vec<(f64, f64)> = actual
        .iter()
        .zip(predicted)
        .filter(|&(&a, &p)| a > 0.0 && p > 0.0 && p.is_finite())
        .map(|(a, p)| (a / p, p / a))
        .collect();
    ratios.sort_by(|x, y| x.0.total_cmp(&y.0));
    let half = ratios.iter().map(|r| r.1).sum::<f64>() / 2.0;
    let mut seen = 0.0;
    for &(ratio, weight) in &ratios {
        seen += weight;
        if seen >= half {
            return ratio;
        }
    }
    1.0
}

/// Trains `seeds_per_fold` networks on each fold's training rows, with early stopping on its
/// held-out rows. Returns the networks (fold by fold), the first one's history, and each
/// row's mean network output over its held-out fold's networks.
pub(crate) fn train_fold_networks(
    spec: &ModelSpec,
    train_config: &TrainConfig,
    table: &Table,
    folds: &[Split],
    seeds_per_fold: usize,
) -> Result<(Vec<Network>, Vec<EpochRecord>, Vec<f32>)> {
    let jobs: Vec<(usize, usize)> = (0..folds.len())
        .flat_map(|k| (0..seeds_per_fold).map(move |r| (k, r)))
        .collect();
    // The networks train in parallel; each has its own seed, so the result does not depend
    // on scheduling.
    let outcomes: Vec<Result<(Network, Vec<EpochRecord>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(k, r)| {
                // Seed r = 0 keeps the seeds of a one-network-per-fold recipe.
                let member = TrainConfig {
                    seed: train_config
                        .seed
                        .wrapping_mul(1000)
                        .wrapping_add(k as u64)
                        .wrapping_add(100 * r as u64),
                    ..train_config.clone()
                };
                let fold = &folds[k];
                scope.spawn(move || {
                    train_rows(
                        spec,
                        &member,
                        table,
                        Some(&fold.train),
                        &table.subset(&fold.test),
                        |_| {},
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no training thread panics"))
            .collect()
    });
    let mut networks = Vec::with_capacity(jobs.len());
    let mut first_history = Vec::new();
    let mut held_out_sum = vec![0.0f64; table.targets.len()];
    for (&(k, _), outcome) in jobs.iter().zip(outcomes) {
        let (network, history) = outcome?;
        let fold = &folds[k];
        let held_out = table.subset(&fold.test);
        let scaled = predict(&network, &held_out.features, held_out.n_features, &[]);
        for (&row, s) in fold.test.iter().zip(scaled) {
            held_out_sum[row] += f64::from(s);
        }
        if first_history.is_empty() {
            first_history = history;
        }
        networks.push(network);
    }
    let mean_held_out = held_out_sum
        .iter()
        .map(|sum| (sum / seeds_per_fold as f64) as f32)
        .collect();
    Ok((networks, first_history, mean_held_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::metrics::Metrics;

    #[test]
    fn the_price_factor_minimizes_the_mape() {
        let actual = [100.0, 200.0, 300.0, 50.0, 400.0];
        let predicted = [120.0, 190.0, 360.0, 90.0, 380.0];
        let c = mape_factor(&actual, &predicted);
        let mape = |c: f64| Metrics::compute(&actual, &predicted.map(|p| p * c)).mape;
        // No factor on a fine grid does better.
        for k in 500..1500 {
            assert!(mape(c) <= mape(f64::from(k) / 1000.0) + 1e-9, "{c} vs {k}");
        }
        // Overpriced cheap houses pull the factor below 1.
        assert!(c < 1.0, "{c}");
        assert_eq!(mape_factor(&[], &[]), 1.0);
    }
}

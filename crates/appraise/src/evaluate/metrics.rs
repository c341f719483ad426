//! How good the predictions are, in the tutorial's terms and a few more.

use serde::{Deserialize, Deserializer, Serialize};

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Keras's mean absolute percentage error on scaled values:
/// `100 * mean(|y - p| / max(|y|, 1e-7))`.
pub fn keras_mape(actual: &[f32], predicted: &[f32]) -> f64 {
    let sum: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(&y, &p)| f64::from((y - p).abs() / y.abs().max(1e-7)))
        .sum();
    100.0 * sum / actual.len() as f64
}

/// Absolute percentage error of one prediction, as the tutorial computes it:
/// `|(pred - actual) / actual| * 100`.
pub fn abs_pct_error(actual: f64, predicted: f64) -> f64 {
    ((predicted - actual) / actual * 100.0).abs()
}

/// Scores of a set of price predictions (in dollars).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of houses scored.
    pub count: usize,
    /// Mean absolute percentage error (the tutorial's "mean").
    #[serde(deserialize_with = "nan_if_null")]
    pub mape: f64,
    /// Population standard deviation of the absolute percentage errors (the tutorial's "std").
    #[serde(deserialize_with = "nan_if_null")]
    pub ape_std: f64,
    /// Median absolute percentage error.
    #[serde(deserialize_with = "nan_if_null")]
    pub median_ape: f64,
    /// Largest absolute percentage error.
    #[serde(deserialize_with = "nan_if_null")]
    pub max_ape: f64,
    /// Mean absolute error in dollars.
    #[serde(deserialize_with = "nan_if_null")]
    pub mae: f64,
    /// Root mean squared error in dollars.
    #[serde(deserialize_with = "nan_if_null")]
    pub rmse: f64,
    /// Coefficient of determination.
    #[serde(deserialize_with = "nan_if_null")]
    pub r2: f64,
}

impl Metrics {
    /// Scores `predicted` against `actual` (both in dollars, same length, at least one).
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Self {
        let n = actual.len() as f64;
        let mut apes: Vec<f64> = actual
            .iter()
            .zip(predicted)
            .map(|(&a, &p)| abs_pct_error(a, p))
            .collect();
        let (mape, ape_std) = crate::evaluate::stats::mean_std(&apes);
        apes.sort_by(f64::total_cmp);
        let mid = apes.len() / 2;
        let median_ape = if apes.len() % 2 == 1 {
            apes[mid]
        } else {
            (apes[mid - 1] + apes[mid]) / 2.0
        };
        let max_ape = apes.last().copied().unwrap_or(f64::NAN);
        let mae = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum::<f64>()
            / n;
        let sse: f64 = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).powi(2))
            .sum();
        let mean_actual = actual.iter().sum::<f64>() / n;
        let sst: f64 = actual.iter().map(|a| (a - mean_actual).powi(2)).sum();
        Self {
            count: actual.len(),
            mape,
            ape_std,
            median_ape,
            max_ape,
            mae,
            rmse: (sse / n).sqrt(),
            r2: 1.0 - sse / sst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_mape_matches_definition() {
        assert!((keras_mape(&[1.0, 2.0], &[1.5, 1.0]) - 50.0).abs() < 1e-9);
        // A zero target is guarded by 1e-7, not a division by zero.
        assert!(keras_mape(&[0.0], &[1e-7]).is_finite());
    }

    #[test]
    fn metrics_by_hand() {
        let m = Metrics::compute(&[100.0, 200.0, 400.0], &[110.0, 150.0, 400.0]);
        assert_eq!(m.count, 3);
        assert!((m.mape - 35.0 / 3.0).abs() < 1e-12);
        let mean = 35.0 / 3.0;
        let std =
            (((10.0 - mean) * (10.0f64 - mean) + (25.0 - mean) * (25.0 - mean) + mean * mean)
                / 3.0)
                .sqrt();
        assert!((m.ape_std - std).abs() < 1e-12);
        assert_eq!(m.median_ape, 10.0);
        assert_eq!(m.max_ape, 25.0);
        assert!((m.mae - 20.0).abs() < 1e-12);
        assert!((m.rmse - (2600.0f64 / 3.0).sqrt()).abs() < 1e-9);
        let sst = (100.0f64 - 700.0 / 3.0).powi(2)
            + (200.0f64 - 700.0 / 3.0).powi(2)
            + (400.0f64 - 700.0 / 3.0).powi(2);
        assert!((m.r2 - (1.0 - 2600.0 / sst)).abs() < 1e-12);
    }
}

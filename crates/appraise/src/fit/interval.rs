//! Price ranges: split-conformal intervals on the log-price scale, calibrated on out-of-fold
//! errors of the training rows (the recipe's inner cross-validation makes them anyway).
//!
//! Errors here are relative (a $2M house is off by more dollars than a $200k one), so a
//! calibration error is `ln(actual / predicted)`, and a range is `predicted * exp(q)` for the
//! error quantiles `q` of its level. With n calibration errors sorted, the upper end at level
//! p is the error of rank ceil((n + 1)(1 + p) / 2) and the lower end that of rank
//! floor((n + 1)(1 - p) / 2) (clamped to the extremes): the finite-sample correction of split
//! conformal prediction, so a range covers at least p of new houses drawn like the training
//! ones.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The out-of-fold errors a model's ranges come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// `ln(actual / predicted)` of each training row's out-of-fold price, sorted.
    pub errors: Vec<f64>,
}

/// The range levels `train`, `evaluate` and `cv` report.
pub const REPORTED_LEVELS: [f64; 2] = [0.8, 0.9];

/// How the tutorial's networks get their price ranges: a K-fold pass over the training rows,
/// one extra network per fold, whose out-of-fold prices calibrate the ranges (the recipe's
/// own inner cross-validation calibrates its ranges instead, at no extra cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeConfig {
    /// Folds of the calibration pass: 0 for no ranges; `None` for the default, 5 for
    /// attribute networks and none for photo networks (each fold retrains the network, and a
    /// photo network's training takes minutes).
    pub folds: Option<usize>,
}

/// Folds of the calibration pass of attribute networks, by default.
pub const DEFAULT_FOLDS: usize = 5;

impl RangeConfig {
    /// The folds of the calibration pass over `rows` training rows for a network that does
    /// (or does not) read photos; 0 for none. Never more folds than rows (a tiny table gets
    /// one fold per row), and none below two rows.
    pub fn folds(&self, reads_photos: bool, rows: usize) -> usize {
        let folds = self
            .folds
            .unwrap_or(if reads_photos { 0 } else { DEFAULT_FOLDS });
        if rows < 2 { 0 } else { folds.min(rows) }
    }

    /// Rejects a pass of one fold (nothing would be held out).
    pub fn validate(&self) -> Result<()> {
        if self.folds == Some(1) {
            return Err(Error::Usage(
                "`range_folds` must be 0 (no price ranges) or at least 2".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a range level: strictly between 0 and 1.
pub fn check_level(level: f64) -> Result<f64> {
    if level.is_finite() && level > 0.0 && level < 1.0 {
        Ok(level)
    } else {
        Err(Error::Usage(format!(
            "`interval` must be a level strictly between 0 and 1 (such as 0.8), or none; got {level}"
        )))
    }
}

/// Parses `--interval`: a level, `none`, or the default 0.8 when not given.
pub fn parse_level(flag: Option<&str>) -> Result<Option<f64>> {
    match flag {
        Some("none") => Ok(None),
        Some(text) => {
            let level = text.trim().parse::<f64>().map_err(|_| {
                Error::Usage(format!(
                    "`interval` must be a level strictly between 0 and 1 (such as 0.8), or none; got {text:?}"
                ))
            })?;
            check_level(level).map(Some)
        }
        None => Ok(Some(0.8)),
    }
}

impl Calibration {
    /// The calibration of out-of-fold `predicted` prices of rows whose prices are `actual`.
    pub fn from_out_of_fold(actual: &[f64], predicted: &[f64]) -> Self {
        let mut errors: Vec<f64> = actual
            .iter()
            .zip(predicted)
            .filter(|&(&a, &p)| a > 0.0 && p > 0.0 && p.is_finite())
            .map(|(a, p)| (a / p).ln())
            .collect();
        errors.sort_by(f64::total_cmp);
        Self { errors }
    }

    /// The log-scale error quantiles of the range at `level`: (lower, upper).
    pub fn quantiles(&self, level: f64) -> (f64, f64) {
        let n = self.errors.len();
        if n == 0 {
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        let m = (n + 1) as f64;
        let upper = ((m * (1.0 + level) / 2.0).ceil() as usize).clamp(1, n);
        let lower = ((m * (1.0 - level) / 2.0).floor() as usize).clamp(1, n);
        (self.errors[lower - 1], self.errors[upper - 1])
    }

    /// One line for `summary`: how many errors, and the ranges' factors at the reported levels.
    pub fn describe(&self) -> String {
        let levels: Vec<String> = REPORTED_LEVELS
            .iter()
            .map(|&level| {
                let (lo, hi) = self.quantiles(level);
                format!(
                    "{:.0}%: x{:.3} .. x{:.3}",
                    100.0 * level,
                    lo.exp(),
                    hi.exp()
                )
            })
            .collect();
        format!(
            "split-conformal on {} out-of-fold log errors ({})",
            self.errors.len(),
            levels.join("; ")
        )
    }

    /// The range of a predicted price at `level`.
    pub fn range(&self, price: f64, level: f64) -> (f64, f64) {
        let (lo, hi) = self.quantiles(level);
        (price * lo.exp(), price * hi.exp())
    }
}

/// How well ranges held: the share of prices inside their range and the median relative
/// width (`(high - low) / predicted`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// The level of the ranges.
    pub level: f64,
    /// Share of actual prices inside their range, in percent.
    pub covered: f64,
    /// Median of `(high - low) / predicted`, in percent.
    pub median_width: f64,
}

impl Coverage {
    /// The coverage at each of [`REPORTED_LEVELS`].
    pub fn all_reported(calibration: &Calibration, actual: &[f64], predicted: &[f64]) -> Vec<Self> {
        REPORTED_LEVELS
            .iter()
            .map(|&level| Self::compute(calibration, level, actual, predicted))
            .collect()
    }

    /// The coverage of ranges at `level` around `predicted` for `actual` prices.
    pub fn compute(
        calibration: &Calibration,
        level: f64,
        actual: &[f64],
        predicted: &[f64],
    ) -> Self {
        let mut inside = 0usize;
        let mut widths = Vec::with_capacity(actual.len());
        for (&a, &p) in actual.iter().zip(predicted) {
            let (low, high) = calibration.range(p, level);
            inside += usize::from(a >= low && a <= high);
            widths.push((high - low) / p);
        }
        let covered = 100.0 * inside as f64 / actual.len().max(1) as f64;
        let median_width = if widths.is_empty() {
            0.0
        } else {
            100.0 * crate::evaluate::baseline::median(&mut widths)
        };
        Self {
            level,
            covered,
            median_width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_at_level_p_holds_the_p_quantile_of_the_errors() {
        // Errors -0.49, -0.48, ..., 0.50 (100 of them), as out-of-fold prices.
        let actual: Vec<f64> = (0..100)
            .map(|k| 100.0 * (f64::from(k - 49) / 100.0).exp())
            .collect();
        let c = Calibration::from_out_of_fold(&actual, &[100.0; 100]);
        assert_eq!(c.errors.len(), 100);
        for level in [0.5, 0.8, 0.9] {
            let (lo, hi) = c.quantiles(level);
            let inside = c.errors.iter().filter(|&&e| e >= lo && e <= hi).count();
            assert!(inside as f64 >= level * 100.0, "{level}: {inside}");
            // And not much more: within two ranks of the level.
            assert!(inside as f64 <= level * 100.0 + 3.0, "{level}: {inside}");
            let (low, high) = c.range(200.0, level);
            assert!((low - 200.0 * lo.exp()).abs() < 1e-9 && high > 200.0);
        }
        assert!(check_level(0.8).is_ok());
        for bad in [0.0, 1.0, -0.2, f64::NAN] {
            assert!(check_level(bad).is_err());
        }
    }

    #[test]
    fn coverage_counts_the_prices_inside() {
        let c = Calibration {
            errors: vec![-0.1, 0.0, 0.1],
        };
        let cov = Coverage::compute(&c, 0.5, &[100.0, 200.0], &[100.0, 100.0]);
        assert_eq!(cov.covered, 50.0);
        assert!(cov.median_width > 0.0);
    }
}

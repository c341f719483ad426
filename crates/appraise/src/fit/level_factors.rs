//! A price factor per level of one categorical column (the Houses recipe's per-zip factors,
//! for any table): on top of the overall factor, each level gets the factor that minimizes
//! the MAPE of its own training rows' out-of-fold prices, shrunk toward 1 on the log scale.
//! The MAPE-optimal price sits further below the median where prices are less predictable,
//! and neighbourhoods differ in how predictable they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::table::Frame;
use crate::features::encoder::MISSING_LEVEL;
use crate::fit::recipe::mape_factor;

/// Each level's factor relative to the overall one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelFactors {
    /// The categorical column.
    pub column: String,
    /// Factor by level (a level not listed gets `unlisted`).
    pub factors: BTreeMap<String, f64>,
    /// The factor of a level not listed: 1, except in the Houses recipe's models of formats
    /// 2 to 7, read with their overall factor folded into every level's.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub unlisted: f64,
}

fn one() -> f64 {
    1.0
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl LevelFactors {
    /// Fits the factors on training rows whose levels are `keys`, prices `actual` and
    /// out-of-fold prices `predicted` (already times the overall factor). A level of n rows
    /// keeps `n / (n + prior)` of its own factor's logarithm.
    pub fn fit(
        column: &str,
        keys: &[String],
        actual: &[f64],
        predicted: &[f64],
        prior: f64,
    ) -> Self {
        let mut by_level: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for ((key, &a), &p) in keys.iter().zip(actual).zip(predicted) {
            let entry = by_level.entry(key).or_default();
            entry.0.push(a);
            entry.1.push(p);
        }
        let factors = by_level
            .into_iter()
            .map(|(key, (a, p))| {
                let n = a.len() as f64;
                let factor = (mape_factor(&a, &p).ln() * n / (n + prior)).exp();
                (key.to_string(), factor)
            })
            .collect();
        Self {
            column: column.to_string(),
            factors,
            unlisted: 1.0,
        }
    }

    /// The factor of each of `rows` of `frame` (`unlisted` for a level the training rows
    /// lacked).
    pub fn of_rows(&self, frame: &Frame, rows: &[usize]) -> Vec<f64> {
        let keys = level_keys(frame, &self.column, rows);
        keys.iter()
            .map(|k| self.factors.get(k).copied().unwrap_or(self.unlisted))
            .collect()
    }

    /// `zip: 91901 x0.9935, 92276 x0.9527, ...`.
    pub fn label(&self) -> String {
        let listed: Vec<String> = self
            .factors
            .iter()
            .map(|(level, f)| format!("{level} x{f:.4}"))
            .collect();
        format!("{}: {}", self.column, listed.join(", "))
    }
}

/// The level of each of `rows` in `column` of `frame`, as the encoder keys it (a missing
/// cell, or a column the frame lacks, is the missing level).
pub fn level_keys(frame: &Frame, column: &str, rows: &[usize]) -> Vec<String> {
    let values = frame.find(column).map(|c| &frame.columns[c]);
    rows.iter()
        .map(|&r| {
            values
                .and_then(|v| v.key(r))
                .unwrap_or_else(|| MISSING_LEVEL.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_gets_its_shrunk_factor_and_unknown_levels_one() {
        // Level a is overpriced by 10% on all four rows: its own factor is 1/1.1, shrunk by
        // 4 / (4 + 4) on the log scale; level b is priced right.
        let keys: Vec<String> = ["a", "a", "a", "a", "b", "b"].map(String::from).to_vec();
        let actual = [100.0, 200.0, 300.0, 400.0, 100.0, 100.0];
        let predicted: Vec<f64> = actual
            .iter()
            .enumerate()
            .map(|(i, a)| if i < 4 { a * 1.1 } else { *a })
            .collect();
        let f = LevelFactors::fit("zip", &keys, &actual, &predicted, 4.0);
        let expected = ((1.0f64 / 1.1).ln() * 0.5).exp();
        assert!((f.factors["a"] - expected).abs() < 1e-12, "{:?}", f.factors);
        assert!((f.factors["b"] - 1.0).abs() < 1e-12);
        let frame = crate::data::table::from_csv(
            b"zip,price\na,1\nc,2\n,3\n",
            std::path::Path::new("t.csv"),
        )
        .unwrap();
        assert_eq!(
            f.of_rows(&frame, &[0, 1, 2]),
            vec![f.factors["a"], 1.0, 1.0]
        );
    }
}

//! The valuation industry's ratio study (IAAO's Standard on Ratio Studies): how assessments,
//! here the model's prices, compare with sale prices, in the figures lenders and assessors
//! judge a model by. The ratio of a sale is its predicted price over its sale price.

use serde::Serialize;

/// A ratio study of a set of sales.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioStudy {
    /// Sales studied.
    pub count: usize,
    /// The median ratio (1: the model prices at the sale price in the middle).
    pub median_ratio: f64,
    /// The median absolute percentage error.
    pub median_ape: f64,
    /// PPE10: the percentage of sales priced within 10% of their sale price.
    pub ppe10: f64,
    /// PPE20: within 20%.
    pub ppe20: f64,
    /// The coefficient of dispersion: the mean absolute deviation of the ratios from their
    /// median, in percent of the median (IAAO: 5 to 15 for single-family homes).
    pub cod: f64,
    /// The price-related differential: the mean ratio over the sale-weighted mean ratio
    /// (IAAO: 0.98 to 1.03; above, cheaper homes are priced relatively higher).
    pub prd: f64,
}

/// The median of `values` (sorted in place); NaN for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl RatioStudy {
    /// The study of sales at `actual` prices that the model priced `predicted`.
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Self {
        let n = actual.len();
        let mut ratios: Vec<f64> = predicted.iter().zip(actual).map(|(p, a)| p / a).collect();
        let within = |limit: f64| {
            100.0 * ratios.iter().filter(|r| (*r - 1.0).abs() <= limit).count() as f64
                / n.max(1) as f64
        };
        let (ppe10, ppe20) = (within(0.10), within(0.20));
        // As the scores compute it, so that the two medians agree.
        let mut apes: Vec<f64> = actual
            .iter()
            .zip(predicted)
            .map(|(&a, &p)| crate::evaluate::metrics::abs_pct_error(a, p))
            .collect();
        let median_ape = median(&mut apes);
        let mean_ratio = ratios.iter().sum::<f64>() / n as f64;
        let weighted = predicted.iter().sum::<f64>() / actual.iter().sum::<f64>();
        let median_ratio = median(&mut ratios);
        let cod = 100.0 * ratios.iter().map(|r| (r - median_ratio).abs()).sum::<f64>()
            / n as f64
            / median_ratio;
        Self {
            count: n,
            median_ratio,
            median_ape,
            ppe10,
            ppe20,
            cod,
            prd: mean_ratio / weighted,
        }
    }

    /// `PPE10 41.2%, PPE20 68.0%, COD 16.3, PRD 1.02, median ratio 0.98`.
    pub fn line(&self) -> String {
        format!(
            "PPE10 {:.1}%, PPE20 {:.1}%, COD {:.1}, PRD {:.3}, median ratio {:.3}",
            self.ppe10, self.ppe20, self.cod, self.prd, self.median_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_follow_their_definitions() {
        let actual = [100.0, 200.0, 300.0, 400.0];
        let predicted = [105.0, 170.0, 300.0, 520.0];
        // Ratios 1.05, 0.85, 1.0, 1.3; median 1.025.
        let s = RatioStudy::compute(&actual, &predicted);
        assert_eq!(s.count, 4);
        assert!((s.median_ratio - 1.025).abs() < 1e-12);
        assert_eq!(s.ppe10, 50.0);
        assert_eq!(s.ppe20, 75.0);
        // |1.05-1.025| + |0.85-1.025| + |1.0-1.025| + |1.3-1.025| = 0.5, / 4 / 1.025.
        assert!(
            (s.cod - 100.0 * 0.5 / 4.0 / 1.025).abs() < 1e-9,
            "{}",
            s.cod
        );
        // Mean ratio 1.05 over 1095 / 1000.
        assert!((s.prd - 1.05 / 1.095).abs() < 1e-12, "{}", s.prd);
        assert!((s.median_ape - 10.0).abs() < 1e-9);
        // Priced exactly: no dispersion, every sale within 10%.
        let exact = RatioStudy::compute(&actual, &actual);
        assert_eq!((exact.cod, exact.prd, exact.ppe10), (0.0, 1.0, 100.0));
    }
}

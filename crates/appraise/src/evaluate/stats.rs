//! The few statistics the pipeline needs, in one place.

/// The mean and population standard deviation of `values` (0 and 0 when empty).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The mean and population standard deviation to standardize `values` by: a standard
/// deviation of 1 where they are constant, so that standardizing never divides by zero.
pub fn standardizer(values: &[f64]) -> (f64, f64) {
    let (mean, std) = mean_std(values);
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// The mean and sample standard deviation (n - 1), as pandas computes them.
pub fn mean_sample_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_standard_deviations() {
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_std(&[]), (0.0, 0.0));
        assert_eq!(standardizer(&[5.0, 5.0]), (5.0, 1.0));
        assert_eq!(mean_sample_std(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
    }
}

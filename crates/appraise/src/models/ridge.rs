//! Ridge regression on wide features, in closed form: the small head that turns a house's
//! 5,120 frozen photo features into a price.
//!
//! Why ridge and not a network: with ~270 training houses and thousands of features, a linear
//! model with a well-chosen penalty is what generalizes; its penalty is the one choice, and it
//! is made by cross-validation inside the training rows. The solve is in the dual (an `n x n`
//! system of houses, not `d x d` of features), which is exact and cheap while houses are few.
//!
//! Columns are scaled to unit variance over the rows given (no targets are involved, so this
//! leaks nothing); each fit centers on its own training rows, through the kernel, so a fold's
//! held-out rows decide nothing about it.

use rayon::prelude::*;

/// Penalties tried, relative to the mean squared norm of a centered row (so the grid does not
/// depend on how many features there are or how they are scaled).
pub const PENALTIES: [f64; 8] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0];

/// A linear model on raw features: `bias + weights . x`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Linear {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
}

impl Linear {
    /// The prediction for one row of raw features.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }
}

/// Rows of features, scaled to unit variance per column, with their Gram matrix: everything a
/// ridge fit on any subset of the rows needs.
pub struct Design {
    rows: usize,
    dim: usize,
    /// Mean of each raw column over all rows.
    mean: Vec<f64>,
    /// Scale of each raw column (its standard deviation; 0 for a constant column, which is
    /// then left out).
    scale: Vec<f64>,
    /// Scaled rows, `rows x dim`.
    z: Vec<f64>,
    /// `z z^T`, `rows x rows`.
    gram: Vec<f64>,
}

impl Design {
    /// The design of `rows` rows of `dim` raw features each (`x` row-major).
    pub fn new(x: &[f64], dim: usize) -> Self {
        assert!(
            dim > 0 && x.len().is_multiple_of(dim),
            "rows of {dim} features"
        );
        let rows = x.len() / dim;
        let n = rows.max(1) as f64;
        let mut mean = vec![0.0; dim];
        for row in x.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; dim];
        for row in x.chunks_exact(dim) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m).powi(2);
            }
        }
        let scale: Vec<f64> = var
            .iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 1e-12 { s } else { 0.0 }
            })
            .collect();
        let z: Vec<f64> = x
            .chunks_exact(dim)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((v, m), s)| if *s > 0.0 { (v - m) / s } else { 0.0 })
            })
            .collect();
        // Each entry is one dot product in a fixed order: the same bits on any thread count.
        let gram: Vec<f64> = (0..rows * rows)
            .into_par_iter()
            .map(|k| {
                let (i, j) = (k / rows, k % rows);
                dot(&z[i * dim..(i + 1) * dim], &z[j * dim..(j + 1) * dim])
            })
            .collect();
        Self {
            rows,
            dim,
            mean,
            scale,
            z,
            gram,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn k(&self, i: usize, j: usize) -> f64 {
        self.gram[i * self.rows + j]
    }

    /// Fits ridge on the rows `train` with targets `y` (one per design row; only the training
    /// rows' are read) at each relative penalty, and predicts the rows `test` with each:
    /// `result[p][t]` is the prediction of row `test[t]` at `penalties[p]`.
    pub fn cross_predict(
        &self,
        train: &[usize],
        test: &[usize],
        y: &[f64],
        penalties: &[f64],
    ) -> Vec<Vec<f64>> {
        let (kc, y_mean, yc, row_mean, all_mean) = self.centered(train, y);
        let n = train.len();
        let trace = (0..n).map(|i| kc[i * n + i]).sum::<f64>() / n.max(1) as f64;
        // Test rows' kernel against the training rows, centered on the training rows.
        let kt: Vec<f64> = test
            .iter()
            .flat_map(|&t| {
                let mean_t = train.iter().map(|&j| self.k(t, j)).sum::<f64>() / n as f64;
                let row_mean = &row_mean;
                train
                    .iter()
                    .enumerate()
                    .map(move |(b, &j)| self.k(t, j) - mean_t - row_mean[b] + all_mean)
            })
            .collect();
        penalties
            .iter()
            .map(|&p| {
                let alpha = solve_ridge(&kc, n, &yc, p * trace.max(1e-12));
                kt.chunks_exact(n)
                    .map(|row| y_mean + dot(row, &alpha))
                    .collect()
            })
            .collect()
    }

    /// Fits ridge on the rows `train` at relative penalty `penalty`, as a model on raw
    /// features.
    pub fn fit(&self, train: &[usize], y: &[f64], penalty: f64) -> Linear {
        let (kc, y_mean, yc, _, _) = self.centered(train, y);
        let n = train.len();
        let trace = (0..n).map(|i| kc[i * n + i]).sum::<f64>() / n.max(1) as f64;
        let alpha = solve_ridge(&kc, n, &yc, penalty * trace.max(1e-12));
        // Weights on centered scaled features: sum_i alpha_i (z_i - zbar), where zbar is the
        // training rows' mean.
        let d = self.dim;
        let mut zbar = vec![0.0; d];
        for &i in train {
            for (m, v) in zbar.iter_mut().zip(&self.z[i * d..(i + 1) * d]) {
                *m += v;
            }
        }
        zbar.iter_mut().for_each(|m| *m /= n as f64);
        let mut w = vec![0.0; d];
        for (&i, a) in train.iter().zip(&alpha) {
            for ((w, v), m) in w.iter_mut().zip(&self.z[i * d..(i + 1) * d]).zip(&zbar) {
                *w += a * (v - m);
            }
        }
        // Back to raw features: z = (x - mean) / scale, and the model is
        // y_mean + w . (z - zbar).
        let weights: Vec<f64> = w
            .iter()
            .zip(&self.scale)
            .map(|(w, s)| if *s > 0.0 { w / s } else { 0.0 })
            .collect();
        let offset: f64 = weights
            .iter()
            .zip(&self.mean)
            .zip(zbar.iter().zip(&self.scale))
            .map(|((wr, m), (zb, s))| wr * (m + zb * s))
            .sum();
        Linear {
            weights,
            bias: y_mean - offset,
        }
    }

    /// The training rows' kernel centered on them, the targets' mean and centered targets,
    /// and the kernel's row means and overall mean (for centering other rows).
    #[allow(clippy::type_complexity)]
    fn centered(&self, train: &[usize], y: &[f64]) -> (Vec<f64>, f64, Vec<f64>, Vec<f64>, f64) {
        let n = train.len();
        assert!(n > 0, "ridge needs training rows");
        let nf = n as f64;
        let row_mean: Vec<f64> = train
            .iter()
            .map(|&i| train.iter().map(|&j| self.k(i, j)).sum::<f64>() / nf)
            .collect();
        let all_mean = row_mean.iter().sum::<f64>() / nf;
        let mut kc = vec![0.0; n * n];
        for (a, &i) in train.iter().enumerate() {
            for (b, &j) in train.iter().enumerate() {
                kc[a * n + b] = self.k(i, j) - row_mean[a] - row_mean[b] + all_mean;
            }
        }
        let y_mean = train.iter().map(|&i| y[i]).sum::<f64>() / nf;
        let yc = train.iter().map(|&i| y[i] - y_mean).collect();
        (kc, y_mean, yc, row_mean, all_mean)
    }
}

/// Ridge in the primal, for tables with more rows than features: fits `y` on the `rows` of
/// `x` (row-major, `dim` features per row; `y` one value per row of `x`) with penalty
/// `penalty` times the mean variance of the features, for each penalty given. Sums run in a
/// fixed order, so the result does not depend on threads.
pub fn fit_primal(
    x: &[f64],
    dim: usize,
    rows: &[usize],
    y: &[f64],
    penalties: &[f64],
) -> Vec<Linear> {
    assert!(dim > 0 && !rows.is_empty(), "ridge needs features and rows");
    let n = rows.len() as f64;
    let mut mean = vec![0.0; dim];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let y_mean = rows.iter().map(|&r| y[r]).sum::<f64>() / n;
    let mut gram = vec![0.0; dim * dim];
    let mut xty = vec![0.0; dim];
    let mut centered = vec![0.0; dim];
    for &r in rows {
        for ((c, v), m) in centered
            .iter_mut()
            .zip(&x[r * dim..(r + 1) * dim])
            .zip(&mean)
        {
            *c = v - m;
        }
        let yc = y[r] - y_mean;
        for i in 0..dim {
            let ci = centered[i];
            if ci == 0.0 {
                continue;
            }
            xty[i] += ci * yc;
            for (g, cj) in gram[i * dim..i * dim + i + 1].iter_mut().zip(&centered) {
                *g += ci * cj;
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            gram[j * dim + i] = gram[i * dim + j];
        }
    }
    let trace = (0..dim).map(|i| gram[i * dim + i]).sum::<f64>() / (n * dim as f64);
    penalties
        .iter()
        .map(|&p| {
            let weights = solve_ridge(&gram, dim, &xty, p * n * trace.max(1e-12));
            let bias = y_mean - dot(&weights, &mean);
            Linear { weights, bias }
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `(k + lambda I) alpha = y` for a symmetric positive semi-definite `k` (`n x n`) by
/// Cholesky factorization.
fn solve_ridge(k: &[f64], n: usize, y: &[f64], lambda: f64) -> Vec<f64> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = k[i * n + j] + if i == j { lambda } else { 0.0 };
            for p in 0..j {
                s -= l[i * n + p] * l[j * n + p];
            }
            l[i * n + j] = if i == j {
                s.max(1e-300).sqrt()
            } else {
                s / l[j * n + j]
            };
        }
    }
    // L u = y, then L^T alpha = u.
    let mut u = vec![0.0; n];
    for i in 0..n {
        let s = y[i] - (0..i).map(|p| l[i * n + p] * u[p]).sum::<f64>();
        u[i] = s / l[i * n + i];
    }
    let mut alpha = vec![0.0; n];
    for i in (0..n).rev() {
        let s = u[i] - (i + 1..n).map(|p| l[p * n + i] * alpha[p]).sum::<f64>();
        alpha[i] = s / l[i * n + i];
    }
    alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small noisy linear problem: y = 3 + 2 x0 - x1 (+ noise), a constant column and an
    /// irrelevant one.
    fn problem(rows: usize) -> (Vec<f64>, Vec<f64>) {
        let mut rng = crate::runtime::rng::SeededRng::new(7, 0);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..rows {
            let (a, b, c) = (
                rng.uniform(-1.7, 1.7) * 10.0 + 50.0,
                rng.uniform(-1.7, 1.7),
                rng.uniform(-1.7, 1.7),
            );
            x.extend([a, b, 4.0, c]);
            y.push(3.0 + 2.0 * a - b + 0.01 * rng.uniform(-1.7, 1.7));
        }
        (x, y)
    }

    #[test]
    fn a_small_penalty_recovers_the_linear_model() {
        let (x, y) = problem(60);
        let design = Design::new(&x, 4);
        let rows: Vec<usize> = (0..60).collect();
        let model = design.fit(&rows, &y, 1e-6);
        assert!((model.weights[0] - 2.0).abs() < 1e-3, "{model:?}");
        assert!((model.weights[1] + 1.0).abs() < 1e-2, "{model:?}");
        assert_eq!(model.weights[2], 0.0);
        assert!((model.predict(&[50.0, 0.0, 4.0, 0.0]) - 103.0).abs() < 0.05);
    }

    #[test]
    fn the_dual_fit_and_its_raw_weights_agree() {
        // Predicting held-out rows through the kernel equals the raw-weight model fitted on
        // the same rows, at every penalty: the two are one model.
        let (x, y) = problem(40);
        let design = Design::new(&x, 4);
        let train: Vec<usize> = (0..30).collect();
        let test: Vec<usize> = (30..40).collect();
        let by_kernel = design.cross_predict(&train, &test, &y, &PENALTIES);
        for (p, predictions) in PENALTIES.iter().zip(&by_kernel) {
            let model = design.fit(&train, &y, *p);
            for (&t, kernel) in test.iter().zip(predictions) {
                let raw = model.predict(&x[t * 4..(t + 1) * 4]);
                assert!(
                    (raw - kernel).abs() < 1e-6 * (1.0 + raw.abs()),
                    "{p}: {raw} vs {kernel}"
                );
            }
        }
        // A larger penalty shrinks the predictions toward the training mean.
        let spread = |v: &[f64]| v.iter().map(|p| (p - v[0]).abs()).sum::<f64>();
        assert!(spread(&by_kernel[7]) < spread(&by_kernel[0]));
    }

    #[test]
    fn the_primal_fit_agrees_with_the_dual_one() {
        let (x, y) = problem(50);
        let design = Design::new(&x, 4);
        let rows: Vec<usize> = (0..50).collect();
        let primal = &fit_primal(&x, 4, &rows, &y, &[1e-6])[0];
        assert!((primal.weights[0] - 2.0).abs() < 1e-3, "{primal:?}");
        let dual = design.fit(&rows, &y, 1e-6);
        let point = [52.0, 0.5, 4.0, -1.0];
        assert!((primal.predict(&point) - dual.predict(&point)).abs() < 1e-2);
    }

    #[test]
    fn held_out_targets_decide_nothing() {
        let (x, mut y) = problem(40);
        let design = Design::new(&x, 4);
        let train: Vec<usize> = (0..30).collect();
        let test: Vec<usize> = (30..40).collect();
        let before = design.cross_predict(&train, &test, &y, &[0.1]);
        y[35] = 1e9;
        assert_eq!(design.cross_predict(&train, &test, &y, &[0.1]), before);
    }
}

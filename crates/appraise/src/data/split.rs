//! The train/test split, identical to scikit-learn's
//! `train_test_split(rows, test_size=..., random_state=seed)`.
//!
//! scikit-learn draws `RandomState(seed).permutation(n)`: numpy's legacy MT19937 generator,
//! seeded with `init_genrand(seed)`, shuffling `0..n` with Fisher-Yates and masked rejection
//! sampling. The first `n_test` entries are the test rows, the next `n_train` the training rows.

use rand_mt::Mt;

use crate::error::{Error, Result};

/// Row positions of one split, in the order scikit-learn returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Positions of the training rows.
    pub train: Vec<usize>,
    /// Positions of the test rows.
    pub test: Vec<usize>,
}

/// numpy's legacy `RandomState`: the part of it appraise needs.
pub struct NumpyRandomState {
    mt: Mt,
}

impl NumpyRandomState {
    /// `numpy.random.RandomState(seed)` for an integer seed.
    pub fn new(seed: u32) -> Self {
        Self { mt: Mt::new(seed) }
    }

    /// A uniform integer in `[0, max]`, drawn as numpy's legacy `rk_interval` does.
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        // Smallest 2^k - 1 that covers max.
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let value = self.mt.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// Shuffles `items` in place, as numpy's legacy `shuffle` does for a 1-d array.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u32) as usize;
            items.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut items: Vec<usize> = (0..n).collect();
        self.shuffle(&mut items);
        items
    }
}

/// The number of test and training rows scikit-learn uses for a float `test_size`:
/// `ceil(test_size * n)` and `floor((1 - test_size) * n)`.
pub fn split_sizes(n: usize, test_size: f64) -> Result<(usize, usize)> {
    if !(test_size > 0.0 && test_size < 1.0) {
        return Err(Error::Usage(format!(
            "`test_size` must be a fraction strictly between 0 and 1, got {test_size}"
        )));
    }
    let n_test = (test_size * n as f64).ceil() as usize;
    let n_train = ((1.0 - test_size) * n as f64).floor() as usize;
    if n_test == 0 || n_train == 0 {
        return Err(Error::Usage(format!(
            "a test size of {test_size} on {n} houses leaves {n_train} for training and {n_test} for testing; \
             both need at least one house (use more houses, a lower `min_zip_count`, or another `test_size`)"
        )));
    }
    Ok((n_test, n_train))
}

/// Splits `n` rows as `train_test_split(range(n), test_size=test_size, random_state=seed)`.
pub fn train_test_split(n: usize, test_size: f64, seed: u32) -> Result<Split> {
    let (n_test, n_train) = split_sizes(n, test_size)?;
    let permutation = NumpyRandomState::new(seed).permutation(n);
    Ok(Split {
        test: permutation[..n_test].to_vec(),
        train: permutation[n_test..n_test + n_train].to_vec(),
    })
}

/// scikit-learn's `KFold(n_splits=folds, shuffle=True, random_state=seed)` over `n` rows:
/// fold k holds out the next `n / folds` (plus one for the first `n % folds` folds) rows of
/// `RandomState(seed).permutation(n)`; its training rows are the others, ascending.
pub fn kfold(n: usize, folds: usize, seed: u32) -> Result<Vec<Split>> {
    if folds < 2 || folds > n {
        return Err(Error::Usage(format!(
            "`folds` must be between 2 and the number of houses ({n}), got {folds}"
        )));
    }
    let indices = NumpyRandomState::new(seed).permutation(n);
    let mut start = 0;
    let mut out = Vec::with_capacity(folds);
    for k in 0..folds {
        let size = n / folds + usize::from(k < n % folds);
        let test: Vec<usize> = indices[start..start + size].to_vec();
        let mut in_test = vec![false; n];
        for &i in &test {
            in_test[i] = true;
        }
        let train = (0..n).filter(|&i| !in_test[i]).collect();
        out.push(Split { train, test });
        start += size;
    }
    Ok(out)
}

/// [`kfold`] with a 64-bit seed (a training seed), folded into numpy's 32-bit range.
pub fn kfold_seeded(n: usize, folds: usize, seed: u64) -> Result<Vec<Split>> {
    kfold(n, folds, (seed % u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Case {
        n: usize,
        test_size: f64,
        seed: u32,
        test: Vec<usize>,
        train: Vec<usize>,
    }

    #[derive(serde::Deserialize)]
    struct Cases {
        cases: Vec<Case>,
    }

    /// scikit-learn's own indices, from `../shared/fixtures` (a fixed reference file).
    fn fixture() -> Cases {
        let path = concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/tests/fixtures/sklearn-split-cases.json"
        );
        let text = std::fs::read_to_string(path)
            .expect("fixture file tests/fixtures/sklearn-split-cases.json");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn matches_every_scikit_learn_case() {
        let cases = fixture().cases;
        assert!(cases.len() >= 5);
        for case in cases {
            let split = train_test_split(case.n, case.test_size, case.seed).unwrap();
            assert_eq!(
                split.test, case.test,
                "test rows, n={} seed={}",
                case.n, case.seed
            );
            assert_eq!(
                split.train, case.train,
                "train rows, n={} seed={}",
                case.n, case.seed
            );
        }
    }

    #[test]
    fn sizes_follow_scikit_learn() {
        assert_eq!(split_sizes(362, 0.25).unwrap(), (91, 271));
        assert_eq!(split_sizes(10, 0.25).unwrap(), (3, 7));
        assert!(split_sizes(362, 0.0).is_err());
        assert!(split_sizes(362, 1.0).is_err());
        assert!(split_sizes(362, 1.5).is_err());
        assert!(split_sizes(362, f64::NAN).is_err());
        assert!(split_sizes(1, 0.25).is_err());
    }

    #[test]
    fn interval_stays_in_range() {
        let mut rng = NumpyRandomState::new(3);
        for max in [0u32, 1, 2, 5, 7, 8, 1000, u32::MAX] {
            for _ in 0..100 {
                assert!(rng.interval(max) <= max);
            }
        }
    }
}

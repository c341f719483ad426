//! Cross-validation's parts: the splits of a scheme, a runner of splits in parallel, and the
//! report of the model's and the baselines' scores over them ([`crate::fit::tabular::cross_validate`]
//! runs it on any dataset).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::data::split::{Split, train_test_split};
use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;

/// Which splits to evaluate on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Scheme {
    /// One `train_test_split` per split seed (the run's test size).
    Repeats(Vec<u32>),
    /// scikit-learn's `KFold(n_splits, shuffle=True, random_state=seed)`.
    KFold {
        /// Number of folds.
        folds: usize,
        /// Shuffle seed.
        seed: u32,
    },
}

/// The splits of a scheme over `n` houses, each with a label.
pub fn splits(scheme: &Scheme, n: usize, test_size: f64) -> Result<Vec<(String, Split)>> {
    match scheme {
        Scheme::Repeats(seeds) => seeds
            .iter()
            .map(|&seed| {
                Ok((
                    format!("split seed {seed}"),
                    train_test_split(n, test_size, seed)?,
                ))
            })
            .collect(),
        Scheme::KFold { folds, seed } => Ok(crate::data::split::kfold(n, *folds, *seed)?
            .into_iter()
            .enumerate()
            .map(|(k, split)| (format!("fold {}/{folds}", k + 1), split))
            .collect()),
    }
}

/// Scores of one split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitResult {
    /// Which split ("split seed 3", "fold 2/5").
    pub label: String,
    /// The network's scores.
    pub model: Metrics,
    /// The model's ratio study of the split's test rows.
    pub ratio_study: crate::evaluate::ratio::RatioStudy,
    /// Each baseline's scores, in the order of the report's summaries.
    pub baselines: Vec<Metrics>,
    /// How the model's price ranges held on the test houses at 80% and 90% (empty for
    /// models without ranges).
    pub coverage: Vec<crate::fit::interval::Coverage>,
}

/// Mean and standard deviation (population) of each metric over the splits.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Method name.
    pub method: String,
    /// Mean of each metric.
    pub mean: Metrics,
    /// Standard deviation of each metric.
    pub std: Metrics,
}

/// A whole cross-validation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per-split scores, in scheme order.
    pub splits: Vec<SplitResult>,
    /// The model first, then the baselines.
    pub summaries: Vec<Summary>,
}

fn summarize(method: &str, all: &[&Metrics]) -> Summary {
    let pick: [fn(&Metrics) -> f64; 7] = [
        |m| m.mape,
        |m| m.ape_std,
        |m| m.median_ape,
        |m| m.max_ape,
        |m| m.mae,
        |m| m.rmse,
        |m| m.r2,
    ];
    let mut mean = [0.0; 7];
    let mut std = [0.0; 7];
    for (k, f) in pick.iter().enumerate() {
        let values: Vec<f64> = all.iter().map(|m| f(m)).collect();
        (mean[k], std[k]) = crate::evaluate::stats::mean_std(&values);
    }
    let count = all.iter().map(|m| m.count).sum::<usize>() / all.len().max(1);
    let make = |v: [f64; 7]| Metrics {
        count,
        mape: v[0],
        ape_std: v[1],
        median_ape: v[2],
        max_ape: v[3],
        mae: v[4],
        rmse: v[5],
        r2: v[6],
    };
    Summary {
        method: method.to_string(),
        mean: make(mean),
        std: make(std),
    }
}

/// Runs `work` on splits `0..count`, `jobs` at a time (each split's result is the same
/// whatever the number of jobs), and returns the results in split order; `on_done` hears
/// each in completion order. After an error no further split starts, and the first error in
/// split order is returned; a split left unstarted without an error (the stop flag) is
/// [`Error::Interrupted`].
pub fn each_split<T: Send>(
    count: usize,
    jobs: usize,
    work: &(dyn Fn(usize) -> Result<T> + Sync),
    on_done: &(dyn Fn(&T) + Sync),
) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, count.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let outcome = work(i);
                    if let Ok(result) = &outcome {
                        on_done(result);
                    }
                    let failed = outcome.is_err();
                    results.lock().expect("no worker panics")[i] = Some(outcome);
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(count, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut done = Vec::with_capacity(count);
    for outcome in results
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .flatten()
    {
        done.push(outcome?);
    }
    if done.len() != count {
        return Err(Error::Interrupted);
    }
    Ok(done)
}

impl Report {
    /// The report of `splits` (each with the baselines named `baselines`, in order): the
    /// mean and standard deviation of every score of the model and of each baseline.
    pub fn new(splits: Vec<SplitResult>, baselines: &[String]) -> Self {
        let mut summaries = vec![summarize(
            "model",
            &splits.iter().map(|r| &r.model).collect::<Vec<_>>(),
        )];
        for (k, name) in baselines.iter().enumerate() {
            summaries.push(summarize(
                name,
                &splits.iter().map(|r| &r.baselines[k]).collect::<Vec<_>>(),
            ));
        }
        Report { splits, summaries }
    }
}

impl Report {
    /// The baselines the model's mean MAPE beat, and those it did not.
    pub fn verdict(&self) -> String {
        let model = self.summaries[0].mean.mape;
        let mut lines = Vec::new();
        for s in &self.summaries[1..] {
            let word = if model < s.mean.mape {
                "beat"
            } else {
                "did NOT beat"
            };
            lines.push(format!(
                "the model (mean MAPE {model:.2}%) {word} the {} baseline ({:.2}%)",
                s.method, s.mean.mape
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfold_partitions_every_house_once() {
        let s = splits(&Scheme::KFold { folds: 3, seed: 0 }, 10, 0.25).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.iter().map(|(_, sp)| sp.test.len()).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
        let mut all: Vec<usize> = s.iter().flat_map(|(_, sp)| sp.test.clone()).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        for (_, sp) in &s {
            assert_eq!(sp.train.len() + sp.test.len(), 10);
            assert!(sp.train.iter().all(|i| !sp.test.contains(i)));
        }
        assert!(splits(&Scheme::KFold { folds: 1, seed: 0 }, 10, 0.25).is_err());
        assert!(splits(&Scheme::KFold { folds: 11, seed: 0 }, 10, 0.25).is_err());
        let r = splits(&Scheme::Repeats(vec![42]), 362, 0.25).unwrap();
        assert_eq!(r[0].1, train_test_split(362, 0.25, 42).unwrap());
    }
}

//! Gradient-boosted trees, the recipe's tree candidates (forust-ml): one booster per inner
//! fold, trained on the fold's training rows with early stopping on its held-out rows, the
//! model's output the mean of the folds' boosters (as its networks are the folds' networks).
//!
//! Trees read the table's columns themselves, not the networks' encoding: each numeric
//! column as it is (a missing value goes down the trees' own missing branch), each
//! categorical column as its level's rank by mean target over the booster's training rows
//! (a missing cell is a level of its own; a level the booster has not seen goes down the
//! missing branch), then the photo inputs the model reads.

use std::collections::BTreeMap;

use forust_ml::constraints::{Constraint, ConstraintMap};
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

use crate::data::schema::{Role, Schema};
use crate::data::split::Split;
use crate::data::table::{Frame, Texts, Values};
use crate::error::{Error, Result};
use crate::features::encoder::MISSING_LEVEL;
use crate::fit::level_factors::level_keys;

/// Boosting rounds at most; early stopping on the held-out fold ends them sooner.
const MAX_ROUNDS: usize = 2000;
/// Rounds without improvement on the held-out fold that end the boosting.
const PATIENCE: usize = 50;

/// The settings of one tree candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeSettings {
    /// The boosters' learning rate.
    pub learning_rate: f64,
    /// The trees' depth.
    pub depth: usize,
}

/// How a booster reads one column of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TreeColumn {
    /// A numeric column, as it is.
    Number {
        /// Column name.
        column: String,
    },
    /// A categorical column, as its level's rank.
    Ranked {
        /// Column name.
        column: String,
        /// Each level's rank by mean target over the booster's training rows.
        ranks: BTreeMap<String, f64>,
    },
}

/// One fold's booster and how it reads a row.
#[derive(Serialize, Deserialize)]
pub struct TreeMember {
    /// The table's columns it reads, in input order (the photo inputs follow).
    pub columns: Vec<TreeColumn>,
    /// The booster (forust-ml's own serialization).
    pub booster: GradientBooster,
}

/// The folds' boosters, whose mean output is the trees' output.
#[derive(Serialize, Deserialize)]
pub struct Trees {
    /// One per inner fold.
    pub members: Vec<TreeMember>,
    /// The photo inputs each row adds after the columns (0 without photos).
    pub photo_inputs: usize,
    /// The candidate's settings, for `summary`.
    pub learning_rate: f64,
    /// The trees' depth.
    pub depth: usize,
    /// The columns the price rises with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monotone: Vec<String>,
}

impl Clone for Trees {
    fn clone(&self) -> Self {
        // forust-ml's booster is not Clone; its own serialization copies it exactly.
        serde_json::from_value(serde_json::to_value(self).expect("trees serialize"))
            .expect("trees read back")
    }
}

impl std::fmt::Debug for Trees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trees({})", self.describe())
    }
}

impl Trees {
    /// `5 boosters (depth 4, learning rate 0.05, 312 rounds on average)`.
    pub fn describe(&self) -> String {
        let rounds = self
            .members
            .iter()
            .map(|m| m.booster.trees.len())
            .sum::<usize>() as f64
            / self.members.len().max(1) as f64;
        let rising = if self.monotone.is_empty() {
            String::new()
        } else {
            format!("; the price rises with {}", self.monotone.join(", "))
        };
        format!(
            "{} boosters (depth {}, learning rate {}, {rounds:.0} rounds on average{rising})",
            self.members.len(),
            self.depth,
            self.learning_rate
        )
    }

    /// The table columns its boosters read.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .flat_map(|m| &m.columns)
            .map(|c| match c {
                TreeColumn::Number { column } | TreeColumn::Ranked { column, .. } => {
                    column.as_str()
                }
            })
    }

    /// The outputs of `rows` of `frame`, whose photo inputs (`photo_inputs` a row, when the
    /// trees read them) are `photos`.
    pub fn predict(&self, frame: &Frame, rows: &[usize], photos: &[f32]) -> Vec<f64> {
        let mut sum = vec![0.0; rows.len()];
        for member in &self.members {
            let (x, cols) = inputs(&member.columns, frame, rows, photos, self.photo_inputs);
            let out = member
                .booster
                .predict(&Matrix::new(&x, rows.len(), cols), false);
            sum.iter_mut().zip(out).for_each(|(s, o)| *s += o);
        }
        let k = self.members.len() as f64;
        sum.into_iter().map(|s| s / k).collect()
    }
}

impl Trees {
    /// Each member's inputs of `rows` of `frame` whose photo inputs are `photos`
    /// (`photo_inputs` a row), column-major.
    pub fn member_inputs(&self, frame: &Frame, rows: &[usize], photos: &[f32]) -> Vec<Vec<f64>> {
        self.members
            .iter()
            .map(|m| inputs(&m.columns, frame, rows, photos, self.photo_inputs).0)
            .collect()
    }
}

/// The columns trees read of `schema`: every numeric and categorical column.
fn tree_columns(schema: &Schema) -> Vec<(String, bool)> {
    schema
        .columns
        .iter()
        .filter_map(|c| match c.role {
            Role::Numeric => Some((c.name.clone(), false)),
            Role::Categorical => Some((c.name.clone(), true)),
            _ => None,
        })
        .collect()
}

/// How a booster trained on `rows` (targets `y`, one per row) reads the columns.
fn fit_columns(frame: &Frame, schema: &Schema, rows: &[usize], y: &[f64]) -> Vec<TreeColumn> {
    tree_columns(schema)
        .into_iter()
        .map(|(column, categorical)| {
            if !categorical {
                return TreeColumn::Number { column };
            }
            let mut by_level: BTreeMap<String, (f64, usize)> = BTreeMap::new();
            for (key, &v) in level_keys(frame, &column, rows).into_iter().zip(y) {
                let e = by_level.entry(key).or_default();
                e.0 += v;
                e.1 += 1;
            }
            let mut levels: Vec<(String, f64)> = by_level
                .into_iter()
                .map(|(k, (sum, n))| (k, sum / n as f64))
                .collect();
            levels.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let ranks = levels
                .into_iter()
                .enumerate()
                .map(|(i, (k, _))| (k, i as f64))
                .collect();
            TreeColumn::Ranked { column, ranks }
        })
        .collect()
}

/// The column-major input matrix of `rows` (forust-ml's layout) and its number of columns.
fn inputs(
    columns: &[TreeColumn],
    frame: &Frame,
    rows: &[usize],
    photos: &[f32],
    photo_inputs: usize,
) -> (Vec<f64>, usize) {
    let n = rows.len();
    let mut x = Vec::with_capacity(n * (columns.len() + photo_inputs));
    for column in columns {
        match column {
            TreeColumn::Number { column } => {
                let values = frame.find(column).map(|c| &frame.columns[c]);
                x.extend(rows.iter().map(|&r| match values {
                    Some(Values::Numbers(v)) => v[r].unwrap_or(f64::NAN),
                    _ => f64::NAN,
                }));
            }
            TreeColumn::Ranked { column, ranks } => {
                match frame.find(column).map(|c| &frame.columns[c]) {
                    // Each level's rank looked up once, not each row's (an explanation prices
                    // hundreds of mixed rows per house).
                    Some(Values::Texts(t)) => {
                        let rank = |key: &str| ranks.get(key).copied().unwrap_or(f64::NAN);
                        let of_level: Vec<f64> = t.levels.iter().map(|l| rank(l)).collect();
                        let missing = rank(MISSING_LEVEL);
                        x.extend(rows.iter().map(|&r| match t.codes[r] {
                            Texts::MISSING => missing,
                            code => of_level[code as usize],
                        }));
                    }
                    _ => x.extend(
                        level_keys(frame, column, rows)
                            .iter()
                            .map(|k| ranks.get(k).copied().unwrap_or(f64::NAN)),
                    ),
                }
            }
        }
    }
    for k in 0..photo_inputs {
        x.extend((0..n).map(|i| f64::from(photos[i * photo_inputs + k])));
    }
    (x, columns.len() + photo_inputs)
}

/// Trains one candidate's boosters on `folds` of the training rows `rows` of `frame` (targets
/// `y`; photo inputs `photos`, `photo_inputs` a row), the folds side by side, each booster on
/// one thread. Returns the trees and every row's out-of-fold output.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    frame: &Frame,
    schema: &Schema,
    rows: &[usize],
    y: &[f64],
    photos: &[f32],
    photo_inputs: usize,
    folds: &[Split],
    settings: TreeSettings,
    monotone: &[String],
    seed: u64,
) -> Result<(Trees, Vec<f64>)> {
    use rayon::prelude::*;
    let pick = |idx: &[usize]| -> (Vec<usize>, Vec<f64>, Vec<f32>) {
        let photos = idx
            .iter()
            .flat_map(|&i| {
                photos[i * photo_inputs..(i + 1) * photo_inputs]
                    .iter()
                    .copied()
            })
            .collect();
        (
            idx.iter().map(|&i| rows[i]).collect(),
            idx.iter().map(|&i| y[i]).collect(),
            photos,
        )
    };
    let members: Vec<(TreeMember, Vec<f64>)> = folds
        .par_iter()
        .enumerate()
        .map(|(k, fold)| {
            let (train_rows, train_y, train_photos) = pick(&fold.train);
            let (test_rows, test_y, test_photos) = pick(&fold.test);
            let columns = fit_columns(frame, schema, &train_rows, &train_y);
            let constraints: ConstraintMap = columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    matches!(c, TreeColumn::Number { column } if monotone.contains(column))
                })
                .map(|(i, _)| (i, Constraint::Positive))
                .collect();
            let (x, cols) = inputs(&columns, frame, &train_rows, &train_photos, photo_inputs);
            let (xt, _) = inputs(&columns, frame, &test_rows, &test_photos, photo_inputs);
            let mut booster = GradientBooster::default()
                .set_objective_type(ObjectiveType::SquaredLoss)
                .set_learning_rate(settings.learning_rate as f32)
                .set_max_depth(settings.depth)
                .set_iterations(MAX_ROUNDS)
                .set_seed(seed.wrapping_add(k as u64))
                .set_parallel(false)
                .set_initialize_base_score(true)
                .set_monotone_constraints((!constraints.is_empty()).then_some(constraints))
                .set_evaluation_metric(Some(Metric::RootMeanSquaredError))
                .set_early_stopping_rounds(Some(PATIENCE));
            let (w, wt) = (vec![1.0; train_y.len()], vec![1.0; test_y.len()]);
            let train = Matrix::new(&x, train_rows.len(), cols);
            let test = Matrix::new(&xt, test_rows.len(), cols);
            booster
                .fit(
                    &train,
                    &train_y,
                    &w,
                    Some(vec![(test, &test_y[..], &wt[..])]),
                )
                .map_err(|e| Error::Training(format!("gradient-boosted trees: {e}")))?;
            // Only the trees it predicts with are kept.
            let used = booster.prediction_iteration.unwrap_or(booster.trees.len());
            booster.trees.truncate(used);
            booster.evaluation_history = None;
            let test = Matrix::new(&xt, test_rows.len(), cols);
            let out = booster.predict(&test, false);
            Ok((TreeMember { columns, booster }, out))
        })
        .collect::<Result<_>>()?;
    let mut oof = vec![0.0; y.len()];
    let mut kept = Vec::with_capacity(members.len());
    for ((member, out), fold) in members.into_iter().zip(folds) {
        for (&i, o) in fold.test.iter().zip(out) {
            oof[i] = o;
        }
        kept.push(member);
    }
    Ok((
        Trees {
            members: kept,
            photo_inputs,
            learning_rate: settings.learning_rate,
            depth: settings.depth,
            monotone: monotone.to_vec(),
        },
        oof,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::{SchemaOptions, infer};

    /// 200 rows: the target rises with `area` and depends on the `zone`'s level; every tenth
    /// area is missing.
    fn table() -> (Frame, Schema, Vec<f64>) {
        let mut text = String::from("area,zone,price\n");
        let mut y = Vec::new();
        for i in 0..200 {
            let area = 500 + (i * 37) % 1500;
            let zone = ["a", "b", "c", "d"][i % 4];
            let v = f64::from(area as u32) / 1000.0 + [0.0, 0.5, -0.3, 0.2][i % 4];
            if i % 10 == 0 {
                text.push_str(&format!(",{zone},{v}\n"));
            } else {
                text.push_str(&format!("{area},{zone},{v}\n"));
            }
            y.push(v);
        }
        let frame = crate::data::table::from_csv(text.as_bytes(), Path::new("t.csv")).unwrap();
        let options = SchemaOptions {
            target: Some("price".into()),
            categorical: vec!["zone".into()],
            ..SchemaOptions::default()
        };
        let schema = infer(&frame, &options).unwrap();
        (frame, schema, y)
    }

    use std::path::Path;

    fn fitted(monotone: &[String]) -> (Trees, Vec<f64>) {
        let (frame, schema, y) = table();
        let rows: Vec<usize> = (0..y.len()).collect();
        let folds = crate::data::split::kfold_seeded(y.len(), 4, 1).unwrap();
        let settings = TreeSettings {
            learning_rate: 0.1,
            depth: 3,
        };
        fit(
            &frame,
            &schema,
            &rows,
            &y,
            &[],
            0,
            &folds,
            settings,
            monotone,
            7,
        )
        .unwrap()
    }

    #[test]
    fn trees_learn_the_columns_out_of_fold_the_same_every_time() {
        let (frame, _, y) = table();
        let (trees, oof) = fitted(&[]);
        assert_eq!(trees.members.len(), 4);
        let mae = oof.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64;
        assert!(mae < 0.15, "out-of-fold mean absolute error {mae}");
        let (again, oof_again) = fitted(&[]);
        assert_eq!(oof, oof_again);
        // Saved and read back, the trees price the same, bit for bit.
        let rows: Vec<usize> = (0..y.len()).collect();
        let copy = trees.clone();
        assert_eq!(
            copy.predict(&frame, &rows, &[]),
            again.predict(&frame, &rows, &[])
        );
        // The zone's levels are ranked by their mean target over each booster's rows.
        let TreeColumn::Ranked { ranks, .. } = &trees.members[0].columns[1] else {
            panic!("zone is ranked")
        };
        assert_eq!(ranks["c"], 0.0);
        assert_eq!(ranks["b"], 3.0);
    }

    #[test]
    fn a_monotone_column_only_raises_the_price() {
        let (trees, _) = fitted(&["area".to_string()]);
        let text: String = std::iter::once("area,zone\n".to_string())
            .chain((0..60).map(|i| format!("{},b\n", 400 + 30 * i)))
            .collect();
        let frame = crate::data::table::from_csv(text.as_bytes(), Path::new("q.csv")).unwrap();
        let rows: Vec<usize> = (0..60).collect();
        let prices = trees.predict(&frame, &rows, &[]);
        assert!(prices.windows(2).all(|w| w[1] >= w[0]), "{prices:?}");
    }
}

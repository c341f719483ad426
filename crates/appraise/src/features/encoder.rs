//! The fitted encoder of a user's table: turns a row's columns into the numbers a network
//! reads. Fitted on the training rows only and saved in the model.
//!
//! - Numbers: missing cells take the training median, and a 0/1 indicator column says they
//!   were missing (when any training cell was); skewed non-negative columns may be log-scaled;
//!   then min-max (the tutorial's) or standard scaling.
//! - Categories: a missing cell is its own level; levels seen fewer than `min_level_count`
//!   times in training are pooled into one "other" level; a category unseen in training is
//!   priced as "other" (or all zeros when nothing was pooled) and reported as a warning.
//!   A category with more than `max_one_hot` levels is target-encoded instead of one-hot
//!   encoded: the smoothed mean training target of its level, computed out of fold for the
//!   training rows, so no row's input has seen its own price.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::data::schema::{Role, Schema};
use crate::data::table::{Frame, Values};
use crate::error::{Error, Result};

/// A hash map with a fast, fixed-seed hash (lookups of cell ids, never iterated).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// The key of the missing level of a category.
pub const MISSING_LEVEL: &str = "<missing>";

/// How numbers are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// To [0, 1] over the training rows (the tutorial's MinMaxScaler).
    MinMax,
    /// To mean 0 and standard deviation 1 over the training rows.
    Standard,
}

/// The encoder's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EncoderConfig {
    /// How numbers are scaled.
    pub scaling: Scaling,
    /// Log-scale non-negative numeric columns whose training skewness exceeds 1.
    pub log_skewed: bool,
    /// Log-scale such a column whose values are all at least 1 as ln(v) rather than
    /// ln(1 + v - its minimum).
    pub log_of_value: bool,
    /// Levels seen fewer times than this in training are pooled.
    pub min_level_count: usize,
    /// A category with more kept levels than this is target-encoded.
    pub max_one_hot: usize,
    /// Folds of the out-of-fold target encoding.
    pub target_folds: usize,
    /// Pseudo-count that pulls a rare level's target mean toward the overall mean.
    pub smoothing: f64,
}

impl Default for EncoderConfig {
    /// The tutorial's encoding, generalized: min-max numbers, one-hot categories.
    fn default() -> Self {
        Self {
            scaling: Scaling::MinMax,
            log_skewed: false,
            log_of_value: false,
            min_level_count: 5,
            max_one_hot: 50,
            target_folds: 5,
            smoothing: 10.0,
        }
    }
}

/// How one column becomes inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnEncoding {
    /// A number: `((log? ln(1 + v - log_floor) : v) - shift) / scale`, then an optional
    /// missing indicator.
    Number {
        /// Column name.
        column: String,
        /// Training median, imputed for missing cells.
        median: f64,
        /// Whether a 0/1 missing indicator follows the value.
        indicator: bool,
        /// Whether the value is log-scaled.
        log: bool,
        /// Training minimum (the log's floor unless `log_floor` says otherwise).
        floor: f64,
        /// The log's floor when not the training minimum: 1 for a column of numbers of at
        /// least 1 (areas, counts), so that it reads ln(v), the scale on which a price
        /// multiplies (format 8; absent: the training minimum, as every model before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_floor: Option<f64>,
        /// The log is `ln(max(v, log_floor))` itself rather than `ln(1 + v - log_floor)`: the
        /// Houses recipe's area in model formats 2 to 7, read into this encoder exactly.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ln: bool,
        /// Training maximum (absent in models written before price ranges).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ceiling: Option<f64>,
        /// Subtracted after the log.
        shift: f64,
        /// Divided by after the shift (1 for a constant column).
        scale: f64,
    },
    /// One 0/1 input per kept level, then one for "other" when levels were pooled.
    OneHot {
        /// Column name.
        column: String,
        /// Kept levels, in input order (sorted as text when fitted on a table).
        levels: Vec<String>,
        /// Whether rare levels were pooled into an "other" input.
        other: bool,
        /// The levels pooled into "other", sorted (they are not reported as unseen).
        #[serde(default)]
        pooled: Vec<String>,
    },
    /// The smoothed mean training target of the level, standardized.
    TargetMean {
        /// Column name.
        column: String,
        /// Each level's smoothed mean target.
        means: BTreeMap<String, f64>,
        /// The overall mean target, for unseen levels.
        prior: f64,
        /// Subtracted from the mean.
        shift: f64,
        /// Divided by after the shift.
        scale: f64,
    },
}

impl ColumnEncoding {
    /// The column this encodes.
    pub fn column(&self) -> &str {
        match self {
            ColumnEncoding::Number { column, .. }
            | ColumnEncoding::OneHot { column, .. }
            | ColumnEncoding::TargetMean { column, .. } => column,
        }
    }

    /// Inputs it produces.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoding::Number { indicator, .. } => 1 + usize::from(*indicator),
            ColumnEncoding::OneHot { levels, other, .. } => levels.len() + usize::from(*other),
            ColumnEncoding::TargetMean { .. } => 1,
        }
    }

    /// A line for `summary`.
    pub fn describe(&self) -> String {
        match self {
            ColumnEncoding::Number {
                column,
                median,
                indicator,
                log,
                ..
            } => format!(
                "{column}: number{}{}, missing -> median {median}",
                if *log { ", log-scaled" } else { "" },
                if *indicator {
                    " + missing indicator"
                } else {
                    ""
                }
            ),
            ColumnEncoding::OneHot {
                column,
                levels,
                other,
                ..
            } => format!(
                "{column}: one-hot of {} levels{}{}",
                levels.len(),
                if levels.len() <= 20 {
                    format!(" ({})", levels.join(", "))
                } else {
                    String::new()
                },
                if *other {
                    " + other (rare and unseen)"
                } else {
                    ""
                }
            ),
            ColumnEncoding::TargetMean { column, means, .. } => format!(
                "{column}: target mean of {} levels (out of fold in training; unseen -> overall mean)",
                means.len()
            ),
        }
    }
}

/// The fitted encoder: one [`ColumnEncoding`] per input column, in table order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    /// The settings it was fitted with.
    pub config: EncoderConfig,
    /// The columns, in order.
    pub columns: Vec<ColumnEncoding>,
}

/// What encoding new rows found worth telling the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warnings {
    /// One line per column with unseen categories.
    pub lines: Vec<String>,
    /// The same, as data: per column with unseen categories, the column, how many rows, the
    /// first such category, and the levels the encoder knows.
    pub unseen: Vec<UnseenLevels>,
}

/// Rows of one categorical column whose category the encoder has not seen.
#[derive(Debug, Clone, PartialEq)]
pub struct UnseenLevels {
    /// The column.
    pub column: String,
    /// Rows with an unseen category.
    pub rows: usize,
    /// The first unseen category.
    pub example: String,
    /// The categories seen in training, sorted.
    pub known: Vec<String>,
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn level(values: &Values, row: usize) -> String {
    values.key(row).unwrap_or_else(|| MISSING_LEVEL.to_string())
}

impl Encoder {
    /// Inputs per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoding::width).sum()
    }

    /// Fits on the training `rows` of `frame` whose targets (on the scale the model learns)
    /// are `y`, and returns the encoder with the training rows' inputs (row-major; target
    /// encodings out of fold).
    pub fn fit(
        frame: &Frame,
        schema: &Schema,
        rows: &[usize],
        y: &[f64],
        config: &EncoderConfig,
    ) -> Result<(Self, Vec<f32>)> {
        assert_eq!(rows.len(), y.len(), "one target per training row");
        let mut columns = Vec::new();
        // The out-of-fold target encodings of the training rows, by column position.
        let mut out_of_fold: Vec<(usize, Vec<f64>)> = Vec::new();
        for info in schema.inputs() {
            let c = frame
                .find(&info.name)
                .expect("the schema's columns are the frame's");
            let values = &frame.columns[c];
            let encoding = match (info.role, values) {
                (Role::Numeric, Values::Numbers(v)) => fit_number(&info.name, v, rows, config),
                _ if info.levels.is_some() => ColumnEncoding::OneHot {
                    column: info.name.clone(),
                    levels: info.levels.clone().unwrap_or_default(),
                    other: false,
                    pooled: Vec::new(),
                },
                _ => {
                    let (encoding, oof) = fit_category(&info.name, values, rows, y, config);
                    if let Some(oof) = oof {
                        out_of_fold.push((columns.len(), oof));
                    }
                    encoding
                }
            };
            columns.push(encoding);
        }
        let encoder = Self {
            config: config.clone(),
            columns,
        };
        let (mut features, _) = encoder.encode(frame, rows)?;
        let width = encoder.width();
        for (k, oof) in out_of_fold {
            let offset: usize = encoder.columns[..k].iter().map(ColumnEncoding::width).sum();
            for (row, v) in features.chunks_exact_mut(width).zip(oof) {
                row[offset] = v as f32;
            }
        }
        Ok((encoder, features))
    }

    /// Encodes the `rows` of `frame` (a training table or a new one with the model's
    /// columns). A missing column, or a number column holding text, is an error naming the
    /// column and the row.
    pub fn encode(&self, frame: &Frame, rows: &[usize]) -> Result<(Vec<f32>, Warnings)> {
        let (out, unseen) = self.encode_counting(frame, rows)?;
        Ok((out, self.warnings(&unseen)))
    }

    /// [`Encoder::encode`] with, instead of the warnings, each column's count of rows with an
    /// unseen category and the first such category: parts of a table encoded apart merge
    /// with [`merge_unseen`] into what encoding them together finds.
    pub fn encode_counting(&self, frame: &Frame, rows: &[usize]) -> Result<(Vec<f32>, Unseen)> {
        let mut per_column: Vec<(&ColumnEncoding, &Values)> = Vec::new();
        for encoding in &self.columns {
            let name = encoding.column();
            let c = frame.find(name).ok_or_else(|| Error::Input {
                path: frame.path.clone(),
                message: format!(
                    "has no column {name:?}, which the model reads; its columns are: {}",
                    frame.names.join(", ")
                ),
            })?;
            let values = &frame.columns[c];
            if let (ColumnEncoding::Number { .. }, Values::Texts(cells)) = (encoding, values) {
                // The first non-number among the rows asked for, else anywhere in the column.
                let bad = |r: &usize| {
                    cells
                        .get(*r)
                        .filter(|t| crate::data::table::parse_number(t).is_none())
                        .map(|t| (*r, t))
                };
                let (row, cell) = rows
                    .iter()
                    .find_map(bad)
                    .or_else(|| (0..cells.codes.len()).find_map(|r| bad(&r)))
                    .expect("a text column has a non-number");
                return Err(Error::Parse {
                    path: frame.path.clone(),
                    line: frame.line(row),
                    field: name.to_string(),
                    message: format!(
                        "{cell:?} is not a number; the model reads {name} as a number"
                    ),
                });
            }
            per_column.push((encoding, values));
        }
        let width = self.width();
        let mut out = vec![0.0f32; rows.len() * width];
        let mut unseen: Vec<(usize, Option<String>)> = vec![(0, None); per_column.len()];
        let mut offset = 0;
        // Column by column; a category's distinct values are looked up once each.
        for (k, (encoding, values)) in per_column.iter().enumerate() {
            let w = encoding.width();
            let mut memo: FastMap<u64, (Option<usize>, f64, bool)> = FastMap::default();
            let mut resolve = |r: usize| -> (Option<usize>, f64, bool) {
                *memo.entry(cell_id(values, r)).or_insert_with(|| {
                    let key = level(values, r);
                    match encoding {
                        ColumnEncoding::OneHot { levels, pooled, .. } => {
                            // Looked up once per distinct value, in the levels' own order
                            // (a table's are sorted as text, the Houses zip codes as numbers).
                            let hit = levels.iter().position(|l| *l == key);
                            let new = hit.is_none() && pooled.binary_search(&key).is_err();
                            (hit, 0.0, new)
                        }
                        ColumnEncoding::TargetMean {
                            means,
                            prior,
                            shift,
                            scale,
                            ..
                        } => {
                            let (m, new) = means.get(&key).map_or((*prior, true), |&m| (m, false));
                            (None, (m - shift) / scale, new)
                        }
                        ColumnEncoding::Number { .. } => unreachable!("categories only"),
                    }
                })
            };
            for (i, &r) in rows.iter().enumerate() {
                let cell = &mut out[i * width + offset..i * width + offset + w];
                match (encoding, values) {
                    (ColumnEncoding::Number { .. }, Values::Numbers(v)) => {
                        number_into(encoding, v[r], cell);
                    }
                    (ColumnEncoding::Number { .. }, Values::Texts(_)) => {
                        unreachable!("checked above")
                    }
                    (ColumnEncoding::OneHot { other, .. }, _) => {
                        let (hit, _, new) = resolve(r);
                        if new {
                            unseen[k].0 += 1;
                            unseen[k].1.get_or_insert_with(|| level(values, r));
                        }
                        match hit {
                            Some(h) => cell[h] = 1.0,
                            None if *other => cell[w - 1] = 1.0,
                            None => {}
                        }
                    }
                    (ColumnEncoding::TargetMean { .. }, _) => {
                        let (_, v, new) = resolve(r);
                        if new {
                            unseen[k].0 += 1;
                            unseen[k].1.get_or_insert_with(|| level(values, r));
                        }
                        cell[0] = v as f32;
                    }
                }
            }
            offset += w;
        }
        Ok((out, unseen))
    }

    /// The warnings of [`Encoder::encode_counting`]'s unseen categories.
    pub fn warnings(&self, unseen: &Unseen) -> Warnings {
        let mut warnings = Warnings::default();
        for ((count, example), encoding) in unseen.iter().zip(&self.columns) {
            if let Some(example) = example {
                let fallback = match encoding {
                    ColumnEncoding::OneHot { other: true, .. } => "priced as the pooled rare level",
                    ColumnEncoding::OneHot { .. } => "priced with no level of this column",
                    _ => "priced with the overall mean",
                };
                warnings.lines.push(format!(
                    "column {}: {count} row(s) have categories not seen in training (e.g. {example:?}); {fallback}",
                    encoding.column()
                ));
                let mut known: Vec<String> = match encoding {
                    ColumnEncoding::OneHot { levels, pooled, .. } => {
                        levels.iter().chain(pooled).cloned().collect()
                    }
                    ColumnEncoding::TargetMean { means, .. } => means.keys().cloned().collect(),
                    ColumnEncoding::Number { .. } => Vec::new(),
                };
                known.sort();
                warnings.unseen.push(UnseenLevels {
                    column: encoding.column().to_string(),
                    rows: *count,
                    example: example.clone(),
                    known,
                });
            }
        }
        warnings
    }
}

/// Per encoded column: rows with a category not seen in training, and the first one.
pub type Unseen = Vec<(usize, Option<String>)>;

/// Adds `later`'s unseen categories (of rows after `into`'s) to `into`.
pub fn merge_unseen(into: &mut Unseen, later: Unseen) {
    for ((count, example), (more, other)) in into.iter_mut().zip(later) {
        *count += more;
        if example.is_none() {
            *example = other;
        }
    }
}

impl Encoder {
    /// Why each of `rows` lies outside what the encoder was fitted on, if it does: a number
    /// outside the training rows' range, a category not seen in training (`None`: inside).
    /// Price ranges come from houses like the training ones, so such a house's range is
    /// flagged rather than trusted. `frame` must hold the encoder's columns (as for
    /// [`Encoder::encode`], which reports the errors).
    pub fn outside_training(&self, frame: &Frame, rows: &[usize]) -> Vec<Option<String>> {
        use rayon::prelude::*;
        // Parts of the rows on every core; each row's answer depends on that row alone.
        rows.par_chunks(65_536)
            .map(|part| self.outside_part(frame, part))
            .collect::<Vec<_>>()
            .concat()
    }

    fn outside_part(&self, frame: &Frame, rows: &[usize]) -> Vec<Option<String>> {
        let mut out: Vec<Option<String>> = vec![None; rows.len()];
        let mut add = |i: usize, reason: String| match &mut out[i] {
            Some(text) => {
                text.push_str("; ");
                text.push_str(&reason);
            }
            slot => *slot = Some(reason),
        };
        for encoding in &self.columns {
            let name = encoding.column();
            let Some(c) = frame.find(name) else { continue };
            let values = &frame.columns[c];
            match (encoding, values) {
                (
                    ColumnEncoding::Number {
                        floor,
                        ceiling: Some(ceiling),
                        ..
                    },
                    Values::Numbers(v),
                ) => {
                    for (i, &r) in rows.iter().enumerate() {
                        let Some(x) = v[r] else { continue };
                        let side = if x < *floor {
                            "below"
                        } else if x > *ceiling {
                            "above"
                        } else {
                            continue;
                        };
                        add(
                            i,
                            format!("{name} {x} {side} the training range {floor} .. {ceiling}"),
                        );
                    }
                }
                (ColumnEncoding::Number { .. }, _) => {}
                (ColumnEncoding::OneHot { levels, pooled, .. }, _) => {
                    let mut memo: FastMap<u64, bool> = FastMap::default();
                    for (i, &r) in rows.iter().enumerate() {
                        let new = *memo.entry(cell_id(values, r)).or_insert_with(|| {
                            let key = level(values, r);
                            !levels.contains(&key) && pooled.binary_search(&key).is_err()
                        });
                        if new {
                            add(
                                i,
                                format!("{name} {} not seen in training", shown(values, r)),
                            );
                        }
                    }
                }
                (ColumnEncoding::TargetMean { means, .. }, _) => {
                    let mut memo: FastMap<u64, bool> = FastMap::default();
                    for (i, &r) in rows.iter().enumerate() {
                        let new = *memo
                            .entry(cell_id(values, r))
                            .or_insert_with(|| !means.contains_key(&level(values, r)));
                        if new {
                            add(
                                i,
                                format!("{name} {} not seen in training", shown(values, r)),
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

/// A category as a message shows it: a number as written, a text in quotes.
fn shown(values: &Values, row: usize) -> String {
    match values {
        Values::Numbers(_) => level(values, row),
        Values::Texts(_) => format!("{:?}", level(values, row)),
    }
}

/// A cell's identity within its column, for memoizing lookups: the text's code, or the
/// number's bits.
fn cell_id(values: &Values, row: usize) -> u64 {
    match values {
        Values::Texts(t) => u64::from(t.codes[row]),
        Values::Numbers(v) => v[row].map_or(u64::MAX, f64::to_bits),
    }
}

fn number_into(encoding: &ColumnEncoding, value: Option<f64>, cell: &mut [f32]) {
    let ColumnEncoding::Number {
        median,
        indicator,
        log,
        floor,
        log_floor,
        ln,
        shift,
        scale,
        ..
    } = encoding
    else {
        unreachable!("a number encoding")
    };
    let v = value.unwrap_or(*median);
    let t = if *ln {
        v.max(log_floor.unwrap_or(*floor)).ln()
    } else if *log {
        (v - log_floor.unwrap_or(*floor)).max(0.0).ln_1p()
    } else {
        v
    };
    cell[0] = ((t - shift) / scale) as f32;
    if *indicator {
        cell[1] = f32::from(u8::from(value.is_none()));
    }
}

fn fit_number(
    name: &str,
    values: &[Option<f64>],
    rows: &[usize],
    config: &EncoderConfig,
) -> ColumnEncoding {
    let mut present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
    let indicator = present.len() < rows.len();
    let floor = present.iter().copied().fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let ceiling = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ceiling = ceiling.is_finite().then_some(ceiling);
    let (m, s) = crate::evaluate::stats::mean_std(&present);
    let skew = if s > 0.0 {
        present.iter().map(|v| ((v - m) / s).powi(3)).sum::<f64>() / present.len() as f64
    } else {
        0.0
    };
    let log = config.log_skewed && floor >= 0.0 && skew > 1.0;
    let log_floor = (log && config.log_of_value && floor >= 1.0).then_some(1.0);
    let med = median(&mut present);
    let transformed: Vec<f64> = rows
        .iter()
        .map(|&r| {
            let v = values[r].unwrap_or(med);
            if log {
                (v - log_floor.unwrap_or(floor)).max(0.0).ln_1p()
            } else {
                v
            }
        })
        .collect();
    let (shift, scale) = match config.scaling {
        Scaling::MinMax => {
            let lo = transformed.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = transformed
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            (lo, hi - lo)
        }
        Scaling::Standard => crate::evaluate::stats::mean_std(&transformed),
    };
    let scale = if scale > 1e-12 { scale } else { 1.0 };
    ColumnEncoding::Number {
        column: name.to_string(),
        median: med,
        indicator,
        log,
        floor,
        log_floor,
        ln: false,
        ceiling,
        shift,
        scale,
    }
}

fn fit_category(
    name: &str,
    values: &Values,
    rows: &[usize],
    y: &[f64],
    config: &EncoderConfig,
) -> (ColumnEncoding, Option<Vec<f64>>) {
    // Each distinct cell once: `dense[i]` is row i's index into `names`.
    let mut index: FastMap<u64, usize> = FastMap::default();
    let mut names: Vec<String> = Vec::new();
    let dense: Vec<usize> = rows
        .iter()
        .map(|&r| {
            *index.entry(cell_id(values, r)).or_insert_with(|| {
                names.push(level(values, r));
                names.len() - 1
            })
        })
        .collect();
    let mut per_name = vec![0usize; names.len()];
    for &d in &dense {
        per_name[d] += 1;
    }
    let counts: BTreeMap<&str, usize> = names
        .iter()
        .map(String::as_str)
        .zip(per_name.iter().copied())
        .collect();
    let levels: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n >= config.min_level_count.max(1))
        .map(|(k, _)| k.to_string())
        .collect();
    if levels.len() <= config.max_one_hot {
        let other = levels.len() < counts.len();
        let pooled = counts
            .keys()
            .filter(|k| levels.binary_search_by(|l| l.as_str().cmp(k)).is_err())
            .map(|k| k.to_string())
            .collect();
        let encoding = ColumnEncoding::OneHot {
            column: name.to_string(),
            levels,
            other,
            pooled,
        };
        return (encoding, None);
    }
    // Target encoding: the full-training means for new rows, out-of-fold means for the
    // training rows (fold of a row: its position modulo the folds, over a fixed shuffle).
    let smoothed = |members: &mut dyn Iterator<Item = usize>| -> (BTreeMap<String, f64>, f64) {
        let members: Vec<usize> = members.collect();
        let prior = members.iter().map(|&i| y[i]).sum::<f64>() / members.len().max(1) as f64;
        let mut sums = vec![(0.0f64, 0.0f64); names.len()];
        for &i in &members {
            let e = &mut sums[dense[i]];
            e.0 += y[i];
            e.1 += 1.0;
        }
        let means = sums
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0.0)
            .map(|(d, (s, n))| {
                (
                    names[d].clone(),
                    (s + config.smoothing * prior) / (n + config.smoothing),
                )
            })
            .collect();
        (means, prior)
    };
    let (means, prior) = smoothed(&mut (0..rows.len()));
    let folds = config.target_folds.max(2);
    let order = crate::data::split::NumpyRandomState::new(0).permutation(rows.len());
    let mut fold_of = vec![0; rows.len()];
    for (position, &i) in order.iter().enumerate() {
        fold_of[i] = position % folds;
    }
    let mut oof = vec![0.0; rows.len()];
    for k in 0..folds {
        let (fold_means, fold_prior) = smoothed(&mut (0..rows.len()).filter(|&i| fold_of[i] != k));
        for i in (0..rows.len()).filter(|&i| fold_of[i] == k) {
            oof[i] = fold_means
                .get(&names[dense[i]])
                .copied()
                .unwrap_or(fold_prior);
        }
    }
    let (shift, scale) = crate::evaluate::stats::mean_std(&oof);
    let scale = if scale > 1e-12 { scale } else { 1.0 };
    let block = oof.iter().map(|m| (m - shift) / scale).collect();
    let encoding = ColumnEncoding::TargetMean {
        column: name.to_string(),
        means,
        prior,
        shift,
        scale,
    };
    (encoding, Some(block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::{SchemaOptions, infer};
    use std::path::Path;

    fn frame(text: &str) -> Frame {
        crate::data::table::from_csv(text.as_bytes(), Path::new("t.csv")).unwrap()
    }

    #[test]
    fn numbers_are_imputed_and_categories_pooled() {
        let mut text = String::from("area,kind,price\n");
        for i in 0..12 {
            let area = if i == 3 {
                String::new()
            } else {
                (100 * (i + 1)).to_string()
            };
            let kind = if i == 11 { "castle" } else { ["a", "b"][i % 2] };
            text.push_str(&format!("{area},{kind},{}\n", 1000 + i));
        }
        let f = frame(&text);
        let s = infer(&f, &SchemaOptions::default()).unwrap();
        let rows: Vec<usize> = (0..12).collect();
        let y = vec![0.0; 12];
        let (enc, train) = Encoder::fit(&f, &s, &rows, &y, &EncoderConfig::default()).unwrap();
        // area + indicator, then a, b, other.
        assert_eq!(enc.width(), 5);
        // The missing area takes the median, 700: (700 - 100) / (1200 - 100).
        assert_eq!(&train[3 * 5..4 * 5], &[6.0 / 11.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(&train[11 * 5 + 2..12 * 5], &[0.0, 0.0, 1.0]);
        let (again, warnings) = enc.encode(&f, &rows).unwrap();
        assert_eq!(again, train);
        assert!(warnings.lines.is_empty());
        let new = frame("kind,area\nbarn,200\n");
        let (x, warnings) = enc.encode(&new, &[0]).unwrap();
        assert_eq!(&x[2..], &[0.0, 0.0, 1.0]);
        assert!(warnings.lines[0].contains("barn"), "{warnings:?}");
        let err = enc.encode(&frame("kind\na\n"), &[0]).unwrap_err();
        assert!(err.to_string().contains("no column \"area\""), "{err}");
        let err = enc
            .encode(&frame("area,kind\n1,a\nbig,b\n"), &[0, 1])
            .unwrap_err();
        assert!(err.to_string().contains("t.csv:3: field area"), "{err}");
    }

    #[test]
    fn a_skewed_column_of_at_least_one_is_logged_as_ln_of_the_value() {
        // Areas 500 .. ~1e5, right-skewed: with log_of_value the column reads ln(area), with
        // it off ln(1 + area - 500), as models written before read it.
        let mut text = String::from("area,zeros,price\n");
        for i in 0..40 {
            let area = 500.0 * 1.15f64.powi(i);
            text.push_str(&format!(
                "{area},{},1\n",
                if i < 30 { 0 } else { i * i * i }
            ));
        }
        let f = frame(&text);
        let s = infer(&f, &SchemaOptions::default()).unwrap();
        let rows: Vec<usize> = (0..40).collect();
        let config = |log_of_value| EncoderConfig {
            scaling: Scaling::Standard,
            log_skewed: true,
            log_of_value,
            ..EncoderConfig::default()
        };
        let (enc, x) = Encoder::fit(&f, &s, &rows, &[0.0; 40], &config(true)).unwrap();
        let floors: Vec<(bool, Option<f64>)> = enc
            .columns
            .iter()
            .map(|c| match c {
                ColumnEncoding::Number { log, log_floor, .. } => (*log, *log_floor),
                _ => unreachable!("numbers"),
            })
            .collect();
        // The column with zeros keeps ln(1 + v - 0).
        assert_eq!(floors, vec![(true, Some(1.0)), (true, None)]);
        // ln(area) is evenly spaced here, so its standardized values are too.
        let gaps: Vec<f32> = (1..40).map(|r| x[r * 2] - x[(r - 1) * 2]).collect();
        assert!(gaps.iter().all(|g| (g - gaps[0]).abs() < 1e-4), "{gaps:?}");
        let (old, _) = Encoder::fit(&f, &s, &rows, &[0.0; 40], &config(false)).unwrap();
        assert!(matches!(
            old.columns[0],
            ColumnEncoding::Number {
                log: true,
                log_floor: None,
                ..
            }
        ));
    }

    #[test]
    fn many_levels_are_target_encoded_out_of_fold() {
        let mut text = String::from("zone,price\n");
        for i in 0..200 {
            text.push_str(&format!("z{},{}\n", i % 40, i % 40));
        }
        let f = frame(&text);
        let s = infer(&f, &SchemaOptions::default()).unwrap();
        let rows: Vec<usize> = (0..200).collect();
        let y: Vec<f64> = (0..200).map(|i| f64::from(i % 40)).collect();
        let config = EncoderConfig {
            max_one_hot: 10,
            smoothing: 1.0,
            ..EncoderConfig::default()
        };
        let (enc, train) = Encoder::fit(&f, &s, &rows, &y, &config).unwrap();
        assert_eq!(enc.width(), 1);
        assert!(matches!(enc.columns[0], ColumnEncoding::TargetMean { .. }));
        // The encoding tracks the target, and the training rows' values are out of fold.
        let (new, _) = enc.encode(&f, &rows).unwrap();
        assert_ne!(new, train);
        let corr = |a: &[f32]| {
            let (ma, my) = (a.iter().sum::<f32>() / 200.0, 19.5f32);
            a.iter()
                .zip(&y)
                .map(|(v, t)| (v - ma) * (*t as f32 - my))
                .sum::<f32>()
        };
        assert!(corr(&train) > 0.0 && corr(&new) > 0.0);
    }
}

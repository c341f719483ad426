//! Why a price: each input's share of it ([`shapley`]), the comparable sales the model sees
//! as nearest ([`comparables`]), both from the training sales the model file keeps
//! ([`sales`]), and the confidence its calibrated range implies.

pub mod comparables;
pub mod sales;
pub mod shapley;
pub mod tree_shap;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::schema::Role;
use crate::data::table::Frame;
use crate::error::Result;
use crate::fit::tabular::TableModel;

/// Comparable sales shown per house unless asked otherwise.
pub const DEFAULT_COMPS: usize = 5;
/// The level of the range the forecast standard deviation is read from (one standard
/// deviation either side of a normal error).
pub const FSD_LEVEL: f64 = 0.68;

/// Why a house got its price.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Explanation {
    /// The price the shares start from: the geometric mean of the model's prices of its
    /// background sales (`null` for a model file without kept sales).
    pub reference_price: Option<f64>,
    /// Each input column's share: `reference_price` times every `factor` is the price.
    pub contributions: Vec<Contribution>,
    /// `"exact"` (every coalition of inputs), `"sampled"` (see each share's `error`), or
    /// `"none"` (a model file without kept sales).
    pub method: &'static str,
    /// The nearest training sales, nearest first.
    pub comparables: Vec<Comparable>,
    /// The median of their adjusted prices.
    pub comparables_median: Option<f64>,
    /// Forecast standard deviation: half the width of the 68% range over the price.
    pub fsd: Option<f64>,
    /// 100 x (1 - fsd), within 0 to 100.
    pub confidence: Option<f64>,
    /// What this explanation lacks and why, when it lacks something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One input column's share of a price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// The column.
    pub column: String,
    /// The house's value in it (a photo column: its paths).
    pub value: String,
    /// The price's factor from it: exp(its Shapley value of ln(price)).
    pub factor: f64,
    /// Its share of `price - reference_price`, in proportion to its Shapley value.
    pub dollars: f64,
    /// The standard error of its Shapley value when sampled (0 when exact).
    pub error: f64,
}

/// One comparable sale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparable {
    /// Its identifier (its line in the training table when the table has none).
    pub id: String,
    /// What it sold for.
    pub sale_price: f64,
    /// The model's price for it.
    pub predicted_price: f64,
    /// Its sale price times the model's ratio of the house's price to its own.
    pub adjusted_price: f64,
    /// How far it is from the house ([`comparables`]).
    pub distance: f64,
    /// Its values in the columns the model reads.
    pub attributes: BTreeMap<String, String>,
    /// Its photo paths, one text per photo column.
    pub photos: Vec<String>,
}

/// The forecast standard deviation and confidence score of a price `price` of `model`
/// (`None` without a calibration, or for a price at or below zero): half the width of its 68% range over the price, and
/// 100 x (1 - that), within 0 to 100.
pub fn confidence(model: &TableModel, price: f64) -> Option<(f64, f64)> {
    // A price at or below zero (the tutorial's scale can give one) has no relative spread.
    if price <= 0.0 {
        return None;
    }
    let r = model.ranges(&[price], FSD_LEVEL)?;
    let fsd = (r[0].1 - r[0].0) / 2.0 / price;
    Some((fsd, (100.0 * (1.0 - fsd)).clamp(0.0, 100.0)))
}

/// Explains the `prices` the model gave `rows` of `frame`, each with up to `comps`
/// comparable sales.
pub fn explain(
    model: &TableModel,
    frame: &Frame,
    rows: &[usize],
    prices: &[f64],
    comps: usize,
) -> Result<Vec<Explanation>> {
    let confidence: Vec<(Option<f64>, Option<f64>)> = prices
        .iter()
        .map(|&p| confidence(model, p).map_or((None, None), |(f, c)| (Some(f), Some(c))))
        .collect();
    let sales = model
        .sales
        .as_ref()
        .filter(|_| model.network_photo_columns().is_empty());
    let Some(sales) = sales else {
        let note = match model.network_photo_columns().is_empty() {
            true => {
                "this model file keeps no training sales (written before appraise 0.2, or \
                 in an older format): no shares or comparables; retrain it to get them"
            }
            false => {
                "the tutorial's photo networks (cnn, mixed) read a montage of the photos, which \
                 cannot be split into inputs: no shares or comparables"
            }
        };
        return Ok(confidence
            .into_iter()
            .map(|(fsd, confidence)| Explanation {
                reference_price: None,
                contributions: Vec::new(),
                method: "none",
                comparables: Vec::new(),
                comparables_median: None,
                fsd,
                confidence,
                note: Some(note.into()),
            })
            .collect());
    };
    let parts = match &model.photo {
        Some(head) => model
            .embeddings(frame, rows)?
            .chunks_exact(head.backbone.dim() * head.columns.len())
            .flat_map(|e| head.parts(e))
            .collect(),
        None => Vec::new(),
    };
    let game = shapley::Game::new(model, sales, Some((frame, rows, parts)))?;
    let reference_ln = game.reference_ln();
    let players = shapley::players(model);
    let id_column = model.schema.identifier().and_then(|name| frame.find(name));
    let same_table = std::fs::canonicalize(&frame.path)
        .is_ok_and(|p| p == std::path::Path::new(&model.info.data));
    let shown = shown_columns(model);
    let method = if players.len() <= shapley::EXACT_PLAYERS {
        "exact"
    } else {
        "sampled"
    };
    (0..rows.len())
        .into_par_iter()
        .zip(confidence)
        .map(|(i, (fsd, confidence))| {
            let subject = sales.len() + i;
            let (phi, error, own) = game.shares(subject)?;
            // Dollars per unit of ln(price) share: (price - reference) / ln(price / reference),
            // the reference price itself where the two are too close to divide.
            let span = own - reference_ln;
            let per_share = if span.abs() > 1e-9 {
                (own.exp() - reference_ln.exp()) / span
            } else {
                reference_ln.exp()
            };
            let contributions = shown
                .iter()
                .cloned()
                .map(|column| {
                    let g = players.iter().position(|(name, _)| *name == column);
                    let share = g.map_or(0.0, |g| phi[g]);
                    Contribution {
                        value: frame
                            .find(&column)
                            .map(|c| frame.columns[c].display(rows[i]))
                            .unwrap_or_default(),
                        factor: share.exp(),
                        dollars: share * per_share,
                        error: g.map_or(0.0, |g| error[g]),
                        column,
                    }
                })
                .collect();
            // The house itself: the sale of its identifier, or of its line when it is a row
            // of the training table.
            let own_id = match id_column {
                Some(c) => frame.columns[c].key(rows[i]),
                None if same_table => {
                    Some(crate::fit::tabular::row_name(frame, &model.schema, rows[i]))
                }
                None => None,
            };
            let comparables: Vec<Comparable> =
                comparables::nearest(model, sales, &game, subject, own_id.as_deref(), comps)
                    .into_iter()
                    .map(|(s, distance)| comparable(sales, &game, s, distance, prices[i]))
                    .collect();
            Ok(Explanation {
                reference_price: Some(reference_ln.exp()),
                contributions,
                method,
                comparables_median: median(comparables.iter().map(|c| c.adjusted_price)),
                comparables,
                fsd,
                confidence,
                note: None,
            })
        })
        .collect()
}

/// A test house whose price the run report explains.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Which it is: "best", "median" or "worst" priced.
    pub label: &'static str,
    /// What names it (its identifier, else its line).
    pub place: String,
    /// Its sale price.
    pub actual: f64,
    /// The model's price.
    pub predicted: f64,
    /// Why.
    pub explanation: Explanation,
}

/// The best, median and worst priced of `rows` of `frame` (sold for `actual`, priced
/// `predicted`), explained (none when the model keeps no sales).
pub fn examples(
    model: &TableModel,
    frame: &Frame,
    rows: &[usize],
    actual: &[f64],
    predicted: &[f64],
) -> Result<Vec<Example>> {
    if model.sales.is_none() || !model.network_photo_columns().is_empty() || rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let error = |i: usize| crate::evaluate::metrics::abs_pct_error(actual[i], predicted[i]);
    order.sort_by(|&a, &b| error(a).total_cmp(&error(b)).then(a.cmp(&b)));
    let picks = [
        ("best", order[0]),
        ("median", order[order.len() / 2]),
        ("worst", order[order.len() - 1]),
    ];
    let chosen: Vec<usize> = picks.iter().map(|(_, i)| rows[*i]).collect();
    let prices: Vec<f64> = picks.iter().map(|(_, i)| predicted[*i]).collect();
    let explained = explain(model, frame, &chosen, &prices, DEFAULT_COMPS)?;
    Ok(picks
        .iter()
        .zip(explained)
        .map(|((label, i), explanation)| Example {
            label,
            place: crate::fit::tabular::row_name(frame, &model.schema, rows[*i]),
            actual: actual[*i],
            predicted: predicted[*i],
            explanation,
        })
        .collect())
}

/// The columns an explanation lists: every column but the price and the identifier, in
/// schema order (those the model does not read, ignored ones too, get a factor of 1).
pub fn shown_columns(model: &TableModel) -> Vec<String> {
    let read = model.read_columns();
    let photos = model.photo_columns();
    model
        .schema
        .columns
        .iter()
        .filter(|c| {
            !matches!(c.role, Role::Target | Role::Identifier)
                || read.contains(&c.name)
                || photos.contains(&c.name)
        })
        .map(|c| c.name.clone())
        .collect()
}

fn comparable(
    sales: &sales::Sales,
    game: &shapley::Game,
    s: usize,
    distance: f64,
    price: f64,
) -> Comparable {
    let pool = game.pool();
    Comparable {
        id: sales.ids[s].clone(),
        sale_price: sales.prices[s],
        predicted_price: sales.predicted[s],
        adjusted_price: sales.prices[s] * price / sales.predicted[s],
        distance,
        attributes: pool
            .names
            .iter()
            .zip(&pool.columns)
            .map(|(name, values)| (name.clone(), values.display(s)))
            .collect(),
        photos: sales.photos.get(s).cloned().unwrap_or_default(),
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(match n % 2 {
        1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    })
}

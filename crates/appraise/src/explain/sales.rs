//! The training sales a model file keeps for its explanations: the columns its price reads,
//! each sale's price and the model's price for it, and its photos' parts of the photo price.
//! Comparables are picked from them, and a fixed sample of them is the background each
//! input's share is measured against.

use serde::{Deserialize, Serialize};

use crate::data::table::{Frame, Texts, Values};
use crate::error::{Error, Result};
use crate::fit::tabular::TableModel;
use crate::photos::table_photos;

/// Sales kept at most (an evenly spaced sample of larger training sets).
pub const MAX_SALES: usize = 20_000;
/// Sales in the background sample the shares are measured against (all when fewer).
pub const BACKGROUND: usize = 100;
/// Background sales explained at training to weigh the inputs for comparables.
const IMPORTANCE_SALES: usize = 20;

/// One column of the kept sales, as the training table held it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SalesColumn {
    /// A column of numbers (`null` where missing).
    Numbers {
        /// Column name.
        name: String,
        /// One value per sale.
        numbers: Vec<Option<f64>>,
    },
    /// A column of texts: each sale's index into `levels` (4294967295 where missing).
    Texts {
        /// Column name.
        name: String,
        /// The distinct texts.
        levels: Vec<String>,
        /// One code per sale.
        codes: Vec<u32>,
    },
}

impl SalesColumn {
    fn of(name: &str, values: &Values, rows: &[usize]) -> Self {
        match values {
            Values::Numbers(v) => SalesColumn::Numbers {
                name: name.to_string(),
                numbers: rows.iter().map(|&r| v[r]).collect(),
            },
            Values::Texts(t) => SalesColumn::Texts {
                name: name.to_string(),
                levels: t.levels.clone(),
                codes: rows.iter().map(|&r| t.codes[r]).collect(),
            },
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            SalesColumn::Numbers { name, .. } | SalesColumn::Texts { name, .. } => name,
        }
    }

    /// Its values as a table column.
    pub fn values(&self) -> Values {
        match self {
            SalesColumn::Numbers { numbers, .. } => Values::Numbers(numbers.clone()),
            SalesColumn::Texts { levels, codes, .. } => Values::Texts(Texts {
                codes: codes.clone(),
                levels: levels.clone(),
            }),
        }
    }
}

/// What a model keeps of its training sales (model files from appraise 0.2 on; older ones
/// explain without them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sales {
    /// The table columns the model's price reads ([`TableModel::read_columns`]).
    pub columns: Vec<SalesColumn>,
    /// Each sale's identifier (its line in the table when the table has none).
    pub ids: Vec<String>,
    /// Each sale's price.
    pub prices: Vec<f64>,
    /// The model's price for it.
    pub predicted: Vec<f64>,
    /// Its photo price head's parts ([`table_photos::TablePhotoHead::parts`]; empty
    /// without a photo head).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photo_parts: Vec<f64>,
    /// Its photo paths, one text per photo column (paths joined by `;`; empty without a
    /// photo head), for showing a comparable's photos.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<Vec<String>>,
    /// The sales the shares are measured against (indices, evenly spaced).
    pub background: Vec<usize>,
    /// How far apart two sales are in each input, per unit ([`super::shapley::players`]
    /// order): a numeric column's standard deviation, a photo's part's; 1 for a category.
    pub scales: Vec<f64>,
    /// Each input's mean absolute share of ln(price) over a sample of the background: how
    /// much a difference in it counts when picking comparables.
    pub importance: Vec<f64>,
}

impl Sales {
    /// Number of sales kept.
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

impl Sales {
    /// Whether they fit `model` (a damaged or edited file's may not): the error says how
    /// they do not.
    pub fn check(&self, model: &TableModel) -> std::result::Result<(), String> {
        let n = self.len();
        let names: Vec<&str> = self.columns.iter().map(SalesColumn::name).collect();
        if names != model.read_columns() {
            return Err(format!(
                "name columns {names:?}, not the ones the model reads"
            ));
        }
        let players = super::shapley::players(model).len();
        let parts = model.photo.as_ref().map_or(0, |h| h.parts_width());
        let lengths_fit = self.columns.iter().all(|c| match c {
            SalesColumn::Numbers { numbers, .. } => numbers.len() == n,
            SalesColumn::Texts { levels, codes, .. } => {
                codes.len() == n
                    && codes
                        .iter()
                        .all(|&c| c == Texts::MISSING || (c as usize) < levels.len())
            }
        }) && self.ids.len() == n
            && self.predicted.len() == n
            && self.photo_parts.len() == n * parts
            && (self.photos.is_empty() || self.photos.len() == n)
            && self.scales.len() == players
            && self.importance.len() == players;
        if n == 0 || !lengths_fit {
            return Err("do not fit together or the model (their lengths differ)".into());
        }
        if self.background.is_empty() || self.background.iter().any(|&b| b >= n) {
            return Err("name a background sale they do not hold".into());
        }
        Ok(())
    }
}

/// `n` indices evenly spaced over `0..total` (all of them when `total <= n`).
pub fn evenly(total: usize, n: usize) -> Vec<usize> {
    if total <= n {
        return (0..total).collect();
    }
    (0..n).map(|i| i * total / n).collect()
}

/// Keeps `rows` of `frame` (the model's training rows, priced `prices`) in `model` for its
/// explanations: their read columns, prices, the model's prices and photo parts, the
/// background sample and the inputs' weights for comparables. A tutorial photo network
/// (which reads montages) keeps none.
pub fn prepare(
    model: &mut TableModel,
    frame: &Frame,
    rows: &[usize],
    prices: &[f64],
) -> Result<()> {
    // The tutorial's photo networks read a montage of the photos, which no mix of inputs
    // can be made of: they explain without kept sales.
    if !model.network_photo_columns().is_empty() {
        return Ok(());
    }
    if rows.is_empty() {
        return Err(Error::Training(
            "no training rows to keep for explanations".into(),
        ));
    }
    let kept = evenly(rows.len(), MAX_SALES);
    let rows: Vec<usize> = kept.iter().map(|&i| rows[i]).collect();
    let columns = model
        .read_columns()
        .iter()
        .map(|name| {
            let c = frame.find(name).ok_or_else(|| Error::Input {
                path: frame.path.clone(),
                message: format!("has no column {name:?}, which the model reads"),
            })?;
            Ok(SalesColumn::of(name, &frame.columns[c], &rows))
        })
        .collect::<Result<Vec<_>>>()?;
    let (predicted, _) = model.predict(frame, &rows)?;
    let (photo_parts, photos) = match &model.photo {
        Some(head) => {
            let x = model.embeddings(frame, &rows)?;
            let parts = x
                .chunks_exact(head.backbone.dim() * head.columns.len())
                .flat_map(|e| head.parts(e))
                .collect();
            let photos = rows
                .iter()
                .map(|&r| {
                    head.columns
                        .iter()
                        .map(|name| photo_cell(frame, name, r))
                        .collect()
                })
                .collect();
            (parts, photos)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut sales = Sales {
        columns,
        ids: rows
            .iter()
            .map(|&r| crate::fit::tabular::row_name(frame, &model.schema, r))
            .collect(),
        prices: kept.iter().map(|&i| prices[i]).collect(),
        predicted,
        photo_parts,
        photos,
        background: evenly(rows.len(), BACKGROUND),
        scales: Vec::new(),
        importance: Vec::new(),
    };
    sales.scales = super::comparables::scales(model, &sales);
    sales.importance = super::shapley::importance(model, &sales, IMPORTANCE_SALES)?;
    model.sales = Some(sales);
    Ok(())
}

/// The photo paths of cell `row` of photo column `name`, resolved, joined by `;`.
fn photo_cell(frame: &Frame, name: &str, row: usize) -> String {
    frame
        .find(name)
        .map(|c| {
            table_photos::row_paths(frame, c, row)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(";")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::artifact;
    use std::path::Path;

    #[test]
    fn kept_sales_survive_a_reload_and_damaged_ones_are_refused() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/formats");
        let mut model =
            artifact::load(&fixtures.join("format10-table-recipe-trees.appraise")).unwrap();
        let frame = Frame::read(&fixtures.join("houses.csv")).unwrap();
        let rows: Vec<usize> = (0..frame.rows()).collect();
        let prices: Vec<f64> = rows
            .iter()
            .map(|&r| 200_000.0 + 1_000.0 * r as f64)
            .collect();
        prepare(&mut model, &frame, &rows, &prices).unwrap();
        let explain = |m: &TableModel| {
            let (priced, _) = m.predict(&frame, &rows).unwrap();
            crate::explain::explain(m, &frame, &rows, &priced, 3).unwrap()
        };
        let bytes = artifact::to_bytes(&model);
        let reloaded = artifact::from_bytes(&bytes, Path::new("m.appraise")).unwrap();
        assert_eq!(reloaded.sales, model.sales);
        assert_eq!(explain(&reloaded), explain(&model));
        let mut damaged = model.clone();
        let sales = damaged.sales.as_mut().unwrap();
        sales.background.push(sales.len());
        let e = artifact::from_bytes(&artifact::to_bytes(&damaged), Path::new("m.appraise"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("background sale"), "{e}");
        let mut damaged = model.clone();
        damaged.sales.as_mut().unwrap().predicted.pop();
        let e = artifact::from_bytes(&artifact::to_bytes(&damaged), Path::new("m.appraise"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lengths differ"), "{e}");
    }
}

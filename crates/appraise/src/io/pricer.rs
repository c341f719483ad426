//! Prices for houses given field by field rather than in a file: what the prediction server
//! and its web page need from any saved model. A [`Pricer`] describes a model's inputs
//! ([`Field`]) and its card, and prices houses given as [`Value`]s, with their ranges and
//! the warnings a user should see.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::schema::Role;
use crate::data::table::{Frame, Texts, Values};
use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;
use crate::fit::interval::Coverage;
use crate::fit::tabular::TableModel;

/// The level of the price ranges when a caller names none.
pub const DEFAULT_LEVEL: f64 = 0.8;

/// What kind of value an input field holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldKind {
    /// A number; the training rows' range, when the model knows it (a hint, not a limit).
    Number {
        /// Smallest training value.
        min: Option<f64>,
        /// Largest training value.
        max: Option<f64>,
    },
    /// A category; the levels the model was trained on (others are priced by a fallback,
    /// with a warning).
    Category {
        /// Known levels, sorted.
        levels: Vec<String>,
    },
    /// JPEG photos.
    Photo {
        /// The most photos the field takes (1 for each room of the Houses layout).
        max_photos: usize,
    },
}

/// One input of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// Its name (a column of the training table, or a Houses attribute or room).
    pub name: String,
    /// What it holds.
    #[serde(flatten)]
    pub kind: FieldKind,
    /// Whether a house must give it (otherwise a missing value is imputed as in training).
    pub required: bool,
}

/// One field's value for one house.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Not given.
    Missing,
    /// A number.
    Number(f64),
    /// A text (a category, or a number written as text).
    Text(String),
    /// JPEG photos, as bytes.
    Photos(Vec<Vec<u8>>),
}

/// What a model is, in words and figures, for a person choosing or trusting it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    /// The method, in words ("best recipe on attributes", "tutorial mlp").
    pub method: String,
    /// The data it was trained on.
    pub trained_on: String,
    /// Training rows.
    pub train_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Scores on the test rows.
    pub test_metrics: Metrics,
    /// How its price ranges held on the test rows (empty when not measured).
    pub coverage: Vec<Coverage>,
    /// How its price ranges are made, or why it has none.
    pub ranges: String,
    /// The version of appraise that trained it.
    pub appraise_version: String,
}

/// One house's price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    /// The price, in dollars.
    pub price: f64,
    /// The price range at the requested level, when the model has ranges.
    pub range: Option<(f64, f64)>,
    /// Why the house lies outside the training houses (its price is less sure), if it does.
    pub outside_training: Option<String>,
    /// Forecast standard deviation and confidence ([`crate::explain::confidence`]), when the
    /// model has ranges.
    pub confidence: Option<(f64, f64)>,
    /// Why this price, when asked ([`Pricer::explain`]).
    pub explanation: Option<crate::explain::Explanation>,
}

/// The prices of a batch of houses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quotes {
    /// The level of the ranges.
    pub level: f64,
    /// One per house, in order.
    pub quotes: Vec<Quote>,
    /// What the user should know (unseen categories, extrapolation).
    pub warnings: Vec<String>,
}

/// A loaded model, ready to price houses given field by field. Shareable across threads.
#[derive(Debug)]
pub struct Pricer {
    model: TableModel,
    fields: Vec<Field>,
    card: Card,
}

fn field_error(house: usize, field: &str, message: impl Into<String>) -> Error {
    Error::Field {
        house,
        field: field.to_string(),
        message: message.into(),
    }
}

impl Pricer {
    /// Wraps a loaded model.
    pub fn new(model: TableModel) -> Self {
        let (fields, card) = (table_fields(&model), table_card(&model));
        Self {
            model,
            fields,
            card,
        }
    }

    /// Loads the model file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::new(crate::io::artifact::load(path)?))
    }

    /// The model's inputs, in the order [`Pricer::price`] takes them.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The model's card.
    pub fn card(&self) -> &Card {
        &self.card
    }

    /// Whether it gives price ranges.
    pub fn has_ranges(&self) -> bool {
        self.model.calibration.is_some()
    }

    /// Whether pricing a house reads its photos.
    pub fn reads_photos(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f.kind, FieldKind::Photo { .. }))
    }

    /// Photo `k` (counting every photo of every photo column) of the kept training sale
    /// `id`, a comparable the model's explanations may name; `None` when it has none such.
    pub fn sale_photo(&self, id: &str, k: usize) -> Option<PathBuf> {
        let sales = self.model.sales.as_ref()?;
        let i = sales.ids.iter().position(|s| s == id)?;
        sales
            .photos
            .get(i)?
            .iter()
            .flat_map(|cell| cell.split(';'))
            .filter(|p| !p.is_empty())
            .nth(k)
            .map(PathBuf::from)
    }

    /// The columns an explanation of its prices lists, in order.
    pub fn explained_columns(&self) -> Vec<String> {
        crate::explain::shown_columns(&self.model)
    }

    /// The model's text summary (as `appraise summary` prints it).
    pub fn summary(&self) -> String {
        crate::io::artifact::summary(&self.model)
    }

    /// Prices `houses`, each one value per [`Pricer::fields`] in their order, with ranges
    /// at `level` (0 < level < 1). A missing required field or a value of the wrong kind is
    /// an [`Error::Field`] naming the house and field; an unseen category is priced by the
    /// fallback `predict` uses and named in the warnings.
    pub fn price(&self, houses: &[Vec<Value>], level: f64) -> Result<Quotes> {
        self.explain(houses, level, None)
    }

    /// [`Pricer::price`], each price explained with `comps` comparable sales when `comps`
    /// is given ([`crate::explain::explain`]).
    pub fn explain(
        &self,
        houses: &[Vec<Value>],
        level: f64,
        comps: Option<usize>,
    ) -> Result<Quotes> {
        if !(level > 0.0 && level < 1.0) {
            return Err(Error::Usage(format!(
                "the range level must lie strictly between 0 and 1 (got {level})"
            )));
        }
        for (i, house) in houses.iter().enumerate() {
            if house.len() != self.fields.len() {
                return Err(Error::Usage(format!(
                    "house {i} has {} values; the model reads {} fields",
                    house.len(),
                    self.fields.len()
                )));
            }
            for (field, value) in self.fields.iter().zip(house) {
                check(i, field, value)?;
            }
        }
        let (prices, ranges, outside, warnings, mut explained) =
            price_table(&self.model, &self.fields, houses, level, comps)?;
        let quotes = prices
            .into_iter()
            .enumerate()
            .map(|(i, price)| Quote {
                price,
                range: ranges.as_ref().map(|r| r[i]),
                outside_training: outside[i].clone(),
                confidence: crate::explain::confidence(&self.model, price),
                explanation: explained.as_mut().map(|e| std::mem::take(&mut e[i])),
            })
            .collect();
        Ok(Quotes {
            level,
            quotes,
            warnings,
        })
    }
}

/// Refuses a value of the wrong kind for `field`.
fn check(house: usize, field: &Field, value: &Value) -> Result<()> {
    let name = &field.name;
    match (&field.kind, value) {
        (_, Value::Missing) if field.required => Err(field_error(
            house,
            name,
            "is missing; the model needs it for every house",
        )),
        (_, Value::Missing) => Ok(()),
        (FieldKind::Number { .. }, Value::Number(v)) if !v.is_finite() => Err(field_error(
            house,
            name,
            format!("{v} is not a finite number"),
        )),
        (FieldKind::Number { .. }, Value::Number(_)) => Ok(()),
        (FieldKind::Number { .. }, _) => Err(field_error(house, name, "must be a number")),
        (FieldKind::Category { .. }, Value::Text(_) | Value::Number(_)) => Ok(()),
        (FieldKind::Category { .. }, Value::Photos(_)) => Err(field_error(
            house,
            name,
            "must be a category (a text or a number)",
        )),
        (FieldKind::Photo { max_photos }, Value::Photos(p)) => {
            if p.is_empty() {
                Err(field_error(house, name, "holds no photo"))
            } else if p.len() > *max_photos {
                Err(field_error(
                    house,
                    name,
                    format!("holds {} photos; it takes at most {max_photos}", p.len()),
                ))
            } else {
                Ok(())
            }
        }
        (FieldKind::Photo { .. }, _) => Err(field_error(house, name, "must be a JPEG photo")),
    }
}

/// A category's text: numbers as written without a needless `.0`.
fn category_text(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t.trim().to_string()),
        Value::Number(v) if v.fract() == 0.0 && v.abs() < 1e15 => Some(format!("{}", *v as i64)),
        Value::Number(v) => Some(v.to_string()),
        _ => None,
    }
}

fn ranges_text(calibration: Option<&crate::fit::interval::Calibration>, photos: bool) -> String {
    match calibration {
        Some(c) => c.describe(),
        None if photos => {
            "none (photo networks calibrate only when trained with `range_folds`)".into()
        }
        None => "none (trained before price ranges, or with `range_folds` 0)".into(),
    }
}

fn table_fields(m: &TableModel) -> Vec<Field> {
    use crate::features::encoder::ColumnEncoding;
    // A model of the Houses dataset needs every input of a house, as its loader does.
    let required = matches!(m.info.source, crate::data::source::Source::Houses { .. });
    let mut photo_columns: Vec<String> = m.photo.iter().flat_map(|h| h.columns.clone()).collect();
    photo_columns.extend(m.network_photo_columns());
    m.schema
        .columns
        .iter()
        .filter_map(|c| {
            if photo_columns.contains(&c.name) {
                return Some(Field {
                    name: c.name.clone(),
                    kind: FieldKind::Photo { max_photos: 16 },
                    required,
                });
            }
            if m.photos_only() {
                // The photos' price is its only input.
                return None;
            }
            let encoding = m.encoder.columns.iter().find(|e| e.column() == c.name)?;
            let kind = match encoding {
                ColumnEncoding::Number { floor, ceiling, .. } => FieldKind::Number {
                    min: Some(*floor),
                    max: *ceiling,
                },
                ColumnEncoding::OneHot { levels, pooled, .. } => {
                    let mut all: Vec<String> = levels.iter().chain(pooled).cloned().collect();
                    all.retain(|l| l != crate::features::encoder::MISSING_LEVEL);
                    all.sort();
                    FieldKind::Category { levels: all }
                }
                ColumnEncoding::TargetMean { means, .. } => FieldKind::Category {
                    levels: means
                        .keys()
                        .filter(|l| *l != crate::features::encoder::MISSING_LEVEL)
                        .cloned()
                        .collect(),
                },
            };
            debug_assert!(matches!(c.role, Role::Numeric | Role::Categorical));
            Some(Field {
                name: c.name.clone(),
                kind,
                required,
            })
        })
        .collect()
}

fn table_card(m: &TableModel) -> Card {
    let i = &m.info;
    let method = match &i.config.method {
        crate::fit::tabular::Method::Tutorial { model, .. } => {
            format!("tutorial {} network", model.name())
        }
        _ => format!(
            "best recipe ({})",
            i.candidates
                .get(i.chosen)
                .map_or("chosen by inner cross-validation", |c| c.label.as_str())
        ),
    };
    Card {
        method,
        trained_on: format!(
            "{} ({} rows, {} with a price; fingerprint {})",
            i.data, i.rows, i.kept_rows, i.fingerprint
        ),
        train_rows: i.train_rows,
        test_rows: i.test_rows,
        test_metrics: i.test_metrics.clone(),
        coverage: i.coverage.clone(),
        ranges: ranges_text(
            m.calibration.as_ref(),
            !m.network_photo_columns().is_empty(),
        ),
        appraise_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

type Priced = (
    Vec<f64>,
    Option<Vec<(f64, f64)>>,
    Vec<Option<String>>,
    Vec<String>,
    Option<Vec<crate::explain::Explanation>>,
);

fn price_table(
    m: &TableModel,
    fields: &[Field],
    houses: &[Vec<Value>],
    level: f64,
    comps: Option<usize>,
) -> Result<Priced> {
    // Photos are written to a private folder the table's photo paths point into, so they go
    // through exactly the path the model was trained with.
    let reads_photos = fields
        .iter()
        .any(|f| matches!(f.kind, FieldKind::Photo { .. }));
    let folder = if reads_photos {
        Some(tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?)
    } else {
        None
    };
    let table_path = folder.as_ref().map_or_else(
        || PathBuf::from("request"),
        |d| d.path().join("request.csv"),
    );
    let mut names = Vec::with_capacity(fields.len());
    let mut columns = Vec::with_capacity(fields.len());
    for (k, field) in fields.iter().enumerate() {
        names.push(field.name.clone());
        let values = match &field.kind {
            FieldKind::Number { .. } => Values::Numbers(
                houses
                    .iter()
                    .map(|h| match &h[k] {
                        Value::Number(v) => Some(*v),
                        _ => None,
                    })
                    .collect(),
            ),
            FieldKind::Category { .. } => Values::Texts(Texts::from_cells(
                &houses
                    .iter()
                    .map(|h| category_text(&h[k]).filter(|t| !t.is_empty()))
                    .collect::<Vec<_>>(),
            )),
            FieldKind::Photo { .. } => {
                let dir = folder.as_ref().expect("made for photo fields").path();
                let mut cells = Vec::with_capacity(houses.len());
                for (i, h) in houses.iter().enumerate() {
                    cells.push(match &h[k] {
                        Value::Photos(photos) => {
                            let mut paths = Vec::with_capacity(photos.len());
                            for (j, bytes) in photos.iter().enumerate() {
                                let file = format!("{i}-{k}-{j}.jpg");
                                std::fs::write(dir.join(&file), bytes)
                                    .map_err(|e| Error::io(dir.join(&file), e))?;
                                paths.push(file);
                            }
                            Some(paths.join(";"))
                        }
                        _ => None,
                    });
                }
                Values::Texts(Texts::from_cells(&cells))
            }
        };
        columns.push(values);
    }
    let frame = Frame {
        path: table_path,
        names,
        columns,
        // A row's "line" is its house's index, which a refusal names.
        lines: Some((0..houses.len()).collect()),
    };
    let rows: Vec<usize> = (0..houses.len()).collect();
    let (prices, warnings) = m.predict(&frame, &rows).map_err(|e| match e {
        Error::Parse {
            line,
            field,
            message,
            ..
        } => field_error(line, &field, message),
        // A photo that cannot be decoded names the file written for it; name the field.
        Error::Input { path, message } if reads_photos => {
            let file = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let mut parts = file.split('-').filter_map(|p| p.parse::<usize>().ok());
            match (parts.next(), parts.next()) {
                (Some(i), Some(k)) if k < fields.len() => field_error(i, &fields[k].name, message),
                _ => Error::Input { path, message },
            }
        }
        other => other,
    })?;
    // A model of the Houses dataset prices no zip code it has not seen, as `predict` by
    // default: the house's field is refused, naming the known ones.
    if matches!(m.info.source, crate::data::source::Source::Houses { .. })
        && let Some(u) = warnings.unseen.first()
    {
        let k = fields.iter().position(|f| f.name == u.column).unwrap_or(0);
        let house = houses
            .iter()
            .position(|h| category_text(&h[k]).is_some_and(|v| !u.known.contains(&v)))
            .unwrap_or(0);
        return Err(field_error(
            house,
            &u.column,
            format!(
                "{} is unknown to this model; it knows {}",
                u.example,
                u.known.join(", ")
            ),
        ));
    }
    let ranges = m.ranges(&prices, level);
    let outside = m.outside_training(&frame, &rows);
    // While the request's photos are still in their folder.
    let explained = comps
        .map(|k| crate::explain::explain(m, &frame, &rows, &prices, k))
        .transpose()?;
    Ok((prices, ranges, outside, warnings.lines, explained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_text_drops_a_needless_decimal() {
        assert_eq!(category_text(&Value::Number(92276.0)).unwrap(), "92276");
        assert_eq!(category_text(&Value::Number(1.5)).unwrap(), "1.5");
        assert_eq!(category_text(&Value::Text(" RL ".into())).unwrap(), "RL");
        assert_eq!(category_text(&Value::Missing), None);
    }

    #[test]
    fn check_names_the_field_of_a_wrong_value() {
        let number = Field {
            name: "area".into(),
            kind: FieldKind::Number {
                min: None,
                max: None,
            },
            required: true,
        };
        let e = check(3, &number, &Value::Text("big".into())).unwrap_err();
        assert_eq!(e.to_string(), "house 3: field area: must be a number");
        assert!(check(0, &number, &Value::Missing).is_err());
        assert!(check(0, &number, &Value::Number(f64::NAN)).is_err());
        assert!(check(0, &number, &Value::Number(2.0)).is_ok());
        let photo = Field {
            name: "frontal_photo".into(),
            kind: FieldKind::Photo { max_photos: 1 },
            required: true,
        };
        assert!(check(0, &photo, &Value::Photos(vec![vec![1], vec![2]])).is_err());
        assert!(check(0, &photo, &Value::Number(1.0)).is_err());
    }

    #[test]
    fn a_houses_model_refuses_a_negative_attribute_or_an_unknown_zip_code_by_field() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/format1-mlp.appraise");
        let pricer = Pricer::load(&path).unwrap();
        let names: Vec<&str> = pricer.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["bedrooms", "bathrooms", "area", "zipcode"]);
        let house = |area: f64, zip: &str| {
            vec![
                Value::Number(3.0),
                Value::Number(2.0),
                Value::Number(area),
                Value::Text(zip.into()),
            ]
        };
        let known = house(1500.0, "90007");
        assert_eq!(
            pricer
                .price(std::slice::from_ref(&known), 0.8)
                .unwrap()
                .quotes
                .len(),
            1
        );
        let e = pricer.price(&[known.clone(), house(-5.0, "90007")], 0.8);
        assert_eq!(
            e.unwrap_err().to_string(),
            "house 1: field area: -5 is negative; a house's area is 0 or more"
        );
        let e = pricer.price(&[known, house(1500.0, "12345")], 0.8);
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("house 1: field zipcode: 12345 is unknown to this model"),
        );
    }
}

//! Prices for new houses from a saved model: reading prediction inputs, predicting, writing
//! the results, and evaluating a saved model on a dataset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::data::dataset::{self, FIELDS, House};
use crate::data::split::train_test_split;
use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;
use crate::features::preprocess::CONTINUOUS;
use crate::fit::pipeline::filter;
use crate::fit::train::predict;
use crate::io::artifact::SavedModel;
use crate::photos::extractor::PhotoFeatures;
use crate::photos::montage::{MONTAGE_BYTES, push_network_input};
use crate::runtime::cancel::Cancel;

/// One house to price.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The input's `house` or `id` value, passed through to the output.
    pub id: Option<String>,
    /// Bedrooms, bathrooms, area.
    pub continuous: [f64; 3],
    /// Zip code.
    pub zipcode: u32,
}

impl From<&House> for Query {
    fn from(h: &House) -> Self {
        Self {
            id: Some(h.id.to_string()),
            continuous: [h.bedrooms, h.bathrooms, h.area],
            zipcode: h.zipcode,
        }
    }
}

/// Houses read from a prediction input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Queries {
    /// Name of the id column (`house` or `id`), if the input has one.
    pub id_column: Option<String>,
    /// The houses, in input order.
    pub rows: Vec<Query>,
}

/// What to do with a zip code the model has never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownZip {
    /// Refuse, listing the zip codes the model knows.
    #[default]
    Error,
    /// Encode it as all zeros (no zip code), with a warning.
    Zero,
}

/// Reads prediction input: a CSV file whose header names `bedrooms,bathrooms,area,zipcode`
/// (any order, other columns ignored, an optional `house` or `id` column passed through), or a
/// `HousesInfo.txt`-style file (five numbers per line; the line number becomes `house`).
pub fn parse_queries(text: &str, path: &Path) -> Result<Queries> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let looks_numeric = first
        .split_whitespace()
        .next()
        .is_some_and(|t| t.parse::<f64>().is_ok());
    if looks_numeric {
        let houses = dataset::parse_houses(text, path)?;
        return Ok(Queries {
            id_column: Some("house".into()),
            rows: houses.iter().map(Query::from).collect(),
        });
    }
    parse_csv(text, path)
}

fn parse_csv(text: &str, path: &Path) -> Result<Queries> {
    let input_error = |message: String| Error::Input {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| input_error(format!("cannot read the CSV header: {e}")))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let mut columns = [0usize; 4];
    for (k, name) in FIELDS[..4].iter().enumerate() {
        columns[k] = find(name).ok_or_else(|| {
            input_error(format!(
                "the header has no '{name}' column; it must name bedrooms,bathrooms,area,zipcode \
                 (found: {})",
                headers.iter().collect::<Vec<_>>().join(",")
            ))
        })?;
    }
    let id_column = find("house").or_else(|| find("id"));
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line,
                    field: "-".into(),
                    message: e.to_string(),
                });
            }
        }
        let line = record.position().map_or(line, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut values = [0.0; 4];
        for k in 0..4 {
            let raw = record.get(columns[k]).unwrap_or("");
            values[k] = dataset::parse_field(raw, k).map_err(|message| Error::Parse {
                path: path.to_path_buf(),
                line,
                field: FIELDS[k].into(),
                message,
            })?;
        }
        let zipcode = whole_zip(values[3]).ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            line,
            field: "zipcode".into(),
            message: format!(
                "'{}' is not a whole number in range",
                record.get(columns[3]).unwrap_or("")
            ),
        })?;
        rows.push(Query {
            id: id_column.map(|c| record.get(c).unwrap_or("").to_string()),
            continuous: [values[0], values[1], values[2]],
            zipcode,
        });
    }
    if rows.is_empty() {
        return Err(input_error("has a header but no houses".into()));
    }
    Ok(Queries {
        id_column: id_column.map(|c| headers[c].to_string()),
        rows,
    })
}

/// A zip code as a whole number, if it is one.
pub fn whole_zip(value: f64) -> Option<u32> {
    (value.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&value)).then_some(value as u32)
}

/// Rows per forward pass: bounds memory on huge inputs.
const CHUNK: usize = 65_536;

/// Prices in dollars for `queries`, plus warnings for the user (unknown zip codes under
/// [`UnknownZip::Zero`], attributes outside the training range). Models that read photos
/// also need `photos` of each query ([`load_query_photos`]).
pub fn predict_prices(
    model: &SavedModel,
    queries: &[Query],
    photos: &QueryPhotos,
    unknown_zip: UnknownZip,
) -> Result<(Vec<f64>, Vec<String>)> {
    let p = &model.header.preprocessor;
    let recipe = model.header.recipe.as_ref().map(|r| &r.inputs);
    let montages = photos.montages.as_deref();
    let features_of_photos = photos.features.as_ref();
    if recipe.is_some_and(|r| r.uses_photos())
        && features_of_photos.is_none_or(|f| f.len() != queries.len())
    {
        return Err(Error::Usage(
            "this recipe model reads the photos of each house; pass the photo folder (`photos`) with each \
             house's {id}_bathroom.jpg, _bedroom.jpg, _frontal.jpg and _kitchen.jpg"
                .into(),
        ));
    }
    let photos = model.header.model.uses_photos() && recipe.is_none();
    if photos && montages.is_none_or(|m| m.len() != queries.len() * MONTAGE_BYTES) {
        return Err(Error::Usage(format!(
            "this is a {} model, which prices houses from their photos; pass the photo folder (`photos`) with \
             each house's {{id}}_bathroom.jpg, _bedroom.jpg, _frontal.jpg and _kitchen.jpg",
            model.header.model.name()
        )));
    }
    let mut unknown: BTreeMap<u32, usize> = BTreeMap::new();
    let mut outside: BTreeMap<&'static str, usize> = BTreeMap::new();
    for q in queries {
        if p.zip_index(q.zipcode).is_none() {
            *unknown.entry(q.zipcode).or_default() += 1;
        }
        for name in p.out_of_range(q.continuous) {
            *outside.entry(name).or_default() += 1;
        }
    }
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        let zips: Vec<String> = unknown.keys().map(u32::to_string).collect();
        let known: Vec<String> = p.zip_codes.iter().map(u32::to_string).collect();
        match unknown_zip {
            UnknownZip::Error => {
                return Err(Error::Usage(format!(
                    "zip code {} is unknown to this model; it knows {}. \
                     Pass --unknown-zip zero to predict without a zip code (less accurate).",
                    zips.join(", "),
                    known.join(", ")
                )));
            }
            UnknownZip::Zero => warnings.push(format!(
                "{} house(s) have a zip code the model does not know ({}); they are priced with no zip code, \
                 which is less accurate",
                unknown.values().sum::<usize>(),
                zips.join(", ")
            )),
        }
    }
    for (name, count) in outside {
        let k = CONTINUOUS
            .iter()
            .position(|c| *c == name)
            .expect("a known attribute");
        warnings.push(format!(
            "{count} house(s) have {name} outside the training range {} .. {}; the model is extrapolating",
            p.min[k], p.max[k]
        ));
    }
    let n_features = model.header.n_inputs();
    let mut prices = Vec::with_capacity(queries.len());
    let mut features = Vec::with_capacity(CHUNK.min(queries.len()) * n_features);
    let mut images = Vec::new();
    for (k, chunk) in queries.chunks(CHUNK).enumerate() {
        features.clear();
        images.clear();
        if let (true, Some(m)) = (photos, montages) {
            let start = k * CHUNK * MONTAGE_BYTES;
            push_network_input(&m[start..start + chunk.len() * MONTAGE_BYTES], &mut images);
        }
        match recipe {
            Some(inputs) => {
                for (i, q) in chunk.iter().enumerate() {
                    let photo = match features_of_photos {
                        Some(f) if inputs.uses_photos() => inputs.photo_values(f, k * CHUNK + i),
                        _ => Vec::new(),
                    };
                    inputs.push_features(q.continuous, q.zipcode, &photo, &mut features);
                }
            }
            None => {
                let continuous: Vec<[f64; 3]> = chunk.iter().map(|q| q.continuous).collect();
                let zipcodes: Vec<u32> = chunk.iter().map(|q| q.zipcode).collect();
                features = p.attribute_features(&continuous, &zipcodes);
            }
        }
        let scaled = predict(&model.network, &features, n_features, &images);
        prices.extend(scaled.into_iter().zip(chunk).map(|(s, q)| match recipe {
            Some(inputs) => inputs.price(s, q.continuous[2], q.zipcode),
            None => p.price(s),
        }));
    }
    Ok((prices, warnings))
}

/// What a model reads from the photos of the houses it prices, one entry per house.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryPhotos {
    /// The montages of the tutorial's photo models.
    pub montages: Option<Vec<u8>>,
    /// The pretrained network's features of a recipe model's houses.
    pub features: Option<PhotoFeatures>,
}

/// What `model` reads from the photos of the dataset houses `ids` in `dir`
/// (`{id}_{room}.jpg`), decoded on every core through the cache in `cache_dir`, when given
/// (nothing for a model that reads no photos).
pub fn load_query_photos(
    model: &SavedModel,
    dir: &Path,
    ids: &[usize],
    cache_dir: Option<&Path>,
    warn: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
) -> Result<QueryPhotos> {
    Ok(match (model.header.uses_photos(), &model.header.recipe) {
        (false, _) => QueryPhotos::default(),
        // The network the model's features came from.
        (true, Some(recipe)) => QueryPhotos {
            montages: None,
            features: Some(crate::photos::extractor::featurize_cached(
                recipe.inputs.backbone,
                dir,
                ids,
                cache_dir,
                &|_| {},
                warn,
                cancel,
            )?),
        },
        (true, None) => QueryPhotos {
            montages: Some(
                crate::photos::montage::ingest(dir, ids, cache_dir, &|_| {}, warn, cancel)?
                    .0
                    .pixels,
            ),
            features: None,
        },
    })
}

/// [`load_query_photos`] for new houses named by any id, without the cache.
pub fn load_new_house_photos(
    model: &SavedModel,
    dir: &Path,
    ids: &[String],
    cancel: &Cancel,
) -> Result<QueryPhotos> {
    Ok(match (model.header.uses_photos(), &model.header.recipe) {
        (false, _) => QueryPhotos::default(),
        (true, Some(recipe)) => QueryPhotos {
            montages: None,
            features: Some(crate::photos::extractor::featurize(
                recipe.inputs.backbone,
                dir,
                ids,
                &|_| {},
                cancel,
            )?),
        },
        (true, None) => QueryPhotos {
            montages: Some(crate::photos::montage::decode_all(dir, ids, cancel)?),
            features: None,
        },
    })
}

/// Output format of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `[id,]bedrooms,bathrooms,area,zipcode,predicted_price`.
    #[default]
    Csv,
    /// A JSON array of objects with the same fields.
    Json,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    bedrooms: f64,
    bathrooms: f64,
    area: f64,
    zipcode: u32,
    predicted_price: f64,
    /// `low_80`, `high_80` (or another level) and `outside_training`, when the model gives ranges.
    #[serde(flatten)]
    range: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Price ranges to print beside the prices.
#[derive(Debug, Clone, Copy)]
pub struct Ranges<'a> {
    /// Their level (0.8 for 80%).
    pub level: f64,
    /// One (low, high) per house.
    pub bounds: &'a [(f64, f64)],
    /// Per house, why it lies outside the training houses (its range is less sure), or `None`.
    pub outside: &'a [Option<String>],
}

/// The column of the price ranges' out-of-distribution flag.
pub const OUTSIDE_COLUMN: &str = "outside_training";

/// Why each query lies outside the houses `model` was trained on, if it does: a zip code it
/// has not seen (priced through `--unknown-zip`'s fallback), or bedrooms, bathrooms or area
/// outside the training houses' range. `None` for a query inside.
pub fn outside_training(model: &SavedModel, queries: &[Query]) -> Vec<Option<String>> {
    let p = &model.header.preprocessor;
    queries
        .iter()
        .map(|q| {
            let mut reasons = Vec::new();
            if p.zip_codes.binary_search(&q.zipcode).is_err() {
                reasons.push(format!("zipcode {} not seen in training", q.zipcode));
            }
            for (k, &v) in q.continuous.iter().enumerate() {
                let side = if v < p.min[k] {
                    "below"
                } else if v > p.max[k] {
                    "above"
                } else {
                    continue;
                };
                reasons.push(format!(
                    "{} {v} {side} the training range {} .. {}",
                    crate::features::preprocess::CONTINUOUS[k],
                    p.min[k],
                    p.max[k]
                ));
            }
            (!reasons.is_empty()).then(|| reasons.join("; "))
        })
        .collect()
}

/// The column names of the range at `level`: `low_80`, `high_80`.
pub fn range_columns(level: f64) -> (String, String) {
    let pct = format!("{}", (level * 1000.0).round() / 10.0);
    (format!("low_{pct}"), format!("high_{pct}"))
}

/// Writes predictions in `format`. Prices are rounded to cents.
pub fn format_predictions(
    queries: &Queries,
    prices: &[f64],
    ranges: Option<Ranges>,
    format: Format,
) -> String {
    let cents = |p: f64| (p * 100.0).round() / 100.0;
    let names = ranges.map(|r| range_columns(r.level));
    match format {
        Format::Csv => {
            let mut out = String::with_capacity(queries.rows.len() * 40);
            if let Some(id) = &queries.id_column {
                out.push_str(&csv_field(id));
                out.push(',');
            }
            out.push_str("bedrooms,bathrooms,area,zipcode,predicted_price");
            if let Some((low, high)) = &names {
                let _ = write!(out, ",{low},{high},{OUTSIDE_COLUMN}");
            }
            out.push('\n');
            for (i, (q, price)) in queries.rows.iter().zip(prices).enumerate() {
                if let Some(id) = &q.id {
                    out.push_str(&csv_field(id));
                    out.push(',');
                }
                let [b, ba, a] = q.continuous;
                let _ = write!(out, "{b},{ba},{a},{},{:.2}", q.zipcode, price);
                if let Some(r) = ranges {
                    let (low, high) = r.bounds[i];
                    let flag = r.outside[i].as_deref().map_or_else(String::new, csv_field);
                    let _ = write!(out, ",{low:.2},{high:.2},{flag}");
                }
                out.push('\n');
            }
            out
        }
        Format::Json => {
            let rows: Vec<JsonRow> = queries
                .rows
                .iter()
                .zip(prices)
                .enumerate()
                .map(|(i, (q, &price))| JsonRow {
                    id: q.id.as_deref(),
                    bedrooms: q.continuous[0],
                    bathrooms: q.continuous[1],
                    area: q.continuous[2],
                    zipcode: q.zipcode,
                    predicted_price: cents(price),
                    range: match (&names, ranges) {
                        (Some((low, high)), Some(r)) => [
                            (low.clone(), cents(r.bounds[i].0).into()),
                            (high.clone(), cents(r.bounds[i].1).into()),
                            (
                                OUTSIDE_COLUMN.to_string(),
                                r.outside[i]
                                    .as_deref()
                                    .map_or(serde_json::Value::Null, Into::into),
                            ),
                        ]
                        .into(),
                        _ => Default::default(),
                    },
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&rows).expect("rows serialize");
            out.push('\n');
            out
        }
    }
}

/// `text` as one CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line end.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A saved model's scores on a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Which houses were scored, in words.
    pub scope: String,
    /// Whether the dataset is the one the model was trained on.
    pub same_dataset: bool,
    /// The scores.
    pub metrics: Metrics,
    /// How the model's price ranges held, at 80% and 90% (empty for a model without ranges).
    pub coverage: Vec<crate::fit::interval::Coverage>,
    /// What the user should know (a cache that could not be written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Scores `model` on the dataset in `dataset_dir`: on the test houses of the split it was
/// trained with, or with `all` on every house that passes its zip filter. Photo models read
/// the photos through the cache in `cache_dir`, when given; `cancel` stops the photos' decoding.
pub fn evaluate(
    model: &SavedModel,
    dataset_dir: &Path,
    all: bool,
    unknown_zip: UnknownZip,
    cache_dir: Option<&Path>,
    cancel: &Cancel,
) -> Result<Evaluation> {
    let data = dataset::load_houses(&dataset_dir.join(dataset::INFO_FILE))?;
    let training = &model.header.training;
    let data_config = &training.config.data;
    // The model carries its own preprocessing: only the zip filter and the split are redone.
    let kept = filter(&data.houses, data_config)?;
    let (houses, scope) = if all {
        let scope = format!(
            "all {} houses with a zip code seen at least {} times",
            kept.len(),
            data_config.min_zip_count
        );
        (kept, scope)
    } else {
        let split = train_test_split(kept.len(), data_config.test_size, data_config.split_seed)?;
        let houses: Vec<House> = split.test.iter().map(|&i| kept[i]).collect();
        let scope = format!(
            "the {} test houses of split seed {} (test size {})",
            houses.len(),
            data_config.split_seed,
            data_config.test_size
        );
        (houses, scope)
    };
    let queries: Vec<Query> = houses.iter().map(Query::from).collect();
    let ids: Vec<usize> = houses.iter().map(|h| h.id).collect();
    let warnings = std::sync::Mutex::new(Vec::new());
    let warn = |line: &str| {
        warnings
            .lock()
            .expect("no panic holds it")
            .push(line.to_string())
    };
    let photos = load_query_photos(model, dataset_dir, &ids, cache_dir, &warn, cancel)?;
    let (prices, _) = predict_prices(model, &queries, &photos, unknown_zip)?;
    let actual: Vec<f64> = houses.iter().map(|h| h.price).collect();
    Ok(Evaluation {
        scope,
        same_dataset: data.fingerprint == training.dataset_fingerprint,
        metrics: Metrics::compute(&actual, &prices),
        coverage: model
            .header
            .calibration()
            .map(|c| crate::fit::interval::Coverage::all_reported(c, &actual, &prices))
            .unwrap_or_default(),
        warnings: warnings.into_inner().expect("no panic holds it"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Queries> {
        parse_queries(text, Path::new("houses.csv"))
    }

    #[test]
    fn reads_csv_with_any_column_order_and_an_id() {
        let q = parse("\u{feff}id,zipcode,area,bathrooms,bedrooms,price\r\na 1,92276,3343,3,4,1\nb,85255,1000,2.5,2,\n").unwrap();
        assert_eq!(q.id_column.as_deref(), Some("id"));
        assert_eq!(q.rows.len(), 2);
        assert_eq!(q.rows[0].id.as_deref(), Some("a 1"));
        assert_eq!(q.rows[0].continuous, [4.0, 3.0, 3343.0]);
        assert_eq!(q.rows[1].zipcode, 85255);
        let q = parse("bedrooms,bathrooms,area,zipcode\n4,3,3343,92276").unwrap();
        assert_eq!(q.id_column, None);
        assert_eq!(q.rows[0].id, None);
    }

    #[test]
    fn reads_housesinfo_style_input() {
        let q = parse("4 3 3343 92276 500000\n2  1 900 85255 1\n").unwrap();
        assert_eq!(q.id_column.as_deref(), Some("house"));
        assert_eq!(q.rows[1].id.as_deref(), Some("2"));
        assert_eq!(q.rows[1].continuous, [2.0, 1.0, 900.0]);
    }

    #[test]
    fn bad_csv_names_line_and_field() {
        let e = parse("bedrooms,bathrooms,area\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no 'zipcode' column"), "{e}");
        let e = parse("bedrooms,bathrooms,area,zipcode\n1,2,3,92276\n1,x,3,92276\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("houses.csv:3: field bathrooms: bathrooms: 'x' is not a number"),
            "{e}"
        );
        let e = parse("bedrooms,bathrooms,area,zipcode\n1,2,3,9.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: field zipcode"), "{e}");
        let e = parse("bedrooms,bathrooms,area,zipcode\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no houses"), "{e}");
        let e = parse("bedrooms,bathrooms,area,zipcode\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:"), "{e}");
    }

    #[test]
    fn csv_output_quotes_ids() {
        let q = Queries {
            id_column: Some("id".into()),
            rows: vec![Query {
                id: Some("a,b".into()),
                continuous: [4.0, 2.5, 1000.0],
                zipcode: 92276,
            }],
        };
        assert_eq!(
            format_predictions(&q, &[123456.789], None, Format::Csv),
            "id,bedrooms,bathrooms,area,zipcode,predicted_price\n\"a,b\",4,2.5,1000,92276,123456.79\n"
        );
        assert!(
            format_predictions(&q, &[1.0], None, Format::Json).contains("\"predicted_price\": 1.0")
        );
    }
}

//! The plain JSON API: `GET /v1/models`, `GET /v1/models/{name}` and
//! `POST /v1/models/{name}/predict` with `{"houses": [{field: value, ...}], "level": 0.8}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value as Json_};

use appraise::io::pricer::{DEFAULT_LEVEL, Field, FieldKind, Pricer, Value};

use crate::error::ApiError;
use crate::{AppState, ModelName, read_body};

/// A model as `GET /v1/models` describes it.
#[derive(Serialize)]
pub struct ModelInfo<'a> {
    /// Its name (the path segment of its routes).
    pub name: &'a str,
    /// Its inputs.
    pub fields: &'a [Field],
    /// Whether its prices come with ranges.
    pub ranges: bool,
    /// Whether it reads photos.
    pub reads_photos: bool,
    /// What it is and how well it did.
    pub card: &'a appraise::io::pricer::Card,
}

fn info<'a>(name: &'a str, p: &'a Pricer) -> ModelInfo<'a> {
    ModelInfo {
        name,
        fields: p.fields(),
        ranges: p.has_ranges(),
        reads_photos: p.reads_photos(),
        card: p.card(),
    }
}

/// `GET /v1/models`.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<ModelInfo> = state.registry.iter().map(|(n, p)| info(n, p)).collect();
    Json(serde_json::json!({ "models": models })).into_response()
}

/// Looks up the model of a path, or a 404 listing the models there are.
pub fn model<'a>(state: &'a AppState, name: &str) -> Result<&'a Arc<Pricer>, ApiError> {
    state
        .registry
        .get(name)
        .ok_or_else(|| ApiError::unknown_model(name, &state.registry.names()))
}

fn with_model(mut response: Response, name: &str) -> Response {
    response
        .extensions_mut()
        .insert(ModelName(name.to_string()));
    response
}

/// `GET /v1/models/{name}`: its fields, card and summary.
pub async fn describe(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = model(&state, &name)?;
    let mut body = serde_json::to_value(info(&name, p)).expect("model info serializes");
    body["summary"] = p.summary().into();
    Ok(with_model(Json(body).into_response(), &name))
}

/// `GET /v1/models/{name}/sales/{id}/photos/{k}`: photo `k` of a training sale the model
/// keeps (a comparable its explanations name), as the JPEG it was trained on. Only the
/// model file's own sales' photos are served.
pub async fn sale_photo(
    State(state): State<Arc<AppState>>,
    Path((name, id, k)): Path<(String, String, usize)>,
) -> Result<Response, ApiError> {
    let pricer = model(&state, &name)?;
    let missing = || {
        ApiError::status(
            axum::http::StatusCode::NOT_FOUND,
            format!("model {name} keeps no photo {k} of a sale {id:?}"),
        )
    };
    let path = pricer.sale_photo(&id, k).ok_or_else(missing)?;
    // A photo is a few hundred kilobytes: read off the async threads.
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .ok()
        .and_then(Result::ok)
        // Only a JPEG, whatever a model file names.
        .filter(|b| b.starts_with(&[0xFF, 0xD8]))
        .ok_or_else(missing)?;
    Ok(with_model(
        ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        &name,
    ))
}

/// One house's answer.
#[derive(Serialize)]
struct Prediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Json_>,
    predicted_price: f64,
    #[serde(flatten)]
    range: Map<String, Json_>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<appraise::explain::Explanation>,
}

/// Comparables one house may ask for.
const MAX_COMPS: usize = 50;

fn cents(p: f64) -> f64 {
    (p * 100.0).round() / 100.0
}

/// The houses of a predict request, each one value per model field, their ids, and the
/// level of their ranges.
struct Asked {
    level: f64,
    /// Comparables per house when the prices are to be explained.
    explain: Option<usize>,
    ids: Vec<Option<Json_>>,
    houses: Vec<Vec<Value>>,
}

/// `POST /v1/models/{name}/predict`: a JSON body `{"houses": [...], "level": 0.8}`, or a
/// `multipart/form-data` form of one house (what an HTML form or `curl -F` sends: a part per
/// field, photo fields as files).
pub async fn predict(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pricer = model(&state, &name)?.clone();
    let bytes = read_body(&state, &headers, body).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Asked {
        level,
        explain,
        ids,
        houses,
    } = if content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        form_house(pricer.fields(), content_type, bytes).await?
    } else {
        json_houses(&state, pricer.fields(), &bytes)?
    };
    let n = houses.len();
    let quotes = crate::run_pricing(&pricer, houses, level, explain).await?;
    state.metrics.priced(&name, n);
    let (low, high) = appraise::io::output::range_columns(quotes.level);
    let predictions: Vec<Prediction> = quotes
        .quotes
        .iter()
        .zip(ids)
        .map(|(q, id)| {
            let mut range = Map::new();
            if let Some((lo, hi)) = q.range {
                range.insert(low.clone(), cents(lo).into());
                range.insert(high.clone(), cents(hi).into());
            }
            range.insert(
                appraise::io::output::OUTSIDE_COLUMN.into(),
                q.outside_training
                    .clone()
                    .map_or(Json_::Null, Json_::String),
            );
            if let Some((fsd, confidence)) = q.confidence {
                range.insert("fsd".into(), fsd.into());
                range.insert("confidence".into(), confidence.into());
            }
            Prediction {
                id,
                predicted_price: cents(q.price),
                range,
                explanation: q.explanation.clone(),
            }
        })
        .collect();
    let body = serde_json::json!({
        "model": name,
        "level": quotes.level,
        "predictions": predictions,
        "warnings": quotes.warnings,
    });
    Ok(with_model(Json(body).into_response(), &name))
}

/// The houses of a JSON predict request.
fn json_houses(state: &AppState, fields: &[Field], bytes: &[u8]) -> Result<Asked, ApiError> {
    let request: Json_ = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}")))?;
    let Json_::Object(request) = request else {
        return Err(ApiError::bad(
            "the body must be a JSON object: {\"houses\": [{...}, ...]}",
        ));
    };
    let mut level = DEFAULT_LEVEL;
    let mut houses_json = None;
    let mut explain = false;
    let mut comps = appraise::explain::DEFAULT_COMPS;
    for (key, value) in &request {
        match key.as_str() {
            "houses" => houses_json = Some(value),
            "explain" => {
                explain = value
                    .as_bool()
                    .ok_or_else(|| ApiError::field("explain", "must be true or false"))?
            }
            "comps" => {
                comps = value
                    .as_u64()
                    .filter(|k| *k <= MAX_COMPS as u64)
                    .ok_or_else(|| {
                        ApiError::field(
                            "comps",
                            format!("must be a whole number of comparables, 0 to {MAX_COMPS}"),
                        )
                    })? as usize
            }
            "level" => {
                level = value
                    .as_f64()
                    .filter(|l| *l > 0.0 && *l < 1.0)
                    .ok_or_else(|| {
                        ApiError::field(
                            "level",
                            "must be a number strictly between 0 and 1, such as 0.8",
                        )
                    })?
            }
            other => {
                return Err(ApiError::field(
                    other,
                    "is not a field of a predict request; it takes \"houses\", \"level\", \"explain\" and \"comps\"",
                ));
            }
        }
    }
    let houses_json = houses_json
        .ok_or_else(|| ApiError::field("houses", "is missing: send {\"houses\": [{...}, ...]}"))?;
    let Json_::Array(list) = houses_json else {
        return Err(ApiError::field("houses", "must be a list of houses"));
    };
    if list.is_empty() {
        return Err(ApiError::field(
            "houses",
            "is empty; send at least one house",
        ));
    }
    if list.len() > state.config.max_houses {
        return Err(ApiError::field(
            "houses",
            format!(
                "holds {} houses; one request takes at most {} (split it)",
                list.len(),
                state.config.max_houses
            ),
        ));
    }
    let mut ids = Vec::with_capacity(list.len());
    let mut houses = Vec::with_capacity(list.len());
    for (i, house) in list.iter().enumerate() {
        let (id, values) = house_values(fields, house, i)?;
        ids.push(id);
        houses.push(values);
    }
    Ok(Asked {
        level,
        explain: explain.then_some(comps),
        ids,
        houses,
    })
}

/// The one house of a `multipart/form-data` request: a text part per number or category
/// field (empty = missing), file parts for photo fields (several parts of one name are
/// several photos; an empty file part, which a form sends when no file was chosen, is none),
/// and optional `id` and `level` parts.
async fn form_house(
    fields: &[Field],
    content_type: &str,
    bytes: axum::body::Bytes,
) -> Result<Asked, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        ApiError::field(
            "Content-Type",
            format!("a multipart/form-data body needs its boundary: {e}"),
        )
    })?;
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut values = vec![Value::Missing; fields.len()];
    let mut level = DEFAULT_LEVEL;
    let mut id = None;
    let mut explain = false;
    let malformed =
        |e: multer::Error| ApiError::bad(format!("the multipart body is malformed: {e}"));
    while let Some(part) = form.next_field().await.map_err(malformed)? {
        let name = part.name().unwrap_or("").to_string();
        let data = part.bytes().await.map_err(malformed)?;
        let text = || {
            std::str::from_utf8(&data)
                .map(|t| t.trim().to_string())
                .map_err(|_| ApiError::field(name.clone(), "must be UTF-8 text"))
        };
        match name.as_str() {
            "level" => {
                level = text()?
                    .parse::<f64>()
                    .ok()
                    .filter(|l| *l > 0.0 && *l < 1.0)
                    .ok_or_else(|| {
                        ApiError::field(
                            "level",
                            "must be a number strictly between 0 and 1, such as 0.8",
                        )
                    })?;
            }
            "id" => id = Some(Json_::String(text()?)),
            "explain" => explain = matches!(text()?.as_str(), "true" | "on" | "1"),
            _ => {
                let Some(k) = fields.iter().position(|f| f.name == name) else {
                    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                    return Err(ApiError::field(
                        name,
                        format!(
                            "is not a field of this model; its fields are: {} (and optional id, level, explain)",
                            names.join(", ")
                        ),
                    ));
                };
                match &fields[k].kind {
                    FieldKind::Photo { .. } if data.is_empty() => {}
                    FieldKind::Photo { .. } => match &mut values[k] {
                        Value::Photos(list) => list.push(data.to_vec()),
                        slot => *slot = Value::Photos(vec![data.to_vec()]),
                    },
                    FieldKind::Number { .. } => {
                        let t = text()?;
                        if !t.is_empty() {
                            values[k] = Value::Number(t.parse::<f64>().map_err(|_| {
                                ApiError::field(name.clone(), format!("{t:?} is not a number"))
                            })?);
                        }
                    }
                    FieldKind::Category { .. } => {
                        let t = text()?;
                        if !t.is_empty() {
                            values[k] = Value::Text(t);
                        }
                    }
                }
            }
        }
    }
    Ok(Asked {
        level,
        explain: explain.then_some(appraise::explain::DEFAULT_COMPS),
        ids: vec![id],
        houses: vec![values],
    })
}

/// One house of a request as values in the model's field order, and its `id`.
fn house_values(
    fields: &[Field],
    house: &Json_,
    i: usize,
) -> Result<(Option<Json_>, Vec<Value>), ApiError> {
    let Json_::Object(map) = house else {
        return Err(ApiError::field(
            format!("houses[{i}]"),
            "must be an object of field names and values",
        ));
    };
    let mut id = None;
    for key in map.keys() {
        if key == "id" {
            id = map.get("id").cloned();
        } else if !fields.iter().any(|f| &f.name == key) {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            return Err(ApiError::field(
                format!("houses[{i}].{key}"),
                format!(
                    "is not a field of this model; its fields are: {} (and an optional id)",
                    names.join(", ")
                ),
            ));
        }
    }
    if id
        .as_ref()
        .is_some_and(|v| !(v.is_string() || v.is_number()))
    {
        return Err(ApiError::field(
            format!("houses[{i}].id"),
            "must be a string or a number",
        ));
    }
    let values = fields
        .iter()
        .map(|f| {
            let path = || format!("houses[{i}].{}", f.name);
            json_value(f, map.get(&f.name), path)
        })
        .collect::<Result<_, _>>()?;
    Ok((id, values))
}

/// A JSON value as a field's value: numbers, texts, photos as base64 (one, or a list).
fn json_value(
    field: &Field,
    value: Option<&Json_>,
    path: impl Fn() -> String,
) -> Result<Value, ApiError> {
    let Some(value) = value else {
        return Ok(Value::Missing);
    };
    Ok(match (&field.kind, value) {
        (_, Json_::Null) => Value::Missing,
        (FieldKind::Photo { .. }, Json_::String(s)) => Value::Photos(vec![photo(s, &path)?]),
        (FieldKind::Photo { .. }, Json_::Array(list)) => Value::Photos(
            list.iter()
                .map(|p| match p {
                    Json_::String(s) => photo(s, &path),
                    _ => Err(ApiError::field(
                        path(),
                        "each photo must be a base64 string",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        (FieldKind::Photo { .. }, _) => {
            return Err(ApiError::field(
                path(),
                "must be a JPEG photo as a base64 string (or a list of them)",
            ));
        }
        (_, Json_::Number(n)) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        (FieldKind::Category { .. }, Json_::String(s)) => Value::Text(s.clone()),
        (FieldKind::Number { .. }, Json_::String(_)) => {
            return Err(ApiError::field(
                path(),
                "must be a number, not a string (write 3, not \"3\")",
            ));
        }
        _ => {
            return Err(ApiError::field(
                path(),
                match field.kind {
                    FieldKind::Number { .. } => "must be a number",
                    _ => "must be a category: a string or a number",
                },
            ));
        }
    })
}

fn photo(text: &str, path: &impl Fn() -> String) -> Result<Vec<u8>, ApiError> {
    // A data URL (what a browser's FileReader gives) or bare base64.
    let data = text.split_once(";base64,").map_or(text, |(_, d)| d).trim();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| ApiError::field(path(), format!("is not valid base64: {e}")))
}

//! The Open Inference Protocol (KServe / Triton "v2" REST API): server and model metadata,
//! health, and `infer` with one named input tensor per model field and the prices (and
//! their ranges) as output tensors. The binary tensor data extension is supported both ways,
//! since stock clients (tritonclient) send and ask for binary tensors by default.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value as Json_, json};

use appraise::io::pricer::{DEFAULT_LEVEL, FieldKind, Pricer, Value};

use crate::error::ApiError;
use crate::{AppState, ModelName, read_body};

/// The one version each model is served as.
pub const VERSION: &str = "1";
/// The binary tensor data extension's header: the length of the JSON part of the body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// `GET /v2`: server metadata.
pub async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "appraise",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
    .into_response()
}

/// `GET /v2/health/live` and `/v2/health/ready`: 200 with an empty body.
pub async fn health() -> StatusCode {
    StatusCode::OK
}

fn lookup<'a>(
    state: &'a AppState,
    name: &str,
    version: Option<&str>,
) -> Result<&'a Arc<Pricer>, ApiError> {
    let p = crate::v1::model(state, name)?;
    match version {
        Some(v) if v != VERSION => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("model {name:?} has no version {v:?}; it is served as version {VERSION}"),
        )),
        _ => Ok(p),
    }
}

fn tagged(mut response: Response, name: &str) -> Response {
    response
        .extensions_mut()
        .insert(ModelName(name.to_string()));
    response
}

fn datatype(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Number { .. } => "FP64",
        FieldKind::Category { .. } | FieldKind::Photo { .. } => "BYTES",
    }
}

/// The output tensors a model answers with.
fn output_names(p: &Pricer, level: f64) -> Vec<(String, &'static str)> {
    let mut names = vec![("predicted_price".to_string(), "FP64")];
    if p.has_ranges() {
        let (low, high) = appraise::io::output::range_columns(level);
        names.push((low, "FP64"));
        names.push((high, "FP64"));
    }
    names.push((appraise::io::output::OUTSIDE_COLUMN.to_string(), "BYTES"));
    names
}

/// The output tensors a request may ask for by name (or all with `parameters.explain`):
/// each price's explanation ([`appraise::explain`]) as numbers, and whole as JSON text.
fn explain_names(p: &Pricer) -> Vec<(String, &'static str)> {
    let mut names: Vec<(String, &'static str)> = ["fsd", "confidence", "reference_price"]
        .map(|n| (n.to_string(), "FP64"))
        .to_vec();
    names.extend(
        p.explained_columns()
            .into_iter()
            .map(|c| (format!("factor_{c}"), "FP64")),
    );
    names.push(("comparables_median".into(), "FP64"));
    names.push(("explanation".into(), "BYTES"));
    names
}

/// The values of explanation output `name` (`None` for a text output); NaN where a house
/// has none.
fn explain_numbers(quotes: &[appraise::io::pricer::Quote], name: &str) -> Option<Vec<f64>> {
    let of = |q: &appraise::io::pricer::Quote| -> Option<f64> {
        let e = q.explanation.as_ref();
        match name {
            "fsd" => q.confidence.map(|c| c.0),
            "confidence" => q.confidence.map(|c| c.1),
            "reference_price" => e?.reference_price,
            "comparables_median" => e?.comparables_median,
            _ => {
                let column = name.strip_prefix("factor_")?;
                let c = e?.contributions.iter().find(|c| c.column == column)?;
                Some(c.factor)
            }
        }
    };
    let numeric = name.starts_with("factor_")
        || matches!(
            name,
            "fsd" | "confidence" | "reference_price" | "comparables_median"
        );
    numeric.then(|| quotes.iter().map(|q| of(q).unwrap_or(f64::NAN)).collect())
}

fn metadata(name: &str, p: &Pricer) -> Json_ {
    let inputs: Vec<Json_> = p
        .fields()
        .iter()
        .map(|f| json!({"name": f.name, "datatype": datatype(&f.kind), "shape": [-1]}))
        .collect();
    let outputs: Vec<Json_> = output_names(p, DEFAULT_LEVEL)
        .into_iter()
        .map(|(n, d)| json!({"name": n, "datatype": d, "shape": [-1]}))
        .collect();
    json!({
        "name": name,
        "versions": [VERSION],
        "platform": "appraise",
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// `GET /v2/models/{name}`.
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = lookup(&state, &name, None)?;
    Ok(tagged(
        axum::Json(metadata(&name, p)).into_response(),
        &name,
    ))
}

/// `GET /v2/models/{name}/versions/{version}`.
pub async fn version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = lookup(&state, &name, Some(&version))?;
    Ok(tagged(
        axum::Json(metadata(&name, p)).into_response(),
        &name,
    ))
}

/// `GET /v2/models/{name}/ready`: 200 when served (models load before the server listens).
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    lookup(&state, &name, None)?;
    Ok(tagged(StatusCode::OK.into_response(), &name))
}

/// `GET /v2/models/{name}/versions/{version}/ready`.
pub async fn version_ready(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    lookup(&state, &name, Some(&version))?;
    Ok(tagged(StatusCode::OK.into_response(), &name))
}

/// `POST /v2/models/{name}/infer`.
pub async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    run_infer(state, name, None, headers, body).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
pub async fn version_infer(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    run_infer(state, name, Some(version), headers, body).await
}

/// A numeric or bytes tensor's elements, flattened in row-major order.
enum Elements {
    Numbers(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Numbers(v) => v.len(),
            Elements::Bytes(v) => v.len(),
        }
    }
}

const NUMERIC: [(&str, usize); 11] = [
    ("FP64", 8),
    ("FP32", 4),
    ("INT64", 8),
    ("INT32", 4),
    ("INT16", 2),
    ("INT8", 1),
    ("UINT64", 8),
    ("UINT32", 4),
    ("UINT16", 2),
    ("UINT8", 1),
    ("BOOL", 1),
];

fn element_size(datatype: &str) -> Option<usize> {
    NUMERIC
        .iter()
        .find(|(d, _)| *d == datatype)
        .map(|(_, s)| *s)
}

fn decode_number(datatype: &str, b: &[u8]) -> f64 {
    let arr = |n: usize| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&b[..n]);
        a
    };
    match datatype {
        "FP64" => f64::from_le_bytes(arr(8)),
        "FP32" => f64::from(f32::from_le_bytes(arr(4)[..4].try_into().expect("4 bytes"))),
        "INT64" => i64::from_le_bytes(arr(8)) as f64,
        "INT32" => f64::from(i32::from_le_bytes(arr(4)[..4].try_into().expect("4 bytes"))),
        "INT16" => f64::from(i16::from_le_bytes([b[0], b[1]])),
        "INT8" => f64::from(b[0] as i8),
        "UINT64" => u64::from_le_bytes(arr(8)) as f64,
        "UINT32" => f64::from(u32::from_le_bytes(arr(4)[..4].try_into().expect("4 bytes"))),
        "UINT16" => f64::from(u16::from_le_bytes([b[0], b[1]])),
        _ => f64::from(b[0]),
    }
}

fn flatten(value: &Json_, out: &mut Vec<Json_>, depth: usize) -> bool {
    match value {
        Json_::Array(items) if depth < 8 => items.iter().all(|v| flatten(v, out, depth + 1)),
        Json_::Array(_) => false,
        v => {
            out.push(v.clone());
            true
        }
    }
}

/// One input tensor of an infer request, decoded.
struct Input {
    name: String,
    elements: Elements,
}

async fn run_infer(
    state: Arc<AppState>,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pricer = lookup(&state, &name, version.as_deref())?.clone();
    let bytes = read_body(&state, &headers, body).await?;
    let (json_part, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(v) => {
            let n = v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|&n| n <= bytes.len())
                .ok_or_else(|| {
                    ApiError::field(
                        "Inference-Header-Content-Length",
                        format!(
                            "must be the length of the JSON part of the body (at most {} bytes)",
                            bytes.len()
                        ),
                    )
                })?;
            (&bytes[..n], &bytes[n..])
        }
        None => (&bytes[..], &bytes[..0]),
    };
    let request: Json_ = serde_json::from_slice(json_part)
        .map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}")))?;
    let Json_::Object(request) = request else {
        return Err(ApiError::bad(
            "the body must be a JSON object with \"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}, ...]",
        ));
    };
    let mut level = DEFAULT_LEVEL;
    let mut binary_all = false;
    let mut explain_all = false;
    let mut id = None;
    let mut inputs_json = None;
    let mut outputs_json = None;
    for (key, value) in &request {
        match key.as_str() {
            "id" => {
                id = Some(
                    value
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::field("id", "must be a string"))?,
                )
            }
            "inputs" => inputs_json = Some(value),
            "outputs" => outputs_json = Some(value),
            "parameters" => {
                let Json_::Object(params) = value else {
                    return Err(ApiError::field("parameters", "must be an object"));
                };
                for (k, v) in params {
                    match k.as_str() {
                        "level" => {
                            level =
                                v.as_f64().filter(|l| *l > 0.0 && *l < 1.0).ok_or_else(|| {
                                    ApiError::field(
                                        "parameters.level",
                                        "must be a number strictly between 0 and 1, such as 0.8",
                                    )
                                })?
                        }
                        "binary_data_output" => {
                            binary_all = v.as_bool().ok_or_else(|| {
                                ApiError::field(
                                    "parameters.binary_data_output",
                                    "must be a boolean",
                                )
                            })?
                        }
                        "explain" => {
                            explain_all = v.as_bool().ok_or_else(|| {
                                ApiError::field("parameters.explain", "must be a boolean")
                            })?
                        }
                        // Other parameters (priorities, timeouts of other servers) do not apply.
                        _ => {}
                    }
                }
            }
            other => {
                return Err(ApiError::field(
                    other,
                    "is not a field of an inference request (id, parameters, inputs, outputs)",
                ));
            }
        }
    }
    let Some(Json_::Array(inputs_json)) = inputs_json else {
        return Err(ApiError::field(
            "inputs",
            "is missing or not a list of tensors",
        ));
    };
    let mut inputs: Vec<Input> = Vec::with_capacity(inputs_json.len());
    let mut batch: Option<usize> = None;
    for (k, tensor) in inputs_json.iter().enumerate() {
        let at = |f: &str| format!("inputs[{k}].{f}");
        let Json_::Object(t) = tensor else {
            return Err(ApiError::field(
                format!("inputs[{k}]"),
                "must be a tensor object",
            ));
        };
        for key in t.keys() {
            if !matches!(
                key.as_str(),
                "name" | "shape" | "datatype" | "parameters" | "data"
            ) {
                return Err(ApiError::field(
                    at(key),
                    "is not a field of a tensor (name, shape, datatype, parameters, data)",
                ));
            }
        }
        let tname = t
            .get("name")
            .and_then(Json_::as_str)
            .ok_or_else(|| ApiError::field(at("name"), "is missing or not a string"))?
            .to_string();
        let Some(field) = pricer.fields().iter().find(|f| f.name == tname) else {
            let names: Vec<&str> = pricer.fields().iter().map(|f| f.name.as_str()).collect();
            return Err(ApiError::field(
                at("name"),
                format!(
                    "{tname:?} is not an input of model {name:?}; its inputs are: {}",
                    names.join(", ")
                ),
            ));
        };
        if inputs.iter().any(|i| i.name == tname) {
            return Err(ApiError::field(
                at("name"),
                format!("{tname:?} is given twice"),
            ));
        }
        let dt = t
            .get("datatype")
            .and_then(Json_::as_str)
            .ok_or_else(|| ApiError::field(at("datatype"), "is missing or not a string"))?
            .to_string();
        let allowed = match field.kind {
            FieldKind::Number { .. } => element_size(&dt).is_some() && dt != "BOOL",
            FieldKind::Category { .. } => dt == "BYTES" || element_size(&dt).is_some(),
            FieldKind::Photo { .. } => dt == "BYTES",
        };
        if !allowed {
            return Err(ApiError::field(
                at("datatype"),
                format!(
                    "{tname:?} takes {} tensors, not {dt}",
                    match field.kind {
                        FieldKind::Number { .. } => "FP64 or FP32 (or integer)",
                        FieldKind::Category { .. } => "BYTES (or numeric)",
                        FieldKind::Photo { .. } => "BYTES (each element one JPEG file)",
                    }
                ),
            ));
        }
        let shape: Vec<i64> = match t.get("shape") {
            Some(Json_::Array(dims)) => dims
                .iter()
                .map(|d| d.as_i64().filter(|&d| d >= 0))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ApiError::field(at("shape"), "must be a list of whole numbers >= 0")
                })?,
            _ => return Err(ApiError::field(at("shape"), "is missing or not a list")),
        };
        let n = match shape.as_slice() {
            [n] | [n, 1] => *n as usize,
            _ => {
                return Err(ApiError::field(
                    at("shape"),
                    format!("must be [N] or [N, 1] for N houses (got {shape:?})"),
                ));
            }
        };
        if n > state.config.max_houses {
            return Err(ApiError::field(
                at("shape"),
                format!(
                    "asks for {n} houses; one request takes at most {}",
                    state.config.max_houses
                ),
            ));
        }
        match batch {
            Some(b) if b != n => {
                return Err(ApiError::field(
                    at("shape"),
                    format!(
                        "has {n} houses where an earlier input has {b}; every input needs one element per house"
                    ),
                ));
            }
            _ => batch = Some(n),
        }
        let binary_size = match t.get("parameters") {
            None => None,
            Some(Json_::Object(p)) => match p.get("binary_data_size") {
                None => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    ApiError::field(at("parameters.binary_data_size"), "must be a whole number")
                })? as usize),
            },
            Some(_) => return Err(ApiError::field(at("parameters"), "must be an object")),
        };
        let elements = match (binary_size, t.get("data")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    at("data"),
                    "is given with parameters.binary_data_size; send the tensor one way only",
                ));
            }
            (Some(size), None) => {
                if size > binary.len() {
                    return Err(ApiError::field(
                        at("parameters.binary_data_size"),
                        format!(
                            "is {size} bytes but only {} binary bytes remain in the body",
                            binary.len()
                        ),
                    ));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                decode_binary(&dt, mine, n)
                    .map_err(|m| ApiError::field(at("parameters.binary_data_size"), m))?
            }
            (None, Some(data)) => {
                let mut flat = Vec::new();
                if !flatten(data, &mut flat, 0) {
                    return Err(ApiError::field(at("data"), "is nested too deeply"));
                }
                decode_json(&dt, &flat, &field.kind).map_err(|m| ApiError::field(at("data"), m))?
            }
            (None, None) => return Err(ApiError::field(at("data"), "is missing")),
        };
        if elements.len() != n {
            return Err(ApiError::field(
                at("data"),
                format!(
                    "holds {} elements; shape {shape:?} needs {n}",
                    elements.len()
                ),
            ));
        }
        inputs.push(Input {
            name: tname,
            elements,
        });
    }
    if !binary.is_empty() {
        return Err(ApiError::bad(format!(
            "{} bytes of binary tensor data follow the JSON but no input claims them (parameters.binary_data_size)",
            binary.len()
        )));
    }
    let n = batch
        .ok_or_else(|| ApiError::field("inputs", "is empty; send one tensor per model input"))?;
    if n == 0 {
        return Err(ApiError::field("inputs", "hold no houses (shape [0])"));
    }
    // Houses, one value per field; a field with no tensor is missing for every house.
    let mut houses: Vec<Vec<Value>> = vec![Vec::with_capacity(pricer.fields().len()); n];
    for field in pricer.fields() {
        let input = inputs.iter_mut().find(|i| i.name == field.name);
        if input.is_none() && field.required {
            return Err(ApiError::field(
                "inputs",
                format!(
                    "has no tensor named {:?}, which the model needs",
                    field.name
                ),
            ));
        }
        for (h, house) in houses.iter_mut().enumerate() {
            house.push(match &input {
                None => Value::Missing,
                Some(i) => match (&i.elements, &field.kind) {
                    // A tensor cannot leave an element out: NaN marks a missing number.
                    (Elements::Numbers(v), FieldKind::Number { .. })
                        if v[h].is_nan() && !field.required =>
                    {
                        Value::Missing
                    }
                    (Elements::Numbers(v), _) => Value::Number(v[h]),
                    (Elements::Bytes(v), FieldKind::Photo { .. }) => {
                        Value::Photos(vec![v[h].clone()])
                    }
                    (Elements::Bytes(v), _) => {
                        let text = String::from_utf8_lossy(&v[h]).into_owned();
                        if text.is_empty() {
                            Value::Missing
                        } else {
                            Value::Text(text)
                        }
                    }
                },
            });
        }
    }
    let plain = output_names(&pricer, level);
    let explained = explain_names(&pricer);
    let known: Vec<(String, &'static str)> = plain.iter().chain(&explained).cloned().collect();
    let mut wanted: Vec<(String, &'static str, bool)> = Vec::new();
    match outputs_json {
        None => {
            let defaults = if explain_all { &known } else { &plain };
            wanted.extend(defaults.iter().map(|(n, d)| (n.clone(), *d, binary_all)))
        }
        Some(Json_::Array(list)) => {
            for (k, o) in list.iter().enumerate() {
                let oname = o.get("name").and_then(Json_::as_str).ok_or_else(|| {
                    ApiError::field(format!("outputs[{k}].name"), "is missing or not a string")
                })?;
                let Some((_, d)) = known.iter().find(|(n, _)| n == oname) else {
                    let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(ApiError::field(
                        format!("outputs[{k}].name"),
                        format!(
                            "{oname:?} is not an output of this model; it has: {}",
                            names.join(", ")
                        ),
                    ));
                };
                let binary = o
                    .get("parameters")
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Json_::as_bool)
                    .unwrap_or(binary_all);
                wanted.push((oname.to_string(), d, binary));
            }
        }
        Some(_) => {
            return Err(ApiError::field(
                "outputs",
                "must be a list of {\"name\": ...}",
            ));
        }
    }
    let comps = wanted
        .iter()
        .any(|(w, _, _)| explained.iter().any(|(n, _)| n == w))
        .then_some(appraise::explain::DEFAULT_COMPS);
    let quotes = crate::run_pricing(&pricer, houses, level, comps)
        .await
        .map_err(|e| {
            // A value's field error names its tensor and element.
            match e.field.as_deref().and_then(|f| f.strip_prefix("houses[")) {
                Some(rest) => {
                    let (house, field) = rest.split_once("].").unwrap_or(("0", rest));
                    let k = inputs_json
                        .iter()
                        .position(|t| t.get("name").and_then(Json_::as_str) == Some(field));
                    let at = k.map_or_else(
                        || "inputs".to_string(),
                        |k| format!("inputs[{k}].data[{house}]"),
                    );
                    ApiError::field(at, format!("{field}: {}", e.message))
                }
                None => e,
            }
        })?;
    state.metrics.priced(&name, n);
    let (low, high) = appraise::io::output::range_columns(level);
    let mut tail: Vec<u8> = Vec::new();
    let mut outputs = Vec::with_capacity(wanted.len());
    for (oname, dt, as_binary) in &wanted {
        let numbers: Option<Vec<f64>> = if *oname == "predicted_price" {
            Some(quotes.quotes.iter().map(|q| q.price).collect())
        } else if *oname == low {
            Some(
                quotes
                    .quotes
                    .iter()
                    .map(|q| q.range.map_or(f64::NAN, |r| r.0))
                    .collect(),
            )
        } else if *oname == high {
            Some(
                quotes
                    .quotes
                    .iter()
                    .map(|q| q.range.map_or(f64::NAN, |r| r.1))
                    .collect(),
            )
        } else {
            explain_numbers(&quotes.quotes, oname)
        };
        let texts: Vec<String> = quotes
            .quotes
            .iter()
            .map(|q| match oname.as_str() {
                "explanation" => q.explanation.as_ref().map_or_else(String::new, |e| {
                    serde_json::to_string(e).expect("explanations serialize")
                }),
                _ => q.outside_training.clone().unwrap_or_default(),
            })
            .collect();
        let mut tensor = Map::new();
        tensor.insert("name".into(), oname.clone().into());
        tensor.insert("datatype".into(), (*dt).into());
        tensor.insert("shape".into(), json!([n]));
        if *as_binary {
            let start = tail.len();
            match &numbers {
                Some(v) => v
                    .iter()
                    .for_each(|x| tail.extend_from_slice(&x.to_le_bytes())),
                None => texts.iter().for_each(|t| {
                    tail.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    tail.extend_from_slice(t.as_bytes());
                }),
            }
            tensor.insert(
                "parameters".into(),
                json!({"binary_data_size": tail.len() - start}),
            );
        } else {
            tensor.insert(
                "data".into(),
                match numbers {
                    Some(v) => json!(v),
                    None => json!(texts),
                },
            );
        }
        outputs.push(Json_::Object(tensor));
    }
    let mut response = json!({
        "model_name": name,
        "model_version": VERSION,
        "outputs": outputs,
    });
    let mut parameters = Map::new();
    parameters.insert("level".into(), level.into());
    if !quotes.warnings.is_empty() {
        parameters.insert("warnings".into(), quotes.warnings.join("; ").into());
    }
    response["parameters"] = Json_::Object(parameters);
    if let Some(id) = id {
        response["id"] = id.into();
    }
    let mut body = serde_json::to_vec(&response).expect("a response serializes");
    let resp = if tail.is_empty() {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    } else {
        let json_len = body.len();
        body.extend_from_slice(&tail);
        let mut r = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            body,
        )
            .into_response();
        r.headers_mut()
            .insert(HEADER_LENGTH, HeaderValue::from(json_len));
        r
    };
    Ok(tagged(resp, &name))
}

fn decode_binary(datatype: &str, bytes: &[u8], n: usize) -> Result<Elements, String> {
    if datatype == "BYTES" {
        let mut out = Vec::with_capacity(n);
        let mut rest = bytes;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err("ends inside a BYTES element's 4-byte length".into());
            }
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            rest = &rest[4..];
            if len > rest.len() {
                return Err(format!(
                    "a BYTES element claims {len} bytes but {} remain",
                    rest.len()
                ));
            }
            out.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
        return Ok(Elements::Bytes(out));
    }
    let size = element_size(datatype).expect("checked datatype");
    if bytes.len() != size * n {
        return Err(format!(
            "is {} bytes; {n} {datatype} elements take {}",
            bytes.len(),
            size * n
        ));
    }
    Ok(Elements::Numbers(
        bytes
            .chunks_exact(size)
            .map(|b| decode_number(datatype, b))
            .collect(),
    ))
}

fn decode_json(datatype: &str, flat: &[Json_], kind: &FieldKind) -> Result<Elements, String> {
    if datatype == "BYTES" {
        return flat
            .iter()
            .enumerate()
            .map(|(i, v)| match (v, kind) {
                (Json_::String(s), FieldKind::Photo { .. }) => {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|e| format!("element {i} is not a base64 JPEG: {e}"))
                }
                (Json_::String(s), _) => Ok(s.as_bytes().to_vec()),
                _ => Err(format!("element {i} of a BYTES tensor must be a string")),
            })
            .collect::<Result<_, _>>()
            .map(Elements::Bytes);
    }
    flat.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .or_else(|| v.as_bool().map(f64::from))
                .ok_or_else(|| format!("element {i} of a {datatype} tensor must be a number"))
        })
        .collect::<Result<_, _>>()
        .map(Elements::Numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_tensors_decode_as_the_extension_lays_them_out() {
        let mut b = Vec::new();
        for x in [3.0f64, 4.5] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        match decode_binary("FP64", &b, 2).unwrap() {
            Elements::Numbers(v) => assert_eq!(v, vec![3.0, 4.5]),
            _ => panic!(),
        }
        assert!(decode_binary("FP64", &b, 3).is_err());
        let mut s = Vec::new();
        for t in ["92276", ""] {
            s.extend_from_slice(&(t.len() as u32).to_le_bytes());
            s.extend_from_slice(t.as_bytes());
        }
        match decode_binary("BYTES", &s, 2).unwrap() {
            Elements::Bytes(v) => assert_eq!(v, vec![b"92276".to_vec(), Vec::new()]),
            _ => panic!(),
        }
        assert!(decode_binary("BYTES", &s[..6], 2).is_err());
        match decode_binary("FP32", &2.5f32.to_le_bytes(), 1).unwrap() {
            Elements::Numbers(v) => assert_eq!(v, vec![2.5]),
            _ => panic!(),
        }
    }
}

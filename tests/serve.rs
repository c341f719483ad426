//! End-to-end tests of `appraise serve` through the binary: the plain JSON API, the Open
//! Inference Protocol (v2, JSON and binary tensors), the token, the metrics, shutdown, and
//! bad requests of many kinds, none of which may hurt the server.

mod common;
mod serve_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{appraise, text};
use serve_common::{Server, agent, answer, get, json, models_folder, post};

const HOUSE: &str = r#"{"bedrooms": 3, "bathrooms": 2, "area": 1500, "zipcode": "92276"}"#;

/// The price `appraise predict` gives one house of the Houses layout.
fn cli_price(model: &std::path::Path, cwd: &std::path::Path) -> f64 {
    let out = appraise(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--bedrooms",
            "3",
            "--bathrooms",
            "2",
            "--area",
            "1500",
            "--zipcode",
            "92276",
            "--format",
            "json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&text(&out.stdout));
    v[0]["predicted_price"].as_f64().unwrap()
}

/// The prices `appraise predict` gives the rows of a table (CSV in, CSV out).
fn cli_table_prices(model: &std::path::Path, csv: &str, cwd: &std::path::Path) -> Vec<f64> {
    let input = cwd.join("ask.csv");
    std::fs::write(&input, csv).unwrap();
    let out = common::predict_run(model, &input, cwd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "predicted_price").unwrap();
    lines
        .map(|l| l.split(',').nth(at).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn serves_every_model_of_a_folder_as_predict_prices_them() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let server = Server::start(&["--models", models.to_str().unwrap()], dir.path());
    let agent = agent();

    // Health and metadata.
    assert_eq!(get(&agent, &server.url("/v2/health/ready")).0, 200);
    assert_eq!(get(&agent, &server.url("/v2/health/live")).0, 200);
    let (status, body) = get(&agent, &server.url("/v2"));
    assert_eq!(status, 200);
    assert_eq!(json(&body)["name"], "appraise");
    let (_, body) = get(&agent, &server.url("/v1/models"));
    let listed = json(&body);
    let names: Vec<&str> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["houses", "listings"]);
    let (status, body) = get(&agent, &server.url("/v2/models/houses"));
    assert_eq!(status, 200, "{body}");
    let meta = json(&body);
    let inputs: Vec<(&str, &str)> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["datatype"].as_str().unwrap()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("zipcode", "BYTES"),
            ("bedrooms", "FP64"),
            ("bathrooms", "FP64"),
            ("area", "FP64")
        ]
    );
    assert_eq!(get(&agent, &server.url("/v2/models/houses/ready")).0, 200);
    assert_eq!(
        get(&agent, &server.url("/v2/models/houses/versions/1/ready")).0,
        200
    );

    // The plain JSON API prices a house exactly as `appraise predict` does, with a range.
    let expected = cli_price(&models.join("houses/model.appraise"), dir.path());
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/houses/predict"),
        &format!(r#"{{"houses": [{HOUSE}, {HOUSE}]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    let p = &v["predictions"][0];
    assert_eq!(p["predicted_price"].as_f64().unwrap(), expected);
    assert_eq!(v["predictions"][1]["predicted_price"], p["predicted_price"]);
    let (low, high) = (
        p["low_80"].as_f64().unwrap(),
        p["high_80"].as_f64().unwrap(),
    );
    assert!(low < expected && expected < high, "{body}");
    assert!(p["outside_training"].is_null(), "{body}");
    assert!(p.get("explanation").is_none(), "{body}");

    // Asked to, it explains each price exactly as `appraise predict --explain` does.
    let out = appraise(
        &[
            "predict",
            "--model",
            models.join("houses/model.appraise").to_str().unwrap(),
            "--bedrooms",
            "3",
            "--bathrooms",
            "2",
            "--area",
            "1500",
            "--zipcode",
            "92276",
            "--format",
            "json",
            "--explain",
            "--comps",
            "3",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cli = json(&text(&out.stdout));
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/houses/predict"),
        &format!(r#"{{"houses": [{HOUSE}], "explain": true, "comps": 3}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let served = &json(&body)["predictions"][0];
    assert_eq!(served["explanation"], cli[0]["explanation"], "{body}");
    assert_eq!(
        served["explanation"]["comparables"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(served["confidence"], cli[0]["confidence"]);

    // The same house as a multipart form (what an HTML form or `curl -F` sends).
    let boundary = "XappraiseX";
    let mut form = String::new();
    for (field, value) in [
        ("bedrooms", "3"),
        ("bathrooms", "2"),
        ("area", "1500"),
        ("zipcode", "92276"),
        ("id", "form-1"),
    ] {
        form.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
        ));
    }
    form.push_str(&format!("--{boundary}--\r\n"));
    let (status, body) = answer(
        agent
            .post(server.url("/v1/models/houses/predict"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&form),
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["predictions"][0]["id"], "form-1");
    assert_eq!(
        v["predictions"][0]["predicted_price"].as_f64().unwrap(),
        expected
    );
    let (status, body) = answer(
        agent
            .post(server.url("/v1/models/houses/predict"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(form.replace("name=\"area\"", "name=\"garage\"")),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["field"], "garage");

    // v2 infer, JSON tensors: the same price, as a tensor.
    let infer = r#"{"id": "q1", "inputs": [
        {"name": "bedrooms", "shape": [1], "datatype": "FP64", "data": [3]},
        {"name": "bathrooms", "shape": [1], "datatype": "FP32", "data": [2.0]},
        {"name": "area", "shape": [1, 1], "datatype": "INT32", "data": [[1500]]},
        {"name": "zipcode", "shape": [1], "datatype": "BYTES", "data": ["92276"]}]}"#;
    let (status, body) = post(&agent, &server.url("/v2/models/houses/infer"), infer);
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["model_name"], "houses");
    assert_eq!(v["id"], "q1");
    let out = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "predicted_price")
        .unwrap();
    assert_eq!(out["datatype"], "FP64");
    assert_eq!(out["shape"], serde_json::json!([1]));
    let v2_price = out["data"][0].as_f64().unwrap();
    assert!(
        (v2_price - expected).abs() < 0.006,
        "{v2_price} vs {expected}"
    );

    // Explanations as extra output tensors, when asked for by name.
    let explained = infer.replace(
        r#"{"id": "q1", "#,
        r#"{"id": "q2", "outputs": [{"name": "factor_area"}, {"name": "confidence"}, {"name": "explanation"}], "#,
    );
    let (status, body) = post(&agent, &server.url("/v2/models/houses/infer"), &explained);
    assert_eq!(status, 200, "{body}");
    let outputs = json(&body)["outputs"].as_array().unwrap().clone();
    let names: Vec<&str> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["factor_area", "confidence", "explanation"]);
    let whole = json(outputs[2]["data"][0].as_str().unwrap());
    let area = whole["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "area")
        .unwrap();
    assert_eq!(outputs[0]["data"][0], area["factor"]);
    assert_eq!(
        whole["contributions"],
        cli[0]["explanation"]["contributions"]
    );

    // v2 infer with the binary tensor data extension, both ways.
    let header = serde_json::json!({
        "inputs": [
            {"name": "bedrooms", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "bathrooms", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "area", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "zipcode", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 18}},
        ],
        "outputs": [{"name": "predicted_price", "parameters": {"binary_data": true}}],
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    for pair in [[3.0f64, 3.0], [2.0, 2.0], [1500.0, 1500.0]] {
        for x in pair {
            body.extend_from_slice(&x.to_le_bytes());
        }
    }
    for zip in ["92276", "85255"] {
        body.extend_from_slice(&(zip.len() as u32).to_le_bytes());
        body.extend_from_slice(zip.as_bytes());
    }
    let (status, reply, json_len) = {
        let mut r = agent
            .post(server.url("/v2/models/houses/infer"))
            .header("Content-Type", "application/octet-stream")
            .header("Inference-Header-Content-Length", &header.len().to_string())
            .send(&body[..])
            .unwrap();
        let len: usize = r
            .headers()
            .get("inference-header-content-length")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        (
            r.status().as_u16(),
            r.body_mut().read_to_vec().unwrap(),
            len,
        )
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    assert!(json_len > 0 && json_len < reply.len());
    let head = json(std::str::from_utf8(&reply[..json_len]).unwrap());
    let first = &head["outputs"][0];
    assert_eq!(first["name"], "predicted_price");
    assert_eq!(first["parameters"]["binary_data_size"], 16);
    let binary = &reply[json_len..];
    let price0 = f64::from_le_bytes(binary[..8].try_into().unwrap());
    let price1 = f64::from_le_bytes(binary[8..16].try_into().unwrap());
    assert!((price0 - expected).abs() < 0.006, "{price0} vs {expected}");
    assert_ne!(price0, price1, "the second house is in another zip code");

    // A table model: optional fields (imputed when missing), categories as text, an unseen
    // category priced by the fallback and named in a warning; the same prices as predict.
    let (status, body) = get(&agent, &server.url("/v1/models/listings"));
    assert_eq!(status, 200, "{body}");
    let described = json(&body);
    let fields: Vec<&str> = described["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["beds", "sqft", "type", "city"]);
    let city = described["fields"][3].clone();
    assert_eq!(city["kind"], "category");
    assert_eq!(
        city["levels"],
        serde_json::json!(["Alpha", "Beta", "Delta", "Gamma"])
    );
    let expected = cli_table_prices(
        &models.join("listings/model.appraise"),
        "beds,sqft,type,city\n3,1500,house,Beta\n2,,condo,Alpha\n",
        dir.path(),
    );
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/listings/predict"),
        r#"{"houses": [
            {"id": "a", "beds": 3, "sqft": 1500, "type": "house", "city": "Beta"},
            {"id": 7, "beds": 2, "type": "condo", "city": "Alpha"},
            {"beds": 2, "sqft": 1000, "type": "castle", "city": "Alpha"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["predictions"][0]["id"], "a");
    assert_eq!(v["predictions"][1]["id"], 7);
    for (k, price) in expected.iter().enumerate() {
        assert_eq!(
            v["predictions"][k]["predicted_price"].as_f64().unwrap(),
            *price
        );
    }
    assert!(
        v["predictions"][2]["outside_training"]
            .as_str()
            .is_some_and(|s| s.contains("castle")),
        "{body}"
    );
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("type")),
        "{body}"
    );
    // A range at another level.
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/listings/predict"),
        r#"{"level": 0.9, "houses": [{"beds": 3, "sqft": 1500, "type": "house", "city": "Beta"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        json(&body)["predictions"][0]["low_90"].is_number(),
        "{body}"
    );

    // The page and the metrics.
    let (status, page) = get(&agent, &server.url("/"));
    assert_eq!(status, 200);
    assert!(page.contains("<form id=\"form\">"));
    let (status, metrics) = get(&agent, &server.url("/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"appraise_requests_total{route="/v1/models/{name}/predict",model="houses",status="200"} 3"#)
            && metrics.contains(r#"appraise_requests_total{route="/v1/models/{name}/predict",model="houses",status="400"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"appraise_houses_priced_total{model="houses"} 8"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("appraise_request_duration_seconds_bucket"),
        "{metrics}"
    );

    // SIGTERM: a clean exit, a log line for each request and one for the shutdown.
    let (ok, log) = server.terminate();
    assert!(ok, "{log}");
    assert!(log.contains(r#""event":"shutdown""#), "{log}");
    assert!(
        log.contains(r#""route":"/v2/models/{name}/infer""#),
        "{log}"
    );
}

/// One malformed request: where it goes, what it sends, the status it must get, and the
/// field its error must name (when there is one).
struct Bad {
    method: &'static str,
    path: &'static str,
    body: String,
    status: u16,
    field: Option<&'static str>,
}

fn bad(path: &'static str, body: &str, status: u16, field: Option<&'static str>) -> Bad {
    Bad {
        method: "POST",
        path,
        body: body.to_string(),
        status,
        field,
    }
}

const V1: &str = "/v1/models/houses/predict";
const V2: &str = "/v2/models/houses/infer";

fn malformed_requests() -> Vec<Bad> {
    let tensor = |name: &str, dt: &str, shape: &str, data: &str| {
        format!(r#"{{"name": "{name}", "datatype": "{dt}", "shape": {shape}, "data": {data}}}"#)
    };
    let good_inputs = [
        tensor("bedrooms", "FP64", "[1]", "[3]"),
        tensor("bathrooms", "FP64", "[1]", "[2]"),
        tensor("area", "FP64", "[1]", "[1500]"),
        tensor("zipcode", "BYTES", "[1]", r#"["92276"]"#),
    ];
    let infer_with = |k: usize, replacement: String| {
        let mut inputs = good_inputs.clone();
        inputs[k] = replacement;
        format!(r#"{{"inputs": [{}]}}"#, inputs.join(","))
    };
    let house_with = |field: &str, value: &str| {
        let mut house: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(HOUSE).unwrap();
        if value.is_empty() {
            house.remove(field);
        } else {
            house.insert(field.into(), serde_json::from_str(value).unwrap());
        }
        format!(r#"{{"houses": [{}]}}"#, serde_json::Value::Object(house))
    };
    let too_many = format!(r#"{{"houses": [{}]}}"#, vec![HOUSE; 60].join(","));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        bad(V1, "{not json", 400, None),
        bad(V1, "[1, 2]", 400, None),
        bad(V1, "{}", 400, Some("houses")),
        bad(V1, r#"{"houses": {"a": 1}}"#, 400, Some("houses")),
        bad(V1, r#"{"houses": []}"#, 400, Some("houses")),
        bad(V1, r#"{"houses": [7]}"#, 400, Some("houses[0]")),
        bad(
            V1,
            &house_with("garage", "2"),
            400,
            Some("houses[0].garage"),
        ),
        bad(
            V1,
            &house_with("area", r#""1500""#),
            400,
            Some("houses[0].area"),
        ),
        bad(
            V1,
            &house_with("bedrooms", ""),
            400,
            Some("houses[0].bedrooms"),
        ),
        bad(V1, &house_with("area", "-5"), 400, Some("houses[0].area")),
        bad(
            V1,
            &house_with("zipcode", r#""nowhere""#),
            400,
            Some("houses[0].zipcode"),
        ),
        bad(
            V1,
            &house_with("zipcode", "[1]"),
            400,
            Some("houses[0].zipcode"),
        ),
        bad(V1, &house_with("id", "{}"), 400, Some("houses[0].id")),
        bad(
            V1,
            &format!(r#"{{"level": 1.5, "houses": [{HOUSE}]}}"#),
            400,
            Some("level"),
        ),
        bad(
            V1,
            &format!(r#"{{"extra": 1, "houses": [{HOUSE}]}}"#),
            400,
            Some("extra"),
        ),
        bad(V1, &too_many, 400, Some("houses")),
        bad(V1, &deep, 400, None),
        bad("/v1/models/nobody/predict", HOUSE, 404, None),
        bad("/v1/models/..%2F..%2Fetc/predict", HOUSE, 404, None),
        bad("/v9/anything", "{}", 404, None),
        Bad {
            method: "GET",
            path: V1,
            body: String::new(),
            status: 405,
            field: None,
        },
        bad(V2, "{}", 400, Some("inputs")),
        bad(V2, r#"{"inputs": [], "bogus": 1}"#, 400, Some("bogus")),
        bad(
            V2,
            &infer_with(0, tensor("rooms", "FP64", "[1]", "[3]")),
            400,
            Some("inputs[0].name"),
        ),
        bad(
            V2,
            &infer_with(2, tensor("area", "BYTES", "[1]", r#"["big"]"#)),
            400,
            Some("inputs[2].datatype"),
        ),
        bad(
            V2,
            &infer_with(2, tensor("area", "FP64", "[2]", "[1500, 1600]")),
            400,
            Some("inputs[2].shape"),
        ),
        bad(
            V2,
            &infer_with(2, tensor("area", "FP64", "[1]", "[1500, 1600]")),
            400,
            Some("inputs[2].data"),
        ),
        bad(
            V2,
            &infer_with(2, tensor("area", "FP64", "[1]", r#"["x"]"#)),
            400,
            Some("inputs[2].data"),
        ),
        bad(
            V2,
            &infer_with(2, tensor("area", "FP64", "[1, 2, 3]", "[1]")),
            400,
            Some("inputs[2].shape"),
        ),
        bad(
            V2,
            &format!(r#"{{"inputs": [{}]}}"#, good_inputs[..3].join(",")),
            400,
            Some("zipcode"),
        ),
        bad("/v2/models/houses/versions/7/infer", "{}", 404, None),
    ]
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field_and_never_hurt_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let server = Server::start(
        &[
            "--model",
            models.join("houses/model.appraise").to_str().unwrap(),
            "--body-limit",
            "0.1",
            "--max-houses",
            "50",
            "--timeout",
            "1",
        ],
        dir.path(),
    );
    let agent = agent();
    for (k, case) in malformed_requests().iter().enumerate() {
        let url = server.url(case.path);
        let (status, body) = if case.method == "GET" {
            get(&agent, &url)
        } else {
            post(&agent, &url, &case.body)
        };
        assert_eq!(status, case.status, "case {k} ({}): {body}", case.path);
        if status != 405 {
            let v = json(&body);
            assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "case {k}: {body}"
            );
            if let Some(field) = case.field {
                let named = v["field"].as_str().unwrap_or("");
                assert!(
                    named == field || v["error"].as_str().unwrap().contains(field),
                    "case {k}: expected field {field}, got {body}"
                );
            }
        }
    }

    // 1,000 random bodies, mutations of good ones: never a 5xx.
    let seeds = [
        format!(r#"{{"houses": [{HOUSE}]}}"#),
        r#"{"inputs": [{"name": "bedrooms", "shape": [1], "datatype": "FP64", "data": [3]}, {"name": "bathrooms", "shape": [1], "datatype": "FP64", "data": [2]}, {"name": "area", "shape": [1], "datatype": "FP64", "data": [1500]}, {"name": "zipcode", "shape": [1], "datatype": "BYTES", "data": ["92276"]}]}"#.to_string(),
    ];
    let fragments: [&[u8]; 12] = [
        b"null",
        b"-1e308",
        b"1e999",
        b"\"\"",
        b"[]",
        b"{}",
        b"true",
        b"\"\\u0000\"",
        b"[[[[[[",
        b"0.0000001",
        b"18446744073709551616",
        b"\"92276\"",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut client_errors = 0;
    for i in 0..1000 {
        let seed = &seeds[i % 2];
        let mut body = seed.clone().into_bytes();
        for _ in 0..1 + next() % 4 {
            let at = (next() % body.len() as u64) as usize;
            match next() % 4 {
                0 => body[at] = (next() % 256) as u8,
                1 => body.truncate(at),
                2 => {
                    let f = fragments[(next() % fragments.len() as u64) as usize];
                    body.splice(at..at, f.iter().copied());
                }
                _ => {
                    let end = (at + 1 + (next() % 12) as usize).min(body.len());
                    body.drain(at..end);
                }
            }
            if body.is_empty() {
                body.push(b'{');
            }
        }
        let path = if i % 2 == 0 { V1 } else { V2 };
        let (status, answer_body) = answer(
            agent
                .post(server.url(path))
                .header("Content-Type", "application/json")
                .send(&body[..]),
        );
        assert!(
            status < 500,
            "request {i} got {status}: {answer_body}\nbody: {}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            client_errors += 1;
            assert!(answer_body.contains("\"error\""), "{answer_body}");
        }
    }
    assert!(client_errors > 500, "most mutations break the request");

    // A body over --body-limit: a 413 as soon as its length is declared (the server does not
    // read the rest, so the client may see its write cut short), and one that does not
    // declare its length is cut off at the limit.
    for chunked in [false, true] {
        let mut big = TcpStream::connect(server.addr()).unwrap();
        big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = if chunked {
            format!("POST {V1} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        } else {
            format!("POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n")
        };
        big.write_all(head.as_bytes()).unwrap();
        for _ in 0..30 {
            let piece = if chunked {
                format!("2710\r\n{}\r\n", "x".repeat(10_000))
            } else {
                "x".repeat(10_000)
            };
            if big.write_all(piece.as_bytes()).is_err() {
                break;
            }
        }
        let mut reply = Vec::new();
        let _ = big.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 413"),
            "chunked {chunked}: {reply}"
        );
        assert!(reply.contains("this server's limit of"), "{reply}");
    }

    // A client that sends half a body and stalls gets a 408 once --timeout passes.
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow,
        "POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"hou"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = slow.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    // One that never finishes its headers is cut off.
    let mut stalled = TcpStream::connect(server.addr()).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stalled, "GET /v1/models HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the connection was not cut"
    );

    // Still serving, normally.
    let (status, body) = post(
        &agent,
        &server.url(V1),
        &format!(r#"{{"houses": [{HOUSE}]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (ok, log) = server.terminate();
    assert!(ok, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_token_guards_everything_but_the_page_and_the_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let model = models.join("houses/model.appraise");
    let server = Server::start(
        &[
            "--model",
            model.to_str().unwrap(),
            "--token",
            "s3cret",
            "--quiet",
        ],
        dir.path(),
    );
    let agent = agent();
    assert_eq!(get(&agent, &server.url("/")).0, 200);
    assert_eq!(get(&agent, &server.url("/v2/health/ready")).0, 200);
    let (status, body) = get(&agent, &server.url("/v1/models"));
    assert_eq!(status, 401, "{body}");
    assert_eq!(json(&body)["field"], "Authorization");
    let (status, _) = answer(
        agent
            .get(server.url("/v1/models"))
            .header("Authorization", "Bearer wrong")
            .call(),
    );
    assert_eq!(status, 401);
    let (status, body) = answer(
        agent
            .post(server.url(V1))
            .header("Authorization", "Bearer s3cret")
            .send(format!(r#"{{"houses": [{HOUSE}]}}"#)),
    );
    assert_eq!(status, 200, "{body}");
    let (ok, log) = server.terminate();
    assert!(ok);
    assert!(
        !log.contains(r#""event":"request""#),
        "--quiet logs no requests: {log}"
    );
}

#[test]
fn serve_refuses_what_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = appraise(&["serve"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--models"),
        "{}",
        text(&out.stderr)
    );
    let out = appraise(&["serve", "--models", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nowhere"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = appraise(&["serve", "--models", empty.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds no model.appraise"),
        "{}",
        text(&out.stderr)
    );
    let junk = dir.path().join("junk/model.appraise");
    std::fs::create_dir_all(junk.parent().unwrap()).unwrap();
    std::fs::write(&junk, b"not a model").unwrap();
    let out = appraise(&["serve", "--model", junk.to_str().unwrap()], dir.path());
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("model.appraise"),
        "{}",
        text(&out.stderr)
    );
}

/// A stock client of the Open Inference Protocol, written for Triton and KServe (NVIDIA's
/// `tritonclient`, Python), prices houses unchanged. Runs where `APPRAISE_OIP_PYTHON` names a
/// Python with `tritonclient[http]` and numpy (`.ci/run` makes one outside the project).
#[test]
fn a_stock_open_inference_protocol_client_works_unchanged() {
    let Some(python) = std::env::var_os("APPRAISE_OIP_PYTHON") else {
        eprintln!("skipped: set APPRAISE_OIP_PYTHON to a Python with tritonclient[http] and numpy");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let server = Server::start(
        &["--models", models.to_str().unwrap(), "--quiet"],
        dir.path(),
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/oip_client_check.py");
    let agent = agent();
    for (model, houses) in [
        (
            "houses",
            r#"[{"bedrooms": 3, "bathrooms": 2, "area": 1500, "zipcode": 92276},
                {"bedrooms": 4, "bathrooms": 2.5, "area": 2100, "zipcode": 85255}]"#,
        ),
        (
            "listings",
            r#"[{"beds": 3, "sqft": 1500, "type": "house", "city": "Beta"},
                {"beds": 2, "sqft": 900, "type": "condo", "city": "Gamma"}]"#,
        ),
    ] {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(server.addr())
            .arg(model)
            .arg(houses)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let v = json(&text(&out.stdout));
        let (status, body) = post(
            &agent,
            &server.url(&format!("/v1/models/{model}/predict")),
            &format!(r#"{{"houses": {houses}}}"#),
        );
        assert_eq!(status, 200, "{body}");
        let expected = json(&body);
        for k in 0..2 {
            let want = expected["predictions"][k]["predicted_price"]
                .as_f64()
                .unwrap();
            for way in ["json", "binary"] {
                let got = v[way][k].as_f64().unwrap();
                assert!(
                    (got - want).abs() < 0.006,
                    "{model} {way} {k}: {got} vs {want}"
                );
            }
        }
        let outputs = v["outputs"].as_array().unwrap();
        assert!(outputs.iter().any(|o| o == "low_80"), "{v}");
        assert!(outputs.iter().any(|o| o == "outside_training"), "{v}");
    }
}

/// A photo model (the pretrained network's features through the recipe, photos only) prices
/// a house from its four JPEGs sent as base64 JSON, as a multipart form, and as v2 BYTES
/// tensors, exactly as `appraise predict --photos` does; a fake photo is a 400 naming it.
#[test]
fn a_photo_model_prices_a_house_from_its_four_photos() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let expected = serve_common::photo_model(dir.path());
    let server = Server::start(
        &["--model", "photos-only/model.appraise", "--quiet"],
        dir.path(),
    );
    let agent = agent();
    let (status, body) = get(&agent, &server.url("/v1/models/photos-only"));
    assert_eq!(status, 200, "{body}");
    let fields: Vec<String> = json(&body)["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        fields,
        [
            "bathroom_photo",
            "bedroom_photo",
            "frontal_photo",
            "kitchen_photo"
        ]
    );
    let jpeg = |room: &str| std::fs::read(dir.path().join(format!("data/1_{room}.jpg"))).unwrap();
    let b64 = |room: &str| base64::engine::general_purpose::STANDARD.encode(jpeg(room));
    let rooms = ["bathroom", "bedroom", "frontal", "kitchen"];

    // JSON, base64 (one a data URL, as a browser's FileReader gives).
    let house: Vec<String> = rooms
        .iter()
        .map(|r| {
            let data = if *r == "frontal" {
                format!("data:image/jpeg;base64,{}", b64(r))
            } else {
                b64(r)
            };
            format!(r#""{r}_photo": "{data}""#)
        })
        .collect();
    let request = format!(r#"{{"houses": [{{{}}}]}}"#, house.join(","));
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/photos-only/predict"),
        &request,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["predictions"][0]["predicted_price"]
            .as_f64()
            .unwrap(),
        expected
    );

    // Explained: each photo column's share, and the comparables' photos from the server.
    let explained = request.replacen('{', r#"{"explain": true, "#, 1);
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/photos-only/predict"),
        &explained,
    );
    assert_eq!(status, 200, "{body}");
    let e = &json(&body)["predictions"][0]["explanation"];
    let comp = &e["comparables"][0];
    assert_eq!(comp["photos"].as_array().unwrap().len(), 4, "{e}");
    let id = comp["id"].as_str().unwrap();
    let photo = agent
        .get(server.url(&format!("/v1/models/photos-only/sales/{id}/photos/3")))
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    assert!(photo.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    for wrong in [
        format!("{id}/photos/4"),
        "no-such-sale/photos/0".to_string(),
    ] {
        let (status, _) = get(
            &agent,
            &server.url(&format!("/v1/models/photos-only/sales/{wrong}")),
        );
        assert_eq!(status, 404, "{wrong}");
    }

    // A multipart form with the four files.
    let boundary = "photoboundary42";
    let mut form = Vec::new();
    for r in rooms {
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{r}_photo\"; filename=\"{r}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(&jpeg(r));
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (status, body) = answer(
        agent
            .post(server.url("/v1/models/photos-only/predict"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&form[..]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["predictions"][0]["predicted_price"]
            .as_f64()
            .unwrap(),
        expected
    );

    // v2: each photo a BYTES element holding the JPEG (base64 in JSON tensors).
    let inputs: Vec<String> = rooms
        .iter()
        .map(|r| {
            format!(
                r#"{{"name": "{r}_photo", "shape": [1], "datatype": "BYTES", "data": ["{}"]}}"#,
                b64(r)
            )
        })
        .collect();
    let (status, body) = post(
        &agent,
        &server.url("/v2/models/photos-only/infer"),
        &format!(r#"{{"inputs": [{}]}}"#, inputs.join(",")),
    );
    assert_eq!(status, 200, "{body}");
    let price = json(&body)["outputs"][0]["data"][0].as_f64().unwrap();
    assert!((price - expected).abs() < 0.006, "{price} vs {expected}");

    // A fake photo: a 400 naming its field, and the server goes on.
    let fake = base64::engine::general_purpose::STANDARD.encode(b"GIF89a not a jpeg at all");
    let bad = request.replacen(&b64("kitchen"), &fake, 1);
    let (status, body) = post(&agent, &server.url("/v1/models/photos-only/predict"), &bad);
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["field"], "houses[0].kitchen_photo", "{body}");
    let (status, _) = post(
        &agent,
        &server.url("/v1/models/photos-only/predict"),
        &request,
    );
    assert_eq!(status, 200);
}

/// SIGTERM stops new connections but lets a request already in flight finish.
/// The tutorial's CNN trained on a table with a photo column: the server takes the column as
/// a photo field and prices a row from its photo as `appraise predict` does, alone or with
/// others.
#[test]
fn a_table_cnn_model_prices_a_row_from_its_photo_column() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let out = appraise(
        &[
            "synth",
            "--houses",
            "24",
            "--photos",
            "--out",
            synth.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = std::fs::read_to_string(synth.join("HousesInfo.txt")).unwrap();
    let mut csv = String::from("bedrooms,area,price,photo\n");
    for (i, line) in info.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv += &format!("{},{},{},synth/{}_frontal.jpg\n", f[0], f[2], f[4], i + 1);
    }
    std::fs::write(dir.path().join("houses.csv"), csv).unwrap();
    let out = appraise(
        &[
            "train",
            "--data",
            "houses.csv",
            "--model",
            "cnn",
            "--epochs",
            "2",
            "--out",
            "cnn",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let model = dir.path().join("cnn/model.appraise");
    let expected = cli_table_prices(
        &model,
        "bedrooms,area,photo\n3,1500,synth/1_frontal.jpg\n4,2000,synth/2_frontal.jpg\n",
        dir.path(),
    );
    let server = Server::start(&["--model", "cnn/model.appraise", "--quiet"], dir.path());
    let agent = agent();
    let (status, body) = get(&agent, &server.url("/v1/models/cnn"));
    assert_eq!(status, 200, "{body}");
    let photo = json(&body)["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "photo")
        .cloned()
        .unwrap();
    assert_eq!(photo["kind"], "photo", "{body}");
    let b64 = |id: usize| {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(synth.join(format!("{id}_frontal.jpg"))).unwrap())
    };
    let house = |id: usize, bedrooms: u32, area: u32| {
        format!(
            r#"{{"bedrooms": {bedrooms}, "area": {area}, "photo": "{}"}}"#,
            b64(id)
        )
    };
    let url = server.url("/v1/models/cnn/predict");
    let (status, body) = post(
        &agent,
        &url,
        &format!(
            r#"{{"houses": [{}, {}]}}"#,
            house(1, 3, 1500),
            house(2, 4, 2000)
        ),
    );
    assert_eq!(status, 200, "{body}");
    let priced = |body: &str, k: usize| {
        json(body)["predictions"][k]["predicted_price"]
            .as_f64()
            .unwrap()
    };
    assert_eq!([priced(&body, 0), priced(&body, 1)], expected[..]);
    // Alone, the same price.
    let (status, body) = post(
        &agent,
        &url,
        &format!(r#"{{"houses": [{}]}}"#, house(1, 3, 1500)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(priced(&body, 0), expected[0]);
}

#[test]
fn a_request_in_flight_finishes_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let server = Server::start(
        &[
            "--model",
            models.join("houses/model.appraise").to_str().unwrap(),
        ],
        dir.path(),
    );
    let body = format!(r#"{{"houses": [{HOUSE}]}}"#);
    let (head, tail) = body.split_at(body.len() / 2);
    let mut client = TcpStream::connect(server.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        client,
        "POST {V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    // The server has the connection and half the request; now it is told to stop.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill only sends a signal to our own child.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(server.addr()).is_err(),
        "no new connection after SIGTERM"
    );
    client.write_all(tail.as_bytes()).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("predicted_price"), "{reply}");
    let (ok, log) = server.wait_exit();
    assert!(ok, "{log}");
}

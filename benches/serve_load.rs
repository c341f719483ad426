//! Load test of `appraise serve` on loopback, bounded in requests and time: throughput and
//! latency percentiles of one-house and 100-house JSON requests, one-house v2 infer
//! requests, a photo model's one house with four JPEGs, and a soak with the server's resident
//! memory sampled every second.
//!
//! `cargo bench --bench serve_load` with `APPRAISE_DATASET` set (models are trained on the
//! real dataset first). Flags after `--`: `--seconds S` per throughput run (default 10),
//! `--soak S` (default 60; 0 skips it), `--connections C` (default 32), `--no-photos`.
//!
//! The client runs in this process on one thread, the server in its own process on every
//! core: both share the machine's cores, as the issue's targets ask.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(models: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args(["serve", "--quiet", "--addr", "127.0.0.1:0", "--models"])
        .arg(models)
        .stdout(Stdio::piped())
        .spawn()
        .expect("appraise serve starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("a first line");
    let addr = line
        .trim()
        .strip_prefix("appraise serve: listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Server { child, addr }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Outcome {
    requests: usize,
    seconds: f64,
    latencies: Vec<f64>,
    errors: usize,
}

impl Outcome {
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    fn print(&self, what: &str, houses_per_request: usize) {
        let rate = self.requests as f64 / self.seconds;
        print!(
            "{what}: {} requests in {:.1} s = {:.0} per s",
            self.requests, self.seconds, rate
        );
        if houses_per_request > 1 {
            print!(" ({:.0} houses per s)", rate * houses_per_request as f64);
        }
        println!(
            "; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors {}",
            self.percentile(0.5) * 1e3,
            self.percentile(0.9) * 1e3,
            self.percentile(0.99) * 1e3,
            self.percentile(1.0) * 1e3,
            self.errors
        );
    }
}

/// `connections` keep-alive connections, each sending `body` to `path` one request after
/// another, until `seconds` pass or `max_requests` are answered.
async fn load(
    addr: &str,
    path: &str,
    body: Bytes,
    connections: usize,
    seconds: f64,
    max_requests: usize,
    mut sampler: Option<(u32, &mut Vec<(f64, u64)>)>,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let issued = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let body = body.clone();
        let issued = issued.clone();
        let uri = format!("http://{addr}{path}");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                let request = hyper::Request::post(&uri)
                    .header("content-type", "application/json")
                    .header("host", "bench")
                    .body(Full::new(body.clone()))
                    .expect("a request");
                let t = Instant::now();
                match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.into_body().collect().await;
                        latencies.push(t.elapsed().as_secs_f64());
                        if !ok {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    if let Some((pid, samples)) = sampler.as_mut() {
        while Instant::now() < deadline {
            samples.push((started.elapsed().as_secs_f64(), rss_kib(*pid)));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples.push((started.elapsed().as_secs_f64(), rss_kib(*pid)));
    }
    let mut outcome = Outcome {
        requests: 0,
        seconds: 0.0,
        latencies: Vec::new(),
        errors: 0,
    };
    for task in tasks {
        let (lat, err) = task.await.expect("a client task");
        outcome.latencies.extend(lat);
        outcome.errors += err;
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome.requests = outcome.latencies.len();
    outcome
}

fn flag(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn house_json(i: usize) -> String {
    let zips = ["92276", "93446", "92880", "91901", "94501", "93510"];
    format!(
        r#"{{"bedrooms": {}, "bathrooms": {}, "area": {}, "zipcode": "{}"}}"#,
        2 + i % 4,
        1.0 + (i % 3) as f64 * 0.5,
        1200 + 37 * (i % 50),
        zips[i % zips.len()]
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = flag(&args, "--seconds", 10.0);
    let soak = flag(&args, "--soak", 60.0);
    let connections = flag(&args, "--connections", 32.0) as usize;
    let photos = !args.iter().any(|a| a == "--no-photos");
    let dataset = PathBuf::from(
        std::env::var_os("APPRAISE_DATASET")
            .expect("set APPRAISE_DATASET to the Houses Dataset folder"),
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    let models = dir.path().join("models");

    // The tutorial MLP (Part 1, 200 epochs), with its price ranges.
    let status = Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args(["train", "--quiet", "--dataset"])
        .arg(&dataset)
        .arg("--out")
        .arg(models.join("mlp"))
        .status()
        .expect("run appraise train");
    assert!(status.success(), "training the tutorial MLP");
    if photos {
        // A photo model: the pretrained network's features, through the best recipe.
        let out = models.join("photos");
        let status = Command::new(env!("CARGO_BIN_EXE_appraise"))
            .args([
                "train",
                "--model",
                "photos-pretrained",
                "--quiet",
                "--dataset",
            ])
            .arg(&dataset)
            .arg("--out")
            .arg(&out)
            .status()
            .expect("appraise train runs");
        assert!(status.success(), "training the photo model failed");
    }
    let server = start_server(&models);
    let pid = server.child.id();
    println!(
        "server {} (pid {pid}), {connections} connections, client on one thread",
        server.addr
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let addr = server.addr.as_str();
        let one = Bytes::from(format!(r#"{{"houses": [{}]}}"#, house_json(0)));
        // Warm up connections and caches.
        load(addr, "/v1/models/mlp/predict", one.clone(), connections, 1.0, usize::MAX, None).await;

        let o = load(addr, "/v1/models/mlp/predict", one.clone(), connections, seconds, usize::MAX, None).await;
        o.print("v1 predict, one house, MLP", 1);

        let infer = Bytes::from(
            r#"{"inputs": [
                {"name": "bedrooms", "shape": [1], "datatype": "FP64", "data": [4]},
                {"name": "bathrooms", "shape": [1], "datatype": "FP64", "data": [3]},
                {"name": "area", "shape": [1], "datatype": "FP64", "data": [3343]},
                {"name": "zipcode", "shape": [1], "datatype": "BYTES", "data": ["92276"]}]}"#,
        );
        let o = load(addr, "/v2/models/mlp/infer", infer, connections, seconds, usize::MAX, None).await;
        o.print("v2 infer, one house, MLP", 1);

        let hundred: Vec<String> = (0..100).map(house_json).collect();
        let hundred = Bytes::from(format!(r#"{{"houses": [{}]}}"#, hundred.join(",")));
        let o = load(addr, "/v1/models/mlp/predict", hundred, connections.min(8), seconds, usize::MAX, None).await;
        o.print("v1 predict, 100 houses, MLP", 100);

        if photos {
            use base64::Engine as _;
            let photo = |room: &str| {
                let bytes = std::fs::read(dataset.join(format!("1_{room}.jpg"))).expect("a photo");
                base64::engine::general_purpose::STANDARD.encode(bytes)
            };
            let body = format!(
                r#"{{"houses": [{{"frontal_photo": "{}", "bedroom_photo": "{}", "bathroom_photo": "{}", "kitchen_photo": "{}"}}]}}"#,
                photo("frontal"),
                photo("bedroom"),
                photo("bathroom"),
                photo("kitchen")
            );
            let body = Bytes::from(body);
            let o = load(addr, "/v1/models/photos/predict", body.clone(), 1, seconds.max(10.0), 200, None).await;
            o.print("v1 predict, photo model, one house with four JPEGs, one connection", 1);
        }

        if soak > 0.0 {
            let mut samples = Vec::new();
            let o = load(
                addr,
                "/v1/models/mlp/predict",
                one,
                connections,
                soak,
                usize::MAX,
                Some((pid, &mut samples)),
            )
            .await;
            o.print(&format!("soak {soak:.0} s, v1 one house"), 1);
            let at5 = samples
                .iter()
                .find(|(t, _)| *t >= 5.0)
                .map_or(samples[0].1, |s| s.1);
            let last = samples.last().expect("samples").1;
            let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
            println!(
                "soak resident memory: {:.1} MiB at 5 s, {:.1} MiB at the end, peak {:.1} MiB: growth after 5 s {:+.1}%",
                at5 as f64 / 1024.0,
                last as f64 / 1024.0,
                peak as f64 / 1024.0,
                (last as f64 / at5 as f64 - 1.0) * 100.0
            );
        }
    });
    println!(
        "server resident memory at the end: {:.1} MiB",
        rss_kib(pid) as f64 / 1024.0
    );
}

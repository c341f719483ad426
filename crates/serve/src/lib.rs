//! `appraise serve`: saved appraise models behind an HTTP server.
//!
//! - [`v2`]: the Open Inference Protocol (KServe / Triton "v2" REST API), so stock clients
//!   of that protocol work unchanged;
//! - [`v1`]: a plain JSON API (`POST /v1/models/{name}/predict` with a list of houses);
//! - [`page`]: a web page at `/` that builds a form from a model's fields;
//! - [`metrics`]: `GET /metrics` in the Prometheus text format.
//!
//! Models load once ([`Registry`]) and are shared by every request. Every client error is a
//! 4xx with a JSON body naming the field at fault ([`ApiError`]); bodies are bounded in size
//! and in time, and a bearer token can be required.

pub mod error;
pub mod metrics;
pub mod page;
pub mod registry;
pub mod v1;
pub mod v2;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use appraise::io::pricer::{Pricer, Quotes, Value};

pub use error::ApiError;
pub use registry::Registry;

/// How the server runs; the defaults are what `appraise serve` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Where to listen (127.0.0.1:8080: loopback only unless asked).
    pub addr: SocketAddr,
    /// A bearer token every request but the page and health checks must carry.
    pub token: Option<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a client may take to send its request's headers, and its body.
    pub request_timeout: Duration,
    /// The most houses one request may price.
    pub max_houses: usize,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Whether to log each request as a JSON line.
    pub log_requests: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_houses: 10_000,
            shutdown_grace: Duration::from_secs(30),
            log_requests: true,
        }
    }
}

/// Where the server's log lines (JSON, one per request or event) go.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What every handler shares.
pub struct AppState {
    /// The models.
    pub registry: Registry,
    /// The counters of `/metrics`.
    pub metrics: metrics::Metrics,
    /// The settings.
    pub config: ServeConfig,
    log: LogSink,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("models", &self.registry.names())
            .field("config", &self.config)
            .finish()
    }
}

/// Set on a response by handlers of a known model, for the metrics and the log.
#[derive(Debug, Clone)]
pub struct ModelName(pub String);

impl AppState {
    /// The shared state of a server over `registry`.
    pub fn new(registry: Registry, config: ServeConfig, log: LogSink) -> Arc<Self> {
        Arc::new(Self {
            registry,
            metrics: metrics::Metrics::default(),
            config,
            log,
        })
    }
}

/// Every route of the server.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/v1/models", get(v1::list))
        .route("/v1/models/{name}", get(v1::describe))
        .route("/v1/models/{name}/predict", post(v1::predict))
        .route(
            "/v1/models/{name}/sales/{id}/photos/{k}",
            get(v1::sale_photo),
        )
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::health))
        .route("/v2/health/ready", get(v2::health))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::version_infer),
        )
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} {}; see GET /v1/models, POST /v1/models/{{name}}/predict, POST /v2/models/{{name}}/infer",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Paths anyone may reach: the page (it holds no data) and the health checks (probes).
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/v2/health/live" | "/v2/health/ready")
}

/// Compares without stopping at the first difference, so timing reveals nothing.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.config.token
        && !is_public(request.uri().path())
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same_token(g.trim().as_bytes(), token.as_bytes())) {
            let mut r = ApiError::field(
                "Authorization",
                "this server needs a bearer token: send the header Authorization: Bearer <token>",
            )
            .into_response();
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header value"),
            );
            return r;
        }
    }
    next.run(request).await
}

/// The served model a `/v1/models/{name}...` or `/v2/models/{name}...` path names, if any.
fn served_model_of<'a>(state: &'a AppState, path: &str) -> Option<&'a str> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1" | "v2"), Some("models"), Some(name)) => state
            .registry
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| n),
        _ => None,
    }
}

/// Counts, times and logs every request.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    // Errors about a served model count for it too; other names stay unlabelled, so a
    // client cannot grow the metrics without bound.
    let model = response
        .extensions()
        .get::<ModelName>()
        .map(|m| m.0.as_str())
        .or_else(|| served_model_of(&state, &path))
        .unwrap_or("");
    let status = response.status().as_u16();
    state.metrics.record(&route, model, status, seconds);
    if state.config.log_requests {
        let line = serde_json::json!({
            "event": "request",
            "method": method.as_str(),
            "path": path,
            "route": route,
            "model": model,
            "status": status,
            "ms": (seconds * 1e5).round() / 100.0,
        });
        (state.log)(&line.to_string());
    }
    response
}

/// Reads a request body: at most [`ServeConfig::body_limit`] bytes (else 413), within
/// [`ServeConfig::request_timeout`] (else 408).
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.body_limit;
    let too_large = || {
        ApiError::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than this server's limit of {limit} bytes (set by its operator)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        state.config.request_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Err(_) => Err(ApiError::status(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                state.config.request_timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) => {
            let limit_hit = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            if limit_hit {
                Err(too_large())
            } else {
                Err(ApiError::bad(format!("could not read the body: {e}")))
            }
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Prices `houses` with `pricer`: small attribute-only batches on the request's own thread
/// (microseconds), photo models and large batches on the blocking pool so they never stall
/// other connections.
pub async fn run_pricing(
    pricer: &Arc<Pricer>,
    houses: Vec<Vec<Value>>,
    level: f64,
    comps: Option<usize>,
) -> Result<Quotes, ApiError> {
    const INLINE_HOUSES: usize = 256;
    // Explaining prices every house hundreds of times over: off the async threads too.
    let result = if pricer.reads_photos() || houses.len() > INLINE_HOUSES || comps.is_some() {
        let pricer = pricer.clone();
        tokio::task::spawn_blocking(move || pricer.explain(&houses, level, comps))
            .await
            .map_err(|e| {
                ApiError::status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("pricing failed: {e}"),
                )
            })?
    } else {
        pricer.explain(&houses, level, comps)
    };
    result.map_err(|e| ApiError::from_pricing(e, "houses"))
}

/// Serves `state` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish (up to [`ServeConfig::shutdown_grace`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let app = router(state.clone());
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.request_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    // Out of file descriptors and the like: wait, do not spin or die.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    (state.log)(
        &serde_json::json!({"event": "shutdown", "message": "finishing in-flight requests"})
            .to_string(),
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(state.config.shutdown_grace) => {}
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Runs a server over `registry` until Ctrl-C or SIGTERM: binds `config.addr`, tells
/// `on_ready` the address it listens on, and serves on as many threads as there are cores.
pub fn run(
    registry: Registry,
    config: ServeConfig,
    log: LogSink,
    on_ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        on_ready(listener.local_addr()?);
        let state = AppState::new(registry, config, log);
        serve(listener, state, shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"secret", b"secret"));
        assert!(!same_token(b"secreT", b"secret"));
        assert!(!same_token(b"secret1", b"secret"));
        assert!(!same_token(b"", b"secret"));
    }
}

//! `GET /metrics`: request counts, latencies and houses priced, per route and model, in the
//! Prometheus text format.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A request's route (the path template, so the label set stays small), model and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's path template (`/v1/models/{name}/predict`), or `unmatched`.
    pub route: String,
    /// The model served (empty when none, or the path named no known model).
    pub model: String,
    /// The HTTP status code.
    pub status: u16,
}

/// A route and model.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's path template.
    pub route: String,
    /// The model served.
    pub model: String,
}

/// A model.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model's name.
    pub model: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    houses: Family<ModelLabels, Counter>,
    // The text encoder needs exclusive access to its buffer only.
    buffer: Mutex<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 50 us .. ~3.3 s: one house takes tens of microseconds, a photo model tens of ms.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        5e-5, 3.0, 11,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("appraise");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let houses = Family::<ModelLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route, model and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its response, by route and model",
            latency.clone(),
        );
        registry.register("houses_priced", "Houses priced, by model", houses.clone());
        Self {
            registry,
            requests,
            latency,
            houses,
            buffer: Mutex::new(String::new()),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, model: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                model: model.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                model: model.to_string(),
            })
            .observe(seconds);
    }

    /// Counts houses priced by `model`.
    pub fn priced(&self, model: &str, houses: usize) {
        self.houses
            .get_or_create(&ModelLabels {
                model: model.to_string(),
            })
            .inc_by(houses as u64);
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        buffer.clear();
        prometheus_client::encoding::text::encode(&mut *buffer, &self.registry)
            .expect("writing to a String cannot fail");
        buffer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_latencies_by_route_and_model() {
        let m = Metrics::default();
        m.record("/v1/models/{name}/predict", "best", 200, 0.0001);
        m.record("/v1/models/{name}/predict", "best", 400, 0.0002);
        m.priced("best", 3);
        let text = m.render();
        assert!(text.contains(
            "appraise_requests_total{route=\"/v1/models/{name}/predict\",model=\"best\",status=\"200\"} 1"
        ), "{text}");
        assert!(
            text.contains("appraise_houses_priced_total{model=\"best\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("appraise_request_duration_seconds_count"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

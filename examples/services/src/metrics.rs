//! The service's metrics, written in the Prometheus text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Error kinds pre-registered at zero, so `rate(app_errors_total[...])` has series from the start.
pub const ERROR_KINDS: &[&str] = &["injected", "downstream", "internal"];

pub struct Metrics {
    service: String,
    version: String,
    environment: String,
    buckets: Vec<f64>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<(String, String), Histogram>,
    errors: BTreeMap<String, u64>,
    downstream: BTreeMap<(String, String), u64>,
}

struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Metrics {
    pub fn new(service: &str, version: &str, environment: &str, buckets: Vec<f64>) -> Metrics {
        let mut inner = Inner::default();
        for kind in ERROR_KINDS {
            inner.errors.insert((*kind).to_string(), 0);
        }
        Metrics {
            service: service.to_string(),
            version: version.to_string(),
            environment: environment.to_string(),
            buckets,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts that are still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One served request; a 5xx also counts one error of `error_kind`.
    pub fn observe(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
        error_kind: Option<&str>,
    ) {
        let seconds = elapsed.as_secs_f64();
        let slot = self
            .buckets
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.buckets.len());
        let mut inner = self.lock();
        *inner
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let histogram = inner
            .durations
            .entry((method.to_string(), route.to_string()))
            .or_insert_with(|| Histogram {
                counts: vec![0; self.buckets.len() + 1],
                sum: 0.0,
                count: 0,
            });
        histogram.counts[slot] += 1;
        histogram.sum += seconds;
        histogram.count += 1;
        if let Some(kind) = error_kind {
            *inner.errors.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// One call to another service: `outcome` is `ok`, `refused` (a 4xx), `timeout`,
    /// `unavailable` (no connection) or `error` (a 5xx or an unreadable answer).
    pub fn downstream(&self, dependency: &str, outcome: &str) {
        *self
            .lock()
            .downstream
            .entry((dependency.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let inner = self.lock();
        let service = escape(&self.service);
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# HELP app_build_info The running build: always 1.");
        let _ = writeln!(out, "# TYPE app_build_info gauge");
        let _ = writeln!(
            out,
            "app_build_info{{service=\"{service}\",version=\"{}\",environment=\"{}\"}} 1",
            escape(&self.version),
            escape(&self.environment)
        );
        let _ = writeln!(
            out,
            "# HELP http_requests_total Requests served, by route and status."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{service=\"{service}\",method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds Time to serve a request."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        for ((method, route), h) in &inner.durations {
            let labels = format!(
                "service=\"{service}\",method=\"{}\",route=\"{}\"",
                escape(method),
                escape(route)
            );
            let mut cumulative = 0;
            for (i, bound) in self.buckets.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP app_errors_total Requests that failed on the service's side (5xx), by kind."
        );
        let _ = writeln!(out, "# TYPE app_errors_total counter");
        for (kind, n) in &inner.errors {
            let _ = writeln!(
                out,
                "app_errors_total{{service=\"{service}\",kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        if !inner.downstream.is_empty() {
            let _ = writeln!(
                out,
                "# HELP downstream_requests_total Calls to other services, by outcome."
            );
            let _ = writeln!(out, "# TYPE downstream_requests_total counter");
            for ((dependency, outcome), n) in &inner.downstream {
                let _ = writeln!(
                    out,
                    "downstream_requests_total{{service=\"{service}\",dependency=\"{}\",outcome=\"{}\"}} {n}",
                    escape(dependency),
                    escape(outcome)
                );
            }
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_buckets_cumulatively() {
        let m = Metrics::new("customer-api", "0.1.0", "prod", vec![0.1, 0.3]);
        m.observe(
            "GET",
            "/customers/{id}",
            200,
            Duration::from_millis(50),
            None,
        );
        m.observe(
            "GET",
            "/customers/{id}",
            200,
            Duration::from_millis(200),
            None,
        );
        m.observe(
            "GET",
            "/customers/{id}",
            500,
            Duration::from_millis(400),
            Some("injected"),
        );
        let text = m.render();
        let l = r#"service="customer-api",method="GET",route="/customers/{id}""#;
        for line in [
            r#"app_build_info{service="customer-api",version="0.1.0",environment="prod"} 1"#
                .to_string(),
            format!(r#"http_requests_total{{{l},status="200"}} 2"#),
            format!(r#"http_requests_total{{{l},status="500"}} 1"#),
            format!(r#"http_request_duration_seconds_bucket{{{l},le="0.1"}} 1"#),
            format!(r#"http_request_duration_seconds_bucket{{{l},le="0.3"}} 2"#),
            format!(r#"http_request_duration_seconds_bucket{{{l},le="+Inf"}} 3"#),
            format!(r#"http_request_duration_seconds_count{{{l}}} 3"#),
            r#"app_errors_total{service="customer-api",kind="injected"} 1"#.to_string(),
            r#"app_errors_total{service="customer-api",kind="downstream"} 0"#.to_string(),
        ] {
            assert!(text.lines().any(|t| t == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

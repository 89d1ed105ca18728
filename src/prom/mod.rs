//! Talking to the platform's Prometheus (HTTP API v1) and, in [`alertmanager`], its
//! Alertmanager (API v2): typed answers and typed errors for what `validate`, `slo status`,
//! `promote --wait` and `chaos` ask them, over plain HTTP to a base URL or through a
//! port-forward to a ready pod of the operator's `prometheus-operated` /
//! `alertmanager-operated` Service.
//!
//! It does not decide what the answers mean (an SLO's budget, a target that must be up: the
//! commands'), does not write PromQL, and does not retry: a caller polling for a condition
//! owns the loop and its deadline.

pub mod alertmanager;
pub mod connect;
mod http;
pub mod query;
pub mod rules;
pub mod targets;

use std::fmt;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer};

use crate::kube::portforward::{self, Backend};
pub use http::DEFAULT_TIMEOUT;
pub use query::{Answer, Data, Labels, Point, Sample, Series};
pub use rules::{Alert, AlertState, Group, Rule, RuleHealth};
pub use targets::{Alertmanagers, Health, Target, Targets};

/// The governing Service prometheus-operator creates for every Prometheus in a namespace; it
/// selects `app.kubernetes.io/name=prometheus` (operator v0.88,
/// `pkg/prometheus/server/operator.go`).
pub const SERVICE: &str = "prometheus-operated";
/// Prometheus' web port in the operator's pods (the `web` container port).
pub const PORT: u16 = 9090;

/// The label selector of the pods of the Prometheus object `name` (the operator labels them
/// `app.kubernetes.io/name=prometheus` and `operator.prometheus.io/name=<name>`): for a
/// namespace with more than one Prometheus, where [`SERVICE`] selects them all.
pub fn selector(name: &str) -> String {
    format!("app.kubernetes.io/name=prometheus,operator.prometheus.io/name={name}")
}

/// Which server an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Prometheus,
    Alertmanager,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Prometheus => "Prometheus",
            Server::Alertmanager => "Alertmanager",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{url}` is not a usable {server} address: {reason}")]
    Url {
        server: Server,
        url: String,
        reason: &'static str,
    },
    #[error("cannot connect to {server} at {address}")]
    Unreachable {
        server: Server,
        address: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no answer from {server} at {address} to `{endpoint}` within {}", seconds(*after))]
    TimedOut {
        server: Server,
        address: String,
        endpoint: String,
        after: Duration,
    },
    #[error("`{endpoint}` to {server} at {address} failed")]
    Transport {
        server: Server,
        address: String,
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Prometheus' own error answer: `{"status":"error","errorType":...,"error":...}`.
    #[error(
        "`{endpoint}` on {server} at {address} failed with {error_type} (HTTP {status}): {message}"
    )]
    Api {
        server: Server,
        address: String,
        endpoint: String,
        status: u16,
        error_type: ErrorType,
        message: String,
    },
    /// An answer with a status the endpoint does not document (a wrong route prefix gives 404).
    #[error("`{endpoint}` on {server} at {address} answered HTTP {status}: {body}")]
    Status {
        server: Server,
        address: String,
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("the answer of {server} at {address} to `{endpoint}` does not parse (at `{path}`)")]
    Parse {
        server: Server,
        address: String,
        endpoint: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot reach {server} ({backend} in namespace `{namespace}`) through a port-forward")]
    PortForward {
        server: Server,
        backend: Backend,
        namespace: String,
        /// Boxed: a kube error is large, and every other variant is small.
        #[source]
        source: Box<portforward::Error>,
    },
}

impl Error {
    /// No answer came: connection refused or broken (through a port-forward, a pod that went
    /// away breaks the connection rather than refusing it), no answer in time, no pod to
    /// forward to. The other errors are answers: an error from the API, an unexpected status,
    /// a body that does not parse.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::TimedOut { .. }
                | Error::Transport { .. }
                | Error::PortForward { .. }
        )
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Prometheus' `errorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is wrong: a query that does not parse, a bad parameter (HTTP 400).
    BadData,
    /// The query parsed but failed to evaluate (HTTP 422).
    Execution,
    Timeout,
    Canceled,
    Internal,
    /// Storage not ready yet (HTTP 503).
    Unavailable,
    NotFound,
    Other(String),
}

impl ErrorType {
    fn parse(text: &str) -> ErrorType {
        match text {
            "bad_data" => ErrorType::BadData,
            "execution" => ErrorType::Execution,
            "timeout" => ErrorType::Timeout,
            "canceled" => ErrorType::Canceled,
            "internal" => ErrorType::Internal,
            "unavailable" => ErrorType::Unavailable,
            "not_found" => ErrorType::NotFound,
            other => ErrorType::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::Other(s) => s,
        })
    }
}

/// A server's build (`/api/v1/status/buildinfo`; Alertmanager's `versionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    pub branch: String,
    #[serde(default)]
    pub build_user: String,
    #[serde(default)]
    pub build_date: String,
    #[serde(default)]
    pub go_version: String,
}

/// The first look at an answer: is it Prometheus' error envelope?
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Success<T> {
    data: T,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

/// A client for one Prometheus.
#[derive(Debug, Clone)]
pub struct Client {
    http: http::Http,
}

impl Client {
    /// A client for the Prometheus at `base` (`http://127.0.0.1:9090`; a route prefix is part
    /// of it: `http://127.0.0.1:9090/prometheus`), each request limited to [`DEFAULT_TIMEOUT`].
    pub fn new(base: &str) -> Result<Client, Error> {
        Ok(Client {
            http: http::Http::new(Server::Prometheus, base)?,
        })
    }

    /// A client for a ready pod of `backend` in `namespace` (for the operator's Prometheus:
    /// `Backend::Service(SERVICE.into())` and [`PORT`]), reached through a port-forward that
    /// lives as long as the client and its clones. The pod is looked for once: none ready is
    /// an error now, not a wait.
    pub async fn via_port_forward(
        client: &kube::Client,
        namespace: &str,
        backend: &Backend,
        port: u16,
    ) -> Result<Client, Error> {
        Ok(Client {
            http: http::Http::via_port_forward(
                Server::Prometheus,
                client,
                namespace,
                backend,
                port,
            )
            .await?,
        })
    }

    /// Each request (connecting and reading the whole answer) limited to `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Client {
        Client {
            http: self.http.with_timeout(timeout),
        }
    }

    /// The API under `prefix` (Prometheus' `--web.route-prefix`; the kube-prometheus-stack
    /// chart's `prometheusSpec.routePrefix`), replacing the base URL's path.
    pub fn with_route_prefix(self, prefix: &str) -> Client {
        Client {
            http: self.http.with_prefix(prefix),
        }
    }

    /// Where this client sends requests, as errors name it.
    pub fn address(&self) -> &str {
        self.http.address()
    }

    /// Whether Prometheus is ready to serve queries (`/-/ready`: 503 while it replays its WAL).
    pub async fn ready(&self) -> Result<bool, Error> {
        self.http.ready().await
    }

    pub async fn build_info(&self) -> Result<BuildInfo, Error> {
        self.get("/api/v1/status/buildinfo", &[])
            .await
            .map(|a| a.data)
    }

    /// An instant query at `time` (Prometheus' now when none).
    pub async fn query(
        &self,
        promql: &str,
        time: Option<Timestamp>,
    ) -> Result<Answer<Data>, Error> {
        let time = time.map(|t| t.to_string());
        let mut params = vec![("query", promql)];
        if let Some(t) = &time {
            params.push(("time", t));
        }
        self.get("/api/v1/query", &params).await
    }

    /// A range query from `start` to `end` (both included) every `step`: one series per
    /// matching series.
    pub async fn query_range(
        &self,
        promql: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Answer<Vec<Series>>, Error> {
        let (start, end) = (start.to_string(), end.to_string());
        let step = step.as_secs_f64().to_string();
        let params = [
            ("query", promql),
            ("start", &start),
            ("end", &end),
            ("step", &step),
        ];
        let answer: Answer<query::Range> = self.get("/api/v1/query_range", &params).await?;
        let query::Range::Matrix(series) = answer.data;
        Ok(Answer {
            data: series,
            warnings: answer.warnings,
            infos: answer.infos,
        })
    }

    /// The scrape targets, active and dropped.
    pub async fn targets(&self) -> Result<Targets, Error> {
        self.get("/api/v1/targets", &[]).await.map(|a| a.data)
    }

    /// The rule groups with their rules' health, and the alerting rules' alerts.
    pub async fn rules(&self) -> Result<Vec<Group>, Error> {
        let answer: Answer<rules::Groups> = self.get("/api/v1/rules", &[]).await?;
        Ok(answer.data.groups)
    }

    /// The pending and firing alerts.
    pub async fn alerts(&self) -> Result<Vec<Alert>, Error> {
        let answer: Answer<rules::Alerts> = self.get("/api/v1/alerts", &[]).await?;
        Ok(answer.data.alerts)
    }

    /// The Alertmanagers Prometheus sends alerts to.
    pub async fn alertmanagers(&self) -> Result<Alertmanagers, Error> {
        self.get("/api/v1/alertmanagers", &[]).await.map(|a| a.data)
    }

    /// Whether some target exposes `metric` (`/api/v1/metadata`: the `# TYPE`/`# HELP` lines
    /// scraped, which a target writes before it has a sample of the metric).
    pub async fn exposed(&self, metric: &str) -> Result<bool, Error> {
        let answer: Answer<std::collections::BTreeMap<String, serde_json::Value>> = self
            .get("/api/v1/metadata", &[("metric", metric), ("limit", "1")])
            .await?;
        Ok(answer.data.contains_key(metric))
    }

    /// `GET path`, through Prometheus' envelope: its error answer becomes [`Error::Api`], a
    /// success's data is parsed as `T`, its warnings kept.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Answer<T>, Error> {
        let reply = self.http.get(path, params).await?;
        let head: Option<Head> = serde_json::from_slice(&reply.body).ok();
        if let Some(Head {
            status: Some(status),
            error_type,
            error,
        }) = &head
            && status == "error"
        {
            return Err(Error::Api {
                server: Server::Prometheus,
                address: self.address().to_string(),
                endpoint: reply.endpoint.clone(),
                status: reply.status.as_u16(),
                error_type: ErrorType::parse(error_type.as_deref().unwrap_or_default()),
                message: error.clone().unwrap_or_default(),
            });
        }
        if !reply.status.is_success() {
            return Err(self.http.status_error(&reply));
        }
        let success: Success<T> = self.http.parse(&reply)?;
        if !success.warnings.is_empty() {
            tracing::debug!(
                "{} at {} warned about `{}`: {}",
                Server::Prometheus,
                self.address(),
                reply.endpoint,
                success.warnings.join("; ")
            );
        }
        Ok(Answer {
            data: success.data,
            warnings: success.warnings,
            infos: success.infos,
        })
    }
}

/// `serde(deserialize_with)` for an RFC 3339 time (Go's `time.Time`, any offset).
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
}

/// As [`timestamp`], for a time that may be absent or null.
fn optional_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_round_trip() {
        for text in [
            "bad_data",
            "execution",
            "timeout",
            "canceled",
            "internal",
            "unavailable",
            "not_found",
            "something_new",
        ] {
            assert_eq!(ErrorType::parse(text).to_string(), text);
        }
        assert_eq!(ErrorType::parse("bad_data"), ErrorType::BadData);
    }

    #[test]
    fn selectors_of_the_operators_pods() {
        assert_eq!(
            selector("kube-prometheus-stack-prometheus"),
            "app.kubernetes.io/name=prometheus,operator.prometheus.io/name=kube-prometheus-stack-prometheus"
        );
        assert_eq!(
            alertmanager::selector("main"),
            "app.kubernetes.io/name=alertmanager,alertmanager=main"
        );
    }

    #[test]
    fn errors_name_the_server_and_where() {
        let e = Error::Api {
            server: Server::Prometheus,
            address: "http://127.0.0.1:9090".into(),
            endpoint: "GET /api/v1/query".into(),
            status: 400,
            error_type: ErrorType::BadData,
            message: "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
                .into(),
        };
        assert_eq!(
            e.to_string(),
            "`GET /api/v1/query` on Prometheus at http://127.0.0.1:9090 failed with bad_data (HTTP 400): invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
        );
        let e = Error::TimedOut {
            server: Server::Alertmanager,
            address: "http://127.0.0.1:9093".into(),
            endpoint: "GET /api/v2/status".into(),
            after: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "no answer from Alertmanager at http://127.0.0.1:9093 to `GET /api/v2/status` within 1.5 s"
        );
        assert!(e.is_unreachable());
    }
}

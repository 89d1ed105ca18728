//! A client for Alertmanager's API v2 (`api/v2/openapi.yaml`): its status (cluster, version,
//! the configuration it runs as text, when it started), its alerts with their routing state,
//! its receivers, posting alerts (a test alert that must reach a receiver), and readiness.
//!
//! It does not manage silences or configuration, and it does not parse the configuration it
//! returns: `config.original` is the YAML Alertmanager loaded, for a caller to search.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize, Serializer};

use super::query::Labels;
use super::{BuildInfo, Error, Server, http};
use crate::kube::portforward::Backend;

/// The governing Service prometheus-operator creates for every Alertmanager in a namespace; it
/// selects `app.kubernetes.io/name=alertmanager` (operator v0.88,
/// `pkg/alertmanager/statefulset.go`).
pub const SERVICE: &str = "alertmanager-operated";
/// Alertmanager's web port in the operator's pods (the `web` container port).
pub const PORT: u16 = 9093;

/// The label selector of the pods of the Alertmanager object `name` (the operator labels them
/// `app.kubernetes.io/name=alertmanager` and `alertmanager=<name>`).
pub fn selector(name: &str) -> String {
    format!("app.kubernetes.io/name=alertmanager,alertmanager={name}")
}

/// `GET /api/v2/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub cluster: Cluster,
    pub version_info: BuildInfo,
    pub config: Config,
    /// When this Alertmanager started (the API calls it `uptime`).
    #[serde(deserialize_with = "super::timestamp")]
    pub uptime: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cluster {
    #[serde(default)]
    pub name: String,
    pub status: ClusterStatus,
    #[serde(default)]
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    Ready,
    Settling,
    /// Clustering is off (`--cluster.listen-address=""`): a single Alertmanager.
    Disabled,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Peer {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    /// The configuration file as Alertmanager loaded it (secrets shown as `<secret>`).
    pub original: String,
}

/// An alert as Alertmanager holds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    /// The receivers its route sends it to.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    pub fingerprint: String,
    #[serde(deserialize_with = "super::timestamp")]
    pub starts_at: Timestamp,
    #[serde(deserialize_with = "super::timestamp")]
    pub ends_at: Timestamp,
    #[serde(default, deserialize_with = "super::optional_timestamp")]
    pub updated_at: Option<Timestamp>,
    pub status: AlertStatus,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    pub state: State,
    #[serde(default)]
    pub silenced_by: Vec<String>,
    #[serde(default)]
    pub inhibited_by: Vec<String>,
}

/// An alert's routing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Received, not yet through the routing tree.
    Unprocessed,
    Active,
    /// Silenced or inhibited.
    Suppressed,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Receiver {
    pub name: String,
}

/// Which alerts `GET /api/v2/alerts` returns. The default is the API's: every alert, whatever
/// its state, any receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Matchers every returned alert satisfies (`alertname="Watchdog"`, `severity=~"page|ticket"`).
    pub matchers: Vec<String>,
    /// A regular expression the name of one of its receivers matches.
    pub receiver: Option<String>,
    pub active: bool,
    pub silenced: bool,
    pub inhibited: bool,
    pub unprocessed: bool,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            matchers: Vec::new(),
            receiver: None,
            active: true,
            silenced: true,
            inhibited: true,
            unprocessed: true,
        }
    }
}

impl Filter {
    /// Every alert that satisfies `matcher`.
    pub fn matching(matcher: impl Into<String>) -> Filter {
        Filter {
            matchers: vec![matcher.into()],
            ..Filter::default()
        }
    }

    fn params(&self) -> Vec<(&str, &str)> {
        let flag = |b: bool| if b { "true" } else { "false" };
        let mut params = vec![
            ("active", flag(self.active)),
            ("silenced", flag(self.silenced)),
            ("inhibited", flag(self.inhibited)),
            ("unprocessed", flag(self.unprocessed)),
        ];
        params.extend(self.matchers.iter().map(|m| ("filter", m.as_str())));
        if let Some(r) = &self.receiver {
            params.push(("receiver", r));
        }
        params
    }
}

/// An alert to post: labels identify it, `endsAt` resolves it (Alertmanager's resolve timeout
/// when absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub labels: Labels,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub annotations: Labels,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_timestamp"
    )]
    pub starts_at: Option<Timestamp>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_timestamp"
    )]
    pub ends_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "generatorURL")]
    pub generator_url: Option<String>,
}

fn optional_timestamp<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// A client for one Alertmanager.
#[derive(Debug, Clone)]
pub struct Client {
    http: http::Http,
}

impl Client {
    /// A client for the Alertmanager at `base` (`http://127.0.0.1:9093`, with its route prefix
    /// if it has one), each request limited to [`super::DEFAULT_TIMEOUT`].
    pub fn new(base: &str) -> Result<Client, Error> {
        Ok(Client {
            http: http::Http::new(Server::Alertmanager, base)?,
        })
    }

    /// A client for a ready pod of `backend` in `namespace` (for the operator's Alertmanager:
    /// `Backend::Service(SERVICE.into())` and [`PORT`]) through a port-forward that lives as
    /// long as the client and its clones. The pod is looked for once.
    pub async fn via_port_forward(
        client: &kube::Client,
        namespace: &str,
        backend: &Backend,
        port: u16,
    ) -> Result<Client, Error> {
        Ok(Client {
            http: http::Http::via_port_forward(
                Server::Alertmanager,
                client,
                namespace,
                backend,
                port,
            )
            .await?,
        })
    }

    /// Each request limited to `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Client {
        Client {
            http: self.http.with_timeout(timeout),
        }
    }

    /// The API under `prefix` (`--web.route-prefix`), replacing the base URL's path.
    pub fn with_route_prefix(self, prefix: &str) -> Client {
        Client {
            http: self.http.with_prefix(prefix),
        }
    }

    pub fn address(&self) -> &str {
        self.http.address()
    }

    /// Whether Alertmanager has loaded its configuration and serves (`/-/ready`).
    pub async fn ready(&self) -> Result<bool, Error> {
        self.http.ready().await
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/api/v2/status", &[]).await
    }

    /// The alerts `filter` lets through.
    pub async fn alerts(&self, filter: &Filter) -> Result<Vec<Alert>, Error> {
        self.get("/api/v2/alerts", &filter.params()).await
    }

    /// The names of the configured receivers.
    pub async fn receivers(&self) -> Result<Vec<Receiver>, Error> {
        self.get("/api/v2/receivers", &[]).await
    }

    /// Posts `alerts` as a Prometheus would.
    pub async fn post(&self, alerts: &[Post]) -> Result<(), Error> {
        let body = serde_json::to_vec(alerts).expect("labels and strings always serialize");
        let reply = self.http.post_json("/api/v2/alerts", body).await?;
        if !reply.status.is_success() {
            return Err(self.http.status_error(&reply));
        }
        Ok(())
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<T, Error> {
        let reply = self.http.get(path, params).await?;
        if !reply.status.is_success() {
            return Err(self.http.status_error(&reply));
        }
        self.http.parse(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parameters() {
        let all = Filter::default();
        assert_eq!(
            all.params(),
            [
                ("active", "true"),
                ("silenced", "true"),
                ("inhibited", "true"),
                ("unprocessed", "true")
            ]
        );
        let f = Filter {
            matchers: vec!["alertname=\"A\"".into(), "severity=~\"page|ticket\"".into()],
            receiver: Some("team-.*".into()),
            silenced: false,
            inhibited: false,
            ..Filter::default()
        };
        assert_eq!(
            f.params()[1..],
            [
                ("silenced", "false"),
                ("inhibited", "false"),
                ("unprocessed", "true"),
                ("filter", "alertname=\"A\""),
                ("filter", "severity=~\"page|ticket\""),
                ("receiver", "team-.*"),
            ]
        );
    }

    #[test]
    fn an_alert_to_post() {
        let post = Post {
            labels: Labels::from([("alertname".into(), "PlatformctlTest".into())]),
            starts_at: Some("2026-01-02T03:04:05Z".parse().expect("time")),
            ..Post::default()
        };
        assert_eq!(
            serde_json::to_value(&post).expect("json"),
            serde_json::json!({"labels": {"alertname": "PlatformctlTest"}, "startsAt": "2026-01-02T03:04:05Z"})
        );
    }

    #[test]
    fn alerts_and_status_as_alertmanager_writes_them() {
        let alerts: Vec<Alert> = serde_json::from_str(
            r#"[{"annotations":{"summary":"s"},"endsAt":"2026-01-02T03:09:05.000Z",
                "fingerprint":"4e7b2b0c5b3e1a2f","receivers":[{"name":"platform"}],
                "startsAt":"2026-01-02T03:04:05.000Z","updatedAt":"2026-01-02T03:04:06.000Z",
                "status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},
                "generatorURL":"http://prometheus/graph","labels":{"alertname":"A"}}]"#,
        )
        .expect("alerts");
        assert_eq!(alerts[0].status.state, State::Active);
        assert_eq!(alerts[0].receivers[0].name, "platform");
        assert_eq!(alerts[0].starts_at.to_string(), "2026-01-02T03:04:05Z");
        let status: Status = serde_json::from_str(
            r#"{"cluster":{"status":"disabled","peers":[]},
                "config":{"original":"route:\n  receiver: platform\n"},
                "uptime":"2026-01-02T03:00:00.123Z",
                "versionInfo":{"branch":"HEAD","buildDate":"","buildUser":"","goVersion":"go1.24",
                  "revision":"abc","version":"0.30.1"}}"#,
        )
        .expect("status");
        assert_eq!(status.cluster.status, ClusterStatus::Disabled);
        assert_eq!(status.version_info.version, "0.30.1");
        assert!(status.config.original.contains("receiver: platform"));
    }
}

//! What Prometheus talks to: its scrape targets (`/api/v1/targets`) and the Alertmanagers it
//! sends alerts to (`/api/v1/alertmanagers`), as typed values.
//!
//! It does not judge them: which targets must be up is `validate`'s question.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::query::Labels;

/// `/api/v1/targets`: the targets being scraped, and those relabeling dropped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    #[serde(default)]
    pub active_targets: Vec<Target>,
    #[serde(default)]
    pub dropped_targets: Vec<DroppedTarget>,
}

/// A target being scraped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The labels after relabeling: what the target's series carry (`job`, `instance`, ...).
    pub labels: Labels,
    /// The labels service discovery found, before relabeling (`__address__`, `__meta_*`).
    #[serde(default)]
    pub discovered_labels: Labels,
    /// The scrape config (for ServiceMonitors, `serviceMonitor/<namespace>/<name>/<endpoint>`).
    pub scrape_pool: String,
    pub scrape_url: String,
    #[serde(default)]
    pub global_url: String,
    pub health: Health,
    /// Empty when the last scrape succeeded.
    #[serde(default)]
    pub last_error: String,
    /// When the last scrape started (Go's zero time, year 1, before the first).
    #[serde(deserialize_with = "super::timestamp")]
    pub last_scrape: Timestamp,
    /// Seconds the last scrape took.
    #[serde(default)]
    pub last_scrape_duration: f64,
    /// The scrape interval and timeout as written in the config (`30s`).
    #[serde(default)]
    pub scrape_interval: String,
    #[serde(default)]
    pub scrape_timeout: String,
}

/// A target relabeling dropped: only what discovery found.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    /// Sent from Prometheus 2.5x on.
    #[serde(default)]
    pub scrape_pool: Option<String>,
}

/// A target's health after its last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    /// Not scraped yet (or a value this client does not know).
    #[serde(other)]
    Unknown,
}

/// `/api/v1/alertmanagers`: the Alertmanagers Prometheus sends alerts to, and those relabeling
/// dropped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alertmanagers {
    #[serde(default)]
    pub active_alertmanagers: Vec<Endpoint>,
    #[serde(default)]
    pub dropped_alertmanagers: Vec<Endpoint>,
}

/// An Alertmanager's alerts URL (`http://10.0.0.5:9093/api/v2/alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_as_prometheus_writes_them() {
        let t: Targets = serde_json::from_str(
            r#"{"activeTargets":[{
                "discoveredLabels":{"__address__":"127.0.0.1:9090","job":"prometheus"},
                "labels":{"instance":"127.0.0.1:9090","job":"prometheus"},
                "scrapePool":"prometheus","scrapeUrl":"http://127.0.0.1:9090/metrics",
                "globalUrl":"http://host:9090/metrics","lastError":"",
                "lastScrape":"2026-01-02T03:04:05.123456789+01:00","lastScrapeDuration":0.004,
                "health":"up","scrapeInterval":"1s","scrapeTimeout":"1s"},
               {"labels":{},"scrapePool":"x","scrapeUrl":"http://x/metrics","health":"unknown",
                "lastScrape":"0001-01-01T00:00:00Z"},
               {"labels":{},"scrapePool":"y","scrapeUrl":"http://y/metrics","health":"sideways",
                "lastError":"connection refused","lastScrape":"0001-01-01T00:00:00Z"}],
              "droppedTargets":[{"discoveredLabels":{"__address__":"10.0.0.1:80"}}]}"#,
        )
        .expect("targets");
        let up = &t.active_targets[0];
        assert_eq!(up.health, Health::Up);
        assert_eq!(up.labels["job"], "prometheus");
        assert_eq!(up.discovered_labels["__address__"], "127.0.0.1:9090");
        assert_eq!(
            up.last_scrape.to_string(),
            "2026-01-02T02:04:05.123456789Z",
            "an offset is a point in time"
        );
        assert_eq!(t.active_targets[1].health, Health::Unknown);
        assert_eq!(t.active_targets[2].health, Health::Unknown);
        assert_eq!(t.active_targets[2].last_error, "connection refused");
        assert_eq!(t.dropped_targets[0].scrape_pool, None);
    }

    #[test]
    fn alertmanagers() {
        let a: Alertmanagers = serde_json::from_str(
            r#"{"activeAlertmanagers":[{"url":"http://127.0.0.1:9093/api/v2/alerts"}],"droppedAlertmanagers":[]}"#,
        )
        .expect("alertmanagers");
        assert_eq!(
            a.active_alertmanagers[0].url,
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert!(a.dropped_alertmanagers.is_empty());
    }
}

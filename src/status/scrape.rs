//! What Prometheus scrapes of the platform: for each of its ServiceMonitors (in the cluster,
//! labelled `app.kubernetes.io/part-of=<platform>`), each endpoint's scrape pool as the
//! Prometheus of the kube-prometheus-stack addon reports it (`/api/v1/targets`, through a
//! port-forward to its pod, as platformctl reaches Prometheus on any cluster): how many
//! targets, how many up, and the last error of one that is down.

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde::Serialize;

use crate::addons::{self, Kind};
use crate::config::Platform;
use crate::prom;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRow {
    pub namespace: String,
    pub service_monitor: String,
    /// Prometheus' scrape pool: `serviceMonitor/<namespace>/<name>/<endpoint index>`.
    pub pool: String,
    /// Targets up, and all targets; `None` when Prometheus could not be asked.
    pub up: Option<usize>,
    pub total: Option<usize>,
    /// Why the counts are unknown, or the last scrape error of a target that is down.
    pub message: String,
}

impl TargetRow {
    /// Every target up, and at least one.
    pub fn healthy(&self) -> bool {
        matches!((self.up, self.total), (Some(u), Some(t)) if u == t && t > 0)
    }
}

fn service_monitors() -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "ServiceMonitor".into(),
        plural: "servicemonitors".into(),
    }
}

/// One row per endpoint of each of the platform's ServiceMonitors; none without the
/// kube-prometheus-stack addon or its CRD. Never an error: what cannot be read says so in the
/// rows' message.
pub async fn rows(
    platform: &Platform,
    client: &Client,
    prometheus: Option<&Result<prom::Client, String>>,
) -> Vec<TargetRow> {
    let Some(prometheus) = prometheus else {
        return Vec::new();
    };
    let namespace = addons::namespace(platform, Kind::KubePrometheusStack);
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/part-of={}",
        platform.metadata.name
    ));
    let Ok(monitors) = Api::<DynamicObject>::all_with(client.clone(), &service_monitors())
        .list(&lp)
        .await
    else {
        return Vec::new();
    };
    let mut rows: Vec<TargetRow> = Vec::new();
    for m in &monitors.items {
        let ns = m.metadata.namespace.clone().unwrap_or_default();
        let name = m.metadata.name.clone().unwrap_or_default();
        let endpoints = m.data["spec"]["endpoints"].as_array().map_or(0, Vec::len);
        for i in 0..endpoints {
            rows.push(TargetRow {
                pool: format!("serviceMonitor/{ns}/{name}/{i}"),
                namespace: ns.clone(),
                service_monitor: name.clone(),
                up: None,
                total: None,
                message: String::new(),
            });
        }
    }
    if rows.is_empty() {
        return rows;
    }
    let asked = match prometheus {
        Ok(p) => p.targets().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    match asked {
        Ok(targets) => {
            for row in &mut rows {
                let mine: Vec<&prom::Target> = targets
                    .active_targets
                    .iter()
                    .filter(|t| t.scrape_pool == row.pool)
                    .collect();
                let up = mine.iter().filter(|t| t.health == prom::Health::Up).count();
                row.up = Some(up);
                row.total = Some(mine.len());
                row.message = match mine.iter().find(|t| t.health != prom::Health::Up) {
                    Some(down) if !down.last_error.is_empty() => {
                        format!("{}: {}", down.scrape_url, down.last_error)
                    }
                    Some(down) => format!("{}: not scraped yet", down.scrape_url),
                    None if mine.is_empty() => "no targets (no Ready pod selected?)".into(),
                    None => String::new(),
                };
            }
        }
        Err(e) => {
            let why = format!("Prometheus in namespace `{namespace}` cannot be asked: {e}");
            for row in &mut rows {
                row.message = why.clone();
            }
        }
    }
    rows
}

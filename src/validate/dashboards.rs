//! Grafana dashboards, checked through what Grafana would do with them (Grafana itself is not
//! asked): each rendered dashboard ConfigMap is in the cluster with the label Grafana's
//! dashboard sidecar loads, its JSON is a dashboard Grafana accepts (a title, a uid of at most
//! 40 characters, panels with a type), the data source its panels name is provisioned (a
//! ConfigMap with the datasource sidecar's label in the kube-prometheus-stack namespace, as the
//! chart writes it), and every panel query is valid PromQL that returns data over the
//! dashboard's time range, run against the real Prometheus with Grafana's variables filled in.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::{Check, Error, Rendered, Verdict, kube_err};
use crate::addons::{self, Kind};
use crate::config::Platform;
use crate::prom;

use super::promql::{grafana_variables, metric_names};

/// The kube-prometheus-stack chart's sidecar labels (grafana.sidecar.{dashboards,datasources}).
struct Labels {
    dashboard: (String, String),
    datasource: (String, String),
}

fn labels(platform: &Platform) -> Labels {
    let values = addons::plan(platform, &addons::Facts::default())
        .into_iter()
        .find(|r| r.kind == Kind::KubePrometheusStack)
        .map(|r| r.values)
        .unwrap_or_default();
    let pick = |which: &str, default: &str| {
        let s = &values["grafana"]["sidecar"][which];
        (
            s["label"].as_str().unwrap_or(default).to_string(),
            s["labelValue"].as_str().unwrap_or("1").to_string(),
        )
    };
    Labels {
        dashboard: pick("dashboards", "grafana_dashboard"),
        datasource: pick("datasources", "grafana_datasource"),
    }
}

/// A data source as the sidecar provisions it.
#[derive(Debug, Clone)]
struct Datasource {
    name: String,
    kind: String,
    uid: String,
    url: String,
}

pub(super) async fn dashboards(
    client: &Client,
    prometheus: &prom::Client,
    platform: &Platform,
    rendered: &Rendered,
    groups: &[prom::Group],
) -> Result<Vec<Check>, Error> {
    let labels = labels(platform);
    let (key, value) = &labels.dashboard;
    let wanted: Vec<_> = rendered
        .kind("ConfigMap")
        .filter(|(_, m)| m.object["metadata"]["labels"][key.as_str()].is_string())
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let kps = addons::namespace(platform, Kind::KubePrometheusStack);
    let datasources = provisioned(client, kps, &labels.datasource).await?;
    // The metrics Prometheus' rules record, asked once: a query without data may name one.
    let recorded: Vec<String> = groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| r.name().to_string()))
        .collect();
    let labels = &labels;
    let recorded = &recorded;
    let checks = wanted.into_iter().map(|(env, m)| {
        let datasources = &datasources;
        async move {
            let ns = m.namespace().unwrap_or_default();
            let object = format!("{ns}/{}", m.name());
            let live = Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get_opt(m.name())
                .await
                .map_err(kube_err(format!("ConfigMap `{object}`")))?;
            let (verdict, message) = match live {
                None => (
                    Verdict::Fail,
                    format!("dashboard ConfigMap `{object}` is not in the cluster"),
                ),
                Some(cm) => match cm.metadata.labels.as_ref().and_then(|l| l.get(key)) {
                    Some(v) if v == value => {
                        dashboard(prometheus, &cm, datasources, recorded, kps, &labels.datasource.0)
                            .await
                    }
                    other => (
                        Verdict::Fail,
                        format!(
                            "ConfigMap `{object}` lacks the label `{key}: \"{value}\"` Grafana's dashboard sidecar loads (it has {})",
                            other.map_or("none".to_string(), |v| format!("`{v}`"))
                        ),
                    ),
                },
            };
            Ok::<Check, Error>(Check::new("dashboard", &object, env, verdict, message))
        }
    });
    // One dashboard after another, each asking at most QUERIES_AT_ONCE queries at a time: a
    // port-forward makes a stream per request, and a burst of them is no faster.
    let mut out = Vec::new();
    for c in checks {
        out.push(c.await?);
    }
    Ok(out)
}

/// Panel queries in flight at once, per dashboard.
const QUERIES_AT_ONCE: usize = 4;

/// The data sources of every ConfigMap with the datasource sidecar's label.
async fn provisioned(
    client: &Client,
    namespace: &str,
    (key, value): &(String, String),
) -> Result<Vec<Datasource>, Error> {
    let maps = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{key}={value}")))
        .await
        .map_err(kube_err(format!(
            "the data source ConfigMaps in `{namespace}`"
        )))?;
    let mut out = Vec::new();
    for cm in maps.items {
        for text in cm.data.iter().flat_map(|d| d.values()) {
            let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
                continue;
            };
            for d in doc["datasources"].as_sequence().into_iter().flatten() {
                let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                out.push(Datasource {
                    name: s("name"),
                    kind: s("type"),
                    uid: s("uid"),
                    url: s("url"),
                });
            }
        }
    }
    Ok(out)
}

/// One panel query, as Grafana would send it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Query {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

async fn dashboard(
    prometheus: &prom::Client,
    cm: &ConfigMap,
    datasources: &[Datasource],
    recorded: &[String],
    kps: &str,
    datasource_label: &str,
) -> (Verdict, String) {
    let mut problems = Vec::new();
    let mut queries = Vec::new();
    let mut range = Duration::from_secs(3_600);
    let mut used = Vec::new();
    for (file, text) in cm.data.iter().flatten() {
        let parsed: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("`{file}` is not JSON: {e}"));
                continue;
            }
        };
        match shape(&parsed) {
            Err(why) => problems.push(format!("`{file}` is not a Grafana dashboard: {why}")),
            Ok(found) => {
                queries.extend(found);
                range = time_range(&parsed);
                match datasource(&parsed, datasources) {
                    Ok(d) => used.push(d),
                    Err(why) => problems.push(format!(
                        "`{file}`: {why} (no ConfigMap labelled `{datasource_label}` in `{kps}` provisions it)"
                    )),
                }
            }
        }
    }
    if !problems.is_empty() {
        return (Verdict::Fail, problems.join("; "));
    }
    let end = Timestamp::now();
    let start = end
        .checked_sub(SignedDuration::try_from(range).unwrap_or(SignedDuration::from_hours(1)))
        .unwrap_or(end);
    // Grafana asks about 1 point per pixel of a panel's width; a step of range/240 is close.
    let step = Duration::from_secs((range.as_secs() / 240).max(15));
    use futures::StreamExt as _;
    let answers: Vec<_> = futures::stream::iter(queries.iter().map(|q| {
        let expr = grafana_variables(&q.expr, range);
        async move { (q, prometheus.query_range(&expr, start, end, step).await) }
    }))
    .buffered(QUERIES_AT_ONCE)
    .collect()
    .await;
    let mut quiet = Vec::new();
    for (q, answer) in answers {
        match answer {
            Err(e) => problems.push(format!(
                "panel `{}` query {}: {}",
                q.panel,
                q.ref_id,
                match &e {
                    prom::Error::Api { message, .. } => message.clone(),
                    other => other.to_string(),
                }
            )),
            Ok(a) if a.data.iter().all(|s| s.values.is_empty()) => quiet.push(q),
            Ok(_) => {}
        }
    }
    // A query without data names a metric nothing has (a typo), or one without samples yet
    // (no traffic): a target exposes its `# TYPE` before its first sample, a rule records it.
    let mut waiting = Vec::new();
    for q in quiet {
        let mut unknown = Vec::new();
        for metric in metric_names(&q.expr) {
            if recorded.contains(&metric) {
                continue;
            }
            // A histogram's or summary's series are named after their family's `# TYPE`.
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| metric.strip_suffix(suffix));
            let mut known = false;
            for name in std::iter::once(metric.as_str()).chain(family) {
                match prometheus.exposed(name).await {
                    Ok(true) => known = true,
                    Ok(false) => {}
                    Err(e) => {
                        return (
                            Verdict::Fail,
                            format!("cannot read Prometheus' metadata: {e}"),
                        );
                    }
                }
            }
            if !known {
                unknown.push(metric);
            }
        }
        if unknown.is_empty() {
            waiting.push(format!("`{}`", q.panel));
        } else {
            problems.push(format!(
                "panel `{}` query {} returns no data over the last {}: no target exposes and no rule records {} (a typo?)",
                q.panel,
                q.ref_id,
                crate::slo::duration(range.as_secs_f64()),
                unknown
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return (Verdict::Fail, problems.join("; "));
    }
    if !waiting.is_empty() {
        return (
            Verdict::Skip,
            format!(
                "{} of {} panel queries have no samples yet (no traffic?): {}; their metrics exist",
                waiting.len(),
                queries.len(),
                waiting.join(", ")
            ),
        );
    }
    used.dedup_by(|a, b| a.uid == b.uid);
    (
        Verdict::Pass,
        format!(
            "{n} of {n} panel queries return data; data source {} provisioned (checked through the queries Grafana would send; Grafana itself is not asked)",
            used.iter()
                .map(|d| format!("`{}` ({} at {})", d.name, d.kind, d.url))
                .collect::<Vec<_>>()
                .join(", "),
            n = queries.len(),
        ),
    )
}

/// The dashboard's panel queries, or why it is not a dashboard Grafana would load.
pub(super) fn shape(d: &Value) -> Result<Vec<Query>, String> {
    let title = d["title"].as_str().unwrap_or_default();
    if title.is_empty() {
        return Err("no `title`".into());
    }
    match d["uid"].as_str() {
        Some(uid) if uid.len() > 40 => {
            return Err(format!(
                "`uid` `{uid}` is longer than Grafana's 40 characters"
            ));
        }
        Some(_) | None => {}
    }
    let Some(panels) = d["panels"].as_array() else {
        return Err("no `panels` list".into());
    };
    let mut queries = Vec::new();
    let mut all = Vec::new();
    for p in panels {
        all.push(p);
        // A row holds its collapsed panels.
        all.extend(p["panels"].as_array().into_iter().flatten());
    }
    for (i, p) in all.iter().enumerate() {
        let panel = p["title"].as_str().map_or(format!("#{i}"), str::to_string);
        if !p["type"].is_string() {
            return Err(format!("panel `{panel}` has no `type`"));
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            queries.push(Query {
                panel: panel.clone(),
                ref_id: t["refId"].as_str().unwrap_or("A").to_string(),
                expr: expr.to_string(),
            });
        }
    }
    Ok(queries)
}

/// The data source the dashboard's panels name: a `${var}` of type `datasource` (any
/// provisioned data source of its plugin type), or a uid that must be provisioned.
fn datasource(d: &Value, provisioned: &[Datasource]) -> Result<Datasource, String> {
    let mut refs = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        refs.push(&p["datasource"]);
        refs.extend(
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| &t["datasource"]),
        );
    }
    let refs: Vec<&Value> = refs.into_iter().filter(|r| r.is_object()).collect();
    let Some(first) = refs.first() else {
        return provisioned
            .iter()
            .find(|p| p.kind == "prometheus")
            .cloned()
            .ok_or_else(|| "no Prometheus data source is provisioned".to_string());
    };
    let kind = first["type"].as_str().unwrap_or("prometheus");
    let uid = first["uid"].as_str().unwrap_or_default();
    if let Some(var) = uid
        .strip_prefix("${")
        .and_then(|u| u.strip_suffix('}'))
        .or_else(|| uid.strip_prefix('$'))
    {
        let declared = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == var);
        let Some(v) = declared else {
            return Err(format!(
                "panels name `${{{var}}}`, which is not a dashboard variable"
            ));
        };
        let plugin = v["query"].as_str().unwrap_or(kind);
        if v["type"] != "datasource" {
            return Err(format!("variable `{var}` is not of type `datasource`"));
        }
        return provisioned
            .iter()
            .find(|p| p.kind == plugin)
            .cloned()
            .ok_or_else(|| format!("no `{plugin}` data source for `${{{var}}}` is provisioned"));
    }
    provisioned
        .iter()
        .find(|p| p.uid == uid)
        .cloned()
        .ok_or_else(|| format!("data source uid `{uid}` is not provisioned"))
}

/// The dashboard's time range (`time.from` as `now-<duration>`), 6h when unreadable (Grafana's
/// default).
fn time_range(d: &Value) -> Duration {
    d["time"]["from"]
        .as_str()
        .and_then(|f| f.strip_prefix("now-"))
        .and_then(crate::config::duration_seconds)
        .map_or(Duration::from_secs(6 * 3_600), Duration::from_secs)
}

//! Monitoring for real, the checks (run on the platform `up` brings up: up_for_real.rs): the
//! real prometheus-operator reconciles the Prometheus and Alertmanager of the
//! kube-prometheus-stack stand-in chart; their pods run as the real Prometheus v3.9.1,
//! Alertmanager v0.30.1 and prometheus-config-reloader under sim-kubelet, with the
//! configuration the operator generates from the rendered ServiceMonitor and PrometheusRule.
//! Prometheus' own Kubernetes service discovery finds the service's pods, which are the real
//! service processes. Every question goes to Prometheus and Alertmanager over platformctl's own
//! clients (`platformctl::prom`), through a port-forward to their pods, as platformctl reaches
//! them on minikube.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use platformctl::kube::portforward::{Backend, is_ready};
use platformctl::prom::alertmanager::{self, Filter};
use platformctl::prom::{self, Data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestResult, wait_for};

/// The Ready pods of a service in a namespace: their names and `<pod IP>:<port>`.
pub struct Serving {
    pub names: BTreeSet<String>,
    pub addrs: Vec<SocketAddr>,
}

/// Waits until `count` pods labelled `app.kubernetes.io/name=<service>` in `ns` are Ready
/// (saying why not: each pod's phase and waiting reasons).
pub async fn serving(
    client: &Client,
    ns: &str,
    service: &str,
    port: u16,
    count: usize,
) -> Result<Serving, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={service}"));
    let waited = wait_for(
        &format!("{count} Ready {service} pods in {ns}"),
        Duration::from_secs(90),
        || async {
            let items = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
            Ok(items.iter().filter(|p| is_ready(p)).count() == count)
        },
    )
    .await;
    let all = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
    if let Err(e) = waited {
        let phases: Vec<String> = all
            .iter()
            .map(|p| {
                format!(
                    "{} {:?}",
                    p.metadata.name.clone().unwrap_or_default(),
                    p.status.as_ref().and_then(|s| s.phase.clone())
                )
            })
            .collect();
        return Err(format!(
            "{e}; pods: {phases:?}; {:?}",
            platformctl::status::pod_problems(&all)
        ));
    }
    let ready: Vec<&Pod> = all.iter().filter(|p| is_ready(p)).collect();
    Ok(Serving {
        names: ready
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect(),
        addrs: ready
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

/// Prometheus, as platformctl reaches it: a port-forward to a Ready pod of the operator's
/// governing Service in `mon`.
pub async fn prometheus(client: &Client, mon: &str) -> Result<prom::Client, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), mon);
    wait_for(
        "the operator's Prometheus pod Ready",
        Duration::from_secs(120),
        || async {
            let l = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=prometheus"))
                .await
                .map_err(|e| e.to_string())?;
            Ok(l.items.iter().any(is_ready))
        },
    )
    .await?;
    prom::Client::via_port_forward(
        client,
        mon,
        &Backend::Service(prom::SERVICE.into()),
        prom::PORT,
    )
    .await
    .map_err(|e| e.to_string())
}

/// One `up` target per pod in the ServiceMonitor's first scrape pool, labelled as its
/// relabelings say, and no more targets than pods.
pub async fn scraped_per_pod(
    prometheus: &prom::Client,
    ns: &str,
    service_monitor: &str,
    pods: &Serving,
) -> TestResult {
    let pool = format!("serviceMonitor/{ns}/{service_monitor}/0");
    wait_for(
        &format!("one up target per pod in {pool}, labelled by the relabelings"),
        Duration::from_secs(90),
        || async {
            let targets = prometheus.targets().await.map_err(|e| e.to_string())?;
            let mine: Vec<_> = targets
                .active_targets
                .iter()
                .filter(|t| t.scrape_pool == pool)
                .collect();
            let up: BTreeSet<String> = mine
                .iter()
                .filter(|t| t.health == prom::Health::Up)
                .filter(|t| {
                    t.labels.get("namespace").map(String::as_str) == Some(ns)
                        && t.labels.contains_key("service")
                        && t.labels
                            .get("rollouts_pod_template_hash")
                            .is_some_and(|h| !h.is_empty())
                })
                .filter_map(|t| t.labels.get("pod").cloned())
                .collect();
            if mine.len() > pods.names.len() {
                return Err(format!(
                    "{} targets for {} pods: {mine:?}",
                    mine.len(),
                    pods.names.len()
                ));
            }
            Ok(up == pods.names)
        },
    )
    .await
}

/// Requests to the pods show in the counters Prometheus scrapes from them: a first request per
/// pod makes the series, then the counted traffic must add up (within 10%).
pub async fn requests_counted(prometheus: &prom::Client, ns: &str, pods: &Serving) -> TestResult {
    for addr in &pods.addrs {
        traffic(*addr, 1).await;
    }
    let query = format!("sum(http_requests_total{{namespace=\"{ns}\",route=\"/customers\"}})");
    let total = || async {
        let answer = prometheus
            .query(&query, None)
            .await
            .map_err(|e| e.to_string())?;
        let Data::Vector(v) = answer.data else {
            return Err(format!("{query}: not a vector"));
        };
        Ok::<f64, String>(v.first().map_or(0.0, |s| s.value.value))
    };
    wait_for(
        "the first request of each pod scraped",
        Duration::from_secs(60),
        || async { Ok(total().await? >= pods.addrs.len() as f64) },
    )
    .await?;
    let before = total().await?;
    let mut sent = 0;
    for addr in &pods.addrs {
        sent += traffic(*addr, 100).await;
    }
    let last = std::cell::Cell::new(before);
    wait_for(
        &format!("{query} to grow by the {sent} requests sent, within 10%"),
        Duration::from_secs(60),
        || async {
            let now = total().await?;
            last.set(now);
            Ok(((now - before) - sent as f64).abs() <= 0.1 * sent as f64)
        },
    )
    .await
    .map_err(|e| format!("{e}: from {before} to {}", last.get()))
}

/// The rendered SLO rule groups of `service` are loaded and evaluate without error.
pub async fn slo_rules_healthy(prometheus: &prom::Client, service: &str) -> TestResult {
    let prefix = format!("slo-{service}");
    wait_for(
        "the SLO rule groups loaded and healthy",
        Duration::from_secs(60),
        || async {
            let groups = prometheus.rules().await.map_err(|e| e.to_string())?;
            let slo: Vec<_> = groups
                .iter()
                .filter(|g| g.name.starts_with(&prefix))
                .collect();
            Ok(!slo.is_empty()
                && slo
                    .iter()
                    .all(|g| g.rules.iter().all(|r| r.health() == prom::RuleHealth::Ok)))
        },
    )
    .await
}

/// 20% errors switched on in the pods (`PUT /admin/faults` with the admin token): the fast-burn
/// alert (page, 1h/5m) fires in Prometheus and arrives in Alertmanager (in `mon`).
pub async fn fast_burn_reaches_alertmanager(
    client: &Client,
    mon: &str,
    prometheus: &prom::Client,
    pods: &Serving,
    token: &str,
) -> TestResult {
    for addr in &pods.addrs {
        put_faults(*addr, token, 0.2).await?;
    }
    let am = alertmanager::Client::via_port_forward(
        client,
        mon,
        &Backend::Service(alertmanager::SERVICE.into()),
        alertmanager::PORT,
    )
    .await
    .map_err(|e| e.to_string())?;
    let burn = "SLOErrorBudgetBurn";
    let fast = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get("alertname").map(String::as_str) == Some(burn)
            && labels.get("short_window").map(String::as_str) == Some("5m")
    };
    wait_for(
        &format!("{burn} (page, 1h/5m) firing in Prometheus and in Alertmanager"),
        Duration::from_secs(120),
        || async {
            for addr in &pods.addrs {
                traffic(*addr, 20).await;
            }
            let alerts = prometheus.alerts().await.map_err(|e| e.to_string())?;
            let firing = alerts
                .iter()
                .any(|a| fast(&a.labels) && a.state == prom::AlertState::Firing);
            if !firing {
                return Ok(false);
            }
            let received = am
                .alerts(&Filter::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(received.iter().any(|a| fast(&a.labels)))
        },
    )
    .await
}

pub async fn put_faults(addr: SocketAddr, token: &str, error_rate: f64) -> TestResult {
    let body = format!(r#"{{"errorRate":{error_rate},"latencyMs":0}}"#);
    let req = format!(
        "PUT /admin/faults HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let out = exchange(addr, &req).await?;
    if !out.starts_with("HTTP/1.1 200") {
        return Err(format!("PUT /admin/faults on {addr}: {out}"));
    }
    Ok(())
}

/// One GET of `path` on `addr`: the whole response.
pub async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// One request as written, on a connection of its own: the whole response.
pub async fn exchange(addr: SocketAddr, request: &str) -> Result<String, String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `n` GET /customers to `addr`; how many were answered (any status).
pub async fn traffic(addr: SocketAddr, n: usize) -> usize {
    let mut answered = 0;
    for _ in 0..n {
        if get(addr, "/customers")
            .await
            .is_ok_and(|out| out.starts_with("HTTP/1.1 "))
        {
            answered += 1;
        }
    }
    answered
}

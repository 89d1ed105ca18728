//! Monitoring for real (`tests/sim/cluster up --with workloads,monitoring`): the real
//! prometheus-operator reconciles the Prometheus and Alertmanager of the kube-prometheus-stack
//! stand-in chart (installed by the real helm); their pods run as the real Prometheus v3.9.1,
//! Alertmanager v0.30.1 and prometheus-config-reloader under sim-kubelet, with the configuration
//! the operator generates from the rendered ServiceMonitor and PrometheusRule. Prometheus' own
//! Kubernetes service discovery finds the customer-api pods, which are the real service
//! processes. Every question goes to Prometheus and Alertmanager over platformctl's own clients
//! (`platformctl::prom`), through a port-forward to their pods, as platformctl reaches them on
//! minikube.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use libtest_mimic::Trial;
use platformctl::kube::portforward::{Backend, is_ready};
use platformctl::kube::{Applier, Options as ApplyOptions};
use platformctl::prom::alertmanager::{self, Filter};
use platformctl::prom::{self, Data};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, Namespaces, TestResult, wait_for};
use crate::{apply, render_tree};

pub fn trials() -> Vec<Trial> {
    vec![Trial::test(
        "monitoring_prometheus_scrapes_every_pod_evaluates_the_slo_rules_and_alerts_reach_alertmanager",
        || support::run(prometheus_end_to_end),
    )]
}

/// The customer-platform's prod objects in the test's namespace, as Argo CD would apply them,
/// with the scrape interval shortened to 2 s and the SLO rules reading the test's namespace.
fn prod_objects(prod: &str) -> Result<Vec<(String, Value)>, String> {
    let objects = render_tree(support::repo_root())?
        .into_iter()
        .filter(|(file, _)| file.starts_with("envs/prod/"))
        .collect::<Vec<_>>();
    let mut out = Vec::new();
    for (file, mut o) in objects {
        // The test run's Argo Rollouts controller sees only what carries its instance id (the
        // Rollout, and the Ingress its NGINX traffic routing reads).
        o["metadata"]["labels"]["argo-rollouts.argoproj.io/controller-instance-id"] =
            json!(support::ROLLOUTS_INSTANCE_ID);
        match o["kind"].as_str() {
            Some("ServiceMonitor") => {
                o["spec"]["namespaceSelector"]["matchNames"] = json!([prod]);
                for e in o["spec"]["endpoints"].as_array_mut().ok_or("endpoints")? {
                    e["interval"] = json!("2s");
                }
            }
            Some("PrometheusRule") => {
                let text = o.to_string().replace(
                    "namespace=\\\"prod\\\"",
                    &format!("namespace=\\\"{prod}\\\""),
                );
                o = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        out.push((file, o));
    }
    Ok(out)
}

fn helm_install(cluster: &support::Cluster, release: &str, namespace: &str) -> TestResult {
    let helm = crate::addons::locate_helm()?;
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let chart = support::repo_root().join("tests/fixtures/charts/kube-prometheus-stack");
    let out = Command::new(helm.binary())
        .args(["install", release])
        .arg(&chart)
        .args(["-n", namespace, "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .args([
            "--set",
            "prometheus.prometheusSpec.scrapeInterval=2s",
            "--set",
            "prometheus.prometheusSpec.evaluationInterval=2s",
            "--set",
            "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false",
            "--set",
            "prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false",
        ])
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .map_err(|e| format!("helm install: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "helm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn helm_uninstall(cluster: &support::Cluster, release: &str, namespace: &str) {
    if let Ok(helm) = crate::addons::locate_helm() {
        let _ = Command::new(helm.binary())
            .args(["uninstall", release, "-n", namespace, "--kubeconfig"])
            .arg(&cluster.kubeconfig)
            .output();
    }
}

async fn put_faults(addr: SocketAddr, token: &str, error_rate: f64) -> TestResult {
    let body = format!(r#"{{"errorRate":{error_rate},"latencyMs":0}}"#);
    let req = format!(
        "PUT /admin/faults HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    if !out.starts_with("HTTP/1.1 200") {
        return Err(format!("PUT /admin/faults on {addr}: {out}"));
    }
    Ok(())
}

/// `n` GET /customers to `addr`; how many were answered (any status).
async fn traffic(addr: SocketAddr, n: usize) -> usize {
    let mut answered = 0;
    for _ in 0..n {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            continue;
        };
        let req = format!("GET /customers HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            continue;
        }
        let mut out = Vec::new();
        if s.read_to_end(&mut out).await.is_ok() && out.starts_with(b"HTTP/1.1 ") {
            answered += 1;
        }
    }
    answered
}

async fn prometheus_end_to_end(cluster: &'static support::Cluster, client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "mon", &["monitoring", "prod"]).await?;
    let (mon, prod) = (
        namespaces.get("monitoring").to_string(),
        namespaces.get("prod").to_string(),
    );
    // Named after the test's namespace: the chart's ClusterRole is named after its release.
    let release = format!("kps-{}", mon.rsplit('-').next().unwrap_or("x"));
    let result = async {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "customer-api-admin"}, "stringData": {"ADMIN_TOKEN": "mon-token"}}))
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(client.clone(), &prod).create(&PostParams::default(), &secret).await.map_err(|e| e.to_string())?;
        let manifests = apply::manifests(&prod_objects(&prod)?, &namespaces, |_| {})?;
        apply::run(&Applier::new(client.clone(), ApplyOptions::default()), &manifests).await?;
        helm_install(cluster, &release, &mon)?;

        let pods: Api<Pod> = Api::namespaced(client.clone(), &prod);
        let lp = ListParams::default().labels("app.kubernetes.io/name=customer-api");
        let ready = is_ready;
        let waited = wait_for("3 Ready customer-api pods in prod", Duration::from_secs(90), || async {
            Ok(pods.list(&lp).await.map_err(|e| e.to_string())?.items.iter().filter(|p| ready(p)).count() == 3)
        })
        .await;
        if let Err(e) = waited {
            let all = pods.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            let phases: Vec<String> = all.iter().map(|p| format!("{} {:?}", p.metadata.name.clone().unwrap_or_default(), p.status.as_ref().and_then(|s| s.phase.clone()))).collect();
            return Err(format!("{e}; pods: {phases:?}; {:?}", platformctl::status::pod_problems(&all)));
        }
        let serving: Vec<Pod> = pods.list(&lp).await.map_err(|e| e.to_string())?.items.into_iter().filter(ready).collect();
        let names: BTreeSet<String> = serving.iter().filter_map(|p| p.metadata.name.clone()).collect();
        let addrs: Vec<SocketAddr> = serving
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
            .map(|ip| SocketAddr::new(ip, 8080))
            .collect();

        // Prometheus, as platformctl reaches it: a port-forward to a Ready pod of the operator's
        // governing Service.
        let prom_pods: Api<Pod> = Api::namespaced(client.clone(), &mon);
        wait_for("the operator's Prometheus pod Ready", Duration::from_secs(120), || async {
            let l = prom_pods.list(&ListParams::default().labels("app.kubernetes.io/name=prometheus")).await.map_err(|e| e.to_string())?;
            Ok(l.items.iter().any(ready))
        })
        .await?;
        let prometheus = prom::Client::via_port_forward(&client, &mon, &Backend::Service(prom::SERVICE.into()), prom::PORT)
            .await
            .map_err(|e| e.to_string())?;
        let pool = format!("serviceMonitor/{prod}/customer-api/0");
        wait_for(&format!("one up target per pod in {pool}, labelled by the relabelings"), Duration::from_secs(90), || async {
            let targets = prometheus.targets().await.map_err(|e| e.to_string())?;
            let mine: Vec<_> = targets.active_targets.iter().filter(|t| t.scrape_pool == pool).collect();
            let up: BTreeSet<String> = mine
                .iter()
                .filter(|t| t.health == prom::Health::Up)
                .filter(|t| t.labels.get("namespace") == Some(&prod) && t.labels.contains_key("service") && t.labels.get("rollouts_pod_template_hash").is_some_and(|h| !h.is_empty()))
                .filter_map(|t| t.labels.get("pod").cloned())
                .collect();
            if mine.len() > 3 {
                return Err(format!("{} targets for 3 pods: {mine:?}", mine.len()));
            }
            Ok(up == names)
        })
        .await?;

        // Requests to the pods show in the counters Prometheus scrapes from them: a first request
        // per pod makes the series, then the counted traffic must add up (within 10%).
        for addr in &addrs {
            traffic(*addr, 1).await;
        }
        let query = format!("sum(http_requests_total{{namespace=\"{prod}\",route=\"/customers\"}})");
        let total = || async {
            let answer = prometheus.query(&query, None).await.map_err(|e| e.to_string())?;
            let Data::Vector(v) = answer.data else { return Err(format!("{query}: not a vector")) };
            Ok::<f64, String>(v.first().map_or(0.0, |s| s.value.value))
        };
        wait_for("the first request of each pod scraped", Duration::from_secs(30), || async { Ok(total().await? >= addrs.len() as f64) }).await?;
        let before = total().await?;
        let mut sent = 0;
        for addr in &addrs {
            sent += traffic(*addr, 100).await;
        }
        let last = std::cell::Cell::new(before);
        wait_for(&format!("{query} to grow by the {sent} requests sent, within 10%"), Duration::from_secs(30), || async {
            let now = total().await?;
            last.set(now);
            Ok(((now - before) - sent as f64).abs() <= 0.1 * sent as f64)
        })
        .await
        .map_err(|e| format!("{e}: from {before} to {}", last.get()))?;

        // The rendered SLO rules are loaded and evaluate without error.
        wait_for("the SLO rule groups loaded and healthy", Duration::from_secs(30), || async {
            let groups = prometheus.rules().await.map_err(|e| e.to_string())?;
            let slo: Vec<_> = groups.iter().filter(|g| g.name.starts_with("slo-customer-api")).collect();
            Ok(!slo.is_empty() && slo.iter().all(|g| g.rules.iter().all(|r| r.health() == prom::RuleHealth::Ok)))
        })
        .await?;

        // 20% errors: the fast-burn alert fires in Prometheus and arrives in Alertmanager.
        for addr in &addrs {
            put_faults(*addr, "mon-token", 0.2).await?;
        }
        let am = alertmanager::Client::via_port_forward(&client, &mon, &Backend::Service(alertmanager::SERVICE.into()), alertmanager::PORT)
            .await
            .map_err(|e| e.to_string())?;
        let burn = "SLOErrorBudgetBurn";
        wait_for(&format!("{burn} (page, 1h/5m) firing in Prometheus and in Alertmanager"), Duration::from_secs(90), || async {
            for addr in &addrs {
                traffic(*addr, 20).await;
            }
            let alerts = prometheus.alerts().await.map_err(|e| e.to_string())?;
            let firing = alerts.iter().any(|a| a.labels.get("alertname").map(String::as_str) == Some(burn) && a.labels.get("short_window").map(String::as_str) == Some("5m") && a.state == prom::AlertState::Firing);
            if !firing {
                return Ok(false);
            }
            let received = am.alerts(&Filter::default()).await.map_err(|e| e.to_string())?;
            Ok(received.iter().any(|a| a.labels.get("alertname").map(String::as_str) == Some(burn) && a.labels.get("short_window").map(String::as_str) == Some("5m")))
        })
        .await
    }
    .await;
    helm_uninstall(cluster, &release, &mon);
    namespaces.delete().await;
    result
}

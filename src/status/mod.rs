//! `status`: one read-only look at the platform: nodes, addons (Helm releases against their
//! pins), Argo CD applications per environment, rollouts with phase, step, weight and ready
//! replicas, and what Prometheus scrapes of the platform (`scrape`).
//!
//! Reads only; never changes the cluster. The CLI formats the result.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde::Serialize;
use serde_json::Value;

use crate::addons::{self, Helm};
use crate::config::Platform;
use crate::ready::{self, Readiness};

pub mod scrape;
pub use scrape::TargetRow;

#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub roles: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonRow {
    pub release: String,
    pub namespace: String,
    pub chart: String,
    pub pinned: String,
    /// The deployed chart version, if installed.
    pub deployed: Option<String>,
    /// Helm's status of the release, or `not installed`.
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppRow {
    pub environment: String,
    pub name: String,
    pub sync: String,
    pub health: String,
    /// Why it is not Synced and Healthy, as `up`'s wait says it (an error condition such as
    /// Argo CD's ComparisonError when the repository cannot be read, a failed sync, the
    /// degraded resources); empty when it is.
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRow {
    pub environment: String,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub message: String,
    /// `current/total` canary step, when a canary.
    pub step: Option<String>,
    /// Canary weight in percent, when a canary.
    pub weight: Option<i64>,
    /// Pods Ready (serving), and the replicas the Rollout wants.
    pub ready_replicas: i64,
    pub replicas: i64,
}

/// An SLO's error budget now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SloRow {
    pub environment: String,
    pub name: String,
    /// `Met`, `Exhausted`, `NoData`, or `Unknown` when Prometheus could not be asked.
    pub state: String,
    /// The share of the window's budget left.
    pub budget_remaining: Option<f64>,
    pub window: String,
    /// "31m of 43m12s left in 30d", or why there is no figure.
    pub message: String,
}

fn slo_row(s: &crate::slo::Status) -> SloRow {
    SloRow {
        environment: s.spec.environment.clone(),
        name: s.spec.name.clone(),
        state: format!("{:?}", s.state),
        budget_remaining: s.budget.as_ref().map(|b| b.remaining),
        window: s.spec.window.clone(),
        message: match &s.budget {
            Some(b) => format!(
                "{} of {} left in {}",
                crate::slo::duration(b.remaining_seconds),
                crate::slo::duration(b.total_seconds),
                s.spec.window
            ),
            None => s.reason.clone(),
        },
    }
}

fn unknown_slo(s: &crate::slo::Spec, why: &str) -> SloRow {
    SloRow {
        environment: s.environment.clone(),
        name: s.name.clone(),
        state: "Unknown".into(),
        budget_remaining: None,
        window: s.window.clone(),
        message: why.to_string(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub nodes: Vec<NodeRow>,
    pub addons: Vec<AddonRow>,
    pub apps: Vec<AppRow>,
    pub rollouts: Vec<RolloutRow>,
    pub targets: Vec<TargetRow>,
    pub slos: Vec<SloRow>,
}

impl Status {
    /// Everything Ready, installed at its pin, Synced/Healthy.
    pub fn healthy(&self) -> bool {
        self.nodes.iter().all(|n| n.ready)
            && self
                .addons
                .iter()
                .all(|a| a.deployed.as_deref() == Some(&a.pinned) && a.status == "deployed")
            && self
                .apps
                .iter()
                .all(|a| a.sync == "Synced" && a.health == "Healthy")
            && self.rollouts.iter().all(|r| r.phase == "Healthy")
            // (a pool Prometheus could not be asked about is shown, not judged: `validate`
            // judges it)
            && self
                .targets
                .iter()
                .all(|t| t.total.is_none() || t.healthy())
            && self.slos.iter().all(|s| s.state != "Exhausted")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {what} from the cluster")]
    Kube {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Helm(#[from] addons::Error),
}

fn kube_err(what: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { what, source }
}

pub async fn collect(
    platform: &Platform,
    client: &Client,
    helm: Option<&Helm>,
) -> Result<Status, Error> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("nodes"))?
        .items
        .iter()
        .map(node_row)
        .collect();
    let mut addon_rows = Vec::new();
    for release in addons::plan(platform, &addons::Facts::default()) {
        let deployed = match helm {
            Some(h) => h.release(&release.name, &release.namespace).await?,
            None => None,
        };
        addon_rows.push(AddonRow {
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            chart: release.chart.clone(),
            pinned: release.version.clone(),
            deployed: deployed.as_ref().map(|d| d.version.clone()),
            status: deployed.map_or_else(
                || {
                    if helm.is_some() {
                        "not installed".to_string()
                    } else {
                        "unknown (no helm)".to_string()
                    }
                },
                |d| {
                    serde_json::to_value(d.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                },
            ),
        });
    }
    // (Prometheus' port-forward is the slowest: asked beside the two lists)
    let monitoring = async {
        let kps = platform
            .addons
            .kube_prometheus_stack
            .as_ref()
            .is_some_and(|a| a.enabled);
        if !kps {
            return (Vec::new(), Vec::new());
        }
        let namespace = addons::namespace(platform, addons::Kind::KubePrometheusStack);
        let prometheus = crate::prom::connect::prometheus(client, namespace, None)
            .await
            .map_err(|e| format!("Prometheus in namespace `{namespace}` cannot be asked: {e}"));
        let specs = crate::slo::specs(platform);
        let (targets, slos) =
            tokio::join!(scrape::rows(platform, client, Some(&prometheus)), async {
                match &prometheus {
                    Ok(p) if !specs.is_empty() => match crate::slo::collect(p, &specs).await {
                        Ok(s) => s.iter().map(slo_row).collect(),
                        Err(e) => specs
                            .iter()
                            .map(|s| unknown_slo(s, &e.to_string()))
                            .collect(),
                    },
                    Ok(_) => Vec::new(),
                    Err(e) => specs.iter().map(|s| unknown_slo(s, e)).collect(),
                }
            });
        (targets, slos)
    };
    let (apps, rollouts, (targets, slos)) = tokio::join!(
        apps(platform, client),
        rollouts(platform, client),
        monitoring
    );
    let (apps, rollouts) = (apps?, rollouts?);
    Ok(Status {
        nodes,
        addons: addon_rows,
        apps,
        rollouts,
        targets,
        slos,
    })
}

fn node_row(n: &Node) -> NodeRow {
    let status = n.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let mut roles: Vec<&str> = n
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    roles.sort();
    NodeRow {
        name: n.metadata.name.clone().unwrap_or_default(),
        ready,
        roles: if roles.is_empty() {
            "<none>".into()
        } else {
            roles.join(",")
        },
        version: status
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default(),
    }
}

/// Lists `ar` in `ns`; a kind the cluster does not serve (its CRD absent) is an empty list.
async fn list(
    client: &Client,
    ar: &ApiResource,
    ns: &str,
    what: &'static str,
) -> Result<Vec<DynamicObject>, Error> {
    match Api::<DynamicObject>::namespaced_with(client.clone(), ns, ar)
        .list(&ListParams::default())
        .await
    {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(kube_err(what)(e)),
    }
}

async fn apps(platform: &Platform, client: &Client) -> Result<Vec<AppRow>, Error> {
    let ar = crate::kube::argo("Application", "applications");
    let ns = addons::namespace(platform, addons::Kind::Argocd);
    let mut rows = Vec::new();
    for app in list(client, &ar, ns, "Argo CD applications").await? {
        if app.labels().get("app.kubernetes.io/part-of") != Some(&platform.metadata.name) {
            continue;
        }
        rows.push(app_row(&app, &ar));
    }
    rows.sort_by(|a, b| (&a.environment, &a.name).cmp(&(&b.environment, &b.name)));
    Ok(rows)
}

/// One Application (`ar`: its kind), with why it is not Synced and Healthy by `ready::of`'s
/// rules.
pub fn app_row(app: &DynamicObject, ar: &ApiResource) -> AppRow {
    let v = &app.data["status"];
    let typed = crate::kube::typed_value(app, &ar.api_version, &ar.kind);
    let message = match ready::of(&typed) {
        Some(Readiness::Waiting(m) | Readiness::Paused(m) | Readiness::Failed(m)) => m,
        Some(Readiness::Ready) | None => String::new(),
    };
    AppRow {
        environment: app
            .labels()
            .get("platformctl.dev/environment")
            .cloned()
            .unwrap_or_default(),
        name: app.metadata.name.clone().unwrap_or_default(),
        sync: v["sync"]["status"]
            .as_str()
            .unwrap_or("Unknown")
            .to_string(),
        health: v["health"]["status"]
            .as_str()
            .unwrap_or("Unknown")
            .to_string(),
        message,
    }
}

async fn rollouts(platform: &Platform, client: &Client) -> Result<Vec<RolloutRow>, Error> {
    let ar = crate::kube::argo("Rollout", "rollouts");
    let mut rows = Vec::new();
    for env in &platform.environments {
        for r in list(client, &ar, &env.namespace, "rollouts").await? {
            let value = crate::kube::typed_value(&r, &ar.api_version, &ar.kind);
            let mut row = rollout_row(&env.name, &value);
            if row.phase != "Healthy" {
                // The controller says what it waits for; the pods say why (a crash loop, a
                // config error, an image that cannot be pulled).
                let pods = rollout_pods(client, &env.namespace, &value).await?;
                let why = pod_problems(&pods);
                if !why.is_empty() {
                    if !row.message.is_empty() {
                        row.message.push_str("; ");
                    }
                    row.message.push_str(&why.join("; "));
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn rollout_pods(client: &Client, ns: &str, rollout: &Value) -> Result<Vec<Pod>, Error> {
    let Some(labels) = rollout["spec"]["selector"]["matchLabels"].as_object() else {
        return Ok(Vec::new());
    };
    let selector: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    let lp = ListParams::default().labels(&selector.join(","));
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map(|l| l.items)
        .map_err(kube_err("pods"))
}

/// What keeps pods from running, as `kubectl get pods` shows it: a container waiting for a
/// reason other than being created (`CrashLoopBackOff`, `CreateContainerConfigError`,
/// `ImagePullBackOff`, ...), with its last exit code and restarts; one line per pod.
pub fn pod_problems(pods: &[Pod]) -> Vec<String> {
    let mut out = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let statuses = pod.status.iter().flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        });
        for c in statuses {
            let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = w.reason.as_deref().unwrap_or_default();
            if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing" {
                continue;
            }
            let mut line = format!("pod `{name}` container `{}`: {reason}", c.name);
            if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                line.push_str(&format!(" (last exit code {}", t.exit_code));
                if c.restart_count > 0 {
                    line.push_str(&format!(
                        ", {}",
                        crate::output::counted(c.restart_count as usize, "restart")
                    ));
                }
                line.push(')');
            } else if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
                line.push_str(&format!(": {m}"));
            }
            out.push(line);
        }
    }
    out
}

/// Phase by Argo's rules (`ready::of`), canary step `current/total` and weight: the last
/// `setWeight` at or before the current step (100 once the rollout is complete).
pub fn rollout_row(environment: &str, r: &Value) -> RolloutRow {
    let (phase, message) = match ready::of(r) {
        Some(Readiness::Ready) | None => ("Healthy", String::new()),
        Some(Readiness::Waiting(m)) => ("Progressing", m),
        Some(Readiness::Paused(m)) => ("Paused", m),
        Some(Readiness::Failed(m)) => ("Degraded", m),
    };
    let steps = r["spec"]["strategy"]["canary"]["steps"].as_array();
    let step = steps.map(|steps| {
        let current =
            (r["status"]["currentStepIndex"].as_u64().unwrap_or(0) as usize).min(steps.len());
        format!("{current}/{}", steps.len())
    });
    let weight = crate::rollout::info::set_weight(r);
    RolloutRow {
        environment: environment.to_string(),
        namespace: r["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: r["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        phase: phase.to_string(),
        message,
        step,
        weight,
        ready_replicas: r["status"]["readyReplicas"].as_i64().unwrap_or(0),
        replicas: r["spec"]["replicas"].as_i64().unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_problems_name_the_pod_container_reason_and_last_exit() {
        let pods: Vec<Pod> = serde_json::from_value(json!([
            {"metadata": {"name": "orders-7d9-x"}, "status": {"containerStatuses": [{
                "name": "orders", "image": "platformctl/orders:0.1.0", "imageID": "", "ready": false,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=orders"}},
                "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}},
            {"metadata": {"name": "orders-7d9-y"}, "status": {"containerStatuses": [{
                "name": "orders", "image": "platformctl/orders:0.1.0", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"orders-config\" not found"}}}]}},
            {"metadata": {"name": "orders-7d9-z"}, "status": {"containerStatuses": [{
                "name": "orders", "image": "platformctl/orders:0.1.0", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}},
        ]))
        .expect("pods");
        assert_eq!(
            pod_problems(&pods),
            [
                "pod `orders-7d9-x` container `orders`: CrashLoopBackOff (last exit code 2, 3 restarts)",
                "pod `orders-7d9-y` container `orders`: CreateContainerConfigError: configmap \"orders-config\" not found",
            ]
        );
    }

    fn canary(index: u64, generation: i64, observed: &str) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "customer-api", "namespace": "prod", "generation": generation},
            "spec": {"replicas": 3, "strategy": {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1m"}}, {"setWeight": 100}
            ]}}},
            "status": {"currentStepIndex": index, "observedGeneration": observed, "phase": "Paused",
                "pauseConditions": [{"reason": "CanaryPauseStep"}], "message": "CanaryPauseStep"}
        })
    }

    /// An Application as Argo CD leaves it (tests/fixtures/readiness), as a list item may
    /// come: no apiVersion, no kind.
    fn application(fixture: &str) -> AppRow {
        let path = format!(
            "{}/tests/fixtures/readiness/{fixture}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        let mut app: DynamicObject = serde_yaml::from_str(&text).expect("yaml");
        app.types = None;
        app_row(&app, &crate::kube::argo("Application", "applications"))
    }

    #[test]
    fn an_application_row_says_why_it_is_not_synced_and_healthy() {
        let row = application("application-healthy");
        assert_eq!(
            (row.sync.as_str(), row.health.as_str()),
            ("Synced", "Healthy")
        );
        assert_eq!(row.message, "");
        let row = application("application-comparison-error");
        assert_eq!(row.sync, "Unknown");
        assert!(
            row.message
                .starts_with("sync Unknown, health Healthy; ComparisonError: ")
                && row.message.ends_with("envs/dev: app path does not exist"),
            "{}",
            row.message
        );
        let row = application("application-sync-failed");
        assert!(row.message.starts_with("sync Failed: "), "{}", row.message);
    }

    #[test]
    fn a_scrape_pool_with_a_target_down_is_degraded_one_not_asked_is_not_judged() {
        let row = |up: Option<usize>, total: Option<usize>| TargetRow {
            namespace: "prod".into(),
            service_monitor: "customer-api".into(),
            pool: "serviceMonitor/prod/customer-api/0".into(),
            up,
            total,
            message: String::new(),
        };
        let status = |targets| Status {
            nodes: vec![],
            addons: vec![],
            apps: vec![],
            rollouts: vec![],
            targets,
            slos: vec![],
        };
        assert!(status(vec![row(Some(3), Some(3))]).healthy());
        assert!(!status(vec![row(Some(2), Some(3))]).healthy());
        assert!(
            !status(vec![row(Some(0), Some(0))]).healthy(),
            "no targets at all"
        );
        assert!(status(vec![row(None, None)]).healthy());
    }

    #[test]
    fn canary_step_and_weight_come_from_the_current_step() {
        let row = rollout_row("prod", &canary(1, 2, "2"));
        assert_eq!(row.step.as_deref(), Some("1/5"));
        assert_eq!(row.weight, Some(20));
        let row = rollout_row("prod", &canary(3, 2, "2"));
        assert_eq!((row.step.as_deref(), row.weight), (Some("3/5"), Some(50)));
        let row = rollout_row("prod", &canary(5, 2, "2"));
        assert_eq!((row.step.as_deref(), row.weight), (Some("5/5"), Some(100)));
    }
}

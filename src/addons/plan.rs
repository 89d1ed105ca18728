//! What to install: one Helm release per enabled addon, at its pinned chart version, with
//! platformctl's values for a local production-shaped platform under the user's own.

use k8s_openapi::api::core::v1::Node;
use serde::Serialize;
use serde_json::{Value, json};

use super::values;
use crate::config::{self, ContainerRuntime, Driver, Platform};

/// The addons platformctl knows, in the order `plan` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Argocd,
    ArgoRollouts,
    KubePrometheusStack,
    ChaosMesh,
    IngressNginx,
    MetricsServer,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Argocd,
        Kind::ArgoRollouts,
        Kind::KubePrometheusStack,
        Kind::ChaosMesh,
        Kind::IngressNginx,
        Kind::MetricsServer,
    ];

    /// The key under `addons` in platform.yaml.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Argocd => "argocd",
            Kind::ArgoRollouts => "argoRollouts",
            Kind::KubePrometheusStack => "kubePrometheusStack",
            Kind::ChaosMesh => "chaosMesh",
            Kind::IngressNginx => "ingressNginx",
            Kind::MetricsServer => "metricsServer",
        }
    }

    /// The upstream chart name.
    pub fn chart(self) -> &'static str {
        match self {
            Kind::Argocd => "argo-cd",
            Kind::ArgoRollouts => "argo-rollouts",
            Kind::KubePrometheusStack => "kube-prometheus-stack",
            Kind::ChaosMesh => "chaos-mesh",
            Kind::IngressNginx => "ingress-nginx",
            Kind::MetricsServer => "metrics-server",
        }
    }

    /// The release name. `argocd` keeps the chart's resource names short (`argocd-server`).
    pub fn release(self) -> &'static str {
        match self {
            Kind::Argocd => "argocd",
            other => other.chart(),
        }
    }

    /// The upstream chart repository.
    pub fn repository(self) -> &'static str {
        match self {
            Kind::Argocd | Kind::ArgoRollouts => "https://argoproj.github.io/argo-helm",
            Kind::KubePrometheusStack => "https://prometheus-community.github.io/helm-charts",
            Kind::ChaosMesh => "https://charts.chaos-mesh.org",
            Kind::IngressNginx => "https://kubernetes.github.io/ingress-nginx",
            Kind::MetricsServer => "https://kubernetes-sigs.github.io/metrics-server/",
        }
    }

    /// The namespace when platform.yaml names none (the rendered tree uses the same defaults).
    pub fn namespace(self) -> &'static str {
        config::ADDON_NAMESPACES
            .iter()
            .find(|(key, _)| *key == self.key())
            .map_or("default", |(_, ns)| ns)
    }

    pub(super) fn config(self, addons: &config::Addons) -> Option<&config::Addon> {
        match self {
            Kind::Argocd => addons.argocd.as_ref(),
            Kind::ArgoRollouts => addons.argo_rollouts.as_ref(),
            Kind::KubePrometheusStack => addons.kube_prometheus_stack.as_ref(),
            Kind::ChaosMesh => addons.chaos_mesh.as_ref(),
            Kind::IngressNginx => addons.ingress_nginx.as_ref(),
            Kind::MetricsServer => addons.metrics_server.as_ref(),
        }
    }
}

/// The namespace of `kind`'s addon: platform.yaml's `namespace`, else the default. The rendered
/// tree (the Applications' namespace), `up`, `status` and `down` all ask here.
pub fn namespace(platform: &Platform, kind: Kind) -> &str {
    kind.config(&platform.addons)
        .and_then(|a| a.namespace.as_deref())
        .unwrap_or(kind.namespace())
}

/// One Helm release, fully resolved: what `helm upgrade --install` gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub kind: Kind,
    pub name: String,
    pub chart: String,
    /// An `https://`/`http://` Helm repository, or an `oci://` registry path holding the chart.
    pub repository: String,
    /// Exact chart version.
    pub version: String,
    pub namespace: String,
    /// platformctl's values with the user's merged over them. Never holds a secret value.
    pub values: Value,
    /// A Secret the release reads its admin login from. `up` creates it, with a random
    /// password, before the install when it is absent, and never replaces an existing one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

impl Release {
    /// The chart argument of `helm upgrade` and the `--repo` to go with it: an OCI repository
    /// names the chart inside it instead.
    pub fn chart_ref(&self) -> (String, Option<&str>) {
        if self.repository.starts_with("oci://") {
            let base = self.repository.trim_end_matches('/');
            (format!("{base}/{}", self.chart), None)
        } else {
            (self.chart.clone(), Some(self.repository.as_str()))
        }
    }
}

/// A login kept in a Secret: the user name is fixed, the password generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub namespace: String,
    pub name: String,
    pub user_key: String,
    pub user: String,
    pub password_key: String,
}

/// Name of the Secret holding Grafana's admin login, in the kube-prometheus-stack namespace.
pub const GRAFANA_ADMIN_SECRET: &str = "grafana-admin";

/// What the running cluster says about itself, read before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `status.nodeInfo.containerRuntimeVersion` of each node, e.g. `containerd://1.7.27`.
    pub container_runtimes: Vec<String>,
    /// The nodes carry minikube's labels (`minikube.k8s.io/…`), whatever the configured driver.
    pub minikube: bool,
}

impl Facts {
    pub fn from_nodes(nodes: &[Node]) -> Facts {
        let container_runtimes = nodes
            .iter()
            .filter_map(|n| n.status.as_ref()?.node_info.as_ref())
            .map(|i| i.container_runtime_version.clone())
            .filter(|v| !v.is_empty())
            .collect();
        let minikube = nodes.iter().any(|n| {
            n.metadata
                .labels
                .iter()
                .flatten()
                .any(|(k, _)| k.starts_with("minikube.k8s.io/"))
        });
        Facts {
            container_runtimes,
            minikube,
        }
    }

    /// The runtime every node that reports a known one agrees on; `None` when none does or
    /// they disagree (then the configured runtime applies).
    pub fn runtime(&self) -> Option<ContainerRuntime> {
        let mut found = self.container_runtimes.iter().filter_map(|v| runtime_of(v));
        let first = found.next()?;
        found.all(|r| r == first).then_some(first)
    }
}

/// The runtime named by a node's `containerRuntimeVersion` (`containerd://1.7.27`,
/// `docker://28.1.1`, `cri-o://1.33.0`).
pub fn runtime_of(version: &str) -> Option<ContainerRuntime> {
    let (scheme, _) = version.split_once("://")?;
    match scheme {
        "containerd" => Some(ContainerRuntime::Containerd),
        "docker" => Some(ContainerRuntime::Docker),
        "cri-o" | "crio" => Some(ContainerRuntime::CriO),
        _ => None,
    }
}

/// Chaos Mesh's `chaosDaemon.runtime` and `chaosDaemon.socketPath` for a runtime.
pub fn chaos_daemon(runtime: ContainerRuntime) -> (&'static str, &'static str) {
    match runtime {
        ContainerRuntime::Docker => ("docker", "/var/run/docker.sock"),
        ContainerRuntime::Containerd => ("containerd", "/run/containerd/containerd.sock"),
        ContainerRuntime::CriO => ("crio", "/var/run/crio/crio.sock"),
    }
}

/// One release per enabled addon, in [`Kind::ALL`] order.
pub fn plan(platform: &Platform, facts: &Facts) -> Vec<Release> {
    Kind::ALL
        .into_iter()
        .filter_map(|kind| {
            let addon = kind.config(&platform.addons).filter(|a| a.enabled)?;
            let namespace = namespace(platform, kind).to_string();
            let credentials = (kind == Kind::KubePrometheusStack).then(|| Credentials {
                namespace: namespace.clone(),
                name: GRAFANA_ADMIN_SECRET.to_string(),
                user_key: "admin-user".to_string(),
                user: "admin".to_string(),
                password_key: "admin-password".to_string(),
            });
            let defaults = defaults(kind, platform, facts, credentials.as_ref());
            Some(Release {
                kind,
                name: kind.release().to_string(),
                chart: kind.chart().to_string(),
                repository: addon
                    .repository
                    .clone()
                    .unwrap_or_else(|| kind.repository().to_string()),
                version: addon.version.clone(),
                namespace,
                values: values::merge(defaults, values::from_yaml(&addon.values)),
                credentials,
            })
        })
        .collect()
}

/// platformctl's own values for `kind`.
fn defaults(
    kind: Kind,
    platform: &Platform,
    facts: &Facts,
    credentials: Option<&Credentials>,
) -> Value {
    // Control-plane components minikube runs on its node without reachable metrics endpoints.
    let minikube = platform.cluster.driver == Driver::Minikube || facts.minikube;
    match kind {
        // TLS ends at the port-forward or the ingress; there is no SSO to run Dex for.
        Kind::Argocd => json!({
            "configs": {"params": {"server.insecure": true}},
            "dex": {"enabled": false},
        }),
        // One controller is plenty on a laptop (the chart runs two with leader election).
        Kind::ArgoRollouts => json!({"controller": {"replicas": 1}}),
        Kind::KubePrometheusStack => {
            // Select every ServiceMonitor, PodMonitor, rule, probe and scrape config, not only
            // those labelled with this release; keep data for the longest SLO window.
            let mut v = json!({
                "prometheus": {"prometheusSpec": {
                    "serviceMonitorSelectorNilUsesHelmValues": false,
                    "podMonitorSelectorNilUsesHelmValues": false,
                    "ruleSelectorNilUsesHelmValues": false,
                    "probeSelectorNilUsesHelmValues": false,
                    "scrapeConfigSelectorNilUsesHelmValues": false,
                    "retention": format!("{}d", retention_days(platform)),
                }},
            });
            if !platform.alerting.routes.is_empty() {
                // Every AlertmanagerConfig in every namespace, each matched on its own
                // namespace (the operator's default strategy): the chart's defaults at 81.4.x,
                // written out because the rendered routing depends on them.
                v["alertmanager"] = json!({"alertmanagerSpec": {
                    "alertmanagerConfigSelector": {},
                    "alertmanagerConfigNamespaceSelector": {},
                }});
            }
            if let Some(c) = credentials {
                v["grafana"] = json!({"admin": {
                    "existingSecret": c.name,
                    "userKey": c.user_key,
                    "passwordKey": c.password_key,
                }});
            }
            if minikube {
                for component in [
                    "kubeEtcd",
                    "kubeControllerManager",
                    "kubeScheduler",
                    "kubeProxy",
                ] {
                    v[component] = json!({"enabled": false});
                }
            }
            v
        }
        Kind::ChaosMesh => {
            let runtime = facts
                .runtime()
                .unwrap_or(platform.cluster.container_runtime);
            let (runtime, socket) = chaos_daemon(runtime);
            json!({
                "chaosDaemon": {"runtime": runtime, "socketPath": socket},
                "controllerManager": {"replicaCount": 1},
            })
        }
        // minikube has no load balancer: serve on the node's ports 80 and 443, as its own
        // ingress addon does.
        Kind::IngressNginx if minikube => json!({"controller": {
            "hostPort": {"enabled": true},
            "service": {"type": "NodePort"},
        }}),
        Kind::IngressNginx => json!({}),
        // minikube's kubelets serve self-signed certificates.
        Kind::MetricsServer if minikube => json!({"args": ["--kubelet-insecure-tls"]}),
        Kind::MetricsServer => json!({}),
    }
}

/// Prometheus retention: at least 30 days, and the longest SLO window.
fn retention_days(platform: &Platform) -> u64 {
    platform
        .slos
        .iter()
        .filter_map(|s| days(&s.window))
        .fold(30, u64::max)
}

/// Whole days covering a duration such as `30d`, `4w` or `720h`.
fn days(duration: &str) -> Option<u64> {
    config::duration_seconds(duration).map(|s| s.div_ceil(86_400))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn platform(extra: &str) -> Platform {
        let source = format!(
            r#"apiVersion: platformctl.dev/v1alpha1
kind: Platform
metadata: {{name: demo}}
{extra}
gitops: {{local: {{}}}}
environments:
  - {{name: prod, namespace: prod, replicas: 2, monitoring: true}}
services:
  - name: api
    image: demo/api
    tags: {{prod: 1.0.0}}
    port: 8080
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}
      limits: {{cpu: 200m, memory: 128Mi}}
    strategy: {{canary: {{steps: [50, 100]}}}}
"#
        );
        config::parse(Path::new("platform.yaml"), &source).expect("valid platform")
    }

    const ALL_ADDONS: &str = r#"addons:
  argocd: {version: 9.4.17}
  argoRollouts: {version: 2.40.9}
  kubePrometheusStack: {version: 81.4.3}
  chaosMesh: {version: 2.8.2}
  ingressNginx: {version: 4.14.1}
  metricsServer: {version: 3.13.0}"#;

    fn release(releases: &[Release], kind: Kind) -> &Release {
        releases
            .iter()
            .find(|r| r.kind == kind)
            .expect("release planned")
    }

    #[test]
    fn one_release_per_enabled_addon_with_upstream_defaults() {
        let p = platform(&ALL_ADDONS.replace(
            "metricsServer: {version: 3.13.0}",
            "metricsServer: {version: 3.13.0, enabled: false}",
        ));
        let releases = plan(&p, &Facts::default());
        let got: Vec<(&str, &str, &str, &str, &str)> = releases
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.chart.as_str(),
                    r.version.as_str(),
                    r.namespace.as_str(),
                    r.repository.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "argocd",
                    "argo-cd",
                    "9.4.17",
                    "argocd",
                    "https://argoproj.github.io/argo-helm"
                ),
                (
                    "argo-rollouts",
                    "argo-rollouts",
                    "2.40.9",
                    "argo-rollouts",
                    "https://argoproj.github.io/argo-helm"
                ),
                (
                    "kube-prometheus-stack",
                    "kube-prometheus-stack",
                    "81.4.3",
                    "monitoring",
                    "https://prometheus-community.github.io/helm-charts"
                ),
                (
                    "chaos-mesh",
                    "chaos-mesh",
                    "2.8.2",
                    "chaos",
                    "https://charts.chaos-mesh.org"
                ),
                (
                    "ingress-nginx",
                    "ingress-nginx",
                    "4.14.1",
                    "ingress-nginx",
                    "https://kubernetes.github.io/ingress-nginx"
                ),
            ]
        );
    }

    #[test]
    fn absent_addons_are_not_planned() {
        let p = platform("addons:\n  metricsServer: {version: 3.13.0}");
        let releases = plan(&p, &Facts::default());
        assert_eq!(releases.len(), 1);
        assert_eq!(releases[0].kind, Kind::MetricsServer);
        assert_eq!(releases[0].namespace, "kube-system");
    }

    #[test]
    fn namespace_and_repository_overrides() {
        let p = platform(
            "addons:\n  argocd:\n    version: 9.4.17\n    namespace: gitops\n    repository: http://127.0.0.1:8879/charts\n  chaosMesh:\n    version: 2.8.2\n    repository: oci://registry.local/charts/\n",
        );
        let releases = plan(&p, &Facts::default());
        let argocd = release(&releases, Kind::Argocd);
        assert_eq!(argocd.namespace, "gitops");
        assert_eq!(
            argocd.chart_ref(),
            ("argo-cd".to_string(), Some("http://127.0.0.1:8879/charts"))
        );
        let chaos = release(&releases, Kind::ChaosMesh);
        assert_eq!(
            chaos.chart_ref(),
            ("oci://registry.local/charts/chaos-mesh".to_string(), None)
        );
    }

    #[test]
    fn alert_routes_select_alertmanagerconfigs_in_every_namespace() {
        let p = platform(ALL_ADDONS);
        let kps = release(&plan(&p, &Facts::default()), Kind::KubePrometheusStack).clone();
        assert!(
            kps.values.get("alertmanager").is_none(),
            "no routes, chart defaults"
        );
        let p = platform(&format!(
            "{ALL_ADDONS}\nalerting:\n  receivers: [{{name: a, slack: {{webhookSecret: s}}}}]\n  routes: [{{severity: page, receivers: [a]}}]"
        ));
        let kps = release(&plan(&p, &Facts::default()), Kind::KubePrometheusStack).clone();
        assert_eq!(
            kps.values["alertmanager"],
            json!({"alertmanagerSpec": {
                "alertmanagerConfigSelector": {},
                "alertmanagerConfigNamespaceSelector": {},
            }})
        );
    }

    #[test]
    fn kube_prometheus_stack_selects_everything_and_reads_grafana_admin_from_a_secret() {
        let p = platform(&format!("{ALL_ADDONS}\ncluster: {{driver: existing}}"));
        let releases = plan(&p, &Facts::default());
        let kps = release(&releases, Kind::KubePrometheusStack);
        let spec = &kps.values["prometheus"]["prometheusSpec"];
        for key in [
            "serviceMonitorSelectorNilUsesHelmValues",
            "podMonitorSelectorNilUsesHelmValues",
            "ruleSelectorNilUsesHelmValues",
            "probeSelectorNilUsesHelmValues",
            "scrapeConfigSelectorNilUsesHelmValues",
        ] {
            assert_eq!(spec[key], json!(false), "{key}");
        }
        assert_eq!(spec["retention"], json!("30d"));
        assert_eq!(
            kps.values["grafana"],
            json!({"admin": {
                "existingSecret": "grafana-admin",
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            }})
        );
        assert_eq!(
            kps.credentials,
            Some(Credentials {
                namespace: "monitoring".into(),
                name: "grafana-admin".into(),
                user_key: "admin-user".into(),
                user: "admin".into(),
                password_key: "admin-password".into(),
            })
        );
        // No password anywhere in the values.
        assert!(!kps.values.to_string().contains("prom-operator"));
        assert!(kps.values["grafana"].get("adminPassword").is_none());
        // An existing cluster that is not minikube keeps the control-plane scrapes.
        assert!(kps.values.get("kubeEtcd").is_none());
        // Only kube-prometheus-stack needs a generated login.
        assert!(
            releases
                .iter()
                .filter(|r| r.kind != Kind::KubePrometheusStack)
                .all(|r| r.credentials.is_none())
        );
    }

    #[test]
    fn minikube_disables_scrapes_of_unreachable_control_plane_components() {
        let check = |p: &Platform, facts: &Facts| {
            let releases = plan(p, facts);
            let v = &release(&releases, Kind::KubePrometheusStack).values;
            for c in [
                "kubeEtcd",
                "kubeControllerManager",
                "kubeScheduler",
                "kubeProxy",
            ] {
                assert_eq!(v[c], json!({"enabled": false}), "{c}");
            }
            assert_eq!(
                release(&releases, Kind::MetricsServer).values,
                json!({"args": ["--kubelet-insecure-tls"]})
            );
            assert_eq!(
                release(&releases, Kind::IngressNginx).values,
                json!({"controller": {"hostPort": {"enabled": true}, "service": {"type": "NodePort"}}})
            );
        };
        // By the configured driver…
        check(&platform(ALL_ADDONS), &Facts::default());
        // …or by the nodes' labels under `driver: existing`.
        let existing = platform(&format!("{ALL_ADDONS}\ncluster: {{driver: existing}}"));
        let facts = Facts {
            minikube: true,
            ..Facts::default()
        };
        check(&existing, &facts);
    }

    #[test]
    fn retention_covers_the_longest_slo_window() {
        let slos = |window: &str| {
            format!(
                "{ALL_ADDONS}\nslos:\n  - {{service: api, environment: prod, window: {window}, availability: {{objective: 99.9}}}}"
            )
        };
        for (window, retention) in [("7d", "30d"), ("30d", "30d"), ("6w", "42d"), ("45d", "45d")] {
            let releases = plan(&platform(&slos(window)), &Facts::default());
            assert_eq!(
                release(&releases, Kind::KubePrometheusStack).values["prometheus"]["prometheusSpec"]
                    ["retention"],
                json!(retention),
                "window {window}"
            );
        }
    }

    #[test]
    fn user_values_merge_over_the_defaults() {
        let p = platform(
            "addons:\n  kubePrometheusStack:\n    version: 81.4.3\n    values:\n      prometheus:\n        prometheusSpec:\n          retention: 90d\n          ruleSelectorNilUsesHelmValues: true\n      kubeEtcd: null\n      alertmanager: {enabled: false}\n",
        );
        let releases = plan(&p, &Facts::default());
        let v = &release(&releases, Kind::KubePrometheusStack).values;
        let spec = &v["prometheus"]["prometheusSpec"];
        assert_eq!(spec["retention"], json!("90d"));
        assert_eq!(spec["ruleSelectorNilUsesHelmValues"], json!(true));
        assert_eq!(
            spec["serviceMonitorSelectorNilUsesHelmValues"],
            json!(false)
        );
        assert_eq!(v["kubeEtcd"], Value::Null);
        assert_eq!(v["kubeScheduler"], json!({"enabled": false}));
        assert_eq!(v["alertmanager"], json!({"enabled": false}));
        assert_eq!(
            v["grafana"]["admin"]["existingSecret"],
            json!("grafana-admin")
        );
    }

    #[test]
    fn runtime_detection_from_node_info() {
        assert_eq!(
            runtime_of("containerd://1.7.27"),
            Some(ContainerRuntime::Containerd)
        );
        assert_eq!(
            runtime_of("docker://28.1.1"),
            Some(ContainerRuntime::Docker)
        );
        assert_eq!(runtime_of("cri-o://1.33.0"), Some(ContainerRuntime::CriO));
        assert_eq!(runtime_of("rkt://1.0"), None);
        assert_eq!(runtime_of("containerd"), None);
        let facts = |v: &[&str]| Facts {
            container_runtimes: v.iter().map(|s| s.to_string()).collect(),
            minikube: false,
        };
        assert_eq!(
            facts(&["docker://28.1.1", "docker://28.1.1"]).runtime(),
            Some(ContainerRuntime::Docker)
        );
        assert_eq!(
            facts(&["fake://1", "cri-o://1.33.0"]).runtime(),
            Some(ContainerRuntime::CriO)
        );
        assert_eq!(facts(&["docker://1", "containerd://2"]).runtime(), None);
        assert_eq!(facts(&[]).runtime(), None);
    }

    #[test]
    fn chaos_mesh_runtime_and_socket_come_from_the_nodes_then_the_config() {
        let p = platform(&format!(
            "{ALL_ADDONS}\ncluster: {{containerRuntime: cri-o}}"
        ));
        let chaos = |facts: &Facts| release(&plan(&p, facts), Kind::ChaosMesh).values.clone();
        assert_eq!(
            chaos(&Facts::default())["chaosDaemon"],
            json!({"runtime": "crio", "socketPath": "/var/run/crio/crio.sock"})
        );
        let docker = Facts {
            container_runtimes: vec!["docker://28.1.1".into(); 3],
            minikube: true,
        };
        assert_eq!(
            chaos(&docker)["chaosDaemon"],
            json!({"runtime": "docker", "socketPath": "/var/run/docker.sock"})
        );
        let containerd = Facts {
            container_runtimes: vec!["containerd://1.7.27".into()],
            minikube: false,
        };
        assert_eq!(
            chaos(&containerd),
            json!({
                "chaosDaemon": {"runtime": "containerd", "socketPath": "/run/containerd/containerd.sock"},
                "controllerManager": {"replicaCount": 1},
            })
        );
    }

    #[test]
    fn facts_from_nodes() {
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"metadata": {"name": "minikube", "labels": {"minikube.k8s.io/primary": "true"}},
             "status": {"nodeInfo": {
                "containerRuntimeVersion": "docker://28.1.1", "architecture": "amd64",
                "bootID": "", "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""}}},
            {"metadata": {"name": "kwok-node"}, "status": {}},
        ]))
        .expect("nodes");
        let facts = Facts::from_nodes(&nodes);
        assert!(facts.minikube);
        assert_eq!(facts.container_runtimes, ["docker://28.1.1"]);
        assert_eq!(facts.runtime(), Some(ContainerRuntime::Docker));
        assert_eq!(Facts::from_nodes(&[]), Facts::default());
    }

    #[test]
    fn argo_defaults_for_a_local_platform() {
        let releases = plan(&platform(ALL_ADDONS), &Facts::default());
        assert_eq!(
            release(&releases, Kind::Argocd).values,
            json!({"configs": {"params": {"server.insecure": true}}, "dex": {"enabled": false}})
        );
        assert_eq!(
            release(&releases, Kind::ArgoRollouts).values,
            json!({"controller": {"replicas": 1}})
        );
    }
}

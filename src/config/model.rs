//! The typed `platform.yaml`: every key a user may write, with serde defaults.
//!
//! This file only describes shape. Cross-field rules (naming, weights, objectives, references
//! between sections) live in `validate.rs`; locating a key in the source lives in `locate.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::alerting::*;

pub const API_VERSION: &str = "platformctl.dev/v1alpha1";
pub const KIND: &str = "Platform";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Platform {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub addons: Addons,
    pub gitops: Gitops,
    pub environments: Vec<Environment>,
    pub services: Vec<Service>,
    #[serde(default)]
    pub slos: Vec<Slo>,
    #[serde(default)]
    pub chaos: Vec<ChaosExperiment>,
    #[serde(default)]
    pub load: Vec<LoadTest>,
    #[serde(default)]
    pub alerting: Alerting,
    #[serde(default)]
    pub promotion: Promotion,
}

/// `promote`'s gates before a production environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Promotion {
    /// The least error budget (percent of the SLO window's) the target's SLOs must have left.
    #[serde(default = "defaults::min_error_budget")]
    pub min_error_budget: f64,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion {
            min_error_budget: defaults::min_error_budget(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    #[default]
    Minikube,
    Existing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRuntime {
    Docker,
    #[default]
    Containerd,
    CriO,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    #[serde(default)]
    pub driver: Driver,
    #[serde(default = "defaults::profile")]
    pub profile: String,
    #[serde(default = "defaults::nodes")]
    pub nodes: u32,
    #[serde(default = "defaults::cpus")]
    pub cpus: u32,
    /// MiB per node.
    #[serde(default = "defaults::memory")]
    pub memory: u32,
    #[serde(default = "defaults::kubernetes_version")]
    pub kubernetes_version: String,
    #[serde(default)]
    pub container_runtime: ContainerRuntime,
    /// kubeconfig context for the `existing` driver; the current context when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            driver: Driver::default(),
            profile: defaults::profile(),
            nodes: defaults::nodes(),
            cpus: defaults::cpus(),
            memory: defaults::memory(),
            kubernetes_version: defaults::kubernetes_version(),
            container_runtime: ContainerRuntime::default(),
            context: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Addons {
    #[serde(default)]
    pub argocd: Option<Addon>,
    #[serde(default)]
    pub argo_rollouts: Option<Addon>,
    #[serde(default)]
    pub kube_prometheus_stack: Option<Addon>,
    #[serde(default)]
    pub chaos_mesh: Option<Addon>,
    #[serde(default)]
    pub ingress_nginx: Option<Addon>,
    #[serde(default)]
    pub metrics_server: Option<Addon>,
}

/// Each addon's key under `addons` and the namespace it is installed in when platform.yaml names
/// none; `addons::Kind::namespace` and the rendered tree read it here.
pub const ADDON_NAMESPACES: [(&str, &str); 6] = [
    ("argocd", "argocd"),
    ("argoRollouts", "argo-rollouts"),
    ("kubePrometheusStack", "monitoring"),
    ("chaosMesh", "chaos"),
    ("ingressNginx", "ingress-nginx"),
    ("metricsServer", "kube-system"),
];

impl Addons {
    /// Each enabled addon's key and namespace (its own, else the default).
    pub fn namespaces(&self) -> Vec<(&'static str, &str)> {
        let all = [
            &self.argocd,
            &self.argo_rollouts,
            &self.kube_prometheus_stack,
            &self.chaos_mesh,
            &self.ingress_nginx,
            &self.metrics_server,
        ];
        all.into_iter()
            .zip(ADDON_NAMESPACES)
            .filter_map(|(addon, (key, default))| {
                let addon = addon.as_ref().filter(|a| a.enabled)?;
                Some((key, addon.namespace.as_deref().unwrap_or(default)))
            })
            .collect()
    }

    /// Every addon platform.yaml names, enabled or not.
    pub fn each_mut(&mut self) -> impl Iterator<Item = &mut Addon> {
        [
            &mut self.argocd,
            &mut self.argo_rollouts,
            &mut self.kube_prometheus_stack,
            &mut self.chaos_mesh,
            &mut self.ingress_nginx,
            &mut self.metrics_server,
        ]
        .into_iter()
        .flatten()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Addon {
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Exact chart version (no ranges): the pin.
    pub version: String,
    /// Overrides the addon's default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Overrides the upstream chart repository (a mirror, or an air-gapped copy): an
    /// `https://`/`http://` Helm repository or an `oci://` registry path holding the chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Helm values merged over platformctl's own for this chart.
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub values: serde_yaml::Mapping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gitops {
    /// An in-cluster git server run by `up`: no account needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalGit>,
    /// The user's own repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteGit>,
    /// Directory of the rendered tree inside the repository.
    #[serde(default = "defaults::dot")]
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalGit {
    #[serde(default = "defaults::git_namespace")]
    pub namespace: String,
    #[serde(default = "defaults::branch")]
    pub branch: String,
}

impl LocalGit {
    /// Where Argo CD reads the in-cluster repository of the platform `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "git://gitops.{}.svc.cluster.local/{name}.git",
            self.namespace
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteGit {
    pub url: String,
    #[serde(default = "defaults::branch")]
    pub branch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    pub namespace: String,
    pub replicas: u32,
    /// Production environments get stricter lint policy (replicas >= 2).
    #[serde(default)]
    pub production: bool,
    /// ServiceMonitors, canary analysis, SLO rules and dashboards.
    #[serde(default)]
    pub monitoring: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<Hpa>,
    /// Argo CD automated sync with self-heal and prune.
    #[serde(default = "defaults::yes")]
    pub auto_sync: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// DNS suffix: each service is served at `<service>.<domain>`.
    pub domain: String,
    #[serde(default = "defaults::ingress_class")]
    pub class_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hpa {
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(default = "defaults::cpu_target", rename = "targetCPUUtilization")]
    pub target_cpu_utilization: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub name: String,
    /// Image repository without tag.
    pub image: String,
    /// Tag per environment name.
    pub tags: BTreeMap<String, String>,
    pub port: u16,
    pub resources: Resources,
    #[serde(default)]
    pub probes: Probes,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Configuration that ships with a version (by tag): merged over `config` wherever that tag
    /// runs, so that promoting the tag promotes its configuration too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version_config: BTreeMap<String, BTreeMap<String, String>>,
    /// Names of Secrets mounted as environment; values are never in this file.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub metrics: Metrics,
    pub strategy: Strategy,
}

/// A tag as platform.yaml gives it, split into tag and digest: `1.2.0` (a tag), `1.2.0@sha256:…`
/// (a tag pinned by digest), `sha256:…` (a digest alone).
pub fn split_tag(v: &str) -> (Option<&str>, Option<&str>) {
    match v.split_once('@') {
        Some((tag, digest)) => (Some(tag), Some(digest)),
        None if v.contains(':') => (None, Some(v)),
        None => (Some(v), None),
    }
}

impl Service {
    /// The configuration of `tag` (a tag, `tag@digest` or a digest) from `versionConfig`.
    pub fn version_config(&self, tag: &str) -> Option<&BTreeMap<String, String>> {
        let (t, _) = split_tag(tag);
        self.version_config.get(t?)
    }

    /// The image reference of `tag`: `repo:tag`, `repo:tag@digest` or `repo@digest`.
    pub fn image_ref(&self, tag: &str) -> String {
        match split_tag(tag) {
            (Some(t), Some(d)) => format!("{}:{t}@{d}", self.image),
            (None, Some(d)) => format!("{}@{d}", self.image),
            (Some(t), None) => format!("{}:{t}", self.image),
            (None, None) => self.image.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceList {
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probes {
    #[serde(default = "defaults::readiness")]
    pub readiness: Probe,
    #[serde(default = "defaults::liveness")]
    pub liveness: Probe,
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            readiness: defaults::readiness(),
            liveness: defaults::liveness(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub path: String,
    #[serde(default)]
    pub initial_delay_seconds: u32,
    #[serde(default = "defaults::period")]
    pub period_seconds: u32,
    #[serde(default = "defaults::failure_threshold")]
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    #[serde(default = "defaults::metrics_path")]
    pub path: String,
    /// Upper bounds (seconds) of `http_request_duration_seconds`; SLO and analysis latency
    /// thresholds must be one of them.
    #[serde(default = "defaults::buckets")]
    pub buckets: Vec<f64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            path: defaults::metrics_path(),
            buckets: defaults::buckets(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// Traffic weights in percent, strictly increasing.
    pub steps: Vec<u32>,
    /// Pause between weights where no analysis runs (environments without monitoring).
    #[serde(default = "defaults::pause")]
    pub pause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlueGreen {
    /// false: a person (or `rollout promote`) approves each release.
    #[serde(default)]
    pub auto_promotion: bool,
    #[serde(default = "defaults::scale_down_delay")]
    pub scale_down_delay_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Analysis {
    /// Minimum percentage of requests without error.
    pub success_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyTarget>,
    #[serde(default = "defaults::interval")]
    pub interval: String,
    #[serde(default = "defaults::count")]
    pub count: u32,
    #[serde(default = "defaults::failure_limit")]
    pub failure_limit: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyTarget {
    pub percentile: f64,
    /// Seconds; one of the service's histogram buckets.
    pub threshold: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slo {
    pub service: String,
    pub environment: String,
    #[serde(default = "defaults::slo_window")]
    pub window: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyTarget>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Availability {
    pub objective: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosAction {
    PodKill,
    PodFailure,
    ContainerKill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosMode {
    One,
    All,
    Fixed,
    FixedPercent,
    RandomMaxPercent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChaosExperiment {
    pub name: String,
    pub service: String,
    pub environment: String,
    pub action: ChaosAction,
    #[serde(default = "defaults::chaos_mode")]
    pub mode: ChaosMode,
    /// Count or percentage for the `fixed*` and `random-max-percent` modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Required for `pod-failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Required for `container-kill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Seconds a killed pod gets to stop (`pod-kill`; Chaos Mesh's default is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u32>,
    /// The share (percent) of the SLO window's error budget the experiment may burn and still
    /// pass, when the availability during it falls below the objective.
    #[serde(default = "defaults::max_budget_burn")]
    pub max_budget_burn: f64,
    /// Longest time from the kill until every replica is Ready again and the probe answers.
    #[serde(default = "defaults::recovery_timeout")]
    pub recovery_timeout: String,
    /// The probe traffic sent through the whole run, requests per second.
    #[serde(default = "defaults::probe_rate")]
    pub probe_rate: u32,
    /// Repeated chaos: a cron schedule (`0 3 * * 1-5`) or `@every 30m`; the rendered object is
    /// then a Chaos Mesh `Schedule` of the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadTest {
    pub name: String,
    pub service: String,
    pub environment: String,
    #[serde(default = "defaults::load_path")]
    pub path: String,
    /// Several paths, requested in turn (instead of `path`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Requests per second (open model: arrivals do not wait for responses).
    pub rate: u32,
    pub duration: String,
    #[serde(default)]
    pub thresholds: LoadThresholds,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadThresholds {
    /// Highest acceptable percentage of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyTarget>,
    /// Further k6-style thresholds: `p99<500ms`, `errors<0.5%`, `rate>=0.99*target`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expressions: Vec<String>,
}

impl LoadTest {
    /// The paths requested in turn.
    pub fn paths(&self) -> Vec<&str> {
        if self.paths.is_empty() {
            vec![self.path.as_str()]
        } else {
            self.paths.iter().map(String::as_str).collect()
        }
    }
}

mod defaults {
    use super::Probe;
    pub fn yes() -> bool {
        true
    }
    pub fn profile() -> String {
        "platformctl".into()
    }
    pub fn nodes() -> u32 {
        1
    }
    pub fn cpus() -> u32 {
        2
    }
    pub fn memory() -> u32 {
        4096
    }
    pub fn kubernetes_version() -> String {
        "v1.34.0".into()
    }
    pub fn dot() -> String {
        ".".into()
    }
    pub fn git_namespace() -> String {
        "platformctl".into()
    }
    pub fn branch() -> String {
        "main".into()
    }
    pub fn ingress_class() -> String {
        "nginx".into()
    }
    pub fn cpu_target() -> u32 {
        70
    }
    pub fn readiness() -> Probe {
        Probe {
            path: "/readyz".into(),
            initial_delay_seconds: 0,
            period_seconds: period(),
            failure_threshold: failure_threshold(),
        }
    }
    pub fn liveness() -> Probe {
        Probe {
            path: "/healthz".into(),
            initial_delay_seconds: 0,
            period_seconds: period(),
            failure_threshold: failure_threshold(),
        }
    }
    pub fn period() -> u32 {
        5
    }
    pub fn failure_threshold() -> u32 {
        3
    }
    pub fn metrics_path() -> String {
        "/metrics".into()
    }
    pub fn buckets() -> Vec<f64> {
        vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]
    }
    pub fn pause() -> String {
        "30s".into()
    }
    pub fn scale_down_delay() -> u32 {
        30
    }
    pub fn interval() -> String {
        "30s".into()
    }
    pub fn count() -> u32 {
        4
    }
    pub fn failure_limit() -> u32 {
        1
    }
    pub fn slo_window() -> String {
        "30d".into()
    }
    pub fn chaos_mode() -> super::ChaosMode {
        super::ChaosMode::One
    }
    pub fn min_error_budget() -> f64 {
        25.0
    }
    pub fn max_budget_burn() -> f64 {
        1.0
    }
    pub fn recovery_timeout() -> String {
        "2m".into()
    }
    pub fn probe_rate() -> u32 {
        20
    }
    pub fn load_path() -> String {
        "/".into()
    }
}

//! Cross-field rules over a deserialised [`Platform`]: Kubernetes naming, references between
//! sections, canary weights, objectives, histogram buckets, names that collide once rendered.
//!
//! Every rule reports a key path (the syntax of `serde_path_to_error`) and a lowercase message;
//! `load.rs` turns paths into lines. Rules never stop at the first problem.

mod alerting;
mod collisions;
mod operations;
mod services;
mod values;

use std::collections::BTreeSet;

use super::model::*;
pub use alerting::UNROUTED_RECEIVER;
use values::*;
pub use values::{chart_repository, duration_seconds, is_semver};

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

#[derive(Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    /// `value` is the first of its kind in `seen`; a repeat is a problem at `path`.
    pub(super) fn unique<'a>(
        &mut self,
        seen: &mut BTreeSet<&'a str>,
        path: String,
        value: &'a str,
        message: impl FnOnce() -> String,
    ) {
        if !seen.insert(value) {
            self.add(path, message());
        }
    }

    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Longest service name: derived names (`-canary`, `-preview`, ReplicaSet and AnalysisRun
/// names Argo Rollouts generates) must stay within Kubernetes' 63 characters.
const MAX_SERVICE_NAME: usize = 40;

pub fn validate(p: &Platform) -> Vec<Problem> {
    let mut out = Problems::default();
    if p.api_version != API_VERSION {
        out.add(
            "apiVersion",
            format!("must be `{API_VERSION}`, found `{}`", p.api_version),
        );
    }
    if p.kind != KIND {
        out.add("kind", format!("must be `{KIND}`, found `{}`", p.kind));
    }
    dns_label(&mut out, "metadata.name", &p.metadata.name, 63);
    cluster(&mut out, &p.cluster);
    addons(&mut out, &p.addons);
    gitops(&mut out, &p.gitops);
    environments(&mut out, &p.environments);
    let budget = p.promotion.min_error_budget;
    if !(0.0..=100.0).contains(&budget) || budget.is_nan() {
        out.add(
            "promotion.minErrorBudget",
            format!("must be a percentage from 0 to 100, found {budget}"),
        );
    }
    let envs: Vec<&Environment> = p.environments.iter().collect();
    let mut names = BTreeSet::new();
    if p.services.is_empty() {
        out.add("services", "at least one service is required");
    }
    for (i, s) in p.services.iter().enumerate() {
        let at = format!("services[{i}]");
        out.unique(&mut names, format!("{at}.name"), s.name.as_str(), || {
            format!("duplicate service name `{}`", s.name)
        });
        services::service(&mut out, &at, s, &envs);
    }
    operations::slos(&mut out, p);
    operations::chaos(&mut out, p);
    operations::load(&mut out, p);
    alerting::check(&mut out, p);
    collisions::check(&mut out, p);
    out.0
}

fn cluster(out: &mut Problems, c: &Cluster) {
    dns_label(out, "cluster.profile", &c.profile, 63);
    if c.nodes == 0 {
        out.add("cluster.nodes", "must be at least 1");
    }
    if c.cpus < 2 {
        out.add(
            "cluster.cpus",
            format!("minikube needs at least 2 CPUs per node, found {}", c.cpus),
        );
    }
    if c.memory < 1800 {
        out.add(
            "cluster.memory",
            format!(
                "minikube needs at least 1800 MiB per node, found {}",
                c.memory
            ),
        );
    }
    let v = c.kubernetes_version.strip_prefix('v').unwrap_or("");
    if !is_semver(v) {
        out.add(
            "cluster.kubernetesVersion",
            format!("must look like `v1.34.0`, found `{}`", c.kubernetes_version),
        );
    }
    if c.context.is_some() && c.driver != Driver::Existing {
        out.add("cluster.context", "only applies to `driver: existing`");
    }
}

fn addons(out: &mut Problems, a: &Addons) {
    let all = [
        ("argocd", &a.argocd),
        ("argoRollouts", &a.argo_rollouts),
        ("kubePrometheusStack", &a.kube_prometheus_stack),
        ("chaosMesh", &a.chaos_mesh),
        ("ingressNginx", &a.ingress_nginx),
        ("metricsServer", &a.metrics_server),
    ];
    for (key, addon) in all {
        let Some(addon) = addon else { continue };
        if !is_semver(&addon.version) {
            out.add(
                format!("addons.{key}.version"),
                format!(
                    "must be an exact chart version such as `1.2.3`, found `{}`",
                    addon.version
                ),
            );
        }
        if let Some(ns) = &addon.namespace {
            dns_label(out, &format!("addons.{key}.namespace"), ns, 63);
        }
        if let Some(repo) = &addon.repository
            && !chart_repository(repo)
        {
            out.add(
                format!("addons.{key}.repository"),
                format!(
                    "must be an https://, http:// or oci:// chart repository URL, found `{repo}`"
                ),
            );
        }
        helm_values(out, &format!("addons.{key}.values"), &addon.values);
    }
    if let Some(kps) = &a.kube_prometheus_stack
        && let Some(serde_yaml::Value::Mapping(grafana)) = kps.values.get("grafana")
    {
        // The admin login comes from a Secret `up` generates: a password here would be a
        // secret in platform.yaml, and dropping `admin.existingSecret` brings back the chart's
        // well-known default.
        for reserved in ["adminPassword", "admin"] {
            if grafana.contains_key(reserved) {
                out.add(
                    format!("addons.kubePrometheusStack.values.grafana.{reserved}"),
                    "is managed by platformctl: `up` generates the Grafana admin password into a Secret",
                );
            }
        }
    }
}

/// Helm values become JSON: keys must be scalars and numbers finite.
fn helm_values(out: &mut Problems, at: &str, values: &serde_yaml::Mapping) {
    for (k, v) in values {
        let key = match k {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => {
                out.add(
                    at,
                    "a Helm values key must be a string, a number or a boolean, not a list or a mapping",
                );
                continue;
            }
        };
        helm_value(out, &format!("{at}.{key}"), v);
    }
}

fn helm_value(out: &mut Problems, at: &str, v: &serde_yaml::Value) {
    match v {
        serde_yaml::Value::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => {
            out.add(
                at,
                format!("`{n}` cannot be passed to Helm: use a finite number"),
            );
        }
        serde_yaml::Value::Mapping(m) => helm_values(out, at, m),
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                helm_value(out, &format!("{at}[{i}]"), item);
            }
        }
        serde_yaml::Value::Tagged(t) => helm_value(out, at, &t.value),
        _ => {}
    }
}

fn gitops(out: &mut Problems, g: &Gitops) {
    match (&g.local, &g.remote) {
        (Some(_), Some(_)) => out.add("gitops", "set either `local` or `remote`, not both"),
        (None, None) => out.add(
            "gitops",
            "set `local: {}` (in-cluster git server) or `remote: {url: ...}`",
        ),
        (Some(l), None) => {
            dns_label(out, "gitops.local.namespace", &l.namespace, 63);
            branch(out, "gitops.local.branch", &l.branch);
        }
        (None, Some(r)) => {
            let ok = ["https://", "http://", "ssh://", "git://", "git@", "file://"]
                .iter()
                .any(|s| r.url.starts_with(s))
                && !r.url.contains(char::is_whitespace);
            if !ok {
                out.add(
                    "gitops.remote.url",
                    format!(
                        "must be an https://, http://, ssh://, git://, git@ or file:// repository URL, found `{}`",
                        r.url
                    ),
                );
            }
            branch(out, "gitops.remote.branch", &r.branch);
        }
    }
    if g.path.starts_with('/') || g.path.split('/').any(|c| c == "..") {
        out.add(
            "gitops.path",
            format!(
                "must be a relative path inside the repository, found `{}`",
                g.path
            ),
        );
    }
}

fn environments(out: &mut Problems, envs: &[Environment]) {
    if envs.is_empty() {
        out.add("environments", "at least one environment is required");
    }
    let (mut names, mut namespaces) = (BTreeSet::new(), BTreeSet::new());
    for (i, e) in envs.iter().enumerate() {
        let at = format!("environments[{i}]");
        dns_label(out, &format!("{at}.name"), &e.name, 63);
        dns_label(out, &format!("{at}.namespace"), &e.namespace, 63);
        out.unique(&mut names, format!("{at}.name"), e.name.as_str(), || {
            format!("duplicate environment name `{}`", e.name)
        });
        out.unique(
            &mut namespaces,
            format!("{at}.namespace"),
            e.namespace.as_str(),
            || {
                format!(
                    "namespace `{}` is already used by another environment",
                    e.namespace
                )
            },
        );
        if e.replicas == 0 {
            out.add(format!("{at}.replicas"), "must be at least 1");
        }
        int32(out, &format!("{at}.replicas"), e.replicas);
        if let Some(h) = &e.hpa {
            int32(out, &format!("{at}.hpa.minReplicas"), h.min_replicas);
            int32(out, &format!("{at}.hpa.maxReplicas"), h.max_replicas);
            if h.min_replicas == 0 {
                out.add(format!("{at}.hpa.minReplicas"), "must be at least 1");
            }
            if h.max_replicas < h.min_replicas {
                out.add(
                    format!("{at}.hpa.maxReplicas"),
                    format!(
                        "must be at least minReplicas ({}), found {}",
                        h.min_replicas, h.max_replicas
                    ),
                );
            }
            if !(1..=100).contains(&h.target_cpu_utilization) {
                out.add(
                    format!("{at}.hpa.targetCPUUtilization"),
                    "must be a percentage between 1 and 100",
                );
            }
        }
        if let Some(ing) = &e.ingress {
            dns_subdomain(out, &format!("{at}.ingress.domain"), &ing.domain);
            dns_subdomain(out, &format!("{at}.ingress.className"), &ing.class_name);
        }
    }
}

pub(super) fn find_service<'a>(
    out: &mut Problems,
    at: &str,
    p: &'a Platform,
    name: &str,
) -> Option<&'a Service> {
    let found = p.services.iter().find(|s| s.name == name);
    if found.is_none() {
        out.add(at, format!("unknown service `{name}`"));
    }
    found
}

pub(super) fn find_env<'a>(
    out: &mut Problems,
    at: &str,
    p: &'a Platform,
    name: &str,
) -> Option<&'a Environment> {
    let found = p.environments.iter().find(|e| e.name == name);
    if found.is_none() {
        out.add(at, format!("unknown environment `{name}`"));
    }
    found
}

#[cfg(test)]
mod tests {
    fn problems(addons: &str) -> Vec<(String, String)> {
        let source = format!(
            "apiVersion: platformctl.dev/v1alpha1\nkind: Platform\nmetadata: {{name: demo}}\n{addons}\ngitops: {{local: {{}}}}\nenvironments: [{{name: dev, namespace: dev, replicas: 1}}]\nservices:\n  - name: api\n    image: demo/api\n    tags: {{dev: 1.0.0}}\n    port: 8080\n    resources: {{requests: {{cpu: 100m, memory: 64Mi}}, limits: {{cpu: 200m, memory: 128Mi}}}}\n    strategy: {{canary: {{steps: [100]}}}}\n"
        );
        match crate::config::parse(std::path::Path::new("platform.yaml"), &source) {
            Ok(_) => Vec::new(),
            Err(crate::config::Error::Invalid(ps)) => {
                ps.into_iter().map(|p| (p.path, p.message)).collect()
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn addon_repository_must_be_a_chart_repository_url() {
        for ok in [
            "https://charts.example.com/argo",
            "http://127.0.0.1:8879",
            "oci://ghcr.io/prometheus-community/charts",
        ] {
            assert_eq!(
                problems(&format!(
                    "addons:\n  argocd: {{version: 9.4.17, repository: \"{ok}\"}}"
                )),
                [],
                "{ok}"
            );
        }
        for bad in ["charts.example.com", "https://", "ftp://x", "https://a b"] {
            let found = problems(&format!(
                "addons:\n  argoRollouts: {{version: 2.40.9, repository: \"{bad}\"}}"
            ));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert_eq!(found[0].0, "addons.argoRollouts.repository");
            assert!(found[0].1.contains("oci://"), "{}", found[0].1);
        }
    }

    #[test]
    fn addon_values_must_fit_json_and_leave_grafana_admin_alone() {
        assert_eq!(
            problems(
                "addons:\n  chaosMesh:\n    version: 2.8.2\n    values:\n      chaosDaemon: {runtime: docker}\n      list: [1, .inf]\n      ? [a]\n      : x\n"
            ),
            [
                (
                    "addons.chaosMesh.values.list[1]".to_string(),
                    "`.inf` cannot be passed to Helm: use a finite number".to_string()
                ),
                (
                    "addons.chaosMesh.values".to_string(),
                    "a Helm values key must be a string, a number or a boolean, not a list or a mapping"
                        .to_string()
                ),
            ]
        );
        let found = problems(
            "addons:\n  kubePrometheusStack:\n    version: 81.4.3\n    values:\n      grafana:\n        adminPassword: hunter2\n        admin: {existingSecret: \"\"}\n        sidecar: {}\n",
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "addons.kubePrometheusStack.values.grafana.adminPassword",
                "addons.kubePrometheusStack.values.grafana.admin"
            ]
        );
        assert!(found[0].1.contains("generates the Grafana admin password"));
    }
}

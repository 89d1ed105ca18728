//! Cross-field rules over a deserialised [`Platform`]: Kubernetes naming, references between
//! sections, canary weights, objectives, histogram buckets.
//!
//! Every rule reports a key path (the syntax of `serde_path_to_error`) and a lowercase message;
//! `load.rs` turns paths into lines. Rules never stop at the first problem.

use std::collections::BTreeSet;

use super::model::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
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
    let envs: Vec<&Environment> = p.environments.iter().collect();
    let mut names = BTreeSet::new();
    if p.services.is_empty() {
        out.add("services", "at least one service is required");
    }
    for (i, s) in p.services.iter().enumerate() {
        let at = format!("services[{i}]");
        if !names.insert(s.name.as_str()) {
            out.add(
                format!("{at}.name"),
                format!("duplicate service name `{}`", s.name),
            );
        }
        service(&mut out, &at, s, &envs);
    }
    slos(&mut out, p);
    chaos(&mut out, p);
    load(&mut out, p);
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

fn branch(out: &mut Problems, at: &str, b: &str) {
    let bad = b.is_empty()
        || b.contains(|c: char| c.is_whitespace() || "~^:?*[\\".contains(c))
        || b.contains("..")
        || b.starts_with('/')
        || b.ends_with('/');
    if bad {
        out.add(at, format!("`{b}` is not a valid git branch name"));
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
        if !names.insert(e.name.as_str()) {
            out.add(
                format!("{at}.name"),
                format!("duplicate environment name `{}`", e.name),
            );
        }
        if !namespaces.insert(e.namespace.as_str()) {
            out.add(
                format!("{at}.namespace"),
                format!(
                    "namespace `{}` is already used by another environment",
                    e.namespace
                ),
            );
        }
        if e.replicas == 0 {
            out.add(format!("{at}.replicas"), "must be at least 1");
        }
        if let Some(h) = &e.hpa {
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

fn service(out: &mut Problems, at: &str, s: &Service, envs: &[&Environment]) {
    dns_label(out, &format!("{at}.name"), &s.name, MAX_SERVICE_NAME);
    if s.name.starts_with(|c: char| c.is_ascii_digit()) {
        out.add(
            format!("{at}.name"),
            format!("`{}` must start with a letter", s.name),
        );
    }
    image(out, &format!("{at}.image"), &s.image);
    for e in envs {
        if !s.tags.contains_key(&e.name) {
            out.add(
                format!("{at}.tags"),
                format!("missing a tag for environment `{}`", e.name),
            );
        }
    }
    for (env, tag) in &s.tags {
        let path = format!("{at}.tags.{env}");
        if !envs.iter().any(|e| &e.name == env) {
            out.add(&path, format!("unknown environment `{env}`"));
        }
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            out.add(&path, format!("`{tag}` is not a valid image tag"));
        } else if tag == "latest" {
            out.add(
                &path,
                "`latest` is not allowed: pin a version so that promotion is reproducible",
            );
        }
    }
    if s.port == 0 {
        out.add(format!("{at}.port"), "must be between 1 and 65535");
    }
    let r = &s.resources;
    for (kind, list) in [("requests", &r.requests), ("limits", &r.limits)] {
        cpu(out, &format!("{at}.resources.{kind}.cpu"), &list.cpu);
        memory(out, &format!("{at}.resources.{kind}.memory"), &list.memory);
    }
    if let (Some(req), Some(lim)) = (parse_cpu(&r.requests.cpu), parse_cpu(&r.limits.cpu))
        && req > lim
    {
        out.add(
            format!("{at}.resources.requests.cpu"),
            format!("{} exceeds the limit {}", r.requests.cpu, r.limits.cpu),
        );
    }
    if let (Some(req), Some(lim)) = (
        parse_memory(&r.requests.memory),
        parse_memory(&r.limits.memory),
    ) && req > lim
    {
        out.add(
            format!("{at}.resources.requests.memory"),
            format!(
                "{} exceeds the limit {}",
                r.requests.memory, r.limits.memory
            ),
        );
    }
    for (kind, probe) in [
        ("readiness", &s.probes.readiness),
        ("liveness", &s.probes.liveness),
    ] {
        http_path(out, &format!("{at}.probes.{kind}.path"), &probe.path);
        if probe.period_seconds == 0 {
            out.add(
                format!("{at}.probes.{kind}.periodSeconds"),
                "must be at least 1",
            );
        }
        if probe.failure_threshold == 0 {
            out.add(
                format!("{at}.probes.{kind}.failureThreshold"),
                "must be at least 1",
            );
        }
    }
    for key in s.config.keys() {
        let ok = !key.is_empty()
            && key.len() <= 253
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !ok {
            out.add(
                format!("{at}.config.{key}"),
                format!("`{key}` is not a valid ConfigMap key"),
            );
        } else if key.starts_with("PLATFORM_") {
            out.add(
                format!("{at}.config.{key}"),
                "keys starting with PLATFORM_ are set by platformctl",
            );
        }
    }
    for (i, name) in s.secrets.iter().enumerate() {
        dns_subdomain(out, &format!("{at}.secrets[{i}]"), name);
    }
    http_path(out, &format!("{at}.metrics.path"), &s.metrics.path);
    let b = &s.metrics.buckets;
    if b.is_empty() {
        out.add(
            format!("{at}.metrics.buckets"),
            "at least one bucket is required",
        );
    }
    for (i, w) in b.windows(2).enumerate() {
        if w[1] <= w[0] {
            out.add(
                format!("{at}.metrics.buckets[{}]", i + 1),
                format!("buckets must increase: {} after {}", w[1], w[0]),
            );
        }
    }
    if let Some(first) = b.first()
        && *first <= 0.0
    {
        out.add(
            format!("{at}.metrics.buckets[0]"),
            "buckets must be positive",
        );
    }
    strategy(out, &format!("{at}.strategy"), s);
}

fn strategy(out: &mut Problems, at: &str, s: &Service) {
    match (&s.strategy.canary, &s.strategy.blue_green) {
        (Some(_), Some(_)) => out.add(at, "set either `canary` or `blueGreen`, not both"),
        (None, None) => out.add(at, "set `canary` or `blueGreen`"),
        (Some(c), None) => {
            let at = format!("{at}.canary");
            if c.steps.is_empty() {
                out.add(format!("{at}.steps"), "at least one weight is required");
            }
            for (i, w) in c.steps.iter().enumerate() {
                if !(1..=100).contains(w) {
                    out.add(
                        format!("{at}.steps[{i}]"),
                        format!("weight must be between 1 and 100, found {w}"),
                    );
                }
                if i > 0 && *w <= c.steps[i - 1] {
                    out.add(
                        format!("{at}.steps[{i}]"),
                        format!("canary weights must increase: {w} after {}", c.steps[i - 1]),
                    );
                }
            }
            duration(out, &format!("{at}.pause"), &c.pause);
            if let Some(a) = &c.analysis {
                analysis(out, &format!("{at}.analysis"), a, s);
            }
        }
        (None, Some(bg)) => {
            let at = format!("{at}.blueGreen");
            if bg.preview_replicas == Some(0) {
                out.add(format!("{at}.previewReplicas"), "must be at least 1");
            }
            if let Some(a) = &bg.analysis {
                analysis(out, &format!("{at}.analysis"), a, s);
            }
        }
    }
}

fn analysis(out: &mut Problems, at: &str, a: &Analysis, s: &Service) {
    if !(a.success_rate > 0.0 && a.success_rate <= 100.0) {
        out.add(
            format!("{at}.successRate"),
            format!("must be a percentage in (0, 100], found {}", a.success_rate),
        );
    }
    if let Some(l) = &a.latency {
        latency(out, &format!("{at}.latency"), l, s);
    }
    duration(out, &format!("{at}.interval"), &a.interval);
    if a.count == 0 {
        out.add(format!("{at}.count"), "must be at least 1");
    }
}

fn latency(out: &mut Problems, at: &str, l: &LatencyTarget, s: &Service) {
    if !(l.percentile > 0.0 && l.percentile < 100.0) {
        out.add(
            format!("{at}.percentile"),
            format!(
                "must be between 0 and 100 (exclusive), found {}",
                l.percentile
            ),
        );
    }
    if !s
        .metrics
        .buckets
        .iter()
        .any(|b| (b - l.threshold).abs() < 1e-9)
    {
        let list: Vec<String> = s.metrics.buckets.iter().map(|b| b.to_string()).collect();
        out.add(
            format!("{at}.threshold"),
            format!(
                "{}s is not a histogram bucket of service `{}` (buckets: {}); a latency SLI can only count requests under a bucket boundary",
                l.threshold,
                s.name,
                list.join(", ")
            ),
        );
    }
}

fn slos(out: &mut Problems, p: &Platform) {
    let mut seen = BTreeSet::new();
    for (i, slo) in p.slos.iter().enumerate() {
        let at = format!("slos[{i}]");
        let svc = find_service(out, &format!("{at}.service"), p, &slo.service);
        if let Some(env) = find_env(out, &format!("{at}.environment"), p, &slo.environment)
            && !env.monitoring
        {
            out.add(
                format!("{at}.environment"),
                format!(
                    "environment `{}` has no monitoring: set `monitoring: true` on it",
                    env.name
                ),
            );
        }
        if !seen.insert((&slo.service, &slo.environment)) {
            out.add(
                at.clone(),
                format!(
                    "a second SLO for `{}` in `{}`",
                    slo.service, slo.environment
                ),
            );
        }
        if !is_duration(&slo.window) || !slo.window.ends_with(['d', 'w']) {
            out.add(
                format!("{at}.window"),
                format!(
                    "must be days or weeks such as `30d` or `4w`, found `{}`",
                    slo.window
                ),
            );
        }
        if slo.availability.is_none() && slo.latency.is_none() {
            out.add(at.clone(), "set `availability`, `latency`, or both");
        }
        if let Some(a) = &slo.availability
            && !(a.objective > 0.0 && a.objective < 100.0)
        {
            out.add(
                format!("{at}.availability.objective"),
                format!(
                    "must be a percentage between 0 and 100 (exclusive), found {}",
                    a.objective
                ),
            );
        }
        if let (Some(l), Some(s)) = (&slo.latency, svc) {
            latency(out, &format!("{at}.latency"), l, s);
        }
    }
}

fn chaos(out: &mut Problems, p: &Platform) {
    let mut names = BTreeSet::new();
    for (i, c) in p.chaos.iter().enumerate() {
        let at = format!("chaos[{i}]");
        dns_label(out, &format!("{at}.name"), &c.name, 57);
        if !names.insert(c.name.as_str()) {
            out.add(
                format!("{at}.name"),
                format!("duplicate experiment name `{}`", c.name),
            );
        }
        find_service(out, &format!("{at}.service"), p, &c.service);
        find_env(out, &format!("{at}.environment"), p, &c.environment);
        let needs_value = matches!(
            c.mode,
            ChaosMode::Fixed | ChaosMode::FixedPercent | ChaosMode::RandomMaxPercent
        );
        match (&c.value, needs_value) {
            (None, true) => out.add(
                format!("{at}.value"),
                format!("mode `{}` needs a value", mode_name(c.mode)),
            ),
            (Some(_), false) => out.add(
                format!("{at}.value"),
                format!("mode `{}` takes no value", mode_name(c.mode)),
            ),
            (Some(v), true) => match v.parse::<u32>() {
                Ok(n) if c.mode != ChaosMode::Fixed && !(1..=100).contains(&n) => out.add(
                    format!("{at}.value"),
                    format!("must be a percentage between 1 and 100, found {n}"),
                ),
                Ok(0) => out.add(format!("{at}.value"), "must be at least 1"),
                Ok(_) => {}
                Err(_) => out.add(
                    format!("{at}.value"),
                    format!("must be a whole number, found `{v}`"),
                ),
            },
            (None, false) => {}
        }
        match &c.duration {
            Some(d) => duration(out, &format!("{at}.duration"), d),
            None if c.action == ChaosAction::PodFailure => out.add(
                format!("{at}.duration"),
                "`pod-failure` needs a duration such as `30s`",
            ),
            None => {}
        }
        if let Some(name) = &c.container {
            dns_label(out, &format!("{at}.container"), name, 63);
        }
    }
}

fn load(out: &mut Problems, p: &Platform) {
    let mut names = BTreeSet::new();
    for (i, l) in p.load.iter().enumerate() {
        let at = format!("load[{i}]");
        dns_label(out, &format!("{at}.name"), &l.name, 63);
        if !names.insert(l.name.as_str()) {
            out.add(
                format!("{at}.name"),
                format!("duplicate load test name `{}`", l.name),
            );
        }
        let svc = find_service(out, &format!("{at}.service"), p, &l.service);
        find_env(out, &format!("{at}.environment"), p, &l.environment);
        http_path(out, &format!("{at}.path"), &l.path);
        if l.rate == 0 {
            out.add(
                format!("{at}.rate"),
                "must be at least 1 request per second",
            );
        }
        duration(out, &format!("{at}.duration"), &l.duration);
        if let Some(e) = l.thresholds.max_error_rate
            && !(0.0..=100.0).contains(&e)
        {
            out.add(
                format!("{at}.thresholds.maxErrorRate"),
                format!("must be a percentage between 0 and 100, found {e}"),
            );
        }
        if let (Some(lat), Some(s)) = (&l.thresholds.latency, svc) {
            latency(out, &format!("{at}.thresholds.latency"), lat, s);
        }
    }
}

fn find_service<'a>(
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

fn find_env<'a>(
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

fn mode_name(m: ChaosMode) -> &'static str {
    match m {
        ChaosMode::One => "one",
        ChaosMode::All => "all",
        ChaosMode::Fixed => "fixed",
        ChaosMode::FixedPercent => "fixed-percent",
        ChaosMode::RandomMaxPercent => "random-max-percent",
    }
}

/// RFC 1123 label: what Kubernetes requires of namespaces and most names.
fn dns_label(out: &mut Problems, at: &str, v: &str, max: usize) {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        out.add(
            at,
            format!(
                "`{v}` is not a valid name: use at most {max} lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        );
    }
}

/// RFC 1123 subdomain: Secret names and hosts.
fn dns_subdomain(out: &mut Problems, at: &str, v: &str) {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        out.add(
            at,
            format!(
                "`{v}` is not a valid DNS subdomain: use lowercase letters, digits, '-' and '.'"
            ),
        );
    }
}

fn image(out: &mut Problems, at: &str, v: &str) {
    let last = v.rsplit('/').next().unwrap_or(v);
    if v.contains('@') || last.contains(':') {
        out.add(
            at,
            format!(
                "`{v}` carries a tag or digest: give the repository here and the tag under `tags`"
            ),
        );
        return;
    }
    let ok = !v.is_empty()
        && v.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-:".contains(ch))
        });
    if !ok {
        out.add(at, format!("`{v}` is not a valid image repository: use lowercase letters, digits, '.', '_', '-' and '/'"));
    }
}

fn http_path(out: &mut Problems, at: &str, v: &str) {
    if !v.starts_with('/') || v.contains(char::is_whitespace) {
        out.add(
            at,
            format!("must be an HTTP path starting with '/', found `{v}`"),
        );
    }
}

fn duration(out: &mut Problems, at: &str, v: &str) {
    if !is_duration(v) {
        out.add(
            at,
            format!("must be a duration such as `30s`, `5m` or `1h`, found `{v}`"),
        );
    }
}

/// `<digits><unit>` with unit s, m, h, d or w: what Argo Rollouts and Chaos Mesh both accept.
pub(crate) fn is_duration(v: &str) -> bool {
    let Some(unit) = v.chars().last() else {
        return false;
    };
    let digits = &v[..v.len() - 1];
    "smhdw".contains(unit)
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits != "0"
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn cpu(out: &mut Problems, at: &str, v: &str) {
    if parse_cpu(v).is_none() {
        out.add(
            at,
            format!("`{v}` is not a CPU quantity such as `250m` or `1`"),
        );
    }
}

fn memory(out: &mut Problems, at: &str, v: &str) {
    if parse_memory(v).is_none() {
        out.add(
            at,
            format!("`{v}` is not a memory quantity such as `128Mi` or `1Gi`"),
        );
    }
}

/// Millicores.
fn parse_cpu(v: &str) -> Option<f64> {
    let (num, scale) = match v.strip_suffix('m') {
        Some(n) => (n, 1.0),
        None => (v, 1000.0),
    };
    number(num).map(|n| n * scale).filter(|n| *n > 0.0)
}

/// Bytes.
fn parse_memory(v: &str) -> Option<f64> {
    const UNITS: [(&str, f64); 8] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (num, scale) = UNITS
        .iter()
        .find_map(|(u, s)| v.strip_suffix(u).map(|n| (n, *s)))
        .unwrap_or((v, 1.0));
    number(num).map(|n| n * scale).filter(|n| *n > 0.0)
}

fn number(v: &str) -> Option<f64> {
    let ok = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_digit() || c == '.')
        && v.matches('.').count() <= 1;
    if ok { v.parse().ok() } else { None }
}

/// An `https://`, `http://` or `oci://` chart repository URL (`addons.*.repository`, `up --charts`).
pub fn chart_repository(repo: &str) -> bool {
    ["https://", "http://", "oci://"]
        .iter()
        .any(|s| repo.len() > s.len() && repo.starts_with(s))
        && !repo.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu("250m"), Some(250.0));
        assert_eq!(parse_cpu("1.5"), Some(1500.0));
        assert_eq!(parse_cpu("abc"), None);
        assert_eq!(parse_memory("128Mi"), Some(134217728.0));
        assert_eq!(parse_memory("1G"), Some(1e9));
        assert_eq!(parse_memory("12Qi"), None);
    }

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

    #[test]
    fn durations() {
        assert!(is_duration("30s") && is_duration("30d") && is_duration("4w"));
        assert!(
            !is_duration("30") && !is_duration("s") && !is_duration("0s") && !is_duration("1.5m")
        );
    }
}

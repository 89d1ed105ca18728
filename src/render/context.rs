//! Plain data handed to templates: every name, selector and number is computed here, once, so
//! templates stay layout and overrides cannot get the derivations wrong.

use serde::Serialize;

use crate::config::{self, ChaosAction, ChaosMode};

use super::alerting::{Alerting, alerting};
use crate::slo::spec::{BURN_ALERTS, SLI_WINDOWS};

#[derive(Serialize)]
pub struct Platform<'a> {
    pub name: &'a str,
    pub repo_url: String,
    pub branch: &'a str,
    pub argocd_namespace: &'a str,
    pub prometheus_url: String,
    pub labels: Vec<(&'static str, &'a str)>,
    pub environments: Vec<Env<'a>>,
    #[serde(skip)]
    pub chaos: Vec<Chaos<'a>>,
    #[serde(skip)]
    source: &'a config::Platform,
}

#[derive(Serialize)]
pub struct Env<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub replicas: u32,
    pub production: bool,
    pub monitoring: bool,
    pub ingress: Option<Ingress<'a>>,
    pub hpa: Option<Hpa>,
    pub auto_sync: bool,
    pub project: &'a str,
    pub app: String,
    pub source_path: String,
    /// The environment's AlertmanagerConfig: with monitoring and at least one route for it.
    pub alerting: Option<Alerting<'a>>,
}

#[derive(Serialize)]
pub struct Ingress<'a> {
    pub domain: &'a str,
    pub class_name: &'a str,
}

#[derive(Serialize)]
pub struct Probes<'a> {
    pub readiness: Probe<'a>,
    pub liveness: Probe<'a>,
}

#[derive(Serialize)]
pub struct Probe<'a> {
    pub path: &'a str,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub failure_threshold: u32,
}

impl<'a> From<&'a config::Probe> for Probe<'a> {
    fn from(p: &'a config::Probe) -> Self {
        Probe {
            path: &p.path,
            initial_delay_seconds: p.initial_delay_seconds,
            period_seconds: p.period_seconds,
            failure_threshold: p.failure_threshold,
        }
    }
}

#[derive(Serialize)]
pub struct BlueGreen {
    pub auto_promotion: bool,
    pub scale_down_delay_seconds: u32,
    pub preview_replicas: Option<u32>,
}

#[derive(Serialize)]
pub struct Hpa {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu_utilization: u32,
}

#[derive(Serialize)]
pub struct Service<'a> {
    pub name: &'a str,
    pub image: String,
    /// The tag, without a digest; `None` when the image is pinned by digest alone.
    pub tag: Option<&'a str>,
    pub port: u16,
    pub requests: &'a config::ResourceList,
    pub limits: &'a config::ResourceList,
    pub probes: Probes<'a>,
    pub config: Vec<(String, String)>,
    pub config_hash: String,
    pub secrets: &'a [String],
    pub metrics_path: &'a str,
    pub labels: Vec<(&'static str, &'a str)>,
    pub host: Option<String>,
    pub canary: Option<Canary>,
    pub blue_green: Option<BlueGreen>,
    pub analysis: Option<Analysis>,
    pub slos: Vec<Slo>,
    pub dashboard_uid: String,
}

#[derive(Serialize)]
pub struct Canary {
    pub traffic_routing: bool,
    pub steps: Vec<Step>,
}

/// Exactly one field is set.
#[derive(Serialize, Default)]
pub struct Step {
    pub set_weight: Option<u32>,
    pub pause: Option<String>,
    pub analysis: bool,
}

#[derive(Serialize)]
pub struct Analysis {
    pub interval: String,
    pub count: u32,
    pub failure_limit: u32,
    pub success_ratio: String,
    pub latency: Option<Latency>,
    /// PromQL label matchers for the new version's pods.
    pub selector: String,
}

#[derive(Serialize)]
pub struct Latency {
    /// For names: `95`, `99-9`.
    pub percentile: String,
    pub quantile: String,
    pub threshold: String,
}

#[derive(Serialize)]
pub struct Slo {
    pub name: String,
    pub description: String,
    pub labels: Vec<(&'static str, String)>,
    pub objective_ratio: String,
    pub budget: String,
    pub budget_percent: String,
    pub window: String,
    pub windows: Vec<Window>,
    pub alerts: Vec<Alert>,
}

#[derive(Serialize)]
pub struct Window {
    pub window: String,
    pub expr: String,
}

#[derive(Serialize)]
pub struct Alert {
    pub severity: &'static str,
    pub long: &'static str,
    pub short: &'static str,
    pub factor: String,
    /// Share of the whole budget one long window burns at this rate, e.g. `2%`.
    pub consumes: String,
}

#[derive(Serialize)]
pub struct Chaos<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub environment: &'a str,
    pub target_namespace: &'a str,
    pub service: &'a str,
    pub action: &'static str,
    pub mode: &'static str,
    pub value: Option<&'a str>,
    pub duration: Option<&'a str>,
    pub container: Option<&'a str>,
    pub grace_period: Option<u32>,
    pub schedule: Option<&'a str>,
}

impl<'a> Platform<'a> {
    pub fn new(p: &'a config::Platform) -> Self {
        let ns = |kind| crate::addons::namespace(p, kind);
        let (repo_url, branch) = match (&p.gitops.remote, &p.gitops.local) {
            (Some(r), _) => (r.url.clone(), r.branch.as_str()),
            (None, Some(l)) => (l.url(&p.metadata.name), l.branch.as_str()),
            (None, None) => (String::new(), "main"),
        };
        let prefix = match p.gitops.path.trim_matches('/') {
            "" | "." => String::new(),
            path => format!("{path}/"),
        };
        let environments = p
            .environments
            .iter()
            .map(|e| Env {
                name: &e.name,
                namespace: &e.namespace,
                replicas: e.replicas,
                production: e.production,
                monitoring: e.monitoring,
                ingress: e.ingress.as_ref().map(|i| Ingress {
                    domain: &i.domain,
                    class_name: &i.class_name,
                }),
                hpa: e.hpa.as_ref().map(|h| Hpa {
                    min_replicas: h.min_replicas,
                    max_replicas: h.max_replicas,
                    target_cpu_utilization: h.target_cpu_utilization,
                }),
                auto_sync: e.auto_sync,
                project: &e.name,
                app: format!("{}-{}", p.metadata.name, e.name),
                source_path: format!("{prefix}envs/{}", e.name),
                alerting: alerting(&p.alerting, e),
            })
            .collect();
        let chaos_ns = ns(crate::addons::Kind::ChaosMesh);
        let chaos = p
            .chaos
            .iter()
            .map(|c| Chaos {
                name: &c.name,
                namespace: chaos_ns,
                environment: &c.environment,
                target_namespace: p
                    .environment(&c.environment)
                    .map_or("", |e| e.namespace.as_str()),
                service: &c.service,
                action: match c.action {
                    ChaosAction::PodKill => "pod-kill",
                    ChaosAction::PodFailure => "pod-failure",
                    ChaosAction::ContainerKill => "container-kill",
                },
                mode: match c.mode {
                    ChaosMode::One => "one",
                    ChaosMode::All => "all",
                    ChaosMode::Fixed => "fixed",
                    ChaosMode::FixedPercent => "fixed-percent",
                    ChaosMode::RandomMaxPercent => "random-max-percent",
                },
                value: c.value.as_deref(),
                duration: c.duration.as_deref(),
                container: match c.action {
                    ChaosAction::ContainerKill => {
                        Some(c.container.as_deref().unwrap_or(&c.service))
                    }
                    _ => None,
                },
                grace_period: c.grace_period,
                schedule: c.schedule.as_deref(),
            })
            .collect();
        Platform {
            name: &p.metadata.name,
            repo_url,
            branch,
            argocd_namespace: ns(crate::addons::Kind::Argocd),
            prometheus_url: format!(
                "http://prometheus-operated.{}.svc.cluster.local:9090",
                ns(crate::addons::Kind::KubePrometheusStack)
            ),
            labels: vec![
                ("app.kubernetes.io/part-of", &p.metadata.name),
                ("app.kubernetes.io/managed-by", "platformctl"),
            ],
            environments,
            chaos,
            source: p,
        }
    }

    /// The services as deployed to `env`.
    pub fn services(&self, env: &Env<'a>) -> Vec<Service<'a>> {
        let p = self.source;
        p.services.iter().map(|s| service(p, env, s)).collect()
    }
}

fn service<'a>(p: &'a config::Platform, env: &Env<'a>, s: &'a config::Service) -> Service<'a> {
    let tag = s.tags.get(env.name).map_or("", String::as_str);
    let mut merged = s.config.clone();
    if let Some(release) = s.version_config(tag) {
        merged.extend(release.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut config: Vec<(String, String)> = merged.into_iter().collect();
    let buckets: Vec<String> = s.metrics.buckets.iter().map(|b| num(*b)).collect();
    config.extend([
        ("PLATFORM_ENVIRONMENT".to_string(), env.name.to_string()),
        ("PLATFORM_METRICS_BUCKETS".to_string(), buckets.join(",")),
        ("PLATFORM_PORT".to_string(), s.port.to_string()),
        ("PLATFORM_SERVICE".to_string(), s.name.clone()),
    ]);
    config.sort();
    let config_hash = format!(
        "{:016x}",
        fnv1a(
            config
                .iter()
                .flat_map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\n"])
        )
    );
    let selector = format!("namespace=\"{}\",service=\"{}\"", env.namespace, s.name);
    let spec_analysis = s
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.analysis.as_ref())
        .or(s
            .strategy
            .blue_green
            .as_ref()
            .and_then(|b| b.analysis.as_ref()));
    let analysis = spec_analysis.filter(|_| env.monitoring).map(|a| Analysis {
        interval: a.interval.clone(),
        count: a.count,
        failure_limit: a.failure_limit,
        success_ratio: num(a.success_rate / 100.0),
        latency: a.latency.as_ref().map(|l| Latency {
            percentile: num(l.percentile).replace('.', "-"),
            quantile: num(l.percentile / 100.0),
            threshold: num(l.threshold),
        }),
        selector: format!(
            "{selector},rollouts_pod_template_hash=\"{{{{args.pod-template-hash}}}}\""
        ),
    });
    let canary = s.strategy.canary.as_ref().map(|c| {
        let mut steps = Vec::new();
        for (i, w) in c.steps.iter().enumerate() {
            steps.push(Step {
                set_weight: Some(*w),
                ..Step::default()
            });
            let last = i + 1 == c.steps.len();
            if last && *w == 100 {
                break;
            }
            if analysis.is_some() {
                steps.push(Step {
                    analysis: true,
                    ..Step::default()
                });
            } else {
                steps.push(Step {
                    pause: Some(c.pause.clone()),
                    ..Step::default()
                });
            }
        }
        Canary {
            traffic_routing: env.ingress.is_some(),
            steps,
        }
    });
    let slos = p
        .slos
        .iter()
        .filter(|slo| slo.service == s.name && slo.environment == env.name)
        .flat_map(|slo| slo_rules(slo, s, env, &selector))
        .collect();
    Service {
        name: &s.name,
        image: s.image_ref(tag),
        tag: config::split_tag(tag).0,
        port: s.port,
        requests: &s.resources.requests,
        limits: &s.resources.limits,
        probes: Probes {
            readiness: (&s.probes.readiness).into(),
            liveness: (&s.probes.liveness).into(),
        },
        config,
        config_hash,
        secrets: &s.secrets,
        metrics_path: &s.metrics.path,
        labels: vec![
            ("app.kubernetes.io/name", &s.name),
            ("app.kubernetes.io/part-of", &p.metadata.name),
            ("app.kubernetes.io/managed-by", "platformctl"),
            ("platformctl.dev/environment", env.name),
        ],
        host: env
            .ingress
            .as_ref()
            .map(|i| format!("{}.{}", s.name, i.domain)),
        canary,
        blue_green: s.strategy.blue_green.as_ref().map(|b| BlueGreen {
            auto_promotion: b.auto_promotion,
            scale_down_delay_seconds: b.scale_down_delay_seconds,
            preview_replicas: b.preview_replicas,
        }),
        analysis,
        slos,
        dashboard_uid: format!(
            "pc-{:016x}",
            fnv1a([
                p.metadata.name.as_bytes(),
                b"/",
                env.name.as_bytes(),
                b"/",
                s.name.as_bytes()
            ])
        ),
    }
}

fn slo_rules(slo: &config::Slo, s: &config::Service, env: &Env, selector: &str) -> Vec<Slo> {
    let mut out = Vec::new();
    let mut windows: Vec<String> = SLI_WINDOWS.iter().map(|w| w.to_string()).collect();
    if !windows.contains(&slo.window) {
        windows.push(slo.window.clone());
    }
    let mut add =
        |sli: &'static str, objective: f64, description: String, expr: &dyn Fn(&str) -> String| {
            let name = format!("{}-{sli}", s.name);
            let budget = 1.0 - objective / 100.0;
            let window_hours = hours(&slo.window);
            out.push(Slo {
                labels: vec![
                    ("slo", name.clone()),
                    ("sli", sli.to_string()),
                    ("service", s.name.clone()),
                    ("namespace", env.namespace.to_string()),
                ],
                name,
                description,
                objective_ratio: num(objective / 100.0),
                budget: num(budget),
                budget_percent: num(budget * 100.0),
                window: slo.window.clone(),
                windows: windows
                    .iter()
                    .map(|w| Window {
                        window: w.clone(),
                        expr: expr(w),
                    })
                    .collect(),
                alerts: BURN_ALERTS
                    .iter()
                    .map(|(severity, long, short, factor)| Alert {
                        severity: severity.as_str(),
                        long,
                        short,
                        factor: num(*factor),
                        consumes: format!(
                            "{}%",
                            num((factor * hours(long) / window_hours * 100.0 * 10.0).round() / 10.0)
                        ),
                    })
                    .collect(),
            });
        };
    if let Some(a) = &slo.availability {
        add(
            "availability",
            a.objective,
            format!("{} availability (errors per request)", s.name),
            &|w| {
                format!(
                    "(sum(rate(app_errors_total{{{selector}}}[{w}])) or vector(0)) / sum(rate(http_requests_total{{{selector}}}[{w}]))"
                )
            },
        );
    }
    if let Some(l) = &slo.latency {
        let le = le_matcher(l.threshold);
        add(
            "latency",
            l.percentile,
            format!(
                "{} latency (requests slower than {}s)",
                s.name,
                num(l.threshold)
            ),
            &|w| {
                format!(
                    "1 - (sum(rate(http_request_duration_seconds_bucket{{{selector},{le}}}[{w}])) / sum(rate(http_request_duration_seconds_count{{{selector}}}[{w}])))"
                )
            },
        );
    }
    out
}

/// Matches the bucket boundary whether the exporter wrote `1` or `1.0` (Prometheus 3
/// normalises classic histogram `le` values to the latter).
fn le_matcher(threshold: f64) -> String {
    let t = num(threshold);
    if threshold.fract() == 0.0 {
        format!("le=~\"{t}(\\\\.0)?\"")
    } else {
        format!("le=\"{t}\"")
    }
}

/// Shortest decimal form with at most 6 decimals: `0.999`, `14.4`, `1`.
pub fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn hours(d: &str) -> f64 {
    let (n, unit) = d.split_at(d.len().saturating_sub(1));
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "m" => n / 60.0,
        "h" => n,
        "d" => n * 24.0,
        "w" => n * 168.0,
        _ => n / 3600.0,
    }
}

/// FNV-1a, 64 bit: a stable content hash (std's hashers may change between Rust releases).
fn fnv1a<'b>(parts: impl IntoIterator<Item = &'b [u8]>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_shortest() {
        assert_eq!(num(99.9 / 100.0), "0.999");
        assert_eq!(num(1.0 - 99.9 / 100.0), "0.001");
        assert_eq!(num(14.4), "14.4");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.3), "0.3");
    }

    #[test]
    fn le_matches_both_spellings_of_whole_numbers() {
        assert_eq!(le_matcher(0.3), r#"le="0.3""#);
        assert_eq!(le_matcher(1.0), r#"le=~"1(\\.0)?""#);
    }

    #[test]
    fn budget_share_of_fast_burn_is_two_percent() {
        // 14.4 x 1h / 30d = 2% (SRE workbook).
        assert!((14.4 * hours("1h") / hours("30d") - 0.02).abs() < 1e-9);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a([b"a".as_slice()]), 0xaf63dc4c8601ec8c);
    }
}

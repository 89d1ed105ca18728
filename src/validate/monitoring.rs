//! What Prometheus and Alertmanager say of the rendered monitoring: each ServiceMonitor
//! endpoint's scrape pool has targets and all are up; each PrometheusRule group is loaded
//! (from the operator's rule file of that object) and every rule evaluates without error;
//! Alertmanager answers, holds the receivers of every rendered AlertmanagerConfig (as the
//! operator names them, `<namespace>/<name>/<receiver>`) and is one of Prometheus' active
//! Alertmanagers.

use super::{Check, Error, Rendered, Verdict};
use crate::prom::{self, Health, RuleHealth, alertmanager};

pub(super) async fn scraping(
    prometheus: &prom::Client,
    rendered: &Rendered,
) -> Result<Vec<Check>, Error> {
    let monitors: Vec<_> = rendered.kind("ServiceMonitor").collect();
    if monitors.is_empty() {
        return Ok(Vec::new());
    }
    let targets = prometheus.targets().await?;
    let mut checks = Vec::new();
    for (env, m) in monitors {
        let ns = m.namespace().unwrap_or_default();
        let endpoints = m.object["spec"]["endpoints"].as_array().map_or(0, Vec::len);
        for i in 0..endpoints {
            let pool = format!("serviceMonitor/{ns}/{}/{i}", m.name());
            let mine: Vec<&prom::Target> = targets
                .active_targets
                .iter()
                .filter(|t| t.scrape_pool == pool)
                .collect();
            let up = mine.iter().filter(|t| t.health == Health::Up).count();
            let object = if endpoints == 1 {
                format!("{ns}/{}", m.name())
            } else {
                format!("{ns}/{}/{i}", m.name())
            };
            let (verdict, message) = match mine.iter().find(|t| t.health != Health::Up) {
                _ if mine.is_empty() => (
                    Verdict::Fail,
                    format!(
                        "ServiceMonitor `{ns}/{}` has no targets in Prometheus (scrape pool `{pool}`): its selector {} matches no Service with ready endpoints, or Prometheus does not select it",
                        m.name(),
                        selector(&m.object["spec"]["selector"])
                    ),
                ),
                Some(down) => (
                    Verdict::Fail,
                    format!(
                        "{up}/{} targets up; {} is {}: {}",
                        mine.len(),
                        down.scrape_url,
                        health(down.health),
                        if down.last_error.is_empty() {
                            "not scraped yet"
                        } else {
                            &down.last_error
                        }
                    ),
                ),
                None => (Verdict::Pass, format!("{up}/{} targets up", mine.len())),
            };
            checks.push(Check::new("scrape", &object, env, verdict, message));
        }
    }
    Ok(checks)
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
        Health::Unknown => "not scraped yet",
    }
}

/// A label selector as `kubectl` writes one: `a=b,c in (d)`.
fn selector(s: &serde_json::Value) -> String {
    let mut parts: Vec<String> = s["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in s["matchExpressions"].as_array().into_iter().flatten() {
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        parts.push(format!(
            "{} {} ({})",
            e["key"].as_str().unwrap_or_default(),
            e["operator"].as_str().unwrap_or_default(),
            values.join(",")
        ));
    }
    if parts.is_empty() {
        "(everything)".into()
    } else {
        format!("`{}`", parts.join(","))
    }
}

/// `groups`: the rule groups Prometheus has loaded.
pub(super) fn rules(groups: &[prom::Group], rendered: &Rendered) -> Vec<Check> {
    let mut checks = Vec::new();
    let rules = rendered.kind("PrometheusRule");
    for (env, m) in rules {
        let ns = m.namespace().unwrap_or_default();
        // The operator writes each PrometheusRule to `<namespace>-<name>-<uid>.yaml`
        // (prometheus-operator v0.88 pkg/operator/rules.go).
        let file = format!("{ns}-{}-", m.name());
        for g in m.object["spec"]["groups"].as_array().into_iter().flatten() {
            let name = g["name"].as_str().unwrap_or_default();
            let expected = g["rules"].as_array().map_or(0, Vec::len);
            let object = format!("{ns}/{}/{name}", m.name());
            let loaded = groups.iter().find(|l| {
                l.name == name
                    && std::path::Path::new(&l.file)
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(&file))
            });
            let (verdict, message) = match loaded {
                None => (
                    Verdict::Fail,
                    format!(
                        "group `{name}` of PrometheusRule `{ns}/{}` is not loaded in Prometheus (not selected, or refused by the operator as invalid)",
                        m.name()
                    ),
                ),
                Some(l) => {
                    let failing: Vec<String> = l
                        .rules
                        .iter()
                        .filter(|r| r.health() == RuleHealth::Err)
                        .map(|r| format!("rule `{}` fails: {}", r.name(), r.last_error()))
                        .collect();
                    let pending = l
                        .rules
                        .iter()
                        .filter(|r| r.health() == RuleHealth::Unknown)
                        .count();
                    if !failing.is_empty() {
                        (Verdict::Fail, failing.join("; "))
                    } else if l.rules.len() != expected {
                        (
                            Verdict::Fail,
                            format!(
                                "{} of {expected} rules loaded: the one in the cluster differs from the rendered one",
                                l.rules.len()
                            ),
                        )
                    } else if pending > 0 {
                        (
                            Verdict::Fail,
                            format!(
                                "{pending} of {} rules not evaluated yet (every {} s)",
                                l.rules.len(),
                                l.interval
                            ),
                        )
                    } else {
                        (
                            Verdict::Pass,
                            format!("{} rules loaded and evaluating", l.rules.len()),
                        )
                    }
                }
            };
            checks.push(Check::new("rules", &object, env, verdict, message));
        }
    }
    checks
}

pub(super) async fn alertmanager(
    prometheus: &prom::Client,
    client: Option<Result<alertmanager::Client, String>>,
    rendered: &Rendered,
) -> Result<Vec<Check>, Error> {
    let Some(client) = client else {
        return Ok(vec![Check::new(
            "alertmanager",
            "reachable",
            None,
            Verdict::Skip,
            "the kube-prometheus-stack addon runs no Alertmanager (alertmanager.enabled: false)",
        )]);
    };
    let discovered = prometheus.alertmanagers().await?;
    let mut checks = Vec::new();
    let active: Vec<&str> = discovered
        .active_alertmanagers
        .iter()
        .map(|a| a.url.as_str())
        .collect();
    let listed = if active.is_empty() {
        Check::new(
            "alertmanager",
            "discovered",
            None,
            Verdict::Fail,
            format!(
                "Prometheus lists no active Alertmanager ({} dropped): alerts go nowhere",
                discovered.dropped_alertmanagers.len()
            ),
        )
    } else {
        Check::new(
            "alertmanager",
            "discovered",
            None,
            Verdict::Pass,
            format!("Prometheus sends alerts to {}", active.join(", ")),
        )
    };
    let status = match client {
        Ok(am) => am.status().await.map_err(|e| e.to_string()),
        Err(why) => Err(why),
    };
    match status {
        Err(why) => {
            checks.push(Check::new(
                "alertmanager",
                "reachable",
                None,
                Verdict::Fail,
                format!("Alertmanager cannot be reached: {why}"),
            ));
            checks.push(listed);
            checks.push(Check::new(
                "alertmanager",
                "receivers",
                None,
                Verdict::Skip,
                "Alertmanager cannot be reached",
            ));
        }
        Ok(status) => {
            checks.push(Check::new(
                "alertmanager",
                "reachable",
                None,
                Verdict::Pass,
                format!(
                    "Alertmanager {} answers, cluster {:?}",
                    status.version_info.version, status.cluster.status
                ),
            ));
            checks.push(listed);
            checks.push(receivers(&status.config.original, rendered));
        }
    }
    Ok(checks)
}

/// The receivers of every rendered AlertmanagerConfig are in Alertmanager's configuration.
fn receivers(original: &str, rendered: &Rendered) -> Check {
    let config: serde_yaml::Value = match serde_yaml::from_str(original) {
        Ok(c) => c,
        Err(e) => {
            return Check::new(
                "alertmanager",
                "receivers",
                None,
                Verdict::Fail,
                format!("Alertmanager's configuration does not parse: {e}"),
            );
        }
    };
    let have: Vec<&str> = config["receivers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let mut want = Vec::new();
    for (_, m) in rendered.kind("AlertmanagerConfig") {
        let ns = m.namespace().unwrap_or_default();
        for r in m.object["spec"]["receivers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(name) = r["name"].as_str() {
                want.push(format!("{ns}/{}/{name}", m.name()));
            }
        }
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !have.contains(&w.as_str()))
        .collect();
    if want.is_empty() {
        Check::new(
            "alertmanager",
            "receivers",
            None,
            Verdict::Pass,
            format!(
                "configuration loaded with {} (platform.yaml routes no alerts: `alerting.receivers`)",
                crate::output::counted(have.len(), "receiver")
            ),
        )
    } else if missing.is_empty() {
        Check::new(
            "alertmanager",
            "receivers",
            None,
            Verdict::Pass,
            format!("holds the platform's receivers: {}", want.join(", ")),
        )
    } else {
        Check::new(
            "alertmanager",
            "receivers",
            None,
            Verdict::Fail,
            format!(
                "the configuration lacks {} (the operator has not taken the AlertmanagerConfig: `kubectl describe alertmanagerconfig`)",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

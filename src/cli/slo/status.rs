//! `platformctl slo status`: per SLO the SLI over its windows, the budget left, the burn rate
//! of each alert's window pair, the time to exhaustion and the alerts firing.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};
use crate::slo::{self, State, duration};

/// Show each SLO now: SLI, error budget left, burn rates, time to exhaustion, alerts.
///
/// Per SLO of platform.yaml (`--env`, `--service` narrow them): the SLI over 5m, 1h, 6h, 1d and
/// the SLO window; the objective; the error budget left as a ratio and as time ("31m of
/// 43m12s left in 30d"); the burn rate over each page/ticket window pair of the burn-rate
/// alerts, against its threshold; the time until the budget is spent at the current 1h burn;
/// and the burn alerts Prometheus has pending or firing. The numbers are the recording rules
/// `render` wrote, queried live; an SLO without data says why (no traffic, rules not loaded)
/// instead of printing NaN.
///
/// Prometheus is reached through a port-forward to its pod unless `--prometheus-url` says
/// where it is published. Exits 0 when every budget has something left (or no data yet), 1
/// when one is spent, 3 when the cluster or Prometheus cannot be reached. `--junit FILE`
/// writes one test case per SLO.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: crate::cli::up::ClusterArgs,
    /// Only the SLOs of this environment.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Only the SLOs of this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Also write the SLOs as JUnit XML here, one test case per SLO.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Prometheus' base URL (with its route prefix), instead of a port-forward to its pod.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
}

pub async fn run(ctx: &crate::cli::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        cluster,
        env,
        service,
        junit,
        prometheus_url,
    } = args;
    let started = Instant::now();
    let platform = cluster.platform(ctx)?;
    crate::cli::validate::check_environment(&platform, env.as_deref())?;
    if let Some(s) = &service
        && !platform.services.iter().any(|x| &x.name == s)
    {
        return Err(UsageError::new(format!("platform.yaml has no service `{s}`")).into());
    }
    let specs: Vec<slo::Spec> = slo::specs(&platform)
        .into_iter()
        .filter(|s| env.as_deref().is_none_or(|e| s.environment == e))
        .filter(|s| service.as_deref().is_none_or(|x| s.service == x))
        .collect();
    let statuses = if specs.is_empty() {
        Vec::new()
    } else {
        let target = crate::cluster::locate(&platform.cluster)?;
        let client = crate::kube::client_for(&target).await?;
        let namespace =
            crate::addons::namespace(&platform, crate::addons::Kind::KubePrometheusStack);
        let prometheus =
            crate::prom::connect::prometheus(&client, namespace, prometheus_url.as_deref())
                .await
                .context("cannot ask the platform's Prometheus")?;
        slo::collect(&prometheus, &specs)
            .await
            .context("cannot ask the platform's Prometheus")?
    };
    let took = started.elapsed().as_secs_f64();
    if let Some(path) = &junit {
        crate::junit::write(path, "platformctl slo status", took, &cases(&statuses))
            .with_context(|| format!("cannot write the JUnit report `{}`", path.display()))?;
    }
    Ok(report(&statuses))
}

fn cases(statuses: &[slo::Status]) -> Vec<crate::junit::Case> {
    statuses
        .iter()
        .map(|s| crate::junit::Case {
            classname: "slo".into(),
            name: format!("slo/{}/{}", s.spec.environment, s.spec.name),
            time: 0.0,
            outcome: match s.state {
                State::Met => crate::junit::Outcome::Passed,
                State::Exhausted => crate::junit::Outcome::Failed(s.reason.clone()),
                State::NoData => crate::junit::Outcome::Skipped(s.reason.clone()),
            },
            output: if s.state == State::NoData {
                s.reason.clone()
            } else {
                budget_line(s)
            },
        })
        .collect()
}

/// Exit 1 when a budget is spent; the text per SLO and the `SloReport`.
pub fn report(statuses: &[slo::Status]) -> Outcome {
    let exhausted = statuses.iter().any(|s| s.state == State::Exhausted);
    let mut text = String::new();
    if statuses.is_empty() {
        text.push_str(
            "no SLOs (platform.yaml `slos:` in an environment with `monitoring: true`)\n",
        );
    }
    for s in statuses {
        text.push_str(&describe(s));
    }
    Outcome {
        code: if exhausted {
            Code::CheckFailed
        } else {
            Code::Success
        },
        report: Report {
            kind: "SloReport",
            status: if exhausted {
                "Exhausted"
            } else if statuses.iter().any(|s| s.state == State::NoData) {
                "NoData"
            } else {
                "Met"
            },
            fields: json!({ "slos": statuses }),
            text: text.trim_end().to_string(),
        },
    }
}

/// A ratio as a percentage with up to three decimals: `99.9%`, `99.953%`, `100%`.
fn percent(v: Option<f64>) -> String {
    v.map_or("no data".into(), |v| {
        let s = format!("{:.3}", v * 100.0);
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    })
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

fn budget_line(s: &slo::Status) -> String {
    match &s.budget {
        Some(b) => format!(
            "{:.1}% ({} of {} left in {})",
            b.remaining * 100.0,
            duration(b.remaining_seconds.max(0.0)),
            duration(b.total_seconds),
            s.spec.window
        ),
        None => "no figure without data".into(),
    }
}

fn describe(s: &slo::Status) -> String {
    let state = match s.state {
        State::Met => "met",
        State::Exhausted => "BUDGET EXHAUSTED",
        State::NoData => "no data",
    };
    let mut out = format!(
        "{} ({}, namespace {})  objective {} over {}  {state}\n",
        s.spec.name,
        s.spec.environment,
        s.spec.namespace,
        percent(Some(s.spec.objective)),
        s.spec.window
    );
    if s.state == State::NoData {
        out.push_str(&format!("  {}\n", s.reason));
    }
    let windows: Vec<String> = s
        .windows
        .iter()
        .map(|w| format!("{} {}", w.window, percent(w.sli)))
        .collect();
    out.push_str(&format!("  SLI       {}\n", windows.join("   ")));
    out.push_str(&format!("  budget    {}\n", budget_line(s)));
    for b in &s.burn {
        out.push_str(&format!(
            "  burn      {:<6} {:>3}/{:<4} {:>8} / {:<8} alert above {}x{}\n",
            b.severity,
            b.long_window,
            b.short_window,
            rate(b.long),
            rate(b.short),
            b.threshold,
            if b.over { "  OVER" } else { "" }
        ));
    }
    let burn_1h = s
        .windows
        .iter()
        .find(|w| w.window == slo::spec::EXHAUSTION_WINDOW)
        .and_then(|w| w.error_ratio)
        .map(|r| r / s.spec.budget());
    out.push_str(&format!(
        "  exhausts  {}\n",
        match (s.exhaustion_seconds, burn_1h) {
            (Some(0.0), _) => "spent already".to_string(),
            (Some(t), Some(r)) => format!("in {} at the current 1h burn ({r:.2}x)", duration(t)),
            (Some(t), None) => format!("in {}", duration(t)),
            (None, Some(_)) => "never at the current 1h burn (nothing burns)".to_string(),
            (None, None) => "unknown: no 1h data".to_string(),
        }
    ));
    if s.alerts.is_empty() {
        out.push_str("  alerts    none pending or firing\n");
    }
    for a in &s.alerts {
        out.push_str(&format!(
            "  alert     {} {} {}/{}{}\n",
            a.state,
            a.severity,
            a.long_window,
            a.short_window,
            a.active_at
                .as_deref()
                .map(|t| format!(" since {t}"))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// customer-api's availability SLO in prod: 99.9% over 30d.
    fn spec() -> slo::Spec {
        slo::spec::reference().remove(0)
    }

    /// 1% errors everywhere, a quarter of the budget left, the 6h/30m page firing; and an SLO
    /// without data. The report's shape is a contract CI reads.
    #[test]
    fn the_slo_report_as_text_and_json() {
        let ratios: std::collections::BTreeMap<String, f64> = slo::spec::recorded_windows("30d")
            .iter()
            .map(|w| (slo::spec::error_ratio_series(w), 0.01))
            .chain([(slo::spec::BUDGET_REMAINING_SERIES.to_string(), 0.25)])
            .collect();
        let value = |s: &str| ratios.get(s).copied();
        let alert: crate::prom::Alert = serde_json::from_value(serde_json::json!({
            "labels": {"alertname": "SLOErrorBudgetBurn", "slo": "customer-api-availability",
                       "namespace": "prod", "severity": "page", "long_window": "6h", "short_window": "30m"},
            "state": "firing", "activeAt": "2026-12-02T07:00:00Z", "value": "0.01"
        }))
        .expect("alert");
        let burning = slo::evaluate(&spec(), &value, &[], &[alert]);
        let quiet = slo::evaluate(&spec(), &|_| None, &[], &[]);
        let outcome = report(&[burning, quiet]);
        assert_eq!(outcome.code, Code::Success);
        assert_eq!(outcome.report.status, "NoData");
        insta::assert_snapshot!("slo_report_text", outcome.report.text);
        insta::assert_snapshot!(
            "slo_report_json",
            serde_json::to_string_pretty(&outcome.report.to_json()).expect("json")
        );
        let spent = slo::evaluate(
            &spec(),
            &|s: &str| (s == slo::spec::BUDGET_REMAINING_SERIES).then_some(-0.2),
            &[],
            &[],
        );
        let outcome = report(&[spent]);
        assert_eq!(outcome.code, Code::CheckFailed);
        assert_eq!(outcome.report.status, "Exhausted");
    }
}

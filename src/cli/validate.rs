//! `platformctl validate`: the live operational checks, as a table, a `ValidationReport` or
//! JUnit.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};
use crate::validate::{self, Check, Verdict};

/// Check that the running platform works: named checks, each pass, fail or skip with why.
///
/// For what `render` wrote (for `--env`, only that environment's objects): every Argo CD
/// Application Synced and Healthy; every Rollout Healthy, or paused where its strategy waits
/// (a blue-green gate, a canary pause step); each ServiceMonitor with targets, all up; each
/// PrometheusRule group loaded, its rules evaluating without error; Alertmanager reachable,
/// holding the platform's receivers and listed by Prometheus as active; each dashboard
/// ConfigMap in the cluster with the Grafana sidecar's label, valid dashboard JSON, its data
/// source provisioned and every panel query valid PromQL that returns data; HPAs reading their
/// metric; Ingresses with an address; each SLO with error budget left.
///
/// Grafana itself is not asked (it cannot run everywhere platformctl does): dashboards are
/// checked through what Grafana would query, each panel's PromQL against the real Prometheus.
/// Prometheus and Alertmanager are reached through a port-forward to their pods unless
/// `--prometheus-url`/`--alertmanager-url` say where they are published.
///
/// Exits 0 when no check fails, 1 when one does, 3 when the cluster or Prometheus cannot be
/// reached. `--junit FILE` writes one test case per check.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: super::up::ClusterArgs,
    /// Only this environment's objects (and the platform's own: Alertmanager).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Also write the checks as JUnit XML here, one test case per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub endpoints: Endpoints,
}

/// Where Prometheus and Alertmanager are, when not through a port-forward.
#[derive(Debug, clap::Args)]
pub struct Endpoints {
    /// Prometheus' base URL (with its route prefix), instead of a port-forward to its pod.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Alertmanager's base URL, instead of a port-forward to its pod.
    #[arg(long, value_name = "URL")]
    pub alertmanager_url: Option<String>,
}

/// Refuses an environment platform.yaml does not have.
/// A usage error unless platform.yaml has the service `name` (the hint lists its services).
pub fn check_service(platform: &crate::config::Platform, name: &str) -> anyhow::Result<()> {
    if platform.services.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let names: Vec<&str> = platform.services.iter().map(|s| s.name.as_str()).collect();
    Err(
        UsageError::new(format!("platform.yaml has no service `{name}`"))
            .hint(format!("its services: {}", names.join(", ")))
            .into(),
    )
}

pub fn check_environment(
    platform: &crate::config::Platform,
    env: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(e) = env
        && !platform.environments.iter().any(|x| x.name == e)
    {
        let names: Vec<&str> = platform
            .environments
            .iter()
            .map(|x| x.name.as_str())
            .collect();
        return Err(
            UsageError::new(format!("platform.yaml has no environment `{e}`"))
                .hint(format!("its environments: {}", names.join(", ")))
                .into(),
        );
    }
    Ok(())
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        cluster,
        env,
        junit,
        endpoints: Endpoints {
            prometheus_url,
            alertmanager_url,
        },
    } = args;
    let started = Instant::now();
    let platform = cluster.platform(ctx)?;
    check_environment(&platform, env.as_deref())?;
    let project = ctx.project_dir();
    let templates = crate::render::Templates::load(Some(&super::up::templates_dir(&project)))?;
    let tree = crate::render::render(&platform, &templates)?;
    let target = crate::cluster::locate(&platform.cluster)?;
    let client = crate::kube::client_for(&target).await?;
    let kps = platform
        .addons
        .kube_prometheus_stack
        .as_ref()
        .filter(|a| a.enabled);
    let namespace =
        crate::addons::namespace(&platform, crate::addons::Kind::KubePrometheusStack).to_string();
    let (prometheus, alertmanager) = match kps {
        None => (None, None),
        Some(addon) => {
            let runs_alertmanager = addon
                .values
                .get("alertmanager")
                .and_then(|a| a.get("enabled"))
                .and_then(serde_yaml::Value::as_bool)
                != Some(false);
            let (p, a) = tokio::join!(
                crate::prom::connect::prometheus(&client, &namespace, prometheus_url.as_deref()),
                async {
                    if runs_alertmanager {
                        Some(
                            crate::prom::connect::alertmanager(
                                &client,
                                &namespace,
                                alertmanager_url.as_deref(),
                            )
                            .await
                            .map_err(|e| chain(&e)),
                        )
                    } else {
                        None
                    }
                }
            );
            (Some(p.context("cannot ask the platform's Prometheus")?), a)
        }
    };
    let checks = validate::run(validate::Inputs {
        platform: &platform,
        tree: &tree,
        client: &client,
        prometheus: prometheus.as_ref(),
        alertmanager,
        environment: env.as_deref(),
    })
    .await?;
    let took = started.elapsed().as_secs_f64();
    if let Some(path) = &junit {
        crate::junit::write(path, "platformctl validate", took, &cases(&checks))
            .with_context(|| format!("cannot write the JUnit report `{}`", path.display()))?;
    }
    Ok(report(&checks, env.as_deref(), took))
}

/// The outcome of a run: exit 1 when a check fails, a table, a `ValidationReport`.
pub fn report(checks: &[Check], env: Option<&str>, took: f64) -> Outcome {
    let (pass, fail, skip) = validate::counts(checks);
    let mut text = table(checks);
    text.push_str(&format!(
        "{pass} passed, {fail} failed, {skip} skipped in {took:.1} s (dashboards are checked through the queries Grafana would send; Grafana itself is not asked)"
    ));
    Outcome {
        code: if fail > 0 {
            Code::CheckFailed
        } else {
            Code::Success
        },
        report: Report {
            kind: "ValidationReport",
            status: if fail > 0 { "Failed" } else { "Passed" },
            fields: json!({
                "environment": env,
                "summary": {"passed": pass, "failed": fail, "skipped": skip},
                "seconds": (took * 1000.0).round() / 1000.0,
                "grafana": "not asked: dashboards are checked through the queries Grafana would send",
                "checks": checks,
            }),
            text,
        },
    }
}

fn table(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut text = format!("{:<width$}  {:<6}  WHY\n", "CHECK", "RESULT");
    for c in checks {
        text.push_str(&format!(
            "{:<width$}  {:<6}  {}\n",
            c.name,
            verdict(c.verdict),
            c.message
        ));
    }
    text
}

pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "skip",
    }
}

fn cases(checks: &[Check]) -> Vec<crate::junit::Case> {
    checks
        .iter()
        .map(|c| crate::junit::Case {
            classname: c.category.to_string(),
            name: c.name.clone(),
            time: 0.0,
            outcome: match c.verdict {
                Verdict::Pass => crate::junit::Outcome::Passed,
                Verdict::Fail => crate::junit::Outcome::Failed(c.message.clone()),
                Verdict::Skip => crate::junit::Outcome::Skipped(c.message.clone()),
            },
            output: if c.verdict == Verdict::Pass {
                c.message.clone()
            } else {
                String::new()
            },
        })
        .collect()
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(category: &'static str, object: &str, verdict: Verdict, message: &str) -> Check {
        Check {
            category,
            name: format!("{category}/{object}"),
            environment: Some("prod".into()),
            verdict,
            message: message.into(),
        }
    }

    /// The report's shape is a contract CI reads: a changed field is a reviewed diff.
    #[test]
    fn the_validation_report_as_text_and_json() {
        let checks = [
            check(
                "application",
                "customer-platform-prod",
                Verdict::Pass,
                "Synced and Healthy",
            ),
            check(
                "scrape",
                "prod/customer-api",
                Verdict::Fail,
                "ServiceMonitor `prod/customer-api` has no targets in Prometheus",
            ),
            check(
                "slo",
                "prod/customer-api-availability",
                Verdict::Skip,
                "no data",
            ),
        ];
        let outcome = report(&checks, Some("prod"), 0.4321);
        assert_eq!(outcome.code, Code::CheckFailed);
        insta::assert_snapshot!("validation_report_text", outcome.report.text);
        insta::assert_snapshot!(
            "validation_report_json",
            serde_json::to_string_pretty(&outcome.report.to_json()).expect("json")
        );
        let passing = report(&checks[..1], None, 0.1);
        assert_eq!(passing.code, Code::Success);
        assert_eq!(passing.report.status, "Passed");
        let junit = crate::junit::document("platformctl validate", 0.4321, &cases(&checks));
        insta::assert_snapshot!("validation_report_junit", junit);
    }
}

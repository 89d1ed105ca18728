//! `platformctl status`: nodes, addons, applications per environment, rollouts; table or JSON.

use serde_json::json;

use crate::exit::Code;
use crate::output::{Outcome, Report};

/// Show the platform on one screen: nodes, addons against their pins, Argo CD applications per
/// environment (sync and health, and why one is not Synced and Healthy), rollouts with phase,
/// ready replicas, canary step and weight, and the Prometheus targets of each of the platform's
/// ServiceMonitors and the error budget left of each SLO (asked of the kube-prometheus-stack
/// Prometheus through a port-forward).
///
/// Reads only. Exits 0 whatever it finds; `-o json` gives a `StatusReport` whose `status` is
/// `Healthy` or `Degraded` (a scrape pool with a target down or a spent error budget is
/// Degraded; what Prometheus could not be asked about reads `unknown` and is left to
/// `validate`).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: super::up::ClusterArgs,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args { cluster } = args;
    let platform = cluster.platform(ctx)?;
    let target = crate::cluster::locate(&platform.cluster)?;
    let client = crate::kube::client_for(&target).await?;
    // Without helm, status still shows everything else; the addons read "unknown (no helm)".
    let helm = crate::addons::Helm::for_target(&target).ok();
    let status = crate::status::collect(&platform, &client, helm.as_ref()).await?;
    let mut text = String::from("NODES\n");
    for n in &status.nodes {
        text.push_str(&format!(
            "  {:<24} {:<9} {:<15} {}\n",
            n.name,
            if n.ready { "Ready" } else { "NotReady" },
            n.roles,
            n.version
        ));
    }
    text.push_str("ADDONS\n");
    for a in &status.addons {
        text.push_str(&format!(
            "  {:<22} {:<14} {:<30} {}\n",
            a.release,
            a.namespace,
            format!("{} {}", a.chart, a.deployed.as_deref().unwrap_or("-")),
            if a.deployed.as_deref().is_some_and(|d| d != a.pinned) {
                format!("{} (pinned {})", a.status, a.pinned)
            } else {
                a.status.clone()
            }
        ));
    }
    text.push_str("APPLICATIONS\n");
    if status.apps.is_empty() {
        text.push_str("  none (run `platformctl up`)\n");
    }
    for a in &status.apps {
        let line = format!(
            "  {:<8} {:<32} {:<10} {:<11} {}",
            a.environment, a.name, a.sync, a.health, a.message
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.push_str("ROLLOUTS\n");
    if status.rollouts.is_empty() {
        text.push_str("  none\n");
    }
    for r in &status.rollouts {
        let line = format!(
            "  {:<8} {:<24} {:<12} {:<9} step {:<5} weight {:<4} {}",
            r.environment,
            r.name,
            r.phase,
            format!("{}/{} ready", r.ready_replicas, r.replicas),
            r.step.as_deref().unwrap_or("-"),
            r.weight.map_or("-".to_string(), |w| format!("{w}%")),
            r.message
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if !status.targets.is_empty() {
        text.push_str("SCRAPED (Prometheus targets up)\n");
    }
    for t in &status.targets {
        let counts = match (t.up, t.total) {
            (Some(u), Some(n)) => format!("{u}/{n} up"),
            _ => "unknown".to_string(),
        };
        let line = format!("  {:<40} {:<9} {}", t.pool, counts, t.message);
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if !status.slos.is_empty() {
        text.push_str("SLOS (error budget left)\n");
    }
    for s in &status.slos {
        let left = s
            .budget_remaining
            .map_or("-".to_string(), |b| format!("{:.1}%", b * 100.0));
        let line = format!(
            "  {:<8} {:<32} {:<9} {:<7} {}",
            s.environment, s.name, s.state, left, s.message
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let healthy = status.healthy();
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "StatusReport",
            status: if healthy { "Healthy" } else { "Degraded" },
            fields: json!({
                "nodes": status.nodes,
                "addons": status.addons,
                "applications": status.apps,
                "rollouts": status.rollouts,
                "targets": status.targets,
                "slos": status.slos,
            }),
            text,
        },
    })
}

//! `platformctl chaos`: list the experiments of platform.yaml, and run one (`chaos run NAME`, or
//! `chaos NAME`) as a journal of phases with a verdict in SLO terms.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::chaos::run::{self as chaos_run, End, Inputs, Journal, PhaseOutcome, Probe};
use crate::chaos::verdict::Limits;
use crate::config::{ChaosAction, Platform};
use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};

/// Run a chaos experiment of platform.yaml and judge it in SLO terms (`chaos pod-kill`).
///
/// A run is a journal of timed phases. Steady state: the service's Rollout has every replica
/// Ready, its SLO burns less than the page threshold over 5m (when Prometheus can be asked),
/// and probe traffic succeeds; otherwise nothing is injected and the run exits 1. Inject: the
/// rendered Chaos Mesh object (chaos/NAME.yaml), named and labelled for this run, its selector's
/// namespaces set to the target's, created; the run waits until Chaos Mesh records every target
/// Injected and names the killed pods. Recovery: the pods are watched (ready against desired,
/// the replacements by UID and when each turns Ready) until every replica is Ready and the
/// probe answers again. Verdict: continuity held when the availability during the window (the
/// probe's, and Prometheus' when it can be asked) is at least the SLO's objective (99.9% for
/// a service without an SLO), or, with an SLO, when the window burned less of the error budget
/// than the experiment's `maxBudgetBurn`; and recovery took at most `recoveryTimeout`.
/// Clean-up: the Chaos Mesh object is deleted however the run ends (a verdict, an error,
/// SIGINT, SIGTERM); one left by a run that was killed outright is found by its labels and
/// removed at the next start. A finalizer that does not clear is handled as Chaos Mesh's FAQ
/// says (the cleanFinalizer annotation, then removing it).
///
/// The probe traffic (`probeRate` requests per second to the service's `load:` paths, else its
/// liveness path) goes to the Service's ready endpoints from the first phase to the last;
/// `--load` sends the service's `load:` entry instead and judges its thresholds too.
///
/// Exits 0 when the verdict passes, 1 when it fails or the service is not in steady state, 3
/// when the cluster cannot be reached or Chaos Mesh does not inject, 130 when interrupted (the
/// object removed). `-o json`: `ChaosReport` (the journal); `--junit FILE` one test case per
/// phase.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "platformctl chaos [OPTIONS] NAME\n       platformctl chaos run [OPTIONS] NAME\n       platformctl chaos list",
    after_help = "Examples:
  platformctl chaos list
  platformctl chaos pod-kill
  platformctl chaos run pod-kill --load --junit chaos.xml -o json"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the experiments of platform.yaml.
    List(ListArgs),
    /// Run an experiment (the same as `platformctl chaos NAME`).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The experiment's name in platform.yaml (`chaos list` shows them).
    #[arg(value_name = "NAME", required = true)]
    pub name: Option<String>,
    /// Send the service's `load:` entry as the probe traffic, and judge its thresholds too.
    #[arg(long)]
    pub load: bool,
    /// Also write the journal as JUnit XML here, one test case per phase.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Prometheus' base URL, instead of a port-forward to its pod.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// How the service's endpoints are reached by the probe.
    #[arg(long, value_enum, default_value_t = super::load::Via::Auto)]
    pub via: super::load::Via,
    #[command(flatten)]
    pub cluster: super::up::ClusterArgs,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Some(Command::List(_)) => list(ctx),
        Some(Command::Run(r)) => run_one(ctx, r).await,
        None => run_one(ctx, args.run).await,
    }
}

fn action_name(a: ChaosAction) -> &'static str {
    match a {
        ChaosAction::PodKill => "pod-kill",
        ChaosAction::PodFailure => "pod-failure",
        ChaosAction::ContainerKill => "container-kill",
    }
}

fn list(ctx: &super::Context<'_>) -> anyhow::Result<Outcome> {
    let platform = crate::config::load(&ctx.file)?;
    let mut text = String::new();
    if platform.chaos.is_empty() {
        text.push_str("platform.yaml has no chaos experiments (add one under `chaos:`)\n");
    } else {
        text.push_str(&format!(
            "{:<24} {:<16} {:<8} {:<14} {}\n",
            "NAME", "SERVICE", "ENV", "ACTION", "MODE"
        ));
    }
    let items: Vec<serde_json::Value> = platform
        .chaos
        .iter()
        .map(|c| {
            let mode = serde_json::to_value(c.mode).unwrap_or_default();
            let mode = mode.as_str().unwrap_or_default().to_string();
            let mode = match &c.value {
                Some(v) => format!("{mode} {v}"),
                None => mode,
            };
            text.push_str(&format!(
                "{:<24} {:<16} {:<8} {:<14} {}\n",
                c.name,
                c.service,
                c.environment,
                action_name(c.action),
                mode
            ));
            json!({ "name": c.name, "service": c.service, "environment": c.environment, "action": action_name(c.action), "mode": mode, "file": format!("chaos/{}.yaml", c.name) })
        })
        .collect();
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "ChaosList",
            status: "Listed",
            fields: json!({ "experiments": items }),
            text,
        },
    })
}

struct Notes<'a>(&'a crate::output::Printer);

impl chaos_run::Progress for Notes<'_> {
    fn phase(&self, name: &str, line: &str) {
        self.0.note(&format!("chaos: {name}: {line}"));
    }
}

async fn run_one(ctx: &super::Context<'_>, args: RunArgs) -> anyhow::Result<Outcome> {
    let mut signals = super::Signals::install();
    let name = args.name.clone().unwrap_or_default();
    let platform = args.cluster.platform(ctx)?;
    let Some(exp) = platform.chaos.iter().find(|c| c.name == name).cloned() else {
        let names: Vec<&str> = platform.chaos.iter().map(|c| c.name.as_str()).collect();
        return Err(
            UsageError::new(format!("platform.yaml has no chaos experiment `{name}`"))
                .hint(if names.is_empty() {
                    "add one under `chaos:` (docs/config.md)".to_string()
                } else {
                    format!("its experiments: {}", names.join(", "))
                })
                .into(),
        );
    };
    let project = ctx.project_dir();
    let templates = crate::render::Templates::load(Some(&super::up::templates_dir(&project)))?;
    let tree = crate::render::render(&platform, &templates)?;
    let file = format!("chaos/{}.yaml", exp.name);
    let rendered = tree
        .get(&file)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the render wrote no {file}"))?;
    let target_namespace = platform
        .environment(&exp.environment)
        .map(|e| e.namespace.clone())
        .unwrap_or_default();
    let chaos_namespace =
        crate::addons::namespace(&platform, crate::addons::Kind::ChaosMesh).to_string();
    let service = platform
        .services
        .iter()
        .find(|s| s.name == exp.service)
        .cloned()
        .ok_or_else(|| {
            UsageError::new(format!("platform.yaml has no service `{}`", exp.service))
        })?;
    let load_entry =
        crate::load::spec::find(&platform, &exp.service, Some(&exp.environment)).cloned();
    if args.load && load_entry.is_none() {
        return Err(UsageError::new(format!(
            "--load: platform.yaml has no `load:` entry for `{}` in `{}`",
            exp.service, exp.environment
        ))
        .hint("add one (docs/config.md, `load[]`), or run without --load")
        .into());
    }
    let recovery = crate::config::duration_seconds(&exp.recovery_timeout).unwrap_or(120) as f64;
    let slo = platform.slos.iter().find(|s| {
        s.service == exp.service && s.environment == exp.environment && s.availability.is_some()
    });
    let limits = Limits {
        objective: slo
            .and_then(|s| s.availability.as_ref())
            .map_or(0.999, |a| a.objective / 100.0),
        from_slo: slo.is_some(),
        slo_window_seconds: slo
            .and_then(|s| crate::config::duration_seconds(&s.window))
            .unwrap_or(30 * 86_400) as f64,
        max_budget_burn: exp.max_budget_burn / 100.0,
        recovery_timeout_seconds: recovery,
    };

    let target = crate::cluster::locate(&platform.cluster)?;
    let client = crate::kube::client_for(&target).await?;
    let (prometheus, burn) = prometheus(
        ctx,
        &platform,
        &client,
        args.prometheus_url.as_deref(),
        &exp,
    )
    .await;

    let ready =
        crate::load::target::ready_endpoints(&client, &target_namespace, &exp.service, "http")
            .await
            .unwrap_or_default();
    let via = match args.via {
        super::load::Via::Endpoints => crate::load::target::Via::Endpoints,
        super::load::Via::PortForward => crate::load::target::Via::PortForward,
        super::load::Via::Auto => match ready.first() {
            Some(r) if !crate::load::target::reachable(r.addr).await => {
                crate::load::target::Via::PortForward
            }
            _ => crate::load::target::Via::Endpoints,
        },
    };
    let paths = match &load_entry {
        Some(l) => l.paths().into_iter().map(String::from).collect(),
        None => vec![service.probes.liveness.path.clone()],
    };
    let rate = match (&load_entry, args.load) {
        (Some(l), true) => f64::from(l.rate),
        _ => f64::from(exp.probe_rate),
    };
    let probe = Probe {
        rate,
        paths,
        timeout: Duration::from_secs(5),
        via,
    };
    ctx.printer.note(&format!(
        "chaos: {}: {} of {} in {} (namespace {}), probe {:.0}/s to {}",
        exp.name,
        action_name(exp.action),
        exp.service,
        exp.environment,
        target_namespace,
        probe.rate,
        probe.paths.join(", ")
    ));
    let inputs = Inputs {
        client,
        experiment: exp.name.clone(),
        kind: "PodChaos".into(),
        rendered,
        chaos_namespace,
        service: exp.service.clone(),
        environment: exp.environment.clone(),
        target_namespace,
        grace_period: exp.grace_period,
        probe,
        limits,
        burn,
        prometheus,
    };
    let journal = chaos_run::run(
        inputs,
        &Notes(ctx.printer),
        async move { signals.recv().await },
    )
    .await?;

    // --load: the entry's thresholds on the probe traffic.
    let mut thresholds = Vec::new();
    if args.load
        && let (Some(l), Some(o)) = (&load_entry, &journal.probe_outcome)
    {
        let parsed = crate::load::spec::thresholds(l)
            .iter()
            .filter_map(|t| crate::load::Threshold::parse(t).ok())
            // (the probe runs past its plan's window: a rate threshold has nothing to judge)
            .filter(|t| t.metric != crate::load::threshold::Metric::Rate)
            .collect::<Vec<_>>();
        thresholds = crate::load::judge(&parsed, o, &journal.probe);
    }
    let load_failed = thresholds.iter().any(|j| !j.passed);
    if let Some(path) = &args.junit {
        crate::junit::write(
            path,
            "platformctl chaos",
            journal.seconds,
            &cases(&journal, &thresholds),
        )
        .with_context(|| format!("cannot write the JUnit report `{}`", path.display()))?;
    }
    let code = match journal.end {
        End::Passed if !load_failed => Code::Success,
        End::Passed | End::Failed | End::NotSteady => Code::CheckFailed,
        End::NotInjected => Code::Environment,
        End::Interrupted => Code::Interrupted,
    };
    Ok(report(&journal, &thresholds, code))
}

/// Prometheus through its port-forward (or URL), and the SLO's page burn over 5m; both `None`
/// with a note when it cannot be asked.
async fn prometheus(
    ctx: &super::Context<'_>,
    platform: &Platform,
    client: &kube::Client,
    url: Option<&str>,
    exp: &crate::config::ChaosExperiment,
) -> (Option<crate::prom::Client>, Option<chaos_run::BurnCheck>) {
    let enabled = platform
        .addons
        .kube_prometheus_stack
        .as_ref()
        .is_some_and(|a| a.enabled);
    if !enabled && url.is_none() {
        return (None, None);
    }
    let namespace =
        crate::addons::namespace(platform, crate::addons::Kind::KubePrometheusStack).to_string();
    let p = match tokio::time::timeout(
        Duration::from_secs(10),
        crate::prom::connect::prometheus(client, &namespace, url),
    )
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            ctx.printer.note(&format!("chaos: Prometheus cannot be asked ({e}): the SLO burn and server-side availability are not checked"));
            return (None, None);
        }
        Err(_) => {
            ctx.printer.note("chaos: Prometheus did not answer within 10 s: the SLO burn and server-side availability are not checked");
            return (None, None);
        }
    };
    let specs: Vec<crate::slo::Spec> = crate::slo::specs(platform)
        .into_iter()
        .filter(|s| s.service == exp.service && s.environment == exp.environment)
        .collect();
    let burn = match crate::slo::collect(&p, &specs).await {
        Ok(statuses) => statuses
            .iter()
            .flat_map(|s| s.burn.iter())
            .find(|b| b.severity == "page" && b.short_window == "5m")
            .map(|b| chaos_run::BurnCheck {
                burn_5m: b.short,
                threshold: b.threshold,
            }),
        Err(e) => {
            ctx.printer
                .note(&format!("chaos: the SLO's burn cannot be read: {e}"));
            None
        }
    };
    (Some(p), burn)
}

fn cases(j: &Journal, thresholds: &[crate::load::Judged]) -> Vec<crate::junit::Case> {
    let mut cases: Vec<crate::junit::Case> = j
        .phases
        .iter()
        .map(|p| crate::junit::Case {
            classname: format!("chaos.{}", j.experiment),
            name: p.name.clone(),
            time: p.seconds,
            outcome: match p.outcome {
                PhaseOutcome::Passed => crate::junit::Outcome::Passed,
                PhaseOutcome::Failed => crate::junit::Outcome::Failed(p.detail.clone()),
                PhaseOutcome::Skipped => crate::junit::Outcome::Skipped(p.detail.clone()),
            },
            output: p.detail.clone(),
        })
        .collect();
    for t in thresholds {
        cases.push(crate::junit::Case {
            classname: format!("chaos.{}.load", j.experiment),
            name: t.threshold.clone(),
            time: 0.0,
            outcome: if t.passed {
                crate::junit::Outcome::Passed
            } else {
                crate::junit::Outcome::Failed(format!(
                    "{}: {} (limit {})",
                    t.threshold, t.actual, t.limit
                ))
            },
            output: format!("{}: {}", t.threshold, t.actual),
        });
    }
    cases
}

fn report(j: &Journal, thresholds: &[crate::load::Judged], code: Code) -> Outcome {
    let status = match j.end {
        End::Passed if code == Code::Success => "Passed",
        End::Passed | End::Failed => "Failed",
        End::NotSteady => "NotSteady",
        End::NotInjected => "NotInjected",
        End::Interrupted => "Interrupted",
    };
    let mut text = format!(
        "chaos {} on {} in {} (run {}): {}\n",
        j.experiment, j.service, j.environment, j.run, status
    );
    for p in &j.phases {
        let mark = match p.outcome {
            PhaseOutcome::Passed => "ok  ",
            PhaseOutcome::Failed => "FAIL",
            PhaseOutcome::Skipped => "skip",
        };
        text.push_str(&format!(
            "  {mark} {:<13} {:>6.1} s  {}\n",
            p.name, p.seconds, p.detail
        ));
    }
    if !j.killed.is_empty() {
        text.push_str(&format!("  killed       {}\n", j.killed.join(", ")));
    }
    for r in &j.replacements {
        text.push_str(&format!(
            "  replacement  {} {}\n",
            r.pod,
            r.ready_after.map_or("never Ready".to_string(), |s| format!(
                "Ready after {s:.1} s"
            ))
        ));
    }
    text.push_str(&format!(
        "  probe        {} requests, {} failed, p95 {:.1} ms\n",
        j.probe.ok + j.probe.failed,
        j.probe.failed,
        j.probe.latency_ms.p95
    ));
    for (why, n) in &j.probe.errors {
        text.push_str(&format!("  failed       {n} × {why}\n"));
    }
    for (status, n) in j.probe.statuses.iter().filter(|(s, _)| s.as_str() >= "400") {
        text.push_str(&format!("  failed       {n} × status {status}\n"));
    }
    for t in thresholds {
        let mark = if t.passed { "pass" } else { "FAIL" };
        text.push_str(&format!(
            "  {mark}  {:<22} {} (limit {})\n",
            t.threshold, t.actual, t.limit
        ));
    }
    Outcome {
        code,
        report: Report {
            kind: "ChaosReport",
            status,
            fields: json!({ "journal": j, "loadThresholds": thresholds }),
            text,
        },
    }
}

//! `platformctl up`: resolves the flags into `up::Settings`, runs the plan, reports.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::config::Driver;
use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report, StepPrinter};
use crate::up::{self, Step};

/// Stand the whole platform up: cluster, addons, namespaces, secrets, GitOps, applications.
///
/// Runs the plan preflight → cluster → namespaces → secrets → addons → images → gitops → apps →
/// wait. Every step is idempotent: on a converged platform `up` changes nothing, and a run that
/// was interrupted (Ctrl-C, a lost connection, a kill) is finished by running `up` again.
/// `--driver existing` uses any kubeconfig context instead of minikube.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Run only these steps (comma-separated), e.g. `--only addons,wait`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "STEPS",
        conflicts_with = "skip"
    )]
    pub only: Vec<String>,
    /// Run every step but these (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "STEPS")]
    pub skip: Vec<String>,
    /// `--dry-run` prints the plan and touches nothing; `--dry-run=server` sends every object
    /// to the API server with dryRun (validated, defaulted, not stored) and changes no release;
    /// objects whose namespace or CRD a real run would create first are listed as not checked.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", require_equals = true, value_name = "MODE")]
    pub dry_run: Option<DryRun>,
    /// How long the waits may take (Established CRDs, Synced and Healthy applications).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Take over fields another field manager owns instead of stopping on the conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Adopt objects an addon's chart renders that exist already without being its release's
    /// (CRDs or an APIService installed by hand or by another tool): give them Helm's ownership
    /// label and annotations so that the release manages them from then on. Without it, such an
    /// object stops `up` (exit 2), naming it and its owner.
    #[arg(long)]
    pub adopt: bool,
    /// Print the generated logins (Argo CD, Grafana) on stdout at the end. Never logged.
    #[arg(long)]
    pub show_credentials: bool,
    /// One chart repository for every addon (a mirror, an air-gapped copy, or the simulated
    /// cluster's stand-in charts: `tests/sim/cluster charts` prints its URL); wins over
    /// `addons.*.repository`. An https://, http:// or oci:// URL.
    #[arg(long, value_name = "URL", env = "PLATFORMCTL_CHARTS")]
    pub charts: Option<String>,
}

/// Where the platform runs: shared by `up`, `status` and `down`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Where the platform runs; overrides `cluster.driver` of platform.yaml.
    #[arg(long, value_enum)]
    pub driver: Option<DriverArg>,
    /// kubeconfig context for `--driver existing` (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// Loads platform.yaml and applies the flags over its `cluster` section.
    pub fn platform(self, ctx: &super::Context<'_>) -> anyhow::Result<crate::config::Platform> {
        let ClusterArgs { driver, context } = self;
        let mut platform = crate::config::load(&ctx.file)?;
        if let Some(d) = driver {
            platform.cluster.driver = match d {
                DriverArg::Minikube => Driver::Minikube,
                DriverArg::Existing => Driver::Existing,
            };
        }
        if context.is_some() {
            if platform.cluster.driver != Driver::Existing {
                return Err(UsageError::new("`--context` is for `--driver existing`")
                    .hint("minikube's context is its profile name (`cluster.profile`)")
                    .into());
            }
            platform.cluster.context = context;
        }
        Ok(platform)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverArg {
    Minikube,
    Existing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    Client,
    Server,
}

/// `90s`, `10m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 10m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}` is not a duration like 90s, 10m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

fn steps(only: &[String], skip: &[String]) -> Result<Vec<Step>, UsageError> {
    let parse = |names: &[String]| -> Result<Vec<Step>, UsageError> {
        names
            .iter()
            .map(|n| {
                Step::parse(n.trim()).ok_or_else(|| {
                    UsageError::new(format!("there is no step `{n}`")).hint(format!(
                        "the steps are: {}",
                        Step::ALL.map(Step::name).join(", ")
                    ))
                })
            })
            .collect()
    };
    let only = parse(only)?;
    let skip = parse(skip)?;
    Ok(Step::ALL
        .into_iter()
        .filter(|s| (only.is_empty() || only.contains(s)) && !skip.contains(s))
        .collect())
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        cluster,
        only,
        skip,
        dry_run,
        timeout,
        force_conflicts,
        adopt,
        show_credentials,
        charts,
    } = args;
    let mut platform = cluster.platform(ctx)?;
    if let Some(url) = charts {
        if !crate::config::chart_repository(&url) {
            return Err(UsageError::new(format!(
                "`--charts {url}`: not an https://, http:// or oci:// chart repository URL"
            ))
            .into());
        }
        for addon in platform.addons.each_mut() {
            addon.repository = Some(url.clone());
        }
    }
    let project = ctx.project_dir();
    let templates = crate::render::Templates::load(Some(&templates_dir(&project)))?;
    let tree = crate::render::render(&platform, &templates)?;
    let settings = up::Settings {
        platform,
        project,
        tree,
        steps: steps(&only, &skip)?,
        timeout,
        force_conflicts,
        adopt,
        server_dry_run: dry_run == Some(DryRun::Server),
    };
    if dry_run == Some(DryRun::Client) {
        let plan = up::plan(&settings);
        let text = plan
            .iter()
            .map(|(s, what)| format!("{:<11} {what}", s.name()))
            .collect::<Vec<_>>()
            .join("\n");
        let steps: Vec<_> = plan
            .iter()
            .map(|(s, what)| json!({"name": s.name(), "plan": what}))
            .collect();
        return Ok(Outcome {
            code: Code::Success,
            report: Report {
                kind: "UpPlan",
                status: "Planned",
                fields: json!({ "steps": steps }),
                text,
            },
        });
    }
    let printer = StepPrinter::new(ctx.printer);
    let mut report = up::run(&settings, &printer).await?;
    if show_credentials {
        report.credentials = up::credentials(&settings).await?;
    }
    let status = if report.changed() {
        "Applied"
    } else {
        "Converged"
    };
    let mut text = String::new();
    if !report.endpoints.is_empty() {
        text.push_str("Reach the platform:\n");
        for e in &report.endpoints {
            text.push_str(&format!("  {:<26} {}\n", e.name, e.how));
        }
    }
    if show_credentials {
        text.push_str("Logins (shown once, not stored anywhere but the cluster's Secrets):\n");
        for c in &report.credentials {
            text.push_str(&format!("  {:<26} {} / {}\n", c.name, c.user, c.password));
        }
    } else if settings.steps.contains(&Step::Addons) {
        text.push_str("Logins: `platformctl up --only cluster --show-credentials` prints them.\n");
    }
    let changed: usize = report.steps.iter().map(|s| s.changes.len()).sum();
    text.push_str(&format!(
        "{} in {:.1} s: {changed} change{}",
        if status == "Converged" {
            "converged, nothing to do"
        } else {
            "platform up"
        },
        report.steps.iter().map(|s| s.seconds).sum::<f64>(),
        if changed == 1 { "" } else { "s" }
    ));
    let mut fields = json!({
        "steps": report.steps,
        "endpoints": report.endpoints,
    });
    if show_credentials {
        fields["credentials"] = json!(report.credentials);
    }
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "UpReport",
            status,
            fields,
            text,
        },
    })
}

pub(super) fn templates_dir(project: &std::path::Path) -> PathBuf {
    if project == std::path::Path::new(".") {
        PathBuf::from("templates")
    } else {
        project.join("templates")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_selected_by_name() {
        let s = steps(&["wait".into(), "addons".into()], &[]).expect("valid");
        assert_eq!(s, [Step::Addons, Step::Wait]);
        let s = steps(&[], &["images".into()]).expect("valid");
        assert_eq!(s.len(), Step::ALL.len() - 1);
        let e = steps(&["adons".into()], &[]).expect_err("unknown");
        assert_eq!(e.to_string(), "there is no step `adons`");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("ten").is_err());
    }
}

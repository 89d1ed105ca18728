//! `platformctl doctor`: prerequisites and known local-cluster pitfalls, one line per finding.

use serde_json::json;

use crate::doctor::{self, Severity};
use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};

/// Arguments of `platformctl doctor` (its help text is on `Command::Doctor`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check for this cluster driver instead of `cluster.driver` in platform.yaml.
    #[arg(long, value_enum, value_name = "DRIVER")]
    pub driver: Option<DriverArg>,
    /// kubeconfig context for `--driver existing` (default: `cluster.context`, else the
    /// current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Do not ask the chart repositories whether they hold the pinned versions (the only check
    /// that needs the network).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverArg {
    /// A local minikube profile, `cluster.profile`, with `cluster.nodes` nodes.
    Minikube,
    /// Any cluster a kubeconfig context reaches.
    Existing,
}

impl From<DriverArg> for crate::config::Driver {
    fn from(d: DriverArg) -> Self {
        match d {
            DriverArg::Minikube => crate::config::Driver::Minikube,
            DriverArg::Existing => crate::config::Driver::Existing,
        }
    }
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        driver,
        context,
        offline,
    } = args;
    let platform = crate::config::load(&ctx.file)?;
    // The charts `up` would install, from the repositories it would install them from.
    let charts = if offline {
        Vec::new()
    } else {
        crate::addons::plan(&platform, &crate::addons::Facts::default())
    };
    let mut cluster = platform.cluster;
    if let Some(d) = driver {
        cluster.driver = d.into();
    }
    if context.is_some() {
        cluster.context = context;
    }
    if cluster.driver == crate::config::Driver::Minikube && cluster.context.is_some() {
        return Err(
            UsageError::new("`--context` only applies to `--driver existing`")
                .hint("the minikube context is the profile name, `cluster.profile`")
                .into(),
        );
    }
    let report = doctor::run(&cluster, &charts, &doctor::Env::from_process()).await;

    let color = ctx.printer.color_stdout();
    let mut text = String::new();
    for f in &report.findings {
        text.push_str(&format!("{} {}\n", mark(f.severity, color), f.message));
        if let Some(fix) = &f.fix {
            text.push_str(&format!("  fix: {fix}\n"));
        }
    }
    let (errors, warnings) = (report.count(Severity::Error), report.count(Severity::Warn));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    text.push_str(&format!(
        "{}, {} ({})",
        plural(errors, "error"),
        plural(warnings, "warning"),
        match cluster.driver {
            crate::config::Driver::Minikube => format!(
                "minikube profile `{}`, {}",
                cluster.profile,
                plural(cluster.nodes as usize, "node")
            ),
            crate::config::Driver::Existing => "driver existing".into(),
        }
    ));
    let passed = report.passed();
    Ok(Outcome {
        code: if passed {
            Code::Success
        } else {
            Code::CheckFailed
        },
        report: Report {
            kind: "DoctorReport",
            status: if passed { "Passed" } else { "Failed" },
            fields: json!({
                "driver": cluster.driver,
                "summary": {
                    "ok": report.count(Severity::Ok),
                    "warn": warnings,
                    "error": errors,
                },
                "findings": report.findings,
            }),
            text,
        },
    })
}

fn mark(severity: Severity, color: bool) -> String {
    let (mark, code) = match severity {
        Severity::Ok => ("✓", "32"),
        Severity::Warn => ("!", "33"),
        Severity::Error => ("✗", "31"),
    };
    if color {
        format!("\x1b[{code}m{mark}\x1b[0m")
    } else {
        mark.to_string()
    }
}

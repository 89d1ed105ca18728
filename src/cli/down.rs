//! `platformctl down`: delete the minikube profile, or with `--keep-cluster` only what `up` made.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use serde_json::json;

use crate::config::Driver;
use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};

/// Remove the platform: the whole minikube profile, or with `--keep-cluster` exactly what `up`
/// created (Argo CD applications and projects, Helm releases, labelled namespaces and Secrets).
///
/// Asks for confirmation on a terminal; `--yes` skips it (CI). Never deletes a cluster it did
/// not create: with `--driver existing` only `--keep-cluster` is allowed.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: super::up::ClusterArgs,
    /// Keep the cluster; remove only what `up` installed into it.
    #[arg(long)]
    pub keep_cluster: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long to wait for each removal to finish: the applications (Argo CD deletes what they
    /// deployed first), then the namespaces (gone, not only Terminating, as `kubectl delete`
    /// waits).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::up::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        cluster,
        keep_cluster,
        yes,
        timeout,
    } = args;
    let platform = cluster.platform(ctx)?;
    let driver = platform.cluster.driver;
    if driver == Driver::Existing && !keep_cluster {
        return Err(UsageError::new(
            "`down` never deletes a cluster it did not create (`--driver existing`)",
        )
        .hint("`platformctl down --keep-cluster` removes what `up` installed into it")
        .into());
    }
    let what = if keep_cluster {
        format!("everything `up` installed for `{}`", platform.metadata.name)
    } else {
        format!(
            "minikube profile `{}` and everything in it",
            platform.cluster.profile
        )
    };
    if !yes {
        confirm(ctx, &what)?;
    }
    let target = crate::cluster::locate(&platform.cluster)?;
    if !keep_cluster {
        crate::cluster::minikube::Minikube::from_env()
            .delete(&platform.cluster.profile)
            .await?;
        return Ok(Outcome {
            code: Code::Success,
            report: Report {
                kind: "DownReport",
                status: "Deleted",
                fields: json!({ "profile": platform.cluster.profile }),
                text: format!("deleted minikube profile `{}`", platform.cluster.profile),
            },
        });
    }
    let client = crate::kube::client_for(&target).await?;
    let helm = crate::addons::Helm::for_target(&target)?;
    let printer = ctx.printer;
    let removed = crate::down::keep_cluster(&platform, &client, &helm, timeout, &|r| {
        printer.note(&format!("down: removed {} {}", r.kind, r.name));
    })
    .await?;
    let text = if removed.is_empty() {
        "nothing to remove".to_string()
    } else {
        format!(
            "removed {}; the cluster is kept",
            crate::output::counted(removed.len(), "object")
        )
    };
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "DownReport",
            status: if removed.is_empty() {
                "NothingToDo"
            } else {
                "Removed"
            },
            fields: json!({ "removed": removed }),
            text,
        },
    })
}

fn confirm(ctx: &super::Context<'_>, what: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(
            UsageError::new(format!("refusing to remove {what} without confirmation"))
                .hint("pass `--yes` to confirm (CI)")
                .into(),
        );
    }
    ctx.printer.note(&format!("remove {what}? [y/N]"));
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(UsageError::new("not confirmed; nothing removed").into())
    }
}

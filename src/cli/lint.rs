//! `platformctl lint`: offline schema and policy checks of the rendered tree.

use anyhow::Context as _;
use serde_json::json;

use crate::exit::Code;
use crate::output::{Outcome, Report};

/// Check the rendered tree offline: strict schemas and platform policy.
///
/// Every object under argocd/, envs/ and chaos/ must parse strictly into its API type
/// (built-in kinds into the Kubernetes 1.34 API, Argo CD, Argo Rollouts, prometheus-operator
/// and Chaos Mesh kinds into their CRD schemas; unknown fields are errors), and hold the
/// policy: production replicas >= 2, requests and limits, readiness and liveness probes,
/// pinned image tags, Applications inside their project's namespaces, no Secret data.
/// Exits 1 when anything is found, and when there is no rendered tree to lint.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {} = args;
    let platform = crate::config::load(&ctx.file)?;
    let root = ctx.project_dir();
    let summary = crate::lint::lint(&root, &platform)
        .with_context(|| format!("cannot read the tree in `{}`", root.display()))?;
    let failed = summary.findings.iter().any(|f| f.is_error());
    let warnings =
        summary.findings.len() - summary.findings.iter().filter(|f| f.is_error()).count();
    let mut text = String::new();
    for f in &summary.findings {
        text.push_str(&format!(
            "{}: {}: [{}]{} {}\n",
            f.file,
            f.object,
            f.rule,
            if f.is_error() { "" } else { " warning:" },
            f.message
        ));
    }
    use crate::output::counted;
    // No tree is not a clean tree: CI that lints before rendering must not pass.
    let empty = summary.files == 0;
    if empty {
        text.push_str(&format!(
            "nothing to lint: no rendered tree in `{}` (run `platformctl render` first)",
            root.display()
        ));
    } else {
        text.push_str(&format!(
            "{} in {}: {}",
            counted(summary.objects, "object"),
            counted(summary.files, "file"),
            match (failed, warnings) {
                (true, 0) => counted(summary.findings.len(), "problem"),
                (true, w) => format!(
                    "{}, {}",
                    counted(summary.findings.len() - w, "problem"),
                    counted(w, "warning")
                ),
                (false, 0) => "no problems".to_string(),
                (false, w) => format!("no problems, {}", counted(w, "warning")),
            }
        ));
    }
    Ok(Outcome {
        code: if failed || empty {
            Code::CheckFailed
        } else {
            Code::Success
        },
        report: Report {
            kind: "LintReport",
            status: if empty {
                "Empty"
            } else if failed {
                "Failed"
            } else {
                "Passed"
            },
            fields: json!({ "files": summary.files, "objects": summary.objects, "findings": summary.findings }),
            text,
        },
    })
}

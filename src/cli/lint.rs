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
/// Exits 1 when anything is found.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {} = args;
    let platform = crate::config::load(&ctx.file)?;
    let root = ctx.project_dir();
    let summary = crate::lint::lint(&root, &platform)
        .with_context(|| format!("cannot read the tree in `{}`", root.display()))?;
    let failed = !summary.findings.is_empty();
    let mut text = String::new();
    for f in &summary.findings {
        text.push_str(&format!(
            "{}: {}: [{}] {}\n",
            f.file, f.object, f.rule, f.message
        ));
    }
    text.push_str(&format!(
        "{} objects in {} files: {}",
        summary.objects,
        summary.files,
        if failed {
            format!("{} problems", summary.findings.len())
        } else {
            "no problems".to_string()
        }
    ));
    if summary.files == 0 {
        ctx.printer.note(&format!(
            "hint: no rendered tree in `{}`; run `platformctl render` first",
            root.display()
        ));
    }
    Ok(Outcome {
        code: if failed {
            Code::CheckFailed
        } else {
            Code::Success
        },
        report: Report {
            kind: "LintReport",
            status: if failed { "Failed" } else { "Passed" },
            fields: json!({ "files": summary.files, "objects": summary.objects, "findings": summary.findings }),
            text,
        },
    })
}

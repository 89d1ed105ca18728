//! `rollout promote|abort|retry|undo|pause|resume`: one change to the Rollout, as the kubectl
//! plugin makes it, and what it changed.

use anyhow::Context as _;
use kube::api::Api;
use serde_json::json;

use super::{Target, resolve};
use crate::exit::Code;
use crate::output::{Outcome, Report};
use crate::rollout::{self, Action, Info, actions};

pub async fn run(
    ctx: &crate::cli::Context<'_>,
    t: Target,
    action: Action,
) -> anyhow::Result<Outcome> {
    let r = resolve(ctx, t).await?;
    let snapshot = rollout::snapshot(&r.client, &r.namespace, &r.service, Some(&r.env)).await?;
    let before = Info::of(&snapshot);
    let plan = actions::plan(action, &snapshot.rollout, &snapshot.replica_sets)?;
    let verb = action.verb();
    let mut notes = Vec::new();
    // A spec change Git does not have is put back by an Application that self-heals.
    let app = rollout::managed_by(&snapshot.rollout);
    let mut git_change = None;
    if let (Some(app), true) = (&app, plan.spec.is_some() || plan.template.is_some()) {
        let argocd = crate::addons::namespace(&r.platform, crate::addons::Kind::Argocd);
        let apps: Api<kube::api::DynamicObject> = Api::namespaced_with(
            r.client.clone(),
            argocd,
            &crate::kube::argo("Application", "applications"),
        );
        let self_heals = match apps.get_opt(app).await {
            Ok(Some(a)) => a.data["spec"]["syncPolicy"]["automated"]["selfHeal"] == true,
            _ => false,
        };
        if self_heals {
            let mut note = format!(
                "Argo CD application `{app}` self-heals: it puts back the Rollout's spec as Git has it, so this {verb} lasts only until its next sync"
            );
            if let Action::Undo(to) = action
                && let Some(tag) = plan
                    .template
                    .as_ref()
                    .and_then(|t| t["spec"]["containers"][0]["image"].as_str())
                    .and_then(image_tag)
            {
                let revision = if to > 0 {
                    format!(" --to-revision {to}")
                } else {
                    String::new()
                };
                let cmd = format!(
                    "platformctl rollout undo {} --env {}{revision} --git",
                    r.service, r.env
                );
                note.push_str(&format!(
                    "; to go back to {tag} for good, change Git: `{cmd}` commits and pushes it"
                ));
                git_change = Some(cmd);
            }
            notes.push(note);
        }
    }
    if let Some(nothing) = &plan.nothing {
        let message = format!(
            "rollout `{}` in {}: nothing to {verb}: {nothing}",
            r.service, r.env
        );
        return Ok(outcome(
            &r.env, action, &before, false, &message, &notes, git_change,
        ));
    }
    let sent = actions::apply(&actions::api(&r.client, &r.namespace), &r.service, &plan)
        .await
        .with_context(|| format!("cannot {verb} rollout `{}` in {}", r.service, r.env))?;
    let settle = actions::SETTLE.as_secs();
    match sent {
        actions::Sent::Observed => {}
        actions::Sent::Nudged => notes.push(format!(
            "the Rollouts controller had not acted on the {verb} after {settle} s (a change made while it reconciles can be lost from its cache, argoproj/argo-rollouts#4694): platformctl touched the Rollout's `{}` annotation so that it reads it afresh",
            actions::NUDGE
        )),
        actions::Sent::Unobserved => notes.push(format!(
            "nothing has acted on the {verb} yet, not even after touching the Rollout's `{}` annotation twice: is the Argo Rollouts controller running?",
            actions::NUDGE
        )),
        actions::Sent::NudgeFailed(why) => notes.push(format!(
            "the Rollouts controller had not acted on the {verb} after {settle} s, and touching the Rollout's `{}` annotation (so that it reads it afresh) failed: {why}",
            actions::NUDGE
        )),
    }
    for n in &notes {
        ctx.printer.note(&format!("note: {n}"));
    }
    let done = match action {
        Action::Promote => "promoted",
        Action::PromoteFull => "fully promoted",
        Action::Abort => "aborted",
        Action::Retry => "retried",
        Action::Pause => "paused",
        Action::Resume => "resumed",
        Action::Undo(_) => "rolled back to an earlier revision",
    };
    let mut message = format!("rollout `{}` in {} {done}", r.service, r.env);
    if let (Action::Promote, Some(s)) = (action, &before.step)
        && s.index < s.total
    {
        message.push_str(&format!(
            " (from step {}/{} {})",
            s.index + 1,
            s.total,
            s.action
        ));
    }
    Ok(outcome(
        &r.env, action, &before, true, &message, &notes, git_change,
    ))
}

/// `repo:tag` (or `repo:tag@digest`) → `tag`.
pub(super) fn image_tag(image: &str) -> Option<String> {
    let name = image.split('@').next()?;
    let (_, tag) = name.rsplit_once(':')?;
    (!tag.contains('/')).then(|| tag.to_string())
}

fn outcome(
    env: &str,
    action: Action,
    before: &Info,
    changed: bool,
    message: &str,
    notes: &[String],
    git_change: Option<String>,
) -> Outcome {
    Outcome {
        code: Code::Success,
        report: Report {
            kind: "RolloutActionReport",
            status: if changed { "Changed" } else { "Unchanged" },
            fields: json!({
                "environment": env,
                "action": action.verb(),
                "rollout": before.name,
                "namespace": before.namespace,
                "message": message,
                "notes": notes,
                "git": null,
                "gitChange": git_change,
                "before": before,
            }),
            text: message.to_string(),
        },
    }
}

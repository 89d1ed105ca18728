//! `rollout undo --git`: the rollback as a Git change, so that it lasts where Argo CD owns the
//! Rollout. The earlier revision's tag is written into platform.yaml (as `set-image` writes
//! it), the tree re-rendered, committed ("roll back orders to 0.1.0 in prod"), pushed where
//! Argo CD reads (as `promote` pushes) and the Application asked to refresh. Argo CD then
//! deploys it as a new release, through the strategy's steps and gates.

use anyhow::Context as _;
use serde_json::json;

use super::{Target, resolve};
use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};
use crate::rollout::{self, Action, Info, actions};

pub async fn in_git(ctx: &crate::cli::Context<'_>, t: Target, to: i64) -> anyhow::Result<Outcome> {
    let r = resolve(ctx, t).await?;
    let snapshot = rollout::snapshot(&r.client, &r.namespace, &r.service, Some(&r.env)).await?;
    let before = Info::of(&snapshot);
    let plan = actions::plan(Action::Undo(to), &snapshot.rollout, &snapshot.replica_sets)?;
    let (service, env) = (&r.service, &r.env);
    if let Some(nothing) = &plan.nothing {
        let message = format!("rollout `{service}` in {env}: nothing to undo: {nothing}");
        return Ok(outcome(env, &before, "Unchanged", &message, json!(null)));
    }
    let image = plan
        .template
        .as_ref()
        .and_then(|t| t["spec"]["containers"][0]["image"].as_str())
        .unwrap_or_default()
        .to_string();
    let Some(tag) = super::act::image_tag(&image) else {
        return Err(UsageError::new(format!(
            "the revision to go back to runs `{image}`, which has no tag platform.yaml could name"
        ))
        .hint(format!(
            "undo it live instead: `platformctl rollout undo {service} --env {env}`"
        ))
        .into());
    };
    let written = crate::release::write(
        &ctx.file,
        &[(service.clone(), env.clone(), tag.clone())],
        &crate::cli::up::templates_dir(&ctx.project_dir()),
    )?;
    let commit =
        crate::release::commit(&ctx.file, &format!("roll back {service} to {tag} in {env}"))
            .await
            .context("cannot commit the rollback")?;
    let project = ctx.project_dir();
    let push = crate::promote::git::push(&r.client, &r.platform, &project)
        .await
        .context("cannot push the rollback")?;
    let app = crate::promote::application(&r.platform, env);
    crate::promote::git::refresh(&r.client, &r.platform, &app).await?;
    let head = push.commit.get(..12).unwrap_or(&push.commit);
    let said = if written.changes.is_empty() {
        format!("platform.yaml already gave {service} {tag} in {env}")
    } else {
        format!("platform.yaml now gives {service} {tag} in {env}")
    };
    let pushed = if push.changed {
        "pushed to"
    } else {
        "already on"
    };
    let message = format!(
        "{said} (commit {head}, {pushed} {} {}); Argo CD application `{app}` deploys it as a new release: follow it with `platformctl rollout status {service} --env {env}`",
        push.url, push.branch
    );
    let status = if written.changes.is_empty() && commit.is_none() && !push.changed {
        "Unchanged"
    } else {
        "Changed"
    };
    Ok(outcome(
        env,
        &before,
        status,
        &message,
        json!({"tag": tag, "commit": commit, "push": push, "application": app}),
    ))
}

fn outcome(
    env: &str,
    before: &Info,
    status: &'static str,
    message: &str,
    git: serde_json::Value,
) -> Outcome {
    Outcome {
        code: Code::Success,
        report: Report {
            kind: "RolloutActionReport",
            status,
            fields: json!({
                "environment": env,
                "action": "undo",
                "rollout": before.name,
                "namespace": before.namespace,
                "message": message,
                "notes": [],
                "git": git,
                "gitChange": null,
                "before": before,
            }),
            text: message.to_string(),
        },
    }
}

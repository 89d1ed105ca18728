//! The GitOps source (in-cluster git server or remote) and the wait for the Applications.

use std::time::Duration;

use kube::api::{Api, DynamicObject};

use super::*;
use preflight::local_source_ready;

pub(super) async fn gitops(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    let g = &settings.platform.gitops;
    let Some(remote) = &g.remote else {
        let Some(local) = &g.local else {
            return Ok(Outcome::skipped("no GitOps source"));
        };
        return local_server(settings, state, progress, local).await;
    };
    let refname = format!("refs/heads/{}", remote.branch);
    let out = gitserver::git(
        &settings.project,
        &["ls-remote", "--exit-code", &remote.url, &refname],
        Duration::from_secs(30),
    )
    .await?;
    if !out.success() {
        let what = if out.code == Some(2) {
            format!(
                "branch `{}` does not exist in `{}`",
                remote.branch, remote.url
            )
        } else {
            format!("cannot read `{}`: {}", remote.url, out.stderr.trim())
        };
        return Err(err(what));
    }
    state.revision = out.stdout.split_whitespace().next().map(str::to_string);
    Ok(Outcome::done(
        Vec::new(),
        format!("{} {} at {}", remote.url, remote.branch, short(&out.stdout)),
    ))
}

/// The in-cluster git server: its objects applied, its pod waited Ready, the project's HEAD
/// pushed to it.
pub(super) async fn local_server(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
    local: &crate::config::LocalGit,
) -> Result<Outcome, BoxError> {
    // (again: `--only` may have left preflight out, and nothing is applied without a commit)
    let head = local_source_ready(settings).await?;
    let client = connect(settings, state).await?;
    let manifests = gitserver::manifests(&settings.platform, local);
    let applied = apply(
        settings,
        client.clone(),
        manifests.clone(),
        progress,
        Step::Gitops,
        &state.absent,
    )
    .await?;
    if settings.server_dry_run {
        return Ok(applied);
    }
    let targets = manifests
        .iter()
        .filter(|m| m.kind() == "Deployment")
        .map(|m| wait::Target {
            key: m.key(),
            api: Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &local.namespace,
                &kube::core::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            ),
            name: m.name().to_string(),
        })
        .collect();
    wait::all_ready(targets, settings.timeout, &|key, readiness| {
        progress.message(Step::Gitops, &format!("{key}: {readiness:?}"));
    })
    .await?;
    progress.message(Step::Gitops, "pushing HEAD to the in-cluster repository");
    let url = local.url(&settings.platform.metadata.name);
    let mut changes = applied.changes;
    let detail = match gitserver::push(&client, &settings.platform, local, &settings.project, &head)
        .await?
    {
        Pushed::Unchanged(head) => {
            let detail = format!("{url} {} at {}", local.branch, short(&head));
            state.revision = Some(head);
            detail
        }
        Pushed::Updated(before, head) => {
            state.revision = Some(head.clone());
            changes.push(format!(
                "pushed {} to {url} {}{}",
                short(&head),
                local.branch,
                before
                    .map(|b| format!(" (was {})", short(&b)))
                    .unwrap_or_default()
            ));
            format!("{url} {} at {}", local.branch, short(&head))
        }
    };
    Ok(Outcome::done(changes, detail))
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub(super) async fn wait_apps(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    if settings.server_dry_run {
        return Ok(Outcome::skipped("server dry run: nothing to wait for"));
    }
    let client = connect(settings, state).await?;
    let apps: Vec<Manifest> = argocd_manifests(settings)?
        .into_iter()
        .filter(|m| m.kind() == "Application")
        .collect();
    if apps.is_empty() {
        return Ok(Outcome::skipped("no Argo CD application"));
    }
    // Synced at the commit the source has (asked to refresh where it is not: a push is seen
    // at once rather than at Argo CD's next poll), then Healthy.
    let timeout = settings.timeout;
    let wait = async {
        if let Some(revision) = state.revision.clone() {
            super::super::apps::synced_at(&settings.platform, &client, &apps, &revision, progress)
                .await?;
        }
        super::super::apps::healthy(&settings.platform, &client, &apps, progress).await
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Box::new(wait::Error::TimedOut {
                after: timeout,
                waiting: apps
                    .iter()
                    .map(|m| (m.key(), "not Synced and Healthy".to_string()))
                    .collect(),
            }));
        }
    }
    Ok(Outcome::done(
        Vec::new(),
        format!(
            "{} Synced and Healthy",
            crate::output::counted(apps.len(), "application")
        ),
    ))
}

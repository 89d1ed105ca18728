//! The Git side of a promotion: the project's HEAD pushed where Argo CD reads it (the in-cluster
//! server of `gitops.local` through a port-forward, as `up` pushes, or `gitops.remote` with the
//! user's own git credentials; fast-forward only either way), the Application asked to refresh
//! now rather than at its next poll, and the revert of a promotion the Rollouts controller
//! aborted.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::config::Platform;
use crate::up::gitserver::{self, Pushed};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Server(#[from] gitserver::Error),
    #[error("{0}")]
    Git(String),
    #[error("cannot ask Argo CD to refresh application `{app}`")]
    Refresh {
        app: String,
        #[source]
        source: kube::Error,
    },
}

/// Where the push went and what it changed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub url: String,
    pub branch: String,
    pub commit: String,
    /// The branch's commit before (none when it did not move or did not exist).
    pub before: Option<String>,
    pub changed: bool,
}

const LIMIT: Duration = Duration::from_secs(60);

async fn git(dir: &Path, args: &[&str]) -> Result<crate::cluster::process::Output, Error> {
    gitserver::git(dir, args, LIMIT)
        .await
        .map_err(|e| Error::Git(e.to_string()))
}

/// Pushes the project's HEAD to the platform's GitOps source.
pub async fn push(client: &Client, platform: &Platform, project: &Path) -> Result<Push, Error> {
    let head = gitserver::head(project).await?;
    if let Some(remote) = &platform.gitops.remote {
        let refname = format!("refs/heads/{}", remote.branch);
        let listed = git(project, &["ls-remote", &remote.url, &refname]).await?;
        let before = listed.stdout.split_whitespace().next().map(str::to_string);
        if before.as_deref() == Some(head.as_str()) {
            return Ok(Push {
                url: remote.url.clone(),
                branch: remote.branch.clone(),
                commit: head,
                before: None,
                changed: false,
            });
        }
        let spec = format!("{head}:{refname}");
        let out = git(project, &["push", "--porcelain", &remote.url, &spec]).await?;
        if !out.success() {
            let why = if out.stdout.contains("[rejected]")
                || out.stderr.contains("non-fast-forward")
            {
                format!(
                    "`{}` branch `{}` has commits this project does not: pull them, then promote again",
                    remote.url, remote.branch
                )
            } else {
                format!("git push to `{}`: {}", remote.url, out.stderr.trim())
            };
            return Err(Error::Git(why));
        }
        return Ok(Push {
            url: remote.url.clone(),
            branch: remote.branch.clone(),
            commit: head,
            before,
            changed: true,
        });
    }
    let Some(local) = &platform.gitops.local else {
        return Err(Error::Git(
            "platform.yaml has no GitOps source (`gitops`)".into(),
        ));
    };
    let url = local.url(&platform.metadata.name);
    let (before, changed) = match gitserver::push(client, platform, local, project, &head).await? {
        Pushed::Unchanged(_) => (None, false),
        Pushed::Updated(before, _) => (before, true),
    };
    Ok(Push {
        url,
        branch: local.branch.clone(),
        commit: head,
        before,
        changed,
    })
}

/// Asks Argo CD to compare the Application with Git now: the `argocd.argoproj.io/refresh`
/// annotation its controller acts on (and removes), set through the Kubernetes API. It needs
/// `patch` on that one Application, nothing of Argo CD's own API.
pub async fn refresh(client: &Client, platform: &Platform, app: &str) -> Result<(), Error> {
    super::applications(client, platform)
        .patch(
            app,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}),
            ),
        )
        .await
        .map(|_| ())
        .map_err(|source| Error::Refresh {
            app: app.to_string(),
            source,
        })
}

/// Commits the revert of `commit` on top of HEAD ("revert: <its message>"); returns the new
/// commit.
pub async fn revert(project: &Path, commit: &str) -> Result<String, Error> {
    let mut args = gitserver::identity(project).await?;
    args.extend(["revert", "--no-edit", commit]);
    let out = git(project, &args).await?;
    if !out.success() {
        let _ = git(project, &["revert", "--abort"]).await;
        return Err(Error::Git(format!(
            "git revert {}: {}{}",
            commit.get(..12).unwrap_or(commit),
            out.stderr.trim(),
            out.stdout.trim()
        )));
    }
    Ok(gitserver::head(project).await?)
}

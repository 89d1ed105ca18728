//! The in-cluster git server of `gitops.local`: a Deployment and a Service `gitops` in the
//! configured namespace, serving one bare repository (`<metadata.name>.git`) with `git daemon`
//! over the git protocol, pushes included. Argo CD reads it at
//! `git://gitops.<namespace>.svc.cluster.local/<name>.git`; `up` pushes the project's HEAD to it
//! through a port-forward to the server's pod, so no account and no registry are needed.
//!
//! The server runs in Argo CD's own image (the argo-cd chart's, already on the nodes once the
//! addon is installed): it holds git, whose `git daemon` is all the server is. The repository
//! lives in an emptyDir: a restarted pod starts empty, and the next `up` pushes again.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use serde_json::json;

use crate::cluster::process::{self, Output};
use crate::config::{LocalGit, Platform};
use crate::kube::{Manifest, portforward};

/// The server's name: its Deployment, Service and the host in Argo CD's URL.
pub const NAME: &str = "gitops";
/// The git protocol's port.
pub const PORT: u16 = 9418;
/// Argo CD v3.3.6, the image of the argo-cd chart pinned by default (9.4.17).
pub const IMAGE: &str = "quay.io/argoproj/argocd:v3.3.6";

/// The server's objects, labelled as `up`'s.
pub fn manifests(platform: &Platform, local: &LocalGit) -> Vec<Manifest> {
    let mut labels = super::labels(platform);
    labels.insert("app.kubernetes.io/name".into(), NAME.into());
    let selector = json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": platform.metadata.name});
    let ns = &local.namespace;
    let repo = format!("/srv/git/{}.git", platform.metadata.name);
    // The bare repository is made once per pod; the daemon serves every repository under
    // /srv/git and accepts pushes (the Service is reachable only inside the cluster).
    let script = format!(
        "set -e; [ -d {repo} ] || git init -q --bare --initial-branch={branch} {repo}; \
         exec git daemon --reuseaddr --listen=0.0.0.0 --port={PORT} --base-path=/srv/git \
         --export-all --enable=receive-pack --informative-errors /srv/git",
        branch = local.branch
    );
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
                    "containers": [{
                        "name": "git",
                        "image": IMAGE,
                        "command": ["/bin/sh", "-c", script],
                        "env": [{"name": "HOME", "value": "/srv/git"}],
                        "ports": [{"name": "git", "containerPort": PORT}],
                        "readinessProbe": {"tcpSocket": {"port": "git"}, "periodSeconds": 2},
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"memory": "256Mi"}
                        },
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "repositories", "mountPath": "/srv/git"}]
                    }],
                    "volumes": [{"name": "repositories", "emptyDir": {}}]
                }
            }
        }
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": ns, "labels": labels},
        "spec": {
            "selector": selector,
            "ports": [{"name": "git", "port": PORT, "targetPort": "git"}]
        }
    });
    [("deployment", deployment), ("service", service)]
        .into_iter()
        .map(|(what, object)| {
            Manifest::new(format!("gitops/{ns}/{what}"), object)
                .expect("built with apiVersion, kind and name")
        })
        .collect()
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The server's branch was already at the project's HEAD.
    Unchanged(String),
    /// The branch moved from the first (none for a new repository) to the second commit.
    Updated(Option<String>, String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no ready pod of the git server in namespace `{0}`")]
    NoPod(String),
    #[error("cannot port-forward to the git server")]
    Forward(#[source] portforward::Error),
    #[error("{0}")]
    Git(String),
    #[error(
        "the in-cluster repository's branch `{branch}` has commits your project does not: git refused to push over them"
    )]
    Diverged { branch: String },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Diverged { .. } => Some(
                "something else pushed to it (a promote?): fetch the branch through `kubectl port-forward`, merge it into your project, commit, and run `platformctl up` again".into(),
            ),
            Error::NoPod(ns) => Some(format!(
                "`kubectl -n {ns} describe deployment {NAME}` says why its pod is not ready"
            )),
            Error::Forward(_) | Error::Git(_) => None,
        }
    }
}

/// How long one git command may take.
const GIT_LIMIT: Duration = Duration::from_secs(60);

/// The project's HEAD commit, or why there is none to push.
pub async fn head(project: &Path) -> Result<String, Error> {
    let out = git(project, &["rev-parse", "--verify", "HEAD"], GIT_LIMIT).await?;
    if !out.success() {
        return Err(Error::Git(format!(
            "`{}` is not in a git repository with a commit: {}",
            project.display(),
            out.stderr.trim()
        )));
    }
    Ok(out.stdout.trim().to_string())
}

/// Where `project` is inside its git repository, as a path relative to the repository's root
/// (`.` at the root); `None` outside any repository.
pub async fn prefix(project: &Path) -> Result<Option<String>, Error> {
    let out = git(project, &["rev-parse", "--show-prefix"], GIT_LIMIT).await?;
    if !out.success() {
        return Ok(None);
    }
    let p = out.stdout.trim().trim_end_matches('/');
    Ok(Some(if p.is_empty() { ".".into() } else { p.into() }))
}

/// Files of the rendered tree that differ from the project's HEAD (uncommitted or untracked).
pub async fn uncommitted(project: &Path) -> Result<Vec<String>, Error> {
    let mut args = vec!["status", "--porcelain", "--untracked-files=all", "--"];
    args.extend(crate::render::ROOTS);
    let out = git(project, &args, GIT_LIMIT).await?;
    if !out.success() {
        return Err(Error::Git(format!("git status: {}", out.stderr.trim())));
    }
    Ok(out
        .stdout
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_string())
        .collect())
}

/// Pushes the project's HEAD (`head`, from [`head`]) to the server's branch through a
/// port-forward to its ready pod. Never forced: a branch with commits the project lacks is
/// [`Error::Diverged`].
pub async fn push(
    client: &Client,
    platform: &Platform,
    local: &LocalGit,
    project: &Path,
    head: &str,
) -> Result<Pushed, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &local.namespace);
    let selector = format!(
        "app.kubernetes.io/name={NAME},app.kubernetes.io/part-of={}",
        platform.metadata.name
    );
    // The Deployment is available once its controller has seen the pod Ready; the pod is
    // looked for until it is seen here too.
    let pod = portforward::ready_pod(&pods, &local.namespace, &selector, Duration::from_secs(30))
        .await
        .map_err(|e| match e {
            portforward::Error::NoReadyPod { .. } => Error::NoPod(local.namespace.clone()),
            e => Error::Forward(e),
        })?;
    // Held until the push is done: the listener closes when it is dropped.
    let forward = portforward::forward(pods, &pod, PORT)
        .await
        .map_err(Error::Forward)?;
    let addr = forward.addr();
    let url = format!("git://{addr}/{}.git", platform.metadata.name);
    let refname = format!("refs/heads/{}", local.branch);
    let listed = git(project, &["ls-remote", &url, &refname], GIT_LIMIT).await?;
    if !listed.success() {
        return Err(Error::Git(format!(
            "cannot read the in-cluster repository: {}",
            listed.stderr.trim()
        )));
    }
    let before = listed.stdout.split_whitespace().next().map(str::to_string);
    if before.as_deref() == Some(head) {
        return Ok(Pushed::Unchanged(head.to_string()));
    }
    let spec = format!("{head}:{refname}");
    let pushed = git(project, &["push", "--porcelain", &url, &spec], GIT_LIMIT).await?;
    if !pushed.success() {
        if pushed.stdout.contains("[rejected]") || pushed.stderr.contains("non-fast-forward") {
            return Err(Error::Diverged {
                branch: local.branch.clone(),
            });
        }
        return Err(Error::Git(format!("git push: {}", pushed.stderr.trim())));
    }
    Ok(Pushed::Updated(before, head.to_string()))
}

/// `-c` options giving platformctl's own identity to a commit in `dir` when the user has none
/// configured (a fresh machine, CI); none otherwise.
pub(crate) async fn identity(dir: &Path) -> Result<Vec<&'static str>, Error> {
    let configured = git(dir, &["config", "user.email"], GIT_LIMIT)
        .await?
        .success();
    Ok(if configured {
        Vec::new()
    } else {
        vec![
            "-c",
            "user.name=platformctl",
            "-c",
            "user.email=platformctl@localhost",
        ]
    })
}

/// Runs `git -C dir args` without prompting (through [`process::run`]: no terminal, killed
/// with platformctl), stopped and an error after `limit`.
pub(crate) async fn git(dir: &Path, args: &[&str], limit: Duration) -> Result<Output, Error> {
    let mut argv = vec![OsStr::new("-C"), dir.as_os_str()];
    argv.extend(args.iter().map(OsStr::new));
    process::run(
        OsStr::new("git"),
        &argv,
        &[("GIT_TERMINAL_PROMPT", OsStr::new("0"))],
        Some(limit),
    )
    .await
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => Error::Git(format!(
            "`git {}` did not finish within {} s",
            args.join(" "),
            limit.as_secs()
        )),
        _ => Error::Git(format!("cannot run git: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's customer-platform with its git server moved and on another branch.
    fn platform() -> Platform {
        let text = include_str!("../../platform.yaml")
            .replace("  local: {}", "  local: {namespace: git-ns, branch: trunk}");
        crate::config::parse(Path::new("platform.yaml"), &text)
            .expect("the customer-platform parses")
    }

    #[test]
    fn serves_the_platforms_repository_on_its_branch() {
        let p = platform();
        let local = p.gitops.local.clone().expect("gitops.local");
        let ms = manifests(&p, &local);
        assert_eq!(ms.len(), 2);
        let d = &ms[0].object;
        assert_eq!(d["metadata"]["namespace"], "git-ns");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "platformctl"
        );
        let script = d["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .expect("a shell script");
        assert!(
            script.contains("--initial-branch=trunk /srv/git/customer-platform.git"),
            "{script}"
        );
        assert!(script.contains("--enable=receive-pack"), "{script}");
        let s = &ms[1].object;
        assert_eq!(s["spec"]["ports"][0]["port"], 9418);
        assert_eq!(
            s["spec"]["selector"], d["spec"]["selector"]["matchLabels"],
            "the Service selects the Deployment's pods"
        );
        assert_eq!(
            local.url(&p.metadata.name),
            "git://gitops.git-ns.svc.cluster.local/customer-platform.git"
        );
    }
}
